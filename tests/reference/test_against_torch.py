"""Check the bundled reference solution against PyTorch autograd (float64 throughout)."""
import re
import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

ATOL, RTOL = 1e-8, 1e-6
SEEDS = [0, 1]


def close(actual, expected, atol=ATOL, rtol=RTOL):
    """Assert a reference (numpy) value equals a torch or numpy value, shape included."""
    if isinstance(expected, torch.Tensor):
        expected = expected.detach().numpy()
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, atol=atol, rtol=rtol)


def leaf(x):
    return torch.tensor(x, dtype=torch.float64, requires_grad=True)


# ----------------------------------------------------------------------------- Linear

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("N,fan_in,fan_out", [(1, 1, 1), (1, 3, 2), (4, 2, 3), (7, 5, 4)])
def test_linear(ref, seed, N, fan_in, fan_out):
    rng = np.random.default_rng(seed)
    A, W = rng.standard_normal((N, fan_in)), rng.standard_normal((fan_out, fan_in))
    b, G = rng.standard_normal((fan_out, 1)), rng.standard_normal((N, fan_out))

    layer = ref.Linear(fan_in, fan_out, debug=True)
    assert layer.W.shape == (fan_out, fan_in) and layer.b.shape == (fan_out, 1)
    layer.W, layer.b = W.copy(), b.copy()
    Z = layer.forward(A)
    dLdA = layer.backward(G)

    tA, tW, tb = leaf(A), leaf(W), leaf(b.ravel())
    tZ = F.linear(tA, tW, tb)
    (tZ * torch.from_numpy(G)).sum().backward()

    close(Z, tZ)
    close(dLdA, tA.grad)
    close(layer.dLdA, tA.grad)
    close(layer.dLdW, tW.grad)
    close(layer.dLdb, tb.grad.reshape(fan_out, 1))  # a column, not a flat vector


# ------------------------------------------------------------------------ Activations

ACTIVATIONS = {
    "Identity": lambda z: z * 1,
    "Sigmoid": torch.sigmoid,
    "Tanh": torch.tanh,
    "ReLU": torch.relu,
    "GELU": lambda z: F.gelu(z, approximate="none"),
    "Softmax": lambda z: torch.softmax(z, dim=1),
}
SHAPES_2D = [(1, 1), (1, 5), (4, 3), (8, 6)]


def run_activation(act, Z, G):
    """Reference forward and backward of `act` on Z with upstream gradient G."""
    A = act.forward(Z.copy())
    return A, act.backward(G.copy())


def torch_activation(fn, Z, G):
    tZ = leaf(Z)
    tA = fn(tZ)
    (tA * torch.from_numpy(G)).sum().backward()
    return tA, tZ.grad


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", SHAPES_2D)
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation(ref, name, shape, seed):
    rng = np.random.default_rng(seed)
    Z, G = 3 * rng.standard_normal(shape), rng.standard_normal(shape)
    assert np.all(Z != 0)  # ReLU's kink is tested on its own below
    A, dLdZ = run_activation(getattr(ref, name)(), Z, G)
    tA, tdLdZ = torch_activation(ACTIVATIONS[name], Z, G)
    close(A, tA)
    close(dLdZ, tdLdZ)


def test_relu_derivative_is_zero_at_zero(ref):
    Z = np.array([[0.0, 1.0, -1.0], [0.0, -2.0, 3.0]])
    G = np.array([[5.0, 2.0, 7.0], [-3.0, 1.0, 4.0]])
    A, dLdZ = run_activation(ref.ReLU(), Z, G)
    tA, tdLdZ = torch_activation(torch.relu, Z, G)
    expected = np.array([[0.0, 2.0, 0.0], [0.0, 0.0, 4.0]])
    close(dLdZ, expected)
    close(tdLdZ, expected)  # torch uses the same convention
    close(A, tA)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [1, 7])
