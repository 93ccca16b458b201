"""Optimisers: they update a model's parameters from its gradients.

An optimiser works on the model's flat parameter and gradient vectors, so one step is a
few vectorised operations over every parameter at once.
"""

from __future__ import annotations

from typing import Any

from numnet._checks import real_number


class Optimizer:
    """Base class: ``step(model)`` applies one update using ``model.flat_grads``."""

    def __init__(self, lr: float) -> None:
        self.lr = real_number(lr, f"{type(self).__name__} lr", low=0.0, low_open=True)

    def step(self, model: Any) -> None:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"lr": self.lr}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    r"""Plain stochastic gradient descent: ``theta <- theta - lr * g``."""

    def step(self, model: Any) -> None:
        model.flat_params -= model.flat_params.dtype.type(self.lr) * model.flat_grads
