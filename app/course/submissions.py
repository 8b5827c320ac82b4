"""Submissions: accepting one into the database (durably, with its job) and reading them back.

Visibility rule, in one place (`visible_submission`): a student sees only their own submissions;
TAs and admins see everything.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.course import adjustments, choices, policy
from app.course.assessments import Assessment
from app.course.extensions import deadlines
from app.exceptions import NotFound
from app.grading import queue
from app.store.db import Database
from app.store.models import Blob, Extension, Job, Result, Submission, User, utcnow
from app.store.states import JobKind, JobState, SubmissionStatus
from grader.result import GradeResult


class Refused(Exception):
    """The upload is not accepted; `reason` is one sentence for the student."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def as_attempt(sub: Submission, adjustment: int = 0) -> policy.Attempt:
    """What the policy reads of SUB; ADJUSTMENT is a TA's points in force on it (app.course.adjustments)."""
    return policy.Attempt(received_at=sub.received_at, score=sub.score, graded=sub.result_id is not None,
                          grader_error=sub.status == SubmissionStatus.ERROR, ident=sub.id, adjustment=adjustment)


def user_submissions(session: Session, user_id: int, slug: str) -> list[Submission]:
    return list(session.scalars(select(Submission).where(Submission.user_id == user_id,
                                                         Submission.assessment == slug)
                                .order_by(Submission.version)))


def earlier_attempts(session: Session, user_id: int, slug: str) -> tuple[list[policy.Attempt], int]:
    """What the upload rules read of a student's earlier submissions, and their last version: plain
    rows, not ORM objects (loading whole submissions was most of an upload's database time)."""
    rows = session.execute(select(Submission.id, Submission.received_at, Submission.score, Submission.result_id,
                                  Submission.status, Submission.version)
                           .where(Submission.user_id == user_id, Submission.assessment == slug)
                           .order_by(Submission.version)).all()
    attempts = [policy.Attempt(received_at=r.received_at, score=r.score, graded=r.result_id is not None,
                               grader_error=r.status == SubmissionStatus.ERROR, ident=r.id) for r in rows]
    return attempts, max((r.version for r in rows), default=0)


def precheck(db: Database, a: Assessment, user: User, now: datetime) -> policy.Decision:
    """The cheap check before reading an upload's body (the binding one runs again at commit)."""
    with db.read_session() as s:
        earlier, _ = earlier_attempts(s, user.id, a.slug)
        return policy.may_submit(now, deadlines(s, a, user.id), a.rules(), earlier, a.tz)


# ---------------------------------------------------------------------------------------------
# storing

def _store_blob(session: Session, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(Blob).values(sha256=sha, size=len(data), data=data, created_at=utcnow())
                    .on_conflict_do_nothing(index_elements=["sha256"]))
    return sha


def create_submission(db: Database, a: Assessment, user: User, data: bytes, filename: str,
                      received_at: datetime, *, max_attempts: int, reuse: bool = False) -> Submission:
    """Check the rules and store blob + submission + job in ONE transaction (durable at commit).
    With REUSE, an identical resubmission of the student's earlier bytes shows that raw result again
    instead of being queued, when it was graded under the key of the grading code the workers
    announced last (queue.current_reuse_key): the code that would grade it now."""
    with db.session() as s, s.begin():
        # Serialize one student's uploads (SQLite: the IMMEDIATE transaction already does).
        s.scalars(select(User).where(User.id == user.id).with_for_update()).one()
        earlier, last_version = earlier_attempts(s, user.id, a.slug)
        decision = policy.may_submit(received_at, deadlines(s, a, user.id), a.rules(), earlier, a.tz)
        if not decision.allowed:
            raise Refused(decision.reason)
        sub = Submission(user_id=user.id, assessment=a.slug, version=last_version + 1,
                         blob_sha256=_store_blob(s, data), filename=filename[:255] or "handin.tar",
                         received_at=received_at, status=SubmissionStatus.QUEUED)
        s.add(sub)
        s.flush()
        reuse_key = queue.current_reuse_key(s) if reuse else None
        prior = queue.reusable_result(s, sub, reuse_key) if reuse_key else None
        if prior is not None:
            queue.record_reuse(s, sub, prior, suite=a.suite)
        else:
            queue.enqueue(s, sub, suite=a.suite, max_attempts=max_attempts)
    if prior is None:
        db.doorbell.ring()
    return sub


