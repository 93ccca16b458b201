"""Mini-batch training (``fit``) and evaluation (``evaluate``) for a :class:`Sequential`.

One training step on a batch is::

    forward -> loss (+ L2 term) -> backward -> check the loss and running statistics
            -> clip the global gradient norm (optional) -> optimiser step
            -> check the parameters are still finite (else put the old ones back and
               find out whether a gradient or the update went bad)

so a run that diverges stops at once with :class:`numnet.errors.TrainingDiverged`, naming
the epoch, the batch and the layer where the numbers went bad, and leaves the model at its
last finite weights.

Batches are gathered with one ``np.take`` per batch into buffers reused for the whole run
(or are plain views when ``shuffle=False``); the last, smaller batch is used too.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from numnet._checks import (
    all_finite,
    check_finite,
    first_bad_index,
    positive_int,
    real_number,
)
from numnet.callbacks import Callback, CallbackList, LearningRateScheduler, ProgressBar
from numnet.errors import NonFiniteError, ShapeError, TrainingDiverged
from numnet.losses import BinaryCrossEntropy, CrossEntropy
from numnet.optim import (
    Adam,
    LRSchedule,
    Optimizer,
    ReduceLROnPlateau,
    clip_grad_norm,
    get_optimizer,
)

EVAL_BATCH = 1024
HINT = ("lower the learning rate{lr}, scale or standardise the inputs{span}, or clip "
        "gradients with fit(..., clip_norm=1.0)")


@dataclass
class History:
    """What ``fit`` returns: per-epoch logs, as Keras's ``History``.

    Attributes
    ----------
    history : dict of str to list of float
        One list per key, one entry per finished epoch: ``'loss'`` (including the L2 term),
        ``'accuracy'`` (classifiers), ``'val_loss'``/``'val_accuracy'`` (with validation
        data), ``'lr'`` (the rate used in that epoch) and ``'seconds'`` (wall time of the
        epoch, validation included).
    epoch : list of int
        The epoch numbers (from 0) the entries belong to.
    params : dict
        ``epochs``, ``batch_size``, ``steps`` (batches per epoch), ``samples`` and so on.
    interrupted : bool
        Training was stopped by Ctrl-C (KeyboardInterrupt); the history has the epochs
        that finished.
    stopped_early : bool
        A callback set ``model.stop_training``.
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    epoch: list[int] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    stopped_early: bool = False

    def record(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __len__(self) -> int:
        return len(self.epoch)

    def __repr__(self) -> str:
        last = {k: round(v[-1], 6) for k, v in self.history.items() if v}
        return f"History(epochs={len(self.epoch)}, last={last})"


# ----------------------------------------------------------------------------------------
# Targets: what a model's loss expects, and accuracy
# ----------------------------------------------------------------------------------------


class _Targets:
    """Validation of targets and the accuracy count for one kind of model output.

    ``kind`` is ``"multiclass"`` (CrossEntropy: integer labels or probability rows),
    ``"binary"`` (BinaryCrossEntropy: values in [0, 1]) or ``"regression"`` (anything else).
    """

    def __init__(self, model: Any, out_shape: tuple[int, ...]) -> None:
        self.out_shape = out_shape
        self.dtype = model.dtype
        if isinstance(model.loss, CrossEntropy):
            self.kind = "multiclass"
        elif isinstance(model.loss, BinaryCrossEntropy):
            self.kind = "binary"
        else:
            self.kind = "regression"

    @property
    def classifier(self) -> bool:
        return self.kind != "regression"

    def prepare(self, y: Any, n: int, what: str) -> np.ndarray:
        """Check ``y`` against the output shape; integer labels or floats of the model dtype."""
        y = np.asarray(y)
        if y.ndim == 0 or y.shape[0] != n:
            got = "a scalar" if y.ndim == 0 else f"{y.shape[0]} entries"
            raise ShapeError(f"{what}: X has {n} samples but y has {got}")
        if y.dtype.kind not in "biuf":
            raise TypeError(f"{what}: y must be numeric, got dtype {y.dtype}")
        if y.dtype.kind == "f":
            check_finite(y, f"{what} y")
        if self.kind == "multiclass" and (y.ndim == 1 or y.shape[1:] == (1,)):
            return self._labels(y.reshape(-1), what)
        expected = (n,) + self.out_shape
        if y.shape != expected and not (y.ndim == 1 and self.out_shape == (1,)):
            raise ShapeError(f"{what}: y has shape {y.shape}, but the model outputs "
                             f"{expected} for these samples" + self._shape_hint())
        y = np.ascontiguousarray(y, dtype=self.dtype)
        if self.kind == "binary" and ((y < 0) | (y > 1)).any():
            i = first_bad_index((y < 0) | (y > 1))
            raise ValueError(f"{what}: binary targets must be in [0, 1], got {y[i]} at {i}")
        if self.kind == "multiclass":
            off = (y < 0).any(axis=1) | (np.abs(y.sum(axis=1) - 1) > 1e-3)
            if off.any():
                i = first_bad_index(off)[0]
                raise ValueError(f"{what}: target row {i} is not a probability row (entries "
                                 ">= 0 summing to 1); pass one-hot rows or integer labels")
        return y

    def _shape_hint(self) -> str:
        if self.kind == "multiclass":
            return f" (pass integer labels of shape (N,) or one-hot rows (N, {self.out_shape[0]}))"
        return ""

    def _labels(self, y: np.ndarray, what: str) -> np.ndarray:
        classes = self.out_shape[0]
        if y.dtype.kind == "f" and (y != np.round(y)).any():
            i = first_bad_index(y != np.round(y))[0]
            raise ValueError(f"{what}: label at index {i} is {y[i]}, expected a whole class "
                             "index")
        labels = y.astype(np.int64)
        bad = (labels < 0) | (labels >= classes)
        if bad.any():
            i = first_bad_index(bad)[0]
            raise ValueError(f"{what}: label {labels[i]} at index {i} is out of range for the "
                             f"model's {classes} outputs: labels must be in [0, {classes})")
        return labels

    def count_correct(self, output: np.ndarray, target: np.ndarray) -> tuple[int, int]:
        """``(correct, counted)``: argmax for multi-class, logit > 0 for binary."""
        if self.kind == "multiclass":
            truth = target if target.ndim == 1 else target.argmax(axis=1)
            return int(np.count_nonzero(output.argmax(axis=1) == truth)), output.shape[0]
        output = output.reshape(target.shape) if output.size == target.size else output
        return int(np.count_nonzero((output > 0) == (target >= 0.5))), int(target.size)


# ----------------------------------------------------------------------------------------
# Argument checking
# ----------------------------------------------------------------------------------------


def _features(model: Any, X: Any, what: str) -> np.ndarray:
    """``X`` as a contiguous array of the model dtype, checked for shape and finiteness."""
    if isinstance(X, (str, bytes)) or X is None:
        raise TypeError(f"{what}: X must be an array of samples, got {X!r}")
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{what}: X must be numeric, got dtype {X.dtype}")
    if X.ndim < 2:
        raise ShapeError(f"{what}: X must have a sample axis and feature axes (N, features), "
                         f"got shape {X.shape}; use X.reshape(-1, 1) for a single feature")
    if X.shape[0] == 0:
        raise ShapeError(f"{what}: X has no samples")
    expected = model.input_shape
    if expected is not None and X.shape[1:] != tuple(expected):
        if len(expected) == 1 and X.ndim == 2:
            raise ShapeError(f"{what}: X has {X.shape[1]} features per sample, but the model "
                             f"expects {expected[0]}")
        raise ShapeError(f"{what}: X has samples of shape {X.shape[1:]}, but the model expects "
                         f"{tuple(expected)}")
    X = np.ascontiguousarray(X, dtype=model.dtype)
    # one float64 sum (no temporary the size of X) clears the common case; only a
    # non-finite sum pays for the element-wise search that names the first bad entry
    if not np.isfinite(X.sum(dtype=np.float64)):
        check_finite(X, f"{what} X")
    return X


def _weights(sample_weight: Any, n: int, dtype: np.dtype, what: str) -> np.ndarray | None:
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"{what}: sample_weight must be numeric, got dtype {w.dtype}")
    if w.shape != (n,):
        raise ShapeError(f"{what}: sample_weight must have shape ({n},), one weight per "
                         f"sample, got {w.shape}")
    w = np.ascontiguousarray(w, dtype=dtype)
    check_finite(w, f"{what} sample_weight")
    if (w < 0).any():
        raise ValueError(f"{what}: sample_weight must be >= 0")
    return w


