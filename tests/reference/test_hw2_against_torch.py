"""The HW2P1 reference (mytorch_reference_hw2/) against PyTorch, float64: every forward against
torch.nn.functional (conv1d/conv2d with stride and padding, conv_transpose1d/2d, max_pool2d,
avg_pool2d) and every backward against autograd (dLdA, dLdW, dLdb), over many shapes, strides,
paddings and kernel sizes, including widths the stride does not divide. The scanning MLPs are
checked against the MLP they stand for, applied to every window; the CNN against the same network
built from torch layers. The reference is imported the way the grader imports it."""
import importlib
import types
from pathlib import Path

import numpy as np
import pytest

from grader.runner import package_under_test

torch = pytest.importorskip("torch")
F = torch.nn.functional

REFERENCE = Path(__file__).resolve().parents[2] / "mytorch_reference_hw2"
ATOL, RTOL = 1e-9, 1e-7


CLASSES = {
    "mytorch.nn.resampling": ["Upsample1d", "Downsample1d", "Upsample2d", "Downsample2d"],
    "mytorch.nn.Conv1d": ["Conv1d_stride1", "Conv1d"],
    "mytorch.nn.Conv2d": ["Conv2d_stride1", "Conv2d"],
    "mytorch.nn.ConvTranspose": ["ConvTranspose1d", "ConvTranspose2d"],
    "mytorch.nn.pool": ["MaxPool2d_stride1", "MaxPool2d", "MeanPool2d_stride1", "MeanPool2d"],
    "mytorch.nn.activation": ["Tanh", "ReLU", "Sigmoid"],
    "mytorch.nn.loss": ["CrossEntropyLoss"],
    "mytorch.flatten": ["Flatten"],
    "models.mlp_scan": ["CNN_SimpleScanningMLP", "CNN_DistributedScanningMLP"],
    "models.cnn": ["CNN"],
}


@pytest.fixture(scope="module")
def hw2():
    with package_under_test(str(REFERENCE), {"top_level": ["mytorch", "models"], "exports": {}}):
        return types.SimpleNamespace(**{name: getattr(importlib.import_module(module), name)
                                        for module, names in CLASSES.items() for name in names})


def close(actual, expected):
    if isinstance(expected, torch.Tensor):
        expected = expected.detach().numpy()
    actual = np.asarray(actual)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, atol=ATOL, rtol=RTOL)


def leaf(x):
    return torch.tensor(x, dtype=torch.float64, requires_grad=True)


def backprop(out, grad):
    out.backward(torch.from_numpy(grad))


# ------------------------------------------------------------------------------- resampling

@pytest.mark.parametrize("factor", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 3, 10), (3, 2, 23), (1, 4, 7)])
def test_resampling_1d(hw2, factor, shape):
    rng = np.random.default_rng(factor * 100 + shape[2])
    A = rng.standard_normal(shape)
    N, C, W = shape
    # Upsampling is conv_transpose1d with a single 1 as kernel and the factor as stride.
    up = hw2.Upsample1d(factor)
    tA = leaf(A)
    tZ = F.conv_transpose1d(tA.reshape(N * C, 1, W), torch.ones(1, 1, 1, dtype=torch.float64),
                            stride=factor).reshape(N, C, -1)
    Z = up.forward(A)
    close(Z, tZ)
    G = rng.standard_normal(Z.shape)
    backprop(tZ, G)
    close(up.backward(G), tA.grad)

    down = hw2.Downsample1d(factor)
    tA = leaf(A)
    tZ = tA[:, :, ::factor]
    Z = down.forward(A)
    close(Z, tZ)
    G = rng.standard_normal(Z.shape)
    backprop(tZ, G)
    close(down.backward(G), tA.grad)


