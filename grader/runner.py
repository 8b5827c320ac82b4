"""Execute a section's test plans against one MyTorch package and record the raw outputs.

This file runs inside the sandbox (as a script) and, for the reference solution, in the trusted
process (imported). It must import only the standard library and numpy. It never sees expected
values and never decides a score: it writes what the code under test produced, and the trusted
side compares.

The plans say which package is under test: {"package": {"top_level": ["mytorch", "models"],
"exports": {"mytorch.nn": {"Linear": "linear", ...}, ...}}, "sections": [...]}. The exports are what
each package's __init__.py exports in the handout; the student's own __init__.py files are never
executed: names resolve lazily from the file that defines them, so a broken or outdated
__init__.py (S25 had no Swish) cannot cost a section that does not need it.

A section is a list of tests, each a list of steps.
    {"op": "new",   "var": "lin", "module": "mytorch.nn.linear", "class": "Linear", "args": [2, 3]}
                    # "module" may be a list of places the class may live: the first present wins
    {"op": "object", "var": "m"}                                  # an empty stand-in object
    {"op": "set",   "var": "lin", "attr": "W", "value": {"array": "W"}}
    {"op": "call",  "var": "lin", "method": "forward", "args": [{"array": "A"}], "save": "Z",
                    "forbid": ["tanh"]}                           # np.tanh raises while it runs
    {"op": "get",   "var": "lin", "attr": "layers.0.dLdW", "save": "dLdW0"}
Argument values: JSON literals, {"array": KEY} (a fresh copy of an input array) or {"var": NAME}.

Command line (inside the sandbox): runner.py PLANS_JSON INPUTS_NPZ HANDIN_DIR OUT_DIR SECTION_INDEX
Writes OUT_DIR/outputs.npz (arrays keyed "TEST_INDEX/SAVE_NAME") and OUT_DIR/report.json.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import json
import os
import sys
import traceback
import types

import numpy as np

MAX_REPR_CHARS = 300


class StudentError(Exception):
    """A problem with the code under test, already phrased for the student."""


class ForbiddenCall(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# Importing the package under test


class _LazyPackage(types.ModuleType):
    """A package module that imports a submodule only when one of its names is first used."""

    def __init__(self, name: str, exports: dict[str, str]):
        super().__init__(name)
        self._exports = exports

    def __getattr__(self, name: str):
        exports = self._exports
        submodule = exports.get(name, name)
        if name.startswith("__") or (name not in exports and not _has_source(self, name)):
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        module = importlib.import_module(f"{self.__name__}.{submodule}")
        return module if submodule == name else getattr(module, name)


def _has_source(package: types.ModuleType, name: str) -> bool:
    base = os.path.join(package.__path__[0], name)
    return os.path.isfile(base + ".py") or os.path.isdir(base)


class _PackageLoader(importlib.abc.Loader):
    def __init__(self, exports: dict[str, str]):
        self.exports = exports

    def create_module(self, spec):
        return _LazyPackage(spec.name, self.exports)

    def exec_module(self, module):
        module.__all__ = list(self.exports)


class HandinFinder(importlib.abc.MetaPathFinder):
    """Resolves the package under test (e.g. `mytorch...`, `models...`) to files under one root,
    bypassing __init__.py."""

    def __init__(self, root: str, package: dict):
        self.root = root
        self.top_level = tuple(package["top_level"])
        self.exports = package.get("exports", {})

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] not in self.top_level:
            return None
        base = os.path.join(self.root, *fullname.split("."))
        if os.path.isfile(base + ".py"):
            return importlib.util.spec_from_file_location(fullname, base + ".py")
        if os.path.isdir(base):
            loader = _PackageLoader(self.exports.get(fullname, {}))
            spec = importlib.machinery.ModuleSpec(fullname, loader, is_package=True)
            spec.submodule_search_locations = [base]
            return spec
        return None


def _top_levels() -> tuple[str, ...]:
    """The top-level names of the package(s) now under test."""
    return tuple(n for f in sys.meta_path if isinstance(f, HandinFinder) for n in f.top_level)


@contextlib.contextmanager
def package_under_test(root: str, package: dict):
    """Make PACKAGE's top-level names (e.g. `mytorch`, `models`) resolve to ROOT while the block
    runs, then forget them, so the reference and a student package can be used one after the other
    in one process."""
    top_level = tuple(package["top_level"])
    saved = {n: m for n, m in sys.modules.items() if n.split(".")[0] in top_level}
    for name in saved:
        del sys.modules[name]
    finder = HandinFinder(root, package)
    sys.meta_path.insert(0, finder)
    # Never read or write bytecode for the package: a .pyc could differ from the source shown.
    dont_write, prefix = sys.dont_write_bytecode, sys.pycache_prefix
    sys.dont_write_bytecode, sys.pycache_prefix = True, "/dev/null/no-bytecode"
    try:
        yield
    finally:
        sys.dont_write_bytecode, sys.pycache_prefix = dont_write, prefix
        sys.meta_path.remove(finder)
        for name in [n for n in sys.modules if n.split(".")[0] in top_level]:
            del sys.modules[name]
        sys.modules.update(saved)


def _short_repr(value) -> str:
    text = repr(value)
    return text if len(text) <= MAX_REPR_CHARS else text[:MAX_REPR_CHARS] + "..."


def _module_file(module: str) -> str:
    return module.replace(".", "/") + ".py"


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."


def _import_site(exc: BaseException) -> str:
    """Where in the package under test a failing import happened, e.g.
    " (in mytorch/nn/activation.py, line 3)": the error may come from a file the graded module
    imports (models/mlp.py importing activation.py), and the student needs to know which."""
    roots = [f.root for f in sys.meta_path if isinstance(f, HandinFinder)]
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        for root in roots:
            if frame.filename.startswith(root + os.sep):
                return f" (in {os.path.relpath(frame.filename, root)}, line {frame.lineno})"
    return ""


def _present(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def load_class(module: str | list[str], class_name: str):
    """Import MODULE from its own file and return CLASS_NAME, or raise a one-sentence StudentError.
    MODULE may list alternative places (a handout variant): the first one present is used."""
    if isinstance(module, list):
        module = next((m for m in module if _present(m)), module[0])
    path = _module_file(module)
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in _top_levels() and module.startswith(exc.name):
            raise StudentError(f"{path} is missing from your handin.") from None
        raise StudentError(_sentence(f"Importing {path} failed: {type(exc).__name__}: {exc}"
                                     f"{_import_site(exc)}")) from exc
    except SyntaxError as exc:
        where = os.path.basename(exc.filename or path)
        raise StudentError(f"{where} has a syntax error on line {exc.lineno}: {exc.msg}.") from None
    except Exception as exc:
        raise StudentError(_sentence(f"Importing {path} failed: {type(exc).__name__}: {exc}"
                                     f"{_import_site(exc)}")) from exc
    cls = getattr(mod, class_name, None)
    if not isinstance(cls, type):
        raise StudentError(f"{path} defines no class {class_name}.")
    return cls


_signatures: dict = {}


def _signature(func):
    """inspect.signature, computed once per function or class: it costs ~40 us a call, and a
    section calls the same few methods dozens of times. Bound methods share their function's
    entry (one for the bound form); the cache holds its keys alive, so ids are never reused."""
    key = (func.__func__, "bound") if inspect.ismethod(func) else (func, "plain")
    if key not in _signatures:
        try:
            _signatures[key] = inspect.signature(func)
        except (TypeError, ValueError):
            _signatures[key] = None
    return _signatures[key]


def _check_signature(func, args, kwargs, what: str) -> None:
    sig = _signature(func)
    if sig is None:
        return
    try:
        sig.bind(*args, **kwargs)
    except TypeError:
        shown = ", ".join(["…"] * len(args) + [f"{k}=…" for k in kwargs])
        raise StudentError(f"{what} cannot be called as {what}({shown}): its signature is "
                           f"{what}{sig}.") from None


@contextlib.contextmanager
def _forbidden_numpy(names):
    """Replace numpy functions the writeup forbids (np.tanh) with ones that raise."""
    saved = {name: getattr(np, name) for name in names}

    def make(name):
        def forbidden(*args, **kwargs):
            raise ForbiddenCall(f"np.{name}")
        return forbidden

    for name in names:
        setattr(np, name, make(name))
    try:
        yield
    finally:
        for name, func in saved.items():
            setattr(np, name, func)


def _describe(obj) -> str:
    """A one-line description of a container the student built (no multi-line array reprs)."""
    if isinstance(obj, (list, tuple, dict)):
        return f"a {type(obj).__name__} of length {len(obj)}"
    if isinstance(obj, np.ndarray):
        return f"an array of shape {obj.shape}"
    return " ".join(_short_repr(obj).split())


def _lookup(obj, attr_path: str, owner: str):
    """Follow "layers.0.dLdW" through attributes and list indices."""
    for part in attr_path.split("."):
        if part.isdigit():
            try:
                obj = obj[int(part)]
            except (TypeError, IndexError, KeyError):
                raise StudentError(f"{owner} has no item [{part}]: it is {_describe(obj)}.") from None
        else:
            if not hasattr(obj, part):
                raise StudentError(f"{owner} has no attribute {part!r}.")
            obj = getattr(obj, part)
        owner = f"{owner}.{part}" if not part.isdigit() else f"{owner}[{part}]"
    return obj


def _set_attr(obj, attr_path: str, value, owner: str):
    *parents, last = attr_path.split(".")
    target = _lookup(obj, ".".join(parents), owner) if parents else obj
    if last.isdigit():
        target[int(last)] = value
    else:
        setattr(target, last, value)


def _snapshot(value):
    """The value as it is now: a later in-place update by the code under test (`W -= lr * dLdW`
    in the next SGD step) must not change what an earlier step saved."""
    return np.array(value, copy=True) if isinstance(value, np.ndarray) else value


class TestRun:
    """Executes one test's steps; keeps variables and saved outputs."""

    def __init__(self, inputs):
        self.inputs = inputs
        self.vars: dict[str, object] = {}
        self.labels: dict[str, str] = {}
        self.saved: dict[str, object] = {}

    def value(self, spec):
        if isinstance(spec, dict) and "array" in spec:
            return np.array(self.inputs[spec["array"]], copy=True)
        if isinstance(spec, dict) and "var" in spec:
            return self.vars[spec["var"]]
        if isinstance(spec, list):
            return [self.value(v) for v in spec]
        return spec

    def step(self, step: dict) -> None:
        op = step["op"]
        var = step["var"]
        if op == "new":
            cls = load_class(step["module"], step["class"])
            args = self.value(step.get("args", []))
            kwargs = {k: self.value(v) for k, v in step.get("kwargs", {}).items()}
            _check_signature(cls, args, kwargs, cls.__name__)
            self.vars[var] = cls(*args, **kwargs)
            self.labels[var] = cls.__name__
        elif op == "object":
            self.vars[var] = types.SimpleNamespace()  # a stand-in, e.g. a model for SGD
            self.labels[var] = var
        elif op == "set":
            _set_attr(self.vars[var], step["attr"], self.value(step["value"]), self.labels[var])
        elif op == "get":
            self.saved[step["save"]] = _snapshot(_lookup(self.vars[var], step["attr"], self.labels[var]))
        elif op == "call":
            self._call(step)
        else:
            raise ValueError(f"unknown step {op!r}")

    def _call(self, step: dict) -> None:
        obj, label = self.vars[step["var"]], self.labels[step["var"]]
        name = f"{label}.{step['method']}"
        method = getattr(obj, step["method"], None)
        if not callable(method):
            raise StudentError(f"{label} has no method {step['method']}().")
        args = self.value(step.get("args", []))
        kwargs = {k: self.value(v) for k, v in step.get("kwargs", {}).items()}
        _check_signature(method, args, kwargs, name)
        forbidden = step.get("forbid", [])
        try:
            with _forbidden_numpy(forbidden):
                result = method(*args, **kwargs)
        except ForbiddenCall as exc:
            raise StudentError(f"{name} calls {exc}, which the writeup does not allow here; "
                               f"compute it from exponentials instead.") from None
        if "save" in step:
            self.saved[step["save"]] = _snapshot(result)


