"""How `grader serve` runs the app under uvicorn, with bounds on slow and greedy clients.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`) and answers 503 past
`limit_concurrency`, but it has no deadline for a request's headers, and any byte received
cancels its keep-alive timer: a client dribbling one header byte at a time holds a connection
forever. BoundedH11Protocol adds the two missing deadlines per request:
- the headers must be complete within `header_timeout_seconds` of the first byte (or of the
  connection, or of the previous response);
- the body must be complete within `body_timeout_seconds` of the headers, plus a few seconds so
  app.http.bodylimits can answer 408 first when a route is reading it.
A connection that misses either is closed. Proxy headers (X-Forwarded-For/-Proto) are believed
only from `trusted_proxies`.
"""

from __future__ import annotations

import asyncio

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.settings import Settings

BODY_GRACE_SECONDS = 5.0


class BoundedH11Protocol(H11Protocol):
    header_timeout = 10.0
    body_timeout = 60.0 + BODY_GRACE_SECONDS

    def connection_made(self, transport: asyncio.Transport) -> None:   # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm(self.header_timeout)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self.logger.info("closing a connection whose request did not arrive in time: %s", self.client)
            self.transport.close()

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.conn.their_state is h11.SEND_BODY:
            if self.cycle is not cycle:            # a new request's headers are in: now its body
                self._arm(self.body_timeout)
        elif self.conn.their_state is not h11.IDLE:   # the request is complete (or the connection over)
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm(self.timeout_keep_alive + self.header_timeout)   # the next request's headers

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def protocol_for(settings: Settings) -> type[BoundedH11Protocol]:
    return type("ConfiguredH11Protocol", (BoundedH11Protocol,),
                {"header_timeout": settings.header_timeout_seconds,
                 "body_timeout": settings.body_timeout_seconds + BODY_GRACE_SECONDS})


def public_settings(settings: Settings, host: str, port: int) -> Settings:
    """When GRADER_BASE_URL is not set, the service's public address is where it listens."""
    if "base_url" in settings.model_fields_set:
        return settings
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return settings.model_copy(update={"base_url": f"http://{shown}:{port}"})


def uvicorn_config(app, settings: Settings, host: str, port: int, log_level: str = "warning") -> uvicorn.Config:
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, http=protocol_for(settings),
                          timeout_keep_alive=5, limit_concurrency=settings.limit_concurrency,
                          proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None)


def run(app, settings: Settings, host: str, port: int, log_level: str = "warning") -> None:
    uvicorn.Server(uvicorn_config(app, settings, host, port, log_level)).run()
