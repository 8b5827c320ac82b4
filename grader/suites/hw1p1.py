"""The HW1P1 (S26) section suite.

A superset of the official local autograder v3.0.1 (the F25/S26 handout's `autograder/hw1p1_autograder.py`):
its fixed cases first, then what the writeup specifies and the local script never checks (plain
SGD, several steps, BatchNorm running statistics and parameter gradients, MLP1's second layer),
then randomized cases of several shapes including N=1, seeded from the handin so a regrade sees
the same inputs.

Students' code is called as the official script calls it: positionally, except the arguments it
passes by name (OFFICIAL_KEYWORDS), so a parameter's name matters exactly where it matters there,
and a signature lacking that name is told so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import mytorch_reference
from grader.plan import Section, Test, derive_seed
from grader.suite import Layout, Misplaced, Suite

SECTION_POINTS = {
    "Linear Layer": 15, "Activation": 10, "MLP0": 10, "MLP1": 10,
    "MLP4": 15, "Loss": 10, "SGD": 10, "Batch Norm": 20,
}

LINEAR, ACTIVATION, LOSS = "mytorch.nn.linear", "mytorch.nn.activation", "mytorch.nn.loss"
BATCHNORM, SGD_MODULE, MLP = "mytorch.nn.batchnorm", "mytorch.optim.sgd", "models.mlp"

# The handout's fixed inputs.
COMMON = np.array([[-4, -3], [-2, -1], [0, 1], [2, 3]], dtype="f")
DLDA_ACT = np.array([[1, 1], [3, 1], [2, 0], [0, -1]], dtype="f")
ONE_HOT = np.array([[0, 1], [1, 0], [1, 0], [0, 1]], dtype="f")


def _rng(seed_material: str, name: str) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed_material, name))


def _normal(rng, *shape, scale=1.0) -> np.ndarray:
    return (scale * rng.standard_normal(shape)).astype("f")


# State across calls: real training calls every object many times, so every layer, activation,
# loss, model and BatchNorm is used for a second round on the same object, with another batch size
# (state kept from the first call, such as a ones vector of the first N, shows only then).
SECOND_ROUND = "second round on the same object"


def _second_round(name: str, n: int) -> tuple[np.random.Generator, int]:
    """The second round's inputs (fixed by the test's name) and its batch size, never N's."""
    return np.random.default_rng(derive_seed("second round", name)), n + 3


# ---------------------------------------------------------------------------------------------
# Linear Layer

W_INIT_WHY = ("W is read right after construction, before anything sets it: create it in __init__ "
              "as zeros of shape (out_features, in_features).")
B_INIT_WHY = ("A bias of any other shape than (out_features, 1) breaks the writeup's forward "
              "Z = A·Wᵀ + ι_N·bᵀ for a fresh Linear.")
DLDB_WHY = ("A bias gradient of shape (out,) would turn the (out, 1) bias into (out, out) in the "
            "update b = b - lr·dLdb.")
DLDW_WHY = "SGD updates W = W - lr·dLdW, so dLdW needs W's shape (out, in)."
LINEAR_GRADIENT_KINDS = {"dLdA": ("values", ""), "dLdW": ("parameter", DLDW_WHY),
                         "dLdb": ("parameter", DLDB_WHY)}


def _linear_test(name, A, W, b, dLdZ, arch=False) -> Test:
    t = Test(name)
    out_f, in_f = W.shape
    t.new("lin", LINEAR, "Linear", in_f, out_f, kwargs={"debug": True})
    if arch:
        t.check(t.get("lin", "W", "W_init"), f"W right after Linear({in_f}, {out_f})", "shape",
                shape_why=W_INIT_WHY, local=False)
        t.check(t.get("lin", "b", "b_init"), f"b right after Linear({in_f}, {out_f})", "shape",
                shape_why=B_INIT_WHY, local=False)
    t.set("lin", "W", t.array("W", W))
    t.set("lin", "b", t.array("b", b))
    t.call("lin", "forward", t.array("A", A), save="Z")
    t.call("lin", "backward", t.array("dLdZ", dLdZ), save="dLdA_returned")
    t.check("Z", "Z = Linear.forward(A)")
    t.check("dLdA_returned", "the value returned by Linear.backward(dLdZ)")
    for attr, (kind, shape_why) in LINEAR_GRADIENT_KINDS.items():
        t.check(t.get("lin", attr, attr), f"Linear.{attr} after backward (debug=True)", kind,
                shape_why=shape_why)
    rng, n2 = _second_round(name, A.shape[0])
    later = f"in a {SECOND_ROUND} (batch of {n2})"
    t.call("lin", "forward", t.array("A_2", _normal(rng, n2, in_f)), save="Z_2")
    t.call("lin", "backward", t.array("dLdZ_2", _normal(rng, n2, out_f)), save="dLdA_returned_2")
    t.check("Z_2", f"Z = Linear.forward(A) {later}", local=False)
    t.check("dLdA_returned_2", f"the value returned by Linear.backward(dLdZ) {later}", local=False)
    for attr, (kind, shape_why) in LINEAR_GRADIENT_KINDS.items():
        t.check(t.get("lin", attr, f"{attr}_2"), f"Linear.{attr} after backward {later}", kind,
                shape_why=shape_why, local=False)
    return t


