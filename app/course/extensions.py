"""Extensions: a student's own deadlines (the assessment's, moved by their extension) and granting them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import accounts
from app.course import policy
from app.course.assessments import Assessment
from app.exceptions import NotFound
from app.store.db import Database
from app.store.models import Extension, User


def extension_seconds(session: Session, user_id: int, slug: str) -> int:
    return session.scalar(select(Extension.seconds).where(Extension.user_id == user_id,
                                                          Extension.assessment == slug)) or 0


def deadlines(session: Session, a: Assessment, user_id: int) -> policy.Deadlines:
    return policy.deadlines_for(a.rules(), extension_seconds(session, user_id, a.slug))


def set_extension(db: Database, slug: str, username: str, seconds: int, by: User) -> None:
    with db.session() as s, s.begin():
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFound()
        if not accounts.may_act_on(by, user):
            raise accounts.NotAllowed(f"{by.role} may not act on {user.role} accounts")
        ext = s.scalar(select(Extension).where(Extension.user_id == user.id, Extension.assessment == slug))
        if seconds <= 0:
            if ext is not None:
                s.delete(ext)
            return
        if ext is None:
            s.add(Extension(user_id=user.id, assessment=slug, seconds=seconds, granted_by=by.id))
        else:
            ext.seconds, ext.granted_by = seconds, by.id
