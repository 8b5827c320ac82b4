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

`limit_concurrency` is one budget for everyone: a single client holding 1,100 idle sockets made
every other request, health probes included, a 503 for 40 s. So each peer address may hold at most
`connections_per_client` open connections (well below the global limit); the next one is answered
503 and closed before it costs anything. A trusted proxy is exempt: it carries everyone's
connections, and the documented front proxy caps them per client itself.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import ClassVar

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.settings import Settings

BODY_GRACE_SECONDS = 5.0


_TOO_MANY_BODY = b"Too many open connections from your address; close some and try again.\n"
TOO_MANY_CONNECTIONS = (b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nConnection: close\r\n"
                        b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                        % (len(_TOO_MANY_BODY), _TOO_MANY_BODY))


class BoundedH11Protocol(H11Protocol):
    header_timeout = 10.0
    body_timeout = 60.0 + BODY_GRACE_SECONDS
    connections_per_client = 0                      # 0: no per-client cap
    exempt_clients: ClassVar[frozenset[str]] = frozenset()
    open_by_client: ClassVar[Counter[str]] = Counter()   # one per configured class (one server); loop thread only

    def connection_made(self, transport: asyncio.Transport) -> None:   # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        self._counted_as: str | None = None
        super().connection_made(transport)
        host = self.client[0] if self.client else None
        if host is not None and self.connections_per_client and host not in self.exempt_clients:
            if self.open_by_client[host] >= self.connections_per_client:
                transport.write(TOO_MANY_CONNECTIONS)
                transport.close()
                return
            self.open_by_client[host] += 1
            self._counted_as = host
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
        if self._counted_as is not None:
            self.open_by_client[self._counted_as] -= 1
            if not self.open_by_client[self._counted_as]:
                del self.open_by_client[self._counted_as]
            self._counted_as = None
        super().connection_lost(exc)


def trusted_proxies(settings: Settings) -> list[str]:
    return [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]


def protocol_for(settings: Settings) -> type[BoundedH11Protocol]:
    return type("ConfiguredH11Protocol", (BoundedH11Protocol,),
                {"header_timeout": settings.header_timeout_seconds,
                 "body_timeout": settings.body_timeout_seconds + BODY_GRACE_SECONDS,
                 "connections_per_client": settings.connections_per_client,
                 "exempt_clients": frozenset(trusted_proxies(settings)),
                 "open_by_client": Counter()})


def public_settings(settings: Settings, host: str, port: int) -> Settings:
    """When GRADER_BASE_URL is not set, the service's public address is where it listens."""
    if "base_url" in settings.model_fields_set:
        return settings
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return settings.model_copy(update={"base_url": f"http://{shown}:{port}"})


def uvicorn_config(app, settings: Settings, host: str, port: int, log_level: str = "warning") -> uvicorn.Config:
    proxies = trusted_proxies(settings)
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, http=protocol_for(settings),
                          timeout_keep_alive=5, limit_concurrency=settings.limit_concurrency,
                          proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None)


def run(app, settings: Settings, host: str, port: int, log_level: str = "warning") -> None:
    uvicorn.Server(uvicorn_config(app, settings, host, port, log_level)).run()
