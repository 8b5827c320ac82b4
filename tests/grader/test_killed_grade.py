"""`grader grade` killed with SIGKILL in the middle of a grade leaves its job directory (the handin
inside) and its slot directory; the next `grader grade` removes them at start-up, while a grade
running at the same time keeps its own untouched. Real sandbox, real processes."""
import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from catalogue import LINEAR, build_handin, tar_bytes
from support import HANG_GUARD, sandbox_or_skip, snapshot, wait_for
from test_cli import grader_script

from grader.suites.hw1p1 import SUITE as HW1P1

# The handin's code waits, inside the sandbox, until the test puts a file named `go` into the
# handin it reads (the sandbox binds the job's handin read-only, live): a grade held mid-run.
GATE = ("import os as _os, time as _time\n"
        "while not _os.path.exists('/handin/go'):\n"
        "    _time.sleep(0.05)\n")


def gated_handin(folder: Path) -> Path:
    root = build_handin(folder / "src")
    (root / LINEAR).write_text(GATE + (root / LINEAR).read_text())
    path = folder / "gated.tar"
    path.write_bytes(tar_bytes(root))
    return path


def correct_handin(folder: Path) -> Path:
    path = folder / "correct.tar"
    path.write_bytes(tar_bytes(build_handin(folder / "correct-src")))
    return path


def start_grade(handin: Path, work: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([grader_script(), "grade", str(handin), "--json", "--work-dir", str(work)],
                            stdout=subprocess.PIPE, stderr=log.open("w"), text=True)


def owned_dirs(work: Path, prefix: str) -> set[Path]:
    return {p for p in work.iterdir() if p.name.startswith(prefix)} if work.exists() else set()


def running_in_sandbox(slot_dir: Path) -> bool:
    """Whether a process of this slot directory's sandbox slot (its uid) runs: the handin's code."""
    from sandbox.cleanup import processes_of_uid
    from sandbox.sandbox import SLOT_UID_BASE

    stages = [re.fullmatch(r"sandbox-slot(\d+)-.*", p.name) for p in slot_dir.iterdir()]
    slots = [int(m.group(1)) for m in stages if m]
    return any(processes_of_uid(SLOT_UID_BASE + slot) for slot in slots)


def held_mid_grade(proc: subprocess.Popen, work: Path, known: set[Path]) -> tuple[Path, Path]:
    """PROC's job and slot directories, once the handin's code runs in its sandbox."""
    def mine(prefix):
        new = owned_dirs(work, prefix) - known
        return next(iter(new)) if len(new) == 1 else None

    job = wait_for("the grade's job directory", lambda: proc.poll() is None and mine("grade-"))
    slot = wait_for("the grade's slot directory", lambda: mine("slot-"))
    wait_for("the handin's code to run in the sandbox", lambda: running_in_sandbox(slot))
    assert proc.poll() is None, "the grade ended before it could be held"
    return job, slot


@pytest.mark.sandbox
def test_grade_killed_with_sigkill_leaves_nothing_after_the_next_grade(tmp_path):
    sandbox_or_skip()
    work = tmp_path / "work"
    gated, correct = gated_handin(tmp_path / "gated"), correct_handin(tmp_path / "correct")

    # A concurrent grade, held in its sandbox for the whole test.
    concurrent = start_grade(gated, work, tmp_path / "concurrent.log")
    concurrent_dirs = held_mid_grade(concurrent, work, set())
    before = {d: snapshot(d) for d in concurrent_dirs}

    killed = start_grade(gated, work, tmp_path / "killed.log")
    killed_job, killed_slot = held_mid_grade(killed, work, set(concurrent_dirs))
    assert (killed_job / "handin" / LINEAR).is_file()
    killed.send_signal(signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL
    assert killed_job.is_dir() and killed_slot.is_dir()   # what a killed grade leaves

    restarted = start_grade(correct, work, tmp_path / "restarted.log")
    restarted_out, _ = restarted.communicate(timeout=HANG_GUARD)
    assert restarted.returncode == 0, (tmp_path / "restarted.log").read_text()
    assert json.loads(restarted_out)["score"] == HW1P1.max_score

    assert not killed_job.exists() and not killed_slot.exists()
    assert {d: snapshot(d) for d in concurrent_dirs} == before   # never touched
    assert concurrent.poll() is None

    (concurrent_dirs[0] / "handin" / "go").touch()   # let it finish: its own grade, its own cleanup
    out, _ = concurrent.communicate(timeout=HANG_GUARD)
    assert concurrent.returncode == 0, (tmp_path / "concurrent.log").read_text()
    # graded to the end (the section held past its wall-clock limit scores 0, the rest run on)
    assert len(json.loads(out)["sections"]) == len(json.loads(restarted_out)["sections"])
    assert list(work.iterdir()) == []
    assert os.stat(work).st_mode & 0o777 == 0o711
