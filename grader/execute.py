"""Where a handin's section plans run against the student's package: `run_handin(job, n_tests)`
returns one `SectionRun` per section, in order, each from its own process.

A section's points come only from a process in which no other section's student code has run:
code in one file must never make another file's visible code irrelevant (halving another
section's inputs, lifting its np.tanh ban, lending it a class it cannot import alone; issue 18).
So every section runs alone, in a fresh process forked from a state that holds only trusted code
(the runner, and the job's plans and inputs it loaded); its inputs are that state's copy, which no
other section's code can reach. One section's crash, hang, memory blow-up or leftovers never cost
another its points.

`SandboxExecutor` runs grader/runner.py inside the `sandbox` package: one sandbox per handin (its
namespaces, root, and the runner and job loaded once by its init, which runs no student code),
each section a fresh, separately limited process forked from that init (`Sandbox.run_batch`).
`UnsafeExecutor` runs plain subprocesses: no isolation at all, for tests and explicit development
use only, and every result it produces says so. Both return raw outputs; neither decides a score.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from grader.errors import GraderBug
from grader.plan import Budget

log = logging.getLogger(__name__)

__all__ = ["ExecutorUnavailable", "GraderBug", "SandboxExecutor", "SectionRun", "UnsafeExecutor", "load_outputs",
           "open_executor"]

RUNNER = Path(__file__).with_name("runner.py")
REPORT_MAX_BYTES = 1 << 20
OUTPUTS_MAX_BYTES = 64 << 20
OUTPUTS = "outputs.safetensors"
RESULT_FILES = (OUTPUTS, "report.json")
RESULT_CAPS = {OUTPUTS: OUTPUTS_MAX_BYTES, "report.json": REPORT_MAX_BYTES}   # read no further than this
MAX_SLOT_SEARCH = 256
TIME_LIMIT = "Time limit exceeded"   # how the unsafe executor's own time-limit sentence starts
TIME_OUTCOMES = ("cpu_time", "wall_time")   # the sandbox's outcomes for a section its time limit stopped


class ExecutorUnavailable(RuntimeError):
    """No safe sandbox can be had here (no backend, or every slot is held): refuse to run student code."""


@dataclass
class SectionRun:
    arrays: dict[str, np.ndarray] | None   # "TEST_INDEX/NAME" -> value, None if the run failed
    reports: list[dict] | None             # per-test reports from the runner (untrusted text)
    failure: str | None = None             # one sentence when the section did not complete
    # With a failure (a time limit), ARRAYS and REPORTS may still hold what the runner wrote just
    # before the kill: the tests done, the one running and where, the ones not reached.


def _stopped_by_time(failure: str, files: dict[str, bytes], errors: dict[str, str], n_tests: int) -> SectionRun:
    """A section the time limit stopped, with the runner's last report when it wrote one that
    says which test was running (else only the failure)."""
    partial = load_read_back(files, errors, n_tests)
    if partial.arrays is not None and any(r["kind"] == "time_limit" for r in partial.reports):
        return SectionRun(partial.arrays, partial.reports, failure)
    return SectionRun(None, None, failure)


# The most a suite may ask for one section (`Section.budget`) unless the operator sets otherwise
# (GRADER_SECTION_MAX_* for the service): an endless loop in a section so budgeted costs this much.
DEFAULT_CEILING = Budget(cpu_seconds=60.0, wall_seconds=150.0, memory_bytes=4 << 30)


def within_ceiling(budget: Budget | None, ceiling: Budget) -> Budget | None:
    """BUDGET with every field the operator's CEILING bounds cut down to it."""
    if budget is None:
        return None

    def cut(asked, most):
        return asked if asked is None or most is None else min(asked, most)

    return Budget(cpu_seconds=cut(budget.cpu_seconds, ceiling.cpu_seconds),
                  wall_seconds=cut(budget.wall_seconds, ceiling.wall_seconds),
                  memory_bytes=cut(budget.memory_bytes, ceiling.memory_bytes))