def test_gelu_1d(ref, n, seed):
    rng = np.random.default_rng(seed)
    Z, G = 3 * rng.standard_normal(n), rng.standard_normal(n)
    A, dLdZ = run_activation(ref.GELU(), Z, G)
    tA, tdLdZ = torch_activation(ACTIVATIONS["GELU"], Z, G)
    close(A, tA)
    close(dLdZ, tdLdZ)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", SHAPES_2D)
@pytest.mark.parametrize("beta", [1.0, 0.5, 2.0])
def test_swish(ref, beta, shape, seed):
    rng = np.random.default_rng(seed)
    Z, G = 3 * rng.standard_normal(shape), rng.standard_normal(shape)
    act = ref.Swish(beta)
    A, dLdZ = run_activation(act, Z, G)

    tbeta = leaf(beta)
    tA, tdLdZ = torch_activation(lambda z: z * torch.sigmoid(tbeta * z), Z, G)
    close(A, tA)
    close(dLdZ, tdLdZ)
    close(act.dLdbeta, tbeta.grad)
    if beta == 1.0:
        close(A, F.silu(torch.from_numpy(Z)))


def test_swish_default_beta_is_one(ref):
    Z = np.linspace(-4, 4, 9).reshape(3, 3)
    close(ref.Swish().forward(Z), F.silu(torch.from_numpy(Z)))


@pytest.mark.parametrize("offset", [0.0, 1000.0, 12345.0, -1e4])
def test_softmax_large_inputs(ref, offset):
    Z = offset + np.array([[0.0, 1.0, 2.0], [-1000.0, 0.0, 1000.0], [5.0, 5.0, 5.0]])
    G = np.array([[1.0, -1.0, 2.0], [0.5, 0.5, -1.0], [3.0, 0.0, -2.0]])
    A, dLdZ = run_activation(ref.Softmax(), Z, G)
    assert np.all(np.isfinite(A)) and np.all(np.isfinite(dLdZ))
    close(A.sum(axis=1), np.ones(3))
    tA, tdLdZ = torch_activation(ACTIVATIONS["Softmax"], Z, G)
    close(A, tA)
    close(dLdZ, tdLdZ)


# ----------------------------------------------------------------------------- Losses

LOSS_SHAPES = [(1, 1), (1, 4), (4, 2), (9, 5)]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", LOSS_SHAPES)
def test_mse_loss(ref, shape, seed):
    rng = np.random.default_rng(seed)
    A, Y = rng.standard_normal(shape), rng.standard_normal(shape)
    loss = ref.MSELoss()
    L = loss.forward(A, Y)
    dLdA = loss.backward()

    tA = leaf(A)
    tL = F.mse_loss(tA, torch.from_numpy(Y), reduction="mean")
    tL.backward()
    close(L, tL)
    close(dLdA, tA.grad)


def targets(kind, rng, N, C):
    if kind == "soft":
        return rng.dirichlet(np.ones(C), size=N)
    return np.eye(C)[rng.integers(0, C, size=N)]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", LOSS_SHAPES)
@pytest.mark.parametrize("kind", ["soft", "onehot"])
@pytest.mark.parametrize("scale", [1.0, 100.0])
def test_cross_entropy_loss(ref, kind, shape, seed, scale):
    rng = np.random.default_rng(seed)
    A, Y = scale * rng.standard_normal(shape), targets(kind, rng, *shape)
    close(Y.sum(axis=1), np.ones(shape[0]))
    loss = ref.CrossEntropyLoss()
    L = loss.forward(A, Y)
    dLdA = loss.backward()

    tA = leaf(A)
    tL = F.cross_entropy(tA, torch.from_numpy(Y), reduction="mean")  # probability targets
    tL.backward()
    close(L, tL)
    close(dLdA, tA.grad)
    close(loss.softmax, torch.softmax(torch.from_numpy(A), dim=1))


# -------------------------------------------------------------------------------- SGD

