"""The similarity report: copies are found through renaming and moving code between modules, shared
starter code never counts, highlighted regions are exact, and a crafted handin costs no more than a
large honest one."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest
from support import make_tar

from grader import similarity
from grader.similarity import (
    compare_handins,
    default_max_sharers,
    handin_sources,
    read_sources,
    skeleton_of,
    tokenize,
)
from grader.suites.hw1p1 import SUITE as HW1P1

REFERENCE = Path(__file__).resolve().parents[2] / "mytorch_reference"

SKELETON = '''import numpy as np


class Linear:
    def __init__(self, in_features, out_features, debug=False):
        """Initialize the weights and biases with zeros."""
        self.W = np.zeros((out_features, in_features))
        self.b = np.zeros((out_features, 1))
        self.debug = debug

    def forward(self, A):
        raise NotImplementedError

    def backward(self, dLdZ):
        raise NotImplementedError
'''

ALICE = SKELETON.replace('''    def forward(self, A):
        raise NotImplementedError

    def backward(self, dLdZ):
        raise NotImplementedError
''', '''    def forward(self, A):
        self.A = A
        self.N = A.shape[0]
        self.Ones = np.ones((self.N, 1))
        Z = self.A @ self.W.T + self.Ones @ self.b.T
        return Z

    def backward(self, dLdZ):
        dLdA = dLdZ @ self.W
        self.dLdW = dLdZ.T @ self.A
        self.dLdb = dLdZ.T @ self.Ones
        if self.debug:
            self.dLdA = dLdA
        return dLdA
''')

# Alice's code with every name changed, comments added and the spacing redone.
BOB = '''import numpy as np


class Linear:
    def __init__(self, in_features, out_features, debug=False):
        """Initialize the weights and biases with zeros."""
        self.W = np.zeros((out_features, in_features))
        self.b = np.zeros((out_features, 1))
        self.debug = debug

    def forward(self, inp):
        # remember the input for backward
        self.inp = inp
        self.count = inp.shape[0]
        self.ones_col = np.ones((self.count, 1))
        out = self.inp @ self.W.T  +  self.ones_col @ self.b.T
        return out

    def backward(self, grad):
        # chain rule
        g_in = grad @ self.W
        self.dLdW = grad.T @ self.inp
        self.dLdb = grad.T @ self.ones_col
        if self.debug:
            self.dLdA = g_in
        return g_in
'''

# Written independently: different structure (einsum, sums, no Ones matrix).
CAROL = '''import numpy as np


class Linear:
    def __init__(self, in_features, out_features, debug=False):
        """Initialize the weights and biases with zeros."""
        self.W = np.zeros((out_features, in_features))
        self.b = np.zeros((out_features, 1))
        self.debug = debug

    def forward(self, A):
        batch = np.asarray(A, dtype=float)
        self.cache = batch
        return np.einsum("ni,oi->no", batch, self.W) + np.reshape(self.b, (1, -1))

    def backward(self, dLdZ):
        grads = np.asarray(dLdZ)
        self.dLdW = np.einsum("no,ni->oi", grads, self.cache)
        self.dLdb = np.sum(grads, axis=0).reshape(-1, 1)
        result = np.einsum("no,oi->ni", grads, self.W)
        if self.debug:
            self.dLdA = result
        return result
'''

PATH = "mytorch/nn/linear.py"


def _class(**sources: str) -> dict[str, dict[str, str]]:
    return {name: {PATH: source} for name, source in sources.items()}


def _class(**sources: str) -> dict[str, dict[str, str]]:
    return {name: {PATH: source} for name, source in sources.items()}


def _copied_text(source: str, spans) -> str:
    return "".join(source[s.start:s.end] for s in spans)


def test_renamed_copy_is_reported_with_matching_regions():
    report = compare_handins(_class(alice=ALICE, bob=BOB, carol=CAROL), {PATH: SKELETON}, threshold=0.5,
                             max_sharers=10)
    assert [(p.a, p.b) for p in report.pairs] == [("alice", "bob")]
    pair = report.pairs[0]
    assert pair.similarity_a > 0.9 and pair.similarity_b > 0.9
    match = pair.files[0]
    assert match.path_a == match.path_b == PATH and match.spans_a and match.spans_b
    assert "self.dLdW = dLdZ.T @ self.A" in _copied_text(report.sources["alice"][PATH], match.spans_a)
    assert "self.dLdW = grad.T @ self.inp" in _copied_text(report.sources["bob"][PATH], match.spans_b)


def test_highlighted_regions_start_and_end_exactly_on_the_copied_code():
    """copydetect mapped its filtered offsets back to the source about one character off: a region
    began mid-name ("elf.A") or took the next character. Each region must be whole tokens."""
    report = compare_handins(_class(alice=ALICE, bob=BOB), {PATH: SKELETON}, threshold=0.5, max_sharers=10)
    match = report.pairs[0].files[0]
    for who, spans in (("alice", match.spans_a), ("bob", match.spans_b)):
        source = report.sources[who][PATH]
        tokens = tokenize(PATH, source)
        starts, ends = set(tokens.starts.tolist()), set(tokens.ends.tolist())
        for span in spans:
            assert span.start in starts and span.end in ends, repr(source[span.start - 3:span.end + 3])
    # Alice's copied region runs from `self.A = A` in forward to backward's `return dLdA`, exactly.
    text = _copied_text(report.sources["alice"][PATH], match.spans_a)
    assert text.startswith("self.A = A") and text.endswith("return dLdA")


def test_independent_solutions_are_not_reported():
    report = compare_handins(_class(alice=ALICE, carol=CAROL), {PATH: SKELETON}, threshold=0.3)
    assert report.pairs == []


def test_skeleton_code_never_counts():
    only_skeleton = {"dan": SKELETON + "\n\nX = 1\n", "erin": SKELETON + "\n\nY = [2]\n"}
    with_skeleton = compare_handins(_class(**only_skeleton), {PATH: SKELETON}, threshold=0.01)
    assert with_skeleton.pairs == []
    # The same two handins without the skeleton look like copies: the exclusion is what saves them.
    without = compare_handins(_class(**only_skeleton), None, threshold=0.5, min_tokens=20)
    assert [(p.a, p.b) for p in without.pairs] == [("dan", "erin")]


def test_skeleton_code_never_counts_even_when_moved_to_another_module():
    moved = {"dan": {"mytorch/nn/mine.py": SKELETON + "\n\nX = 1\n"}, "erin": {PATH: SKELETON + "\n\nY = [2]\n"}}
    assert compare_handins(moved, {PATH: SKELETON}, threshold=0.01).pairs == []


def _own_code(rng: random.Random, lines: int = 12) -> str:
    """Code of a student's own: random expressions nobody else writes."""
    ops = ["+", "-", "*", "@", "/"]
    body = [f"    v{i} = np.{rng.choice(['exp', 'tanh', 'sum', 'abs'])}(v{max(i - 1, 0)} {rng.choice(ops)} "
            f"{rng.randint(100, 10**6)}) {rng.choice(ops)} x[{rng.randint(0, 10**6)}]" for i in range(lines)]
    return "\n\ndef mine(x, v0):\n" + "\n".join(body) + "\n    return v0\n"


