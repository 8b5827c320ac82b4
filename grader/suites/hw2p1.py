"""The HW2P1 (CNNs) section suite.

Source: the course's F25 handout ("Autograder Version v2", September 2025), the most recent public
one that carries its local autograder (`autograder/runner.py`, `helpers.py`,
`hw2p1_autograder_flags.py`); its expected results (`autograder/ref_result/`) are not public, so
every expected value here comes from our reference (mytorch_reference_hw2/).

Handin: `tar -cvf handin.tar -X exclude.txt models mytorch` (the handout's create_tarball.sh), i.e.
models/ beside mytorch/:
- mytorch/nn/resampling.py: Upsample1d(upsampling_factor), Downsample1d(downsampling_factor),
  Upsample2d, Downsample2d; forward(A), backward(dLdZ). Upsampling by k inserts k - 1 zeros between
  neighbours (width k(W - 1) + 1); downsampling keeps every k-th entry (width ceil(W / k)).
- mytorch/nn/Conv1d.py: Conv1d_stride1(in_channels, out_channels, kernel_size, weight_init_fn=None,
  bias_init_fn=None) with W (out, in, K), b (out,), dLdW, dLdb; Conv1d(in_channels, out_channels,
  kernel_size, stride, padding=0, weight_init_fn=None, bias_init_fn=None) holding `conv1d_stride1`
  and `downsample1d`. forward(A), backward(dLdZ) returning dLdA.
- mytorch/nn/Conv2d.py: Conv2d_stride1 and Conv2d, the same in 2-d (square kernels, W (out, in, K, K)),
  holding `conv2d_stride1` and `downsample2d`.
- mytorch/nn/ConvTranspose.py: ConvTranspose1d/2d(in_channels, out_channels, kernel_size,
  upsampling_factor, weight_init_fn=None, bias_init_fn=None): upsample, then the stride-1 convolution
  (`upsample1d` + `conv1d_stride1`, `upsample2d` + `conv2d_stride1`).
- mytorch/nn/pool.py: MaxPool2d_stride1(kernel), MeanPool2d_stride1(kernel), MaxPool2d(kernel, stride),
  MeanPool2d(kernel, stride) (stride-1 pool, then Downsample2d).
- mytorch/flatten.py: Flatten, forward (N, C, W) -> (N, C * W), backward.
- models/mlp_scan.py: CNN_SimpleScanningMLP() and CNN_DistributedScanningMLP() with
  init_weights(weights) (three MLP matrices (in, out): 192x8, 8x16, 16x4) and forward(A) on
  (N, 24, W); layers conv1, conv2, conv3 whose `conv1d_stride1.W` init_weights sets. Their
  backward is the handout's own code and is not graded (no runner calls it since F24).
- models/cnn.py: CNN(input_width, num_input_channels, num_channels, kernel_sizes, strides,
  num_linear_neurons, activations, conv_weight_init_fn, bias_init_fn, linear_weight_init_fn,
  criterion, lr) with `convolutional_layers` (Conv1d), `flatten`, `linear_layer` (Linear);
  forward(A), backward(labels) (loss from the criterion, returns dLdA).
- The student's HW1P1 files mytorch/nn/{activation,linear,loss}.py, used by the models.
The handout's files import each other by bare name (`from resampling import *`, `from Conv1d
import *`, `from flatten import *`): its runner appends mytorch/, mytorch/nn/ and models/ to sys.path,
and so does this suite (`Layout.flat`). The handout has no __init__.py files.

Sections and points (the local runner's `tests` list, in its order; total 100):
  Downsampling1d 2.5, Upsampling1d 2.5, Downsampling2d 2.5, Upsampling2d 2.5, Conv1d_stride1 10,
  Conv1d 5, Conv2d_stride1 10, Conv2d 5, convTranspose1d 5, convTranspose2d 5, MaxPool2d_stride1 10,
  MaxPool2d 5, MeanPool2d_stride1 10, MeanPool2d 5, CNN as Simple Scanning MLP 5 (its printed name
  says 5; its value is 10 for the distributed one), CNN as Distributed Scanning MLP 10,
  Build a CNN Model 5.
Points here are whole numbers (results, the database and the pages hold integers), so the four
2.5-point resampling sections are graded as two 5-point sections, "Resampling 1d" (Downsampling1d
and Upsampling1d) and "Resampling 2d"; every other section is the official one, same name, same points.

The fixed cases of the local runner, reproduced draw for draw from its legacy np.random calls
(`_LocalRunner` below), so a student sees here the shapes that passed locally:
- Downsampling1d and Upsampling1d: seeds 11333, 11235, 11785; in_c, out_c = randint(5, 15) x2;
  batch, width = randint(1, 4), randint(20, 300); kernel, factor = randint(1, 10) x2;
  x = randn(batch, in_c, width); backward is called on the forward's own output.
- Downsampling2d: seeds 11593, 11785, 34567; in_c, out_c, kernel (3..6), factor (1..9),
  width (60..79), batch (1..3); square x. Upsampling2d: seeds 11333, 11235, 11785; in_c, out_c,
  kernel, width, batch, factor. Backward on the forward's output.
- Conv1d_stride1: 15 cases drawn from the state Upsampling2d left: in_c, out_c (5..14), kernel
  (1..9), batch (1..3), width (20..299); W = normal(0, 1, (out, in, K)) drawn by weight_init_fn in
  the constructor, bias_init_fn = np.ones; x = randn; dLdZ = randn. Checked: Z, dLdA, dLdW, dLdb.
- Conv1d: 15 cases continuing the stream: in_c, out_c, kernel, stride (1..9), padding (1..9),
  batch, width; keywords padding=, weight_init_fn=, bias_init_fn=np.ones. Checked: Z, dLdA,
  conv1d_stride1.dLdW and .dLdb.
- Conv2d_stride1: seed 11785, 2 cases: in_c, out_c, kernel (3..6), width (60..79), batch; x drawn
  before W; bias np.zeros. Conv2d: seed 11785, 2 cases, also stride (3, 4) and padding (3, 4).
- ConvTranspose1d: seeds 11485, 11685, 11785: in_c, out_c (5..14), batch, width (20..299), kernel,
  factor (1..9); x = randn; weight_init_fn reseeds 11785 and draws W; bias zeros; dLdZ = randn after.
  ConvTranspose2d: the same seeds, in_c, out_c (3, 4), batch, width (20..99), kernel, factor (1, 2).
  Checked: Z and dLdA.
- MaxPool2d_stride1 and MaxPool2d: seeds 11485, 11685, 11785: kernel (3..6), [stride (3, 4)],
  width (50..99), in_c, batch; backward on the forward's output.
- MeanPool2d_stride1 and MeanPool2d: seed 11785, then 3 cases drawn one after another; backward
  on the forward's output.
- Scanning MLPs: the data file (a 128-step, 24-channel recording, as (1, 24, 128)) and two weight
  files (192x8, 8x16, 16x4; the distributed one has its shared blocks on the diagonal and NaN
  elsewhere). Forward only. Here the data and the weights are generated by the suite (fixed seed for
  the "handout case", the handin's seed for the others), the distributed weights with the same
  structure: a block repeated on the diagonal, NaN off it, so only the shared weights may be used.
- CNN: input width 128, 24 channels, num_channels [56, 28, 14], kernels [5, 6, 2], strides [1, 2, 2],
  10 neurons, activations [Tanh(), ReLU(), Sigmoid()], CrossEntropyLoss(), lr 1e-3; the linear
  layer's W and b set after construction (b as a column). Checked: the output, backward(labels)'s
  dLdA (labels: class 0, one-hot), and convolutional_layers[0].conv1d_stride1.dLdW and dLdb.
The local tolerances are 1e-12 (convolutions), 1e-8 (CNN) and np.allclose elsewhere; here the
house's strictness policy applies (grader/compare.py).

Beyond the local script (checks marked local=False): randomized cases of several shapes seeded from
the handin (batch 1, widths the stride or factor does not divide, kernel as wide as the input,
padding 0, factor 1, non-square inputs for the pools, a gradient that is not the forward's output);
every stored gradient (ConvTranspose's and the CNN's every layer, the linear layer's); two rounds on
the same object with another batch and width (nothing of the first call may leak into the second's
output or dLdA). The second round's dLdW and dLdb are not graded: the skeletons assign them, but a
layer that adds them up is used correctly with the CNN's zero_grads(), as in PyTorch.
Inputs are continuous random values, so a max pool's window never ties: which of several equal
maxima takes the gradient is left to the student, as the handout leaves it.

Earlier semesters' layouts (from public handins and their handouts' runners): S24-S25 is F25's
layout and tests without the flags file; S23 and F23 put every file directly in mytorch/
(mytorch/Conv1d.py, mytorch/pool.py, mytorch/activation.py, ..., beside an MCQ/ folder), which is
accepted too (each layer file is looked up in mytorch/nn/, then mytorch/); S23's Conv1d/Conv2d take
no padding (graded here by F25's signature, so they fail those sections), and S23's scanning-MLP
forward ends in Z.reshape(1, -1), so the scanning sections use one row, as every runner does.
F22-era handouts put Flatten in mytorch/nn/flatten.py (resolved by the bare import). F21-era ones
kept every convolution in mytorch/conv.py (not accepted: the files are reported missing). The HW1P1 files the models use
follow the student's own HW1P1 API (activation backward with or without dLdA), which is why the
suite builds the activations and the loss from the student's own files.
"""

