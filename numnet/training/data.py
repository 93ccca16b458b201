"""The data ``fit`` and ``evaluate`` train and score on, checked once and cut into batches.

Everything here runs once per call of ``fit`` or ``evaluate``, before the first batch:

* :func:`features` converts ``X`` to the model's dtype and checks its shape and
  finiteness; :func:`sample_weights` does the same for ``sample_weight``;
* :class:`Targets` checks ``y`` against what the model's loss takes (its
  ``target_kind``): integer labels within the model's outputs or probability rows for
  :class:`~numnet.losses.CrossEntropy`, values in [0, 1] for
  :class:`~numnet.losses.BinaryCrossEntropy`, finite targets of the output's shape
  otherwise. It returns them in the form the loss's ``forward`` takes, so no batch is
  checked again;
* :func:`split_validation` holds out the validation data (a random, class-stratified
  selection by default, :func:`validation_rows`; or the last rows, as Keras);
* :class:`Batches` cuts the training data into mini-batches, reshuffled every epoch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from numnet._checks import check_finite, first_bad_index, reshape_hint
from numnet.errors import ShapeError

if TYPE_CHECKING:
    from numnet.model import Sequential

Batch = tuple[np.ndarray, np.ndarray, np.ndarray | None]


def features(model: Sequential, X: Any, what: str) -> np.ndarray:
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
                         f"{tuple(expected)}{reshape_hint(X.shape[1:], expected)}")
    array: np.ndarray = np.ascontiguousarray(X, dtype=model.dtype)
    # one float64 sum (no temporary the size of X) clears the common case; only a
    # non-finite sum pays for the element-wise search that names the first bad entry
    if not np.isfinite(array.sum(dtype=np.float64)):
        check_finite(array, f"{what} X")
    return array


def sample_weights(sample_weight: Any, n: int, dtype: np.dtype[Any],
                   what: str) -> np.ndarray | None:
    """``sample_weight`` as ``n`` finite, non-negative numbers of ``dtype`` (or None)."""
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


def model_output_shape(model: Sequential, X: np.ndarray) -> tuple[int, ...]:
    """The per-sample output shape for ``X``'s samples; a clear error when they do not fit."""
    try:
        return tuple(model.output_shape(X.shape[1:]))
    except (ShapeError, ValueError) as exc:
        raise ShapeError(f"X with samples of shape {X.shape[1:]} does not fit the model: "
                         f"{exc}") from exc


