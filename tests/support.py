"""Helpers shared by the service, web and deployment tests: handins as tar bytes and ports."""

from __future__ import annotations

import io
import socket
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "mytorch_reference"
# The [sections] table of an assessment TOML: the suite's sections and points.
SECTIONS_TOML = """
[sections]
"Linear Layer" = 15
"Activation" = 10
"MLP0" = 10
"MLP1" = 10
"MLP4" = 15
"Loss" = 10
"SGD" = 10
"Batch Norm" = 20
"""


def make_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def reference_files() -> dict[str, bytes]:
    """The reference solution's models/ and mytorch/ files: a handin with full marks."""
    return {str(p.relative_to(REFERENCE)): p.read_bytes() for p in sorted(REFERENCE.rglob("*.py"))
            if p.relative_to(REFERENCE).parts[0] in ("models", "mytorch")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
