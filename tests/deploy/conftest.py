"""The compose deployment, run natively: a real Postgres server (TCP on 127.0.0.1, password auth,
as in docker-compose.yml), `grader db upgrade`, one `grader serve --workers 0` and three
`grader worker` processes, each a real OS process that tests may SIGKILL or restart.

Postgres refuses to run as root: it runs as the unprivileged `postgres` account (created with
useradd when missing), from a temporary directory that account owns.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import REPO as ROOT
from support import SUITE_TOML, free_port, make_tar, reference_files

from bench.pg import Postgres, find_pg_bin

GRADER = Path(sys.executable).with_name("grader")
HANG_GUARD = 240.0  # seconds: only to turn a hang into a failure, never a performance assertion


def wait_until(predicate, what: str, timeout: float = HANG_GUARD, interval: float = 0.2):
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(interval)


# ---- handins ----

def correct_handin(tag: str = "") -> bytes:
    files = reference_files()
    files["models/NOTE.txt"] = tag.encode()  # distinct bytes (own blob) per tag, same grade
    return make_tar(files)


def broken_handin() -> bytes:
    """The reference with a broken SGD step: that section fails, 90/100."""
    files = reference_files()
    files["mytorch/optim/sgd.py"] += b"\nSGD.step = lambda self: None\n"
    return make_tar(files)


def slow_handin(seconds: int = 6) -> bytes:
    """Correct, but every section first sleeps (inside the sandbox): long enough to kill a worker
    mid-grade, well under the sandbox's wall limit."""
    files = reference_files()
    files["mytorch/nn/linear.py"] = f"import time\ntime.sleep({seconds})\n".encode() + files["mytorch/nn/linear.py"]
    return make_tar(files)


CRASH_MARKER = b"GRADER-FAULT-INJECTION: crash the trusted grader"


def grader_crashing_handin() -> bytes:
    """Correct student code plus a marker file that makes the (injected) grader bug fire."""
    files = reference_files()
    files["models/CRASH.txt"] = CRASH_MARKER
    return make_tar(files)


# ---- Postgres ----

@pytest.fixture(scope="session")
def postgres():
    if os.geteuid() != 0:
        pytest.skip("the native deployment test runs Postgres as another user: needs root")
    bindir = find_pg_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries; .ci/install-system-deps.sh test installs them")
    pg = Postgres(bindir, durable=False)
    yield pg
    pg.destroy()


# ---- the grader processes ----

def sandbox_usable() -> str | None:
    """None when the real sandbox works here, else why not."""
    probe = subprocess.run([sys.executable, "-c", "import sandbox; print(sandbox.check_backend())"],
                           capture_output=True, text=True, cwd=ROOT, check=False)
    return None if probe.returncode == 0 else (probe.stderr.strip().splitlines() or ["?"])[-1]


FAULT_INJECTION = f'''
# Fault injection for tests/deploy only: a grader bug triggered by one specific handin.
import grader.grade as _grade
_real_grade = _grade.grade
def grade(source, *args, **kwargs):
    if isinstance(source, (bytes, bytearray)) and {CRASH_MARKER!r} in source:
        raise RuntimeError("injected grader bug: the trusted side crashed on this handin")
    return _real_grade(source, *args, **kwargs)
_grade.grade = grade
'''


