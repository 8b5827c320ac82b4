"""Trusted comparison of a student's outputs with the reference's, and the feedback it produces.

Tolerance: |got - expected| <= ATOL + RTOL * |expected|, elementwise. ATOL = 1e-4 is the official
autograder's; RTOL = 1e-4 lets float32 work pass on values of tens or hundreds (float32 carries
about 7 significant digits) while a real bug (a missing factor, a wrong sign, GELU's tanh
approximation, off by ~1e-3) still fails. NaN never matches. An ill-conditioned value may carry
its own extra tolerance per entry (`Check.tolerance`), the round-off its formula can amplify.

Strictness policy (shapes), declared per check by `Check.kind` (grader/plan.py):
- "values" (the default): quantities with a batch dimension (forward outputs, returned dLdA and
  dLdZ, the MLPs' debug lists) keep their exact shape: a (3,) for (3, 1), or a squeezed batch of
  one, breaks the next layer.
- "parameter": quantities shaped like a parameter (W, b, BW, Bb, their gradients, running_M,
  running_V) pass when the values are right and the shape broadcasts to exactly the expected
  shape, i.e. only leading singleton dimensions are missing: precisely "usable wherever the
  expected array is used elementwise". So (C,) passes for (1, C), with a non-scoring note;
  (out,) for (out, 1) still fails: it would turn an (out, 1) bias into (out, out).
- "scalar" (a loss, dLdbeta): any size-1 value.
- "shape": the shape alone, exactly (an architecture check right after construction).

`compare` returns a typed CheckResult; `format_check` turns one into the text a student reads.
"""

from __future__ import annotations

import numpy as np

from grader.plan import Check
from grader.result import CheckResult, Mistake

ATOL = 1e-4
RTOL = 1e-4
SMALL_ARRAY = 40  # arrays with at most this many entries are shown in full
MAX_OFF_INDICES = 100  # off_indices beyond this many are left out (the count is in the message)


def _shape(array) -> list[int] | None:
    return None if array is None else list(np.shape(array))


def _passed(label: str, expected_shape: list[int] | None, got_shape: list[int] | None) -> CheckResult:
    return CheckResult(label=label, passed=True, expected_shape=expected_shape, got_shape=got_shape)


def _excerpt(array: np.ndarray):
    return array.astype(np.float64).tolist() if array.size <= SMALL_ARRAY else None


def _index(flat_index, shape) -> list[int]:
    return [int(i) for i in np.unravel_index(flat_index, shape)] if shape else []


def drops_only_leading_ones(got_shape: tuple, expected_shape: tuple) -> bool:
    """True when GOT_SHAPE is EXPECTED_SHAPE without some of its leading 1s: (C,) for (1, C)."""
    missing = len(expected_shape) - len(got_shape)
    return (missing > 0 and tuple(expected_shape[missing:]) == tuple(got_shape)
            and all(n == 1 for n in expected_shape[:missing]))


def parameter_shape_note(label: str, got_shape: tuple, expected_shape: tuple) -> str:
    return (f"{label} has shape {tuple(got_shape)}; the writeup's is {tuple(expected_shape)}: accepted, "
            f"because it broadcasts to exactly that shape, but keep the leading dimension "
            f"(e.g. np.sum(..., axis=0, keepdims=True)) so code that indexes or concatenates it "
            f"works too. This note does not affect your score.")


SHAPE_WHY = {
    "values": "Values with a batch dimension must keep their exact shape: the next layer's "
              "matrix products (or the previous layer's, going backward) depend on it.",
    "parameter": "A parameter-shaped value may only lack leading dimensions of size 1 ((C,) for "
                 "(1, C)); any other shape would change the parameter's shape in an update.",
    "shape": "The shape is read right after construction, before anything sets the value.",
    "scalar": "",
}
NOT_CHECKED_LOCALLY = "The local autograder does not check this value; the writeup specifies it."


def compare(check: Check, expected: np.ndarray, got: np.ndarray | None, problem: str | None
            ) -> tuple[CheckResult, list[str]]:
    """Compare GOT with EXPECTED under CHECK's kind. Returns the typed outcome and any
    non-scoring notes (a parameter accepted with a shape that only drops leading 1s). A failing
    outcome's message ends with why the value matters and, for a value the official local
    autograder never reads, says so."""
    outcome, notes = _compare(check, expected, got, problem)
    if not outcome.passed:
        outcome.message = " ".join(part for part in (
            outcome.message, check.why, "" if check.local else NOT_CHECKED_LOCALLY) if part)
    return outcome, notes


