"""Web before workers: idle workers never take the write lock, a queued job wakes an idle worker
at once (no poll interval), in-process or one of `grader serve`'s worker processes, and grading
runs at a lower CPU priority."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from sqlalchemy import event

from app.grading import queue
from app.grading.worker import GradingLane
from app.store.db import Database

from .conftest import Service


def _statements(db: Database) -> list[str]:
    seen: list[str] = []
    event.listen(db.engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: seen.append(statement.upper()))
    return seen


def _writes(statements: list[str]) -> list[str]:
    return [s for s in statements
            if s.startswith(("BEGIN IMMEDIATE", "UPDATE", "INSERT", "DELETE")) or "FOR UPDATE" in s]


def test_idle_claims_never_take_the_write_lock(service, tiny_tar):
    seen = _statements(service.db)
    for _ in range(3):
        assert queue.claim(service.db, "idle-worker", 30) is None
    assert seen and not _writes(seen)

    assert service.submit("alice", "open", tiny_tar).status_code == 202
    seen.clear()
    claim = queue.claim(service.db, "busy-worker", 30)
    assert claim is not None and _writes(seen)   # with work there, the claim is a locked write


def _wait_until(predicate, what: str, timeout: float = 120.0) -> None:
    """Polls; the timeout only guards against a hang, it is not a speed assertion."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


def test_a_queued_job_wakes_an_idle_in_process_worker_without_waiting_for_a_poll(settings, tiny_tar):
    # One poll an hour: only the doorbell can get this upload graded within the wait below.
    svc = Service(settings.model_copy(update={"poll_seconds": 3600.0}), workers=1)
    with svc.client:
        _wait_until(lambda: svc.db.doorbell.waiting == 1, "the worker is idle")
        r = svc.submit("alice", "open", tiny_tar, wait=120)
        assert r.status_code == 200 and r.json()["status"] == "graded"
    svc.db.dispose()


def test_grading_lane_runs_at_a_lower_priority_and_its_processes_inherit_it(settings):
    lane = GradingLane(settings.model_copy(update={"worker_nice": 10}))
    try:
        def own() -> int:
            return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

        def child() -> int:
            out = subprocess.run([sys.executable, "-c", "import os; print(os.nice(0))"],
                                 capture_output=True, text=True, check=True).stdout
            return int(out)

        assert lane.run(own) >= 10
        assert lane.run(child) >= 10
        assert own() < 10   # the calling (database) thread keeps its priority
    finally:
        lane.close()


def test_serve_grades_in_worker_processes_that_a_queued_job_wakes(settings, tiny_tar):
    # `grader serve`'s workers are child processes, so grading never holds the web process's GIL;
    # with one poll an hour, only the pipe the web process rings can get this upload graded.
    from sqlalchemy import select

    from app.grading.supervisor import Supervisor, WorkerRuntime
    from app.store.models import Result

    settings = settings.model_copy(update={"poll_seconds": 3600.0, "unsafe_no_sandbox": True})
    svc = Service(settings)
    pool = Supervisor(svc.db, settings, 2, runtime=WorkerRuntime.PROCESSES)
    pool.prepare()
    try:
        assert pool.sandbox_name == "unsafe-subprocess"
        with svc.client:
            for name in ("alice", "bob"):
                r = svc.submit(name, "open", tiny_tar, wait=120)
                assert r.status_code == 200 and r.json()["status"] == "graded", r.json()
        with svc.db.read_session() as s:
            workers = s.scalars(select(Result.worker)).all()
        pids = {int(name.split(":")[1]) for name in workers}
        assert len(workers) == 2 and os.getpid() not in pids and pids <= {p.pid for p in pool.procs}
    finally:
        procs = list(pool.procs)
        pool.close()
        svc.db.dispose()
    assert all(p.returncode == 0 for p in procs)   # end of file on their pipes: a clean stop



def test_a_queued_job_wakes_a_listening_grader_worker_on_postgres(settings, tiny_tar):
    # `grader worker` on another machine shares no process with the web tier: on Postgres it
    # LISTENs, and the transaction that queues a job NOTIFYs. One poll an hour: only that wakes it.
    from app.grading.supervisor import Supervisor
    from app.store.db import PostgresDoorbell

    if settings.db_url.startswith("sqlite"):
        import pytest
        pytest.skip("LISTEN/NOTIFY is Postgres's; SQLite's workers are rung by their web process")
    settings = settings.model_copy(update={"poll_seconds": 3600.0})
    svc = Service(settings)                      # the web tier, no worker of its own
    worker_db = Database(settings.db_url)        # the worker's own engine, as on another machine
    # as `grader worker` runs it (app/cli/main.py)
    supervisor = Supervisor(worker_db, settings, 1, doorbell=lambda: PostgresDoorbell(worker_db, queue.JOBS_CHANNEL))
    supervisor.prepare()
    supervisor.start()
    try:
        with svc.client:
            r = svc.submit("alice", "open", tiny_tar, wait=120)
            assert r.status_code == 200 and r.json()["status"] == "graded", r.json()
    finally:
        supervisor.stop.set()
        with worker_db.session() as s, s.begin():
            queue.notify_workers(s)   # wake it to see the stop
        threads = list(supervisor._threads)
        supervisor.close()
        worker_db.dispose()
        svc.db.dispose()
    assert threads and not any(t.is_alive() for t in threads)


def test_serve_refuses_when_a_worker_process_cannot_start(settings, tmp_path):
    # A child that has no sandbox says so (or dies before saying anything): `grader serve` then
    # refuses to grade rather than run with fewer workers than it said, and stops the others.
    import pytest

    from app.grading.supervisor import Supervisor, WorkerRuntime
    from app.grading.worker import SandboxRefused

    child = tmp_path / "child.py"
    child.write_text("import sys\n"
                     "if sys.argv[1] == '1':\n"
                     "    print('refused bubblewrap (bwrap) is not installed', flush=True)\n"
                     "else:\n"
                     "    print('ready zygote+cgroup-v1', flush=True)\n"
                     "    sys.stdin.read()\n"
                     "    import select; select.select([int(sys.argv[2])], [], [])   # until end of file\n")
    db = Database(settings.db_url)
    pool = Supervisor(db, settings, 2, runtime=WorkerRuntime.PROCESSES)
    pool.command = (sys.executable, str(child))
    with pytest.raises(SandboxRefused, match="bwrap"):
        pool.prepare()
    assert pool.procs == [] and db.doorbell._also == []   # the ready one was stopped too
    db.dispose()
