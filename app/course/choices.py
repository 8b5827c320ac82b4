"""Chosen submissions: on an assessment with counts = "chosen" (as Gradescope's active submission),
a student marks one of their graded submissions as the one that counts. The choice holds until
they upload again; without one, the latest graded submission counts (app.course.policy.counted)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.course import policy
from app.course.assessments import Assessment
from app.course.extensions import deadlines
from app.exceptions import NotFound
from app.store.db import Database
from app.store.models import CountedChoice, Submission, User
from app.store.states import SubmissionStatus


class NotChosen(Exception):
    """The choice is refused; `reason` is one sentence for the student."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def choices(session: Session, slug: str, user_ids: list[int]) -> dict[int, policy.Choice]:
    """user id -> their choice on SLUG (users without one left out): one query."""
    if not user_ids:
        return {}
    rows = session.execute(select(CountedChoice.user_id, CountedChoice.submission_id, CountedChoice.chosen_at)
                           .where(CountedChoice.assessment == slug, CountedChoice.user_id.in_(user_ids)))
    return {uid: policy.Choice(sid, at) for uid, sid, at in rows}


def choose(db: Database, assessments: Mapping[str, Assessment], user: User, submission_id: int,
           now: datetime) -> Assessment:
    """Make USER's submission SUBMISSION_ID the one that counts for its assessment (returned);
    raises NotFound (no such submission of theirs) or NotChosen (one sentence why not)."""
    with db.session() as s, s.begin():
        sub = s.get(Submission, submission_id)
        a = assessments.get(sub.assessment) if sub is not None and sub.user_id == user.id else None
        if a is None:
            raise NotFound()
        if a.counts != "chosen":
            raise NotChosen(f"On {a.title} your {a.counts} graded submission counts; it cannot be chosen.")
        if sub.result_id is None or sub.status == SubmissionStatus.ERROR:
            raise NotChosen(f"Submission #{sub.version} has no grade yet; only a graded submission can count.")
        d = deadlines(s, a, user.id)
        if not policy.on_or_before(now, d.last_accepted):
            raise NotChosen("Choices closed with the assessment; the one that counted then still counts.")
        row = s.scalar(select(CountedChoice).where(CountedChoice.user_id == user.id,
                                                   CountedChoice.assessment == a.slug))
        if row is None:
            s.add(CountedChoice(user_id=user.id, assessment=a.slug, submission_id=sub.id, chosen_at=now))
        else:
            row.submission_id, row.chosen_at = sub.id, now
    return a
