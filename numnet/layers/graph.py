"""Computational-graph nodes with two inputs: the chain rule one node at a time.

These are the building blocks of the classic "apple" example::

    apple, count, tax = 100, 2, 1.1
    mul_apple, mul_tax = Mul(), Mul()
    price = mul_tax.forward(mul_apple.forward(apple, count), tax)     # 220
    d_apple_price, d_tax = mul_tax.backward(1.0)                      # 1.1, 200
    d_apple, d_count = mul_apple.backward(d_apple_price)              # 2.2, 110

Inputs may be scalars or arrays that broadcast against each other; each gradient is
summed back to the shape of its input.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from numnet.errors import ShapeError
from numnet.layers.base import register_class


def broadcasting_pairs(seed: int) -> list[tuple[Any, Any]]:
    """Random ``(x, y)`` input pairs of equal and of broadcasting shapes, scalars included."""
    rng = np.random.default_rng(seed)
    shapes = [((), ()), ((1,), (1,)), ((3, 4), (3, 4)), ((3, 4), (4,)),
              ((2, 1, 3), (1, 5, 1)), ((), (2, 2))]
    return [(rng.standard_normal(sx), rng.standard_normal(sy)) for sx, sy in shapes]


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes along which an input of ``shape`` was broadcast."""
    grad = np.asarray(grad)
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad.reshape(shape)


class Node:
    """A two-input node: ``forward(x, y) -> z`` and ``backward(dz) -> (dx, dy)``.

    Subclasses are registered as layers are (``numnet.Add``, ...), and each gives input
    pairs for the gradient checks in ``gradcheck_inputs()``: the test suite checks every
    registered node with them.
    """

    #: every registered subclass, by its namespaced type name
    registry: ClassVar[dict[str, type[Node]]] = {}
    type_name: ClassVar[str | None] = None

    def __init_subclass__(cls, name: str | None = None, register: bool = True,
                          **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.type_name = register_class(Node.registry, cls, name, "graph node") if register \
            else None

    @classmethod
    def gradcheck_inputs(cls) -> list[tuple[Any, Any]]:
        """``(x, y)`` pairs to gradient-check ``cls()`` on (the base class has none)."""
        return []

    def __init__(self) -> None:
        self.x: np.ndarray | None = None
        self.y: np.ndarray | None = None

    def forward(self, x: Any, y: Any) -> Any:
        raise NotImplementedError

    def backward(self, grad_out: Any) -> tuple[Any, Any]:
        raise NotImplementedError

    def _cache(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        self.x, self.y = np.asarray(x), np.asarray(y)
        return self.x, self.y

    def _cached(self) -> tuple[np.ndarray, np.ndarray]:
        if self.x is None or self.y is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self.x, self.y

    def _as_grad(self, grad_out: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``grad_out`` broadcast to the output's shape (a scalar 1.0 starts a chain)."""
        shape = np.broadcast_shapes(x.shape, y.shape)
        grad_out = np.asarray(grad_out)
        if grad_out.shape == shape:
            return grad_out
        try:
            return np.broadcast_to(grad_out, shape).copy()  # writable, like any other result
        except ValueError:
            raise ShapeError(f"{self!r}.backward expects a gradient of the output's shape "
                             f"{shape} (or one that broadcasts to it), got {grad_out.shape}"
                             ) from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Add(Node):
    """``z = x + y``; ``dx = dz``, ``dy = dz`` (each summed to its input's shape)."""

    def forward(self, x: Any, y: Any) -> Any:
        x, y = self._cache(x, y)
        return x + y

    def backward(self, grad_out: Any) -> tuple[Any, Any]:
        x, y = self._cached()
        grad_out = self._as_grad(grad_out, x, y)
        return unbroadcast(grad_out, x.shape), unbroadcast(grad_out, y.shape)

    @classmethod
    def gradcheck_inputs(cls) -> list[tuple[Any, Any]]:
        return broadcasting_pairs(0)


class Mul(Node):
    """``z = x * y``; ``dx = dz * y``, ``dy = dz * x`` (each summed to its input's shape)."""

    def forward(self, x: Any, y: Any) -> Any:
        x, y = self._cache(x, y)
        return x * y

    def backward(self, grad_out: Any) -> tuple[Any, Any]:
        x, y = self._cached()
        grad_out = self._as_grad(grad_out, x, y)
        return unbroadcast(grad_out * y, x.shape), unbroadcast(grad_out * x, y.shape)

    @classmethod
    def gradcheck_inputs(cls) -> list[tuple[Any, Any]]:
        return broadcasting_pairs(1) + [(100.0, 2.0)]  # and the apple example