@pytest.mark.parametrize("factor", [1, 2, 3, 4])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 9, 9), (1, 2, 10, 7)])
def test_resampling_2d(hw2, factor, shape):
    rng = np.random.default_rng(factor * 10 + shape[2])
    A = rng.standard_normal(shape)
    N, C, H, W = shape
    up = hw2.Upsample2d(factor)
    tA = leaf(A)
    tZ = F.conv_transpose2d(tA.reshape(N * C, 1, H, W), torch.ones(1, 1, 1, 1, dtype=torch.float64),
                            stride=factor).reshape(N, C, (H - 1) * factor + 1, (W - 1) * factor + 1)
    Z = up.forward(A)
    close(Z, tZ)
    G = rng.standard_normal(Z.shape)
    backprop(tZ, G)
    close(up.backward(G), tA.grad)

    down = hw2.Downsample2d(factor)
    tA = leaf(A)
    tZ = tA[:, :, ::factor, ::factor]
    Z = down.forward(A)
    close(Z, tZ)
    G = rng.standard_normal(Z.shape)
    backprop(tZ, G)
    close(down.backward(G), tA.grad)


# ------------------------------------------------------------------------------ convolutions

CONV1D_CASES = [  # N, C_in, C_out, W, K, stride, padding
    (1, 1, 1, 1, 1, 1, 0), (2, 3, 4, 10, 3, 1, 0), (3, 5, 2, 23, 4, 1, 0), (1, 2, 3, 9, 9, 1, 0),
    (2, 3, 4, 10, 3, 2, 0), (3, 5, 2, 23, 4, 3, 0), (1, 2, 3, 17, 5, 4, 2), (2, 4, 3, 20, 7, 5, 3),
    (4, 1, 6, 8, 2, 3, 1), (1, 3, 2, 11, 1, 2, 4), (2, 2, 2, 5, 6, 1, 1),
]


def _conv1d_case(layer, inner, A, W, b, stride, padding, rng):
    inner.W, inner.b = W.copy(), b.copy()
    tA, tW, tb = leaf(A), leaf(W), leaf(b)
    tZ = F.conv1d(tA, tW, tb, stride=stride, padding=padding)
    Z = layer.forward(A)
    close(Z, tZ)
    G = rng.standard_normal(Z.shape)
    backprop(tZ, G)
    close(layer.backward(G), tA.grad)
    close(inner.dLdW, tW.grad)
    close(inner.dLdb, tb.grad)


@pytest.mark.parametrize("case", CONV1D_CASES)
def test_conv1d(hw2, case):
    N, C_in, C_out, width, K, stride, padding = case
    rng = np.random.default_rng(sum(case))
    A, W, b = rng.standard_normal((N, C_in, width)), rng.standard_normal((C_out, C_in, K)), rng.standard_normal(C_out)
    if stride == 1 and padding == 0:
        layer = hw2.Conv1d_stride1(C_in, C_out, K)
        _conv1d_case(layer, layer, A, W, b, 1, 0, rng)
    layer = hw2.Conv1d(C_in, C_out, K, stride, padding)
    _conv1d_case(layer, layer.conv1d_stride1, A, W, b, stride, padding, rng)
    # A second round on the same object: nothing of the first may leak into the second.
    _conv1d_case(layer, layer.conv1d_stride1, rng.standard_normal(A.shape), W, b, stride, padding, rng)


CONV2D_CASES = [  # N, C_in, C_out, H (= W), K, stride, padding
    (1, 1, 1, 1, 1, 1, 0), (2, 3, 2, 6, 3, 1, 0), (1, 2, 3, 7, 4, 1, 0), (2, 2, 2, 5, 5, 1, 0),
    (2, 3, 2, 9, 3, 2, 0), (1, 2, 3, 10, 4, 3, 1), (3, 1, 2, 8, 2, 3, 2), (1, 2, 2, 11, 5, 4, 3),
]


