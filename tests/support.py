"""Helpers shared by the service, web and deployment tests: handins as tar bytes and ports."""

from __future__ import annotations

import io
import os
import socket
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "mytorch_reference"
# The assessment TOML's line naming the grading suite (its sections and points come from there).
SUITE_TOML = 'suite = "hw1p1"\n'


def make_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def every_graded_file(files: dict[str, bytes]) -> dict[str, bytes]:
    """FILES plus an empty file for each HW1P1 graded module they lack: an upload is refused when
    a graded file is missing, so a fast-failing handin holds every one of them, empty."""
    from grader import suites

    return {**{path: b"" for path in suites.get("hw1p1").required_files}, **files}


def reference_files() -> dict[str, bytes]:
    """The reference solution's models/ and mytorch/ files: a handin with full marks."""
    return {str(p.relative_to(REFERENCE)): p.read_bytes() for p in sorted(REFERENCE.rglob("*.py"))
            if p.relative_to(REFERENCE).parts[0] in ("models", "mytorch")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


HANG_GUARD = 240.0   # seconds before a wait is declared hung (a failure, never a measurement)


def sandbox_or_skip() -> None:
    import pytest

    import sandbox

    try:
        sandbox.check_backend()
    except sandbox.BackendUnavailable as exc:
        pytest.skip(f"no sandbox backend here: {exc}")


def wait_for(what: str, check):
    """CHECK()'s first truthy value; an AssertionError if none comes within HANG_GUARD."""
    deadline = time.monotonic() + HANG_GUARD
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"hung waiting for {what}")
        time.sleep(0.05)
    return found


def snapshot(path: Path) -> dict:
    """Every entry under PATH with what would change if anything touched it."""
    shown = {".": (os.lstat(path).st_ino, os.lstat(path).st_mtime_ns)}
    for entry in sorted(path.rglob("*")):
        info = os.lstat(entry)
        shown[entry.relative_to(path).as_posix()] = (info.st_ino, info.st_mtime_ns, info.st_size)
    return shown
