"""The JSON API end to end, on SQLite and on Postgres: uploads, grading, policy, limits,
extensions, regrades, and authorization across students."""

from __future__ import annotations

import csv
import io
from datetime import UTC

from sqlalchemy import func, select

from app.store.models import Blob, Job, Result, Submission


def test_upload_by_token_is_durable_then_graded(service, good_tar):
    r = service.submit("alice", "open", good_tar)
    assert r.status_code == 202, r.text
    body = r.json()
    assert set(body) >= {"id", "version", "status", "url"}
    assert body["version"] == 1 and body["status"] == "queued"
    # stored before the 202: the row and the blob are there, with a queued job
    with service.db.read_session() as s:
        sub = s.get(Submission, body["id"])
        assert sub.status == "queued" and s.get(Blob, sub.blob_sha256).data == good_tar
        assert s.scalar(select(func.count()).select_from(Job).where(Job.submission_id == sub.id)) == 1
    assert service.drain() == 1
    view = service.get("alice", body["url"]).json()
    assert view["status"] == "graded" and view["score"] == 100 and view["max_score"] == 100
    assert [s["name"] for s in view["sections"]][:2] == ["Linear Layer", "Activation"]
    assert all(s["passed"] for s in view["sections"])
    assert view["unsafe"] is True       # recorded on every result graded without a sandbox
    assert view["policy"]["early_bonus"] == 5 and view["policy"]["assessment_total"] == 105
    assert view["policy"]["counts"] is True and view["policy"]["late_penalty"] == 0
    ts = view["timestamps"]
    assert ts["received"] and ts["queued"] and ts["started"] and ts["finished"]


def test_error_bodies(service, good_tar, tiny_tar):
    r = service.client.post("/api/v1/assessments/open/submissions", files={"handin": ("h.tar", good_tar)})
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    r = service.client.post("/api/v1/assessments/open/submissions", headers={"Authorization": "Bearer nope"},
                            files={"handin": ("h.tar", good_tar)})
    assert r.status_code == 401
    r = service.submit("alice", "open", b"just some text, not an archive")
    assert r.status_code == 422 and r.json()["error"] == "not_archive" and r.json()["message"]
    r = service.submit("alice", "open", b"\x00" * 1024)
    assert r.status_code == 422
    r = service.submit("alice", "capped", good_tar)      # cap is 20000 bytes
    assert r.status_code == 413 and r.json()["error"] == "too_large"
    r = service.submit("alice", "closed", tiny_tar)
    assert r.status_code == 403 and "closed" in r.json()["message"]
    r = service.submit("alice", "future", tiny_tar)
    assert r.status_code == 403 and "opens" in r.json()["message"]
    r = service.submit("alice", "nope", tiny_tar)
    assert r.status_code == 404
    r = service.post("alice", "/api/v1/assessments/open/submissions", data={"x": "1"})
    assert r.status_code == 422
    with service.db.read_session() as s:   # nothing refused was stored
        assert s.scalar(select(func.count()).select_from(Submission)) == 0


def test_late_submission_penalty_and_no_bonus(service, good_tar):
    r = service.submit("alice", "late", good_tar)    # due 1.5 days ago: 2 days late
    assert r.status_code == 202
    service.drain()
    view = service.get("alice", r.json()["url"]).json()
    assert view["score"] == 100
    assert view["policy"]["late_days"] == 2 and view["policy"]["late_penalty"] == 20
    assert view["policy"]["early_bonus"] == 0 and view["policy"]["assessment_total"] == 80


def test_limits_and_interval(service, tiny_tar):
    assert service.submit("alice", "limited", tiny_tar).status_code == 202
    assert service.submit("alice", "limited", tiny_tar).status_code == 202
    r = service.submit("alice", "limited", tiny_tar)
    assert r.status_code == 403 and "all 2 submissions" in r.json()["message"]
    assert service.submit("bob", "limited", tiny_tar).status_code == 202   # limits are per student
    assert service.submit("alice", "interval", tiny_tar).status_code == 202
    r = service.submit("alice", "interval", tiny_tar)
    assert r.status_code == 403 and "wait" in r.json()["message"].lower()


class BrokenExecutor:
    """Fault injection: the grading infrastructure fails (not the student's fault)."""
    name, unsafe, slots = "broken", True, 1

    def run(self, *args):
        raise OSError("the sandbox host is out of disk")


