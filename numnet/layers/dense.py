"""Fully connected (affine) layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from numnet import _kernels
from numnet._checks import positive_int
from numnet.errors import ShapeError
from numnet.init import InitSpec
from numnet.layers.activations import activation_kernel, fused_activation
from numnet.layers.base import GradCheckCase, Layer


class Dense(Layer):
    r"""Affine layer ``y = x W + b``.

    Shapes: ``x`` is ``(N, in_features)``, ``W`` is ``(in_features, out_features)``,
    ``b`` is ``(out_features,)``, ``y`` is ``(N, out_features)``.

    Backward, with ``g = dL/dy`` of shape ``(N, out_features)``::

        dL/dx = g W^T            (N, in_features)
        dL/dW = x^T g            (in_features, out_features)
        dL/db = sum_n g[n, :]    (out_features,)

    Followed by a :class:`~numnet.layers.ReLU` or :class:`~numnet.layers.LeakyReLU` in a
    model, the layer runs the pair as one (:meth:`forward_activated`,
    :meth:`backward_activated`): the bias and the activation are applied in one pass over
    the product, and in backward the activation's mask and the bias gradient's sum take
    one pass too (:mod:`numnet._kernels`); the values are those of the two layers run one
    after the other.

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
        self.activated = None  # the output of forward_activated; None after forward
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
        self.x, self.activated = x, None
        y = x @ self.params["W"]
        if self.bias:
            y += self.params["b"]
        return y

    def forward_activated(self, x: np.ndarray, activation: Layer,
                          training: bool = False) -> np.ndarray:
        """``activation(x W + b)`` for the ReLU or LeakyReLU that follows this layer
        (:func:`fuses_with`): the bias and the activation in one pass over the product.

        The output is kept for :meth:`backward_activated` (it has the sign of the
        activation's input, which is all the mask needs).
        """
        self.x = x
        y = x @ self.params["W"]
        kind, alpha = activation_kernel(activation)
        self.activated = _kernels.bias_act(y, self.params["b"] if self.bias else None,
                                           kind, alpha)
        self.activation_alpha = alpha
        return self.activated

    def backward_activated(self, grad_out: np.ndarray, input_grad: bool = True,
                           in_place: bool = False) -> np.ndarray | None:
        """Backward through the activation and this layer, after :meth:`forward_activated`.

        ``g = grad_out * [y > 0]`` (``alpha * grad_out`` where ``y <= 0`` for LeakyReLU)
        and ``dL/db = sum_n g[n, :]`` in one pass, then ``dL/dW = x^T g`` and, with
        ``input_grad``, ``dL/dx = g W^T`` (else None). ``in_place``: ``grad_out`` is the
        caller's scratch and may hold ``g``.
        """
        y = self._need_cache("activated")
        g = _kernels.relu_backward(grad_out, y, self.activation_alpha,
                                   out=grad_out if in_place else None,
                                   bias_grad=self.grads["b"] if self.bias else None)
        np.matmul(self._need_cache("x").T, g, out=self.grads["W"])
        return g @ self.params["W"].T if input_grad else None

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

    def fuses_with(self, layer: Layer) -> bool:
        """Whether :meth:`forward_activated` takes ``layer`` (a ReLU or LeakyReLU), unless
        a subclass changed :meth:`forward` or :meth:`backward` without it."""
        return fused_activation(layer) is not None and self._fused_maths_are_its_own()

    @classmethod
    def gradcheck_cases(cls) -> list[GradCheckCase]:
        rng = np.random.default_rng(0)
        return [GradCheckCase(cls(5, 3, seed=1), rng.standard_normal((batch, 5)))
                for batch in (1, 4)] + [
            GradCheckCase(cls(3, 4, bias=False, seed=2), rng.standard_normal((5, 3)))]
