"""Deadline rush: N uploads from C concurrent clients against `grader serve` on 127.0.0.1.

Starts its own `grader serve` (SQLite, in-process workers) in a temporary folder on a free
loopback port, creates the students, uploads, waits until the queue is empty, and prints:
accept latency p50/p99, time until the queue is empty, graded per second, lost submissions.

    python bench/rush.py                      # 1,000 uploads, 50 clients (long: every one is graded)
    python bench/rush.py --n 200 --clients 50 --handin tiny
Grading runs WITHOUT a sandbox unless --sandbox is given (the bench measures the service).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
SECTIONS = (REPO / "assessments" / "hw1p1.toml").read_text().split("[sections]", 1)[1]


def make_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def handin(kind: str, i: int) -> bytes:
    """Each upload differs by one comment, so each is its own blob, as in a real rush."""
    if kind == "tiny":
        files = {"models/__init__.py": b"", "mytorch/__init__.py": b""}
    else:
        ref = REPO / "mytorch_reference"
        files = {str(p.relative_to(ref)): p.read_bytes() for p in sorted(ref.rglob("*.py"))
                 if p.relative_to(ref).parts[0] in ("models", "mytorch")}
    files["models/__init__.py"] = files["models/__init__.py"] + f"\n# upload {i}\n".encode()
    return make_tar(files)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


async def upload_all(base: str, tokens: list[str], n: int, clients: int, kind: str):
    latencies: list[float] = []
    accepted: list[int] = []
    failures: list[str] = []
    payloads = [handin(kind, i) for i in range(n)]
    counter = iter(range(n))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        async def one_client():
            for i in counter:
                token = tokens[i % len(tokens)]
                t0 = time.perf_counter()
                r = await client.post("/api/v1/assessments/rush/submissions",
                                      headers={"Authorization": f"Bearer {token}"},
                                      files={"handin": ("handin.tar", payloads[i])})
                latencies.append(time.perf_counter() - t0)
                if r.status_code == 202:
                    accepted.append(r.json()["id"])
                else:
                    failures.append(f"{r.status_code} {r.text[:200]}")
        await asyncio.gather(*(one_client() for _ in range(clients)))
    return latencies, accepted, failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="uploads")
    ap.add_argument("--clients", type=int, default=50, help="concurrent clients")
    ap.add_argument("--students", type=int, default=50)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="in-process grading workers")
    ap.add_argument("--handin", choices=["reference", "tiny"], default="reference",
                    help="reference: full marks (~1.5 s of grading); tiny: fails fast (~0.8 s)")
    ap.add_argument("--sandbox", action="store_true", help="grade in the sandbox (default: unsafe mode)")
    args = ap.parse_args()
    # SIGTERM (e.g. from `timeout`) must still stop the server we start: run the finally blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    tmp = Path(tempfile.mkdtemp(prefix="grader-rush-"))
    (tmp / "assessments").mkdir()
    (tmp / "assessments" / "rush.toml").write_text(
        'slug = "rush"\ntitle = "Rush"\ntimezone = "America/New_York"\nrelease = 2020-01-01T00:00:00\n'
        "due = 2099-01-01T00:00:00\nlast_accepted = 2099-01-01T00:00:00\n[sections]" + SECTIONS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADER_") and k != "DATABASE_URL"}
    env.update(GRADER_DATA_DIR=str(tmp / "data"), GRADER_ASSESSMENTS_DIR=str(tmp / "assessments"),
               GRADER_UPLOADS_PER_MINUTE="1000000", GRADER_SECRET_KEY="bench")
    if not args.sandbox:
        env["GRADER_UNSAFE_NO_SANDBOX"] = "1"
    os.environ.update({k: v for k, v in env.items() if k.startswith("GRADER_")})

    sys.path.insert(0, str(REPO))
    from app import admin
    from app.db import Database, upgrade
    from app.settings import Settings

    settings = Settings()
    upgrade(settings.db_url)
    db = Database(settings.db_url)
    tokens = []
    for i in range(args.students):
        admin.add_user(db, f"s{i:03d}", "student", None)
        tokens.append(admin.create_token(db, f"s{i:03d}"))
    admin.add_user(db, "ta", "ta", None)
    ta_token = admin.create_token(db, "ta")

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(tmp / "serve.log", "wb")  # noqa: SIM115 (the server writes to it until it stops)
    server = subprocess.Popen([sys.executable, "-m", "grader.cli", "serve", "--host", "127.0.0.1",
                               "--port", str(port), "--workers", str(args.workers)],
                              env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        print(f"grader serve on {base}: {args.workers} worker(s); {args.n} uploads ({args.handin}) "
              f"from {args.clients} clients, {args.students} students", flush=True)
        t0 = time.perf_counter()
        latencies, accepted, failures = asyncio.run(
            upload_all(base, tokens, args.n, args.clients, args.handin))
        t_uploaded = time.perf_counter() - t0
        print(f"uploads done in {t_uploaded:.1f} s; waiting for the queue to empty...", flush=True)
        ta = {"Authorization": f"Bearer {ta_token}"}
        while True:
            q = httpx.get(f"{base}/api/v1/queue", headers=ta, timeout=60).json()
            if q["queued"] == 0 and q["running"] == 0:
                break
            time.sleep(0.5)
        t_empty = time.perf_counter() - t0
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)

    # Lost = an accepted id without exactly one graded result (read from the database itself).
    from sqlalchemy import func, select

    from app.models import Result, Submission
    with db.read_session() as s:
        graded = {sid for (sid,) in s.execute(select(Submission.id).where(Submission.status == "graded"))}
        per_sub = dict(s.execute(select(Result.submission_id, func.count()).group_by(Result.submission_id)).all())
        errors = s.scalar(select(func.count()).select_from(Submission).where(Submission.status == "error"))
    lost = [i for i in accepted if i not in graded or per_sub.get(i) != 1]
    ms = [x * 1000 for x in latencies]
    print(f"accepted: {len(accepted)} of {args.n} (refused or failed: {len(failures)})")
    for f in failures[:5]:
        print("   ", f)
    print(f"accept latency: p50 {percentile(ms, 50):.0f} ms, p99 {percentile(ms, 99):.0f} ms, "
          f"max {max(ms):.0f} ms, mean {statistics.mean(ms):.0f} ms")
    print(f"uploads finished after {t_uploaded:.1f} s; queue empty after {t_empty:.1f} s")
    print(f"graded: {len(graded)} ({len(graded) / t_empty:.2f} per second); grader errors: {errors}")
    print(f"lost submissions: {len(lost)}")
    db.dispose()
    return 1 if lost or failures else 0


if __name__ == "__main__":
    sys.exit(main())
