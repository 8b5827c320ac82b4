"""Fixtures for the sandbox attack battery: real bwrap, real cgroups, no mocks."""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/ is not a package: make the helpers importable
from sandbox_helpers import _SKIP, TEST_LIMITS_KW, free_sandbox


@dataclass
class Runner:
    """Runs code snippets in one Sandbox and checks nothing of them survives."""

    sandbox: object
    mode: str
    tmp_path: Path

    def run(self, code: str, args: list[str] = (), ro_binds=(), limits=None):
        from sandbox import Limits

        job = self.tmp_path / "job"
        job.mkdir(exist_ok=True)
        script = job / "run.py"
        script.write_text(textwrap.dedent(code))
        script.chmod(0o644)
        out = self.tmp_path / "out"
        out.mkdir(exist_ok=True)
        self.out = out
        result = self.sandbox.run_python(script, list(args), ro_binds=list(ro_binds), out_dir=out,
                                         limits=limits or Limits(**TEST_LIMITS_KW))
        self.assert_nothing_left()
        return result

    def assert_nothing_left(self) -> None:
        from sandbox.cleanup import processes_of_uid

        assert processes_of_uid(self.sandbox.uid) == []
        cgroup = self.sandbox._cgroup
        if cgroup is not None:  # the slot's fork server lives in its cgroup; nothing else may stay
            zygote = self.sandbox._zygote
            assert [pid for pid in cgroup.pids() if not zygote or pid != zygote.proc.pid] == []


@pytest.fixture(scope="session")
def sandboxes():
    if _SKIP:
        pytest.skip(_SKIP)
    from sandbox import Limits

    made = {"zygote": free_sandbox(Limits(**TEST_LIMITS_KW), zygote=True),
            "bwrap": free_sandbox(Limits(**TEST_LIMITS_KW), zygote=False)}
    yield made
    for sandbox in made.values():
        sandbox.close()


@pytest.fixture(params=["zygote", "bwrap"])
def runner(request, sandboxes, tmp_path) -> Runner:
    return Runner(sandboxes[request.param], request.param, tmp_path)
