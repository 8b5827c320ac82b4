"""The HW1P1 Bonus suite (graded separately from HW1P1): Adam 5, AdamW 5, Dropout 10.

Sources, and what each says (S24 and S25 bonus writeups, "11785_S24_HW1_Bonus.pdf" and
"HW1P1_Bonus_S25.pdf"; the S24/S25 `hw1p1_bonus_autograder.py` and its pickled answers, all kept in
public student repositories next to their handouts; torch.optim):
- Layout. S24 and F25: `tar cvf handin.tar mytorch` with models/ inside mytorch/; S25:
  `tar cvf handin.tar mytorch models`, models/ beside it (its script imports `models.mlp`). Both
  are accepted (the bonus never grades models/); an archive with none of the bonus files
  (adam.py, adamW.py, dropout.py) is refused with a sentence. The S24 and S25 writeups say
  `mytorch/nn/modules/dropout.py`, the handouts and scripts `mytorch/nn/dropout.py`: both accepted.
- Adam. Both writeups: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, bias correction
  m^ = m / (1 - b1^t), v^ = v / (1 - b2^t), then theta <- theta - lr m^ / sqrt(v^ + eps): eps
  INSIDE the root. torch.optim.Adam puts it outside: lr m^ / (sqrt(v^) + eps). Both are accepted,
  each parameter judged on its own against both trajectories (the course's script, with pickled
  answers at eps = 1e-8 and gradients of order 1, passes both). Random gradients are bounded away
  from zero (|g| >= 0.5), so no seed makes the two forms differ at eps = 1e-8; one case uses
  eps = 0.1 so an eps that is ignored is seen (there the forms differ, and either passes).
- AdamW. Both writeups: W_t = W_t - W_(t-1) lr wd after the Adam step, or equivalently the decay
  W_t = W_(t-1) - W_(t-1) lr wd first and then the Adam step "using W_(t-1)": decoupled decay of
  W and b by the parameter before the step, which is torch.optim.AdamW. Decaying the parameter after
  the Adam step instead differs by lr^2 wd |step|, far below the tolerance here.
- Dropout. Both writeups: a binary mask from np.random.binomial, scaling at training time only
  (by 1/(1 - p), "so the total expected intensity of the output is the same as in testing").
  Their sentence "the probability of zero-ing out a neuron output is then 1 - p" contradicts
  "dropout rate p" and the script's pickled answer (Dropout(p=0.3) drops 29% of a 20x64 input,
  output x * mask / 0.7, mask = binomial(1, 0.7)); the pickles are followed: p is the drop rate.
  Backward: the pickle is delta * mask with the 0/1 mask (the skeleton's "Multiply mask with
  delta"); torch's derivative is delta * mask / (1 - p): both accepted, consistently.

Calls follow the official script: `Adam(model, 0.008, beta1=0.9, beta2=0.999, eps=1e-8)`,
`AdamW(model, 0.008, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01)` (hyperparameters by
name), `Dropout(p=0.3)` and `dropout_layer(x)` (its __call__), then `backward(delta)`
(OFFICIAL_KEYWORDS). Evaluation mode, which the script never calls, is `forward(x, False)`.

The optimizers are graded on a stand-in model, like SGD in HW1P1, so they never depend on the
student's Linear. Its layers alternate [layer, decoy, layer, ...]: some handouts take
`model.layers`, others `model.layers[::2]` ("every second layer is activation function"); the
decoys carry parameters too, so both forms run, and only the even layers are checked.

Dropout is random, and the official script compares with the pickled output of one seeded run, so
it fails correct work that draws its mask another way (np.random.rand < 1 - p, binomial, ...).
Here it is graded on what every correct dropout satisfies, whatever its random calls:
- each training output is 0 or x / (1 - p) (inputs are kept at |x| >= 0.5, so 0 means dropped);
- the fraction dropped is within 6.5 standard deviations of p (20,000 entries, 10,000 in the second
  round), for p = 0.1, 0.3,
  0.5 and 0.8: a correct dropout fails one of these twelve checks with probability below 1e-8
  (computed exactly from the binomial distribution in tests/grader/test_bonus_catalogue.py);
- the mask is neither one row repeated nor one column repeated (a broadcast mask), and a second
  forward call draws a new one (the chance that a correct dropout repeats any of these is below
  1e-100 at this size), on an input of another batch size too;
- backward uses the mask of the last forward (see above for the two accepted forms);
- in evaluation (train=False) the output is x itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from grader.compare import ATOL, RTOL, drops_only_leading_ones
from grader.plan import Section, Test, derive_seed
from grader.suite import Layout, Suite
from grader.suites import hw1p1

SECTION_POINTS = {"Adam": 5, "AdamW": 5, "Dropout": 10}

ADAM, ADAMW = "mytorch.optim.adam", "mytorch.optim.adamW"
DROPOUT = ["mytorch.nn.dropout", "mytorch.nn.modules.dropout"]   # the first present is graded

DROPOUT_ROWS, DROPOUT_COLS = 100, 200
SECOND_ROWS = 50   # the second round's batch size
DROPOUT_PS = (0.1, 0.3, 0.5, 0.8)
FRACTION_SIGMAS = 6.5


def _rng(seed_material: str, name: str) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed_material, name))


# ---------------------------------------------------------------------------------------------
# Adam and AdamW

UPDATE_FORMS = {"torch": "theta - lr m^ / (sqrt(v^) + eps) (torch.optim)",
                "writeup": "theta - lr m^ / sqrt(v^ + eps) (the bonus writeups)"}


def adam_trajectory(W, b, grads, lr, beta1, beta2, eps, weight_decay=0.0, eps_inside=False):
    """W and b after each step of Adam (AdamW when WEIGHT_DECAY: decoupled, on the parameter
    before the step) from W, b and GRADS [(dW, db) per step], in float64. EPS_INSIDE: the writeups'
    sqrt(v^ + eps); otherwise torch's sqrt(v^) + eps. Returns [(W, b) per step]."""
    params = [np.asarray(W, np.float64), np.asarray(b, np.float64)]
    moments = [[np.zeros_like(p), np.zeros_like(p)] for p in params]
    out = []
    for t, step_grads in enumerate(grads, start=1):
        for i, g in enumerate(step_grads):
            m, v = moments[i]
            m[...] = beta1 * m + (1 - beta1) * g
            v[...] = beta2 * v + (1 - beta2) * g * g
            m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
            denominator = np.sqrt(v_hat + eps) if eps_inside else np.sqrt(v_hat) + eps
            params[i] = params[i] * (1 - lr * weight_decay) - lr * m_hat / denominator
        out.append((params[0].copy(), params[1].copy()))
    return out


