"""Hints for classic mistakes (issue 20 item 5): when a wrong value is exactly what a classic
mistake makes of the right one (divided or multiplied by a whole number, sign flipped, transposed,
two values swapped, off by the 1 - p or beta factor), its check carries one non-scoring sentence.
Each hint is tested on its mutant; none may appear on a value that is merely wrong (the unit cases
below) nor on any correct handin (the catalogues' correct-but-different ones call `assert_hints`
too, and every buggy catalogue handin must show exactly the mistakes declared in hints_expected.py)."""

import numpy as np
import pytest
from catalogue import ACT, BN, LINEAR, LOSS, build_handin, tar_bytes
from hints_expected import mistakes

from grader.compare import compare, format_check
from grader.grade import grade
from grader.plan import Check
from grader.suites.hw1p1 import SUITE as HW1P1

RNG = np.random.default_rng(20)
E = RNG.normal(size=(4, 3)) + 0.5


@pytest.mark.parametrize(("got", "check", "mistake", "phrase"), [
    (E / 4, Check("x", "X"), "divided", "exactly 1/4 of the expected value"),
    (E * 6, Check("x", "X"), "multiplied", "exactly 6 times the expected value"),
    (-E, Check("x", "X"), "sign", "opposite sign"),
    (E.T.copy(), Check("x", "X"), "transposed", "transpose"),
    (E * 0.5, Check("x", "X", factors={"beta": 0.5}), "factor", "times beta = 0.5"),
    (E / 0.7, Check("x", "X", factors={"1 - p": 0.7}), "factor", "divided by 1 - p = 0.7"),
    (E * 9, Check("x", "X", ratios={9.0: "The weights look swapped."}), "factor", "The weights look swapped."),
])
def test_each_hint_on_its_mutant(got, check, mistake, phrase):
    outcome, _ = compare(check, E, got, None)
    assert not outcome.passed and outcome.mistake == mistake, outcome
    assert phrase in outcome.hint and outcome.hint.count(". ") <= 1, outcome.hint
    assert f"Hint: {outcome.hint}" in format_check(outcome)


SQUARE = RNG.normal(size=(3, 3))


@pytest.mark.parametrize("got", [
    E + RNG.normal(scale=0.1, size=E.shape),                       # merely wrong
    E * np.array([1.0, 2.0, 2.0]),                                 # scaled, but not every entry alike
    E * 2.5,                                                       # a constant that names no mistake
    E / 4 + 1e-2,                                                  # almost a quarter, not exactly
    np.zeros_like(E),                                              # nothing computed
    -E + np.where(np.arange(E.size).reshape(E.shape) == 5, 1.0, 0.0),   # one entry breaks the flip
    E[:, :2],                                                      # another shape, not the transpose
], ids=["noise", "column-scaled", "2.5x", "nearly-quarter", "zeros", "almost-flipped", "other-shape"])
def test_no_hint_on_a_value_that_is_merely_wrong(got):
    outcome, _ = compare(Check("x", "X", factors={"beta": 1.7}), E, got, None)
    assert not outcome.passed
    assert outcome.hint is None and outcome.mistake is None, outcome.hint


def test_no_transpose_hint_for_a_symmetric_matrix():
    symmetric = SQUARE + SQUARE.T
    outcome, _ = compare(Check("x", "X"), symmetric, symmetric + 1.0, None)
    assert outcome.mistake is None


# One handin, a classic mistake in each of four sections that do not share code under test.
MUTANTS = (
    (LINEAR, "        dLdA = dLdZ @ self.W\n", "        dLdA = -(dLdZ @ self.W)\n"),            # sign
    (ACT, "self.dLdbeta = np.sum(dLdA * Z * Z * s * (1.0 - s))",
          "self.dLdbeta = np.sum(dLdA * Z * Z * s * (1.0 - s)) * beta"),                     # beta
    (LOSS, "return np.sum(se) / (self.N * self.C)", "return np.sum(se)"),                   # times N*C
    (BN, "self.running_M = self.alpha * self.running_M + (1 - self.alpha) * self.M",
         "self.running_M = (1 - self.alpha) * self.running_M + self.alpha * self.M"),       # swapped weights
)


@pytest.fixture(scope="module")
def mutant_result(tmp_path_factory, executor):
    root = build_handin(tmp_path_factory.mktemp("hints") / "src", MUTANTS)
    return grade(tar_bytes(root), executor, suite=HW1P1)


def _hints(result) -> dict[str, tuple[str, str]]:
    return {c.label: (c.mistake, c.hint) for s in result.sections for t in s.tests for c in t.checks if c.hint}


def test_graded_mutants_carry_their_hints(mutant_result):
    hints = _hints(mutant_result)
    assert hints["the value returned by Linear.backward(dLdZ)"][0] == "sign"
    assert hints["Swish(beta=0.5).dLdbeta after backward"][0] == "factor"
    assert "times beta = 0.5" in hints["Swish(beta=0.5).dLdbeta after backward"][1]
    assert hints["L = MSELoss.forward(A, Y)"][0] == "multiplied"
    swapped = hints["BatchNorm1d.running_M after one training batch"]
    assert swapped[0] == "factor" and "weights swapped" in swapped[1], swapped
    # hints never score: every section with one of these mistakes still loses exactly its points
    assert {s.name for s in mutant_result.sections if not s.passed} == {
        "Linear Layer", "Activation", "MLP0", "MLP1", "MLP4", "Loss", "Batch Norm"}
    assert mistakes(mutant_result) == {"sign", "factor", "multiplied"}


def test_hints_show_on_the_check_and_in_the_text(mutant_result):
    loss = next(s for s in mutant_result.sections if s.name == "Loss")
    test = next(t for t in loss.tests if not t.passed)
    assert "Hint: Every entry of L = MSELoss.forward(A, Y) is exactly" in test.message


def test_a_correct_handin_gets_no_hint(tmp_path, executor):
    result = grade(tar_bytes(build_handin(tmp_path / "src")), executor, suite=HW1P1)
    assert result.score == 100 and not _hints(result) and mistakes(result) == set()
