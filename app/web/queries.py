"""Read models: the data the pages show that the service's modules do not already shape.

Reads only, on top of `app.course.submissions`/`app.course.standings`/`app.grading.queue`; every
write (nickname, role, activation link, extension, regrade) is a use case in `app.auth` or
`app.course`, which the handlers call.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from app.auth import accounts
from app.course import adjustments, choices, extensions, policy, standings, submissions
from app.course.assessments import Assessment
from app.grading import queue
from app.store.models import AccountLink, Extension, Job, Result, Submission, User, utcnow
from app.store.states import (
    FINAL_JOB,
    PENDING_JOB,
    PENDING_SUBMISSION,
    JobKind,
    JobState,
    LinkPurpose,
    SubmissionStatus,
)

# ---------------------------------------------------------------------------------------------
# students

def assessment_summary(session: Session, a: Assessment, user: User, now: datetime | None = None) -> dict:
    """Deadlines (with the student's extension), the counted score and whether uploads are open."""
    now = now or utcnow()
    d = extensions.deadlines(session, a, user.id)
    subs = submissions.user_submissions(session, user.id, a.slug)
    adjusted = adjustments.in_force(session, [x.id for x in subs])
    attempts = [submissions.as_attempt(x, adjusted.get(x.id, 0)) for x in subs]
    choice = choices.choices(session, a.slug, [user.id]).get(user.id) if a.counts == "chosen" else None
    stand = policy.standing(attempts, d, a.rules(), choice)
    decision = policy.may_submit(now, d, a.rules(), attempts, a.tz)
    counting = [x for x in subs if x.status != SubmissionStatus.ERROR]
    return {"a": a, "d": d, "standing": stand, "decision": decision,
            "count": len(counting), "pending": any(SubmissionStatus(x.status).is_pending for x in subs),
            "extension": extensions.extension_seconds(session, user.id, a.slug),
            "phase": phase(now, d, a.early_bonus, a.late_penalty_percent_per_day),
            "better_earlier": better_earlier(subs, stand, d, a, adjusted)}


def better_earlier(subs: list[Submission], stand: policy.Standing, d: policy.Deadlines,
                   a: Assessment, adjusted: dict[int, int] | None = None) -> dict | None:
    """The student's best graded submission when it beats the one that counts (the latest counts,
    so a worse re-upload lowers the score): {"id", "version", "score"}, scores after any penalty."""
    if stand.counted is None:
        return None
    adjusted = adjusted or {}
    counted_score = stand.raw - stand.late_penalty + stand.adjustment
    best = None
    for x in subs:
        if x.result_id is None or x.score is None or x.status == SubmissionStatus.ERROR:
            continue
        after = x.score - policy.late_penalty(x.received_at, d, a.rules(), x.score) + adjusted.get(x.id, 0)
        if after > counted_score and (best is None or after > best["score"]):
            best = {"id": x.id, "version": x.version, "score": after}
    return best


class Phase(StrEnum):
    """Where a student's deadlines stand now (their extension applied)."""
    NOT_OPEN = "not yet open"
    EARLY = "open (early bonus window)"
    OPEN = "open"
    LATE = "late (penalty applies)"
    LATE_FREE = "late (accepted without penalty)"
    CLOSED = "closed"


def phase(now: datetime, d: policy.Deadlines, early_bonus: int = 0, late_penalty: float = 0) -> Phase:
    """The label for the student's deadlines: an early window only with a bonus to earn, a
    penalty only when one is taken off."""
    if now < d.release:
        return Phase.NOT_OPEN
    if early_bonus and d.early and policy.on_or_before(now, d.early):
        return Phase.EARLY
    if policy.on_or_before(now, d.due):
        return Phase.OPEN
    if policy.on_or_before(now, d.last_accepted):
        return Phase.LATE if late_penalty else Phase.LATE_FREE
    return Phase.CLOSED


def home_order(summaries: list[dict]) -> list[dict]:
    """Home's order: assessments taking uploads now first (soonest due first), then those not yet
    open (soonest first), then closed ones (most recently closed first)."""
    def key(x: dict) -> tuple:
        d = x["d"]
        if x["phase"] == Phase.NOT_OPEN:
            return (1, d.release.timestamp())
        if x["phase"] == Phase.CLOSED:
            return (2, -d.last_accepted.timestamp())
        return (0, d.due.timestamp())
    return sorted(summaries, key=key)


def my_submissions(session: Session, a: Assessment, user: User) -> list[dict]:
    """The student's submissions for A, newest first, as the JSON API shows them."""
    subs = submissions.user_submissions(session, user.id, a.slug)
    return submissions.submission_views(session, list(reversed(subs)), a, user)



# ---------------------------------------------------------------------------------------------
# staff: the TA home

def ta_overview(session: Session, assessments: list[Assessment], now: datetime | None = None) -> dict:
    """Per assessment: students who submitted and not yet, the mean counted total of the graded, how
    many fail some section, how many submissions wait for the grader; and the queue. A fixed number
    of queries per assessment, whatever the class size."""
    now = now or utcnow()
    students = session.scalar(select(func.count()).select_from(User).where(User.role == "student")) or 0
    waiting = dict(session.execute(select(Submission.assessment, func.count())
                                   .where(Submission.status.in_(PENDING_SUBMISSION))
                                   .group_by(Submission.assessment)).all())
    rows = []
    for a in assessments:
        board = standings.standings(session, a)   # the students with a submission
        graded = [r for r in board if r.standing.counted is not None]
        totals = [r.standing.total for r in graded]
        d = policy.deadlines_for(a.rules())
        rows.append({"a": a, "d": d, "phase": phase(now, d, a.early_bonus, a.late_penalty_percent_per_day),
                     "submitted": len(board),
                     "not_yet": max(students - len(board), 0), "graded": len(graded),
                     "mean": sum(totals) / len(totals) if totals else None,
                     "failing": sum(any(x["score"] < x["max_score"] for x in r.sections) for r in graded),
                     "pending": waiting.get(a.slug, 0)})
    return {"students": students, "assessments": home_order(rows), "queue": queue.health(session)}


# ---------------------------------------------------------------------------------------------
# staff: scoreboard

def staff_scoreboard(session: Session, a: Assessment) -> list[dict]:
    rows = []
    for r in standings.standings(session, a, include_empty=True):
        by_name = {x["name"]: x["score"] for x in r.sections}
        rows.append({"username": r.user.username, "display_name": r.user.display_name,
                     "nickname": r.user.nickname, "total": r.standing.total, "raw": r.standing.raw,
                     "bonus": r.standing.early_bonus, "penalty": r.standing.late_penalty,
                     "adjustment": r.standing.adjustment,
                     "late_days": r.standing.late_days, "submissions": r.count,
                     "last": r.last_received, "sections": by_name, "graded": r.standing.counted is not None,
                     "counted_id": r.standing.counted.ident if r.standing.counted else None})
    return rows


def pass_rates(rows: list[dict], a: Assessment) -> dict[str, tuple[int, int]]:
    """Per section: (students with full marks in it, students with a counted submission)."""
    graded = [r for r in rows if r["graded"]]
    return {name: (sum(r["sections"].get(name) == pts for r in graded), len(graded))
            for name, pts in a.sections.items()}


def histogram(totals: list[int], top: int, width: int = 10) -> list[dict]:
    """Bins of WIDTH points from 0 up to TOP (the last bin holds TOP itself)."""
    bins = [{"lo": lo, "hi": min(lo + width - 1, top), "n": 0} for lo in range(0, top + 1, width)]
    for t in totals:
        bins[min(max(t, 0), top) // width]["n"] += 1
    return bins


# ---------------------------------------------------------------------------------------------
# staff: submissions, regrades, queue

PAGE_SIZE = 50


def counted_ids(session: Session, a: Assessment) -> dict[int, int]:
    """user id -> the id of their submission that counts for A."""
    return standings.counted_submissions(session, a)


def section_marks(session: Session, result_ids: list[int]) -> dict[int, list[dict]]:
    """result id -> its sections as {"name", "passed", "score", "max_score"} (for pass marks)."""
    out = {}
    if result_ids:
        for rid, body in session.execute(select(Result.id, Result.body).where(Result.id.in_(result_ids))):
            out[rid] = [{"name": x.name, "passed": x.passed, "score": x.score, "max_score": x.max_score}
                        for x in submissions.stored_result(body).sections]
    return out


def staff_submissions(session: Session, a: Assessment, student: str = "", status: str = "",
                      late: str = "", errors: bool = False, page: int = 1,
                      per_page: int = PAGE_SIZE) -> tuple[list[dict], int]:
    """One page of A's submissions matching the filters, newest first, and how many match."""
    q = (select(Submission, User, Result.handin_error)
         .join(User, User.id == Submission.user_id)
         .outerjoin(Result, Result.id == Submission.result_id)
         .where(Submission.assessment == a.slug).order_by(Submission.id.desc()))
    if student:
        like = f"%{student.lower()}%"
        q = q.where(func.lower(User.username).like(like) | func.lower(User.display_name).like(like))
    if status:
        q = q.where(Submission.status == status)
    exts = dict(session.execute(select(Extension.user_id, Extension.seconds)
                                .where(Extension.assessment == a.slug)).all())
    matching = []
    for sub, user, handin_error in session.execute(q):
        d = policy.deadlines_for(a.rules(), exts.get(user.id, 0))
        days = policy.late_days(sub.received_at, d)
        problem = sub.grader_error or handin_error
        if (late == "yes" and not days) or (late == "no" and days) or (errors and not problem):
            continue
        matching.append({"sub": sub, "user": user, "late_days": days, "problem": problem,
                         "grader_error": sub.grader_error, "handin_error": handin_error})
    start = (max(page, 1) - 1) * per_page
    rows = matching[start:start + per_page]
    counted = set(counted_ids(session, a).values())
    marks = section_marks(session, [r["sub"].result_id for r in rows if r["sub"].result_id])
    for r in rows:
        r["counted"] = r["sub"].id in counted
        r["sections"] = marks.get(r["sub"].result_id, [])
    return rows, len(matching)


def pages(total: int, page: int, per_page: int = PAGE_SIZE) -> dict:
    """What a pager shows: this page, the last page, and the rows' range ("51-100 of 230")."""
    last = max(1, -(-total // per_page))
    page = min(max(page, 1), last)
    return {"page": page, "last": last, "first_row": (page - 1) * per_page + 1 if total else 0,
            "last_row": min(page * per_page, total), "total": total}


def regrade_progress(session: Session, slug: str) -> dict:
    """Regrade jobs still waiting, and how many of this batch are done (the batch starts at the
    oldest regrade still waiting)."""
    base = (select(Job).join(Submission, Submission.id == Job.submission_id)
            .where(Submission.assessment == slug, Job.kind == JobKind.REGRADE))
    pending = session.scalars(base.where(Job.state.in_(PENDING_JOB))).all()
    if not pending:
        return {"pending": 0, "done": 0, "total": 0}
    start = min(j.queued_at for j in pending)
    done = len(session.scalars(base.where(Job.state.in_(FINAL_JOB), Job.queued_at >= start)).all())
    return {"pending": len(pending), "done": done, "total": done + len(pending)}


def queue_details(session: Session, lease_seconds: float, now: datetime | None = None) -> dict:
    """What the queue page shows beyond `queue.health`: the last hour, errors, workers."""
    now = now or utcnow()
    hour_ago = now - timedelta(hours=1)
    graded_hour = session.scalar(select(func.count()).select_from(Result)
                                 .where(Result.created_at >= hour_ago)) or 0
    finished = session.scalars(select(Job).where(Job.state == JobState.DONE, Job.finished_at >= hour_ago,
                                                 Job.started_at.is_not(None))).all()
    durations = [(j.finished_at - j.started_at).total_seconds() for j in finished]
    errors = session.execute(select(Job, Submission, User)
                             .join(Submission, Submission.id == Job.submission_id)
                             .join(User, User.id == Submission.user_id)
                             .where(Job.last_error.is_not(None)).order_by(Job.id.desc()).limit(20)).all()
    # Workers report through their jobs: a running job's heartbeat, or a recorded result.
    seen: dict[str, dict] = {}
    for j in session.scalars(select(Job).where(Job.state == JobState.RUNNING, Job.lease_owner.is_not(None))):
        seen[j.lease_owner] = {"name": j.lease_owner, "last": j.heartbeat_at, "busy": True}
    for name, last in session.execute(select(Result.worker, func.max(Result.created_at))
                                      .where(Result.created_at >= hour_ago, Result.reused_from.is_(None))
                                      .group_by(Result.worker)):   # a reused result had no worker
        if name and name not in seen:
            seen[name] = {"name": name, "last": last, "busy": False}
    for w in seen.values():
        w["alive"] = w["last"] is not None and (now - w["last"]).total_seconds() <= lease_seconds
    return {"graded_last_hour": graded_hour,
            "avg_seconds": round(sum(durations) / len(durations), 2) if durations else None,
            "errors": [{"job": j, "sub": s, "user": u} for j, s, u in errors],
            "workers": sorted(seen.values(), key=lambda w: w["name"])}


# ---------------------------------------------------------------------------------------------
# staff: students

def roster(session: Session, slug: str | None, a: Assessment | None = None, search: str = "") -> list[dict]:
    """Everyone (or those whose name or username contains SEARCH), with their extension on SLUG
    and, for A, the counted submission: {"id", "total", "sections"}."""
    exts = {}
    if slug:
        exts = dict(session.execute(select(Extension.user_id, Extension.seconds)
                                    .where(Extension.assessment == slug)).all())
    q = select(User).order_by(User.role.desc(), User.username)
    if search:
        like = f"%{search.lower()}%"
        q = q.where(func.lower(User.username).like(like) | func.lower(User.display_name).like(like))
    users = session.scalars(q).all()
    counted = {}
    if a is not None:
        for r in standings.standings(session, a):
            if r.standing.counted is not None:
                counted[r.user.id] = {"id": r.standing.counted.ident, "total": r.standing.total,
                                      "sections": r.sections}
    pending = accounts.has_open_activation(session, [u.id for u in users if not u.password_hash])
    links = last_links(session, [u.id for u in users])
    return [{"user": u, "extension": exts.get(u.id, 0), "counted": counted.get(u.id), "last_link": links.get(u.id),
             "state": "active" if u.password_hash else ("activation pending" if u.id in pending
                                                        else "no password")}
            for u in users]


def last_links(session: Session, user_ids: list[int]) -> dict[int, dict]:
    """user id -> the newest account link issued for them, as the Students page records it:
    {"purpose", "issued_by" (a username; None for the CLI), "created_at", "state" (LinkState),
    "when" (used at, replaced at, or expires at)}."""
    if not user_ids:
        return {}
    issuer = aliased(User)
    newest = (select(func.max(AccountLink.id)).where(AccountLink.user_id.in_(user_ids))
              .group_by(AccountLink.user_id))
    out = {}
    for link, by in session.execute(select(AccountLink, issuer.username)
                                    .outerjoin(issuer, issuer.id == AccountLink.issued_by)
                                    .where(AccountLink.id.in_(newest))):
        state = accounts.link_state(link)
        when = {accounts.LinkState.USED: link.used_at, accounts.LinkState.REPLACED: link.replaced_at}
        out[link.user_id] = {"purpose": LinkPurpose(link.purpose), "issued_by": by, "created_at": link.created_at,
                             "state": state, "when": when.get(state, link.expires_at)}
    return out

