"""JSON error bodies: {"error": CODE, "message": SENTENCE} for every API failure.

A database that cannot be reached (server down, connection lost, pool exhausted, SQLite still
locked after its busy timeout) answers 503 with Retry-After, never 500: every write is one
transaction, so the request left nothing half-done and the client may simply try again.
"""

from __future__ import annotations

import logging
import sqlite3

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_MESSAGE = "The database is unavailable for a moment. Please try again in a few seconds."
# SQLite's OperationalError also means "no such table" and the like (bugs, not outages).
_SQLITE_UNAVAILABLE = ("database is locked", "database table is locked", "unable to open database", "disk i/o error")


class NotFound(Exception):
    """The thing asked for does not exist, or is not the viewer's to see (the two look alike)."""


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.headers, self.extra = status, code, message, headers, extra


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


def _unavailable_response(request: Request):
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if request.url.path.startswith("/api/"):
        return JSONResponse(_body("database_unavailable", UNAVAILABLE_MESSAGE), status_code=503, headers=headers)
    return HTMLResponse("<!doctype html><title>Try again shortly</title><h1>Try again shortly</h1>"
                        f"<p>{UNAVAILABLE_MESSAGE}</p>", status_code=503, headers=headers)


def install(app: FastAPI) -> None:
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
        return JSONResponse(_body(exc.code, exc.message, **exc.extra), status_code=exc.status,
                            headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                413: "too_large"}.get(exc.status_code, "http_error")
        return JSONResponse(_body(code, str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse(_body("invalid_request", problems), status_code=422)
