"""The HW1P1 Bonus reference (mytorch_reference_bonus/) against PyTorch: Adam and AdamW over several
steps and layers (float64), bias correction on the first step, and Dropout's gradient and eval
mode. The reference is imported the way the grader imports it (grader.runner.package_under_test)."""
import types

import numpy as np
import pytest

from grader.runner import package_under_test
from grader.suites.hw1p1_bonus import SUITE

torch = pytest.importorskip("torch")

ATOL, RTOL = 1e-10, 1e-8


@pytest.fixture(scope="module")
def bonus():
    with package_under_test(str(SUITE.reference_root), SUITE.package_plan()):
        from mytorch.nn.dropout import Dropout
        from mytorch.optim.adam import Adam
        from mytorch.optim.adamW import AdamW
    return types.SimpleNamespace(Adam=Adam, AdamW=AdamW, Dropout=Dropout)


SHAPES = [((4, 3), (4, 1)), ((2, 4), (2, 1)), ((5, 2), (5, 1))]


def _model_and_params(rng):
    layers, params = [], []
    for w_shape, b_shape in SHAPES:
        layer = types.SimpleNamespace(W=rng.standard_normal(w_shape), b=rng.standard_normal(b_shape))
        layers.append(layer)
        params += [torch.tensor(layer.W.copy(), requires_grad=True), torch.tensor(layer.b.copy(), requires_grad=True)]
    return types.SimpleNamespace(layers=layers), params


def _run_both(opt, topt, model, params, rng, steps, scale=1.0):
    for _ in range(steps):
        for k, layer in enumerate(model.layers):
            layer.dLdW = scale * rng.standard_normal(layer.W.shape)
            layer.dLdb = scale * rng.standard_normal(layer.b.shape)
            params[2 * k].grad = torch.from_numpy(layer.dLdW.copy())
            params[2 * k + 1].grad = torch.from_numpy(layer.dLdb.copy())
        opt.step()
        topt.step()
        for k, layer in enumerate(model.layers):
            np.testing.assert_allclose(layer.W, params[2 * k].detach().numpy(), atol=ATOL, rtol=RTOL)
            np.testing.assert_allclose(layer.b, params[2 * k + 1].detach().numpy(), atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("lr, beta1, beta2, eps", [(0.008, 0.9, 0.999, 1e-8), (0.05, 0.8, 0.99, 1e-6),
                                                   (0.002, 0.95, 0.9, 1e-3)])
def test_adam_matches_torch_over_ten_steps_and_three_layers(bonus, lr, beta1, beta2, eps):
    rng = np.random.default_rng(7)
    model, params = _model_and_params(rng)
    opt = bonus.Adam(model, lr, beta1, beta2, eps)
    topt = torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=eps)
    _run_both(opt, topt, model, params, rng, steps=10, scale=3.0)


@pytest.mark.parametrize("lr, weight_decay", [(0.008, 0.01), (0.05, 0.1), (0.01, 0.5)])
def test_adamw_matches_torch_over_ten_steps_and_three_layers(bonus, lr, weight_decay):
    rng = np.random.default_rng(11)
    model, params = _model_and_params(rng)
    opt = bonus.AdamW(model, lr, 0.9, 0.999, 1e-8, weight_decay)
    topt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay)
    _run_both(opt, topt, model, params, rng, steps=10)


def test_the_defaults_are_the_handouts_and_torchs(bonus):
    model = types.SimpleNamespace(layers=[types.SimpleNamespace(W=np.ones((2, 2)), b=np.ones((2, 1)))])
    adam, adamw = bonus.Adam(model, 0.001), bonus.AdamW(model, 0.001)
    assert (adam.beta1, adam.beta2, adam.eps) == (0.9, 0.999, 1e-8)
    assert adamw.weight_decay == 0.01 == torch.optim.AdamW([torch.zeros(1)]).defaults["weight_decay"]