def test_code_most_of_the_class_shares_is_not_evidence():
    rng = random.Random(12)
    crowd = {f"s{i:02d}": ALICE + _own_code(rng) for i in range(12)}
    report = compare_handins(_class(**crowd), None, threshold=0.1, max_sharers=10)
    assert report.pairs == []
    small = compare_handins(_class(**dict(list(crowd.items())[:3])), None, threshold=0.1, max_sharers=10)
    assert len(small.pairs) == 3


def test_a_ring_of_copies_is_not_mistaken_for_code_the_class_shares():
    """Three students hand in one solution in a class of four: near copies count as one holder, so
    their code is not dropped as common (with each counted, it was held by 3 of 4 handins)."""
    rng = random.Random(3)
    shared = ALICE + _own_code(rng)
    handins = {"a": {PATH: shared}, "b": {"x/y.py": shared}, "c": {PATH: shared.replace("dLdZ", "g")},
               "d": {PATH: CAROL + _own_code(rng)}}
    assert default_max_sharers(4) == 2
    assert sorted((p.a, p.b) for p in compare_handins(handins, {PATH: SKELETON}).pairs) == [
        ("a", "b"), ("a", "c"), ("b", "c")]


def _formula_handin(rng: random.Random) -> str:
    """An independent handin of formula code: the same converging lines as everyone (the way
    correct HW1P1 answers look), in its own order and with its own names."""
    lines = ["Z = self.A @ self.W.T + self.Ones @ self.b.T", "dLdA = dLdZ @ self.W",
             "self.dLdW = dLdZ.T @ self.A", "self.dLdb = dLdZ.T @ self.Ones",
             "self.N = A.shape[0]", "self.Ones = np.ones((self.N, 1))"]
    rng.shuffle(lines)
    own = [f"t{i} = np.{rng.choice(['exp', 'tanh', 'sqrt'])}(x{i}) * {rng.randint(2, 9)}" for i in range(3)]
    return "import numpy as np\n\n\ndef work(self, A, dLdZ):\n" + "".join(f"    {line}\n" for line in lines + own)


