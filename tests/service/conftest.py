"""Fixtures for the service tests: real SQLite files and a real throwaway Postgres cluster.

Every test that takes `db_url` runs twice, once per backend. The Postgres cluster is started by
the tests themselves (initdb + pg_ctl as the unprivileged `postgres` user, Unix socket only) and
stopped at the end; those tests are skipped only when no PostgreSQL binaries exist at all.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from datetime import UTC
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support import REFERENCE, REPO, every_graded_file, free_port, make_tar, reference_files  # noqa: F401

from app.settings import Settings
from app.store.db import Database, upgrade

# ---------------------------------------------------------------------------------------------
# handins

@pytest.fixture(scope="session")
def good_tar() -> bytes:
    """The reference solution as a handin: full marks."""
    return make_tar(reference_files())


@pytest.fixture(scope="session")
def partial_tar() -> bytes:
    """The reference with a broken SGD: 90/100."""
    files = reference_files()
    files["mytorch/optim/sgd.py"] += b"\nSGD.step = lambda self: None\n"
    return make_tar(files)


@pytest.fixture(scope="session")
def tiny_tar() -> bytes:
    """A handin that grades fast (every graded file empty, every section fails): 0/100."""
    return make_tar(every_graded_file({"models/__init__.py": b"", "mytorch/__init__.py": b""}))


# ---------------------------------------------------------------------------------------------
# assessments

def write_assessment(folder: Path, slug: str, release: str, due: str, last: str, early: str | None = None,
                     suite: str = "hw1p1", **extra) -> None:
    lines = [f'slug = "{slug}"', f'title = "{slug}"', f'suite = "{suite}"', 'timezone = "America/New_York"',
             f"release = {release}", f"due = {due}", f"last_accepted = {last}"]
    if early:
        lines.append(f"early = {early}")
    for key, value in extra.items():
        lines.append(f"{key} = {value!r}" if not isinstance(value, str) else f'{key} = "{value}"')
    (folder / f"{slug}.toml").write_text("\n".join(lines) + "\n")


def _iso(delta_days: float) -> str:
    from datetime import datetime, timedelta
    return (datetime.now(UTC) + timedelta(days=delta_days)).replace(microsecond=0).isoformat()


@pytest.fixture
def assessments_dir(tmp_path: Path) -> Path:
    """Test assessments with dates around now (the server's real clock decides)."""
    folder = tmp_path / "assessments"
    folder.mkdir()
    write_assessment(folder, "open", _iso(-1), _iso(5), _iso(7), early=_iso(2), early_bonus=5,
                     late_penalty_percent_per_day=10.0)
    write_assessment(folder, "late", _iso(-10), _iso(-1.5), _iso(3), early=_iso(-5), early_bonus=5,
                     late_penalty_percent_per_day=10.0)
    write_assessment(folder, "closed", _iso(-10), _iso(-3), _iso(-1), late_penalty_percent_per_day=10.0)
    write_assessment(folder, "future", _iso(1), _iso(5), _iso(7))
    write_assessment(folder, "limited", _iso(-1), _iso(5), _iso(7), max_submissions=2)
    write_assessment(folder, "interval", _iso(-1), _iso(5), _iso(7), min_interval_seconds=3600)
    write_assessment(folder, "capped", _iso(-1), _iso(5), _iso(7), upload_max_bytes=20000)
    write_assessment(folder, "best", _iso(-1), _iso(5), _iso(7), counts="best")
    return folder


# ---------------------------------------------------------------------------------------------
# databases

def _find_pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _pg_user() -> str:
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("no unprivileged user to run PostgreSQL as")


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL cluster: yields a base URL without a database name."""
    bindir = _find_pg_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries (initdb) found; .ci/install-system-deps.sh installs them")
    user = _pg_user()
    pw = pwd.getpwnam(user)
    root = Path(tempfile.mkdtemp(prefix="grader-pg-"))
    os.chown(root, pw.pw_uid, pw.pw_gid)
    data, sock = root / "data", root
    as_user = {"user": pw.pw_uid, "group": pw.pw_gid, "cwd": root}
    port = free_port()
    subprocess.run([bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                    "--no-sync"], check=True, capture_output=True, **as_user)
    opts = f"-k {sock} -p {port} -c listen_addresses='' -c fsync=off -c max_connections=200"
    subprocess.run([bindir / "pg_ctl", "-D", data, "-o", opts, "-l", root / "log", "-w", "start"],
                   check=True, capture_output=True, **as_user)
    try:
        yield f"postgresql+psycopg://postgres@/{{db}}?host={sock}&port={port}"
    finally:
        subprocess.run([bindir / "pg_ctl", "-D", data, "-m", "immediate", "stop"], check=False, capture_output=True,
                       **as_user)
        shutil.rmtree(root, ignore_errors=True)


def _admin(base: str, sql: str) -> None:
    import psycopg
    url = base.format(db="postgres").replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path: Path) -> str:
    """A fresh, migrated database on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'data' / 'grader.db'}"
        upgrade(url)
        yield url
        return
    base = request.getfixturevalue("pg_cluster")
    name = "t_" + uuid.uuid4().hex[:12]
    _admin(base, f"CREATE DATABASE {name}")
    url = base.format(db=name)
    upgrade(url)
    yield url
    _admin(base, f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def settings(db_url: str, tmp_path: Path, assessments_dir: Path) -> Settings:
    return Settings(database_url=db_url, data_dir=tmp_path / "data", assessments_dir=assessments_dir,
                    unsafe_no_sandbox=True, secret_key="test-secret", uploads_per_minute=1000,
                    lease_seconds=30, heartbeat_seconds=5, max_attempts=2, poll_seconds=0.1)


def env_for(settings: Settings) -> dict[str, str]:
    """Environment for a `grader` subprocess using the same settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADER_") and k != "DATABASE_URL"}
    env.update(DATABASE_URL=settings.db_url, GRADER_DATA_DIR=str(settings.data_dir),
               GRADER_ASSESSMENTS_DIR=str(settings.assessments_dir), GRADER_UNSAFE_NO_SANDBOX="1",
               GRADER_SECRET_KEY="test-secret", GRADER_LEASE_SECONDS=str(settings.lease_seconds),
               GRADER_HEARTBEAT_SECONDS=str(settings.heartbeat_seconds),
               GRADER_POLL_SECONDS="0.1", GRADER_MAX_ATTEMPTS=str(settings.max_attempts))
    return env


# ---------------------------------------------------------------------------------------------
# a running app (TestClient) with three accounts

class Service:
    def __init__(self, settings: Settings, workers: int = 0):
        from fastapi.testclient import TestClient

        from app.auth import admin
        from app.main import create_app

        self.settings = settings
        self.app = create_app(settings, workers=workers)
        self.db: Database = self.app.state.db
        self.tokens = {}
        for name, role in (("alice", "student"), ("bob", "student"), ("tina", "ta")):
            admin.add_user(self.db, name, role, f"{name}-password")
            self.tokens[name] = admin.create_token(self.db, name)
        self.client = TestClient(self.app)

    def auth(self, name: str) -> dict:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def submit(self, name: str, slug: str, data: bytes, **params):
        return self.client.post(f"/api/v1/assessments/{slug}/submissions", params=params,
                                headers=self.auth(name), files={"handin": ("handin.tar", data)})

    def get(self, name: str, url: str, **kw):
        return self.client.get(url, headers=self.auth(name), **kw)

    def post(self, name: str, url: str, **kw):
        return self.client.post(url, headers=self.auth(name), **kw)

    def drain(self, executor=None) -> int:
        """Grade everything queued, in this thread, with the real grader."""
        from app.grading.worker import Worker
        from grader.execute import UnsafeExecutor

        worker = Worker(self.db, self.settings, executor or UnsafeExecutor(), name="test-worker")
        n = 0
        while worker.run_once():
            n += 1
        return n


@pytest.fixture
def service(settings: Settings):
    svc = Service(settings)
    yield svc
    svc.client.close()
    svc.db.dispose()


@pytest.fixture
def browser_session(service):
    """A cookie session for bob, as the login form gives one, and its CSRF token."""
    client = TestClient(service.app)
    # The login form carries its own signed token (login CSRF, issue 10): read it as a browser would.
    form = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    r = client.post("/login", data={"username": "bob", "password": "bob-password", "next": "/",
                                    "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303, r.text
    csrf = client.get("/api/v1/me").json()["csrf_token"]
    assert csrf
    yield client, csrf
    client.close()