def _either_form_judge(candidates: dict[str, np.ndarray], label: str):
    """Passes when the parameter matches either form of the update (see the module docstring)."""
    def judge(got: np.ndarray, saved: dict) -> str | None:
        expected = candidates["torch"]
        if got.shape != expected.shape and drops_only_leading_ones(got.shape, expected.shape):
            got = got.reshape(expected.shape)
        if got.shape != expected.shape:
            return f"{label}: expected shape {expected.shape}, got {got.shape}."
        got = got.astype(np.float64)
        if not np.isfinite(got).all():
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(got))[0])
            return (f"{label} contains {got[where]} at index {list(where)} (torch's form gives "
                    f"{candidates['torch'][where]:.6g}, the writeup's {candidates['writeup'][where]:.6g}).")
        errors = {}
        for form, value in candidates.items():
            errors[form] = np.abs(got - value)
            if (errors[form] <= ATOL + RTOL * np.abs(value)).all():
                return None
        form = min(errors, key=lambda f: errors[f].max())
        where = tuple(int(i) for i in np.unravel_index(np.argmax(errors[form]), got.shape))
        return (f"{label}: values differ from both forms of the update the course accepts, "
                f"{UPDATE_FORMS['torch']} and {UPDATE_FORMS['writeup']}. At index {list(where)} "
                f"torch's form gives {candidates['torch'][where]:.6g}, the writeup's "
                f"{candidates['writeup'][where]:.6g}, yours {got[where]:.6g}.")
    return judge


