"""numnet.reference: the slow, formula-for-formula versions equal the fast code (float64)."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import pytest

from numnet import BatchNorm1d, Dense, Dropout, ReLU, Sequential, reference
from numnet.gradcheck import numerical_gradient
from numnet.optim import SGD, AdaGrad, Adam, AdamW, RMSProp

sys.path.insert(0, str(Path(__file__).parent / "optim"))
from optim_helpers import MASK, FlatModel, grad  # noqa: E402

TOL = 1e-12
DECAY = MASK.astype(np.float64)

# (fast optimiser, the same rule in numnet.reference)
CASES = {
    "sgd": (lambda: SGD(0.1), functools.partial(reference.sgd_step, lr=0.1)),
    "momentum_wd": (lambda: SGD(0.1, momentum=0.9, weight_decay=0.05),
                    functools.partial(reference.sgd_step, lr=0.1, momentum=0.9,
                                      weight_decay=0.05, decay=DECAY)),
    "nesterov": (lambda: SGD(0.05, momentum=0.8, nesterov=True, weight_decay=0.1,
                             decay_all=True),
                 functools.partial(reference.sgd_step, lr=0.05, momentum=0.8, nesterov=True,
                                   weight_decay=0.1)),
    "adagrad": (lambda: AdaGrad(0.1), functools.partial(reference.adagrad_step, lr=0.1)),
    "adagrad_all": (lambda: AdaGrad(0.05, lr_decay=0.1, weight_decay=0.1,
                                    initial_accumulator_value=0.5, eps=1e-6),
                    functools.partial(reference.adagrad_step, lr=0.05, lr_decay=0.1,
                                      weight_decay=0.1, initial_accumulator_value=0.5,
                                      eps=1e-6, decay=DECAY)),
    "rmsprop": (lambda: RMSProp(0.01), functools.partial(reference.rmsprop_step, lr=0.01)),
    "rmsprop_all": (lambda: RMSProp(0.02, alpha=0.9, eps=1e-6, momentum=0.5, centered=True,
                                    weight_decay=0.1),
                    functools.partial(reference.rmsprop_step, lr=0.02, alpha=0.9, eps=1e-6,
                                      momentum=0.5, centered=True, weight_decay=0.1,
                                      decay=DECAY)),
    "adam": (lambda: Adam(0.05), functools.partial(reference.adam_step, lr=0.05)),
    "adam_wd": (lambda: Adam(0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
                functools.partial(reference.adam_step, lr=0.05, betas=(0.8, 0.99), eps=1e-6,
                                  weight_decay=0.1, decay=DECAY)),
    "adamw": (lambda: AdamW(0.05, weight_decay=0.2),
              functools.partial(reference.adam_step, lr=0.05, weight_decay=0.2,
                                decoupled=True, decay=DECAY)),
    "adamw_all": (lambda: AdamW(0.05, weight_decay=0.2, decay_all=True),
                  functools.partial(reference.adam_step, lr=0.05, weight_decay=0.2,
                                    decoupled=True)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_optimiser_equals_its_reference_over_several_steps(case):
    make_fast, step = CASES[case]
    model, fast = FlatModel(), make_fast()
    p, state = model.flat_params.copy(), {}
    for k in range(8):
        model.flat_grads[:] = grad(model.flat_params, k)
        fast.step(model)
        p = step(p, grad(p, k), state)
        np.testing.assert_allclose(model.flat_params, p, rtol=TOL, atol=TOL)


def test_ema_and_its_bias_correction():
    series = np.array([3.0, 1.0, 4.0, 1.0, 5.0])
    beta = 0.8
    expected = [sum((1 - beta) * beta ** (t - i) * series[i - 1] for i in range(1, t + 1))
                for t in range(1, 6)]
    np.testing.assert_allclose(reference.ema(series, beta), expected, rtol=1e-15)
    # a constant series: the raw average starts far below it, the corrected one is exact
    raw = reference.ema(np.full(4, 2.0), 0.9)
    assert raw[0] == pytest.approx(0.2)
    np.testing.assert_allclose(reference.ema(np.full(4, 2.0), 0.9, bias_correction=True), 2.0,
                               rtol=1e-15)


def test_batchnorm_running_mean_is_an_ema_of_batch_means():
    rng = np.random.default_rng(0)
    layer = BatchNorm1d(3, momentum=0.2, dtype="float64")
    batches = [rng.standard_normal((6, 3)) + 2 for _ in range(4)]
    for x in batches:
        layer(x, training=True)
    means = [x.mean(axis=0) for x in batches]
    expected = reference.ema(np.array(means)[:, 0], beta=0.8)[-1]
    assert layer.buffers["running_mean"][0] == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("n, c", [(2, 3), (7, 4), (16, 1)])
def test_staged_batchnorm_equals_the_closed_form_layer(n, c):
    rng = np.random.default_rng(n)
    x = 3 * rng.standard_normal((n, c)) + 1
    gamma, beta = rng.uniform(0.5, 2, c), rng.standard_normal(c)
    dout = rng.standard_normal((n, c))
    layer = BatchNorm1d(c, eps=1e-3, dtype="float64")
    layer.params["gamma"][...], layer.params["beta"][...] = gamma, beta
    out_fast = layer(x, training=True)
    dx_fast = layer.backward(dout)
    out, cache = reference.batchnorm_forward(x, gamma, beta, eps=1e-3)
    dx, dgamma, dbeta = reference.batchnorm_backward(dout, cache)
    np.testing.assert_allclose(out, out_fast, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(dx, dx_fast, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(dgamma, layer.grads["gamma"], rtol=TOL, atol=TOL)
    np.testing.assert_allclose(dbeta, layer.grads["beta"], rtol=TOL, atol=TOL)


def test_staged_batchnorm_matches_numerical_gradients():
    rng = np.random.default_rng(3)
    x, gamma, beta = rng.standard_normal((5, 3)), rng.uniform(0.5, 2, 3), rng.normal(size=3)
    probe = rng.standard_normal((5, 3))

    def loss() -> float:
        return float(np.sum(reference.batchnorm_forward(x, gamma, beta)[0] * probe))

    dx, dgamma, dbeta = reference.batchnorm_backward(
        probe, reference.batchnorm_forward(x, gamma, beta)[1])
    for analytic, value in ((dx, x), (dgamma, gamma), (dbeta, beta)):
        np.testing.assert_allclose(analytic, numerical_gradient(loss, value), rtol=1e-6,
                                   atol=1e-8)


@pytest.mark.parametrize("make_fast, step", [
    (lambda: Adam(1e-2), functools.partial(reference.adam_step, lr=1e-2)),
    (lambda: SGD(0.05, momentum=0.9, weight_decay=1e-3),
     functools.partial(reference.sgd_step, lr=0.05, momentum=0.9, weight_decay=1e-3)),
])
def test_reference_loop_equals_fit(make_fast, step):
    """Same seed, same shuffling, same dropout masks: the same weights and losses."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((48, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)

    def build() -> Sequential:
        # no bias before batch norm: its true gradient is 0, and Adam would scale the
        # rounding noise that stands in for it up to steps of size lr
        return Sequential([Dense(5, 8, bias=False), BatchNorm1d(8), ReLU(), Dropout(0.2),
                           Dense(8, 3)],
                          loss="cross_entropy", dtype="float64", seed=1, l2=1e-3)

    fast, slow = build(), build()
    history = fast.fit(X, y, epochs=3, batch_size=16, optimizer=make_fast(), seed=5,
                       verbose=0)
    decay = slow.decay_mask.astype(np.float64)
    losses = reference.fit(slow, X, y, epochs=3, batch_size=16,
                           update=functools.partial(step, decay=decay), seed=5)
    np.testing.assert_allclose(losses, history.history["loss"], rtol=TOL)
    np.testing.assert_allclose(slow.flat_params, fast.flat_params, rtol=TOL, atol=TOL)
    for name, value in fast.state_dict().items():
        np.testing.assert_allclose(slow.state_dict()[name], value, rtol=TOL, atol=TOL)
