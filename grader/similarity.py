"""Similarity between handins (the writeup says handins are compared, MOSS-style).

Token winnowing, as MOSS does: each file is lexed, names become one symbol, strings
another, comments, docstrings and spacing are dropped; every run of K tokens is hashed and a
winnowing window keeps a few of those hashes as the handin's fingerprints. Three kinds of shared code
never count:
- the handout's skeleton: any K-gram found in the skeleton files is boilerplate;
- code many handins write the same way: a fingerprint found in more than `max_sharers` handins
  (class and archive together) is dropped, like MOSS's `-m`. HW1P1's functions are a few lines each
  and correct answers converge (`self.A @ self.W.T + ...`), so without it every pair of correct
  handins looks alike. In a small class the default is lower (`default_max_sharers`);
- code shared by fewer than `min_tokens` tokens.

A handin is compared as a whole: the fingerprints of all its files form one set, so code moved into
another module, split across files or reordered is still paired with the original (a file compared
only with the file of the same path misses that). Matches remember their file and token positions,
and every token keeps its exact character offsets in the source, so the highlighted regions start
and end on the copied tokens.

What a handin contributes is capped (`read_handin`): the modules the suite loads and the handin's
modules they import (the code that is graded; other homeworks' files, notebooks' checkpoints and
padding modules nobody imports are not), at most MAX_FILE_BYTES each and MAX_HANDIN_BYTES in all; a
handin built to make the report slow or large costs what a large honest one does. Candidate pairs
come from an inverted index of fingerprints, so the cost grows with the pairs that share code, not
with the square of the class.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import keyword
import math
import re
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from grader.handin import ARCHIVE_SUFFIXES
from grader.suite import Suite

K = 12                 # tokens per hashed run (a line or two of code)
WINDOW = 8             # winnowing window: every shared run of K + WINDOW - 1 tokens is found
DEFAULT_THRESHOLD = 0.5
DEFAULT_MAX_SHARERS = 10
# A pair must share at least this many tokens: a few runs where a student's own line meets the
# skeleton are coincidence.
DEFAULT_MIN_TOKENS = 60

# Caps on what one handin contributes. The largest real HW1P1 handin of bench/real_handins.toml has
# 105 KiB of Python over 37 files, its longest file 8.7 KiB.
MAX_FILE_BYTES = 64 << 10
MAX_HANDIN_BYTES = 256 << 10
# Caps on what a report keeps: pairs listed, and the sources stored for their side-by-side pages
# (a pair page shows at most two handins' capped sources, 2 x MAX_HANDIN_BYTES).
MAX_LISTED_PAIRS = 300
MAX_REPORT_SOURCE_BYTES = 8 << 20
MAX_REPORT_BYTES = 16 << 20       # the whole stored report; past it the last pairs lose their regions
MAX_FILE_LINKS = 40               # a pair keeps its 40 largest (file of A, file of B) matches

Progress = Callable[[int, int], None]
_PRIME = np.uint64(1_000_003)


class Span(BaseModel):
    start: int   # character offsets into the file's source, end exclusive
    end: int


class FileMatch(BaseModel):
    """Code of A's file PATH_A found in B's file PATH_B (the same path, or not)."""
    path_a: str
    path_b: str
    tokens: int                        # A's tokens in this file covered by the shared runs
    spans_a: list[Span]
    spans_b: list[Span]


class Pair(BaseModel):
    a: str
    b: str                             # a student, or an archive entry's label
    similarity_a: float                # share of A's fingerprinted tokens found in B
    similarity_b: float
    tokens: int                        # shared tokens (the smaller side's count)
    files: list[FileMatch] = Field(default_factory=list)
    archive: bool = False              # B is an archive entry, not a student of the class
    regions_dropped: bool = False      # its matching regions did not fit in MAX_REPORT_BYTES

    @property
    def similarity(self) -> float:
        return max(self.similarity_a, self.similarity_b)

    @property
    def paths(self) -> list[str]:
        return sorted({f.path_a if f.path_a == f.path_b else f"{f.path_a} ~ {f.path_b}" for f in self.files})


class Report(BaseModel):
    handins: int
    archive_handins: int = 0
    threshold: float
    max_sharers: int
    min_tokens: int = DEFAULT_MIN_TOKENS
    skeleton_files: int
    pairs: list[Pair] = Field(default_factory=list)            # within the class, most similar first
    archive_pairs: list[Pair] = Field(default_factory=list)    # a student against an archive entry
    pairs_over_threshold: int = 0     # before MAX_LISTED_PAIRS cut the lists
    candidate_pairs: int = 0          # pairs sharing at least one fingerprint
    # handin -> path -> source, for the files of listed pairs (up to MAX_REPORT_SOURCE_BYTES)
    sources: dict[str, dict[str, str]] = Field(default_factory=dict)
    capped: dict[str, str] = Field(default_factory=dict)      # handin -> what the caps left out
    seconds: float = 0.0


# ---------------------------------------------------------------------------------------------
# Reading a handin within the caps

@dataclass
class HandinSources:
    files: dict[str, str]              # relative path -> source (cut to the caps)
    left_out: str = ""                 # a sentence when the caps cut something, else ""


def graded_modules(suite: Suite) -> list[str]:
    """The module files the suite loads, e.g. mytorch/nn/linear.py (read first)."""
    paths = set()
    for package, names in suite.exports.items():
        for sub in names.values():
            module = f"{package}.{sub}"
            if module.split(".")[0] in suite.layout.packages and module not in suite.exports:
                paths.add(module.replace(".", "/") + ".py")
    return sorted(paths)


def _imported(path: str, source: str, known: set[str]) -> list[str]:
    """The files of KNOWN that SOURCE (the module at PATH) imports, absolute or relative."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    package = path.split("/")[:-1]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name.split(".") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = base + (node.module.split(".") if node.module else [])
            names.append(module)
            names += [module + [alias.name] for alias in node.names]
    found = []
    for parts in names:
        candidate = "/".join(parts) + ".py"
        if candidate in known and candidate not in found:
            found.append(candidate)
    return found


