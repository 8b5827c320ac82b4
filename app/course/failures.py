"""Failures across the class: each student's counted submission grouped by the cause of its first
failure (or, for one section, the cause of that section's failure), for TAs before office hours.

A cause is what the grader itself determined, never text the student's code produced: the failing
check's label and how it failed, the file and line where an exception stopped the test, or, when
the code could not be imported (or the section did not run), the section's own message (its file,
line and error as the grader words it), not the "Not run" each of its tests carries. Digits are
kept: "N=1" and "N=7" are different tests, line 12 and line 40 different causes; only values
written with a decimal point (e.g. timings) are blurred, so a cause does not split on them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.course import standings
from app.course.assessments import Assessment
from app.course.submissions import stored_result
from app.store.models import Result, Submission, User
from grader.result import CheckResult, GradeResult, SectionResult, Stopped, TestResult

_DECIMAL = re.compile(r"(?<![\w.])[-+]?\d+\.\d+(?:e[-+]?\d+)?(?![\w.])", re.IGNORECASE)


def blur_decimals(text: str) -> str:
    """TEXT with each decimal value replaced by '#' ("took 31.52 s" -> "took # s"); whole numbers
    (sizes, line numbers, versions) and digits inside names (mlp4.py, MLP0) stay."""
    return _DECIMAL.sub("#", text or "").strip()


class Cause(NamedTuple):
    section: str
    test: str                 # the test's name as the suite names it ("" when the section did not run)
    what: str                 # a check's label and how it failed, where it raised, the import error


@dataclass
class FailureGroup:
    section: str
    test: str
    what: str
    students: list[dict] = field(default_factory=list)   # {"id", "username", "display_name"}, all of them


@dataclass
class ClassFailures:
    groups: list[FailureGroup]   # most students first
    graded: int                  # students with a graded counted submission
    failing: int                 # of them, failing something (in SECTION when one is asked for)
    by_section: dict[str, int]   # section -> students failing it (every section, in the suite's order)
    section: str | None = None   # the section asked for, None for first failures


def how_wrong(check: CheckResult) -> str:
    """A failing check's kind of failure, read from its typed fields (never from its sentence)."""
    if check.got_shape is None:
        return "no usable value"
    if check.worst_index is not None:   # compared entry by entry (wrong or non-finite values)
        return "values differ"
    return "wrong shape"


def where_it_raised(test: TestResult, how: str = "raised an exception") -> str:
    """An exception's typed outcome: where it stopped the test (never its student-written message)."""
    if test.location is None:
        return how
    line = f", line {test.location.line}" if test.location.line else ""
    return f"{how} in {test.location.path}{line}"


def _first_line(text: str | None) -> str:
    return next((line.strip() for line in (text or "").splitlines() if line.strip()), "")


def section_cause(section: SectionResult) -> Cause | None:
    """The cause of a failed SECTION's first failing test; None when it passed."""
    if section.passed:
        return None
    for test in section.tests:
        if test.passed:
            continue
        check = next((c for c in test.checks if not c.passed), None)
        if check is not None:   # from the typed check: "Z = Linear.forward(A): values differ"
            return Cause(section.name, test.name, f"{check.label}: {how_wrong(check)}")
        if test.stopped == Stopped.TIME_LIMIT:   # the line that was running when the time ran out
            return Cause(section.name, test.name, where_it_raised(test, "stopped by the time limit"))
        if test.stopped == Stopped.NOT_REACHED:
            return Cause(section.name, "", "stopped by the time limit before its tests ran")
        if test.error:
            return Cause(section.name, test.name, where_it_raised(test))
        if section.message and (test.stopped == Stopped.IMPORT or test.message.startswith("Not run")):
            # one problem stopped every test (an import error, a time limit): the section says what
            # it was, once, its first line naming the file, the line and the error; grouped by
            # that, not by the "Not run" each test carries
            return Cause(section.name, "", blur_decimals(_first_line(section.message)))
        return Cause(section.name, test.name, blur_decimals(_first_line(test.message or section.message) or "failed"))
    return Cause(section.name, "", blur_decimals(_first_line(section.message) or "failed"))


def first_failure(result: GradeResult, section: str | None = None) -> Cause | None:
    """The cause of a result's first failed section (or of SECTION's failure), None when it passed."""
    for s in result.sections:
        if section is not None and s.name != section:
            continue
        found = section_cause(s)
        if found is not None:
            return found
    return None


def class_failures(session: Session, a: Assessment, section: str | None = None) -> ClassFailures:
    """Every graded counted submission of A grouped by cause (of its first failure, or of SECTION's):
    three queries whatever the class size."""
    counted_ids = list(standings.counted_submissions(session, a).values())
    rows = session.execute(select(Submission.id, User.username, User.display_name, Result.body)
                           .join(User, User.id == Submission.user_id)
                           .join(Result, Result.id == Submission.result_id)
                           .where(Submission.id.in_(counted_ids))).all() if counted_ids else []
    if section is not None and section not in a.sections:
        section = None
    groups: dict[tuple, FailureGroup] = {}
    by_section = dict.fromkeys(a.sections, 0)
    failing = 0
    for sub_id, username, display_name, body in sorted(rows, key=lambda r: r.username):
        result = stored_result(body)
        for s in result.sections:
            if not s.passed and s.name in by_section:
                by_section[s.name] += 1
        found = first_failure(result, section)
        if found is None:
            continue
        failing += 1
        group = groups.setdefault(found, FailureGroup(*found))
        group.students.append({"id": sub_id, "username": username, "display_name": display_name})
    ordered = sorted(groups.values(), key=lambda g: (-len(g.students), list(a.sections).index(g.section)
                                                     if g.section in a.sections else 99, g.test, g.what))
    return ClassFailures(ordered, len(rows), failing, by_section, section)
