"""The scaling a model file records, dataset splits and mini-batches.

Everything here works on whole arrays: no Python loop runs over samples or features.
Samples are rows (axis 0), as everywhere in numnet. Label encoding lives in
:mod:`numnet.data.labels` and feature scaling in :mod:`numnet.data.scaling`; their names
are importable from here too, as they were before those modules existed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from numnet.data.labels import LabelEncoder, UnknownLabelError, from_one_hot, one_hot
from numnet.data.scaling import MinMaxScaler, NotFittedError, Rescale, Standardizer

__all__ = [
    "LabelEncoder",
    "MinMaxScaler",
    "NotFittedError",
    "Preprocessor",
    "Rescale",
    "Standardizer",
    "UnknownLabelError",
    "from_one_hot",
    "minibatches",
    "one_hot",
    "preprocessing_from_config",
    "train_dev_test_split",
]

Seed = int | np.random.Generator | None

# ------------------------------------------------------- the scaling a model file records

#: what :func:`preprocessing_from_config` returns: each has ``transform``,
#: ``inverse_transform`` and ``get_config``
Preprocessor = Rescale | Standardizer | MinMaxScaler

_BY_TYPE: dict[str, type[Rescale] | type[Standardizer] | type[MinMaxScaler]] = {
    cls.config_type: cls for cls in (Rescale, Standardizer, MinMaxScaler)}


def preprocessing_from_config(config: Mapping[str, Any]) -> Preprocessor:
    """The scaling a ``get_config()`` dict describes, ready to ``transform`` raw inputs.

    ::

        scaling = preprocessing_from_config(io.load_metadata(path)["preprocessing"])
        labels = model.predict(scaling.transform(X_raw))

    Parameters
    ----------
    config : mapping
        ``{"type": "scale" | "standardize" | "minmax", ...}``, e.g. the ``"preprocessing"``
        entry ``numnet train`` writes into a model file's metadata.

    Returns
    -------
    Rescale, Standardizer or MinMaxScaler
        Fitted, so that ``transform`` applies exactly the stored scaling.

    Raises
    ------
    ValueError
        For an unknown ``"type"`` or values that do not describe a scaling.
    """
    kind = config.get("type") if isinstance(config, Mapping) else None
    cls = _BY_TYPE.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown preprocessing {kind!r} (known: "
                         f"{', '.join(map(repr, sorted(_BY_TYPE)))})")
    return cls.from_config(config)


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
    parts: list[slice] | list[np.ndarray]
    if not shuffle:
        cut1, cut2 = n - n_dev - n_test, n - n_test
        parts = [slice(0, cut1), slice(cut1, cut2), slice(cut2, n)]
    else:
        rng = np.random.default_rng(seed)
        if stratify and y is not None:
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
