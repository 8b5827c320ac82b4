"""Similarity between handins (the writeup says handins are compared, MOSS-style).

Token-based winnowing through `copydetect` (pygments tokens with names and strings normalised, then
k-gram fingerprints winnowed, as MOSS does). Two kinds of shared code never count:
- the handout's skeleton: every fingerprint found in the skeleton files is boilerplate;
- code most of the class writes the same way: a fingerprint found in more than `max_sharers`
  handins is dropped, like MOSS's `-m`. HW1P1's functions are a few lines each and correct answers
  converge (`self.A @ self.W.T + ...`), so without it every pair of correct handins looks alike.

Files are compared path by path (`mytorch/nn/linear.py` with `mytorch/nn/linear.py`): the layout
is fixed by the handout. Candidate pairs come from an inverted index of fingerprints, so the cost
grows with the number of pairs that actually share code, not with the square of the class.
"""

from __future__ import annotations

import ast
import io
import logging
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from itertools import combinations
from pathlib import Path

from pydantic import BaseModel, Field

from grader.suite import Layout

# copydetect's defaults: a match must span at least NOISE filtered characters to count, and any
# match of GUARANTEE characters or more is always found.
NOISE = 25
GUARANTEE = 30
DEFAULT_THRESHOLD = 0.5
DEFAULT_MAX_SHARERS = 10
# A pair must share at least this many filtered tokens: a few k-grams where a student's own line
# meets the skeleton are coincidence (and which ones winnowing keeps varies with Python's hash seed).
DEFAULT_MIN_TOKENS = 60

MAX_SOURCE_BYTES = 256 << 10   # a longer file is generated data, not code worth comparing

Progress = Callable[[int, int], None]


class Span(BaseModel):
    start: int   # character offsets into the file's source, end exclusive
    end: int


class FileMatch(BaseModel):
    path: str
    tokens: int                        # overlapping tokens in this file
    source_a: str
    source_b: str
    spans_a: list[Span]
    spans_b: list[Span]


class Pair(BaseModel):
    a: str
    b: str
    similarity_a: float   # share of A's fingerprinted tokens found in B
    similarity_b: float
    tokens: int
    files: list[FileMatch] = Field(default_factory=list)

    @property
    def similarity(self) -> float:
        return max(self.similarity_a, self.similarity_b)


class Report(BaseModel):
    handins: int
    threshold: float
    max_sharers: int
    min_tokens: int = DEFAULT_MIN_TOKENS
    skeleton_files: int
    pairs: list[Pair] = Field(default_factory=list)   # above the threshold, most similar first
    candidate_pairs: int = 0                          # pairs sharing at least one fingerprint
    seconds: float = 0.0


def _fingerprint(path: str, source: str, boilerplate: Iterable[int]):
    from copydetect import CodeFingerprint

    return CodeFingerprint(path, NOISE, GUARANTEE - NOISE + 1, boilerplate=list(boilerplate),
                           language="python", fp=io.StringIO(source))


def _drop(fingerprint, hashes: set[int]) -> None:
    """Forget fingerprints that are boilerplate for this class, and recount the coverage."""
    from copydetect.utils import get_token_coverage

    fingerprint.hashes = set(fingerprint.hashes) - hashes
    for h in hashes:
        fingerprint.hash_idx.pop(h, None)
    fingerprint.token_coverage = get_token_coverage(fingerprint.hash_idx, fingerprint.k,
                                                    len(fingerprint.filtered_code))


def _spans(slices) -> list[Span]:
    return [Span(start=int(s), end=int(e)) for s, e in zip(slices[0], slices[1])]


