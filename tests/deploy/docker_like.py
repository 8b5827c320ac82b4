"""Run a command the way Docker would start the compose `worker` container, without a Docker engine.

    python docker_like.py --seccomp deploy/seccomp-bwrap.json --caps SYS_ADMIN,SETUID,... -- CMD...

Run as root. In order, like runc: a private mount namespace in which every cgroup mount is
read-only (Docker mounts /sys/fs/cgroup read-only unless privileged), the capability bounding set
cut down to --caps (root's capabilities after exec are then exactly those), no_new_privs
(no-new-privileges:true), then the Docker seccomp profile compiled with libseccomp the way runc
does it (native architecture; unknown syscall names skipped), then exec. AppArmor is not emulated
(the worker runs apparmor=unconfined anyway), nor are Docker's masked /proc paths
(systempaths=unconfined removes them).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import sys

CAPS = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
        "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
        "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
        "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
        "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
        "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"]
ACTIONS = {"SCMP_ACT_ALLOW": 0x7FFF0000, "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_PROCESS": 0x80000000,
           "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_LOG": 0x7FFC0000}
OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
       "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
CLONE_NEWNS, MS_REC, MS_PRIVATE, MS_BIND, MS_REMOUNT, MS_RDONLY = 0x20000, 0x4000, 1 << 18, 0x1000, 0x20, 1
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 24, 38

libc = ctypes.CDLL(None, use_errno=True)


class ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]


def check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def action(name: str, errno_ret: int | None, default_errno: int) -> int:
    if name == "SCMP_ACT_ERRNO":
        return 0x00050000 | ((default_errno if errno_ret is None else errno_ret) & 0xFFFF)
    return ACTIONS[name]


def read_only_cgroups() -> None:
    check(libc.unshare(CLONE_NEWNS), "unshare")
    check(libc.mount(None, b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None), "make private")
    with open("/proc/self/mountinfo") as f:
        targets = [line.split()[4] for line in f]
    for target in targets:
        if target == "/sys/fs/cgroup" or target.startswith("/sys/fs/cgroup/"):
            flags = MS_REMOUNT | MS_BIND | MS_RDONLY
            libc.mount(None, target.encode(), None, ctypes.c_ulong(flags), None)  # best effort, like ro mounts


def drop_bounding_set(keep: set[str]) -> None:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for number in range(last + 1):
        name = CAPS[number] if number < len(CAPS) else f"CAP_{number}"
        if name not in keep:
            check(libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(number), 0, 0, 0), f"drop {name}")


def load_profile(path: str) -> None:
    with open(path) as f:
        profile = json.load(f)
    lib = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(ArgCmp)]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    default_errno = profile.get("defaultErrnoRet", 1)
    default = action(profile["defaultAction"], None, default_errno)
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise OSError("seccomp_init failed")
    for rule in profile["syscalls"]:
        act = action(rule["action"], rule.get("errnoRet"), default_errno)
        if act == default:
            continue  # runc skips rules equal to the default; libseccomp would refuse them
        cmps = [ArgCmp(a["index"], OPS[a["op"]], a["value"], a.get("valueTwo", 0)) for a in rule.get("args") or []]
        array = (ArgCmp * max(1, len(cmps)))(*cmps)
        for name in rule["names"]:
            nr = lib.seccomp_syscall_resolve_name(name.encode())
            if nr < 0:
                continue  # unknown to this libseccomp/architecture: runc skips it too
            rc = lib.seccomp_rule_add_array(ctx, act, nr, len(cmps), array)
            if rc < 0:
                raise OSError(-rc, f"rule for {name}")
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    rc = lib.seccomp_load(ctx)
    if rc < 0:
        raise OSError(-rc, "seccomp_load")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seccomp", required=True)
    parser.add_argument("--caps", default="", help="comma-separated capability names to keep")
    parser.add_argument("--rw-cgroups", action="store_true", help="leave cgroups writable")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not args.rw_cgroups:
        read_only_cgroups()
    drop_bounding_set({c.strip().upper().removeprefix("CAP_") for c in args.caps.split(",") if c.strip()})
    load_profile(args.seccomp)
    os.execvp(command[0], command)


if __name__ == "__main__":
    sys.exit(main())
