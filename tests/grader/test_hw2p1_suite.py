"""The HW2P1 suite through the same executor as HW1P1: the reference scores 100 in its own layout and
in the handout's (files importing each other by bare name), a few mistakes lose exactly their
sections, the local runner's fixed cases are the ones its draws give, a handin built for another
assessment is refused with a sentence, and a failing test's snippet runs in the handout folder."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from catalogue import tar_bytes
from conftest import SLOTS_FOR_TESTS
from support import sandbox_or_skip

from grader import runner
from grader.execute import SandboxExecutor, within_ceiling
from grader.grade import grade
from grader.handin import HandinError, check_handin
from grader.plan import Budget
from grader.suites import get
from grader.suites import hw2p1 as suite_module
from grader.suites.hw1p1 import SUITE as HW1P1
from grader.suites.hw1p1_bonus import SUITE as BONUS
from grader.suites.hw2p1 import SUITE as HW2P1

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "mytorch_reference_hw2"


def build(dest: Path, *, bare_imports=False, flat_mytorch=False, edits=()) -> Path:
    """The HW2P1 reference as a handin under DEST; BARE_IMPORTS: its imports rewritten the handout's
    way (`from resampling import Downsample1d`); FLAT_MYTORCH: every mytorch/nn/ file moved up into
    mytorch/ (S23, F23); EDITS: (file, old, new) text replacements."""
    dest.mkdir(parents=True, exist_ok=True)
    for package in ("models", "mytorch"):
        shutil.copytree(REFERENCE / package, dest / package, ignore=shutil.ignore_patterns("__pycache__"))
    if flat_mytorch:
        for path in (dest / "mytorch" / "nn").glob("*.py"):
            if path.name != "__init__.py":
                path.rename(dest / "mytorch" / path.name)
        shutil.rmtree(dest / "mytorch" / "nn")
    if bare_imports:
        for path in dest.rglob("*.py"):
            path.write_text(re.sub(r"from mytorch\.(?:nn\.)?(\w+) import", r"from \1 import", path.read_text()))
        for init in dest.rglob("__init__.py"):   # the handout has none
            init.unlink()
    for file, old, new in edits:
        path = dest / file
        text = path.read_text()
        assert old in text, (file, old)
        path.write_text(text.replace(old, new))
    return dest


def lost(result) -> set[str]:
    assert result.error is None, result.error
    return {s.name for s in result.sections if not s.passed}


def test_the_registry_finds_hw2p1_with_the_courses_points():
    assert get("hw2p1") is HW2P1
    assert HW2P1.max_score == 100
    assert list(HW2P1.section_points) == list(suite_module.SECTION_POINTS)


def test_the_fixed_cases_are_the_local_runners_draws():
    """Shapes the local runner (F25, v2) draws, computed independently from its seeds and calls."""
    stride1, strided = suite_module.local_runner_conv1d_cases()
    assert len(stride1) == len(strided) == 15
    first = stride1[0]
    assert first["W"].shape == (5, 10, 4) and first["A"].shape == (2, 10, 203)
    assert (strided[0]["W"].shape, strided[0]["A"].shape, strided[0]["stride"], strided[0]["padding"]) == \
        ((7, 9, 3), (2, 9, 236), 8, 6)
    assert [c["A"].shape for c in suite_module.local_runner_conv2d_cases(strided=False)] == \
        [(2, 13, 66, 66), (1, 6, 61, 61)]
    assert [(c["kernel"], c["factor"], c["A"].shape) for c in suite_module.local_runner_conv_transpose_cases(1)] == \
        [(2, 1, (3, 12, 224)), (1, 1, (2, 9, 162)), (2, 6, (3, 13, 249))]
    assert [(c["kernel"], c["A"].shape) for c in suite_module.local_runner_pool_cases("mean", strided=False)] == \
        [(3, (2, 11, 99, 99)), (4, (3, 6, 79, 79)), (6, (2, 6, 60, 60))]
    resampling = suite_module.resampling_section(2, "seed")
    assert resampling.tests[3].name == "handout case 1: Upsample2d(8) on (1, 11, 69, 69)"


def test_the_scanning_weights_are_generated_with_the_handouts_structure():
    import numpy as np

    w1, w2, w3 = suite_module.scanning_weights(np.random.default_rng(0), distributed=True)
    assert (w1.shape, w2.shape, w3.shape) == ((192, 8), (8, 16), (16, 4))
    assert np.array_equal(w1[:48, :2], w1[144:, 6:]) and np.isnan(w1[:48, 2:]).all()
    assert np.array_equal(w2[:4, :8], w2[4:, 8:]) and np.isnan(w2[4:, :8]).all()
    assert not np.isnan(w3).any()


@pytest.mark.parametrize("layout", [{}, {"bare_imports": True}, {"bare_imports": True, "flat_mytorch": True}],
                         ids=["absolute imports", "the handout's bare imports", "S23 and F23's flat mytorch/"])
def test_the_reference_scores_100(layout, tmp_path, executor):
    result = grade(tar_bytes(build(tmp_path / "h", **layout)), executor, suite=HW2P1)
    assert lost(result) == set()
    assert result.score == 100 and result.assessment == "hw2p1"


DOWNSAMPLE_2D_FORWARD = ("self.input_shape = A.shape\n"
                         "        return A[_every(self.downsampling_factor, A.ndim, (-2, -1))]")
MUTANTS = {
    "mean pool divides by K, not K*K": (
        [("mytorch/nn/pool.py", "K, axis=2) / (K * K)", "K, axis=2) / K")],
        {"MeanPool2d_stride1", "MeanPool2d"}),
    "max pool routes the gradient to the window's first position": (
        [("mytorch/nn/pool.py", "np.copyto(offset, k, where=better)", "pass")],
        {"MaxPool2d_stride1", "MaxPool2d"}),
    "Downsample2d remembers the first input's shape": (
        [("mytorch/nn/resampling.py", DOWNSAMPLE_2D_FORWARD,
          DOWNSAMPLE_2D_FORWARD.replace("= A.shape", "= getattr(self, 'input_shape', A.shape)"))],
        {"Resampling 2d", "Conv2d", "MaxPool2d", "MeanPool2d"}),
    "the distributed MLP slices the wrong block": (
        [("models/mlp_scan.py", "w1[:48, :2]", "w1[:48, 2:4]")],
        {"CNN as Distributed Scanning MLP"}),
    "the CNN's linear layer gets no bias gradient": (
        [("mytorch/nn/linear.py", "self.dLdb = dLdZ.T @ self.Ones", "self.dLdb = 0 * self.b")],
        {"Build a CNN Model"}),
}


@pytest.mark.parametrize("name", list(MUTANTS))
def test_a_mistake_loses_exactly_its_sections(name, tmp_path, executor):
    edits, sections = MUTANTS[name]
    result = grade(tar_bytes(build(tmp_path / "h", bare_imports=True, edits=edits)), executor, suite=HW2P1)
    assert lost(result) == sections
    for section in result.sections:
        if section.name in sections:
            assert all(t.message.strip() for t in section.tests if not t.passed)


def test_a_missing_file_is_named_once_per_section(tmp_path, executor):
    root = build(tmp_path / "h", bare_imports=True)
    (root / "mytorch" / "nn" / "ConvTranspose.py").unlink()
    result = grade(tar_bytes(root), executor, suite=HW2P1)
    assert lost(result) == {"convTranspose1d", "convTranspose2d"}
    section = next(s for s in result.sections if s.name == "convTranspose1d")
    assert section.message == "mytorch/nn/ConvTranspose.py is missing from your handin."


def test_a_handin_for_another_assessment_is_refused_with_a_sentence(tmp_path):
    hw2 = tar_bytes(build(tmp_path / "hw2"))
    hw1 = tmp_path / "hw1"
    for package in ("models", "mytorch"):
        shutil.copytree(REPO / "mytorch_reference" / package, hw1 / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    with pytest.raises(HandinError, match="looks built for HW1P1"):
        check_handin(tar_bytes(hw1), layout=HW2P1.layout)
    with pytest.raises(HandinError, match="looks built for HW2P1"):
        check_handin(hw2, layout=HW1P1.layout)
    bonus = tmp_path / "bonus" / "mytorch"
    shutil.copytree(hw1 / "mytorch", bonus)
    shutil.copytree(hw1 / "models", bonus / "models")
    with pytest.raises(HandinError, match="HW1P1 Bonus's layout"):
        check_handin(tar_bytes(tmp_path / "bonus"), layout=HW2P1.layout)
    assert check_handin(hw2, layout=HW2P1.layout) == []
    with pytest.raises(HandinError):
        check_handin(hw2, layout=BONUS.layout)


def test_an_hw2p1_handin_that_also_holds_hw1p1_files_is_graded(tmp_path, executor):
    """S23 students kept HW1P1's files in the same flat mytorch/ (optim/sgd.py beside resampling.py):
    only a handin without HW2P1's own files is refused as built for HW1P1."""
    for name, flat in (("nested", False), ("flat", True)):
        root = build(tmp_path / name, bare_imports=True, flat_mytorch=flat)
        shutil.copytree(REPO / "mytorch_reference" / "mytorch" / "optim", root / "mytorch" / "optim",
                        ignore=shutil.ignore_patterns("__pycache__"))
        assert (root / "mytorch" / "optim" / "sgd.py").is_file()
        check_handin(tar_bytes(root), layout=HW2P1.layout)
    result = grade(tar_bytes(tmp_path / "flat"), executor, suite=HW2P1)
    assert result.error is None and result.score == 100, [s.name for s in result.sections if not s.passed]


