"""docker-compose.yml's processes, natively (conftest.py): Postgres on 127.0.0.1 with a password,
`grader db upgrade`, one `grader serve --workers 0`, three `grader worker` processes. Uploads go
through the HTTP API; the database is read directly to check "exactly once" and blob integrity.

No timed assertions: waits only guard against hangs (conftest.HANG_GUARD)."""

from __future__ import annotations

import hashlib
import signal
import threading

import httpx
import pytest

from .conftest import broken_handin, correct_handin, grader_crashing_handin, slow_handin, wait_until


def results_of(dep, sub_id: int) -> list[tuple]:
    return dep.sql("SELECT r.score, r.worker FROM results r JOIN jobs j ON j.id = r.job_id "
                   "WHERE r.submission_id = %s AND j.kind = 'submit'", sub_id)


def explain(dep, view: dict) -> str:
    jobs = dep.sql("SELECT attempts, state, last_error FROM jobs WHERE submission_id = %s", view["id"])
    return f"{ {k: view.get(k) for k in ('id', 'status', 'score', 'grader_error', 'attempts')} } jobs={jobs}"


def assert_graded_once(dep, sub_id: int) -> tuple:
    rows = results_of(dep, sub_id)
    assert len(rows) == 1, f"submission {sub_id} has {len(rows)} results: {rows}"
    return rows[0]


def test_a_correct_and_a_broken_handin_are_graded_once_each(deployment):
    dep = deployment
    good, bad = dep.upload(correct_handin("basic")), dep.upload(broken_handin())
    assert good.status_code == 202 and bad.status_code == 202, (good.text, bad.text)
    good_view, bad_view = dep.wait_finished(good.json()["id"]), dep.wait_finished(bad.json()["id"])
    assert good_view["status"] == "graded" and good_view["score"] == 100, explain(dep, good_view)
    assert bad_view["status"] == "graded" and bad_view["score"] < 100, explain(dep, bad_view)
    assert [s["name"] for s in bad_view["sections"] if s["score"] < s["max_score"]] == ["SGD"]
    for view in (good_view, bad_view):
        assert view["unsafe"] is bool(dep.unsafe_reason)
        assert view["attempts"] == 1
        assert_graded_once(dep, view["id"])


def test_sigkill_a_worker_mid_grade_another_grades_it_once_after_the_lease(deployment):
    dep = deployment
    sub_id = dep.upload(slow_handin()).json()["id"]

    def running_on():
        rows = dep.sql("SELECT lease_owner FROM jobs WHERE submission_id = %s AND state = 'running'", sub_id)
        return rows[0][0] if rows and rows[0][0] else None
    owner = wait_until(running_on, "a worker to claim the slow handin", interval=0.05)
    victim = next(i for i in dep.workers if owner.startswith(dep.worker_name_prefix(i)))
    dep.kill(dep.workers[victim], signal.SIGKILL)
    try:
        view = dep.wait_finished(sub_id)
        assert view["status"] == "graded" and view["score"] == 100, explain(dep, view)
        _score, worker = assert_graded_once(dep, sub_id)
        assert not worker.startswith(owner.rsplit(":", 1)[0]), "graded by the killed worker"
        assert view["attempts"] == 2  # the killed attempt, then the one that finished
    finally:
        dep.start_worker(victim)


