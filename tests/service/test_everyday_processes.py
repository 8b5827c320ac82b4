"""Issue 13 with the real programs: the server's start-up, per-grade and shutdown lines,
`serve --help` documenting every option, and create_tarball.sh printing what failed and where
the feedback page is."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from .conftest import REFERENCE, free_port
from .test_processes import demo_server  # noqa: F401 - a fixture: `grader serve --demo` as the README runs it

GRADER = [sys.executable, "-m", "app.cli"]


def test_serve_help_documents_every_option_with_its_default():
    out = subprocess.run([*GRADER, "serve", "--help"], capture_output=True, text=True, check=True).stdout
    options = re.findall(r"^\s+(--[a-z-]+)", out, re.MULTILINE)
    assert set(options) >= {"--host", "--port", "--workers", "--demo", "--unsafe-no-sandbox", "--log-level"}
    flat = " ".join(out.split("options:", 1)[1].split())
    for option in options:
        if option == "--help":
            continue
        text = flat.split(option, 1)[1].split(" --", 1)[0]
        assert "(default:" in text, f"{option} has no default in: {text}"
    assert "(default: 127.0.0.1)" in flat and "(default: 8000)" in flat and "(default: warning)" in flat


def test_server_logs_start_up_each_grade_and_shutdown(tmp_path: Path, good_tar):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADER_") and k != "DATABASE_URL"}
    env["GRADER_UNSAFE_NO_SANDBOX"] = "1"
    proc = subprocess.Popen([*GRADER, "serve", "--demo", "--port", str(port), "--workers", "1"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    lines: list[str] = []
    up, graded = threading.Event(), threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if "grader service up at" in line:
                up.set()
            if "graded submission" in line:
                graded.set()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert up.wait(300), "".join(lines)
        token = next(line.split(":", 1)[1].strip() for line in lines if "Student token:" in line)
        r = httpx.post(f"http://127.0.0.1:{port}/api/v1/assessments/hw1p1-demo/submissions",
                       params={"wait": 120}, headers={"Authorization": f"Bearer {token}"},
                       files={"handin": ("handin.tar", good_tar)}, timeout=180)
        assert r.status_code == 200 and r.json()["status"] == "graded", r.text
        assert graded.wait(60), "".join(lines)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
        reader.join(10)
    text = "".join(lines)
    start = next(line for line in lines if "grader service up at" in line)
    assert f"http://127.0.0.1:{port}" in start and "database sqlite:///" in start
    assert "sandbox unsafe" in start and "1 grading worker(s)" in start, start
    assert re.search(rf"graded submission {r.json()['id']}: 100/100 in \d+\.\d s", text), text
    assert "grader service shutting down" in text and "grader service stopped" in text, text


@pytest.mark.skipif(shutil.which("curl") is None, reason="the student's script needs curl")
def test_create_tarball_prints_what_failed_and_the_feedback_page(demo_server, tmp_path: Path):  # noqa: F811
    base, creds = demo_server
    folder = tmp_path / "handout"
    for name in ("models", "mytorch"):
        shutil.copytree(REFERENCE / name, folder / name)
    linear = folder / "mytorch" / "nn" / "linear.py"
    linear.write_text(linear.read_text().replace("return A @ self.W.T + self.Ones @ self.b.T", "return A @ self.W.T"))
    (folder / "create_tarball.sh").write_text(httpx.get(f"{base}/handout/create_tarball.sh").text)
    env = {**os.environ, "GRADER_TOKEN": creds["token"], "GRADER_WAIT": "120"}
    run = subprocess.run(["bash", "create_tarball.sh"], cwd=folder, env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "Linear Layer  FAILED" in out
    # the first failing test's name and its first message, not only "FAILED"
    assert re.search(r"^Linear Layer: \S", out, re.MULTILINE), out
    assert "Z = Linear.forward(A): values differ" in out, out
    page = re.search(r"Feedback page: (http://\S+/submissions/(\d+))", out)
    assert page, out
    assert httpx.get(page.group(1)).status_code in (200, 303)   # the page (login first when signed out)
    sub = httpx.get(f"{base}/api/v1/submissions/{page.group(2)}",
                    headers={"Authorization": f"Bearer {creds['token']}"}).json()
    assert sub["page_url"] == f"/submissions/{page.group(2)}"