def compare_handins(handins: Mapping[str, Mapping[str, str]], skeleton: Mapping[str, str] | None = None,
                    *, threshold: float = DEFAULT_THRESHOLD, max_sharers: int = DEFAULT_MAX_SHARERS,
                    min_tokens: int = DEFAULT_MIN_TOKENS, progress: Progress | None = None) -> Report:
    """HANDINS maps a student to {relative path: Python source}; SKELETON maps the handout's paths
    to their source. Returns the pairs whose similarity (either direction) reaches THRESHOLD."""
    from copydetect import compare_files

    started = time.perf_counter()
    logging.getLogger("copydetect").setLevel(logging.ERROR)
    skeleton = skeleton or {}
    students = sorted(handins)
    total_steps = len(students) + 1
    done = 0

    def tick(extra: int = 1) -> None:
        nonlocal done
        done += extra
        if progress:
            progress(min(done, total_steps), total_steps)

    boilerplate: set[int] = set()
    for path, source in skeleton.items():
        boilerplate |= set(_fingerprint(path, source, ()).hashes)

    prints: dict[str, dict] = {}
    for student in students:
        prints[student] = {path: _fingerprint(path, source, boilerplate)
                           for path, source in sorted(handins[student].items())}
        tick()

    sharers: dict[str, Counter] = defaultdict(Counter)
    for student in students:
        for path, fp in prints[student].items():
            sharers[path].update(fp.hashes)
    for path, counts in sharers.items():
        common = {h for h, n in counts.items() if n > max_sharers}
        if common:
            for student in students:
                if path in prints[student]:
                    _drop(prints[student][path], common)

    index: dict[tuple[str, int], list[str]] = defaultdict(list)
    for student in students:
        for path, fp in prints[student].items():
            for h in fp.hashes:
                index[(path, h)].append(student)
    candidates: dict[tuple[str, str], set[str]] = defaultdict(set)
    for (path, _), holders in index.items():
        for a, b in combinations(holders, 2):
            candidates[(a, b)].add(path)

    report = Report(handins=len(students), threshold=threshold, max_sharers=max_sharers, min_tokens=min_tokens,
                    skeleton_files=len(skeleton), candidate_pairs=len(candidates))
    for (a, b), paths in candidates.items():
        coverage_a = sum(fp.token_coverage for fp in prints[a].values())
        coverage_b = sum(fp.token_coverage for fp in prints[b].values())
        files, overlap_a, overlap_b = [], 0, 0
        for path in sorted(paths):
            fa, fb = prints[a][path], prints[b][path]
            tokens, (sim_a, sim_b), slices = compare_files(fa, fb)
            if not tokens:
                continue
            overlap_a += round(sim_a * fa.token_coverage)
            overlap_b += round(sim_b * fb.token_coverage)
            files.append(FileMatch(path=path, tokens=int(tokens), source_a=fa.raw_code,
                                   source_b=fb.raw_code, spans_a=_spans(slices[0]),
                                   spans_b=_spans(slices[1])))
        pair = Pair(a=a, b=b, similarity_a=overlap_a / coverage_a if coverage_a else 0.0,
                    similarity_b=overlap_b / coverage_b if coverage_b else 0.0,
                    tokens=sum(f.tokens for f in files), files=files)
        if pair.tokens >= min_tokens and pair.similarity >= threshold:
            report.pairs.append(pair)
    tick()
    report.pairs.sort(key=lambda p: (-p.similarity, -p.tokens, p.a, p.b))
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def read_sources(root: Path) -> dict[str, str]:
    """Every Python file under ROOT (an unpacked handin or a skeleton), by relative path."""
    sources = {}
    for path in sorted(root.rglob("*.py")):
        if path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_SOURCE_BYTES:
            sources[path.relative_to(root).as_posix()] = path.read_text(encoding="utf-8", errors="replace")
    return sources


def handin_sources(archive: bytes, layout: Layout) -> dict[str, str]:
    """The Python files of one uploaded handin, unpacked with the grader's own safe unpacking
    (LAYOUT: its assessment's folders)."""
    from grader.handin import unpack_handin

    with tempfile.TemporaryDirectory(prefix="similarity-") as tmp:
        return read_sources(unpack_handin(archive, Path(tmp), layout=layout).root)


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
