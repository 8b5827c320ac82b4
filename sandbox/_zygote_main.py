"""The zygote: a per-slot fork server with numpy and scipy already imported.

Started by `sandbox.zygote.Zygote` as root, exec'd fresh (`python -I -S`, the sandbox's environment
only, no secrets), with a SOCK_SEQPACKET socket whose first message is the JSON config. It first hides every site-packages entry
except numpy and scipy (a private mount namespace), imports them, then serves one request at a time:
fork -> child C1 joins the slot's cgroup and unshares every namespace -> C2 is pid 1 of the new pid
namespace: builds /proc, rlimits, drops to the slot uid, seccomp -> C3 runs the script. C2 reports C3's
wait status on the status pipe and exits, which kills whatever else C3 left in the namespace.

A batch request ("one sandbox, many tasks") builds the namespaces and the root once; its C2 stays root
(it never runs or parses anything of the task's) and runs each task as a fresh child: every other
process of the namespace killed, fresh /tmp, /dev/shm and /out, rlimits, slot uid, seccomp. The
service drives it in lockstep over a control socket and reads each task's /out through C2's root.

C2 is pid 1 of its namespace with no signal handlers, so nothing inside can signal it; it says
"started" just before the untrusted code starts, and whatever goes wrong after that is the code's.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import traceback


def _receive_config() -> tuple[socket.socket, dict]:
    """argv is "SOCK_FD SCRIPT_FD" only (a sandbox's /proc/1/cmdline shows it): the settings come as
    the socket's first message, and the fd this script was read through is closed."""
    sock = socket.socket(fileno=int(sys.argv[1]))
    os.close(int(sys.argv[2]))
    return sock, json.loads(sock.recv(1 << 20))


SOCK, CONFIG = _receive_config()
sys.path.insert(0, CONFIG["package_parent"])
from sandbox import _linux, layout, mountns

sys.path.remove(CONFIG["package_parent"])

ALL_NAMESPACES = (_linux.CLONE_NEWNS | _linux.CLONE_NEWPID | _linux.CLONE_NEWNET | _linux.CLONE_NEWIPC
                  | _linux.CLONE_NEWUTS | _linux.CLONE_NEWCGROUP)


def hide_other_packages(config: dict) -> None:
    """Replace the base site-packages with a read-only tmpfs holding only the allowed packages."""
    _linux.unshare(_linux.CLONE_NEWNS)
    _linux.make_mounts_private()
    stage = config["stage"]
    _linux.mount_tmpfs(stage, 1 << 20)
    for pkg_dir in config["packages"]:
        target = os.path.join(stage, os.path.basename(pkg_dir))
        os.mkdir(target)
        _linux.bind(pkg_dir, target, readonly=True, recursive=True)
    _linux.mount(stage, config["site_packages"], None, _linux.MS_MOVE)
    ro = _linux.MS_REMOUNT | _linux.MS_BIND | _linux.MS_RDONLY | _linux.MS_NOSUID | _linux.MS_NODEV
    _linux.mount(None, config["site_packages"], None, ro)


def init_signals() -> None:
    """Pid 1 of a namespace gets no signal from inside it unless it handles that signal: drop every
    handler Python installed (SIGINT's KeyboardInterrupt made `os.kill(1, SIGINT)` a grader error)."""
    for number in signal.valid_signals():
        try:
            if callable(signal.getsignal(number)):
                signal.signal(number, signal.SIG_DFL)
        except (OSError, ValueError):
            pass


def _adjust_oom_score(value: int) -> None:
    """Raising always works; lowering needs CAP_SYS_RESOURCE, which a container may not grant (then
    the task's +1000 alone still makes the OOM killer pick it first)."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    except PermissionError:
        if value > 0:
            raise


def _as_script_process(stdout_fd: int, stderr_fd: int, args: list[str]) -> None:
    """Standard streams, cwd, signals, argv and modules as `python -I -B /sandbox/run.py args...`."""
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(stdout_fd, 1)
    os.dup2(stderr_fd, 2)
    _linux.close_fds_from(3)
    os.chdir(layout.TMP_DIR)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for name in [m for m in sys.modules if m == "sandbox" or m.startswith("sandbox.")]:
        del sys.modules[name]  # the script starts as in a fresh interpreter: only stdlib, numpy, scipy
    sys.argv = [layout.SCRIPT_PATH, *args]
    sys.dont_write_bytecode = True


# Filled by the zygote itself, never by a child: the cgroups it sits in, and the scripts it compiled.
JOINED_CGROUPS: list[str] = []
COMPILED_SCRIPTS: dict[bytes, object] = {}


def _join_cgroups(procs_files: list[str]) -> None:
    """Children of a zygote that already sits in the slot's cgroups are born there: moving a process
    between cgroups costs ~15 ms (the kernel waits out an RCU grace period per controller)."""
    if procs_files != JOINED_CGROUPS:
        _linux.join_cgroups(procs_files)


def _compile_once(request: dict) -> None:
    """Compile a request's script in the zygote (trusted, our own file), so that no sandbox pays
    for it again (~12 ms for the grader's runner); the child still compiles whatever it reads
    inside the sandbox if that differs."""
    source_path = next((m[2] for m in request.get("mounts", []) if m[1] == layout.SCRIPT_PATH), None)
    if source_path is None:
        return
    try:
        with open(source_path, "rb") as f:
            source = f.read()
    except OSError:
        return
    if source not in COMPILED_SCRIPTS:
        COMPILED_SCRIPTS.clear()  # one script per slot in practice; never grow without bound
        COMPILED_SCRIPTS[source] = compile(source, layout.SCRIPT_PATH, "exec")


def _script_module(name: str):
    import types
    module = types.ModuleType(name)
    module.__file__ = layout.SCRIPT_PATH
    module.__builtins__ = __builtins__
    sys.modules[name] = module
    with open(layout.SCRIPT_PATH, "rb") as f:
        source = f.read()
    compiled = COMPILED_SCRIPTS.get(source) or compile(source, layout.SCRIPT_PATH, "exec")
    return module, compiled


def run_user_script(request: dict, stdout_fd: int, stderr_fd: int) -> None:
    """C3: become `python -I -B /sandbox/run.py args...` as far as the script can tell."""
    _as_script_process(stdout_fd, stderr_fd, request["args"])
    code = 0
    try:
        main, compiled = _script_module("__main__")
        exec(compiled, main.__dict__)
    except SystemExit as exc:
        code = _exit_status(exc)
    except BaseException:
        traceback.print_exc()
        code = 1
    _exit_like_python(code)


def _exit_status(exc: SystemExit) -> int:
    """The status Python exits with for EXC, printing a code that is no number as Python does."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


def _exit_like_python(code: int) -> None:
    try:
        import atexit
        import threading
        threading._shutdown()  # type: ignore[attr-defined]  # join non-daemon threads like python does
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        code = code or 120
    os._exit(code)


def run_init(request: dict, stdout_fd: int, stderr_fd: int, status_fd: int, bpf: bytes) -> None:
    """C2, pid 1 of the new pid namespace: finish the sandbox, start C3, report its status."""
    _linux.prctl(_linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    init_signals()
    mountns.mount_proc()
    mountns.mask_proc()
    _linux.apply_rlimits({k: tuple(v) for k, v in request["rlimits"].items()})
    _linux.drop_bounding_capabilities()
    _linux.become_user(request["uid"], request["gid"])
    _linux.close_fds_from(3, keep=(stdout_fd, stderr_fd, status_fd))
    _linux.load_seccomp(bpf)
    os.write(status_fd, b'{"started": true}\n')  # from here on, what goes wrong is the script's
    child = os.fork()
    if child == 0:
        os.close(status_fd)
        _adjust_oom_score(0)  # back from its supervisors' -1000 (raising needs no privilege)
        run_user_script(request, stdout_fd, stderr_fd)
    os.close(stdout_fd)
    os.close(stderr_fd)
    while True:
        pid, status, usage = os.wait4(-1, 0)
        if pid == child:
            report = {"status": status, "cpu": usage.ru_utime + usage.ru_stime}
            os.write(status_fd, json.dumps(report).encode() + b"\n")
            os._exit(0)


def _enter_sandbox(request: dict) -> None:
    """C1's part, for single runs and batches alike: join the cgroup, unshare every namespace,
    build the root from the request's mounts and enter it."""
    os.setsid()
    _linux.prctl(_linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    _join_cgroups(request["cgroup_procs"])
    _adjust_oom_score(-1000)  # a memory blow-up must take the script, never its supervisors
    _linux.unshare(ALL_NAMESPACES)
    _linux.make_mounts_private()
    socket.sethostname("sandbox")
    mounts = [layout.Mount(*m) for m in request["mounts"]]
    _linux.mount_tmpfs(request["stage"], request["root_bytes"])
    mountns.build_root(mounts, request["stage"])
    mountns.enter_root(request["stage"])


def run_job(request: dict, fds: list[int], bpf: bytes) -> None:
    """C1: join the cgroup, unshare, build and enter the root, fork the namespace's init."""
    stdout_fd, stderr_fd, status_fd = fds
    try:
        _enter_sandbox(request)
        init = os.fork()
        if init == 0:
            try:
                run_init(request, stdout_fd, stderr_fd, status_fd, bpf)
            except BaseException as exc:
                os.write(status_fd, json.dumps({"error": f"sandbox init: {exc}"}).encode() + b"\n")
            os._exit(1)
    except BaseException as exc:
        os.write(status_fd, json.dumps({"error": f"sandbox setup: {exc}"}).encode() + b"\n")
        os._exit(1)
    _linux.close_fds_from(0)
    os.waitpid(init, 0)
    os._exit(0)


# ---------------------------------------------------------------------------------------------
# Batches: one sandbox, many tasks


def _send(ctl: socket.socket, message: dict) -> None:
    ctl.send(json.dumps(message).encode())


def _kill_everyone_else() -> None:
    """As pid 1: SIGKILL every other process of the namespace and reap them all."""
    import time
    deadline = time.monotonic() + 10
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("processes of the previous task survive SIGKILL")
        time.sleep(0.001)


def _fresh_scratch(request: dict) -> None:
    """New, empty /tmp, /dev/shm and /out: nothing a task wrote is seen by the next one."""
    for dest, size, mode, inodes in request["scratch"]:
        _linux.umount2(dest, _linux.MNT_DETACH)
        _linux.mount_tmpfs(dest, size, mode, inodes)
    os.chown(layout.OUT_DIR, request["uid"], request["gid"])


def run_task(request: dict, main, args: list[str], stdout_fd: int, stderr_fd: int, bpf: bytes) -> None:
    """A task's process: limits, slot uid, seccomp, then the preloaded script's main(args)."""
    code = 125
    try:
        _adjust_oom_score(1000)
        _linux.apply_rlimits({k: tuple(v) for k, v in request["rlimits"].items()})
        _linux.drop_bounding_capabilities()
        _linux.become_user(request["uid"], request["gid"])
        _as_script_process(stdout_fd, stderr_fd, args)
        _linux.load_seccomp(bpf)
    except BaseException:
        traceback.print_exc()
        os._exit(code)
    code = 0
    try:
        result = main(args)
        code = result & 0xFF if isinstance(result, int) else 0
    except SystemExit as exc:
        code = _exit_status(exc)
    except BaseException:
        traceback.print_exc()
        code = 1
    _exit_like_python(code)


def batch_init(request: dict, ctl: socket.socket, bpf: bytes) -> None:
    """C2 of a batch: pid 1, root, never runs anything of a task's; one task at a time on request."""
    _linux.prctl(_linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    init_signals()
    mountns.mount_proc()
    mountns.mask_proc()
    module, compiled = _script_module("__sandbox_batch__")
    exec(compiled, module.__dict__)  # the caller's trusted top level: definitions, no task code
    if request.get("setup") is not None:  # trusted too: reads the caller's files, runs no task code
        module.__dict__["setup"](request["setup"])
    main = module.__dict__["main"]
    _send(ctl, {"ready": True})
    while True:
        message, fds, _flags, _addr = socket.recv_fds(ctl, 1 << 20, 2)
        if not message:
            os._exit(0)
        order = json.loads(message)
        if "run" not in order:
            os._exit(0)
        _kill_everyone_else()
        _fresh_scratch(request)
        stdout_fd, stderr_fd = fds
        pid = os.fork()
        if pid == 0:
            ctl.close()
            # The order comes from the trusted host over ctl (no task can reach it): its rlimits, if
            # any, are this task's own.
            task = request | {"rlimits": order["rlimits"]} if "rlimits" in order else request
            run_task(task, main, order["args"], stdout_fd, stderr_fd, bpf)
        os.close(stdout_fd)
        os.close(stderr_fd)
        _send(ctl, {"started": order["run"]})  # from here on, what goes wrong is the task's
        _, status, usage = os.wait4(pid, 0)
        _send(ctl, {"exit": order["run"], "status": status, "cpu": usage.ru_utime + usage.ru_stime})


def run_batch_job(request: dict, ctl_fd: int, bpf: bytes) -> None:
    """C1 of a batch: join the cgroup, unshare, build and enter the root, fork the namespace's init."""
    ctl = socket.socket(fileno=ctl_fd)
    try:
        _enter_sandbox(request)
        init = os.fork()
        if init == 0:
            try:
                batch_init(request, ctl, bpf)
            except BaseException as exc:
                _send(ctl, {"error": f"sandbox init: {exc}"})
            os._exit(1)
        _send(ctl, {"init_pid": init})
    except BaseException as exc:
        _send(ctl, {"error": f"sandbox setup: {exc}"})
        os._exit(1)
    ctl.close()
    _linux.close_fds_from(0)
    os.waitpid(init, 0)
    os._exit(0)


def serve(sock: socket.socket, bpf: bytes) -> None:
    while True:
        try:
            message, fds, _flags, _addr = socket.recv_fds(sock, 1 << 20, 3)
        except OSError:
            return  # the service went away
        if not message:
            return  # the service closed its end or died
        while True:  # reap children of earlier jobs (never before the service is done with them)
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        request = json.loads(message)
        _compile_once(request)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            sock.close()
            if request.get("batch"):
                run_batch_job(request, fds[0], bpf)
            run_job(request, fds, bpf)
        for fd in fds:
            os.close(fd)
        sock.send(json.dumps({"pid": pid}).encode())


def main() -> None:
    config, sock = CONFIG, SOCK
    hide_other_packages(config)
    import site
    site.main()
    import importlib
    for name in config["preload"]:
        importlib.import_module(name)
    import gc
    gc.collect()
    gc.freeze()  # keep the preloaded heap shared copy-on-write with every job
    if config.get("cgroup_procs"):  # after the preload, whose memory stays charged where it was
        _adjust_oom_score(-1000)  # the slot's OOM killer must take a task, never the fork server
        _linux.join_cgroups(config["cgroup_procs"])
        JOINED_CGROUPS[:] = config["cgroup_procs"]
    sock.send(b'{"ready": true}')
    serve(sock, bytes.fromhex(config["bpf"]))


if __name__ == "__main__":
    try:
        main()
    except (BrokenPipeError, ConnectionResetError):
        # The service closed its end before or between jobs (e.g. `grader grade` refused the
        # handin before using the sandbox): a normal shutdown, not worth a traceback on stderr.
        sys.exit(0)
