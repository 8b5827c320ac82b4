"""The README's first command, as a newcomer runs it: `scripts/run.sh` sets up, says what it is
doing at each step, applies the migrations and serves the demo course with its logins printed."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

import httpx
from support import REPO, free_port


def test_run_sh_says_what_it_does_then_serves_the_demo_course(tmp_path: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADER_") and k != "DATABASE_URL"}
    env["GRADER_DATA_DIR"] = str(tmp_path / "data")   # not the checkout's ./data
    proc = subprocess.Popen(["bash", "scripts/run.sh", "--port", str(port), "--workers", "1"], cwd=REPO,
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    up = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if "grader service up at" in line:
                up.set()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert up.wait(900), "".join(lines)
        page = httpx.get(f"http://127.0.0.1:{port}/login", timeout=60)
        assert page.status_code == 200 and "Log in" in page.text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
        reader.join(10)
    text = "".join(lines)
    steps = [line for line in lines if line.startswith("==> [")]
    assert [s.split("] ", 1)[1].split(" ", 1)[0] for s in steps] == ["Setting", "Database:", "Starting"], text
    assert ".venv is ready" in text and "database is up to date" in text, text
    assert "Student token:" in text, text    # the demo course's accounts are printed