class Executor(Protocol):
    """What `grade` runs a handin's sections with, whatever isolates them (SandboxExecutor, or
    UnsafeExecutor in development). Obtained from `open_executor`; closed with `close`."""

    name: str      # what isolated the sections, recorded on every result (e.g. "bwrap+cgroup-v2")
    unsafe: bool   # True only without a sandbox; recorded on every result too

    def run_handin(self, job: Path, n_tests: list[int],
                   budgets: list[Budget | None] | None = None) -> list[SectionRun]:
        """Every section of the job directory JOB, each alone; N_TESTS: tests per section; BUDGETS
        (one per section, None: the defaults) as the suite declared them."""

    def close(self) -> None:
        """Release its sandboxes and their slots."""


class _Executor:
    """What both executors share: every section alone, in its own process."""

    ceiling: Budget = DEFAULT_CEILING

    def run_handin(self, job: Path, n_tests: list[int],
                   budgets: list[Budget | None] | None = None) -> list[SectionRun]:
        """Every section's run; BUDGETS (one per section, None: the defaults) as the suite declared them."""
        indices = list(range(len(n_tests)))
        budgets = [within_ceiling(b, self.ceiling) for b in budgets or [None] * len(n_tests)]
        return self.run_sections(job, n_tests, indices, budgets)

    def run_sections(self, job: Path, n_tests: list[int], indices: list[int],
                     budgets: list[Budget | None] | None = None) -> list[SectionRun]:
        raise NotImplementedError


def _clean_location(where) -> dict | None:
    """A report's {"path", "line"} when well formed: a relative .py path inside the handin (which of
    the suite's packages it must lie in is grade.py's business)."""
    if not isinstance(where, dict):
        return None
    path, line = where.get("path"), where.get("line")
    if not isinstance(path, str) or not re.fullmatch(r"[\w.-]+(/[\w.-]+)*\.py", path) or ".." in path:
        return None
    return {"path": path, "line": line if isinstance(line, int) and 0 < line < 10**6 else None}


STOPPED_KINDS = ("import", "time_limit", "not_reached")   # why a test stopped, as the runner may say it
MAX_STACK_FRAMES = 20


def _clean_stack(stack) -> list[dict]:
    """A time limit's stack from the report, each frame well formed (a handin path, a line, a
    function name, the line's code as text), at most MAX_STACK_FRAMES of them."""
    if not isinstance(stack, list):
        return []
    frames = []
    for frame in stack[-MAX_STACK_FRAMES:]:
        where = _clean_location(frame)
        if where is None or not isinstance(frame, dict):
            continue
        function = frame.get("function")
        code = frame.get("code")
        frames.append({**where, "function": function if isinstance(function, str)
                       and re.fullmatch(r"[\w.<>]{1,100}", function) else "?",
                       "code": code[:200] if isinstance(code, str) else ""})
    return frames


def _parse_reports(text: str, expected_tests: int) -> list[dict] | None:
    """The runner's report is untrusted: keep only well-formed string fields."""
    try:
        tests = json.loads(text)["tests"]
    except (ValueError, KeyError, TypeError):   # not JSON, or not {"tests": ...}
        return None
    if not isinstance(tests, list) or len(tests) != expected_tests:
        return None
    clean = []
    for entry in tests:
        if not isinstance(entry, dict):
            return None
        error = entry.get("error")
        bad = entry.get("bad_values") if isinstance(entry.get("bad_values"), dict) else {}
        kind = entry.get("kind") if entry.get("kind") in STOPPED_KINDS else None
        clean.append({"error": str(error)[:4000] if error else None,
                      "kind": kind, "stack": _clean_stack(entry.get("stack")) if kind == "time_limit" else [],
                      "bad_values": {str(k): str(v)[:500] for k, v in list(bad.items())[:200]},
                      "location": _clean_location(entry.get("location"))})
    return clean


