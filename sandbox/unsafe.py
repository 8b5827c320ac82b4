"""`UnsafeSandbox`: NO isolation, for development machines without bwrap or root, when the operator
explicitly asks for it. Every result says so (RunResult.unsafe, message prefix) and every construction
logs a WARNING. Paths: there are no mounts, so arguments that start with an inside path of `ro_binds`
or with /out are rewritten to the host path, and the script runs from a fresh temporary directory."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Self

from .layout import OUT_DIR, sandbox_environment
from .limits import Limits
from .result import UNSAFE_PREFIX, RunFacts, RunResult, classify
from .supervise import watch

logger = logging.getLogger(__name__)


def _set_rlimits(limits: Limits) -> None:
    import resource
    for name, value in limits.rlimits().items():
        if name != "RLIMIT_NPROC":  # per uid: would count the whole service's processes
            resource.setrlimit(getattr(resource, name), value)


class UnsafeSandbox:
    """Same `run_python` as `Sandbox`, but a plain subprocess with rlimits and a wall clock."""

    def __init__(self, slot: int = 0, limits: Limits = Limits(), **_ignored: object) -> None:
        logger.warning("UNSAFE sandbox mode (slot %d): student code runs WITHOUT isolation; "
                       "never use this for real submissions", slot)
        self.slot = slot
        self.limits = limits
        self.backend_name = "unsafe"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pass

    def run_python(self, script: Path, args: list[str], *, ro_binds: list[tuple[Path, str]],
                   out_dir: Path, limits: Limits | None = None) -> RunResult:
        limits = limits or self.limits
        mapping = sorted([(inside, str(host)) for host, inside in ro_binds] + [(OUT_DIR, str(out_dir))],
                         key=lambda pair: -len(pair[0]))

        def rewrite(arg: str) -> str:
            for inside, host in mapping:
                if arg == inside or arg.startswith(inside.rstrip("/") + "/"):
                    return host + arg[len(inside.rstrip("/")):]
            return arg

        with tempfile.TemporaryDirectory(prefix="unsafe-sandbox-") as tmp:
            env = sandbox_environment() | {"HOME": tmp}
            proc = subprocess.Popen(
                [sys.executable, "-I", "-B", str(script), *[rewrite(a) for a in args]],
                env=env, cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True, preexec_fn=lambda: _set_rlimits(limits),  # noqa: PLW1509 - only setrlimit, test-only backend
            )
            exit_fd = os.pidfd_open(proc.pid)
            assert proc.stdout is not None and proc.stderr is not None
            out_fd, err_fd = os.dup(proc.stdout.fileno()), os.dup(proc.stderr.fileno())
            proc.stdout.close()
            proc.stderr.close()

            def kill() -> None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

            watched = watch(stdout_fd=out_fd, stderr_fd=err_fd, exit_fd=exit_fd, limits=limits, cgroup=None,
                            kill=kill)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        facts = RunFacts(
            returncode=None if os.WIFSIGNALED(status) else os.waitstatus_to_exitcode(status),
            signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            killed_for=watched.killed_for, cpu_seconds=usage.ru_utime + usage.ru_stime,
            stderr_tail=watched.stderr.text()[-4096:],
        )
        outcome, message = classify(facts, limits)
        return RunResult(outcome=outcome, returncode=facts.returncode, signal=facts.signal,
                         stdout=watched.stdout.text(), stderr=watched.stderr.text(),
                         wall_seconds=watched.wall_seconds, cpu_seconds=facts.cpu_seconds,
                         message=UNSAFE_PREFIX + message, unsafe=True)