def _output_shape(model: Any, X: np.ndarray) -> tuple[int, ...]:
    try:
        return tuple(model.output_shape(X.shape[1:]))
    except (ShapeError, ValueError) as exc:
        raise ShapeError(f"X with samples of shape {X.shape[1:]} does not fit the model: "
                         f"{exc}") from exc


@dataclass
class _Data:
    X: np.ndarray
    y: np.ndarray
    w: np.ndarray | None

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    def part(self, rows: slice) -> _Data:
        return _Data(self.X[rows], self.y[rows], None if self.w is None else self.w[rows])


def _dataset(model: Any, targets: _Targets, X: Any, y: Any, w: Any, what: str) -> _Data:
    X = _features(model, X, what)
    return _Data(X, targets.prepare(y, X.shape[0], what), _weights(w, X.shape[0],
                                                                   model.dtype, what))


def _validation(model: Any, targets: _Targets, train: _Data, validation_data: Any,
                validation_split: float) -> tuple[_Data, _Data | None]:
    """Split off or check the validation set (the last fraction of the data, as Keras)."""
    if validation_data is not None:
        if validation_split:
            raise ValueError("pass either validation_data or validation_split, not both")
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise TypeError("validation_data must be a tuple (X_val, y_val) or "
                            f"(X_val, y_val, sample_weight_val), got {type(validation_data)}")
        Xv, yv, *rest = validation_data
        return train, _dataset(model, targets, Xv, yv, rest[0] if rest else None, "validation")
    if not validation_split:
        return train, None
    split = int(math.floor(train.n * (1 - validation_split)))
    if split <= 0 or split >= train.n:
        raise ValueError(f"validation_split={validation_split} of {train.n} samples leaves an "
                         "empty training or validation set")
    return train.part(slice(0, split)), train.part(slice(split, None))