from __future__ import annotations

import functools
from functools import cache
from pathlib import Path

import numpy as np

from grader.plan import Budget, Section, Test, derive_seed
from grader.suite import Layout, Misplaced, Suite

SECTION_POINTS = {
    "Resampling 1d": 5, "Resampling 2d": 5, "Conv1d_stride1": 10, "Conv1d": 5, "Conv2d_stride1": 10,
    "Conv2d": 5, "convTranspose1d": 5, "convTranspose2d": 5, "MaxPool2d_stride1": 10, "MaxPool2d": 5,
    "MeanPool2d_stride1": 10, "MeanPool2d": 5, "CNN as Simple Scanning MLP": 5,
    "CNN as Distributed Scanning MLP": 10, "Build a CNN Model": 5,
}



def _places(name: str) -> list[str]:
    """Where a layer file may live: mytorch/nn/ (F24 onwards) or mytorch/ itself (S23, F23)."""
    return [f"mytorch.nn.{name}", f"mytorch.{name}"]


RESAMPLING, CONV1D, CONV2D = _places("resampling"), _places("Conv1d"), _places("Conv2d")
CONV_TRANSPOSE, POOL = _places("ConvTranspose"), _places("pool")
ACTIVATION, LOSS, MLP_SCAN, CNN = _places("activation"), _places("loss"), "models.mlp_scan", "models.cnn"

STATE_WHY = ("A second forward/backward on the same object, with another batch and width, must not "
             "reuse anything of the first (input, shapes, gradients).")
GRAD_WHY = "An optimizer updates W and b from these."


# Inputs larger than this (values) give outputs too large to send back whole: those are compared by
# their shape and their sums (grader.runner.summarize), which tell nearly every wrong array apart.
SUMMARIZE_ABOVE = 20_000


def _check(t: Test, save: str, label: str, big: bool, **kwargs) -> None:
    """Check the saved value SAVE; when BIG, as its shape and its summary."""
    if not big:
        t.check(save, label, **kwargs)
        return
    next(step for step in t.steps if step.get("save") == save)["summarize"] = True
    local = kwargs.get("local", True)
    t.check(save + ".shape", f"the shape of {label}", local=local)
    t.check(save, f"{label}, compared by its sums along each of the last two axes and one weighted sum "
                  "(too many values to send back whole)", **kwargs)


def _rng(seed: str, name: str) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, name))


# ---------------------------------------------------------------------------------------------
# The local runner's draws

