"""The attack battery: one test per threat, on both the zygote and the plain bwrap path.

Each asserts the exact outcome and (through the runner) that no process of the slot survives."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
from pathlib import Path

import pytest
from sandbox_helpers import FAKE_SECRET, TEST_LIMITS_KW

from sandbox import Limits

REPO = Path(__file__).resolve().parents[2]


def last_json(result) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_numpy_scipy_work_but_nothing_else_is_importable(runner):
    result = runner.run("""
        import json, importlib
        import numpy, scipy.special, scipy.linalg
        found = {}
        for name in ("torch", "pydantic", "fastapi", "pytest", "grader", "app", "sandbox", "mytorch_reference"):
            try:
                importlib.import_module(name)
                found[name] = True
            except ImportError:
                found[name] = False
        print(json.dumps({"gamma": float(scipy.special.gamma(5)), "det": float(scipy.linalg.det(numpy.eye(3))),
                          "found": found}))
    """)
    assert result.outcome == "ok", result.stderr
    report = last_json(result)
    assert report["gamma"] == 24.0 and report["det"] == 1.0
    assert not any(report["found"].values()), report["found"]


def test_linear_fork_bomb_is_capped(runner):
    result = runner.run("""
        import os, time
        n = 0
        for _ in range(200):
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                time.sleep(3)
                os._exit(0)
            n += 1
        print(n)
    """)
    assert result.outcome == "ok", result.stderr
    assert int(result.stdout.split()[-1]) < TEST_LIMITS_KW["max_processes"]


def test_memory_bomb_one_big_array(runner):
    result = runner.run("import numpy as np\nx = np.ones(10**10)\n")
    assert result.outcome == "memory", result
    assert "Memory limit exceeded" in result.message


def test_memory_bomb_many_processes_hits_the_cgroup(runner):
    if runner.sandbox._cgroup is None:
        pytest.skip("no writable memory cgroup on this machine")
    result = runner.run("""
        import os, time
        kids = []
        for _ in range(6):
            pid = os.fork()
            if pid == 0:
                block = bytearray(b"\\x01") * (150 << 20)
                time.sleep(3)
                os._exit(0)
            kids.append(pid)
        for pid in kids:
            os.waitpid(pid, 0)
    """)
    assert result.outcome == "memory", result


def test_memory_bomb_tmpfs_fill_stops_at_tmp_size(runner):
    result = runner.run("""
        import errno
        written = 0
        try:
            for i in range(64):  # files under the per-file cap: only the tmpfs size can stop them
                with open(f"/tmp/fill{i}", "wb") as f:
                    f.write(b"\\0" * (512 << 10)); f.flush()
                written += 512 << 10
        except OSError as exc:
            print("error", errno.errorcode[exc.errno])
        for n in range(64):
            try:
                with open(f"/dev/shm/f{n}", "wb") as f:
                    f.write(b"\\0" * (512 << 10))
            except OSError as exc:
                print("shm", errno.errorcode[exc.errno]); break
        print(written)
    """)
    assert result.outcome == "ok", result
    assert "error ENOSPC" in result.stdout and "shm ENOSPC" in result.stdout
    assert int(result.stdout.split()[-1]) <= TEST_LIMITS_KW["tmp_bytes"]


def test_memory_bomb_memfd(runner):
    limits = Limits(**TEST_LIMITS_KW | {"max_file_bytes": 64 << 20})
    result = runner.run("""
        import os
        fds = []
        try:
            for i in range(60):
                fd = os.memfd_create(f"m{i}")
                for _ in range(64):
                    os.write(fd, b"\\x01" * (1 << 20))
                fds.append(fd)
        except OSError as exc:
            print("refused", exc.errno)
        print("held", len(fds))
    """, limits=limits)
    if runner.sandbox._cgroup is not None:
        assert result.outcome == "memory", result
    else:
        assert result.outcome == "ok" and "refused 1" in result.stdout


SLOW_WALL = Limits(**TEST_LIMITS_KW | {"wall_seconds": 20})  # shared, loaded machines: let CPU limits fire


def test_cpu_loop(runner):
    result = runner.run("while True:\n    pass\n", limits=SLOW_WALL)
    assert result.outcome == "cpu_time", result
    assert result.message == "Time limit exceeded: used more than 1 s of CPU time."


def test_cpu_loop_ignoring_signals(runner):
    result = runner.run("""
        import signal
        for s in (signal.SIGXCPU, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        while True:
            pass
    """, limits=SLOW_WALL)
    assert result.outcome == "cpu_time", result


def test_sleep_hits_wall_clock(runner):
    result = runner.run("import time\ntime.sleep(10**6)\n")
    assert result.outcome == "wall_time", result
    assert "wall-clock" in result.message


def test_self_sigstop_hits_wall_clock(runner):
    result = runner.run("import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)\n")
    assert result.outcome == "wall_time", result


def test_huge_file_stops_at_file_size_limit(runner):
    result = runner.run("""
        import errno
        try:
            with open("/out/big", "wb") as f:
                for _ in range(100):
                    f.write(b"\\0" * (1 << 20)); f.flush()
        except OSError as exc:
            print(errno.errorcode[exc.errno])
    """)
    assert result.outcome == "ok", result
    assert result.stdout.strip() == "EFBIG"
    assert (runner.out / "big").stat().st_size <= TEST_LIMITS_KW["max_file_bytes"]


def test_stdout_flood(runner):
    result = runner.run("""
        import sys
        print("FIRST LINE")
        while True:
            sys.stdout.write("x" * 65536)
    """)
    assert result.outcome == "output", result.message
    assert result.stdout.startswith("FIRST LINE")
    assert "bytes cut ...]" in result.stdout
    assert len(result.stdout) < 2 * TEST_LIMITS_KW["output_bytes"]


def test_network_to_loopback_listener_sees_nothing(runner):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    port = listener.getsockname()[1]
    try:
        result = runner.run(f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=1).send(b"hello")
                print("connected")
            except OSError as exc:
                print("blocked", exc.errno)
        """)
        listener.settimeout(0.3)
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        listener.close()
    assert result.outcome == "ok", result
    assert result.stdout.startswith("blocked")


