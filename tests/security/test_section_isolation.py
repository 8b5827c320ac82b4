"""Issue 18 (attack round three), items 8 and 9, through the real sandbox: a section's points come
only from a process in which no other section's student code has run, the inputs a section reads
are not writable by another section's code, the np.tanh ban holds whatever name the ufunc is
called by, and every section's report.json is read under the same 1 MiB cap."""

from __future__ import annotations

from pathlib import Path

from grader.grade import grade
from grader.suites.hw1p1 import SUITE as HW1P1

ROOT = Path(__file__).resolve().parents[2]

# Finds the runner's module in the process (whatever it is called there) and hands it to CODE.
# (vars(), not getattr: asking the lazy packages for a missing name would import their __init__.)
ON_THE_RUNNER = (
    "import sys as _sys\n"
    "for _runner in [m for m in list(_sys.modules.values())\n"
    "                if isinstance(vars(m).get('_jobs') if hasattr(m, '__dict__') else None, dict)]:\n"
    "{code}")


def on_the_runner(code: str) -> str:
    return ON_THE_RUNNER.format(code="".join(f"    {line}\n" for line in code.splitlines()))


def edit(root: Path, relpath: str, old: str, new: str) -> None:
    path = root / relpath
    text = path.read_text()
    assert old in text, (relpath, old)
    path.write_text(text.replace(old, new, 1))


def append(root: Path, relpath: str, code: str) -> None:
    path = root / relpath
    path.write_text(path.read_text() + "\n" + code)


def scores(result) -> dict[str, int]:
    return {s.name: s.score for s in result.sections}


def feedback(result, name: str) -> str:
    found = next(s for s in result.sections if s.name == name)
    return "\n".join([found.message or "", *(t.message for t in found.tests)])


FULL = {"Linear Layer": 15, "Activation": 10, "MLP0": 10, "MLP1": 10, "MLP4": 15, "Loss": 10, "SGD": 10,
        "Batch Norm": 20}


def wrong_identity(handin: Path) -> None:
    """Identity that returns 2·Z (and 2·dLdA): wrong on any input."""
    edit(handin, "mytorch/nn/activation.py", "        self.A = Z\n        return self.A\n",
         "        self.A = 2 * Z\n        return self.A\n")
    edit(handin, "mytorch/nn/activation.py", "        return dLdA * dAdZ\n", "        return 2 * dLdA * dAdZ\n")


def tanh_by(handin: Path, expression: str, imports: str = "") -> None:
    """Tanh.forward computed by numpy's tanh ufunc, called as EXPRESSION."""
    edit(handin, "mytorch/nn/activation.py",
         "        self.A = 2.0 * _sigmoid(2.0 * np.asarray(Z, dtype=np.float64)) - 1.0\n",
         f"        self.A = {expression}\n")
    if imports:
        edit(handin, "mytorch/nn/activation.py", "import numpy as np\n", f"import numpy as np\n{imports}\n")


def test_linear_halving_the_identity_tests_inputs_does_not_score_a_wrong_identity(sandbox_executor, handin):
    wrong_identity(handin)
    # linear.py (the Linear section, graded first) halves, in the job the runner loaded, every
    # input of the tests that build an Identity: 2·(Z/2) = Z, so the wrong Identity would pass.
    append(handin, "mytorch/nn/linear.py", on_the_runner(
        "for _plans, _arrays in _runner._jobs.values():\n"
        "    _keys = {arg['array'] for section in _plans['sections'] for test in section['tests']\n"
        "             if any(step.get('class') == 'Identity' for step in test['steps'])\n"
        "             for step in test['steps'] for arg in step.get('args', [])\n"
        "             if isinstance(arg, dict) and 'array' in arg}\n"
        "    for _key in _keys:\n"
        "        _arrays[_key] = _arrays[_key] / 2\n"))
    result = grade(handin, sandbox_executor, suite=HW1P1)
    assert scores(result) == FULL | {"Activation": 0}, f"{scores(result)}"
    assert "Identity" in feedback(result, "Activation")