def read_handin(root: Path, packages: Iterable[str], graded: Iterable[str]) -> HandinSources:
    """What one unpacked handin contributes: the GRADED module files it has and the modules of its
    PACKAGES they import, transitively (so code moved into another module still counts; files the
    grade never runs do not), each cut to MAX_FILE_BYTES and all to MAX_HANDIN_BYTES, in that order.
    `__init__.py` files are never read: the grader never runs them."""
    known = set()
    for package in packages:
        base = root / package
        if base.is_dir() and not base.is_symlink():
            known |= {p.relative_to(root).as_posix() for p in base.rglob("*.py")
                      if p.name != "__init__.py" and p.is_file() and not p.is_symlink()}
    queue = [p for p in graded if p in known]
    seen = set(queue)
    files, budget, cut = {}, MAX_HANDIN_BYTES, []
    while queue:
        rel = queue.pop(0)
        if budget <= 0:
            cut.append(rel)
            continue
        path = root / rel
        size = path.stat().st_size
        take = min(size, MAX_FILE_BYTES, budget)
        with path.open("rb") as f:
            data = f.read(take)
        if take < size:
            data = data[:data.rfind(b"\n") + 1] or data   # end on a whole line
            cut.append(rel)
        text = data.decode("utf-8", errors="replace")
        budget -= len(data)
        for more in _imported(rel, text, known):
            if more not in seen:
                seen.add(more)
                queue.append(more)
        files[rel] = text
    left_out = ""
    if cut:
        left_out = (f"{len(cut)} file(s) cut or left out by the caps ({MAX_FILE_BYTES >> 10} KiB a file, "
                    f"{MAX_HANDIN_BYTES >> 10} KiB a handin): {', '.join(cut[:5])}{' ...' if len(cut) > 5 else ''}")
    return HandinSources(files, left_out)


def read_sources(root: Path) -> dict[str, str]:
    """Every Python file under ROOT (a skeleton or a reference tree), by relative path, each cut to
    MAX_FILE_BYTES."""
    sources = {}
    for path in sorted(root.rglob("*.py")):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as f:
                sources[path.relative_to(root).as_posix()] = f.read(MAX_FILE_BYTES).decode("utf-8", "replace")
    return sources


def handin_sources(archive: bytes | Path, suite: Suite) -> HandinSources:
    """The Python files one uploaded handin (archive bytes, an archive file or a folder) contributes,
    unpacked with the grader's own safe unpacking."""
    from grader.handin import unpack_handin

    with tempfile.TemporaryDirectory(prefix="similarity-") as tmp:
        root = unpack_handin(archive, Path(tmp), layout=suite.layout).root
        return read_handin(root, suite.layout.packages, graded_modules(suite))