def _callbacks(callbacks: Any, lr_schedule: Any, verbose: int) -> list[Callback]:
    if isinstance(callbacks, Callback):
        callbacks = [callbacks]
    if callbacks is None:
        callbacks = []
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list of Callback objects, got {callbacks!r}")
    for index, callback in enumerate(callbacks):
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks[{index}] is {callback!r}, expected a "
                            "numnet.callbacks.Callback (wrap functions in LambdaCallback)")
    result = list(callbacks)
    if lr_schedule is not None:
        if not isinstance(lr_schedule, (LRSchedule, ReduceLROnPlateau)) \
                and not callable(lr_schedule):
            raise TypeError("lr_schedule must be an LRSchedule, a ReduceLROnPlateau or a "
                            f"function epoch -> lr, got {lr_schedule!r}")
        # after the user's callbacks, so a plateau can monitor a metric one of them adds
        result.append(LearningRateScheduler(lr_schedule))
    if verbose:
        result.append(ProgressBar(verbose))
    return result


def _verbose(verbose: Any) -> int:
    if isinstance(verbose, bool):
        return int(verbose)
    if not isinstance(verbose, (int, np.integer)) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0 (silent), 1 (progress bar) or 2 (a line per "
                         f"epoch), got {verbose!r}")
    return int(verbose)


# ----------------------------------------------------------------------------------------
# Ctrl-C: finish the current batch, then stop
# ----------------------------------------------------------------------------------------


class _Interrupt:
    requested = False  # the first Ctrl-C: stop after the current batch
    deferred = False   # a second Ctrl-C that arrived inside an optimiser step
    atomic = False     # True while the optimiser writes the weights


@contextmanager
def _atomic(flag: _Interrupt) -> Iterator[None]:
    """Let no Ctrl-C stop the block halfway: one that arrives inside is raised after it."""
    flag.atomic = True
    try:
        yield
    finally:
        flag.atomic = False
    if flag.deferred:
        raise KeyboardInterrupt


@contextmanager
def _graceful_interrupt() -> Iterator[_Interrupt]:
    """Turn the first Ctrl-C into a flag checked between batches (a second one raises).

    Only the main thread can receive signals; elsewhere this does nothing.
    """
    flag = _Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: Any) -> None:
        if not flag.requested:
            flag.requested = True
        elif flag.atomic:
            flag.deferred = True
        else:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


