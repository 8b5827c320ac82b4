import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def sandbox_executor():
    import sandbox
    from grader.execute import SandboxExecutor

    try:
        executor = SandboxExecutor(slots=2)
    except sandbox.BackendUnavailable as exc:
        pytest.skip(f"no sandbox backend on this kernel: {exc}")
    yield executor
    executor.close()


@pytest.fixture
def handin(tmp_path) -> Path:
    """A copy of the reference solution as a handin directory, to be edited by each attack."""
    root = tmp_path / "handin"
    for package in ("models", "mytorch"):
        shutil.copytree(ROOT / "mytorch_reference" / package, root / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return root



# ---------------------------------------------------------------------------------------------
# the web tier: the app in-process (TestClient), a real uvicorn as `grader serve` configures it
# (in a thread), and `grader serve` itself (a subprocess)

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from support import SUITE_TOML, every_graded_file, free_port, make_tar

ACCOUNTS = {"alice": "student", "bob": "student", "tina": "ta", "tom": "ta", "ada": "admin"}
TINY_TAR = make_tar(every_graded_file({"models/__init__.py": b"", "mytorch/__init__.py": b""}))


def iso(when: datetime) -> str:
    return when.astimezone(UTC).replace(microsecond=0).isoformat()


def write_assessment(folder: Path, slug: str, release: datetime, due: datetime, last: datetime, **extra) -> None:
    lines = [f'slug = "{slug}"', f'title = "{slug}"', f"release = {iso(release)}", f"due = {iso(due)}",
             f"last_accepted = {iso(last)}"] + [f"{k} = {v!r}" for k, v in extra.items()]
    (folder / f"{slug}.toml").write_text("\n".join(lines) + "\n" + SUITE_TOML)


def make_settings(tmp_path: Path, **overrides):
    """A migrated SQLite database, assessments open now, and ACCOUNTS with password NAME-password."""
    from app.auth import admin
    from app.settings import Settings
    from app.store.db import Database, upgrade

    folder = tmp_path / "assessments"
    folder.mkdir(exist_ok=True)
    now = datetime.now(UTC)
    write_assessment(folder, "open", now - timedelta(days=1), now + timedelta(days=5), now + timedelta(days=7))
    write_assessment(folder, "capped", now - timedelta(days=1), now + timedelta(days=5), now + timedelta(days=7),
                     upload_max_bytes=20000)
    url = f"sqlite:///{tmp_path / 'data' / 'grader.db'}"
    upgrade(url)
    db = Database(url)
    for name, role in ACCOUNTS.items():
        admin.add_user(db, name, role, f"{name}-password")
    db.dispose()
    values = {"database_url": url, "data_dir": tmp_path / "data", "assessments_dir": folder,
              "unsafe_no_sandbox": True, "secret_key": "web-attack-secret", "workers": 0}
    values.update(overrides)
    return Settings(**values)


class Web:
    """The app in-process with a TestClient per browser."""

    def __init__(self, settings):
        from fastapi.testclient import TestClient

        from app.auth import admin
        from app.main import create_app

        self.settings = settings
        self.app = create_app(settings)
        self.db = self.app.state.db
        self.tokens = {name: admin.create_token(self.db, name) for name in ACCOUNTS}
        self._clients = []
        self._TestClient = TestClient

    def browser(self):
        client = self._TestClient(self.app, follow_redirects=False)
        self._clients.append(client)
        return client

    def bearer(self, name: str) -> dict:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def close(self):
        for c in self._clients:
            c.close()
        self.db.dispose()


def form_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]*)"', html).group(1)


def page_login(client, name: str, password: str | None = None):
    """Log in through the login page as a browser does (its form token included)."""
    token = form_token(client.get("/login").text)
    return client.post("/login", data={"username": name, "password": password or f"{name}-password",
                                       "csrf_token": token, "next": "/"})


@pytest.fixture
def web(tmp_path):
    w = Web(make_settings(tmp_path))
    yield w
    w.close()


@contextlib.contextmanager
def threaded_server(settings):
    """The app under uvicorn configured exactly as `grader serve` does (app.http.server), in a thread."""
    import uvicorn

    from app.http.server import public_settings, uvicorn_config
    from app.main import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = public_settings(settings, "127.0.0.1", port)
    app = create_app(settings)
    server = uvicorn.Server(uvicorn_config(app, settings, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:   # startup, not a timing assertion
        if not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()


def env_for(settings, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADER_") and k != "DATABASE_URL"}
    env.update(DATABASE_URL=settings.db_url, GRADER_DATA_DIR=str(settings.data_dir),
               GRADER_ASSESSMENTS_DIR=str(settings.assessments_dir), GRADER_SECRET_KEY=settings.secret_key)
    env.update({f"GRADER_{k.upper()}": str(v) for k, v in extra.items()})
    return env


@contextlib.contextmanager
def grader_serve(settings, **extra_settings):
    """`grader serve --workers 0` as a subprocess on a free port; yields its base URL."""
    import httpx

    port = free_port()
    # `grader` is app.cli:main; run it as a module so a stale installed entry point cannot matter
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--workers", "0", "--port", str(port)],
                            env=env_for(settings, **extra_settings), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:   # startup, not a timing assertion
            if proc.poll() is not None:
                raise RuntimeError("grader serve exited: " + proc.stdout.read().decode(errors="replace"))
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
