"""Execute a section's test plans against one MyTorch package and record the raw outputs.

This file runs inside the sandbox (as a script) and, for the reference solution, in the trusted
process (imported). It must import only the standard library and numpy. It never sees expected
values and never decides a score: it writes what the code under test produced, and the trusted
side compares.

The plans say which package is under test: {"package": {"top_level": ["mytorch", "models"],
"exports": {"mytorch.nn": {"Linear": "linear", ...}, ...}}, "sections": [...]}. The exports are what
each package's __init__.py exports in the handout; names resolve lazily from the file that defines
them, so a broken or outdated __init__.py (S25 had no Swish) cannot cost a section that does not
need it. A name neither exported nor a file of the package (`from mytorch.nn import Module`,
exported by the student's own __init__.py from a helper file) is looked up as Python would: the
package's own __init__.py runs then, in that section's process, once; if it fails, only what
needs that name fails.
"new" and "call" steps may carry "kwargs": arguments passed by name, as the official script passes
them (`Linear(2, 3, debug=True)`); a signature without that name is told so.

A section is a list of tests, each a list of steps.
    {"op": "new",   "var": "lin", "module": "mytorch.nn.linear", "class": "Linear", "args": [2, 3]}
                    # "module" may be a list of places the class may live: the first present wins
    {"op": "object", "var": "l0", "name": "model.layers[0]", "holds": "..."}  # a stand-in object
    {"op": "set",   "var": "lin", "attr": "W", "value": {"array": "W"}}
    {"op": "call",  "var": "lin", "method": "forward", "args": [{"array": "A"}], "save": "Z",
                    "forbid": ["tanh"]}                           # np.tanh raises while it runs
    {"op": "get",   "var": "lin", "attr": "layers.0.dLdW", "save": "dLdW0"}
                    # may carry "hint": a sentence added when the attribute cannot be reached
"call" and "get" steps may carry "summarize": true: the value is saved as `summarize(value)` and its
shape as SAVE.shape (for arrays too large to send back whole).
"new" and "call" steps may carry "expects" (the writeup's signature, named in the message when the
call does not fit); a "new" step may carry "or_pass_to": ["forward", "backward"], meaning the arguments go to
that method instead when the constructor takes none (Swish(beta) or Swish().forward(Z, beta)).
Argument values: JSON literals, {"array": KEY} (a fresh copy of an input array), {"var": NAME},
{"saved": NAME} (a copy of a value an earlier step of the test saved, e.g. backward(forward's output)),
or {"init": "normal" | "zeros" | "ones" | {"array": KEY}}: a function such as a handout's
weight_init_fn, which returns an array of the shape it is called with (N(0, 1) draws, zeros, ones) or
a fresh copy of input KEY whatever it is called with.

The package may also name "flat" folders (HW2P1's handout puts mytorch/, mytorch/nn/ and models/ on
sys.path, so its files import each other as `from resampling import *`): a top-level name that no
installed module has resolves to FOLDER/NAME.py (or to the folder FOLDER/NAME, as a package), the
first folder that has it.

Command line (inside the sandbox): runner.py PLANS_JSON INPUTS_BIN HANDIN_DIR OUT_DIR SECTION_INDEX [WALL_SECONDS]
(INPUTS_BIN: the raw input arrays the plans' "arrays" index; see `unpack_arrays`).
Writes OUT_DIR/outputs.safetensors (arrays keyed "TEST_INDEX/SAVE_NAME") and OUT_DIR/report.json.
"""

from __future__ import annotations

import contextlib
import enum
import gc
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import json
import linecache
import mmap
import os
import re
import signal
import sys
import traceback
import types

import numpy as np

MAX_REPR_CHARS = 300


class StudentError(Exception):
    """A problem with the code under test, already phrased for the student."""


class ImportFailure(StudentError):
    """The file a test needs (or one it imports) is missing or cannot be imported: every test of
    the section that needs it fails the same way, so the trusted side says it once per section.
    LOCATION: {"path", "line"} of the offending line in the handin, when there is one."""

    def __init__(self, message: str, location: dict | None = None):
        super().__init__(message)
        self.location = location


