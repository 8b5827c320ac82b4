"""Trusted comparison of a student's outputs with the reference's, and the feedback it produces.

Tolerance: |got - expected| <= ATOL + RTOL * |expected|, elementwise. ATOL = 1e-4 is the official
autograder's; RTOL = 1e-4 lets float32 work pass on values of tens or hundreds (float32 carries
about 7 significant digits) while a real bug (a missing factor, a wrong sign, GELU's tanh
approximation, off by ~1e-3) still fails. Shapes must match exactly ((3,) is not (3, 1)), except
for "scalar" checks (a loss, dLdbeta), where any size-1 value is accepted. NaN never matches.
"""

from __future__ import annotations

import numpy as np

from grader.plan import Check

ATOL = 1e-4
RTOL = 1e-4
SMALL_ARRAY = 40  # arrays with at most this many entries are shown in full


def _format(array: np.ndarray) -> str:
    with np.printoptions(precision=4, suppress=True, linewidth=100):
        return np.array2string(np.asarray(array, dtype=np.float64))


def _excerpt(expected: np.ndarray, got: np.ndarray) -> str:
    if expected.size > SMALL_ARRAY:
        return ""
    return f"\nexpected:\n{_format(expected)}\ngot:\n{_format(got)}"


def compare(check: Check, expected: np.ndarray, got: np.ndarray | None, problem: str | None) -> str | None:
    """None when GOT passes CHECK against EXPECTED; otherwise one message for the student."""
    label = check.label
    if problem is not None:
        return f"{label} {problem}."
    if got is None:
        return f"{label}: no value was produced."
    expected = np.asarray(expected)
    if check.kind == "shape":
        if got.shape != expected.shape:
            return f"{label}: expected shape {expected.shape}, got {got.shape}."
        return None
    if check.kind == "scalar":
        if got.size != 1:
            return f"{label}: expected a single number, got an array of shape {got.shape}."
        got, expected = got.reshape(()), expected.reshape(())
    elif got.shape != expected.shape:
        return f"{label}: expected shape {expected.shape}, got {got.shape}."
    if got.dtype.kind == "b":
        got = got.astype(np.int8)
    got64, exp64 = got.astype(np.float64), expected.astype(np.float64)
    nonfinite = ~np.isfinite(got64)
    if nonfinite.any():
        where = tuple(int(i) for i in np.argwhere(nonfinite)[0])
        return (f"{label} contains {got64[where]} at index {list(where)} "
                f"(expected {exp64[where]:.6g}).{_excerpt(exp64, got64)}")
    error = np.abs(got64 - exp64)
    bad = error > ATOL + RTOL * np.abs(exp64)
    if not bad.any():
        return None
    worst = tuple(int(i) for i in np.unravel_index(np.argmax(error), error.shape)) if error.ndim else ()
    where = f" at index {list(worst)}" if worst else ""
    return (f"{label}: values differ. Largest absolute error {error[worst]:.6g}{where} "
            f"(expected {exp64[worst]:.6g}, got {got64[worst]:.6g}); "
            f"{int(bad.sum())} of {bad.size} entries are off.{_excerpt(exp64, got64)}")
