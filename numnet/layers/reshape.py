"""Layers that only change the shape of their input."""

from __future__ import annotations

from typing import Any

import numpy as np

from numnet.errors import ShapeError
from numnet.layers.base import Layer


class Flatten(Layer):
    """Flatten every axis but the batch axis.

    Forward: ``(N, d1, d2, ...) -> (N, d1 * d2 * ...)``, a view when the input is contiguous.
    Backward: the gradient reshaped back to the input's shape.
    """

    def __init__(self, dtype: Any = None) -> None:
        super().__init__(dtype)
        self.in_shape: tuple[int, ...] | None = None

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (int(np.prod(input_shape, dtype=np.int64)),)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._as_input(x)
        if x.ndim < 1:
            raise ShapeError(f"Flatten expects a batch (N, ...), got a scalar of shape {x.shape}")
        self.in_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        in_shape = self._need_cache("in_shape")
        flat = (in_shape[0], int(np.prod(in_shape[1:], dtype=np.int64)))
        return self._as_grad(grad_out, flat).reshape(in_shape)

    def get_config(self) -> dict[str, Any]:
        return {"dtype": self.dtype.name}
