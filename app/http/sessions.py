"""The session at the HTTP edge: reading the Bearer token or the session cookie, setting and
clearing cookies, the same-origin and CSRF checks. app.auth.sessions and app.auth.login do the
signing and checking on plain values; app.http.deps hands these the settings and the database.

Pages put the session's CSRF token in their forms as the hidden field `csrf_token`; JSON clients
using the cookie send it as the `X-CSRF-Token` header. State changes made with a cookie must come
from our own origin (Origin / Sec-Fetch-Site) and echo that token.
"""

from __future__ import annotations

from secrets import token_urlsafe
from urllib.parse import urlsplit

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from app.auth import login, sessions
from app.auth.sessions import SESSION_COOKIE, Principal
from app.exceptions import Forbidden, LoginRequired
from app.settings import Settings
from app.store.db import Database
from app.store.models import User

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _load(request: Request, db: Database, settings: Settings) -> Principal | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        principal, refused = sessions.from_token(db, header[7:].strip())
        if refused is not None:   # a token was sent but refused: say why, unlike "no token at all"
            request.scope["token_refused"] = refused
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    return sessions.from_cookie(db, settings, cookie) if cookie else None


async def principal_for(request: Request, db: Database, settings: Settings) -> Principal | None:
    """Who is asking (None: nobody logged in), looked up once per request."""
    if "principal" not in request.scope:
        request.scope["principal"] = await run_in_threadpool(_load, request, db, settings)
    return request.scope["principal"]


def login_required(request: Request) -> LoginRequired:
    """Why there is no caller: a refused token says why, anything else asks to log in."""
    if "token_refused" in request.scope:
        return LoginRequired(request.scope["token_refused"], "invalid_token",
                             www_authenticate='Bearer error="invalid_token"')
    return LoginRequired()


def _set_cookie(response: Response, settings: Settings, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax",
                        secure=settings.cookie_secure, path="/")


def start_session(response: Response, settings: Settings, user: User) -> str:
    """Log USER in on RESPONSE and remember this browser for USER; returns the session's CSRF token."""
    _set_cookie(response, settings, login.DEVICE_COOKIE, login.new_device(settings, user),
                settings.device_cookie_max_age)
    value, csrf = sessions.issue_session(settings, user)
    _set_cookie(response, settings, SESSION_COOKIE, value, settings.session_max_age)
    return csrf


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def client_address(request: Request) -> str:
    # request.client is the socket's peer, or what a configured trusted proxy said (uvicorn's
    # proxy_headers, only for settings.trusted_proxies).
    return request.client.host if request.client else "?"


# ---------------------------------------------------------------------------------------------
# the login and activation forms' own token (posted before there is a session)

def form_token(request: Request, settings: Settings) -> str:
    """The token to put in the login (or activation) form: the browser's current one, or a new one."""
    return login.form_token_of(settings, request.cookies.get(login.LOGIN_CSRF_COOKIE)) or token_urlsafe(24)


def remember_form_token(response: Response, settings: Settings, token: str) -> Response:
    _set_cookie(response, settings, login.LOGIN_CSRF_COOKIE, login.sign_form_token(settings, token),
                login.LOGIN_CSRF_MAX_AGE)
    return response


def form_token_ok(request: Request, settings: Settings, sent: str) -> bool:
    return login.form_token_ok(settings, request.cookies.get(login.LOGIN_CSRF_COOKIE), sent)


# ---------------------------------------------------------------------------------------------
# same origin, CSRF

def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def foreign_origin(request: Request, settings: Settings) -> bool:
    """Whether a browser says this request comes from another site's page. Our origin is the
    configured base URL or the address the request was sent to."""
    origin = request.headers.get("origin")
    if origin:
        ours = {_origin_of(settings.base_url), _origin_of(str(request.base_url))}
        return origin.lower() not in ours
    return request.headers.get("sec-fetch-site", "") == "cross-site"


def refuse_foreign_origin(request: Request, settings: Settings) -> None:
    if foreign_origin(request, settings):
        raise Forbidden("This form was sent from another site's page; open it on this site.", "csrf")


# Every form this service takes has at most one file and a handful of fields. Starlette keeps the
# first parse of a request's form, so every parse goes through read_form with these limits:
# whoever parses first (the CSRF check or the route), the limits are the same.
FORM_LIMITS = {"max_files": 1, "max_fields": 8}


async def read_form(request: Request):
    """The request's form, parsed once, with FORM_LIMITS (400 past them)."""
    return await request.form(**FORM_LIMITS)


async def check_csrf(request: Request, settings: Settings, principal: Principal) -> None:
    """Cookie-authenticated state changes must come from our origin and echo the session's CSRF token."""
    if request.method in SAFE_METHODS or principal.via != "cookie":
        return
    refuse_foreign_origin(request, settings)
    sent = request.headers.get(CSRF_HEADER)
    if not sent and request.headers.get("content-type", "").startswith(
            ("multipart/form-data", "application/x-www-form-urlencoded")):
        sent = (await read_form(request)).get(CSRF_FIELD)
    if not sessions.csrf_matches(principal, sent):
        raise Forbidden("The CSRF token is missing or wrong; reload the page and try again.", "csrf")
