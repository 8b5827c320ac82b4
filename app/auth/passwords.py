"""Password hashing on a memory budget: argon2id sized for the container, and only a few hashes at once.

Each argon2 hash holds its whole memory cost while it runs. With argon2-cffi's defaults (64 MiB) and no
bound, 30 concurrent unauthenticated login attempts took the web process from 127 to 984 MiB, and 60 from
two addresses went past the compose file's 1 GiB limit. Here a hash costs 19 MiB (OWASP's argon2id
minimum: m=19 MiB, t=2, p=1), at most MAX_CONCURRENT run at once, at most MAX_WAITING more wait for a
turn, and any attempt beyond that is refused at once with `HashingBusy` (answered 429 by the callers),
so hashing never holds more than MAX_CONCURRENT x 19 MiB. The hashes run on a pool of MAX_CONCURRENT
threads of their own, not on the request's thread: glibc keeps a freed 19 MiB block in the arena of
the thread that used it, so hashing on 40 request threads kept 40 x 19 MiB resident. Hashes stored with other parameters still
verify (argon2 records them in the hash) and are rehashed on the next successful login.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MEMORY_COST_KIB = 19 * 1024
MAX_CONCURRENT = 2
MAX_WAITING = 8

T = TypeVar("T")
_hasher = PasswordHasher(time_cost=2, memory_cost=MEMORY_COST_KIB, parallelism=1)


class HashingBusy(RuntimeError):
    """Too many password checks are running or waiting; the caller answers 429 (try again)."""


class HashLane:
    """RUNNING threads that hash, and a bounded queue in front of them: callers beyond running + waiting
    are turned away at once, never queued."""

    def __init__(self, running: int, waiting: int):
        self._pool = ThreadPoolExecutor(running, thread_name_prefix="argon2")
        self._lock = threading.Lock()
        self._admitted = 0
        self._capacity = running + waiting

    def run(self, fn: Callable[..., T], *args) -> T:
        with self._lock:
            if self._admitted >= self._capacity:
                raise HashingBusy("too many password checks at once; try again in a moment")
            self._admitted += 1
        try:
            return self._pool.submit(fn, *args).result()
        finally:
            with self._lock:
                self._admitted -= 1


_lane = HashLane(MAX_CONCURRENT, MAX_WAITING)


@cache
def _dummy_hash() -> str:
    # Verified against when the user does not exist, so timing does not reveal names; made on first use,
    # not at import.
    return hash_password("not a real password")


def hash_password(password: str) -> str:
    return _lane.run(_hasher.hash, password)


def _matches(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def verify(stored_hash: str | None, password: str) -> bool:
    """True if PASSWORD matches STORED_HASH; with no hash, the same work against a dummy (and False)."""
    matched = _lane.run(_matches, stored_hash or _dummy_hash(), password)
    return matched and stored_hash is not None


def needs_rehash(stored_hash: str) -> bool:
    """True for a hash made with other parameters (e.g. argon2-cffi's 64 MiB default of earlier releases)."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return False
