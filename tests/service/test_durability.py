"""Durability with real worker processes: SIGKILL in the middle of a grade, and many workers
competing for one queue (SQLite and Postgres)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.auth import admin
from app.course import submissions
from app.main import load_assessments
from app.settings import Settings
from app.store.db import Database
from app.store.models import Job, Result, Submission, User

from .conftest import env_for, make_tar, reference_files

GRADER = [sys.executable, "-m", "app.cli"]


def _start_worker(settings: Settings, count: int = 1, log: Path | None = None) -> subprocess.Popen:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (the child writes there)
    # its own process group, so SIGKILL reaches the student code it is running too
    return subprocess.Popen([*GRADER, "worker", "--count", str(count)], env=env_for(settings),
                            stdout=out, stderr=out, start_new_session=True)


def _wait_for(predicate, timeout: float = 180.0, what: str = "condition"):
    """Polls; the timeout only guards against a hang, it is not a speed assertion."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _submit(db: Database, settings: Settings, username: str, data: bytes) -> int:
    a = load_assessments(settings)["open"]
    with db.read_session() as s:
        user = s.scalar(select(User).where(User.username == username))
    return submissions.create_submission(db, a, user, data, "handin.tar", datetime.now(UTC), max_attempts=3).id


@pytest.fixture
def durable_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"lease_seconds": 3.0, "heartbeat_seconds": 0.5, "max_attempts": 3})


def test_sigkill_mid_grade_gives_exactly_one_result(db_url, durable_settings, tmp_path):
    settings = durable_settings
    db = Database(settings.db_url)
    admin.add_user(db, "alice", "student", "alice-password")
    marker = tmp_path / f"first-attempt-{uuid.uuid4().hex}"
    files = reference_files()
    # The first attempt hangs in the student's code (until killed); later attempts run normally.
    files["mytorch/nn/linear.py"] = (
        f"import os, time\nif not os.path.exists({str(marker)!r}):\n"
        f"    open({str(marker)!r}, 'w').close()\n    time.sleep(120)\n").encode() + files["mytorch/nn/linear.py"]
    sub_id = _submit(db, settings, "alice", make_tar(files))

    first = _start_worker(settings, log=tmp_path / "w1.log")
    try:
        _wait_for(marker.exists, what="the first worker to be inside the student's code")
        with db.read_session() as s:
            job = s.scalar(select(Job).where(Job.submission_id == sub_id))
            assert job.state == "running" and job.attempts == 1
            killed_owner = job.lease_owner
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    with db.read_session() as s:   # nothing recorded by the dead worker
        assert s.scalar(select(func.count()).select_from(Result)) == 0

    second = _start_worker(settings, log=tmp_path / "w2.log")
    try:
        def graded():
            with db.read_session() as s:
                return s.get(Submission, sub_id).status == "graded"
        _wait_for(graded, what="the re-queued job to be graded")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
    with db.read_session() as s:
        results = s.scalars(select(Result).where(Result.submission_id == sub_id)).all()
        job = s.scalar(select(Job).where(Job.submission_id == sub_id))
        sub = s.get(Submission, sub_id)
    assert len(results) == 1
    assert results[0].worker != killed_owner and results[0].score == 100 and sub.score == 100
    assert job.state == "done" and job.attempts == 2 and "lease expired" in (job.last_error or "")
    db.dispose()


def test_many_workers_never_grade_a_submission_twice(db_url, durable_settings, tiny_tar, tmp_path):
    settings = durable_settings.model_copy(update={"lease_seconds": 60.0, "heartbeat_seconds": 5.0})
    db = Database(settings.db_url)
    for name in ("alice", "bob", "carol"):
        admin.add_user(db, name, "student", f"{name}-password")
    ids = []
    for i in range(12):
        # distinct bytes, so each handin is its own blob
        data = make_tar({"models/__init__.py": f"# {i}\n".encode(), "mytorch/__init__.py": b""})
        ids.append(_submit(db, settings, ("alice", "bob", "carol")[i % 3], data))
    workers = [_start_worker(settings, count=2, log=tmp_path / f"w{i}.log") for i in range(3)]
    try:
        def all_done():
            with db.read_session() as s:
                return s.scalar(select(func.count()).select_from(Job).where(Job.state == "done")) == len(ids)
        _wait_for(all_done, what="all jobs to finish")
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(60)
    with db.read_session() as s:
        jobs = s.scalars(select(Job)).all()
        assert sorted(j.submission_id for j in jobs) == sorted(ids)
        assert all(j.attempts == 1 for j in jobs)                       # claimed exactly once
        per_job = dict(s.execute(select(Result.job_id, func.count()).group_by(Result.job_id)).all())
        assert sorted(per_job) == sorted(j.id for j in jobs) and set(per_job.values()) == {1}
        assert all(s.get(Submission, i).status == "graded" for i in ids)
    db.dispose()


def test_lease_expiry_requeues_and_late_result_is_ignored(db_url, durable_settings, tiny_tar):
    from app.grading import queue

    settings = durable_settings
    db = Database(settings.db_url)
    admin.add_user(db, "alice", "student", "alice-password")
    sub_id = _submit(db, settings, "alice", tiny_tar)
    stale = queue.claim(db, "worker-a", lease_seconds=0.5)
    time.sleep(1.2)   # let the lease run out (not a speed assertion)
    fresh = queue.claim(db, "worker-b", lease_seconds=30)
    assert fresh is not None and fresh.job_id == stale.job_id and fresh.attempt == 2
    assert not queue.heartbeat(db, stale, "worker-a", 30)          # the old lease is gone
    assert queue.record_result(db, fresh, "worker-b", score=0, max_score=100, body="{}", handin_error=None)
    # the slow first worker finishes later: idempotent, nothing more is recorded
    assert not queue.record_result(db, stale, "worker-a", score=0, max_score=100, body="{}", handin_error=None)
    assert not queue.record_result(db, fresh, "worker-b", score=0, max_score=100, body="{}", handin_error=None)
    with db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(Result).where(Result.submission_id == sub_id)) == 1
    db.dispose()


def test_grader_error_retries_are_capped_per_student(db_url, durable_settings, tiny_tar):
    # However a handin might make the grader fail, one student cannot keep the workers retrying it.
    from app.grading import queue

    settings = durable_settings
    db = Database(settings.db_url)
    admin.add_user(db, "alice", "student", "alice-password")
    admin.add_user(db, "bob", "student", "bob-password")

    def fail_until_done(username: str) -> int:
        sub_id = _submit(db, settings, username, tiny_tar)
        while (claim := queue.claim(db, "worker-a", lease_seconds=30)) is not None:
            queue.record_failure(db, claim, "worker-a", "GraderBug: forced")
        return sub_id

    alice = [fail_until_done("alice") for _ in range(4)]
    bob = fail_until_done("bob")
    with db.read_session() as s:
        attempts = {sub: s.scalar(select(Job.attempts).where(Job.submission_id == sub)) for sub in [*alice, bob]}
        statuses = {sub: s.get(Submission, sub).status for sub in [*alice, bob]}
    cap = queue.GRADER_ERROR_RETRIES_PER_STUDENT
    assert sum(attempts[sub] - 1 for sub in alice) == cap, attempts
    assert attempts[alice[-1]] == 1  # out of retries: failed at its first grader error
    assert attempts[bob] == 3        # another student still gets every attempt
    assert set(statuses.values()) == {"error"}  # never a zero, never counted
    db.dispose()
