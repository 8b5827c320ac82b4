"""Watch one run: read stdout/stderr under a cap, enforce wall clock and total CPU, kill on breach."""

from __future__ import annotations

import os
import selectors
import time
from collections.abc import Callable
from dataclasses import dataclass

from .cgroups import SlotCgroup
from .limits import Limits
from .output import CappedOutput

CPU_POLL_SECONDS = 0.1
# Per-process RLIMIT_CPU fires first for a single busy process; the cgroup check catches many.
CPU_TOTAL_GRACE = 1.5
DRAIN_SECONDS = 2.0


@dataclass
class Watched:
    stdout: CappedOutput
    stderr: CappedOutput
    killed_for: str | None
    wall_seconds: float


def watch(
    *,
    stdout_fd: int,
    stderr_fd: int,
    exit_fd: int,
    limits: Limits,
    cgroup: SlotCgroup | None,
    kill: Callable[[], None],
) -> Watched:
    """Block until the run is over. exit_fd becomes readable when the top process exits (a pidfd).
    `kill` must kill the whole run; it is called at most once. All fds are closed on return."""
    out, err = CappedOutput(limits.output_bytes), CappedOutput(limits.output_bytes)
    sinks = {stdout_fd: out, stderr_fd: err}
    for fd in sinks:
        os.set_blocking(fd, False)
    selector = selectors.DefaultSelector()
    for fd in sinks:
        selector.register(fd, selectors.EVENT_READ)
    selector.register(exit_fd, selectors.EVENT_READ)
    start = time.monotonic()
    wall_deadline = start + limits.wall_seconds
    drain_deadline: float | None = None
    killed_for: str | None = None
    exited = False

    def kill_for(reason: str) -> None:
        nonlocal killed_for, drain_deadline
        if killed_for is None and not exited:
            killed_for = reason
        kill()
        drain_deadline = drain_deadline or time.monotonic() + DRAIN_SECONDS

    try:
        while sinks or not exited:
            now = time.monotonic()
            if drain_deadline is not None and now > drain_deadline:
                break
            if killed_for is None and not exited and now >= wall_deadline:
                kill_for("wall")
                continue
            timeout = max(0.0, min(wall_deadline - now, CPU_POLL_SECONDS))
            for key, _ in selector.select(timeout):
                fd = key.fd
                if fd == exit_fd:
                    exited = True
                    selector.unregister(exit_fd)
                    kill_for("exit")  # the top process is gone: take everything it left with it
                    continue
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not data:
                    selector.unregister(fd)
                    del sinks[fd]
                    continue
                sinks[fd].feed(data)
                if sinks[fd].exceeded and killed_for is None and not exited:
                    kill_for("output")
            if cgroup is not None and killed_for is None and not exited:
                used = cgroup.cpu_seconds()
                if used is not None and used > limits.cpu_seconds + CPU_TOTAL_GRACE:
                    kill_for("cpu")
    finally:
        selector.close()
        for fd in (stdout_fd, stderr_fd, exit_fd):
            try:
                os.close(fd)
            except OSError:
                pass
    if killed_for is None and (out.exceeded or err.exceeded):
        killed_for = "output"  # it flooded and exited before we noticed
    return Watched(out, err, killed_for, time.monotonic() - start)