def test_class_of_four_with_formula_code_flags_no_pair_by_default():
    """With 4 handins the old fixed MOSS -m of 10 dropped nothing, so formula code every correct
    handin shares made every pair pass 50 %. The default now follows the class size."""
    rng = random.Random(3)
    four = {f"s{i}": {PATH: _formula_handin(rng)} for i in range(4)}
    assert len(compare_handins(four, None, min_tokens=20, max_sharers=10).pairs) == 6   # the old default
    assert default_max_sharers(4) == 2 and default_max_sharers(200) == 10
    assert compare_handins(four, None, min_tokens=20).pairs == []
    # A copy among them is still found.
    three_and_a_copy = {k: four[k] for k in ("s0", "s1", "s2")} | {"copier": {"x/y.py": four["s0"][PATH]}}
    pairs = compare_handins(three_and_a_copy, None, min_tokens=20).pairs
    assert [(p.a, p.b) for p in pairs] == [("copier", "s0")]


def test_attack_code_moved_into_renamed_modules_is_still_paired():
    """Issue 18 item 7: every file's code moved into a renamed module (the original path only
    re-exports it) graded 100/100 and was never paired, because files were compared path by path."""
    original = {PATH: ALICE, "models/mlp.py": CAROL.replace("Linear", "MLP0")}
    moved = {"mytorch/nn/impl_linear.py": BOB, "mytorch/nn/linear.py": "from .impl_linear import *\n",
             "models/networks.py": CAROL.replace("Linear", "MLP0"), "models/mlp.py": "from .networks import *\n"}
    report = compare_handins({"alice": original, "mallory": moved}, {PATH: SKELETON})
    assert [(p.a, p.b) for p in report.pairs] == [("alice", "mallory")]
    pair = report.pairs[0]
    assert pair.similarity_a > 0.9
    best = {}
    for f in pair.files:   # ordered by tokens: each of A's files first meets where its code went
        best.setdefault(f.path_a, f.path_b)
    assert best == {PATH: "mytorch/nn/impl_linear.py", "models/mlp.py": "models/networks.py"}


def test_code_split_across_files_and_merged_into_one_is_paired():
    merged = {"mytorch/core.py": ALICE + "\n\n" + CAROL.replace("Linear", "MLP0")}
    split = {PATH: ALICE, "models/mlp.py": CAROL.replace("Linear", "MLP0")}
    report = compare_handins({"a": split, "b": merged}, {PATH: SKELETON})
    assert [(p.a, p.b) for p in report.pairs] == [("a", "b")] and report.pairs[0].similarity > 0.9


def test_archive_matches_are_listed_apart_and_archive_entries_never_pair_together():
    archive = {"F24 public: alice": {PATH: ALICE}, "F24 public: alice again": {PATH: ALICE}}
    report = compare_handins({"bob": {"mytorch/nn/renamed.py": BOB}, "carol": {PATH: CAROL}}, {PATH: SKELETON},
                             archive=archive)
    assert report.pairs == [] and report.archive_handins == 2
    assert sorted((p.a, p.b) for p in report.archive_pairs) == [("bob", "F24 public: alice"),
                                                               ("bob", "F24 public: alice again")]
    assert all(p.archive for p in report.archive_pairs)
    assert "F24 public: alice" in report.sources and "bob" in report.sources


