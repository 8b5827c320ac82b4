"""Standings: each student's counted score, the scoreboard (names for staff, nicknames for
students) and the gradebook CSV."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.course import policy
from app.course.assessments import Assessment
from app.course.submissions import as_attempt, iso, stored_result
from app.store.models import Extension, Result, Submission, User
from app.store.states import SubmissionStatus


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
            result = stored_result(session.get(Result, chosen.result_id).body)
            sections = [{"name": x.name, "score": x.score, "max_score": x.max_score} for x in result.sections]
        counting = [x for x in mine if x.status != SubmissionStatus.ERROR]
        rows.append(Row(user, stand, len(counting), max((x.received_at for x in mine), default=None), sections))
    rows.sort(key=lambda r: (-r.standing.total, r.user.username))
    return rows


def scoreboard(session: Session, a: Assessment, viewer: User) -> list[dict]:
    out = []
    for r in standings(session, a):
        row = {"nickname": r.user.nickname, "score": r.standing.total, "raw": r.standing.raw,
               "late_penalty": r.standing.late_penalty, "early_bonus": r.standing.early_bonus,
               "sections": r.sections, "submissions": r.count,
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
                "early_bonus", *names, "submissions", "counted_version", "last_submission"])
    for r in standings(session, a, include_empty=True):
        by_name = {x["name"]: x["score"] for x in r.sections}
        counted_version = ""
        if r.standing.counted is not None:
            counted_version = session.get(Submission, r.standing.counted.ident).version
        w.writerow([r.user.username, r.user.display_name, r.user.email, r.standing.total, r.standing.raw,
                    r.standing.late_days, r.standing.late_penalty, r.standing.early_bonus,
                    *[by_name.get(n, "") for n in names], r.count, counted_version,
                    iso(r.last_received) or ""])
    return buf.getvalue()
