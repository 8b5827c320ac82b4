"""A stored handin's files for reading in the page: unpacked with the grader's safe unpacker (the
same limits as grading), paths as the grader sees them (relative to the folder holding mytorch/)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from grader.handin import HandinError, unpack_handin
from grader.suite import Layout

SHOWN_BYTES = 256 << 10   # a longer file is cut (its download stays complete)


@dataclass(frozen=True)
class SourceFile:
    path: str                 # e.g. "mytorch/nn/linear.py"
    size: int
    text: str | None          # None for a binary file
    cut: bool = False         # longer than SHOWN_BYTES: only its start is in `text`


@dataclass(frozen=True)
class HandinSource:
    files: list[SourceFile]
    problem: str | None = None   # why nothing can be shown (the archive could not be unpacked)

    def get(self, path: str) -> SourceFile | None:
        return next((f for f in self.files if f.path == path), None)


def _text(data: bytes) -> str | None:
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def read_handin(data: bytes, layout: Layout) -> HandinSource:
    """DATA's files as the grader sees them, keeping the folders LAYOUT (the suite's) names."""
    with tempfile.TemporaryDirectory(prefix="handin-source-") as tmp:
        try:
            handin = unpack_handin(data, Path(tmp), layout=layout)
        except HandinError as exc:
            return HandinSource([], exc.message)
        files = []
        for p in sorted(handin.root.rglob("*")):
            if not p.is_file() or p.is_symlink():
                continue
            raw = p.read_bytes()
            files.append(SourceFile(p.relative_to(handin.root).as_posix(), len(raw),
                                    _text(raw[:SHOWN_BYTES]), len(raw) > SHOWN_BYTES))
    return HandinSource(files)


def tree(files: list[SourceFile]) -> list[dict]:
    """The files as nested folders: [{"name", "path", "children"} | {"name", "file"}], folders first."""
    root: dict = {}
    for f in files:
        node = root
        *folders, name = f.path.split("/")
        for d in folders:
            node = node.setdefault(d + "/", {})
        node[name] = f

    def build(node: dict, prefix: str) -> list[dict]:
        out = []
        for key in sorted(node, key=lambda k: (not k.endswith("/"), k.lower())):
            value = node[key]
            if isinstance(value, dict):
                out.append({"name": key, "path": prefix + key, "children": build(value, prefix + key)})
            else:
                out.append({"name": key, "file": value})
        return out
    return build(root, "")