# An archive of earlier handins (a TA's tar of them, or a folder) is larger than one handin.
ARCHIVE_LIMITS_SCALE = 20
MAX_ARCHIVE_ENTRIES = 2000


def read_archive(source: bytes | Path, suite: Suite) -> tuple[dict[str, HandinSources], dict[str, str]]:
    """Earlier semesters' handins or public solutions: SOURCE is a folder, or a tar/zip of one, holding
    one handin per entry (a folder with the suite's packages somewhere inside, or a handin archive).
    Each entry is unpacked and read like a student's handin. Returns {entry name: its sources} and
    {entry name: why it was skipped}."""
    from grader.handin import HandinError, UnpackLimits, unpack_handin, unpack_tree

    base = UnpackLimits()
    limits = UnpackLimits(archive_bytes=base.archive_bytes * ARCHIVE_LIMITS_SCALE,
                          unpacked_bytes=base.unpacked_bytes * ARCHIVE_LIMITS_SCALE,
                          file_bytes=base.file_bytes, members=base.members * ARCHIVE_LIMITS_SCALE,
                          depth=base.depth)
    entries: dict[str, HandinSources] = {}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="similarity-archive-") as tmp:
        if isinstance(source, Path) and source.is_dir():
            root = source
        else:
            root = unpack_tree(source, Path(tmp), limits)
        children = [p for p in sorted(root.iterdir()) if not p.name.startswith(".")]
        # A tar of one folder holding the handins: look inside it.
        while len(children) == 1 and children[0].is_dir() and not any(
                (children[0] / package).is_dir() for package in suite.layout.packages):
            children = [p for p in sorted(children[0].iterdir()) if not p.name.startswith(".")]
        for child in children[:MAX_ARCHIVE_ENTRIES]:
            if child.is_symlink() or not (child.is_dir() or child.name.endswith(ARCHIVE_SUFFIXES)):
                continue
            name = child.name
            for suffix in ARCHIVE_SUFFIXES:
                name = name.removesuffix(suffix)
            try:
                with tempfile.TemporaryDirectory(prefix="entry-", dir=tmp) as one:
                    handin = unpack_handin(child, Path(one), layout=suite.layout)
                    read = read_handin(handin.root, suite.layout.packages, graded_modules(suite))
            except HandinError as exc:
                skipped[name] = exc.message
                continue
            if read.files:
                entries[name] = read
            else:
                skipped[name] = "none of the graded modules"
        for child in children[MAX_ARCHIVE_ENTRIES:]:
            skipped[child.name] = f"more than {MAX_ARCHIVE_ENTRIES} entries"
    return entries, skipped


# ---------------------------------------------------------------------------------------------
# Tokens and fingerprints

@dataclass
class _File:
    path: str
    source: str
    starts: np.ndarray         # character offset of each kept token
    ends: np.ndarray
    ids: np.ndarray            # uint64 id of each normalised token
    starter: np.ndarray | None = None   # True for a token inside a run the skeleton has


_TOKEN_IDS: dict[str, int] = {}


def _token_id(text: str) -> int:
    """A stable 64-bit id (never Python's salted hash: fingerprints must not depend on the run)."""
    found = _TOKEN_IDS.get(text)
    if found is None:
        found = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
        _TOKEN_IDS[text] = found
    return found


# One regular expression for Python's tokens: a single C-level pass, ~50x faster than pygments'
# lexer (which took ~3 s for a 256 KiB handin). Every alternative consumes what it scans, and an
# unterminated string ends at its line (or at the end of the file for a triple-quoted one), so any
# input is read in linear time and nothing can raise.
_LEX = re.compile(r"""
    (?P<space>[ \t\f\r\n\\]+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>[rRbBuUfF]{0,2}(?:
        \"\"\"(?:\\.|[^\\])*?(?:\"\"\"|\Z)
      | \'\'\'(?:\\.|[^\\])*?(?:\'\'\'|\Z)
      | \"(?:\\.|[^\"\\\n])*(?:\"|(?=\n)|\Z)
      | \'(?:\\.|[^\'\\\n])*(?:\'|(?=\n)|\Z)))
  | (?P<number>0[xXoObB][0-9a-fA-F_]+|(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9_]+)?[jJ]?)
  | (?P<name>[^\W\d]\w*)
  | (?P<op>\*\*=?|//=?|>>=?|<<=?|->|:=|\.\.\.|[-+*/%@&|^<>=!]=|[-+*/%@&|^~<>=.,:;()\[\]{}])
  | (?P<other>.)
""", re.VERBOSE | re.DOTALL)
_KEEP_NAMES = frozenset(keyword.kwlist) | frozenset(dir(builtins)) | {"self", "cls"}
_OPENING, _CLOSING = frozenset("([{"), frozenset(")]}")


