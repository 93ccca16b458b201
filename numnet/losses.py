"""Loss functions: ``loss(prediction, target) -> float`` and ``backward() -> dL/dprediction``.

Calling a loss checks its inputs (shapes, finiteness, labels in range, probability rows,
sample weights), then runs ``forward``, the maths alone, on the checked arrays; the
training loop, whose data ``fit`` checked once, calls ``forward`` directly.

Every loss is a mean over the batch, so its gradient carries the factor ``1 / N``. With
``sample_weight`` ``w`` (shape ``(N,)``), the loss is ``mean_n(w_n * l_n)``, as in Keras.
The classification losses take *logits* (unnormalised scores), never probabilities:
working from logits lets the loss use log-sum-exp and stay finite for any finite input
whose spread (largest minus smallest logit of a row) is itself finite in the dtype.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from numnet import _kernels
from numnet._checks import check_finite, first_bad_index
from numnet.errors import ShapeError
from numnet.layers.activations import sigmoid
from numnet.layers.base import registry_name


@dataclass
class LossCheckCase:
    """One gradient check of a loss: a prediction, a target and optional sample weights."""

    loss: Loss
    prediction: np.ndarray
    target: Any
    sample_weight: np.ndarray | None = None


class Loss:
    """Base class. ``loss(prediction, target)`` checks its inputs, then calls ``forward``.

    ``forward(prediction, target, sample_weight)`` is the maths alone: it trusts that the
    inputs are what :meth:`__call__` would have made of them (float arrays of one dtype,
    targets of the prediction's shape or, for :class:`CrossEntropy`, integer labels,
    weights of shape ``(N,)``), and caches what ``backward`` needs. ``fit`` and
    ``evaluate`` check the whole data set once and then call ``forward`` on each batch.
    """

    #: every registered loss class, by its type name: numnet's by their ``name``
    #: (``"cross_entropy"``), others by their own ``name`` or ``"<module>.<qualified name>"``
    registry: ClassVar[dict[str, type[Loss]]] = {}
    name: ClassVar[str] = "loss"
    #: this class's key in the registry and in model files; None when not registered
    type_name: ClassVar[str | None] = None
    #: what ``fit`` checks targets against: ``"classes"`` (integer labels or probability
    #: rows), ``"binary"`` (values in [0, 1]) or ``"real"`` (anything finite)
    target_kind: ClassVar[str] = "real"

    def __init_subclass__(cls, register: bool = True, **kwargs: Any) -> None:
        """Register ``cls`` under its own ``name``, or else under ``<module>.<qualified
        name>`` (so a subclass of CrossEntropy is saved and read back as itself, never as
        CrossEntropy); classes defined in functions, private ones and ``register=False``
        are not registered. A name another class holds is an error."""
        super().__init_subclass__(**kwargs)
        key = cls.__dict__.get("name") if register else None
        if key is None and register:
            key = registry_name(cls, None)
        cls.type_name = key
        if key is None:
            return
        holder = Loss.registry.get(key)
        if holder is not None and (holder.__module__, holder.__qualname__) != (
                cls.__module__, cls.__qualname__):
            raise ValueError(f"loss name {key!r} is already taken by "
                             f"{holder.__module__}.{holder.__qualname__}; give "
                             f"{cls.__qualname__} a name of its own (name = "
                             f"'mypackage.{cls.__name__}')")
        Loss.registry[key] = cls

    def __init__(self) -> None:
        self._grad_args: tuple[Any, ...] | None = None

    def __call__(self, prediction: Any, target: Any, sample_weight: Any = None) -> float:
        """The mean loss over the batch, after checking every input.

        Raises :class:`~numnet.errors.ShapeError` for shapes that do not fit,
        :class:`~numnet.errors.NonFiniteError` for NaN or infinite values and
        :class:`ValueError` for targets outside what the loss takes (labels out of range,
        rows that are not probabilities, negative weights).
        """
        p = self._prediction(prediction)
        t = self.check_target(p, target)
        w = self._weights(sample_weight, p.shape[0], p.dtype)
        return self.forward(p, t, w)

    def forward(self, prediction: np.ndarray, target: np.ndarray,
                sample_weight: np.ndarray | None = None) -> float:
        raise NotImplementedError

    def backward(self) -> np.ndarray:
        raise NotImplementedError

    def check_target(self, prediction: np.ndarray, target: Any) -> np.ndarray:
        """Hook: ``target`` checked against ``prediction``, as ``forward`` takes it."""
        return self._matching_target(prediction, target)

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def gradcheck_cases(cls) -> list[LossCheckCase]:
        """Examples for the gradient checks; every registered loss must give some."""
        return []

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

    def _weights(self, sample_weight: Any, n: int, dtype: np.dtype[Any]) -> np.ndarray | None:
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

    def _cached(self) -> tuple[Any, ...]:
        if self._grad_args is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._grad_args


def _examples() -> Iterator[tuple[int, np.random.Generator, np.ndarray, np.ndarray]]:
    """``(n, rng, logits (n, 5), weights (n,))`` for batches of 1, 4 and 7: gradient checks."""
    for n in (1, 4, 7):
        rng = np.random.default_rng(n)
        yield n, rng, rng.standard_normal((n, 5)) * 2, rng.random(n) + 0.5


def _row_scale(w: np.ndarray | None, n: int, ndim: int, dtype: np.dtype[Any]) -> Any:
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

    def forward(self, prediction: np.ndarray, target: np.ndarray,
                sample_weight: np.ndarray | None = None) -> float:
        n = prediction.shape[0]
        diff = prediction - target
        per_sample = (diff * diff).reshape(n, -1).mean(axis=1)
        self._grad_args = (diff, sample_weight)
        return self._reduce(per_sample, sample_weight)

    def backward(self) -> np.ndarray:
        diff, w = self._cached()
        n = diff.shape[0]
        per_sample_size = diff.size // n
        return diff * (2 / per_sample_size) * _row_scale(w, n, diff.ndim, diff.dtype)

    @classmethod
    def gradcheck_cases(cls) -> list[LossCheckCase]:
        cases = []
        for n, rng, z, w in _examples():
            cases += [LossCheckCase(cls(), z, rng.standard_normal((n, 5))),
                      LossCheckCase(cls(), z, rng.standard_normal((n, 5)), w),
                      LossCheckCase(cls(), z[:, :1], rng.standard_normal(n))]  # (N,) target
        return cases


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

    With integer targets ``forward`` computes the gradient too, in the same pass over the
    logits (:func:`numnet._kernels.softmax_cross_entropy`: per row the maximum, the
    exponentials kept as the gradient's softmax, their sum), and ``backward`` returns it.
    """

    name = "cross_entropy"
    target_kind = "classes"

    def forward(self, prediction: np.ndarray, target: np.ndarray,
                sample_weight: np.ndarray | None = None) -> float:
        if target.ndim == 1:  # integer labels: the loss and its gradient in one pass
            grad = np.empty_like(prediction)
            loss, _ = _kernels.softmax_cross_entropy(prediction, target, sample_weight, grad,
                                                     count=False)
            self._grad_args = (grad,)
            return loss
        log_p = log_softmax(prediction)  # probability rows
        per_sample = -(target * log_p).sum(axis=1)
        self._grad_args = (log_p, target, sample_weight)
        return self._reduce(per_sample, sample_weight)

    def backward(self) -> np.ndarray:
        cached = self._cached()
        if len(cached) == 1:  # computed with the loss
            grad: np.ndarray = cached[0]
            return grad
        log_p, target, w = cached
        grad = np.exp(log_p)
        grad -= target
        grad *= _row_scale(w, log_p.shape[0], 2, grad.dtype)
        return grad

    def check_target(self, prediction: np.ndarray, target: Any) -> np.ndarray:
        """Integer labels ``(N,)`` (or ``(N, 1)``) as intp, or probability rows ``(N, C)``."""
        if prediction.ndim != 2:
            raise ShapeError(f"CrossEntropy expects logits of shape (N, C), got "
                             f"{prediction.shape}")
        n, c = prediction.shape
        target = np.asarray(target)
        if target.ndim == 1 or (target.ndim == 2 and target.shape == (n, 1) and c > 1):
            return self._labels(target.reshape(-1), n, c)
        rows = self._matching_target(prediction, target)
        self._check_probabilities(rows)
        return rows

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
            at = first_bad_index(t < 0)
            raise ValueError(f"CrossEntropy: target row {at[0]} has a negative entry {t[at]}")
        sums = t.sum(axis=1)
        off = np.abs(sums - 1) > 1e-3
        if off.any():
            i = first_bad_index(off)[0]
            raise ValueError(
                f"CrossEntropy: target row {i} sums to {sums[i]:.6g}, expected one-hot or "
                "probability rows summing to 1 (or integer class labels of shape (N,))"
            )

    @classmethod
    def gradcheck_cases(cls) -> list[LossCheckCase]:
        cases = []
        for n, rng, z, w in _examples():
            labels = rng.integers(0, 5, n)
            rows = rng.random((n, 5)) + 0.05
            rows /= rows.sum(axis=1, keepdims=True)
            cases += [LossCheckCase(cls(), z, labels), LossCheckCase(cls(), z, labels, w),
                      LossCheckCase(cls(), z, np.eye(5)[labels]),
                      LossCheckCase(cls(), z, rows), LossCheckCase(cls(), z, rows, w)]
        # large logits: the log-sum-exp keeps them finite
        cases.append(LossCheckCase(cls(), np.array([[30.0, -20.0, 5.0], [-40.0, 10.0, 12.0]]),
                                   np.array([2, 0])))
        return cases


