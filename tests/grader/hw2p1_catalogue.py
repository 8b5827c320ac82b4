"""A catalogue of HW2P1 (CNN) handins: one real mistake each, and correct-but-different ones.

Every handin is the bundled HW2P1 reference (mytorch_reference_hw2/{models,mytorch}) with a few text
replacements (file, old, new), each `old` occurring exactly once in its file, so a change of the
reference makes the catalogue fail loudly instead of silently testing the unedited reference.

`Buggy.lost` is the exact set of sections the handin must lose. It follows from which student
classes each section runs, since the handout composes its classes:
- Conv1d = padding + Conv1d_stride1 + Downsample1d; Conv2d likewise with the 2-d classes;
- ConvTranspose1d/2d = Upsample1d/2d + Conv1d_stride1/Conv2d_stride1;
- MaxPool2d/MeanPool2d = the stride-1 pool + Downsample2d;
- both scanning MLPs are Conv1d layers, ReLU and Flatten (their weights come without biases, and
  they never use padding), graded on their forward only and on one row, as every local runner does
  (the F25 handout's own CNN_SimpleScanningMLP.backward, marked "Do not modify", reads dLdA before
  assigning it, and no runner since F24 calls either backward);
- the stride-1 and strided convolutions and the CNN run a second round on the same object;
  ConvTranspose and the scanning MLPs do not;
- the CNN model is Conv1d layers, activations, Flatten and Linear (no padding either).
A mistake that only shows in a second round on the same object (state kept from the first call) is
lost only in the sections whose tests run a second round; a mistake in a part of a class that a
section never reaches is not lost there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from catalogue import Buggy, Correct, apply_edits

REPO = Path(__file__).resolve().parents[2]
HW2_REFERENCE = REPO / "mytorch_reference_hw2"

# The suite's sections (grader/suites/hw2p1.py): the local autograder's, with its four 2.5-point
# resampling tests graded as two 5-point sections.
SECTION_POINTS = {
    "Resampling 1d": 5, "Resampling 2d": 5, "Conv1d_stride1": 10, "Conv1d": 5, "Conv2d_stride1": 10,
    "Conv2d": 5, "convTranspose1d": 5, "convTranspose2d": 5, "MaxPool2d_stride1": 10, "MaxPool2d": 5,
    "MeanPool2d_stride1": 10, "MeanPool2d": 5, "CNN as Simple Scanning MLP": 5,
    "CNN as Distributed Scanning MLP": 10, "Build a CNN Model": 5,
}
D1 = U1 = "Resampling 1d"
D2 = U2 = "Resampling 2d"
C1S1, C1, C2S1, C2 = "Conv1d_stride1", "Conv1d", "Conv2d_stride1", "Conv2d"
CT1, CT2 = "convTranspose1d", "convTranspose2d"
MPS1, MP, APS1, AP = "MaxPool2d_stride1", "MaxPool2d", "MeanPool2d_stride1", "MeanPool2d"
SCAN, DIST, CNN = "CNN as Simple Scanning MLP", "CNN as Distributed Scanning MLP", "Build a CNN Model"
SCANS = {SCAN, DIST}
# Everything whose forward runs Conv1d (with a stride above 1 somewhere) or Conv1d_stride1, and
# everything whose backward does (the scanning MLPs are graded on their forward only).
ON_CONV1D = {C1, SCAN, DIST, CNN}
ON_CONV1D_STRIDE1 = {C1S1, CT1} | ON_CONV1D
BACK_THROUGH_CONV1D = ON_CONV1D - SCANS
BACK_THROUGH_CONV1D_STRIDE1 = ON_CONV1D_STRIDE1 - SCANS

RES = "mytorch/nn/resampling.py"
CONV1 = "mytorch/nn/Conv1d.py"
CONV2 = "mytorch/nn/Conv2d.py"
CT = "mytorch/nn/ConvTranspose.py"
POOL = "mytorch/nn/pool.py"
FLAT = "mytorch/flatten.py"
SCANPY = "models/mlp_scan.py"
CNNPY = "models/cnn.py"


def bug(name: str, lost, *edits, why: str = "", expect: str = "") -> Buggy:
    lost = frozenset(lost)
    assert lost <= SECTION_POINTS.keys(), lost - SECTION_POINTS.keys()
    return Buggy(name, tuple(edits), lost, why, expect)


def build_hw2_handin(dest: Path, edits=()) -> Path:
    """DEST/models and DEST/mytorch: the HW2P1 reference with EDITS applied."""
    dest.mkdir(parents=True, exist_ok=True)
    for package in ("models", "mytorch"):
        shutil.copytree(HW2_REFERENCE / package, dest / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    apply_edits(dest, edits)
    return dest


# Mistakes inside the stride-1 convolutions and pools are made in a student-style implementation of
# their methods (ours, written here; correct as it stands: see the *_as_written variants), which
# replaces the reference's own, so the reference may compute those classes however it likes.
STUDENT_C1S1 = '''    def forward(self, A):
        self.A = A
        windows = np.lib.stride_tricks.sliding_window_view(A, self.kernel_size, axis=2)  # (N, C, W_out, K)
        return np.einsum("ncik,ock->noi", windows, self.W) + self.b[None, :, None]

    def backward(self, dLdZ):
        K = self.kernel_size
        windows = np.lib.stride_tricks.sliding_window_view(self.A, K, axis=2)
        self.dLdW = np.einsum("noi,ncik->ock", dLdZ, windows)
        self.dLdb = np.sum(dLdZ, axis=(0, 2))
        padded = np.pad(dLdZ, ((0, 0), (0, 0), (K - 1, K - 1)))
        grad_windows = np.lib.stride_tricks.sliding_window_view(padded, K, axis=2)  # (N, C_out, W_in, K)
        return np.einsum("nojk,ock->ncj", grad_windows, self.W[:, :, ::-1])
'''
STUDENT_C2S1 = '''    def forward(self, A):
        self.A = A
        K = self.kernel_size
        windows = np.lib.stride_tricks.sliding_window_view(A, (K, K), axis=(2, 3))  # (N, C, H_out, W_out, K, K)
        return np.einsum("ncijkl,ockl->noij", windows, self.W, optimize=True) + self.b[None, :, None, None]

    def backward(self, dLdZ):
        K = self.kernel_size
        windows = np.lib.stride_tricks.sliding_window_view(self.A, (K, K), axis=(2, 3))
        self.dLdW = np.einsum("noij,ncijkl->ockl", dLdZ, windows, optimize=True)
        self.dLdb = np.sum(dLdZ, axis=(0, 2, 3))
        padded = np.pad(dLdZ, ((0, 0), (0, 0), (K - 1, K - 1), (K - 1, K - 1)))
        grad_windows = np.lib.stride_tricks.sliding_window_view(padded, (K, K), axis=(2, 3))
        return np.einsum("noijkl,ockl->ncij", grad_windows, self.W[:, :, ::-1, ::-1], optimize=True)
'''
STUDENT_MAXPOOL_S1 = '''class MaxPool2d_stride1:
    def __init__(self, kernel):
        self.kernel = kernel

    def forward(self, A):
        K = self.kernel
        self.A = A
        N, C, H, W = A.shape
        windows = np.lib.stride_tricks.sliding_window_view(A, (K, K), axis=(2, 3))
        flat = windows.reshape(N, C, H - K + 1, W - K + 1, K * K)
        self.argmax = np.argmax(flat, axis=-1)
        return np.max(flat, axis=-1)

    def backward(self, dLdZ):
        K = self.kernel
        H_out, W_out = dLdZ.shape[2:]
        dLdA = np.zeros(self.A.shape)
        for k in range(K):
            for l in range(K):
                dLdA[:, :, k:k + H_out, l:l + W_out] += dLdZ * (self.argmax == k * K + l)
        return dLdA
'''
STUDENT_MEANPOOL_S1 = '''class MeanPool2d_stride1:
    def __init__(self, kernel):
        self.kernel = kernel

    def forward(self, A):
        K = self.kernel
        self.A = A
        return np.lib.stride_tricks.sliding_window_view(A, (K, K), axis=(2, 3)).mean(axis=(-2, -1))

    def backward(self, dLdZ):
        K = self.kernel
        H_out, W_out = dLdZ.shape[2:]
        dLdA = np.zeros(self.A.shape)
        for k in range(K):
            for l in range(K):
                dLdA[:, :, k:k + H_out, l:l + W_out] += dLdZ / (K * K)
        return dLdA
'''
STUDENT = {"__C1S1_BODY__": (CONV1, STUDENT_C1S1), "__C2S1_BODY__": (CONV2, STUDENT_C2S1),
           "__MAXPOOL_S1__": (POOL, STUDENT_MAXPOOL_S1), "__MEANPOOL_S1__": (POOL, STUDENT_MEANPOOL_S1)}


def student(placeholder: str, *changes: tuple[str, str]):
    """An edit putting the student-style code for PLACEHOLDER in place, with CHANGES (old, new) made in it."""
    rel, text = STUDENT[placeholder]
    for old, new in changes:
        assert text.count(old) == 1, f"{placeholder}: {old!r} occurs {text.count(old)} times"
        text = text.replace(old, new)
    return (rel, placeholder, text)


C1S1_FORWARD = 'return np.einsum("ncik,ock->noi", windows, self.W) + self.b[None, :, None]'
C1S1_DLDW = 'self.dLdW = np.einsum("noi,ncik->ock", dLdZ, windows)'
C1S1_DLDA = 'return np.einsum("nojk,ock->ncj", grad_windows, self.W[:, :, ::-1])'
C2S1_FORWARD = 'return np.einsum("ncijkl,ockl->noij", windows, self.W, optimize=True) + self.b[None, :, None, None]'
C2S1_DLDW = 'self.dLdW = np.einsum("noij,ncijkl->ockl", dLdZ, windows, optimize=True)'
C2S1_DLDA = 'return np.einsum("noijkl,ockl->ncij", grad_windows, self.W[:, :, ::-1, ::-1], optimize=True)'

BUGGY: list[Buggy] = [
    # -- resampling: every class built on the one that is wrong loses too
    bug("upsample1d_width_k_times_w", {U1, CT1},
        (RES, "        return _upsample(A, self.upsampling_factor, (-1,))",
              ("        k = self.upsampling_factor\n"
              "        Z = np.zeros((*A.shape[:-1], k * A.shape[-1]))\n        Z[..., ::k] = A\n        return Z")),
        why="output width kW instead of k(W - 1) + 1: a trailing run of zeros"),
    bug("upsample_shared_helper_width_k_times_w", {U1, CT1, U2, CT2},
        (RES, "        shape[axis] = k * (shape[axis] - 1) + 1\n", "        shape[axis] = k * shape[axis]\n"),
        why="the same mistake in a helper both Upsample classes call"),
    bug("upsample1d_backward_offset", {U1, CT1},
        (RES, "        return dLdZ[_every(self.upsampling_factor, dLdZ.ndim, (-1,))]",
              "        k = self.upsampling_factor\n        return dLdZ[..., k - 1::k] if k > 1 else dLdZ"),
        why="the gradient read from the inserted zeros' positions"),
    bug("downsample1d_keeps_last_of_each_block", {D1} | ON_CONV1D,
        (RES, "        return A[_every(self.downsampling_factor, A.ndim, (-1,))]",
              "        k = self.downsampling_factor\n        return A[..., k - 1::k]"),
        (RES, "        dLdA[_every(self.downsampling_factor, dLdZ.ndim, (-1,))] = dLdZ\n        return dLdA\n\n\nclass Upsample2d",
              "        k = self.downsampling_factor\n        dLdA[..., k - 1::k] = dLdZ\n        return dLdA\n\n\nclass Upsample2d")),
    bug("downsample1d_backward_width_from_output", {D1, C1, CNN},
        (RES, ("        dLdA = np.zeros(self.input_shape, dtype=dLdZ.dtype)\n"
              "        dLdA[_every(self.downsampling_factor, dLdZ.ndim, (-1,))] = dLdZ\n"),
              ("        k = self.downsampling_factor\n"
              "        dLdA = np.zeros((*dLdZ.shape[:-1], k * (dLdZ.shape[-1] - 1) + 1), dtype=dLdZ.dtype)\n"
              "        dLdA[..., ::k] = dLdZ\n")),
        why="the input width rebuilt as k(W_out - 1) + 1, wrong whenever k does not divide W - 1 (the "
            "CNN's width-40 case does, the scanning MLPs' widths 128 and 40 do not)"),
    bug("upsample2d_only_along_width", {U2, CT2},
        (RES, "        return _upsample(A, self.upsampling_factor, (-2, -1))",
              "        return _upsample(A, self.upsampling_factor, (-1,))"),
        (RES, "        return dLdZ[_every(self.upsampling_factor, dLdZ.ndim, (-2, -1))]",
              "        return dLdZ[_every(self.upsampling_factor, dLdZ.ndim, (-1,))]")),
    bug("downsample2d_backward_returns_dLdZ_shape", {D2, C2, MP, AP},
        (RES, ("        dLdA = np.zeros(self.input_shape, dtype=dLdZ.dtype)\n"
              "        dLdA[_every(self.downsampling_factor, dLdZ.ndim, (-2, -1))] = dLdZ\n"),
              "        dLdA = np.zeros_like(dLdZ)\n        dLdA[...] = dLdZ\n"),
        why="backward returns an array of the output's shape"),
    bug("downsample2d_rows_only", {D2, C2, MP, AP},
        (RES, "        return A[_every(self.downsampling_factor, A.ndim, (-2, -1))]",
              "        return A[_every(self.downsampling_factor, A.ndim, (-2,))]"),
        (RES, "        dLdA[_every(self.downsampling_factor, dLdZ.ndim, (-2, -1))] = dLdZ",
              "        dLdA[_every(self.downsampling_factor, dLdZ.ndim, (-2,))] = dLdZ")),

    # -- Conv1d_stride1 (used by Conv1d, ConvTranspose1d, the scanning MLPs and the CNN)
    bug("conv1d_backward_kernel_not_flipped", BACK_THROUGH_CONV1D_STRIDE1,
        student("__C1S1_BODY__", (C1S1_DLDA, 'return np.einsum("nojk,ock->ncj", grad_windows, self.W)')),
        why="dLdA correlates the padded dLdZ with W instead of the flipped W"),
    bug("conv1d_forward_kernel_flipped", ON_CONV1D_STRIDE1,
        student("__C1S1_BODY__",
                (C1S1_FORWARD, 'return np.einsum("ncik,ock->noi", windows, self.W[:, :, ::-1]) + self.b[None, :, None]'),
                (C1S1_DLDW, 'self.dLdW = np.einsum("noi,ncik->ock", dLdZ, windows)[:, :, ::-1]'),
                (C1S1_DLDA, 'return np.einsum("nojk,ock->ncj", grad_windows, self.W)')),
        why="a true convolution (kernel flipped) instead of PyTorch's cross-correlation, consistently"),
    bug("conv1d_dLdW_first_sample_only", BACK_THROUGH_CONV1D_STRIDE1,
        student("__C1S1_BODY__", (C1S1_DLDW, 'self.dLdW = np.einsum("oi,cik->ock", dLdZ[0], windows[0])')),
        why="dLdW not summed over the batch"),
    bug("conv1d_dLdW_averaged_over_batch", BACK_THROUGH_CONV1D_STRIDE1,
        student("__C1S1_BODY__", (C1S1_DLDW, 'self.dLdW = np.einsum("noi,ncik->ock", dLdZ, windows) / dLdZ.shape[0]')),
        why="the batch mean instead of the sum"),
    bug("conv1d_dLdb_not_summed_over_positions", {C1S1, C1, CT1, CNN},
        student("__C1S1_BODY__", ("self.dLdb = np.sum(dLdZ, axis=(0, 2))", "self.dLdb = np.sum(dLdZ, axis=0)")),
        why="dLdb of shape (C_out, W_out)"),
    bug("conv1d_forward_without_bias", {C1S1, C1, CT1, CNN},
        student("__C1S1_BODY__", (C1S1_FORWARD, 'return np.einsum("ncik,ock->noi", windows, self.W)')),
        why="the scanning MLPs' biases are zero, so only the sections with biases notice"),
    bug("conv1d_state_kept_from_first_call", {C1S1, C1, CNN},
        student("__C1S1_BODY__", ("    def forward(self, A):\n        self.A = A\n",
                                  "    def forward(self, A):\n        if not hasattr(self, 'A'):\n            self.A = A\n")),
        why="backward uses the input of the first forward call; wrong from the second round on"),
    bug("conv1d_backward_pads_by_K", BACK_THROUGH_CONV1D_STRIDE1,
        student("__C1S1_BODY__", ("(K - 1, K - 1)))", "(K, K)))")),
        why="dLdA two entries too wide"),
    bug("conv1d_padding_forgotten_in_backward", {C1},
        (CONV1, "        p = self.pad\n        return dLdA[:, :, p:dLdA.shape[2] - p]", "        return dLdA"),
        why="dLdA keeps the padded width; only the Conv1d tests use padding"),
    bug("conv1d_padding_forgotten_in_forward", {C1},
        (CONV1, "        padded = np.pad(A, ((0, 0), (0, 0), (p, p)))\n        return self.downsample1d.forward(self.conv1d_stride1.forward(padded))",
                "        return self.downsample1d.forward(self.conv1d_stride1.forward(A))")),
    bug("conv1d_padding_on_one_side", {C1},
        (CONV1, "padded = np.pad(A, ((0, 0), (0, 0), (p, p)))", "padded = np.pad(A, ((0, 0), (0, 0), (0, 2 * p)))"),
        (CONV1, "return dLdA[:, :, p:dLdA.shape[2] - p]", "return dLdA[:, :, :dLdA.shape[2] - 2 * p]")),
    bug("conv1d_stride_only_in_forward", BACK_THROUGH_CONV1D,
        (CONV1, "dLdA = self.conv1d_stride1.backward(self.downsample1d.backward(dLdZ))",
                "dLdA = self.conv1d_stride1.backward(dLdZ)"),
        why="backward skips the downsampling's backward"),

    # -- Conv2d
    bug("conv2d_backward_flipped_along_one_axis", {C2S1, C2, CT2},
        student("__C2S1_BODY__", (C2S1_DLDA, C2S1_DLDA.replace("[:, :, ::-1, ::-1]", "[:, :, ::-1, :]")))),
    bug("conv2d_dLdW_first_sample_only", {C2S1, C2, CT2},
        student("__C2S1_BODY__", (C2S1_DLDW, 'self.dLdW = np.einsum("oij,cijkl->ockl", dLdZ[0], windows[0], optimize=True)'))),
    bug("conv2d_kernel_transposed", {C2S1, C2, CT2},
        student("__C2S1_BODY__",
                (C2S1_FORWARD, C2S1_FORWARD.replace('"ncijkl,ockl->noij"', '"ncijkl,oclk->noij"')),
                (C2S1_DLDW, C2S1_DLDW.replace('"noij,ncijkl->ockl"', '"noij,ncijkl->oclk"')),
                (C2S1_DLDA, C2S1_DLDA.replace('"noijkl,ockl->ncij"', '"noijkl,oclk->ncij"'))),
        why="rows and columns of the kernel exchanged, consistently in forward and backward"),
    bug("conv2d_padding_forgotten_in_backward", {C2},
        (CONV2, "        p = self.pad\n        return dLdA[:, :, p:dLdA.shape[2] - p, p:dLdA.shape[3] - p]",
                "        return dLdA")),
    bug("conv2d_stride_only_in_forward", {C2},
        (CONV2, "dLdA = self.conv2d_stride1.backward(self.downsample2d.backward(dLdZ))",
                "dLdA = self.conv2d_stride1.backward(dLdZ)")),
    bug("conv2d_dLdb_mean_over_positions", {C2S1, C2, CT2},
        student("__C2S1_BODY__", ("self.dLdb = np.sum(dLdZ, axis=(0, 2, 3))", "self.dLdb = dLdZ.mean(axis=(2, 3)).sum(axis=0)"))),

    # -- ConvTranspose
    bug("convtranspose1d_backward_wrong_order", {CT1},
        (CT, "        return self.upsample1d.backward(self.conv1d_stride1.backward(dLdZ))",
             "        return self.conv1d_stride1.backward(self.upsample1d.backward(dLdZ))"),
        why="the layers' backwards taken in forward order"),
    bug("convtranspose2d_backward_skips_upsampling", {CT2},
        (CT, "        return self.upsample2d.backward(self.conv2d_stride1.backward(dLdZ))",
             "        return self.conv2d_stride1.backward(dLdZ)")),

    # -- pooling
    bug("maxpool_backward_assigns_instead_of_adding", {MPS1, MP},
        student("__MAXPOOL_S1__", ("dLdA[:, :, k:k + H_out, l:l + W_out] += dLdZ * (self.argmax == k * K + l)",
                                   ("hit = self.argmax == k * K + l\n"
                                   "                dLdA[:, :, k:k + H_out, l:l + W_out][hit] = dLdZ[hit]"))),
        why="overlapping windows that share a maximum keep one gradient instead of their sum"),
    bug("maxpool_first_column_only", {MPS1, MP},
        student("__MAXPOOL_S1__", ("return np.max(flat, axis=-1)", "return np.max(flat[..., ::K], axis=-1)")),
        why="the maximum over the window's first column only"),
    bug("maxpool2d_ignores_stride", {MP},
        (POOL, "        return self.downsample2d.forward(self.maxpool2d_stride1.forward(A))",
               "        return self.maxpool2d_stride1.forward(A)"),
        (POOL, "        return self.maxpool2d_stride1.backward(self.downsample2d.backward(dLdZ))",
               "        return self.maxpool2d_stride1.backward(dLdZ)")),
    bug("meanpool_backward_not_divided", {APS1, AP},
        student("__MEANPOOL_S1__", ("+= dLdZ / (K * K)", "+= dLdZ"))),
    bug("meanpool_backward_divided_by_K", {APS1, AP},
        student("__MEANPOOL_S1__", ("+= dLdZ / (K * K)", "+= dLdZ / K"))),
    bug("meanpool2d_backward_skips_downsampling", {AP},
        (POOL, "        return self.meanpool2d_stride1.backward(self.downsample2d.backward(dLdZ))",
               "        return self.meanpool2d_stride1.backward(dLdZ)")),

    # -- Flatten, the scanning MLPs, the CNN
    bug("flatten_time_major", {SCAN, DIST, CNN},
        (FLAT, "        return A.reshape(A.shape[0], -1)", "        return A.transpose(0, 2, 1).reshape(A.shape[0], -1)"),
        (FLAT, "        return dLdZ.reshape(self.input_shape)",
               "        N, C, W = self.input_shape\n        return dLdZ.reshape(N, W, C).transpose(0, 2, 1)"),
        why="time-major order: the scanning MLPs' outputs and the CNN's Linear see the features permuted"),
    bug("simple_scan_kernel_channel_major", {SCAN},
        (SCANPY, "        self.conv1.conv1d_stride1.W = _kernel(w1, 8, 8, 24)",
                 "        self.conv1.conv1d_stride1.W = w1.T.reshape(8, 24, 8)"),
        why="the MLP's 192 inputs read as channel-major; they are time-major"),
    bug("simple_scan_stride_8", {SCAN},
        (SCANPY, "        self.conv1 = Conv1d(24, 8, 8, 4)", "        self.conv1 = Conv1d(24, 8, 8, 8)")),
    bug("distributed_scan_first_stride_1", {DIST},
        (SCANPY, "        self.conv1 = Conv1d(24, 2, 2, 2)", "        self.conv1 = Conv1d(24, 2, 2, 1)")),
    bug("distributed_scan_wrong_block", {DIST},
        (SCANPY, "_kernel(w2[:4, :8], 8, 2, 2)", "_kernel(w2[4:8, :8], 8, 2, 2)"),
        why="the second layer's shared block taken from the rows of the second group of inputs"),
    bug("cnn_backward_skips_activation", {CNN},
        (CNNPY, "            grad = conv.backward(activation.backward(grad))", "            grad = conv.backward(grad)")),
    bug("cnn_backward_uses_mean_loss_gradient", {CNN},
        (CNNPY, "        grad = self.linear_layer.backward(self.criterion.backward())",
                "        grad = self.linear_layer.backward(self.criterion.backward() / len(labels))")),
]


C1S1_LOOPS = '''    def forward(self, A):
        self.A = A
        N, C, W = A.shape
        K = self.kernel_size
        Z = np.zeros((N, self.out_channels, W - K + 1))
        for i in range(W - K + 1):
            Z[:, :, i] = np.tensordot(A[:, :, i:i + K], self.W, axes=([1, 2], [1, 2]))
        return Z + self.b.reshape(1, -1, 1)

    def backward(self, dLdZ):
        N, C, W = self.A.shape
        K = self.kernel_size
        self.dLdW = np.zeros(self.W.shape)
        self.dLdb = np.zeros(self.b.shape)
        dLdA = np.zeros(self.A.shape)
        for n in range(N):
            for i in range(dLdZ.shape[2]):
                for o in range(self.out_channels):
                    self.dLdW[o] += dLdZ[n, o, i] * self.A[n, :, i:i + K]
                    self.dLdb[o] += dLdZ[n, o, i]
                    dLdA[n, :, i:i + K] += dLdZ[n, o, i] * self.W[o]
        return dLdA
'''

C1S1_SCIPY = '''    def forward(self, A):
        from scipy import signal
        self.A = A
        N, C, W = A.shape
        Z = np.zeros((N, self.out_channels, W - self.kernel_size + 1))
        for n in range(N):
            for o in range(self.out_channels):
                Z[n, o] = signal.correlate(A[n], self.W[o], mode="valid")[0] + self.b[o]
        return Z

    def backward(self, dLdZ):
        from scipy import signal
        N, C, W = self.A.shape
        self.dLdW = np.zeros(self.W.shape)
        self.dLdb = dLdZ.sum(axis=(0, 2))
        dLdA = np.zeros(self.A.shape)
        for n in range(N):
            for o in range(self.out_channels):
                self.dLdW[o] += signal.correlate(self.A[n], dLdZ[n, o][None, :], mode="valid")
                dLdA[n] += signal.convolve(dLdZ[n, o][None, :], self.W[o], mode="full")
        return dLdA
'''

C2S1_AS_STRIDED = '''    def forward(self, A):
        self.A = A
        N, C, H, W = A.shape
        K = self.kernel_size
        s = A.strides
        windows = np.lib.stride_tricks.as_strided(
            A, (N, C, H - K + 1, W - K + 1, K, K), (s[0], s[1], s[2], s[3], s[2], s[3]), writeable=False)
        return np.tensordot(windows, self.W, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2) \\
            + self.b[None, :, None, None]

    def backward(self, dLdZ):
        N, C, H, W = self.A.shape
        K = self.kernel_size
        s = self.A.strides
        windows = np.lib.stride_tricks.as_strided(
            self.A, (N, C, H - K + 1, W - K + 1, K, K), (s[0], s[1], s[2], s[3], s[2], s[3]), writeable=False)
        self.dLdW = np.tensordot(dLdZ, windows, axes=([0, 2, 3], [0, 2, 3]))
        self.dLdb = dLdZ.sum(axis=(0, 2, 3))
        padded = np.ascontiguousarray(np.pad(dLdZ, ((0, 0), (0, 0), (K - 1, K - 1), (K - 1, K - 1))))
        p = padded.strides
        grad_windows = np.lib.stride_tricks.as_strided(
            padded, (N, padded.shape[1], H, W, K, K), (p[0], p[1], p[2], p[3], p[2], p[3]), writeable=False)
        flipped = self.W[:, :, ::-1, ::-1]
        return np.tensordot(grad_windows, flipped, axes=([1, 4, 5], [0, 2, 3])).transpose(0, 3, 1, 2)
'''

POOL_LOOPS_MAX = '''class MaxPool2d_stride1:
    def __init__(self, kernel):
        self.kernel = kernel

    def forward(self, A):
        K = self.kernel
        N, C, H, W = A.shape
        self.A = A
        Z = np.zeros((N, C, H - K + 1, W - K + 1))
        self.where = np.zeros((N, C, H - K + 1, W - K + 1, 2), dtype=int)
        for i in range(H - K + 1):
            for j in range(W - K + 1):
                window = A[:, :, i:i + K, j:j + K].reshape(N, C, K * K)
                best = window.argmax(axis=2)
                Z[:, :, i, j] = window.max(axis=2)
                self.where[:, :, i, j, 0] = i + best // K
                self.where[:, :, i, j, 1] = j + best % K
        return Z

    def backward(self, dLdZ):
        N, C, H_out, W_out = dLdZ.shape
        dLdA = np.zeros(self.A.shape)
        for n in range(N):
            for c in range(C):
                for i in range(H_out):
                    for j in range(W_out):
                        r, s = self.where[n, c, i, j]
                        dLdA[n, c, r, s] += dLdZ[n, c, i, j]
        return dLdA
'''

CORRECT: list[Correct] = [
    Correct("conv1d_stride1_as_written", (student("__C1S1_BODY__"),),
            why="the student-style Conv1d_stride1 the mistakes above are made in, unchanged: einsum over "
                "sliding windows"),
    Correct("conv2d_stride1_as_written", (student("__C2S1_BODY__"),), why="the same for Conv2d_stride1"),
    Correct("maxpool_stride1_as_written", (student("__MAXPOOL_S1__"),), why="argmax over flattened windows"),
    Correct("meanpool_stride1_as_written", (student("__MEANPOOL_S1__"),), why="window means, looped backward"),
    Correct("conv1d_explicit_loops", ((CONV1, "__C1S1_BODY__", C1S1_LOOPS),),
            why="plain loops over positions, samples and output channels"),
    Correct("conv1d_scipy_signal", ((CONV1, "__C1S1_BODY__", C1S1_SCIPY),),
            why="scipy.signal.correlate for forward and dLdW, scipy.signal.convolve for dLdA"),
    Correct("conv2d_as_strided", ((CONV2, "__C2S1_BODY__", C2S1_AS_STRIDED),),
            why="windows by np.lib.stride_tricks.as_strided, contractions by tensordot"),
    Correct("maxpool_float32",
            (student("__MAXPOOL_S1__", ("sliding_window_view(A, (K, K)", "sliding_window_view(A.astype(np.float32), (K, K)")),),
            why="max pooling in float32: every output is an input rounded to float32 (relative error below "
                "6e-8, no sums); a float32 convolution's sums can cancel to values that fail atol=1e-8"),
    Correct("maxpool_explicit_loops", ((POOL, "__MAXPOOL_S1__", POOL_LOOPS_MAX),),
            why="loops over output positions, argmax per window kept as coordinates"),
    Correct("meanpool_backward_by_upsampled_ones",
            (student("__MEANPOOL_S1__", (
                ("        H_out, W_out = dLdZ.shape[2:]\n        dLdA = np.zeros(self.A.shape)\n"
                "        for k in range(K):\n            for l in range(K):\n"
                "                dLdA[:, :, k:k + H_out, l:l + W_out] += dLdZ / (K * K)\n        return dLdA"),
                ("        padded = np.pad(dLdZ, ((0, 0), (0, 0), (K - 1, K - 1), (K - 1, K - 1))) / (K * K)\n"
                "        return np.lib.stride_tricks.sliding_window_view(padded, (K, K), axis=(2, 3)).sum(axis=(-2, -1))"))),),
            why="dLdA as a full correlation of dLdZ with a K x K box of 1/K^2"),
    Correct("resampling_with_explicit_index_arrays",
            ((RES, "        return A[_every(self.downsampling_factor, A.ndim, (-1,))]",
                   "        return np.take(A, np.arange(0, A.shape[-1], self.downsampling_factor), axis=-1)"),
             (RES, "        return dLdZ[_every(self.upsampling_factor, dLdZ.ndim, (-1,))]",
                   "        return np.take(dLdZ, np.arange(0, dLdZ.shape[-1], self.upsampling_factor), axis=-1)")),
            why="np.take with index arrays (copies instead of views)"),
    Correct("conv1d_padding_by_assignment",
            ((CONV1, "        padded = np.pad(A, ((0, 0), (0, 0), (p, p)))",
                     ("        padded = np.zeros((A.shape[0], A.shape[1], A.shape[2] + 2 * p))\n"
                     "        padded[:, :, p:p + A.shape[2]] = A")),),
            why="padding by writing into a zero array"),
    Correct("flatten_stores_only_dimensions",
            ((FLAT, "        self.input_shape = A.shape\n        return A.reshape(A.shape[0], -1)",
                    "        self.N, self.C, self.W = A.shape\n        return np.reshape(A, (self.N, self.C * self.W), order=\"C\")"),
             (FLAT, "        return dLdZ.reshape(self.input_shape)", "        return np.reshape(dLdZ, (self.N, self.C, self.W))"),
             (FLAT, '"""Flatten: (N, C, W) -> (N, C * W), channel-major (row-major reshape); backward restores the shape."""',
                    '"""Flatten, keeping the three dimensions."""\nimport numpy as np')),
            why="the shape kept as three attributes, np.reshape with an explicit order"),
    Correct("cnn_width_by_dry_run",
            ((CNNPY, ("        width = input_width\n        for kernel, stride in zip(kernel_sizes, strides, strict=True):\n"
                     "            width = (width - kernel) // stride + 1\n"),
                     ("        import numpy as np\n        probe = np.zeros((1, num_input_channels, input_width))\n"
                     "        for conv in self.convolutional_layers:\n            probe = conv.forward(probe)\n"
                     "        width = probe.shape[2]\n")),),
            why="the Linear layer's input size found by a forward pass of zeros"),
]


def _class_body(text: str, cls: str) -> str:
    """From `class CLS` to the next top-level class (exclusive) - the part a placeholder edit replaces."""
    start = text.index(f"class {cls}")
    end = text.find("\nclass ", start + 1)
    return text[start:end if end != -1 else len(text)]


def _methods(text: str, cls: str) -> str:
    """The forward and backward methods of CLS, as they stand in the reference."""
    body = _class_body(text, cls)
    return body[body.index("    def forward"):].rstrip("\n") + "\n"


def resolve(edits):
    """Placeholders stand for a whole class or both methods of a class in the reference."""
    texts = {rel: (HW2_REFERENCE / rel).read_text() for rel in {CONV1, CONV2, POOL}}
    placeholders = {
        "__C1S1_BODY__": lambda: _methods(texts[CONV1], "Conv1d_stride1"),
        "__C2S1_BODY__": lambda: _methods(texts[CONV2], "Conv2d_stride1"),
        "__MAXPOOL_S1__": lambda: _class_body(texts[POOL], "MaxPool2d_stride1").rstrip("\n") + "\n",
        "__MEANPOOL_S1__": lambda: _class_body(texts[POOL], "MeanPool2d_stride1").rstrip("\n") + "\n",
    }
    return tuple((rel, placeholders[old]() if old in placeholders else old, new) for rel, old, new in edits)


CORRECT = [Correct(c.name, resolve(c.edits), c.packaging, c.why, c.note) for c in CORRECT]
BUGGY = [Buggy(b.name, resolve(b.edits), b.lost, b.why, b.expect) for b in BUGGY]


def expected_score(lost) -> float:
    return sum(p for name, p in SECTION_POINTS.items() if name not in lost)


assert len({h.name for h in BUGGY}) == len(BUGGY)
assert len({h.name for h in CORRECT}) == len(CORRECT)
