"""Layers that only change the shape of their input."""

from __future__ import annotations

from typing import Any

import numpy as np

from numnet.layers.base import GradCheckCase, Layer


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
        self.in_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out.reshape(self._need_cache("in_shape"))

    def get_config(self) -> dict[str, Any]:
        return {"dtype": self.dtype.name}

    @classmethod
    def gradcheck_cases(cls) -> list[GradCheckCase]:
        rng = np.random.default_rng(4)
        return [GradCheckCase(cls(), rng.standard_normal(shape))
                for shape in ((1, 4), (3, 2, 5), (2, 3, 2, 2))]
