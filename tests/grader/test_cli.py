"""The real `grader` console script (`grader grade PATH [--json] [--autolab] --unsafe-no-sandbox`),
and the reproducibility of grading (seeds derived from the handin)."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from catalogue import SECTION_POINTS, build_handin, tar_bytes

import grader.result
from grader.grade import grade
from grader.suites.hw1p1 import SUITE as HW1P1

OFFICIAL_AUTOLAB_LINE = ('{"scores": {"Linear Layer": 15, "Activation": 10, "MLP0": 10, "MLP1": 10, '
                         '"MLP4": 15, "Loss": 10, "SGD": 10, "Batch Norm": 20}}')
MISSING_BIAS = (("mytorch/nn/linear.py", "return A @ self.W.T + self.Ones @ self.b.T", "return A @ self.W.T"),)


def grader_script() -> str:
    script = Path(sys.executable).parent / "grader"
    if not script.exists():
        script = Path(shutil.which("grader") or "")
    assert script.is_file(), "the `grader` console script is not installed in this environment"
    return str(script)


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([grader_script(), "grade", *map(str, args), "--unsafe-no-sandbox"],
                          capture_output=True, text=True, timeout=300, check=False)


def documented_schema() -> dict:
    """The JSON example in grader/result.py's docstring: the schema this test holds the CLI to."""
    doc = grader.result.__doc__
    start = doc.index("{")
    end = doc.index("\n`error`")
    return json.loads(doc[start:end])


def stderr_lines(proc) -> list[str]:
    """stderr without the logging warning every unsafe run prints."""
    return [line for line in proc.stderr.splitlines() if line.strip() and "UNSAFE" not in line]


