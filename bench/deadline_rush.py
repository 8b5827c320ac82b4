"""The deadline rush of issue 12 on the embedded default, next to the official local autograder.

    .venv/bin/python bench/deadline_rush.py                     # 120 handins, 12 clients, sandbox
    .venv/bin/python bench/deadline_rush.py --n 240 --clients 24 --official-runs 3

One `grader serve` (SQLite, its default worker processes, the real sandbox unless
--unsafe-no-sandbox) in a temporary folder on a free loopback port; N distinct correct handins (the
bundled reference, one comment apart, so none is a resubmission) uploaded by C concurrent clients.
It prints:
  * accept latency p50/p99 (upload until the 202, i.e. until blob and job are committed);
  * graded per second from the first upload until the queue is empty;
  * CPU seconds per graded handin, summed over the server and every process it started (worker
    processes, zygotes, sandboxes), and what that gives on two otherwise idle cores: 2 / (CPU s per
    handin); then the same split by process: the web process, the worker processes themselves, and
    the sandboxes below them. On a shared machine the wall figures drop with the load; the CPU
    figures barely move;
  * the median of each grading phase, from the timings every result stores;
  * the official autograder (v3.0.1, all flags on, as a student runs it:
    `python autograder/hw1p1_autograder.py`) on the same handin, in this run, wall and CPU time,
    and the ratio to one graded handin here.
The official script comes from --official DIR (a folder holding autograder/hw1p1_autograder.py),
else from the snapshot bench/real_handins.toml names under /work/.mirror (the `fetch` tool's
layout); without either, the ratio is skipped with a message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]

from bench.rush import SUITE, free_port, percentile, stop, upload_all, wait_healthy

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
OFFICIAL_GROUPS = ["LINEAR", "IDENTITY", "SIGMOID", "TANH", "RELU", "GELU", "Swish", "SOFTMAX", "MLP0",
                   "MLP1", "MLP4", "MSELOSS", "CROSSENTROPYLOSS", "SGD", "SGD_momentum", "BATCHNORM"]


# ---------------------------------------------------------------------------------------------
# CPU time of a process tree, from /proc

def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def _own_and_reaped(pid: int) -> tuple[float, float]:
    """(utime + stime, cutime + cstime) of PID in seconds; zeros if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = [int(x) for x in f.read().rsplit(")", 1)[1].split()[11:15]]
    except (OSError, IndexError, ValueError):
        return 0.0, 0.0
    return (fields[0] + fields[1]) / CLOCK_TICKS, (fields[2] + fields[3]) / CLOCK_TICKS


def tree_cpu_by_kind(root: int) -> dict[str, float]:
    """CPU seconds of `grader serve`'s tree (user + system of ROOT and its live descendants, and what
    their reaped children used: every finished sandbox run counts in the process that waited for
    it), by kind: the web process itself, its worker processes themselves (database, unpacking,
    reference, compare), and the sandboxes below them (zygotes, every sandbox process they reaped)."""
    tree = _children()
    web, reaped_by_web = _own_and_reaped(root)
    kinds = {"web": web, "workers": 0.0, "sandboxes": reaped_by_web}
    for worker in tree.get(root, []):
        own, reaped = _own_and_reaped(worker)
        kinds["workers"] += own
        kinds["sandboxes"] += reaped
        todo = list(tree.get(worker, []))
        while todo:
            pid = todo.pop()
            kinds["sandboxes"] += sum(_own_and_reaped(pid))
            todo.extend(tree.get(pid, []))
    return kinds


# ---------------------------------------------------------------------------------------------
# The official autograder

def official_dir(given: Path | None, mirrors: Path) -> tuple[Path | None, str]:
    if given:
        ok = (given / "autograder" / "hw1p1_autograder.py").is_file()
        return (given, str(given)) if ok else (None, f"{given}/autograder/hw1p1_autograder.py is missing")
    manifest = tomllib.loads((REPO / "bench" / "real_handins.toml").read_text())["official"]
    from bench.real_handins import extract, git_dir
    if not git_dir(mirrors, manifest["repo"]).exists():
        return None, (f"the official handout ({manifest['repo']}) is not under {mirrors}; fetch it "
                      "(the `fetch` tool) or pass --official DIR")
    target = Path(tempfile.mkdtemp(prefix="official-handout-"))
    extract(mirrors, manifest["repo"], manifest["commit"], manifest.get("folder", ""), target,
            packages=("autograder",))
    return target, f"{manifest['repo']}@{manifest['commit'][:10]}"