def _conv2d_case(layer, inner, A, W, b, stride, padding, rng):
    inner.W, inner.b = W.copy(), b.copy()
    tA, tW, tb = leaf(A), leaf(W), leaf(b)
    tZ = F.conv2d(tA, tW, tb, stride=stride, padding=padding)
    Z = layer.forward(A)
    close(Z, tZ)
    G = rng.standard_normal(Z.shape)
    backprop(tZ, G)
    close(layer.backward(G), tA.grad)
    close(inner.dLdW, tW.grad)
    close(inner.dLdb, tb.grad)


@pytest.mark.parametrize("case", CONV2D_CASES)
def test_conv2d(hw2, case):
    N, C_in, C_out, size, K, stride, padding = case
    rng = np.random.default_rng(sum(case))
    A = rng.standard_normal((N, C_in, size, size))
    W, b = rng.standard_normal((C_out, C_in, K, K)), rng.standard_normal(C_out)
    if stride == 1 and padding == 0:
        layer = hw2.Conv2d_stride1(C_in, C_out, K)
        _conv2d_case(layer, layer, A, W, b, 1, 0, rng)
    layer = hw2.Conv2d(C_in, C_out, K, stride, padding)
    _conv2d_case(layer, layer.conv2d_stride1, A, W, b, stride, padding, rng)
    _conv2d_case(layer, layer.conv2d_stride1, rng.standard_normal(A.shape), W, b, stride, padding, rng)


