"""JSON error bodies: {"error": CODE, "message": SENTENCE} for every API failure; browsers get pages.

A request outside the API (/api/...) is answered with an HTML page, unless its Accept header asks
for JSON and not HTML (a script); the API always answers JSON. The guards of app.http.deps raise
LoginRequired, Forbidden and NotFound; this is where they become answers, for every handler at once:
a browser without a session goes to the login page (and back afterwards), a polled fragment gets
an empty 401, the rest an error page; the API gets JSON.

A database that cannot be reached (server down, connection lost, pool exhausted, SQLite still
locked after its busy timeout) answers 503 with Retry-After, never 500: every write is one
transaction, so the request left nothing half-done and the client may simply try again.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable
from urllib.parse import quote

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.auth.sessions import SESSION_COOKIE
from app.exceptions import ApiError, Forbidden, LoginRequired, NotFound

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_MESSAGE = "The database is unavailable for a moment. Please try again in a few seconds."
# SQLite's OperationalError also means "no such table" and the like (bugs, not outages).
_SQLITE_UNAVAILABLE = ("database is locked", "database table is locked", "unable to open database", "disk i/o error")


def _body(code: str, message: str, **extra) -> dict:
    return {"error": code, "message": message, **extra}


def database_unavailable(exc: BaseException) -> bool:
    """Whether EXC means "the database cannot be reached right now" (not a bug, not the user's doing)."""
    if isinstance(exc, sa_exc.TimeoutError):   # the connection pool stayed exhausted
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig
    if isinstance(exc, sqlite3.OperationalError):
        return any(m in str(exc).lower() for m in _SQLITE_UNAVAILABLE)
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))


def wants_html(request: Request) -> bool:
    """Outside the API, pages: unless the client asks for JSON and not HTML (a script)."""
    accept = request.headers.get("accept", "")
    asks_json = "application/json" in accept and "text/html" not in accept
    return not request.url.path.startswith("/api/") and not asks_json


def _unavailable_response(request: Request):
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if not wants_html(request):
        return JSONResponse(_body("database_unavailable", UNAVAILABLE_MESSAGE), status_code=503, headers=headers)
    return HTMLResponse("<!doctype html><title>Try again shortly</title><h1>Try again shortly</h1>"
                        f"<p>{UNAVAILABLE_MESSAGE}</p>", status_code=503, headers=headers)


def login_redirect(request: Request, target: str | None = None, expired: bool = False) -> RedirectResponse:
    """To the login page, then back to TARGET (default: this page). A session cookie that no
    longer works (or EXPIRED) means the session ended: the login page says so."""
    if target is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    flag = "expired=1&" if expired or SESSION_COOKIE in request.cookies else ""
    return RedirectResponse(f"/login?{flag}next={quote(target)}", status_code=303)


HtmlPage = Callable[[Request, int, str], Awaitable[Response]]
PAGE_MESSAGES = {
    401: "Log in to see this page.",
    403: "You are not allowed to open this page.",
    404: "There is no page at this address. Check the link, or start again from the home page.",
    405: "This address does not take that kind of request. Start again from the home page.",
    413: "That upload is too large.",
    500: "Something went wrong on our side. It has been logged; try again, and tell a TA if it keeps happening.",
}


def install(app: FastAPI, html_page: HtmlPage | None = None) -> None:
    """HTML_PAGE(request, status, sentence) renders the page a browser gets for an error."""
    @app.exception_handler(sa_exc.DBAPIError)
    @app.exception_handler(sa_exc.TimeoutError)
    @app.exception_handler(psycopg.OperationalError)
    async def _database_error(request: Request, exc: Exception):
        if not database_unavailable(exc):
            raise exc   # a bug: the usual 500
        log.warning("database unavailable: %s %s: %s", request.method, request.url.path,
                    str(exc).splitlines()[0])
        return _unavailable_response(request)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        if html_page is not None and wants_html(request) and isinstance(exc, (LoginRequired, Forbidden, NotFound)):
            if isinstance(exc, LoginRequired):
                return HTMLResponse("", status_code=401) if exc.polled else login_redirect(request, exc.next, exc.expired)
            return await html_page(request, exc.status, exc.message)
        return JSONResponse(_body(exc.code, exc.message, **exc.extra), status_code=exc.status,
                            headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                408: "too_slow", 413: "too_large"}.get(exc.status_code, "http_error")
        if html_page is not None and wants_html(request):
            page = await html_page(request, exc.status_code,
                                   PAGE_MESSAGES.get(exc.status_code, str(exc.detail)))
            for name, value in (getattr(exc, "headers", None) or {}).items():
                page.headers[name] = value
            return page
        return JSONResponse(_body(code, str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        if html_page is not None and wants_html(request):
            return await html_page(request, 400, "This address was given something it cannot use: "
                                   f"{problems}. Start again from the home page.")
        return JSONResponse(_body("invalid_request", problems), status_code=422)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):
        # Starlette still re-raises it after this answer, so it is logged with its traceback.
        if html_page is not None and wants_html(request):
            return await html_page(request, 500, PAGE_MESSAGES[500])
        return JSONResponse(_body("internal_error", "Internal server error."), status_code=500)
