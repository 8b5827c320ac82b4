"""What both backends hand back once a run has started, and how a run is described to them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .layout import Mount, Runtime


@dataclass
class Job:
    """Everything a backend needs to start one run (already resolved to host paths and numbers)."""

    runtime: Runtime
    job_mounts: list[Mount]
    args: list[str]
    rlimits: dict[str, tuple[int, int]]
    uid: int
    gid: int
    stage: str  # an empty root-owned dir used as a private mountpoint
    cgroup_procs: list[str]


@dataclass
class ExitInfo:
    returncode: int | None = None
    signal: int | None = None
    cpu_seconds: float | None = None
    setup_error: str | None = None


@dataclass
class Started:
    stdout_fd: int
    stderr_fd: int
    exit_fd: int  # readable once the top process has exited (a pidfd)
    kill: Callable[[], None]  # kill the whole run (idempotent)
    finish: Callable[[], ExitInfo]  # after the run: reap and collect its status