class UnsafeExecutor(_Executor):
    """Plain subprocess, no sandbox. Only behind --unsafe-no-sandbox / explicit unsafe mode."""

    name = "unsafe-subprocess"
    unsafe = True

    def __init__(self, timeout: float = 30.0, slots: int = 2, ceiling: Budget = DEFAULT_CEILING):
        self.timeout = timeout
        self.slots = slots
        self.ceiling = ceiling
        log.warning("UNSAFE: student code will run WITHOUT a sandbox (development/test mode only)")

    def run_sections(self, job: Path, n_tests: list[int], indices: list[int],
                     budgets: list[Budget | None] | None = None) -> list[SectionRun]:
        runs = []
        for position, index in enumerate(indices):
            out = job / f"out-{index}"
            out.mkdir()
            budget = budgets[position] if budgets else None
            timeout = max(self.timeout, budget.wall_seconds or 0) if budget else self.timeout
            failure = self._run(job, str(index), out, timeout)
            if failure and failure.startswith(TIME_LIMIT):
                runs.append(_stopped_by_time(failure, *read_result_files(out), n_tests[index]))
            else:
                runs.append(SectionRun(None, None, failure) if failure else load_outputs(out, n_tests[index]))
        return runs

    def _run(self, job: Path, which: str, out_dir: Path, timeout: float) -> str | None:
        """Run the runner for section WHICH; a sentence if it did not end normally."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin"), "OPENBLAS_NUM_THREADS": "1",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        argv = [sys.executable, "-I", "-B", str(RUNNER), str(job / "plans.json"),
                str(job / "inputs.bin"), str(job / "handin"), str(out_dir), which, str(timeout)]
        try:
            proc = subprocess.run(argv, env=env, cwd=out_dir, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return f"{TIME_LIMIT}: the section ran longer than {timeout:g} s."
        if proc.returncode != 0:
            tail = proc.stderr.decode(errors="replace")[-2000:]
            return f"The section crashed (exit code {proc.returncode}).\n{tail}"
        return None

    def close(self) -> None:
        """Nothing to release; present so every executor is closed the same way."""


def read_result_files(out_dir: Path) -> tuple[dict[str, bytes], dict[str, str]]:
    """A run's result files from OUT_DIR the way hostile files must be read (no symlink, FIFO or
    device; capped), as the sandbox reads them back: ({name: bytes}, {name: why it is missing})."""
    from sandbox.errors import ResultFileError
    from sandbox.result_files import read_result_file

    files, errors = {}, {}
    for name, cap in RESULT_CAPS.items():
        try:
            files[name] = read_result_file(out_dir / name, cap)
        except ResultFileError as exc:
            errors[name] = str(exc)
    return files, errors


def load_outputs(out_dir: Path, n_tests: int) -> SectionRun:
    """Read a section's result files the way hostile files must be read, whichever executor ran it."""
    return load_read_back(*read_result_files(out_dir), n_tests)


def load_read_back(files: dict[str, bytes], errors: dict[str, str], n_tests: int) -> SectionRun:
    """A section's result files, already read with caps (by the sandbox, or `read_result_files`)."""
    from sandbox.result_files import load_safetensors_bytes

    try:
        for name in RESULT_FILES:
            if name not in files:
                raise ValueError(errors.get(name) or f"The result file {name} was not written.")
        arrays = load_safetensors_bytes(files[OUTPUTS], OUTPUTS)
        if len(files["report.json"]) > REPORT_MAX_BYTES:
            raise ValueError(f"The result file report.json is larger than {REPORT_MAX_BYTES} bytes.")
        text = files["report.json"].decode("utf-8")
    except Exception as exc:  # noqa: BLE001 - missing, hostile or damaged result files (ResultFileError above all)
        return SectionRun(None, None, f"The section produced no usable results ({exc}).")
    return _with_report(arrays, text, n_tests)


def _with_report(arrays: dict[str, np.ndarray], text: str, n_tests: int) -> SectionRun:
    reports = _parse_reports(text, n_tests)
    if reports is None:
        return SectionRun(None, None, "The section produced a damaged report.")
    return SectionRun(arrays, reports)


