"""Service side of the zygote (see `_zygote_main.py`): start it, ask it for runs, stop it."""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

from .backend import ExitInfo, Job, Started
from .layout import Runtime, root_bytes, runtime_mounts, sandbox_environment

logger = logging.getLogger(__name__)

ZYGOTE_MAIN = Path(__file__).with_name("_zygote_main.py")
START_TIMEOUT = 60.0


class ZygoteError(RuntimeError):
    pass


class Zygote:
    """One pre-started fork server for one slot. Not thread-safe: the Sandbox serialises runs."""

    def __init__(self, runtime: Runtime, stage: str, bpf: bytes, preload: tuple[str, ...],
                 cgroup_procs: list[str] = ()) -> None:
        """CGROUP_PROCS: the slot's cgroups, which the zygote joins once it has preloaded, so that
        every sandbox it forks is born in them (the caller must spare its pid when killing the group)."""
        self.runtime = runtime
        self.stage = stage
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        config = {"stage": stage, "site_packages": self.runtime.site_packages,
                  "packages": list(self.runtime.packages), "preload": list(preload), "bpf": bpf.hex(),
                  "cgroup_procs": list(cgroup_procs), "package_parent": str(ZYGOTE_MAIN.parents[1])}
        # Every sandbox's pid 1 is a fork of the zygote, so its command line is readable inside
        # (/proc/1/cmdline): it names only fd numbers. The script comes through an inherited fd and
        # the settings (paths, cgroups, seccomp filter) as the socket's first message.
        script_fd = os.open(ZYGOTE_MAIN, os.O_RDONLY)
        try:
            self._sock.send(json.dumps(config).encode())
            self.proc = subprocess.Popen(
                [os.path.realpath(sys.executable), "-I", "-S", f"/proc/self/fd/{script_fd}",
                 str(theirs.fileno()), str(script_fd)],
                env=sandbox_environment(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(), script_fd), cwd="/", start_new_session=True,
            )
        finally:
            theirs.close()
            os.close(script_fd)
        self._ready = False

    def _await_ready(self) -> None:
        """The zygote spends ~0.3 s importing numpy and scipy. Its readiness is awaited only when
        it is first needed, so that start-up overlaps with the caller's own work."""
        if self._ready:
            return
        self._sock.settimeout(START_TIMEOUT)
        try:
            ready = self._sock.recv(4096)
        except OSError as exc:
            self.close()
            raise ZygoteError(f"zygote did not start: {exc}") from exc
        if not ready:
            self.close()
            raise ZygoteError("zygote exited during start-up")
        self._sock.settimeout(None)
        self._ready = True

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def start(self, job: Job) -> Started:
        self._await_ready()
        mounts = runtime_mounts(job.runtime, from_zygote_view=True) + job.job_mounts
        request = {
            "mounts": [[m.kind, m.dest, m.source, m.writable, m.size] for m in mounts],
            "root_bytes": root_bytes(mounts),
            "args": job.args, "rlimits": job.rlimits, "uid": job.uid, "gid": job.gid,
            "stage": job.stage, "cgroup_procs": job.cgroup_procs,
        }
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        status_r, status_w = os.pipe()
        try:
            socket.send_fds(self._sock, [json.dumps(request).encode()], [out_w, err_w, status_w])
            reply = self._sock.recv(4096)
        except OSError as exc:
            for fd in (out_r, err_r, status_r):
                os.close(fd)
            raise ZygoteError(f"zygote unreachable: {exc}") from exc
        finally:
            for fd in (out_w, err_w, status_w):
                os.close(fd)
        if not reply:
            for fd in (out_r, err_r, status_r):
                os.close(fd)
            raise ZygoteError("zygote died")
        pid = json.loads(reply)["pid"]
        # The zygote reaps this child only when it gets our next request, so the pid is still ours.
        exit_fd = os.pidfd_open(pid)
        kill_fd = os.dup(exit_fd)

        def kill() -> None:
            try:
                signal.pidfd_send_signal(kill_fd, signal.SIGKILL)
            except (ProcessLookupError, OSError):
                pass

        def finish() -> ExitInfo:
            os.close(kill_fd)
            os.set_blocking(status_r, False)
            data = b""
            try:
                while chunk := os.read(status_r, 65536):
                    data += chunk
            except BlockingIOError:
                pass
            os.close(status_r)
            reports = [json.loads(line) for line in data.splitlines() if line.strip()]
            started = any(r.get("started") for r in reports)
            final = next((r for r in reports if "status" in r or "error" in r), None)
            if final is None and started:  # its supervisor went down after the script began: the script's doing
                return ExitInfo(signal=signal.SIGKILL)
            if final is None:
                return ExitInfo(setup_error=NOT_REPORTED)
            if "error" in final:
                return ExitInfo(setup_error=final["error"])
            return _exit_info(final)

        return Started(out_r, err_r, exit_fd, kill, finish)

    def start_batch(self, job: Job, scratch: list[tuple[str, int, int, int | None]],
                    setup_args: list[str] | None = None) -> Batch:
        """Build one sandbox for many tasks (see `_zygote_main.run_batch_job`); returns once its
        init has preloaded the script, or raises ZygoteError."""
        self._await_ready()
        mounts = runtime_mounts(job.runtime, from_zygote_view=True) + job.job_mounts
        request = {
            "batch": True,
            "mounts": [[m.kind, m.dest, m.source, m.writable, m.size] for m in mounts],
            "root_bytes": root_bytes(mounts), "scratch": scratch, "setup": setup_args,
            "rlimits": job.rlimits, "uid": job.uid, "gid": job.gid,
            "stage": job.stage, "cgroup_procs": job.cgroup_procs,
        }
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            socket.send_fds(self._sock, [json.dumps(request).encode()], [theirs.fileno()])
            reply = self._sock.recv(4096)
        except OSError as exc:
            ours.close()
            raise ZygoteError(f"zygote unreachable: {exc}") from exc
        finally:
            theirs.close()
        if not reply:
            ours.close()
            raise ZygoteError("zygote died")
        batch = Batch(ours, json.loads(reply)["pid"])
        try:
            batch.await_ready()
        except ZygoteError:
            batch.close()
            raise
        return batch

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


