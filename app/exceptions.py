"""The exceptions every layer may raise; app.http.errors turns them into answers, in one place: a JSON
body `{"error": CODE, "message": SENTENCE}` for the API, a redirect to the login page or an error
page for a browser."""

from __future__ import annotations


class ApiError(Exception):
    """A failure with its HTTP status, a stable code and one sentence for a person."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.headers, self.extra = status, code, message, headers, extra


class NotFound(ApiError):
    """The thing asked for does not exist, or is not the viewer's to see (the two look alike)."""

    def __init__(self, message: str = "There is nothing here, or it is not yours to see."):
        super().__init__(404, "not_found", message)


class LoginRequired(ApiError):
    """No working session or token. A page answers with the login page, then back to NEXT (default:
    the page asked for), saying the session EXPIRED when it did; a POLLED fragment answers an empty
    401 (app.js then stops polling and says why); the API answers 401 JSON."""

    def __init__(self, message: str = "Log in, or send `Authorization: Bearer TOKEN`.",
                 code: str = "unauthorized", *, www_authenticate: str = "Bearer", next: str | None = None,
                 expired: bool = False, polled: bool = False):
        super().__init__(401, code, message, headers={"WWW-Authenticate": www_authenticate})
        self.next, self.expired, self.polled = next, expired, polled


class Forbidden(ApiError):
    """Logged in, but not allowed: the role, or a cross-site form (code "csrf")."""

    def __init__(self, message: str, code: str = "forbidden"):
        super().__init__(403, code, message)
