"""A catalogue of handins for testing the grader: realistic buggy ones and correct-but-different ones.

Every handin is the bundled reference (mytorch_reference/{models,mytorch}) with a few text
replacements (file, old, new). Each `old` must occur exactly once in its file, so when the reference
changes, the catalogue fails loudly instead of silently testing the unedited reference.

`Buggy.lost` is the exact set of sections the handin must lose; it encodes the dependencies between
sections:
- models/mlp.py imports Linear and ReLU, so a Linear bug (or a ReLU bug the MLPs can see) also
  costs MLP0, MLP1 and MLP4;
- SGD is graded with stand-in layers, never through the student's Linear, so a Linear bug does not
  cost SGD;
- each section loads its modules from their own files and runs the student's __init__.py only for a
  name nothing else provides, so a syntax error in batchnorm.py costs only Batch Norm, and a broken
  __init__.py costs only the sections that need a name from it.
"""

from __future__ import annotations

import gzip
import io
import os
import py_compile
import shutil
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "mytorch_reference"

SECTION_POINTS = {
    "Linear Layer": 15, "Activation": 10, "MLP0": 10, "MLP1": 10,
    "MLP4": 15, "Loss": 10, "SGD": 10, "Batch Norm": 20,
}
MLPS = {"MLP0", "MLP1", "MLP4"}
# The per-section time limit of the executor used for the infinite-loop handin (default 30 s).
SHORT_TIMEOUT = 6.0

LINEAR = "mytorch/nn/linear.py"
ACT = "mytorch/nn/activation.py"
LOSS = "mytorch/nn/loss.py"
BN = "mytorch/nn/batchnorm.py"
SGD = "mytorch/optim/sgd.py"
MLP = "models/mlp.py"
NN_INIT = "mytorch/nn/__init__.py"
TOP_INIT = "mytorch/__init__.py"
MODELS_INIT = "models/__init__.py"
NN_HELPER = "mytorch/nn/module.py"   # not in the handout: a student's own helper file

Edit = tuple[str, str, str]


@dataclass(frozen=True)
class Buggy:
    name: str
    edits: tuple[Edit, ...]
    lost: frozenset[str]
    why: str = ""
    expect: str = ""   # a phrase some failing test's message must contain


@dataclass(frozen=True)
class Correct:
    name: str
    edits: tuple[Edit, ...] = ()
    packaging: str = "tar"   # see PACKAGERS
    why: str = ""
    note: str = ""   # a phrase some non-scoring note must contain (and then only such notes appear)


def bug(name: str, lost, *edits: Edit, why: str = "", expect: str = "") -> Buggy:
    lost = frozenset(lost)
    assert lost <= SECTION_POINTS.keys(), lost - SECTION_POINTS.keys()
    return Buggy(name, tuple(edits), lost, why, expect)


# ---------------------------------------------------------------------------------------------
# Buggy handins

LINEAR_AND_MLPS = {"Linear Layer"} | MLPS

