"""The real programs: `grader serve --demo` under uvicorn on 127.0.0.1, the student's
create_tarball.sh with curl, the admin commands, the stale-schema refusal, and ?wait with
in-process workers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.settings import Settings
from app.store.db import SchemaOutOfDate

from .conftest import REFERENCE, Service, env_for, free_port

GRADER = [sys.executable, "-m", "app.cli"]


@pytest.fixture
def demo_server(tmp_path: Path):
    """`grader serve --demo` exactly as the README runs it, in an empty folder."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADER_") and k != "DATABASE_URL"}
    env["GRADER_UNSAFE_NO_SANDBOX"] = "1"
    proc = subprocess.Popen([*GRADER, "serve", "--demo", "--port", str(port), "--workers", "1"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    creds, lines = {}, []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "TA login:" in line:
                creds["ta"] = line.split(":", 1)[1].split("/")[1].strip()
            if "Student token:" in line:
                creds["token"] = line.split(":", 1)[1].strip()
                break
        assert "token" in creds, "".join(lines)
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base, creds
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)


def _handout(tmp_path: Path) -> Path:
    folder = tmp_path / "handout"
    folder.mkdir()
    for name in ("models", "mytorch"):
        shutil.copytree(REFERENCE / name, folder / name)
    return folder


def test_demo_server_accepts_a_curl_style_upload_and_waits(demo_server, tmp_path, good_tar):
    base, creds = demo_server
    headers = {"Authorization": f"Bearer {creds['token']}"}
    r = httpx.post(f"{base}/api/v1/assessments/hw1p1-demo/submissions", params={"wait": 120},
                   headers=headers, files={"handin": ("handin.tar", good_tar)}, timeout=180)
    assert r.status_code == 200, r.text   # graded within the wait
    body = r.json()
    assert body["status"] == "graded" and body["score"] == 100 and body["policy"]["early_bonus"] == 5
    ta = httpx.post(f"{base}/api/v1/login", json={"username": "ta", "password": creds["ta"]})
    assert ta.status_code == 200 and ta.json()["user"]["role"] == "ta"
    assert httpx.get(f"{base}/docs").status_code == 200


@pytest.mark.skipif(shutil.which("curl") is None, reason="the student's script needs curl")
def test_create_tarball_script_submits_and_prints_the_table(demo_server, tmp_path):
    base, creds = demo_server
    folder = _handout(tmp_path)
    script = httpx.get(f"{base}/handout/create_tarball.sh").text
    (folder / "create_tarball.sh").write_text(script)
    env = {**os.environ, "GRADER_TOKEN": creds["token"], "GRADER_WAIT": "120"}
    run = subprocess.run(["bash", "create_tarball.sh"], cwd=folder, env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Score: 100/100" in run.stdout and "Batch Norm" in run.stdout and "Early bonus: +5" in run.stdout
    # a wrong token: a clear message and a failing exit status
    env["GRADER_TOKEN"] = "gr_wrong"
    run = subprocess.run(["bash", "create_tarball.sh"], cwd=folder, env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode != 0 and "HTTP 401" in run.stderr


def test_admin_commands_and_activation(db_url, settings, tmp_path):
    env = env_for(settings)

    def grader(*args):
        return subprocess.run([*GRADER, *args], env=env, capture_output=True, text=True, timeout=120, check=False)

    assert grader("db", "upgrade").returncode == 0          # already at head: a no-op
    r = grader("user", "add", "tina", "--role", "ta", "--password", "tina-password")
    assert r.returncode == 0, r.stderr
    assert grader("user", "add", "tina").returncode == 1    # exists
    roster = tmp_path / "roster.csv"
    roster.write_text("username,name,email\nsam,Sam S,sam@example.edu\nkim,Kim K,kim@example.edu\n")
    r = grader("roster", "import", str(roster), "--base-url", "http://testserver")
    links = dict(line.split("\t") for line in r.stdout.splitlines())
    assert set(links) == {"sam", "kim"}
    assert grader("roster", "import", str(roster)).stdout == ""   # nobody new
    token = grader("token", "create", "tina").stdout.strip()
    from fastapi.testclient import TestClient

    from app.main import create_app
    app = create_app(settings)
    with TestClient(app) as client:
        assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()["user"]["role"] == "ta"
        secret = links["sam"].split("token=")[1]
        assert client.get("/activate", params={"token": secret}).status_code == 200   # the page exists
        r = client.post("/api/v1/activate", json={"token": secret, "password": "sam-password"})
        assert r.status_code == 200 and r.json()["user"]["username"] == "sam"
        r = client.post("/api/v1/activate", json={"token": secret, "password": "other-pass"})
        assert r.status_code == 400   # one-time
        assert client.post("/api/v1/login", json={"username": "sam", "password": "sam-password"}).status_code == 200
    app.state.db.dispose()


def test_refuses_to_start_on_a_stale_schema(tmp_path, assessments_dir):
    from app.main import create_app

    settings = Settings(data_dir=tmp_path / "fresh", assessments_dir=assessments_dir, secret_key="x")
    with pytest.raises(SchemaOutOfDate, match="grader db upgrade"):
        create_app(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADER_") and k != "DATABASE_URL"}
    env["GRADER_DATA_DIR"] = str(tmp_path / "fresh")
    r = subprocess.run([*GRADER, "serve", "--port", str(free_port())], env=env, capture_output=True,
                       text=True, timeout=120, check=False)
    assert r.returncode == 1 and "grader db upgrade" in r.stderr


def test_without_the_unsafe_setting_workers_grade_in_the_sandbox_or_refuse(settings, good_tar):
    from app.grading.worker import SandboxRefused, make_executor

    safe = settings.model_copy(update={"unsafe_no_sandbox": False})
    try:
        executor = make_executor(safe, 0)
    except SandboxRefused:
        return   # no sandbox here: the service refuses to grade (fails closed)
    svc = Service(safe)
    try:
        assert executor.unsafe is False
        r = svc.submit("alice", "open", good_tar)
        svc.drain(executor)
        view = svc.get("alice", r.json()["url"]).json()
        assert view["status"] == "graded" and view["unsafe"] is False and view["score"] == 100
    finally:
        executor.close()
        svc.db.dispose()


def test_wait_returns_the_grade_with_in_process_workers(settings, good_tar):
    svc = Service(settings, workers=1)
    with svc.client:   # runs the lifespan: the worker thread starts
        r = svc.submit("alice", "open", good_tar, wait=120)
        assert r.status_code == 200 and r.json()["status"] == "graded" and r.json()["score"] == 100
    svc.db.dispose()


def test_an_accepted_upload_survives_a_server_crash_right_after_the_202(db_url, settings, tiny_tar):
    from sqlalchemy import select

    from app.auth import admin
    from app.store.db import Database
    from app.store.models import Blob, Job, Submission

    db = Database(settings.db_url)
    admin.add_user(db, "alice", "student", None)
    token = admin.create_token(db, "alice")
    port = free_port()
    proc = subprocess.Popen([*GRADER, "serve", "--port", str(port), "--workers", "0"], env=env_for(settings),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx.get(f"{base}/healthz")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        r = httpx.post(f"{base}/api/v1/assessments/open/submissions", files={"handin": ("handin.tar", tiny_tar)},
                       headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 202
    finally:
        os.killpg(proc.pid, signal.SIGKILL)   # no shutdown, no flush: only what was committed remains
        proc.wait()
    with db.read_session() as s:
        sub = s.get(Submission, r.json()["id"])
        assert sub is not None and sub.status == "queued"
        assert s.get(Blob, sub.blob_sha256).data == tiny_tar
        assert s.scalar(select(Job).where(Job.submission_id == sub.id)).state == "queued"
    db.dispose()
