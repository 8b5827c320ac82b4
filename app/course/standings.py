"""Standings: each student's counted score, the scoreboard (names for staff, nicknames for
students) and the gradebook CSV."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from app.course import adjustments, policy
from app.course.assessments import Assessment
from app.course.submissions import as_attempt, iso, stored_result
from app.store.models import CountedChoice, Extension, Result, Submission, User
from app.store.states import SubmissionStatus


@dataclass
class Row:
    user: User
    standing: policy.Standing
    count: int
    last_received: datetime | None
    sections: list[dict]
    counted: Submission | None = None   # the submission that counts


@dataclass
class _Attempts:
    """Every student's submissions to A (oldest first), extension in seconds, chosen submission and
    the TA adjustments in force (submission id -> points)."""
    by_user: dict[int, list[Submission]]
    extension: dict[int, int]
    choice: dict[int, policy.Choice]
    adjusted: dict[int, int]


def _students_attempts(session: Session, a: Assessment) -> _Attempts:
    """Every student's submissions to A with their extension and their choice of the one that
    counts (counts = "chosen"), and the adjustments in force: one query."""
    rows = session.execute(
        select(Submission, Extension.seconds, CountedChoice.submission_id, CountedChoice.chosen_at,
               adjustments.points_in_force())
        .join(User, User.id == Submission.user_id)
        .outerjoin(Extension, and_(Extension.user_id == Submission.user_id, Extension.assessment == a.slug))
        .outerjoin(CountedChoice, and_(CountedChoice.user_id == Submission.user_id,
                                       CountedChoice.assessment == a.slug))
        .where(Submission.assessment == a.slug, User.role == "student")
        .order_by(Submission.id)).all()
    found = _Attempts(defaultdict(list), {}, {}, {})
    for sub, seconds, chosen_id, chosen_at, adjusted in rows:
        found.by_user[sub.user_id].append(sub)
        found.extension[sub.user_id] = seconds or 0
        if chosen_id is not None:
            found.choice[sub.user_id] = policy.Choice(chosen_id, chosen_at)
        if adjusted:
            found.adjusted[sub.id] = adjusted
    return found


def _standing(found: _Attempts, user_id: int, a: Assessment) -> policy.Standing:
    d = policy.deadlines_for(a.rules(), found.extension.get(user_id, 0))
    return policy.standing([as_attempt(x, found.adjusted.get(x.id, 0)) for x in found.by_user.get(user_id, [])],
                           d, a.rules(),
                           found.choice.get(user_id))


def counted_submissions(session: Session, a: Assessment) -> dict[int, int]:
    """Which submission counts: student's user id -> the id of their submission that counts for A
    (students with none left out). The one rule behind standings, the gradebook, failures,
    similarity reports and the TA lists, loaded in one query."""
    found = _students_attempts(session, a)
    counted = {}
    for user_id in found.by_user:
        stand = _standing(found, user_id, a)
        if stand.counted is not None:
            counted[user_id] = stand.counted.ident
    return counted


def standings(session: Session, a: Assessment, include_empty: bool = False) -> list[Row]:
    """Each student's standing, best first; a fixed number of queries whatever the class size."""
    found = _students_attempts(session, a)
    by_user = found.by_user
    users = session.scalars(select(User).where(User.role == "student").order_by(User.username)).all()
    stands = {uid: _standing(found, uid, a) for uid in by_user}
    chosen = {s.counted.ident for s in stands.values() if s.counted is not None}
    result_ids = [x.result_id for subs in by_user.values() for x in subs if x.id in chosen]
    bodies = dict(session.execute(select(Result.id, Result.body).where(Result.id.in_(result_ids))).all()
                  ) if result_ids else {}
    rows = []
    for user in users:
        mine = by_user.get(user.id, [])
        if not mine and not include_empty:
            continue
        stand = stands.get(user.id) or _standing(found, user.id, a)
        sections, counted = [], None
        if stand.counted is not None:
            counted = next(x for x in mine if x.id == stand.counted.ident)
            result = stored_result(bodies[counted.result_id])
            sections = [{"name": x.name, "score": x.score, "max_score": x.max_score} for x in result.sections]
        counting = [x for x in mine if x.status != SubmissionStatus.ERROR]
        rows.append(Row(user, stand, len(counting), max((x.received_at for x in mine), default=None), sections,
                        counted))
    rows.sort(key=lambda r: (-r.standing.total, r.user.username))
    return rows


def scoreboard(session: Session, a: Assessment, viewer: User) -> list[dict]:
    out = []
    for r in standings(session, a):
        row = {"nickname": r.user.nickname, "score": r.standing.total, "raw": r.standing.raw,
               "late_penalty": r.standing.late_penalty, "early_bonus": r.standing.early_bonus,
               "adjustment": r.standing.adjustment, "sections": r.sections, "submissions": r.count,
               "last_submission": iso(r.last_received)}
        if viewer.is_staff:
            row = {"username": r.user.username, "display_name": r.user.display_name, **row}
        out.append(row)
    return out


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value):
    """A text cell a spreadsheet will not run as a formula (OWASP's advice: prefix a quote);
    numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


class _SafeWriter:
    """csv.writer whose text cells cannot start a formula (names and emails come from rosters)."""

    def __init__(self, buf: io.StringIO):
        self._w = csv.writer(buf)

    def writerow(self, row: list) -> None:
        self._w.writerow([spreadsheet_cell(x) for x in row])


def gradebook_csv(session: Session, a: Assessment) -> str:
    buf = io.StringIO()
    w = _SafeWriter(buf)
    names = list(a.sections)
    w.writerow(["username", "display_name", "email", "total", "raw", "late_days", "late_penalty",
                "early_bonus", "adjustment", *names, "submissions", "counted_version", "last_submission"])
    for r in standings(session, a, include_empty=True):
        by_name = {x["name"]: x["score"] for x in r.sections}
        counted_version = r.counted.version if r.counted is not None else ""
        w.writerow([r.user.username, r.user.display_name, r.user.email, r.standing.total, r.standing.raw,
                    r.standing.late_days, r.standing.late_penalty, r.standing.early_bonus, r.standing.adjustment,
                    *[by_name.get(n, "") for n in names], r.count, counted_version,
                    iso(r.last_received) or ""])
    return buf.getvalue()