def linear_section(seed: str) -> Section:
    tests = [_linear_test(
        "handout case: Linear(2, 3)", COMMON,
        np.array([[-2, -1], [0, 1], [2, 3]], dtype="f"), np.array([[-1], [0], [1]], dtype="f"),
        np.array([[-4, -3, -2], [-1, 0, 1], [2, 3, 4], [5, 6, 7]], dtype="f"), arch=True)]
    for n, in_f, out_f in [(1, 3, 2), (7, 5, 4), (16, 10, 6)]:
        name = f"random case: N={n}, Linear({in_f}, {out_f})"
        rng = _rng(seed, name)
        tests.append(_linear_test(name, _normal(rng, n, in_f), _normal(rng, out_f, in_f),
                                  _normal(rng, out_f, 1), _normal(rng, n, out_f), arch=True))
    return Section("Linear Layer", SECTION_POINTS["Linear Layer"], tests)


# ---------------------------------------------------------------------------------------------
# Activation

def _activation_test(name, cls, Z, dLdA, *, read_dLdbeta=False) -> Test:
    t = Test(name)
    t.new("act", ACTIVATION, cls)
    t.call("act", "forward", t.array("Z", Z), save="A")
    t.call("act", "backward", t.array("dLdA", dLdA), save="dLdZ")
    t.check("A", f"A = {cls}.forward(Z)")
    t.check("dLdZ", f"dLdZ = {cls}.backward(dLdA)")
    if read_dLdbeta:
        t.check(t.get("act", "dLdbeta", "dLdbeta"), "Swish.dLdbeta after backward", "scalar")
    _activation_second_round(t, name, cls, Z, read_dLdbeta=read_dLdbeta)
    return t


def _activation_second_round(t: Test, name: str, cls: str, Z: np.ndarray, *, read_dLdbeta: bool,
                             shown: str | None = None, factors: dict[str, float] | None = None) -> None:
    shown = shown or cls
    rng, n2 = _second_round(name, Z.shape[0])
    shape = (n2, *Z.shape[1:])
    later = f"in a {SECOND_ROUND} ({n2} rows)"
    t.call("act", "forward", t.array("Z_2", _normal(rng, *shape, scale=3.0)), save="A_2")
    t.call("act", "backward", t.array("dLdA_2", _normal(rng, *shape)), save="dLdZ_2")
    t.check("A_2", f"A = {shown}.forward(Z) {later}", local=False)
    t.check("dLdZ_2", f"dLdZ = {shown}.backward(dLdA) {later}", local=False)
    if read_dLdbeta:
        t.check(t.get("act", "dLdbeta", "dLdbeta_2"), f"{shown}.dLdbeta after backward {later}", "scalar",
                why="dLdbeta is this call's gradient, not a sum over calls.", local=False, factors=factors)


def _tanh_without_np_tanh() -> Test:
    """Only whether forward runs with np.tanh disabled, like the official check: Tanh's values are
    the other Tanh tests' business, so a wrong Tanh fails there with a message about its values.

    What the ban guarantees (grader/runner.py `_forbidden_numpy`): while forward runs, numpy's tanh
    ufunc raises through any name Python code holds for it: `np.tanh`, `from numpy import tanh`,
    `numpy._core.umath.tanh`, a module global, class or instance attribute, dict value, list item,
    closure variable or default argument, `np.tanh.at`. It does not catch tanh computed without
    that ufunc (`math.tanh`, scipy, ctypes into libm), a reference kept in a suspended generator's
    local variable, or code that takes the grader apart; only activation.py's own code (and what
    it imports) runs in the Activation section's process, so any of that is in plain sight there."""
    t = Test("Tanh.forward runs with np.tanh disabled (the writeup forbids np.tanh)")
    t.new("act", ACTIVATION, "Tanh")
    t.call("act", "forward", t.array("Z", COMMON), forbid=["tanh"])
    return t


def _swish_beta_test(name, beta, Z, dLdA) -> Test:
    """Swish with beta other than 1: given to the constructor, Swish(beta), or, where the
    constructor takes no argument, to forward(Z, beta) (and backward(dLdA, beta) if it takes it)
    as the writeup writes it. backward must use the same beta."""
    t = Test(name)
    t.new("act", ACTIVATION, "Swish", beta, or_pass_to=["forward", "backward"])
    t.call("act", "forward", t.array("Z", Z), save="A")
    t.call("act", "backward", t.array("dLdA", dLdA), save="dLdZ")
    t.check("A", f"A = Swish(beta={beta}).forward(Z)", local=False)
    t.check("dLdZ", f"dLdZ = Swish(beta={beta}).backward(dLdA)", why="backward must use the stored beta.",
            local=False)
    t.check(t.get("act", "dLdbeta", "dLdbeta"), f"Swish(beta={beta}).dLdbeta after backward", "scalar",
            local=False, factors={"beta": beta})
    _activation_second_round(t, name, "Swish", Z, read_dLdbeta=True, shown=f"Swish(beta={beta})",
                             factors={"beta": beta})
    return t


