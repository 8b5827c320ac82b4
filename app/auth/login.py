"""Logging in, for the login page and POST /api/v1/login alike: throttling, the login form's
CSRF token, the "known browser" device token. Plain values in and out; app.http.sessions reads
and sets the cookies.

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

from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.auth import accounts, passwords
from app.auth.ratelimit import RateLimiter, Verdict
from app.settings import Settings
from app.store.db import Database
from app.store.models import User

LOGIN_CSRF_COOKIE = "grader_login_csrf"
DEVICE_COOKIE = "grader_device"
LOGIN_CSRF_MAX_AGE = 24 * 3600
MAX_USERNAME = 100


def _signer(settings: Settings, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.signing_key, salt=salt)


# ---------------------------------------------------------------------------------------------
# the login form's own CSRF token

def form_token_of(settings: Settings, cookie: str | None) -> str | None:
    """The token a login-CSRF cookie's value carries, if it is ours and fresh."""
    if not cookie:
        return None
    try:
        return str(_signer(settings, "login-csrf").loads(cookie, max_age=LOGIN_CSRF_MAX_AGE))
    except BadSignature:
        return None


def sign_form_token(settings: Settings, token: str) -> str:
    return _signer(settings, "login-csrf").dumps(token)


def form_token_ok(settings: Settings, cookie: str | None, sent: str) -> bool:
    expected = form_token_of(settings, cookie)
    return bool(expected and sent) and hmac.compare_digest(str(sent), expected)


# ---------------------------------------------------------------------------------------------
# the "known browser" device token

def device_of(settings: Settings, cookie: str | None, username: str) -> str | None:
    """The device id a device cookie's value carries for USERNAME (None: unknown browser)."""
    if not cookie:
        return None
    try:
        data = _signer(settings, "device").loads(cookie, max_age=settings.device_cookie_max_age)
    except BadSignature:
        return None
    return str(data.get("n")) if isinstance(data, dict) and data.get("u") == username else None


def new_device(settings: Settings, user: User) -> str:
    """A device cookie's value: this browser has logged in as USER."""
    return _signer(settings, "device").dumps({"u": user.username, "n": secrets.token_urlsafe(16)})


# ---------------------------------------------------------------------------------------------
# throttled password check

@dataclass
class Attempt:
    user: User | None
    refused: Verdict | None = None    # set when a rate limit refused the attempt (not checked)


def _throttle(limiter: RateLimiter, settings: Settings, username: str, client: str, device: str | None) -> Verdict:
    if device:
        return limiter.hit(f"login-device:{device}", settings.login_attempts_per_minute)
    verdict = limiter.hit(f"login-client:{client}", settings.login_attempts_per_minute_per_client)
    if not verdict.allowed:
        return verdict
    return limiter.hit(f"login-account:{username.lower()}", settings.login_attempts_per_minute)


def attempt(db: Database, limiter: RateLimiter, settings: Settings, username: str, password: str, *,
            client: str, device_cookie: str | None) -> Attempt:
    """Check USERNAME/PASSWORD under the rate limits (blocking: call from a worker thread). CLIENT
    is the caller's address; DEVICE_COOKIE the browser's device cookie, if it sent one."""
    device = device_of(settings, device_cookie, username[:MAX_USERNAME])
    verdict = _throttle(limiter, settings, username[:MAX_USERNAME], client, device)
    if not verdict.allowed:
        return Attempt(None, verdict)
    if len(username) > MAX_USERNAME or len(password) > accounts.MAX_PASSWORD_LENGTH:
        return Attempt(None)   # cannot be right; no need to hash a megabyte
    try:
        with db.read_session() as s:
            user = accounts.authenticate(s, username, password)
        if user is not None and passwords.needs_rehash(user.password_hash):
            with db.session() as s, s.begin():
                accounts.upgrade_hash(s.get(User, user.id), password)
    except passwords.HashingBusy:
        return Attempt(None, Verdict(allowed=False, retry_after=1))
    return Attempt(user)
