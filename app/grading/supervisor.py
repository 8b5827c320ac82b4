"""The one way grading workers are run: `Supervisor(db, settings, count, runtime=...)`.

- `WorkerRuntime.PROCESSES`: `grader serve`. Each worker is a child process
  (app/grading/worker_processes.py), so grading never holds the web process's interpreter; the web
  process rings them through pipes when a job is queued.
- `WorkerRuntime.THREADS`: `grader worker` (woken by LISTEN/NOTIFY on Postgres), the tests'
  `create_app(workers=N)`, and each of `grader serve`'s child processes (a one-thread supervisor
  woken by its pipe).

Whatever the runtime: `prepare` gives every worker its executor (its own range of sandbox slots)
and raises SandboxRefused if one has no sandbox (then nothing is graded here); `start` sets them
grading; `close` lets each finish the grade in hand and stops them; `describe` says what they are.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from app.grading.worker import GradingLane, SandboxRefused, Worker, make_executor
from app.settings import Settings
from app.store.db import Database, Doorbell

log = logging.getLogger(__name__)

READY_TIMEOUT = 120.0   # a child process says `ready` or `refused` within this


class WorkerRuntime(StrEnum):
    THREADS = "threads"       # threads of this process
    PROCESSES = "processes"   # child processes of this process


@dataclass(frozen=True)
class WorkersInfo:
    """What a server's own workers are, for the queue page and /api/v1/queue."""
    runtime: WorkerRuntime
    count: int
    sandbox: str | None   # the executors' isolation, e.g. "zygote+cgroup-v2"; None before `prepare`
    unsafe: bool          # grading WITHOUT a sandbox (GRADER_UNSAFE_NO_SANDBOX)

    @property
    def what(self) -> str:
        """E.g. "2 child processes of `grader serve`"."""
        kind = {WorkerRuntime.PROCESSES: ("child process", "child processes", "of `grader serve`"),
                WorkerRuntime.THREADS: ("thread", "threads", "in the server's own process")}[self.runtime]
        return f"{self.count} {kind[0] if self.count == 1 else kind[1]} {kind[2]}"


def describe_workers(supervisor: Supervisor | None) -> WorkersInfo | None:
    """None for a web-only server (`grader serve --workers 0`)."""
    return supervisor.describe() if supervisor is not None and supervisor.count else None


