"""What a form's POST has to show, carried across its redirect (post, redirect, get).

A roster import's activation links are secrets shown once: they cannot ride in the redirect's
URL (logs, history). They wait here, in the one web process `grader serve` runs, under a random
key that only the poster's next GET names, for a few minutes; the first GET takes them, so a
reload shows the plain page instead of a resend prompt or the links again. create_app keeps one
`Flashes` per process; a handler gets it as `app.http.deps.FlashesDep`."""

from __future__ import annotations

import secrets
import threading
import time

TTL_SECONDS = 600


class Flashes:
    def __init__(self) -> None:
        self._items: dict[str, tuple[float, int, dict]] = {}
        self._lock = threading.Lock()

    def put(self, user_id: int, shown: dict) -> str:
        key = secrets.token_urlsafe(16)
        now = time.monotonic()
        with self._lock:
            self._items = {k: v for k, v in self._items.items() if v[0] > now}   # drop the expired
            self._items[key] = (now + TTL_SECONDS, user_id, shown)
        return key

    def take(self, user_id: int, key: str) -> dict:
        """What was put under KEY for USER_ID, once; {} for another user's key or a used one."""
        with self._lock:
            item = self._items.get(key)
            if item is None or item[1] != user_id or item[0] <= time.monotonic():
                return {}
            del self._items[key]
        return item[2]
