"""What a grade depends on besides the handin: the grading code, the suites and their reference
solutions. Two grades of the same bytes under the same version are the same grade, so the service
may show a stored result again for an identical resubmission instead of grading it again."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

GRADER_DIR = Path(__file__).resolve().parent


@cache
def grading_version() -> str:
    """sha256 over every source file of the `grader` package and of every suite's reference tree."""
    from grader.suites import all_suites

    trees = [GRADER_DIR, *sorted({Path(s.reference_root).resolve() for s in all_suites().values()})]
    digest = hashlib.sha256()
    for base in trees:
        for path in sorted(base.rglob("*.py")):
            if "__pycache__" not in path.parts:
                digest.update(f"{base.name}/{path.relative_to(base)}\0".encode())
                digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def reuse_key(*, unsafe: bool) -> str:
    """The key under which a result may be reused: the version, and whether a sandbox ran it."""
    return grading_version()[:40] + ("+unsafe" if unsafe else "")