NOT_REPORTED = "the sandboxed program ended without a status report"


def _exit_info(report: dict) -> ExitInfo:
    """An init's exit report ({"status": wait status, "cpu": seconds}) as the backend's ExitInfo."""
    status = report["status"]
    info = ExitInfo(cpu_seconds=report["cpu"])
    if os.WIFSIGNALED(status):
        info.signal = os.WTERMSIG(status)
    else:
        info.returncode = os.waitstatus_to_exitcode(status)
    return info
BATCH_START_TIMEOUT = 30.0


class Batch:
    """The service's end of one batch sandbox: run tasks one at a time, in lockstep with its init."""

    def __init__(self, ctl: socket.socket, pid: int) -> None:
        self._ctl = ctl
        self._exit_fd = os.pidfd_open(pid)  # C1: gone means the whole sandbox is gone
        self.init_pid: int | None = None
        self.lost = False  # the sandbox went down (after a task started, that task's doing)

    def _receive(self, timeout: float | None = None) -> dict:
        self._ctl.settimeout(timeout)
        try:
            data = self._ctl.recv(1 << 16)
        except OSError as exc:
            raise ZygoteError(f"batch sandbox unreachable: {exc}") from exc
        finally:
            self._ctl.settimeout(None)
        if not data:
            raise ZygoteError("the batch sandbox is gone")
        message = json.loads(data)
        if "error" in message:
            raise ZygoteError(message["error"])
        return message

    def await_ready(self) -> None:
        ready = False
        while not (ready and self.init_pid):
            message = self._receive(BATCH_START_TIMEOUT)
            ready = ready or bool(message.get("ready"))
            self.init_pid = self.init_pid or message.get("init_pid")

    def start(self, index: int, args: list[str], rlimits: dict[str, tuple[int, int]] | None = None) -> Started:
        """Start one task (with RLIMITS instead of the batch's when given); raises ZygoteError if the
        sandbox could not (then nothing of it ran)."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        order = {"run": index, "args": args} | ({"rlimits": rlimits} if rlimits else {})
        try:
            socket.send_fds(self._ctl, [json.dumps(order).encode()], [out_w, err_w])
            message = self._receive(BATCH_START_TIMEOUT)
        except (OSError, ZygoteError) as exc:
            os.close(out_r)
            os.close(err_r)
            raise ZygoteError(f"task {index} did not start: {exc}") from exc
        finally:
            os.close(out_w)
            os.close(err_w)
        if message.get("started") != index:
            os.close(out_r)
            os.close(err_r)
            raise ZygoteError(f"task {index} did not start: {message}")
        exit_fd = os.dup(self._ctl.fileno())  # readable when the init reports the exit (or is gone)

        def finish() -> ExitInfo:
            try:
                report = self._receive(5.0)
            except ZygoteError:  # the sandbox went down after the task started: the task's doing
                self.lost = True
                return ExitInfo(signal=signal.SIGKILL)
            return _exit_info(report)

        return Started(out_r, err_r, exit_fd, lambda: None, finish)

    def out_path(self) -> str:
        """Where the current task's /out is seen from the host (valid while the init waits)."""
        return f"/proc/{self.init_pid}/root/out"

    def close(self) -> None:
        """Tell the init to stop (it takes every process of the namespace with it) and wait for it."""
        try:
            self._ctl.send(b'{"done": true}')
        except OSError:
            pass
        self._ctl.close()
        try:
            select.select([self._exit_fd], [], [], 5.0)
        finally:
            os.close(self._exit_fd)
