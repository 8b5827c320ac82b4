"""Reproduce scripts check themselves (issue 20 item 4): the script of a failing test holds the
reference's values and ends with the grader's tolerance test, printing PASS or FAIL per value.
Run in a folder holding a correct package every value passes; run in the student's own folder,
exactly the values the grader failed are FAIL."""

import re
import subprocess
import sys

import pytest
from catalogue import BN, LINEAR, LOSS, REFERENCE, build_handin, tar_bytes

from grader.grade import grade
from grader.suites.hw1p1 import SUITE as HW1P1

BUGS = (
    (LINEAR, "self.dLdW = dLdZ.T @ self.A", "self.dLdW = dLdZ.T @ self.A / self.N"),
    (LOSS, "return np.sum(se) / (self.N * self.C)", "return np.sum(se)"),
    (BN, "self.running_M = self.alpha * self.running_M + (1 - self.alpha) * self.M",
         "self.running_M = (1 - self.alpha) * self.running_M + self.alpha * self.M"),
)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, executor):
    root = build_handin(tmp_path_factory.mktemp("repro") / "src", BUGS)
    return root, grade(tar_bytes(root), executor, suite=HW1P1)


def _run(script: str, folder) -> list[str]:
    path = folder / "reproduce_case.py"
    path.write_text(script)
    done = subprocess.run([sys.executable, str(path)], cwd=folder, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return [line for line in done.stdout.splitlines() if re.match(r"(PASS|FAIL) ", line)]


def _failing_tests(result):
    return [t for s in result.sections for t in s.tests if not t.passed and t.reproduce]


def test_scripts_hold_the_expected_values_and_the_tolerance(graded):
    _, result = graded
    tests = _failing_tests(result)
    assert len(tests) >= 10
    for test in tests:
        assert "def check(label, got, expected, kind" in test.reproduce, test.name
        assert "1e-4" in test.reproduce.replace("0.0001", "1e-4")
        assert "expected_" in test.reproduce


def test_a_correct_package_passes_every_value_and_the_handin_fails_exactly_the_graders(graded, tmp_path):
    root, result = graded
    correct = build_handin(tmp_path / "correct")   # the reference tree as a handout folder
    assert (correct / "mytorch").is_dir() and REFERENCE.is_dir()
    for test in _failing_tests(result):
        on_correct = _run(test.reproduce, correct)
        assert on_correct and all(line.startswith("PASS ") for line in on_correct), (test.name, on_correct)
        on_handin = _run(test.reproduce, root)
        failed = {line[5:].split(" - ")[0] for line in on_handin if line.startswith("FAIL ")}
        graders = {c.label for c in test.checks if not c.passed}
        assert failed == graders, (test.name, failed, graders)
        assert len(on_handin) == len(on_correct)