def _optimizer_test(name, cls, module, hyper: dict, shapes, grads_per_step, rng) -> Test:
    """Stand-in layers with W, b, dLdW, dLdb at even indices and parameter-carrying decoys at odd
    indices; SGD-style: new gradients before each step, W and b checked after each step against
    both forms of the update. HYPER: lr, beta1, beta2, eps (and weight_decay for AdamW), passed as
    the official script passes them (lr by position, the others by name)."""
    t = Test(name)
    t.stand_in("model")
    layers, start = [], []
    for k, (w_shape, b_shape) in enumerate(shapes):
        if k:
            decoy = f"decoy{k}"
            t.stand_in(decoy)
            for attr, value in (("W", np.ones((2, 2))), ("b", np.ones((2, 1))),
                                ("dLdW", np.ones((2, 2))), ("dLdb", np.ones((2, 1)))):
                t.set(decoy, attr, t.array(f"{decoy}.{attr}", value))
            layers.append({"var": decoy})
        W, b = rng.standard_normal(w_shape), rng.standard_normal(b_shape)
        start.append((W, b))
        t.stand_in(f"l{k}")
        t.set(f"l{k}", "W", t.array(f"W{k}", W))
        t.set(f"l{k}", "b", t.array(f"b{k}", b))
        layers.append({"var": f"l{k}"})
    t.set("model", "layers", layers)
    named = {key: value for key, value in hyper.items() if key != "lr"}
    shown = ", ".join(["model", repr(hyper["lr"]), *(f"{k}={v!r}" for k, v in named.items())])
    t.new("opt", module, cls, {"var": "model"}, hyper["lr"], kwargs=named)
    trajectories = {form: [adam_trajectory(W, b, [g[k] for g in grads_per_step], hyper["lr"], hyper.get("beta1", 0.9),
                                           hyper.get("beta2", 0.999), hyper.get("eps", 1e-8),
                                           hyper.get("weight_decay", 0.01 if cls == "AdamW" else 0.0),
                                           eps_inside=form == "writeup")
                           for k, (W, b) in enumerate(start)]
                    for form in UPDATE_FORMS}
    for step, grads in enumerate(grads_per_step, start=1):
        for k, (dW, db) in enumerate(grads):
            t.set(f"l{k}", "dLdW", t.array(f"s{step}dW{k}", dW))
            t.set(f"l{k}", "dLdb", t.array(f"s{step}db{k}", db))
        t.call("opt", "step")
        for k in range(len(shapes)):
            for index, p in enumerate(("W", "b")):
                label = f"layers[{2 * k}].{p} after step {step} of {cls}({shown})"
                candidates = {form: trajectories[form][k][step - 1][index] for form in UPDATE_FORMS}
                t.check(t.get("model", f"layers.{2 * k}.{p}", f"step{step}.{p}{k}"), label, "judged",
                        judge=_either_form_judge(candidates, label))
    return t


# The handout case's five linear layers (MLP4's shapes), five steps at lr = 0.008.
MLP4_SHAPES = [((4, 2), (4, 1)), ((8, 4), (8, 1)), ((8, 8), (8, 1)), ((4, 8), (4, 1)), ((2, 4), (2, 1))]
MIN_GRADIENT = 0.5   # |g| >= this: the two forms agree to ~1e-8 at eps = 1e-8 (see the docstring)


def _away_from_zero(rng, shape, scale):
    z = rng.standard_normal(shape)
    return scale * np.sign(z) * (MIN_GRADIENT + np.abs(z))


