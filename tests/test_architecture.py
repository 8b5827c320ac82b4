"""The import arrows of the house, read from the source with `ast`: app -> grader -> sandbox, never back,
and inside app, the arrows between its layers (LAYERS below; ARCHITECTURE.md explains them).

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
                      "def f():\n    importlib.import_module('app.store.models')\n")
    assert imported_modules(module, root=tmp_path) >= {"grader", "grader.sub", "app.store.models"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_arrow_points_back(package):
    bad = {(package, target): files for (importer, target), files in edges().items()
           if importer == package and target in FORBIDDEN[package]}
    assert not bad, f"forbidden imports: {bad}"


def test_the_worker_does_not_build_sandboxes():
    """The worker asks grader for an executor (grader.execute.open_executor)."""
    assert "sandbox" not in house_imports(ROOT / "app" / "grading" / "worker.py")


def test_the_runner_imports_nothing_of_the_house():
    """grader/runner.py runs inside the sandbox next to student code, with only numpy and the stdlib."""
    assert house_imports(ROOT / "grader" / "runner.py") == set()


# The service's layers (app/<layer>/ packages; the root modules are layers of one file each) and
# the layers each may import. Edges point down: store at the bottom, the entry points on top.
LAYERS: dict[str, set[str]] = {
    "exceptions": set(),                         # the exceptions every layer may raise
    "settings": set(),                           # GRADER_* configuration
    "store": {"settings"},                       # tables and the database
    "auth": {"store", "settings", "exceptions"},
    "grading": {"store", "settings", "exceptions"},
    "course": {"auth", "grading", "store", "settings", "exceptions"},
    "http": {"course", "auth", "grading", "store", "settings", "exceptions"},
    "api": {"http", "course", "auth", "grading", "store", "settings", "exceptions"},
    "web": {"http", "course", "auth", "grading", "store", "settings", "exceptions"},
    "main": {"api", "web", "http", "course", "auth", "grading", "store", "settings", "exceptions"},
    "cli": {"main", "http", "course", "auth", "grading", "store", "settings", "exceptions"},
}

# Imports against LAYERS still being moved out. Each entry must still be needed (tested below).
NOT_YET_MOVED: dict[str, set[str]] = {}


def layer_of(path: Path) -> str:
    """app/course/uploads.py -> "course"; app/settings.py -> "settings"."""
    parts = path.relative_to(ROOT / "app").with_suffix("").parts
    return parts[0]


def app_layers_imported(path: Path) -> set[str]:
    """The layers of app that PATH imports (`from app import web` counts as the layer web)."""
    layers = set()
    tree = ast.parse(path.read_text())
    for name in imported_modules(path):
        parts = name.split(".")
        if parts[0] == "app" and len(parts) > 1:
            layers.add(parts[1])
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "app" and not node.level:
            layers.update(alias.name for alias in node.names)
    return layers


def app_modules() -> list[Path]:
    return [p for p in modules_of("app") if p.name != "__init__.py" or p.parent != ROOT / "app"]


def test_every_module_of_app_sits_in_a_known_layer():
    """A new module goes into one of the layers; a new layer is added here and in ARCHITECTURE.md."""
    stray = sorted(str(p.relative_to(ROOT)) for p in app_modules() if layer_of(p) not in LAYERS)
    assert not stray, f"modules outside the layers: {stray}"
    packages = {p.name for p in (ROOT / "app").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == {name for name in LAYERS if (ROOT / "app" / name).is_dir()}


def test_the_layer_scanner_sees_the_arrows_that_exist():
    """Guards the guard below: known downward arrows are found."""
    assert "course" in app_layers_imported(ROOT / "app" / "api" / "routes" / "submissions.py")
    assert "store" in app_layers_imported(ROOT / "app" / "course" / "submissions.py")
    assert "grading" in app_layers_imported(ROOT / "app" / "course" / "submissions.py")
    assert {"api", "web"} <= app_layers_imported(ROOT / "app" / "main.py")   # a function-level import


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_each_layer_imports_only_the_layers_below_it(layer):
    bad = {}
    for path in app_modules():
        if layer_of(path) != layer:
            continue
        where = str(path.relative_to(ROOT))
        wrong = app_layers_imported(path) - LAYERS[layer] - {layer} - NOT_YET_MOVED.get(where, set())
        if wrong:
            bad[where] = sorted(wrong)
    assert not bad, f"{layer} may import only {sorted(LAYERS[layer])}: {bad}"


def test_each_import_not_yet_moved_still_exists():
    """An entry of NOT_YET_MOVED is removed as soon as its import is."""
    for where, layers in NOT_YET_MOVED.items():
        assert layers <= app_layers_imported(ROOT / where), f"{where} no longer needs {layers}"


def test_pages_never_call_the_json_routes():
    """The web form and the API share app/course/uploads.py; a page never calls an API route's function."""
    for path in modules_of("app/web"):
        assert "api" not in app_layers_imported(path), f"{path.relative_to(ROOT)} imports app.api"