def test_the_2d_convolutions_are_budgeted_and_the_budget_is_cut_to_the_operators_ceiling():
    sections = {s.name: s for s in HW2P1.build("seed")}
    for name in ("Conv2d_stride1", "Conv2d", "convTranspose2d"):
        assert sections[name].budget.cpu_seconds > 10   # beyond the sandbox's default 10 s
    assert sections["Resampling 1d"].budget is None
    ceiling = Budget(cpu_seconds=3.0, wall_seconds=None, memory_bytes=1 << 30)
    cut = within_ceiling(sections["convTranspose2d"].budget, ceiling)
    assert (cut.cpu_seconds, cut.wall_seconds, cut.memory_bytes) == (3.0, 150.0, 1 << 30)


def test_an_endless_loop_in_a_budgeted_section_is_killed_and_costs_only_that_section(tmp_path):
    """The attack on a larger section budget: ConvTranspose2d.forward never returns. Its process is
    killed at the budget (cut here by the operator's ceiling to 3 CPU seconds, so the test is
    short), the section fails saying so, and every other section keeps its points."""
    sandbox_or_skip()
    root = build(tmp_path / "h", bare_imports=True, edits=[(
        "mytorch/nn/ConvTranspose.py", "return self.conv2d_stride1.forward(self.upsample2d.forward(A))",
        "while True:\n            pass")])
    executor = SandboxExecutor(slots=1, first_slot=SLOTS_FOR_TESTS + 20,
                               ceiling=Budget(cpu_seconds=3.0, wall_seconds=60.0, memory_bytes=3 << 30))
    try:
        result = grade(tar_bytes(root), executor, suite=HW2P1)
    finally:
        executor.close()
    assert lost(result) == {"convTranspose2d"}
    section = next(s for s in result.sections if s.name == "convTranspose2d")
    assert "used more than 3 s of CPU time" in section.message