class BinaryCrossEntropy(Loss):
    r"""Sigmoid binary cross-entropy from logits.

    For logit ``z`` and target ``t`` in [0, 1] (element-wise, mean over all elements)::

        l = max(z, 0) - z t + log(1 + exp(-|z|))      (= -t log s(z) - (1-t) log(1-s(z)))
        dL/dz = (sigmoid(z) - t) / (N * D)

    The first form never takes ``exp`` of a large positive number, so it is stable for any
    finite ``z``.
    """

    name = "binary_cross_entropy"
    target_kind = "binary"

    def forward(self, prediction: np.ndarray, target: np.ndarray,
                sample_weight: np.ndarray | None = None) -> float:
        z, t, n = prediction, target, prediction.shape[0]
        elementwise = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
        self._grad_args = (z, t, sample_weight)
        return self._reduce(elementwise.reshape(n, -1).mean(axis=1), sample_weight)

    def check_target(self, prediction: np.ndarray, target: Any) -> np.ndarray:
        t = self._matching_target(prediction, target)
        outside = (t < 0) | (t > 1)
        if outside.any():
            i = first_bad_index(outside)
            raise ValueError(
                f"BinaryCrossEntropy: target at index {i} is {t[i]}, expected values in [0, 1]"
            )
        return t

    def backward(self) -> np.ndarray:
        z, t, w = self._cached()
        n = z.shape[0]
        per_sample_size = z.size // n
        scale = _row_scale(w, n, z.ndim, z.dtype)
        return (sigmoid(z) - t) * (1 / per_sample_size) * scale

    @classmethod
    def gradcheck_cases(cls) -> list[LossCheckCase]:
        cases = []
        for n, rng, z, w in _examples():
            cases += [LossCheckCase(cls(), z, rng.random((n, 5))),
                      LossCheckCase(cls(), z, (rng.random((n, 5)) > 0.5).astype(float), w)]
        z = np.array([[30.0, -20.0, 5.0], [-40.0, 10.0, 12.0]])  # large logits stay finite
        cases.append(LossCheckCase(cls(), z, np.random.default_rng(0).random(z.shape)))
        return cases


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


def get_loss(spec: str | Loss, config: dict[str, Any] | None = None) -> Loss:
    """A loss instance from an instance, or from a name such as ``"cross_entropy"``.

    The name may be an alias (``"mse"``, ``"bce"``, Keras's names) or the type name of any
    registered :class:`Loss` subclass (:attr:`Loss.type_name`); ``config`` holds the
    constructor's arguments, as :meth:`Loss.get_config` gives them.
    """
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, str):
        name = ALIASES.get(spec.lower(), spec)
        if name in Loss.registry:
            cls = Loss.registry[name]
            try:
                return cls(**(config or {}))
            except TypeError as exc:
                raise ValueError(f"loss {name!r} ({cls.__qualname__}): bad arguments "
                                 f"{config}: {exc}") from exc
    known = sorted(set(ALIASES) | set(Loss.registry))
    raise ValueError(f"unknown loss {spec!r}: expected a Loss or one of {known}")