def test_linear_patching_the_runner_does_not_lift_the_tanh_ban_for_activation(sandbox_executor, handin):
    tanh_by(handin, "np.tanh(Z)")
    append(handin, "mytorch/nn/linear.py", on_the_runner(
        "import contextlib\n"
        "_runner._forbidden_numpy = lambda *args, **kwargs: contextlib.nullcontext()\n"))
    result = grade(handin, sandbox_executor, suite=HW1P1)
    assert scores(result) == FULL | {"Activation": 0}, f"{scores(result)}"
    assert "np.tanh" in feedback(result, "Activation")


def test_linear_patching_the_plans_does_not_lift_the_tanh_ban_for_activation(sandbox_executor, handin):
    tanh_by(handin, "np.tanh(Z)")
    append(handin, "mytorch/nn/linear.py", on_the_runner(
        "for _plans, _arrays in _runner._jobs.values():\n"
        "    for _section in _plans['sections']:\n"
        "        for _test in _section['tests']:\n"
        "            for _step in _test['steps']:\n"
        "                _step.pop('forbid', None)\n"))
    result = grade(handin, sandbox_executor, suite=HW1P1)
    assert scores(result) == FULL | {"Activation": 0}, f"{scores(result)}"
    assert "np.tanh" in feedback(result, "Activation")


def test_batchnorm_that_cannot_import_alone_keeps_no_points(sandbox_executor, handin):
    # linear.py defines the real BatchNorm1d and leaves it in builtins; batchnorm.py only picks it
    # up, so it cannot even be imported unless linear.py ran first in the same process.
    batchnorm = (handin / "mytorch/nn/batchnorm.py").read_text()
    append(handin, "mytorch/nn/linear.py",
           "import builtins as _builtins\n"
           f"_namespace = {{}}\nexec(compile({batchnorm!r}, 'batchnorm', 'exec'), _namespace)\n"
           "_builtins._bn_from_linear = _namespace['BatchNorm1d']\n")
    (handin / "mytorch/nn/batchnorm.py").write_text("BatchNorm1d = _bn_from_linear  # noqa: F821\n")
    result = grade(handin, sandbox_executor, suite=HW1P1)
    assert scores(result) == FULL | {"Batch Norm": 0}, f"{scores(result)}"
    assert "_bn_from_linear" in feedback(result, "Batch Norm")


def test_tanh_imported_by_name_is_still_banned(sandbox_executor, handin):
    tanh_by(handin, "tanh(Z)", imports="from numpy import tanh")
    result = grade(handin, sandbox_executor, suite=HW1P1)
    assert scores(result) == FULL | {"Activation": 0}, f"{scores(result)}"
    assert "np.tanh" in feedback(result, "Activation")


def test_tanh_reached_through_numpy_core_umath_is_still_banned(sandbox_executor, handin):
    tanh_by(handin, "np._core.umath.tanh(Z)")
    result = grade(handin, sandbox_executor, suite=HW1P1)
    assert scores(result) == FULL | {"Activation": 0}, f"{scores(result)}"
    assert "np.tanh" in feedback(result, "Activation")


def test_fifteen_mib_report_is_refused_unparsed(sandbox_executor, handin):
    # loss.py rewrites the report the runner wrote, well formed but padded to 15 MiB: parsed, it
    # cost the trusted process ~450 MiB. Every report is refused above 1 MiB before it is parsed.
    append(handin, "mytorch/nn/loss.py",
           "import atexit, json, os\n"
           "def _pad():\n"
           "    path = '/out/report.json'\n"
           "    if os.path.exists(path):\n"
           "        report = json.load(open(path))\n"
           "        report['padding'] = 'x' * (15 << 20)\n"
           "        open(path, 'w').write(json.dumps(report))\n"
           "atexit.register(_pad)\n")
    result = grade(handin, sandbox_executor, suite=HW1P1)
    assert scores(result) == FULL | {"Loss": 0}, f"{scores(result)}"
    assert "report.json is larger than 1048576 bytes" in feedback(result, "Loss")
