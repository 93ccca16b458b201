"""What :class:`NumnetClassifier` and :class:`NumnetRegressor` share: the hyperparameters
and their constraints, ``fit``/``partial_fit``, the thread limit, files.

scikit-learn's rules for estimators hold: ``__init__`` stores its arguments unchanged and
checks nothing; ``fit`` checks them (against ``_parameter_constraints``, scikit-learn's
declarative constraints) and the data (``validate_data``), then sets the attributes that
end with ``_``. A subclass says what its targets are (``_encode_targets``) and what the
network's loss is; everything else happens here.
"""

from __future__ import annotations

import copy
import math
import os
import weakref
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.utils import Tags, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from numnet import io
from numnet.callbacks import Callback, EarlyStopping
from numnet.model import Sequential
from numnet.optim import ALIASES, Optimizer, get_optimizer
from numnet.sklearn._network import ACTIVATIONS, build_network, hidden_sizes
from numnet.sklearn._threads import blas_threads, limited_threads
from numnet.training import History
from numnet.training.data import validation_rows

#: key of the estimator's entry in a model file's metadata
METADATA_KEY = "sklearn"
#: optimisers that take a momentum (``momentum`` is ignored by the others)
_WITH_MOMENTUM = {"sgd", "momentum", "nesterov", "rmsprop"}