def activation_section(seed: str) -> Section:
    tests = [
        _activation_test("handout case: Identity", "Identity", COMMON, COMMON),
        _activation_test("handout case: Sigmoid", "Sigmoid", COMMON, COMMON),
        _activation_test("handout case: Tanh", "Tanh", COMMON, DLDA_ACT),
        _tanh_without_np_tanh(),
        _activation_test("handout case: ReLU (derivative 0 at Z = 0)", "ReLU", COMMON, DLDA_ACT),
        _activation_test("handout case: GELU on a 1-D input", "GELU",
                         np.array([-2, -0.5, 0, 0.5, 2.0]), np.array([1, 1, 0, 1, -1.0])),
        _activation_test("handout case: Swish() on an integer input", "Swish",
                         COMMON.astype(int), DLDA_ACT, read_dLdbeta=True),
        _activation_test("handout case: Softmax", "Softmax",
                         np.array([[3, -4.5, 1, 6.5, 2], [-2, -0.5, 0, 0.5, 2]]),
                         np.array([[2, -1, 3, -1, -2], [1, 1, 3, 1, -1.0]])),
        _activation_test("handout case: Softmax on large inputs", "Softmax",
                         np.array([[1000, 1001, 1002], [12345, 12346, 12347]], dtype="f"),
                         np.array([[1, -1, 2], [0.5, 0.5, -1]], dtype="f")),
    ]
    tests.append(_swish_beta_test("handout input: Swish with beta = 0.5", 0.5, COMMON, DLDA_ACT))
    name = "random case: Swish with beta = 1.7 on a 4x3 input"
    rng = _rng(seed, name)
    tests.append(_swish_beta_test(name, 1.7, _normal(rng, 4, 3, scale=3.0), _normal(rng, 4, 3)))
    for cls in ("Identity", "Sigmoid", "Tanh", "ReLU", "GELU", "Swish", "Softmax"):
        for n, c in [(1, 6), (5, 3)]:
            name = f"random case: {cls} on a {n}x{c} input"
            rng = _rng(seed, name)
            tests.append(_activation_test(name, cls, _normal(rng, n, c, scale=3.0), _normal(rng, n, c),
                                          read_dLdbeta=cls == "Swish"))
    return Section("Activation", SECTION_POINTS["Activation"], tests)


# ---------------------------------------------------------------------------------------------
# MLP0, MLP1, MLP4

MLP_LINEAR_SHAPES = {  # (out, in) of each Linear, at layers[0], [2], [4], ...
    "MLP0": [(3, 2)],
    "MLP1": [(3, 2), (2, 3)],
    "MLP4": [(4, 2), (8, 4), (8, 8), (4, 8), (2, 4)],
}
MLP_FORWARD_DEBUG = {"MLP0": ["Z0", "A1"], "MLP1": ["Z0", "A1", "Z1", "A2"],
                     "MLP4": [f"A.{i}" for i in range(1, 10)]}
MLP_BACKWARD_DEBUG = {"MLP0": ["dLdZ0", "dLdA0"], "MLP1": ["dLdZ1", "dLdA1", "dLdZ0", "dLdA0"],
                      "MLP4": [f"dLdA.{i}" for i in range(10)]}


def _indexed(attr: str) -> str:
    """"A.3" -> "A[3]" for messages."""
    name, _, index = attr.partition(".")
    return f"{name}[{index}]" if index else name


