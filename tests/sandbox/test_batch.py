"""One sandbox per handin (`Sandbox.run_batch`): many tasks in one sandbox, each still bounded and
isolated on its own, on the zygote path and on the plain bwrap path (one sandbox per task there)."""

from __future__ import annotations

import json
import textwrap

import pytest
from sandbox_helpers import TEST_LIMITS_KW

from sandbox import Limits
from sandbox.cleanup import processes_of_uid

TASKS = textwrap.dedent('''
    import json, os, signal, sys, time

    def main(argv):
        kind = argv[0]
        if kind == "hello":
            open("/out/result.json", "w").write(json.dumps({"args": argv, "cwd": os.getcwd()}))
        elif kind == "litter":  # leave files, a daemon and a stopped init behind
            open("/tmp/litter", "w").write("x")
            open("/dev/shm/litter", "w").write("x")
            open("/out/litter", "w").write("x")
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    time.sleep(60)
                    os._exit(0)
                os._exit(0)
            os.wait()
            for target, sig in ((1, signal.SIGINT), (1, signal.SIGTERM), (1, signal.SIGSTOP),
                                (os.getppid(), signal.SIGKILL), (-1, signal.SIGKILL)):
                try:
                    os.kill(target, sig)
                except OSError:
                    pass
        elif kind == "look":  # what does a later task see of the earlier ones?
            others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, os.getpid())]
            seen = {"others": others, "tmp": os.listdir("/tmp"), "shm": os.listdir("/dev/shm"),
                    "out": os.listdir("/out")}
            open("/out/result.json", "w").write(json.dumps(seen))
        elif kind == "memory":
            kids = []
            for _ in range(4):
                pid = os.fork()
                if pid == 0:
                    block = bytearray(b"\\x01") * (200 << 20)
                    time.sleep(5)
                    os._exit(0)
                kids.append(pid)
            for pid in kids:
                os.waitpid(pid, 0)
        elif kind == "cpu":
            while True:
                pass
        elif kind == "spin":  # a finite amount of CPU, then a result
            deadline = time.process_time() + float(argv[1])
            while time.process_time() < deadline:
                pass
            open("/out/result.json", "w").write(json.dumps({"args": argv}))
        elif kind == "sleep":
            time.sleep(10**6)
        elif kind == "flood":
            while True:
                sys.stdout.write("x" * 65536)
        elif kind == "segfault":
            import ctypes
            ctypes.string_at(0)
        elif kind == "fill-out":
            written = 0
            try:
                for i in range(10**6):
                    with open(f"/out/f{i}", "wb") as f:
                        f.write(b"\\0" * (256 << 10))
                    written += 256 << 10
            except OSError as exc:
                for name in os.listdir("/out"):
                    os.unlink(os.path.join("/out", name))
                open("/out/result.json", "w").write(json.dumps({"written": written, "errno": exc.errno}))
        return 0

    if __name__ == "__main__":
        sys.exit(main(sys.argv[1:]))
''')


def run_batch(runner, tasks, limits=None, task_limits=None):
    job = runner.tmp_path / "job"
    job.mkdir(exist_ok=True)
    script = job / "tasks.py"
    script.write_text(TASKS)
    script.chmod(0o644)
    results = runner.sandbox.run_batch(script, tasks, ro_binds=[], read_back=("result.json",),
                                       limits=limits or Limits(**TEST_LIMITS_KW | {"wall_seconds": 20}),
                                       task_limits=task_limits)
    runner.assert_nothing_left()
    return results


def test_batch_runs_every_task_with_its_own_args_and_out(runner):
    results = run_batch(runner, [["hello", "a"], ["hello", "b"]])
    assert [r.outcome for r in results] == ["ok", "ok"], results
    assert [json.loads(r.files["result.json"])["args"] for r in results] == [["hello", "a"], ["hello", "b"]]
    assert json.loads(results[0].files["result.json"])["cwd"] == "/tmp"


def test_a_task_leaves_nothing_for_the_next_one(runner):
    results = run_batch(runner, [["litter"], ["look"]])
    assert results[0].outcome == "ok", results[0]
    assert results[1].outcome == "ok", results[1]
    seen = json.loads(results[1].files["result.json"])
    assert seen == {"others": [], "tmp": [], "shm": [], "out": []}


def test_each_task_is_bounded_on_its_own(runner):
    if runner.sandbox._cgroup is None:
        pytest.skip("no writable memory cgroup on this machine")
    tasks = [["memory"], ["hello", "1"], ["cpu"], ["hello", "2"], ["flood"], ["segfault"], ["hello", "3"]]
    results = run_batch(runner, tasks)  # a generous wall clock: on a loaded machine the CPU limit fires
    outcomes = [r.outcome for r in results]
    assert outcomes[0] == "memory", results[0]
    assert outcomes[2] == "cpu_time", results[2]
    assert outcomes[4] == "output", results[4]
    assert outcomes[5] == "signal", results[5]
    for index, name in ((1, "1"), (3, "2"), (6, "3")):
        assert outcomes[index] == "ok", results[index]
        assert json.loads(results[index].files["result.json"])["args"] == ["hello", name]


