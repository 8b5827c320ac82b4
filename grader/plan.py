"""Tests as data: what a section's tests call, with which inputs, and what the trusted side checks.

The steps of a test go to the runner (grader/runner.py), which executes them against a package; the
checks stay on the trusted side and name which saved values to compare and how."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# A property check for values no reference can predict (a random dropout mask): given the value
# and all values the test saved (by save name), None when it holds, else one sentence.
Judge = Callable[[np.ndarray, dict[str, np.ndarray]], "str | None"]


@dataclass(frozen=True)
class Check:
    """What the trusted side compares. `kind` is the shape rule (grader/compare.py has the policy):
    "values": exact shape and values, for quantities with a batch dimension; "parameter": values,
    and a shape that may lack leading 1s, for quantities shaped like a parameter; "shape": the
    exact shape only; "scalar": any size-1 value."""
    save: str            # the name a step saved the value under
    label: str           # what the student sees, e.g. "Z = Linear.forward(A)"
    kind: str = "values"  # see above; "judged": `judge` decides, the reference's value is not used
    why: str = ""        # why the value matters, told to the student when the check fails
    shape_why: str = ""  # why the shape matters, told when the shape is wrong (compare.py has defaults)
    local: bool = True   # False: the official local autograder never checks this value
    judge: Judge | None = None
    # Extra absolute tolerance per entry, for an ill-conditioned value: the round-off its formula
    # can amplify (compare.py adds it to ATOL + RTOL |expected|).
    tolerance: np.ndarray | None = field(default=None, compare=False)
    # Factors of the test a wrong value may be off by, named as the writeup names them
    # ({"beta": 0.5}, {"1 - p": 0.7}): a value off by exactly one of them gets a hint.
    factors: dict[str, float] = field(default_factory=dict, compare=False)
    # Ratios got / expected that one known mistake gives, with the sentence that names it
    # ({9.0: "... alpha and 1 - alpha swapped"}): checked before the general hints.
    ratios: dict[float, str] = field(default_factory=dict, compare=False)


@dataclass
class Test:
    name: str
    steps: list[dict] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    inputs: dict[str, np.ndarray] = field(default_factory=dict)

    # Small builders so the suite reads as a script of calls.
    def array(self, key: str, value) -> dict:
        self.inputs[key] = np.asarray(value)
        return {"array": key}

    def new(self, var: str, module: str, cls: str, *args, kwargs: dict | None = None,
            or_pass_to: list[str] | None = None) -> None:
        """KWARGS: arguments passed by name, where the official script names them
        (`Linear(2, 3, debug=True)`), so a parameter's position never matters there."""
        step = {"op": "new", "var": var, "module": module, "class": cls, "args": list(args)}
        if kwargs:
            step["kwargs"] = dict(kwargs)
        if or_pass_to:
            step["or_pass_to"] = list(or_pass_to)
        self.steps.append(step)

    def stand_in(self, var: str, name: str | None = None, holds: str = "") -> None:
        """A plain object the test fills in; HOLDS tells the student what it holds when their code
        asks it for anything else."""
        self.steps.append({"op": "object", "var": var, "name": name or var, "holds": holds})

    def set(self, var: str, attr: str, value) -> None:
        self.steps.append({"op": "set", "var": var, "attr": attr, "value": value})

    def call(self, var: str, method: str, *args, kwargs: dict | None = None, save: str | None = None,
             forbid=()) -> None:
        step = {"op": "call", "var": var, "method": method, "args": list(args)}
        if kwargs:
            step["kwargs"] = dict(kwargs)
        if save:
            step["save"] = save
        if forbid:
            step["forbid"] = list(forbid)
        self.steps.append(step)

    def get(self, var: str, attr: str, save: str | None = None, *, hint: str = "") -> str:
        """HINT: a sentence added when ATTR cannot be reached (e.g. how a list must be built)."""
        save = save or f"{var}.{attr}"
        step = {"op": "get", "var": var, "attr": attr, "save": save}
        if hint:
            step["hint"] = hint
        self.steps.append(step)
        return save

    def check(self, save: str, label: str, kind: str = "values", *, why: str = "", shape_why: str = "",
              local: bool = True, judge: Judge | None = None, tolerance: np.ndarray | None = None,
              factors: dict[str, float] | None = None, ratios: dict[float, str] | None = None) -> None:
        if (kind == "judged") != (judge is not None):
            raise ValueError("a judged check needs a judge, and only a judged check has one")
        self.checks.append(Check(save, label, kind, why, shape_why, local, judge, tolerance, factors or {}, ratios or {}))


