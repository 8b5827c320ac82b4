"""Worker loop: claim a job, grade its handin, record the result; heartbeats keep the lease.

Workers are run by app/grading/supervisor.py: as `grader serve`'s child processes, as `grader
worker`'s threads, or as threads next to the web app in tests (`create_app(workers=N)`).
The web tier comes first: grading (the reference run, the sandboxes it starts) happens on a lane
thread at a lower CPU priority, while the worker thread itself, which takes the database's locks,
keeps the normal one so an upload never waits for a starved lock holder. Idle workers sleep until
the database's doorbell rings (a job queued in this process) or the poll interval passes.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from app.grading import queue
from app.settings import Settings
from app.store.db import Database, Doorbell
from app.store.models import Blob

if TYPE_CHECKING:
    from grader.execute import Executor

log = logging.getLogger(__name__)


class SandboxRefused(RuntimeError):
    """No safe sandbox here and unsafe mode was not asked for: refuse to grade (fail closed)."""


def make_executor(settings: Settings, index: int) -> Executor:
    from grader.execute import ExecutorUnavailable, open_executor
    from grader.plan import Budget

    ceiling = Budget(cpu_seconds=settings.section_max_cpu_seconds, wall_seconds=settings.section_max_wall_seconds,
                     memory_bytes=settings.section_max_memory_bytes)
    if settings.unsafe_no_sandbox:
        log.warning("GRADER_UNSAFE_NO_SANDBOX is set: worker %d grades WITHOUT a sandbox; every result "
                    "records unsafe=true", index)
        return open_executor(unsafe=True, ceiling=ceiling)
    slots = max(1, settings.sandbox_slots)
    try:  # each worker index owns its own range of machine-wide sandbox slots
        return open_executor(slots=slots, first_slot=index * slots, work_dir=settings.work_path, ceiling=ceiling)
    except ExecutorUnavailable as exc:
        raise SandboxRefused(str(exc)) from exc


def work_dir_health(settings: Settings) -> dict | None:
    """The work directory's size and its job and slot directories (running grades, or what killed
    ones left before a sweep), for the queue page and /api/v1/queue; None where it does not exist."""
    from grader.workdir import usage

    found = usage(settings.work_path)
    return None if found is None else {"bytes": found.bytes, "job_dirs": found.job_dirs,
                                       "slot_dirs": found.slot_dirs}


def lower_priority(nice: int) -> None:
    """Raise the calling thread's nice value to at least NICE. On Linux a nice value belongs to the
    thread, and the threads and processes it starts (sandboxes, zygotes) inherit it."""
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, max(nice, os.getpriority(os.PRIO_PROCESS, tid)))
    except OSError as exc:  # not permitted here: grade at normal priority
        log.warning("could not lower the grading priority: %s", exc)


class GradingLane:
    """One thread at a lower CPU priority where a worker grades and builds its executor."""

    def __init__(self, settings: Settings, name: str = "grading"):
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=name, initializer=lower_priority,
                                        initargs=(settings.worker_nice,))

    def run(self, fn, *args, **kwargs):
        return self._pool.submit(fn, *args, **kwargs).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class Worker:
    def __init__(self, db: Database, settings: Settings, executor: Executor, name: str | None = None,
                 lane: GradingLane | None = None, doorbell: Doorbell | None = None):
        self.db, self.settings, self.executor = db, settings, executor
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self.lane = lane   # None: grade in the calling thread, at its priority
        self.doorbell = doorbell or db.doorbell   # what wakes it when idle
        self._announced = False

    def _blob(self, sha: str) -> bytes:
        with self.db.read_session() as s:
            return Session.get(s, Blob, sha).data

    def _keep_alive(self, claim: queue.Claim, done: threading.Event) -> None:
        while not done.wait(self.settings.heartbeat_seconds):
            try:
                if not queue.heartbeat(self.db, claim, self.name, self.settings.lease_seconds):
                    log.warning("%s lost the lease on job %d", self.name, claim.job_id)
                    return
            except Exception:  # a failed heartbeat is retried at the next tick
                log.exception("heartbeat failed")

    def run_once(self) -> bool:
        """Grade one job if there is one; returns whether a job was claimed."""
        from grader import suites
        from grader.grade import grade
        from grader.version import reuse_key

        if not self._announced:   # the web tier reuses results only under the key of the code running here
            queue.announce_grading_code(self.db, self.name, reuse_key(unsafe=self.executor.unsafe))
            self._announced = True
        claim = queue.claim(self.db, self.name, self.settings.lease_seconds)
        if claim is None:
            return False
        done = threading.Event()
        beat = threading.Thread(target=self._keep_alive, args=(claim, done), daemon=True)
        beat.start()
        started = time.monotonic()
        try:
            blob, suite = self._blob(claim.blob_sha256), suites.get(claim.suite)
            work = self.settings.work_path
            result = (self.lane.run(grade, blob, self.executor, suite=suite, workdir=work) if self.lane
                      else grade(blob, self.executor, suite=suite, workdir=work))
        except Exception as exc:  # GraderBug or anything else: a grader error, retried  # noqa: BLE001
            log.error("job %d attempt %d: grader error: %s", claim.job_id, claim.attempt, exc)
            done.set()
            queue.record_failure(self.db, claim, self.name,
                                 f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}")
            return True
        done.set()
        log.info("graded submission %d: %d/%d in %.1f s (job %d, attempt %d, %s)", claim.submission_id,
                 result.score, result.max_score, time.monotonic() - started, claim.job_id, claim.attempt, self.name)
        queue.record_result(self.db, claim, self.name, score=result.score, max_score=result.max_score,
                            body=result.model_dump_json(),
                            handin_error=result.error.message if result.error else None,
                            reuse_key=reuse_key(unsafe=self.executor.unsafe) if result.reusable else None)
        return True

    def sweep(self) -> None:
        """Remove what grades killed from outside left in the work directory (never one in use)."""
        from grader.workdir import WorkDir

        try:
            WorkDir(self.settings.work_path).sweep()
        except OSError:
            log.exception("worker %s: could not sweep the work directory", self.name)

    def run_forever(self, stop: threading.Event) -> None:
        log.info("worker %s started", self.name)
        doorbell = self.doorbell
        next_sweep = 0.0   # at start-up, then every sweep_seconds
        while not stop.is_set():
            if time.monotonic() >= next_sweep:
                self.sweep()
                next_sweep = time.monotonic() + self.settings.sweep_seconds
            rings = doorbell.rings   # before looking, so a job queued meanwhile is never slept through
            try:
                worked = self.run_once()
            except Exception:  # the database went away for a moment, etc.: keep going
                log.exception("worker %s: unexpected error", self.name)
                worked = False
            if not worked and not stop.is_set():
                doorbell.wait(rings, self.settings.poll_seconds)