class Targets:
    """What the model's loss takes as targets (its ``target_kind``), and the accuracy count.

    ``kind`` is ``"classes"`` (integer labels or probability rows), ``"binary"`` (values in
    [0, 1]) or ``"real"`` (any finite values; no accuracy).
    """

    def __init__(self, model: Sequential, out_shape: tuple[int, ...]) -> None:
        self.out_shape = out_shape
        self.dtype = model.dtype
        self.kind = model._need_loss().target_kind

    @property
    def classifier(self) -> bool:
        return self.kind != "real"

    def prepare(self, y: Any, n: int, what: str) -> np.ndarray:
        """``y`` checked against ``n`` samples of the output shape, as the loss takes it:
        int64 labels ``(N,)``, or floats of the model dtype and shape ``(N, *out_shape)``."""
        y = np.asarray(y)
        if y.ndim == 0 or y.shape[0] != n:
            got = "a scalar" if y.ndim == 0 else f"{y.shape[0]} entries"
            raise ShapeError(f"{what}: X has {n} samples but y has {got}")
        if y.dtype.kind not in "biuf":
            hint = (": encode class labels with numnet.data.LabelEncoder (y = LabelEncoder()"
                    ".fit_transform(labels); encoder.inverse_transform(model.predict(X)) turns "
                    "predictions back into labels), or use numnet.sklearn.NumnetClassifier, "
                    "which takes labels of any kind" if self.kind != "real" else "")
            raise TypeError(f"{what}: y must be numeric, got dtype {y.dtype}{hint}")
        if y.dtype.kind == "f":
            check_finite(y, f"{what} y")
        if self.kind == "classes" and (y.ndim == 1 or y.shape[1:] == (1,)):
            return self._labels(y.reshape(-1), what)
        expected = (n, *self.out_shape)
        if y.shape != expected and not (y.ndim == 1 and self.out_shape == (1,)):
            raise ShapeError(f"{what}: y has shape {y.shape}, but the model outputs "
                             f"{expected} for these samples" + self._shape_hint())
        targets: np.ndarray = np.ascontiguousarray(y.reshape(expected), dtype=self.dtype)
        if self.kind == "binary":
            outside = (targets < 0) | (targets > 1)
            if outside.any():
                i = first_bad_index(outside)
                raise ValueError(f"{what}: binary targets must be in [0, 1], got "
                                 f"{targets[i]} at {i}")
        if self.kind == "classes":
            off = (targets < 0).any(axis=1) | (np.abs(targets.sum(axis=1) - 1) > 1e-3)
            if off.any():
                raise ValueError(f"{what}: target row {first_bad_index(off)[0]} is not a "
                                 "probability row (entries >= 0 summing to 1); pass one-hot "
                                 "rows or integer labels")
        return targets

    def _shape_hint(self) -> str:
        if self.kind == "classes":
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
                             f"model's {classes} outputs: labels must be in [0, {classes}) "
                             "(numnet.data.LabelEncoder maps labels such as -1/1 or 3/7/10 "
                             "to 0..K-1)")
        return labels

    def strata(self, y: np.ndarray) -> np.ndarray | None:
        """The class of each prepared target, to stratify a split by; None when there is
        none (regression, several binary outputs, soft binary targets)."""
        if self.kind == "classes":
            return y if y.ndim == 1 else y.argmax(axis=1)
        if self.kind == "binary" and self.out_shape == (1,):
            column = y.reshape(-1)
            if ((column == 0) | (column == 1)).all():
                return column.astype(np.int64)
        return None

    def count_correct(self, output: np.ndarray, target: np.ndarray) -> tuple[int, int]:
        """``(correct, counted)``: argmax for multi-class, logit > 0 for binary."""
        if self.kind == "classes":
            truth = target if target.ndim == 1 else target.argmax(axis=1)
            return int(np.count_nonzero(output.argmax(axis=1) == truth)), output.shape[0]
        return int(np.count_nonzero((output > 0) == (target >= 0.5))), int(target.size)


@dataclass
class Data:
    """Checked samples: ``X`` and ``y`` as the model and its loss take them, weights or None."""

    X: np.ndarray
    y: np.ndarray
    w: np.ndarray | None

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    def part(self, rows: slice | np.ndarray) -> Data:
        """The samples at ``rows``: views for a slice, copies for an index or a mask."""
        return Data(self.X[rows], self.y[rows], None if self.w is None else self.w[rows])


def checked_data(model: Sequential, X: Any, y: Any, w: Any, what: str) -> tuple[Data, Targets]:
    """``(X, y, w)`` checked once and converted for the model and its loss; and the
    model's :class:`Targets` (taken from the output shape of ``X``'s samples)."""
    X = features(model, X, what)
    targets = Targets(model, model_output_shape(model, X))
    return _data(model, targets, X, y, w, what), targets


def dataset(model: Sequential, targets: Targets, X: Any, y: Any, w: Any, what: str) -> Data:
    """``(X, y, w)`` checked once and converted for ``targets``' model."""
    return _data(model, targets, features(model, X, what), y, w, what)


def _data(model: Sequential, targets: Targets, X: np.ndarray, y: Any, w: Any,
          what: str) -> Data:
    return Data(X, targets.prepare(y, X.shape[0], what),
                sample_weights(w, X.shape[0], model.dtype, what))


