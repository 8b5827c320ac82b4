"""Failures across the class: each student's counted submission grouped by its first failing test
and the typed outcome of that failure, for TAs before office hours.

Groups are keyed by what the grader itself determined (the failing check's label and how it failed,
or the file and line where an exception stopped the test), never by text the student's code produced:
an exception message is free text, and a crash printing a copy of a real failure line was grouped
under that failure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.course import standings
from app.course.assessments import Assessment
from app.course.submissions import stored_result
from app.store.models import Result, Submission, User
from grader.result import CheckResult, GradeResult, TestResult

_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?", re.IGNORECASE)
EXAMPLES = 5


def shape_of(text: str) -> str:
    """TEXT with every number replaced by '#': "N=4, Linear(5, 4)" -> "N=#, Linear(#, #)"."""
    return _NUMBER.sub("#", text or "").strip()


@dataclass
class FailureGroup:
    section: str
    test: str                 # the test's name, numbers normalised
    what: str                 # the failure: a check's label and sentence, or the exception's last line
    students: int = 0
    examples: list[dict] = field(default_factory=list)   # {"id", "username", "display_name"}


def how_wrong(check: CheckResult) -> str:
    """A failing check's kind of failure, read from its typed fields (never from its sentence)."""
    if check.got_shape is None:
        return "no usable value"
    if check.worst_index is not None:   # compared entry by entry (wrong or non-finite values)
        return "values differ"
    return "wrong shape"


def where_it_raised(test: TestResult) -> str:
    """An exception's typed outcome: where it stopped the test (never its student-written message)."""
    if test.location is None:
        return "raised an exception"
    line = f", line {test.location.line}" if test.location.line else ""
    return f"raised an exception in {test.location.path}{line}"


def first_failure(result: GradeResult) -> tuple[str, str, str] | None:
    """(section, test, what) for a result's first failing test, or None when everything passed."""
    for section in result.sections:
        if section.passed:
            continue
        for test in section.tests:
            if test.passed:
                continue
            check = next((c for c in test.checks if not c.passed), None)
            if check is not None:   # from the typed check: "Z = Linear.forward(A): values differ"
                what = f"{check.label}: {how_wrong(check)}"
            elif test.error:
                return section.name, shape_of(test.name), where_it_raised(test)
            else:
                what = (test.message or section.message or "failed").strip().splitlines()[0]
            return section.name, shape_of(test.name), shape_of(what)
        return section.name, "", shape_of(section.message or "failed")
    return None


def class_failures(session: Session, a: Assessment) -> tuple[list[FailureGroup], int]:
    """Groups, most students first, and how many students have a graded counted submission."""
    counted_ids = list(standings.counted_submissions(session, a).values())
    counted = {sub_id: user for sub_id, user in session.execute(
        select(Submission.id, User).join(User, User.id == Submission.user_id)
        .where(Submission.id.in_(counted_ids)))} if counted_ids else {}
    groups: dict[tuple, FailureGroup] = {}
    rows = session.execute(select(Submission.id, Result.body)
                           .join(Result, Result.id == Submission.result_id)
                           .where(Submission.id.in_(list(counted)))).all() if counted else []
    for sub_id, body in sorted(rows):
        found = first_failure(stored_result(body))
        if found is None:
            continue
        group = groups.setdefault(found, FailureGroup(*found))
        group.students += 1
        if len(group.examples) < EXAMPLES:
            user = counted[sub_id]
            group.examples.append({"id": sub_id, "username": user.username, "display_name": user.display_name})
    return sorted(groups.values(), key=lambda g: (-g.students, g.section, g.test)), len(counted)
