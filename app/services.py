"""What the JSON API (and later the HTML pages) do with the database: small functions, no HTTP.

Visibility rule, in one place (`visible_submission`): a student sees only their own submissions;
TAs and admins see everything.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app import queue
from app.assessments import Assessment
from app.db import Database
from app.models import PRIORITY_REGRADE, Blob, Extension, Job, Result, Submission, User, utcnow
from grader import policy


class Refused(Exception):
    """The upload is not accepted; `reason` is one sentence for the student."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class NotFound(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# policy inputs

def extension_seconds(session: Session, user_id: int, slug: str) -> int:
    return session.scalar(select(Extension.seconds).where(Extension.user_id == user_id,
                                                          Extension.assessment == slug)) or 0


def deadlines(session: Session, a: Assessment, user_id: int) -> policy.Deadlines:
    return policy.deadlines_for(a.rules(), extension_seconds(session, user_id, a.slug))


def as_attempt(sub: Submission) -> policy.Attempt:
    return policy.Attempt(received_at=sub.received_at, score=sub.score, graded=sub.result_id is not None,
                          grader_error=sub.status == "error", ident=sub.id)


def user_submissions(session: Session, user_id: int, slug: str) -> list[Submission]:
    return list(session.scalars(select(Submission).where(Submission.user_id == user_id,
                                                         Submission.assessment == slug)
                                .order_by(Submission.version)))


def precheck(db: Database, a: Assessment, user: User, now: datetime) -> policy.Decision:
    """The cheap check before reading an upload's body (the binding one runs again at commit)."""
    with db.read_session() as s:
        earlier = [as_attempt(x) for x in user_submissions(s, user.id, a.slug)]
        return policy.may_submit(now, deadlines(s, a, user.id), a.rules(), earlier, a.tz)


# ---------------------------------------------------------------------------------------------
# accepting an upload

def _store_blob(session: Session, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(Blob).values(sha256=sha, size=len(data), data=data, created_at=utcnow())
                    .on_conflict_do_nothing(index_elements=["sha256"]))
    return sha