def tokenize(path: str, source: str) -> _File:
    """SOURCE's significant tokens, normalised: names -> V, strings -> S; keywords, builtins, `self`,
    dunder names, numbers and operators as written; comments, docstrings (a string that is a whole
    statement) and spacing dropped."""
    starts, ends, words, line_starts = [], [], [], []
    depth, new_line = 0, True
    for m in _LEX.finditer(source):
        kind, text = m.lastgroup, m.group()
        if kind == "space":
            if "\n" in text and depth == 0 and not text.rstrip(" \t\f\r\n").endswith("\\"):
                new_line = True
            continue
        if kind == "comment":
            continue
        if kind == "name":
            word = text if text in _KEEP_NAMES or (text.startswith("__") and text.endswith("__")) else "V"
        elif kind == "string":
            word = "S"
        else:
            word = text
            depth = max(0, depth + (text in _OPENING) - (text in _CLOSING))
        starts.append(m.start())
        ends.append(m.end())
        words.append(word)
        line_starts.append(new_line)
        new_line = False
    # A string standing alone as a statement (a docstring, or a comment written as one) is dropped.
    keep = [not (w == "S" and line_starts[i] and (i + 1 == len(words) or line_starts[i + 1]))
            for i, w in enumerate(words)]
    return _File(path, source, np.array([x for x, k in zip(starts, keep) if k], dtype=np.int64),
                 np.array([x for x, k in zip(ends, keep) if k], dtype=np.int64),
                 np.array([_token_id(w) for w, k in zip(words, keep) if k], dtype=np.uint64))


def kgram_hashes(ids: np.ndarray, k: int = K) -> np.ndarray:
    """The hash of every run of K consecutive tokens (a polynomial hash mod 2**64)."""
    n = len(ids) - k + 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint64)
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(k):
            h = h * _PRIME + ids[j:j + n]
    return h


