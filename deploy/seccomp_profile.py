"""Writes deploy/seccomp-bwrap.json, the seccomp profile of the `worker` container.

    python deploy/seccomp_profile.py          # rewrite the JSON
    python deploy/seccomp_profile.py --check  # exit 1 if the JSON is stale (tests/deploy checks this)

The JSON is Docker's seccomp profile format. It is generated from the lists below because JSON has
no comments and every allowed call should say why it is there. Written for this service; it is not
a copy of Docker's default profile.

Shape of the profile (see deploy/README.md for the reasoning):
- defaultAction SCMP_ACT_ERRNO with ENOSYS: a call nobody listed fails as "not implemented", which
  libc and Python treat as "use the older call" rather than as a hard error.
- ALLOW: what CPython, numpy/OpenBLAS, uvicorn, psycopg, multiprocessing and subprocess need, plus
  the namespace, mount and uid calls bubblewrap and the sandbox's own launcher use. Docker's default
  profile refuses exactly those without CAP_SYS_ADMIN, which is why bubblewrap cannot start under it.
- ERRNO(EPERM), named: kernel attack surface no namespace covers. They would be refused by the
  default action too; listing them makes the refusal explicit, greppable and tested.
- Only the native 64-bit ABI (x86_64 or aarch64): the 32-bit ABIs (int 0x80, x32, arm32) are a
  classic way around syscall filters and nothing here uses them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PROFILE = Path(__file__).with_name("seccomp-bwrap.json")
EPERM = 1
ENOSYS = 38

ALLOW: dict[str, list[str]] = {
    # Files and directories: the interpreter, imports, the handin store, the sandbox's job dirs.
    "files": [
        "read", "write", "open", "openat", "openat2", "close", "close_range", "creat",
        "stat", "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs",
        "lseek", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev", "preadv2", "pwritev2",
        "access", "faccessat", "faccessat2", "readlink", "readlinkat",
        "getdents", "getdents64", "getcwd", "chdir", "fchdir",
        "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename", "renameat", "renameat2",
        "link", "linkat", "symlink", "symlinkat", "mknod", "mknodat",
        "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat", "umask",
        "truncate", "ftruncate", "fallocate", "fadvise64", "readahead",
        "fsync", "fdatasync", "sync_file_range", "syncfs",
        "utime", "utimes", "utimensat", "futimesat",
        "getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr", "flistxattr",
        "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr",
        "flock", "fcntl", "dup", "dup2", "dup3", "pipe", "pipe2",
        "sendfile", "copy_file_range", "splice", "tee", "vmsplice",
        "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
        "ioctl",  # terminals, FIONREAD, FIOCLEX; TIOCSTI is refused inside the sandbox by its own filter
    ],
    # Memory: malloc, numpy buffers, shared libraries, multiprocessing's shared memory.
    "memory": [
        "brk", "mmap", "munmap", "mremap", "mprotect", "msync", "mincore", "madvise",
        "mlock", "mlock2", "munlock", "mlockall", "munlockall",  # bounded by RLIMIT_MEMLOCK
        "membarrier", "memfd_create", "pkey_alloc", "pkey_free", "pkey_mprotect",
        "get_mempolicy",  # read-only NUMA query made by OpenBLAS/hwloc
        "map_shadow_stack", "mseal",  # newer glibc hardening (shadow stacks, sealed mappings)
        "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl",
        "msgget", "msgsnd", "msgrcv", "msgctl",  # System V IPC: per IPC namespace
        "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
    ],
    # Processes, threads, signals, time: uvicorn, worker threads, subprocess, the sandbox supervisor.
    "processes": [
        "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid",
        "kill", "tkill", "tgkill", "pidfd_open", "pidfd_send_signal",
        "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait",
        "rt_sigqueueinfo", "rt_tgsigqueueinfo", "rt_sigsuspend", "sigaltstack",
        "signalfd", "signalfd4", "restart_syscall", "pause",
        "set_tid_address", "set_robust_list", "get_robust_list", "rseq", "arch_prctl",
        "futex", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue",
        "prctl",  # PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER, PR_CAPBSET_DROP
        "getpid", "getppid", "gettid", "getpgid", "getpgrp", "setpgid", "getsid", "setsid",
        "getrlimit", "setrlimit", "prlimit64", "getrusage", "times",  # the sandbox's rlimits
        "getpriority", "setpriority", "ioprio_get",
        "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam",
        "sched_getscheduler", "sched_get_priority_max", "sched_get_priority_min",
        "sched_rr_get_interval", "sched_getattr", "getcpu",
        "nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday", "time",
        "alarm", "getitimer", "setitimer", "timer_create", "timer_settime", "timer_gettime",
        "timer_getoverrun", "timer_delete", "timerfd_create", "timerfd_settime", "timerfd_gettime",
        "uname", "sysinfo", "getrandom",
    ],
    # Event loops and sockets: uvicorn (web), psycopg to Postgres, bwrap's --info-fd/--sync-fd pipes.
    "network": [
        "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl",
        "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2",
        "socket", "socketpair", "connect", "accept", "accept4", "bind", "listen", "shutdown",
        "getsockname", "getpeername", "setsockopt", "getsockopt",
        "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
    ],
    # Identity: the worker starts every sandbox as its slot's own uid (60000 + slot) and gid, with
    # no supplementary groups; bwrap maps that uid to 65534 inside its user namespace.
    "identity": [
        "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups",
        "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups",
        "setfsuid", "setfsgid", "capget", "capset",
    ],
    # What Docker's default profile refuses and bubblewrap needs: new user/mount/pid/net/ipc/uts/
    # cgroup namespaces (clone/clone3/unshare with CLONE_NEW*), building the sandbox's root
    # (mount, umount2, pivot_root, chroot, the new mount API), joining a namespace (setns, used by
    # bwrap's --userns/--pidns), --hostname, and installing the sandbox's own seccomp filter and
    # Landlock rules (the fallback backend). All of them need CAP_SYS_ADMIN *in the namespace that
    # owns the target*, which an unprivileged process only has inside the user namespace it just
    # created, never over the container's own mounts.
    "sandbox": [
        "clone", "clone3", "unshare", "setns",
        "mount", "umount2", "pivot_root", "chroot",
        "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
        "sethostname", "setdomainname",
        "seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
    ],
}

DENY: dict[str, list[str]] = {
    # Loading code into the kernel or replacing it.
    "kernel code": ["init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
                    "bpf", "create_module"],
    # Reading or writing another process's memory (secrets of the worker, the DB password).
    "other processes": ["ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
                        "process_madvise", "process_mrelease"],
    # Kernel objects that are not namespaced, and their frequent CVEs.
    "not namespaced": ["keyctl", "add_key", "request_key", "perf_event_open", "userfaultfd",
                       "io_uring_setup", "io_uring_enter", "io_uring_register", "fanotify_init",
                       "fanotify_mark", "lookup_dcookie", "memfd_secret"],
    # Files by handle: walks around the mount namespace (the "shocker" container escape).
    "file handles": ["open_by_handle_at", "name_to_handle_at"],
    # The host machine: clocks, power, swap, accounting, kernel log, quotas, I/O ports.
    "host": ["reboot", "swapon", "swapoff", "syslog", "acct", "settimeofday", "clock_settime",
             "adjtimex", "clock_adjtime", "iopl", "ioperm", "quotactl", "quotactl_fd", "vhangup",
             "uselib", "_sysctl", "nfsservctl", "ioprio_set", "modify_ldt", "personality"],
    # NUMA placement of other processes' memory, scheduler classes.
    "numa and scheduling": ["mbind", "set_mempolicy", "set_mempolicy_home_node", "migrate_pages",
                            "move_pages", "sched_setparam", "sched_setscheduler", "sched_setattr"],
}


def build() -> dict:
    allowed = [name for group in ALLOW.values() for name in group]
    denied = [name for group in DENY.values() for name in group]
    assert len(set(allowed)) == len(allowed), "a call is allowed twice"
    assert not set(allowed) & set(denied), set(allowed) & set(denied)
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": ENOSYS,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": []},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": []},
        ],
        "syscalls": (
            [{"names": ALLOW[group], "action": "SCMP_ACT_ALLOW", "args": [],
              "comment": f"allow: {group}"} for group in ALLOW]
            + [{"names": DENY[group], "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM, "args": [],
                "comment": f"deny: {group}"} for group in DENY]
        ),
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not PROFILE.exists() or PROFILE.read_text() != text:
            print(f"{PROFILE} is stale: run python {__file__}", file=sys.stderr)
            return 1
        return 0
    PROFILE.write_text(text)
    print(f"wrote {PROFILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