class NumnetEstimator(BaseEstimator):
    """Base class of the numnet estimators; use :class:`NumnetClassifier` or
    :class:`NumnetRegressor`. The hyperparameters are documented there."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "model": [None, dict, str, os.PathLike, HasMethods(["get_config"]), callable],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "batch_norm": ["boolean"],
        "optimizer": [StrOptions(set(ALIASES))],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "momentum": [None, Interval(Real, 0, 1, closed="left")],
        "optimizer_kwargs": [None, dict],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "clip_norm": [None, Interval(Real, 0, None, closed="neither")],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "dtype": [StrOptions({"float32", "float64"})],
        "n_threads": [None, Interval(Integral, 1, None, closed="left")],
        "health": ["boolean"],
    }

    #: the loss of the network, per kind of target (``_task``)
    _losses: ClassVar[dict[str, str]] = {}

    def __init__(self, hidden_layer_sizes: Any = (100,), *, model: Any = None,
                 activation: str = "relu", dropout: float = 0.0, batch_norm: bool = False,
                 optimizer: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0,
                 momentum: float | None = None, optimizer_kwargs: dict[str, Any] | None = None,
                 epochs: int = 100, batch_size: int = 32, shuffle: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1,
                 patience: int = 10, clip_norm: float | None = None, warm_start: bool = False,
                 random_state: Any = None, verbose: int = 0, dtype: str = "float32",
                 n_threads: int | None = None, health: bool = True) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.model = model
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.optimizer_kwargs = optimizer_kwargs
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.clip_norm = clip_norm
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.dtype = dtype
        self.n_threads = n_threads
        self.health = health

    # -- for the subclasses -------------------------------------------------------------
    def _encode_targets(self, y: Any, weights: np.ndarray | None, first: bool, classes: Any,
                        partial: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """``y`` (validated) as the network's targets, and a class per sample to stratify
        the early-stopping split by (or None); sets the target attributes when ``first``."""
        raise NotImplementedError

    def _n_outputs(self) -> int:
        raise NotImplementedError

    def _check_y_params(self) -> dict[str, Any]:
        """Arguments of ``validate_data`` for ``y``."""
        raise NotImplementedError

    # -- fitting ------------------------------------------------------------------------
    def _fit(self, X: Any, y: Any, sample_weight: Any, *, partial: bool,
             classes: Any = None) -> NumnetEstimator:
        self._validate_params()
        hidden_sizes(self.hidden_layer_sizes)  # beyond what the constraints say
        fitted = hasattr(self, "model_")
        first = not fitted or not (partial or self.warm_start)
        X, y = validate_data(self, X, y, reset=first, dtype=["float64", "float32"],
                             allow_nd=True, accept_sparse=_SPARSE, **self._check_y_params())
        X = _dense(X)
        weights = _sample_weight(sample_weight, X.shape[0])
        targets, strata = self._encode_targets(y, weights, first, classes, partial)
        with limited_threads(self.n_threads) as limit:
            self.n_threads_ = limit if limit is not None else blas_threads()
            if first:
                self._start(X.shape[1:])
            elif self.model_.input_shape != X.shape[1:]:
                raise ValueError(f"X has samples of shape {X.shape[1:]}, but the fitted network "
                                 f"takes {self.model_.input_shape}")
            history = self._train(X, targets, weights, strata, partial, first)
        self._record(history, first)
        return self

    def _start(self, sample_shape: tuple[int, ...]) -> None:
        """A new network and optimiser, with seeds drawn from ``random_state``."""
        rng = check_random_state(self.random_state)
        model_seed, fit_seed, split_seed = (int(s) for s in rng.randint(0, 2**31 - 1, 3))
        mlp = {"hidden": hidden_sizes(self.hidden_layer_sizes), "activation": self.activation,
               "dropout": float(self.dropout), "batch_norm": bool(self.batch_norm)}
        self.model_ = build_network(self.model, tuple(sample_shape), self._n_outputs(),
                                    self._losses[self._task], self.dtype, model_seed, mlp)
        self.optimizer_ = self._new_optimizer()
        self._fit_seed: int | None = fit_seed
        self._split_seed = split_seed
        self.history_ = History()

    def _new_optimizer(self) -> Optimizer:
        options = dict(self.optimizer_kwargs or {})
        taken = sorted({"lr", "weight_decay", "momentum"} & set(options))
        if taken:
            raise ValueError(f"optimizer_kwargs sets {taken}: set them with the estimator's "
                             "own parameters of those names")
        options.update(lr=float(self.lr), weight_decay=float(self.weight_decay))
        if self.momentum is not None and self.optimizer in _WITH_MOMENTUM:
            options["momentum"] = float(self.momentum)
        try:
            return get_optimizer(self.optimizer, **options)
        except TypeError as exc:
            raise ValueError(f"optimizer_kwargs={self.optimizer_kwargs!r} do not fit the "
                             f"{self.optimizer!r} optimiser: {exc}") from exc

    def _train(self, X: np.ndarray, targets: np.ndarray, weights: np.ndarray | None,
               strata: np.ndarray | None, partial: bool, first: bool) -> History:
        """One ``Sequential.fit``: all epochs (``fit``) or one (``partial_fit``)."""
        callbacks: list[Callback] = []
        validation = None
        if self.early_stopping and not partial:
            held = validation_rows(strata, X.shape[0], self.validation_fraction,
                                   np.random.default_rng(self._split_seed),
                                   "validation_fraction")
            validation = (X[held], targets[held], _mean_one(weights, held))
            X, targets, weights = X[~held], targets[~held], _mean_one(weights, ~held)
            callbacks.append(EarlyStopping(monitor="val_loss", patience=self.patience,
                                           restore_best_weights=True))
        else:
            weights = _mean_one(weights)
        seed = self._fit_seed if first else None  # continuing: the model's own generators
        return self.model_.fit(
            X, targets, epochs=1 if partial else self.epochs, batch_size=self.batch_size,
            optimizer=self.optimizer_, shuffle=bool(self.shuffle), validation_data=validation,
            callbacks=callbacks, verbose=min(int(self.verbose), 2), seed=seed,
            sample_weight=weights, clip_norm=self.clip_norm, health=bool(self.health))

    def _record(self, run: History, first: bool) -> None:
        """Append the run's epochs to ``history_`` (a key a run lacks gets NaN there)."""
        history = self.history_ if not first else History()
        done = len(history)
        for key in set(history.history) | set(run.history):
            values = history.history.setdefault(key, [math.nan] * done)
            values.extend(run.history.get(key, [math.nan] * len(run)))
        history.epoch.extend(range(done, done + len(run)))
        history.params = run.params
        history.interrupted, history.stopped_early = run.interrupted, run.stopped_early
        self.history_ = history
        self._set_curves()

    def _set_curves(self) -> None:
        """``n_iter_``, ``loss_curve_``, ``best_loss_``, ``best_validation_loss_`` from
        ``history_``."""
        history = self.history_.history
        self.n_iter_ = len(self.history_)
        self.loss_curve_ = list(history.get("loss", []))
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else None
        self.best_loss_ = min(self.loss_curve_) if self.loss_curve_ else None
        val = [v for v in history.get("val_loss", []) if not math.isnan(v)]
        self.best_validation_loss_ = min(val) if val else None

    # -- predicting ---------------------------------------------------------------------
    def _inputs(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        array = validate_data(self, X, reset=False, dtype=["float64", "float32"],
                              allow_nd=True, accept_sparse=_SPARSE)
        return _dense(array)

    def _network_for(self, X: np.ndarray) -> Sequential:
        """The network to predict ``X`` with: ``model_``, or a copy of it in ``X``'s dtype
        where that is more precise (float64 ``X``, float32 network).

        float32 matrix products round a row differently with the shape of the batch it is
        in (by about 1e-7); computed in float64, the same weights give a sample the same
        prediction whatever rows come with it, as scikit-learn's estimators do (its
        ``check_methods_subset_invariance``). float32 ``X`` is predicted in float32.
        """
        if X.dtype.itemsize <= self.model_.dtype.itemsize:
            return self.model_
        return _wide_copy(self.model_, X.dtype)

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # densified (see _dense)
        return tags

    # -- files --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted estimator to a numnet model file (``.npz``, no pickle).

        The file holds the network, the optimiser's state and, in its metadata under
        ``"sklearn"``, the hyperparameters and the fitted attributes (``classes_``,
        ``n_features_in_``, ``feature_names_in_``, the target scaling, ``history_``...):
        :meth:`load` rebuilds an estimator that predicts bit for bit as this one and can
        continue training (``warm_start``, ``partial_fit``). The file is also an ordinary
        model file (``numnet.io.load``, ``numnet predict``).

        A ``model`` hyperparameter given as a function or a Sequential is stored as the
        description of the network it built, and a ``random_state`` that is a
        ``RandomState`` as None: JSON holds neither.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            If something to store is not JSON-serialisable (e.g. classes that are dates).
        """
        check_is_fitted(self)
        entry = {"estimator": f"{type(self).__module__}.{type(self).__qualname__}",
                 "params": self._stored_params(), "fitted": self._fitted_state()}
        return self.model_.save(path, optimizer=self.optimizer_,
                                metadata={METADATA_KEY: entry, **self._file_metadata()})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Any:
        """The estimator :meth:`save` wrote to ``path``.

        Raises
        ------
        numnet.io.ModelFileError
            If the file is not a numnet model file, or holds no estimator of this class
            (a model saved by ``Sequential.save`` is read with :func:`numnet.io.load`).
        """
        metadata = io.load_metadata(path)
        entry = metadata.get(METADATA_KEY)
        name = f"{cls.__module__}.{cls.__qualname__}"
        if not isinstance(entry, dict) or not isinstance(entry.get("params"), dict):
            raise io.ModelFileError(path, f"holds no scikit-learn estimator (it was not "
                                          f"written by {cls.__name__}.save); read the network "
                                          "with numnet.io.load")
        if entry.get("estimator") != name:
            raise io.ModelFileError(path, f"holds a {entry.get('estimator')}, not a {name}")
        params = dict(entry["params"])
        if isinstance(params.get("hidden_layer_sizes"), list):
            params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        try:
            estimator = cls(**params)
            estimator.model_ = io.load(path)
            optimizer = io.load_optimizer(path)
            estimator.optimizer_ = optimizer if optimizer is not None \
                else estimator._new_optimizer()
            estimator._restore(dict(entry.get("fitted") or {}))
        except (TypeError, ValueError, KeyError) as exc:
            raise io.ModelFileError(path, f"invalid estimator entry: {exc}") from exc
        return estimator

    def _stored_params(self) -> dict[str, Any]:
        params: dict[str, Any] = self.get_params(deep=False)
        if params["model"] is not None and not isinstance(params["model"], dict):
            params["model"] = self.model_.get_config()
        if not (params["random_state"] is None or isinstance(params["random_state"], int)):
            params["random_state"] = None
        return params

    def _fitted_state(self) -> dict[str, Any]:
        names = getattr(self, "feature_names_in_", None)
        return {"n_features_in_": self.n_features_in_,
                "feature_names_in_": None if names is None else names.tolist(),
                "history": {"history": self.history_.history, "epoch": self.history_.epoch,
                            "params": self.history_.params,
                            "stopped_early": self.history_.stopped_early},
                "n_threads_": self.n_threads_, "split_seed": self._split_seed,
                **self._target_state()}

    def _restore(self, state: dict[str, Any]) -> None:
        self.n_features_in_ = int(state["n_features_in_"])
        if state.get("feature_names_in_") is not None:
            self.feature_names_in_ = np.asarray(state["feature_names_in_"], dtype=object)
        saved = state["history"]
        self.history_ = History(history={k: list(v) for k, v in saved["history"].items()},
                                epoch=list(saved["epoch"]), params=dict(saved["params"]),
                                stopped_early=bool(saved.get("stopped_early")))
        self._set_curves()
        self.n_threads_ = int(state["n_threads_"])
        self._fit_seed, self._split_seed = None, int(state["split_seed"])
        self._restore_targets(state)

    def _target_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _restore_targets(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def _file_metadata(self) -> dict[str, Any]:
        """Metadata the ``numnet`` command line reads too (a classifier's ``classes``)."""
        return {}


#: the float64 copies of float32 networks that predict float64 inputs, with the weights
#: and buffers they were copied from (weak keys: an entry goes with its network; outside
#: the estimators, whose ``__dict__`` predicting must not change)
_WIDE_COPIES: weakref.WeakKeyDictionary[Sequential, tuple[dict[str, np.ndarray], Sequential]] \
    = weakref.WeakKeyDictionary()


def _wide_copy(model: Sequential, dtype: np.dtype[Any]) -> Sequential:
    """``model`` converted to ``dtype`` (a copy, made again only when ``model``'s
    parameters or buffers have changed since: a deep copy costs milliseconds, comparing
    the arrays microseconds)."""
    state = model.state_dict()
    cached = _WIDE_COPIES.get(model)
    if cached is not None:
        source, wide = cached
        if (wide.dtype == dtype and source.keys() == state.keys()
                and all(np.array_equal(state[key], source[key]) for key in state)):
            wide.target_shape = model.target_shape
            return wide
    wide = copy.deepcopy(model).astype(dtype)
    _WIDE_COPIES[model] = ({key: value.copy() for key, value in state.items()}, wide)
    return wide


#: the sparse formats ``X`` may come in (as MLPClassifier's)
_SPARSE = ["csr", "csc"]


def _dense(X: Any) -> np.ndarray:
    """``X`` as a dense array: numnet's layers take dense batches, so a sparse matrix (a
    one-hot encoding, as ``OneHotEncoder`` gives it) is expanded, whole, once."""
    dense: np.ndarray = X.toarray() if sparse.issparse(X) else X
    return dense


def _mean_one(weights: np.ndarray | None, rows: np.ndarray | None = None) -> np.ndarray | None:
    """``weights[rows]`` rescaled to mean 1, so numnet's ``mean(w * l)`` is
    ``sum(w l) / sum(w)`` (scikit-learn's weighted mean); None stays None."""
    if weights is None:
        return None
    part = weights if rows is None else weights[rows]
    total = part.sum()
    return part * (part.size / total) if total > 0 else part


def _sample_weight(sample_weight: Any, n: int) -> np.ndarray | None:
    """``sample_weight`` as float64 ``(n,)``, finite, >= 0 and not all 0; or None."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.shape != (n,):
        raise ValueError(f"sample_weight has shape {w.shape}, expected ({n},): one weight per "
                         "sample")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("sample_weight must hold finite weights >= 0")
    if not w.any():
        raise ValueError("sample_weight: the weights are all zero; at least one must be "
                         "non-zero")
    return w