BUGGY: list[Buggy] = [
    # -- Linear: costs the MLPs too (models/mlp.py uses the student's Linear), never SGD.
    bug("linear_dLdb_flat", LINEAR_AND_MLPS,
        (LINEAR, "self.dLdb = dLdZ.T @ self.Ones", "self.dLdb = np.sum(dLdZ, axis=0)"),
        why="dLdb of shape (out,) instead of (out, 1)", expect="Linear.dLdb after backward (debug=True): expected shape (3, 1), got (3,). A bias gradient "
                                                      "of shape (out,) would turn the (out, 1) bias into (out, out)"),
    bug("linear_Z_transposed", LINEAR_AND_MLPS,
        (LINEAR, "return A @ self.W.T + self.Ones @ self.b.T", "return self.W @ A.T + self.b @ self.Ones.T"),
        why="Z of shape (out, N)"),
    bug("linear_s23_divides_by_N", LINEAR_AND_MLPS,
        (LINEAR, "self.dLdW = dLdZ.T @ self.A", "self.dLdW = dLdZ.T @ self.A / self.N"),
        (LINEAR, "self.dLdb = dLdZ.T @ self.Ones", "self.dLdb = dLdZ.T @ self.Ones / self.N"),
        why="the S23 handout divided the parameter gradients by N"),
    bug("linear_missing_bias", LINEAR_AND_MLPS,
        (LINEAR, "return A @ self.W.T + self.Ones @ self.b.T", "return A @ self.W.T")),
    bug("linear_backward_returns_none", LINEAR_AND_MLPS,
        (LINEAR, "            self.dLdA = dLdA\n        return dLdA\n", "            self.dLdA = dLdA\n"),
        why="forgot the return statement", expect="the value returned by Linear.backward(dLdZ) is None (NoneType), not a numeric array."),
    bug("linear_W_none", LINEAR_AND_MLPS,
        (LINEAR, "self.W = np.zeros((out_features, in_features))", "self.W = None"),
        why="the weights are only created when the grader sets them"),
    bug("linear_no_debug_dLdA", {"Linear Layer"},
        (LINEAR, "        if self.debug:\n            self.dLdA = dLdA\n", ""),
        why="the MLP tests never read Linear.dLdA, so only the Linear section notices", expect="Linear has no attribute 'dLdA'."),

    # -- Activation. ReLU is the only activation the MLPs use.
    bug("identity_s23_backward", {"Activation"},
        (ACT, '    def backward(self, dLdA):\n        dAdZ = np.ones(self.A.shape, dtype="f")\n'
              '        return dLdA * dAdZ',
              '    def backward(self):\n        return np.ones(self.A.shape, dtype="f")'),
        why="S23's Identity.backward() took no argument", expect="the writeup's signature is Identity.backward(dLdA), yours is Identity.backward()."),
    bug("sigmoid_wrong_derivative", {"Activation"},
        (ACT, "return dLdA * (self.A - self.A * self.A)", "return dLdA * (1.0 - self.A)")),
    bug("tanh_uses_np_tanh", {"Activation"},
        (ACT, "self.A = 2.0 * _sigmoid(2.0 * np.asarray(Z, dtype=np.float64)) - 1.0", "self.A = np.tanh(Z)"),
        why="values are right, but the writeup forbids np.tanh", expect="Tanh.forward calls np.tanh"),
    bug("relu_derivative_ge_zero", {"Activation"},
        (ACT, "        self.A = np.maximum(0, Z)\n", "        self.Z = Z\n        self.A = np.maximum(0, Z)\n"),
        (ACT, "return dLdA * (self.A > 0)", "return dLdA * (self.Z >= 0)"),
        why="derivative 1 at Z = 0; the MLPs' random pre-activations are never exactly 0", expect="dLdZ = ReLU.backward(dLdA): values differ"),
    bug("relu_modifies_its_input", MLPS,
        (ACT, "        self.A = np.maximum(0, Z)\n", "        Z[Z < 0] = 0\n        self.A = Z\n"),
        why="ReLU alone is right, but the MLPs' debug Z0 / A[1] is clobbered in place", expect="MLP0.Z0 after forward (debug=True): values differ"),
    bug("gelu_tanh_approximation", {"Activation"},
        (ACT, "self.A = 0.5 * Z * (1.0 + erf(Z / np.sqrt(2.0)))",
              "self.A = 0.5 * Z * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (Z + 0.044715 * Z ** 3)))"),
        (ACT, "        cdf = 0.5 * (1.0 + erf(Z / np.sqrt(2.0)))\n"
              "        pdf = np.exp(-0.5 * Z * Z) / np.sqrt(2.0 * np.pi)\n"
              "        return dLdA * (cdf + Z * pdf)",
              "        k = np.sqrt(2.0 / np.pi)\n"
              "        t = np.tanh(k * (Z + 0.044715 * Z ** 3))\n"
              "        return dLdA * (0.5 * (1.0 + t) + 0.5 * Z * (1.0 - t * t) * k * (1.0 + 3 * 0.044715 * Z * Z))")),
    bug("gelu_derivative_missing_pdf_term", {"Activation"},
        (ACT, "return dLdA * (cdf + Z * pdf)", "return dLdA * cdf")),
    bug("swish_missing_dLdbeta", {"Activation"},
        (ACT, "        self.dLdbeta = np.sum(dLdA * Z * Z * s * (1.0 - s))\n", ""),
        expect="Swish has no attribute 'dLdbeta'."),
    bug("swish_dLdbeta_not_summed", {"Activation"},
        (ACT, "self.dLdbeta = np.sum(dLdA * Z * Z * s * (1.0 - s))", "self.dLdbeta = dLdA * Z * Z * s * (1.0 - s)"),
        expect="Swish.dLdbeta after backward: expected a single number, got an array of shape (4, 2)."),
    # Issue 9 section 2: Swish with beta other than 1.
    bug("swish_backward_ignores_beta", {"Activation"},
        (ACT, "dAdZ = s + beta * Z * s * (1.0 - s)", "dAdZ = s + Z * s * (1.0 - s)"),
        why="right only at beta = 1, the official script's only case",
        expect="dLdZ = Swish(beta=0.5).backward(dLdA): values differ"),
    bug("swish_constructor_ignores_beta", {"Activation"},
        (ACT, "    def __init__(self, beta=1.0):\n        self.beta = beta\n",
              "    def __init__(self, beta=1.0):\n        self.beta = 1.0\n"),
        expect="A = Swish(beta=0.5).forward(Z): values differ"),
    bug("swish_beta_required_in_forward", {"Activation"},
        (ACT, "    def __init__(self, beta=1.0):\n        self.beta = beta\n\n    def forward(self, Z):\n"
              "        self.Z = Z\n",
              "    def forward(self, Z, beta):\n        self.beta = beta\n        self.Z = Z\n"),
        why="the writeup writes forward(Z, beta); the grader calls Swish().forward(Z)", expect="the writeup's signature is Swish.forward(Z), yours is Swish.forward(Z, beta)."),
    bug("softmax_unstable", {"Activation"},
        (ACT, "shifted = Z - np.max(Z, axis=1, keepdims=True)  # avoids overflow for large inputs", "shifted = Z"),
        expect="A = Softmax.forward(Z) contains nan"),
    bug("softmax_backward_diagonal_only", {"Activation"},
        (ACT, "return A * (dLdA - np.sum(dLdA * A, axis=1, keepdims=True))", "return dLdA * A * (1.0 - A)"),
        expect="dLdZ = Softmax.backward(dLdA): values differ"),
    bug("softmax_normalises_columns", {"Activation"},
        (ACT, "self.A = e / np.sum(e, axis=1, keepdims=True)", "self.A = e / np.sum(e, axis=0, keepdims=True)")),
    bug("activation_imports_missing_module", {"Activation"} | MLPS,
        (ACT, "import numpy as np\nfrom scipy.special import erf", "import numpy as np\nimport helpers\nfrom scipy.special import erf"),
        why="models/mlp.py imports ReLU from activation.py", expect="(in mytorch/nn/activation.py, line 3)."),

    # -- Loss
    bug("mse_backward_missing_2", {"Loss"},
        (LOSS, "return 2 * (self.A - self.Y) / (self.N * self.C)", "return (self.A - self.Y) / (self.N * self.C)")),
    bug("mse_s23_half_sse", {"Loss"},
        (LOSS, "return np.sum(se) / (self.N * self.C)", "return np.sum(se) / (2 * self.N * self.C)"),
        (LOSS, "return 2 * (self.A - self.Y) / (self.N * self.C)", "return (self.A - self.Y) / (self.N * self.C)"),
        why="S23: SSE / (2NC)"),
    bug("mse_sum_instead_of_mean", {"Loss"},
        (LOSS, "return np.sum(se) / (self.N * self.C)", "return np.sum(se)")),
    bug("ce_backward_not_divided_by_N", {"Loss"},
        (LOSS, "return (self.softmax - self.Y) / self.N", "return self.softmax - self.Y")),
    bug("ce_sum_instead_of_mean", {"Loss"},
        (LOSS, "return np.sum(-Y * log_softmax) / self.N", "return np.sum(-Y * log_softmax)")),
    bug("ce_mean_over_all_entries", {"Loss"},
        (LOSS, "return np.sum(-Y * log_softmax) / self.N", "return np.mean(-Y * log_softmax)")),
    bug("loss_syntax_error", {"Loss"},
        (LOSS, "    def backward(self):\n        return 2 *", "    def backward(self)\n        return 2 *")),

    # -- SGD (graded with stand-in layers, so only SGD is lost)
    bug("sgd_missing_bias_update", {"SGD"},
        (SGD, "                layer.b = layer.b - self.lr * layer.dLdb\n", ""),
        (SGD, "                layer.b = layer.b - self.lr * self.v_b[i]\n", "")),
    bug("sgd_momentum_applied_wrong", {"SGD"},
        (SGD, "self.v_W[i] = self.mu * self.v_W[i] + layer.dLdW", "self.v_W[i] = self.mu * self.v_W[i] - self.lr * layer.dLdW"),
        (SGD, "self.v_b[i] = self.mu * self.v_b[i] + layer.dLdb", "self.v_b[i] = self.mu * self.v_b[i] - self.lr * layer.dLdb"),
        (SGD, "layer.W = layer.W - self.lr * self.v_W[i]", "layer.W = layer.W - self.v_W[i]"),
        (SGD, "layer.b = layer.b - self.lr * self.v_b[i]", "layer.b = layer.b - self.v_b[i]"),
        why="v = mu v - lr g, then subtracted instead of added"),
    bug("sgd_plain_path_broken", {"SGD"},
        (SGD, "layer.W = layer.W - self.lr * layer.dLdW", "layer.W = layer.W - layer.dLdW"),
        (SGD, "layer.b = layer.b - self.lr * layer.dLdb", "layer.b = layer.b - layer.dLdb"),
        why="momentum is right; the official script never scores momentum=0, this grader does", expect="(lr=0.9, momentum=0)"),

    # -- Batch Norm
    bug("bn_unbiased_variance", {"Batch Norm"},
        (BN, "self.V = np.mean((Z - self.M) ** 2, axis=0, keepdims=True)", "self.V = np.var(Z, axis=0, ddof=1, keepdims=True)")),
    bug("bn_running_var_unbiased_like_torch", {"Batch Norm"},
        (BN, "self.running_V = self.alpha * self.running_V + (1 - self.alpha) * self.V",
             "self.running_V = self.alpha * self.running_V + (1 - self.alpha) * self.V * self.N / (self.N - 1)")),
    bug("bn_swapped_running_weights", {"Batch Norm"},
        (BN, "self.running_M = self.alpha * self.running_M + (1 - self.alpha) * self.M",
             "self.running_M = (1 - self.alpha) * self.running_M + self.alpha * self.M"),
        (BN, "self.running_V = self.alpha * self.running_V + (1 - self.alpha) * self.V",
             "self.running_V = (1 - self.alpha) * self.running_V + self.alpha * self.V")),
    bug("bn_eval_uses_batch_statistics", {"Batch Norm"},
        (BN, "NZ = (Z - self.running_M) / np.sqrt(self.running_V + self.eps)",
             "NZ = (Z - Z.mean(axis=0, keepdims=True)) / np.sqrt(Z.var(axis=0, keepdims=True) + self.eps)")),
    bug("bn_missing_dLdBW", {"Batch Norm"},
        (BN, "        self.dLdBW = np.sum(dLdBZ * self.NZ, axis=0, keepdims=True)\n", ""),
        expect="BatchNorm1d.dLdBW after backward: values differ"),
    bug("bn_dLdZ_missing_mean_term", {"Batch Norm"},
        (BN, "+ dLdV * (2 / N) * (Z - M) + dLdM / N", "+ dLdV * (2 / N) * (Z - M)")),
    # Section 2 corners of issue 9: BW and Bb off their defaults, inference leaves the state alone,
    # a variance comparable to eps.
    bug("bn_backward_ignores_BW", {"Batch Norm"},
        (BN, "dLdNZ = dLdBZ * self.BW", "dLdNZ = dLdBZ"),
        why="right only while BW is all ones", expect="dLdZ = BatchNorm1d.backward(dLdBZ): values differ"),
    bug("bn_eval_ignores_Bb", {"Batch Norm"},
        (BN, "            return self.BW * NZ + self.Bb", "            return self.BW * NZ"),
        why="right only while Bb is all zeros", expect="BZ = BatchNorm1d.forward(Z, eval=True): values differ"),
    bug("bn_eval_updates_running_statistics", {"Batch Norm"},
        (BN, "            NZ = (Z - self.running_M) / np.sqrt(self.running_V + self.eps)\n",
             "            NZ = (Z - self.running_M) / np.sqrt(self.running_V + self.eps)\n"
             "            self.running_M = self.alpha * self.running_M + (1 - self.alpha) * np.mean(Z, axis=0, keepdims=True)\n"),
        why="the eval output itself is right; the state it leaves behind is not",
        expect="BatchNorm1d.running_M after the eval calls: values differ"),
    bug("bn_eps_outside_the_sqrt", {"Batch Norm"},
        (BN, "self.NZ = (Z - self.M) / np.sqrt(self.V + self.eps)", "self.NZ = (Z - self.M) / (np.sqrt(self.V) + self.eps)"),
        why="the writeup's NZ is (Z - M) / sqrt(V + eps); the two differ once V is comparable to eps "
            "(the official autograder's data never gets there)",
        expect="where column 0's variance is about eps: values differ"),
    bug("bn_wrong_eps", {"Batch Norm"},
        (BN, "self.eps = 1e-8", "self.eps = 1e-5"),
        why="PyTorch's default eps; only visible on a batch with a tiny variance", expect="on a batch with a small variance"),
    bug("bn_syntax_error", {"Batch Norm"},
        (BN, "def forward(self, Z, eval=False):", "def forward(self, Z, eval=False)"),
        expect="batchnorm.py has a syntax error on line 18: expected ':'."),

    # -- MLPs
    bug("mlp0_missing_debug_Z0", {"MLP0"},
        (MLP, "            self.Z0 = Z0\n            self.A1 = A1\n", "            self.A1 = A1\n"),
        expect="MLP0 has no attribute 'Z0'."),
    bug("mlp1_missing_final_relu", {"MLP1"},
        (MLP, "A2 = self.layers[3].forward(Z1)", "A2 = Z1"),
        (MLP, "dLdZ1 = self.layers[3].backward(dLdA2)", "dLdZ1 = dLdA2")),
    bug("mlp1_second_layer_wrong_shape", {"MLP1"},
        (MLP, "self.layers = [Linear(2, 3), ReLU(), Linear(3, 2), ReLU()]",
              "self.layers = [Linear(2, 3), ReLU(), Linear(2, 3), ReLU()]"),
        why="only the shape right after construction is wrong; the grader then sets W", expect="MLP1.layers[2].W right after MLP1(): expected shape (2, 3), got (3, 2)."),
    bug("mlp4_missing_final_relu", {"MLP4"},
        (MLP, "            self.layers += [Linear(fan_in, fan_out), ReLU()]\n",
              "            self.layers += [Linear(fan_in, fan_out), ReLU()]\n        self.layers.pop()\n")),
    bug("mlp4_missing_debug_A", {"MLP4"},
        (MLP, "            if self.debug:\n                self.A.append(A)\n", ""),
        expect="MLP4.A has no item [1]: it is a list of length 1."),
    bug("mlp4_debug_dLdA_wrong_order", {"MLP4"},
        (MLP, "self.dLdA = [dLdA] + self.dLdA", "self.dLdA.append(dLdA)")),

    # -- Messages that name the cause.
    bug("bn_parameter_gradients_swapped", {"Batch Norm"},
        (BN, "        self.dLdBW = np.sum(dLdBZ * self.NZ, axis=0, keepdims=True)\n"
             "        self.dLdBb = np.sum(dLdBZ, axis=0, keepdims=True)\n",
             "        self.dLdBb = np.sum(dLdBZ * self.NZ, axis=0, keepdims=True)\n"
             "        self.dLdBW = np.sum(dLdBZ, axis=0, keepdims=True)\n"),
        expect="BatchNorm1d.dLdBW after backward and BatchNorm1d.dLdBb after backward look swapped: "
               "each holds the other's value."),
    bug("mlp1_layers_hold_only_the_linears", {"MLP1"},
        (MLP, "self.layers = [Linear(2, 3), ReLU(), Linear(3, 2), ReLU()]",
              "self.layers = [Linear(2, 3), Linear(3, 2)]"),
        expect="MLP1.layers has no item [2]: it is a list of length 2 holding Linear, Linear. The grader reads "
               "the Linears at layers[0], [2], [4], ...: layers must interleave each Linear with its activation"),
    bug("mlp4_layers_hold_only_the_linears", {"MLP4"},
        (MLP, "self.layers += [Linear(fan_in, fan_out), ReLU()]", "self.layers += [Linear(fan_in, fan_out)]"),
        expect="MLP4.layers[2].W right after MLP4(): expected shape (8, 4), got (8, 8). That is the shape of "
               "Linear number 3: MLP4.layers seems to hold only the Linears."),

    # -- State kept from the first call: only a second round on the same object shows it.
    bug("linear_ones_from_the_first_batch", LINEAR_AND_MLPS,
        (LINEAR, "        self.Ones = np.ones((self.N, 1))\n",
                 "        if not hasattr(self, 'Ones'):\n            self.Ones = np.ones((self.N, 1))\n"),
        expect="ValueError: operands could not be broadcast together"),
    bug("mlp4_debug_list_built_once", {"MLP4"},
        (MLP, "        if self.debug:\n            self.A = [A]\n",
              "        if self.debug:\n            if not hasattr(self, 'A'):\n                self.A = []\n"
              "            self.A.append(A)\n"),
        expect="build them afresh in every forward and backward call"),
    bug("swish_dLdbeta_accumulates_over_calls", {"Activation"},
        (ACT, "self.dLdbeta = np.sum(dLdA * Z * Z * s * (1.0 - s))",
              "self.dLdbeta = getattr(self, 'dLdbeta', 0.0) + np.sum(dLdA * Z * Z * s * (1.0 - s))"),
        expect="dLdbeta is this call's gradient, not a sum over calls."),
    bug("bn_stays_in_eval_mode", {"Batch Norm"},
        (BN, "        if eval:\n", "        self.in_eval = getattr(self, 'in_eval', False) or eval\n        if self.in_eval:\n"),
        expect="in training mode again after the eval calls"),
    bug("bn_batch_size_from_the_first_batch", {"Batch Norm"},
        (BN, "self.N = Z.shape[0]", "self.N = getattr(self, 'N', Z.shape[0])")),
    bug("mse_sizes_from_the_first_call", {"Loss"},
        (LOSS, "        self.N, self.C = A.shape\n        se = ",
               "        if not hasattr(self, 'N'):\n            self.N, self.C = A.shape\n        se = ")),

    # -- Called as the official script calls it: Linear(2, 3, debug=True) passes debug by name.
    bug("linear_debug_parameter_renamed", {"Linear Layer"},
        (LINEAR, "def __init__(self, in_features, out_features, debug=False):",
                 "def __init__(self, in_features, out_features, dbg=False):"),
        (LINEAR, "self.debug = debug", "self.debug = dbg"),
        why="the official script calls Linear(2, 3, debug=True) and crashes on this signature",
        expect="passes 'debug' by name, and your Linear"),

    # -- A name only the handin's own __init__.py provides: its __init__.py runs, for that name only.
    bug("own_nn_init_breaks_for_a_needed_name", MLPS,
        (NN_HELPER, "", "class Module:\n    pass\n"),
        (NN_INIT, "from mytorch.nn.linear import Linear\n",
                  "from mytorch.nn.linear import Linear\nfrom mytorch.nn.module import Modul\n"),
        (MLP, "from mytorch.nn.linear import Linear\n", "from mytorch.nn.linear import Linear\nfrom mytorch.nn import Module\n"),
        why="models/mlp.py needs Module from mytorch/nn/__init__.py, which fails: only the MLPs need it",
        expect="mytorch/nn/__init__.py (run because a graded file needs a name only it provides) failed: "
               "ImportError: cannot import name 'Modul' from mytorch.nn.module (mytorch/nn/module.py does "
               "not define it)"),
    bug("mlp_imports_a_name_nothing_provides", MLPS,
        (MLP, "from mytorch.nn.linear import Linear\n", "from mytorch.nn.linear import Linear\nfrom mytorch.nn import Module\n"),
        expect="cannot import name 'Module' from mytorch.nn: the handout's mytorch/nn/__init__.py does not "
               "export it, there is no mytorch/nn/Module.py, and your own mytorch/nn/__init__.py does not "
               "define it either"),

    # -- __init__.py files run only for a name nothing else provides: these cost nothing.
    bug("s25_nn_init_without_swish", set(),
        (NN_INIT, "GELU, Identity, ReLU, Sigmoid, Softmax, Swish, Tanh", "GELU, Identity, ReLU, Sigmoid, Softmax, Tanh"),
        (NN_INIT, '"GELU", "Swish", "Softmax"', '"GELU", "Softmax"')),
    bug("mytorch_init_raises", set(),
        (TOP_INIT, "from mytorch.nn import *\n",
                   "raise ImportError('run this from the handout folder')\n")),
    bug("models_init_imports_missing_name", set(),
        (MODELS_INIT, "from models.mlp import MLP0, MLP1, MLP4", "from models.mlp import MLP0, MLP1, MLP4, MLP5")),
]