def _freeze(value) -> None:
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif isinstance(value, (list, tuple)):
        for item in value:
            _freeze(item)
    elif isinstance(value, dict):
        for item in value.values():
            _freeze(item)


def fixed_cases(draw):
    """DRAW's cases, drawn once per process and read only: the same array objects for every handin,
    so what is derived from them (the reference's digests, grader.grade) is computed once too."""
    @cache
    @functools.wraps(draw)
    def once(*args, **kwargs):
        cases = draw(*args, **kwargs)
        _freeze(cases)
        return cases
    return once


class _LocalRunner:
    """The local runner's legacy np.random stream, replayed: `seed`, `randint`, `randn`, `normal`
    draw exactly what its calls draw, in the same order."""

    def __init__(self):
        self.state = np.random.RandomState(0)

    def seed(self, seed: int) -> None:
        self.state.seed(seed)

    def randint(self, low: int, high: int) -> int:
        return int(self.state.randint(low, high))

    def randn(self, *shape) -> np.ndarray:
        return self.state.randn(*shape)

    def normal(self, shape) -> np.ndarray:
        return self.state.normal(0, 1.0, shape)


def _resampling_1d_cases(runner: _LocalRunner) -> list[tuple[np.ndarray, int]]:
    cases = []
    for seed in (11333, 11235, 11785):
        runner.seed(seed)
        r = runner.randint
        in_c, _out_c = r(5, 15), r(5, 15)
        batch, width = r(1, 4), r(20, 300)
        _kernel, factor = r(1, 10), r(1, 10)
        cases.append((runner.randn(batch, in_c, width), factor))
    return cases


def _downsampling_2d_cases(runner: _LocalRunner) -> list[tuple[np.ndarray, int]]:
    cases = []
    for seed in (11593, 11785, 34567):
        runner.seed(seed)
        r = runner.randint
        in_c, _out_c, _kernel, factor, width, batch = r(5, 15), r(5, 15), r(3, 7), r(1, 10), r(60, 80), r(1, 4)
        cases.append((runner.randn(batch, in_c, width, width), factor))
    return cases


def _upsampling_2d_cases(runner: _LocalRunner) -> list[tuple[np.ndarray, int]]:
    cases = []
    for seed in (11333, 11235, 11785):
        runner.seed(seed)
        r = runner.randint
        in_c, _out_c, _kernel, width, batch, factor = r(5, 15), r(5, 15), r(3, 7), r(60, 80), r(1, 4), r(1, 10)
        cases.append((runner.randn(batch, in_c, width, width), factor))
    return cases


