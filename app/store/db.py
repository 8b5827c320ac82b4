"""Engine, sessions, the schema check, and the doorbells that wake idle workers.

On SQLite every session that may write starts with BEGIN IMMEDIATE, so a read-then-write
transaction (limit checks, queue claims) holds the write lock from its first statement and two
writers never both read a stale state; `read_session()` is for pure reads. On Postgres the same
code relies on row locks (FOR UPDATE, SKIP LOCKED).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from app.settings import REPO_ROOT

MIGRATIONS = REPO_ROOT / "migrations"


class SchemaOutOfDate(RuntimeError):
    pass


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False},
                               pool_size=20, max_overflow=40)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN itself
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")   # durable at commit: the 202 promises it
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        # SQLite's busy handler polls with sleeps that grow to 100 ms: a dozen of this process's
        # threads writing at once starved one another for seconds (accept p99 2.2 s with no worker
        # running). They queue on a lock instead and take SQLite's turn by turn; other processes
        # (workers) still meet the busy handler, for their few short transactions.
        writing = threading.Lock()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            if not conn.get_execution_options().get("sqlite_immediate", False):
                conn.exec_driver_sql("BEGIN")
                return
            if not conn.info.get("holds_write_lock"):
                if not writing.acquire(timeout=60):   # SQLite's own busy timeout: an error, never a hang
                    raise sqlite3.OperationalError("database is locked (by this process's other writers)")
                conn.info["holds_write_lock"] = True
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        @event.listens_for(engine, "checkin")   # after its COMMIT or ROLLBACK, whatever happened
        def _on_checkin(_dbapi_conn, record):
            if record.info.pop("holds_write_lock", False):
                writing.release()
        return engine
    return create_engine(url, pool_size=20, max_overflow=40, pool_pre_ping=True)


class Doorbell(Protocol):
    """What wakes an idle worker (app/grading/worker.py) when a job is queued, instead of its next
    poll. Three kinds: `LocalDoorbell` (workers in the process that queued the job), `PostgresDoorbell`
    (LISTEN/NOTIFY, any process on any machine) and a worker process's pipe
    (app/grading/worker_processes.PipeDoorbell)."""

    @property
    def rings(self) -> int:
        """Read before looking for work; `wait(rings)` then returns at once if it rang meanwhile."""

    def ring(self) -> None:
        """A job was queued (a no-op where the queueing transaction itself announces it)."""

    def wait(self, seen: int, timeout: float) -> bool:
        """Until it rings after SEEN or TIMEOUT passes; True if it rang."""


class LocalDoorbell:
    """Rung after a transaction that queued a job commits, so idle workers in this process start
    at once instead of at their next poll; `grader serve` also rings its worker processes through
    pipes (app/grading/worker_processes.py). `grader worker` processes LISTEN on Postgres (PostgresDoorbell)
    and poll on SQLite."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._rings = 0
        self.waiting = 0   # threads asleep in wait() now (for queue health and tests)
        self._also: list = []

    @property
    def rings(self) -> int:
        """Read before looking for work; `wait(rings)` then returns at once if it rang meanwhile."""
        return self._rings

    def ring(self) -> None:
        with self._cond:
            self._rings += 1
            self._cond.notify_all()
        for also in self._also:
            also()

    def also_ring(self, ring) -> None:
        """Call RING too on every ring (`grader serve` wakes its worker processes so)."""
        self._also.append(ring)

    def stop_ringing(self, ring) -> None:
        if ring in self._also:
            self._also.remove(ring)

    def wait(self, seen: int, timeout: float) -> bool:
        """Until it rings after SEEN or TIMEOUT passes; True if it rang."""
        with self._cond:
            self.waiting += 1
            try:
                return self._cond.wait_for(lambda: self._rings != seen, timeout)
            finally:
                self.waiting -= 1


class PostgresDoorbell:
    """A worker's doorbell on Postgres: LISTEN on the jobs channel, which `queue.enqueue` NOTIFYs
    when its transaction commits, so an idle `grader worker` on any machine starts at once instead
    of at its next poll. One per worker thread (its own connection, out of the engine's pool).
    Notifications wait on the connection while the worker is busy: none is slept through."""

    waiting = 0

    def __init__(self, db: Database, channel: str):
        self._db, self._channel = db, channel
        self._raw = None

    @property
    def rings(self) -> int:
        """Read before each look for work: so it listens before it looks, and misses nothing."""
        try:
            self._listening()
        except Exception:  # noqa: BLE001 - the database is down: `wait` falls back to polling
            self.close()
        return 0

    def ring(self) -> None:
        """Jobs are announced by the transaction that queues them (queue.notify_workers)."""

    def _listening(self):
        if self._raw is None:
            self._raw = self._db.engine.raw_connection()
            conn = self._raw.driver_connection
            conn.rollback()
            conn.autocommit = True
            conn.execute(f"LISTEN {self._channel}")
        return self._raw.driver_connection

    def wait(self, seen: int, timeout: float) -> bool:
        import psycopg

        try:
            conn = self._listening()
            rang = any(True for _ in conn.notifies(timeout=timeout, stop_after=1))
            if rang:   # a burst of uploads: one wake-up for all of them
                for _ in conn.notifies(timeout=0.001):
                    pass
            return rang
        except psycopg.Error:   # the database went away: poll until it is back, then listen again
            self.close()
            time.sleep(timeout)
            return False

    def close(self) -> None:
        if self._raw is not None:
            try:
                self._raw.invalidate()   # never back into the pool in LISTEN/autocommit state
            finally:
                self._raw = None


class Database:
    def __init__(self, url: str):
        self.url = url
        self.doorbell: LocalDoorbell = LocalDoorbell()   # rung by the use cases that queue jobs
        self.engine = make_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        writer = self.engine.execution_options(sqlite_immediate=True)
        self._write = sessionmaker(writer, expire_on_commit=False)
        self._read = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        """A session that may write (BEGIN IMMEDIATE on SQLite)."""
        return self._write()

    def read_session(self) -> Session:
        return self._read()

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    from alembic import command

    if url.startswith("sqlite"):
        make_engine(url).dispose()  # creates the data folder
    command.upgrade(alembic_config(url), "head")


def schema_status(engine: Engine) -> tuple[str | None, str]:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head


def check_schema(engine: Engine) -> None:
    """Refuse to run on a schema that is behind the code."""
    current, head = schema_status(engine)
    if current != head:
        raise SchemaOutOfDate(f"the database schema is at {current or 'nothing'} but this version needs "
                              f"{head}: run `grader db upgrade` first.")
