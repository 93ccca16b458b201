"""``NumnetRegressor``: single- and multi-output regression, the target scaled by default."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.utils import Tags

from numnet.data import Standardizer
from numnet.sklearn._base import NumnetEstimator
from numnet.sklearn._docs import SHARED_ATTRIBUTES, SHARED_PARAMETERS
from numnet.sklearn._threads import limited_threads


class NumnetRegressor(RegressorMixin, NumnetEstimator):
    __doc__ = """A numnet network as a scikit-learn regressor (mean squared error).

    ``y`` of shape ``(n,)`` or ``(n, k)`` (multi-output); ``predict`` returns the shape
    ``y`` had, in the input's float dtype where it is more precise than the network's. By
    default the targets are standardised for training (``scale_target``) and the
    predictions scaled back, so the network's outputs and the learning rate suit targets of
    any units.
    """ + SHARED_PARAMETERS + """    scale_target : bool, default=True
        Train on ``(y - mean) / std`` of the first fit's targets (a
        :class:`numnet.data.Standardizer`, ``target_scaler_``) and invert it in
        ``predict``. The training losses (``loss_curve_``, ``history_``) are then in
        standardised units; ``score`` is R^2 in the targets' own.

    Attributes
    ----------
    n_outputs_ : int
        Outputs per sample (1 for ``y`` of shape ``(n,)``).
    target_scaler_ : numnet.data.Standardizer or None
        The target scaling (None with ``scale_target=False``).""" + SHARED_ATTRIBUTES

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **NumnetEstimator._parameter_constraints, "scale_target": ["boolean"]}
    _losses: ClassVar[dict[str, str]] = {"regression": "mse"}

    def __init__(self, hidden_layer_sizes: Any = (100,), *, model: Any = None,
                 activation: str = "relu", dropout: float = 0.0, batch_norm: bool = False,
                 optimizer: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0,
                 momentum: float | None = None, optimizer_kwargs: dict[str, Any] | None = None,
                 epochs: int = 100, batch_size: int = 32, shuffle: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1,
                 patience: int = 10, clip_norm: float | None = None, warm_start: bool = False,
                 random_state: Any = None, verbose: int = 0, dtype: str = "float32",
                 n_threads: int | None = None, health: bool = True,
                 scale_target: bool = True) -> None:
        super().__init__(
            hidden_layer_sizes, model=model, activation=activation, dropout=dropout,
            batch_norm=batch_norm, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
            momentum=momentum, optimizer_kwargs=optimizer_kwargs, epochs=epochs,
            batch_size=batch_size, shuffle=shuffle, early_stopping=early_stopping,
            validation_fraction=validation_fraction, patience=patience, clip_norm=clip_norm,
            warm_start=warm_start, random_state=random_state, verbose=verbose, dtype=dtype,
            n_threads=n_threads, health=health)
        self.scale_target = scale_target

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> NumnetRegressor:
        """Train a new network on ``(X, y)`` (or continue it, with ``warm_start``).

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame, shape (n_samples, n_features)
            A sparse matrix (CSR/CSC) is densified once, whole.
        y : array-like, shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like, shape (n_samples,), optional
            Relative weights, rescaled to mean 1: the loss is ``sum(w l) / sum(w)``.

        Returns
        -------
        self
        """
        self._fit(X, y, sample_weight, partial=False)
        return self

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> NumnetRegressor:
        """One epoch over ``(X, y)``, continuing the fitted network (creating it first; the
        target scaling is that of the first call's ``y``).

        Returns
        -------
        self
        """
        self._fit(X, y, sample_weight, partial=True)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, of the shape ``y`` had in ``fit`` (``(n,)`` or ``(n, k)``)."""
        X = self._inputs(X)
        with limited_threads(self.n_threads):
            outputs: np.ndarray = self._network_for(X).predict(X)
        if self.target_scaler_ is not None:
            outputs = self.target_scaler_.inverse_transform(outputs)
        return outputs

    # -- targets ------------------------------------------------------------------------
    def _check_y_params(self) -> dict[str, Any]:
        return {"multi_output": True, "y_numeric": True}

    def _n_outputs(self) -> int:
        return self.n_outputs_

    def _encode_targets(self, y: Any, weights: np.ndarray | None, first: bool, classes: Any,
                        partial: bool) -> tuple[np.ndarray, np.ndarray | None]:
        y = np.asarray(y, dtype=np.float64)
        if first:
            self._task = "regression"
            self._target_shape = y.shape[1:]
            self.n_outputs_ = int(np.prod(self._target_shape))
            self.target_scaler_ = _target_scaler(y, weights) if self.scale_target else None
        else:
            outputs = int(np.prod(y.shape[1:]))
            if outputs != self.n_outputs_:
                raise ValueError(f"y has {outputs} outputs per sample, but the estimator was "
                                 f"first fit on {self.n_outputs_}")
            y = y.reshape((y.shape[0], *self._target_shape))
        targets = y if self.target_scaler_ is None else self.target_scaler_.transform(y)
        return targets, None

    # -- files --------------------------------------------------------------------------
    def _target_state(self) -> dict[str, Any]:
        return {"task": self._task, "target_shape": list(self._target_shape),
                "target_scaler": None if self.target_scaler_ is None
                else self.target_scaler_.get_config()}

    def _restore_targets(self, state: dict[str, Any]) -> None:
        self._task = state["task"]
        self._target_shape = tuple(int(d) for d in state["target_shape"])
        self.n_outputs_ = int(np.prod(self._target_shape))
        scaler = state.get("target_scaler")
        self.target_scaler_ = None if scaler is None else Standardizer.from_config(scaler)

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _target_scaler(y: np.ndarray, weights: np.ndarray | None) -> Standardizer:
    """A Standardizer of ``y`` whose statistics count each sample by its weight (so that a
    weight of 2 scales as a repeated sample would)."""
    if weights is None:
        return Standardizer().fit(y)
    mean = np.average(y, axis=0, weights=weights)
    std = np.sqrt(np.average((y - mean) ** 2, axis=0, weights=weights))
    std = np.where(std <= 8 * np.finfo(np.float64).eps * np.abs(mean), 1.0, std)
    return Standardizer.from_config({"type": Standardizer.config_type, "mean": mean.tolist(),
                                     "std": std.tolist()})