# Graded with a short per-section time limit (see test_catalogue.py).
INFINITE_LOOP = bug("mse_backward_infinite_loop", {"Loss"},
                    (LOSS, "    def backward(self):\n        return 2 * (self.A - self.Y)",
                           "    def backward(self):\n        while True:\n            pass\n"
                           "        return 2 * (self.A - self.Y)"))


# ---------------------------------------------------------------------------------------------
# Correct-but-different handins: all must score 100.

FLOAT32_EDITS: tuple[Edit, ...] = (
    (LINEAR, "self.W = np.zeros((out_features, in_features))", "self.W = np.zeros((out_features, in_features), dtype=np.float32)"),
    (LINEAR, "self.b = np.zeros((out_features, 1))", "self.b = np.zeros((out_features, 1), dtype=np.float32)"),
    (LINEAR, "        self.A = A\n        self.N = A.shape[0]\n        self.Ones = np.ones((self.N, 1))",
             "        A = np.asarray(A, dtype=np.float32)\n        self.A = A\n        self.N = A.shape[0]\n"
             "        self.Ones = np.ones((self.N, 1), dtype=np.float32)"),
    (LINEAR, "return A @ self.W.T + self.Ones @ self.b.T",
             "W, b = self.W.astype(np.float32), self.b.astype(np.float32)\n"
             "        return (A @ W.T + self.Ones @ b.T).astype(np.float32)"),
    (LINEAR, "        dLdA = dLdZ @ self.W\n",
             "        dLdZ = np.asarray(dLdZ, dtype=np.float32)\n        dLdA = (dLdZ @ self.W).astype(np.float32)\n"),
    (ACT, "Z = np.asarray(Z, dtype=np.float64)", "Z = np.asarray(Z, dtype=np.float32)"),
    (ACT, "self.A = 2.0 * _sigmoid(2.0 * np.asarray(Z, dtype=np.float64)) - 1.0",
          "self.A = (2.0 * _sigmoid(2.0 * np.asarray(Z, dtype=np.float32)) - 1.0).astype(np.float32)"),
    (ACT, "        self.Z = Z\n        self.A = 0.5 * Z * (1.0 + erf(Z / np.sqrt(2.0)))",
          "        Z = np.asarray(Z, dtype=np.float32)\n        self.Z = Z\n"
          "        self.A = (0.5 * Z * (1.0 + erf(Z / np.float32(np.sqrt(2.0))))).astype(np.float32)"),
    (ACT, "return dLdA * (cdf + Z * pdf)", "return (dLdA * (cdf + Z * pdf)).astype(np.float32)"),
    (ACT, "        self.Z = Z\n        self.sig = _sigmoid(self.beta * Z)",
          "        Z = np.asarray(Z, dtype=np.float32)\n        self.Z = Z\n        self.sig = _sigmoid(np.float32(self.beta) * Z)"),
    (ACT, "dAdZ = s + beta * Z * s * (1.0 - s)", "dAdZ = (s + np.float32(beta) * Z * s * (1.0 - s)).astype(np.float32)"),
    (ACT, "shifted = Z - np.max(Z, axis=1, keepdims=True)  # avoids overflow for large inputs",
          "Z = np.asarray(Z, dtype=np.float32)\n        shifted = Z - np.max(Z, axis=1, keepdims=True)"),
    (LOSS, "self.N, self.C = A.shape\n        se = (A - Y) * (A - Y)",
           "self.N, self.C = A.shape\n        A, Y = A.astype(np.float32), Y.astype(np.float32)\n"
           "        self.A, self.Y = A, Y\n        se = (A - Y) * (A - Y)"),
    (LOSS, "self.N, self.C = A.shape\n        shifted = A - np.max",
           "self.N, self.C = A.shape\n        A, Y = A.astype(np.float32), Y.astype(np.float32)\n"
           "        self.A, self.Y = A, Y\n        shifted = A - np.max"),
    (BN, "self.BW = np.ones((1, num_features))", "self.BW = np.ones((1, num_features), dtype=np.float32)"),
    (BN, "self.Bb = np.zeros((1, num_features))", "self.Bb = np.zeros((1, num_features), dtype=np.float32)"),
    (BN, "self.running_M = np.zeros((1, num_features))", "self.running_M = np.zeros((1, num_features), dtype=np.float32)"),
    (BN, "self.running_V = np.ones((1, num_features))", "self.running_V = np.ones((1, num_features), dtype=np.float32)"),
    (BN, "        if eval:\n", "        Z = np.asarray(Z, dtype=np.float32)\n        if eval:\n"),
    (BN, "        Z, M, V, N, eps = self.Z", "        dLdBZ = np.asarray(dLdBZ, dtype=np.float32)\n        Z, M, V, N, eps = self.Z"),
    (SGD, "layer.W = layer.W - self.lr * layer.dLdW", "layer.W = (layer.W - self.lr * layer.dLdW).astype(np.float32)"),
    (SGD, "layer.b = layer.b - self.lr * layer.dLdb", "layer.b = (layer.b - self.lr * layer.dLdb).astype(np.float32)"),
    (SGD, "layer.W = layer.W - self.lr * self.v_W[i]", "layer.W = (layer.W - self.lr * self.v_W[i]).astype(np.float32)"),
    (SGD, "layer.b = layer.b - self.lr * self.v_b[i]", "layer.b = (layer.b - self.lr * self.v_b[i]).astype(np.float32)"),
)

