"""BatchNorm1d against the writeup's equations (section 10), where PyTorch differs:
biased batch variance everywhere (also in the running average) and eps = 1e-8."""
import math

import numpy as np
import pytest

EPS = 1e-8
SHAPES = [(2, 1), (5, 3), (16, 4)]


def plain_batchnorm(Z, BW, Bb, mean=None, var=None):
    """Writeup eqs. 84-87 (or 90-91 when mean/var are given), one element at a time."""
    N, C = Z.shape
    BZ = np.empty((N, C))
    means, variances = [], []
    for j in range(C):
        column = [float(Z[i, j]) for i in range(N)]
        mu = sum(column) / N if mean is None else mean[j]
        sigma2 = sum((z - mu) ** 2 for z in column) / N if var is None else var[j]
        means.append(mu)
        variances.append(sigma2)
        for i in range(N):
            BZ[i, j] = BW[j] * (column[i] - mu) / math.sqrt(sigma2 + EPS) + Bb[j]
    return BZ, means, variances


def random_case(seed, shape):
    rng = np.random.default_rng(seed)
    N, C = shape
    Z = rng.normal(loc=rng.uniform(-3, 3, C), scale=rng.uniform(0.5, 4, C), size=(N, C))
    return rng, Z, rng.standard_normal(C), rng.standard_normal(C)


def make_bn(BatchNorm1d, C, BW, Bb, **kwargs):
    bn = BatchNorm1d(C, **kwargs)
    bn.BW, bn.Bb = BW.reshape(1, C).copy(), Bb.reshape(1, C).copy()
    return bn


def test_constructor_constants(ref):
    bn = ref.BatchNorm1d(3)
    assert bn.alpha == 0.9 and bn.eps == EPS
    for attr, value in [("BW", 1), ("Bb", 0), ("dLdBW", 0), ("dLdBb", 0),
                        ("running_M", 0), ("running_V", 1)]:
        np.testing.assert_array_equal(getattr(bn, attr), np.full((1, 3), value))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_training(ref, shape, seed):
    _, Z, BW, Bb = random_case(seed, shape)
    BZ = make_bn(ref.BatchNorm1d, shape[1], BW, Bb).forward(Z)
    expected, _, _ = plain_batchnorm(Z, BW, Bb)
    assert BZ.shape == shape
    np.testing.assert_allclose(BZ, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("alpha", [None, 0.7])
def test_running_statistics_and_eval(ref, alpha):
    rng, _, BW, Bb = random_case(3, (6, 3))
    kwargs = {} if alpha is None else {"alpha": alpha}
    a = 0.9 if alpha is None else alpha
    bn = make_bn(ref.BatchNorm1d, 3, BW, Bb, **kwargs)
    run_M, run_V = [0.0] * 3, [1.0] * 3
    for step in range(4):
        Z = rng.normal(loc=step, scale=1 + step, size=(6, 3))
        bn.forward(Z)
        _, means, variances = plain_batchnorm(Z, BW, Bb)
        run_M = [a * r + (1 - a) * m for r, m in zip(run_M, means)]
        run_V = [a * r + (1 - a) * v for r, v in zip(run_V, variances)]  # biased variance
        np.testing.assert_allclose(bn.running_M, [run_M], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(bn.running_V, [run_V], rtol=1e-12, atol=1e-12)

    Z_test = rng.normal(size=(5, 3))
    BZ = bn.forward(Z_test, eval=True)
    expected, _, _ = plain_batchnorm(Z_test, BW, Bb, mean=run_M, var=run_V)
    np.testing.assert_allclose(BZ, expected, rtol=1e-10, atol=1e-10)
    # eval mode must not touch the running statistics
    np.testing.assert_allclose(bn.running_M, [run_M], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bn.running_V, [run_V], rtol=1e-12, atol=1e-12)


def central_difference(f, x, h=1e-6):
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[idx] += h
        minus[idx] -= h
        grad[idx] = (f(plus) - f(minus)) / (2 * h)
    return grad


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_matches_finite_differences(ref, shape, seed):
    rng, Z, BW, Bb = random_case(seed, shape)
    G = rng.standard_normal(shape)
    bn = make_bn(ref.BatchNorm1d, shape[1], BW, Bb)
    bn.forward(Z)
    dLdZ = bn.backward(G)

    def loss(Z=Z, BW=BW, Bb=Bb):
        return float(np.sum(plain_batchnorm(Z, BW, Bb)[0] * G))

    tol = {"rtol": 1e-5, "atol": 1e-7}
    np.testing.assert_allclose(dLdZ, central_difference(lambda z: loss(Z=z), Z), **tol)
    np.testing.assert_allclose(bn.dLdBW, [central_difference(lambda w: loss(BW=w), BW)], **tol)
    np.testing.assert_allclose(bn.dLdBb, [central_difference(lambda b: loss(Bb=b), Bb)], **tol)


# Handout section 3.3, "Batch Norm" row.
A_HANDOUT = np.array([[1, 4], [7, 0], [1, 0], [7, 4]], dtype=np.float64)
BW_HANDOUT, BB_HANDOUT = np.array([[2, 5]]), np.array([[-1, 2]])


def handout_bn(BatchNorm1d):
    bn = BatchNorm1d(2)
    bn.BW, bn.Bb = BW_HANDOUT.astype(np.float64), BB_HANDOUT.astype(np.float64)
    return bn


def test_handout_eval(ref):
    BZ = handout_bn(ref.BatchNorm1d).forward(A_HANDOUT, eval=True)
    np.testing.assert_allclose(BZ.round(4), [[1, 22], [13, 2], [1, 2], [13, 22]], atol=1e-4)


def test_handout_training_forward_and_backward(ref):
    bn = handout_bn(ref.BatchNorm1d)
    BZ = bn.forward(A_HANDOUT, eval=False)
    np.testing.assert_allclose(BZ.round(4), [[-3, 7], [1, -3], [-3, -3], [1, 7]], atol=1e-4)
    dLdBZ = np.array([[-6, 2], [-12, 16], [-12, 20], [-6, 2]], dtype=np.float64)
    dLdZ = bn.backward(dLdBZ)
    np.testing.assert_allclose(dLdZ.round(4), [[2, 0], [-2, -5], [-2, 5], [2, 0]], atol=1e-4)
