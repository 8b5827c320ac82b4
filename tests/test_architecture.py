"""The import arrows of the house, read from the source with `ast`: app -> grader -> sandbox, never back.

Every import counts, including the ones inside functions and `importlib.import_module("literal")`:
a late import is still an arrow.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "grader", "sandbox", "mytorch_reference", "mytorch_reference_bonus",
            "mytorch_reference_hw2")

# package -> the house's packages it must never import
FORBIDDEN = {
    "grader": {"app"},                          # the grading core knows nothing of the service
    "sandbox": {"app", "grader"},               # the sandbox runs anything, knows nobody
    "mytorch_reference": {"app", "grader", "sandbox"},
    "mytorch_reference_bonus": {"app", "grader", "sandbox"},
    "mytorch_reference_hw2": {"app", "grader", "sandbox"},
    "app": {"sandbox"},                         # the service reaches the sandbox only through grader
}


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Absolute names of every module `path` imports, wherever the import statement sits."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = path.relative_to(root).with_suffix("").parts[:-1]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = list(package[: len(package) - node.level + 1])
                base += [node.module] if node.module else []
                names.add(".".join(base))
            elif node.module:
                names.add(node.module)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names.add(node.args[0].value)
    return names


def house_imports(path: Path) -> set[str]:
    """The top-level house packages `path` imports."""
    return {name.split(".")[0] for name in imported_modules(path)} & set(PACKAGES)


def modules_of(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def edges() -> dict[tuple[str, str], list[str]]:
    """(importer package, imported package) -> the importing files."""
    found: dict[tuple[str, str], list[str]] = {}
    for package in PACKAGES:
        for path in modules_of(package):
            for target in house_imports(path) - {package}:
                found.setdefault((package, target), []).append(str(path.relative_to(ROOT)))
    return found


def test_the_scanner_sees_the_arrows_that_exist():
    """Guards the guard: the allowed arrows are found, so an empty result below means something."""
    found = edges()
    assert ("app", "grader") in found
    assert ("grader", "sandbox") in found
    assert ("grader", "mytorch_reference") in found
    assert "sandbox" in house_imports(ROOT / "grader" / "execute.py")  # a function-level import


def test_relative_and_dynamic_imports_are_resolved(tmp_path):
    pkg = tmp_path / "grader" / "sub"
    pkg.mkdir(parents=True)
    module = pkg / "m.py"
    module.write_text("from .. import plan\nfrom . import x\nimport importlib\n"
                      "def f():\n    importlib.import_module('app.models')\n")
    assert imported_modules(module, root=tmp_path) >= {"grader", "grader.sub", "app.models"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_arrow_points_back(package):
    bad = {(package, target): files for (importer, target), files in edges().items()
           if importer == package and target in FORBIDDEN[package]}
    assert not bad, f"forbidden imports: {bad}"


def test_the_worker_does_not_build_sandboxes():
    """The worker asks grader for an executor (grader.execute.open_executor)."""
    assert "sandbox" not in house_imports(ROOT / "app" / "worker.py")


def test_the_runner_imports_nothing_of_the_house():
    """grader/runner.py runs inside the sandbox next to student code, with only numpy and the stdlib."""
    assert house_imports(ROOT / "grader" / "runner.py") == set()


def test_pages_never_call_the_json_routes():
    """The web form and the API share app/uploads.py; a page never calls an API route's function."""
    for path in modules_of("app/web"):
        where = path.relative_to(ROOT)
        assert "app.api" not in imported_modules(path), f"{where} imports app.api"
        assert not _imports_name(path, "app", "api"), f"{where} imports app.api"


def _imports_name(path: Path, module: str, name: str) -> bool:
    """Whether PATH does `from MODULE import NAME`."""
    tree = ast.parse(path.read_text())
    return any(isinstance(n, ast.ImportFrom) and n.module == module and any(a.name == name for a in n.names)
               for n in ast.walk(tree))
