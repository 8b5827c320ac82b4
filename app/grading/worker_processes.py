"""`grader serve`'s grading workers as child processes (started by app/grading/supervisor.py).

As threads of the web process, workers shared its interpreter: while a low-priority grading thread
held the GIL, the kernel could leave it waiting behind the sandboxes, and every request waited
with it (accept p99 3 s in a rush). As processes, the web process keeps its interpreter to itself;
inside each, grading still runs on a lane at `worker_nice` (app/grading/worker.py), with everything it
starts (zygotes, sandboxes), while its database work keeps the normal priority.

Each child is `python -m app.grading.worker_processes INDEX DOORBELL_FD`: its settings arrive as JSON on
stdin (never in argv, which any local user can read), it says `ready NAME` or `refused REASON` on
stdout, and it sleeps on its end of a pipe that the web process writes a byte to whenever a job is
queued (`WakePipes`): a byte written while every worker was busy wakes the next one to look, and
the pipe's end of file (the web process gone) stops the worker after its current grade.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import sys
import threading

from app.settings import Settings

log = logging.getLogger(__name__)


class WakePipes:
    """The web process's ends of its workers' doorbell pipes; rung with the in-process doorbell."""

    def __init__(self) -> None:
        self._fds: list[int] = []
        self._lock = threading.Lock()   # requests ring while shutdown closes: never a reused fd

    def add(self) -> int:
        """A new pipe; returns the read end, to be passed to one child and closed here."""
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        with self._lock:
            self._fds.append(write_end)
        return read_end

    def ring(self) -> None:
        with self._lock:
            for fd in self._fds:
                try:
                    os.write(fd, b"\0")
                except (BlockingIOError, BrokenPipeError):
                    pass  # full: it will wake anyway; gone: nothing to wake

    def close(self) -> None:
        with self._lock:
            for fd in self._fds:
                os.close(fd)
            self._fds.clear()


class PipeDoorbell:
    """A child's doorbell (an app.store.db.Doorbell): its pipe's read end."""

    waiting = 0

    def __init__(self, fd: int, stop: threading.Event) -> None:
        self._fd = fd
        self._stop = stop
        os.set_blocking(fd, False)

    @property
    def rings(self) -> int:
        return 0   # a ring is a byte that stays in the pipe until read: none is ever slept through

    def ring(self) -> None:
        """Jobs queued in a worker process (none today) are found by the next look."""

    def wait(self, seen: int, timeout: float) -> bool:
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if not ready:
            return False
        try:
            if os.read(self._fd, 65536) == b"":
                self._stop.set()   # the web process is gone: finish, do not start anything new
        except BlockingIOError:
            pass
        return True


def _child(index: int, doorbell_fd: int) -> int:
    """One worker process: a one-thread supervisor that sleeps on its pipe."""
    from app.grading.supervisor import Supervisor, WorkerRuntime
    from app.grading.worker import SandboxRefused
    from app.store.db import Database

    settings = Settings.model_validate_json(sys.stdin.buffer.read(), by_name=True)
    db = Database(settings.db_url)
    supervisor = Supervisor(db, settings, 1, runtime=WorkerRuntime.THREADS, first_index=index,
                            doorbell=lambda: PipeDoorbell(doorbell_fd, supervisor.stop))
    signal.signal(signal.SIGTERM, lambda *_: supervisor.stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the web process decides when we stop
    try:
        supervisor.prepare()
    except SandboxRefused as exc:
        print(f"refused {exc}", flush=True)
        db.dispose()
        return 3
    print(f"ready {supervisor.sandbox_name}", flush=True)
    try:
        supervisor.start()
        supervisor.wait()   # until the pipe's end of file (the web process is gone) or SIGTERM
    finally:
        supervisor.close()
        db.dispose()
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("app").setLevel(logging.INFO)   # one line per grade, as `grader serve` shows
    sys.exit(_child(int(sys.argv[1]), int(sys.argv[2])))
