"""The outcome of one run and the one-sentence message a student reads."""

from __future__ import annotations

import re
import signal as signal_module
from dataclasses import dataclass, field

from .limits import Limits

OUTCOMES = ("ok", "exit_error", "cpu_time", "wall_time", "memory", "output", "signal", "sandbox_error")
UNSAFE_PREFIX = "UNSAFE MODE, no isolation: "


@dataclass
class RunResult:
    outcome: str  # one of OUTCOMES
    returncode: int | None  # exit code if the program exited
    signal: int | None  # signal number if it was killed by one
    stdout: str  # capped: head and tail with a "[... N bytes cut ...]" marker
    stderr: str
    wall_seconds: float
    cpu_seconds: float
    message: str  # one sentence for the student
    unsafe: bool = False  # True when produced by the unprivileged development backend (no isolation)
    files: dict[str, bytes] = field(default_factory=dict)  # batch tasks: the /out files read back
    file_errors: dict[str, str] = field(default_factory=dict)  # ...and why a named one could not be


@dataclass
class RunFacts:
    """What the supervisor observed, before classification."""

    returncode: int | None = None
    signal: int | None = None
    killed_for: str | None = None  # "wall" | "output" | "cpu" when the supervisor killed the run
    oom_killed: bool = False
    cpu_seconds: float = 0.0
    stderr_tail: str = ""
    setup_error: str | None = None


_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")


def _exception_name(stderr_tail: str) -> str | None:
    lines = [line for line in stderr_tail.strip().splitlines() if line.strip()]
    if not lines or "Traceback (most recent call last)" not in stderr_tail:
        return None
    match = _EXCEPTION_LINE.match(lines[-1])
    return match.group(1) if match else None


def _signal_name(number: int) -> str:
    try:
        return signal_module.Signals(number).name
    except ValueError:
        return f"signal {number}"


def classify(facts: RunFacts, limits: Limits) -> tuple[str, str]:
    """Return (outcome, message) from the observed facts. The most specific cause wins."""
    cpu_limit = f"{limits.cpu_seconds:g}"
    if facts.setup_error:
        return "sandbox_error", f"The sandbox could not run the program (not your fault): {facts.setup_error}."
    if facts.killed_for == "output":
        return "output", (f"Output limit exceeded: wrote more than {limits.output_bytes // 1024} KiB "
                          "to stdout or stderr.")
    if facts.oom_killed:
        return "memory", f"Memory limit exceeded: used more than {limits.memory_bytes >> 20} MiB."
    cpu_signal = facts.signal == signal_module.SIGXCPU or (
        facts.signal == signal_module.SIGKILL and facts.cpu_seconds >= limits.cpu_seconds)
    over_cpu = facts.cpu_seconds >= limits.cpu_seconds  # e.g. ignored SIGXCPU, then the wall clock hit
    if facts.killed_for == "cpu" or (cpu_signal and facts.killed_for != "wall") or (
            facts.killed_for == "wall" and over_cpu):
        return "cpu_time", f"Time limit exceeded: used more than {cpu_limit} s of CPU time."
    if facts.killed_for == "wall":
        return "wall_time", (f"Time limit exceeded: still running after {limits.wall_seconds:g} s "
                             "of wall-clock time.")
    exception = _exception_name(facts.stderr_tail)
    if facts.returncode not in (None, 0) and exception and exception.endswith("MemoryError"):
        return "memory", f"Memory limit exceeded: used more than {limits.memory_bytes >> 20} MiB."
    if facts.signal is not None:
        return "signal", f"Killed by signal {facts.signal} ({_signal_name(facts.signal)})."
    if facts.returncode not in (None, 0):
        if exception:
            return "exit_error", f"Crashed with an uncaught {exception} (exit code {facts.returncode})."
        return "exit_error", f"Exited with code {facts.returncode}."
    return "ok", "Finished normally."