def test_an_infinite_loop_is_killed_under_a_tasks_own_larger_cpu_limit(runner):
    """A caller may give one task more CPU than the rest (HW2P1's loop-based 2-d convolutions): the
    larger limit lets a finite task finish, still kills an endless one, and leaves the next task's
    limit as it was."""
    base = Limits(**TEST_LIMITS_KW | {"cpu_seconds": 1, "wall_seconds": 30})
    larger = Limits(**TEST_LIMITS_KW | {"cpu_seconds": 4, "wall_seconds": 30})
    tasks = [["spin", "2"], ["spin", "2"], ["cpu"], ["spin", "2"]]
    results = run_batch(runner, tasks, base, task_limits=[None, larger, larger, None])
    assert [r.outcome for r in results] == ["cpu_time", "ok", "cpu_time", "cpu_time"], results
    assert json.loads(results[1].files["result.json"])["args"] == ["spin", "2"]


def test_a_hanging_task_costs_only_its_own_wall_clock(runner):
    results = run_batch(runner, [["sleep"], ["hello", "after"]], Limits(**TEST_LIMITS_KW | {"wall_seconds": 3}))
    assert [r.outcome for r in results] == ["wall_time", "ok"], results
    assert json.loads(results[1].files["result.json"])["args"] == ["hello", "after"]


def test_output_dir_is_size_bounded_in_a_batch(runner):
    if runner.mode != "zygote":
        pytest.skip("on the plain bwrap path /out is a host folder (RLIMIT_FSIZE per file only)")
    limits = Limits(**TEST_LIMITS_KW | {"wall_seconds": 20, "max_file_bytes": 1 << 20, "out_bytes": 4 << 20})
    [result] = run_batch(runner, [["fill-out"]], limits)
    assert result.outcome == "ok", result
    report = json.loads(result.files["result.json"])
    assert report["errno"] == 28  # ENOSPC
    assert report["written"] <= 4 << 20


def test_killed_tasks_never_count_as_sandbox_errors(runner):
    results = run_batch(runner, [["litter"], ["hello", "after"]])
    assert [r.outcome for r in results] == ["ok", "ok"], results
    assert processes_of_uid(runner.sandbox.uid) == []



CMDLINES_TASK = textwrap.dedent('''
    import json, os

    def main(argv):
        lines = {}
        for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
            try:
                lines[pid] = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
            except OSError as exc:
                lines[pid] = f"unreadable: {exc}"
        open("/out/result.json", "w").write(json.dumps(lines))
        return 0

    if __name__ == "__main__":  # the bwrap path runs each task as a script
        main([])
''')


def test_batch_init_cmdline_shows_no_host_paths_cgroups_or_seccomp_filter(runner):
    from test_attacks import _host_details

    job = runner.tmp_path / "job"
    job.mkdir(exist_ok=True)
    script = job / "cmdlines.py"
    script.write_text(CMDLINES_TASK)
    script.chmod(0o644)
    [result] = runner.sandbox.run_batch(script, [["look"]], ro_binds=[], read_back=("result.json",),
                                        limits=Limits(**TEST_LIMITS_KW | {"wall_seconds": 20}))
    runner.assert_nothing_left()
    assert result.outcome == "ok", result
    lines = json.loads(result.files["result.json"])
    assert lines.get("1"), lines   # the batch's init, pid 1, is there to be read
    for pid, line in lines.items():
        for detail in _host_details(runner.sandbox):
            assert detail not in line, (pid, detail, line)


def test_a_file_over_its_read_back_cap_is_refused_not_read(runner):
    # A task pads the file the caller reads back to 15 MiB (under /out's 32 MiB): with a 1 MiB cap
    # for that file it is refused by its size, and its bytes never come back.
    job = runner.tmp_path / "job"
    job.mkdir(exist_ok=True)
    script = job / "pad.py"
    script.write_text("def main(argv):\n"
                      "    open('/out/report.json', 'w').write('x' * (15 << 20))\n"
                      "    open('/out/small.json', 'w').write('{}')\n"
                      "    return 0\n\n"
                      "if __name__ == '__main__':\n"
                      "    main([])\n")
    script.chmod(0o644)
    [result] = runner.sandbox.run_batch(script, [["pad"]], ro_binds=[],
                                        read_back={"report.json": 1 << 20, "small.json": 1 << 20},
                                        limits=Limits(**TEST_LIMITS_KW | {"wall_seconds": 20, "max_file_bytes": 32 << 20}))
    runner.assert_nothing_left()
    assert result.outcome == "ok", result
    assert "report.json" not in result.files and result.files["small.json"] == b"{}"
    assert "larger than 1048576 bytes" in result.file_errors["report.json"]
