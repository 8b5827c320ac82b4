"""A failing test as a short Python script the student runs in their handout folder: the same
class, the same input arrays and the same calls, printing what the grader compared."""

from __future__ import annotations

import ast
import base64
import io
import re
from functools import cache
from pathlib import Path

import numpy as np

from grader.compare import ATOL, RTOL, SMALL_ARRAY
from grader.plan import Test
from grader.suite import Suite

MAX_SNIPPET_CHARS = 64 << 10   # beyond this the page would drown in numbers: no snippet


def _name(key: str) -> str:
    """A Python identifier for an array or saved value's key ("lin.dLdW" -> "lin_dLdW")."""
    name = re.sub(r"\W", "_", key)
    return name if name and not name[0].isdigit() else "v_" + name


@cache
def _init_params(reference_root: Path, module: str, cls: str) -> tuple[str, ...]:
    """The suite's reference class's __init__ parameter names (read with ast: nothing is imported)."""
    path = reference_root / (module.replace(".", "/") + ".py")
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError):
        return ()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    return tuple(a.arg for a in item.args.args[1:])
    return ()


def _array_source(name: str, array: np.ndarray) -> str:
    dtype = f"np.{array.dtype.name}"
    if array.size <= SMALL_ARRAY:
        text = np.array2string(array, separator=", ", floatmode="unique", threshold=array.size + 1,
                               max_line_width=96, prefix=f"{name} = np.array(")
        return f"{name} = np.array({text}, dtype={dtype})"
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    packed = base64.b64encode(buf.getvalue()).decode()
    return (f"{name} = np.load(io.BytesIO(base64.b64decode(  # shape {tuple(array.shape)}: too many values to list\n"
            f"    \"{packed}\")))")


INITIALIZERS = {"normal": "lambda *shape: np.random.normal(0, 1.0, shape)",
                "zeros": "lambda *shape: np.zeros(shape)", "ones": "lambda *shape: np.ones(shape)"}


def _value(spec, arrays: dict[str, str]) -> str:
    if isinstance(spec, dict) and "array" in spec:
        return arrays[spec["array"]]
    if isinstance(spec, dict) and "var" in spec:
        return spec["var"]
    if isinstance(spec, dict) and "saved" in spec:
        return _name(spec["saved"])
    if isinstance(spec, dict) and "init" in spec:
        init = spec["init"]
        return f"lambda *args: {_value(init, arrays)}.copy()" if isinstance(init, dict) else INITIALIZERS[init]
    if isinstance(spec, list):
        return "[" + ", ".join(_value(v, arrays) for v in spec) + "]"
    return repr(spec)


def _target(var: str, attr: str) -> str:
    """'mlp' + 'layers.0.W' -> 'mlp.layers[0].W'."""
    out = var
    for part in attr.split("."):
        out += f"[{part}]" if part.isdigit() else f".{part}"
    return out


def _import_name(module: str, flat: list[str] | None) -> str:
    """How the snippet imports MODULE: by its bare name when its folder is one the handout puts on
    sys.path, as the handout's own files do, so it resolves wherever the student's layout keeps the
    file (HW2P1: mytorch/nn/Conv1d.py, or mytorch/Conv1d.py in S23/F23 handins)."""
    folder, _, name = module.rpartition(".")
    return name if flat and folder.replace(".", "/") in flat else module


