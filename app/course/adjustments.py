"""Points adjustments: a TA moves one graded submission's score by some points, with a reason (for
the staff) and a comment the student sees with the score.

Every change is a new row (who, when, what): the latest row of a submission is the adjustment in
force (0 points withdraws it) and the earlier rows are its history. The total the student sees,
the standings and the gradebook read the one in force through `policy.Attempt.adjustment`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import accounts
from app.course import policy
from app.course.assessments import Assessment
from app.course.extensions import deadlines
from app.exceptions import NotFound
from app.store.db import Database
from app.store.models import ScoreAdjustment, Submission, User, utcnow

MAX_REASON = 500
MAX_COMMENT = 2000


class AdjustmentRefused(Exception):
    """The adjustment is out of bounds or incomplete; `reason` is one sentence for the TA."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Adjustment:
    points: int
    reason: str
    comment: str
    by: str             # the TA's username
    at: datetime


def in_force(session: Session, submission_ids: Iterable[int]) -> dict[int, int]:
    """submission id -> points in force, for those with a non-zero adjustment: one query."""
    ids = list(submission_ids)
    if not ids:
        return {}
    latest: dict[int, int] = {}
    for sub_id, points in session.execute(select(ScoreAdjustment.submission_id, ScoreAdjustment.points)
                                          .where(ScoreAdjustment.submission_id.in_(ids))
                                          .order_by(ScoreAdjustment.id)):
        latest[sub_id] = points
    return {k: v for k, v in latest.items() if v}


def points_in_force():
    """A column for a query over submissions: the points of the submission's adjustment in force
    (its latest row), NULL when it has none. A correlated subquery, so a class list that needs the
    adjustments of every submission stays one query."""
    return (select(ScoreAdjustment.points).where(ScoreAdjustment.submission_id == Submission.id)
            .order_by(ScoreAdjustment.id.desc()).limit(1).correlate(Submission).scalar_subquery())


def history(session: Session, submission_ids: Iterable[int]) -> dict[int, list[Adjustment]]:
    """submission id -> its adjustments, newest first (the first one is in force)."""
    ids = list(submission_ids)
    out: dict[int, list[Adjustment]] = {}
    if not ids:
        return out
    rows = session.execute(select(ScoreAdjustment, User.username).join(User, User.id == ScoreAdjustment.created_by)
                           .where(ScoreAdjustment.submission_id.in_(ids))
                           .order_by(ScoreAdjustment.id.desc()))
    for row, username in rows:
        out.setdefault(row.submission_id, []).append(
            Adjustment(row.points, row.reason, row.comment, username, row.created_at))
    return out


def bounds(a: Assessment, score_after_penalty: int) -> tuple[int, int]:
    """The points a TA may give: the submission's part of the total stays within 0 and the
    assessment's maximum."""
    return -score_after_penalty, a.max_score - score_after_penalty


def adjust(db: Database, a: Assessment, submission_id: int, actor: User, points: int, reason: str,
           comment: str = "") -> Adjustment:
    """Put POINTS in force on the submission (of assessment A, else NotFound), recorded as ACTOR's.
    Raises AdjustmentRefused when out of bounds or without a reason, accounts.NotAllowed for a
    student."""
    if not actor.is_staff:
        raise accounts.NotAllowed("only staff adjust scores")
    reason, comment = reason.strip(), comment.strip()
    if not reason:
        raise AdjustmentRefused("Give a reason: it is kept with the adjustment for the other TAs.")
    if len(reason) > MAX_REASON or len(comment) > MAX_COMMENT:
        raise AdjustmentRefused(f"The reason is at most {MAX_REASON} characters and the comment at most "
                                f"{MAX_COMMENT}.")
    with db.session() as s, s.begin():
        sub = s.get(Submission, submission_id)
        if sub is None or sub.assessment != a.slug:
            raise NotFound()   # another assessment's submission is not reachable from this one
        if sub.score is None or sub.result_id is None:
            raise AdjustmentRefused("This submission has no grade yet: adjust it once it is graded.")
        penalty = policy.late_penalty(sub.received_at, deadlines(s, a, sub.user_id), a.rules(), sub.score)
        low, high = bounds(a, sub.score - penalty)
        if not low <= points <= high:
            raise AdjustmentRefused(f"{points:+d} points would take this submission's {sub.score - penalty} "
                                    f"outside 0 to {a.max_score}: give between {low:+d} and {high:+d}.")
        row = ScoreAdjustment(submission_id=sub.id, points=points, reason=reason, comment=comment,
                              created_by=actor.id, created_at=utcnow())
        s.add(row)
        s.flush()
        return Adjustment(row.points, row.reason, row.comment, actor.username, row.created_at)