class ForbiddenCall(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# Importing the package under test


class _OwnInit(enum.Enum):
    """Where a package's own __init__.py stands: it runs at most once, and only on demand."""
    NOT_RUN = "not run"
    RUNNING = "running"
    RAN = "ran"
    FAILED = "failed"


class _LazyPackage(types.ModuleType):
    """A package module that imports a submodule only when one of its names is first used, and
    runs the package's own __init__.py only for a name nothing else provides."""

    def __init__(self, name: str, exports: dict[str, str]):
        super().__init__(name)
        self._exports = exports
        self._own_init = _OwnInit.NOT_RUN
        self._own_init_error: ImportError | None = None

    def __getattr__(self, name: str):
        if name.startswith(("__", "_own_init")):
            raise AttributeError(name)
        exports = self._exports
        if name in exports or _has_source(self, name):
            submodule = exports.get(name, name)
            module = importlib.import_module(f"{self.__name__}.{submodule}")
            return module if submodule == name else getattr(module, name)
        if self._run_own_init() and name in self.__dict__:
            return self.__dict__[name]
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")

    def _run_own_init(self) -> bool:
        """Run the handin's own __init__.py in this module's namespace, as Python would have on
        import. True once it ran; a failure is raised (as ImportError) to every name that needs it."""
        if self._own_init is _OwnInit.NOT_RUN:
            path = os.path.join(self.__path__[0], "__init__.py")
            if not os.path.isfile(path):
                return False
            self._own_init = _OwnInit.RUNNING
            try:
                with open(path, "rb") as f:
                    code = compile(f.read(), path, "exec", dont_inherit=True)
                exec(code, self.__dict__)  # noqa: S102 - the handin's own __init__.py, in the sandbox
            except Exception as exc:  # noqa: BLE001 - whatever it raises is the student's to read
                self._own_init = _OwnInit.FAILED
                where = _handin_path(path) or path
                self._own_init_error = ImportError(
                    f"{where} (run because a graded file needs a name only it provides) failed: "
                    f"{type(exc).__name__}: {_import_error_text(exc)}")
                self._own_init_error.__traceback__ = exc.__traceback__
            else:
                self._own_init = _OwnInit.RAN
        if self._own_init is _OwnInit.FAILED:
            raise self._own_init_error
        return self._own_init is _OwnInit.RAN


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
            return importlib.util.spec_from_file_location(fullname, base + ".py",
                                                          loader=importlib.machinery.SourceFileLoader(fullname, base + ".py"))
        if os.path.isdir(base):
            loader = _PackageLoader(self.exports.get(fullname, {}))
            spec = importlib.machinery.ModuleSpec(fullname, loader, is_package=True)
            spec.submodule_search_locations = [base]
            return spec
        return None


class FlatFinder(importlib.abc.MetaPathFinder):
    """Resolves a plain top-level name (`resampling`) to ROOT/FOLDER/NAME.py for the package's
    "flat" folders. It sits after the path finders, so the standard library and installed packages
    win, as they do over folders a script appends to sys.path."""

    def __init__(self, root: str, folders: list[str]):
        self.root = root
        self.folders = folders
        self.loaded: set[str] = set()

    def find_spec(self, fullname, path=None, target=None):
        if "." in fullname:
            return None
        for folder in self.folders:
            base = os.path.join(self.root, folder, fullname)
            if os.path.isfile(base + ".py"):
                self.loaded.add(fullname)
                loader = importlib.machinery.SourceFileLoader(fullname, base + ".py")
                return importlib.util.spec_from_file_location(fullname, base + ".py", loader=loader)
            if os.path.isdir(base):  # `from nn.resampling import *` with mytorch/ on the path
                self.loaded.add(fullname)
                spec = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
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
    flat = FlatFinder(root, package.get("flat", []))
    sys.meta_path.append(flat)
    # Never read or write bytecode for the package: a .pyc could differ from the source shown.
    dont_write, prefix = sys.dont_write_bytecode, sys.pycache_prefix
    sys.dont_write_bytecode, sys.pycache_prefix = True, "/dev/null/no-bytecode"
    try:
        yield
    finally:
        sys.dont_write_bytecode, sys.pycache_prefix = dont_write, prefix
        sys.meta_path.remove(finder)
        sys.meta_path.remove(flat)
        for name in [n for n in sys.modules if n.split(".")[0] in top_level or n.split(".")[0] in flat.loaded]:
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


def _handin_path(filename: str | None) -> str | None:
    """FILENAME relative to the package under test, or None when it is not one of its files."""
    for root in (f.root for f in sys.meta_path if isinstance(f, HandinFinder)):
        if filename and filename.startswith(root + os.sep):
            return os.path.relpath(filename, root)
    return None


def _pointed_line(text: str | None, start: int | None, end: int | None) -> str:
    """The offending line of code, indented, and a caret under the offending part (START and
    END are 1-based columns, END exclusive), e.g. "    import helpers\n    ^^^^^^^^^^^^^^"."""
    if not text or not text.strip():
        return ""
    line = text.rstrip("\n").expandtabs(4)
    indent = len(line) - len(line.lstrip())
    line = line.strip()
    first = max(0, (start or 1) - 1 - indent)
    width = max(1, (end or 0) - (start or 1)) if end and start and end > start else 1
    return f"\n    {line}\n    {' ' * min(first, len(line))}{'^' * min(width, max(1, len(line) - first))}"


def _import_failure(path: str, exc: BaseException) -> ImportFailure:
    """One message for a file that cannot be imported: the file, the line, the line itself and a
    caret, and which graded file imported it when that is another one."""
    if isinstance(exc, SyntaxError):
        where = _handin_path(exc.filename) or path
        via = "" if where == path else f" (imported while loading {path})"
        head = f"{where} has a syntax error on line {exc.lineno}: {exc.msg}{via}."
        location = {"path": where, "line": exc.lineno} if _handin_path(exc.filename) and exc.lineno else None
        return ImportFailure(head + _pointed_line(exc.text, exc.offset, exc.end_offset), location)
    head = _sentence(f"Importing {path} failed: {type(exc).__name__}: {_import_error_text(exc)}{_import_site(exc)}")
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _handin_path(f.filename)]
    if not frames:
        return ImportFailure(head)
    frame = frames[-1]
    start = None if frame.colno is None else frame.colno + 1
    end = None if frame.end_colno is None else frame.end_colno + 1
    return ImportFailure(head + _pointed_line(frame.line and _source_line(frame), start, end),
                         {"path": _handin_path(frame.filename), "line": frame.lineno})


