"""Build the seccomp denylist as raw BPF bytes, with libseccomp (Debian package libseccomp2) via ctypes.

The same bytes go to bwrap (`--seccomp FD`) and to the zygote child (prctl). Default action: allow.
Denied with EPERM: kernel attack surface the namespaces do not cover (see the research note, §3.1).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import socket

logger = logging.getLogger(__name__)

_ALLOW = 0x7FFF0000
_CMP_NE = 1
_CMP_EQ = 4
_CMP_MASKED_EQ = 7

DENIED_SYSCALLS = (
    "ptrace", "process_vm_readv", "process_vm_writev", "keyctl", "add_key", "request_key", "bpf",
    "userfaultfd", "perf_event_open", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "personality", "kexec_load",
    "kexec_file_load", "init_module", "finit_module", "delete_module", "acct", "swapon", "swapoff",
    "reboot", "open_by_handle_at", "name_to_handle_at", "syslog", "fanotify_init", "quotactl",
    "mount_setattr", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree",
    "lookup_dcookie", "iopl", "ioperm", "settimeofday", "clock_settime", "adjtimex",
    "clock_adjtime", "sethostname", "setdomainname",
)
_NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
                    0x40000000, 0x00000080)  # NEWNS CGROUP UTS IPC USER PID NET TIME
_TIOCSTI = 0x5412
_TIOCLINUX = 0x541C


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


def _errno_action(err: int) -> int:
    return 0x00050000 | (err & 0xFFFF)


def _load_libseccomp() -> ctypes.CDLL:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    lib = ctypes.CDLL(name, use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


def build_seccomp_bpf(*, deny_memfd: bool) -> bytes:
    """Return the filter as BPF bytes. deny_memfd: also deny memfd_create (no memory cgroup)."""
    lib = _load_libseccomp()
    ctx = lib.seccomp_init(_ALLOW)
    if not ctx:
        raise OSError("seccomp_init failed")
    try:
        def rule(name: str, action: int, *cmps: tuple[int, int, int, int]) -> None:
            nr = lib.seccomp_syscall_resolve_name(name.encode())
            if nr < 0:
                logger.debug("seccomp: syscall %s unknown on this architecture", name)
                return
            arr = (_ArgCmp * max(1, len(cmps)))(*[_ArgCmp(*c) for c in cmps])
            rc = lib.seccomp_rule_add_array(ctx, action, nr, len(cmps), arr)
            if rc < 0:
                raise OSError(-rc, f"seccomp rule for {name}: {os.strerror(-rc)}")

        eperm = _errno_action(errno.EPERM)
        denied = DENIED_SYSCALLS + (("memfd_create",) if deny_memfd else ())
        for name in denied:
            rule(name, eperm)
        # clone3 passes flags in memory BPF cannot read: make glibc fall back to clone().
        rule("clone3", _errno_action(errno.ENOSYS))
        for flag in _NAMESPACE_FLAGS:
            rule("clone", eperm, (0, _CMP_MASKED_EQ, flag, flag))
        rule("socket", eperm, (0, _CMP_NE, socket.AF_UNIX, 0))
        rule("ioctl", eperm, (1, _CMP_MASKED_EQ, 0xFFFFFFFF, _TIOCSTI))
        rule("ioctl", eperm, (1, _CMP_MASKED_EQ, 0xFFFFFFFF, _TIOCLINUX))

        read_fd, write_fd = os.pipe()
        try:
            rc = lib.seccomp_export_bpf(ctx, write_fd)
            if rc < 0:
                raise OSError(-rc, "seccomp_export_bpf failed")
            os.close(write_fd)
            write_fd = -1
            chunks = []
            while chunk := os.read(read_fd, 65536):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(read_fd)
            if write_fd >= 0:
                os.close(write_fd)
    finally:
        lib.seccomp_release(ctx)