# ----------------------------------------------------------------------------------------
# The training loop
# ----------------------------------------------------------------------------------------


class _Trainer:
    """One call of :func:`fit`: buffers, the step with its checks, and the epoch loop."""

    def __init__(self, model: Any, optimizer: Optimizer, targets: _Targets, train: _Data,
                 val: _Data | None, epochs: int, batch_size: int, shuffle: bool,
                 rng: np.random.Generator, clip_norm: float | None,
                 callbacks: CallbackList, verbose: int) -> None:
        self.model, self.optimizer, self.targets = model, optimizer, targets
        self.train, self.val = train, val
        self.epochs, self.batch_size, self.shuffle = epochs, batch_size, shuffle
        self.rng, self.clip_norm = rng, clip_norm
        self.callbacks, self.verbose = callbacks, verbose
        self.bounds = _batch_bounds(train.n, batch_size, _min_batch(model, train.n))
        self.steps = len(self.bounds)
        self.backup = np.empty_like(model.flat_params)  # last finite weights
        # running statistics change in the forward pass: kept, and restored, with the weights
        self.buffers = [(i, name, value) for i, layer in enumerate(model.layers)
                        for name, value in layer.buffers.items()]
        self.buffer_backup = [value.copy() for _, _, value in self.buffers]
        self.interrupt = _Interrupt()
        if shuffle:  # one gather per batch into buffers reused for the whole run
            bs = max(end - start for start, end in self.bounds)
            self.xbuf = np.empty((bs,) + train.X.shape[1:], dtype=train.X.dtype)
            self.ybuf = np.empty((bs,) + train.y.shape[1:], dtype=train.y.dtype)
            self.wbuf = None if train.w is None else np.empty(bs, dtype=train.w.dtype)
        self.epoch = self.batch = self.initial_epoch = 0

    # -- batches ------------------------------------------------------------------------
    def _batches(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        data = self.train
        # a fresh permutation per epoch depends on the generator alone, so two fit calls
        # continue the order of one longer call (and a model restored from a file too)
        order = self.rng.permutation(data.n) if self.shuffle else None
        for start, end in self.bounds:
            if not self.shuffle:
                yield data.X[start:end], data.y[start:end], \
                    None if data.w is None else data.w[start:end]
                continue
            index = order[start:end]
            m = index.shape[0]
            # mode="clip" skips the buffered bounds check; the indices are in range anyway
            xb = np.take(data.X, index, axis=0, out=self.xbuf[:m], mode="clip")
            yb = np.take(data.y, index, axis=0, out=self.ybuf[:m], mode="clip")
            wb = None if data.w is None else np.take(data.w, index, out=self.wbuf[:m],
                                                     mode="clip")
            yield xb, yb, wb

    # -- one step -----------------------------------------------------------------------
    def step(self, xb: np.ndarray, yb: np.ndarray,
             wb: np.ndarray | None) -> tuple[float, int, int]:
        """Train on one batch; returns ``(loss, correct, counted)``."""
        # overflow is detected below and reported as TrainingDiverged, so numpy's warnings
        # about it would only be noise
        with np.errstate(over="ignore", invalid="ignore"):
            return self._checked_step(xb, yb, wb)

    def _checked_step(self, xb: np.ndarray, yb: np.ndarray,
                      wb: np.ndarray | None) -> tuple[float, int, int]:
        for (_, _, value), saved in zip(self.buffers, self.buffer_backup, strict=True):
            np.copyto(saved, value)
        try:
            return self._step_or_raise(xb, yb, wb)
        except (TrainingDiverged, KeyboardInterrupt):
            # the weights stay from before this batch (a Ctrl-C deferred past a finished
            # update is the exception): the running statistics must match them
            if not self.interrupt.deferred:
                for (_, _, value), saved in zip(self.buffers, self.buffer_backup, strict=True):
                    np.copyto(value, saved)
            raise

    def _step_or_raise(self, xb: np.ndarray, yb: np.ndarray,
                       wb: np.ndarray | None) -> tuple[float, int, int]:
        model = self.model
        try:
            loss, output = model.loss_and_grad(xb, yb, wb, training=True, return_output=True)
        except NonFiniteError as exc:
            raise self._diverged(self._forward_culprit(xb)) from exc
        if not math.isfinite(loss):
            raise self._diverged(self._loss_culprit(loss, output))
        bad_buffer = next(((i, name) for i, name, value in self.buffers
                           if not all_finite(value.reshape(-1))), None)
        if bad_buffer is not None:
            raise self._diverged(self._buffer_culprit(*bad_buffer))
        if self.clip_norm is not None:
            clip_grad_norm(model, self.clip_norm)
        np.copyto(self.backup, model.flat_params)
        with _atomic(self.interrupt):  # no Ctrl-C between the update and its check
            self.optimizer.step(model)
            self._check_update()
        correct, counted = (self.targets.count_correct(output, yb)
                            if self.targets.classifier else (0, 0))
        return loss, correct, counted

    def _check_update(self) -> None:
        """Undo an update that left a weight NaN or infinite, and say why."""
        model = self.model
        # a NaN or infinite gradient makes the updated weights so too: one check covers both
        if all_finite(model.flat_params):
            return
        culprit = self._param_culprit() if all_finite(model.flat_grads) else self._grad_culprit()
        np.copyto(model.flat_params, self.backup)
        self.optimizer.zero_state()  # the moments that produced the step are not trusted
        raise self._diverged(culprit + "; the optimiser's state (moments, step count) was reset")

    # -- divergence reports -------------------------------------------------------------
    def _entries(self) -> Iterator[tuple[int, Any, str, slice]]:
        """``(layer index, layer, param name, slice of the flat vectors)`` in flat order."""
        offset = 0
        for index, layer in enumerate(self.model.layers):
            for name, value in layer.params.items():
                yield index, layer, name, slice(offset, offset + value.size)
                offset += value.size

    def _grad_culprit(self) -> str:
        grads = self.model.flat_grads
        bad = [(i, layer, name) for i, layer, name, s in self._entries()
               if not np.isfinite(grads[s]).all()]
        # back-propagation runs from the output down, so the highest layer went bad first
        i, layer, name = max(bad, key=lambda entry: entry[0])
        others = sorted({f"{j}" for j, _, _ in bad if j != i})
        also = f" (then also in layer(s) {', '.join(others)})" if others else ""
        return (f"the gradient of parameter {name!r} of layer {i} {layer!r} became NaN or "
                f"infinite first in back-propagation{also}")

    def _param_culprit(self) -> str:
        params = self.model.flat_params
        for i, layer, name, s in self._entries():
            if not np.isfinite(params[s]).all():
                return (f"the optimiser's update made parameter {name!r} of layer {i} "
                        f"{layer!r} NaN or infinite (its gradients were finite but too large)")
        return "the optimiser's update made a parameter NaN or infinite"

    def _forward_culprit(self, xb: np.ndarray) -> str:
        """Re-run the forward pass layer by layer to find where the output stops being finite."""
        out = xb
        for i, layer in enumerate(self.model.layers):
            out = layer.forward(out, training=True)
            if not np.isfinite(out).all():
                return (f"the output of layer {i} {layer!r} became NaN or infinite in the "
                        f"forward pass (its input was finite), so the loss is not finite")
        return "the model's output became NaN or infinite, so the loss is not finite"

    def _loss_culprit(self, loss: float, output: np.ndarray) -> str:
        index = len(self.model.layers) - 1
        last = self.model.layers[index]
        return (f"the loss became {loss}: the output of layer {index} {last!r} is finite but "
                f"reaches |{float(np.abs(output).max()):.3g}|, too large for the loss in "
                f"{output.dtype}")

    def _buffer_culprit(self, index: int, name: str) -> str:
        layer = self.model.layers[index]
        return (f"the buffer {name!r} of layer {index} {layer!r} became NaN or infinite in the "
                "forward pass (an input far out of range?), though the loss was finite")

    def _diverged(self, what: str) -> TrainingDiverged:
        hint = HINT.format(lr=f" (now {self.optimizer.lr:g})", span=_span_note(self.train.X))
        error = TrainingDiverged(
            f"training diverged in epoch {self.epoch + 1}/{self.epochs}, batch "
            f"{self.batch + 1}/{self.steps}: {what}. The model keeps its weights and running "
            f"statistics from before this batch. Try to: {hint}.")
        error.epoch, error.batch = self.epoch, self.batch
        return error

    # -- epochs -------------------------------------------------------------------------
    def run_epoch(self, interrupt: _Interrupt) -> dict[str, float] | None:
        """Train one epoch; the epoch's logs, or None when stopped before its end."""
        self.interrupt = interrupt
        loss_sum, correct, counted, seen = 0.0, 0, 0, 0
        for batch, (xb, yb, wb) in enumerate(self._batches()):
            self.batch = batch  # for the divergence and interrupt messages
            m = xb.shape[0]
            self.callbacks.call("on_batch_begin", self.batch, {"batch": self.batch, "size": m})
            loss, right, count = self.step(xb, yb, wb)
            loss_sum += loss * m
            seen += m
            correct += right
            counted += count
            logs = {"batch": self.batch, "size": m, "loss": loss_sum / seen}
            if self.targets.classifier:
                logs["accuracy"] = correct / counted
            self.callbacks.call("on_batch_end", self.batch, logs)
            if (interrupt.requested or self.model.stop_training) and seen < self.train.n:
                return None  # a partial epoch is not recorded
        logs = {"loss": loss_sum / seen}
        if self.targets.classifier:
            logs["accuracy"] = correct / counted
        return logs

    def validate(self, logs: dict[str, float]) -> None:
        if self.val is None:
            return
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # reported below instead
                scores = _evaluate(self.model, self.targets, self.val,
                                   max(self.batch_size, EVAL_BATCH))
        except NonFiniteError as exc:
            error = TrainingDiverged(
                f"training diverged after epoch {self.epoch + 1}/{self.epochs}: the model's "
                f"output on the validation data became NaN or infinite ({exc}). The model "
                f"keeps its weights from the end of this epoch. Try to: "
                + HINT.format(lr=f" (now {self.optimizer.lr:g})",
                              span=_span_note(self.val.X, "X_val")) + ".")
            error.epoch, error.batch = self.epoch, None
            raise error from exc
        logs["val_loss"] = scores["loss"]
        if "accuracy" in scores:
            logs["val_accuracy"] = scores["accuracy"]


def fit(model: Any, X: Any, y: Any, epochs: int = 1, batch_size: int = 32,
        optimizer: Optimizer | str | None = None, shuffle: bool = True,
        validation_data: tuple | None = None, validation_split: float = 0.0,
        callbacks: Sequence[Callback] = (), verbose: int = 1, seed: int | None = None,
        sample_weight: Any = None, clip_norm: float | None = None,
        lr_schedule: Any = None, initial_epoch: int = 0) -> History:
    """Train ``model`` on ``(X, y)`` with mini-batches.

    Parameters
    ----------
    model : Sequential
        A model with a loss.
    X : array, shape (N, ...)
        Inputs; converted to the model's dtype once.
    y : array
        Integer labels ``(N,)`` or probability rows ``(N, C)`` for CrossEntropy; values in
        [0, 1] for BinaryCrossEntropy; targets of the output's shape otherwise.
    epochs, batch_size : int
        Passes over the data and samples per step (the last batch may be smaller).
    optimizer : Optimizer or str, optional
        Default ``Adam(1e-3)``. Pass the same object again to continue with its state.
    shuffle : bool
        Reshuffle the training samples every epoch.
    validation_data : (X_val, y_val) or (X_val, y_val, w_val), optional
        Evaluated after each epoch, giving ``val_loss`` (and ``val_accuracy``).
    validation_split : float in [0, 1)
        Hold out this last fraction of ``X``/``y`` (taken before shuffling) for validation.
    callbacks : list of Callback
    verbose : {0, 1, 2}
        Silent, a progress bar per epoch, or a line per epoch (on standard error).
    seed : int, optional
        Seeds the shuffling and the layers' random draws (dropout) of this run, so the same
        seed on the same model gives the same history and weights bit for bit. Without it
        the model's own generators are used (and advanced).
    sample_weight : array (N,), optional
        Per-sample loss weights (the loss is ``mean(w * l)``).
    clip_norm : float, optional
        Clip the global gradient norm to this before each step.
    lr_schedule : LRSchedule, ReduceLROnPlateau or function, optional
        Sets ``optimizer.lr`` per epoch (see :class:`numnet.callbacks.LearningRateScheduler`).
    initial_epoch : int
        The epoch to start from (as in Keras): ``epochs - initial_epoch`` epochs run, numbered
        from ``initial_epoch``, so a run resumed from a saved model and optimiser continues
        its schedule where it stopped.

    Returns
    -------
    History
        Per-epoch ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ``lr``, ``seconds``.
        After Ctrl-C it holds the finished epochs and ``interrupted`` is True.

    Raises
    ------
    TrainingDiverged
        When a loss, gradient or parameter becomes NaN or infinite; the model keeps the
        weights from before the bad batch.
    ValueError, TypeError
        For inconsistent or malformed arguments, before any training.
    """
    model._need_loss()
    epochs = positive_int(epochs, "epochs")
    if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, (int, np.integer)) \
            or not 0 <= initial_epoch < epochs:
        raise ValueError(f"initial_epoch must be an integer in [0, epochs={epochs}), got "
                         f"{initial_epoch!r}")
    batch_size = positive_int(batch_size, "batch_size")
    verbose = _verbose(verbose)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
    validation_split = real_number(validation_split, "validation_split", low=0.0, high=1.0,
                                   high_open=True)
    if clip_norm is not None:
        clip_norm = real_number(clip_norm, "clip_norm", low=0.0, low_open=True)
    optimizer = Adam(1e-3) if optimizer is None else get_optimizer(optimizer)
    rng = _generator(model, seed)
    X = _features(model, X, "fit")
    targets = _Targets(model, _output_shape(model, X))
    data = _Data(X, targets.prepare(y, X.shape[0], "fit"),
                 _weights(sample_weight, X.shape[0], model.dtype, "fit"))
    train, val = _validation(model, targets, data, validation_data, validation_split)
    callback_list = CallbackList(_callbacks(callbacks, lr_schedule, verbose))
    trainer = _Trainer(model, optimizer, targets, train, val, epochs, batch_size,
                       bool(shuffle), rng, clip_norm, callback_list, verbose)
    trainer.initial_epoch = int(initial_epoch)
    history = History(params=_params(trainer, targets))
    was_training = model.training
    try:
        _loop(trainer, history)
    finally:
        model.training = was_training
    return history