@pytest.mark.parametrize("flat_mytorch", [False, True], ids=["mytorch-nn", "flat-mytorch"])
def test_a_failing_tests_snippet_runs_in_the_handout_folder(tmp_path, executor, flat_mytorch):
    """In the F25 layout and in S23/F23's flat mytorch/ alike: the snippet imports each class by its
    bare name after the handout's sys.path lines, so it finds the student's file where it is."""
    edits = [(file.replace("mytorch/nn/", "mytorch/") if flat_mytorch else file, old, new)
             for file, old, new in MUTANTS["mean pool divides by K, not K*K"][0]]
    root = build(tmp_path / "h", bare_imports=True, flat_mytorch=flat_mytorch, edits=edits)
    result = grade(tar_bytes(root), executor, suite=HW2P1)
    section = next(s for s in result.sections if s.name == "MeanPool2d_stride1")
    failing = next(t for t in section.tests if not t.passed and t.reproduce)
    assert "sys.path +=" in failing.reproduce and "from pool import MeanPool2d_stride1" in failing.reproduce
    (root / "repro.py").write_text(failing.reproduce)
    run = subprocess.run([sys.executable, "repro.py"], cwd=root, capture_output=True,
                         text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert "Z" in run.stdout


def test_a_handin_file_named_like_a_stdlib_module_does_not_replace_it(tmp_path):
    """Bare names resolve after the standard library and installed packages, as they do for folders
    a script appends to sys.path: a handin's mytorch/nn/json.py is not the `json` the runner uses."""
    root = tmp_path / "h"
    (root / "mytorch" / "nn").mkdir(parents=True)
    (root / "mytorch" / "nn" / "json.py").write_text("raise SystemExit('shadowed')\n")
    (root / "mytorch" / "nn" / "helper.py").write_text("VALUE = 7\n")
    (root / "mytorch" / "nn" / "user.py").write_text("import json\nfrom helper import VALUE\nDUMPED = json.dumps(VALUE)\n")
    package = {"top_level": ["mytorch"], "exports": {}, "flat": ["mytorch/nn"]}
    with runner.package_under_test(str(root), package):
        user = importlib.import_module("mytorch.nn.user")
        assert user.DUMPED == "7"
        assert "helper" in sys.modules
    assert "helper" not in sys.modules and "mytorch.nn.user" not in sys.modules


CORRECT_VARIANTS = {
    "pool.py imports `from nn.resampling import *` (mytorch/ on the path makes nn/ a package)": [
        ("mytorch/nn/pool.py", "from resampling import Downsample2d", "from nn.resampling import Downsample2d")],
    "Conv1d_stride1 adds dLdb up across backward calls (zero_grads resets it)": [
        ("mytorch/nn/Conv1d.py", "self.dLdb = dLdZ.sum(axis=(0, 2))", "self.dLdb = self.dLdb + dLdZ.sum(axis=(0, 2))")],
}


@pytest.mark.parametrize("name", list(CORRECT_VARIANTS))
def test_a_correct_variant_keeps_100(name, tmp_path, executor):
    root = build(tmp_path / "h", bare_imports=True, edits=CORRECT_VARIANTS[name])
    result = grade(tar_bytes(root), executor, suite=HW2P1)
    assert lost(result) == set() and result.score == 100