@dataclass
class Section:
    name: str
    points: int
    tests: list[Test]
    # What the section's process may use beyond the executor's defaults (None: the defaults), e.g.
    # HW2P1's 2-d convolutions, which correct loop code runs for tens of CPU seconds on the fixed
    # cases; never more than the operator's ceiling (grader.execute).
    budget: Budget | None = None


@dataclass(frozen=True)
class Budget:
    """Limits a suite asks for one section's process; a field left None keeps the executor's default."""
    cpu_seconds: float | None = None
    wall_seconds: float | None = None
    memory_bytes: int | None = None


def derive_seed(material: str, name: str) -> int:
    """A seed that depends only on the handin and the test, so a regrade sees the same inputs."""
    return int.from_bytes(hashlib.sha256(f"{material}\0{name}".encode()).digest()[:8], "little")


def _prefixed(value, prefix: str):
    if isinstance(value, dict) and "array" in value:
        return {"array": prefix + value["array"]}
    if isinstance(value, list):
        return [_prefixed(v, prefix) for v in value]
    if isinstance(value, dict):
        return {k: _prefixed(v, prefix) for k, v in value.items()}
    return value


def serialize(sections: list[Section]) -> tuple[dict, dict[str, np.ndarray]]:
    """The runner's view of the suite: steps only (no checks, no expected values), and all input
    arrays in one flat dict with keys made unique per test."""
    plans, arrays = {"sections": []}, {}
    for s_index, section in enumerate(sections):
        tests = []
        for t_index, test in enumerate(section.tests):
            prefix = f"{s_index}.{t_index}."
            tests.append({"name": test.name,
                          "steps": [_prefixed(step, prefix) for step in test.steps]})
            arrays.update({prefix + key: value for key, value in test.inputs.items()})
        plans["sections"].append({"name": section.name, "tests": tests})
    return plans, arrays


ARRAY_ALIGNMENT = 64


def _chunks(arrays: dict[str, np.ndarray], index: dict):
    """The blob's pieces in order (padding, then each array's bytes, uncopied where the array is
    C-contiguous: HW2P1's fixed cases are 23 MB), filling INDEX {key: [dtype, shape, offset]}."""
    offset = 0
    for key, value in arrays.items():
        data = np.asarray(value)
        if data.dtype.hasobject or data.dtype.fields is not None:
            raise ValueError(f"input {key} must be a plain numeric array, not {data.dtype}")
        padding = -offset % ARRAY_ALIGNMENT
        yield bytes(padding)
        offset += padding
        index[key] = [data.dtype.str, list(data.shape), offset]
        yield data.data.cast("B") if data.flags.c_contiguous and data.size else data.tobytes(order="C")
        offset += data.nbytes


def pack_arrays(arrays: dict[str, np.ndarray]) -> tuple[dict, bytes]:
    """ARRAYS as one raw blob and its index {key: [dtype, shape, offset]} (the runner's
    `unpack_arrays`): reading them back is a view per array, where an .npz archive cost every
    section ~10 ms of zip and header parsing."""
    index: dict = {}
    blob = b"".join(_chunks(arrays, index))
    return index, blob


def write_job(directory: Path, plans: dict, arrays: dict[str, np.ndarray]) -> None:
    """The runner's two input files, readable by the sandbox's slot user: DIRECTORY/plans.json (the
    plans plus the arrays' index) and DIRECTORY/inputs.bin (`pack_arrays`' blob, written piece by
    piece rather than joined first)."""
    index: dict = {}
    with open(directory / "inputs.bin", "wb") as f:
        f.writelines(_chunks(arrays, index))
    (directory / "plans.json").write_text(json.dumps(plans | {"arrays": index}))
    for name in ("plans.json", "inputs.bin"):
        (directory / name).chmod(0o644)
