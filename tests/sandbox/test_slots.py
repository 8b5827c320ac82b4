"""Slots, start-up self-check and the unsafe development backend."""

from __future__ import annotations

import logging
import textwrap
import threading
from pathlib import Path

import pytest
from sandbox_helpers import _SKIP, TEST_LIMITS_KW, free_sandbox

from sandbox import Limits, Sandbox, UnsafeSandbox, check_backend
from sandbox.cleanup import processes_of_uid

HOLD_CHILDREN = textwrap.dedent("""
    import os, time
    n = 0
    for _ in range(12):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            time.sleep(2)
            os._exit(0)
        n += 1
    print(n)
""")


@pytest.mark.sandbox
@pytest.mark.parametrize("zygote", [True, False], ids=["zygote", "bwrap"])
def test_concurrent_slots_have_their_own_process_budget(tmp_path, zygote):
    if _SKIP:
        pytest.skip(_SKIP)
    limits = Limits(**TEST_LIMITS_KW | {"max_processes": 14})
    results = {}

    def work(sandbox: Sandbox, name: str) -> None:
        job = tmp_path / name
        job.mkdir()
        (job / "run.py").write_text(HOLD_CHILDREN)
        (job / "run.py").chmod(0o644)
        (job / "out").mkdir()
        results[name] = sandbox.run_python(job / "run.py", [], ro_binds=[], out_dir=job / "out", limits=limits)

    with free_sandbox(limits, zygote=zygote) as a, free_sandbox(limits, zygote=zygote) as b:
        threads = [threading.Thread(target=work, args=(a, "a")), threading.Thread(target=work, args=(b, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for sandbox, name in ((a, "a"), (b, "b")):
            assert results[name].outcome == "ok", results[name]
            assert results[name].stdout.strip() == "12"
            assert processes_of_uid(sandbox.uid) == []


@pytest.mark.sandbox
@pytest.mark.parametrize("zygote", [True, False], ids=["zygote", "bwrap"])
def test_runs_that_leave_children_do_not_eat_the_next_runs_process_budget(tmp_path, zygote):
    """Attack on the next handin: leave children running at exit, again and again. They are killed,
    but a killed bwrap's init ends a zombie of the host's init, which may reap it seconds later;
    until then it counts against the slot uid's RLIMIT_NPROC and the cgroup's pids.max. Each run
    used to start with one process fewer per unreaped zombie (14, 13, 12, ...), and a full run of the
    battery once failed with "bwrap: Can't fork for pid 1: Resource temporarily unavailable"."""
    if _SKIP:
        pytest.skip(_SKIP)
    limits = Limits(**TEST_LIMITS_KW | {"max_processes": 14})
    job = tmp_path / "job"
    job.mkdir()
    (job / "run.py").write_text(HOLD_CHILDREN)
    (job / "run.py").chmod(0o644)
    forked = []
    with free_sandbox(limits, zygote=zygote) as sandbox:
        for run in range(6):
            (job / f"out{run}").mkdir()
            result = sandbox.run_python(job / "run.py", [], ro_binds=[], out_dir=job / f"out{run}", limits=limits)
            assert result.outcome == "ok", result
            forked.append(int(result.stdout))
    assert forked == [12] * 6   # the same budget every time


@pytest.mark.sandbox
def test_a_slot_keeps_its_host_side_folders_in_its_scratch_dir(tmp_path):
    # The grader's slot directory (grader/workdir.py): private to root, swept when its owner dies.
    if _SKIP:
        pytest.skip(_SKIP)
    scratch = tmp_path / "slot"
    scratch.mkdir(mode=0o700)
    script = tmp_path / "job" / "run.py"
    script.parent.mkdir()
    script.write_text("def main(args):\n    open('/out/answer', 'w').write('42')\n")
    script.chmod(0o644)
    with free_sandbox(Limits(**TEST_LIMITS_KW), zygote=True, scratch_dir=scratch) as box:
        [stage] = scratch.iterdir()
        assert stage.name.startswith(f"sandbox-slot{box.slot}-")
        [result] = box.run_batch(script, [[]], ro_binds=[], read_back=("answer",))
        assert result.outcome == "ok" and result.files == {"answer": b"42"}
    assert list(scratch.iterdir()) == []


@pytest.mark.sandbox
def test_bwrap_slot_refuses_a_scratch_dir_its_uid_cannot_reach(tmp_path):
    # Without the zygote bwrap runs as the slot's uid and binds from the stage: a scratch folder
    # behind a 0700 directory would fail every run; it fails once, at construction, instead.
    if _SKIP:
        pytest.skip(_SKIP)
    hidden = tmp_path / "private"
    hidden.mkdir(mode=0o700)
    (hidden / "slot").mkdir(mode=0o711)
    with pytest.raises(ValueError, match="slot uid"):
        free_sandbox(Limits(**TEST_LIMITS_KW), zygote=False, scratch_dir=hidden / "slot")
    assert list((hidden / "slot").iterdir()) == []


@pytest.mark.sandbox
def test_check_backend_passes_here():
    if _SKIP:
        pytest.skip(_SKIP)
    assert check_backend().startswith("bwrap+")


def test_unsafe_backend_is_loud(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="sandbox.unsafe"):
        sandbox = UnsafeSandbox(0, Limits(**TEST_LIMITS_KW))
    assert any("UNSAFE" in r.message for r in caplog.records)
    script = tmp_path / "run.py"
    script.write_text("import sys\nprint(open(sys.argv[1] + '/x').read())\nopen('/out/y', 'w')\n")
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "x").write_text("input")
    out = tmp_path / "o"
    out.mkdir()
    script.write_text("import sys\nprint(open(sys.argv[1] + '/x').read())\nopen(sys.argv[2] + '/y', 'w')\n")
    result = sandbox.run_python(script, ["/handin", "/out"], ro_binds=[(tmp_path / "h", "/handin")], out_dir=out)
    assert result.unsafe is True and result.outcome == "ok", result
    assert result.message.startswith("UNSAFE")
    assert result.stdout.strip() == "input" and (out / "y").exists()
    loop = sandbox.run_python(Path(script), [], ro_binds=[], out_dir=out,
                              limits=Limits(**TEST_LIMITS_KW | {"cpu_seconds": 5, "wall_seconds": 1}))
    assert loop.outcome == "exit_error" or loop.unsafe  # argv missing -> IndexError; still flagged unsafe