def time_official(source: Path, runs: int) -> dict:
    """The script as a student runs it, on the bundled reference (all flags on), fresh process each."""
    rundir = Path(tempfile.mkdtemp(prefix="official-run-"))
    try:
        for package in ("models", "mytorch"):
            shutil.copytree(REPO / "mytorch_reference" / package, rundir / package,
                            ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(source / "autograder", rundir / "autograder",
                        ignore=shutil.ignore_patterns("__pycache__"))
        (rundir / "autograder" / "hw1p1_autograder_flags.py").write_text(
            "".join(f"DEBUG_AND_GRADE_{g}_flag = True\n" for g in OFFICIAL_GROUPS))
        walls, cpus, last = [], [], ""
        for _ in range(runs):
            before = os.times()
            started = time.perf_counter()
            proc = subprocess.run([sys.executable, "-B", "autograder/hw1p1_autograder.py"], cwd=rundir,
                                  capture_output=True, text=True, check=False,
                                  env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
            walls.append(time.perf_counter() - started)
            after = os.times()
            cpus.append(after.children_user - before.children_user + after.children_system - before.children_system)
            last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
        return {"wall": statistics.median(walls), "cpu": statistics.median(cpus), "last": last}
    finally:
        shutil.rmtree(rundir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------

def wait_for_empty_queue(base: str, staff: dict, max_wait: float) -> None:
    end = time.perf_counter() + max_wait
    while time.perf_counter() < end:
        q = httpx.get(f"{base}/api/v1/queue", headers=staff, timeout=60).json()
        if q["queued"] == 0 and q["running"] == 0:
            return
        time.sleep(0.2)


def run(args) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="grader-deadline-rush-"))
    (tmp / "assessments").mkdir()
    (tmp / "assessments" / "rush.toml").write_text(
        'slug = "rush"\ntitle = "Rush"\ntimezone = "America/New_York"\nrelease = 2020-01-01T00:00:00\n'
        "due = 2099-01-01T00:00:00\nlast_accepted = 2099-01-01T00:00:00\n" + SUITE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADER_") and k != "DATABASE_URL"}
    env.update(GRADER_DATA_DIR=str(tmp / "data"), GRADER_ASSESSMENTS_DIR=str(tmp / "assessments"),
               GRADER_UPLOADS_PER_MINUTE="1000000", GRADER_SECRET_KEY="bench")
    if args.unsafe_no_sandbox:
        env["GRADER_UNSAFE_NO_SANDBOX"] = "1"
    os.environ.update({k: v for k, v in env.items() if k.startswith("GRADER_")})
    server = None
    try:
        from sqlalchemy import select

        from app.auth import admin
        from app.settings import Settings
        from app.store.db import Database, upgrade
        from app.store.models import Job, Result, Submission

        settings = Settings()
        upgrade(settings.db_url)
        db = Database(settings.db_url)
        tokens = []
        for i in range(args.clients):
            admin.add_user(db, f"s{i:03d}", "student", None)
            tokens.append(admin.create_token(db, f"s{i:03d}"))
        admin.add_user(db, "ta", "ta", None)
        ta = {"Authorization": f"Bearer {admin.create_token(db, 'ta')}"}

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
        if args.workers is not None:
            argv += ["--workers", str(args.workers)]
        with open(tmp / "serve.log", "wb") as log:
            server = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_healthy(base, server)
        # One warm-up grade (first imports, zygotes ready), as a running service has had.
        asyncio.run(upload_all(base, tokens[:1], 1, 1, "reference", "warm-up"))
        wait_for_empty_queue(base, ta, args.max_wait)
        with db.read_session() as s:
            warm_ids = set(s.scalars(select(Submission.id)))

        mode = "UNSAFE (no sandbox)" if args.unsafe_no_sandbox else "sandbox"
        workers = "default" if args.workers is None else args.workers
        print(f"grader serve on SQLite ({workers} worker processes, {mode}); {args.n} distinct correct "
              f"handins from {args.clients} clients; {os.cpu_count()} cores, load average "
              f"{os.getloadavg()[0]:.1f} at the start", flush=True)
        kinds0, t0 = tree_cpu_by_kind(server.pid), time.perf_counter()
        latencies, accepted, failures = asyncio.run(
            upload_all(base, tokens, args.n, args.clients, "reference", "rush"))
        t_uploaded = time.perf_counter() - t0
        wait_for_empty_queue(base, ta, args.max_wait)
        t_end = time.perf_counter() - t0
        kinds = {k: v - kinds0.get(k, 0.0) for k, v in tree_cpu_by_kind(server.pid).items()}
        cpu = sum(kinds.values())   # every process of the tree, once: its own time plus what it reaped
        load = os.getloadavg()[0]

        with db.read_session() as s:
            rows = s.execute(select(Submission.id, Submission.status, Submission.score)
                             .where(Submission.id.not_in(warm_ids))).all()
            bodies = [json.loads(b) for (b,) in s.execute(
                select(Result.body).join(Job, Job.id == Result.job_id).where(Result.submission_id.not_in(warm_ids)))]
        db.dispose()
        graded = [r for r in rows if r.status == "graded"]
        ms = [x * 1000 for x in latencies]
        print(f"  accepted {len(accepted)} of {args.n} (refused or failed: {len(failures)}); "
              f"all uploaded after {t_uploaded:.1f} s")
        for f in failures[:5]:
            print("     ", f)
        print(f"  accept latency: p50 {percentile(ms, 50):.0f} ms, p99 {percentile(ms, 99):.0f} ms, "
              f"max {max(ms):.0f} ms")
        print(f"  graded {len(graded)} (scores {sorted({r.score for r in graded})}) in {t_end:.1f} s: "
              f"{len(graded) / t_end:.2f} graded/s; load average {load:.1f} at the end")
        per_handin = cpu / max(1, len(graded))
        print(f"  CPU: {cpu:.1f} s for the server and everything it started = {per_handin * 1000:.0f} ms per "
              f"graded handin -> {2 / per_handin:.1f} graded/s on 2 idle cores")
        print("  CPU per graded handin by process: " + ", ".join(
            f"{kind} {1000 * seconds / max(1, len(graded)):.0f} ms" for kind, seconds in kinds.items()))
        phases = sorted({k for b in bodies for k in b.get("timings", {})})
        print("  grading phases (median of the results' timings): " + ", ".join(
            f"{k} {1000 * statistics.median(b['timings'].get(k, 0) for b in bodies):.0f} ms" for k in phases))
        if args.official_runs:
            source, where = official_dir(args.official, args.mirrors)
            if source is None:
                print(f"  official autograder: skipped ({where})")
            else:
                off = time_official(source, args.official_runs)
                print(f"  official autograder v3.0.1 ({where}), all flags on, same handin, median of "
                      f"{args.official_runs}: wall {off['wall']:.2f} s, CPU {off['cpu']:.2f} s; last line "
                      f"{off['last'][:120]}")
                print(f"  ratio, CPU per handin: official {off['cpu']:.2f} s / ours {per_handin:.3f} s = "
                      f"{off['cpu'] / per_handin:.0f}x; wall of one official run vs our rush's "
                      f"1 / (graded/s) = {off['wall'] * len(graded) / t_end:.0f}x")
        short = [r for r in graded if r.score != 100]
        if short:   # on an overloaded machine a section can hit its CPU or wall limit
            print(f"  WARNING: {len(short)} correct handins were not given full marks (limits hit under load?)")
        bad = len(failures) + (len(rows) - len(graded)) + len(short)
        return 1 if bad else 0
    finally:
        if server:
            stop(server)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=120, help="distinct correct handins")
    ap.add_argument("--clients", type=int, default=12, help="concurrent clients (one student each)")
    ap.add_argument("--workers", type=int, default=None, help="worker processes (default: the service's)")
    ap.add_argument("--unsafe-no-sandbox", action="store_true")
    ap.add_argument("--max-wait", type=float, default=900.0, help="seconds to wait for the queue to empty")
    ap.add_argument("--official", type=Path, default=None, help="a folder holding autograder/hw1p1_autograder.py")
    ap.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    ap.add_argument("--official-runs", type=int, default=1, help="0 skips the official autograder")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