def test_progress_is_reported_to_the_end():
    seen = []
    compare_handins(_class(alice=ALICE, bob=BOB, carol=CAROL), {PATH: SKELETON},
                    progress=lambda done, total: seen.append((done, total)))
    assert seen[-1][0] == seen[-1][1] and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_handin_sources_reads_the_graded_modules_and_what_they_import():
    tar = make_tar({"mytorch/nn/linear.py": b"from .helpers import *\n" + ALICE.encode(),
                    "mytorch/nn/helpers.py": b"def helper():\n    return 1\n",
                    "mytorch/nn/unused.py": b"X = 1\n",                      # never imported: never graded
                    "mytorch/nn/.ipynb_checkpoints/linear-checkpoint.py": ALICE.encode(),
                    "mytorch/nn/__init__.py": b"from .linear import *\n",     # never run by the grader
                    "models/mlp.py": b"X = 1\n",
                    "mytorch/__pycache__/linear.cpython-311.pyc": b"junk"})
    got = handin_sources(tar, HW1P1)
    assert got.files == {"models/mlp.py": "X = 1\n", "mytorch/nn/linear.py": "from .helpers import *\n" + ALICE,
                         "mytorch/nn/helpers.py": "def helper():\n    return 1\n"}
    assert got.left_out == ""


def _crafted_handin() -> bytes:
    """Issue 18 item 6: 78 modules of 256 KiB of code each (every one imported by linear.py, so all
    of it is 'graded'), as a gzipped tar under the upload limit."""
    rng = random.Random(6)
    files = {}
    for i in range(78):
        lines = [f"v{j} = [{rng.randint(0, 99)}, {i} * {j}, v{max(j - 1, 0)}.T @ w{j % 7}]" for j in range(9000)]
        files[f"mytorch/nn/pad{i:02d}.py"] = "\n".join(lines).encode()[:256 << 10]
    files["mytorch/nn/linear.py"] = "".join(f"from .pad{i:02d} import *\n" for i in range(78)).encode()
    raw = make_tar(files)
    assert len(raw) > 19 << 20
    return gzip.compress(raw, compresslevel=1)


def test_attack_crafted_huge_handins_cost_what_a_large_honest_one_does():
    """Each crafted handin added ~150 s of CPU and ~1.2 GiB; two made a 41 MB report with a 39 MB
    pair. What a handin contributes, what a report keeps and what a pair shows are capped."""
    crafted = handin_sources(_crafted_handin(), HW1P1)
    assert sum(len(s.encode()) for s in crafted.files.values()) <= similarity.MAX_HANDIN_BYTES
    assert all(len(s.encode()) <= similarity.MAX_FILE_BYTES for s in crafted.files.values())
    assert "cut or left out by the caps" in crafted.left_out
    # Two students hand in the same crafted archive: their pair is reported, within the caps.
    report = compare_handins({"m1": crafted.files, "m2": dict(crafted.files), "alice": {PATH: ALICE}},
                             {PATH: SKELETON}, capped={"m1": crafted.left_out, "m2": crafted.left_out})
    assert [(p.a, p.b) for p in report.pairs] == [("m1", "m2")]
    stored = len(report.model_dump_json())
    assert stored <= 2 * similarity.MAX_HANDIN_BYTES + (1 << 20)
    assert report.capped["m1"] == crafted.left_out


def test_stored_report_keeps_sources_within_its_cap(monkeypatch):
    monkeypatch.setattr(similarity, "MAX_REPORT_SOURCE_BYTES", 2 * len(ALICE.encode()) + 10)
    report = compare_handins({"a": {PATH: ALICE}, "b": {PATH: ALICE}, "c": {"x/c.py": BOB}, "d": {"x/d.py": BOB}},
                             {PATH: SKELETON}, max_sharers=10)
    assert len(report.pairs) == 6
    assert sum(len(t.encode()) for files in report.sources.values() for t in files.values()) \
        <= similarity.MAX_REPORT_SOURCE_BYTES
    kept = [p for p in report.pairs if p.a in report.sources and p.b in report.sources]
    assert kept and len(kept) < len(report.pairs)