def _grads(rng, shapes, steps, scale=1.0):
    return [[(_away_from_zero(rng, w, scale), _away_from_zero(rng, b, scale)) for w, b in shapes]
            for _ in range(steps)]


# Every argument the official script passes by name.
OFFICIAL_KEYWORDS = {"Adam": {"beta1", "beta2", "eps"}, "AdamW": {"beta1", "beta2", "eps", "weight_decay"},
                     "Dropout": {"p"}}


def _optimizer_section(cls: str, module: str, seed: str) -> Section:
    decay = cls == "AdamW"

    def hyper(lr, beta1=None, beta2=None, eps=None, wd=None) -> dict:
        given = {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps} | ({"weight_decay": wd} if decay else {})
        return {k: v for k, v in given.items() if v is not None}

    name = f"handout case: {cls} on MLP4's five layers, five steps"
    rng = np.random.default_rng(11785)   # fixed: the same inputs for every handin
    tests = [_optimizer_test(name, cls, module, hyper(0.008, 0.9, 0.999, 1e-8, 0.01), MLP4_SHAPES,
                             _grads(rng, MLP4_SHAPES, 5), rng)]
    name = f"{cls}(model, lr) uses the handout's defaults"
    rng = _rng(seed, name)
    shapes = [((3, 2), (3, 1))]
    tests.append(_optimizer_test(name, cls, module, {"lr": 0.01}, shapes, _grads(rng, shapes, 3), rng))
    shapes = [((4, 3), (4, 1)), ((2, 4), (2, 1)), ((3, 2), (3, 1))]
    # lr^2 wd stays far below the tolerance (decaying before or after the Adam step both pass)
    # while lr wd is far above it (a missing or coupled decay fails). eps = 0.1 is as large as the
    # gradients' root mean square would be without the bound: an eps that is ignored is seen, and
    # either form (inside or outside the root) passes.
    cases = [(0.01, 0.8, 0.99, 0.1, 0.05), (0.002, 0.95, 0.9, 1e-8, 0.5)]
    for lr, beta1, beta2, eps, wd in cases:
        args = hyper(lr, beta1, beta2, eps, wd)
        name = f"random case: three layers, six steps, {cls}({', '.join(f'{k}={v}' for k, v in args.items())})"
        rng = _rng(seed, name)
        tests.append(_optimizer_test(name, cls, module, args, shapes, _grads(rng, shapes, 6, scale=0.3), rng))
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
            sentence = (f"{call}: entry {_where(where)} is {y[where]:.6g}, but every output must be 0 "
                        f"(dropped) or x / (1 - p) = {kept_value[where]:.6g} (kept, scaled); "
                        f"{int(wrong.sum())} of {n} entries are neither.")
            return sentence, _scaling_hint(x, y, dropped, p)
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


# What a kept entry is when the scaling is off in a classic way, and the hint that says so.
_SCALINGS = (
    (lambda x, p: x, "The kept entries equal x: the scaling by 1 / (1 - p) is missing (inverted dropout)."),
    (lambda x, p: x / p, "The kept entries are x / p: here p is the rate of dropping, so keep x / (1 - p)."),
    (lambda x, p: x * (1 - p), "The kept entries are x * (1 - p): divide by 1 - p, do not multiply."),
)


