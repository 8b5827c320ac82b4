"""The similarity report: copies are found through renaming, shared starter code never counts."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from grader.similarity import compare_handins, handin_sources, read_sources, skeleton_of
from grader.suites.hw1p1 import LAYOUT as HW1P1_LAYOUT

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


def test_renamed_copy_is_reported_with_matching_regions():
    report = compare_handins(_class(alice=ALICE, bob=BOB, carol=CAROL), {PATH: SKELETON}, threshold=0.5)
    assert [(p.a, p.b) for p in report.pairs] == [("alice", "bob")]
    pair = report.pairs[0]
    assert pair.similarity_a > 0.9 and pair.similarity_b > 0.9
    match = pair.files[0]
    assert match.path == PATH and match.spans_a and match.spans_b
    copied_a = "".join(match.source_a[s.start:s.end] for s in match.spans_a)
    assert "self.dLdW = dLdZ.T @ self.A" in copied_a
    copied_b = "".join(match.source_b[s.start:s.end] for s in match.spans_b)
    assert "self.dLdW = grad.T @ self.inp" in copied_b


def test_independent_solutions_are_not_reported():
    report = compare_handins(_class(alice=ALICE, carol=CAROL), {PATH: SKELETON}, threshold=0.3)
    assert report.pairs == []


def test_skeleton_code_never_counts():
    only_skeleton = {"dan": SKELETON + "\n\nX = 1\n", "erin": SKELETON + "\n\nY = [2]\n"}
    with_skeleton = compare_handins(_class(**only_skeleton), {PATH: SKELETON}, threshold=0.01)
    assert with_skeleton.pairs == []
    # The same two handins without the skeleton look like copies: the exclusion is what saves them.
    without = compare_handins(_class(**only_skeleton), None, threshold=0.5)
    assert [(p.a, p.b) for p in without.pairs] == [("dan", "erin")]


def test_code_most_of_the_class_shares_is_not_evidence():
    crowd = {f"s{i:02d}": ALICE for i in range(12)}
    report = compare_handins(_class(**crowd), None, threshold=0.1, max_sharers=10)
    assert report.pairs == []
    small = compare_handins(_class(**dict(list(crowd.items())[:3])), None, threshold=0.1, max_sharers=10)
    assert len(small.pairs) == 3


def test_progress_is_reported_to_the_end():
    seen = []
    compare_handins(_class(alice=ALICE, bob=BOB, carol=CAROL), {PATH: SKELETON},
                    progress=lambda done, total: seen.append((done, total)))
    assert seen[-1][0] == seen[-1][1] and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_handin_sources_reads_an_uploaded_tar_safely():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in [("mytorch/nn/linear.py", ALICE), ("models/mlp.py", "X = 1\n"),
                           ("mytorch/__pycache__/linear.cpython-311.pyc", "junk")]:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    sources = handin_sources(buf.getvalue(), HW1P1_LAYOUT)
    assert sources == {"models/mlp.py": "X = 1\n", "mytorch/nn/linear.py": ALICE}


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