def _span_note(X: np.ndarray, name: str = "X") -> str:
    span = float(np.abs(X).max())
    return f" ({name} spans [{X.min():.4g}, {X.max():.4g}])" if span > 10 else ""


def _min_batch(model: Any, n: int) -> int:
    """The fewest samples every layer can train on (BatchNorm needs 2); checked against n."""
    layer = max(model.layers, key=lambda layer: layer.min_train_batch)
    if n < layer.min_train_batch:
        raise ValueError(f"{layer!r} needs at least {layer.min_train_batch} samples per "
                         f"training batch, but the training set has {n}")
    return layer.min_train_batch


def _batch_bounds(n: int, batch_size: int, min_batch: int) -> list[tuple[int, int]]:
    """``(start, end)`` of each batch; a last batch too small to train on joins the one before."""
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_batch:
        (start, _), _ = bounds[-2], bounds.pop()
        bounds[-1] = (start, n)
    return bounds


def _generator(model: Any, seed: Any) -> np.random.Generator:
    """The shuffling generator; with a seed, also reseed every layer's generator."""
    if seed is None:
        return model.rng
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be None or an integer >= 0, got {seed!r}")
    children = np.random.SeedSequence(int(seed)).spawn(len(model.layers) + 1)
    for layer, child in zip(model.layers, children[1:], strict=True):
        layer.rng = np.random.default_rng(child)
    return np.random.default_rng(children[0])