def _mlp_test(model: str, name: str, rng, n: int) -> Test:
    t = Test(name)
    shapes = MLP_LINEAR_SHAPES[model]
    t.new("mlp", MLP, model, kwargs={"debug": True})
    for k, (out_f, in_f) in enumerate(shapes):
        layer = f"layers.{2 * k}"
        label = f"{model}.layers[{2 * k}].W right after {model}()"
        t.check(t.get("mlp", f"{layer}.W", f"W{k}_init", hint=LAYERS_HINT), label, "judged",
                judge=_mlp_weight_shape_judge(model, k, label))
    for k, (out_f, in_f) in enumerate(shapes):
        t.set("mlp", f"layers.{2 * k}.W", t.array(f"W{k}", _normal(rng, out_f, in_f)))
        t.set("mlp", f"layers.{2 * k}.b", t.array(f"b{k}", _normal(rng, out_f, 1)))
    t.call("mlp", "forward", t.array("A0", _normal(rng, n, shapes[0][1])), save="output")
    t.check("output", f"the value returned by {model}.forward(A0)")
    for attr in MLP_FORWARD_DEBUG[model]:
        t.check(t.get("mlp", attr), f"{model}.{_indexed(attr)} after forward (debug=True)")
    t.call("mlp", "backward", t.array("dLdOut", _normal(rng, n, shapes[-1][0])))
    for attr in MLP_BACKWARD_DEBUG[model]:
        t.check(t.get("mlp", attr), f"{model}.{_indexed(attr)} after backward (debug=True)")
    for k in range(len(shapes)):
        for grad in ("dLdW", "dLdb"):
            # The local autograder fetches MLP1's second Linear's gradients but never compares them.
            t.check(t.get("mlp", f"layers.{2 * k}.{grad}"), f"{model}.layers[{2 * k}].{grad} after backward",
                    "parameter", shape_why=LINEAR_GRADIENT_KINDS[grad][1], local=not (model == "MLP1" and k == 1))
    rng, n2 = _second_round(name, n)
    later = f"in a {SECOND_ROUND} (batch of {n2})"
    t.call("mlp", "forward", t.array("A0_2", _normal(rng, n2, shapes[0][1])), save="output_2")
    t.check("output_2", f"the value returned by {model}.forward(A0) {later}", local=False)
    for attr in MLP_FORWARD_DEBUG[model]:
        t.check(t.get("mlp", attr, f"{attr}_2"), f"{model}.{_indexed(attr)} after forward {later}",
                why=DEBUG_LISTS_WHY if model == "MLP4" else "", local=False)
    t.call("mlp", "backward", t.array("dLdOut_2", _normal(rng, n2, shapes[-1][0])))
    for attr in MLP_BACKWARD_DEBUG[model]:
        t.check(t.get("mlp", attr, f"{attr}_2"), f"{model}.{_indexed(attr)} after backward {later}",
                why=DEBUG_LISTS_WHY if model == "MLP4" else "", local=False)
    for k in range(len(shapes)):
        for grad in ("dLdW", "dLdb"):
            t.check(t.get("mlp", f"layers.{2 * k}.{grad}", f"layers.{2 * k}.{grad}_2"),
                    f"{model}.layers[{2 * k}].{grad} after backward {later}", "parameter",
                    shape_why=LINEAR_GRADIENT_KINDS[grad][1], local=False)
    return t


LAYERS_HINT = ("The grader reads the Linears at layers[0], [2], [4], ...: layers must interleave each Linear "
               "with its activation, [Linear, ReLU, Linear, ReLU, ...].")


def _mlp_weight_shape_judge(model: str, k: int, label: str):
    """W's shape right after construction; a shape that is another Linear's means layers holds the
    Linears alone (layers[2k] is then the (2k+1)-th Linear), which the message says."""
    shapes = MLP_LINEAR_SHAPES[model]
    expected = shapes[k]

    def judge(got: np.ndarray, saved: dict) -> str | None:
        if got.shape == expected:
            return None
        head = f"{label}: expected shape {expected}, got {got.shape}."
        if 2 * k < len(shapes) and got.shape == shapes[2 * k]:
            return (f"{head} That is the shape of Linear number {2 * k + 1}: {model}.layers seems to hold only "
                    f"the Linears. {LAYERS_HINT}")
        return f"{head} {W_INIT_WHY}"
    return judge


DEBUG_LISTS_WHY = ("MLP4's A and dLdA lists hold this call's values: build them afresh in every forward "
                   "and backward call, not once in __init__.")


def mlp_section(model: str, seed: str) -> Section:
    tests = []
    for n in (4, 1, 9):
        name = f"random case: {model} with a batch of {n}"
        tests.append(_mlp_test(model, name, _rng(seed, name), n))
    return Section(model, SECTION_POINTS[model], tests)


# ---------------------------------------------------------------------------------------------
# Loss

def _loss_test(name, cls, A, Y) -> Test:
    t = Test(name)
    t.new("loss", LOSS, cls)
    t.call("loss", "forward", t.array("A", A), t.array("Y", Y), save="L")
    t.call("loss", "backward", save="dLdA")
    t.check("L", f"L = {cls}.forward(A, Y)", "scalar")
    t.check("dLdA", f"dLdA = {cls}.backward()")
    rng, n2 = _second_round(name, A.shape[0])
    Y2 = rng.random((n2, A.shape[1]))
    later = f"in a {SECOND_ROUND} (batch of {n2})"
    t.call("loss", "forward", t.array("A_2", _normal(rng, n2, A.shape[1], scale=2.0)),
           t.array("Y_2", Y2 / Y2.sum(1, keepdims=True)), save="L_2")
    t.call("loss", "backward", save="dLdA_2")
    t.check("L_2", f"L = {cls}.forward(A, Y) {later}", "scalar", local=False)
    t.check("dLdA_2", f"dLdA = {cls}.backward() {later}", local=False)
    return t


def loss_section(seed: str) -> Section:
    tests = [_loss_test("handout case: MSELoss", "MSELoss", COMMON, ONE_HOT),
             _loss_test("handout case: CrossEntropyLoss", "CrossEntropyLoss", COMMON, ONE_HOT)]
    for cls in ("MSELoss", "CrossEntropyLoss"):
        for n, c in [(1, 4), (6, 3)]:
            name = f"random case: {cls} with soft targets, {n}x{c}"
            rng = _rng(seed, name)
            Y = rng.random((n, c))
            tests.append(_loss_test(name, cls, _normal(rng, n, c, scale=2.0), (Y / Y.sum(1, keepdims=True))))
    return Section("Loss", SECTION_POINTS["Loss"], tests)


