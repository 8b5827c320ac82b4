"""Catalogue cases learnt from real public handins (bench/real_handins.py, issue 9 section 4).

Each case reproduces, on the bundled reference, the one mistake a real handin made (named in the
comment by its manifest id in bench/real_handins.toml), in the fewest edits. The official local
autograder v3.0.1 passes every one of these sections: it never reads the value that is wrong
(running statistics, dLdBW/dLdBb, plain SGD, a fresh Linear's bias), tests a single layer or a
batch of four only, or compares with an np.allclose that broadcasts a wrong shape against the
expected one. The writeup specifies each value, so this grader must keep failing them.

CORRECT_REAL holds real handins' readings of the writeup that differ from the reference and must keep
full marks. Registered like catalogue.py's cases (same `bug` helper and dataclasses);
test_catalogue_real.py grades them with the same assertions as test_catalogue.py.
"""

from __future__ import annotations

from catalogue import BN, LINEAR, LOSS, MLPS, SGD, Buggy, Correct, bug

ACT = "mytorch/nn/activation.py"

BUGGY_REAL: list[Buggy] = [
    # remy000-5f88e48: the official eval test starts from running stats 0 and 1, where the missing
    # parentheses change nothing; after training they do.
    bug("real_bn_eval_precedence", {"Batch Norm"},
        (BN, "NZ = (Z - self.running_M) / np.sqrt(self.running_V + self.eps)",
             "NZ = Z - self.running_M / np.sqrt(self.running_V + self.eps)"),
        why="eval normalises with Z - (running_M / sqrt(running_V + eps))",
        expect="BZ = BatchNorm1d.forward(Z, eval=True)"),
    # adrita78-485ca91: eval skips normalisation, right only for fresh running statistics 0 and 1
    bug("real_bn_eval_skips_normalisation", {"Batch Norm"},
        (BN, "            return self.BW * NZ + self.Bb", "            return self.BW * Z + self.Bb"),
        expect="BZ = BatchNorm1d.forward(Z, eval=True)"),
    # sharonwx54-df1936b
    bug("real_bn_running_stats_precedence", {"Batch Norm"},
        (BN, "self.running_M = self.alpha * self.running_M + (1 - self.alpha) * self.M",
             "self.running_M = self.alpha * self.running_M + (1 - self.alpha * self.M)"),
        (BN, "self.running_V = self.alpha * self.running_V + (1 - self.alpha) * self.V",
             "self.running_V = self.alpha * self.running_V + (1 - self.alpha * self.V)"),
        why="(1 - alpha * M) instead of (1 - alpha) * M", expect="BatchNorm1d.running_M"),
    # vishakha1801-0a240d0, xiao-shi-1026-3ab061e
    bug("real_bn_parameter_gradients_swapped", {"Batch Norm"},
        (BN, ("self.dLdBW = np.sum(dLdBZ * self.NZ, axis=0, keepdims=True)\n"
              "        self.dLdBb = np.sum(dLdBZ, axis=0, keepdims=True)"),
             ("self.dLdBb = np.sum(dLdBZ * self.NZ, axis=0, keepdims=True)\n"
              "        self.dLdBW = np.sum(dLdBZ, axis=0, keepdims=True)")),
        expect="BatchNorm1d.dLdBW after backward: values differ"),
    # minhdang26403-022e82f: swapped, and dLdBb left (N, C), which must not pass as "parameter-shaped"
    bug("real_bn_dLdBb_not_summed", {"Batch Norm"},
        (BN, ("self.dLdBW = np.sum(dLdBZ * self.NZ, axis=0, keepdims=True)\n"
              "        self.dLdBb = np.sum(dLdBZ, axis=0, keepdims=True)"),
             ("self.dLdBW = np.sum(dLdBZ, axis=0)\n"
              "        self.dLdBb = np.sum(dLdBZ, axis=0) * self.NZ")),
        expect="BatchNorm1d.dLdBb after backward: expected shape (1, 2), got (4, 2)"),
    # selma0817-12e1b87: a 0-d sum over both axes; () broadcasts to (1, C), so only values can fail it
    bug("real_bn_dLdBW_summed_over_every_axis", {"Batch Norm"},
        (BN, "self.dLdBW = np.sum(dLdBZ * self.NZ, axis=0, keepdims=True)",
             "self.dLdBW = np.sum(dLdBZ * self.NZ)"),
        expect="BatchNorm1d.dLdBW after backward"),
    # xiuqi-zhu-ad082da: forward right in both modes on fresh statistics, running ones never move
    bug("real_bn_running_stats_never_updated", {"Batch Norm"},
        (BN, ("        self.running_M = self.alpha * self.running_M + (1 - self.alpha) * self.M\n"
              "        self.running_V = self.alpha * self.running_V + (1 - self.alpha) * self.V\n"), ""),
        expect="BatchNorm1d.running_M after one training batch: values differ"),
    # nebHailemariam-86a542d: the running mean averages NZ (N, C) instead of the batch mean (1, C)
    bug("real_bn_running_mean_from_NZ", {"Batch Norm"},
        (BN, "self.running_M = self.alpha * self.running_M + (1 - self.alpha) * self.M",
             "self.running_M = self.alpha * self.running_M + (1 - self.alpha) * self.NZ"),
        expect="BatchNorm1d.running_M after one training batch: expected shape (1, 2), got (4, 2)"),
    # xiuqi-zhu-ad082da: iota^T (...) iota with a (C, C) ones matrix: every entry is the loss
    bug("real_mse_loss_as_a_matrix", {"Loss"},
        (LOSS, "return np.sum(se) / (self.N * self.C)",
               "return np.ones((self.C, self.N)) @ se @ np.ones((self.C, self.C)) / (self.N * self.C)"),
        why="the official np.allclose broadcasts 6.5 against a 2x2 matrix of 6.5s",
        expect="L = MSELoss.forward(A, Y): expected a single number"),
    # LoadingBFX-0b8d1e1, LoadingBFX-130fad3: a fresh Linear cannot run forward. The MLP tests set
    # every b before use (as the official ones do), so only the Linear section notices.
    bug("real_linear_bias_out_by_in", {"Linear Layer"},
        (LINEAR, "self.b = np.zeros((out_features, 1))", "self.b = np.zeros((out_features, in_features))"),
        expect="b right after Linear(2, 3): expected shape (3, 1), got (3, 2)"),
    # artrela-93233d5, artrela-77e496a
    bug("real_linear_bias_in_by_one", {"Linear Layer"},
        (LINEAR, "self.b = np.zeros((out_features, 1))", "self.b = np.zeros((in_features, 1))"),
        expect="b right after Linear(2, 3): expected shape (3, 1), got (2, 1)"),
    # Llynoirx-b63925f (and two earlier commits): b silently becomes (out, in)
    bug("real_sgd_bias_velocity_from_dLdW", {"SGD"},
        (SGD, "self.v_b[i] = self.mu * self.v_b[i] + layer.dLdb", "self.v_b[i] = self.mu * self.v_b[i] + layer.dLdW"),
        why="the official np.allclose broadcasts the (3, 2) bias against the (3, 1) solution",
        expect="layers[0].b after step 1 (lr=0.9, momentum=0.9): expected shape (3, 1), got (3, 2)"),
    # aizabayo-6c13d4b: momentum right, plain SGD overwrites the weights with the step
    bug("real_sgd_plain_overwrites_parameters", {"SGD"},
        (SGD, "layer.W = layer.W - self.lr * layer.dLdW", "layer.W = self.lr * layer.dLdW"),
        (SGD, "layer.b = layer.b - self.lr * layer.dLdb", "layer.b = self.lr * layer.dLdb"),
        expect="(lr=0.9, momentum=0)"),
    # rkakadia9855-d4ec24f: right for the official one-layer model only
    bug("real_sgd_momentum_reads_first_layer_velocity", {"SGD"},
        (SGD, "self.v_W[i] = self.mu * self.v_W[i] + layer.dLdW", "self.v_W[i] = self.mu * self.v_W[0] + layer.dLdW"),
        expect="operands could not be broadcast"),
    # nebHailemariam-86a542d: activations return np.squeeze(A); a batch of one loses its batch axis
    bug("real_relu_squeezes_its_output", {"Activation"} | MLPS,
        (ACT, "        self.A = np.maximum(0, Z)\n        return self.A",
              "        self.A = np.maximum(0, Z)\n        return np.squeeze(self.A)"),
        expect="A = ReLU.forward(Z): expected shape (1, 6), got (6,)"),
]


CORRECT_REAL: list[Correct] = [
    # apatnaik0-d6ea9f7 (S26, 100 with the official script): no constructor; beta is an argument of
    # forward AND backward, as the writeup prints them: swish.forward(Z, beta) and
    # swish.backward(dLdA, Z, beta). A test that gives forward a beta must give backward the same.
    Correct("real_swish_beta_argument_of_forward_and_backward", (
        (ACT, ("    def __init__(self, beta=1.0):\n        self.beta = beta\n\n"
               "    def forward(self, Z):\n        self.Z = Z\n        self.sig = _sigmoid(self.beta * Z)\n"),
              ("    def forward(self, Z, beta=1.0):\n        self.Z = Z\n        self.sig = _sigmoid(beta * Z)\n")),
        (ACT, ("    def backward(self, dLdA):\n        Z, s, beta = self.Z, self.sig, self.beta\n"),
              ("    def backward(self, dLdA, beta=1.0):\n        Z = self.Z\n        s = _sigmoid(beta * Z)\n"))),
        why="beta passed to both methods, never stored"),
]