def _params(trainer: _Trainer, targets: _Targets) -> dict[str, Any]:
    metrics = ["loss"] + (["accuracy"] if targets.classifier else [])
    if trainer.val is not None:
        metrics += [f"val_{name}" for name in metrics]
    return {"epochs": trainer.epochs, "batch_size": trainer.batch_size,
            "steps": trainer.steps, "samples": trainer.train.n, "verbose": trainer.verbose,
            "metrics": metrics + ["lr", "seconds"]}


def _loop(trainer: _Trainer, history: History) -> None:
    model, callbacks = trainer.model, trainer.callbacks
    callbacks.set_context(model, trainer.optimizer, history.params)
    model.stop_training = False
    callbacks.call("on_train_begin", {})
    with _graceful_interrupt() as interrupt:
        try:
            for epoch in range(trainer.initial_epoch, trainer.epochs):
                trainer.epoch = epoch
                logs = _one_epoch(trainer, interrupt)
                if logs is None:
                    break
                history.record(trainer.epoch, logs)
                callbacks.call("on_epoch_end", trainer.epoch, logs)
                if model.stop_training or interrupt.requested:
                    break
        except KeyboardInterrupt:  # a second Ctrl-C, or one raised by a callback
            interrupt.requested = True
        except TrainingDiverged:
            # progress bars close, and EarlyStopping may restore its best weights
            callbacks.call("on_train_end", {"interrupted": False, "diverged": True})
            raise
    history.interrupted = interrupt.requested
    history.stopped_early = bool(model.stop_training) and not interrupt.requested
    if interrupt.requested and trainer.verbose:
        print(f"\ntraining interrupted in epoch {trainer.epoch + 1}, batch {trainer.batch + 1}"
              f": keeping the weights after the last finished batch and the history of "
              f"{len(history)} finished epoch(s)", file=sys.stderr, flush=True)
    callbacks.call("on_train_end", {"interrupted": interrupt.requested})