def test_grader_error_is_retried_never_a_zero_and_not_counted(service, tiny_tar):
    r = service.submit("alice", "limited", tiny_tar)
    assert service.submit("alice", "limited", tiny_tar).status_code == 202
    assert service.drain(BrokenExecutor()) == 2 * service.settings.max_attempts   # retried
    view = service.get("alice", r.json()["url"]).json()
    assert view["status"] == "error" and view["score"] is None and view["grader_error"]
    assert view["attempts"] == service.settings.max_attempts
    # neither errored submission counts against max_submissions = 2
    assert service.submit("alice", "limited", tiny_tar).status_code == 202
    assert service.submit("alice", "limited", tiny_tar).status_code == 202
    assert service.submit("alice", "limited", tiny_tar).status_code == 403


def test_handin_the_grader_cannot_unpack_is_graded_zero_with_the_reason(service):
    from datetime import datetime

    from app.course import submissions
    from app.store.models import User

    with service.db.read_session() as s:
        alice = s.scalar(select(User).where(User.username == "alice"))
    a = service.app.state.assessments["open"]
    sub = submissions.create_submission(service.db, a, alice, b"not an archive", "x.tar", datetime.now(UTC),
                                        max_attempts=service.settings.max_attempts)
    service.drain()
    view = service.get("alice", f"/api/v1/submissions/{sub.id}").json()
    assert view["status"] == "graded" and view["score"] == 0 and "not a tar" in view["handin_error"]


def test_dedup_and_versions(service, tiny_tar):
    ids = [service.submit("alice", "open", tiny_tar).json() for _ in range(3)]
    assert [x["version"] for x in ids] == [1, 2, 3]
    assert service.submit("bob", "open", tiny_tar).json()["version"] == 1
    with service.db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(Blob)) == 1


def test_extension_reopens_for_one_student(service, tiny_tar):
    assert service.submit("alice", "closed", tiny_tar).status_code == 403
    r = service.client.put("/api/v1/assessments/closed/extensions/alice", json={"days": 4},
                           headers=service.auth("tina"))
    assert r.status_code == 200
    r = service.client.put("/api/v1/assessments/closed/extensions/alice", json={"days": 4},
                           headers=service.auth("bob"))
    assert r.status_code == 403
    r = service.submit("alice", "closed", tiny_tar)
    assert r.status_code == 202
    assert service.submit("bob", "closed", tiny_tar).status_code == 403
    service.drain()
    view = service.get("alice", r.json()["url"]).json()
    assert view["policy"]["late_days"] == 0   # due moved by 4 days too: on time


def test_cross_student_authorization(service, tiny_tar):
    mine = service.submit("alice", "open", tiny_tar).json()
    service.drain()
    url = mine["url"]
    assert service.get("alice", url).status_code == 200
    for path in (url, url + "/handin"):
        r = service.get("bob", path)
        assert r.status_code == 404 and "alice" not in r.text
    assert service.get("bob", "/api/v1/assessments/open/submissions").json() == []
    assert service.get("bob", "/api/v1/assessments/open/submissions",
                       params={"user_name": "alice"}).json() == []
    assert service.post("bob", f"{url}/regrade").status_code == 403
    assert service.post("bob", "/api/v1/assessments/open/regrade").status_code == 403
    assert service.get("bob", "/api/v1/assessments/open/gradebook.csv").status_code == 403
    assert service.get("bob", "/api/v1/queue").status_code == 403
    board = service.get("bob", "/api/v1/assessments/open/scoreboard").json()
    assert len(board) == 1 and "username" not in board[0] and "alice" not in str(board)
    # the TA sees everything, with names
    assert service.get("tina", url).json()["user"]["username"] == "alice"
    assert service.get("tina", url + "/handin").content == tiny_tar
    board = service.get("tina", "/api/v1/assessments/open/scoreboard").json()
    assert board[0]["username"] == "alice" and board[0]["submissions"] == 1


def test_scoreboard_gradebook_and_best(service, good_tar, partial_tar):
    service.submit("alice", "best", good_tar)
    service.submit("alice", "best", partial_tar)
    service.submit("bob", "open", partial_tar)
    service.drain()
    board = service.get("tina", "/api/v1/assessments/best/scoreboard").json()
    assert board[0]["username"] == "alice" and board[0]["score"] == 100 and board[0]["submissions"] == 2
    text = service.get("tina", "/api/v1/assessments/open/gradebook.csv").text
    rows = {r["username"]: r for r in csv.DictReader(io.StringIO(text))}
    assert rows["bob"]["total"] == "90" and rows["bob"]["SGD"] == "0" and rows["bob"]["Batch Norm"] == "20"
    assert rows["alice"]["total"] == "0" and rows["alice"]["submissions"] == "0"
    assert "tina" not in rows


