"""A stored handin's files for reading in the page: read with the grader's own reader (the same
limits and refusals as grading, nothing written to disk), paths as the grader sees them (relative
to the folder holding mytorch/). A handin is read once per process and kept (`SourceCache`), so
viewing its pages again never reads the archive again while it stays in the cache."""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from grader.handin import HandinError, read_handin_files
from grader.suite import Layout

SHOWN_BYTES = 256 << 10   # a longer file is cut (its download stays complete)
CACHE_BYTES = 64 << 20    # the text the cache keeps, all handins together


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
    try:
        files = read_handin_files(data, layout=layout, keep_bytes=SHOWN_BYTES)
    except HandinError as exc:
        return HandinSource([], exc.message)
    return HandinSource([SourceFile(f.path, f.size, _text(f.head), f.size > SHOWN_BYTES) for f in files])


class SourceCache:
    """The handins read last, by archive digest and layout, up to MAX_BYTES of text in all; the
    least recently viewed goes first. Two first views at once may both read: bounded, and rare."""

    def __init__(self, max_bytes: int = CACHE_BYTES):
        self.max_bytes = max_bytes
        self.reads = self.hits = 0
        self._entries: OrderedDict[tuple[str, Layout], tuple[HandinSource, int]] = OrderedDict()
        self.size_bytes = 0
        self._lock = threading.Lock()

    def get(self, digest: str, layout: Layout, archive: Callable[[], bytes]) -> HandinSource:
        """The handin whose archive has sha256 DIGEST; ARCHIVE() gives its bytes when it must be read."""
        key = (digest, layout)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key][0]
        source = read_handin(archive(), layout)
        cost = self.cost(source)
        with self._lock:
            self.reads += 1
            if cost <= self.max_bytes and key not in self._entries:
                self._entries[key] = (source, cost)
                self.size_bytes += cost
                while self.size_bytes > self.max_bytes:
                    _, (_, dropped) = self._entries.popitem(last=False)
                    self.size_bytes -= dropped
        return source

    @staticmethod
    def cost(source: HandinSource) -> int:
        """What keeping SOURCE costs: its texts (at most SHOWN_BYTES per file, the unpacked cap in all)."""
        return sum(sys.getsizeof(f.text) for f in source.files if f.text is not None)


CACHE = SourceCache()   # per process


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