def _one_epoch(trainer: _Trainer, interrupt: _Interrupt) -> dict[str, float] | None:
    start = time.perf_counter()
    trainer.model.train()
    trainer.callbacks.call("on_epoch_begin", trainer.epoch, {})
    lr = float(trainer.optimizer.lr)
    logs = trainer.run_epoch(interrupt)
    if logs is None:
        return None
    trainer.model.eval()
    trainer.validate(logs)
    logs["lr"] = lr
    logs["seconds"] = time.perf_counter() - start
    return logs


# ----------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------


def evaluate(model: Any, X: Any, y: Any, batch_size: int = EVAL_BATCH,
             sample_weight: Any = None) -> dict[str, float]:
    """Loss and metrics of ``model`` on ``(X, y)``, in evaluation mode.

    Returns
    -------
    dict
        ``{'loss', 'accuracy'}`` for classifiers, ``{'loss', 'mse', 'mae'}`` otherwise.
        ``loss`` is the mean (sample-weighted) loss plus the model's L2 term, as in
        training; ``accuracy``, ``mse`` and ``mae`` are unweighted means.
    """
    model._need_loss()
    batch_size = positive_int(batch_size, "batch_size")
    X = _features(model, X, "evaluate")
    targets = _Targets(model, _output_shape(model, X))
    data = _Data(X, targets.prepare(y, X.shape[0], "evaluate"),
                 _weights(sample_weight, X.shape[0], model.dtype, "evaluate"))
    was_training = model.training
    model.eval()
    try:
        return _evaluate(model, targets, data, batch_size)
    finally:
        model.training = was_training


def _evaluate(model: Any, targets: _Targets, data: _Data, batch_size: int) -> dict[str, float]:
    loss_sum, correct, counted, sq_sum, abs_sum = 0.0, 0, 0, 0.0, 0.0
    for start in range(0, data.n, batch_size):
        end = start + batch_size
        xb, yb = data.X[start:end], data.y[start:end]
        wb = None if data.w is None else data.w[start:end]
        output = model.forward(xb, training=False)
        loss_sum += model.loss.forward(output, yb, wb) * xb.shape[0]
        if targets.classifier:
            right, count = targets.count_correct(output, yb)
            correct, counted = correct + right, counted + count
        else:
            diff = output.reshape(-1) - yb.reshape(-1)
            sq_sum += float(np.dot(diff, diff))
            abs_sum += float(np.abs(diff).sum())
    result = {"loss": loss_sum / data.n + model.l2_penalty()}
    if targets.classifier:
        result["accuracy"] = correct / counted
    else:
        elements = data.n * int(np.prod(targets.out_shape))
        result["mse"] = sq_sum / elements
        result["mae"] = abs_sum / elements
    return result