def _last_student_frame(exc: BaseException, roots: tuple[str, ...]) -> dict | None:
    """{"path", "line"} of the deepest frame in the package under test (where it went wrong)."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        for root in roots:
            if frame.filename.startswith(root + os.sep):
                return {"path": os.path.relpath(frame.filename, root), "line": frame.lineno}
    return None


def _student_traceback(exc: BaseException, roots: tuple[str, ...]) -> str:
    """The exception with only the frames from the package under test, paths made relative."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if any(f.filename.startswith(root + os.sep) for root in roots)]
    lines = []
    for frame in frames:
        path = frame.filename
        for root in roots:
            if path.startswith(root + os.sep):
                path = os.path.relpath(path, root)
        lines.append(f'  File "{path}", line {frame.lineno}, in {frame.name}')
        if frame.line:
            lines.append(f"    {frame.line}")
    head = "Traceback (your code only):\n" if lines else ""
    return head + "\n".join(lines) + ("\n" if lines else "") + \
        "".join(traceback.format_exception_only(type(exc), exc)).strip()


def as_array(value):
    """Turn a saved value into a plain numeric array, or return a sentence saying why not."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return value, None
    if value is None or isinstance(value, (str, bytes, dict, types.FunctionType)):
        return None, f"is {_short_repr(value)} ({type(value).__name__}), not a numeric array"
    try:
        array = np.asarray(value)
    except Exception:  # noqa: BLE001 - student objects may raise anything from __array__
        return None, f"is a {type(value).__name__}, not a numeric array"
    if array.dtype.kind not in "biuf":
        return None, f"is a {type(value).__name__} that is not a numeric array ({_short_repr(value)})"
    return array, None


def run_test(test: dict, inputs, roots: tuple[str, ...]) -> tuple[dict, dict]:
    """Run one test. Returns (arrays by save name, report entry)."""
    run = TestRun(inputs)
    report: dict = {"name": test["name"], "error": None, "bad_values": {}}
    np.random.seed(0)  # a handin that draws random numbers behaves the same on every run
    try:
        for step in test["steps"]:
            run.step(step)
    except StudentError as exc:
        report["error"] = str(exc)
    except RecursionError:
        report["error"] = "RecursionError: maximum recursion depth exceeded."
    except Exception as exc:  # noqa: BLE001 - whatever the student's code raises is reported, not fatal
        report["error"] = _student_traceback(exc, roots)
        report["location"] = _last_student_frame(exc, roots)
    arrays = {}
    for name, value in run.saved.items():
        array, problem = as_array(value)
        if problem:
            report["bad_values"][name] = problem
        else:
            arrays[name] = array
    return arrays, report


def run_section(section: dict, inputs, package_root: str, package: dict) -> tuple[dict, list[dict]]:
    """Run every test of SECTION against the package at PACKAGE_ROOT (PACKAGE: the plans'
    "package", its top-level names and exports).

    Returns ({"TEST_INDEX/NAME": array}, [report per test])."""
    root = os.path.realpath(package_root)
    with package_under_test(root, package):
        return run_tests(section, inputs, (root, package_root))


def run_tests(section: dict, inputs, roots: tuple[str, ...]) -> tuple[dict, list[dict]]:
    """Run every test of SECTION against the package under test as it resolves now
    (ROOTS: where its files live, for tracebacks)."""
    arrays, reports = {}, []
    for index, test in enumerate(section["tests"]):
        test_arrays, report = run_test(test, inputs, roots)
        arrays.update({f"{index}/{name}": value for name, value in test_arrays.items()})
        reports.append(report)
    return arrays, reports


def main(argv: list[str]) -> int:
    plans_path, inputs_path, handin_dir, out_dir, section_index = argv
    with open(plans_path) as f:
        plans = json.load(f)
    section = plans["sections"][int(section_index)]
    # Only this section's arrays (keys "SECTION.TEST.NAME", grader/plan.py): reading all of them
    # cost each section as much as running its tests.
    prefix = f"{int(section_index)}."
    with np.load(inputs_path, allow_pickle=False) as npz:
        inputs = {key: npz[key] for key in npz.files if key.startswith(prefix)}
    arrays, reports = run_section(section, inputs, handin_dir, plans["package"])
    np.savez(os.path.join(out_dir, "outputs.npz"), **arrays)
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump({"tests": reports}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
