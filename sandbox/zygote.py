"""Service side of the zygote (see `_zygote_main.py`): start it, ask it for runs, stop it."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from .backend import ExitInfo, Job, Started
from .layout import Runtime, runtime_mounts, sandbox_environment

logger = logging.getLogger(__name__)

ZYGOTE_MAIN = Path(__file__).with_name("_zygote_main.py")
START_TIMEOUT = 60.0


class ZygoteError(RuntimeError):
    pass


class Zygote:
    """One pre-started fork server for one slot. Not thread-safe: the Sandbox serialises runs."""

    def __init__(self, runtime: Runtime, stage: str, bpf: bytes, preload: tuple[str, ...]) -> None:
        self.runtime = runtime
        self.stage = stage
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        config = {"stage": stage, "site_packages": self.runtime.site_packages,
                  "packages": list(self.runtime.packages), "preload": list(preload), "bpf": bpf.hex(),
                  "sock_fd": theirs.fileno()}
        try:
            self.proc = subprocess.Popen(
                [os.path.realpath(sys.executable), "-I", "-S", str(ZYGOTE_MAIN), json.dumps(config)],
                env=sandbox_environment(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),), cwd="/", start_new_session=True,
            )
        finally:
            theirs.close()
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
            if not data:
                return ExitInfo(setup_error=NOT_REPORTED)
            report = json.loads(data)
            if "error" in report:
                return ExitInfo(setup_error=report["error"])
            status = report["status"]
            info = ExitInfo(cpu_seconds=report["cpu"])
            if os.WIFSIGNALED(status):
                info.signal = os.WTERMSIG(status)
            else:
                info.returncode = os.waitstatus_to_exitcode(status)
            return info

        return Started(out_r, err_r, exit_fd, kill, finish)

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