@fixed_cases
def local_runner_conv1d_cases() -> tuple[list[dict], list[dict]]:
    """Conv1d_stride1's and Conv1d's 15 cases each: the stream continues from the four resampling
    tests (Downsampling1d, Upsampling1d, Downsampling2d, Upsampling2d, in the runner's order)."""
    runner = _LocalRunner()
    _resampling_1d_cases(runner), _resampling_1d_cases(runner)
    _downsampling_2d_cases(runner), _upsampling_2d_cases(runner)
    stride1, strided = [], []
    for _ in range(15):
        r = runner.randint
        in_c, out_c = r(5, 15), r(5, 15)
        kernel = r(1, 10)
        batch, width = r(1, 4), r(20, 300)
        W = runner.normal((out_c, in_c, kernel))
        A = runner.randn(batch, in_c, width)
        dLdZ = runner.randn(batch, out_c, width - kernel + 1)
        stride1.append({"A": A, "W": W, "b": np.ones(out_c), "dLdZ": dLdZ, "stride": 1, "padding": 0})
    for _ in range(15):
        r = runner.randint
        in_c, out_c = r(5, 15), r(5, 15)
        kernel, stride = r(1, 10), r(1, 10)
        padding = r(1, 10)
        batch, width = r(1, 4), r(20, 300)
        W = runner.normal((out_c, in_c, kernel))
        A = runner.randn(batch, in_c, width)
        dLdZ = runner.randn(batch, out_c, (width + 2 * padding - kernel) // stride + 1)
        strided.append({"A": A, "W": W, "b": np.ones(out_c), "dLdZ": dLdZ, "stride": stride, "padding": padding})
    return stride1, strided


@fixed_cases
def local_runner_conv2d_cases(strided: bool) -> list[dict]:
    runner = _LocalRunner()
    runner.seed(11785)
    cases = []
    for _ in range(2):
        r = runner.randint
        in_c, out_c, kernel = r(5, 15), r(5, 15), r(3, 7)
        stride, padding = (r(3, 5), r(3, 5)) if strided else (1, 0)
        width, batch = r(60, 80), r(1, 4)
        A = runner.randn(batch, in_c, width, width)
        W = runner.normal((out_c, in_c, kernel, kernel))
        out = (width + 2 * padding - kernel) // stride + 1
        dLdZ = runner.randn(batch, out_c, out, out)
        cases.append({"A": A, "W": W, "b": np.zeros(out_c), "dLdZ": dLdZ, "stride": stride, "padding": padding})
    return cases


@fixed_cases
def local_runner_conv_transpose_cases(dims: int) -> list[dict]:
    runner = _LocalRunner()
    cases = []
    for seed in (11485, 11685, 11785):
        runner.seed(seed)
        r = runner.randint
        if dims == 1:
            in_c, out_c = r(5, 15), r(5, 15)
            batch, width = r(1, 4), r(20, 300)
            kernel, factor = r(1, 10), r(1, 10)
        else:
            in_c, out_c = r(3, 5), r(3, 5)
            batch, width = r(1, 4), r(20, 100)
            kernel, factor = r(1, 3), r(1, 3)
        A = runner.randn(batch, in_c, *([width] * dims))
        runner.seed(11785)  # the runner's weight_init_fn reseeds before drawing W
        W = runner.normal((out_c, in_c, *([kernel] * dims)))
        out = factor * (width - 1) + 1 - kernel + 1
        dLdZ = runner.randn(batch, out_c, *([out] * dims))
        cases.append({"A": A, "W": W, "b": np.zeros(out_c), "dLdZ": dLdZ, "kernel": kernel, "factor": factor})
    return cases


@fixed_cases
def local_runner_pool_cases(kind: str, strided: bool) -> list[dict]:
    """Max pools reseed per case (11485, 11685, 11785); mean pools seed 11785 once."""
    runner = _LocalRunner()
    cases = []
    if kind == "mean":
        runner.seed(11785)
    for seed in (11485, 11685, 11785):
        if kind == "max":
            runner.seed(seed)
        r = runner.randint
        kernel = r(3, 7)
        stride = r(3, 5) if strided else 1
        width, in_c, batch = r(50, 100), r(5, 15), r(1, 4)
        cases.append({"A": runner.randn(batch, in_c, width, width), "kernel": kernel, "stride": stride})
    return cases


# ---------------------------------------------------------------------------------------------
# Resampling

def _resample_width(cls: str, width: int, factor: int) -> int:
    return factor * (width - 1) + 1 if cls.startswith("Up") else -(-width // factor)


def _resample_test(name, cls, factor, A, dLdZ=None, second=None, local=True) -> Test:
    """forward(A) and backward(dLdZ), or backward(forward's own output) as the local runner does;
    SECOND: (A2, dLdZ2), a second round on the same object."""
    t = Test(name)
    big = A.size > SUMMARIZE_ABOVE
    t.new("r", RESAMPLING, cls, factor)
    t.call("r", "forward", t.array("A", A), save="Z")
    gradient = {"saved": "Z"} if dLdZ is None else t.array("dLdZ", dLdZ)
    t.call("r", "backward", gradient, save="dLdA")
    _check(t, "Z", f"Z = {cls}({factor}).forward(A)", big, local=local)
    _check(t, "dLdA", f"dLdA = {cls}({factor}).backward({'Z' if dLdZ is None else 'dLdZ'})", big, local=local)
    if second is not None:
        A2, dLdZ2 = second
        t.call("r", "forward", t.array("A2", A2), save="Z2")
        t.call("r", "backward", t.array("dLdZ2", dLdZ2), save="dLdA2")
        t.check("Z2", f"Z of a second {cls}.forward on the same object, input {A2.shape}", local=False)
        t.check("dLdA2", f"dLdA of a second {cls}.backward on the same object", local=False, why=STATE_WHY)
    return t


def _random_resample_tests(seed: str, cls: str, dims: int) -> list[Test]:
    tests = []
    shapes = [(1, 1, 1), (2, 3, 10), (1, 4, 17)] if dims == 1 else [(1, 1, 1, 1), (2, 3, 9, 9), (1, 2, 7, 10)]
    for shape, factor in zip(shapes, (3, 4, 1), strict=True):
        name = f"random case: {cls}({factor}) on {shape}, then a second input"
        rng = _rng(seed, name)
        A = rng.standard_normal(shape)
        out = A.shape[:2] + tuple(_resample_width(cls, w, factor) for w in A.shape[2:])
        shape2 = (shape[0] + 1, shape[1], *(w + 2 for w in shape[2:]))
        out2 = shape2[:2] + tuple(_resample_width(cls, w, factor) for w in shape2[2:])
        tests.append(_resample_test(name, cls, factor, A, rng.standard_normal(out),
                                    (rng.standard_normal(shape2), rng.standard_normal(out2))))
    return tests


@fixed_cases
def local_runner_resampling_cases(dims: int) -> dict[str, list[tuple[np.ndarray, int]]]:
    runner = _LocalRunner()
    if dims == 1:
        return {"Downsample1d": _resampling_1d_cases(runner), "Upsample1d": _resampling_1d_cases(runner)}
    return {"Downsample2d": _downsampling_2d_cases(runner), "Upsample2d": _upsampling_2d_cases(runner)}


def resampling_section(dims: int, seed: str) -> Section:
    tests = []
    for cls, cases in local_runner_resampling_cases(dims).items():
        for k, (A, factor) in enumerate(cases, start=1):
            tests.append(_resample_test(f"handout case {k}: {cls}({factor}) on {A.shape}", cls, factor, A))
    for cls in (("Downsample1d", "Upsample1d") if dims == 1 else ("Downsample2d", "Upsample2d")):
        tests += _random_resample_tests(seed, cls, dims)
    name = f"Resampling {dims}d"
    return Section(name, SECTION_POINTS[name], tests)


# ---------------------------------------------------------------------------------------------
# Convolutions

def _conv_output(width: int, kernel: int, stride: int, padding: int) -> int:
    return (width + 2 * padding - kernel) // stride + 1


def _conv_test(name, cls, module, case, *, dims, inner=None, second=None, local=True) -> Test:
    """CLS built as the local runner builds it (positional for the stride-1 classes, keywords for
    padding and the init functions otherwise), weights from weight_init_fn; forward, backward, the
    gradients (under INNER, e.g. "conv1d_stride1", for the strided classes)."""
    t = Test(name)
    W, b = case["W"], case["b"]
    out_c, in_c, kernel = W.shape[:3]
    weights, bias = {"init": {"array": "W"}}, {"init": {"array": "b"}}
    t.inputs["W"], t.inputs["b"] = W, b
    if inner is None:
        t.new("conv", module, cls, in_c, out_c, kernel, weights, bias)
        shown = f"{cls}({in_c}, {out_c}, {kernel})"
    else:
        t.new("conv", module, cls, in_c, out_c, kernel, case["stride"])
        t.steps[-1]["kwargs"] = {"padding": case["padding"], "weight_init_fn": weights, "bias_init_fn": bias}
        shown = f"{cls}({in_c}, {out_c}, {kernel}, stride={case['stride']}, padding={case['padding']})"
    prefix = f"{inner}." if inner else ""
    t.call("conv", "forward", t.array("A", case["A"]), save="Z")
    t.call("conv", "backward", t.array("dLdZ", case["dLdZ"]), save="dLdA")
    big = case["A"].size > SUMMARIZE_ABOVE
    _check(t, "Z", f"Z = {shown}.forward(A), A of shape {case['A'].shape}", big, local=local)
    _check(t, "dLdA", f"dLdA = {shown}.backward(dLdZ)", big, local=local)
    for grad in ("dLdW", "dLdb"):
        t.check(t.get("conv", prefix + grad, grad), f"{shown}.{prefix}{grad} after backward", "parameter",
                why=GRAD_WHY, local=local)
    if second is not None:
        t.call("conv", "forward", t.array("A2", second["A"]), save="Z2")
        t.call("conv", "backward", t.array("dLdZ2", second["dLdZ"]), save="dLdA2")
        t.check("Z2", f"Z of a second forward on the same {cls}, A of shape {second['A'].shape}", local=False,
                why=STATE_WHY)
        t.check("dLdA2", f"dLdA of a second backward on the same {cls}", local=False, why=STATE_WHY)
    return t


def _random_conv_case(rng, *, dims, batch, in_c, out_c, width, kernel, stride, padding) -> dict:
    out = _conv_output(width, kernel, stride, padding)
    return {"A": rng.standard_normal((batch, in_c, *([width] * dims))),
            "W": rng.standard_normal((out_c, in_c, *([kernel] * dims))), "b": rng.standard_normal(out_c),
            "dLdZ": rng.standard_normal((batch, out_c, *([out] * dims))), "stride": stride, "padding": padding}


RANDOM_CONV1D = [  # batch, in, out, width, kernel, stride, padding
    (1, 1, 1, 1, 1, 1, 0), (2, 3, 4, 10, 10, 1, 0), (3, 5, 2, 23, 4, 1, 0),
    (2, 3, 4, 10, 3, 2, 0), (1, 2, 3, 17, 5, 4, 2), (3, 4, 3, 20, 7, 3, 3),
]
RANDOM_CONV2D = [  # batch, in, out, width, kernel, stride, padding
    (1, 1, 1, 1, 1, 1, 0), (2, 3, 2, 6, 6, 1, 0), (1, 2, 3, 7, 3, 1, 0),
    (2, 3, 2, 9, 3, 2, 0), (1, 2, 3, 10, 4, 3, 1), (2, 2, 2, 11, 5, 4, 3),
]


def _random_conv_tests(seed, cls, module, dims, inner) -> list[Test]:
    tests = []
    for batch, in_c, out_c, width, kernel, stride, padding in (RANDOM_CONV1D if dims == 1 else RANDOM_CONV2D):
        if (inner is None) != (stride == 1 and padding == 0):
            continue
        name = (f"random case: {cls}, batch {batch}, {in_c}->{out_c} channels, width {width}, kernel {kernel}"
                + ("" if inner is None else f", stride {stride}, padding {padding}") + ", then a second batch")
        rng = _rng(seed, name)
        shape = {"dims": dims, "in_c": in_c, "out_c": out_c, "kernel": kernel, "stride": stride, "padding": padding}
        case = _random_conv_case(rng, batch=batch, width=width, **shape)
        second = _random_conv_case(rng, batch=batch + 1, width=width + 3, **shape)
        second["W"], second["b"] = case["W"], case["b"]
        tests.append(_conv_test(name, cls, module, case, dims=dims, inner=inner, second=second))
    return tests


def conv_section(cls: str, seed: str) -> Section:
    dims = 1 if "1d" in cls else 2
    module = CONV1D if dims == 1 else CONV2D
    strided = not cls.endswith("_stride1")
    inner = f"conv{dims}d_stride1" if strided else None
    if dims == 1:
        stride1, strided_cases = local_runner_conv1d_cases()
        cases = strided_cases if strided else stride1
    else:
        cases = local_runner_conv2d_cases(strided)
    tests = [_conv_test(f"handout case {k}: {cls}" + (f"(stride {c['stride']}, padding {c['padding']})" if strided else "")
                        + f" on {c['A'].shape}", cls, module, c, dims=dims, inner=inner)
             for k, c in enumerate(cases, start=1)]
    tests += _random_conv_tests(seed, cls, module, dims, inner)
    return Section(cls, SECTION_POINTS[cls], tests)


# ---------------------------------------------------------------------------------------------
# Transposed convolutions

def _conv_transpose_test(name, dims, case, local=True) -> Test:
    cls = f"ConvTranspose{dims}d"
    inner = f"conv{dims}d_stride1"
    t = Test(name)
    W = case["W"]
    out_c, in_c, kernel = W.shape[:3]
    t.inputs["W"], t.inputs["b"] = W, case["b"]
    t.new("ct", CONV_TRANSPOSE, cls, in_c, out_c, kernel, case["factor"])
    t.steps[-1]["kwargs"] = {"weight_init_fn": {"init": {"array": "W"}}, "bias_init_fn": {"init": {"array": "b"}}}
    shown = f"{cls}({in_c}, {out_c}, {kernel}, upsampling_factor={case['factor']})"
    t.call("ct", "forward", t.array("A", case["A"]), save="Z")
    t.call("ct", "backward", t.array("dLdZ", case["dLdZ"]), save="dLdA")
    big = case["A"].size > SUMMARIZE_ABOVE
    _check(t, "Z", f"Z = {shown}.forward(A), A of shape {case['A'].shape}", big, local=local)
    _check(t, "dLdA", f"dLdA = {shown}.backward(dLdZ)", big, local=local)
    for grad in ("dLdW", "dLdb"):
        t.check(t.get("ct", f"{inner}.{grad}", grad), f"{shown}.{inner}.{grad} after backward", "parameter",
                why=GRAD_WHY, local=False)
    return t


def conv_transpose_section(dims: int, seed: str) -> Section:
    tests = [_conv_transpose_test(f"handout case {k}: ConvTranspose{dims}d(kernel {c['kernel']}, factor "
                                  f"{c['factor']}) on {c['A'].shape}", dims, c)
             for k, c in enumerate(local_runner_conv_transpose_cases(dims), start=1)]
    for batch, in_c, out_c, width, kernel, factor in [(1, 1, 1, 1, 1, 1), (2, 3, 2, 5, 3, 3), (1, 2, 3, 4, 4, 2)]:
        name = (f"random case: ConvTranspose{dims}d, batch {batch}, {in_c}->{out_c} channels, width {width}, "
                f"kernel {kernel}, factor {factor}")
        rng = _rng(seed, name)
        out = factor * (width - 1) + 1 - kernel + 1
        case = {"A": rng.standard_normal((batch, in_c, *([width] * dims))),
                "W": rng.standard_normal((out_c, in_c, *([kernel] * dims))), "b": rng.standard_normal(out_c),
                "dLdZ": rng.standard_normal((batch, out_c, *([out] * dims))), "kernel": kernel, "factor": factor}
        tests.append(_conv_transpose_test(name, dims, case))
    name = f"convTranspose{dims}d"
    return Section(name, SECTION_POINTS[name], tests)


# ---------------------------------------------------------------------------------------------
# Pooling

def _pool_test(name, cls, case, dLdZ=None, second=None, local=True) -> Test:
    t = Test(name)
    kernel, stride = case["kernel"], case["stride"]
    strided = not cls.endswith("_stride1")
    if strided:
        t.new("pool", POOL, cls, kernel, stride)
        shown = f"{cls}({kernel}, {stride})"
    else:
        t.new("pool", POOL, cls, kernel)
        shown = f"{cls}({kernel})"
    t.call("pool", "forward", t.array("A", case["A"]), save="Z")
    gradient = {"saved": "Z"} if dLdZ is None else t.array("dLdZ", dLdZ)
    t.call("pool", "backward", gradient, save="dLdA")
    big = case["A"].size > SUMMARIZE_ABOVE
    _check(t, "Z", f"Z = {shown}.forward(A), A of shape {case['A'].shape}", big, local=local)
    _check(t, "dLdA", f"dLdA = {shown}.backward({'Z' if dLdZ is None else 'dLdZ'})", big, local=local)
    if second is not None:
        A2, dLdZ2 = second
        t.call("pool", "forward", t.array("A2", A2), save="Z2")
        t.call("pool", "backward", t.array("dLdZ2", dLdZ2), save="dLdA2")
        t.check("Z2", f"Z of a second forward on the same {cls}, A of shape {A2.shape}", local=False, why=STATE_WHY)
        t.check("dLdA2", f"dLdA of a second backward on the same {cls}", local=False, why=STATE_WHY)
    return t


def _pool_output(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


def pool_section(cls: str, seed: str) -> Section:
    kind = "max" if cls.startswith("Max") else "mean"
    strided = not cls.endswith("_stride1")
    tests = [_pool_test(f"handout case {k}: {cls}(kernel {c['kernel']}" + (f", stride {c['stride']}" if strided else "")
                        + f") on {c['A'].shape}", cls, c)
             for k, c in enumerate(local_runner_pool_cases(kind, strided), start=1)]
    shapes = [(1, 1, 1, 1, 1, 1), (2, 3, 6, 9, 3, 2), (1, 2, 10, 7, 4, 3)] if strided else \
        [(1, 1, 1, 1, 1, 1), (2, 3, 6, 9, 3, 1), (1, 2, 5, 5, 5, 1)]
    for batch, channels, height, width, kernel, stride in shapes:
        name = (f"random case: {cls}(kernel {kernel}" + (f", stride {stride}" if strided else "")
                + f") on ({batch}, {channels}, {height}, {width}), then a second input")
        rng = _rng(seed, name)
        A = rng.standard_normal((batch, channels, height, width))
        out = (batch, channels, _pool_output(height, kernel, stride), _pool_output(width, kernel, stride))
        shape2 = (batch + 1, channels, height + 2, width + 1)
        out2 = (batch + 1, channels, _pool_output(height + 2, kernel, stride), _pool_output(width + 1, kernel, stride))
        tests.append(_pool_test(name, cls, {"A": A, "kernel": kernel, "stride": stride}, rng.standard_normal(out),
                                (rng.standard_normal(shape2), rng.standard_normal(out2))))
    if kind == "max":
        name = f"random case: {cls} on inputs with ties (the gradient goes to one maximum per window)"
        rng = _rng(seed, name)
        A = rng.integers(0, 3, (2, 2, 6, 6)).astype(float)
        kernel, stride = 2, (2 if strided else 1)
        out = (2, 2, _pool_output(6, kernel, stride), _pool_output(6, kernel, stride))
        tests.append(_pool_test(name, cls, {"A": A, "kernel": kernel, "stride": stride},
                                rng.standard_normal(out), local=False))
    return Section(cls, SECTION_POINTS[cls], tests)


# ---------------------------------------------------------------------------------------------
# Scanning MLPs

SCAN_DATA_SEED = 11785          # the "handout case": data and weights from a fixed seed
MLP_SHAPES = [(192, 8), (8, 16), (16, 4)]


def scanning_weights(rng: np.random.Generator, distributed: bool) -> list[np.ndarray]:
    """Weights of the 192-8-16-4 MLP. Distributed: the shared block of each layer on the diagonal
    (layer 1: a 48x2 block 4 times, layer 2: a 4x8 block twice, layer 3: one 16x4 block) and NaN
    elsewhere, as the handout's weight file: a CNN that reads any weight outside the shared blocks
    produces NaN."""
    if not distributed:
        return [rng.standard_normal(shape) for shape in MLP_SHAPES]
    weights = []
    for (rows, cols), copies in zip([(48, 2), (4, 8), (16, 4)], (4, 2, 1), strict=True):
        block = rng.standard_normal((rows, cols))
        w = np.full((rows * copies, cols * copies), np.nan)
        for k in range(copies):
            w[k * rows:(k + 1) * rows, k * cols:(k + 1) * cols] = block
        weights.append(w)
    return weights


def _scanning_test(name, cls, rng, batch, width, local=True) -> Test:
    t = Test(name)
    distributed = cls == "CNN_DistributedScanningMLP"
    weights = scanning_weights(rng, distributed)
    t.new("cnn", MLP_SCAN, cls)
    t.call("cnn", "init_weights", [t.array(f"w{k + 1}", w) for k, w in enumerate(weights)])
    t.call("cnn", "forward", t.array("A", rng.standard_normal((batch, 24, width))), save="Z")
    t.check("Z", f"Z = {cls}.forward(A), A of shape ({batch}, 24, {width}), after init_weights", local=local,
            why="The output of the scanning MLP, flattened from (N, 4, positions).")
    return t


def scanning_section(cls: str, seed: str) -> Section:
    title = "CNN as Distributed Scanning MLP" if cls == "CNN_DistributedScanningMLP" else "CNN as Simple Scanning MLP"
    tests = [_scanning_test(f"handout case: {cls} on (1, 24, 128), weights generated like the handout's",
                            cls, np.random.default_rng(SCAN_DATA_SEED), 1, 128)]
    # One row, as the local runner: S23's forward (given, "do not modify") ends in Z.reshape(1, -1).
    for batch, width in [(1, 128), (1, 40)]:
        name = f"random case: {cls} on ({batch}, 24, {width}) with other weights"
        tests.append(_scanning_test(name, cls, _rng(seed, name), batch, width))
    return Section(title, SECTION_POINTS[title], tests)


# ---------------------------------------------------------------------------------------------
# The CNN model

def _cnn_test(name, rng, *, batch, width, in_channels, channels, kernels, strides, activations,
              rounds=1, local=True) -> Test:
    t = Test(name)
    for k, act in enumerate(activations):
        t.new(f"act{k}", ACTIVATION, act)
    t.new("loss", LOSS, "CrossEntropyLoss")
    t.new("cnn", CNN, "CNN", width, in_channels, channels, kernels, strides, 10,
          [{"var": f"act{k}"} for k in range(len(activations))],
          {"init": "normal"}, {"init": "zeros"}, {"init": "normal"}, {"var": "loss"}, 1e-3)
    size, previous = width, in_channels
    for k, (out_c, kernel, stride) in enumerate(zip(channels, kernels, strides, strict=True)):
        layer = f"convolutional_layers.{k}.conv1d_stride1"
        t.set("cnn", f"{layer}.W", t.array(f"W{k}", rng.standard_normal((out_c, previous, kernel))))
        t.set("cnn", f"{layer}.b", t.array(f"b{k}", np.zeros(out_c) if local else rng.standard_normal(out_c)))
        size, previous = (size - kernel) // stride + 1, out_c
    t.set("cnn", "linear_layer.W", t.array("Wl", rng.standard_normal((10, previous * size))))
    t.set("cnn", "linear_layer.b", t.array("bl", np.zeros((10, 1)) if local else rng.standard_normal((10, 1))))
    shown = f"CNN({width}, {in_channels}, {channels}, {kernels}, {strides}, 10, [{', '.join(activations)}], ...)"
    for r in range(1, rounds + 1):
        suffix = "" if r == 1 else str(r)
        n = batch if r == 1 else batch + 1
        labels = np.zeros((n, 10))
        labels[np.arange(n), 0 if local else rng.integers(0, 10, n)] = 1
        t.call("cnn", "forward", t.array(f"A{suffix}", rng.standard_normal((n, in_channels, width))), save=f"Z{suffix}")
        t.call("cnn", "backward", t.array(f"labels{suffix}", labels), save=f"dLdA{suffix}")
        when = "" if r == 1 else " (second round on the same model)"
        first = local and r == 1
        t.check(f"Z{suffix}", f"Z = {shown}.forward(A){when}", local=first, why=STATE_WHY if r > 1 else "")
        t.check(f"dLdA{suffix}", f"dLdA = CNN.backward(labels){when}", local=first)
        if r > 1:  # a second round's gradients may be assigned or added up (zero_grads exists)
            continue
        for k in range(len(channels)):
            for grad in ("dLdW", "dLdb"):
                t.check(t.get("cnn", f"convolutional_layers.{k}.conv1d_stride1.{grad}", f"conv{k}.{grad}{suffix}"),
                        f"CNN.convolutional_layers[{k}].conv1d_stride1.{grad} after backward{when}", "parameter",
                        local=first and k == 0, why=GRAD_WHY)
        for grad in ("dLdW", "dLdb"):
            t.check(t.get("cnn", f"linear_layer.{grad}", f"linear.{grad}{suffix}"),
                    f"CNN.linear_layer.{grad} after backward{when}", "parameter", local=False, why=GRAD_WHY)
    return t


def cnn_section(seed: str) -> Section:
    tests = [_cnn_test("handout case: the handout's CNN on (1, 24, 128), label 0",
                       np.random.default_rng(SCAN_DATA_SEED), batch=1, width=128, in_channels=24,
                       channels=[56, 28, 14], kernels=[5, 6, 2], strides=[1, 2, 2],
                       activations=["Tanh", "ReLU", "Sigmoid"])]
    name = "random case: CNN(40, 6, [5, 4, 3], [3, 4, 2], [2, 1, 3]) on a batch of 3, then a batch of 4"
    tests.append(_cnn_test(name, _rng(seed, name), batch=3, width=40, in_channels=6, channels=[5, 4, 3],
                           kernels=[3, 4, 2], strides=[2, 1, 3], activations=["ReLU", "Sigmoid", "Tanh"],
                           rounds=2, local=False))
    name = "random case: a one-layer CNN(9, 2, [3], [9], [1]) on a batch of 2"
    tests.append(_cnn_test(name, _rng(seed, name), batch=2, width=9, in_channels=2, channels=[3],
                           kernels=[9], strides=[1], activations=["Tanh"], local=False))
    return Section("Build a CNN Model", SECTION_POINTS["Build a CNN Model"], tests)


# ---------------------------------------------------------------------------------------------
# The handout's signatures, named whenever a call does not fit

WRITEUP_SIGNATURES = {
    "Conv1d_stride1": "Conv1d_stride1(in_channels, out_channels, kernel_size, weight_init_fn=None, bias_init_fn=None)",
    "Conv1d": "Conv1d(in_channels, out_channels, kernel_size, stride, padding=0, weight_init_fn=None, "
              "bias_init_fn=None)",
    "Conv2d_stride1": "Conv2d_stride1(in_channels, out_channels, kernel_size, weight_init_fn=None, bias_init_fn=None)",
    "Conv2d": "Conv2d(in_channels, out_channels, kernel_size, stride, padding=0, weight_init_fn=None, "
              "bias_init_fn=None)",
    "ConvTranspose1d": "ConvTranspose1d(in_channels, out_channels, kernel_size, upsampling_factor, "
                       "weight_init_fn=None, bias_init_fn=None)",
    "ConvTranspose2d": "ConvTranspose2d(in_channels, out_channels, kernel_size, upsampling_factor, "
                       "weight_init_fn=None, bias_init_fn=None)",
    "MaxPool2d_stride1": "MaxPool2d_stride1(kernel)", "MeanPool2d_stride1": "MeanPool2d_stride1(kernel)",
    "MaxPool2d": "MaxPool2d(kernel, stride)", "MeanPool2d": "MeanPool2d(kernel, stride)",
    "CNN_SimpleScanningMLP": "CNN_SimpleScanningMLP()", "CNN_DistributedScanningMLP": "CNN_DistributedScanningMLP()",
    "CNN_SimpleScanningMLP.init_weights": "CNN_SimpleScanningMLP.init_weights(weights)",
    "CNN_DistributedScanningMLP.init_weights": "CNN_DistributedScanningMLP.init_weights(weights)",
    "CNN": "CNN(input_width, num_input_channels, num_channels, kernel_sizes, strides, num_linear_neurons, "
           "activations, conv_weight_init_fn, bias_init_fn, linear_weight_init_fn, criterion, lr)",
    "CNN.backward": "CNN.backward(labels)", "CrossEntropyLoss": "CrossEntropyLoss()",
}
for _cls in ("Upsample1d", "Upsample2d"):
    WRITEUP_SIGNATURES[_cls] = f"{_cls}(upsampling_factor)"
for _cls in ("Downsample1d", "Downsample2d"):
    WRITEUP_SIGNATURES[_cls] = f"{_cls}(downsampling_factor)"
for _act in ("Tanh", "ReLU", "Sigmoid"):
    WRITEUP_SIGNATURES[_act] = f"{_act}()"


def _name_signatures(sections: list[Section]) -> None:
    for section in sections:
        for test in section.tests:
            classes = {}
            for step in test.steps:
                if step["op"] == "new":
                    classes[step["var"]] = step["class"]
                    step["expects"] = WRITEUP_SIGNATURES[step["class"]]
                elif step["op"] == "call" and step["var"] in classes:
                    cls, method = classes[step["var"]], step["method"]
                    default = f"{cls}.{method}(A)" if method == "forward" else f"{cls}.{method}(dLdZ)"
                    step["expects"] = WRITEUP_SIGNATURES.get(f"{cls}.{method}", default)


# Correct loop code runs the fixed 2-d cases (up to 197x197 once upsampled) for 13-23 CPU seconds
# (four real handins, measured outside the sandbox), beyond the default 10 s; one real Upsample2d
# backward allocates 1.6 GB of address space to return the right values. An endless loop in these
# sections costs up to 3 x 60 s instead of 3 x 10 s; the operator's ceiling (grader.execute) caps it.
HEAVY_2D = Budget(cpu_seconds=60.0, wall_seconds=150.0, memory_bytes=3 << 30)
BUDGETS = {"Resampling 2d": Budget(memory_bytes=3 << 30), "Conv2d_stride1": HEAVY_2D, "Conv2d": HEAVY_2D,
           "convTranspose2d": HEAVY_2D}


def build_suite(seed: str) -> list[Section]:
    """Every section, in the local runner's order, with random inputs derived from SEED."""
    sections = [resampling_section(1, seed), resampling_section(2, seed),
                conv_section("Conv1d_stride1", seed), conv_section("Conv1d", seed),
                conv_section("Conv2d_stride1", seed), conv_section("Conv2d", seed),
                conv_transpose_section(1, seed), conv_transpose_section(2, seed),
                pool_section("MaxPool2d_stride1", seed), pool_section("MaxPool2d", seed),
                pool_section("MeanPool2d_stride1", seed), pool_section("MeanPool2d", seed),
                scanning_section("CNN_SimpleScanningMLP", seed), scanning_section("CNN_DistributedScanningMLP", seed),
                cnn_section(seed)]
    _name_signatures(sections)
    for section in sections:
        section.budget = BUDGETS.get(section.name)
    return sections


LAYOUT = Layout(
    packages=("models", "mytorch"),
    misplaced=(
        Misplaced("mytorch/models", ("models",),
                  "Your archive has models/ inside mytorch/ (the HW1P1 Bonus's layout); for HW2P1, "
                  "models/ must sit beside mytorch/."),
        Misplaced("mytorch/optim/sgd.py", ("mytorch/nn/resampling.py", "mytorch/resampling.py"),
                  "Your archive holds HW1P1's files (mytorch/optim/sgd.py) and no mytorch/nn/resampling.py: "
                  "it looks built for HW1P1. Build HW2P1's with create_tarball.sh from the HW2P1 handout folder."),
    ),
    flat=("mytorch", "mytorch/nn", "models"),
)

SUITE = Suite(name="hw2p1", title="HW2P1: CNNs", layout=LAYOUT, exports={},
              # beside grader/ both in a checkout and once installed (pyproject ships mytorch_reference*)
              reference_root=Path(__file__).resolve().parents[2] / "mytorch_reference_hw2",
              build=build_suite)
