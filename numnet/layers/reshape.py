"""Layers that only change the shape of their input."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from numnet.errors import ShapeError
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
        # the size, not -1: an empty batch (a distributed rank's empty part) cannot infer it
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out.reshape(self._need_cache("in_shape"))

    def get_config(self) -> dict[str, Any]:
        return {"dtype": self.dtype.name}

    @classmethod
    def gradcheck_cases(cls) -> list[GradCheckCase]:
        rng = np.random.default_rng(4)
        return [GradCheckCase(cls(), rng.standard_normal(shape))
                for shape in ((1, 4), (3, 2, 5), (2, 3, 2, 2))]


class Reshape(Layer):
    """Give every sample a new shape: ``(N, *in_shape) -> (N, *shape)``.

    ``shape`` is per sample (the batch axis is kept) and may hold one ``-1``, inferred from
    the sample size, as in ``np.reshape``. ``Reshape((1, 28, 28))`` turns flat rows
    ``(N, 784)`` (what the CSV and ``flatten=True`` loaders give) into images for a
    :class:`~numnet.layers.Conv2D`.

    Forward: ``y = x.reshape(N, *shape)`` (a view when ``x`` is contiguous).
    Backward: ``dx = g.reshape(x.shape)``.

    Raises
    ------
    ValueError
        For a target with a size below 1 other than one ``-1``.
    ShapeError
        (from :meth:`output_shape`) when the sample size does not fit the target.
    """

    def __init__(self, shape: int | Sequence[int], dtype: Any = None) -> None:
        super().__init__(dtype)
        items = [shape] if isinstance(shape, (int, np.integer)) else shape
        if (isinstance(items, (str, bytes)) or not isinstance(items, Sequence) or not items
                or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool)
                           for d in items)):
            raise ValueError(f"Reshape shape must be an int or a non-empty sequence of ints "
                             f"(per sample, without the batch axis), got {shape!r}")
        if sum(d == -1 for d in items) > 1 or any(d < 1 and d != -1 for d in items):
            raise ValueError(f"Reshape shape must hold positive sizes and at most one -1, got "
                             f"{tuple(items)!r}")
        self.shape = tuple(int(d) for d in items)
        self.in_shape: tuple[int, ...] | None = None

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        size = int(np.prod(input_shape, dtype=np.int64))
        known = int(np.prod([d for d in self.shape if d != -1], dtype=np.int64))
        target = " x ".join(str(d) for d in self.shape)
        if -1 in self.shape:
            if size % known:
                raise ShapeError(f"{self!r} cannot reshape samples of shape "
                                 f"{tuple(input_shape)} ({size} values) to {self.shape}: "
                                 f"{size} is not a multiple of {known}")
            return tuple(size // known if d == -1 else d for d in self.shape)
        if size != known:
            raise ShapeError(f"{self!r} cannot reshape samples of shape {tuple(input_shape)} "
                             f"({size} values) to {self.shape} ({target} = {known} values)")
        return self.shape

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.in_shape = x.shape
        # a -1 resolved here: an empty batch (a distributed rank's empty part) cannot infer it
        shape = self.output_shape(x.shape[1:]) if -1 in self.shape else self.shape
        return x.reshape((x.shape[0], *shape))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out.reshape(self._need_cache("in_shape"))

    def get_config(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype.name}

    @classmethod
    def gradcheck_cases(cls) -> list[GradCheckCase]:
        rng = np.random.default_rng(5)
        return [GradCheckCase(cls((1, 4, 3)), rng.standard_normal((2, 12))),
                GradCheckCase(cls((-1, 2)), rng.standard_normal((1, 3, 2, 2)))]
