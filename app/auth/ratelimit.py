"""Rate limits as sliding windows over rows in the shared database (table rate_limit_hits).

Why not a library: `limits` and `slowapi` keep counters in process memory (one web process
each) or in Redis/Memcached/MongoDB, which this deployment does not run; the database every web
process already shares does the job in one short transaction per hit. Storage stays bounded:
a key is stored as its sha256 (64 characters, whatever the client sent), a key never holds more
rows than its limit (refused hits are not recorded), and rows older than the window are deleted
on every hit. Nothing is kept in process memory. On Postgres a transaction-scoped advisory lock
per key makes count-then-insert atomic across processes; SQLite's write lock already does.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from sqlalchemy import delete, func, select, text

from app.store.db import Database
from app.store.models import RateLimitHit


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0    # seconds until a hit leaves the window (when refused)


class RateLimiter:
    def __init__(self, db: Database, window_seconds: float = 60.0):
        self.db, self.window = db, window_seconds

    def hit(self, key: str, limit: int) -> Verdict:
        """Record one hit for KEY unless the last window already holds LIMIT (<= 0: no limit)."""
        if limit <= 0:
            return Verdict(True)
        now = time.time()
        since = now - self.window
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        with self.db.session() as s, s.begin():
            if s.bind.dialect.name == "postgresql":
                s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": digest})
            s.execute(delete(RateLimitHit).where(RateLimitHit.at <= since))
            count, oldest = s.execute(select(func.count(), func.min(RateLimitHit.at))
                                      .where(RateLimitHit.key == digest)).one()
            if count >= limit:
                return Verdict(False, max(1, math.ceil(oldest + self.window - now)))
            s.add(RateLimitHit(key=digest, at=now))
        return Verdict(True)