_CANNOT_IMPORT = re.compile(r"cannot import name '([^']+)' from '([^']+)'(?: \(.*\))?$")


def _import_error_text(exc: BaseException) -> str:
    """EXC's text, with Python's "cannot import name X from P (unknown location)" (or an absolute
    sandbox path) replaced by what P is missing, as a file of the handin."""
    match = _CANNOT_IMPORT.match(str(exc)) if isinstance(exc, ImportError) else None
    if not match:
        return str(exc)
    name, package = match.groups()
    module = sys.modules.get(package)
    if isinstance(module, _LazyPackage):
        folder = package.replace(".", "/")
        own = os.path.join(module.__path__[0], "__init__.py")
        ran = ("does not define it either" if os.path.isfile(own)
               else "does not exist (so nothing else could provide it)")
        return (f"cannot import name {name!r} from {package}: the handout's {folder}/__init__.py does not "
                f"export it, there is no {folder}/{name}.py, and your own {folder}/__init__.py {ran}")
    where = _handin_path(getattr(module, "__file__", None))
    return f"cannot import name {name!r} from {package}" + (f" ({where} does not define it)" if where else "")


def _source_line(frame: traceback.FrameSummary) -> str:
    """The frame's line as written (FrameSummary.line is stripped, the columns are not)."""
    return linecache.getline(frame.filename, frame.lineno) or frame.line


def load_class(module: str | list[str], class_name: str):
    """Import MODULE from its own file and return CLASS_NAME, or raise a StudentError (an
    ImportFailure when the file is missing or cannot be imported). MODULE may list alternative
    places (a handout variant): the first one present is used."""
    if isinstance(module, list):
        module = next((m for m in module if _present(m)), module[0])
    path = _module_file(module)
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in _top_levels() and module.startswith(exc.name):
            raise ImportFailure(f"{path} is missing from your handin.") from None
        raise _import_failure(path, exc) from None
    except Exception as exc:  # noqa: BLE001 - SyntaxError included: anything the module does at import time
        raise _import_failure(path, exc) from None
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


def _accepts(func, args, kwargs) -> bool:
    sig = _signature(func)
    if sig is None:
        return True
    try:
        sig.bind(*args, **kwargs)
    except TypeError:
        return False
    return True


def _check_signature(func, args, kwargs, what: str, expects: str | None = None) -> None:
    """Raise a StudentError naming every parameter the writeup expects (EXPECTS, e.g.
    "Linear(in_features, out_features, debug=False)") when FUNC cannot take ARGS."""
    if _accepts(func, args, kwargs):
        return
    shown = ", ".join(["…"] * len(args) + [f"{k}={_short_repr(v)}" for k, v in kwargs.items()])
    writeup = f"the writeup's signature is {expects}, yours is " if expects else "its signature is "
    unnamed = _names_not_taken(func, kwargs)
    if unnamed:
        names = " and ".join(repr(n) for n in unnamed)
        official = f" (the writeup's signature is {expects})" if expects else ""
        raise StudentError(f"{what} cannot be called as {what}({shown}), as the official script calls it: it "
                           f"passes {names} by name, and your {what}{_signature(func)} has no parameter of "
                           f"that name{official}.")
    raise StudentError(f"{what} cannot be called as {what}({shown}): {writeup}{what}{_signature(func)}.")


