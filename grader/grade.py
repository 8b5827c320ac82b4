"""Grade one handin: unpack it, build the section plans, run the reference (trusted, in process)
and the student's package (through an executor), compare, and score all-or-nothing per section."""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import threading
import time
import types
from pathlib import Path

import numpy as np

from grader import reproduce, runner
from grader.compare import compare, format_check, judge, swapped_pairs
from grader.errors import GraderBug
from grader.execute import Executor, SectionRun
from grader.handin import HandinError, UnpackLimits, unpack_handin
from grader.plan import Section, Test, serialize, write_job
from grader.result import GradeError, GradeResult, Mistake, SectionResult, SourceLocation, Stopped, TestResult
from grader.suite import Suite
from grader.workdir import JOB_PREFIX, WorkDir

log = logging.getLogger(__name__)
# `mytorch` in sys.modules is process-wide: one reference run at a time, whichever the suite.
_reference_lock = threading.Lock()


class ReferenceSolution:
    """A suite's trusted reference package, imported once per process and swapped into
    sys.modules only while it runs: recompiling its modules on every grade cost more than running it."""

    def __init__(self, root: str, package: dict):
        self.root = os.path.realpath(root)
        self.roots = (self.root, root)
        self.package = package                      # the plans' "package": top-level names, exports
        self.top_level = tuple(package["top_level"])
        self._modules: dict[str, types.ModuleType] = {}   # its mytorch.* / models.* modules
        self._memo: collections.OrderedDict[bytes, tuple[dict, dict]] = collections.OrderedDict()

    @contextlib.contextmanager
    def _installed(self):
        others = {name: sys.modules.pop(name) for name in _package_modules(self.top_level)}
        sys.modules.update(self._modules)
        finder = runner.HandinFinder(self.root, self.package)   # what the cache lacks still resolves to ROOT
        sys.meta_path.insert(0, finder)
        try:
            yield
        finally:
            sys.meta_path.remove(finder)
            self._modules = {name: sys.modules.pop(name) for name in _package_modules(self.top_level)}
            sys.modules.update(others)

    def outputs(self, plans: dict, inputs: dict) -> list[dict[str, np.ndarray]]:
        outputs = []
        with _reference_lock, self._installed():
            for section in plans["sections"]:
                arrays = {}
                for index, test in enumerate(section["tests"]):
                    test_arrays, report = self._run_test(test, inputs)
                    if report["error"] or report["bad_values"]:
                        raise GraderBug(f"the reference solution failed {section['name']}: {report}")
                    arrays.update({f"{index}/{name}": value for name, value in test_arrays.items()})
                outputs.append(arrays)
        return outputs

    def _run_test(self, test: dict, inputs: dict) -> tuple[dict, dict]:
        """One test's outputs, remembered by what the test is (its steps and its inputs' bytes): a
        suite's fixed cases are the same for every handin (HW2P1's are most of its reference run)."""
        key = _test_key(test, inputs)
        if key in self._memo:
            self._memo.move_to_end(key)
            return self._memo[key]
        found = runner.run_test(test, inputs, self.roots, trusted=True)
        self._memo[key] = found
        if len(self._memo) > REFERENCE_MEMO_TESTS:
            self._memo.popitem(last=False)
        return found


# Tests whose reference outputs a process keeps (least recently used dropped): a suite's fixed cases
# are met on every grade, so they stay; the handin-seeded ones pass through.
REFERENCE_MEMO_TESTS = 2048


