"""The course's rules as pure functions of times and scores: deadlines, late penalty, early bonus,
submission limits and which submission counts.

All times are timezone-aware datetimes; they are compared in UTC after truncation to the whole
second, so a deadline is inclusive to the second (23:59:00.999 is still 23:59:00). No database,
no clock: the caller passes `now` (the server's receive time).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Rules:
    """One assessment's rules (see assessments/hw1p1.toml)."""
    release: datetime
    early: datetime | None
    due: datetime
    last_accepted: datetime
    max_score: int
    early_bonus: int = 0
    late_penalty_percent_per_day: float = 0.0   # of max_score, per started day after due
    max_submissions: int = 0                    # 0: unlimited
    min_interval_seconds: int = 0
    counts: Literal["latest", "best", "chosen"] = "latest"


@dataclass(frozen=True)
class Deadlines:
    """A student's own deadlines: the rules' ones moved by their extension."""
    release: datetime
    early: datetime | None
    due: datetime
    last_accepted: datetime


@dataclass(frozen=True)
class Attempt:
    """What the policy needs to know about one earlier submission."""
    received_at: datetime
    score: int | None = None          # raw grader score, None until graded
    graded: bool = False              # a result exists (including "handin could not be graded")
    grader_error: bool = False        # the grader failed: counts against nothing
    ident: int = 0
    adjustment: int = 0               # a TA's points adjustment in force (app.course.adjustments)


@dataclass(frozen=True)
class Choice:
    """The submission a student marked as the one that counts (counts = "chosen"), and when."""
    ident: int
    at: datetime


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""                  # one sentence for the student when refused


@dataclass(frozen=True)
class Standing:
    """The score that counts for one student, with its parts shown separately."""
    counted: Attempt | None
    raw: int = 0
    late_days: int = 0
    late_penalty: int = 0
    early_bonus: int = 0
    adjustment: int = 0               # the counted submission's, included in total
    total: int = 0
    notes: list[str] = field(default_factory=list)


def _sec(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("policy times must be timezone-aware")
    return t.astimezone(UTC).replace(microsecond=0)


def deadlines_for(rules: Rules, extension_seconds: int = 0) -> Deadlines:
    """An extension moves both the due date and the last accepted moment (not the early one)."""
    shift = timedelta(seconds=extension_seconds)
    return Deadlines(rules.release, rules.early, rules.due + shift, rules.last_accepted + shift)


def on_or_before(t: datetime, deadline: datetime) -> bool:
    return _sec(t) <= _sec(deadline)


def late_days(received: datetime, d: Deadlines) -> int:
    """0 when on time; otherwise every started 24 hours after the due moment is one day."""
    late = _sec(received) - _sec(d.due)
    if late <= timedelta(0):
        return 0
    return math.ceil(late / DAY)


def late_penalty(received: datetime, d: Deadlines, rules: Rules, raw: int) -> int:
    """Points taken off a late submission's raw score (never below zero)."""
    days = late_days(received, d)
    if not days:
        return 0
    return min(raw, math.ceil(days * rules.late_penalty_percent_per_day * rules.max_score / 100))


def _fmt(t: datetime, tz) -> str:
    return t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def may_submit(now: datetime, d: Deadlines, rules: Rules, earlier: Sequence[Attempt], tz=UTC
               ) -> Decision:
    """Whether an upload received at NOW is accepted. Submissions that ended in a grader error
    count against neither the limit nor the interval."""
    if _sec(now) < _sec(d.release):
        return Decision(False, f"This assessment opens at {_fmt(d.release, tz)}.")
    if not on_or_before(now, d.last_accepted):
        return Decision(False, "Submissions closed at "
                               f"{_fmt(d.last_accepted, tz)}, the last moment late work is accepted.")
    counting = [a for a in earlier if not a.grader_error]
    if rules.max_submissions and len(counting) >= rules.max_submissions:
        return Decision(False, f"You have used all {rules.max_submissions} submissions for this assessment.")
    if rules.min_interval_seconds and counting:
        last = max(_sec(a.received_at) for a in counting)
        wait = last + timedelta(seconds=rules.min_interval_seconds) - _sec(now)
        if wait > timedelta(0):
            return Decision(False, f"Please wait {math.ceil(wait.total_seconds())} more seconds: at most one "
                                   f"submission every {rules.min_interval_seconds} seconds.")
    return Decision(True)


def early_bonus(attempts: Sequence[Attempt], d: Deadlines, rules: Rules) -> int:
    """The bonus is earned once any submission received on or before the early deadline scored
    full marks, and it stays whichever submission counts later."""
    if not rules.early_bonus or d.early is None:
        return 0
    for a in attempts:
        if a.graded and a.score == rules.max_score and on_or_before(a.received_at, d.early):
            return rules.early_bonus
    return 0


def counted(attempts: Sequence[Attempt], d: Deadlines, rules: Rules, choice: Choice | None = None
            ) -> Attempt | None:
    """Latest graded submission, or the best by score after late penalty and any TA adjustment
    (ties: the latest), or
    (counts = "chosen") the one the student chose, until they upload again after choosing it."""
    graded = [a for a in attempts if a.graded and not a.grader_error]
    if not graded:
        return None
    by_time = sorted(graded, key=lambda a: (_sec(a.received_at), a.ident))
    if rules.counts == "chosen" and choice is not None:
        chosen = next((a for a in graded if a.ident == choice.ident), None)
        # to the microsecond, not the second: an upload right after the choice is after it
        uploaded_since = any(a.received_at > choice.at for a in attempts if not a.grader_error)
        if chosen is not None and not uploaded_since:
            return chosen
    if rules.counts in ("latest", "chosen"):
        return by_time[-1]

    def net(a: Attempt) -> int:
        raw = a.score or 0
        return raw - late_penalty(a.received_at, d, rules, raw) + a.adjustment
    return max(reversed(by_time), key=net)  # max keeps the first maximum: the latest of equals


def standing(attempts: Sequence[Attempt], d: Deadlines, rules: Rules, choice: Choice | None = None) -> Standing:
    chosen = counted(attempts, d, rules, choice)
    bonus = early_bonus(attempts, d, rules)
    if chosen is None:
        return Standing(None, early_bonus=bonus, total=bonus)
    raw = chosen.score or 0
    days = late_days(chosen.received_at, d)
    penalty = late_penalty(chosen.received_at, d, rules, raw)
    # an adjustment never takes the submission's part below zero (a regrade can lower raw after it)
    return Standing(chosen, raw=raw, late_days=days, late_penalty=penalty, early_bonus=bonus,
                    adjustment=chosen.adjustment, total=max(0, raw - penalty + chosen.adjustment) + bonus)
