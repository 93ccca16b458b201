"""Loss functions: ``forward(prediction, target) -> float`` and ``backward() -> dL/dprediction``.

Every loss is a mean over the batch, so its gradient carries the factor ``1 / N``. With
``sample_weight`` ``w`` (shape ``(N,)``), the loss is ``mean_n(w_n * l_n)``, as in Keras.
The classification losses take *logits* (unnormalised scores), never probabilities:
working from logits lets the loss use log-sum-exp and stay finite for any finite input
whose spread (largest minus smallest logit of a row) is itself finite in the dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numnet._checks import check_finite, first_bad_index
from numnet.errors import ShapeError
from numnet.layers.activations import sigmoid


class Loss:
    """Base class: validates inputs, caches what backward needs."""

    registry: dict[str, type[Loss]] = {}
    name = "loss"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:  # a subclass that keeps its parent's name replaces nothing
            Loss.registry[cls.name] = cls

    def __init__(self) -> None:
        self._grad_args: tuple | None = None

    def __call__(self, prediction: Any, target: Any, sample_weight: Any = None) -> float:
        return self.forward(prediction, target, sample_weight)

    def forward(self, prediction: Any, target: Any, sample_weight: Any = None) -> float:
        raise NotImplementedError

    def backward(self) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # -- shared validation --------------------------------------------------------------
    def _prediction(self, prediction: Any) -> np.ndarray:
        prediction = np.asarray(prediction)
        if prediction.dtype.kind != "f":
            prediction = prediction.astype(np.float64)
        if prediction.ndim < 1 or prediction.shape[0] == 0:
            raise ShapeError(
                f"{type(self).__name__}: prediction must be a non-empty batch (N, ...), "
                f"got shape {prediction.shape}"
            )
        check_finite(prediction, f"{type(self).__name__} prediction")
        return prediction

    def _matching_target(self, prediction: np.ndarray, target: Any) -> np.ndarray:
        """Target of the prediction's shape; (N,) is accepted for an (N, 1) prediction."""
        target = np.asarray(target)
        if target.shape != prediction.shape and target.shape == prediction.shape[:1] \
                and prediction.shape[1:] == (1,):
            target = target.reshape(prediction.shape)
        if target.shape != prediction.shape:
            raise ShapeError(
                f"{type(self).__name__}: target shape {target.shape} does not match "
                f"prediction shape {prediction.shape}"
            )
        check_finite(target, f"{type(self).__name__} target")
        return target.astype(prediction.dtype, copy=False)

    def _weights(self, sample_weight: Any, n: int, dtype: np.dtype) -> np.ndarray | None:
        if sample_weight is None:
            return None
        w = np.asarray(sample_weight, dtype=dtype)
        if w.shape != (n,):
            raise ShapeError(
                f"{type(self).__name__}: sample_weight must have shape ({n},), got {w.shape}"
            )
        check_finite(w, f"{type(self).__name__} sample_weight")
        if (w < 0).any():
            raise ValueError(f"{type(self).__name__}: sample_weight must be >= 0")
        return w

    @staticmethod
    def _reduce(per_sample: np.ndarray, w: np.ndarray | None) -> float:
        if w is not None:
            per_sample = per_sample * w
        return float(per_sample.mean())

    def _cached(self) -> tuple:
        if self._grad_args is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._grad_args


def _row_scale(w: np.ndarray | None, n: int, ndim: int, dtype: np.dtype) -> Any:
    """The factor ``w_n / N`` shaped to broadcast over a gradient of rank ``ndim``."""
    if w is None:
        return dtype.type(1.0 / n)
    return (w / n).reshape((n,) + (1,) * (ndim - 1))