class Supervisor:
    """COUNT workers of one RUNTIME, with worker indices FIRST_INDEX, FIRST_INDEX+1, ... (each index
    owns its own range of machine-wide sandbox slots). DOORBELL makes each thread's doorbell (default:
    the database's in-process one); process workers always sleep on their pipe."""

    # a child process: + INDEX DOORBELL_FD (app/grading/worker_processes.py)
    command: tuple[str, ...] = (sys.executable, "-m", "app.grading.worker_processes")

    def __init__(self, db: Database, settings: Settings, count: int, *,
                 runtime: WorkerRuntime = WorkerRuntime.THREADS, first_index: int = 0,
                 doorbell: Callable[[], Doorbell] | None = None):
        self.db, self.settings, self.count, self.runtime = db, settings, count, runtime
        self.first_index = first_index
        self._doorbell = doorbell or (lambda: db.doorbell)
        self.stop = threading.Event()
        self._sandbox: str | None = None
        # threads
        self._lanes: list[GradingLane] = []
        self._executors: list = []
        self._threads: list[threading.Thread] = []
        self._doorbells: list[Doorbell] = []
        # processes
        self.procs: list[subprocess.Popen] = []
        self._wake = None

    # -- what every runtime does --------------------------------------------------------------

    def prepare(self) -> None:
        """Every worker's executor, or SandboxRefused (and nothing left running)."""
        if self.runtime is WorkerRuntime.PROCESSES:
            self._start_processes()
        else:
            self._build_executors()

    def start(self) -> None:
        if not self._prepared:
            self.prepare()
        if self.runtime is WorkerRuntime.THREADS and not self._threads:
            self._start_threads()

    def close(self, timeout: float = 30.0) -> None:
        """Each worker finishes the grade in hand and stops (a process is killed after TIMEOUT)."""
        self.stop.set()
        if self.runtime is WorkerRuntime.PROCESSES:
            self._stop_processes(timeout)
        else:
            self._stop_threads(timeout)

    def wait(self) -> None:
        """Until `stop` is set (a signal handler, or a pipe's end of file, sets it)."""
        while not self.stop.wait(1.0):
            pass

    @property
    def sandbox_name(self) -> str | None:
        return self._sandbox

    def describe(self) -> WorkersInfo:
        return WorkersInfo(self.runtime, self.count, self._sandbox, self.settings.unsafe_no_sandbox)

    @property
    def _prepared(self) -> bool:
        return bool(self._executors or self.procs) or self.count == 0

    # -- threads ------------------------------------------------------------------------------

    def _build_executors(self) -> None:
        """Each on its worker's lane, so the sandbox processes it keeps (zygotes) run at the
        lane's lower priority too."""
        try:
            for index in range(self.first_index, self.first_index + self.count):
                lane = GradingLane(self.settings, name=f"grading-{index}")
                self._lanes.append(lane)
                self._executors.append(lane.run(make_executor, self.settings, index))
        except SandboxRefused:
            self._stop_threads(0)
            raise
        if self._executors:
            self._sandbox = self._executors[0].name

    def _start_threads(self) -> None:
        host_pid = f"{socket.gethostname()}:{os.getpid()}"
        for offset, (executor, lane) in enumerate(zip(self._executors, self._lanes)):
            index = self.first_index + offset
            doorbell = self._doorbell()
            self._doorbells.append(doorbell)
            worker = Worker(self.db, self.settings, executor, name=f"{host_pid}:w{index}", lane=lane,
                            doorbell=doorbell)
            thread = threading.Thread(target=worker.run_forever, args=(self.stop,), name=f"worker-{index}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def _stop_threads(self, timeout: float) -> None:
        self.db.doorbell.ring()   # wake the idle ones now (the others see `stop` within a poll)
        for thread in self._threads:
            thread.join(timeout)
        for executor in self._executors:
            executor.close()
        for lane in self._lanes:
            lane.close()
        for doorbell in self._doorbells:
            if doorbell is not self.db.doorbell:
                getattr(doorbell, "close", lambda: None)()
        self._threads.clear()
        self._executors.clear()
        self._lanes.clear()
        self._doorbells.clear()

    # -- processes ----------------------------------------------------------------------------

    def _start_processes(self) -> None:
        """Start the children and wait until each has its sandbox (it says `ready NAME`)."""
        from app.grading.worker_processes import WakePipes

        self._wake = WakePipes()
        settings_json = self.settings.model_dump_json().encode()   # on stdin: argv is readable by anyone
        for index in range(self.first_index, self.first_index + self.count):
            read_end = self._wake.add()
            proc = subprocess.Popen([*self.command, str(index), str(read_end)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(read_end,),
                                    start_new_session=True)   # a Ctrl-C reaches us; we stop them in order
            os.close(read_end)
            self.procs.append(proc)
            proc.stdin.write(settings_json)
            proc.stdin.close()
        names = []
        for proc in self.procs:
            ready, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT)
            line = proc.stdout.readline().decode().strip() if ready else "refused: no answer in time"
            word, _, rest = line.partition(" ")
            if word != "ready":
                self._stop_processes(timeout=5.0)
                raise SandboxRefused(rest or f"worker process exited with {proc.poll()}")
            names.append(rest)
        self._sandbox = names[0] if names else None
        self.db.doorbell.also_ring(self._wake.ring)

    def _stop_processes(self, timeout: float) -> None:
        """End of file on their pipes: each finishes its grade and exits; SIGKILL after TIMEOUT."""
        if self._wake is not None:
            self.db.doorbell.stop_ringing(self._wake.ring)
            self._wake.close()
        for proc in self.procs:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.error("worker process %d did not stop in %.0f s: killed", proc.pid, timeout)
                proc.kill()
                proc.wait()
        self.procs.clear()
