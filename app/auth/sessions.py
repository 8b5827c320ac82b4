"""Who is asking, from plain values: a Bearer API token or a signed session cookie's value.

A session cookie names the account and the account's session generation when it was issued;
logout, a password change, activation and a role change bump the generation, which ends every
session of that account (a copied cookie included). Each session carries a CSRF token that
cookie-authenticated state changes must echo (app.http.sessions reads the request and checks it).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.auth import accounts
from app.settings import Settings
from app.store.db import Database
from app.store.models import User

SESSION_COOKIE = "grader_session"


@dataclass
class Principal:
    user: User
    via: str                 # "token" | "cookie"
    csrf: str = ""


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.signing_key, salt="session")


def issue_session(settings: Settings, user: User) -> tuple[str, str]:
    """A session for USER: (the cookie's value, the session's CSRF token)."""
    csrf = secrets.token_urlsafe(24)
    value = _serializer(settings).dumps({"uid": user.id, "gen": user.session_generation or 0, "csrf": csrf})
    return value, csrf


def from_token(db: Database, token: str) -> tuple[Principal | None, str | None]:
    """The caller of a Bearer TOKEN, or (None, why it was refused)."""
    with db.read_session() as s:
        user = accounts.user_for_token(s, token)
        if user is None:
            return None, accounts.why_token_refused(s, token)
    return Principal(user, "token"), None


def from_cookie(db: Database, settings: Settings, cookie: str) -> Principal | None:
    """The session a cookie's value names, if it is still the account's current one."""
    try:
        data = _serializer(settings).loads(cookie, max_age=settings.session_max_age)
    except BadSignature:
        return None
    with db.read_session() as s:
        user = s.get(User, data.get("uid"))
    if user is None or not user.active or data.get("gen") != (user.session_generation or 0):
        return None   # logged out, password or role changed since: the session is over
    return Principal(user, "cookie", str(data.get("csrf", "")))


def csrf_token(principal: Principal | None) -> str:
    """The token a page puts in its forms (empty for a Bearer caller: no cookie, no CSRF)."""
    return principal.csrf if principal and principal.via == "cookie" else ""


def csrf_matches(principal: Principal, sent: str | None) -> bool:
    return bool(sent and principal.csrf) and hmac.compare_digest(str(sent), principal.csrf)