def test_network_to_outside_is_blocked(runner):
    result = runner.run("""
        import socket
        for family, kind in ((socket.AF_INET, socket.SOCK_STREAM), (socket.AF_INET, socket.SOCK_DGRAM),
                             (socket.AF_INET6, socket.SOCK_STREAM), (socket.AF_NETLINK, socket.SOCK_RAW)):
            try:
                s = socket.socket(family, kind)
                s.settimeout(1)
                s.connect(("192.0.2.1", 80) if family == socket.AF_INET else ("::1", 80, 0, 0))
                print("reached")
            except OSError as exc:
                print("blocked", exc.errno)
        a, b = socket.socketpair()  # AF_UNIX still works (multiprocessing needs it)
        a.send(b"x"); print("unix", b.recv(1))
    """)
    assert result.outcome == "ok", result
    lines = result.stdout.splitlines()
    assert lines[:4] == ["blocked 1"] * 4
    assert lines[4] == "unix b'x'"


def test_host_files_and_service_secrets_are_invisible(runner):
    torch_spec = importlib.util.find_spec("torch")
    pydantic_spec = importlib.util.find_spec("pydantic")
    paths = [str(REPO), str(REPO / "mytorch_reference"), str(REPO / "data"), "/work",
             os.path.dirname(next(iter(torch_spec.submodule_search_locations))) if torch_spec else "/nonexistent",
             next(iter(pydantic_spec.submodule_search_locations)) if pydantic_spec else "/nonexistent",
             "/etc/shadow", "/etc/passwd", "/home", "/root/.bashrc", "/root/.ssh", "/sys/fs/cgroup", "/var"]
    result = runner.run("""
        import json, os, sys
        report = {"visible": [p for p in sys.argv[1:] if os.path.exists(p)]}
        report["root"] = sorted(os.listdir("/root"))
        env = b""
        for pid in [p for p in os.listdir("/proc") if p.isdigit()] + ["self"]:
            try:
                env += open(f"/proc/{pid}/environ", "rb").read()
            except OSError:
                pass
        report["env"] = env.decode(errors="replace")
        report["my_env"] = sorted(os.environ)
        print(json.dumps(report))
    """, args=paths)
    assert result.outcome == "ok", result
    report = last_json(result)
    assert report["visible"] == []
    assert report["root"] == [".pyenv"] or report["root"] == []  # only the path down to the interpreter
    assert FAKE_SECRET not in report["env"] and "GRADER_SECRET" not in report["env"]
    assert "GRADER_SECRET" not in report["my_env"]
    assert set(report["my_env"]) >= {"PATH", "HOME", "OPENBLAS_NUM_THREADS", "PYTHONDONTWRITEBYTECODE"}


def test_host_sysctl_core_pattern_not_writable(runner):
    before = Path("/proc/sys/kernel/core_pattern").read_text()
    result = runner.run("""
        for path in ("/proc/sys/kernel/core_pattern", "/proc/sys/vm/drop_caches", "/proc/sysrq-trigger"):
            try:
                open(path, "w").write("|/bin/false")
                print("WROTE", path)
            except OSError as exc:
                print("denied", exc.errno)
    """)
    assert result.outcome == "ok", result
    assert "WROTE" not in result.stdout
    assert Path("/proc/sys/kernel/core_pattern").read_text() == before


