"""The BatchNorm case with a feature whose batch variance is comparable to eps: dLdZ there is
ill-conditioned ((V + eps)^-1.5 amplifies float round-off), so a handin that adds a term which is
zero in exact arithmetic, summed over every feature in float32, must pass at every seed, while the
case still fails eps outside the root (through BZ) and a wrong backward (through dLdZ)."""
import numpy as np
import pytest

from grader.compare import compare
from grader.runner import package_under_test
from grader.suites import hw1p1

SEEDS = range(200)
EPS = 1e-8


@pytest.fixture(scope="module")
def reference_batchnorm():
    with package_under_test(str(hw1p1.SUITE.reference_root), hw1p1.SUITE.package_plan()):
        from mytorch.nn.batchnorm import BatchNorm1d
    return BatchNorm1d


def _case(seed: int):
    test = hw1p1._bn_variance_near_eps_test("near eps", np.random.default_rng(seed))
    checks = {c.save: c for c in test.checks}
    return test.inputs, checks


def _reference(BatchNorm1d, inputs):
    bn = BatchNorm1d(3)
    bn.BW, bn.Bb = inputs["BW"].copy(), inputs["Bb"].copy()
    BZ = bn.forward(inputs["Z"].copy(), eval=False)
    return BZ, bn.backward(inputs["dLdBZ"].copy())


def _handin_backward(inputs, zero_term: str, sqrt_plus_eps: bool = False):
    """A handin's float32 BatchNorm: ZERO_TERM is how it writes (2/N) dLdV sum(Z - M): "all" sums
    over every feature, "none" leaves it out, "wrong" subtracts the centred sum twice (a real bug)."""
    Z, BW, dLdBZ = inputs["Z"], inputs["BW"], inputs["dLdBZ"]
    N = Z.shape[0]
    M = np.mean(Z, axis=0, keepdims=True)
    V = np.mean((Z - M) ** 2, axis=0, keepdims=True)
    root = np.sqrt(V) + EPS if sqrt_plus_eps else np.sqrt(V + EPS)
    BZ = BW * (Z - M) / root + inputs["Bb"]
    dLdNZ = dLdBZ * BW
    dLdV = -0.5 * np.sum(dLdNZ * (Z - M) * (V + EPS) ** -1.5, axis=0, keepdims=True)
    zero = {"all": np.sum(Z - M), "none": 0.0}.get(zero_term, 0.0)
    dLdM = -np.sum(dLdNZ * (V + EPS) ** -0.5, axis=0, keepdims=True) - (2 / N) * dLdV * zero
    through_V = dLdV * (2 / N) * (Z - M) * (2 if zero_term == "wrong" else 1)
    return BZ, dLdNZ * (V + EPS) ** -0.5 + through_V + dLdM / N


def _passes(check, expected, got) -> bool:
    outcome, _ = compare(check, expected, np.asarray(got), None)
    return outcome.passed


@pytest.mark.parametrize("zero_term", ["all", "none"])
def test_a_term_zero_in_exact_arithmetic_never_costs_the_section(reference_batchnorm, zero_term):
    failing = []
    for seed in SEEDS:
        inputs, checks = _case(seed)
        BZ, dLdZ = _reference(reference_batchnorm, inputs)
        got_BZ, got_dLdZ = _handin_backward(inputs, zero_term)
        if not (_passes(checks["BZ"], BZ, got_BZ) and _passes(checks["dLdZ"], dLdZ, got_dLdZ)):
            failing.append(seed)
    assert failing == [], f"failed at {len(failing)} of {len(SEEDS)} seeds"


def test_the_case_still_fails_eps_outside_the_root_and_a_wrong_backward(reference_batchnorm):
    for seed in SEEDS:
        inputs, checks = _case(seed)
        BZ, dLdZ = _reference(reference_batchnorm, inputs)
        outside_BZ, _ = _handin_backward(inputs, "axis0", sqrt_plus_eps=True)
        assert not _passes(checks["BZ"], BZ, outside_BZ), seed
        _, wrong_dLdZ = _handin_backward(inputs, "wrong")
        assert not _passes(checks["dLdZ"], dLdZ, wrong_dLdZ), seed


def test_the_message_says_why_the_case_exists(reference_batchnorm):
    inputs, checks = _case(0)
    _, dLdZ = _reference(reference_batchnorm, inputs)
    _, wrong = _handin_backward(inputs, "wrong")
    outcome, _ = compare(checks["dLdZ"], dLdZ, wrong, None)
    assert "This case exists to catch eps outside the square root" in outcome.message
    assert "a tolerance that follows that amplification" in outcome.message


def test_the_bound_is_far_below_the_ordinary_tolerance_where_the_value_is_well_conditioned():
    rng = np.random.default_rng(1)
    Z, BW, dLdBZ = 1 + 2 * rng.standard_normal((6, 3)), 1 + rng.standard_normal((1, 3)), rng.standard_normal((6, 3))
    assert hw1p1.bn_backward_roundoff(Z, BW, dLdBZ).max() < 1e-5