def split_validation(model: Sequential, targets: Targets, train: Data, validation_data: Any,
                     validation_split: float, shuffle: bool = False,
                     seed: int | None = None) -> tuple[Data, Data | None]:
    """Split off or check the validation set.

    ``validation_split`` holds out that fraction of the samples: with ``shuffle`` a random
    selection, stratified by class for classifiers (:func:`held_out_rows`, drawn by a
    generator of its own seeded by ``seed``, 0 when None, so every call with the same seed
    holds out the same rows); without, the last rows, as Keras. A warning names the
    classes the training part has and the validation part lacks.
    """
    if validation_data is not None:
        if validation_split:
            raise ValueError("pass either validation_data or validation_split, not both")
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise TypeError("validation_data must be a tuple (X_val, y_val) or "
                            f"(X_val, y_val, sample_weight_val), got {type(validation_data)}")
        Xv, yv, *rest = validation_data
        return train, dataset(model, targets, Xv, yv, rest[0] if rest else None, "validation")
    if not validation_split:
        return train, None
    strata = targets.strata(train.y)
    if not shuffle:
        split = _fit_rows(train.n, validation_split, "validation_split")
        if strata is not None:
            warn_missing_classes(strata[:split], strata[split:], shuffle)
        return train.part(slice(0, split)), train.part(slice(split, None))
    rng = np.random.default_rng([0 if seed is None else int(seed), SPLIT_STREAM])
    held_out = validation_rows(strata, train.n, validation_split, rng)
    if strata is not None:
        warn_missing_classes(strata[~held_out], strata[held_out], shuffle)
    return train.part(~held_out), train.part(held_out)


def _fit_rows(n: int, fraction: float, name: str) -> int:
    """How many of ``n`` samples stay for training when ``fraction`` is held out (as Keras:
    ``floor(n * (1 - fraction))``); an error when either part would be empty."""
    split = int(math.floor(n * (1 - fraction)))
    if split <= 0 or split >= n:
        raise ValueError(f"{name}={fraction} of {n} samples leaves an empty training or "
                         "validation set")
    return split


def validation_rows(strata: np.ndarray | None, n: int, fraction: float,
                    rng: np.random.Generator, name: str = "validation_split") -> np.ndarray:
    """A mask of the rows to hold out: ``n - floor(n * (1 - fraction))`` of ``n``, drawn by
    ``rng``, stratified by ``strata`` (a class per row) when given (:func:`held_out_rows`).

    ``name`` names the fraction in the error raised when either part would be empty.
    """
    n_val = n - _fit_rows(n, fraction, name)
    if strata is not None:
        return held_out_rows(strata, n_val, rng)
    held = np.zeros(n, dtype=bool)
    held[rng.permutation(n)[:n_val]] = True
    return held


#: mixed into the seed of the validation split's generator, so that it draws a stream of
#: its own (not the shuffling's or the layers')
SPLIT_STREAM = 0x5EED_5917


def held_out_rows(strata: np.ndarray, n_val: int, rng: np.random.Generator) -> np.ndarray:
    """A mask of ``n_val`` rows drawn at random, each class of ``strata`` (one per row)
    giving its share, rounded so the total is ``n_val``.

    The rounding gives the leftover rows to the classes with the largest fractional shares
    that can spare a row (keeping one in training), ties broken at random; no Python loop
    runs over the samples or the classes.
    """
    n = strata.size
    classes, inverse, counts = np.unique(strata, return_inverse=True, return_counts=True)
    share = counts * (n_val / n)
    quota = np.floor(share).astype(np.int64)
    spare = (quota + 1 <= counts - 1)  # may take one more and still leave one in training
    extra = n_val - int(quota.sum())
    # primary key last: classes that can spare a row, then the largest fraction, then chance
    order = np.lexsort((rng.random(classes.size), -(share - quota), ~spare))
    quota[order[:extra]] += 1
    # rank each row within its class in a random order; the first `quota` ranks are held out
    by_class = np.lexsort((rng.random(n), inverse))
    starts = np.cumsum(counts) - counts
    rank = np.empty(n, dtype=np.int64)
    rank[by_class] = np.arange(n) - np.repeat(starts, counts)
    held: np.ndarray = rank < quota[inverse]
    return held