@pytest.mark.parametrize("source", ['"""never closed\n' * 2000, "'" * 50_000, "x = (" * 10_000,
                                    "\x00\xff\ufffd" * 1000, "0x 1e 1.e .e _ __ \\\n" * 1000])
def test_tokenizer_reads_any_text_without_failing(source):
    tokens = tokenize("x.py", source)
    assert len(tokens.starts) == len(tokens.ends) == len(tokens.ids)
    assert (tokens.ends <= len(source)).all() and (tokens.starts < tokens.ends).all()


def test_tokenizer_drops_comments_docstrings_and_names():
    a = tokenize("a.py", 'def f(x):\n    """Doc."""\n    # note\n    return x + 1  # add\n')
    b = tokenize("b.py", "def g(value):\n\n    return value + 1\n")
    assert a.ids.tolist() == b.ids.tolist()
    c = tokenize("c.py", "def g(value):\n    return value - 1\n")
    assert a.ids.tolist() != c.ids.tolist()


def test_skeleton_of_keeps_signatures_and_drops_bodies():
    skeleton = skeleton_of(REFERENCE)
    linear = skeleton["mytorch/nn/linear.py"]
    assert "def forward(self, A)" in linear and "raise NotImplementedError" in linear
    assert "@" not in linear
    assert set(read_sources(REFERENCE)) == set(skeleton)


@pytest.mark.parametrize("threshold", [0.0, 1.0])
def test_threshold_bounds(threshold):
    report = compare_handins(_class(alice=ALICE, bob=ALICE), {PATH: SKELETON}, threshold=threshold)
    assert len(report.pairs) == 1   # identical handins are 100% similar, reported at any threshold


def test_archive_of_earlier_handins_is_read_entry_by_entry(tmp_path):
    nested = make_tar({"mytorch/nn/linear.py": BOB.encode(), "models/mlp.py": b"X = 1\n"})
    tar = make_tar({"spring/alice/hw1p1_handout/mytorch/nn/linear.py": ALICE.encode(),
                    "spring/alice/hw1p1_handout/models/mlp.py": b"Y = 2\n",
                    "spring/bob.tar": nested,
                    "spring/notes.txt": b"not a handin",
                    "spring/empty/readme.md": b"nothing graded here"})
    entries, skipped = similarity.read_archive(gzip.compress(tar), HW1P1)
    assert sorted(entries) == ["alice", "bob"]
    assert entries["alice"].files[PATH] == ALICE and entries["bob"].files[PATH] == BOB
    assert set(skipped) == {"empty"}
    # The same from a folder.
    for name, data in {"carol/mytorch/nn/linear.py": CAROL.encode(), "dan.tar": nested}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    entries, skipped = similarity.read_archive(tmp_path, HW1P1)
    assert sorted(entries) == ["carol", "dan"] and skipped == {}


def test_stored_report_stays_under_its_size_cap(monkeypatch):
    handins = {f"s{i}": {PATH: ALICE} for i in range(4)}
    full = compare_handins(handins, {PATH: SKELETON}, max_sharers=10)
    monkeypatch.setattr(similarity, "MAX_REPORT_BYTES", len(full.model_dump_json()) - 200)
    report = compare_handins(handins, {PATH: SKELETON}, max_sharers=10)
    assert len(report.model_dump_json()) <= similarity.MAX_REPORT_BYTES
    assert len(report.pairs) == 6 and report.pairs[0].files and report.pairs[-1].regions_dropped


def test_attack_many_small_copied_modules_keep_a_bounded_pair():
    """78 modules of one copied line each, in two handins: every module of one matches every module
    of the other (6,084 file pairs). The pair keeps its MAX_FILE_LINKS largest links."""
    line = "def f{i}(self, A):\n    Z = self.A @ self.W.T + self.Ones @ self.b.T - np.sum(A, axis=0) * {i}\n    return Z\n"
    files = {f"mytorch/nn/m{i:02d}.py": "".join(line.format(i=j) for j in range(3)) for i in range(78)}
    report = compare_handins({"m1": files, "m2": dict(files)}, None)
    assert len(report.pairs) == 1 and len(report.pairs[0].files) == similarity.MAX_FILE_LINKS
