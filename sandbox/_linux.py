"""Thin ctypes wrappers over the Linux calls the launcher and the zygote need.

Standard library only and no imports from this package: the launcher and the zygote load this file by
path, before (zygote) or instead of (launcher) importing the `sandbox` package.
"""

from __future__ import annotations

import ctypes
import os
import resource

_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

_SYS_PIVOT_ROOT = 155  # x86_64
_SYS_CLOSE_RANGE = 436


def _check(result: int, what: str) -> int:
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: None if s is None else s.encode()
    _check(
        _libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
        f"mount {target}",
    )


def umount2(target: str, flags: int) -> None:
    _check(_libc.umount2(target.encode(), ctypes.c_int(flags)), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(_SYS_PIVOT_ROOT, new_root.encode(), put_old.encode()), "pivot_root")


def prctl(option: int, arg2: int = 0, arg3: int | ctypes.c_void_p = 0) -> None:
    _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), arg3, ctypes.c_ulong(0),
                       ctypes.c_ulong(0)), f"prctl {option}")


def make_mounts_private() -> None:
    """Stop mount events from propagating back to the host (call right after unshare(CLONE_NEWNS))."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)


def bind(source: str, target: str, *, readonly: bool, recursive: bool = False) -> None:
    mount(source, target, None, MS_BIND | (MS_REC if recursive else 0))
    flags = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | (MS_RDONLY if readonly else 0)
    mount(None, target, None, flags)


def mount_tmpfs(target: str, size: int, mode: int = 0o755, inodes: int | None = None) -> None:
    options = f"size={size},mode={mode:o}" + (f",nr_inodes={inodes}" if inodes else "")
    mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, options)


def close_fds_from(low: int, keep: tuple[int, ...] = ()) -> None:
    """Close every fd >= low except those in keep."""
    if not keep and _libc.syscall(_SYS_CLOSE_RANGE, low, 0xFFFFFFFF, 0) == 0:
        return
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= low and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def drop_bounding_capabilities() -> None:
    """Empty the capability bounding set so nothing run later can regain a capability (needs root)."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for cap in range(last + 1):
        prctl(PR_CAPBSET_DROP, cap)


def become_user(uid: int, gid: int) -> None:
    """Drop from root to uid/gid with no supplementary groups (also clears all capabilities)."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def load_seccomp(bpf: bytes) -> None:
    """Install a raw classic-BPF seccomp program (as exported by libseccomp) on this thread."""
    buffer = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.cast(ctypes.byref(prog), ctypes.c_void_p))


def apply_rlimits(rlimits: dict[str, tuple[int, int]]) -> None:
    """Set rlimits given by resource name, e.g. {"RLIMIT_CPU": (1, 2)}."""
    for name, (soft, hard) in rlimits.items():
        resource.setrlimit(getattr(resource, name), (soft, hard))


def join_cgroups(procs_files: list[str]) -> None:
    """Move the calling process into each cgroup (by its cgroup.procs file); needs root."""
    pid = str(os.getpid())
    for path in procs_files:
        with open(path, "w") as f:
            f.write(pid)