def test_conv2d_rectangular_input(hw2):
    rng = np.random.default_rng(7)
    A, W, b = rng.standard_normal((2, 3, 9, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    layer = hw2.Conv2d(3, 4, 3, 2, 1)
    _conv2d_case(layer, layer.conv2d_stride1, A, W, b, 2, 1, rng)


def test_weight_and_bias_init_functions_are_used(hw2):
    calls = []

    def weights(*shape):
        calls.append(shape)
        return np.full(shape, 0.5)

    layer = hw2.Conv1d(3, 4, 5, 2, 1, weight_init_fn=weights, bias_init_fn=np.ones)
    assert calls == [(4, 3, 5)]
    close(layer.conv1d_stride1.W, np.full((4, 3, 5), 0.5))
    close(layer.conv1d_stride1.b, np.ones(4))
    layer = hw2.Conv2d(3, 4, 2, 1, weight_init_fn=weights, bias_init_fn=np.ones)
    assert calls[-1] == (4, 3, 2, 2)


CONV_TRANSPOSE_CASES = [  # N, C_in, C_out, W, K, factor
    (1, 1, 1, 3, 1, 1), (2, 3, 4, 10, 3, 2), (3, 2, 5, 7, 4, 3), (1, 4, 2, 6, 2, 5), (2, 2, 3, 5, 5, 1),
]


@pytest.mark.parametrize("case", CONV_TRANSPOSE_CASES)
def test_conv_transpose1d(hw2, case):
    N, C_in, C_out, width, K, factor = case
    rng = np.random.default_rng(sum(case))
    A, W, b = rng.standard_normal((N, C_in, width)), rng.standard_normal((C_out, C_in, K)), rng.standard_normal(C_out)
    layer = hw2.ConvTranspose1d(C_in, C_out, K, factor, weight_init_fn=lambda *s: W.copy(),
                                bias_init_fn=lambda n: b.copy())
    tA, tW, tb = leaf(A), leaf(W), leaf(b)
    # Upsample-then-convolve is conv_transpose with the kernel flipped and its channels exchanged.
    tZ = F.conv_transpose1d(tA, tW.transpose(0, 1).flip(-1), tb, stride=factor, padding=K - 1)
    Z = layer.forward(A)
    close(Z, tZ)
    G = rng.standard_normal(Z.shape)
    backprop(tZ, G)
    close(layer.backward(G), tA.grad)
    close(layer.conv1d_stride1.dLdW, tW.grad)
    close(layer.conv1d_stride1.dLdb, tb.grad)


@pytest.mark.parametrize("case", CONV_TRANSPOSE_CASES)
def test_conv_transpose2d(hw2, case):
    N, C_in, C_out, size, K, factor = case
    rng = np.random.default_rng(sum(case))
    A = rng.standard_normal((N, C_in, size, size))
    W, b = rng.standard_normal((C_out, C_in, K, K)), rng.standard_normal(C_out)
    layer = hw2.ConvTranspose2d(C_in, C_out, K, factor, weight_init_fn=lambda *s: W.copy(),
                                bias_init_fn=lambda n: b.copy())
    tA, tW, tb = leaf(A), leaf(W), leaf(b)
    tZ = F.conv_transpose2d(tA, tW.transpose(0, 1).flip(-1, -2), tb, stride=factor, padding=K - 1)
    Z = layer.forward(A)
    close(Z, tZ)
    G = rng.standard_normal(Z.shape)
    backprop(tZ, G)
    close(layer.backward(G), tA.grad)
    close(layer.conv2d_stride1.dLdW, tW.grad)
    close(layer.conv2d_stride1.dLdb, tb.grad)


# ----------------------------------------------------------------------------------- pooling

POOL_CASES = [  # N, C, H, W, K, stride
    (1, 1, 1, 1, 1, 1), (2, 3, 6, 6, 3, 1), (1, 2, 7, 9, 2, 1), (2, 2, 8, 8, 8, 1),
    (2, 3, 9, 9, 3, 2), (1, 2, 10, 10, 3, 3), (3, 1, 11, 8, 4, 3), (1, 2, 7, 7, 2, 4),
]


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("kind", ["max", "mean"])
def test_pool(hw2, case, kind):
    N, C, H, W, K, stride = case
    rng = np.random.default_rng(sum(case))
    A = rng.standard_normal((N, C, H, W))
    torch_pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    name = "MaxPool2d" if kind == "max" else "MeanPool2d"
    layers = [getattr(hw2, name)(K, stride)] + ([getattr(hw2, f"{name}_stride1")(K)] if stride == 1 else [])
    for layer in layers:
        for _ in range(2):  # two rounds on the same object
            A = rng.standard_normal(A.shape)
            tA = leaf(A)
            tZ = torch_pool(tA, K, stride)
            Z = layer.forward(A)
            close(Z, tZ)
            G = rng.standard_normal(Z.shape)
            backprop(tZ, G)
            close(layer.backward(G), tA.grad)


def test_max_pool_ties_go_to_the_first_maximum(hw2):
    A = np.zeros((1, 1, 4, 4))
    A[0, 0, 1:3, 1:3] = 1.0  # every 2x2 window but the corners ties
    tA = leaf(A)
    tZ = F.max_pool2d(tA, 2, 1)
    layer = hw2.MaxPool2d_stride1(2)
    close(layer.forward(A), tZ)
    G = np.arange(9.0).reshape(1, 1, 3, 3)
    backprop(tZ, G)
    close(layer.backward(G), tA.grad)


def test_flatten(hw2):
    A = np.random.default_rng(3).standard_normal((3, 4, 5))
    tA = leaf(A)
    tZ = torch.flatten(tA, 1)
    layer = hw2.Flatten()
    close(layer.forward(A), tZ)
    G = np.random.default_rng(4).standard_normal((3, 20))
    backprop(tZ, G)
    close(layer.backward(G), tA.grad)


# ---------------------------------------------------------------------------- scanning MLPs

def _mlp_on_windows(x, weights, width=8, step=4):
    """The MLP itself (192 -> 8 -> 16 -> 4, ReLU between), applied to every 8-step window of X
    (inputs ordered time-major), outputs as (N, 4, windows)."""
    tx = torch.from_numpy(x)
    outs = []
    for start in range(0, x.shape[2] - width + 1, step):
        h = tx[:, :, start:start + width].transpose(1, 2).reshape(x.shape[0], -1)
        for k, w in enumerate(weights):
            h = h @ torch.from_numpy(w)
            h = torch.relu(h) if k < len(weights) - 1 else h
        outs.append(h)
    return torch.stack(outs, dim=2)


@pytest.mark.parametrize("N,width", [(1, 128), (2, 40), (1, 12)])
def test_simple_scanning_mlp(hw2, N, width):
    rng = np.random.default_rng(width)
    weights = [rng.standard_normal(s) for s in ((192, 8), (8, 16), (16, 4))]
    x = rng.standard_normal((N, 24, width))
    model = hw2.CNN_SimpleScanningMLP()
    model.init_weights(weights)
    out = model.forward(x)
    expected = _mlp_on_windows(x, weights)
    close(out, expected.reshape(N, -1))


def _block_diagonal(block, copies):
    rows, cols = block.shape
    w = np.zeros((rows * copies, cols * copies))
    for k in range(copies):
        w[k * rows:(k + 1) * rows, k * cols:(k + 1) * cols] = block
    return w


@pytest.mark.parametrize("N,width", [(1, 128), (2, 40), (1, 12)])
def test_distributed_scanning_mlp(hw2, N, width):
    rng = np.random.default_rng(width + 1)
    blocks = [rng.standard_normal((48, 2)), rng.standard_normal((4, 8)), rng.standard_normal((16, 4))]
    weights = [_block_diagonal(blocks[0], 4), _block_diagonal(blocks[1], 2), blocks[2]]
    x = rng.standard_normal((N, 24, width))
    model = hw2.CNN_DistributedScanningMLP()
    model.init_weights(weights)
    out = model.forward(x)
    close(out, _mlp_on_windows(x, weights).reshape(N, -1))


# ------------------------------------------------------------------------------------- CNN

@pytest.mark.parametrize("N,width,channels,kernels,strides", [
    (1, 128, [56, 28, 14], [5, 6, 2], [1, 2, 2]),
    (3, 30, [4, 5], [3, 2], [2, 3]),
])
def test_cnn(hw2, N, width, channels, kernels, strides):
    rng = np.random.default_rng(width)
    activations = [hw2.Tanh(), hw2.ReLU(), hw2.Sigmoid()][:len(channels)]
    model = hw2.CNN(width, 24, channels, kernels, strides, 10, activations,
                    lambda *s: rng.standard_normal(s), np.zeros, lambda *s: rng.standard_normal(s),
                    hw2.CrossEntropyLoss(), 1e-3)
    convs = [layer.conv1d_stride1 for layer in model.convolutional_layers]
    for conv in convs:
        conv.b = rng.standard_normal(conv.b.shape)
    lin = model.linear_layer
    lin.W = rng.standard_normal(lin.W.shape)
    lin.b = rng.standard_normal((lin.W.shape[0], 1))
    x = rng.standard_normal((N, 24, width))
    labels = np.eye(10)[rng.integers(0, 10, N)]

    tx = leaf(x)
    tws = [leaf(c.W) for c in convs]
    tbs = [leaf(c.b) for c in convs]
    tlw, tlb = leaf(lin.W), leaf(lin.b.ravel())
    h = tx
    for k, (tw, tb) in enumerate(zip(tws, tbs, strict=True)):
        h = (torch.tanh, torch.relu, torch.sigmoid)[k](F.conv1d(h, tw, tb, stride=strides[k]))
    out = F.linear(h.flatten(1), tlw, tlb)
    loss = F.cross_entropy(out, torch.from_numpy(labels.argmax(1)))
    loss.backward()

    close(model.forward(x), out)
    close(model.backward(labels), tx.grad)
    for conv, tw, tb in zip(convs, tws, tbs, strict=True):
        close(conv.dLdW, tw.grad)
        close(conv.dLdb, tb.grad)
    close(lin.dLdW, tlw.grad)
    close(lin.dLdb, tlb.grad.reshape(-1, 1))
    assert np.isclose(model.loss, loss.item())
