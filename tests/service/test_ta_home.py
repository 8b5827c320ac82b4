"""The TA home (issue 20 item 13): per assessment, who submitted and who not yet, the mean counted
total, how many fail something, what waits for the grader, links to failures and similarity; the
queue beside it. The queue page lists real workers only, never the pseudo-worker "reused"."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta

from app.course import submissions
from app.grading import queue
from app.store.models import Result, Submission, User

FAILING = {"assessment": "hw1p1", "score": 60, "max_score": 100, "error": None, "sandbox": "bwrap",
           "unsafe": False, "notes": [], "timings": {},
           "sections": [{"name": "Linear Layer", "score": 0, "max_score": 40, "passed": False, "message": None,
                         "tests": [{"name": "handout case", "passed": False, "message": "wrong values"}]},
                        {"name": "MLP0", "score": 60, "max_score": 60, "passed": True, "message": None,
                         "tests": [{"name": "handout case", "passed": True, "message": ""}]}]}


def submit(service, username: str, slug: str = "open", data: bytes | None = None) -> int:
    with service.db.read_session() as s:
        user = s.query(User).filter_by(username=username).one()
    sub = submissions.create_submission(service.db, service.app.state.assessments[slug], user,
                                        data or f"{username} handin".encode(), "h.tar",
                                        datetime.now(UTC) - timedelta(minutes=5), max_attempts=service.settings.max_attempts)
    return sub.id


def grade_next(service, body: dict, worker: str = "worker-1") -> None:
    claim = queue.claim(service.db, worker, 60)
    assert queue.record_result(service.db, claim, worker, score=body["score"], max_score=100, body=json.dumps(body),
                               handin_error=None)


def fact(page: str, element_id: str) -> str:
    """The text of the element with ELEMENT_ID, tags and spaces squeezed."""
    match = re.search(rf'id="{element_id}">(.*?)</dd>', page, re.DOTALL)
    assert match, f"no #{element_id} on the page"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def test_the_ta_home_shows_each_assessment_at_a_glance(service):
    """Two students: alice graded 60 and failing Linear, bob's upload still waiting for the grader."""
    submit(service, "alice")
    grade_next(service, FAILING)
    submit(service, "bob")
    page = service.get("tina", "/").text
    assert fact(page, "submitted-open") == "2 of 2"
    assert fact(page, "not-yet-open") == "0"
    assert fact(page, "mean-open") == "60.0 / 100"
    assert fact(page, "failing-open") == "1 of 1"
    assert fact(page, "pending-open") == "1"
    assert fact(page, "submitted-late") == "0 of 2" and fact(page, "not-yet-late") == "2"
    assert fact(page, "mean-late") == "—"
    assert fact(page, "home-queued") == "1"
    for link in ("/ta/assessments/open/failures", "/ta/assessments/open/similarity", "/ta/queue",
                 "/ta/assessments/open/handins"):
        assert f'href="{link}"' in page, link


def test_a_student_home_is_not_the_ta_home(service):
    page = service.get("alice", "/").text
    assert 'id="submitted-open"' not in page and "Grading queue" not in page


def test_the_queue_page_does_not_list_the_reused_pseudo_worker(service):
    """A resubmission of identical bytes shows the earlier result again: no worker graded it, so no
    worker called "reused" may appear among the workers."""
    submit(service, "alice", data=b"same bytes")
    grade_next(service, FAILING, worker="worker-1")
    again = submit(service, "alice", data=b"same bytes")
    with service.db.session() as s, s.begin():
        sub = s.get(Submission, again)
        earlier = s.query(Result).order_by(Result.id).first()
        queue.record_reuse(s, sub, earlier, suite="hw1p1")
    page = service.get("tina", "/ta/queue").text
    workers = page.split('id="workers-h"')[1].split("</section>")[0]
    assert "<code>worker-1</code>" in workers
    assert "reused" not in workers
