"""Label encoding, feature scaling, dataset splits and mini-batches.

Everything here works on whole arrays: no Python loop runs over samples or features.
Samples are rows (axis 0), as everywhere in numnet.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

__all__ = [
    "MinMaxScaler",
    "NotFittedError",
    "Standardizer",
    "from_one_hot",
    "minibatches",
    "one_hot",
    "train_dev_test_split",
]

Seed = int | np.random.Generator | None

# Statistics are accumulated in blocks of rows so that a float32 dataset never needs a
# full float64 copy just to compute a variance: about 2**20 values (8 MB) per block.
_STAT_BLOCK_VALUES = 1 << 20


class NotFittedError(ValueError, AttributeError):
    """A scaler was used before :meth:`fit` was called."""


# ------------------------------------------------------------------------------ labels


def _check_labels(labels: np.ndarray, name: str) -> np.ndarray:
    """Integer labels as int64 (1-D); integral floats accepted, anything else refused."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(
            f"{name}: labels must be a 1-D array of class indices, got shape {labels.shape}"
            + (" (use labels.ravel() for a column vector)" if labels.ndim == 2 else "")
        )
    if labels.dtype.kind in "iu":
        return labels.astype(np.int64, copy=False)
    if labels.dtype.kind != "f":
        raise ValueError(f"{name}: labels must be integers, got dtype {labels.dtype}")
    bad = np.flatnonzero(~np.isfinite(labels) | (labels != np.trunc(labels)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{name}: label {labels[i]} at index {i} is not an integer class index"
        )
    return labels.astype(np.int64)


def one_hot(
    labels: np.ndarray, num_classes: int | None = None, dtype: np.dtype | type = np.float32
) -> np.ndarray:
    """Encode class indices as one-hot rows.

    Parameters
    ----------
    labels : array_like of int, shape (N,)
        Class indices in ``[0, num_classes)``. Floats are accepted when integral.
    num_classes : int, optional
        Number of classes; default ``labels.max() + 1``.
    dtype : dtype, default numpy.float32
        dtype of the result.

    Returns
    -------
    numpy.ndarray, shape (N, num_classes)
        ``out[i, labels[i]] == 1``, zeros elsewhere.

    Raises
    ------
    ValueError
        For a label that is negative, not an integer or not below ``num_classes``: the
        message names the offending value and its index.
    """
    labels = _check_labels(labels, "one_hot")
    negative = np.flatnonzero(labels < 0)
    if negative.size:
        i = int(negative[0])
        raise ValueError(f"one_hot: label {labels[i]} at index {i} is negative")
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    elif isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise TypeError(f"one_hot: num_classes must be an int, got {num_classes!r}")
    too_big = np.flatnonzero(labels >= num_classes)
    if too_big.size:
        i = int(too_big[0])
        raise ValueError(
            f"one_hot: label {labels[i]} at index {i} is out of range for "
            f"num_classes={num_classes} (expected 0..{num_classes - 1})"
        )
    out = np.zeros((labels.size, num_classes), dtype=dtype)
    out[np.arange(labels.size), labels] = 1
    return out


def from_one_hot(Y: np.ndarray) -> np.ndarray:
    """Class indices from one-hot rows or per-class scores (the row-wise argmax).

    Parameters
    ----------
    Y : array_like, shape (N, C)
        One-hot rows, probabilities or scores.

    Returns
    -------
    numpy.ndarray of int64, shape (N,)

    Raises
    ------
    ValueError
        If ``Y`` is not 2-D, has no columns, or contains NaN (the row is named).
    """
    Y = np.asarray(Y)
    if Y.ndim != 2:
        raise ValueError(f"from_one_hot: expected a 2-D array (N, classes), got shape {Y.shape}")
    if Y.shape[1] == 0:
        raise ValueError("from_one_hot: Y has 0 columns, so there is no class to pick")
    if Y.dtype.kind == "f":
        nan_rows = np.flatnonzero(np.isnan(Y).any(axis=1))
        if nan_rows.size:
            raise ValueError(f"from_one_hot: row {int(nan_rows[0])} contains NaN")
    return Y.argmax(axis=1).astype(np.int64)


# ----------------------------------------------------------------------------- scalers


class _Scaler:
    """Shared checks: 2-D or higher input, finite values, same features as at fit."""

    _fitted_attr = ""

    def _check_input(self, X: np.ndarray, method: str) -> np.ndarray:
        X = np.asarray(X)
        name = type(self).__name__
        if X.ndim < 2:
            raise ValueError(
                f"{name}.{method}: expected X of shape (samples, features...), got shape "
                f"{X.shape} (use X.reshape(-1, 1) for a single feature)"
            )
        if X.dtype.kind not in "biuf":
            raise ValueError(f"{name}.{method}: X must be numeric, got dtype {X.dtype}")
        if X.dtype.kind == "f" and not np.isfinite(X).all():
            where = np.argwhere(~np.isfinite(X))[0]
            raise ValueError(
                f"{name}.{method}: X contains {X[tuple(where)]} at index {tuple(where.tolist())}"
            )
        return X

    def _check_fitted(self, X: np.ndarray, method: str) -> np.ndarray:
        name = type(self).__name__
        if getattr(self, self._fitted_attr, None) is None:
            raise NotFittedError(
                f"{name}.{method}: this {name} is not fitted yet; call fit(X_train) first"
            )
        X = self._check_input(X, method)
        expected = getattr(self, self._fitted_attr).shape
        if X.shape[1:] != expected:
            n_expected = expected[0] if len(expected) == 1 else expected
            n_got = X.shape[1] if X.ndim == 2 else X.shape[1:]
            raise ValueError(
                f"{name}.{method}: X has {n_got} features, but this {name} was fitted on "
                f"{n_expected} features"
            )
        return X

    @staticmethod
    def _float_dtype(X: np.ndarray) -> np.dtype:
        """Float inputs keep their dtype; integers (e.g. uint8 pixels) become float32."""
        return X.dtype if X.dtype.kind == "f" else np.dtype(np.float32)

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        """Fit to ``X``, then transform it.

        Parameters
        ----------
        X : array_like, shape (N, features...)

        Returns
        -------
        numpy.ndarray
            The transformed ``X``.
        """
        return self.fit(X).transform(X)


def _row_blocks(X: np.ndarray) -> Iterator[np.ndarray]:
    rows = max(1, _STAT_BLOCK_VALUES // max(1, int(np.prod(X.shape[1:]))))
    for start in range(0, X.shape[0], rows):
        yield X[start : start + rows]


class Standardizer(_Scaler):
    """Scale each feature to zero mean and unit variance: ``(X - mean_) / scale_``.

    Fit it on the training data only, then transform the training, dev and test sets
    with the same statistics. Constant features get ``scale_ = 1`` (they become 0
    instead of a division by zero).

    Attributes
    ----------
    mean_ : numpy.ndarray of float64, shape (features...)
    var_ : numpy.ndarray of float64, shape (features...)
    scale_ : numpy.ndarray of float64, shape (features...)
        Standard deviation, with 1 for constant features.
    n_samples_seen_ : int
    """

    _fitted_attr = "mean_"

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.var_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.n_samples_seen_ = 0

    def fit(self, X: np.ndarray) -> Standardizer:
        """Compute the per-feature mean and standard deviation of ``X``.

        Parameters
        ----------
        X : array_like, shape (N, features...)
            Training data, N >= 1, finite.

        Returns
        -------
        Standardizer
            ``self``.
        """
        X = self._check_input(X, "fit")
        if X.shape[0] == 0:
            raise ValueError("Standardizer.fit: X has no samples")
        n = X.shape[0]
        # Two passes in float64 (mean, then squared deviations): stable, and by row
        # blocks so the temporaries stay small whatever the dataset size.
        mean = X.sum(axis=0, dtype=np.float64) / n
        var = np.zeros_like(mean)
        for block in _row_blocks(X):
            dev = block - mean
            var += np.einsum("i...,i...->...", dev, dev)
        var /= n
        std = np.sqrt(var)
        # Constant features: the float64 mean of equal values can be off by an ulp, so
        # "constant" means a spread at rounding level, relative to the values.
        constant = std <= 8 * np.finfo(np.float64).eps * np.abs(mean)
        self.mean_, self.var_, self.n_samples_seen_ = mean, var, n
        self.scale_ = np.where(constant | (std == 0), 1.0, std)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Standardise ``X`` with the fitted statistics.

        Parameters
        ----------
        X : array_like, shape (M, features...)
            Same features as at fit time.

        Returns
        -------
        numpy.ndarray
            Same dtype as ``X`` if floating, else float32.
        """
        X = self._check_fitted(X, "transform")
        dtype = self._float_dtype(X)
        out = np.subtract(X, self.mean_.astype(dtype), dtype=dtype)
        out /= self.scale_.astype(dtype)
        return out

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        """Undo :meth:`transform`: ``X * scale_ + mean_``.

        Parameters
        ----------
        X : array_like, shape (M, features...)

        Returns
        -------
        numpy.ndarray
        """
        X = self._check_fitted(X, "inverse_transform")
        dtype = self._float_dtype(X)
        out = np.multiply(X, self.scale_.astype(dtype), dtype=dtype)
        out += self.mean_.astype(dtype)
        return out


class MinMaxScaler(_Scaler):
    """Scale each feature linearly so the training minimum and maximum map to
    ``feature_range`` (default ``[0, 1]``).

    Constant features map to ``feature_range[0]``. Values outside the training range
    map outside ``feature_range`` (no clipping).

    Parameters
    ----------
    feature_range : tuple of two floats, default (0, 1)

    Attributes
    ----------
    data_min_, data_max_ : numpy.ndarray of float64, shape (features...)
    data_range_ : numpy.ndarray of float64
        ``data_max_ - data_min_``, with 1 for constant features.
    """

    _fitted_attr = "data_min_"

    def __init__(self, feature_range: tuple[float, float] = (0.0, 1.0)) -> None:
        low, high = feature_range
        if not low < high:
            raise ValueError(
                f"MinMaxScaler: feature_range must be (low, high) with low < high, "
                f"got {feature_range!r}"
            )
        self.feature_range = (float(low), float(high))
        self.data_min_: np.ndarray | None = None
        self.data_max_: np.ndarray | None = None
        self.data_range_: np.ndarray | None = None

    def fit(self, X: np.ndarray) -> MinMaxScaler:
        """Record the per-feature minimum and maximum of ``X``.

        Parameters
        ----------
        X : array_like, shape (N, features...)
            Training data, N >= 1, finite.

        Returns
        -------
        MinMaxScaler
            ``self``.
        """
        X = self._check_input(X, "fit")
        if X.shape[0] == 0:
            raise ValueError("MinMaxScaler.fit: X has no samples")
        self.data_min_ = X.min(axis=0).astype(np.float64)
        self.data_max_ = X.max(axis=0).astype(np.float64)
        spread = self.data_max_ - self.data_min_
        self.data_range_ = np.where(spread == 0, 1.0, spread)
        return self

    def _coefficients(self, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """``transform(X) = X * scale + offset``."""
        low, high = self.feature_range
        scale = (high - low) / self.data_range_
        offset = low - self.data_min_ * scale
        return scale.astype(dtype), offset.astype(dtype)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scale ``X`` with the fitted minimum and maximum.

        Parameters
        ----------
        X : array_like, shape (M, features...)

        Returns
        -------
        numpy.ndarray
            Same dtype as ``X`` if floating, else float32.
        """
        X = self._check_fitted(X, "transform")
        dtype = self._float_dtype(X)
        scale, offset = self._coefficients(dtype)
        out = np.multiply(X, scale, dtype=dtype)
        out += offset
        return out

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        """Undo :meth:`transform`.

        Parameters
        ----------
        X : array_like, shape (M, features...)

        Returns
        -------
        numpy.ndarray
        """
        X = self._check_fitted(X, "inverse_transform")
        dtype = self._float_dtype(X)
        scale, offset = self._coefficients(dtype)
        out = np.subtract(X, offset, dtype=dtype)
        out /= scale
        return out


# ------------------------------------------------------------------------------ splits


def _split_size(value: float | int, n: int, name: str) -> int:
    """A fraction of n (rounded up, as scikit-learn does for the test set) or a count."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(
            f"train_dev_test_split: {name} must be a fraction or a count, got {value!r}"
        )
    if isinstance(value, (float, np.floating)):
        if not 0.0 <= value < 1.0:
            raise ValueError(
                f"train_dev_test_split: {name}={value} as a fraction must be in [0, 1); "
                "pass an int for a number of samples"
            )
        return math.ceil(value * n)
    if not 0 <= value <= n:
        raise ValueError(f"train_dev_test_split: {name}={value} samples, but there are {n}")
    return int(value)


def _systematic(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """A mask choosing k of n positions spread evenly (exactly k, within 1 per block).

    Position i is chosen when ``floor((i * k + offset) / n)`` steps up; the random
    offset in ``[0, n)`` decides which blocks get the extra sample when ``k / n`` of a
    block is fractional, so rounding does not favour the same blocks for every seed.
    """
    offset = int(rng.integers(n)) if n else 0
    steps = (np.arange(n + 1, dtype=np.int64) * k + offset) // max(n, 1)
    return np.diff(steps) > 0


def _stratified_indices(
    y: np.ndarray, n_dev: int, n_test: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split so each class is (to within one sample) in the same proportion everywhere.

    Samples are grouped by class, in random order within each class; picking evenly
    spaced positions of that ordering then takes from every class in proportion to its
    size (each class is a contiguous run) and the exact totals requested.
    """
    n = y.shape[0]
    order = rng.permutation(n)
    order = order[np.argsort(y[order], kind="stable")]
    is_test = _systematic(n, n_test, rng)
    rest = order[~is_test]
    is_dev = _systematic(rest.size, n_dev, rng)
    parts = order[is_test], rest[is_dev], rest[~is_dev]
    test, dev, train = (rng.permutation(p) for p in parts)  # mix the classes again
    return train, dev, test


def _strata(y: np.ndarray) -> np.ndarray:
    """The class of each sample, for stratifying: ``y`` itself, or decoded from 2-D.

    A column ``(N, 1)`` holds class labels; ``(N, C)`` with C > 1 is one-hot (or class
    scores) and stratifies by its argmax, as :func:`from_one_hot` decodes it.
    """
    if y.ndim == 1:
        return y
    if y.ndim == 2 and y.shape[1] == 1:
        return y[:, 0]
    if y.ndim == 2 and y.shape[1] > 1:
        return from_one_hot(y)
    raise ValueError(
        f"train_dev_test_split: stratify=True needs y of class labels, shape (N,) or "
        f"(N, 1), or one-hot rows, shape (N, classes); got shape {y.shape}"
    )


def train_dev_test_split(
    X: np.ndarray,
    y: np.ndarray | None,
    dev: float | int = 0.1,
    test: float | int = 0.1,
    shuffle: bool = True,
    stratify: bool = False,
    seed: Seed = None,
) -> tuple[
    tuple[np.ndarray, np.ndarray | None],
    tuple[np.ndarray, np.ndarray | None],
    tuple[np.ndarray, np.ndarray | None],
]:
    """Split samples into training, dev (validation) and test sets.

    Parameters
    ----------
    X : array_like, shape (N, ...)
    y : array_like, shape (N, ...) or None
    dev, test : float or int, default 0.1
        A fraction in ``[0, 1)`` of N (rounded up) or a number of samples.
    shuffle : bool, default True
        Shuffle before splitting. Without shuffling the sets are consecutive slices:
        train first, then dev, then test.
    stratify : bool, default False
        Keep the class proportions of ``y`` in every set (to within one sample per
        class). Needs ``y`` and ``shuffle=True``. ``y`` may hold class labels, shape
        ``(N,)`` or ``(N, 1)``, or one-hot rows, shape ``(N, classes)``, stratified by
        their argmax. Which classes get the extra sample when a class does not divide
        evenly depends on the seed.
    seed : int, numpy.random.Generator or None
        Seed of the shuffle; the same seed gives bit-for-bit the same split.

    Returns
    -------
    (X_train, y_train), (X_dev, y_dev), (X_test, y_test)
        The ``y`` parts are None when ``y`` is None.

    Raises
    ------
    ValueError
        If X and y lengths differ, a size is out of range, or nothing is left for
        training.
    """
    X = np.asarray(X)
    n = X.shape[0] if X.ndim else 0
    if X.ndim == 0:
        raise ValueError("train_dev_test_split: X must have a sample axis, got a scalar")
    if y is not None:
        y = np.asarray(y)
        if y.ndim == 0 or y.shape[0] != n:
            raise ValueError(
                f"train_dev_test_split: X has {n} samples but y has shape {y.shape}"
            )
    n_dev, n_test = _split_size(dev, n, "dev"), _split_size(test, n, "test")
    if n_dev + n_test >= n:
        raise ValueError(
            f"train_dev_test_split: dev ({n_dev}) + test ({n_test}) samples leave nothing of "
            f"the {n} for training"
        )
    if stratify and (y is None or not shuffle):
        raise ValueError("train_dev_test_split: stratify=True needs y and shuffle=True")
    if not shuffle:
        cut1, cut2 = n - n_dev - n_test, n - n_test
        parts = [slice(0, cut1), slice(cut1, cut2), slice(cut2, n)]
    else:
        rng = np.random.default_rng(seed)
        if stratify:
            parts = list(_stratified_indices(_strata(y), n_dev, n_test, rng))
        else:
            order = rng.permutation(n)
            n_train = n - n_dev - n_test
            parts = [order[:n_train], order[n_train : n_train + n_dev], order[n_train + n_dev :]]
    return tuple((X[p], None if y is None else y[p]) for p in parts)  # type: ignore[return-value]


# ------------------------------------------------------------------------ mini-batches


def minibatches(
    X: np.ndarray,
    y: np.ndarray | None = None,
    batch_size: int = 32,
    shuffle: bool = True,
    seed: Seed = None,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Iterate over mini-batches ``(X_batch, y_batch)``.

    Arguments are checked when this is called, not at the first batch.

    Parameters
    ----------
    X : array_like, shape (N, ...)
    y : array_like, shape (N, ...), optional
        ``y_batch`` is None when ``y`` is None.
    batch_size : int, default 32
    shuffle : bool, default True
        A fresh permutation (one per call); each batch is then one fancy-index gather.
        Without shuffling batches are views (contiguous slices), in order.
    seed : int, numpy.random.Generator or None
    drop_last : bool, default False
        Skip the last batch when it is smaller than ``batch_size``.

    Returns
    -------
    iterator of (numpy.ndarray, numpy.ndarray or None)
    """
    X = np.asarray(X)
    if X.ndim == 0:
        raise ValueError("minibatches: X must have a sample axis, got a scalar")
    n = X.shape[0]
    if y is not None:
        y = np.asarray(y)
        if y.ndim == 0 or y.shape[0] != n:
            raise ValueError(f"minibatches: X has {n} samples but y has shape {y.shape}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"minibatches: batch_size must be an int, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"minibatches: batch_size must be >= 1, got {batch_size}")
    stop = n - n % batch_size if drop_last else n
    order = np.random.default_rng(seed).permutation(n) if shuffle else None
    return _batches(X, y, int(batch_size), stop, order)


def _batches(
    X: np.ndarray, y: np.ndarray | None, batch_size: int, stop: int, order: np.ndarray | None
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    for start in range(0, stop, batch_size):
        if order is None:
            part: slice | np.ndarray = slice(start, start + batch_size)
            yield X[part], None if y is None else y[part]
        else:
            idx = order[start : start + batch_size]
            yield X.take(idx, axis=0), None if y is None else y.take(idx, axis=0)
