"""Deadline rush: N uploads from C concurrent clients against the grading service on 127.0.0.1.

Two deployments, both started by this script in a temporary folder on free loopback ports:
  * default: one `grader serve` on SQLite with --workers in-process grading workers;
  * --postgres: the native compose deployment: a real Postgres (bench/pg.py), `grader db upgrade`,
    one `grader serve --workers 0`, and K `grader worker` processes (each its own sandbox slots,
    --first-index), one round per K in --workers-list.
Each round uploads N handins, waits until the queue is empty (or --max-wait), and prints: accept
latency p50/p99, time until the queue is empty, graded per second, lost submissions (an
acknowledged id without exactly one result, read from the database).

    python bench/rush.py --n 200 --handin tiny                       # SQLite, unsafe mode
    python bench/rush.py --postgres --sandbox --workers-list 1,2,3 --n 200
    python bench/rush.py --postgres --sandbox --workers-list 3 --n 1000 --max-wait 300
Grading runs WITHOUT a sandbox unless --sandbox is given.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
# Import from the repository root, never from bench/ (bench/sandbox.py would shadow `sandbox`).
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
SUITE = 'suite = "hw1p1"\n'


def make_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def handin(kind: str, i: str) -> bytes:
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


async def upload_all(base: str, tokens: list[str], n: int, clients: int, kind: str, tag: str):
    latencies: list[float] = []
    accepted: list[int] = []
    failures: list[str] = []
    payloads = [handin(kind, f"{tag}-{i}") for i in range(n)]
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


def wait_healthy(base: str, proc: subprocess.Popen) -> None:
    for _ in range(1200):
        if proc.poll() is not None:
            raise SystemExit(f"grader serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("grader serve did not answer /healthz")


def start_worker(index: int, env: dict, logdir: Path) -> subprocess.Popen:
    """`grader worker --first-index INDEX`: its own sandbox slots. Started one at a time: every
    worker's start-up probe uses the same sandbox slot (see tests/deploy/conftest.py)."""
    log_path = logdir / f"worker{index}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "worker", "--first-index", str(index)],
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    while "grader worker:" not in log_path.read_text(errors="replace"):
        if proc.poll() is not None:
            raise SystemExit(f"worker {index} exited: {log_path.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def rush(args, base: str, tokens: list[str], ta_token: str, db, tag: str) -> dict:
    """One round: upload, wait for the queue to empty (at most --max-wait), check the database."""
    from sqlalchemy import func, select

    from app.store.models import Job, Result, Submission

    t0 = time.perf_counter()
    latencies, accepted, failures = asyncio.run(upload_all(base, tokens, args.n, args.clients, args.handin, tag))
    t_uploaded = time.perf_counter() - t0
    print(f"  uploads done in {t_uploaded:.1f} s; waiting for the queue to empty...", flush=True)
    ta = {"Authorization": f"Bearer {ta_token}"}
    complete = False
    while time.perf_counter() - t0 < args.max_wait:
        q = httpx.get(f"{base}/api/v1/queue", headers=ta, timeout=60).json()
        if q["queued"] == 0 and q["running"] == 0:
            complete = True
            break
        time.sleep(0.5)
    t_end = time.perf_counter() - t0

    ids = set(accepted)
    with db.read_session() as s:
        rows = s.execute(select(Submission.id, Submission.status, Submission.score)
                         .where(Submission.id.in_(ids))).all()
        status = {i: st for i, st, _ in rows}
        scores = Counter(sc for _, st, sc in rows if st == "graded")
        per_sub = dict(s.execute(select(Result.submission_id, func.count()).where(Result.submission_id.in_(ids))
                                 .group_by(Result.submission_id)).all())
        finished = sorted(t for (t,) in s.execute(select(Job.finished_at).where(
            Job.submission_id.in_(ids), Job.kind == "submit", Job.finished_at.is_not(None))))
    graded = [i for i in ids if status.get(i) == "graded"]
    missing = [i for i in ids if i not in status]                      # acknowledged, not stored
    twice = [i for i, c in per_sub.items() if c > 1]                   # graded more than once
    pending = [i for i in ids if status.get(i) in ("queued", "running")]
    errors = [i for i in ids if status.get(i) == "error"]
    lost = set(missing + twice)
    if complete:   # then every acknowledged id must be graded with exactly one result
        lost |= {i for i in ids if status.get(i) != "graded" or per_sub.get(i) != 1}
    steady = ((len(finished) - 1) / (finished[-1] - finished[0]).total_seconds()
              if len(finished) > 1 and finished[-1] > finished[0] else float("nan"))
    rate = len(graded) / t_end
    ms = [x * 1000 for x in latencies]
    print(f"  accepted: {len(accepted)} of {args.n} (refused or failed: {len(failures)})")
    for f in failures[:5]:
        print("     ", f)
    print(f"  accept latency: p50 {percentile(ms, 50):.0f} ms, p99 {percentile(ms, 99):.0f} ms, "
          f"max {max(ms):.0f} ms, mean {statistics.mean(ms):.0f} ms")
    if complete:
        print(f"  uploads finished after {t_uploaded:.1f} s; queue empty after {t_end:.1f} s")
    else:
        print(f"  uploads finished after {t_uploaded:.1f} s; stopped waiting after {t_end:.1f} s with "
              f"{len(pending)} still queued/running; queue empty after ~{args.n / steady:.0f} s "
              "(ESTIMATED: n / steady rate)")
    print(f"  graded: {len(graded)} ({rate:.2f} per second from the first upload; steady {steady:.2f} per second "
          f"between first and last finished job); grader errors: {len(errors)}")
    print(f"  scores of the graded: {dict(sorted(scores.items()))}")
    print(f"  lost submissions: {len(lost)} (acknowledged but not stored: {len(missing)}, graded twice: {len(twice)})",
          flush=True)
    return {"lost": len(lost), "failures": len(failures)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="uploads per round")
    ap.add_argument("--clients", type=int, default=50, help="concurrent clients")
    ap.add_argument("--students", type=int, default=50)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="SQLite: in-process grading workers of `grader serve`")
    ap.add_argument("--postgres", action="store_true",
                    help="the native deployment: Postgres, `grader serve --workers 0`, K `grader worker`s")
    ap.add_argument("--workers-list", default="1,2,3", help="--postgres: one round per K worker processes")
    ap.add_argument("--handin", choices=["reference", "tiny"], default="reference",
                    help="reference: full marks (~1.5 s of grading); tiny: fails fast (~0.8 s)")
    ap.add_argument("--sandbox", action="store_true", help="grade in the sandbox (default: unsafe mode)")
    ap.add_argument("--max-wait", type=float, default=float("inf"),
                    help="seconds after the first upload to stop waiting for the queue (then estimated)")
    args = ap.parse_args()
    # SIGTERM (e.g. from `timeout`) must still stop what we start: run the finally blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    tmp = Path(tempfile.mkdtemp(prefix="grader-rush-"))
    (tmp / "assessments").mkdir()
    (tmp / "assessments" / "rush.toml").write_text(
        'slug = "rush"\ntitle = "Rush"\ntimezone = "America/New_York"\nrelease = 2020-01-01T00:00:00\n'
        "due = 2099-01-01T00:00:00\nlast_accepted = 2099-01-01T00:00:00\n" + SUITE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADER_") and k != "DATABASE_URL"}
    env.update(GRADER_DATA_DIR=str(tmp / "data"), GRADER_ASSESSMENTS_DIR=str(tmp / "assessments"),
               GRADER_UPLOADS_PER_MINUTE="1000000", GRADER_SECRET_KEY="bench")
    if not args.sandbox:
        env["GRADER_UNSAFE_NO_SANDBOX"] = "1"
    pg = procs = server = None
    try:
        if args.postgres:
            from bench.pg import Postgres, find_pg_bin
            bindir = find_pg_bin()
            if bindir is None:
                raise SystemExit("no PostgreSQL server binaries (initdb); "
                                 "`.ci/install-system-deps.sh test` installs them")
            pg = Postgres(bindir)
            env["DATABASE_URL"] = pg.url
        os.environ.update({k: v for k, v in env.items() if k.startswith("GRADER_") or k == "DATABASE_URL"})

        from app.auth import admin
        from app.settings import Settings
        from app.store.db import Database, upgrade

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
        in_process = 0 if args.postgres else args.workers
        with open(tmp / "serve.log", "wb") as log:
            server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1",
                                       "--port", str(port), "--workers", str(in_process)],
                                      env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_healthy(base, server)
        backend = "Postgres" if args.postgres else "SQLite"
        rounds = [int(k) for k in args.workers_list.split(",")] if args.postgres else [args.workers]
        bad = 0
        for k in rounds:
            procs = []
            for i in range(k if args.postgres else 0):
                procs.append(start_worker(i, env, tmp))
            where = f"{k} `grader worker` process(es)" if args.postgres else f"{k} in-process worker(s)"
            print(f"{backend}, web on {base}, {where}, {'sandbox' if args.sandbox else 'UNSAFE (no sandbox)'}: "
                  f"{args.n} uploads ({args.handin}) from {args.clients} clients, {args.students} students",
                  flush=True)
            outcome = rush(args, base, tokens, ta_token, db, tag=f"k{k}")
            bad += outcome["lost"] + outcome["failures"]
            for proc in procs:
                stop(proc)
            procs = None
        db.dispose()
        return 1 if bad else 0
    finally:
        for proc in (procs or []) + ([server] if server else []):
            stop(proc)
        if pg:
            pg.destroy()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
