"""Regrades: queue a submission (or a whole assessment) for grading again."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.exceptions import NotFound
from app.grading import queue
from app.store.db import Database
from app.store.models import PRIORITY_REGRADE, Job, Submission
from app.store.states import PENDING_JOB, JobKind, SubmissionStatus, move


def _regrade(session: Session, sub: Submission, max_attempts: int) -> Job | None:
    busy = session.scalar(select(func.count()).select_from(Job).where(
        Job.submission_id == sub.id, Job.state.in_(PENDING_JOB)))
    if busy:
        return None   # already waiting for a grade: one is enough
    # the suite the submission was accepted for (its assessment's at upload time)
    suite = session.scalars(select(Job.suite).where(Job.submission_id == sub.id)
                            .order_by(Job.id.desc()).limit(1)).one()
    job = queue.enqueue(session, sub, suite=suite, kind=JobKind.REGRADE, priority=PRIORITY_REGRADE,
                        max_attempts=max_attempts)
    if sub.result_id is not None:
        sub.status = move(sub.status, SubmissionStatus.QUEUED)
    return job


def regrade_one(db: Database, submission_id: int, max_attempts: int) -> bool:
    with db.session() as s, s.begin():
        sub = s.get(Submission, submission_id)
        if sub is None:
            raise NotFound()
        queued = _regrade(s, sub, max_attempts) is not None
    db.doorbell.ring()
    return queued


def regrade_all(db: Database, slug: str, max_attempts: int) -> int:
    with db.session() as s, s.begin():
        subs = s.scalars(select(Submission).where(Submission.assessment == slug).order_by(Submission.id)).all()
        queued = sum(_regrade(s, sub, max_attempts) is not None for sub in subs)
    db.doorbell.ring()
    return queued
