"""Element-wise activations, the softmax, and the identity.

Each one caches what its backward needs: ReLU its mask, Sigmoid/Tanh/Softmax their output.
None of them has parameters.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numnet import _kernels
from numnet._checks import real_number
from numnet.layers.base import GradCheckCase, Layer


class _Activation(Layer):
    """Shared plumbing: an empty config and gradient checks on a few shapes."""

    def get_config(self) -> dict[str, Any]:
        return {"dtype": self.dtype.name}

    @classmethod
    def gradcheck_cases(cls) -> list[GradCheckCase]:
        rng = np.random.default_rng(1)
        return [GradCheckCase(cls(), rng.standard_normal(shape))
                for shape in ((1, 4), (6, 3), (2, 3, 5))]


class ReLU(_Activation):
    r"""Rectified linear unit.

    Forward: ``y = max(x, 0)``. Backward: ``dx = g * [x > 0]`` (the subgradient at 0 is 0).
    Forward keeps a reference to ``x`` (no copy); the mask ``x > 0`` is never stored, but
    read from ``x`` in backward's single pass, so inference never pays for it. Both passes
    run over memory in order (:func:`numnet._kernels.activate`): ``y`` and ``dx`` keep the
    memory layout of ``x`` and ``g`` (channels-last images after a Conv2D stay so).
    """

    init_family = "he_normal"
    can_die = True

    def __init__(self, dtype: Any = None) -> None:
        super().__init__(dtype)
        self.x: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.x = x
        return _kernels.activate(x, "relu")

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return _kernels.relu_backward(grad_out, self._need_cache("x"))


class LeakyReLU(_Activation):
    r"""Leaky ReLU with slope ``alpha`` for negative inputs.

    Forward: ``y = x`` if ``x > 0`` else ``alpha * x``.
    Backward: ``dx = g`` where ``x > 0``, ``alpha * g`` elsewhere. Forward keeps a reference
    to ``x``; both passes run as :class:`ReLU`'s do.
    """

    init_family = "he_normal"

    def __init__(self, alpha: float = 0.01, dtype: Any = None) -> None:
        super().__init__(dtype)
        self.alpha = real_number(alpha, "LeakyReLU alpha", low=0.0)
        self.x: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.x = x
        return _kernels.activate(x, "leaky_relu", self.alpha)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return _kernels.relu_backward(grad_out, self._need_cache("x"), self.alpha)

    def get_config(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "dtype": self.dtype.name}

    @classmethod
    def gradcheck_cases(cls) -> list[GradCheckCase]:
        rng = np.random.default_rng(2)
        return [GradCheckCase(cls(alpha), rng.standard_normal(shape))
                for alpha, shape in ((0.1, (1, 4)), (0.2, (6, 3)), (0.01, (2, 3, 5)))]


def fused_activation(layer: Layer) -> tuple[str, float] | None:
    """``(kind, alpha)`` as :func:`numnet._kernels.bias_act` names them when a layer with
    weights may apply ``layer`` (the next in a model) itself, in one pass over its own
    output: a ReLU or a LeakyReLU (not subclasses, whose maths may differ); else None."""
    if type(layer) is ReLU:
        return "relu", 0.0
    if type(layer) is LeakyReLU:
        return "leaky_relu", layer.alpha
    return None


def activation_kernel(layer: Layer) -> tuple[str, float]:
    """:func:`fused_activation` of a layer that :meth:`Layer.fuses_with` accepted."""
    fused = fused_activation(layer)
    if fused is None:
        raise ValueError(f"{layer!r} cannot run fused with the layer before it")
    return fused


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function without overflow: exp is only taken of ``-|x|``."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid(_Activation):
    r"""Logistic sigmoid.

    Forward: ``y = 1 / (1 + exp(-x))``, computed from ``exp(-|x|)`` so large ``|x|`` gives
    no overflow warning. Backward: ``dx = g * y * (1 - y)``.
    """

    init_family = "glorot_uniform"
    saturation = (0.0, 1.0)

    def __init__(self, dtype: Any = None) -> None:
        super().__init__(dtype)
        self.y: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.y = sigmoid(x)
        return self.y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        y = self._need_cache("y")
        return grad_out * y * (1 - y)


class Tanh(_Activation):
    r"""Hyperbolic tangent. Forward: ``y = tanh(x)``. Backward: ``dx = g * (1 - y^2)``."""

    init_family = "glorot_uniform"
    saturation = (-1.0, 1.0)

    def __init__(self, dtype: Any = None) -> None:
        super().__init__(dtype)
        self.y: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.y = np.tanh(x)
        return self.y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        y = self._need_cache("y")
        return grad_out * (1 - y * y)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis``, shifted by the maximum so ``exp`` never overflows."""
    shifted = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    e /= e.sum(axis=axis, keepdims=True)
    return e


class Softmax(_Activation):
    r"""Softmax over the last axis.

    Forward: ``y_i = exp(x_i - m) / sum_j exp(x_j - m)`` with ``m = max_j x_j``.

    Backward is the full Jacobian-vector product. The Jacobian is
    ``dy_i/dx_j = y_i (delta_ij - y_j)``, so ``dx_j = sum_i g_i y_i (delta_ij - y_j)``::

        dx = y * (g - sum(g * y, axis=-1, keepdims=True))

    (not ``g * y * (1 - y)``, which keeps only the diagonal of the Jacobian).
    For classification, prefer a final Identity with :class:`numnet.losses.CrossEntropy`,
    which works from logits and is both faster and more stable.
    """

    init_family = "glorot_uniform"

    def __init__(self, dtype: Any = None) -> None:
        super().__init__(dtype)
        self.y: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.y = softmax(x)
        return self.y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        y = self._need_cache("y")
        return y * (grad_out - np.sum(grad_out * y, axis=-1, keepdims=True))


class Identity(_Activation):
    """``y = x``; ``dx = g``. A placeholder for "no activation" (e.g. before a logit loss)."""

    init_family = "glorot_uniform"

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out
