"""One worker runtime (app/grading/supervisor.py): the tests' threads, `grader worker` and `grader
serve`'s child processes are the same Supervisor, and the queue page and /api/v1/queue say what
this server's workers really are. (`grader serve`'s processes: tests/service/test_worker_idle.py.)"""

from __future__ import annotations

import signal
import subprocess
import sys

from sqlalchemy import select
from support import wait_for

from app.store.models import Result, Submission
from app.store.states import SubmissionStatus

from .conftest import Service, env_for

GRADER = [sys.executable, "-m", "app.cli"]


def test_a_server_with_worker_threads_says_so(settings, tiny_tar):
    svc = Service(settings, workers=1)
    with svc.client:   # the lifespan starts the supervisor's thread
        r = svc.submit("alice", "open", tiny_tar, wait=120)
        assert r.status_code == 200 and r.json()["status"] == "graded"
        workers = svc.get("tina", "/api/v1/queue").json()["server_workers"]
        page = svc.get("tina", "/ta/queue").text
    svc.db.dispose()
    assert workers == {"runtime": "threads", "count": 1, "sandbox": "unsafe-subprocess", "unsafe": True,
                       "what": "1 thread in the server's own process"}
    assert "This server grades with 1 thread in the server&#39;s own process, sandbox" in page
    assert "UNSAFE: no isolation" in page
    assert "in-process" not in page and "child processes of <code>grader serve</code>" not in page


def test_a_web_only_server_says_it_runs_no_workers(service):
    assert service.get("tina", "/api/v1/queue").json()["server_workers"] is None
    assert "This server runs no grading workers of its own" in service.get("tina", "/ta/queue").text


def test_grader_worker_runs_the_same_supervisor_and_stops_on_sigterm(settings, tiny_tar, tmp_path):
    svc = Service(settings)   # the web tier without workers; the job waits for `grader worker`
    sub = svc.submit("alice", "open", tiny_tar).json()
    log = tmp_path / "worker.log"
    proc = subprocess.Popen([*GRADER, "worker", "--count", "2", "--first-index", "3"], env=env_for(settings),
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        def graded() -> bool:
            with svc.db.read_session() as s:
                return s.scalar(select(Submission.status).where(Submission.id == sub["id"])) == SubmissionStatus.GRADED
        wait_for("grader worker to grade the upload", graded)
        wait_for("grader worker to say it started", lambda: b"2 worker(s)" in log.read_bytes())
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(120)
    with svc.db.read_session() as s:
        worker = s.scalar(select(Result.worker).where(Result.submission_id == sub["id"]))
    svc.db.dispose()
    assert code == 0, log.read_text()   # SIGTERM: each finishes the grade in hand, then a clean exit
    _host, pid, index = worker.split(":")
    assert int(pid) == proc.pid and index in ("w3", "w4")   # indices from --first-index