def test_ptrace_is_denied(runner):
    result = runner.run("""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        for target in (1, os.getppid()):
            rc = libc.ptrace(16, target, 0, 0)  # PTRACE_ATTACH
            print(rc, ctypes.get_errno())
        print(open("/proc/self/status").read().count("Seccomp:\\t2"))
    """)
    assert result.outcome == "ok", result
    lines = result.stdout.split("\n")
    assert lines[0] == "-1 1" and lines[1] == "-1 1"
    assert lines[2] == "1"


def test_setuid_unshare_mount_are_denied(runner):
    result = runner.run("""
        import ctypes, json, os
        libc = ctypes.CDLL(None, use_errno=True)
        report = {}
        try:
            os.setuid(0); report["setuid"] = "ok"
        except OSError as exc:
            report["setuid"] = exc.errno
        for name, flag in (("userns", 0x10000000), ("mountns", 0x00020000), ("netns", 0x40000000)):
            report[name] = (libc.unshare(flag), ctypes.get_errno())
        report["mount"] = (libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None), ctypes.get_errno())
        report["chroot"] = (libc.chroot(b"/tmp"), ctypes.get_errno())
        status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
        report["caps"] = [status["CapEff"].strip(), status["CapBnd"].strip(), status["NoNewPrivs"].strip()]
        print(json.dumps(report))
    """)
    assert result.outcome == "ok", result
    report = last_json(result)
    assert report["setuid"] in (1, 22)  # EPERM, or EINVAL where uid 0 is not even mapped (bwrap userns)
    for name in ("userns", "mountns", "netns", "mount", "chroot"):
        assert report[name] == [-1, 1], (name, report)
    assert report["caps"][0] == "0000000000000000"
    assert report["caps"][2] == "1"


def test_killing_parent_and_everyone_does_nothing_outside(runner):
    result = runner.run("""
        import os, signal
        for target in (os.getppid(), 1):
            try:
                os.kill(target, signal.SIGKILL)
            except OSError as exc:
                print("kill", target, exc.errno)
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError as exc:
            print("kill -1", exc.errno)
        print("still alive")
    """)
    assert result.outcome == "ok", result
    assert result.stdout.strip().endswith("still alive")


def test_double_forked_daemon_does_not_survive(runner):
    result = runner.run("""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(30)
                open("/out/daemon-was-here", "w").write("x")
                os._exit(0)
            os._exit(0)
        os.wait()
        print("parent done")
    """)
    assert result.outcome == "ok", result
    # the runner already asserted that no process of the slot uid or cgroup remains


def test_ctypes_segfault_is_a_signal(runner):
    result = runner.run("import ctypes\nctypes.string_at(0)\n")
    assert result.outcome == "signal", result
    assert result.signal == signal.SIGSEGV
    assert result.message == "Killed by signal 11 (SIGSEGV)."


def test_no_leaked_file_descriptors(runner):
    leaked = os.open("/etc/hostname", os.O_RDONLY)
    os.set_inheritable(leaked, True)
    os.dup2(leaked, 55, inheritable=True)
    try:
        result = runner.run("""
            import os
            fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
            print(fds)
        """)
    finally:
        os.close(leaked)
        os.close(55)
    assert result.outcome == "ok", result
    assert result.stdout.strip() == "[0, 1, 2, 3]"  # 3 is listdir's own directory fd


def test_handin_is_read_only(runner, tmp_path):
    handin = tmp_path / "handin"
    (handin / "mytorch").mkdir(parents=True)
    (handin / "mytorch" / "linear.py").write_text("W = 1\n")
    result = runner.run("""
        import os
        attempts = {
            "write": lambda: open("/handin/mytorch/linear.py", "a").write("evil"),
            "create": lambda: open("/handin/new.py", "w"),
            "rename": lambda: os.rename("/handin/mytorch/linear.py", "/handin/x.py"),
            "unlink": lambda: os.unlink("/handin/mytorch/linear.py"),
            "chmod": lambda: os.chmod("/handin/mytorch/linear.py", 0o777),
            "script": lambda: open("/sandbox/run.py", "a").write("evil"),
            "root": lambda: open("/evil", "w"),
        }
        for name, attempt in attempts.items():
            try:
                attempt(); print(name, "DONE")
            except OSError as exc:
                print(name, "denied")
    """, ro_binds=[(handin, "/handin")])
    assert result.outcome == "ok", result
    assert "DONE" not in result.stdout
    assert (handin / "mytorch" / "linear.py").read_text() == "W = 1\n"