def _names_not_taken(func, kwargs) -> list[str]:
    """The keyword arguments FUNC has no parameter for (none when it takes **kwargs)."""
    sig = _signature(func)
    if sig is None or any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return []
    return [name for name in kwargs if name not in sig.parameters
            or sig.parameters[name].kind is inspect.Parameter.POSITIONAL_ONLY]


# numpy's namespace as it was before any code under test ran: what "np.tanh" means is decided here.
_NUMPY_AS_LOADED = dict(vars(np))


class _Forbidden:
    """What a forbidden numpy function is while a step that forbids it runs: calling it raises."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *args, **kwargs):
        raise ForbiddenCall(f"np.{self.name}")

    def __getattr__(self, attr: str):   # np.tanh.reduce, np.tanh.at, ...: the same function
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise ForbiddenCall(f"np.{self.name}")


class _Swap:
    """One place that held the forbidden function: HOLDER[KEY] (a dict or list), a closure cell
    (KEY None) or a function's defaults (KEY "__defaults__"), and what was there before."""

    __slots__ = ("holder", "key", "new", "old")

    def __init__(self, holder, key, old, new):
        self.holder, self.key, self.old, self.new = holder, key, old, new

    def put(self, value) -> None:
        if isinstance(self.holder, types.CellType):
            self.holder.cell_contents = value
        elif self.key == "__defaults__" and isinstance(self.holder, types.FunctionType):
            self.holder.__defaults__ = value
        else:
            self.holder[self.key] = value

    def current(self):
        if isinstance(self.holder, types.CellType):
            return self.holder.cell_contents
        if self.key == "__defaults__" and isinstance(self.holder, types.FunctionType):
            return self.holder.__defaults__
        try:
            return self.holder[self.key]
        except (IndexError, KeyError):
            return None


def _swap_everywhere(original, stand_in, keep: set[int]) -> list[_Swap]:
    """Put STAND_IN wherever Python code can reach ORIGINAL: every module's namespace (np.tanh,
    `from numpy import tanh`, numpy._core.umath.tanh), class and instance attributes, dict values,
    list items, closure cells, default arguments, and tuples held in any of those (replaced whole).
    KEEP: ids of the caller's own containers, left alone. Returns the swaps, for `_restore`."""
    swaps: list[_Swap] = []
    pending: list[_Swap] = [_Swap(None, None, original, stand_in)]
    keep = keep | {id(swaps), id(pending), id(_NUMPY_AS_LOADED)}
    frozen = gc.get_freeze_count()
    if frozen:   # the sandbox's init froze what it preloaded (numpy's modules): get_referrers skips it
        gc.unfreeze()
    try:
        _find_holders(pending, swaps, keep)
    finally:
        if frozen:
            gc.freeze()
    for swap in swaps:
        swap.put(swap.new)
    sys._clear_type_cache()   # class attributes were written in their dicts directly
    return swaps


def _find_holders(pending: list[_Swap], swaps: list[_Swap], keep: set[int]) -> None:
    """`_swap_everywhere`'s search: PENDING (objects to replace, tuples added as they are found)
    becomes SWAPS (where each is held)."""
    done = 0
    while done < len(pending) and done < 64:
        old, new = pending[done].old, pending[done].new
        done += 1
        for holder in gc.get_referrers(old):
            if id(holder) in keep or isinstance(holder, (types.FrameType, _Swap)):
                continue
            keep.add(id(holder))
            if isinstance(holder, (dict, list)):
                keys = holder.keys() if isinstance(holder, dict) else range(len(holder))
                swaps += [_Swap(holder, key, old, new) for key in list(keys) if holder[key] is old]
            elif isinstance(holder, types.CellType):
                swaps.append(_Swap(holder, None, old, new))
            elif isinstance(holder, types.FunctionType) and holder.__defaults__ is old:
                swaps.append(_Swap(holder, "__defaults__", old, new))
            elif isinstance(holder, tuple):   # immutable: a copy replaces it where it is held
                pending.append(_Swap(None, None, holder, tuple(new if v is old else v for v in holder)))
            elif not isinstance(holder, type):   # an instance whose attributes live in the object
                try:
                    namespace = object.__getattribute__(holder, "__dict__")
                except (AttributeError, TypeError):
                    continue
                if isinstance(namespace, dict):
                    swaps += [_Swap(namespace, key, old, new) for key, v in list(namespace.items()) if v is old]