def snippet(test: Test, section: str, suite: Suite, expected: dict[str, np.ndarray] | None = None) -> str | None:
    """TEST's steps as a runnable script, or None when its inputs are too large to be useful. With
    EXPECTED (save name -> the reference's value), the script holds those values and ends by
    comparing each with the grader's tolerance, printing PASS or FAIL per value (without them
    when that would make it too long)."""
    arrays = {key: _name(key) for key in test.inputs}
    imports, body, shown = ["import numpy as np"], [], []
    flat = suite.package_plan().get("flat")
    # The handout's own sys.path, before the first import from the handin, so that its files'
    # `from resampling import *` resolve as they do in the local autograder.
    path_lines = ["import sys", f"sys.path += {flat!r}"] if flat else []
    if any(a.size > SMALL_ARRAY for a in test.inputs.values()):
        imports[:0] = ["import base64", "import io"]
    for step in test.steps:
        op, var = step["op"], step["var"]
        if op == "new":
            module = step["module"] if isinstance(step["module"], str) else step["module"][0]  # first place
            line = f"from {_import_name(module, flat)} import {step['class']}"
            if line not in imports:
                imports.append(line)
            names = _init_params(suite.reference_root, module, step["class"])
            args = []
            for i, a in enumerate(step.get("args", [])):
                # flags read better by name: Linear(5, 4, debug=True)
                keyword = isinstance(a, bool) or a is None
                args.append(f"{names[i]}={_value(a, arrays)}" if keyword and i < len(names) else _value(a, arrays))
            args += [f"{k}={_value(v, arrays)}" for k, v in step.get("kwargs", {}).items()]
            body.append(f"{var} = {step['class']}({', '.join(args)})")
        elif op == "object":
            if "import types" not in imports:
                imports.insert(0, "import types")
            body.append(f"{var} = types.SimpleNamespace()   # stands in for a model")
        elif op == "set":
            body.append(f"{_target(var, step['attr'])} = {_value(step['value'], arrays)}")
        elif op == "get":
            body.append(f"{_name(step['save'])} = {_target(var, step['attr'])}")
            shown.append(step["save"])
        elif op == "call":
            args = [_value(a, arrays) for a in step.get("args", [])]
            args += [f"{k}={_value(v, arrays)}" for k, v in step.get("kwargs", {}).items()]
            call = f"{var}.{step['method']}({', '.join(args)})"
            if "save" in step:
                body.append(f"{_name(step['save'])} = {call}")
                shown.append(step["save"])
            else:
                body.append(call)
    lines = [f"# Rebuilds the test \"{test.name}\" ({section}). Run it from your handout folder.",
             *path_lines, *sorted(imports, key=lambda x: (not x.startswith("import"), x)), "",
             *(_array_source(arrays[k], v) for k, v in test.inputs.items()), "", *body, ""]
    lines += [f"print({s!r}, {_name(s)}, sep='\\n')" for s in dict.fromkeys(shown)]
    text = "\n".join(lines) + "\n"
    summarized = {step["save"] for step in test.steps if step.get("summarize")}
    checked = [c for c in test.checks if c.judge is None and c.save in (expected or {}) and c.save not in summarized
               and c.save.split(".")[0] not in summarized and c.save in shown]
    if checked:
        checking = text + _self_check(checked, expected)
        if len(checking) <= MAX_SNIPPET_CHARS:
            return checking
    return text if len(text) <= MAX_SNIPPET_CHARS else None


# The grader's comparison (grader/compare.py), written out for the student's machine.
SELF_CHECK = f'''

# What the grader expects (the reference solution's values), compared as the grader compares:
# |got - expected| <= {ATOL:g} + {RTOL:g} * |expected| for every entry, and the shape it requires.
def check(label, got, expected, kind, extra=0.0):
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        print("FAIL", label, "- not a numeric array:", type(got).__name__)
        return
    if kind == "scalar" and got.size == 1:
        got, expected = got.reshape(()), expected.reshape(())
    elif kind == "parameter" and got.shape != expected.shape and got.size == expected.size \\
            and expected.shape[expected.ndim - got.ndim:] == got.shape:
        got = got.reshape(expected.shape)   # only leading 1s dropped: accepted, as the grader does
    if got.shape != expected.shape:
        print("FAIL", label, "- shape", got.shape, "expected", expected.shape)
        return
    off = ~(np.abs(got - expected) <= {ATOL!r} + {RTOL!r} * np.abs(expected) + extra)
    if kind == "shape" or not off.any():
        print("PASS", label)
    else:
        print("FAIL", label, "-", int(off.sum()), "of", off.size, "entries off; largest error",
              np.nanmax(np.abs(got - expected)))

'''


def _self_check(checks, expected: dict[str, np.ndarray]) -> str:
    lines = [SELF_CHECK]
    for c in checks:
        lines.append(_array_source(f"expected_{_name(c.save)}", np.asarray(expected[c.save])))
        if c.tolerance is not None:
            lines.append(_array_source(f"extra_{_name(c.save)}", np.asarray(c.tolerance, dtype=np.float64)))
    lines.append("")
    for c in checks:
        extra = f", extra_{_name(c.save)}" if c.tolerance is not None else ""
        lines.append(f"check({c.label!r}, {_name(c.save)}, expected_{_name(c.save)}, {c.kind!r}{extra})")
    return "\n".join(lines) + "\n"
