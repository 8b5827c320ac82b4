"""Every request body is capped while it streams, must arrive within a bounded time, and the
moment it has fully arrived is the request's receive time.

- Cap, per route, as the route declares it (`@body_limit(BodyKind...)`): an upload route takes its
  assessment's `upload_max_bytes` plus `upload_overhead_bytes` of multipart framing; the roster
  import `roster_max_bytes` plus the same framing; a similarity archive
  `similarity_archive_max_bytes` plus the same; every other route `form_max_bytes`. The cap is
  looked up at the body's first read, when the request has been routed. A declared
  Content-Length over the cap is refused at that read, and a chunked body the moment its
  running count passes the cap: 413, without spooling the rest.
- Time: the whole body must arrive within `body_timeout_seconds` of its request's headers (408).
  (app.http.server closes connections whose headers or body never finish even when no route reads.)
- `scope["received_at"]` is stamped when the last byte of the body has arrived: deadlines, the
  early bonus and late penalties count from then, so a slowly dribbled upload cannot be "on
  time" for code finished after the deadline.

Both refusals are Starlette HTTPExceptions raised from `receive`, so FastAPI's body parsing
passes them through unchanged and app.errors renders them as {"error", "message"}.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

from starlette.exceptions import HTTPException

from app.store.models import utcnow

F = TypeVar("F", bound=Callable)

_CLOSE = {"Connection": "close"}   # the rest of the body is not read: this connection is done


class BodyTooLarge(HTTPException):
    def __init__(self, cap: int):
        super().__init__(413, f"The request body is larger than this route accepts ({cap} bytes).", _CLOSE)


class BodyTooSlow(HTTPException):
    def __init__(self, seconds: float):
        super().__init__(408, f"The request body did not arrive within {seconds:g} seconds.", _CLOSE)


class BodyKind(StrEnum):
    """Routes whose bodies may be larger than a form; every other route gets `form_max_bytes`."""
    UPLOAD = "upload"                         # the route's {slug} assessment's upload_max_bytes
    ROSTER = "roster"                         # roster_max_bytes
    SIMILARITY_ARCHIVE = "similarity_archive"  # similarity_archive_max_bytes


def body_limit(kind: BodyKind) -> Callable[[F], F]:
    """Mark a route's endpoint (under its @router decorator) as taking a body of KIND: the route
    itself says so, instead of a second list of its path here."""
    def mark(endpoint: F) -> F:
        endpoint.body_kind = kind
        return endpoint
    return mark


def body_cap(app, scope) -> int:
    """The most bytes a request body may have on the route the request was routed to."""
    settings = app.state.settings
    kind = getattr(scope.get("endpoint"), "body_kind", None)
    if kind is BodyKind.UPLOAD:
        a = app.state.assessments.get(scope.get("path_params", {}).get("slug"))
        # an unknown assessment gets the form cap: its route answers 404 anyway
        return a.upload_max_bytes + settings.upload_overhead_bytes if a else settings.form_max_bytes
    if kind is BodyKind.ROSTER:
        return settings.roster_max_bytes + settings.upload_overhead_bytes
    if kind is BodyKind.SIMILARITY_ARCHIVE:
        return settings.similarity_archive_max_bytes + settings.upload_overhead_bytes
    return settings.form_max_bytes


class RequestBodyLimits:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        app = scope["app"]
        cap: int | None = None   # known at the first read: the request has been routed by then
        timeout = app.state.settings.body_timeout_seconds
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        received, done = 0, False

        async def limited_receive():
            nonlocal received, done, cap
            if done:   # the body is in: later reads wait for a disconnect, unbounded
                return await receive()
            if cap is None:
                cap = body_cap(app, scope)
            if declared is not None and declared.isdigit() and int(declared) > cap:
                raise BodyTooLarge(cap)
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
            except TimeoutError:
                raise BodyTooSlow(timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise BodyTooLarge(cap)
                if not message.get("more_body", False):
                    done = True
                    scope["received_at"] = utcnow()
            return message

        await self.app(scope, limited_receive, send)


def received_at(scope) -> object:
    """When the request's body had fully arrived (now, for a request whose body was not read)."""
    return scope.get("received_at") or utcnow()