def _restore(swaps: list[_Swap]) -> None:
    """Undo `_swap_everywhere` wherever the stand-in is still in place."""
    for swap in reversed(swaps):
        if swap.current() is swap.new:
            swap.put(swap.old)
    sys._clear_type_cache()


@contextlib.contextmanager
def _forbidden_numpy(names, every_alias: bool = True):
    """Make the numpy functions the writeup forbids (np.tanh) raise while the block runs.

    With EVERY_ALIAS, the function as numpy was loaded (before any code under test) is replaced
    by one that raises wherever `_swap_everywhere` finds it, so another name for it (`from numpy
    import tanh`, numpy._core.umath.tanh, a stored reference) is banned too. Not covered: a local
    variable of a suspended generator, tanh computed without that ufunc (math.tanh, scipy, ctypes
    into libm), and code that deliberately takes the grader apart (patching this module, which
    only its own section's files can do: each section runs in its own process). Without it (the
    trusted reference, which never calls np.tanh), only the numpy attribute is replaced."""
    swaps: list[_Swap] = []
    saved = {name: getattr(np, name) for name in names}
    try:
        for name in names:
            original = _NUMPY_AS_LOADED.get(name, saved[name])
            if every_alias:
                swaps += _swap_everywhere(original, _Forbidden(name), keep={id(saved), id(swaps)})
            setattr(np, name, _Forbidden(name))
        yield
    finally:
        _restore(swaps)
        for name, func in saved.items():
            setattr(np, name, func)


def _describe(obj) -> str:
    """A one-line description of a container the student built (no multi-line array reprs)."""
    if (isinstance(obj, (list, tuple)) and 0 < len(obj) <= 12
            and not all(isinstance(item, (np.ndarray, int, float)) for item in obj)):  # objects: name them
        held = ", ".join(type(item).__name__ for item in obj)
        return f"a {type(obj).__name__} of length {len(obj)} holding {held}"
    if isinstance(obj, (list, tuple, dict)):
        return f"a {type(obj).__name__} of length {len(obj)}"
    if isinstance(obj, np.ndarray):
        return f"an array of shape {obj.shape}"
    return " ".join(_short_repr(obj).split())


def _lookup(obj, attr_path: str, owner: str):
    """Follow "layers.0.dLdW" through attributes and list indices."""
    for part in attr_path.split("."):
        if part.isdigit():
            if obj is None:
                raise StudentError(f"{owner} is None, so it has no item [{part}]: the list was never "
                                   f"built{_where_to_build(owner)}.")
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


def _where_to_build(owner: str) -> str:
    """" (build self.layers in MLP1.__init__)" for "MLP1.layers"."""
    cls, _, attr = owner.partition(".")
    return f" (build self.{attr} in {cls}.__init__)" if attr == "layers" else ""


class StandIn:
    """A plain object the grader fills in, e.g. a layer holding only W, b, dLdW and dLdb for SGD.
    Asking it for anything else says what it is and what it holds, instead of leaking an internal
    type name ("'types.SimpleNamespace' object has no attribute 'backward'")."""

    def __init__(self, name: str, holds: str):
        object.__setattr__(self, "_stand_in", (name, holds))

    def __getattr__(self, attr: str):
        name, holds = object.__getattribute__(self, "_stand_in")
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise AttributeError(f"{name} has no attribute {attr!r}: {holds}")

    def __repr__(self) -> str:
        return f"<grader stand-in {object.__getattribute__(self, '_stand_in')[0]}>"


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


def summarize(value):
    """A large array (HW2P1's 4-d outputs run to millions of values, beyond what a run may write)
    as a short one that still tells nearly every wrong array from the right one: for each leading
    index, the sums along the last axis, along the one before it, and one sum weighted by a fixed
    pattern. Reference and handin are summarized alike. Anything but a 2-d or larger numeric
    array is kept as it is (the comparison then says what is wrong with it)."""
    if not isinstance(value, np.ndarray) or value.ndim < 2 or value.dtype.kind not in "biuf":
        return value
    rows, cols = value.shape[-2:]
    row_weights, col_weights = np.arange(rows) * 31 % 7 - 3.0, np.arange(cols) * 17 % 5 - 2.0
    return np.concatenate([value.sum(axis=-1).ravel(), value.sum(axis=-2).ravel(),
                           ((value @ col_weights) @ row_weights).ravel()])


def _initializer(kind, inputs):
    """A function like a handout's weight_init_fn / bias_init_fn (see the module docstring)."""
    if isinstance(kind, dict):
        return lambda *args, **kwargs: np.array(inputs[kind["array"]], copy=True)
    draw = {"normal": lambda shape: np.random.normal(0, 1.0, shape), "zeros": np.zeros, "ones": np.ones}[kind]
    return lambda *shape: draw(shape)