SOFTMAX_LOOP_BACKWARD = '''        N, C = dLdA.shape
        dLdZ = np.zeros((N, C))
        for i in range(N):
            a = self.A[i, :]
            J = np.zeros((C, C))
            for m in range(C):
                for n in range(C):
                    if m == n:
                        J[m, n] = a[m] * (1 - a[m])
                    else:
                        J[m, n] = -a[m] * a[n]
            dLdZ[i, :] = dLdA[i, :] @ J
        return dLdZ'''

BN_EXPLICIT_FORWARD = '''        self.Z = Z
        self.N = Z.shape[0]
        self.M = np.sum(Z, axis=0, keepdims=True) / self.N
        self.V = np.sum((Z - self.M) * (Z - self.M), axis=0, keepdims=True) / self.N'''

BN_COMPACT_BACKWARD = '''    def backward(self, dLdBZ):
        N = self.N
        self.dLdBW = np.sum(dLdBZ * self.NZ, axis=0, keepdims=True)
        self.dLdBb = np.sum(dLdBZ, axis=0, keepdims=True)
        inv_std = 1.0 / np.sqrt(self.V + self.eps)
        dLdNZ = dLdBZ * self.BW
        return inv_std / N * (N * dLdNZ - np.sum(dLdNZ, axis=0, keepdims=True)
                              - self.NZ * np.sum(dLdNZ * self.NZ, axis=0, keepdims=True))

    def _unused(self, dLdBZ):'''

