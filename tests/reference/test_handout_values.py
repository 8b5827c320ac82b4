"""The handout's fixed-input cases (hw1p1-handout.md, section 3.3), compared like the official
autograder: value.round(4) against the expected array at atol 1e-4. Values that the handout
note does not print were worked out by hand from the writeup's formulas (marked "derived")."""
import types

import numpy as np
import pytest

COMMON = np.array([[-4, -3], [-2, -1], [0, 1], [2, 3]], dtype=np.float32)
DLDA = np.array([[1, 1], [3, 1], [2, 0], [0, -1]], dtype=np.float32)


def check(actual, expected):
    assert hasattr(actual, "round"), f"{type(actual)} cannot be .round(4)-ed like the grader does"
    assert np.asarray(actual).shape == np.asarray(expected).shape
    np.testing.assert_allclose(actual.round(4), expected, atol=1e-4)


def test_linear(ref):
    layer = ref.Linear(2, 3, debug=True)
    assert layer.W.shape == (3, 2)
    layer.W = np.array([[-2, -1], [0, 1], [2, 3]], dtype=np.float32)
    layer.b = np.array([[-1], [0], [1]], dtype=np.float32)
    Z = layer.forward(COMMON)
    layer.backward(np.array([[-4, -3, -2], [-1, 0, 1], [2, 3, 4], [5, 6, 7]], dtype=np.float32))
    check(Z, [[10, -3, -16], [4, -1, -6], [-2, 1, 4], [-8, 3, 14]])  # derived
    check(layer.dLdA, [[4, -5], [4, 4], [4, 13], [4, 22]])  # derived
    check(layer.dLdW, [[28, 30], [24, 30], [20, 30]])
    check(layer.dLdb, [[2], [6], [10]])


ACTIVATION_CASES = {
    # name: (Z, dLdA, expected A, expected dLdZ); all but ReLU's dLdZ and Sigmoid's first row derived
    "Identity": (COMMON, COMMON, COMMON, COMMON),
    "Sigmoid": (COMMON, COMMON,
                [[0.018, 0.0474], [0.1192, 0.2689], [0.5, 0.7311], [0.8808, 0.9526]],
                [[-0.0707, -0.1355], [-0.21, -0.1966], [0.0, 0.1966], [0.21, 0.1355]]),
    "Tanh": (COMMON, DLDA,
             [[-0.9993, -0.9951], [-0.964, -0.7616], [0.0, 0.7616], [0.964, 0.9951]],
             [[0.0013, 0.0099], [0.212, 0.42], [2.0, 0.0], [0.0, -0.0099]]),
    "ReLU": (COMMON, DLDA, [[0, 0], [0, 0], [0, 1], [2, 3]], [[0, 0], [0, 0], [0, 0], [0, -1]]),
    "GELU": (np.array([-2, -0.5, 0, 0.5, 2.0]), np.array([1, 1, 0, 1, -1.0]),
             [-0.0455, -0.1543, 0, 0.3457, 1.9545], [-0.0852, 0.1325, 0, 0.8675, -1.0852]),
    "Softmax": (np.array([[3, -4.5, 1, 6.5, 2], [-2, -0.5, 0, 0.5, 2]]),
                np.array([[2, -1, 3, -1, -2], [1, 1, 3, 1, -1]], dtype=np.float64),
                [[0.0289, 0.0, 0.0039, 0.9566, 0.0106], [0.0126, 0.0563, 0.0928, 0.1529, 0.6855]],
                [[0.084, 0.0, 0.0153, -0.0877, -0.0116], [0.0149, 0.0667, 0.2955, 0.1813, -0.5584]]),
    "Softmax-large": (np.array([[1000, 1001, 1002], [12345, 12346, 12347]], dtype=np.float32),
                      np.array([[1, -1, 2], [0.5, 0.5, -1]], dtype=np.float32),
                      [[0.09, 0.24473, 0.66524]] * 2,
                      [[-0.0158, -0.5325, 0.5483], [0.0898, 0.2442, -0.334]]),
}


@pytest.mark.parametrize("name", list(ACTIVATION_CASES))
def test_activation(ref, name):
    Z, dLdA, expected_A, expected_dLdZ = ACTIVATION_CASES[name]
    act = getattr(ref, name.split("-")[0])()
    check(act.forward(Z.copy()), np.array(expected_A))
    check(act.backward(dLdA.copy()), np.array(expected_dLdZ))


def test_swish(ref):
    act = ref.Swish()  # the grader passes no beta: it must default to 1
    A = act.forward(COMMON.astype(np.int64))  # the grader's Z is an integer array
    dLdZ = act.backward(DLDA)
    check(A, [[-0.0719, -0.1423], [-0.2384, -0.2689], [0.0, 0.7311], [1.7616, 2.8577]])
    check(act.dLdbeta, np.float64(1.7391382))
    check(dLdZ, [[-0.0527, -0.0881], [-0.2724, 0.0723], [1.0, 0.0], [0.0, -1.0881]])  # derived


def test_tanh_does_not_call_np_tanh(ref, monkeypatch):
    def forbidden(*args, **kwargs):
        raise RuntimeError("np.tanh must not be used")

    monkeypatch.setattr(np, "tanh", forbidden)
    check(ref.Tanh().forward(COMMON), ACTIVATION_CASES["Tanh"][2])


Y_ONEHOT = np.array([[0, 1], [1, 0], [1, 0], [0, 1]], dtype=np.float32)


def test_mse_loss(ref):
    loss = ref.MSELoss()
    check(loss.forward(COMMON, Y_ONEHOT), np.float64(6.5))
    check(loss.backward(), 2 * (COMMON - Y_ONEHOT) / 8)


def test_cross_entropy_loss(ref):
    loss = ref.CrossEntropyLoss()
    check(loss.forward(COMMON, Y_ONEHOT), np.float64(0.8133))
    check(loss.backward(), [[0.0672, -0.0672], [-0.1828, 0.1828], [-0.1828, 0.1828],
                            [0.0672, -0.0672]])  # derived: (softmax - Y) / N


@pytest.mark.parametrize("momentum,expected", [(0, [0.91, 0.82]), (0.9, [0.91, 0.739])])
def test_sgd(ref, momentum, expected):
    layer = ref.Linear(3, 2)
    layer.W, layer.dLdW = np.ones((3, 2)), np.ones((3, 2)) / 10
    layer.b, layer.dLdb = np.ones((3, 1)), np.ones((3, 1)) / 10
    opt = ref.SGD(types.SimpleNamespace(layers=[layer]), lr=0.9, momentum=momentum)
    for value in expected:
        opt.step()
        check(layer.W, np.full((3, 2), value))
        check(layer.b, np.full((3, 1), value))