class Deployment:
    """postgres + migrate + web + 3 workers, as in docker-compose.yml, as native processes."""

    def __init__(self, pg: Postgres, workdir: Path, slug: str = "hw1p1-deploy"):
        self.pg = pg
        self.workdir = workdir
        self.slug = slug
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.logs = workdir / "logs"
        self.logs.mkdir()
        assessments = workdir / "assessments"
        assessments.mkdir()
        now = datetime.now(UTC).replace(microsecond=0)
        iso = lambda days: (now + timedelta(days=days)).isoformat()
        (assessments / f"{slug}.toml").write_text(
            f'slug = "{slug}"\ntitle = "deploy test"\ntimezone = "America/New_York"\n'
            f"release = {iso(-1)}\ndue = {iso(5)}\nlast_accepted = {iso(7)}\n"
            f"max_submissions = 1000\nmin_interval_seconds = 0\n" + SUITE_TOML)
        inject = workdir / "inject"
        inject.mkdir()
        (inject / "sitecustomize.py").write_text(FAULT_INJECTION)
        self.unsafe_reason = sandbox_usable()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GRADER_") and k != "DATABASE_URL"}
        self.env.update({
            "DATABASE_URL": pg.url,
            "GRADER_DATA_DIR": str(workdir / "data"),
            "GRADER_ASSESSMENTS_DIR": str(assessments),
            "GRADER_SECRET_KEY": "deploy-test-secret",
            "GRADER_UPLOADS_PER_MINUTE": "100000",
            "GRADER_LEASE_SECONDS": "8", "GRADER_HEARTBEAT_SECONDS": "1", "GRADER_POLL_SECONDS": "0.2",
            "GRADER_MAX_ATTEMPTS": "3", "GRADER_SANDBOX_SLOTS": "2",
            "PYTHONPATH": str(inject),
        })
        if self.unsafe_reason:
            self.env["GRADER_UNSAFE_NO_SANDBOX"] = "1"
        self.web: subprocess.Popen | None = None
        self.workers: dict[int, subprocess.Popen] = {}
        self.run("db", "upgrade")
        self.run("user", "add", "alice", "--role", "student")
        self.run("user", "add", "tina", "--role", "ta")
        self.tokens = {name: self.run("token", "create", name).stdout.strip().splitlines()[-1]
                       for name in ("alice", "tina")}

    def run(self, *args: str) -> subprocess.CompletedProcess:
        result = subprocess.run([str(GRADER), *args], env=self.env, capture_output=True, text=True,
                                cwd=self.workdir, timeout=HANG_GUARD, check=False)
        assert result.returncode == 0, f"grader {' '.join(args)}: {result.stderr}"
        return result

    def _spawn(self, name: str, *args: str, prefix: tuple[str, ...] = ()) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the child process keeps writing to it
        return subprocess.Popen([*prefix, str(GRADER), *args], env=self.env, cwd=self.workdir, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    @staticmethod
    def worker_container() -> tuple[str, ...]:
        """Start workers confined like the compose `worker` container: its seccomp profile, its
        cap_add list, cgroups read-only (docker_like.py, which execs, so the pid stays the worker's)."""
        import yaml
        caps = ",".join(yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["worker"]["cap_add"])
        return (sys.executable, str(Path(__file__).with_name("docker_like.py")),
                "--seccomp", str(ROOT / "deploy" / "seccomp-bwrap.json"), "--caps", caps, "--")

    def start_web(self) -> None:
        self.web = self._spawn("web", "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "0")
        wait_until(self.healthy, "the web process to answer /healthz")

    def healthy(self) -> bool:
        import httpx
        if self.web is not None and self.web.poll() is not None:
            raise AssertionError(f"web exited with {self.web.returncode}: {self.log('web')}")
        try:
            return httpx.get(f"{self.base}/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def start_worker(self, index: int) -> subprocess.Popen:
        # one slot range per process: --first-index (each index = GRADER_SANDBOX_SLOTS slot uids)
        proc = self._spawn(f"worker{index}", "worker", "--first-index", str(index), prefix=self.worker_container())
        self.workers[index] = proc
        # One at a time: every worker's start-up probe uses the same sandbox slot (4999), and
        # concurrent probes on one host kill each other's runs (reported; in Docker each replica
        # has its own pid namespace).
        started = "grader worker:"
        seen = self.log(f"worker{index}").count(started)
        wait_until(lambda: proc.poll() is not None or self.log(f"worker{index}").count(started) > seen,
                   f"worker {index} to start")
        assert proc.poll() is None, f"worker {index} exited: {self.log(f'worker{index}')}"
        return proc

    def worker_name_prefix(self, index: int) -> str:
        return f"{socket.gethostname()}:{self.workers[index].pid}:"

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self, proc: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, sig)  # each process leads its own session (start_new_session)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def close(self) -> None:
        for proc in list(self.workers.values()) + [self.web]:
            self.kill(proc)

    # ---- HTTP API ----

    def auth(self, name: str = "alice") -> dict:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def upload(self, data: bytes, name: str = "alice", timeout: float = 60):
        import httpx
        return httpx.post(f"{self.base}/api/v1/assessments/{self.slug}/submissions", headers=self.auth(name),
                          files={"handin": ("handin.tar", data)}, timeout=timeout)

    def submission(self, sub_id: int, name: str = "alice") -> dict:
        import httpx
        r = httpx.get(f"{self.base}/api/v1/submissions/{sub_id}", headers=self.auth(name), timeout=30)
        r.raise_for_status()
        return r.json()

    def wait_finished(self, sub_id: int) -> dict:
        def finished():
            view = self.submission(sub_id)
            return view if view["status"] in ("graded", "error") else None
        return wait_until(finished, f"submission {sub_id} to be graded", interval=0.5)

    # ---- direct reads of the database (what the API does not show) ----

    def sql(self, query: str, *params) -> list[tuple]:
        import psycopg
        with psycopg.connect(self.pg.url, connect_timeout=10) as conn:
            return conn.execute(query, params).fetchall()


@pytest.fixture(scope="module")
def deployment(postgres, tmp_path_factory):
    dep = Deployment(postgres, tmp_path_factory.mktemp("deployment"))
    try:
        dep.start_web()
        for index in range(3):
            dep.start_worker(index)
        yield dep
    finally:
        dep.close()