CORRECT: list[Correct] = [
    Correct("float32_everywhere", FLOAT32_EDITS),
    Correct("softmax_loop_jacobians", (
        (ACT, "        A = self.A\n        return A * (dLdA - np.sum(dLdA * A, axis=1, keepdims=True))",
         SOFTMAX_LOOP_BACKWARD),)),
    Correct("swish_beta_on_forward", (
        (ACT, "    def __init__(self, beta=1.0):\n        self.beta = beta\n\n    def forward(self, Z):\n"
              "        self.Z = Z\n",
              "    def forward(self, Z, beta=1.0):\n        self.beta = beta\n        self.Z = Z\n"),)),
    Correct("sgd_momentum_lr_in_velocity", (
        (SGD, "self.v_W[i] = self.mu * self.v_W[i] + layer.dLdW", "self.v_W[i] = self.mu * self.v_W[i] + self.lr * layer.dLdW"),
        (SGD, "self.v_b[i] = self.mu * self.v_b[i] + layer.dLdb", "self.v_b[i] = self.mu * self.v_b[i] + self.lr * layer.dLdb"),
        (SGD, "layer.W = layer.W - self.lr * self.v_W[i]", "layer.W -= self.v_W[i]"),
        (SGD, "layer.b = layer.b - self.lr * self.v_b[i]", "layer.b -= self.v_b[i]")),
        why="v = mu v + lr g; W -= v"),
    Correct("sgd_in_place_updates", (
        (SGD, "layer.W = layer.W - self.lr * layer.dLdW", "layer.W -= self.lr * layer.dLdW"),
        (SGD, "layer.b = layer.b - self.lr * layer.dLdb", "layer.b -= self.lr * layer.dLdb"),
        (SGD, "self.v_W[i] = self.mu * self.v_W[i] + layer.dLdW", "self.v_W[i] *= self.mu\n                self.v_W[i] += layer.dLdW"),
        (SGD, "layer.W = layer.W - self.lr * self.v_W[i]", "layer.W -= self.lr * self.v_W[i]")),
        why="W -= lr * dLdW mutates the array an earlier step saw"),
    Correct("gelu_math_erf_vectorized", (
        (ACT, "from scipy.special import erf", "import math\n\nerf = np.vectorize(math.erf)"),)),
    Correct("tanh_exp_formula", (
        (ACT, "self.A = 2.0 * _sigmoid(2.0 * np.asarray(Z, dtype=np.float64)) - 1.0",
              "self.A = (np.exp(Z) - np.exp(-Z)) / (np.exp(Z) + np.exp(-Z))"),)),
    Correct("batchnorm_explicit_formulas", (
        (BN, "        self.Z = Z\n        self.N = Z.shape[0]\n"
             "        self.M = np.mean(Z, axis=0, keepdims=True)\n"
             "        self.V = np.mean((Z - self.M) ** 2, axis=0, keepdims=True)", BN_EXPLICIT_FORWARD),
        (BN, "    def backward(self, dLdBZ):", BN_COMPACT_BACKWARD))),
    # Issue 9 section 1: parameter-shaped values that only lack a leading 1 pass, with a note.
    Correct("bn_param_grads_without_keepdims", (
        (BN, "self.dLdBW = np.sum(dLdBZ * self.NZ, axis=0, keepdims=True)", "self.dLdBW = np.sum(dLdBZ * self.NZ, axis=0)"),
        (BN, "self.dLdBb = np.sum(dLdBZ, axis=0, keepdims=True)", "self.dLdBb = np.sum(dLdBZ, axis=0)")),
        why="(C,) gradients update a (1, C) BW and Bb correctly; the official script never reads them",
        note="BatchNorm1d.dLdBW after backward has shape (2,); the writeup's is (1, 2): accepted"),
    Correct("bn_statistics_without_keepdims", (
        (BN, "self.running_M = np.zeros((1, num_features))", "self.running_M = np.zeros(num_features)"),
        (BN, "self.running_V = np.ones((1, num_features))", "self.running_V = np.ones(num_features)"),
        (BN, "self.M = np.mean(Z, axis=0, keepdims=True)", "self.M = np.mean(Z, axis=0)"),
        (BN, "self.V = np.mean((Z - self.M) ** 2, axis=0, keepdims=True)", "self.V = np.var(Z, axis=0)")),
        why="M, V and the running statistics as (C,) vectors broadcast exactly like (1, C) rows",
        note="BatchNorm1d.running_M after one training batch has shape (2,); the writeup's is (1, 2): accepted"),
    # Issue 9 section 2: correct variants near the corners.
    Correct("swish_recomputes_sigmoid_in_backward", (
        (ACT, "Z, s, beta = self.Z, self.sig, self.beta", "Z, beta = self.Z, self.beta\n        s = 1.0 / (1.0 + np.exp(-beta * Z))"),),
        why="reads the stored beta in backward instead of a cached sigmoid"),
    Correct("bn_backward_in_terms_of_parameter_gradients", (
        (BN, "        dLdNZ = dLdBZ * self.BW\n", "        inv_std = 1.0 / np.sqrt(V + eps)\n"
             "        return self.BW * inv_std / N * (N * dLdBZ - self.dLdBb - self.NZ * self.dLdBW)\n"
             "        dLdNZ = dLdBZ * self.BW\n"),),
        why="the compact form with BW factored out; only right if BW is applied once"),
    Correct("bn_eval_stores_its_intermediates", (
        (BN, "            NZ = (Z - self.running_M) / np.sqrt(self.running_V + self.eps)\n            return self.BW * NZ + self.Bb",
             "            self.NZ = (Z - self.running_M) / np.sqrt(self.running_V + self.eps)\n"
             "            self.BZ = self.BW * self.NZ + self.Bb\n            return self.BZ"),),
        why="eval may change other attributes, just not the running statistics"),
    Correct("bn_inverse_std_in_float32", (
        (BN, "self.NZ = (Z - self.M) / np.sqrt(self.V + self.eps)",
             "self.inv_std = (1.0 / np.sqrt(self.V + self.eps)).astype(np.float32)\n"
             "        self.NZ = ((Z - self.M) * self.inv_std).astype(np.float32)"),),
        why="float32 still holds a variance near eps to ~7 digits"),
    Correct("losses_return_python_floats", (
        (LOSS, "return np.sum(se) / (self.N * self.C)", "return float(np.sum(se) / (self.N * self.C))"),
        (LOSS, "return np.sum(-Y * log_softmax) / self.N", "return float(np.sum(-Y * log_softmax) / self.N)"))),
    Correct("losses_return_0d_and_1x1_arrays", (
        (LOSS, "return np.sum(se) / (self.N * self.C)", "return np.array(np.sum(se) / (self.N * self.C))"),
        (LOSS, "return np.sum(-Y * log_softmax) / self.N",
               "ones_N, ones_C = np.ones((self.N, 1)), np.ones((self.C, 1))\n"
               "        return ones_N.T @ (-Y * log_softmax) @ ones_C / self.N")),
        why="the writeup's iota_N^T (...) iota_C gives a 1x1 matrix"),
    Correct("linear_broadcast_bias_and_sum", (
        (LINEAR, "return A @ self.W.T + self.Ones @ self.b.T", "return np.dot(A, self.W.T) + self.b.T"),
        (LINEAR, "self.dLdb = dLdZ.T @ self.Ones", "self.dLdb = np.sum(dLdZ, axis=0, keepdims=True).T"))),
    Correct("bn_backward_sums_a_zero_term_over_all_features", (
        (BN, "- (2 / N) * dLdV * np.sum(Z - M, axis=0, keepdims=True))", "- (2 / N) * dLdV * np.sum(Z - M))"),),
        why="sum(Z - M) is zero in exact arithmetic, per feature or over all of them; where V is comparable "
            "to eps, (V + eps)^-1.5 amplifies its round-off, within the conditioning the tolerance follows"),
    Correct("linear_extra_parameter_before_debug", (
        (LINEAR, "def __init__(self, in_features, out_features, debug=False):",
                 "def __init__(self, in_features, out_features, weight_init_fn=None, debug=False):"),),
        why="the official script passes debug by name: Linear(2, 3, debug=True)"),
    Correct("mlp_imports_a_base_class_from_own_nn_init", (
        (NN_HELPER, "", "class Module:\n    \"\"\"A student's base class.\"\"\"\n"),
        (NN_INIT, "from mytorch.nn.linear import Linear\n",
                  "from mytorch.nn.linear import Linear\nfrom mytorch.nn.module import Module\n"),
        (MLP, "from mytorch.nn.linear import Linear\n", "from mytorch.nn.linear import Linear\nfrom mytorch.nn import Module\n"),
        (MLP, "class MLP0:", "class MLP0(Module):")),
        why="Python runs mytorch/nn/__init__.py on that import; the official script gives full marks"),
    Correct("mlp_imports_through_packages", (
        (MLP, "from mytorch.nn.activation import ReLU\nfrom mytorch.nn.linear import Linear",
              "from mytorch.nn import Linear, ReLU"),)),
    Correct("leftover_prints_and_imports", (
        (LINEAR, "import numpy as np", "import os\nimport sys\n\nimport numpy as np"),
        (LINEAR, "        self.N = A.shape[0]\n", "        self.N = A.shape[0]\n        print('forward', A.shape, file=sys.stdout)\n"),
        (ACT, "import numpy as np", "import numpy as np\nimport scipy"))),
    # Packaging variants of the unedited reference.
    Correct("messy_tar_pycache_dsstore_appledouble", packaging="messy_tar"),
    Correct("wrapped_in_handout_folder", packaging="wrapped_tar"),
    Correct("pax_headers_with_xattrs_and_odd_modes", packaging="pax_xattr_tar"),
    Correct("gzip_tar_named_dot_tar", packaging="gzip_named_tar"),
    Correct("dot_slash_member_names", packaging="dot_slash_tar"),
    Correct("zip_archive", packaging="zip"),
    Correct("directory_path", packaging="directory"),
]


