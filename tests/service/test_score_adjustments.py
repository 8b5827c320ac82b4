"""A TA's points adjustment of one submission (issue 20 item 11): stored with who and when, shown to
the student with its comment (never its reason), in the total, the standings and the gradebook's own
column; out-of-bounds values, another assessment's submission and students are refused, each tried
as an attack."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from app.course import submissions
from app.grading import queue
from app.store.models import ScoreAdjustment, User

BODY = {"assessment": "hw1p1", "score": 60, "max_score": 100, "error": None, "sandbox": "bwrap",
        "unsafe": False, "notes": [], "timings": {},
        "sections": [{"name": "Linear Layer", "score": 0, "max_score": 40, "passed": False, "message": None,
                      "tests": [{"name": "handout case", "passed": False, "message": "wrong values"}]},
                     {"name": "MLP0", "score": 60, "max_score": 60, "passed": True, "message": None,
                      "tests": [{"name": "handout case", "passed": True, "message": ""}]}]}


def graded(service, username: str, slug: str = "open", score: int = 60, ago_minutes: int = 30) -> int:
    """A submission of USERNAME to SLUG, graded SCORE/100 (recorded as a worker records it)."""
    with service.db.read_session() as s:
        user = s.query(User).filter_by(username=username).one()
    a = service.app.state.assessments[slug]
    sub = submissions.create_submission(service.db, a, user, f"{username} {score} {ago_minutes}".encode(), "h.tar",
                                        datetime.now(UTC) - timedelta(minutes=ago_minutes), max_attempts=service.settings.max_attempts)
    claim = queue.claim(service.db, "test", 60)
    assert queue.record_result(service.db, claim, "test", score=score, max_score=100,
                               body=json.dumps({**BODY, "score": score}), handin_error=None)
    return sub.id


def put(service, who: str, slug: str, sub_id: int, **body):
    return service.client.put(f"/api/v1/assessments/{slug}/submissions/{sub_id}/adjustment",
                              headers=service.auth(who), json=body)


def stored(service) -> list[ScoreAdjustment]:
    with service.db.read_session() as s:
        return list(s.query(ScoreAdjustment).order_by(ScoreAdjustment.id))


def login(service, name: str) -> tuple[TestClient, str]:
    client = TestClient(service.app, follow_redirects=False)
    form = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    r = client.post("/login", data={"username": name, "password": f"{name}-password", "next": "/",
                                    "csrf_token": token})
    assert r.status_code == 303, r.text
    return client, client.get("/api/v1/me").json()["csrf_token"]


def test_an_adjustment_is_in_the_students_total_the_standings_and_the_gradebook(service):
    sub_id = graded(service, "alice", score=60)
    r = put(service, "tina", "open", sub_id, points=3, reason="regrade request: MLP0 shape note",
            comment="Your Linear layer was right in spirit; +3.")
    assert r.status_code == 200, r.text
    assert r.json()["by"] == "tina" and r.json()["points"] == 3

    mine = service.get("alice", f"/api/v1/submissions/{sub_id}").json()
    assert mine["policy"]["assessment_total"] == 63 and mine["policy"]["adjustment"] == 3
    assert mine["adjustment"] == {"points": 3, "comment": "Your Linear layer was right in spirit; +3."}
    assert "reason" not in json.dumps(mine["adjustment"])   # the reason is for the staff

    board = service.get("alice", "/api/v1/assessments/open/scoreboard").json()
    assert [(row["score"], row["adjustment"]) for row in board] == [(63, 3)]
    rows = list(csv.DictReader(io.StringIO(service.get("tina", "/api/v1/assessments/open/gradebook.csv").text)))
    alice = next(row for row in rows if row["username"] == "alice")
    assert (alice["total"], alice["raw"], alice["adjustment"]) == ("63", "60", "3")

    # a second change replaces the first; both stay, with who and when, for the staff
    assert put(service, "tina", "open", sub_id, points=-5, reason="copied MLP0 from the handout").status_code == 200
    staff_view = service.get("tina", f"/api/v1/submissions/{sub_id}").json()
    assert staff_view["policy"]["assessment_total"] == 55
    assert [(c["points"], c["by"]) for c in staff_view["adjustment_history"]] == [(-5, "tina"), (3, "tina")]
    assert all(c["at"] for c in staff_view["adjustment_history"])
    assert [(x.points, x.created_by is not None) for x in stored(service)] == [(3, True), (-5, True)]


def test_an_adjustment_can_change_which_submission_counts_under_best(service):
    first = graded(service, "alice", "best", score=60, ago_minutes=30)
    second = graded(service, "alice", "best", score=62, ago_minutes=20)
    assert put(service, "tina", "best", first, points=5, reason="late-discovered grader bug").status_code == 200
    view = service.get("alice", f"/api/v1/submissions/{first}").json()
    assert view["policy"]["counts"] and view["policy"]["assessment_total"] == 65
    assert not service.get("alice", f"/api/v1/submissions/{second}").json()["policy"]["counts"]


@pytest.mark.parametrize("points", [41, -61])
def test_an_adjustment_out_of_bounds_is_refused(service, points):
    """60/100: the submission's part must stay within 0 and 100, so +41 and -61 are refused."""
    sub_id = graded(service, "alice", score=60)
    r = put(service, "tina", "open", sub_id, points=points, reason="typo")
    assert r.status_code == 400 and r.json()["error"] == "refused", r.text
    assert "between -60 and +40" in r.json()["message"]
    assert stored(service) == []


