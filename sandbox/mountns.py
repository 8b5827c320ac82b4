"""Build a sandbox root from `layout.Mount` steps with raw mount calls (the zygote's child uses this;
bwrap does the same from command-line flags). Runs as root in a fresh, private mount namespace."""

from __future__ import annotations

import os
import shutil

from . import _linux
from .layout import DEVICES, EMPTY_FILE, MASKED_PROC_FILES, Mount


def _make_mountpoint(path: str, source: str | None) -> None:
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    if source is not None and not os.path.isdir(source):
        if not os.path.exists(path):
            with open(path, "w"):
                pass
    else:
        os.makedirs(path, mode=0o755, exist_ok=True)


def _make_dev(root: str, dest: str) -> None:
    dev = root + dest
    _make_mountpoint(dev, None)
    _linux.mount("tmpfs", dev, "tmpfs", _linux.MS_NOSUID, "size=65536,mode=755")
    for name in DEVICES:
        target = os.path.join(dev, name)
        with open(target, "w"):
            pass
        _linux.mount(f"/dev/{name}", target, None, _linux.MS_BIND)
        _linux.mount(None, target, None, _linux.MS_REMOUNT | _linux.MS_BIND | _linux.MS_NOSUID)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, os.path.join(dev, name))
    os.makedirs(os.path.join(dev, "shm"), mode=0o755, exist_ok=True)
    with open(os.path.join(dev, EMPTY_FILE), "w"):
        pass
    os.chmod(os.path.join(dev, EMPTY_FILE), 0o444)


def build_root(mounts: list[Mount], root: str) -> None:
    """Mount every step under `root` (a fresh tmpfs); `proc` only gets its mountpoint here, because
    /proc must be mounted from inside the new pid namespace (see `mount_proc`)."""
    for m in mounts:
        target = root + m.dest
        if m.kind == "bind":
            _make_mountpoint(target, m.source)
            _linux.bind(m.source, target, readonly=not m.writable, recursive=True)
        elif m.kind == "tmpfs":
            _make_mountpoint(target, None)
            _linux.mount_tmpfs(target, m.size or (1 << 20), 0o1777 if m.writable else 0o755)
        elif m.kind == "copy":  # a copy in the root's tmpfs: /proc/self/mountinfo shows no host path
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            if os.path.isdir(m.source):
                shutil.copytree(m.source, target, symlinks=True)
            else:
                shutil.copyfile(m.source, target, follow_symlinks=False)
                os.chmod(target, 0o644)
        elif m.kind == "symlink":
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.symlink(m.source, target)
        elif m.kind == "proc":
            _make_mountpoint(target, None)
        elif m.kind == "dev":
            _make_dev(root, m.dest)
        elif m.kind == "remount_ro":
            flags = _linux.MS_REMOUNT | _linux.MS_BIND | _linux.MS_RDONLY | _linux.MS_NOSUID | _linux.MS_NODEV
            _linux.mount(None, target, None, flags)
        else:
            raise ValueError(f"unknown mount kind {m.kind}")


def enter_root(root: str) -> None:
    """pivot_root into `root`, detach the old root entirely, and make the root itself read-only."""
    os.chdir(root)
    _linux.pivot_root(".", ".")
    _linux.umount2(".", _linux.MNT_DETACH)
    os.chdir("/")
    flags = _linux.MS_REMOUNT | _linux.MS_RDONLY | _linux.MS_NOSUID | _linux.MS_NODEV
    _linux.mount(None, "/", None, flags)


def mount_proc() -> None:
    """Mount a procfs of the current pid namespace (call as that namespace's pid 1)."""
    _linux.mount("proc", "/proc", "proc", _linux.MS_NOSUID | _linux.MS_NODEV | _linux.MS_NOEXEC)


def mask_proc() -> None:
    """Hide host-wide counters and kernel details in the fresh /proc behind empty read-only files
    (what the mount layout allows: per-process files like mountinfo can only be made harmless by
    what is mounted, see the "copy" mounts)."""
    empty = "/dev/" + EMPTY_FILE
    for name in MASKED_PROC_FILES:
        target = f"/proc/{name}"
        if os.path.isfile(target):
            _linux.mount(empty, target, None, _linux.MS_BIND)
            _linux.mount(None, target, None, _linux.MS_REMOUNT | _linux.MS_BIND | _linux.MS_RDONLY
                         | _linux.MS_NOSUID | _linux.MS_NODEV | _linux.MS_NOEXEC)
