"""Who is asking: a Bearer API token or a signed session cookie; CSRF for cookie requests.

The same dependency (`require_user`) serves the JSON API and server-rendered pages. Pages can
use `principal_for` (never raises) and `csrf_token` to put the token in their forms as the
hidden field `csrf_token`; JSON clients using the cookie send it as the `X-CSRF-Token` header.

A session cookie names the account and the account's session generation when it was issued;
logout, a password change, activation and a role change bump the generation, which ends every
session of that account (a copied cookie included). State changes made with a cookie must come
from our own origin (Origin / Sec-Fetch-Site) and echo the session's CSRF token.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool

from app.auth import accounts
from app.exceptions import ApiError
from app.store.models import User

SESSION_COOKIE = "grader_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass
class Principal:
    user: User
    via: str                 # "token" | "cookie"
    csrf: str = ""


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.settings.signing_key, salt="session")


def set_session(request: Request, response: Response, user: User) -> str:
    """Log USER in on RESPONSE; returns the session's CSRF token."""
    csrf = secrets.token_urlsafe(24)
    settings = request.app.state.settings
    value = _serializer(request).dumps({"uid": user.id, "gen": user.session_generation or 0, "csrf": csrf})
    response.set_cookie(SESSION_COOKIE, value, max_age=settings.session_max_age, httponly=True,
                        samesite="lax", secure=settings.cookie_secure, path="/")
    return csrf


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def _load(request: Request) -> Principal | None:
    db = request.app.state.db
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        with db.read_session() as s:
            token = header[7:].strip()
            user = accounts.user_for_token(s, token)
            if user is None:   # a token was sent but refused: say why, unlike "no token at all"
                request.scope["token_refused"] = accounts.why_token_refused(s, token)
        return Principal(user, "token") if user else None
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        data = _serializer(request).loads(cookie, max_age=request.app.state.settings.session_max_age)
    except BadSignature:
        return None
    with db.read_session() as s:
        user = s.get(User, data.get("uid"))
    if user is None or not user.active or data.get("gen") != (user.session_generation or 0):
        return None   # logged out, password or role changed since: the session is over
    return Principal(user, "cookie", str(data.get("csrf", "")))


async def principal_for(request: Request) -> Principal | None:
    if "principal" not in request.scope:
        request.scope["principal"] = await run_in_threadpool(_load, request)
    return request.scope["principal"]


def csrf_token(principal: Principal | None) -> str:
    return principal.csrf if principal and principal.via == "cookie" else ""


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def foreign_origin(request: Request) -> bool:
    """Whether a browser says this request comes from another site's page. Our origin is the
    configured base URL or the address the request was sent to."""
    origin = request.headers.get("origin")
    if origin:
        ours = {_origin_of(request.app.state.settings.base_url), _origin_of(str(request.base_url))}
        return origin.lower() not in ours
    return request.headers.get("sec-fetch-site", "") == "cross-site"


def refuse_foreign_origin(request: Request) -> None:
    if foreign_origin(request):
        raise ApiError(403, "csrf", "This form was sent from another site's page; open it on this site.")


# Every form this service takes has at most one file and a handful of fields. Starlette keeps the
# first parse of a request's form, so every parse goes through read_form with these limits:
# whoever parses first (the CSRF check or the route), the limits are the same.
FORM_LIMITS = {"max_files": 1, "max_fields": 8}


async def read_form(request: Request):
    """The request's form, parsed once, with FORM_LIMITS (400 past them)."""
    return await request.form(**FORM_LIMITS)


async def check_csrf(request: Request, principal: Principal) -> None:
    """Cookie-authenticated state changes must come from our origin and echo the session's CSRF token."""
    if request.method in SAFE_METHODS or principal.via != "cookie":
        return
    refuse_foreign_origin(request)
    sent = request.headers.get(CSRF_HEADER)
    if not sent and request.headers.get("content-type", "").startswith(
            ("multipart/form-data", "application/x-www-form-urlencoded")):
        sent = (await read_form(request)).get(CSRF_FIELD)
    if not sent or not principal.csrf or not hmac.compare_digest(str(sent), principal.csrf):
        raise ApiError(403, "csrf", "The CSRF token is missing or wrong; reload the page and try again.")


async def require_user(request: Request) -> User:
    principal = await principal_for(request)
    if principal is None and "token_refused" in request.scope:
        raise ApiError(401, "invalid_token", request.scope["token_refused"],
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if principal is None:
        raise ApiError(401, "unauthorized", "Log in, or send `Authorization: Bearer TOKEN`.",
                       headers={"WWW-Authenticate": "Bearer"})
    await check_csrf(request, principal)
    return principal.user


async def require_staff(request: Request) -> User:
    user = await require_user(request)
    if not user.is_staff:
        raise ApiError(403, "forbidden", "Only TAs and admins can do this.")
    return user