class MeanSquaredError(Loss):
    r"""Mean squared error.

    ``l_n = mean_j (p_nj - t_nj)^2`` and ``L = mean_n l_n`` (the mean over all elements).
    Gradient: ``dL/dp = 2 (p - t) / (N * D)`` with ``D`` the number of outputs per sample.
    """

    name = "mse"

    def forward(self, prediction: Any, target: Any, sample_weight: Any = None) -> float:
        p = self._prediction(prediction)
        t = self._matching_target(p, target)
        n = p.shape[0]
        diff = p - t
        per_sample = (diff * diff).reshape(n, -1).mean(axis=1)
        w = self._weights(sample_weight, n, p.dtype)
        self._grad_args = (diff, w)
        return self._reduce(per_sample, w)

    def backward(self) -> np.ndarray:
        diff, w = self._cached()
        n = diff.shape[0]
        per_sample_size = diff.size // n
        return diff * (2 / per_sample_size) * _row_scale(w, n, diff.ndim, diff.dtype)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """``log(softmax(z))`` along the last axis via log-sum-exp (finite for finite ``z``)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class CrossEntropy(Loss):
    r"""Softmax cross-entropy from logits.

    With ``log p = log_softmax(z)`` (computed by log-sum-exp, so logits of 1e4 are fine):

    * integer targets ``y`` (shape ``(N,)``): ``l_n = -log p_{n, y_n}``
    * one-hot or probability rows ``T`` (shape ``(N, C)``): ``l_n = -sum_c T_nc log p_nc``

    Gradient with respect to the logits (softmax and loss fused)::

        dL/dz = (softmax(z) - T) / N        (T the one-hot rows of integer targets)

    Integer targets must be whole numbers in ``[0, C)``; probability rows must be
    non-negative and sum to 1.
    """

    name = "cross_entropy"

    def forward(self, prediction: Any, target: Any, sample_weight: Any = None) -> float:
        z = self._prediction(prediction)
        if z.ndim != 2:
            raise ShapeError(f"CrossEntropy expects logits of shape (N, C), got {z.shape}")
        n, c = z.shape
        target = np.asarray(target)
        log_p = log_softmax(z)
        w = self._weights(sample_weight, n, z.dtype)
        if target.ndim == 1 or (target.ndim == 2 and target.shape == (n, 1) and c > 1):
            labels = self._labels(target.reshape(-1), n, c)
            per_sample = -log_p[np.arange(n), labels]
            self._grad_args = (log_p, labels, w)
        else:
            t = self._matching_target(z, target)
            self._check_probabilities(t)
            per_sample = -(t * log_p).sum(axis=1)
            self._grad_args = (log_p, t, w)
        return self._reduce(per_sample, w)

    def backward(self) -> np.ndarray:
        log_p, target, w = self._cached()
        n = log_p.shape[0]
        grad = np.exp(log_p)
        if target.ndim == 1:
            grad[np.arange(n), target] -= 1
        else:
            grad -= target
        grad *= _row_scale(w, n, 2, grad.dtype)
        return grad

    @staticmethod
    def _labels(target: np.ndarray, n: int, c: int) -> np.ndarray:
        if target.shape[0] != n:
            raise ShapeError(f"CrossEntropy: {target.shape[0]} labels for a batch of {n} logits")
        if target.dtype.kind == "f":
            check_finite(target, "CrossEntropy labels")
            fractional = target != np.round(target)
            if fractional.any():
                i = first_bad_index(fractional)[0]
                raise ValueError(
                    f"CrossEntropy: label at index {i} is {target[i]}, expected a whole class "
                    f"index in [0, {c})"
                )
        elif target.dtype.kind not in "iub":
            raise ValueError(
                f"CrossEntropy: labels must be integers in [0, {c}), got dtype {target.dtype}"
            )
        labels = target.astype(np.intp)
        bad = (labels < 0) | (labels >= c)
        if bad.any():
            i = first_bad_index(bad)[0]
            raise ValueError(
                f"CrossEntropy: label at index {i} is {target[i]}, expected a class index "
                f"in [0, {c}) for {c} logits"
            )
        return labels

    @staticmethod
    def _check_probabilities(t: np.ndarray) -> None:
        if (t < 0).any():
            i = first_bad_index(t < 0)
            raise ValueError(f"CrossEntropy: target row {i[0]} has a negative entry {t[i]}")
        sums = t.sum(axis=1)
        off = np.abs(sums - 1) > 1e-3
        if off.any():
            i = first_bad_index(off)[0]
            raise ValueError(
                f"CrossEntropy: target row {i} sums to {sums[i]:.6g}, expected one-hot or "
                "probability rows summing to 1 (or integer class labels of shape (N,))"
            )


class BinaryCrossEntropy(Loss):
    r"""Sigmoid binary cross-entropy from logits.

    For logit ``z`` and target ``t`` in [0, 1] (element-wise, mean over all elements)::

        l = max(z, 0) - z t + log(1 + exp(-|z|))      (= -t log s(z) - (1-t) log(1-s(z)))
        dL/dz = (sigmoid(z) - t) / (N * D)

    The first form never takes ``exp`` of a large positive number, so it is stable for any
    finite ``z``.
    """

    name = "binary_cross_entropy"

    def forward(self, prediction: Any, target: Any, sample_weight: Any = None) -> float:
        z = self._prediction(prediction)
        t = self._matching_target(z, target)
        outside = (t < 0) | (t > 1)
        if outside.any():
            i = first_bad_index(outside)
            raise ValueError(
                f"BinaryCrossEntropy: target at index {i} is {t[i]}, expected values in [0, 1]"
            )
        n = z.shape[0]
        elementwise = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
        w = self._weights(sample_weight, n, z.dtype)
        self._grad_args = (z, t, w)
        return self._reduce(elementwise.reshape(n, -1).mean(axis=1), w)

    def backward(self) -> np.ndarray:
        z, t, w = self._cached()
        n = z.shape[0]
        per_sample_size = z.size // n
        scale = _row_scale(w, n, z.ndim, z.dtype)
        return (sigmoid(z) - t) * (1 / per_sample_size) * scale


ALIASES = {
    "mse": "mse",
    "mean_squared_error": "mse",
    "meansquarederror": "mse",
    "cross_entropy": "cross_entropy",
    "crossentropy": "cross_entropy",
    "categorical_crossentropy": "cross_entropy",
    "sparse_categorical_crossentropy": "cross_entropy",
    "binary_cross_entropy": "binary_cross_entropy",
    "binarycrossentropy": "binary_cross_entropy",
    "binary_crossentropy": "binary_cross_entropy",
    "bce": "binary_cross_entropy",
}


def get_loss(spec: str | Loss) -> Loss:
    """A loss instance from an instance, or from a name such as ``"cross_entropy"``."""
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, str) and spec.lower() in ALIASES:
        return Loss.registry[ALIASES[spec.lower()]]()
    raise ValueError(f"unknown loss {spec!r}: expected a Loss or one of {sorted(ALIASES)}")
