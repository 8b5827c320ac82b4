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


def processes_of_uid(uid: int, among: list[int] | None = None) -> list[int]:
    """Live (non-zombie) pids whose real, effective or saved uid is `uid` (read from /proc, not guessed
    from kill()); only those in AMONG when given (e.g. a cgroup's pids: a few files, not all of /proc)."""
    found = []
    for name in os.listdir("/proc") if among is None else [str(pid) for pid in among]:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
        except (OSError, ValueError):
            continue
        if status.get("State", "").strip().startswith("Z"):
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
