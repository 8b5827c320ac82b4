"""`grader grade`: grade one handin from the command line.

The grading core's only command. The service's commands (serve, worker, db, ...) live in app/cli/main.py,
which adds them next to this one under the same `grader` console script.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

EXIT_NOT_GRADABLE = 2
EXIT_GRADER_ERROR = 3


def _table(result) -> str:
    """A table like the official local autograder's, then the failing tests' messages."""
    lines = ["", f"Total score: {result.score}/{result.max_score}", "", "Summary:"]
    width = max(len(s.name) for s in result.sections)
    border = "+" + "-" * 8 + "+" + "-" * 10 + "+" + "-" * 8 + "+" + "-" * (width + 2) + "+"
    lines.append(border)
    lines.append(f"| {'Test':<6} | {'Result':<8} | {'Points':<6} | {'Section':<{width}} |")
    lines.append(border)
    for i, s in enumerate(result.sections, start=1):
        status = "PASSED" if s.passed else "FAILED"
        lines.append(f"| {'Test ' + str(i):<6} | {status:<8} | {s.score:02d}/{s.max_score:02d}  | {s.name:<{width}} |")
    lines.append(border)
    for s in result.sections:
        failing = [t for t in s.tests if not t.passed]
        if not failing:
            continue
        lines += ["", f"== {s.name}: {len(failing)} of {len(s.tests)} tests failed =="]
        if s.message:  # the section did not run, or a file it needs does not import: said once
            lines.append(s.message)
        for t in failing:
            if s.message and t.message.startswith("Not run: "):
                continue  # it points to the section's message above
            lines.append(f"-- {t.name}")
            lines += ["   " + line for line in t.message.splitlines()]
    # Notes never change a score; the same advice from several tests is printed once.
    advice = dict.fromkeys((s.name, note) for s in result.sections for t in s.tests for note in t.notes)
    if advice:
        lines += ["", "== Notes (advice only: they never change a score) =="]
        lines += [f"-- {section}: {note}" for section, note in advice]
    for note in result.notes:
        lines.append(f"Note: {note}")
    if result.unsafe:
        lines.append("WARNING: graded WITHOUT a sandbox (unsafe development mode).")
    return "\n".join(lines)


def cmd_grade(args) -> int:
    from grader import suites
    from grader.execute import ExecutorUnavailable, open_executor
    from grader.grade import GraderBug, grade
    from grader.workdir import WorkDir

    work = WorkDir(args.work_dir)
    work.sweep()   # what an earlier `grader grade`, killed mid-grade, left there
    try:
        executor = open_executor(unsafe=args.unsafe_no_sandbox, slots=args.jobs, work_dir=work.path)
    except ExecutorUnavailable as exc:
        print(f"grader: no safe sandbox is available here ({exc}); refusing to run student code.",
              file=sys.stderr)
        return EXIT_GRADER_ERROR
    try:
        result = grade(Path(args.path), executor, suite=suites.get(args.suite), workdir=work.path)
    except GraderBug as exc:
        print(f"grader: internal error, not the handin's fault: {exc}", file=sys.stderr)
        return EXIT_GRADER_ERROR
    finally:
        executor.close()
    if args.json:
        print(result.model_dump_json(indent=2))
    elif result.error:
        print(f"Cannot grade this handin: {result.error.message}", file=sys.stderr)
    else:
        print(_table(result))
    if args.autolab and not result.error:
        print(json.dumps(result.autolab_scores()))
    return EXIT_NOT_GRADABLE if result.error else 0


def default_work_dir() -> Path:
    """`grader grade`'s own work directory, never the shared temp directory a sweep could not own."""
    if os.environ.get("GRADER_WORK_DIR"):
        return Path(os.environ["GRADER_WORK_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "grader" / "work"


def add_grade_command(sub) -> None:
    from grader.suites import all_suites

    g = sub.add_parser("grade", help="grade one handin (.tar, .tar.gz, .tgz, .zip or a directory)")
    g.add_argument("path")
    g.add_argument("--suite", default="hw1p1", choices=sorted(all_suites()),
                   help="which assessment's tests (default: hw1p1)")
    output = g.add_mutually_exclusive_group()  # --json must stay a single JSON document
    output.add_argument("--json", action="store_true", help="print one JSON object (see grader/result.py)")
    output.add_argument("--autolab", action="store_true",
                        help='end with the official {"scores": {...}} line for Autolab')
    g.add_argument("--jobs", type=int, default=1, help="sandbox slots (a handin runs in one sandbox)")
    g.add_argument("--work-dir", type=Path, default=default_work_dir(),
                   help="where the handin is unpacked while it is graded (default: $GRADER_WORK_DIR, "
                        "else ~/.cache/grader/work); what a killed grade left there is removed at start")
    g.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="run student code WITHOUT isolation (tests and development only)")
    g.set_defaults(func=cmd_grade)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grader", description="grade MyTorch handins with an assessment's suite (--suite)")
    sub = parser.add_subparsers(dest="command", required=True)
    add_grade_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