class SandboxExecutor(_Executor):
    """Runs each call in one sandbox (a fresh, limited process per section), on one of SLOTS
    slots: SLOTS handins may be graded at once."""

    unsafe = False

    def __init__(self, slots: int = 1, first_slot: int = 0, limits=None, zygote: bool = True,
                 work_dir: Path | None = None, ceiling: Budget = DEFAULT_CEILING):
        """WORK_DIR: where the slots keep their host-side scratch, in one slot directory this
        executor owns until `close` (grader/workdir.py); the system temp directory when None.
        LIMITS: every section's (sandbox.Limits' defaults when None); CEILING: the most a section's
        budget may raise them to."""
        import sandbox
        from grader.workdir import SLOT_PREFIX, WorkDir

        self.name = sandbox.check_backend()
        self.limits = limits or sandbox.Limits()
        self.ceiling = ceiling
        self._slot_dir = WorkDir(work_dir).claim(SLOT_PREFIX) if work_dir is not None else None
        kwargs = {"zygote": zygote, "scratch_dir": self._slot_dir and self._slot_dir.path}
        kwargs |= {"limits": limits} if limits else {}
        self._boxes = []
        slot = first_slot
        try:
            while len(self._boxes) < slots:  # skip slots another process holds
                try:
                    self._boxes.append(sandbox.Sandbox(slot, **kwargs))
                except sandbox.SlotBusy:
                    if slot - first_slot > MAX_SLOT_SEARCH:
                        raise
                slot += 1
        except BaseException:
            self.close()   # the slots taken so far, and the slot directory
            raise
        self._free = list(self._boxes)
        self.slots = slots
        self._lock = threading.Condition()

    def section_limits(self, budget: Budget | None):
        """The sandbox limits of a section with BUDGET (already within the ceiling)."""
        if budget is None:
            return None
        asked = {"cpu_seconds": budget.cpu_seconds, "wall_seconds": budget.wall_seconds,
                 "memory_bytes": budget.memory_bytes}
        return dataclasses.replace(self.limits, **{k: v for k, v in asked.items() if v is not None})

    def run_sections(self, job: Path, n_tests: list[int], indices: list[int],
                     budgets: list[Budget | None] | None = None) -> list[SectionRun]:
        runs = []
        task_limits = [self.section_limits(b) for b in budgets] if budgets else None
        for index, result in zip(indices, self._run_batch(job, [str(i) for i in indices], task_limits)):
            if result.outcome == "sandbox_error":  # before the section's code started: ours, retried
                raise GraderBug(f"the sandbox could not run section {index}: {result.message}")
            if result.outcome in TIME_OUTCOMES:
                runs.append(_stopped_by_time(result.message, result.files, result.file_errors, n_tests[index]))
            elif result.outcome != "ok":
                runs.append(SectionRun(None, None, result.message))
            else:
                runs.append(load_read_back(result.files, result.file_errors, n_tests[index]))
        return runs

    def _run_batch(self, job: Path, which: list[str], task_limits=None):
        """One sandbox on a free slot, one process per entry of WHICH (see the module docstring)."""
        with self._lock:
            while not self._free:
                self._lock.wait()
            box = self._free.pop()
        try:
            job_files = ["/job/plans.json", "/job/inputs.bin"]
            # each section's wall-clock limit: the runner reports where it was shortly before the kill
            walls = [f"{((task_limits[i] if task_limits else None) or self.limits).wall_seconds:g}"
                     for i in range(len(which))]
            return box.run_batch(
                RUNNER, [[*job_files, "/handin", "/out", w, wall] for w, wall in zip(which, walls)],
                ro_binds=[(job / "plans.json", "/job/plans.json"), (job / "inputs.bin", "/job/inputs.bin"),
                          (job / "handin", "/handin")],
                read_back=RESULT_CAPS, setup_args=job_files, limits=self.limits, task_limits=task_limits)
        finally:
            with self._lock:
                self._free.append(box)
                self._lock.notify()

    def close(self) -> None:
        for box in self._boxes:
            box.close()
        if self._slot_dir:
            self._slot_dir.release()


def open_executor(*, unsafe: bool = False, slots: int = 1, first_slot: int = 0,
                  timeout: float | None = None, limits=None, work_dir: Path | None = None,
                  ceiling: Budget = DEFAULT_CEILING) -> Executor:
    """The one way callers outside `grader` obtain an executor; close it with `.close()` when done.

    Fails closed: without a working sandbox it raises ExecutorUnavailable unless `unsafe` is asked
    for explicitly, and then every result it produces says unsafe=true. CEILING: the most a suite's
    section budget may ask (the operator's bound).
    """
    if unsafe:
        return UnsafeExecutor(slots=slots, ceiling=ceiling, **({} if timeout is None else {"timeout": timeout}))
    import sandbox

    try:  # slots are machine-wide; SandboxExecutor steps past the ones other processes hold
        return SandboxExecutor(slots=slots, first_slot=first_slot, limits=limits, work_dir=work_dir,
                               ceiling=ceiling)
    except (sandbox.BackendUnavailable, sandbox.SlotBusy) as exc:
        raise ExecutorUnavailable(str(exc)) from exc
