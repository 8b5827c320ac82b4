"""The CI guard (tests/conftest.py, `--require-ran`, passed by .ci/run): a run on a machine whose
sandbox is unavailable fails instead of passing on the tests that did not need it.

The sandbox is made unavailable for real: pytest runs in a new user namespace without root in it
(`unshare --user`: its uid reads as nobody and it has no capabilities outside, so it cannot drop to
the per-slot uids), yet the kernel still sees the files' owner, so a clone in a private (0700)
folder stays readable, as it is not to a real `nobody` (on a machine where we are not root the
sandbox is unavailable already)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from support import HANG_GUARD, sandbox_or_skip

ROOT = Path(__file__).resolve().parents[1]
SANDBOX_TEST = "tests/sandbox/test_slots.py::test_check_backend_passes_here"
SECURITY_TEST = "tests/security/test_web_accounts.py::test_ta_cannot_give_staff_extensions"


def _pytest(*args: str, as_nobody: bool) -> subprocess.CompletedProcess:
    """Pytest on ARGS in a subprocess, its temporary files in a folder anyone may write."""
    scratch = Path(tempfile.mkdtemp(prefix="ci-guard-"))
    try:
        scratch.chmod(0o777)
        drop = ["unshare", "--user"] if as_nobody and os.geteuid() == 0 else []
        env = {**os.environ, "HOME": str(scratch), "TMPDIR": str(scratch)}
        return subprocess.run([*drop, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "--basetemp", str(scratch / "tmp"), *args],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=HANG_GUARD, check=False)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_a_ci_run_where_every_sandbox_test_skipped_fails():
    run = _pytest(SANDBOX_TEST, SECURITY_TEST, "--require-ran=sandbox,security", as_nobody=True)
    out = run.stdout + run.stderr
    assert "1 passed, 1 skipped" in out, out   # nothing failed: only the guard can fail this run
    assert "sandbox: 0 ran, 1 skipped or not run" in out, out
    assert "security: 1 ran, 0 skipped or not run" in out, out
    assert "FAILED: no sandbox test ran" in out, out
    assert "no security test ran" not in out, out
    assert run.returncode == 1, out


def test_the_same_run_without_the_requirement_passes():
    """What CI did before the guard: green, with every sandbox test skipped."""
    run = _pytest(SANDBOX_TEST, SECURITY_TEST, as_nobody=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed, 1 skipped" in run.stdout, run.stdout


def test_a_required_group_that_was_not_selected_fails_too():
    run = _pytest(SECURITY_TEST, "--require-ran=security,browser", as_nobody=False)
    assert "FAILED: no browser test ran" in run.stdout, run.stdout
    assert run.returncode == 1, run.stdout + run.stderr


@pytest.mark.sandbox
def test_a_ci_run_where_the_sandbox_tests_ran_passes():
    sandbox_or_skip()
    run = _pytest(SANDBOX_TEST, SECURITY_TEST, "--require-ran=sandbox,security", as_nobody=False)
    assert "sandbox: 1 ran, 0 skipped or not run" in run.stdout, run.stdout
    assert run.returncode == 0, run.stdout + run.stderr


def test_an_unknown_group_is_a_usage_error():
    run = _pytest(SECURITY_TEST, "--require-ran=sandbx", as_nobody=False)
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert "no such group sandbx" in run.stderr, run.stderr