# ---------------------------------------------------------------------------------------------
# reading

def visible_submission(session: Session, viewer: User, submission_id: int) -> Submission:
    sub = session.get(Submission, submission_id)
    if sub is None or (sub.user_id != viewer.id and not viewer.is_staff):
        raise NotFound()   # another student's id looks exactly like a missing one
    return sub


def blob_bytes(session: Session, sub: Submission) -> bytes:
    return session.get(Blob, sub.blob_sha256).data


def iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def stored_result(body: str) -> GradeResult:
    """A results row read back through the result model: validated, typed, and older rows gain the
    defaults of fields added since they were stored."""
    return GradeResult.model_validate_json(body)


def submission_view(session: Session, sub: Submission, a: Assessment | None, viewer: User) -> dict:
    return submission_views(session, [sub], a, viewer)[0]


def submission_views(session: Session, subs: list[Submission], a: Assessment | None, viewer: User) -> list[dict]:
    """The views of SUBS (all of assessment A when A is given), with a fixed number of queries
    whatever their number: latest jobs, results, users, extensions and the students' other
    submissions are each loaded once for the whole list. Only a queued row asks for its place."""
    ids = [x.id for x in subs]
    latest_jobs: dict[int, Job] = {}
    if ids:
        for job in session.scalars(select(Job).where(Job.submission_id.in_(ids)).order_by(Job.id)):
            latest_jobs[job.submission_id] = job
    result_ids = [x.result_id for x in subs if x.result_id is not None]
    bodies, reused_ids = {}, {}
    if result_ids:
        for rid, body, reused_id in session.execute(select(Result.id, Result.body, Result.reused_from)
                                                    .where(Result.id.in_(result_ids))):
            bodies[rid] = body
            if reused_id is not None:
                reused_ids[rid] = reused_id
    reused_from: dict[int, dict] = {}   # result id -> the earlier submission whose result it shows
    if reused_ids:
        earlier = session.execute(select(Result.id, Submission).join(Submission, Submission.id == Result.submission_id)
                                  .where(Result.id.in_(set(reused_ids.values())))).all()
        by_result = {rid: x for rid, x in earlier}
        for rid, reused_id in reused_ids.items():
            x = by_result[reused_id]
            reused_from[rid] = {"id": x.id, "version": x.version, "url": f"/api/v1/submissions/{x.id}"}
    user_ids = sorted({x.user_id for x in subs})
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(user_ids)))} \
        if viewer.is_staff and user_ids else {}
    exts: dict[int, int] = {}
    by_user: dict[int, list[Submission]] = {}
    chosen: dict[int, policy.Choice] = {}
    if a is not None and user_ids:
        exts = dict(session.execute(select(Extension.user_id, Extension.seconds).where(
            Extension.assessment == a.slug, Extension.user_id.in_(user_ids))).all())
        if a.counts == "chosen":
            chosen = choices.choices(session, a.slug, user_ids)
        for x in session.scalars(select(Submission).where(Submission.assessment == a.slug,
                                                          Submission.user_id.in_(user_ids))
                                 .order_by(Submission.version)):
            by_user.setdefault(x.user_id, []).append(x)
    adjusted = adjustments.in_force(session, [x.id for mine in by_user.values() for x in mine])
    changes = adjustments.history(session, ids)
    return [_view(session, sub, a, viewer, latest_jobs.get(sub.id),
                  stored_result(bodies[sub.result_id]) if sub.result_id in bodies else None,
                  users.get(sub.user_id), exts.get(sub.user_id, 0), by_user.get(sub.user_id, []),
                  reused_from.get(sub.result_id), chosen.get(sub.user_id), adjusted, changes.get(sub.id, []))
            for sub in subs]