# ---------------------------------------------------------------------------------------------
# Building handins


def apply_edits(root: Path, edits) -> None:
    """Each edit replaces OLD by NEW in its file, once; an empty OLD on a file that does not exist
    creates it (a helper file of the student's own)."""
    for rel, old, new in edits:
        path = root / rel
        if not old and not path.exists():
            path.write_text(new)
            continue
        text = path.read_text()
        count = text.count(old)
        assert count == 1, f"{rel}: expected the text to replace exactly once, found it {count} times:\n{old}"
        path.write_text(text.replace(old, new))


def build_handin(dest: Path, edits=()) -> Path:
    """A copy of the reference's models/ and mytorch/ under DEST, with EDITS applied."""
    dest.mkdir(parents=True, exist_ok=True)
    for package in ("models", "mytorch"):
        shutil.copytree(REFERENCE / package, dest / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    apply_edits(dest, edits)
    return dest


def _walk(root: Path):
    for path in sorted(root.rglob("*")):
        yield path, path.relative_to(root).as_posix()


def tar_bytes(root: Path, *, prefix: str = "", fmt=tarfile.PAX_FORMAT, mode: str = "w",
              pax_headers=None, member_hook=None) -> bytes:
    """A tar of the folders under ROOT, like `tar -cvf handin.tar models mytorch`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode, format=fmt) as archive:
        for path, rel in _walk(root):
            info = archive.gettarinfo(str(path), arcname=prefix + rel)
            if pax_headers:
                info.pax_headers = dict(pax_headers)
            if member_hook:
                member_hook(info)
            if path.is_file():
                with open(path, "rb") as f:
                    archive.addfile(info, f)
            else:
                archive.addfile(info)
    return buffer.getvalue()


def zip_bytes(root: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, rel in _walk(root):
            archive.write(path, rel)
    return buffer.getvalue()


def _add_mess(root: Path) -> None:
    """__pycache__ (including a poisoned .pyc the interpreter would use if it were kept),
    .DS_Store and AppleDouble files, as found in real student tarballs."""
    poisoned = root / "poison_linear.py"
    poisoned.write_text((REFERENCE / LINEAR).read_text().replace(
        "return A @ self.W.T + self.Ones @ self.b.T", "return A @ self.W.T * 0"))
    cache = root / "mytorch" / "nn" / "__pycache__"
    cache.mkdir()
    # An unchecked-hash .pyc is used without looking at the source: a grader that kept it
    # would run the poisoned Linear.
    py_compile.compile(str(poisoned), cfile=str(cache / f"linear.{sys.implementation.cache_tag}.pyc"),
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH, doraise=True)
    poisoned.unlink()
    (cache / "activation.cpython-38.pyc").write_bytes(b"\x55\x0d\x0d\x0a" + bytes(12) + b"junk")
    (root / "models" / "__pycache__").mkdir()
    (root / "models" / "__pycache__" / "mlp.cpython-312.pyc").write_bytes(b"\xcb\x0d\x0d\x0a" + bytes(20))
    appledouble = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(64)
    for rel in (".DS_Store", "mytorch/.DS_Store", "._models", "._mytorch", "mytorch/nn/._linear.py",
                "mytorch/._.DS_Store", "mytorch/.___init__.py", "models/._mlp.py"):
        (root / rel).write_bytes(appledouble)


def _make_wrapped(root: Path, outer: Path) -> Path:
    wrapper = outer / "hw1p1_handout"
    wrapper.mkdir(parents=True)
    for package in ("models", "mytorch"):
        shutil.move(str(root / package), wrapper / package)
    (wrapper / "autograder").mkdir()
    (wrapper / "autograder" / "hw1p1_autograder.py").write_text("raise SystemExit('not the grader')\n")
    (wrapper / "README.md").write_text("# HW1P1\n")
    (wrapper / "create_tarball.sh").write_text("tar -cvf handin.tar models mytorch\n")
    return outer


def _windows_member(info: tarfile.TarInfo) -> None:
    info.uid = info.gid = 0
    info.uname, info.gname = "John Doe", ""
    info.mode = 0o777 if info.isdir() else 0o666


def package(root: Path, packaging: str, out: Path) -> Path | bytes:
    """Turn the handin folder ROOT into what `grade` receives for PACKAGING."""
    if packaging == "directory":
        return root
    if packaging == "tar":
        data = tar_bytes(root)
    elif packaging == "messy_tar":
        _add_mess(root)
        data = tar_bytes(root)
    elif packaging == "wrapped_tar":
        data = tar_bytes(_make_wrapped(root, out / "wrapped"))
    elif packaging == "pax_xattr_tar":
        data = tar_bytes(root, pax_headers={
            "LIBARCHIVE.xattr.com.apple.quarantine": "MDA4MTs2NWE0ZjQ0YztTYWZhcmk7",
            "LIBARCHIVE.xattr.com.apple.provenance": "AQIAnbOwz7Sv",
            "SCHILY.fflags": "hidden"}, member_hook=_windows_member)
    elif packaging == "gzip_named_tar":
        data = gzip.compress(tar_bytes(root))
    elif packaging == "dot_slash_tar":
        data = tar_bytes(root, prefix="./", fmt=tarfile.GNU_FORMAT)
    elif packaging == "zip":
        target = out / "handin.zip"
        target.write_bytes(zip_bytes(root))
        return target
    else:
        raise ValueError(packaging)
    target = out / "handin.tar"
    target.write_bytes(data)
    return target


def expected_score(lost) -> int:
    return sum(p for name, p in SECTION_POINTS.items() if name not in lost)


assert len({h.name for h in BUGGY + [INFINITE_LOOP]}) == len(BUGGY) + 1
assert len({h.name for h in CORRECT}) == len(CORRECT)
assert os.path.isdir(REFERENCE / "mytorch"), REFERENCE