def _compare(check: Check, expected: np.ndarray, got: np.ndarray | None, problem: str | None
             ) -> tuple[CheckResult, list[str]]:
    label = check.label
    expected = np.asarray(expected)
    fail = {"label": label, "passed": False, "expected_shape": _shape(expected), "got_shape": _shape(got)}
    if problem is not None:
        return CheckResult(**fail, message=f"{label} {problem}."), []
    if got is None:
        return CheckResult(**fail, message=f"{label}: no value was produced."), []
    notes = []

    def wrong_shape() -> CheckResult:   # built only when needed: a grade makes ~1,800 checks
        outcome = CheckResult(**fail, message=f"{label}: expected shape {expected.shape}, got {got.shape}. "
                                              f"{check.shape_why or SHAPE_WHY[check.kind]}".strip())
        if got.ndim == 2 and got.shape == expected.shape[::-1] and _close(expected, got.T):
            outcome.mistake, outcome.hint = Mistake.TRANSPOSED, _TRANSPOSED.format(label=label)
        return outcome

    if check.kind == "shape":
        if got.shape != expected.shape:
            return wrong_shape(), []
        return _passed(label, _shape(expected), _shape(got)), []
    if check.kind == "scalar":
        if got.size != 1:
            return CheckResult(**fail, message=f"{label}: expected a single number, got an array of "
                                                f"shape {got.shape}."), []
        got, expected = got.reshape(()), expected.reshape(())
    elif got.shape != expected.shape:
        if check.kind == "parameter" and drops_only_leading_ones(got.shape, expected.shape):
            notes.append(parameter_shape_note(label, got.shape, expected.shape))
            got = got.reshape(expected.shape)
        else:
            return wrong_shape(), []
    if got.dtype.kind == "b":
        got = got.astype(np.int8)
    got64, exp64 = got.astype(np.float64), expected.astype(np.float64)
    nonfinite = ~np.isfinite(got64)
    error = np.abs(got64 - exp64)
    allowed = ATOL + RTOL * np.abs(exp64)
    if check.tolerance is not None:
        allowed = allowed + np.broadcast_to(check.tolerance, exp64.shape)
    bad = error > allowed
    if not nonfinite.any() and not bad.any():
        return _passed(label, fail["expected_shape"], fail["got_shape"]), notes  # notes only when accepted
    excerpts = {"expected": _excerpt(exp64), "got": _excerpt(got64)} if exp64.size <= SMALL_ARRAY else {}
    if nonfinite.any():
        where = tuple(int(i) for i in np.argwhere(nonfinite)[0])
        off = [list(map(int, i)) for i in np.argwhere(nonfinite)[:MAX_OFF_INDICES]]
        return CheckResult(**fail, **excerpts, worst_index=list(where), off_indices=off,
                           message=f"{label} contains {got64[where]} at index {list(where)} "
                                   f"(expected {exp64[where]:.6g})."), []
    worst = tuple(_index(np.argmax(error), error.shape))
    where = f" at index {list(worst)}" if worst else ""
    return CheckResult(
        **fail, **excerpts, worst_index=list(worst), **_hint(check, exp64, got64),
        off_indices=[list(map(int, i)) for i in np.argwhere(bad)[:MAX_OFF_INDICES]],
        message=(f"{label}: values differ. Largest absolute error {error[worst]:.6g}{where} "
                 f"(expected {exp64[worst]:.6g}, got {got64[worst]:.6g}); "
                 f"{int(bad.sum())} of {bad.size} entries are off.")), []


# Hints: one non-scoring sentence when a wrong value is exactly what a classic mistake makes of the
# right one. Each is tested on its mutant and on every correct and buggy catalogue handin
# (tests/grader/test_mistake_hints.py): a hint is given only when EVERY entry fits it within the
# comparison's own tolerance, so a value that is merely wrong never gets one.
_TRANSPOSED = "{label} holds the transpose of the expected value: check the order of a matrix product or a missing .T."
_SIGN = ("Every entry of {label} has the expected size but the opposite sign: a subtraction the wrong way "
         "round or a lost minus?")
_DIVIDED = ("Every entry of {label} is exactly 1/{k} of the expected value: a factor {k} is missing, or it "
            "divides by {k} (or by a number {k} times too large: a batch size, a count, a mean's length) "
            "where the writeup does not.")
_MULTIPLIED = ("Every entry of {label} is exactly {k} times the expected value: a division by {k} is missing (or "
               "divides by a number {k} times too small: a batch size, a count, a mean's length), or a factor "
               "{k} is there that should not be.")
_TIMES_FACTOR = ("Every entry of {label} is the expected value times {name} = {value:g}: is a factor {name} there "
                 "that should not be?")
