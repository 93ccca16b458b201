"""Fully connected (affine) layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from numnet._checks import positive_int
from numnet.errors import ShapeError
from numnet.init import InitSpec, get_initializer, zeros
from numnet.layers.base import Layer


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
        ReLU-family activation after this layer and Glorot otherwise.
    bias : bool
        Whether to add ``b``.
    dtype : str or numpy dtype, optional
        ``float32`` (default) or ``float64``.
    seed : int, optional
        Seed for the initial weights when the layer is used on its own; a model re-draws
        them from its own seed.
    """

    decay_keys = ("W",)

    def __init__(self, in_features: int, out_features: int, init: InitSpec = None,
                 bias: bool = True, dtype: Any = None, seed: int | None = None) -> None:
        super().__init__(dtype)
        self.in_features = positive_int(in_features, "Dense in_features")
        self.out_features = positive_int(out_features, "Dense out_features")
        self.init = init
        self._init_fn = get_initializer(init)  # validates the name now, not at first use
        self.bias = bool(bias)
        self._add_param("W", (self.in_features, self.out_features))
        if self.bias:
            self._add_param("b", (self.out_features,))
        self.x: np.ndarray | None = None
        self.initialize(np.random.default_rng(seed))

    def initialize(self, rng: np.random.Generator) -> None:
        super().initialize(rng)
        self.params["W"][...] = self._init_fn(self.params["W"].shape, rng, self.dtype)
        if self.bias:
            self.params["b"][...] = zeros(self.params["b"].shape, dtype=self.dtype)

    def set_default_init(self, name: str) -> None:
        """Use ``name`` as the initialiser unless the user chose one (called by models)."""
        if self.init is None:
            self._init_fn = get_initializer(name)

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
        x = self._as_input(x, ndim=2)
        if x.shape[1] != self.in_features:
            raise ShapeError(
                f"{self!r} expects input of shape (N, {self.in_features}), got {x.shape}"
            )
        self.x = x
        y = x @ self.params["W"]
        if self.bias:
            y += self.params["b"]
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        grad_out = self._grad(grad_out)
        self._param_grads(grad_out)
        return grad_out @ self.params["W"].T

    def backward_params(self, grad_out: np.ndarray) -> None:
        """``dL/dW`` and ``dL/db`` only; a model's first layer needs no ``dL/dx``."""
        self._param_grads(self._grad(grad_out))

    def _grad(self, grad_out: np.ndarray) -> np.ndarray:
        return self._as_grad(grad_out, (self._need_cache("x").shape[0], self.out_features))

    def _param_grads(self, grad_out: np.ndarray) -> None:
        np.matmul(self.x.T, grad_out, out=self.grads["W"])
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
