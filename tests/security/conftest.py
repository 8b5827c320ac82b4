import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def sandbox_executor():
    import sandbox
    from grader.execute import SandboxExecutor

    try:
        executor = SandboxExecutor(slots=2)
    except sandbox.BackendUnavailable as exc:
        pytest.skip(f"no sandbox backend on this kernel: {exc}")
    yield executor
    executor.close()


@pytest.fixture
def handin(tmp_path) -> Path:
    """A copy of the reference solution as a handin directory, to be edited by each attack."""
    root = tmp_path / "handin"
    for package in ("models", "mytorch"):
        shutil.copytree(ROOT / "mytorch_reference" / package, root / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return root

