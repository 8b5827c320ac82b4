"""The zygote: a per-slot fork server with numpy and scipy already imported.

Started by `sandbox.zygote.Zygote` as root, exec'd fresh (`python -I -S`, the sandbox's environment
only, no secrets), with a SOCK_SEQPACKET socket (its fd number in the JSON config). It first hides every site-packages entry
except numpy and scipy (a private mount namespace), imports them, then serves one request at a time:
fork -> child C1 joins the slot's cgroup and unshares every namespace -> C2 is pid 1 of the new pid
namespace: builds /proc, rlimits, drops to the slot uid, seccomp -> C3 runs the script. C2 reports C3's
wait status on the status pipe and exits, which kills whatever else C3 left in the namespace.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import traceback

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, PACKAGE_PARENT)
from sandbox import _linux, layout, mountns  # noqa: E402

sys.path.remove(PACKAGE_PARENT)

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


def run_user_script(request: dict, stdout_fd: int, stderr_fd: int) -> None:
    """C3: become `python -I -B /sandbox/run.py args...` as far as the script can tell."""
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
    sys.argv = [layout.SCRIPT_PATH, *request["args"]]
    sys.dont_write_bytecode = True
    import types
    main = types.ModuleType("__main__")
    main.__file__ = layout.SCRIPT_PATH
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    code = 0
    try:
        with open(layout.SCRIPT_PATH, "rb") as f:
            source = f.read()
        exec(compile(source, layout.SCRIPT_PATH, "exec"), main.__dict__)
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code & 0xFF
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
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
    mountns.mount_proc()
    _linux.apply_rlimits({k: tuple(v) for k, v in request["rlimits"].items()})
    _linux.drop_bounding_capabilities()
    _linux.become_user(request["uid"], request["gid"])
    _linux.close_fds_from(3, keep=(stdout_fd, stderr_fd, status_fd))
    _linux.load_seccomp(bpf)
    child = os.fork()
    if child == 0:
        os.close(status_fd)
        run_user_script(request, stdout_fd, stderr_fd)
    os.close(stdout_fd)
    os.close(stderr_fd)
    while True:
        pid, status, usage = os.wait4(-1, 0)
        if pid == child:
            report = {"status": status, "cpu": usage.ru_utime + usage.ru_stime}
            os.write(status_fd, json.dumps(report).encode())
            os._exit(0)


def run_job(request: dict, fds: list[int], bpf: bytes) -> None:
    """C1: join the cgroup, unshare, build and enter the root, fork the namespace's init."""
    stdout_fd, stderr_fd, status_fd = fds
    try:
        os.setsid()
        _linux.prctl(_linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        _linux.join_cgroups(request["cgroup_procs"])
        _linux.unshare(ALL_NAMESPACES)
        _linux.make_mounts_private()
        socket.sethostname("sandbox")
        mounts = [layout.Mount(*m) for m in request["mounts"]]
        _linux.mount_tmpfs(request["stage"], 1 << 20)
        mountns.build_root(mounts, request["stage"])
        mountns.enter_root(request["stage"])
        init = os.fork()
        if init == 0:
            try:
                run_init(request, stdout_fd, stderr_fd, status_fd, bpf)
            except BaseException as exc:
                os.write(status_fd, json.dumps({"error": f"sandbox init: {exc}"}).encode())
            os._exit(1)
    except BaseException as exc:
        os.write(status_fd, json.dumps({"error": f"sandbox setup: {exc}"}).encode())
        os._exit(1)
    _linux.close_fds_from(0)
    os.waitpid(init, 0)
    os._exit(0)


def serve(sock: socket.socket, bpf: bytes) -> None:
    while True:
        message, fds, _flags, _addr = socket.recv_fds(sock, 1 << 20, 3)
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
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            sock.close()
            run_job(request, fds, bpf)
        for fd in fds:
            os.close(fd)
        sock.send(json.dumps({"pid": pid}).encode())


def main() -> None:
    config = json.loads(sys.argv[1])
    sock = socket.socket(fileno=config["sock_fd"])
    hide_other_packages(config)
    import site
    site.main()
    import importlib
    for name in config["preload"]:
        importlib.import_module(name)
    import gc
    gc.collect()
    gc.freeze()  # keep the preloaded heap shared copy-on-write with every job
    sock.send(b'{"ready": true}')
    serve(sock, bytes.fromhex(config["bpf"]))


if __name__ == "__main__":
    main()
