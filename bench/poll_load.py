"""What the live status costs the server: each queued submission's page polls every 1.5 s.

    .venv/bin/python bench/poll_load.py [--queued 200] [--requests 300]

Builds a throwaway SQLite service with QUEUED jobs waiting (no workers, so they stay queued),
then times the two polled endpoints in-process (no network): the submission page's
GET /api/v1/submissions/ID (status + queue position + estimate) and the assessment page's
GET /assessments/SLUG/mine (the history fragment). Prints the mean and p95 per request, the CPU
seconds per request, and what N students watching at once cost: N / 1.5 requests per second,
as a share of one core (and at the 10 s a submission far back in the queue polls at).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
POLL_SECONDS = 1.5   # app/static/app.js, for a grade that is close
FAR_POLL_SECONDS = 10.0   # and for one far off in the queue (a sixth of the estimate, at most 10 s)


def _assessment(folder: Path) -> None:
    from support import SUITE_TOML

    now = datetime.now(UTC).replace(microsecond=0)
    folder.mkdir()
    (folder / "hw1p1.toml").write_text(f"""
slug = "hw1p1"
title = "HW1P1"
timezone = "America/New_York"
release = {(now - timedelta(days=1)).isoformat()}
due = {(now + timedelta(days=5)).isoformat()}
last_accepted = {(now + timedelta(days=7)).isoformat()}
max_submissions = 0
min_interval_seconds = 0
""" + SUITE_TOML)


def timed(client, url: str, headers: dict, n: int) -> tuple[list[float], float]:
    walls = []
    cpu0 = time.process_time()
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(url, headers=headers)
        walls.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.text
    return walls, (time.process_time() - cpu0) / n


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queued", type=int, default=200)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    from fastapi.testclient import TestClient
    from support import make_tar, reference_files

    from app.auth import admin
    from app.main import create_app
    from app.settings import Settings
    from app.store.db import upgrade

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _assessment(root / "assessments")
        url = f"sqlite:///{root / 'grader.db'}"
        upgrade(url)
        settings = Settings(database_url=url, data_dir=root, assessments_dir=root / "assessments",
                            secret_key="bench", uploads_per_minute=100000)
        app = create_app(settings)
        tar = make_tar(reference_files())
        for i in range(args.queued):
            admin.add_user(app.state.db, f"s{i}", "student", "password-123")
        tokens = [admin.create_token(app.state.db, f"s{i}") for i in range(args.queued)]
        with TestClient(app) as client:
            ids = []
            for token in tokens:   # one queued submission per student, nothing grades them
                r = client.post("/api/v1/assessments/hw1p1/submissions", headers={"Authorization": f"Bearer {token}"},
                                files={"handin": ("handin.tar", tar)})
                ids.append(r.json()["id"])
            last = {"Authorization": f"Bearer {tokens[-1]}"}
            body = client.get(f"/api/v1/submissions/{ids[-1]}", headers=last).json()
            assert body["queue"]["position"] == args.queued, body["queue"]
            client.post("/api/v1/login", json={"username": f"s{args.queued - 1}", "password": "password-123"})
            rows = []
            for name, path, headers in (("submission status (API)", f"/api/v1/submissions/{ids[-1]}", last),
                                        ("assessment history fragment", "/assessments/hw1p1/mine", {})):
                timed(client, path, headers, 20)   # warm up
                walls, cpu = timed(client, path, headers, args.requests)
                walls.sort()
                rows.append((name, statistics.mean(walls), walls[int(0.95 * len(walls))], cpu))
        app.state.db.dispose()
    print(f"{args.queued} submissions queued; {args.requests} requests each, in-process (no network), SQLite")
    for name, mean, p95, cpu in rows:
        print(f"  {name:30s} mean {mean * 1000:6.1f} ms  p95 {p95 * 1000:6.1f} ms  CPU {cpu * 1000:6.1f} ms/request")
        for watchers in (50, 200, 500):
            near, far = watchers / POLL_SECONDS, watchers / FAR_POLL_SECONDS
            print(f"      {watchers:4d} watching: every {POLL_SECONDS:g} s {near:6.1f} req/s = {near * cpu * 100:5.1f}% "
                  f"of one core; every {FAR_POLL_SECONDS:g} s {far:5.1f} req/s = {far * cpu * 100:5.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
