"""Time `grader grade` on one correct handin (the bundled reference), end to end and by phase.

    .venv/bin/python bench/grade_one.py [--runs 10] [--unsafe-no-sandbox] [--suite hw1p1 hw2p1 ...]

Prints the wall time of the whole command (process start, sandbox self-check and zygote start
included), the share of each phase (unpacking, the reference run, the student's code, comparing)
from the result's timings, and the peak memory of the command. Then the same grade in a warm
process, as a service worker does it (sandbox slots and zygotes already started). For comparison
it times `import torch`, which the official local autograder pays on every run before its first test.
With several --suite names, each suite's correct handin (its reference tree) is timed in turn, so the
figures stand side by side from one run. `--official SUITE=DIR` also times that suite's official local
autograder (DIR holds the handout's autograder/, e.g. one bench/real_handins_hw2p1.py prepared in its
--workdir) on the same correct handin: `python autograder/runner.py` from a copy, as a student runs it.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/sandbox.py would shadow the `sandbox` package for a script started from bench/.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
GRADER = Path(sys.executable).with_name("grader")


def build_handin(directory: Path, suite) -> Path:
    """The suite's reference tree as a handin: a correct one."""
    path = directory / f"{suite.name}.tar"
    with tarfile.open(path, "w") as tar:
        for package in suite.layout.packages:
            tar.add(suite.reference_root / package, arcname=package,
                    filter=lambda m: None if "__pycache__" in m.name else m)
    return path


def time_command(argv: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, proc.stdout


def warm(handin: bytes, args, suite) -> None:
    """Grade in this process with one long-lived executor, as `grader serve`/`grader worker` do."""
    from grader.execute import open_executor
    from grader.grade import grade

    executor = open_executor(unsafe=args.unsafe_no_sandbox, slots=1, first_slot=4400)
    try:
        grade(handin, executor, suite=suite)  # first grade imports the reference's modules
        walls, students = [], []
        for _ in range(args.runs):
            start = time.perf_counter()
            result = grade(handin, executor, suite=suite)
            walls.append(time.perf_counter() - start)
            students.append(result.timings)
            assert result.score == suite.max_score, result
    finally:
        getattr(executor, "close", lambda: None)()
    print(f"[{suite.name}] warm grading in one process ({result.sandbox}), {args.runs} runs:")
    print(f"  wall: median {statistics.median(walls):.3f} s, min {min(walls):.3f} s, max {max(walls):.3f} s")
    phases = ", ".join(f"{phase} {statistics.median(t.get(phase, 0.0) for t in students):.3f} s"
                       for phase in ("unpack", "reference", "student", "compare"))
    print(f"  phases (median): {phases} (one sandbox per handin; every section in its own process, "
          f"forked from the sandbox's init)")


def cold(handin: Path, args, suite) -> None:
    """`grader grade` as a fresh process, RUNS times."""
    argv = [str(GRADER), "grade", str(handin), "--json", "--suite", suite.name]
    if args.unsafe_no_sandbox:
        argv.append("--unsafe-no-sandbox")
    time_command(argv)  # warm the page cache
    walls, phases = [], []
    for _ in range(args.runs):
        wall, out = time_command(argv)
        result = json.loads(out)
        assert result["score"] == suite.max_score, result
        walls.append(wall)
        phases.append(result["timings"])
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"[{suite.name}] grader grade on a correct handin ({result['sandbox']}), {args.runs} runs:")
    print(f"  wall: median {statistics.median(walls):.3f} s, min {min(walls):.3f} s, max {max(walls):.3f} s")
    total = statistics.median(p["total"] for p in phases)
    print(f"  in-process grading (median): {total:.3f} s, of which")
    for phase in ("unpack", "reference", "student", "compare"):
        median = statistics.median(p.get(phase, 0.0) for p in phases)
        print(f"    {phase:<10} {median:.3f} s  ({100 * median / total:.0f}%)")
    print(f"  process start + imports + output: {statistics.median(walls) - total:.3f} s")
    print(f"  peak RSS of a grader process so far: {peak_mb:.0f} MB")


def official(directory: Path, suite) -> None:
    """The official local autograder of SUITE (DIRECTORY/autograder) on its correct handin, once."""
    import shutil

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(directory / "autograder", root / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
        for package in suite.layout.packages:
            shutil.copytree(suite.reference_root / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "autograder/runner.py"], cwd=root, capture_output=True, text=True,
                              env={"PATH": "/usr/bin:/bin", "PYTHONPATH": "."}, check=False)
        wall = time.perf_counter() - start
    score = next((line for line in proc.stdout.splitlines() if line.startswith("Total score")), "no score")
    print(f"[{suite.name}] official local autograder on the same handin: {wall:.3f} s ({score.strip()})")


def main() -> None:
    from grader.suites import all_suites

    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--unsafe-no-sandbox", action="store_true")
    parser.add_argument("--suite", nargs="+", default=["hw1p1"], choices=sorted(all_suites()),
                        help="whose correct handin to time (several: side by side)")
    parser.add_argument("--warm-only", action="store_true", help="skip the fresh-process timings")
    parser.add_argument("--official", action="append", default=[], metavar="SUITE=DIR",
                        help="also time SUITE's official local autograder found in DIR/autograder")
    args = parser.parse_args()
    officials = dict(item.split("=", 1) for item in args.official)
    suites = [all_suites()[name] for name in args.suite]
    with tempfile.TemporaryDirectory() as tmp:
        for suite in suites:
            handin = build_handin(Path(tmp), suite)
            if not args.warm_only:
                cold(handin, args, suite)
            warm(handin.read_bytes(), args, suite)
            if suite.name in officials:
                official(Path(officials[suite.name]), suite)
    try:
        wall, _ = time_command([sys.executable, "-c", "import torch"])
        print(f"for comparison, `import torch` alone (paid by the official autograder): {wall:.3f} s")
    except OSError:
        pass


if __name__ == "__main__":
    main()