class TestRun:
    """Executes one test's steps; keeps variables and saved outputs."""

    def __init__(self, inputs, trusted: bool = False):
        self.inputs = inputs
        self.trusted = trusted   # the reference: a forbidden function is replaced in numpy only
        self.vars: dict[str, object] = {}
        self.labels: dict[str, str] = {}
        self.saved: dict[str, object] = {}
        self.raw: dict[str, object] = {}    # what was saved, as the code under test returned it
        self.passed_on: dict[str, tuple[list, list]] = {}  # var -> (methods, extra arguments)

    def value(self, spec):
        if isinstance(spec, dict) and "array" in spec:
            return np.array(self.inputs[spec["array"]], copy=True)
        if isinstance(spec, dict) and "var" in spec:
            return self.vars[spec["var"]]
        if isinstance(spec, dict) and "saved" in spec:
            return _snapshot(self.raw[spec["saved"]])
        if isinstance(spec, dict) and "init" in spec:
            return _initializer(spec["init"], self.inputs)
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
            if step.get("or_pass_to") and args and not _accepts(cls, args, kwargs):
                # The writeup's other form: Swish(beta) or, with a constructor taking no
                # argument, Swish().forward(Z, beta).
                self.passed_on[var] = (step["or_pass_to"], args)
                args = []
            _check_signature(cls, args, kwargs, cls.__name__, step.get("expects"))
            self.vars[var] = cls(*args, **kwargs)
            self.labels[var] = cls.__name__
        elif op == "object":
            self.vars[var] = StandIn(step.get("name", var), step.get("holds", ""))
            self.labels[var] = step.get("name", var)
        elif op == "set":
            _set_attr(self.vars[var], step["attr"], self.value(step["value"]), self.labels[var])
        elif op == "get":
            try:
                value = _lookup(self.vars[var], step["attr"], self.labels[var])
            except StudentError as exc:   # "hint": how the container must be built, from the plans
                raise StudentError(" ".join(filter(None, (str(exc), step.get("hint"))))) from None
            self._save(step, value)
        elif op == "call":
            self._call(step)
        else:
            raise ValueError(f"unknown step {op!r}")

    def _call(self, step: dict) -> None:
        obj, label = self.vars[step["var"]], self.labels[step["var"]]
        name = f"{label}.{step['method']}"
        method = getattr(obj, step["method"], None)
        if not callable(method):
            if step["method"] == "__call__":
                raise StudentError(f"{label} cannot be called as {label}(...): it has no __call__ method "
                                   f"(the official script calls the object itself).")
            raise StudentError(f"{label} has no method {step['method']}().")
        args = self.value(step.get("args", []))
        kwargs = {k: self.value(v) for k, v in step.get("kwargs", {}).items()}
        passed_on, extra = self.passed_on.get(step["var"], ([], []))
        if step["method"] in passed_on and _accepts(method, args + extra, kwargs):
            args = args + extra  # e.g. backward(dLdA, beta), as the writeup writes it
        _check_signature(method, args, kwargs, name, step.get("expects"))
        forbidden = step.get("forbid")
        try:
            if forbidden:
                with _forbidden_numpy(forbidden, every_alias=not self.trusted):
                    result = method(*args, **kwargs)
            else:
                result = method(*args, **kwargs)
        except ForbiddenCall as exc:
            raise StudentError(f"{name} calls {exc}, which the writeup does not allow here; "
                               f"compute it from exponentials instead.") from None
        if "save" in step:
            self._save(step, result)

    def _save(self, step: dict, value) -> None:
        """Keep VALUE under the step's save name; "summarize": keep its shape and its sums instead."""
        self.raw[step["save"]] = value
        if step.get("summarize"):
            self.saved[step["save"] + ".shape"] = np.array(np.shape(value)) if isinstance(value, np.ndarray) else value
            value = summarize(value)
        self.saved[step["save"]] = _snapshot(value)


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


def _skeleton_message(exc: BaseException) -> str | None:
    """A sentence for a method that is still the handout's stub: the skeleton raises the
    NotImplemented constant ("TypeError: exceptions must derive from BaseException") or
    NotImplementedError."""
    if isinstance(exc, TypeError) and str(exc) == "exceptions must derive from BaseException":
        raised = "NotImplemented"
    elif isinstance(exc, NotImplementedError):
        raised = "NotImplementedError"
    else:
        return None
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None or _handin_path(tb.tb_frame.f_code.co_filename) is None:
        return None
    path = _handin_path(tb.tb_frame.f_code.co_filename)
    code = tb.tb_frame.f_code
    if raised == "NotImplemented" and "NotImplemented" not in (_line_at(code.co_filename, tb.tb_lineno)):
        return None
    return (f"{code.co_qualname} in {path} is still the unimplemented skeleton: line {tb.tb_lineno} "
            f"raises {raised}. Implement it as the writeup describes.")


