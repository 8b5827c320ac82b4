"""The HW1P1 Bonus suite (graded separately from HW1P1): Adam 5, AdamW 5, Dropout 10.

The interface tested, from the course's bonus handout (the S24 `bonus_autograder.py` and the
skeletons' TODO comments, as kept in public student repositories):
- a handin is a tar of `mytorch/` alone: the student's HW1P1 files copied in, `models/mlp.py`
  inside `mytorch/`, and the new files `mytorch/optim/adam.py`, `mytorch/optim/adamW.py` and
  `mytorch/nn/dropout.py` (some handouts say `mytorch/nn/modules/dropout.py`: both are accepted);
- `Adam(model, lr, beta1=0.9, beta2=0.999, eps=1e-8)` and
  `AdamW(model, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01)`, whose `step()` updates
  W and b of the model's layers from their dLdW and dLdb, with bias correction; AdamW's decay is
  decoupled (W <- W (1 - lr wd) before the Adam step, as torch.optim.AdamW, on W and b);
- `Dropout(p=0.5)` with `forward(x, train=True)` and `backward(delta)`.
Methods are called with positional arguments only, like the official script.

The optimizers are graded on a stand-in model, like SGD in HW1P1, so they never depend on the
student's Linear. Its layers alternate [layer, decoy, layer, ...]: some handouts take
`model.layers`, others `model.layers[::2]` ("every second layer is activation function"); the
decoys carry parameters too, so both forms run, and only the even layers are checked.

Dropout is random, and the official script compares with the pickled output of one seeded run, so
it fails correct work that draws its mask another way (np.random.rand < 1 - p, binomial, ...).
Here it is graded on what every correct dropout satisfies, whatever its random calls:
- each training output is 0 or x / (1 - p) (inputs are kept at |x| >= 0.5, so 0 means dropped);
- the fraction dropped is within 6 standard deviations of p on 20,000 entries, for p = 0.1, 0.3,
  0.5 and 0.8: a correct dropout fails one of these four with probability below 1e-8 (computed
  exactly from the binomial distribution in tests/grader/test_bonus_suite.py);
- the mask is neither one row repeated nor one column repeated (a broadcast mask), and a second
  forward call draws a new one (the chance that a correct dropout repeats any of these is below
  1e-100 at this size);
- backward uses the mask of the last forward: delta * mask / (1 - p) (the derivative, as torch),
  or delta * mask with the 0/1 mask, as the handout's skeleton says ("Multiply mask with delta
  and return") and as most submitted solutions do; either is accepted, consistently;
- in evaluation (train=False) the output is x itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from grader.compare import ATOL, RTOL
from grader.plan import Section, Test, derive_seed
from grader.suite import Layout, Misplaced, Suite
from grader.suites import hw1p1

SECTION_POINTS = {"Adam": 5, "AdamW": 5, "Dropout": 10}

ADAM, ADAMW = "mytorch.optim.adam", "mytorch.optim.adamW"
DROPOUT = ["mytorch.nn.dropout", "mytorch.nn.modules.dropout"]   # the first present is graded

DROPOUT_ROWS, DROPOUT_COLS = 100, 200
DROPOUT_PS = (0.1, 0.3, 0.5, 0.8)
FRACTION_SIGMAS = 6.0


def _rng(seed_material: str, name: str) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed_material, name))


# ---------------------------------------------------------------------------------------------
# Adam and AdamW

def _optimizer_test(name, cls, module, args, shapes, grads_per_step, rng) -> Test:
    """Stand-in layers with W, b, dLdW, dLdb at even indices and parameter-carrying decoys at odd
    indices; SGD-style: new gradients before each step, W and b checked after each step."""
    t = Test(name)
    t.stand_in("model")
    layers = []
    for k, (w_shape, b_shape) in enumerate(shapes):
        if k:
            decoy = f"decoy{k}"
            t.stand_in(decoy)
            for attr, value in (("W", np.ones((2, 2))), ("b", np.ones((2, 1))),
                                ("dLdW", np.ones((2, 2))), ("dLdb", np.ones((2, 1)))):
                t.set(decoy, attr, t.array(f"{decoy}.{attr}", value))
            layers.append({"var": decoy})
        t.stand_in(f"l{k}")
        t.set(f"l{k}", "W", t.array(f"W{k}", rng.standard_normal(w_shape)))
        t.set(f"l{k}", "b", t.array(f"b{k}", rng.standard_normal(b_shape)))
        layers.append({"var": f"l{k}"})
    t.set("model", "layers", layers)
    shown = ", ".join(["model", *map(repr, args)])
    t.new("opt", module, cls, {"var": "model"}, *args)
    for step, grads in enumerate(grads_per_step, start=1):
        for k, (dW, db) in enumerate(grads):
            t.set(f"l{k}", "dLdW", t.array(f"s{step}dW{k}", dW))
            t.set(f"l{k}", "dLdb", t.array(f"s{step}db{k}", db))
        t.call("opt", "step")
        for k in range(len(shapes)):
            for p in ("W", "b"):
                t.check(t.get("model", f"layers.{2 * k}.{p}", f"step{step}.{p}{k}"),
                        f"layers[{2 * k}].{p} after step {step} of {cls}({shown})")
    return t


# The handout case's five linear layers (MLP4's shapes), five steps at lr = 0.008.
MLP4_SHAPES = [((4, 2), (4, 1)), ((8, 4), (8, 1)), ((8, 8), (8, 1)), ((4, 8), (4, 1)), ((2, 4), (2, 1))]


def _grads(rng, shapes, steps, scale=1.0):
    return [[(scale * rng.standard_normal(w), scale * rng.standard_normal(b)) for w, b in shapes]
            for _ in range(steps)]


def _optimizer_section(cls: str, module: str, seed: str) -> Section:
    decay = cls == "AdamW"
    handout_args = [0.008, 0.9, 0.999, 1e-8] + ([0.01] if decay else [])
    name = f"handout case: {cls} on MLP4's five layers, five steps"
    rng = np.random.default_rng(11785)   # fixed: the same inputs for every handin
    tests = [_optimizer_test(name, cls, module, handout_args, MLP4_SHAPES, _grads(rng, MLP4_SHAPES, 5), rng)]
    name = f"{cls}(model, lr) uses the handout's defaults"
    rng = _rng(seed, name)
    shapes = [((3, 2), (3, 1))]
    tests.append(_optimizer_test(name, cls, module, [0.01], shapes, _grads(rng, shapes, 3), rng))
    shapes = [((4, 3), (4, 1)), ((2, 4), (2, 1)), ((3, 2), (3, 1))]
    # lr^2 wd stays far below the tolerance (decaying before or after the Adam step both pass)
    # while lr wd is far above it (a missing or coupled decay fails). eps = 0.1 is as large as the
    # gradients' root mean square: an eps that is ignored, or added inside the square root, is seen
    # whatever the random gradients (with eps = 1e-8 only an occasional tiny gradient shows it).
    cases = [(0.01, 0.8, 0.99, 0.1, 0.05), (0.002, 0.95, 0.9, 1e-8, 0.5)]
    for lr, beta1, beta2, eps, wd in cases:
        args = [lr, beta1, beta2, eps] + ([wd] if decay else [])
        name = f"random case: three layers, six steps, {cls}({', '.join(map(str, args))})"
        rng = _rng(seed, name)
        tests.append(_optimizer_test(name, cls, module, args, shapes, _grads(rng, shapes, 6, scale=3.0), rng))
    return Section(cls, SECTION_POINTS[cls], tests)


# ---------------------------------------------------------------------------------------------
# Dropout: property checks, on the trusted side, that hold for any correct random mask

def _where(index) -> str:
    return f"[{', '.join(str(int(i)) for i in index)}]"


def _dropped(y: np.ndarray) -> np.ndarray:
    return np.abs(y) <= 1e-6


def _forward_judge(x: np.ndarray, p: float, call: str):
    kept_value = x / (1 - p)
    n = x.size
    allowed = FRACTION_SIGMAS * np.sqrt(n * p * (1 - p))

    def judge(y: np.ndarray, saved: dict) -> str | None:
        if y.shape != x.shape:
            return f"{call}: expected shape {x.shape}, got {y.shape}."
        y = y.astype(np.float64)
        dropped = _dropped(y)
        kept = np.abs(y - kept_value) <= ATOL + RTOL * np.abs(kept_value)
        wrong = ~(dropped | kept)
        if wrong.any():
            where = tuple(np.argwhere(wrong)[0])
            return (f"{call}: entry {_where(where)} is {y[where]:.6g}, but every output must be 0 "
                    f"(dropped) or x / (1 - p) = {kept_value[where]:.6g} (kept, scaled); "
                    f"{int(wrong.sum())} of {n} entries are neither.")
        count = int(dropped.sum())
        if abs(count - n * p) > allowed:
            return (f"{call}: {count} of {n} entries ({count / n:.1%}) were dropped; with p = {p} a "
                    f"correct dropout drops between {(n * p - allowed) / n:.1%} and "
                    f"{(n * p + allowed) / n:.1%} here (each entry independently, with probability p).")
        if (dropped == dropped[:1, :]).all() or (dropped == dropped[:, :1]).all():
            return (f"{call}: the mask repeats the same row (or the same column) everywhere; each "
                    f"entry must be dropped independently (a mask of shape x.shape).")
        return None
    return judge


def _fresh_mask_judge(call: str, first_save: str):
    def judge(y: np.ndarray, saved: dict) -> str | None:
        first = saved.get(first_save)
        if first is not None and first.shape == y.shape and (_dropped(first) == _dropped(y)).all():
            return (f"{call}: the second forward call dropped exactly the same entries as the first; "
                    f"draw a new mask on every call.")
        return None
    return judge


def _backward_judge(delta: np.ndarray, p: float, forward_save: str, call: str):
    def judge(dx: np.ndarray, saved: dict) -> str | None:
        y = saved.get(forward_save)
        if y is None:
            return f"{call}: the forward output it depends on is missing."
        if dx.shape != delta.shape:
            return f"{call}: expected shape {delta.shape}, got {dx.shape}."
        mask = (~_dropped(y.astype(np.float64))).astype(np.float64)
        dx = dx.astype(np.float64)
        candidates = (delta * mask / (1 - p), delta * mask)  # the derivative; the handout's 0/1 mask
        for expected in candidates:
            if (np.abs(dx - expected) <= ATOL + RTOL * np.abs(expected)).all():
                return None
        expected = candidates[0]
        error = np.abs(dx - expected)
        where = tuple(np.unravel_index(np.argmax(error), error.shape))
        state = "dropped" if mask[where] == 0 else "kept"
        return (f"{call}: entry {_where(where)} is {dx[where]:.6g}; with the mask of the last forward "
                f"call (this entry was {state}) it should be delta * mask / (1 - p) = "
                f"{expected[where]:.6g} (delta * mask with the 0/1 mask is accepted too).")
    return judge


def _dropout_train_test(name: str, p: float, rng) -> Test:
    shape = (DROPOUT_ROWS, DROPOUT_COLS)
    z = rng.standard_normal(shape)
    x = np.sign(z) * (0.5 + np.abs(z))     # |x| >= 0.5: an output of 0 means "dropped"
    delta = rng.standard_normal(shape)
    t = Test(name)
    t.new("drop", DROPOUT, "Dropout", p)
    t.call("drop", "forward", t.array("x", x), save="y1")
    t.call("drop", "forward", t.array("x", x), save="y2")
    t.call("drop", "backward", t.array("delta", delta), save="dx")
    first, second = f"Dropout({p}).forward(x)", f"A second Dropout({p}).forward(x)"
    t.check("y1", first, "judged", judge=_forward_judge(x, p, first))
    t.check("y2", second, "judged", judge=_forward_judge(x, p, second))
    t.check("y2", second, "judged", judge=_fresh_mask_judge(second, "y1"))
    back = f"Dropout({p}).backward(delta)"
    t.check("dx", back, "judged", judge=_backward_judge(delta, p, "y2", back))
    return t


def _dropout_eval_test(name: str, p: float, rng) -> Test:
    t = Test(name)
    t.new("drop", DROPOUT, "Dropout", p)
    t.call("drop", "forward", t.array("x", rng.standard_normal((7, 5))), False, save="y")
    t.check("y", f"Dropout({p}).forward(x, False) (evaluation: the identity)")
    return t


def dropout_section(seed: str) -> Section:
    tests = []
    for p in DROPOUT_PS:
        name = f"random case: training mode, p = {p}, on a {DROPOUT_ROWS}x{DROPOUT_COLS} input"
        tests.append(_dropout_train_test(name, p, _rng(seed, name)))
    for p in (0.3, 0.9):
        name = f"random case: evaluation mode, p = {p}"
        tests.append(_dropout_eval_test(name, p, _rng(seed, name)))
    return Section("Dropout", SECTION_POINTS["Dropout"], tests)


def build_suite(seed: str) -> list[Section]:
    return [_optimizer_section("Adam", ADAM, seed), _optimizer_section("AdamW", ADAMW, seed),
            dropout_section(seed)]


# ---------------------------------------------------------------------------------------------

_NN = hw1p1.EXPORTS["mytorch.nn"] | {"Dropout": "dropout"}
_OPTIM = hw1p1.EXPORTS["mytorch.optim"] | {"Adam": "adam", "AdamW": "adamW"}
EXPORTS = {
    "mytorch.nn": _NN,
    "mytorch.optim": _OPTIM,
    "mytorch.models": hw1p1.EXPORTS["models"],
    "mytorch": {name: "nn" for name in _NN} | {name: "optim" for name in _OPTIM},
}

LAYOUT = Layout(
    packages=("mytorch",),
    misplaced=(Misplaced("models", "mytorch/models",
                         "Your archive has models/ beside mytorch/ (the HW1P1 layout); the bonus is a "
                         "tar of mytorch/ alone, with models/ inside it: tar -cf handin.tar mytorch."),),
    build_hint="build it from the handout folder with: tar -cf handin.tar mytorch",
    summary="mytorch/ alone, with models/ inside it",
)

SUITE = Suite(name="hw1p1_bonus", title="HW1P1 Bonus: Adam, AdamW, Dropout", layout=LAYOUT,
              exports=EXPORTS,
              # beside grader/ both in a checkout and once installed (pyproject ships mytorch_reference*)
              reference_root=Path(__file__).resolve().parents[2] / "mytorch_reference_bonus",
              build=build_suite)
