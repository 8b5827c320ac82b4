"""A catalogue of HW1P1 Bonus handins: realistic buggy ones and correct-but-different ones.

A bonus handin is a tar of `mytorch/` alone: the HW1P1 reference's mytorch/ with its models/ moved
inside it (the student's HW1P1 files, copied in), then the bonus reference's files
(mytorch_reference_bonus/mytorch: adam.py, adamW.py, dropout.py) on top. Edits are text
replacements (file, old, new); each `old` must occur exactly once, as in catalogue.py.

Dependencies between sections: the reference's AdamW subclasses Adam (adamW.py imports adam.py),
so a bug in Adam's update costs AdamW too, while a bug in AdamW's decay costs only AdamW; Dropout
stands alone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from catalogue import REFERENCE, Buggy, Correct, apply_edits

REPO = Path(__file__).resolve().parents[2]
BONUS_REFERENCE = REPO / "mytorch_reference_bonus"

SECTION_POINTS = {"Adam": 5, "AdamW": 5, "Dropout": 10}
ADAM = "mytorch/optim/adam.py"
ADAMW = "mytorch/optim/adamW.py"
DROP = "mytorch/nn/dropout.py"
BOTH_ADAMS = {"Adam", "AdamW"}


def bug(name: str, lost, *edits, why: str = "", expect: str = "") -> Buggy:
    lost = frozenset(lost)
    assert lost <= SECTION_POINTS.keys(), lost - SECTION_POINTS.keys()
    return Buggy(name, tuple(edits), lost, why, expect)


def build_bonus_handin(dest: Path, edits=(), move: tuple[str, str] | None = None) -> Path:
    """DEST/mytorch: HW1P1's mytorch/ with models/ inside, the bonus files on top, EDITS applied;
    MOVE = (from, to) relocates one file afterwards (e.g. dropout.py into nn/modules/)."""
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REFERENCE / "mytorch", dest / "mytorch", ignore=ignore)
    shutil.copytree(REFERENCE / "models", dest / "mytorch" / "models", ignore=ignore)
    for path in sorted((BONUS_REFERENCE / "mytorch").rglob("*.py")):
        rel = path.relative_to(BONUS_REFERENCE)
        if path.name != "__init__.py":  # the student's own __init__.py files stay (never executed)
            shutil.copyfile(path, dest / rel)
    apply_edits(dest, edits)
    if move:
        (dest / move[1]).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(dest / move[0]), dest / move[1])
    return dest


BUGGY: list[Buggy] = [
    # -- Adam (its update is inherited by AdamW)
    bug("adam_no_bias_correction", BOTH_ADAMS,
        (ADAM, "m_hat = m / (1 - self.beta1 ** self.t)", "m_hat = m"),
        (ADAM, "v_hat = v / (1 - self.beta2 ** self.t)", "v_hat = v"),
        expect="after step 1 of Adam"),
    bug("adam_no_first_moment_correction", BOTH_ADAMS,
        (ADAM, "m_hat = m / (1 - self.beta1 ** self.t)", "m_hat = m")),
    bug("adam_t_never_incremented", BOTH_ADAMS,
        (ADAM, "        self.t += 1\n", ""),
        why="1 - beta**0 = 0: the bias correction divides by zero", expect="contains"),
    bug("adam_t_incremented_per_layer", BOTH_ADAMS,
        (ADAM, "        self.t += 1\n        for i, layer in enumerate(self.l):\n",
               "        for i, layer in enumerate(self.l):\n            self.t += 1\n"),
        why="with several layers, each layer sees a different t"),
    bug("adam_second_moment_not_squared", BOTH_ADAMS,
        (ADAM, "(1 - self.beta2) * grad * grad", "(1 - self.beta2) * grad"),
        why="square roots of negative moments give NaN"),
    bug("adam_betas_swapped", BOTH_ADAMS,
        (ADAM, "m[...] = self.beta1 * m + (1 - self.beta1) * grad", "m[...] = self.beta2 * m + (1 - self.beta2) * grad"),
        (ADAM, "v[...] = self.beta2 * v + (1 - self.beta2) * grad * grad",
               "v[...] = self.beta1 * v + (1 - self.beta1) * grad * grad")),
    bug("adam_bias_not_updated", BOTH_ADAMS,
        (ADAM, "            layer.b = self._update(layer.b, layer.dLdb, self.m_b[i], self.v_b[i])\n", ""),
        expect="layers[0].b after step 1"),
    bug("adam_hard_coded_betas", BOTH_ADAMS,
        (ADAM, "m[...] = self.beta1 * m + (1 - self.beta1) * grad", "m[...] = 0.9 * m + 0.1 * grad"),
        (ADAM, "v[...] = self.beta2 * v + (1 - self.beta2) * grad * grad", "v[...] = 0.999 * v + 0.001 * grad * grad"),
        (ADAM, "m_hat = m / (1 - self.beta1 ** self.t)", "m_hat = m / (1 - 0.9 ** self.t)"),
        (ADAM, "v_hat = v / (1 - self.beta2 ** self.t)", "v_hat = v / (1 - 0.999 ** self.t)"),
        why="the handout's case passes; other betas do not"),
    bug("adam_no_defaults", {"Adam"},
        (ADAM, "def __init__(self, model, lr, beta1=0.9, beta2=0.999, eps=1e-8):",
               "def __init__(self, model, lr, beta1, beta2, eps):"),
        why="Adam(model, lr) must work; AdamW passes every argument, so it keeps its points",
        expect="cannot be called as Adam"),
    bug("adam_hyperparameters_named_otherwise", {"Adam"},
        (ADAM, "def __init__(self, model, lr, beta1=0.9, beta2=0.999, eps=1e-8):",
               ("def __init__(self, model, lr, b1=0.9, b2=0.999, epsilon=1e-8):\n"
               "        beta1, beta2, eps = b1, b2, epsilon")),
        why="the official script passes beta1=, beta2=, eps= by name; AdamW's own signature keeps them",
        expect="passes 'beta1' and 'beta2' and 'eps' by name, and your Adam"),
    bug("adam_ignores_eps", BOTH_ADAMS,
        (ADAM, "m_hat / (np.sqrt(v_hat) + self.eps)", "m_hat / (np.sqrt(v_hat) + 1e-8)")),
    bug("adam_squared_lr", BOTH_ADAMS,
        (ADAM, "return param - self.lr * m_hat", "return param - self.lr * self.lr * m_hat"),
        expect="values differ from both forms of the update the course accepts, theta - lr m^ / (sqrt(v^) + eps) "
               "(torch.optim) and theta - lr m^ / sqrt(v^ + eps) (the bonus writeups)"),
    bug("adam_syntax_error", BOTH_ADAMS,
        (ADAM, "class Adam:", "class Adam"), expect="syntax error"),

    # -- AdamW's decay
    bug("adamw_no_decay", {"AdamW"},
        (ADAMW, ("            layer.W = layer.W * (1 - self.lr * self.weight_decay)\n"
                "            layer.b = layer.b * (1 - self.lr * self.weight_decay)\n"), "            pass\n")),
    bug("adamw_coupled_l2", {"AdamW"},
        (ADAMW, ("            layer.W = layer.W * (1 - self.lr * self.weight_decay)\n"
                "            layer.b = layer.b * (1 - self.lr * self.weight_decay)\n"),
                ("            layer.dLdW = layer.dLdW + self.weight_decay * layer.W\n"
                "            layer.dLdb = layer.dLdb + self.weight_decay * layer.b\n")),
        why="Adam with L2 regularisation is not AdamW: the decay goes through the moments"),
    bug("adamw_decay_without_lr", {"AdamW"},
        (ADAMW, "layer.W = layer.W * (1 - self.lr * self.weight_decay)", "layer.W = layer.W * (1 - self.weight_decay)"),
        (ADAMW, "layer.b = layer.b * (1 - self.lr * self.weight_decay)", "layer.b = layer.b * (1 - self.weight_decay)")),
    bug("adamw_decays_only_W", {"AdamW"},
        (ADAMW, "            layer.b = layer.b * (1 - self.lr * self.weight_decay)\n", ""),
        why="torch.optim.AdamW decays every parameter it is given, biases included"),
    bug("adamw_default_weight_decay_zero", {"AdamW"},
        (ADAMW, "eps=1e-8, weight_decay=0.01):", "eps=1e-8, weight_decay=0):"),
        why="the handout's default is 0.01"),

    # -- Dropout
    bug("dropout_keeps_with_probability_p", {"Dropout"},
        (DROP, "np.random.binomial(1, 1 - self.p, size=x.shape)", "np.random.binomial(1, self.p, size=x.shape)"),
        why="p is the probability of dropping; at p = 0.5 it cannot be seen, at 0.1, 0.3, 0.8 it can",
        expect="were dropped; with p = 0.1"),
    bug("dropout_scales_by_p", {"Dropout"},
        (DROP, "return x * self.mask / (1 - self.p)", "return x * self.mask / self.p"),
        expect="every output must be 0 (dropped) or x / (1 - p)"),
    bug("dropout_no_scaling", {"Dropout"},
        (DROP, "return x * self.mask / (1 - self.p)", "return x * self.mask"),
        (DROP, "return delta * self.mask / (1 - self.p)", "return delta * self.mask")),
    bug("dropout_eval_still_drops", {"Dropout"},
        (DROP, "        if not train:\n            return x\n", ""),
        expect="forward(x, False)"),
    bug("dropout_eval_scales_by_keep_probability", {"Dropout"},
        (DROP, "        if not train:\n            return x\n", "        if not train:\n            return x * (1 - self.p)\n"),
        why="the classic (non-inverted) dropout scales at evaluation instead of in training"),
    bug("dropout_train_flag_inverted", {"Dropout"},
        (DROP, "        if not train:\n", "        if train:\n")),
    bug("dropout_backward_draws_a_new_mask", {"Dropout"},
        (DROP, "return delta * self.mask / (1 - self.p)",
               "return delta * np.random.binomial(1, 1 - self.p, size=delta.shape) / (1 - self.p)"),
        expect="with the mask of the last forward call"),
    bug("dropout_backward_ignores_mask", {"Dropout"},
        (DROP, "return delta * self.mask / (1 - self.p)", "return delta")),
    bug("dropout_backward_scales_by_p", {"Dropout"},
        (DROP, "return delta * self.mask / (1 - self.p)", "return delta * self.mask / self.p")),
    bug("dropout_seeds_inside_forward", {"Dropout"},
        (DROP, "        self.mask = np.random.binomial(", "        np.random.seed(11785)\n        self.mask = np.random.binomial("),
        why="copied the official script's reset_prng(): every call drops the same units",
        expect="dropped exactly the same entries as the first"),
    bug("dropout_mask_kept_from_the_first_call", {"Dropout"},
        (DROP, "        self.mask = np.random.binomial(1, 1 - self.p, size=x.shape)\n",
               ("        if not hasattr(self, 'mask'):\n"
               "            self.mask = np.random.binomial(1, 1 - self.p, size=x.shape)\n"))),
    bug("dropout_one_mask_per_row", {"Dropout"},
        (DROP, "np.random.binomial(1, 1 - self.p, size=x.shape)", "np.random.binomial(1, 1 - self.p, size=(x.shape[0], 1))"),
        expect="the mask repeats the same row"),
    bug("dropout_one_mask_per_column", {"Dropout"},
        (DROP, "np.random.binomial(1, 1 - self.p, size=x.shape)", "np.random.binomial(1, 1 - self.p, size=(1, x.shape[1]))")),
    bug("dropout_without_call", {"Dropout"},
        (DROP, "    def __call__(self, x):\n        return self.forward(x)\n\n", ""),
        why="the official script calls dropout_layer(x); the handout's skeleton defines __call__",
        expect="it has no __call__ method (the official script calls the object itself)"),
    bug("dropout_mask_shape_from_the_first_batch", {"Dropout"},
        (DROP, "self.mask = np.random.binomial(1, 1 - self.p, size=x.shape)",
               ("self.shape = getattr(self, 'shape', x.shape)\n"
               "        self.mask = np.random.binomial(1, 1 - self.p, size=self.shape)")),
        why="state kept from the first call: only a second round with another batch size shows it",
        expect="operands could not be broadcast together with shapes (50,200) (100,200)"),
    bug("dropout_returns_the_mask", {"Dropout"},
        (DROP, "return x * self.mask / (1 - self.p)", "return self.mask")),
]

# Each handin is built by build_bonus_handin(edits, move); `packaging` as in catalogue.package.
CORRECT: list[Correct] = [
    Correct("reference"),
    Correct("reference_zip", packaging="zip"),
    Correct("reference_gzip", packaging="gzip_named_tar"),
    Correct("adam_eps_inside_the_root_as_the_writeups",
            ((ADAM, "m_hat / (np.sqrt(v_hat) + self.eps)", "m_hat / np.sqrt(v_hat + self.eps)"),),
            why="the S24 and S25 bonus writeups print theta - lr m^ / sqrt(v^ + eps)"),
    Correct("adam_eps_inside_the_root_for_W_only",
            ((ADAM, "    def _update(self, param, grad, m, v):\n",
                    "    def _update(self, param, grad, m, v, inside=False):\n"),
             (ADAM, "return param - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)",
                    ("if inside:\n            return param - self.lr * m_hat / np.sqrt(v_hat + self.eps)\n"
                    "        return param - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)")),
             (ADAM, "layer.W = self._update(layer.W, layer.dLdW, self.m_W[i], self.v_W[i])",
                    "layer.W = self._update(layer.W, layer.dLdW, self.m_W[i], self.v_W[i], inside=True)")),
            why="each parameter is judged on its own against both forms"),
    Correct("s25_layout_models_beside_mytorch", why="S25: tar cvf handin.tar mytorch models"),
    Correct("adam_every_second_layer",
            ((ADAM, "self.l = model.layers\n", "self.l = model.layers[::2]  # every second layer is an activation\n"),),
            why="some handouts take model.layers[::2]"),
    Correct("adam_float32_moments",
            ((ADAM, "self.m_W = [np.zeros_like(layer.W, dtype=np.float64) for layer in self.l]",
                    'self.m_W = [np.zeros(layer.W.shape, dtype="f") for layer in self.l]'),
             (ADAM, "self.v_W = [np.zeros_like(layer.W, dtype=np.float64) for layer in self.l]",
                    'self.v_W = [np.zeros(layer.W.shape, dtype="f") for layer in self.l]'),
             (ADAM, "self.m_b = [np.zeros_like(layer.b, dtype=np.float64) for layer in self.l]",
                    'self.m_b = [np.zeros(layer.b.shape, dtype="f") for layer in self.l]'),
             (ADAM, "self.v_b = [np.zeros_like(layer.b, dtype=np.float64) for layer in self.l]",
                    'self.v_b = [np.zeros(layer.b.shape, dtype="f") for layer in self.l]')),
            why="the handout's skeleton keeps the moments in float32 (updated in place here)"),
    Correct("adam_in_place_updates",
            ((ADAM, ("            layer.W = self._update(layer.W, layer.dLdW, self.m_W[i], self.v_W[i])\n"
                    "            layer.b = self._update(layer.b, layer.dLdb, self.m_b[i], self.v_b[i])\n"),
                    ("            layer.W -= layer.W - self._update(layer.W, layer.dLdW, self.m_W[i], self.v_W[i])\n"
                    "            layer.b -= layer.b - self._update(layer.b, layer.dLdb, self.m_b[i], self.v_b[i])\n")),),
            why="W -= ... changes the array the grader saved earlier; saved values are snapshots"),
    Correct("adamw_decay_after_the_adam_step",
            ((ADAMW, ("    def step(self):\n"
                     "        for layer in self.l:\n"
                     "            layer.W = layer.W * (1 - self.lr * self.weight_decay)\n"
                     "            layer.b = layer.b * (1 - self.lr * self.weight_decay)\n"
                     "        super().step()\n"),
                     ("    def step(self):\n"
                     "        super().step()\n"
                     "        for layer in self.l:\n"
                     "            layer.W = layer.W * (1 - self.lr * self.weight_decay)\n"
                     "            layer.b = layer.b * (1 - self.lr * self.weight_decay)\n")),),
            why="differs from torch by lr^2 wd per step, far below the tolerance at the tested rates"),
    Correct("dropout_rand_mask",
            ((DROP, "self.mask = np.random.binomial(1, 1 - self.p, size=x.shape)",
                    "self.mask = (np.random.rand(*x.shape) >= self.p).astype(float)"),),
            why="other random calls than the reference's: the official pickled comparison fails it"),
    Correct("dropout_scaled_mask",
            ((DROP, "self.mask = np.random.binomial(1, 1 - self.p, size=x.shape)\n        return x * self.mask / (1 - self.p)",
                    "self.mask = np.random.binomial(1, 1 - self.p, size=x.shape) / (1 - self.p)\n        return x * self.mask"),
             (DROP, "return delta * self.mask / (1 - self.p)", "return delta * self.mask")),
            why="the mask stored already scaled"),
    Correct("dropout_handout_backward",
            ((DROP, "return delta * self.mask / (1 - self.p)", "return delta * self.mask"),),
            why="the handout's skeleton: 'Multiply mask with delta and return' with the 0/1 mask"),
    Correct("dropout_modifies_x_in_place",
            ((DROP, "return x * self.mask / (1 - self.p)", "x *= self.mask\n        x /= 1 - self.p\n        return x"),)),
    Correct("dropout_in_nn_modules", packaging="tar",
            why="some handouts place it at mytorch/nn/modules/dropout.py"),
]
MOVES = {"dropout_in_nn_modules": (DROP, "mytorch/nn/modules/dropout.py"),
         "s25_layout_models_beside_mytorch": ("mytorch/models", "models")}


def expected_score(lost) -> int:
    return sum(p for name, p in SECTION_POINTS.items() if name not in lost)


assert len({h.name for h in BUGGY}) == len(BUGGY)
assert len({h.name for h in CORRECT}) == len(CORRECT)