def _line_at(filename: str, lineno: int) -> str:
    return linecache.getline(filename, lineno)


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


def run_test(test: dict, inputs, roots: tuple[str, ...], trusted: bool = False) -> tuple[dict, dict]:
    """Run one test. Returns (arrays by save name, report entry)."""
    run = TestRun(inputs, trusted)
    report: dict = {"name": test["name"], "error": None, "bad_values": {}}
    np.random.seed(0)  # a handin that draws random numbers behaves the same on every run
    try:
        for step in test["steps"]:
            run.step(step)
    except StudentError as exc:
        report["error"] = str(exc)
        if isinstance(exc, ImportFailure):
            report["kind"] = "import"
            report["location"] = exc.location
    except RecursionError:
        report["error"] = "RecursionError: maximum recursion depth exceeded."
    except Exception as exc:  # noqa: BLE001 - whatever the student's code raises is reported, not fatal
        report["error"] = _skeleton_message(exc) or _student_traceback(exc, roots)
        report["location"] = _last_student_frame(exc, roots)
    arrays = {}
    for name, value in run.saved.items():
        array, problem = as_array(value)
        if problem:
            report["bad_values"][name] = problem
        else:
            arrays[name] = array
    return arrays, report


def run_section(section: dict, inputs, package_root: str, package: dict,
                watch_into: str | None = None, wall_seconds: float | None = None) -> tuple[dict, list[dict]]:
    """Run every test of SECTION against the package at PACKAGE_ROOT (PACKAGE: the plans'
    "package", its top-level names and exports). WATCH_INTO: the output folder where a time
    limit's report goes (see _TimeLimitWatch), WALL_SECONDS the wall-clock limit it runs under.

    Returns ({"TEST_INDEX/NAME": array}, [report per test])."""
    root = os.path.realpath(package_root)
    watch = _TimeLimitWatch(section, watch_into, (root, package_root), wall_seconds) if watch_into else None
    try:
        with package_under_test(root, package):
            return run_tests(section, inputs, (root, package_root), watch=watch)
    finally:
        if watch:
            watch.disarm()


