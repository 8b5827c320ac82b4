"""Make sure nothing of a run survives: kill every process of the slot's uid (and cgroup), and
remove a job's files however deep or odd their tree."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)


def processes_of_uid(uid: int, among: list[int] | None = None, *, zombies: bool = False) -> list[int]:
    """Live pids whose real, effective or saved uid is `uid` (read from /proc, not guessed from kill());
    only those in AMONG when given (e.g. a cgroup's pids: a few files, not all of /proc). Zombies too
    when ZOMBIES: they run nothing, but count against the uid's RLIMIT_NPROC until reaped."""
    found = []
    for name in os.listdir("/proc") if among is None else [str(pid) for pid in among]:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
        except (OSError, ValueError):
            continue
        if not zombies and status.get("State", "").strip().startswith("Z"):
            continue  # a zombie runs nothing; its parent reaps it
        if str(uid) in status.get("Uid", "").split()[:3]:
            found.append(int(name))
    return found


def kill_uid(uid: int, timeout: float = 5.0, among: Callable[[], list[int]] | None = None) -> bool:
    """SIGKILL every process running as `uid` (among AMONG's pids, if given) until none is left.
    Returns True when none is left."""
    deadline = time.monotonic() + timeout
    while pids := processes_of_uid(uid, among() if among else None):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            logger.error("processes of uid %d survive SIGKILL: %s", uid, pids)
            return False
        time.sleep(0.005)
    return True


def wait_released(uid: int, timeout: float, counted: Callable[[], int | None] | None = None) -> bool:
    """Until no process of UID is left, zombies included (COUNTED(), e.g. the slot cgroup's task
    count, when given; else a scan of /proc), or TIMEOUT passes. Returns True when none is left.

    A killed bwrap's init outlives its parent for a moment (it still reaps its namespace), so it
    ends a zombie of the host's init, which reaps it when it gets to it: 1.5-2 s under a lazy one.
    Until then it holds one of the slot uid's RLIMIT_NPROC and the cgroup's pids.max: a next run
    started meanwhile had that many fewer processes, or none ("bwrap: Can't fork for pid 1")."""
    deadline = time.monotonic() + timeout
    while _left(uid, counted) > 0:
        if time.monotonic() > deadline:
            logger.error("slot uid %d still holds processes (zombies not reaped) after %.0f s", uid, timeout)
            return False
        time.sleep(0.01)
    return True


def _left(uid: int, counted: Callable[[], int | None] | None) -> int:
    n = counted() if counted else None
    return len(processes_of_uid(uid, zombies=True)) if n is None else n


def remove_tree(path: Path) -> None:
    """Delete PATH completely. shutil.rmtree recurses (a 2,500-level chain raises RecursionError)
    and builds full paths (ENAMETOOLONG past 4 KiB), so whatever it leaves goes to coreutils'
    `rm`, which walks by directory fds to any depth. Raises OSError if anything remains."""
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return
    except (OSError, RecursionError) as exc:
        logger.warning("rmtree could not remove %s (%s); delegating to rm", path, type(exc).__name__)
        subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], check=False,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if os.path.lexists(path):
        raise OSError(f"could not remove {path}")