def test_exit_code_and_uncaught_exception(runner):
    result = runner.run("import sys\nprint('score: 100/100')\nsys.exit(3)\n")
    assert (result.outcome, result.returncode, result.message) == ("exit_error", 3, "Exited with code 3.")
    result = runner.run("raise ValueError('boom')\n")
    assert result.outcome == "exit_error" and result.returncode == 1
    assert result.message == "Crashed with an uncaught ValueError (exit code 1)."
    # as python itself: a code that is no number is printed and exits 1; None and 256 exit 0
    result = runner.run("import sys\nsys.exit('bye now')\n")
    assert (result.outcome, result.returncode) == ("exit_error", 1) and "bye now" in result.stderr
    for code in ("None", "256"):
        assert runner.run(f"import sys\nsys.exit({code})\n").outcome == "ok"


def test_script_sees_its_args_cwd_and_writes_out(runner):
    result = runner.run("""
        import os, sys
        import numpy as np
        np.arange(3.0).tofile("/out/y.bin")
        print(sys.argv, os.getcwd())
    """, args=["--section", "linear"])
    assert result.outcome == "ok", result
    assert result.stdout.strip() == "['/sandbox/run.py', '--section', 'linear'] /tmp"
    import numpy as np

    from sandbox import read_result_file

    assert np.frombuffer(read_result_file(runner.out / "y.bin", 1000)).tolist() == [0.0, 1.0, 2.0]


def test_handin_cannot_fake_grader_error_by_killing_init(runner):
    # The namespace's init (ours) took SIGINT as a KeyboardInterrupt and reported a sandbox failure.
    result = runner.run("""
        import os, signal
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGKILL):
            for target in (1, os.getppid()):
                try:
                    os.kill(target, sig)
                except OSError:
                    pass
        print("still alive")
    """)
    assert result.outcome == "ok", result
    assert result.stdout.strip() == "still alive"


def test_proc_hides_host_mountinfo(runner, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "x.txt").write_text("x")
    result = runner.run("""
        import json
        # /out of a single run is the caller's folder (bound); the batch path makes it a tmpfs
        roots = [line.split()[3] for line in open("/proc/self/mountinfo") if line.split()[4] != "/out"]
        sizes = {}
        for name in ("meminfo", "stat", "loadavg", "uptime", "diskstats", "vmstat", "interrupts"):
            try:
                sizes[name] = len(open("/proc/" + name).read())
            except OSError:
                sizes[name] = -1
        print(json.dumps({"roots": roots, "sizes": sizes, "input": open("/inputs/x.txt").read()}))
    """, ro_binds=[(inputs, "/inputs")])
    assert result.outcome == "ok", result
    report = last_json(result)
    assert report["input"] == "x"
    # The numpy/scipy runtime is bound from where it is installed (a known, documented leak); in a
    # checkout whose .venv sits inside the repository that path contains the repository's.
    import numpy
    runtime = str(Path(numpy.__file__).resolve().parents[1])
    for root in report["roots"]:  # the job's files are copies: no host path of the job, script or repo
        if root.startswith(runtime):
            continue   # the documented bind, wherever the checkout is (a CI clone may be under /tmp)
        assert str(tmp_path) not in root and not root.startswith("/tmp/"), root
        assert str(REPO) not in root, root
    assert all(size in (0, -1) for size in report["sizes"].values()), report["sizes"]


def _host_details(sandbox) -> list[str]:
    """What a sandbox's command lines must never show: the checkout, the venv, the slot's stage,
    its cgroup paths and the seccomp filter the init loads."""
    import sys

    details = [str(REPO), sys.prefix, sandbox._stage, "sandbox-slot", "/sys/fs/cgroup",
               "cgroup", sandbox._bpf.hex()[:32], "seccomp"]
    return [d for d in details if d and d != "/"]


CMDLINES = """
    import json, os
    lines = {}
    for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
        try:
            lines[pid] = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
        except OSError as exc:
            lines[pid] = f"unreadable: {exc}"
    print(json.dumps(lines))
"""


def test_proc_1_cmdline_shows_no_host_paths_cgroups_or_seccomp_filter(runner):
    result = runner.run(CMDLINES)
    assert result.outcome == "ok", result
    lines = last_json(result)
    assert lines.get("1"), lines   # pid 1 (the sandbox's init) is there to be read
    for pid, line in lines.items():
        for detail in _host_details(runner.sandbox):
            assert detail not in line, (pid, detail, line)