# ---------------------------------------------------------------------------------------------
# the HTTP edge: handlers get what create_app wired through app/http/deps.py, use cases never
# see a request

# The one module that reads request.app.state; the composition root writes it; the body-limit
# middleware runs before routing (no dependencies there) and reads the app from its scope.
READS_APP_STATE = {"app/http/deps.py", "app/main.py", "app/cli/main.py", "app/http/bodylimits.py"}
USE_CASE_LAYERS = ("auth", "course", "grading", "store")
HTTP_TYPES = {"Request", "Response", "HTTPConnection", "WebSocket"}


def app_state_reads(path: Path) -> list[int]:
    """Lines of PATH reading `<x>.app.state` or `app.state`."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr == "state":
            base = node.value
            if (isinstance(base, ast.Attribute) and base.attr == "app") or \
                    (isinstance(base, ast.Name) and base.id == "app"):
                lines.append(node.lineno)
    return lines


def http_types_used(path: Path) -> set[str]:
    """The request/response types PATH imports from fastapi or starlette, or names in an annotation."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("fastapi", "starlette"):
            found |= {alias.name for alias in node.names} & HTTP_TYPES
        elif isinstance(node, ast.arg) and node.annotation is not None:
            found |= {n.id for n in ast.walk(node.annotation) if isinstance(n, ast.Name)} & HTTP_TYPES
            if isinstance(node.annotation, ast.Constant) and isinstance(node.annotation.value, str):
                found |= set(node.annotation.value.replace("|", " ").split()) & HTTP_TYPES
    return found


def test_the_edge_scanners_see_what_exists(tmp_path):
    """Guards the guards below."""
    assert app_state_reads(ROOT / "app" / "http" / "deps.py")
    assert "Request" in http_types_used(ROOT / "app" / "http" / "uploads.py")
    module = tmp_path / "m.py"
    module.write_text("def f(request: 'Request'):\n    return request.app.state.db\n")
    assert app_state_reads(module) == [2] and http_types_used(module) == {"Request"}


def test_only_the_dependencies_read_app_state():
    """A handler names DbDep, SettingsDep, AssessmentsDep, ... (app/http/deps.py) instead."""
    bad = {str(p.relative_to(ROOT)): app_state_reads(p) for p in app_modules()
           if str(p.relative_to(ROOT)) not in READS_APP_STATE and app_state_reads(p)}
    assert not bad, f"reads app.state outside app/http/deps.py: {bad}"


@pytest.mark.parametrize("layer", USE_CASE_LAYERS)
def test_use_cases_take_plain_values_not_a_request(layer):
    """app/http reads the request (app/http/uploads.py, app/http/sessions.py) and passes values on."""
    bad = {str(p.relative_to(ROOT)): sorted(http_types_used(p)) for p in modules_of(f"app/{layer}")
           if http_types_used(p)}
    assert not bad, f"{layer} takes HTTP objects: {bad}"


# What a handler used to write by hand before each page; the dependencies do it now.
HAND_GUARDS = {"staff_only", "staff_form", "assessment_or_none", "find_assessment", "login_redirect",
               "principal_for", "require_user", "require_staff", "session_ended", "not_found"}


def test_no_handler_module_writes_a_guard_by_hand():
    bad = {}
    for path in [*modules_of("app/web"), *modules_of("app/api")]:
        names = {n.id for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Name)}
        names |= {n.attr for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Attribute)}
        if names & HAND_GUARDS:
            bad[str(path.relative_to(ROOT))] = sorted(names & HAND_GUARDS)
    assert not bad, f"guards written by hand (use PageUser, StaffPage, AssessmentDep, ...): {bad}"
