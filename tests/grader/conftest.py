"""Fixtures for the grading-core tests.

Student code runs through `executor`: the real sandbox (grader.execute.SandboxExecutor), so the
catalogue proves the grading through the same path the service uses. On a machine where no safe
sandbox backend exists, the catalogue still checks the grading logic with the plain-subprocess
executor (the sandbox battery in tests/sandbox then says why it is skipped).
"""
import sys
from pathlib import Path

import pytest

# Let the test modules import catalogue.py whatever pytest's import mode is.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from catalogue import SHORT_TIMEOUT

from grader.execute import SandboxExecutor, UnsafeExecutor

SLOTS_FOR_TESTS = 100  # clear of the service's slots (0+), sandbox tests (4000+) and self-checks (4936+)


def _executor(first_slot: int, limits=None, timeout: float = 30.0):
    import sandbox

    try:
        return SandboxExecutor(slots=2, first_slot=first_slot, limits=limits)
    except sandbox.BackendUnavailable as exc:
        print(f"no sandbox here ({exc}); grading tests use the unsafe executor", file=sys.stderr)
        return UnsafeExecutor(timeout=timeout)


@pytest.fixture(scope="session")
def executor():
    ex = _executor(SLOTS_FOR_TESTS)
    yield ex
    getattr(ex, "close", lambda: None)()


@pytest.fixture(scope="session")
def short_timeout_executor():
    """For the one test with an infinite loop: same executor, shorter per-section time limit."""
    import sandbox

    limits = sandbox.Limits(cpu_seconds=SHORT_TIMEOUT / 2, wall_seconds=SHORT_TIMEOUT)
    ex = _executor(SLOTS_FOR_TESTS + 10, limits, timeout=SHORT_TIMEOUT)
    yield ex
    getattr(ex, "close", lambda: None)()