def test_regrades_go_to_the_queue_below_live_work(service, tiny_tar, good_tar):
    from app.grading import queue

    first = service.submit("alice", "open", tiny_tar).json()
    service.drain()
    r = service.post("tina", f"{first['url']}/regrade")
    assert r.status_code == 202 and r.json() == {"queued": 1}
    assert service.post("tina", f"{first['url']}/regrade").json() == {"queued": 0}  # already queued
    live = service.submit("bob", "open", good_tar).json()
    claim = queue.claim(service.db, "probe", 30)
    assert claim.submission_id == live["id"]          # live work first, although queued later
    queue.record_failure(service.db, claim, "probe", "probe released it")
    service.drain()
    view = service.get("alice", first["url"]).json()
    assert view["status"] == "graded" and not view["regrading"]
    with service.db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(Result).where(Result.submission_id == first["id"])) == 2
    assert service.post("tina", "/api/v1/assessments/open/regrade").json() == {"queued": 2}
    health = service.get("tina", "/api/v1/queue").json()
    assert health["queued"] == 2 and health["oldest_queued_seconds"] is not None
    service.drain()
    assert service.get("tina", "/api/v1/queue").json()["queued"] == 0


def test_form_upload_with_session_cookie_and_csrf(service, tiny_tar):
    c = service.client
    assert c.post("/api/v1/login", json={"username": "alice", "password": "wrong"}).status_code == 401
    r = c.post("/api/v1/login", json={"username": "alice", "password": "alice-password"})
    assert r.status_code == 200
    csrf = r.json()["csrf_token"]
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    url = "/api/v1/assessments/open/submissions"
    r = c.post(url, files={"handin": ("handin.tar", tiny_tar)})
    assert r.status_code == 403 and r.json()["error"] == "csrf"       # no token: refused
    r = c.post(url, files={"handin": ("handin.tar", tiny_tar)}, data={"csrf_token": "forged"})
    assert r.status_code == 403
    r = c.post(url, files={"handin": ("handin.tar", tiny_tar)}, data={"csrf_token": csrf})
    assert r.status_code == 202, r.text
    assert c.get("/api/v1/me").json()["user"]["username"] == "alice"
    r = c.post("/api/v1/tokens", json={"name": "laptop"}, headers={"X-CSRF-Token": csrf})
    token = r.json()["token"]
    c.post("/api/v1/logout", headers={"X-CSRF-Token": csrf})
    c.cookies.clear()
    assert c.get("/api/v1/me").status_code == 401
    bearer = {"Authorization": f"Bearer {token}"}
    assert c.get("/api/v1/me", headers=bearer).status_code == 200
    tid = r.json()["id"]
    assert c.delete(f"/api/v1/tokens/{tid}", headers=service.auth("bob")).status_code == 404
    assert c.delete(f"/api/v1/tokens/{tid}", headers=bearer).status_code == 200
    assert c.get("/api/v1/me", headers=bearer).status_code == 401      # revoked


def test_login_is_rate_limited(service):
    codes = [service.client.post("/api/v1/login", json={"username": "bob", "password": "x" * 8}).status_code
             for _ in range(service.settings.login_attempts_per_minute + 1)]
    assert codes[-1] == 429 and set(codes[:-1]) == {401}


def test_assessment_list_shows_deadlines_in_the_course_zone(service):
    found = {a["slug"]: a for a in service.get("alice", "/api/v1/assessments").json()}
    assert found["open"]["timezone"] == "America/New_York"
    assert found["open"]["due"].endswith(("-05:00", "-04:00"))


def test_handout_script_and_docs(service):
    r = service.client.get("/handout/create_tarball.sh", params={"assessment": "open"})
    assert r.status_code == 200 and "GRADER_TOKEN" in r.text and "assessments/$SLUG/submissions" in r.text
    assert "--exclude='__pycache__'" in r.text
    assert service.client.get("/openapi.json").json()["paths"]["/api/v1/assessments/{slug}/submissions"]


def test_uploads_are_rate_limited(settings, tiny_tar):
    from .conftest import Service

    svc = Service(settings.model_copy(update={"uploads_per_minute": 2}))
    try:
        codes = [svc.submit("alice", "open", tiny_tar).status_code for _ in range(3)]
        assert codes == [202, 202, 429]
        r = svc.submit("alice", "open", tiny_tar)
        assert r.json()["error"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
        assert svc.submit("bob", "open", tiny_tar).status_code == 202     # per student
    finally:
        svc.client.close()
        svc.db.dispose()