# ---------------------------------------------------------------------------------------------
# SGD

SGD_STAND_IN = ("SGD is graded on a stand-in model whose layers are plain objects holding only W, b, "
                "dLdW and dLdb (so a bug in your Linear never costs SGD); step() should use only those.")


def _sgd_test(name, lr, momentum, layer_shapes, grads_per_step) -> Test:
    """A stand-in model whose layers are plain objects with W, b, dLdW, dLdb, so SGD is graded on
    its own and never through the student's Linear."""
    t = Test(name)
    t.stand_in("model", "model", SGD_STAND_IN)
    layers = []
    for k, (w_shape, b_shape) in enumerate(layer_shapes):
        t.stand_in(f"l{k}", f"model.layers[{k}]", SGD_STAND_IN)
        t.set(f"l{k}", "W", t.array(f"W{k}", np.ones(w_shape)))
        t.set(f"l{k}", "b", t.array(f"b{k}", np.ones(b_shape)))
        layers.append({"var": f"l{k}"})
    t.set("model", "layers", layers)
    # As the official script: SGD(model, lr=0.9) for plain SGD, SGD(model, lr=0.9, momentum=0.9).
    t.new("opt", SGD_MODULE, "SGD", {"var": "model"}, kwargs={"lr": lr} | ({"momentum": momentum} if momentum else {}))
    for step, grads in enumerate(grads_per_step, start=1):
        for k, (dW, db) in enumerate(grads):
            t.set(f"l{k}", "dLdW", t.array(f"s{step}dW{k}", dW))
            t.set(f"l{k}", "dLdb", t.array(f"s{step}db{k}", db))
        t.call("opt", "step")
        for k in range(len(layer_shapes)):
            for p in ("W", "b"):
                # The local autograder prints plain SGD's results but scores only momentum's.
                t.check(t.get("model", f"layers.{k}.{p}", f"step{step}.{p}{k}"),
                        f"layers[{k}].{p} after step {step} (lr={lr}, momentum={momentum})", "parameter",
                        local=momentum != 0)
    return t


def sgd_section(seed: str) -> Section:
    handout_grads = [[(np.ones((3, 2)) / 10, np.ones((3, 1)) / 10)]] * 2
    tests = [_sgd_test("handout case: plain SGD, two steps", 0.9, 0, [((3, 2), (3, 1))], handout_grads),
             _sgd_test("handout case: SGD with momentum, two steps", 0.9, 0.9, [((3, 2), (3, 1))],
                       handout_grads)]
    shapes = [((4, 3), (4, 1)), ((2, 4), (2, 1))]
    for momentum in (0, 0.5):
        name = f"random case: two layers, five steps, momentum={momentum}"
        rng = _rng(seed, name)
        grads = [[(_normal(rng, *w), _normal(rng, *b)) for w, b in shapes] for _ in range(5)]
        tests.append(_sgd_test(name, 0.05, momentum, shapes, grads))
    return Section("SGD", SECTION_POINTS["SGD"], tests)


# ---------------------------------------------------------------------------------------------
# Batch Norm

# The official script's calls: bn.forward(A, eval=True) and bn.forward(A, eval=False).
EVAL, TRAIN = {"eval": True}, {"eval": False}
BN_A = np.array([[1, 4], [7, 0], [1, 0], [7, 4]], dtype="f")
BN_W = np.array([[2, 5]], dtype="f")
BN_B = np.array([[-1, 2]], dtype="f")
BN_G = np.array([[-6, 2], [-12, 16], [-12, 20], [-6, 2]], dtype="f")


def _bn_handout_eval() -> Test:
    t = Test("handout case: BatchNorm1d(2) in eval mode, fresh running statistics")
    t.new("bn", BATCHNORM, "BatchNorm1d", 2)
    t.set("bn", "BW", t.array("BW", BN_W))
    t.set("bn", "Bb", t.array("Bb", BN_B))
    t.call("bn", "forward", t.array("A", BN_A), kwargs=EVAL, save="BZ")
    t.check("BZ", "BZ = BatchNorm1d.forward(Z, eval=True)")
    return t


def _bn_training_test(name, Z, BW, Bb, dLdBZ, alpha=None) -> Test:
    t = Test(name)
    t.new("bn", BATCHNORM, "BatchNorm1d", Z.shape[1], *([] if alpha is None else [alpha]))
    t.set("bn", "BW", t.array("BW", BW))
    t.set("bn", "Bb", t.array("Bb", Bb))
    t.call("bn", "forward", t.array("Z", Z), kwargs=TRAIN, save="BZ")
    t.call("bn", "backward", t.array("dLdBZ", dLdBZ), save="dLdZ")
    t.check("BZ", "BZ = BatchNorm1d.forward(Z) in training mode")
    t.check("dLdZ", "dLdZ = BatchNorm1d.backward(dLdBZ)")
    for attr in ("dLdBW", "dLdBb"):
        t.check(t.get("bn", attr, attr), f"BatchNorm1d.{attr} after backward", "parameter",
                why=f"{attr} is what an optimizer uses to learn {attr[3:]}.", local=False)
    for attr in ("running_M", "running_V"):
        t.check(t.get("bn", attr, attr), f"BatchNorm1d.{attr} after one training batch", "parameter",
                why=RUNNING_WHY, local=False, ratios=_swapped_weights(alpha, attr))
    rng, n2 = _second_round(name, Z.shape[0])
    _bn_training_round(t, f"in a {SECOND_ROUND} (batch of {n2})", "_2",
                       1 + _normal(rng, n2, Z.shape[1], scale=2.0), _normal(rng, n2, Z.shape[1]))
    return t


