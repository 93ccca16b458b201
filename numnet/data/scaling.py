"""Feature scaling, and its description in a model file.

:class:`Standardizer` (zero mean, unit variance), :class:`MinMaxScaler` (a fixed range) and
:class:`Rescale` (a constant factor, e.g. 8-bit pixels to ``[0, 1]``) follow scikit-learn's
``fit`` / ``transform`` / ``inverse_transform``. Each describes itself as a small JSON dict,
``get_config()``, that ``from_config`` (or, for any of the three,
:func:`numnet.data.preprocessing_from_config`) turns back into the same scaling::

    {"type": "scale", "factor": 0.00392..., "raw_max": 255.0}
    {"type": "standardize", "mean": [...], "std": [...]}
    {"type": "minmax", "feature_range": [0.0, 1.0], "data_min": [...], "data_max": [...]}

``numnet train`` stores this dict in the model file's metadata as ``"preprocessing"``, so
that ``evaluate``, ``predict`` and library users scale new raw inputs as the training data.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from numnet._checks import real_number

__all__ = [
    "MinMaxScaler",
    "NotFittedError",
    "Rescale",
    "Standardizer",
]

# Statistics are accumulated in blocks of rows so that a float32 dataset never needs a
# full float64 copy just to compute a variance: about 2**20 values (8 MB) per block.
_STAT_BLOCK_VALUES = 1 << 20


class NotFittedError(ValueError, AttributeError):
    """A scaler or encoder was used before :meth:`fit` was called."""


class _Scaler:
    """Shared checks: finite numbers, of the per-sample shape seen at fit.

    ``(N, features...)`` scales each feature; ``(N,)`` is one feature or a regression
    target, and stays 1-D.
    """

    _fitted_attr = ""
    #: the ``"type"`` of this scaler's :meth:`get_config` dict
    config_type: ClassVar[str] = ""

    def _check_input(self, X: np.ndarray, method: str) -> np.ndarray:
        X = np.asarray(X)
        name = type(self).__name__
        if X.ndim < 1:
            raise ValueError(
                f"{name}.{method}: expected X of shape (samples, features...), or (samples,) "
                f"for a single feature or target, got a scalar"
            )
        if X.dtype.kind not in "biuf":
            raise ValueError(f"{name}.{method}: X must be numeric, got dtype {X.dtype}")
        if X.dtype.kind == "f" and not np.isfinite(X).all():
            where = np.argwhere(~np.isfinite(X))[0]
            raise ValueError(
                f"{name}.{method}: X contains {X[tuple(where)]} at index {tuple(where.tolist())}"
            )
        return X

    @property
    def n_features_in_(self) -> int:
        """How many features the scaler was fitted on (the size of one sample)."""
        self._require_fitted("n_features_in_")
        return int(np.prod(getattr(self, self._fitted_attr).shape))

    def _require_fitted(self, method: str) -> None:
        name = type(self).__name__
        if getattr(self, self._fitted_attr, None) is None:
            raise NotFittedError(
                f"{name}.{method}: this {name} is not fitted yet; call fit(X_train) first"
            )

    def _check_fitted(self, X: np.ndarray, method: str) -> np.ndarray:
        self._require_fitted(method)
        name = type(self).__name__
        X = self._check_input(X, method)
        expected = getattr(self, self._fitted_attr).shape
        if X.shape[1:] != expected:
            if not expected or X.ndim == 1:  # 1-D against 2-D: say which is which
                fitted = "1-D data (N,)" if not expected else f"samples of shape {expected}"
                raise ValueError(
                    f"{name}.{method}: X has shape {X.shape}, but this {name} was fitted on "
                    f"{fitted}" + (" (use X.ravel())" if expected == () and X.shape[1:] == (1,)
                                   else "")
                )
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

    def fit(self, X: np.ndarray) -> _Scaler:
        raise NotImplementedError

    def transform(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        """Fit to ``X``, then transform it.

        Parameters
        ----------
        X : array_like, shape (N, features...) or (N,)

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

    A 1-D array ``(N,)`` is one feature, or a regression target: the statistics are then
    scalars (0-d arrays) and the results 1-D, so targets can be scaled for training and
    predictions scaled back::

        target = Standardizer().fit(y_train)                 # y_train of shape (N,)
        model.fit(X_train, target.transform(y_train))
        y_pred = target.inverse_transform(model.predict(X_test))   # shape (M,)

    (:class:`numnet.sklearn.NumnetRegressor` does this by itself, ``scale_target=True``.)

    Attributes
    ----------
    mean_ : numpy.ndarray of float64, shape (features...), or () after 1-D data
    var_ : numpy.ndarray of float64, shape (features...), or ()
    scale_ : numpy.ndarray of float64, shape (features...), or ()
        Standard deviation, with 1 for constant features.
    n_samples_seen_ : int
    """

    _fitted_attr = "mean_"
    config_type = "standardize"

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.var_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.n_samples_seen_ = 0

    def fit(self, X: np.ndarray) -> Standardizer:
        """Compute the per-feature mean and standard deviation of ``X``.

        Parameters
        ----------
        X : array_like, shape (N, features...) or (N,)
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
        X : array_like, shape (M, features...) or (M,)
            Same features as at fit time.

        Returns
        -------
        numpy.ndarray
            Same dtype as ``X`` if floating, else float32.
        """
        X = self._check_fitted(X, "transform")
        mean, scale = self._statistics()
        dtype = self._float_dtype(X)
        out: np.ndarray = np.subtract(X, mean.astype(dtype), dtype=dtype)
        out /= scale.astype(dtype)
        return out

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        """Undo :meth:`transform`: ``X * scale_ + mean_``.

        Parameters
        ----------
        X : array_like, shape (M, features...) or (M,)

        Returns
        -------
        numpy.ndarray
        """
        X = self._check_fitted(X, "inverse_transform")
        mean, scale = self._statistics()
        dtype = self._float_dtype(X)
        out: np.ndarray = np.multiply(X, scale.astype(dtype), dtype=dtype)
        out += mean.astype(dtype)
        return out

    def _statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mean_, scale_)`` of a fitted Standardizer."""
        assert self.mean_ is not None and self.scale_ is not None  # by _check_fitted
        return self.mean_, self.scale_

    def get_config(self) -> dict[str, Any]:
        """``{"type": "standardize", "mean": [...], "std": [...]}`` (JSON-serialisable).

        ``std`` is :attr:`scale_` (1 for constant features): the two arrays are all that
        :meth:`transform` uses, so :meth:`from_config` rebuilds the same transformation
        (without ``var_`` and ``n_samples_seen_``, which only describe the fit).
        """
        self._require_fitted("get_config")
        mean, scale = self._statistics()
        return {"type": self.config_type, "mean": mean.tolist(), "std": scale.tolist()}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Standardizer:
        """A fitted Standardizer from :meth:`get_config`'s dict.

        Raises
        ------
        ValueError
            If ``mean`` and ``std`` are not finite numbers of one shape, or a ``std`` is
            not positive.
        """
        where = _check_config(cls, config)
        mean = _config_array(config, "mean", where)
        std = _config_array(config, "std", where)
        if mean.shape != std.shape:
            raise ValueError(f"{where}: 'mean' has shape {mean.shape} but 'std' has shape "
                             f"{std.shape}")
        if not (std > 0).all():
            raise ValueError(f"{where}: every 'std' must be > 0, got {std[std <= 0][0]}")
        scaler = cls()
        scaler.mean_, scaler.scale_ = mean, std
        return scaler


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
    config_type = "minmax"

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
        X : array_like, shape (N, features...) or (N,)
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
        assert self.data_min_ is not None and self.data_range_ is not None  # fitted
        low, high = self.feature_range
        scale = (high - low) / self.data_range_
        offset = low - self.data_min_ * scale
        return scale.astype(dtype), offset.astype(dtype)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scale ``X`` with the fitted minimum and maximum.

        Parameters
        ----------
        X : array_like, shape (M, features...) or (M,)

        Returns
        -------
        numpy.ndarray
            Same dtype as ``X`` if floating, else float32.
        """
        X = self._check_fitted(X, "transform")
        dtype = self._float_dtype(X)
        scale, offset = self._coefficients(dtype)
        out: np.ndarray = np.multiply(X, scale, dtype=dtype)
        out += offset
        return out

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        """Undo :meth:`transform`.

        Parameters
        ----------
        X : array_like, shape (M, features...) or (M,)

        Returns
        -------
        numpy.ndarray
        """
        X = self._check_fitted(X, "inverse_transform")
        dtype = self._float_dtype(X)
        scale, offset = self._coefficients(dtype)
        out: np.ndarray = np.subtract(X, offset, dtype=dtype)
        out /= scale
        return out

    def get_config(self) -> dict[str, Any]:
        """``{"type": "minmax", "feature_range": [low, high], "data_min": [...],
        "data_max": [...]}`` (JSON-serialisable); see :meth:`from_config`."""
        self._require_fitted("get_config")
        assert self.data_min_ is not None and self.data_max_ is not None
        return {"type": self.config_type, "feature_range": list(self.feature_range),
                "data_min": self.data_min_.tolist(), "data_max": self.data_max_.tolist()}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MinMaxScaler:
        """A fitted MinMaxScaler from :meth:`get_config`'s dict.

        Raises
        ------
        ValueError
            If the arrays are not finite numbers of one shape with ``data_min <=
            data_max``, or ``feature_range`` is not ``(low, high)`` with ``low < high``.
        """
        where = _check_config(cls, config)
        data_min = _config_array(config, "data_min", where)
        data_max = _config_array(config, "data_max", where)
        if data_min.shape != data_max.shape or not (data_min <= data_max).all():
            raise ValueError(f"{where}: 'data_min' and 'data_max' must have one shape with "
                             f"data_min <= data_max, got shapes {data_min.shape} and "
                             f"{data_max.shape}")
        feature_range = config.get("feature_range", (0.0, 1.0))
        if not isinstance(feature_range, (list, tuple)) or len(feature_range) != 2:
            raise ValueError(f"{where}: 'feature_range' must be [low, high], got "
                             f"{feature_range!r}")
        scaler = cls((float(feature_range[0]), float(feature_range[1])))
        spread = data_max - data_min
        scaler.data_min_, scaler.data_max_ = data_min, data_max
        scaler.data_range_ = np.where(spread == 0, 1.0, spread)
        return scaler


class Rescale:
    """Multiply by a constant: raw values in ``[0, raw_max]`` become ``[0, 1]``.

    ``transform(X) = X * factor`` with ``factor = 1 / raw_max``, e.g. ``Rescale(255)`` for
    8-bit pixels or ``Rescale(16)`` for the built-in digits. Stateless: :meth:`fit` only
    returns ``self`` (it is there so a Rescale can stand where a scaler does). Integer input
    (``uint8`` images) becomes float32, float input keeps its dtype; any shape.

    Parameters
    ----------
    raw_max : float
        The largest raw value, > 0. The attribute ``factor`` is ``1 / raw_max`` (or the
        exact factor a stored config gives).
    """

    config_type: ClassVar[str] = "scale"

    def __init__(self, raw_max: float) -> None:
        self.raw_max = real_number(raw_max, "Rescale raw_max", low=0.0, low_open=True)
        self.factor = 1.0 / self.raw_max

    def fit(self, X: npt.ArrayLike | None = None) -> Rescale:
        """Nothing to learn; returns ``self``."""
        return self

    def transform(self, X: npt.ArrayLike) -> np.ndarray:
        """``X * factor``, in X's float dtype (float32 for integers).

        Values are not checked for NaN: a non-finite value stays non-finite, for the
        model to report.
        """
        X = self._numeric(X, "transform")
        dtype = _Scaler._float_dtype(X)
        out: np.ndarray = np.multiply(X.astype(dtype, copy=False), dtype.type(self.factor))
        return out

    def inverse_transform(self, X: npt.ArrayLike) -> np.ndarray:
        """Undo :meth:`transform`: ``X / factor``."""
        X = self._numeric(X, "inverse_transform")
        dtype = _Scaler._float_dtype(X)
        out: np.ndarray = np.divide(X.astype(dtype, copy=False), dtype.type(self.factor))
        return out

    def fit_transform(self, X: npt.ArrayLike) -> np.ndarray:
        """The same as :meth:`transform`."""
        return self.transform(X)

    def get_config(self) -> dict[str, Any]:
        """``{"type": "scale", "factor": 1 / raw_max, "raw_max": raw_max}``."""
        return {"type": self.config_type, "factor": self.factor, "raw_max": self.raw_max}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Rescale:
        """A Rescale from :meth:`get_config`'s dict (the stored ``factor`` is kept exactly;
        either key alone is enough)."""
        where = _check_config(cls, config)
        factor, raw_max = config.get("factor"), config.get("raw_max")
        if factor is None and raw_max is None:
            raise ValueError(f"{where}: expected 'factor' or 'raw_max', got "
                             f"{reprlib.repr(dict(config))}")
        if raw_max is None:
            raw_max = 1.0 / real_number(factor, f"{where}: factor", low=0.0, low_open=True)
        scaling = cls(raw_max)
        if factor is not None:
            scaling.factor = real_number(factor, f"{where}: factor", low=0.0, low_open=True)
        return scaling

    def __repr__(self) -> str:
        return f"Rescale(raw_max={self.raw_max!r})"

    @staticmethod
    def _numeric(X: npt.ArrayLike, method: str) -> np.ndarray:
        X = np.asarray(X)
        if X.dtype.kind not in "biuf":
            raise ValueError(f"Rescale.{method}: X must be numeric, got dtype {X.dtype}")
        return X


def _check_config(cls: type, config: Mapping[str, Any]) -> str:
    """``"Name.from_config"`` after checking that ``config`` is a dict of the class's type."""
    where = f"{cls.__name__}.from_config"
    expected = getattr(cls, "config_type", "")
    if not isinstance(config, Mapping) or config.get("type") != expected:
        raise ValueError(f"{where}: expected a dict with \"type\": {expected!r}, got "
                         f"{reprlib.repr(config)}")
    return where


def _config_array(config: Mapping[str, Any], key: str, where: str) -> np.ndarray:
    """``config[key]`` as a float64 array of finite numbers (0-d for a scaler of 1-D data)."""
    value = config.get(key)
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = np.empty(0)
    if value is None or array.size == 0 or not np.isfinite(array).all():
        raise ValueError(f"{where}: {key!r} must be a non-empty list of finite numbers (or "
                         f"one number, for a scaler fitted on 1-D data), got "
                         f"{reprlib.repr(value)}")
    return array