def warn_missing_classes(fit_strata: np.ndarray, val_strata: np.ndarray,
                         shuffled: bool) -> None:
    """Warn when the validation rows lack classes the training rows have."""
    missing = np.setdiff1d(fit_strata, val_strata)
    if missing.size == 0:
        return
    shown = ", ".join(str(c) for c in missing[:10].tolist()) + (", ..." if missing.size > 10
                                                               else "")
    hint = ("these classes have too few samples to be in both parts" if shuffled else
            "validation_split took the last rows (validation_shuffle=False): on data sorted "
            "by class pass validation_shuffle=True for a stratified split")
    warnings.warn(f"fit: the validation split holds no sample of {missing.size} class(es) "
                  f"the training part has ({shown}), so val_loss and val_accuracy do not "
                  f"measure them; {hint}", UserWarning, stacklevel=4)


def min_batch(model: Sequential, n: int) -> int:
    """The fewest samples every layer can train on (BatchNorm needs 2); checked against n."""
    layer = max(model.layers, key=lambda layer: layer.min_train_batch)
    if n < layer.min_train_batch:
        raise ValueError(f"{layer!r} needs at least {layer.min_train_batch} samples per "
                         f"training batch, but the training set has {n} sample"
                         f"{'' if n == 1 else 's'}")
    return layer.min_train_batch


def batch_bounds(n: int, batch_size: int, smallest: int) -> list[tuple[int, int]]:
    """``(start, end)`` of each batch; a last batch too small to train on joins the one before."""
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < smallest:
        (start, _), _ = bounds[-2], bounds.pop()
        bounds[-1] = (start, n)
    return bounds


class Batches:
    """The mini-batches of one epoch, reshuffled every epoch when ``shuffle`` is set.

    Batches are gathered with one ``np.take`` per batch into buffers reused for the whole
    run (or are plain views when ``shuffle=False``); the last, smaller batch is used too.
    """

    def __init__(self, data: Data, bounds: list[tuple[int, int]], shuffle: bool,
                 rng: np.random.Generator) -> None:
        self.data, self.bounds, self.shuffle, self.rng = data, bounds, shuffle, rng
        self.taken = [self.rows(start, end) for start, end in bounds]
        if shuffle:  # one gather per batch into buffers reused for the whole run
            size = max(end - start for start, end in self.taken)
            self.xbuf = np.empty((size, *data.X.shape[1:]), dtype=data.X.dtype)
            self.ybuf = np.empty((size, *data.y.shape[1:]), dtype=data.y.dtype)
            self.wbuf = None if data.w is None else np.empty(size, dtype=data.w.dtype)

    def __len__(self) -> int:
        return len(self.bounds)

    def rows(self, start: int, end: int) -> tuple[int, int]:
        """The rows of batch ``[start, end)`` this process trains on (``taken``): all of
        them (a distributed run's :class:`~numnet.training.parallel.Shards` takes a part)."""
        return start, end

    def __iter__(self) -> Iterator[Batch]:
        data = self.data
        if not self.shuffle:
            for start, end in self.taken:
                yield data.X[start:end], data.y[start:end], \
                    None if data.w is None else data.w[start:end]
            return
        # a fresh permutation per epoch depends on the generator alone, so two fit calls
        # continue the order of one longer call (and a model restored from a file too)
        order = self.rng.permutation(data.n)
        for start, end in self.taken:
            index = order[start:end]
            m = index.shape[0]
            # mode="clip" skips the buffered bounds check; the indices are in range anyway
            xb = np.take(data.X, index, axis=0, out=self.xbuf[:m], mode="clip")
            yb = np.take(data.y, index, axis=0, out=self.ybuf[:m], mode="clip")
            wb = None if self.wbuf is None or data.w is None else np.take(
                data.w, index, out=self.wbuf[:m], mode="clip")
            yield xb, yb, wb