@pytest.fixture(scope="module")
def correct_tar(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("correct")
    path = folder / "handin.tar"
    path.write_bytes(tar_bytes(build_handin(folder / "src")))
    return path


@pytest.fixture(scope="module")
def buggy_tar(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("buggy")
    path = folder / "handin.tar"
    path.write_bytes(tar_bytes(build_handin(folder / "src", MISSING_BIAS)))
    return path


@pytest.fixture
def not_an_archive(tmp_path) -> Path:
    path = tmp_path / "handin.tar"
    path.write_bytes(b"%PDF-1.5\n" + b"writeup " * 300)
    return path


# ---------------------------------------------------------------------------------------------


def test_default_output_is_a_table(correct_tar):
    proc = run_cli(correct_tar)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Total score: 100/100" in out
    for i, (name, points) in enumerate(SECTION_POINTS.items(), start=1):
        assert re.search(rf"\| Test {i}\s*\| PASSED\s*\| {points:02d}/{points:02d}\s*\| {re.escape(name)}\s*\|", out), name
    assert "FAILED" not in out and "Traceback" not in out
    assert "WITHOUT a sandbox" in out  # an unsafe run always says so


def test_json_output_follows_the_documented_schema(correct_tar):
    proc = run_cli(correct_tar, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    schema = documented_schema()
    assert set(result) == set(schema)
    assert result["assessment"] == "hw1p1" and result["score"] == 100 == result["max_score"]
    assert result["error"] is None and result["unsafe"] is True
    assert [s["name"] for s in result["sections"]] == list(SECTION_POINTS)
    for section in result["sections"]:
        assert set(section) == set(schema["sections"][0])
        assert section["score"] == section["max_score"] == SECTION_POINTS[section["name"]]
        assert section["passed"] is True and section["tests"]
        for test in section["tests"]:
            assert set(test) == set(schema["sections"][0]["tests"][0])
            assert test["passed"] is True and test["message"] == "" and test["notes"] == []
            # Every test compares values, except the np.tanh one: it only has to run.
            assert test["checks"] or "np.tanh" in test["name"], test
            assert all(c["passed"] and c["message"] == "" for c in test["checks"])
            for check in test["checks"]:
                assert set(check) == set(schema["sections"][0]["tests"][0]["checks"][0])


def test_json_exit_code_is_0_for_a_low_score(buggy_tar):
    proc = run_cli(buggy_tar, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["error"] is None
    assert result["score"] == 50  # Linear and the three MLPs lost, nothing else
    lost = {s["name"] for s in result["sections"] if not s["passed"]}
    assert lost == {"Linear Layer", "MLP0", "MLP1", "MLP4"}
    failing = [t for s in result["sections"] for t in s["tests"] if not t["passed"]]
    assert failing and all(t["message"] for t in failing)


def test_autolab_line_for_a_correct_handin(correct_tar):
    proc = run_cli(correct_tar, "--autolab")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip("\n").splitlines()[-1] == OFFICIAL_AUTOLAB_LINE


def test_autolab_line_and_table_for_a_buggy_handin(buggy_tar):
    proc = run_cli(buggy_tar, "--autolab")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.rstrip("\n").splitlines()
    assert lines[-1] == ('{"scores": {"Linear Layer": 0, "Activation": 10, "MLP0": 0, "MLP1": 0, '
                         '"MLP4": 0, "Loss": 10, "SGD": 10, "Batch Norm": 20}}')
    table = "\n".join(lines[:-1])
    assert "Total score: 50/100" in table
    assert re.search(r"\| Test 1\s*\| FAILED\s*\| 00/15", table)
    # The failing tests' messages follow the table.
    assert "== Linear Layer:" in table and "Z = Linear.forward(A): values differ" in table


def test_not_an_archive_exits_2_with_one_line(not_an_archive):
    proc = run_cli(not_an_archive)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = stderr_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Cannot grade this handin: ") and "not a tar or zip archive" in lines[0]


def test_refused_handin_prints_only_the_reason_with_the_sandbox(not_an_archive):
    """Through the real sandbox too: its zygotes, closed before any use, used to print two
    tracebacks (BrokenPipeError, ConnectionResetError) before the reason."""
    import sandbox

    try:
        sandbox.check_backend()
    except sandbox.BackendUnavailable as exc:
        pytest.skip(f"no sandbox here: {exc}")
    proc = subprocess.run([grader_script(), "grade", str(not_an_archive), "--jobs", "1"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        ("Cannot grade this handin: This file is not a tar or zip archive; build handin.tar with "
         "create_tarball.sh.")], proc.stderr


def test_table_lists_non_scoring_notes(tmp_path):
    """A (C,) dLdBW/dLdBb passes with a note: the table says 100 and prints the advice."""
    root = build_handin(tmp_path / "src", (
        ("mytorch/nn/batchnorm.py", "self.dLdBW = np.sum(dLdBZ * self.NZ, axis=0, keepdims=True)",
         "self.dLdBW = np.sum(dLdBZ * self.NZ, axis=0)"),))
    path = tmp_path / "handin.tar"
    path.write_bytes(tar_bytes(root))
    proc = run_cli(path)
    assert proc.returncode == 0, proc.stderr
    assert "Total score: 100/100" in proc.stdout and "FAILED" not in proc.stdout
    notes = proc.stdout[proc.stdout.index("== Notes (advice only: they never change a score) =="):]
    assert ("-- Batch Norm: BatchNorm1d.dLdBW after backward has shape (2,); the writeup's is (1, 2): "
            "accepted") in notes


def test_not_an_archive_json(not_an_archive):
    proc = run_cli(not_an_archive, "--json")
    assert proc.returncode == 2
    result = json.loads(proc.stdout)
    assert result["sections"] == []
    assert set(result["error"]) == {"code", "message"}
    assert result["error"]["code"] == "not_archive"
    assert "\n" not in result["error"]["message"] and result["error"]["message"].endswith(".")
    assert set(result) == set(documented_schema())


def test_missing_path_exits_2_without_a_traceback(tmp_path):
    proc = run_cli(tmp_path / "no-such-handin.tar")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = stderr_lines(proc)
    assert len(lines) == 1 and "no-such-handin.tar" in lines[0], proc.stderr


# ---------------------------------------------------------------------------------------------
# Reproducibility: seeds come from the handin.


def _random_case_messages(result) -> dict[str, str]:
    return {t.name: t.message for s in result.sections for t in s.tests
            if t.name.startswith("random case") and not t.passed}


def test_same_handin_graded_twice_gives_identical_results(buggy_tar, executor):
    first = grade(buggy_tar, executor, suite=HW1P1).model_dump(exclude={"timings"})
    second = grade(buggy_tar.read_bytes(), executor, suite=HW1P1).model_dump(exclude={"timings"})
    assert first == second
    assert first["score"] == 50


def test_different_handins_get_different_random_inputs(tmp_path, executor):
    """Two handins with the same bug, differing by a comment: the fixed handout cases fail
    identically, the random cases see different inputs (their expected values differ)."""
    a = grade(tar_bytes(build_handin(tmp_path / "a", MISSING_BIAS)), executor, suite=HW1P1)
    b = grade(tar_bytes(build_handin(tmp_path / "b", MISSING_BIAS + (
        ("mytorch/nn/linear.py", "import numpy as np", "import numpy as np  # my own work"),))), executor, suite=HW1P1)
    messages_a, messages_b = _random_case_messages(a), _random_case_messages(b)
    assert messages_a.keys() == messages_b.keys() and messages_a
    assert all(messages_a[name] != messages_b[name] for name in messages_a)
    handout = lambda r: [t.message for s in r.sections for t in s.tests if t.name.startswith("handout case")]
    assert handout(a) == handout(b)


# ---------------------------------------------------------------------------------------------
# One console script, two owners: `grade` belongs to grader, the service commands to app.


def test_console_script_offers_grade_and_the_service_commands():
    proc = subprocess.run([grader_script(), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    choices = re.search(r"\{([a-z,-]+)\}", proc.stdout).group(1).split(",")
    assert set(choices) == {"grade", "serve", "worker", "db", "user", "roster", "token", "similarity",
                            "similarity-archive"}


def test_grader_cli_offers_grade_alone_and_never_loads_the_service():
    """`python -m grader.cli` works without the service: importing and running it loads no `app` module."""
    code = ("import sys, grader.cli\n"
            "parser = grader.cli.build_parser()\n"
            "print(sorted(parser._subparsers._group_actions[0].choices))\n"
            "print(sorted(m for m in sys.modules if m == 'app' or m.startswith('app.')))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["['grade']", "[]"]