def _bn_training_round(t: Test, later: str, suffix: str, Z: np.ndarray, dLdBZ: np.ndarray) -> None:
    """Another training batch and backward on the same BatchNorm1d, every value checked."""
    t.call("bn", "forward", t.array(f"Z{suffix}", Z), kwargs=TRAIN, save=f"BZ{suffix}")
    t.call("bn", "backward", t.array(f"dLdBZ{suffix}", dLdBZ), save=f"dLdZ{suffix}")
    t.check(f"BZ{suffix}", f"BZ = BatchNorm1d.forward(Z) in training mode {later}", local=False)
    t.check(f"dLdZ{suffix}", f"dLdZ = BatchNorm1d.backward(dLdBZ) {later}", local=False)
    for attr in ("dLdBW", "dLdBb"):
        t.check(t.get("bn", attr, f"{attr}{suffix}"), f"BatchNorm1d.{attr} after backward {later}", "parameter",
                why=f"{attr} is what an optimizer uses to learn {attr[3:]}.", local=False)
    for attr in ("running_M", "running_V"):
        t.check(t.get("bn", attr, f"{attr}{suffix}"), f"BatchNorm1d.{attr} {later}", "parameter",
                why=RUNNING_WHY, local=False)


RUNNING_WHY = "Eval mode normalises with the running statistics."


def _swapped_weights(alpha: float | None, attr: str) -> dict[float, str]:
    """The ratio hint for running_M after the first batch: it starts at 0, so weighting the batch by
    alpha (and the old value by 1 - alpha) gives alpha / (1 - alpha) times the expected value."""
    if attr != "running_M":   # running_V starts at 1: the swap gives no constant ratio
        return {}
    a = 0.9 if alpha is None else alpha
    if a == 0.5:
        return {}
    return {a / (1 - a): f"BatchNorm1d.running_M is alpha / (1 - alpha) = {a / (1 - a):g} times the expected value: "
                         f"are the weights swapped? running_M = alpha * running_M + (1 - alpha) * M."}


def _bn_running_stats_test(name, rng, c, alpha=None) -> Test:
    """Two training batches, then eval on a new batch (including a single row); the running
    statistics are read again after the eval calls, since inference must not change them."""
    t = Test(name)
    t.new("bn", BATCHNORM, "BatchNorm1d", c, *([] if alpha is None else [alpha]))
    t.set("bn", "BW", t.array("BW", 1 + _normal(rng, 1, c, scale=0.5)))
    t.set("bn", "Bb", t.array("Bb", _normal(rng, 1, c)))
    for batch, n in enumerate((6, 3), start=1):
        t.call("bn", "forward", t.array(f"Z{batch}", 2 + _normal(rng, n, c, scale=3.0)), kwargs=TRAIN)
        for attr in ("running_M", "running_V"):
            t.check(t.get("bn", attr, f"{attr}{batch}"), f"BatchNorm1d.{attr} after training batch {batch}",
                    "parameter", why=RUNNING_WHY, local=False, ratios=_swapped_weights(alpha, attr) if batch == 1 else {})
    for n in (5, 1):
        t.call("bn", "forward", t.array(f"E{n}", _normal(rng, n, c, scale=3.0)), kwargs=EVAL, save=f"BZ_eval{n}")
        t.check(f"BZ_eval{n}", f"BZ = BatchNorm1d.forward(Z, eval=True) on {n} row(s) after training",
                local=False)
    for attr in ("running_M", "running_V"):
        t.check(t.get("bn", attr, f"{attr}_after_eval"), f"BatchNorm1d.{attr} after the eval calls",
                "parameter", why="Inference must not change the running statistics: eval mode only reads them.",
                local=False)
    # Training -> eval -> training: back to training mode, the batch's own statistics again.
    _bn_training_round(t, "in training mode again after the eval calls (batch of 4)", "_3",
                       2 + _normal(rng, 4, c, scale=3.0), _normal(rng, 4, c))
    return t


def _bn_small_variance_test(name, rng) -> Test:
    """A batch whose columns have a variance of about 1e-3, so the constructor's eps = 1e-8 is
    checked: eps = 1e-5 (PyTorch's default) moves BZ by about 0.5%, far beyond the tolerance,
    while harmless variants such as sqrt(V) + eps stay well within it."""
    t = Test(name)
    t.new("bn", BATCHNORM, "BatchNorm1d", 3)
    t.call("bn", "forward", t.array("Z", _normal(rng, 8, 3, scale=0.03)), kwargs=TRAIN, save="BZ")
    t.check("BZ", "BZ = BatchNorm1d.forward(Z) in training mode on a batch with a small variance "
                  "(is eps 1e-8?)", local=False)
    return t


