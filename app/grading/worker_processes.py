"""`grader serve`'s grading workers as child processes.

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
import socket
import subprocess
import sys
import threading

from app.settings import Settings

log = logging.getLogger(__name__)

READY_TIMEOUT = 120.0


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
    """A child's doorbell (the `Doorbell` interface the worker loop uses): its pipe's read end."""

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


class WorkerProcesses:
    """COUNT worker processes for `grader serve` (same interface as `app.grading.worker.WorkerPool`)."""

    command: tuple[str, ...] = (sys.executable, "-m", "app.grading.worker_processes")   # + INDEX DOORBELL_FD

    def __init__(self, db, settings: Settings, count: int):
        self.db, self.settings, self.count = db, settings, count
        self.procs: list[subprocess.Popen] = []
        self.sandbox_names: list[str] = []
        self._wake = WakePipes()

    def prepare(self) -> None:
        """Start the children and wait until each has its sandbox; raises SandboxRefused if one has none."""
        from app.grading.worker import SandboxRefused

        settings_json = self.settings.model_dump_json().encode()
        for index in range(self.count):
            read_end = self._wake.add()
            proc = subprocess.Popen([*self.command, str(index), str(read_end)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(read_end,),
                                    start_new_session=True)   # a Ctrl-C reaches us; we stop them in order
            os.close(read_end)
            self.procs.append(proc)
            proc.stdin.write(settings_json)
            proc.stdin.close()
        for proc in self.procs:
            ready, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT)
            line = proc.stdout.readline().decode().strip() if ready else "refused: no answer in time"
            word, _, rest = line.partition(" ")
            if word != "ready":
                self.close(timeout=5.0)
                raise SandboxRefused(rest or f"worker process exited with {proc.poll()}")
            self.sandbox_names.append(rest)
        self.db.doorbell.also_ring(self._wake.ring)

    @property
    def sandbox_name(self) -> str | None:
        return self.sandbox_names[0] if self.sandbox_names else None

    def start(self) -> None:
        """They are running since `prepare`."""
        if not self.procs:
            self.prepare()

    def close(self, timeout: float = 30.0) -> None:
        """End of file on their pipes: each finishes its grade and exits; SIGKILL after TIMEOUT."""
        self._wake.close()
        for proc in self.procs:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.error("worker process %d did not stop in %.0f s: killed", proc.pid, timeout)
                proc.kill()
                proc.wait()
        self.procs.clear()


def _child(index: int, doorbell_fd: int) -> int:
    from app.grading.worker import GradingLane, SandboxRefused, Worker, make_executor
    from app.store.db import Database

    settings = Settings.model_validate_json(sys.stdin.buffer.read(), by_name=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the web process decides when we stop
    lane = GradingLane(settings, name=f"grading-{index}")   # the sandboxes it starts inherit its nice
    try:
        executor = lane.run(make_executor, settings, index)
    except SandboxRefused as exc:
        print(f"refused {exc}", flush=True)
        lane.close()
        return 3
    print(f"ready {executor.name}", flush=True)
    db = Database(settings.db_url)
    db.doorbell = PipeDoorbell(doorbell_fd, stop)
    worker = Worker(db, settings, executor, name=f"{socket.gethostname()}:{os.getpid()}:w{index}", lane=lane)
    try:
        worker.run_forever(stop)
    finally:
        executor.close()
        lane.close()
        db.dispose()
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("app").setLevel(logging.INFO)   # one line per grade, as `grader serve` shows
    sys.exit(_child(int(sys.argv[1]), int(sys.argv[2])))
