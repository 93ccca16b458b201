"""L2 regularisation in the loss (``Sequential(..., l2=...)``), the coupled twin of the
optimisers' ``weight_decay``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from numnet.layers import Dense, ReLU
from numnet.model import Sequential


def l2_model(l2):
    return Sequential([Dense(3, 4), ReLU(), Dense(4, 2)], loss="cross_entropy",
                      dtype="float64", seed=3, l2=l2)


def test_l2_adds_half_lambda_sum_of_squared_weights_and_lambda_w_to_gradients():
    x = np.random.default_rng(0).standard_normal((6, 3))
    y = np.array([0, 1, 1, 0, 1, 0])
    plain, regular = l2_model(0.0), l2_model(0.3)
    base = plain.loss_and_grad(x, y)
    value = regular.loss_and_grad(x, y)
    weights = [regular.layers[i].params["W"] for i in (0, 2)]
    assert value == pytest.approx(base + 0.15 * sum(float((w ** 2).sum()) for w in weights),
                                  rel=1e-12)
    for i in (0, 2):
        np.testing.assert_allclose(regular.layers[i].grads["W"],
                                   plain.layers[i].grads["W"] + 0.3 * weights[i // 2],
                                   rtol=1e-12)
        np.testing.assert_array_equal(regular.layers[i].grads["b"], plain.layers[i].grads["b"])
    assert regular.l2_penalty() == pytest.approx(value - base, rel=1e-12)


def test_l2_gradient_matches_finite_differences():
    model = l2_model(0.7)
    x = np.random.default_rng(1).standard_normal((5, 3))
    y = np.array([1, 0, 1, 1, 0])
    model.loss_and_grad(x, y)
    analytic = model.flat_grads.copy()
    numeric = np.zeros_like(analytic)
    for i in range(model.flat_params.size):
        old = model.flat_params[i]
        values = []
        for shift in (1e-6, -1e-6):
            model.flat_params[i] = old + shift
            values.append(model.loss_and_grad(x, y))
        model.flat_params[i] = old
        numeric[i] = (values[0] - values[1]) / 2e-6
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_l2_is_part_of_the_model_config():
    model = l2_model(0.25)
    config = json.loads(json.dumps(model.get_config()))
    assert config["l2"] == 0.25
    assert Sequential.from_config(config).l2 == 0.25
    del config["l2"]  # descriptions written before l2 existed still load
    assert Sequential.from_config(config).l2 == 0.0
    with pytest.raises(ValueError, match="l2 must be in"):
        l2_model(-0.1)