def _scaling_hint(x: np.ndarray, y: np.ndarray, dropped: np.ndarray, p: float) -> str | None:
    """A hint when every kept entry is x scaled in one recognisable wrong way (never when some
    entries fit no single way: then the sentence alone speaks)."""
    kept = ~dropped
    if not kept.any() or not dropped.any():   # nothing dropped: the scaling is not what is wrong
        return None
    for scaled, hint in _SCALINGS:
        value = scaled(x, p)[kept]
        if (np.abs(y[kept] - value) <= ATOL + RTOL * np.abs(value)).all():
            return hint
    return None


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
    """Two rounds on one Dropout, as training uses it: two calls on a batch (each a fresh mask),
    backward, then a batch of another size and backward again (state kept from the first round,
    such as a mask of the first shape, fails there)."""
    t = Test(name)
    t.new("drop", DROPOUT, "Dropout", kwargs={"p": p})
    rounds = []
    for label, rows in (("", DROPOUT_ROWS), ("2", SECOND_ROWS)):
        z = rng.standard_normal((rows, DROPOUT_COLS))
        x = np.sign(z) * (0.5 + np.abs(z))     # |x| >= 0.5: an output of 0 means "dropped"
        rounds.append((label, rows, x, rng.standard_normal(x.shape)))
    call = f"Dropout(p={p})(x)"
    for label, rows, x, delta in rounds:
        size = f" on {rows} rows" + (", after a first round on another batch size" if label else "")
        first = f"{call}{size}"
        t.call("drop", "__call__", t.array(f"x{label}", x), save=f"y1{label}")
        t.check(f"y1{label}", first, "judged", judge=_forward_judge(x, p, first))
        forward_save = f"y1{label}"
        if not label:
            second = f"A second {call}{size}"
            t.call("drop", "__call__", t.array(f"x{label}", x), save="y2")
            t.check("y2", second, "judged", judge=_forward_judge(x, p, second))
            t.check("y2", second, "judged", judge=_fresh_mask_judge(second, "y1"))
            forward_save = "y2"
        back = f"Dropout(p={p}).backward(delta){size}"
        t.call("drop", "backward", t.array(f"delta{label}", delta), save=f"dx{label}")
        t.check(f"dx{label}", back, "judged", judge=_backward_judge(delta, p, forward_save, back))
    return t


def _dropout_eval_test(name: str, p: float, rng) -> Test:
    t = Test(name)
    t.new("drop", DROPOUT, "Dropout", kwargs={"p": p})
    t.call("drop", "forward", t.array("x", rng.standard_normal((7, 5))), False, save="y")
    t.check("y", f"Dropout(p={p}).forward(x, False) (evaluation: the identity)", factors={"1 - p": 1 - p})
    t.call("drop", "forward", t.array("x2", rng.standard_normal((3, 5))), False, save="y2")
    t.check("y2", f"Dropout(p={p}).forward(x, False) again, on 3 rows (evaluation: the identity)",
            factors={"1 - p": 1 - p})
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

BONUS_FILES = ("mytorch/optim/adam.py", "mytorch/optim/adamW.py", "mytorch/nn/dropout.py",
               "mytorch/nn/modules/dropout.py")

# Both semesters' archives are accepted: S24/F25 `tar cvf handin.tar mytorch` (models/ inside
# mytorch/), S25 `tar cvf handin.tar mytorch models` (models/ beside it). The bonus grades neither
# models/ (the optimizers run on a stand-in model), so only mytorch/ is kept.
LAYOUT = Layout(
    packages=("mytorch",),
    build_hint="build it from the handout folder with: tar cvf handin.tar mytorch",
    summary="mytorch/ (models/ inside it or beside it)",
    needs_one_of=BONUS_FILES,
    none_of_them=("Your archive has none of the bonus files (mytorch/optim/adam.py, mytorch/optim/adamW.py, "
                  "mytorch/nn/dropout.py): is it your HW1P1 handin? The bonus is graded on those files; build "
                  "it from the bonus handout folder with: tar cvf handin.tar mytorch"),
)

SUITE = Suite(name="hw1p1_bonus", title="HW1P1 Bonus: Adam, AdamW, Dropout", layout=LAYOUT,
              exports=EXPORTS,
              # beside grader/ both in a checkout and once installed (pyproject ships mytorch_reference*)
              reference_root=Path(__file__).resolve().parents[2] / "mytorch_reference_bonus",
              build=build_suite)
