"""The compose `worker` container's confinement, applied natively (no Docker engine here): the seccomp
profile compiled with libseccomp as runc does, the capability set cut to the worker's cap_add, and
cgroups read-only (tests/deploy/docker_like.py). Then the real workload runs under it: Python with
numpy, threads, subprocess and sockets; bubblewrap as a slot uid; and a whole `grader grade` through
the real sandbox."""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
DOCKER_LIKE = Path(__file__).with_name("docker_like.py")
PROFILE = ROOT / "deploy" / "seccomp-bwrap.json"
BWRAP = shutil.which("bwrap")

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="emulating the container needs root"),
    pytest.mark.skipif(not ctypes.util.find_library("seccomp"), reason="libseccomp2 is not installed"),
]


def worker_caps() -> str:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return ",".join(compose["services"]["worker"]["cap_add"])


def in_worker_container(*command: str, profile: Path = PROFILE, timeout: float = 300,
                        env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DOCKER_LIKE), "--seccomp", str(profile), "--caps", worker_caps(),
                           "--", *command], capture_output=True, text=True, timeout=timeout, env=env, check=False)


PYTHON_SERVICE_WORKLOAD = r"""
import ctypes, errno, json, multiprocessing, os, socket, subprocess, sys, threading
import numpy as np

report = {}
libc = ctypes.CDLL(None, use_errno=True)
def call(nr, *args):
    rc = libc.syscall(nr, *args)
    return "ok" if rc >= 0 else errno.errorcode[ctypes.get_errno()]

NR = {"bpf": 321, "ptrace": 101, "kexec_load": 246, "init_module": 175, "perf_event_open": 298,
      "keyctl": 250, "userfaultfd": 323, "io_uring_setup": 425, "open_by_handle_at": 304,
      "process_vm_readv": 310, "sync": 162}
report["denied"] = {name: call(nr, 0, 0, 0, 0, 0) for name, nr in NR.items()}

server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(1)
client = socket.create_connection(server.getsockname()); conn, _ = server.accept()
client.sendall(b"ping"); report["tcp"] = conn.recv(4).decode()
t = threading.Thread(target=lambda: report.__setitem__("thread", float(np.linalg.norm(np.ones(4)))))
t.start(); t.join()
report["subprocess"] = subprocess.run([sys.executable, "-c", "print(6*7)"], capture_output=True,
                                      text=True).stdout.strip()
with multiprocessing.get_context("fork").Pool(2) as pool:
    report["pool"] = sum(pool.map(abs, [-1, -2, -3]))
pid = os.fork()
if pid == 0:
    os._exit(0 if libc.unshare(0x10000000 | 0x00020000) == 0 else 1)  # CLONE_NEWUSER | CLONE_NEWNS
report["unshare_userns"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
print(json.dumps(report))
"""


@pytest.mark.skipif(sys.platform != "linux" or os.uname().machine != "x86_64",
                    reason="syscall numbers above are x86_64")
def test_a_python_service_works_and_the_dangerous_calls_are_refused():
    result = in_worker_container(sys.executable, "-c", PYTHON_SERVICE_WORKLOAD)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["tcp"] == "ping" and report["thread"] == 2.0
    assert report["subprocess"] == "42" and report["pool"] == 6
    assert report["unshare_userns"] == 0  # what bubblewrap needs and Docker's default profile refuses
    denied = report.pop("denied")
    assert denied.pop("sync") == "ENOSYS"  # not listed: the default action
    assert denied == {name: "EPERM" for name in denied}, denied


BWRAP_ARGS = ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
              "--uid", "65534", "--gid", "65534", "--hostname", "sandbox", "--cap-drop", "ALL", "--clearenv",
              "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
              "--symlink", "usr/bin", "/bin", "--proc", "/proc", "--dev", "/dev",
              "--size", "1048576", "--tmpfs", "/tmp", "--remount-ro", "/", "--",
              "/usr/bin/python3", "-I", "-c", "import os, socket; print(os.getuid(), socket.gethostname())"]


def as_slot_uid(*argv: str) -> list[str]:
    return ["setpriv", "--reuid=60000", "--regid=60000", "--clear-groups", "--", *argv]


@pytest.mark.skipif(BWRAP is None, reason="bubblewrap is not installed")
def test_bubblewrap_starts_as_a_slot_uid_under_the_profile():
    result = in_worker_container(*as_slot_uid(BWRAP, *BWRAP_ARGS))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["65534", "sandbox"]


@pytest.mark.skipif(BWRAP is None, reason="bubblewrap is not installed")
def test_without_the_namespace_and_mount_calls_bubblewrap_cannot_start(tmp_path):
    """The control: a profile like Docker's default in this respect fails, so the test above is
    really exercising what the profile adds."""
    profile = json.loads(PROFILE.read_text())
    removed = {"mount", "umount2", "pivot_root", "unshare", "setns", "clone3", "fsopen", "fsmount",
               "move_mount", "open_tree", "mount_setattr", "fsconfig", "fspick"}
    for rule in profile["syscalls"]:
        rule["names"] = [n for n in rule["names"] if n not in removed]
    dockerish = tmp_path / "no-mounts.json"
    dockerish.write_text(json.dumps(profile))
    result = in_worker_container(*as_slot_uid(BWRAP, *BWRAP_ARGS), profile=dockerish)
    assert result.returncode != 0
    assert "sandbox" not in result.stdout


@pytest.fixture
def reference_handin(tmp_path) -> Path:
    root = tmp_path / "handin"
    for package in ("models", "mytorch"):
        shutil.copytree(ROOT / "mytorch_reference" / package, root / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_the_real_sandbox_grades_a_handin_inside_the_worker_confinement(reference_handin):
    grader = Path(sys.executable).with_name("grader")
    result = in_worker_container(str(grader), "grade", str(reference_handin), "--json", "--jobs", "2")
    if result.returncode == 3 and "no safe sandbox" in result.stderr:
        pytest.fail(f"the sandbox refused to start under the worker's confinement: {result.stderr}")
    assert result.returncode == 0, result.stderr[-3000:]
    graded = json.loads(result.stdout)
    assert graded["score"] == graded["max_score"] == 100, result.stdout[-3000:]
    assert not graded.get("unsafe")
