"""The grader's work directory: job directories (`grade-*`, a handin unpacked with its plans) and
sandbox slot directories (`slot-*`, a slot's host-side scratch) live here, each locked by its owner.

A grade killed from outside (the OOM killer, SIGKILL, a reboot) cannot remove its own directories,
so ownership is an flock on the directory itself, held from its creation until it is removed: the
kernel drops it when the owner dies, whatever killed it, and a reused pid cannot inherit it.
`sweep` removes the directories whose lock nobody holds. Creating a directory (mkdir, then lock)
holds the work directory's lock shared and a sweep holds it exclusively, so a sweep never sees one
that is made but not yet locked; a directory whose creator died in between has no owner either.
A sweep touches only names with our prefixes; anything else in the work directory is left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from sandbox.cleanup import remove_tree

log = logging.getLogger(__name__)

JOB_PREFIX = "grade-"
SLOT_PREFIX = "slot-"
# Others may traverse (not list) to a slot's stage: without the zygote, bubblewrap reaches it as the
# slot's uid. A job directory, with the handin in it, stays private (the sandbox binds it as root).
WORK_DIR_MODE = 0o711
MODES = {JOB_PREFIX: 0o700, SLOT_PREFIX: 0o711}   # the prefixes a sweep knows


def _open_dir(path: Path | str, *, dir_fd: int | None = None) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)


@dataclass(frozen=True)
class WorkUsage:
    """What the work directory holds now (the queue page shows it)."""

    bytes: int          # disk usage of everything in it
    job_dirs: int       # grade-* directories: grades running now, or left by a killed one
    slot_dirs: int      # slot-* directories: sandbox slots open now, or left by a killed owner


class OwnedDir:
    """A directory of the work directory, locked by this process until `release`."""

    def __init__(self, path: Path, fd: int):
        self.path = path
        self._fd = fd

    def release(self) -> None:
        """Remove the directory, then drop the lock (a tree that could not be removed stays
        unowned, so the next sweep tries again). Raises OSError if something could not be removed."""
        if self._fd < 0:
            return
        try:
            remove_tree(self.path)
        finally:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class WorkDir:
    """One work directory (created if missing). Safe to use from several threads and processes."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.mkdir(mode=WORK_DIR_MODE, parents=True, exist_ok=True)

    @contextlib.contextmanager
    def _locked(self, how: int) -> Iterator[int]:
        # A fresh descriptor each time: flock on a shared one would turn one thread's shared lock
        # into another thread's exclusive one instead of making them wait for each other.
        fd = _open_dir(self.path)
        try:
            fcntl.flock(fd, how)
            yield fd
        finally:
            os.close(fd)

    def claim(self, prefix: str) -> OwnedDir:
        """A new directory PREFIX* (one of MODES) in the work directory, owned by this process."""
        if prefix not in MODES:
            raise ValueError(f"{prefix!r} is no prefix a sweep knows")
        with self._locked(fcntl.LOCK_SH):
            path = Path(tempfile.mkdtemp(prefix=prefix, dir=self.path))
            os.chmod(path, MODES[prefix])
            fd = _open_dir(path)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)   # nobody else knows the name yet
        return OwnedDir(path, fd)

    def sweep(self) -> list[str]:
        """Remove every job and slot directory whose owner is gone; returns their names. A directory
        in use (its owner alive, in this process or another) is never touched."""
        removed = []
        with self._locked(fcntl.LOCK_EX) as work_fd:
            for entry in os.scandir(work_fd):
                if not entry.name.startswith(tuple(MODES)) or not entry.is_dir(follow_symlinks=False):
                    continue
                try:
                    fd = _open_dir(entry.name, dir_fd=work_fd)
                except OSError:
                    continue  # gone meanwhile (its owner released it)
                try:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # its owner is alive
                    remove_tree(self.path / entry.name)
                    removed.append(entry.name)
                except OSError:
                    log.exception("could not remove %s left by a grade that was killed", entry.name)
                finally:
                    os.close(fd)
        if removed:
            log.warning("removed %d directories left by killed grades in %s: %s", len(removed), self.path,
                        ", ".join(sorted(removed)))
        return removed

    def usage(self) -> WorkUsage:
        return usage(self.path)


def usage(path: Path) -> WorkUsage | None:
    """What the work directory PATH holds, or None if there is none (a web-only tier grades nothing);
    never creates it."""
    try:
        names = [e.name for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return None
    return WorkUsage(bytes=_disk_usage(path), job_dirs=sum(n.startswith(JOB_PREFIX) for n in names),
                     slot_dirs=sum(n.startswith(SLOT_PREFIX) for n in names))


def _disk_usage(path: Path) -> int:
    """Bytes on disk under PATH. coreutils' du walks by directory descriptors: a handin's
    2,500-level chain defeats os.walk (recursion, and paths past PATH_MAX)."""
    proc = subprocess.run(["du", "--summarize", "--one-file-system", "--block-size=1", "--", str(path)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    # du exits 1 when a tree vanished while it walked (a grade finished): its total still counts.
    try:
        return int(proc.stdout.split()[0])
    except (IndexError, ValueError):
        log.warning("du could not measure %s: %s", path, proc.stderr.strip()[-300:])
        return 0
