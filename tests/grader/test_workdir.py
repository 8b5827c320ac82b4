"""The work directory's ownership records and its sweep (grader/workdir.py), with real processes:
a directory whose owner was SIGKILLed is removed, one whose owner lives (in another process or in
this one) is never touched, and nothing the grader did not create is either."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support import snapshot

from grader.workdir import JOB_PREFIX, SLOT_PREFIX, WorkDir, usage

ROOT = Path(__file__).resolve().parents[2]
OWNER = """
import sys
from grader.workdir import WorkDir
owned = WorkDir(sys.argv[1]).claim(sys.argv[2])
(owned.path / "handin.py").write_text("student code")
print(owned.path, flush=True)
sys.stdin.read()   # hold it until told to stop (or killed)
owned.release()
"""


class Owner:
    """Another process that claims a directory in WORK and holds it."""

    def __init__(self, work: Path, prefix: str = JOB_PREFIX):
        self.proc = subprocess.Popen([sys.executable, "-c", OWNER, str(work), prefix], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.path = Path(self.proc.stdout.readline().strip())
        assert self.path.is_dir()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def finish(self) -> int:
        self.proc.stdin.close()
        return self.proc.wait()


def test_sweep_removes_the_dirs_of_an_owner_killed_with_sigkill(tmp_path):
    work = WorkDir(tmp_path / "work")
    job, slot = Owner(work.path, JOB_PREFIX), Owner(work.path, SLOT_PREFIX)
    job.kill()
    slot.kill()
    assert job.path.exists() and slot.path.exists()   # the leak this sweep is for
    assert sorted(work.sweep()) == sorted([job.path.name, slot.path.name])
    assert list(work.path.iterdir()) == []


def test_sweep_never_touches_a_dir_whose_owner_process_lives(tmp_path):
    work = WorkDir(tmp_path / "work")
    alive, killed = Owner(work.path), Owner(work.path)
    before = snapshot(alive.path)
    killed.kill()
    assert work.sweep() == [killed.path.name]
    assert snapshot(alive.path) == before
    assert alive.finish() == 0
    assert list(work.path.iterdir()) == []


def test_sweep_never_touches_a_dir_claimed_by_this_process(tmp_path):
    # flock locks belong to the open file, not the process: the worker's own sweep must not take
    # a lock its grading thread holds.
    work = WorkDir(tmp_path / "work")
    with work.claim(JOB_PREFIX) as owned:
        (owned.path / "handin.py").write_text("student code")
        assert WorkDir(work.path).sweep() == []
        assert (owned.path / "handin.py").read_text() == "student code"
    assert list(work.path.iterdir()) == []


def test_sweep_removes_a_dir_made_but_never_locked(tmp_path):
    # A creator killed between mkdir and flock leaves a directory with no owner at all.
    work = WorkDir(tmp_path / "work")
    (work.path / "grade-abandoned" / "handin").mkdir(parents=True)
    assert work.sweep() == ["grade-abandoned"]


def test_sweep_leaves_alone_what_it_did_not_create(tmp_path):
    # Other names, and a symlink named like a job directory pointing at someone's folder: a sweep
    # follows no link and removes nothing but its own prefixes' directories.
    work = WorkDir(tmp_path / "work")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    (work.path / "grade-link").symlink_to(precious)
    (work.path / "slot-link").symlink_to(precious)
    (work.path / "grade-file").write_text("not a directory")
    (work.path / "notes").mkdir()
    (work.path / "notes" / "todo").write_text("keep")
    assert work.sweep() == []
    assert (precious / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in work.path.iterdir()) == ["grade-file", "grade-link", "notes", "slot-link"]


def test_sweep_removes_a_chain_deeper_than_path_max_left_by_a_killed_grade(tmp_path):
    work = WorkDir(tmp_path / "work")
    owner = Owner(work.path)
    fd = os.open(owner.path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(3000):  # 6,000 characters: past PATH_MAX and the recursion limit
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
    finally:
        os.close(fd)
    owner.kill()
    assert work.usage().job_dirs == 1
    assert work.sweep() == [owner.path.name]
    assert list(work.path.iterdir()) == []


def test_usage_counts_job_dirs_and_their_bytes(tmp_path):
    work = WorkDir(tmp_path / "work")
    empty = work.usage()
    assert (empty.job_dirs, empty.slot_dirs) == (0, 0)
    with work.claim(JOB_PREFIX) as one, work.claim(JOB_PREFIX), work.claim(SLOT_PREFIX):
        (one.path / "inputs.bin").write_bytes(os.urandom(1 << 20))
        used = work.usage()
        assert (used.job_dirs, used.slot_dirs) == (2, 1)
        assert used.bytes >= empty.bytes + (1 << 20)
    assert work.usage().job_dirs == 0


def test_usage_of_a_missing_work_dir_is_none_and_creates_nothing(tmp_path):
    # A web-only tier (workers elsewhere) shows no work directory, and its read-only root stays so.
    assert usage(tmp_path / "work") is None
    assert not (tmp_path / "work").exists()


def test_claim_refuses_a_prefix_a_sweep_would_not_know(tmp_path):
    work = WorkDir(tmp_path / "work")
    with pytest.raises(ValueError):
        work.claim("handin-")
    assert list(work.path.iterdir()) == []