def _test_key(test: dict, inputs: dict) -> bytes:
    """A digest of TEST's steps and of every input array they name (dtype, shape and bytes)."""
    steps = json.dumps(test["steps"], sort_keys=True)
    digest = hashlib.blake2b(steps.encode(), digest_size=32)
    for key in sorted(set(re.findall(r'"array": "([^"]*)"', steps))):
        array = inputs[key]
        digest.update(f"{key}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(_array_digest(array))
    return digest.digest()


# Digests of large read-only input arrays, by identity (the entry holds the array, so its id is not
# reused): a suite's fixed cases are the same array objects on every grade (HW2P1: 23 MB), and
# hashing them again was most of the reference phase.
_digests: collections.OrderedDict[int, tuple[np.ndarray, bytes]] = collections.OrderedDict()
DIGEST_CACHE_ABOVE = 1 << 16   # bytes
DIGEST_CACHE_ENTRIES = 1024


def _array_digest(array: np.ndarray) -> bytes:
    cacheable = array.nbytes > DIGEST_CACHE_ABOVE and not array.flags.writeable
    if cacheable and id(array) in _digests and _digests[id(array)][0] is array:
        _digests.move_to_end(id(array))
        return _digests[id(array)][1]
    value = hashlib.blake2b(np.ascontiguousarray(array), digest_size=32).digest()
    if cacheable:
        _digests[id(array)] = (array, value)
        if len(_digests) > DIGEST_CACHE_ENTRIES:
            _digests.popitem(last=False)
    return value


def _package_modules(top_level: tuple[str, ...]) -> list[str]:
    return [name for name in sys.modules if name.split(".")[0] in top_level]


_references: dict[str, ReferenceSolution] = {}


def reference_for(suite: Suite) -> ReferenceSolution:
    """The suite's reference, created on first use and kept for the life of the process."""
    with _reference_lock:
        if suite.name not in _references:
            _references[suite.name] = ReferenceSolution(str(suite.reference_root), suite.package_plan())
        return _references[suite.name]


def _class_file(test: Test) -> dict | None:
    """The file of the first class the test builds (where a wrong value most likely comes from)."""
    new = next((step for step in test.steps if step["op"] == "new"), None)
    if new is None:
        return None
    module = new["module"] if isinstance(new["module"], str) else new["module"][0]  # the first place
    return {"path": module.replace(".", "/") + ".py", "line": None}


MAX_SOURCE_BYTES = 1 << 20   # a file larger than this is not searched for an assignment


def _where_assigned(test: Test, failed: list, root: Path | None, suite: Suite) -> dict | None:
    """For a wrong value (no exception to point at): the line of the handin that assigns it. An
    attribute read after the calls (`lin.dLdW`) -> the first `self.dLdW = ...` in the class's file,
    else in the other graded files; a method's return value -> that method's `def` line."""
    if root is None or not failed:
        return None
    labels = {c.label for c in failed}
    save = next((c.save for c in test.checks if c.label in labels), None)   # the first wrong value
    step = next((s for s in test.steps if s.get("save") == save), None)
    if step is None:
        return None
    first = _class_file(test)
    files = [first["path"]] if first else []
    if step["op"] == "get":
        pattern = re.compile(rf"^\s*self\.{re.escape(step['attr'].split('.')[-1])}\s*(?:[-+*/@]?=)(?!=)")
        files += sorted(str(p.relative_to(root)) for package in suite.layout.packages
                        for p in (root / package).rglob("*.py") if str(p.relative_to(root)) not in files)
    elif step["op"] == "call":
        pattern = re.compile(rf"^\s*def\s+{re.escape(step['method'])}\s*\(")
    else:
        return None
    for path in files:
        file = root / path
        try:
            if not file.is_file() or file.is_symlink() or file.stat().st_size > MAX_SOURCE_BYTES:
                continue
            lines = file.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for number, line in enumerate(lines, start=1):
            if pattern.match(line):
                return {"path": path, "line": number}
    return None


NOT_IMPORTED = "Not run: your code could not be imported (the section's message says where)."


def _in_packages(where: dict | None, suite: Suite) -> dict | None:
    """WHERE when its file lies in one of the suite's graded packages (the source view shows only those)."""
    if where and where["path"].split("/")[0] in suite.layout.packages:
        return where
    return None


def _stack_text(stack: list[dict]) -> str:
    """A time limit's stack as a traceback of the student's frames, innermost last."""
    lines = ["Where your code was when the time ran out (your code only):"]
    for frame in stack:
        lines.append(f'  File "{frame["path"]}", line {frame["line"]}, in {frame["function"]}')
        if frame["code"]:
            lines.append(f"    {frame['code']}")
    return "\n".join(lines)


def _stopped_test(test: Test, report: dict, run: SectionRun, section: Section, suite: Suite,
                  running: str | None, expected: dict[str, np.ndarray]) -> TestResult:
    """A test the time limit stopped (it names the line that was running) or never reached."""
    if report["kind"] == Stopped.NOT_REACHED:
        return TestResult(name=test.name, passed=False, stopped=Stopped.NOT_REACHED,
                          message=f"Not reached: the section's time ran out during the test \"{running}\".")
    stack = report.get("stack") or []
    where = _in_packages(report.get("location"), suite)
    at = f" It was running {where['path']}, line {where['line']}." if where and where["line"] else ""
    return TestResult(name=test.name, passed=False, stopped=Stopped.TIME_LIMIT,
                      message=f"{run.failure or 'The section was stopped.'} This test was running then.{at}",
                      error=_stack_text(stack) if stack else None,
                      location=SourceLocation(**where) if where else None,
                      reproduce=reproduce.snippet(test, section.name, suite, expected))


def _expected_of(index: int, expected: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Test INDEX's reference values by save name (what its reproduce script checks itself with)."""
    prefix = f"{index}/"
    return {key[len(prefix):]: value for key, value in expected.items() if key.startswith(prefix)}


def score_section(section: Section, expected: dict[str, np.ndarray], run: SectionRun, suite: Suite,
                  handin_root: Path | None = None) -> SectionResult:
    """Compare every check of every test; the section scores only if all pass (and it ran to its
    end: a section its time limit stopped scores 0 whatever its report says)."""
    if run.arrays is None:
        tests = [TestResult(name=t.name, passed=False, message="Not run: " + (run.failure or ""))
                 for t in section.tests]
        return SectionResult(name=section.name, score=0, max_score=section.points, passed=False,
                             message=run.failure, tests=tests)
    # A file that cannot be imported stops every test that needs it the same way: say it once,
    # for the section, with its line and a caret, and let each test point to it.
    import_reports = [r for r in run.reports if r.get("kind") == Stopped.IMPORT]
    import_failures = list(dict.fromkeys(r["error"] for r in import_reports))
    import_where = next((w for r in import_reports if (w := _in_packages(r.get("location"), suite))), None)
    running = next((t.name for t, r in zip(section.tests, run.reports) if r.get("kind") == Stopped.TIME_LIMIT),
                   "an earlier test")
    tests = []
    saved_by_test: dict[str, dict[str, np.ndarray]] = {}   # what a judged check may look at
    for key, value in run.arrays.items():
        test_index, _, name = key.partition("/")
        saved_by_test.setdefault(test_index, {})[name] = value
    for index, (test, report) in enumerate(zip(section.tests, run.reports)):
        if report.get("kind") == Stopped.IMPORT:
            tests.append(TestResult(name=test.name, passed=False, message=NOT_IMPORTED, stopped=Stopped.IMPORT))
            continue
        if report.get("kind") in (Stopped.TIME_LIMIT, Stopped.NOT_REACHED):
            tests.append(_stopped_test(test, report, run, section, suite, running, _expected_of(index, expected)))
            continue
        checks, notes, failed_values = [], [], []
        saved = saved_by_test.get(str(index), {})
        for check in test.checks:
            key = f"{index}/{check.save}"
            problem = report["bad_values"].get(check.save)
            if key not in run.arrays and problem is None and report["error"]:
                break  # the exception below explains why the remaining values are missing
            if check.judge is not None:
                outcome, check_notes = judge(check, run.arrays.get(key), problem, saved)
            else:
                outcome, check_notes = compare(check, expected[key], run.arrays.get(key), problem)
                if not outcome.passed:
                    failed_values.append((check, expected[key], run.arrays.get(key), outcome))
            checks.append(outcome)
            notes += check_notes
        by_label = {check.label: outcome for check, _, _, outcome in failed_values}
        for first, second in swapped_pairs([(c, e, g) for c, e, g, _ in failed_values]):
            for label in (first, second):
                by_label[label].message += f" {first} and {second} look swapped: each holds the other's value."
                by_label[label].mistake = Mistake.SWAPPED   # the sentence is the message's own
                by_label[label].hint = None
        messages = [format_check(c) for c in checks if not c.passed]
        if report["error"]:
            messages.append(report["error"])
        failing = {}
        if messages:   # where to look, and a script that rebuilds the case
            where = (_in_packages(report.get("location"), suite)
                     or _where_assigned(test, [c for c in checks if not c.passed], handin_root, suite)
                     or _class_file(test))
            failing = {"error": report["error"], "location": SourceLocation(**where) if where else None,
                       "reproduce": reproduce.snippet(test, section.name, suite, _expected_of(index, expected))}
        tests.append(TestResult(name=test.name, passed=not messages, message="\n".join(messages),
                                checks=checks, notes=notes, **failing))
    passed = run.failure is None and all(t.passed for t in tests)
    message = "\n\n".join(filter(None, [run.failure and f"{run.failure} It ran out during the test \"{running}\".",
                                        *import_failures]))
    return SectionResult(name=section.name, score=section.points if passed else 0,
                         max_score=section.points, passed=passed, tests=tests, message=message or None,
                         location=SourceLocation(**import_where) if import_where else None)


def _missing_files_note(root: Path, suite: Suite) -> list[str]:
    """One note listing the graded files the handin lacks (each section that needs one says only
    that it is missing), so a student sees the whole list once."""
    missing = [f for f in suite.required_files if not (root / f).is_file()]
    if not missing:
        return []
    files = "file" if len(missing) == 1 else "files"
    note = (f"Your handin lacks {len(missing)} graded {files}: {', '.join(missing)}. Every section that needs "
            "one scores 0; add them and submit again.")
    return [note]


def grade(source: Path | bytes, executor: Executor, *, suite: Suite, limits: UnpackLimits = UnpackLimits(),
          workdir: Path | None = None) -> GradeResult:
    """Grade SOURCE (an archive path, archive bytes, or a directory) with SUITE. A handin that
    cannot be graded gives a result with `error` set; a failure of the grader itself raises
    GraderBug. The job directory is made in WORKDIR (grader/workdir.py; the system temp directory
    when None), locked while the grade runs, so a sweep removes it if this process is killed."""
    result = GradeResult(assessment=suite.name, max_score=suite.max_score,
                         sandbox=executor.name, unsafe=executor.unsafe)
    owned = WorkDir(workdir or tempfile.gettempdir()).claim(JOB_PREFIX)
    job = owned.path
    clock = _Stopwatch(result.timings)
    try:
        # It is 0o700: private to the service; the sandbox binds what the slot may read.
        try:
            with clock("unpack"):
                handin = unpack_handin(source, job, limits, layout=suite.layout)
        except HandinError as exc:
            result.error = GradeError(code=exc.code, message=exc.message)
            return result
        result.notes = handin.notes + _missing_files_note(handin.root, suite)
        sections = suite.build(handin.digest)
        plans, inputs = serialize(sections)
        plans["package"] = suite.package_plan()
        write_job(job, plans, inputs)
        with clock("reference"):
            expected = reference_for(suite).outputs(plans, inputs)

        counts = [len(s.tests) for s in sections]
        with clock("student"):
            runs = executor.run_handin(job, counts, [s.budget for s in sections])
        with clock("compare"):
            result.sections = [score_section(s, e, r, suite, handin.root) for s, e, r in zip(sections, expected, runs)]
        result.score = sum(s.score for s in result.sections)
        return result
    finally:
        try:
            owned.release()
        except OSError:
            log.exception("the job directory %s could not be removed", job)
        result.timings["total"] = round(time.perf_counter() - clock.started, 4)


class _Stopwatch:
    """Records how long each phase takes into a dict, for benchmarks and queue health."""

    def __init__(self, into: dict[str, float]):
        self.into = into
        self.started = time.perf_counter()

    @contextlib.contextmanager
    def __call__(self, phase: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.into[phase] = round(time.perf_counter() - start, 4)