def winnow(hashes: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Positions kept by robust winnowing: the rightmost minimum of every WINDOW consecutive hashes."""
    n = len(hashes)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if n <= window:
        return np.array([n - 1 - int(np.argmin(hashes[::-1]))], dtype=np.int64)
    views = np.lib.stride_tricks.sliding_window_view(hashes, window)
    rightmost = window - 1 - np.argmin(views[:, ::-1], axis=1)
    return np.unique(np.arange(len(views)) + rightmost)


@dataclass
class _Handin:
    name: str
    files: list[_File]
    archive: bool = False
    # one row per fingerprint: hash, file index, token position
    hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    file_of: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pos: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    coverage: int = 0          # tokens covered by the kept fingerprints

    def keep(self, mask: np.ndarray) -> None:
        self.hashes, self.file_of, self.pos = self.hashes[mask], self.file_of[mask], self.pos[mask]

    def covered(self, mask: np.ndarray) -> tuple[int, list[np.ndarray]]:
        """Tokens covered by the fingerprints MASK selects: the count and, per file, a bool array."""
        sizes = np.array([len(f.ids) for f in self.files], dtype=np.int64)
        bases = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        flags = _within(int(bases[-1]), bases[self.file_of[mask]] + self.pos[mask])
        flags &= ~np.concatenate([f.starter for f in self.files] or [np.zeros(0, dtype=bool)])
        per_file = [flags[bases[i]:bases[i + 1]] for i in range(len(self.files))]
        return int(flags.sum()), per_file


def _fingerprint(name: str, files: Mapping[str, str], boilerplate: np.ndarray, archive: bool = False) -> _Handin:
    handin = _Handin(name, [tokenize(p, s) for p, s in sorted(files.items())], archive)
    hashes, file_of, pos = [], [], []
    for i, f in enumerate(handin.files):
        h = kgram_hashes(f.ids)
        f.starter = _within(len(f.ids), np.flatnonzero(np.isin(h, boilerplate)))
        kept = winnow(h)
        hashes.append(h[kept])
        file_of.append(np.full(len(kept), i, dtype=np.int64))
        pos.append(kept)
    if hashes:
        handin.hashes, handin.file_of, handin.pos = np.concatenate(hashes), np.concatenate(file_of), np.concatenate(pos)
    handin.keep(~np.isin(handin.hashes, boilerplate))
    return handin


def _within(n: int, runs: np.ndarray) -> np.ndarray:
    """Which of N tokens lie in one of the K-token RUNS (given by their first positions)."""
    depth = np.zeros(n + K + 1, dtype=np.int64)
    np.add.at(depth, runs, 1)
    np.add.at(depth, runs + K, -1)
    return np.cumsum(depth)[:n] > 0


NEAR_COPY = 0.9   # Jaccard of two handins' fingerprints: renamed or re-commented copies (0.89-1.0 on the real handins)


def _near_copy_groups(holders: list[np.ndarray], max_sharers: int) -> list[int]:
    """A group number per handin: handins whose fingerprint sets overlap by NEAR_COPY or more (Jaccard),
    transitively, share a group. Fingerprints held by many handins are left out of the search for
    candidates (a group that large is common code whatever it is)."""
    parent = list(range(len(holders)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    values, counts = np.unique(np.concatenate(holders), return_counts=True)
    rare = values[counts <= max(4 * max_sharers, 40)]
    index: dict[int, list[int]] = defaultdict(list)
    for i, hs in enumerate(holders):
        for value in hs[np.isin(hs, rare)].tolist():
            index[value].append(i)
    pairs = {pair for held_by in index.values() for pair in combinations(held_by, 2)}
    for i, j in pairs:
        shared = len(np.intersect1d(holders[i], holders[j], assume_unique=True))
        if shared >= NEAR_COPY * (len(holders[i]) + len(holders[j]) - shared):
            parent[root(i)] = root(j)
    return [root(i) for i in range(len(holders))]


def default_max_sharers(handins: int) -> int:
    """MOSS's -m for a class of HANDINS (class and archive): 10, but in a small class code that a
    quarter of it shares is formula code, not evidence (4 handins of the same formulas would all
    pair up otherwise); never below 2, so a copied pair always counts."""
    return max(2, min(DEFAULT_MAX_SHARERS, math.ceil(handins / 4)))


def _spans(f: _File, covered: np.ndarray) -> list[Span]:
    """Runs of covered tokens as exact character spans (first token's start to last token's end)."""
    if not covered.any():
        return []
    idx = np.flatnonzero(covered)
    breaks = np.flatnonzero(np.diff(idx) > 1)
    firsts = np.concatenate([[idx[0]], idx[breaks + 1]])
    lasts = np.concatenate([idx[breaks], [idx[-1]]])
    return [Span(start=int(f.starts[a]), end=int(f.ends[b])) for a, b in zip(firsts, lasts)]


def _pair(a: _Handin, b: _Handin) -> Pair:
    shared = np.intersect1d(a.hashes, b.hashes)
    in_a, in_b = np.isin(a.hashes, shared), np.isin(b.hashes, shared)
    tokens_a, _ = a.covered(in_a)
    tokens_b, _ = b.covered(in_b)
    # Which file of A shares code with which file of B.
    by_hash_b: dict[int, set[int]] = defaultdict(set)
    for h, fb in zip(b.hashes[in_b].tolist(), b.file_of[in_b].tolist()):
        by_hash_b[h].add(fb)
    links: dict[tuple[int, int], set[int]] = defaultdict(set)
    for h, fa in zip(a.hashes[in_a].tolist(), a.file_of[in_a].tolist()):
        for fb in by_hash_b[h]:
            links[(fa, fb)].add(h)
    files = []
    # The links sharing the most fingerprints (a crafted pair of 78-module handins has thousands).
    ranked = sorted(links.items(), key=lambda item: (-len(item[1]), item[0]))[:MAX_FILE_LINKS]
    for (fa, fb), hs in ranked:
        hs_arr = np.fromiter(hs, dtype=np.uint64, count=len(hs))
        ma = np.isin(a.hashes, hs_arr) & (a.file_of == fa)
        mb = np.isin(b.hashes, hs_arr) & (b.file_of == fb)
        _, cov_a = a.covered(ma)
        _, cov_b = b.covered(mb)
        files.append(FileMatch(path_a=a.files[fa].path, path_b=b.files[fb].path, tokens=int(cov_a[fa].sum()),
                               spans_a=_spans(a.files[fa], cov_a[fa]), spans_b=_spans(b.files[fb], cov_b[fb])))
    files.sort(key=lambda m: (-m.tokens, m.path_a, m.path_b))
    return Pair(a=a.name, b=b.name, archive=b.archive,
                similarity_a=tokens_a / a.coverage if a.coverage else 0.0,
                similarity_b=tokens_b / b.coverage if b.coverage else 0.0,
                tokens=min(tokens_a, tokens_b), files=files)


def compare_handins(handins: Mapping[str, Mapping[str, str]], skeleton: Mapping[str, str] | None = None,
                    *, archive: Mapping[str, Mapping[str, str]] | None = None,
                    threshold: float = DEFAULT_THRESHOLD, max_sharers: int | None = None,
                    min_tokens: int = DEFAULT_MIN_TOKENS, capped: Mapping[str, str] | None = None,
                    progress: Progress | None = None) -> Report:
    """HANDINS maps a student to {relative path: Python source}; SKELETON maps the handout's paths
    to their source; ARCHIVE maps a label (earlier semesters, public solutions) to a handin, compared
    with every student but not with each other. Returns the pairs whose similarity (either
    direction) reaches THRESHOLD. MAX_SHARERS defaults to default_max_sharers(class + archive)."""
    started = time.perf_counter()
    archive = archive or {}
    steps = _Steps(len(handins) + len(archive) + 1, progress)   # one a handin, one for the pairs
    everyone = _fingerprint_all(handins, archive, skeleton or {}, steps)
    if max_sharers is None:
        max_sharers = default_max_sharers(len(everyone))
    holders = _drop_common_code(everyone, max_sharers)
    candidates = _candidate_pairs(everyone, holders)
    found = _similar_pairs(everyone, holders, candidates, threshold, min_tokens)
    steps.tick()
    report = Report(handins=len(handins), archive_handins=len(archive), threshold=threshold,
                    max_sharers=max_sharers, min_tokens=min_tokens, skeleton_files=len(skeleton or {}),
                    candidate_pairs=len(candidates), capped=dict(capped or {}))
    _list_pairs(report, found, everyone)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


class _Steps:
    """Progress through TOTAL steps, reported to PROGRESS (if any) after each."""

    def __init__(self, total: int, progress: Progress | None):
        self.total, self.progress, self.done = total, progress, 0

    def tick(self) -> None:
        self.done += 1
        if self.progress:
            self.progress(min(self.done, self.total), self.total)


def _fingerprint_all(handins: Mapping[str, Mapping[str, str]], archive: Mapping[str, Mapping[str, str]],
                     skeleton: Mapping[str, str], steps: _Steps) -> list[_Handin]:
    """Every student's handin (by name), then every archive entry (by label), fingerprinted without
    the handout's own code."""
    boilerplate = np.unique(np.concatenate([kgram_hashes(tokenize(p, s).ids) for p, s in skeleton.items()]
                                           or [np.zeros(0, dtype=np.uint64)]))
    everyone: list[_Handin] = []
    for name in sorted(handins):
        everyone.append(_fingerprint(name, handins[name], boilerplate))
        steps.tick()
    for label in sorted(archive):
        everyone.append(_fingerprint(label, archive[label], boilerplate, archive=True))
        steps.tick()
    return everyone


def _drop_common_code(everyone: list[_Handin], max_sharers: int) -> list[np.ndarray]:
    """Drop, everywhere, every fingerprint held by more than MAX_SHARERS handins: common code. Near
    copies of each other (most of their fingerprints alike) count as one holder: three students
    handing in one solution in a class of four, or a public solution forked twice in the archive,
    would otherwise make their own copied code look like formula code and hide it. Returns each
    handin's distinct fingerprints after that."""
    holders: list[np.ndarray] = [np.unique(h.hashes) for h in everyone]
    if not holders:
        return holders
    group = _near_copy_groups(holders, max_sharers)
    by_group: dict[int, list[np.ndarray]] = defaultdict(list)
    for i, hs in enumerate(holders):
        by_group[group[i]].append(hs)
    values, counts = np.unique(np.concatenate([np.unique(np.concatenate(m)) for m in by_group.values()]),
                               return_counts=True)
    common = values[counts > max_sharers]
    for h in everyone:
        h.keep(~np.isin(h.hashes, common))
        h.coverage, _ = h.covered(np.ones(len(h.hashes), dtype=bool))
    return [np.unique(h.hashes) for h in everyone]


def _candidate_pairs(everyone: list[_Handin], holders: list[np.ndarray]) -> set[tuple[int, int]]:
    """The pairs (indices into EVERYONE) sharing at least one fingerprint; archive entries are never
    paired with each other."""
    index: dict[int, list[int]] = defaultdict(list)
    for i, hs in enumerate(holders):
        for value in hs.tolist():
            index[value].append(i)
    candidates: set[tuple[int, int]] = set()
    for held_by in index.values():
        for i, j in combinations(held_by, 2):
            if not everyone[i].archive:
                candidates.add((i, j))
    return candidates


def _similar_pairs(everyone: list[_Handin], holders: list[np.ndarray], candidates: set[tuple[int, int]],
                   threshold: float, min_tokens: int) -> list[Pair]:
    """The candidate pairs sharing at least MIN_TOKENS tokens and THRESHOLD of either side."""
    found = []
    for i, j in candidates:
        a, b = everyone[i], everyone[j]
        # An upper bound first: each shared fingerprint covers at most K tokens. Most candidate
        # pairs share a line or two and stop here, before their regions are worked out.
        shared = np.intersect1d(holders[i], holders[j], assume_unique=True)
        na, nb = int(np.isin(a.hashes, shared).sum()) * K, int(np.isin(b.hashes, shared).sum()) * K
        if min(na, nb) < min_tokens or max(na / max(a.coverage, 1), nb / max(b.coverage, 1)) < threshold:
            continue
        pair = _pair(a, b)
        if pair.tokens >= min_tokens and pair.similarity >= threshold:
            found.append(pair)
    return found


def _list_pairs(report: Report, found: list[Pair], everyone: list[_Handin]) -> None:
    """The most similar pairs first, at most MAX_LISTED_PAIRS of the class and of the archive, with
    the sources they need, the whole report within its size budget."""
    found.sort(key=lambda p: (-p.similarity, -p.tokens, p.a, p.b))
    report.pairs_over_threshold = len(found)
    report.pairs = [p for p in found if not p.archive][:MAX_LISTED_PAIRS]
    report.archive_pairs = [p for p in found if p.archive][:MAX_LISTED_PAIRS]
    _keep_sources(report, {h.name: h for h in everyone})
    _fit(report)


def _keep_sources(report: Report, by_name: Mapping[str, _Handin]) -> None:
    """Store the sources of the listed pairs' matching files, most similar pairs first, until
    MAX_REPORT_SOURCE_BYTES: the pairs after that keep their figures and spans only."""
    budget = MAX_REPORT_SOURCE_BYTES
    ordered = sorted(report.pairs + report.archive_pairs, key=lambda p: (-p.similarity, -p.tokens))
    for pair in ordered:
        need = [(pair.a, f.path_a) for f in pair.files] + [(pair.b, f.path_b) for f in pair.files]
        need = [(who, path) for who, path in dict.fromkeys(need) if path not in report.sources.get(who, {})]
        texts = {(who, path): next(f.source for f in by_name[who].files if f.path == path) for who, path in need}
        size = sum(len(t.encode()) for t in texts.values())
        if size > budget:
            continue
        budget -= size
        for (who, path), text in texts.items():
            report.sources.setdefault(who, {})[path] = text


def _fit(report: Report) -> None:
    """Keep the stored report under MAX_REPORT_BYTES: the least similar pairs lose their regions
    (their figures stay listed)."""
    size = len(report.model_dump_json())
    ordered = sorted(report.pairs + report.archive_pairs, key=lambda p: (-p.similarity, -p.tokens, p.a, p.b))
    for pair in reversed(ordered):
        if size <= MAX_REPORT_BYTES:
            return
        before = len(pair.model_dump_json())
        pair.files, pair.regions_dropped = [], True
        size -= before - len(pair.model_dump_json())


class _StripBodies(ast.NodeTransformer):
    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        keep = [node.body[0]] if ast.get_docstring(node) else []
        node.body = keep + [ast.Raise(exc=ast.Name("NotImplementedError", ast.Load()))]
        return node


def skeleton_of(root: Path) -> dict[str, str]:
    """A handout-like skeleton derived from a solution tree: imports, classes, signatures and
    docstrings kept, every function body replaced. Used when no real handout skeleton is set."""
    skeleton = {}
    for path, source in read_sources(root).items():
        try:
            tree = _StripBodies().visit(ast.parse(source))
        except SyntaxError:
            continue
        skeleton[path] = ast.unparse(ast.fix_missing_locations(tree))
    return skeleton