FLOAT32_ROUNDOFF = 2.0 ** -24
NEAR_EPS_WHY = ("This case exists to catch eps outside the square root: the writeup normalises with "
                "sqrt(V + eps), eps = 1e-8, which differs from sqrt(V) + eps by about 40% when V is "
                "comparable to eps (BZ shows it).")


def bn_backward_roundoff(Z: np.ndarray, BW: np.ndarray, dLdBZ: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Per entry of BatchNorm's dLdZ, how far float32 round-off can move it: the summation bound
    (n - 1) u sum|terms| with n = Z.size, over the terms the writeup's formula adds, including
    (2/N) dLdV sum(Z - M), zero in exact arithmetic, summed over every feature (as some handins do).
    Where V is comparable to eps, (V + eps)^-1.5 makes these terms large and the value ill-conditioned;
    elsewhere the bound is far below the ordinary tolerance."""
    Z, BW, dLdBZ = (np.asarray(a, np.float64) for a in (Z, BW, dLdBZ))
    N = Z.shape[0]
    centred = np.abs(Z - Z.mean(axis=0, keepdims=True))
    V = np.mean(centred ** 2, axis=0, keepdims=True)
    dLdNZ = np.abs(dLdBZ * BW)
    dLdV = 0.5 * np.sum(dLdNZ * centred * (V + eps) ** -1.5, axis=0, keepdims=True)
    direct = dLdNZ * (V + eps) ** -0.5
    through_V = dLdV * (2 / N) * centred
    through_M = (direct.sum(axis=0, keepdims=True) + (2 / N) * dLdV * centred.sum()) / N
    return (Z.size - 1) * FLOAT32_ROUNDOFF * (direct + through_V + through_M)


def _bn_variance_near_eps_test(name, rng) -> Test:
    """One feature whose batch variance is about eps = 1e-8 (values of order 1e-4, which float32
    holds to 7 digits): there sqrt(V + eps) and sqrt(V) + eps differ by about 40%, so only the
    writeup's NZ = (Z - M) / sqrt(V + eps) passes. The other features are ordinary. dLdZ is
    ill-conditioned there and judged with the round-off bound of its formula (bn_backward_roundoff)."""
    t = Test(name)
    t.new("bn", BATCHNORM, "BatchNorm1d", 3)
    BW = 1 + _normal(rng, 1, 3, scale=0.5)
    t.set("bn", "BW", t.array("BW", BW))
    t.set("bn", "Bb", t.array("Bb", _normal(rng, 1, 3)))
    Z = _normal(rng, 6, 3, scale=2.0)
    Z[:, 0] = _normal(rng, 6, scale=1e-4)
    dLdBZ = _normal(rng, 6, 3)
    t.call("bn", "forward", t.array("Z", Z), kwargs=TRAIN, save="BZ")
    t.call("bn", "backward", t.array("dLdBZ", dLdBZ), save="dLdZ")
    t.check("BZ", "BZ = BatchNorm1d.forward(Z) in training mode where column 0's variance is about eps",
            why=NEAR_EPS_WHY, local=False)
    t.check("dLdZ", "dLdZ = BatchNorm1d.backward(dLdBZ) where column 0's variance is about eps", local=False,
            why=NEAR_EPS_WHY + " There (V + eps)^-1.5 amplifies float round-off, so dLdZ is judged with a "
                "tolerance that follows that amplification (a term that is zero in exact arithmetic may "
                "differ by its round-off); beyond it, the formula differs.",
            tolerance=bn_backward_roundoff(Z, BW, dLdBZ))
    return t


def batchnorm_section(seed: str) -> Section:
    tests = [_bn_handout_eval(),
             _bn_training_test("handout case: BatchNorm1d(2) forward and backward in training mode",
                               BN_A, BN_W, BN_B, BN_G)]
    for n, c, alpha in [(4, 3, None), (9, 5, 0.8)]:
        name = f"random case: {n}x{c} training batch" + ("" if alpha is None else f", alpha={alpha}")
        rng = _rng(seed, name)
        tests.append(_bn_training_test(name, 1 + _normal(rng, n, c, scale=2.0), 1 + _normal(rng, 1, c, scale=0.5),
                                       _normal(rng, 1, c), _normal(rng, n, c), alpha))
    for c, alpha in [(3, None), (4, 0.5)]:
        name = f"random case: running statistics over two batches, then eval, C={c}" + (
            "" if alpha is None else f", alpha={alpha}")
        tests.append(_bn_running_stats_test(name, _rng(seed, name), c, alpha))
    name = "random case: 8x3 training batch with a small variance"
    tests.append(_bn_small_variance_test(name, _rng(seed, name)))
    name = "random case: 6x3 training batch, one feature's variance comparable to eps"
    tests.append(_bn_variance_near_eps_test(name, _rng(seed, name)))
    return Section("Batch Norm", SECTION_POINTS["Batch Norm"], tests)


# ---------------------------------------------------------------------------------------------
# The writeup's signatures, named in full whenever a call does not fit, the same way in every section.

WRITEUP_SIGNATURES = {
    "Linear": "Linear(in_features, out_features, debug=False)",
    "Linear.forward": "Linear.forward(A)", "Linear.backward": "Linear.backward(dLdZ)",
    "Swish": "Swish(beta=1.0)",
    "MSELoss.forward": "MSELoss.forward(A, Y)", "MSELoss.backward": "MSELoss.backward()",
    "CrossEntropyLoss.forward": "CrossEntropyLoss.forward(A, Y)",
    "CrossEntropyLoss.backward": "CrossEntropyLoss.backward()",
    "SGD": "SGD(model, lr=0.1, momentum=0)", "SGD.step": "SGD.step()",
    "BatchNorm1d": "BatchNorm1d(num_features, alpha=0.9)",
    "BatchNorm1d.forward": "BatchNorm1d.forward(Z, eval=False)",
    "BatchNorm1d.backward": "BatchNorm1d.backward(dLdBZ)",
}
for _act in ("Identity", "Sigmoid", "Tanh", "ReLU", "GELU", "Swish", "Softmax"):
    WRITEUP_SIGNATURES.setdefault(_act, f"{_act}()")
    WRITEUP_SIGNATURES[f"{_act}.forward"] = f"{_act}.forward(Z)"
    WRITEUP_SIGNATURES[f"{_act}.backward"] = f"{_act}.backward(dLdA)"
for _loss in ("MSELoss", "CrossEntropyLoss"):
    WRITEUP_SIGNATURES[_loss] = f"{_loss}()"
for _model, (_first, _last) in {"MLP0": ("A0", "dLdA1"), "MLP1": ("A0", "dLdA2"), "MLP4": ("A", "dLdA")}.items():
    WRITEUP_SIGNATURES[_model] = f"{_model}(debug=False)"
    WRITEUP_SIGNATURES[f"{_model}.forward"] = f"{_model}.forward({_first})"
    WRITEUP_SIGNATURES[f"{_model}.backward"] = f"{_model}.backward({_last})"


def _name_signatures(sections: list[Section]) -> None:
    """Give every "new" and "call" step the writeup's signature of what it calls."""
    for section in sections:
        for test in section.tests:
            classes = {}
            for step in test.steps:
                if step["op"] == "new":
                    classes[step["var"]] = step["class"]
                    step["expects"] = WRITEUP_SIGNATURES[step["class"]]
                elif step["op"] == "call" and step["var"] in classes:
                    step["expects"] = WRITEUP_SIGNATURES[f"{classes[step['var']]}.{step['method']}"]


def build_suite(seed: str) -> list[Section]:
    """Every section, in the official order, with random inputs derived from SEED."""
    sections = [linear_section(seed), activation_section(seed), mlp_section("MLP0", seed),
                mlp_section("MLP1", seed), mlp_section("MLP4", seed), loss_section(seed),
                sgd_section(seed), batchnorm_section(seed)]
    _name_signatures(sections)
    return sections


# Every argument the official script (v3.0.1) passes by name, per call; all others go by position.
OFFICIAL_KEYWORDS = {"Linear": {"debug"}, "MLP0": {"debug"}, "MLP1": {"debug"}, "MLP4": {"debug"},
                     "SGD": {"lr", "momentum"}, "BatchNorm1d.forward": {"eval"}}


# What each package's __init__.py exports in the handout.
_NN = {"Identity": "activation", "Sigmoid": "activation", "Tanh": "activation", "ReLU": "activation",
       "GELU": "activation", "Swish": "activation", "Softmax": "activation",
       "BatchNorm1d": "batchnorm", "Linear": "linear", "MSELoss": "loss", "CrossEntropyLoss": "loss"}
_OPTIM = {"SGD": "sgd"}
EXPORTS = {
    "mytorch.nn": _NN,
    "mytorch.optim": _OPTIM,
    "mytorch": {name: "nn" for name in _NN} | {name: "optim" for name in _OPTIM},
    "models": {"MLP0": "mlp", "MLP1": "mlp", "MLP4": "mlp"},
}

LAYOUT = Layout(
    packages=("models", "mytorch"),
    misplaced=(Misplaced("mytorch/models", ("models",),
                         "Your archive has models/ inside mytorch/ (the bonus assignment's layout); "
                         "for HW1P1, models/ must sit beside mytorch/."),
               Misplaced("mytorch/nn/resampling.py", ("mytorch/optim/sgd.py",),
                         "Your archive holds HW2P1's files (mytorch/nn/resampling.py) and no "
                         "mytorch/optim/sgd.py: it looks built for HW2P1. Build HW1P1's with "
                         "create_tarball.sh from the HW1P1 handout folder.")),
)

SUITE = Suite(name="hw1p1", title="HW1P1: MyTorch", layout=LAYOUT, exports=EXPORTS,
              reference_root=Path(mytorch_reference.__file__).parent, build=build_suite)
