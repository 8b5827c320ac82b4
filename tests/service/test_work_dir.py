"""A `grader worker` killed with SIGKILL in the middle of a grade leaves its job directory (the
handin inside) and its slot directory in the service's work directory; restarted, it removes them
at start-up, while another worker's grade running meanwhile keeps its own untouched. A running
worker also sweeps periodically, `grader serve`'s workers at its start-up, and the queue page and
API show the work directory. Real sandbox, real processes, SQLite."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from support import HANG_GUARD, sandbox_or_skip, snapshot, wait_for

from app.auth import admin
from app.course import submissions
from app.main import load_assessments
from app.settings import Settings
from app.store.db import Database
from app.store.models import Submission, User

from .conftest import env_for, make_tar, reference_files

GRADER = [sys.executable, "-m", "app.cli"]
# The handin's code waits, inside the sandbox, until the test puts a file named `go` into the
# handin it reads (the sandbox binds the job's handin read-only, live): a grade held mid-run.
GATE = (b"import os as _os, time as _time\n"
        b"while not _os.path.exists('/handin/go'):\n"
        b"    _time.sleep(0.05)\n")
ORPHAN = """
import os, signal, sys
from grader.workdir import WorkDir
owned = WorkDir(sys.argv[1]).claim("grade-")
(owned.path / "handin.py").write_text("student code")
print(owned.path, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture
def sandboxed(settings: Settings) -> Settings:
    sandbox_or_skip()
    return settings.model_copy(update={"unsafe_no_sandbox": False, "lease_seconds": 3.0,
                                       "heartbeat_seconds": 0.5, "max_attempts": 3})


def start_worker(settings: Settings, log: Path, **env) -> subprocess.Popen:
    environment = env_for(settings)
    del environment["GRADER_UNSAFE_NO_SANDBOX"]   # the real sandbox, unless ENV says otherwise
    environment |= env
    return subprocess.Popen([*GRADER, "worker"], env=environment, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)


def dirs(work: Path, prefix: str) -> set[Path]:
    return {p for p in work.iterdir() if p.name.startswith(prefix)} if work.exists() else set()


def running_in_sandbox(slot_dir: Path) -> bool:
    """Whether a process of this slot directory's sandbox slot (its uid) runs: the handin's code."""
    from sandbox.cleanup import processes_of_uid
    from sandbox.sandbox import SLOT_UID_BASE

    stages = [re.fullmatch(r"sandbox-slot(\d+)-.*", p.name) for p in slot_dir.iterdir()]
    return any(processes_of_uid(SLOT_UID_BASE + int(m.group(1))) for m in stages if m)


def held_mid_grade(proc: subprocess.Popen, work: Path, known: set[Path]) -> tuple[Path, Path]:
    """PROC's job and slot directories, once the handin's code runs in its sandbox."""
    def mine(prefix):
        new = dirs(work, prefix) - known
        return next(iter(new)) if len(new) == 1 else None

    slot = wait_for("the worker's slot directory", lambda: proc.poll() is None and mine("slot-"))
    job = wait_for("the worker's job directory", lambda: mine("grade-"))
    wait_for("the handin's code to run in the sandbox", lambda: running_in_sandbox(slot))
    assert proc.poll() is None, "the worker ended before its grade could be held"
    return job, slot


def submit(db: Database, settings: Settings, username: str, data: bytes) -> int:
    admin.add_user(db, username, "student", f"{username}-password")
    a = load_assessments(settings)["open"]
    with db.read_session() as s:
        user = s.scalar(select(User).where(User.username == username))
    return submissions.create_submission(db, a, user, data, "handin.tar", datetime.now(UTC), max_attempts=3).id


@pytest.mark.sandbox
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_worker_killed_with_sigkill_leaves_nothing_after_its_restart(db_url, sandboxed, tmp_path):
    settings = sandboxed
    work = settings.data_dir.resolve() / "work"   # the service's own, under its data directory
    db = Database(settings.db_url)
    files = reference_files()
    files["mytorch/nn/linear.py"] = GATE + files["mytorch/nn/linear.py"]
    subs = [submit(db, settings, name, make_tar(files)) for name in ("alice", "bob")]
    workers = []
    try:
        killed = start_worker(settings, tmp_path / "killed.log")
        workers.append(killed)
        killed_dirs = held_mid_grade(killed, work, set())
        concurrent = start_worker(settings, tmp_path / "concurrent.log")
        workers.append(concurrent)
        concurrent_dirs = held_mid_grade(concurrent, work, set(killed_dirs))
        before = {d: snapshot(d) for d in concurrent_dirs}

        killed.send_signal(signal.SIGKILL)
        assert killed.wait() == -signal.SIGKILL
        assert all(d.is_dir() for d in killed_dirs)   # what a killed worker leaves

        restarted = start_worker(settings, tmp_path / "restarted.log")
        workers.append(restarted)
        wait_for("the restarted worker's sweep", lambda: not any(d.exists() for d in killed_dirs))
        assert {d: snapshot(d) for d in concurrent_dirs} == before   # never touched
        assert concurrent.poll() is None

        def graded() -> bool:   # let every held grade go: the concurrent one, and the re-queued job
            for job in dirs(work, "grade-"):
                if (job / "handin").is_dir() and not (job / "handin" / "go").exists():
                    (job / "handin" / "go").touch()
            with db.read_session() as s:
                return all(s.get(Submission, sub).status == "graded" for sub in subs)
        # Both graded, not failed: the section held past its wall-clock limit scores 0, the rest
        # run on once the gate is open.
        wait_for("both submissions to be graded", graded)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(HANG_GUARD)
        db.dispose()
    assert list(work.iterdir()) == []   # each worker removed its slot directory when it stopped


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_running_worker_sweeps_what_a_killed_grade_left(db_url, settings, tmp_path):
    # Unsafe mode is enough here: the sweep is the same whatever the executor.
    work = settings.data_dir.resolve() / "work"

    def orphan() -> Path:
        made = subprocess.run([sys.executable, "-c", ORPHAN, str(work)], capture_output=True, text=True,
                              check=False)
        assert made.returncode == -signal.SIGKILL, made.stderr
        return Path(made.stdout.strip())

    at_start = orphan()
    worker = start_worker(settings, tmp_path / "worker.log", GRADER_UNSAFE_NO_SANDBOX="1",
                          GRADER_SWEEP_SECONDS="0.2")
    try:
        wait_for("the start-up sweep", lambda: not at_start.exists())
        later = orphan()   # made after the start-up sweep: only a periodic one can remove it
        wait_for("a periodic sweep", lambda: not later.exists())
        assert worker.poll() is None
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(HANG_GUARD)


def test_queue_page_and_api_show_the_work_directory(service):
    from grader.workdir import WorkDir

    health = service.get("tina", "/api/v1/queue").json()
    assert health["work_dir"] is None   # nothing graded here yet: no work directory, none made
    with WorkDir(service.settings.work_path).claim("grade-") as grading:   # a grade in progress
        (grading.path / "inputs.bin").write_bytes(os.urandom(3 << 20))
        work = service.get("tina", "/api/v1/queue").json()["work_dir"]
        assert work["job_dirs"] == 1 and work["bytes"] >= 3 << 20
        login = service.client.post("/api/v1/login", json={"username": "tina", "password": "tina-password"})
        assert login.status_code == 200
        page = service.client.get("/ta/queue").text
        assert re.search(r'id="q-work">3\.\d MB · 1 job directory<', page), page
    assert service.get("tina", "/api/v1/queue").json()["work_dir"]["job_dirs"] == 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_serve_sweeps_what_a_killed_grade_left_at_start_up(db_url, settings, tmp_path):
    from support import free_port

    work = settings.data_dir.resolve() / "work"
    made = subprocess.run([sys.executable, "-c", ORPHAN, str(work)], capture_output=True, text=True, check=False)
    assert made.returncode == -signal.SIGKILL, made.stderr
    left = Path(made.stdout.strip())
    serve = subprocess.Popen([*GRADER, "serve", "--port", str(free_port()), "--workers", "1"],
                             env=env_for(settings), stdout=(tmp_path / "serve.log").open("ab"),
                             stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for("serve's start-up sweep", lambda: not left.exists())   # by its worker process
        assert serve.poll() is None, (tmp_path / "serve.log").read_text()
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(HANG_GUARD)
