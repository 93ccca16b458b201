"""Fully connected (affine) layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from numnet._checks import positive_int
from numnet.errors import ShapeError
from numnet.init import InitSpec
from numnet.layers.base import GradCheckCase, Layer


class Dense(Layer):
    r"""Affine layer ``y = x W + b``.

    Shapes: ``x`` is ``(N, in_features)``, ``W`` is ``(in_features, out_features)``,
    ``b`` is ``(out_features,)``, ``y`` is ``(N, out_features)``.

    Backward, with ``g = dL/dy`` of shape ``(N, out_features)``::

        dL/dx = g W^T            (N, in_features)
        dL/dW = x^T g            (in_features, out_features)
        dL/db = sum_n g[n, :]    (out_features,)

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the input and output feature axes.
    init : str or callable, optional
        Weight initialiser (see :mod:`numnet.init`). ``None`` lets a model pick He for a
        ReLU-family activation after this layer and Glorot otherwise; ``repr`` shows the
        one in use.
    bias : bool
        Whether to add ``b``.
    dtype : str or numpy dtype, optional
        ``float32`` (default) or ``float64``.
    seed : int, optional
        Seed for the initial weights when the layer is used on its own; a model re-draws
        them from its own seed.
    """

    decay_keys = ("W",)
    weight_key = "W"

    def __init__(self, in_features: int, out_features: int, init: InitSpec = None,
                 bias: bool = True, dtype: Any = None, seed: int | None = None) -> None:
        super().__init__(dtype)
        self.in_features = positive_int(in_features, "Dense in_features")
        self.out_features = positive_int(out_features, "Dense out_features")
        self._set_init(init)
        self.bias = bool(bias)
        self._add_param("W", (self.in_features, self.out_features))
        if self.bias:
            self._add_param("b", (self.out_features,))
        self.x: np.ndarray | None = None
        self.initialize(np.random.default_rng(seed))

    def initialize(self, rng: np.random.Generator) -> None:
        super().initialize(rng)
        self.init_weight(rng)
        if self.bias:
            self.params["b"].fill(0)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.in_features,)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if tuple(input_shape) != (self.in_features,):
            raise ShapeError(
                f"{self!r} expects {self.in_features} input features, got input shape "
                f"{tuple(input_shape)}"
            )
        return (self.out_features,)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.x = x
        y = x @ self.params["W"]
        if self.bias:
            y += self.params["b"]
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        self.backward_params(grad_out)
        return grad_out @ self.params["W"].T

    def backward_params(self, grad_out: np.ndarray) -> None:
        """``dL/dW`` and ``dL/db`` only; a model's first layer needs no ``dL/dx``."""
        x = self._need_cache("x")
        np.matmul(x.T, grad_out, out=self.grads["W"])
        if self.bias:
            np.sum(grad_out, axis=0, out=self.grads["b"])

    def get_config(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "init": self.init if isinstance(self.init, str) else None,
            "bias": self.bias,
            "dtype": self.dtype.name,
        }

    @classmethod
    def gradcheck_cases(cls) -> list[GradCheckCase]:
        rng = np.random.default_rng(0)
        return [GradCheckCase(cls(5, 3, seed=1), rng.standard_normal((batch, 5)))
                for batch in (1, 4)] + [
            GradCheckCase(cls(3, 4, bias=False, seed=2), rng.standard_normal((5, 3)))]