@pytest.mark.parametrize("lr", [0.1, 0.9])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd(ref, momentum, lr):
    rng = np.random.default_rng(42)
    layers = [ref.Linear(4, 3), ref.Linear(3, 2)]
    params = []
    for layer in layers:
        layer.W = rng.standard_normal(layer.W.shape)
        layer.b = rng.standard_normal(layer.b.shape)
        params += [leaf(layer.W), leaf(layer.b)]
    opt = ref.SGD(types.SimpleNamespace(layers=layers), lr, momentum)
    topt = torch.optim.SGD(params, lr=lr, momentum=momentum)
    atol = 1e-6 if momentum else ATOL  # the reference's velocity arrays start as float32

    for _ in range(5):
        for k, layer in enumerate(layers):
            layer.dLdW = rng.standard_normal(layer.W.shape)
            layer.dLdb = rng.standard_normal(layer.b.shape)
            params[2 * k].grad = torch.from_numpy(layer.dLdW.copy())
            params[2 * k + 1].grad = torch.from_numpy(layer.dLdb.copy())
        opt.step()
        topt.step()
        for k, layer in enumerate(layers):
            close(layer.W, params[2 * k], atol=atol)
            close(layer.b, params[2 * k + 1], atol=atol)


# ------------------------------------------------------------------------------- MLPs

MLPS = {
    # name: (layer widths, debug attributes compared besides the Linear gradients)
    "MLP0": ([2, 3], ["Z0", "A1", "dLdZ0", "dLdA0"]),
    "MLP1": ([2, 3, 2], ["Z0", "A1", "Z1", "A2", "dLdZ1", "dLdA1", "dLdZ0", "dLdA0"]),
    "MLP4": ([2, 4, 8, 8, 4, 2], []),
}


def torch_mlp(A0, Ws, bs, G):
    """Linear + ReLU stack. Returns [A0, Z0, A1, Z1, A2, ...] (non-leaves retain grads)."""
    acts = [leaf(A0)]
    for W, b in zip(Ws, bs):
        Z = F.linear(acts[-1], W, b)
        A = torch.relu(Z)
        Z.retain_grad()
        A.retain_grad()
        acts += [Z, A]
    (acts[-1] * torch.from_numpy(G)).sum().backward()
    return acts


def debug_index(attr):
    """Position of a debug attribute in torch_mlp's list: Ak -> 2k, Zk -> 2k + 1."""
    kind, k = re.fullmatch(r"(?:dLd)?([AZ])(\d+)", attr).groups()
    return 2 * int(k) + (kind == "Z")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("N", [1, 4, 9])
@pytest.mark.parametrize("name", list(MLPS))
def test_mlp(ref, name, N, seed):
    widths, attrs = MLPS[name]
    rng = np.random.default_rng(seed)
    model = getattr(ref, name)(debug=True)
    linears = model.layers[::2]
    assert len(model.layers) == 2 * len(linears)
    assert all(isinstance(act, ref.ReLU) for act in model.layers[1::2])
    assert [lin.W.shape for lin in linears] == list(zip(widths[1:], widths[:-1]))

    Ws = [rng.standard_normal(lin.W.shape) for lin in linears]
    bs = [rng.standard_normal(lin.W.shape[0]) for lin in linears]
    for lin, W, b in zip(linears, Ws, bs):
        lin.W, lin.b = W.copy(), b.reshape(-1, 1).copy()
    A0, G = rng.standard_normal((N, widths[0])), rng.standard_normal((N, widths[-1]))

    out = model.forward(A0)
    model.backward(G)
    tWs, tbs = [leaf(W) for W in Ws], [leaf(b) for b in bs]
    acts = torch_mlp(A0, tWs, tbs, G)

    close(out, acts[-1])
    for attr in attrs:
        t = acts[debug_index(attr)]
        close(getattr(model, attr), t.grad if attr.startswith("dLd") else t)
    if name == "MLP4":
        assert len(model.A) == len(model.dLdA) == len(acts) == 11
        for i in range(11):
            close(model.A[i], acts[i])
            close(model.dLdA[i], acts[i].grad)
    for lin, tW, tb in zip(linears, tWs, tbs):
        close(lin.dLdW, tW.grad)
        close(lin.dLdb, tb.grad.reshape(-1, 1))
