"""The plain exec path: root launcher -> bwrap as the slot uid -> python -I -B /sandbox/run.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from .backend import ExitInfo, Job, Started
from .layout import (
    MASKED_PROC_FILES,
    SCRIPT_PATH,
    TMP_DIR,
    Mount,
    root_bytes,
    runtime_mounts,
    sandbox_environment,
)

LAUNCHER = Path(__file__).with_name("_launcher.py")
NOT_STARTED = "bwrap did not start the program"
EMPTY_STAGE_FILE = ".empty"


def find_bwrap() -> str | None:
    return shutil.which("bwrap", path="/usr/bin:/bin:/usr/local/bin:" + os.environ.get("PATH", ""))


def _bwrap_argv(bwrap: str, job: Job, mounts: list[Mount], seccomp_fd: int, status_fd: int
                ) -> tuple[list[str], list[tuple[str, str]]]:
    """bwrap's command line and the (host source, stage name) binds the launcher must prepare."""
    argv = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
            "--new-session", "--uid", str(job.uid), "--gid", str(job.gid), "--hostname", "sandbox",
            "--cap-drop", "ALL", "--clearenv"]
    for key, value in sandbox_environment().items():
        argv += ["--setenv", key, value]
    binds: list[tuple[str, str, str]] = []
    for m in mounts:
        if m.kind in ("bind", "copy"):  # the launcher binds or copies the source into its stage
            name = f"m{len(binds)}"
            binds.append((m.source, name, m.kind))
            argv += ["--bind" if m.writable else "--ro-bind", os.path.join(job.stage, name), m.dest]
        elif m.kind == "tmpfs":
            argv += ["--perms", "1777" if m.writable else "0755", "--size", str(m.size), "--tmpfs", m.dest]
        elif m.kind == "symlink":
            argv += ["--symlink", m.source, m.dest]
        elif m.kind == "proc":
            argv += ["--proc", m.dest]
        elif m.kind == "dev":
            argv += ["--dev", m.dest]
        elif m.kind == "remount_ro":
            argv += ["--remount-ro", m.dest]
    for name in [n for n in MASKED_PROC_FILES if os.path.isfile(f"/proc/{n}")]:  # host-wide counters
        argv += ["--ro-bind-try", os.path.join(job.stage, EMPTY_STAGE_FILE), f"/proc/{name}"]
    argv += ["--remount-ro", "/", "--chdir", TMP_DIR, "--seccomp", str(seccomp_fd),
             "--json-status-fd", str(status_fd), "--",
             job.runtime.executable, "-I", "-B", SCRIPT_PATH, *job.args]
    return argv, binds


def _read_all(fd: int) -> bytes:
    chunks = []
    os.set_blocking(fd, False)
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _args_file(args: list[str]) -> int:
    """An fd holding ARGS NUL-terminated, read from the start (bwrap's `--args` format)."""
    fd = os.memfd_create("bwrap-args", 0)
    os.write(fd, b"".join(arg.encode() + b"\0" for arg in args))
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def start(bwrap: str, job: Job, bpf: bytes) -> Started:
    seccomp_r, seccomp_w = os.pipe()
    os.write(seccomp_w, bpf)
    os.close(seccomp_w)
    status_r, status_w = os.pipe()
    error_r, error_w = os.pipe()
    mounts = runtime_mounts(job.runtime) + job.job_mounts
    argv, binds = _bwrap_argv(bwrap, job, mounts, seccomp_r, status_w)
    # bwrap's init is the sandbox's pid 1, whose command line is readable inside (/proc/1/cmdline):
    # it gets its options (stage paths, mounts, fds) from an fd, `bwrap --args FD`.
    # The command itself (the interpreter and the script's arguments) stays on the command line:
    # bwrap takes it from nowhere else.
    split = argv.index("--")
    args_fd = _args_file(argv[1:split])
    argv = [bwrap, "--args", str(args_fd), *argv[split:]]
    config = {"stage": job.stage, "stage_bytes": root_bytes(mounts), "binds": binds, "cgroup_procs": job.cgroup_procs,
              "rlimits": job.rlimits, "uid": job.uid, "gid": job.gid, "argv": argv, "error_fd": error_w}
    try:
        proc = subprocess.Popen(
            [os.path.realpath(sys.executable), "-I", "-S", str(LAUNCHER), json.dumps(config)],
            env={}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=(seccomp_r, status_w, error_w, args_fd), start_new_session=True, cwd="/",
        )
    finally:
        for fd in (seccomp_r, status_w, error_w, args_fd):
            os.close(fd)
    exit_fd = os.pidfd_open(proc.pid)
    assert proc.stdout is not None and proc.stderr is not None
    stdout_fd, stderr_fd = os.dup(proc.stdout.fileno()), os.dup(proc.stderr.fileno())
    proc.stdout.close()
    proc.stderr.close()

    def kill() -> None:
        if proc.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def finish() -> ExitInfo:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        info = ExitInfo(cpu_seconds=usage.ru_utime + usage.ru_stime)
        launch_error = _read_all(error_r).decode("utf-8", "replace")
        docs = _read_all(status_r).decode("utf-8", "replace")
        exit_code = None
        for line in docs.replace("}{", "}\n{").splitlines():
            if line.strip():
                exit_code = json.loads(line).get("exit-code", exit_code)
        if launch_error:
            info.setup_error = launch_error
        elif exit_code is None:
            info.setup_error = NOT_STARTED
        elif 128 < exit_code <= 128 + 64:  # bwrap reports a signal death as 128 + N
            info.signal = exit_code - 128
        else:
            info.returncode = exit_code
        return info

    return Started(stdout_fd, stderr_fd, exit_fd, kill, finish)
