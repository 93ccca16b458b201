"""A new layer in one file: Swish is defined here, and no other file knows about it.

Defining the class registers it (as ``<this module>.Swish``). From that alone:

* the registry test (``test_registry.py``) gradient-checks it with its own cases, as it
  checks every registered layer, and so does the test below;
* a model gives the Dense layer before it the initialiser Swish asks for (He);
* it is saved to and loaded from a model file, and shows in ``summary()``.

This is the checklist of CONTRIBUTING.md, done in a test file instead of a module of
numnet/layers/.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from numnet import gradcheck
from numnet.layers import Dense, Layer
from numnet.layers.activations import sigmoid
from numnet.layers.base import GradCheckCase
from numnet.model import Sequential


class Swish(Layer):
    r"""Swish (SiLU): ``y = x * s`` with ``s = sigmoid(x)``.

    Backward: ``dy/dx = s + x s (1 - s) = s (1 + x (1 - s))``, so ``dx = g * s * (1 + x (1 - s))``.
    """

    init_family = "he_normal"  # ReLU-like: the layer with weights before it gets He

    def __init__(self, dtype: Any = None) -> None:
        super().__init__(dtype)
        self.x: np.ndarray | None = None
        self.s: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.x, self.s = x, sigmoid(x)
        return x * self.s

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x, s = self._need_cache("x"), self._need_cache("s")
        return grad_out * s * (1 + x * (1 - s))

    def get_config(self) -> dict[str, Any]:
        return {"dtype": self.dtype.name}

    @classmethod
    def gradcheck_cases(cls) -> list[GradCheckCase]:
        rng = np.random.default_rng(0)
        return [GradCheckCase(cls(), 3 * rng.standard_normal(shape))
                for shape in ((1, 4), (5, 3), (2, 3, 4))]


def test_swish_is_registered_under_its_module():
    assert Swish.type_name == f"{__name__}.Swish"
    assert Layer.lookup(Swish.type_name) is Swish


def test_swish_passes_the_generic_gradient_check():
    worst = gradcheck.check_layer_class(Swish)
    assert set(worst) == {"train.input", "eval.input"}
    assert max(worst.values()) < 1e-6


def test_swish_values():
    x = np.array([[-2.0, 0.0, 1.0]])
    np.testing.assert_allclose(Swish(dtype="float64")(x), x / (1 + np.exp(-x)))


def test_the_dense_layer_before_swish_gets_he_initialisation():
    model = Sequential([Dense(400, 400), Swish(), Dense(400, 3)], seed=0)
    assert model.layers[0].params["W"].var() == pytest.approx(2 / 400, rel=0.05)
    assert "init='he_normal'" in repr(model.layers[0])
    assert "init='glorot_uniform'" in repr(model.layers[2])


def test_swish_is_saved_loaded_and_summarised(tmp_path):
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((40, 4)), rng.integers(0, 3, 40)
    model = Sequential([Dense(4, 8), Swish(), Dense(8, 3)], loss="cross_entropy", seed=2)
    model.fit(X, y, epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "swish.npz")
    loaded = Sequential.load(tmp_path / "swish.npz")
    assert isinstance(loaded.layers[1], Swish)
    np.testing.assert_array_equal(loaded.predict_logits(X), model.predict_logits(X))
    assert "1  Swish()" in loaded.summary()
