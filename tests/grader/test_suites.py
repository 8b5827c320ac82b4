"""The seam between the grading core and an assessment: the suite registry, points declared once,
and a runner that learns the package under test from the plans (no assessment's names in it)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from grader import runner, suites
from grader.plan import Section, Test, serialize, write_job
from grader.suite import Layout, Suite
from grader.suites import hw1p1
from sandbox import load_safetensors_bytes


def test_the_registry_finds_hw1p1_and_refuses_an_unknown_name():
    assert suites.get("hw1p1") is hw1p1.SUITE
    with pytest.raises(suites.UnknownSuite, match="unknown suite 'hw1p2'.*hw1p1"):
        suites.get("hw1p2")


def test_points_are_read_from_the_sections_the_suite_builds():
    built = hw1p1.SUITE.build("any handin")
    assert hw1p1.SUITE.section_points == {s.name: s.points for s in built}
    assert hw1p1.SUITE.max_score == 100


def test_the_runner_holds_no_assessment_constants():
    # Runtime caches hold whatever earlier tests ran (classes, jobs, compiled files): not constants.
    caches = {"_signatures", "_jobs", "_compiled_sources"}
    constants = {name: value for name, value in vars(runner).items()
                 if isinstance(value, (str, dict, list, tuple, set)) and not name.startswith("__")
                 and name not in caches}
    for name, value in constants.items():
        assert "mytorch" not in repr(value) and "models" not in repr(value), name


def _toy_suite(tmp_path) -> tuple[Suite, dict, dict]:
    """A package no real assessment has: `toy/`, whose __init__.py is broken on purpose."""
    (tmp_path / "toy" / "ops").mkdir(parents=True)
    (tmp_path / "toy" / "__init__.py").write_text("raise ImportError('never executed')\n")
    (tmp_path / "toy" / "ops" / "__init__.py").write_text("raise ImportError('never executed')\n")
    (tmp_path / "toy" / "ops" / "double.py").write_text(
        "class Double:\n    def forward(self, x):\n        return 2 * x\n")
    (tmp_path / "toy" / "ops" / "twice.py").write_text(
        "from toy.ops import Double\n\nclass Twice(Double):\n    pass\n")
    t = Test("double")
    t.new("d", ["toy.ops.missing", "toy.ops.twice"], "Twice")   # the first present module wins
    t.call("d", "forward", t.array("x", np.arange(3.0)), save="y")
    suite = Suite(name="toy", title="Toy", layout=Layout(packages=("toy",)),
                  exports={"toy.ops": {"Double": "double"}}, reference_root=tmp_path,
                  build=lambda seed: [Section("Toy", 1, [t])])
    plans, inputs = serialize(suite.build(""))
    plans["package"] = suite.package_plan()
    return suite, plans, inputs


def test_the_runner_imports_the_package_the_plans_name(tmp_path):
    _suite, plans, inputs = _toy_suite(tmp_path)
    arrays, reports = runner.run_section(plans["sections"][0], inputs, str(tmp_path), plans["package"])
    assert reports[0]["error"] is None, reports
    assert arrays["0/y"].tolist() == [0.0, 2.0, 4.0]
    assert "toy" not in sys.modules  # forgotten after the run


def test_the_runner_script_reads_the_package_from_plans_json(tmp_path):
    _suite, plans, inputs = _toy_suite(tmp_path / "pkg")
    write_job(tmp_path, plans, inputs)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run([sys.executable, "-I", runner.__file__, str(tmp_path / "plans.json"),
                    str(tmp_path / "inputs.bin"), str(tmp_path / "pkg"), str(out), "0"], check=True)
    report = json.loads((out / "report.json").read_text())
    assert report["tests"][0]["error"] is None
    saved = load_safetensors_bytes((out / "outputs.safetensors").read_bytes(), "outputs")
    assert saved["0/y"].tolist() == [0.0, 2.0, 4.0]


def _judged_suite(tmp_path) -> Suite:
    """A third, made-up assessment: `toy/ops/noise.py` must return x plus something nonzero, which
    no reference can predict, so a judged check decides instead of a comparison."""
    ref = tmp_path / "reference"
    (ref / "toy" / "ops").mkdir(parents=True)
    (ref / "toy" / "ops" / "noise.py").write_text(
        "import numpy as np\n\nclass Noise:\n    def forward(self, x):\n"
        "        return x + np.random.uniform(1, 2, x.shape)\n")

    def build(seed):
        t = Test("noise")
        x = np.zeros(4)
        t.new("n", "toy.ops.noise", "Noise")
        t.call("n", "forward", t.array("x", x), save="y")
        t.check("y", "Noise.forward(x)", "judged",
                judge=lambda y, saved: None if (y - x != 0).all() else "Noise.forward(x) returned x unchanged.")
        return [Section("Noise", 3, [t])]

    return Suite(name="toy", title="Toy", layout=Layout(packages=("toy",)), exports={},
                 reference_root=ref, build=build)


@pytest.mark.parametrize("body, score", [("x + np.random.uniform(5, 6, x.shape)", 3), ("x * 1", 0)])
def test_a_made_up_assessment_grades_through_the_same_core_with_a_judged_check(tmp_path, body, score):
    from grader.execute import UnsafeExecutor
    from grader.grade import grade

    suite = _judged_suite(tmp_path)
    handin = tmp_path / "handin"
    (handin / "toy" / "ops").mkdir(parents=True)
    (handin / "toy" / "ops" / "noise.py").write_text(
        f"import numpy as np\n\nclass Noise:\n    def forward(self, x):\n        return {body}\n")
    result = grade(handin, UnsafeExecutor(), suite=suite)
    assert result.error is None and result.assessment == "toy" and result.max_score == 3
    assert result.score == score, result.sections[0].tests[0].message
    if not score:
        assert result.sections[0].tests[0].checks[0].message == "Noise.forward(x) returned x unchanged."


def _keywords_passed(sections) -> dict[str, set[str]]:
    """Call ("Linear", "BatchNorm1d.forward") -> the argument names the plans pass to it."""
    passed: dict[str, set[str]] = {}
    for section in sections:
        for test in section.tests:
            classes = {}
            for step in test.steps:
                if step["op"] == "new":
                    classes[step["var"]] = step["class"]
                    call = step["class"]
                elif step["op"] == "call":
                    call = f"{classes.get(step['var'], step['var'])}.{step['method']}"
                else:
                    continue
                if step.get("kwargs"):
                    passed.setdefault(call, set()).update(step["kwargs"])
    return passed


def test_hw1p1_passes_by_name_exactly_what_the_official_script_does():
    # Linear(2, 3, debug=True), MLP0(debug=True), SGD(model, lr=0.9, momentum=0.9), bn.forward(A, eval=True)
    assert _keywords_passed(hw1p1.build_suite("seed")) == hw1p1.OFFICIAL_KEYWORDS
