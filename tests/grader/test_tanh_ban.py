"""The np.tanh ban (grader/runner.py `_forbidden_numpy`, as the sandboxed runner applies it): every
other name Python code can hold for numpy's tanh ufunc is banned while the step runs, and every
one is numpy's tanh again afterwards. The grading-path attacks (another section's file lifting the
ban, `from numpy import tanh`, numpy._core.umath.tanh) are in tests/security/test_section_isolation.py."""

from __future__ import annotations

import gc
import math

import numpy as np
import pytest
from numpy import tanh as imported_tanh

from grader import runner

HELD = {"in a dict": np.tanh}
LISTED = [np.tanh]
NESTED = [(1, (np.tanh,))]


class Holder:
    as_class_attribute = np.tanh

    def __init__(self):
        self.as_instance_attribute = np.tanh


def with_default(x, f=np.tanh):
    return f(x)


def closure():
    f = np.tanh
    return lambda x: f(x)


CALLS = {
    "np.tanh": lambda: np.tanh(0.5),
    "from numpy import tanh": lambda: imported_tanh(0.5),
    "numpy._core.umath.tanh": lambda: np._core.umath.tanh(0.5),
    "dict value": lambda: HELD["in a dict"](0.5),
    "list item": lambda: LISTED[0](0.5),
    "tuple in a list": lambda: NESTED[0][1][0](0.5),
    "class attribute": lambda: Holder.as_class_attribute(0.5),
    "instance attribute": lambda: HOLDER.as_instance_attribute(0.5),
    "default argument": lambda: with_default(0.5),
    "closure variable": lambda: CLOSURE(0.5),
    "np.tanh.at": lambda: np.tanh.at(np.ones(2), [0]),
}
HOLDER = Holder()
CLOSURE = closure()


@pytest.mark.parametrize("frozen", [False, True], ids=["plain", "after gc.freeze (the sandbox's init)"])
@pytest.mark.parametrize("alias", list(CALLS))
def test_tanh_under_another_name_is_banned_and_restored(alias, frozen):
    if frozen:
        gc.freeze()
    try:
        with runner._forbidden_numpy(["tanh"]), pytest.raises(runner.ForbiddenCall, match="np.tanh"):
            CALLS[alias]()
    finally:
        if frozen:
            gc.unfreeze()
    CALLS[alias]()   # numpy's tanh again
    assert imported_tanh is np.tanh and HELD["in a dict"] is np.tanh and NESTED[0][1][0] is np.tanh
    assert Holder.as_class_attribute is np.tanh and with_default.__defaults__ == (np.tanh,)


def test_the_trusted_reference_only_replaces_the_numpy_attribute():
    with runner._forbidden_numpy(["tanh"], every_alias=False):
        with pytest.raises(runner.ForbiddenCall):
            np.tanh(0.5)
        assert imported_tanh(0.5) == pytest.approx(math.tanh(0.5))
    assert np.tanh is imported_tanh


def test_tanh_without_numpys_ufunc_is_not_what_the_ban_covers():
    # The guarantee stated in grader/suites/hw1p1.py: numpy's ufunc, under any name; not math.tanh.
    with runner._forbidden_numpy(["tanh"]):
        assert math.tanh(0.5) == pytest.approx(0.46211715726000974)