_OVER_FACTOR = "Every entry of {label} is the expected value divided by {name} = {value:g}: is a factor {name} missing?"
MAX_WHOLE_FACTOR = 100_000


def _close(expected: np.ndarray, got: np.ndarray) -> bool:
    return bool(np.all(np.abs(got - expected) <= ATOL + RTOL * np.abs(expected)))


def _hint(check: Check, expected: np.ndarray, got: np.ndarray) -> dict:
    """{"hint", "mistake"} when GOT (finite, EXPECTED's shape, not close to it) is EXPECTED
    transposed, or EXPECTED times one constant that a classic mistake gives; else {}."""
    label = check.label
    if expected.ndim == 2 and expected.shape[0] == expected.shape[1] > 1 and _close(expected, got.T):
        return {"mistake": Mistake.TRANSPOSED, "hint": _TRANSPOSED.format(label=label)}
    sizable = np.abs(expected) > 100 * ATOL
    if not sizable.any():
        return {}
    ratio = float(np.median(got[sizable] / expected[sizable]))
    candidates = [(ratio_, Mistake.FACTOR, sentence) for ratio_, sentence in check.ratios.items()]
    candidates.append((-1.0, Mistake.SIGN, _SIGN.format(label=label)))
    for name, value in check.factors.items():
        candidates += [(value, Mistake.FACTOR, _TIMES_FACTOR.format(label=label, name=name, value=value)),
                       (1 / value, Mistake.FACTOR, _OVER_FACTOR.format(label=label, name=name, value=value))]
    if abs(ratio) > 1:
        k = round(ratio)
        if 2 <= k <= MAX_WHOLE_FACTOR:
            candidates.append((float(k), Mistake.MULTIPLIED, _MULTIPLIED.format(label=label, k=k)))
    elif ratio > 0:
        k = round(1 / ratio)
        if 2 <= k <= MAX_WHOLE_FACTOR:
            candidates.append((1 / k, Mistake.DIVIDED, _DIVIDED.format(label=label, k=k)))
    for factor, mistake, sentence in candidates:
        if _close(factor * expected, got):
            return {"mistake": mistake, "hint": sentence}
    return {}


def _format(excerpt) -> str:
    with np.printoptions(precision=4, suppress=True, linewidth=100):
        return np.array2string(np.asarray(excerpt, dtype=np.float64))


def format_check(result: CheckResult) -> str:
    """A failing check as the student reads it: its sentence, then both arrays when small."""
    if result.passed:
        return ""
    text = result.message + (f"\nHint: {result.hint}" if result.hint else "")
    if result.expected is None or result.got is None:
        return text
    return f"{text}\nexpected:\n{_format(result.expected)}\ngot:\n{_format(result.got)}"


def judge(check: Check, got: np.ndarray | None, problem: str | None, saved: dict[str, np.ndarray]
          ) -> tuple[CheckResult, list[str]]:
    """Decide a "judged" check: its property (`check.judge`, given every value the test saved)
    instead of a reference value, for outputs no reference can predict (a random dropout mask)."""
    label = check.label
    fail = {"label": label, "passed": False, "got_shape": _shape(got)}
    if problem is not None:
        return CheckResult(**fail, message=f"{label} {problem}."), []
    if got is None:
        return CheckResult(**fail, message=f"{label}: no value was produced."), []
    verdict = check.judge(got, saved)   # a sentence, or (sentence, hint) when it recognises a mistake
    message, hint = verdict if isinstance(verdict, tuple) else (verdict, None)
    if message:
        return CheckResult(**fail, message=message, hint=hint, mistake=Mistake.FACTOR if hint else None), []
    return CheckResult(label=label, passed=True, got_shape=_shape(got)), []


def _matches(expected: np.ndarray, got: np.ndarray | None) -> bool:
    if got is None or got.size != expected.size or got.dtype.kind not in "biuf":
        return False
    got64, exp64 = got.astype(np.float64).reshape(expected.shape), expected.astype(np.float64)
    return bool(np.all(np.abs(got64 - exp64) <= ATOL + RTOL * np.abs(exp64)))


def swapped_pairs(failed: list[tuple[Check, np.ndarray, np.ndarray | None]]) -> list[tuple[str, str]]:
    """Among a test's failing value checks (check, expected, got), the pairs whose values are each
    other's (dLdBW holding dLdBb's value and the reverse): one cause, named as such."""
    pairs = []
    for i, (check_a, expected_a, got_a) in enumerate(failed):
        for check_b, expected_b, got_b in failed[i + 1:]:
            if (not np.array_equal(expected_a, expected_b) and _matches(expected_b, got_a)
                    and _matches(expected_a, got_b)):
                pairs.append((check_a.label, check_b.label))
    return pairs