def test_an_adjustment_without_a_reason_is_refused(service):
    sub_id = graded(service, "alice")
    r = put(service, "tina", "open", sub_id, points=2, reason="   ")
    assert r.status_code == 400 and stored(service) == []


def test_adjusting_another_assessments_submission_through_this_one_is_refused(service):
    """The slug in the address must be the submission's own: a TA working on 'late' cannot reach an
    'open' submission through it, nor one of an assessment this server does not host."""
    sub_id = graded(service, "alice", "open")
    assert put(service, "tina", "late", sub_id, points=2, reason="wrong course").status_code == 404
    assert put(service, "tina", "other-course", sub_id, points=2, reason="wrong course").status_code == 404
    client, csrf = login(service, "tina")
    r = client.post(f"/ta/assessments/late/submissions/{sub_id}/adjustment",
                    data={"csrf_token": csrf, "points": "2", "reason": "wrong course"})
    assert r.status_code == 404
    assert stored(service) == []


def test_a_student_putting_an_adjustment_through_the_api_is_refused(service):
    sub_id = graded(service, "alice")
    r = put(service, "alice", "open", sub_id, points=40, reason="I deserve it")
    assert r.status_code == 403
    assert stored(service) == []
    assert service.get("alice", f"/api/v1/submissions/{sub_id}").json()["policy"]["assessment_total"] == 60


def test_a_student_posting_the_adjustment_form_is_refused(service):
    """With her own session and its valid CSRF token: the role, not the token, decides."""
    sub_id = graded(service, "alice")
    client, csrf = login(service, "alice")
    r = client.post(f"/ta/assessments/open/submissions/{sub_id}/adjustment",
                    data={"csrf_token": csrf, "points": "40", "reason": "I deserve it", "comment": "yes"})
    assert r.status_code == 403
    assert stored(service) == []
    page = client.get(f"/submissions/{sub_id}").text
    assert "Adjust the score" not in page


def test_the_form_redirects_back_and_the_page_shows_the_change_and_its_history(service):
    sub_id = graded(service, "alice")
    client, csrf = login(service, "tina")
    r = client.post(f"/ta/assessments/open/submissions/{sub_id}/adjustment",
                    data={"csrf_token": csrf, "points": "4", "reason": "partial credit for MLP0",
                          "comment": "Partial credit: the shapes were right."})
    assert r.status_code == 303 and r.headers["location"].startswith(f"/submissions/{sub_id}?shown=")
    page = client.get(r.headers["location"]).text
    assert "Adjustment of +4 point(s) saved." in page and "partial credit for MLP0" in page
    assert "Adjustment of +4" not in client.get(r.headers["location"]).text   # shown once
    r = client.post(f"/ta/assessments/open/submissions/{sub_id}/adjustment",
                    data={"csrf_token": csrf, "points": "99", "reason": "too much"})
    assert "between -60 and +40" in client.get(r.headers["location"]).text

    student, _ = login(service, "alice")
    mine = student.get(f"/submissions/{sub_id}").text
    assert "Partial credit: the shapes were right." in mine and "+4" in mine
    assert "partial credit for MLP0" not in mine   # the reason stays with the staff
