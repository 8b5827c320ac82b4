"""The grading queue: the jobs table, claimed with a lease and kept alive by heartbeats.

Claiming is a locked read then a guarded update in one write transaction: FOR UPDATE SKIP LOCKED
on Postgres; on SQLite the transaction began with BEGIN IMMEDIATE, so claims are serialized.
An idle worker first asks a read-only question (`has_work`), so it never takes SQLite's write
lock (which uploads wait for) when there is nothing to claim. Recording is idempotent: a job that is already finished, or whose lease now belongs to another
worker, is left alone, and the results table holds at most one row per job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.orm import Session

from app.store.db import Database
from app.store.models import PRIORITY_LIVE, GradingCode, Job, Result, Submission, utcnow
from app.store.states import JobKind, JobState, SubmissionStatus, move

# A second line behind "only what student code cannot cause is a grader error": whatever a handin
# might still find to make the grader fail, one student's failed jobs are retried at most this many
# times in a day; beyond it a grader error ends the job at once (still never a zero, never counted).
GRADER_ERROR_RETRIES_PER_STUDENT = 6
RETRY_WINDOW = timedelta(days=1)


@dataclass
class Claim:
    job_id: int
    submission_id: int
    attempt: int
    blob_sha256: str
    suite: str


def enqueue(session: Session, submission: Submission, *, suite: str, kind: JobKind = JobKind.SUBMIT,
            priority: int = PRIORITY_LIVE, max_attempts: int) -> Job:
    job = Job(submission_id=submission.id, suite=suite, kind=kind, priority=priority, state=JobState.QUEUED,
              max_attempts=max_attempts, queued_at=utcnow())
    session.add(job)
    submission.status = move(submission.status, SubmissionStatus.QUEUED)
    session.flush()
    notify_workers(session)
    return job


JOBS_CHANNEL = "grader_jobs"


def notify_workers(session: Session) -> None:
    """On Postgres, wake every listening worker (app.store.db.PostgresDoorbell) when this transaction
    commits, whichever process or machine queued the job; SQLite's workers share a machine and
    are rung by the web process itself."""
    if session.bind.dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {JOBS_CHANNEL}"))


def _finish_submission_failure(session: Session, job: Job, message: str) -> None:
    """A job that ran out of attempts: a grader error, unless an earlier result can stay shown."""
    sub = session.get(Submission, job.submission_id)
    if sub.result_id is not None:
        sub.status = move(sub.status, SubmissionStatus.GRADED)   # a failed regrade keeps the previous result
    else:
        sub.status, sub.grader_error = move(sub.status, SubmissionStatus.ERROR), message


def reap_expired(session: Session, now: datetime | None = None) -> int:
    """Re-queue running jobs whose lease expired (the worker died); fail those out of attempts."""
    now = now or utcnow()
    expired = session.scalars(select(Job).where(Job.state == JobState.RUNNING, Job.lease_expires_at < now)
                              .with_for_update(skip_locked=True)).all()
    for job in expired:
        job.lease_owner = job.lease_expires_at = None
        note = f"attempt {job.attempts}: the worker stopped answering (lease expired)"
        job.last_error = note
        if job.attempts >= job.max_attempts:
            job.state, job.finished_at = move(job.state, JobState.FAILED), now
            _finish_submission_failure(session, job, "The grader failed repeatedly on this submission; "
                                                     "it does not count against your limits.")
        else:
            _requeue(session, job)
    return len(expired)


def has_work(db: Database) -> bool:
    """A queued job, or a running one whose lease expired (its worker died). Read-only."""
    with db.read_session() as session:
        return session.scalar(select(Job.id).where(or_(
            Job.state == JobState.QUEUED,
            and_(Job.state == JobState.RUNNING, Job.lease_expires_at < utcnow()))).limit(1)) is not None


def claim(db: Database, owner: str, lease_seconds: float) -> Claim | None:
    if not has_work(db):
        return None   # without touching the write lock
    with db.session() as session, session.begin():
        now = utcnow()
        reap_expired(session, now)
        job = session.scalars(select(Job).where(Job.state == JobState.QUEUED)
                              .order_by(Job.priority, Job.id).limit(1)
                              .with_for_update(skip_locked=True)).first()
        if job is None:
            return None
        job.state, job.lease_owner = move(job.state, JobState.RUNNING), owner
        job.lease_expires_at = now + timedelta(seconds=lease_seconds)
        job.attempts += 1
        job.started_at = job.heartbeat_at = now
        sub = session.get(Submission, job.submission_id)
        sub.status = move(sub.status, SubmissionStatus.RUNNING)
        return Claim(job.id, sub.id, job.attempts, sub.blob_sha256, job.suite)


def heartbeat(db: Database, claim_: Claim, owner: str, lease_seconds: float) -> bool:
    """Extend the lease; False when the lease is no longer ours."""
    with db.session() as session, session.begin():
        now = utcnow()
        res = session.execute(update(Job).where(Job.id == claim_.job_id, Job.state == JobState.RUNNING,
                                                Job.lease_owner == owner)
                              .values(lease_expires_at=now + timedelta(seconds=lease_seconds),
                                      heartbeat_at=now))
        return res.rowcount == 1


def _lock_job(session: Session, job_id: int) -> Job:
    return session.scalars(select(Job).where(Job.id == job_id).with_for_update()).one()


def record_result(db: Database, claim_: Claim, owner: str, *, score: int, max_score: int, body: str,
                  handin_error: str | None, reuse_key: str | None = None) -> bool:
    """Store a result once. False (and nothing written) when the job already has one."""
    with db.session() as session, session.begin():
        job = _lock_job(session, claim_.job_id)
        if JobState(job.state).is_final:
            return False
        if session.scalar(select(func.count()).select_from(Result).where(Result.job_id == job.id)):
            return False
        now = utcnow()
        result = Result(job_id=job.id, submission_id=job.submission_id, score=score, max_score=max_score,
                        body=body, handin_error=handin_error, worker=owner, created_at=now,
                        reuse_key=reuse_key)
        session.add(result)
        session.flush()
        job.state, job.finished_at = move(job.state, JobState.DONE), now
        job.lease_owner = job.lease_expires_at = None
        sub = session.get(Submission, job.submission_id)
        sub.status, sub.score, sub.max_score = move(sub.status, SubmissionStatus.GRADED), score, max_score
        sub.result_id, sub.grader_error = result.id, None
        return True


def announce_grading_code(db: Database, worker: str, reuse_key: str) -> None:
    """Record that WORKER grades with the code behind REUSE_KEY (from now on)."""
    with db.session() as s, s.begin():
        row = s.get(GradingCode, worker)
        if row is None:
            s.add(GradingCode(worker=worker, reuse_key=reuse_key, announced_at=utcnow()))
        else:
            row.reuse_key, row.announced_at = reuse_key, utcnow()


def current_reuse_key(session: Session) -> str | None:
    """The reuse key of the grading code announced last (the code that would grade a job now), or
    None before any worker has announced one."""
    return session.scalars(select(GradingCode.reuse_key).order_by(GradingCode.announced_at.desc())
                           .limit(1)).first()


def reusable_result(session: Session, submission: Submission, reuse_key: str) -> Result | None:
    """The newest result of the same student's earlier submission of the same bytes to the same
    assessment, graded under REUSE_KEY (same grading code, same isolation), if any."""
    return session.scalars(
        select(Result).join(Submission, Submission.id == Result.submission_id)
        .where(Result.reuse_key == reuse_key, Submission.user_id == submission.user_id,
               Submission.assessment == submission.assessment,
               Submission.blob_sha256 == submission.blob_sha256, Submission.id != submission.id)
        .order_by(Result.id.desc()).limit(1)).first()


def record_reuse(session: Session, submission: Submission, earlier: Result, *, suite: str) -> Result:
    """Grade SUBMISSION by showing EARLIER's raw result again: a finished job (so the timestamps and
    the queue's history stay whole) and a result row that says where it came from. The score policy
    (late penalty, bonus, which submission counts) is still worked out per submission."""
    now = utcnow()
    job = Job(submission_id=submission.id, suite=suite, kind=JobKind.REUSE, priority=PRIORITY_LIVE, state=JobState.DONE,
              attempts=0,
              max_attempts=0, queued_at=now, started_at=now, finished_at=now)
    session.add(job)
    session.flush()
    result = Result(job_id=job.id, submission_id=submission.id, score=earlier.score,
                    max_score=earlier.max_score, body=earlier.body, handin_error=earlier.handin_error,
                    worker="", created_at=now, reuse_key=earlier.reuse_key, reused_from=earlier.id)   # no worker graded it
    session.add(result)
    session.flush()
    submission.status = move(submission.status, SubmissionStatus.GRADED)
    submission.score, submission.max_score = earlier.score, earlier.max_score
    submission.result_id, submission.grader_error = result.id, None
    return result


def record_failure(db: Database, claim_: Claim, owner: str, message: str) -> None:
    """A grader error: retry while attempts remain, otherwise mark it (never as a zero)."""
    with db.session() as session, session.begin():
        job = _lock_job(session, claim_.job_id)
        if job.state != JobState.RUNNING or job.lease_owner != owner:
            return
        job.last_error = f"attempt {job.attempts}: {message}"[:4000]
        job.lease_owner = job.lease_expires_at = None
        if job.attempts >= job.max_attempts or _student_out_of_retries(session, job):
            job.state, job.finished_at = move(job.state, JobState.FAILED), utcnow()
            _finish_submission_failure(session, job, "The grader failed on this submission (not your "
                                                     "fault); it does not count against your limits.")
        else:
            _requeue(session, job)


def _requeue(session: Session, job: Job) -> None:
    """Back in the queue for another attempt; idle workers are rung."""
    job.state = move(job.state, JobState.QUEUED)
    sub = session.get(Submission, job.submission_id)
    sub.status = move(sub.status, SubmissionStatus.QUEUED)
    notify_workers(session)


def _student_out_of_retries(session: Session, job: Job) -> bool:
    """Whether the student behind JOB already had GRADER_ERROR_RETRIES_PER_STUDENT retries of failed
    jobs in the last RETRY_WINDOW (this job's own retries included)."""
    user_id = session.get(Submission, job.submission_id).user_id
    used = session.scalar(
        select(func.coalesce(func.sum(Job.attempts - 1), 0))
        .join(Submission, Submission.id == Job.submission_id)
        .where(Submission.user_id == user_id, Job.last_error.is_not(None), Job.attempts > 1,
               Job.queued_at >= utcnow() - RETRY_WINDOW))
    return used >= GRADER_ERROR_RETRIES_PER_STUDENT


def health(session: Session) -> dict:
    now = utcnow()
    counts = dict(session.execute(select(Job.state, func.count()).group_by(Job.state)).all())
    oldest = session.scalar(select(func.min(Job.queued_at)).where(Job.state == JobState.QUEUED))
    running = session.scalars(select(Job).where(Job.state == JobState.RUNNING).order_by(Job.id)).all()
    return {
        **{str(state): counts.get(state, 0) for state in JobState},   # queued, running, done, failed
        "oldest_queued_seconds": round((now - oldest).total_seconds(), 1) if oldest else None,
        "running_jobs": [{"job": j.id, "submission": j.submission_id, "worker": j.lease_owner,
                          "attempt": j.attempts, "started_at": j.started_at.isoformat(),
                          "lease_expires_at": j.lease_expires_at.isoformat() if j.lease_expires_at else None}
                         for j in running],
    }


@dataclass
class Place:
    """Where a queued job stands, for the student watching it: a position and a rough wait."""
    position: int                     # 1 = next to be graded
    running: int                      # jobs being graded right now
    workers: int                      # workers seen grading lately (at least 1)
    estimate_seconds: int | None      # until its grade is in; None before any job has finished


def place(session: Session, job: Job, now: datetime | None = None) -> Place:
    """JOB's position among queued jobs (claim order: priority, then id) and an estimate from the
    last finished jobs' grading times spread over the workers seen lately."""
    now = now or utcnow()
    ahead = session.scalar(select(func.count()).select_from(Job).where(
        Job.state == JobState.QUEUED,
        (Job.priority < job.priority) | ((Job.priority == job.priority) & (Job.id < job.id)))) or 0
    running = session.scalar(select(func.count()).select_from(Job).where(Job.state == JobState.RUNNING)) or 0
    recent = session.execute(select(Job.started_at, Job.finished_at).where(
        Job.state == JobState.DONE, Job.started_at.is_not(None)).order_by(Job.finished_at.desc()).limit(20)).all()
    since = now - timedelta(minutes=10)
    workers = set(session.scalars(select(Job.lease_owner).where(Job.state == JobState.RUNNING,
                                                                Job.lease_owner.is_not(None))))
    workers |= set(session.scalars(select(Result.worker).where(Result.created_at >= since,
                                                               Result.reused_from.is_(None)).distinct()))
    n_workers = max(1, len(workers - {None, ""}))
    estimate = None
    if recent:
        avg = sum((f - s).total_seconds() for s, f in recent) / len(recent)
        # the jobs ahead and those running share the workers; then this one is graded. Rounded up:
        # grades now take a fraction of a second, and "about 0 s" while queued is never true.
        estimate = math.ceil((ahead + running) / n_workers * avg + avg)
    return Place(position=ahead + 1, running=running, workers=n_workers, estimate_seconds=estimate)
