"""Every state a row can be in, the moves allowed between them, and what the states mean.

The one source of these values: the tables' CHECK constraints, the queue, the pages (Jinja
globals), app.js (data attributes the pages render from here), style.css (a test keeps its
`.status-*` rules equal to SubmissionStatus) and the served handout script take them from here;
tests/test_states.py fails on a state written as a string literal anywhere else.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import TypeVar


class SubmissionStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    GRADED = "graded"
    ERROR = "error"       # the grader failed (not the student): never a zero, never counted

    @property
    def is_pending(self) -> bool:
        return self in PENDING_SUBMISSION

    @property
    def is_final(self) -> bool:
        return not self.is_pending


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"         # a result is recorded
    FAILED = "failed"     # out of attempts; no result

    @property
    def is_pending(self) -> bool:
        return self in PENDING_JOB

    @property
    def is_final(self) -> bool:
        return not self.is_pending


class JobKind(StrEnum):
    SUBMIT = "submit"     # a student's upload
    REGRADE = "regrade"   # a TA's regrade (lower priority)
    REUSE = "reuse"       # an identical resubmission shown the earlier result (born done)


class LinkPurpose(StrEnum):
    """What a one-time account link (store.models.AccountLink) sets a password for."""
    ACTIVATION = "activation"            # a new account's first password (roster import, "new link")
    PASSWORD_RESET = "password_reset"    # a TA's reset for a student who forgot theirs (expires)


class ReportState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"   # shown, never stored: pending, but its process stopped reporting

    @property
    def is_pending(self) -> bool:
        return self in (ReportState.QUEUED, ReportState.RUNNING)

    @property
    def is_final(self) -> bool:
        return not self.is_pending


PENDING_SUBMISSION = (SubmissionStatus.QUEUED, SubmissionStatus.RUNNING)
FINAL_SUBMISSION = (SubmissionStatus.GRADED, SubmissionStatus.ERROR)
PENDING_JOB = (JobState.QUEUED, JobState.RUNNING)
FINAL_JOB = (JobState.DONE, JobState.FAILED)

# state -> the states it may move to (staying put is always allowed).
SUBMISSION_MOVES: dict[SubmissionStatus, frozenset[SubmissionStatus]] = {
    # claimed; or graded by a late result / a reused one; or failed while queued after a reap
    SubmissionStatus.QUEUED: frozenset({SubmissionStatus.RUNNING, SubmissionStatus.GRADED, SubmissionStatus.ERROR}),
    # result; grader error out of attempts (or a failed regrade keeping its result); a retry
    SubmissionStatus.RUNNING: frozenset({SubmissionStatus.GRADED, SubmissionStatus.ERROR, SubmissionStatus.QUEUED}),
    SubmissionStatus.GRADED: frozenset({SubmissionStatus.QUEUED}),   # regrade
    SubmissionStatus.ERROR: frozenset({SubmissionStatus.QUEUED}),    # regrade
}
JOB_MOVES: dict[JobState, frozenset[JobState]] = {
    # claimed; or a result recorded by a worker whose lease had expired and been re-queued
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.DONE}),
    # result; out of attempts; lease expired or a grader error with attempts left
    JobState.RUNNING: frozenset({JobState.DONE, JobState.FAILED, JobState.QUEUED}),
    JobState.DONE: frozenset(),
    JobState.FAILED: frozenset(),
}
REPORT_MOVES: dict[ReportState, frozenset[ReportState]] = {
    ReportState.QUEUED: frozenset({ReportState.RUNNING, ReportState.FAILED}),
    ReportState.RUNNING: frozenset({ReportState.DONE, ReportState.FAILED}),
    ReportState.DONE: frozenset(),
    ReportState.FAILED: frozenset(),
    ReportState.INTERRUPTED: frozenset(),
}
STORED_REPORT_STATES = tuple(s for s in ReportState if s != ReportState.INTERRUPTED)
_MOVES = {SubmissionStatus: SUBMISSION_MOVES, JobState: JOB_MOVES, ReportState: REPORT_MOVES}


class IllegalMove(RuntimeError):
    """A state change the tables above do not allow: a bug, never a user's doing."""


S = TypeVar("S", "SubmissionStatus", "JobState", "ReportState")


def move(current: str, new: S) -> S:
    """NEW, after checking that a row in state CURRENT may move there."""
    kind = type(new)
    old = kind(current)
    if old != new and new not in _MOVES[kind][old]:
        raise IllegalMove(f"{kind.__name__}: {old} -> {new} is not an allowed move")
    return new


def check_sql(column: str, states: Iterable[StrEnum]) -> str:
    """The CHECK constraint's SQL: COLUMN holds one of STATES' values."""
    return f"{column} IN ({', '.join(repr(str(s)) for s in states)})"