def test_sigkill_the_web_process_during_uploads_loses_no_acknowledged_upload(deployment):
    dep = deployment
    acknowledged: dict[int, str] = {}  # submission id -> sha256 of the bytes we sent
    lock = threading.Lock()
    stop = threading.Event()

    def uploader(n: int) -> None:
        i = 0
        while not stop.is_set():
            data = correct_handin(f"web-kill {n} {i}")
            i += 1
            try:
                r = dep.upload(data, timeout=30)
            except httpx.HTTPError:
                continue  # the connection died with the process: not acknowledged, fine
            if r.status_code == 202:
                with lock:
                    acknowledged[r.json()["id"]] = hashlib.sha256(data).hexdigest()

    threads = [threading.Thread(target=uploader, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(acknowledged) >= 6, "some uploads to be acknowledged", interval=0.05)
        dep.kill(dep.web, signal.SIGKILL)
    finally:
        stop.set()
        for t in threads:
            t.join()
    dep.start_web()
    assert acknowledged
    for sub_id, sha in acknowledged.items():
        rows = dep.sql("SELECT s.blob_sha256, b.data FROM submissions s JOIN blobs b ON b.sha256 = s.blob_sha256 "
                       "WHERE s.id = %s", sub_id)
        assert rows, f"acknowledged submission {sub_id} is not in the database"
        stored_sha, data = rows[0]
        assert stored_sha == sha and hashlib.sha256(bytes(data)).hexdigest() == sha
    for sub_id in acknowledged:  # and they are all graded, once
        view = dep.wait_finished(sub_id)
        assert view["status"] == "graded", explain(dep, view)
        assert_graded_once(dep, sub_id)


@pytest.fixture(scope="module")
def postgres_outage(deployment):
    """Uploads stream in from 3 clients while Postgres is stopped and started again.
    Returns (ids acknowledged with 202, every HTTP status answered)."""
    dep = deployment
    acknowledged: list[int] = []
    statuses: list[int] = []
    stop = threading.Event()

    def uploader(n: int) -> None:
        i = 0
        while not stop.is_set():
            try:
                r = dep.upload(correct_handin(f"pg-restart {n} {i}"), timeout=30)
            except httpx.HTTPError:
                continue
            i += 1
            statuses.append(r.status_code)
            if r.status_code == 202:
                acknowledged.append(r.json()["id"])

    threads = [threading.Thread(target=uploader, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(acknowledged) >= 3, "uploads before the outage", interval=0.05)
        dep.pg.stop("fast")
        wait_until(lambda: any(s != 202 for s in statuses), "an upload refused during the outage")
        dep.pg.start()
        before = len(acknowledged)
        wait_until(lambda: len(acknowledged) >= before + 3, "uploads accepted after the restart")
    finally:
        stop.set()
        for t in threads:
            t.join()
        if not dep.pg.data.joinpath("postmaster.pid").exists():
            dep.pg.start()
    return acknowledged, statuses


def test_postgres_restart_during_uploads_every_acknowledged_submission_graded_once(deployment, postgres_outage):
    dep = deployment
    acknowledged, _ = postgres_outage
    for index, proc in dep.workers.items():
        assert proc.poll() is None, f"worker {index} died with the database: {dep.log(f'worker{index}')[-2000:]}"
    for sub_id in acknowledged:
        view = dep.wait_finished(sub_id)
        assert view["status"] == "graded", explain(dep, view)
        assert_graded_once(dep, sub_id)
    assert dep.healthy()


def test_uploads_during_a_database_outage_get_a_clear_503(postgres_outage):
    _, statuses = postgres_outage
    refused = sorted({s for s in statuses if s != 202})
    assert refused == [503], f"uploads during the outage were answered {refused}"


def test_a_handin_that_crashes_the_grader_is_a_grader_error_not_a_zero(deployment):
    """The crash is injected (conftest.FAULT_INJECTION: a sitecustomize in every worker raises for
    handins carrying a marker file): no real handin is known to crash the trusted grader."""
    dep = deployment
    before = dep.sql("SELECT count(*) FROM submissions")[0][0]
    r = dep.upload(grader_crashing_handin())
    assert r.status_code == 202
    view = dep.wait_finished(r.json()["id"])
    assert view["status"] == "error", view
    assert view["score"] is None and view["grader_error"], view
    assert results_of(dep, view["id"]) == []  # no result row, so never a zero on the scoreboard
    attempts, state, last_error = dep.sql("SELECT attempts, state, last_error FROM jobs WHERE submission_id = %s",
                                          view["id"])[0]
    assert (attempts, state) == (int(dep.env["GRADER_MAX_ATTEMPTS"]), "failed")
    assert "injected grader bug" in last_error
    assert dep.sql("SELECT count(*) FROM submissions")[0][0] == before + 1
    listing = httpx.get(f"{dep.base}/api/v1/assessments/{dep.slug}/submissions", headers=dep.auth(),
                        timeout=30).json()
    mine = next(s for s in listing if s["id"] == view["id"])
    assert mine.get("score") is None
