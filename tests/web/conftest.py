"""A real server for the browser tests: uvicorn on 127.0.0.1 (a free port), a temp SQLite
database, one in-process grading worker (the real sandbox when it works here, else the unsafe
test mode), and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import REPO, SUITE_TOML, make_tar, reference_files

SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
PASSWORDS = {"alice": "alice-password", "bob": "bob-password", "carol": "carol-password",
             "tina": "tina-password"}


# ---------------------------------------------------------------------------------------------
# handins

@pytest.fixture(scope="session")
def handins(tmp_path_factory) -> dict[str, Path]:
    """Files on disk for the browser's file picker: correct, a wrong Linear (no bias), a broken SGD."""
    folder = tmp_path_factory.mktemp("handins")
    good = reference_files()
    linear = dict(good)
    linear["mytorch/nn/linear.py"] = linear["mytorch/nn/linear.py"].replace(
        b"return A @ self.W.T + self.Ones @ self.b.T", b"return A @ self.W.T")
    assert linear["mytorch/nn/linear.py"] != good["mytorch/nn/linear.py"]
    sgd = dict(good)
    sgd["mytorch/optim/sgd.py"] += b"\nSGD.step = lambda self: None\n"
    out = {}
    for name, files in (("good", good), ("bad_linear", linear), ("bad_sgd", sgd)):
        (folder / name).mkdir()
        out[name] = folder / name / "handin.tar"
        out[name].write_bytes(make_tar(files))
    (folder / "notes.txt").write_text("not an archive")
    out["notes"] = folder / "notes.txt"
    (folder / "garbage").mkdir()
    out["garbage"] = folder / "garbage" / "handin.tar"
    out["garbage"].write_bytes(b"this is not a tar file at all" * 10)
    return out


# ---------------------------------------------------------------------------------------------
# the server

def _iso(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0).isoformat()


def write_assessments(folder: Path) -> None:
    folder.mkdir()
    (folder / "hw1p1.toml").write_text(f"""
slug = "hw1p1"
title = "HW1P1: MyTorch"
timezone = "America/New_York"
release = {_iso(-1)}
early = {_iso(2)}
due = {_iso(5)}
last_accepted = {_iso(7)}
early_bonus = 5
late_penalty_percent_per_day = 10
max_submissions = 50
min_interval_seconds = 0
counts = "latest"
upload_max_bytes = 10_485_760
""" + SUITE_TOML)


class LiveServer:
    def __init__(self, url: str, app, settings):
        self.url, self.app, self.settings = url, app, settings
        self.db = app.state.db
        self.gate = threading.Event()
        self.gate.set()

    def token(self, username: str) -> str:
        from app.auth import admin
        return admin.create_token(self.db, username, "test")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> LiveServer:
    import uvicorn

    from app.auth import admin
    from app.grading.supervisor import Supervisor
    from app.grading.worker import SandboxRefused
    from app.main import create_app
    from app.settings import Settings
    from app.store.db import upgrade

    root = tmp_path_factory.mktemp("web")
    write_assessments(root / "assessments")
    url = f"sqlite:///{root / 'data' / 'grader.db'}"
    upgrade(url)
    settings = Settings(database_url=url, data_dir=root / "data", assessments_dir=root / "assessments",
                        secret_key="web-test-secret", uploads_per_minute=1000, login_attempts_per_minute=1000,
                        lease_seconds=60, heartbeat_seconds=5, poll_seconds=0.2, max_attempts=2, workers=1)
    app = create_app(settings, workers=1)
    try:
        app.state.workers.prepare()          # the real sandbox (works as root on this machine)
    except SandboxRefused:
        settings = settings.model_copy(update={"unsafe_no_sandbox": True})
        app.state.settings = settings
        app.state.workers = Supervisor(app.state.db, settings, 1)
        app.state.workers.prepare()

    for name, role, display in (("alice", "student", "Alice Anders"), ("bob", "student", "Bob Brown"),
                                ("carol", "student", "Carol Chen"), ("tina", "ta", "Tina TA")):
        admin.add_user(app.state.db, name, role, PASSWORDS[name], display, f"{name}@example.edu")

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # Activation links and the handout script use the configured public address: this server's.
    settings = settings.model_copy(update={"base_url": f"http://127.0.0.1:{port}"})
    app.state.settings = settings
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:   # startup, not a timing assertion
        if not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    live = LiveServer(f"http://127.0.0.1:{port}", app, settings)
    # Tests can hold the workers (live.gate.clear()) to see a submission queued, then let them go.
    import app.grading.queue as queue_module
    real_claim = queue_module.claim
    queue_module.claim = lambda *a, **kw: real_claim(*a, **kw) if live.gate.is_set() else None
    try:
        yield live
    finally:
        live.gate.set()
        queue_module.claim = real_claim
    server.should_exit = True
    thread.join(60)
    sock.close()


# ---------------------------------------------------------------------------------------------
# the browser

@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; .ci/install-system-deps.sh does)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def new_page(browser, live_server):
    """new_page(username=None, width=1280): a page in a fresh context, logged in when asked."""
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)
    contexts = []

    def make(username: str | None = None, width: int = 1280, height: int = 900):
        ctx = browser.new_context(base_url=live_server.url, viewport={"width": width, "height": height},
                                  accept_downloads=True)
        ctx.set_default_timeout(60_000)
        contexts.append(ctx)
        page = ctx.new_page()
        if username:
            login(page, username)
        return page

    yield make
    for ctx in contexts:
        ctx.close()


def login(page, username: str) -> None:
    from playwright.sync_api import expect

    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORDS[username])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1, name="Assessments")).to_be_visible()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def helpers():
    """Plain functions the tests share (login, screenshot)."""
    class H:
        pass
    h = H()
    h.login, h.screenshot, h.passwords, h.screenshot_dir = login, screenshot, PASSWORDS, SCREENSHOTS
    return h


@pytest.fixture(scope="session")
def seeded(live_server, handins) -> dict[str, int]:
    """Graded submissions through the JSON API: bob a broken SGD (90), carol a correct one (100 + 5)."""
    import httpx

    ids = {}
    with httpx.Client(base_url=live_server.url, timeout=300) as client:
        for name, kind in (("bob", "bad_sgd"), ("carol", "good")):
            r = client.post("/api/v1/assessments/hw1p1/submissions", params={"wait": 240},
                            headers={"Authorization": f"Bearer {live_server.token(name)}"},
                            files={"handin": ("handin.tar", handins[kind].read_bytes())})
            assert r.status_code == 200, r.text   # graded within the wait
            assert r.json()["status"] == "graded", r.json()
            ids[name] = r.json()["id"]
    return ids