def _view(session: Session, sub: Submission, a: Assessment | None, viewer: User, latest_job: Job | None,
          result: GradeResult | None, user: User | None, extension: int, all_subs: list[Submission],
          reused_from: dict | None, choice: policy.Choice | None = None, adjusted: dict[int, int] | None = None,
          changes: list[adjustments.Adjustment] | None = None) -> dict:
    # JSON-ready values for the page and the API: every float under sections is a JsonFloat, so
    # NaN and infinities come out as the strings the schema says
    shown = result.model_dump(mode="json", include={"sections", "notes"}) if result else {}
    view = {
        "id": sub.id, "version": sub.version, "assessment": sub.assessment, "status": sub.status,
        "url": f"/api/v1/submissions/{sub.id}", "page_url": f"/submissions/{sub.id}", "filename": sub.filename, "sha256": sub.blob_sha256,
        "score": sub.score, "max_score": sub.max_score,
        "sections": shown.get("sections", []), "notes": shown.get("notes", []),
        "handin_error": result.error.message if result and result.error else None,
        "grader_error": sub.grader_error, "unsafe": result.unsafe if result else False,
        # identical bytes to an earlier submission of the same student, graded by the same grader:
        # its raw result is shown again, not graded again (penalty and bonus are still this one's)
        "reused_from": reused_from,
        "timestamps": {
            "received": iso(sub.received_at),
            "queued": iso(latest_job.queued_at) if latest_job else None,
            "started": iso(latest_job.started_at) if latest_job else None,
            "finished": iso(latest_job.finished_at) if latest_job else None,
        },
        "attempts": latest_job.attempts if latest_job else 0,
        "regrading": bool(latest_job and latest_job.kind == JobKind.REGRADE and JobState(latest_job.state).is_pending),
        # while queued: {"position": 1 = next, "running", "workers", "estimate_seconds"}
        "queue": asdict(queue.place(session, latest_job)) if latest_job and latest_job.state == JobState.QUEUED else None,
    }
    # a TA's adjustment in force (the latest change; 0 points withdraws it): the student sees its
    # points and comment, the staff also the reason and every change with who and when
    now = changes[0] if changes and changes[0].points else None
    view["adjustment"] = {"points": now.points, "comment": now.comment} if now else None
    if viewer.is_staff:
        view["user"] = {"username": user.username, "display_name": user.display_name}
        if now:
            view["adjustment"] |= {"reason": now.reason, "by": now.by, "at": iso(now.at)}
        view["adjustment_history"] = [{"points": c.points, "reason": c.reason, "comment": c.comment,
                                       "by": c.by, "at": iso(c.at)} for c in changes or []]
        # the student's versions of this assessment, for the TA's links between them
        view["versions"] = [{"id": x.id, "version": x.version, "status": x.status, "score": x.score}
                            for x in all_subs]
    if a is not None:
        rules = a.rules()
        d = policy.deadlines_for(rules, extension)
        adjusted = adjusted or {}
        stand = policy.standing([as_attempt(x, adjusted.get(x.id, 0)) for x in all_subs], d, rules, choice)
        raw = sub.score or 0
        penalty = policy.late_penalty(sub.received_at, d, rules, raw) if sub.score is not None else 0
        view["received_local"] = a.local(sub.received_at)
        view["policy"] = {
            "late_days": policy.late_days(sub.received_at, d), "late_penalty": penalty,
            "score_after_penalty": raw - penalty if sub.score is not None else None,
            "counts": stand.counted is not None and stand.counted.ident == sub.id,
            # the submission the assessment total comes from (this one or another)
            "counted_submission": next(({"id": x.id, "version": x.version, "page_url": f"/submissions/{x.id}"}
                                        for x in all_subs if stand.counted and x.id == stand.counted.ident), None),
            "adjustment": adjusted.get(sub.id, 0),
            "early_bonus": stand.early_bonus, "assessment_total": stand.total,
            "counted_rule": rules.counts,
        }
    return view


def list_submissions(session: Session, viewer: User, slug: str, username: str | None = None) -> list[Submission]:
    q = select(Submission).where(Submission.assessment == slug).order_by(Submission.id)
    if not viewer.is_staff:
        q = q.where(Submission.user_id == viewer.id)
    elif username:
        q = q.join(User, User.id == Submission.user_id).where(User.username == username)
    return list(session.scalars(q))