class _TimeLimitWatch:
    """Writes the report of a section the time limit is about to stop: the tests done so far, the
    one running (with the student's stack at that moment) and those not reached. SIGXCPU comes at
    the soft CPU limit (RLIMIT_CPU, the hard kill a second later); SIGALRM a little before the
    wall-clock kill. The handler runs between bytecodes, so a hang in one long C call still ends
    with no report (the trusted side then says only that the time ran out). What it writes is as
    untrusted as any report: the trusted side only shows it, and the section scores 0 anyway."""

    def __init__(self, section: dict, out_dir: str, roots: tuple[str, ...], wall_seconds: float | None):
        self.section, self.out_dir, self.roots = section, out_dir, roots
        self.arrays: dict = {}
        self.reports: list[dict] = []
        signal.signal(signal.SIGXCPU, self._fire)
        if wall_seconds:
            signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, max(0.5, wall_seconds - min(2.0, wall_seconds / 10)))

    def disarm(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        signal.signal(signal.SIGXCPU, signal.SIG_DFL)

    def _fire(self, signum, frame) -> None:
        self.disarm()
        tests = self.section["tests"]
        running = len(self.reports)
        stack = _student_stack(frame, self.roots)
        reports = list(self.reports)
        if running < len(tests):
            reports.append({"name": tests[running]["name"], "error": None, "bad_values": {}, "kind": "time_limit",
                            "stack": stack, "location": ({"path": stack[-1]["path"], "line": stack[-1]["line"]}
                                                         if stack else None)})
            reports += [{"name": t["name"], "error": None, "bad_values": {}, "kind": "not_reached"}
                        for t in tests[running + 1:]]
        write_arrays(os.path.join(self.out_dir, "outputs.safetensors"), self.arrays)
        with open(os.path.join(self.out_dir, "report.json"), "w") as f:
            json.dump({"tests": reports}, f)
        if signum == signal.SIGXCPU:   # die of it as before, so the sandbox tells the CPU limit
            os.kill(os.getpid(), signal.SIGXCPU)
        # SIGALRM: let the code run on; the wall-clock kill follows (or it finishes and says so)


MAX_STACK_FRAMES = 20


def _student_stack(frame, roots: tuple[str, ...]) -> list[dict]:
    """The frames of FRAME's stack in the package under test, outermost first (the last is where
    the code was): [{"path", "line", "function", "code"}]."""
    found = []
    for summary in traceback.extract_stack(frame):
        for root in roots:
            if summary.filename.startswith(root + os.sep):
                found.append({"path": os.path.relpath(summary.filename, root), "line": summary.lineno,
                              "function": summary.name, "code": (summary.line or "")[:200]})
                break
    return found[-MAX_STACK_FRAMES:]


def run_tests(section: dict, inputs, roots: tuple[str, ...], trusted: bool = False,
              watch: _TimeLimitWatch | None = None) -> tuple[dict, list[dict]]:
    """Run every test of SECTION against the package under test as it resolves now
    (ROOTS: where its files live, for tracebacks). TRUSTED: the reference, in the service's own
    process, where no hunt for other names of a forbidden function is needed (or wanted: it walks
    the whole heap)."""
    arrays, reports = ({}, []) if watch is None else (watch.arrays, watch.reports)
    for index, test in enumerate(section["tests"]):
        test_arrays, report = run_test(test, inputs, roots, trusted)
        arrays.update({f"{index}/{name}": value for name, value in test_arrays.items()})
        reports.append(report)
    return arrays, reports


SAFETENSORS_DTYPES = {"f8": "F64", "f4": "F32", "f2": "F16", "i8": "I64", "u8": "U64", "i4": "I32",
                      "u4": "U32", "i2": "I16", "u2": "U16", "i1": "I8", "u1": "U8", "b1": "BOOL"}


def write_arrays(path: str, arrays: dict[str, np.ndarray]) -> None:
    """ARRAYS in the safetensors format (8-byte little-endian header size, a JSON header giving each
    array's dtype, shape and byte range, then the bytes), which the trusted side reads with the
    `safetensors` library's hardened parser. Writing and reading an .npz cost ~6 ms a section."""
    header, chunks, offset = {}, [], 0
    for name, array in arrays.items():
        code = SAFETENSORS_DTYPES.get(f"{array.dtype.kind}{array.dtype.itemsize}")
        if code is None:  # float128, the one real dtype the format lacks: the nearest it holds
            array, code = array.astype(np.float64), "F64"
        data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes(order="C")
        header[name] = {"dtype": code, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(len(head).to_bytes(8, "little") + head + b"".join(chunks))


def unpack_arrays(index: dict, blob) -> dict[str, np.ndarray]:
    """The input arrays from INDEX ({key: [dtype, shape, offset]}, in the plans) and the raw BLOB
    (grader/plan.py `pack_arrays`). Read-only views: every use takes a fresh copy."""
    return {key: np.frombuffer(blob, dtype=np.dtype(dtype), count=int(np.prod(shape, dtype=np.int64)),
                               offset=offset).reshape(tuple(shape))
            for key, (dtype, shape, offset) in index.items()}


_jobs: dict[tuple[str, str], tuple[dict, dict[str, np.ndarray]]] = {}


def load_job(plans_path: str, inputs_path: str) -> tuple[dict, dict[str, np.ndarray]]:
    """The plans and input arrays, read once per process (parsing them was most of a section's cost).
    The inputs are mapped read-only, not read: the sections forked from the sandbox's init share the
    file's pages, and no process can write them (the file is opened read-only, the mapping too)."""
    if (plans_path, inputs_path) not in _jobs:
        with open(plans_path) as f:
            plans = json.load(f)
        with open(inputs_path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            blob = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) if size else b""
        _jobs[plans_path, inputs_path] = plans, unpack_arrays(plans["arrays"], blob)
    return _jobs[plans_path, inputs_path]


def setup(argv: list[str]) -> None:
    """Batch sandboxes call this once, in their init, before any section: every section process
    then starts with the job already loaded. Reads only the job's own files, never the handin."""
    load_job(argv[0], argv[1])


def main(argv: list[str]) -> int:
    """Run one section (SECTION_INDEX) in this process: every section has a process of its own, in
    which no other section's code has run (grader/execute.py). An optional sixth argument is the
    wall-clock limit in seconds the section runs under."""
    plans_path, inputs_path, handin_dir, out_dir, which, *wall = argv
    plans, inputs = load_job(plans_path, inputs_path)
    arrays, reports = run_section(plans["sections"][int(which)], inputs, handin_dir, plans["package"],
                                  watch_into=out_dir, wall_seconds=float(wall[0]) if wall else None)
    write_arrays(os.path.join(out_dir, "outputs.safetensors"), arrays)
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump({"tests": reports}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
