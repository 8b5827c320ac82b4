"""A list of submissions costs a fixed number of SQL statements, whatever its length (no N+1):
counted with SQLAlchemy's cursor events on the real engine, for 3 rows and for 30."""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from app.course import submissions
from app.grading import queue
from app.store.models import User

BODY = {"assessment": "hw1p1", "score": 15, "max_score": 100, "error": None, "sandbox": "bwrap",
        "unsafe": False, "notes": [], "timings": {},
        "sections": [{"name": "Linear Layer", "score": 15, "max_score": 15, "passed": True, "message": None,
                      "tests": [{"name": "handout case", "passed": True, "message": ""}]}]}


def add_graded(service, username: str, n: int) -> None:
    with service.db.read_session() as s:
        user = s.query(User).filter_by(username=username).one()
    a = service.app.state.assessments["open"]
    start = datetime.now(UTC) - timedelta(hours=1)
    for i in range(n):
        submissions.create_submission(service.db, a, user, f"handin {i}".encode(), "h.tar",
                                      start + timedelta(seconds=i), max_attempts=service.settings.max_attempts)
        claim = queue.claim(service.db, "test", 60)
        assert queue.record_result(service.db, claim, "test", score=15, max_score=100, body=json.dumps(BODY),
                                   handin_error=None)


@contextmanager
def statements(engine):
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def cost(service, who: str, url: str) -> int:
    with statements(service.db.engine) as seen:
        r = service.get(who, url)
    assert r.status_code == 200, r.text
    return len(seen)


@pytest.mark.parametrize("who, url", [
    ("alice", "/assessments/open/mine"),                  # the student's list (the page polls it)
    ("alice", "/api/v1/assessments/open/submissions"),    # the same list over the API
    ("tina", "/api/v1/assessments/open/submissions"),     # a TA's: every student's, with names
])
def test_a_list_of_submissions_costs_the_same_for_3_rows_and_30(service, who, url):
    add_graded(service, "alice", 3)
    few = cost(service, who, url)
    add_graded(service, "alice", 27)
    many = cost(service, who, url)
    assert many == few, f"{few} statements for 3 rows, {many} for 30"


def add_students_with_a_grade(service, first: int, count: int) -> None:
    """COUNT more students, each with one graded submission (half failing a section)."""
    from app.auth import admin

    a = service.app.state.assessments["open"]
    failing = {**BODY, "score": 0, "sections": [{**BODY["sections"][0], "score": 0, "passed": False,
                                                  "tests": [{"name": "handout case", "passed": False,
                                                             "message": "wrong values"}]}]}
    for i in range(first, first + count):
        admin.add_user(service.db, f"s{i:03d}", "student", None)
        with service.db.read_session() as s:
            user = s.query(User).filter_by(username=f"s{i:03d}").one()
        submissions.create_submission(service.db, a, user, f"handin of {i}".encode(), "h.tar",
                                      datetime.now(UTC) - timedelta(minutes=5),
                                      max_attempts=service.settings.max_attempts)
        claim = queue.claim(service.db, "test", 60)
        body = failing if i % 2 else BODY
        assert queue.record_result(service.db, claim, "test", score=body["score"], max_score=100,
                                   body=json.dumps(body), handin_error=None)


@pytest.mark.parametrize("url", [
    "/ta/assessments/open/scoreboard",            # the TA scoreboard page
    "/api/v1/assessments/open/scoreboard",        # the scoreboard over the API
    "/api/v1/assessments/open/gradebook.csv",     # the gradebook
    "/ta/assessments/open/failures",              # failures grouped across the class
    "/ta/assessments/open/failures?section=Linear%20Layer",   # the same, for one section
    "/",                                          # the TA home: every assessment at a glance
])
def test_a_class_list_costs_the_same_for_5_students_and_50(service, url):
    add_students_with_a_grade(service, 0, 5)
    few = cost(service, "tina", url)
    add_students_with_a_grade(service, 5, 45)
    many = cost(service, "tina", url)
    assert many == few, f"{few} statements for 5 students, {many} for 50"