def test_the_first_step_is_bias_corrected(bonus):
    """With bias correction, step 1 moves every parameter by lr against its gradient's sign (up to
    eps), whatever the betas; without it the move would be lr (1 - beta1) / sqrt(1 - beta2)."""
    rng = np.random.default_rng(3)
    W, b = rng.standard_normal((3, 2)), rng.standard_normal((3, 1))
    layer = types.SimpleNamespace(W=W.copy(), b=b.copy(), dLdW=rng.standard_normal((3, 2)),
                                  dLdb=rng.standard_normal((3, 1)))
    bonus.Adam(types.SimpleNamespace(layers=[layer]), 0.01, 0.8, 0.99, 1e-12).step()
    np.testing.assert_allclose(W - layer.W, 0.01 * np.sign(layer.dLdW), rtol=1e-9)
    np.testing.assert_allclose(b - layer.b, 0.01 * np.sign(layer.dLdb), rtol=1e-9)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_gradient_is_torchs_for_the_same_mask(bonus, p):
    rng = np.random.default_rng(5)
    x, delta = rng.standard_normal((50, 40)), rng.standard_normal((50, 40))
    drop = bonus.Dropout(p)
    y = drop.forward(x)
    mask = torch.from_numpy((y != 0).astype(np.float64))
    tx = torch.tensor(x, requires_grad=True)
    ty = tx * mask / (1 - p)          # torch's dropout, given the same mask
    (ty * torch.from_numpy(delta)).sum().backward()
    np.testing.assert_allclose(y, ty.detach().numpy(), atol=ATOL)
    np.testing.assert_allclose(drop.backward(delta), tx.grad.numpy(), atol=ATOL)


def test_dropout_eval_mode_is_torchs_identity(bonus):
    x = np.random.default_rng(1).standard_normal((6, 4))
    expected = torch.nn.functional.dropout(torch.from_numpy(x), p=0.4, training=False).numpy()
    np.testing.assert_array_equal(bonus.Dropout(0.4).forward(x, False), expected)


@pytest.mark.parametrize("optimizer, weight_decay", [("Adam", 0.0), ("AdamW", 0.05)])
def test_the_suites_trajectory_is_torchs_with_eps_outside_the_root(optimizer, weight_decay):
    """The bonus suite judges each parameter against adam_trajectory's two forms: eps outside the
    root must be torch.optim.Adam / AdamW exactly."""
    from grader.suites.hw1p1_bonus import adam_trajectory
    rng = np.random.default_rng(13)
    W, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 1))
    grads = [(rng.standard_normal(W.shape), rng.standard_normal(b.shape)) for _ in range(6)]
    tW, tb = torch.tensor(W.copy(), requires_grad=True), torch.tensor(b.copy(), requires_grad=True)
    kwargs = {"lr": 0.01, "betas": (0.8, 0.99), "eps": 0.1}
    topt = (torch.optim.AdamW([tW, tb], weight_decay=weight_decay, **kwargs) if optimizer == "AdamW"
            else torch.optim.Adam([tW, tb], **kwargs))
    ours = adam_trajectory(W, b, grads, 0.01, 0.8, 0.99, 0.1, weight_decay)
    for (dW, db), (W_t, b_t) in zip(grads, ours, strict=True):
        tW.grad, tb.grad = torch.from_numpy(dW.copy()), torch.from_numpy(db.copy())
        topt.step()
        np.testing.assert_allclose(W_t, tW.detach().numpy(), atol=ATOL, rtol=RTOL)
        np.testing.assert_allclose(b_t, tb.detach().numpy(), atol=ATOL, rtol=RTOL)


def test_the_writeups_form_puts_eps_inside_the_root():
    """Step 1 of the writeups' form: m^ = g and v^ = g^2, so theta - lr g / sqrt(g^2 + eps)."""
    from grader.suites.hw1p1_bonus import adam_trajectory
    rng = np.random.default_rng(17)
    W, b, dW, db = (rng.standard_normal(s) for s in ((3, 2), (3, 1), (3, 2), (3, 1)))
    [(W1, b1)] = adam_trajectory(W, b, [(dW, db)], 0.01, 0.9, 0.999, 0.1, eps_inside=True)
    np.testing.assert_allclose(W1, W - 0.01 * dW / np.sqrt(dW ** 2 + 0.1), rtol=1e-12)
    np.testing.assert_allclose(b1, b - 0.01 * db / np.sqrt(db ** 2 + 0.1), rtol=1e-12)
