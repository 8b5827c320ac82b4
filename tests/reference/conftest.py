"""Import the bundled reference solution (mytorch_reference/) for the tests in this folder.

The reference modules import each other as ``mytorch.nn...`` and ``models...``, so the
``mytorch_reference`` directory itself has to be on sys.path.
"""
import sys
import types
from pathlib import Path

import pytest

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "mytorch_reference"


def _is_reference(module):
    origin = getattr(module, "__file__", None)
    return origin is not None and Path(origin).resolve().is_relative_to(REFERENCE_DIR)


def load_reference():
    """Return a namespace holding every reference class, imported from REFERENCE_DIR."""
    if str(REFERENCE_DIR) not in sys.path:
        sys.path.insert(0, str(REFERENCE_DIR))
    # Another test may have imported a different `mytorch`/`models` (a student handin);
    # drop those cached modules so the names resolve to the reference.
    for name in list(sys.modules):
        if name.split(".")[0] in ("mytorch", "models") and not _is_reference(sys.modules[name]):
            del sys.modules[name]

    import models
    from mytorch import nn, optim

    for module in (nn, optim, models):
        assert _is_reference(module), f"{module.__name__} imported from {module.__file__}"
    names = {n: getattr(nn, n) for n in nn.__all__}
    names.update(SGD=optim.SGD, MLP0=models.MLP0, MLP1=models.MLP1, MLP4=models.MLP4)
    return types.SimpleNamespace(**names)


@pytest.fixture(scope="session")
def ref():
    return load_reference()