def create_submission(db: Database, a: Assessment, user: User, data: bytes, filename: str,
                      received_at: datetime, max_attempts: int = 3) -> Submission:
    """Check the rules and store blob + submission + job in ONE transaction (durable at commit)."""
    with db.session() as s, s.begin():
        # Serialize one student's uploads (SQLite: the IMMEDIATE transaction already does).
        s.scalars(select(User).where(User.id == user.id).with_for_update()).one()
        earlier = user_submissions(s, user.id, a.slug)
        decision = policy.may_submit(received_at, deadlines(s, a, user.id), a.rules(),
                                     [as_attempt(x) for x in earlier], a.tz)
        if not decision.allowed:
            raise Refused(decision.reason)
        sub = Submission(user_id=user.id, assessment=a.slug,
                         version=max((x.version for x in earlier), default=0) + 1,
                         blob_sha256=_store_blob(s, data), filename=filename[:255] or "handin.tar",
                         received_at=received_at, status="queued")
        s.add(sub)
        s.flush()
        queue.enqueue(s, sub, suite=a.suite, max_attempts=max_attempts)
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


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def submission_view(session: Session, sub: Submission, a: Assessment | None, viewer: User) -> dict:
    latest_job = session.scalars(select(Job).where(Job.submission_id == sub.id)
                                 .order_by(Job.id.desc()).limit(1)).first()
    body = {}
    if sub.result_id is not None:
        body = json.loads(session.get(Result, sub.result_id).body)
    view = {
        "id": sub.id, "version": sub.version, "assessment": sub.assessment, "status": sub.status,
        "url": f"/api/v1/submissions/{sub.id}", "filename": sub.filename, "sha256": sub.blob_sha256,
        "score": sub.score, "max_score": sub.max_score,
        "sections": body.get("sections", []), "notes": body.get("notes", []),
        "handin_error": (body.get("error") or {}).get("message"),
        "grader_error": sub.grader_error, "unsafe": body.get("unsafe", False),
        "timestamps": {
            "received": _iso(sub.received_at),
            "queued": _iso(latest_job.queued_at) if latest_job else None,
            "started": _iso(latest_job.started_at) if latest_job else None,
            "finished": _iso(latest_job.finished_at) if latest_job else None,
        },
        "attempts": latest_job.attempts if latest_job else 0,
        "regrading": bool(latest_job and latest_job.kind == "regrade" and latest_job.state in ("queued", "running")),
    }
    if viewer.is_staff:
        view["user"] = {"username": sub.user.username, "display_name": sub.user.display_name}
    if a is not None:
        d = deadlines(session, a, sub.user_id)
        rules = a.rules()
        all_subs = user_submissions(session, sub.user_id, a.slug)
        stand = policy.standing([as_attempt(x) for x in all_subs], d, rules)
        raw = sub.score or 0
        penalty = policy.late_penalty(sub.received_at, d, rules, raw) if sub.score is not None else 0
        view["received_local"] = a.local(sub.received_at)
        view["policy"] = {
            "late_days": policy.late_days(sub.received_at, d), "late_penalty": penalty,
            "score_after_penalty": raw - penalty if sub.score is not None else None,
            "counts": stand.counted is not None and stand.counted.ident == sub.id,
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


@dataclass
class Row:
    user: User
    standing: policy.Standing
    count: int
    last_received: datetime | None
    sections: list[dict]


def standings(session: Session, a: Assessment, include_empty: bool = False) -> list[Row]:
    subs = session.scalars(select(Submission).where(Submission.assessment == a.slug)
                           .order_by(Submission.id)).all()
    by_user: dict[int, list[Submission]] = defaultdict(list)
    for sub in subs:
        by_user[sub.user_id].append(sub)
    exts = dict(session.execute(select(Extension.user_id, Extension.seconds)
                                .where(Extension.assessment == a.slug)).all())
    users = session.scalars(select(User).where(User.role == "student").order_by(User.username)).all()
    rows = []
    for user in users:
        mine = by_user.get(user.id, [])
        if not mine and not include_empty:
            continue
        d = policy.deadlines_for(a.rules(), exts.get(user.id, 0))
        stand = policy.standing([as_attempt(x) for x in mine], d, a.rules())
        sections = []
        if stand.counted is not None:
            chosen = next(x for x in mine if x.id == stand.counted.ident)
            body = json.loads(session.get(Result, chosen.result_id).body)
            sections = [{"name": x["name"], "score": x["score"], "max_score": x["max_score"]}
                        for x in body.get("sections", [])]
        counting = [x for x in mine if x.status != "error"]
        rows.append(Row(user, stand, len(counting), max((x.received_at for x in mine), default=None), sections))
    rows.sort(key=lambda r: (-r.standing.total, r.user.username))
    return rows


def scoreboard(session: Session, a: Assessment, viewer: User) -> list[dict]:
    out = []
    for r in standings(session, a):
        row = {"nickname": r.user.nickname, "score": r.standing.total, "raw": r.standing.raw,
               "late_penalty": r.standing.late_penalty, "early_bonus": r.standing.early_bonus,
               "sections": r.sections, "submissions": r.count,
               "last_submission": _iso(r.last_received)}
        if viewer.is_staff:
            row = {"username": r.user.username, "display_name": r.user.display_name, **row}
        out.append(row)
    return out


def gradebook_csv(session: Session, a: Assessment) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    names = list(a.sections)
    w.writerow(["username", "display_name", "email", "total", "raw", "late_days", "late_penalty",
                "early_bonus", *names, "submissions", "counted_version", "last_submission"])
    for r in standings(session, a, include_empty=True):
        by_name = {x["name"]: x["score"] for x in r.sections}
        counted_version = ""
        if r.standing.counted is not None:
            counted_version = session.get(Submission, r.standing.counted.ident).version
        w.writerow([r.user.username, r.user.display_name, r.user.email, r.standing.total, r.standing.raw,
                    r.standing.late_days, r.standing.late_penalty, r.standing.early_bonus,
                    *[by_name.get(n, "") for n in names], r.count, counted_version,
                    _iso(r.last_received) or ""])
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# staff actions

def _regrade(session: Session, sub: Submission, max_attempts: int) -> Job | None:
    busy = session.scalar(select(func.count()).select_from(Job).where(
        Job.submission_id == sub.id, Job.state.in_(("queued", "running"))))
    if busy:
        return None   # already waiting for a grade: one is enough
    # the suite the submission was accepted for (its assessment's at upload time)
    suite = session.scalars(select(Job.suite).where(Job.submission_id == sub.id)
                            .order_by(Job.id.desc()).limit(1)).one()
    job = queue.enqueue(session, sub, suite=suite, kind="regrade", priority=PRIORITY_REGRADE,
                        max_attempts=max_attempts)
    if sub.result_id is not None:
        sub.status = "queued"
    return job


def regrade_one(db: Database, submission_id: int, max_attempts: int = 3) -> bool:
    with db.session() as s, s.begin():
        sub = s.get(Submission, submission_id)
        if sub is None:
            raise NotFound()
        queued = _regrade(s, sub, max_attempts) is not None
    db.doorbell.ring()
    return queued


def regrade_all(db: Database, slug: str, max_attempts: int = 3) -> int:
    with db.session() as s, s.begin():
        subs = s.scalars(select(Submission).where(Submission.assessment == slug).order_by(Submission.id)).all()
        queued = sum(_regrade(s, sub, max_attempts) is not None for sub in subs)
    db.doorbell.ring()
    return queued


def set_extension(db: Database, slug: str, username: str, seconds: int, by: User) -> None:
    with db.session() as s, s.begin():
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFound()
        ext = s.scalar(select(Extension).where(Extension.user_id == user.id, Extension.assessment == slug))
        if seconds <= 0:
            if ext is not None:
                s.delete(ext)
            return
        if ext is None:
            s.add(Extension(user_id=user.id, assessment=slug, seconds=seconds, granted_by=by.id))
        else:
            ext.seconds, ext.granted_by = seconds, by.id
