"""Logging in, for the login page and POST /api/v1/login alike: throttling, the login form's
CSRF token, the "known browser" cookie.

Throttling (counters in the shared database, app.auth.ratelimit):
- per client address: every attempt, whatever the account (login_attempts_per_minute_per_client);
- per account: attempts from browsers that never logged in as that account
  (login_attempts_per_minute);
- a browser that did log in as that account before carries a signed device cookie and is
  counted on its own (same per-minute limit), so a stranger's wrong guesses never lock the real
  user out of a browser they have used (OWASP's "device cookies" against account lockout).

The login and activation forms are posted before there is a session, so they carry a token of
their own: a random value, kept in a signed cookie and echoed by the form (double submit);
a foreign page can neither read the cookie nor forge its signature.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.auth import accounts, passwords
from app.auth.ratelimit import Verdict
from app.auth.sessions import set_session
from app.store.models import User

LOGIN_CSRF_COOKIE = "grader_login_csrf"
DEVICE_COOKIE = "grader_device"
LOGIN_CSRF_MAX_AGE = 24 * 3600
MAX_USERNAME = 100


def _signer(request: Request, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.settings.signing_key, salt=salt)


def _cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax",
                        secure=request.app.state.settings.cookie_secure, path="/")


# ---------------------------------------------------------------------------------------------
# the login form's own CSRF token

def _form_token_from_cookie(request: Request) -> str | None:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not cookie:
        return None
    try:
        return str(_signer(request, "login-csrf").loads(cookie, max_age=LOGIN_CSRF_MAX_AGE))
    except BadSignature:
        return None


def form_token(request: Request) -> str:
    """The token to put in the login (or activation) form: the browser's current one, or a new one."""
    return _form_token_from_cookie(request) or secrets.token_urlsafe(24)


def remember_form_token(request: Request, response: Response, token: str) -> Response:
    _cookie(request, response, LOGIN_CSRF_COOKIE, _signer(request, "login-csrf").dumps(token),
            LOGIN_CSRF_MAX_AGE)
    return response


def form_token_ok(request: Request, sent: str) -> bool:
    expected = _form_token_from_cookie(request)
    return bool(expected and sent) and hmac.compare_digest(str(sent), expected)


# ---------------------------------------------------------------------------------------------
# throttled password check

@dataclass
class Attempt:
    user: User | None
    refused: Verdict | None = None    # set when a rate limit refused the attempt (not checked)


def _client(request: Request) -> str:
    # request.client is the socket's peer, or what a configured trusted proxy said (uvicorn's
    # proxy_headers, only for settings.trusted_proxies).
    return request.client.host if request.client else "?"


def _device(request: Request, username: str) -> str | None:
    cookie = request.cookies.get(DEVICE_COOKIE)
    if not cookie:
        return None
    try:
        data = _signer(request, "device").loads(cookie, max_age=request.app.state.settings.device_cookie_max_age)
    except BadSignature:
        return None
    return str(data.get("n")) if isinstance(data, dict) and data.get("u") == username else None


def _throttle(request: Request, username: str) -> Verdict:
    settings = request.app.state.settings
    limiter = request.app.state.limiter
    device = _device(request, username)
    if device:
        return limiter.hit(f"login-device:{device}", settings.login_attempts_per_minute)
    verdict = limiter.hit(f"login-client:{_client(request)}", settings.login_attempts_per_minute_per_client)
    if not verdict.allowed:
        return verdict
    return limiter.hit(f"login-account:{username.lower()}", settings.login_attempts_per_minute)


def attempt(request: Request, username: str, password: str) -> Attempt:
    """Check USERNAME/PASSWORD under the rate limits (blocking: call from a worker thread)."""
    verdict = _throttle(request, username[:MAX_USERNAME])
    if not verdict.allowed:
        return Attempt(None, verdict)
    if len(username) > MAX_USERNAME or len(password) > accounts.MAX_PASSWORD_LENGTH:
        return Attempt(None)   # cannot be right; no need to hash a megabyte
    db = request.app.state.db
    try:
        with db.read_session() as s:
            user = accounts.authenticate(s, username, password)
        if user is not None and passwords.needs_rehash(user.password_hash):
            with db.session() as s, s.begin():
                accounts.upgrade_hash(s.get(User, user.id), password)
    except passwords.HashingBusy:
        return Attempt(None, Verdict(allowed=False, retry_after=1))
    return Attempt(user)


def start_session(request: Request, response: Response, user: User) -> str:
    """Log USER in on RESPONSE and remember this browser for USER; returns the session's CSRF token."""
    device = _signer(request, "device").dumps({"u": user.username, "n": secrets.token_urlsafe(16)})
    _cookie(request, response, DEVICE_COOKIE, device, request.app.state.settings.device_cookie_max_age)
    return set_session(request, response, user)
