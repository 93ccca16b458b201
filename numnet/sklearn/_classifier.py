"""``NumnetClassifier``: binary, multi-class and multilabel classification."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils import Tags
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d

from numnet.data import LabelEncoder, UnknownLabelError
from numnet.layers.activations import sigmoid
from numnet.sklearn._base import NumnetEstimator
from numnet.sklearn._docs import SHARED_ATTRIBUTES, SHARED_PARAMETERS
from numnet.sklearn._threads import limited_threads


class NumnetClassifier(ClassifierMixin, NumnetEstimator):
    __doc__ = """A numnet network as a scikit-learn classifier.

    Binary problems train one sigmoid output (binary cross-entropy); ``predict_proba`` gives
    both columns, as scikit-learn's. More classes train a softmax output (cross-entropy);
    multilabel targets (a 2-D 0/1 ``y``) one sigmoid output per label, ``predict`` giving
    ``(n, k)`` 0/1. Labels may be of any kind (text, negative or sparse integers,
    booleans): :class:`numnet.data.LabelEncoder` maps them to ``0..K-1``.
    """ + SHARED_PARAMETERS + """
    Attributes
    ----------
    classes_ : ndarray
        The class labels, sorted (``arange(k)`` for multilabel targets).
    n_outputs_ : int
        Outputs of the network: 1 for a binary problem (a sigmoid), else one per class or
        label.""" \
        + SHARED_ATTRIBUTES + """
    Examples
    --------
    >>> from numnet.data import load_digits
    >>> from numnet.sklearn import NumnetClassifier
    >>> X, y = load_digits(flatten=True, scale=True)
    >>> clf = NumnetClassifier((64,), epochs=20, random_state=0).fit(X, y)
    >>> clf.predict(X[:3]).tolist()
    [0, 1, 2]
    """

    _losses: ClassVar[dict[str, str]] = {"binary": "binary_cross_entropy",
                                         "multiclass": "cross_entropy",
                                         "multilabel": "binary_cross_entropy"}

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> NumnetClassifier:
        """Train a new network on ``(X, y)`` (or continue it, with ``warm_start``).

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame, shape (n_samples, n_features)
            A sparse matrix (CSR/CSC) is densified once, whole. Higher-rank arrays
            (images ``(n, C, H, W)``) are taken by networks given as ``model``.
        y : array-like, shape (n_samples,) or (n_samples, n_labels)
            Class labels of any kind, or a 0/1 indicator matrix for multilabel targets.
        sample_weight : array-like, shape (n_samples,), optional
            Relative weights, rescaled to mean 1: the loss is ``sum(w l) / sum(w)``.

        Returns
        -------
        self
        """
        self._fit(X, y, sample_weight, partial=False)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None,
                    sample_weight: Any = None) -> NumnetClassifier:
        """One epoch over ``(X, y)``, continuing the fitted network (creating it first).

        Parameters
        ----------
        X, y, sample_weight
            As :meth:`fit`.
        classes : array-like, optional
            Every label the data will hold: required on the first call (except for
            multilabel targets), and equal to ``classes_`` if given later.

        Returns
        -------
        self
        """
        self._fit(X, y, sample_weight, partial=True, classes=classes)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The predicted labels: ``(n,)`` of ``classes_``, or ``(n, k)`` 0/1 (multilabel,
        in the dtype of the ``y`` fit on)."""
        labels = self._predict("predict", X)
        if self._task == "multilabel":
            return labels.astype(self._label_dtype)
        predicted: np.ndarray = self.classes_[labels]
        return predicted

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, ``(n, n_classes)`` in the order of ``classes_`` (two
        columns for a binary problem); ``P(label j)`` per column for multilabel targets.

        A sigmoid or softmax never reaches 0 or 1, but rounding does (a float32 sigmoid of
        17 is 1.0): the probabilities are kept inside ``(0, 1)`` by the dtype's
        resolution (``finfo.tiny``, ``1 - finfo.epsneg``), so that their logarithm is
        finite and agrees with :meth:`predict_log_proba`.
        """
        check_is_fitted(self)
        if self._task != "binary":
            return _inside_unit(self._predict("predict_proba", X))
        # P(class 0) as sigmoid(-z): 1 - sigmoid(z) is exactly 0 once sigmoid(z) rounds to 1
        # (z > 37 in float64), where predict_log_proba is still finite
        z = self._logits(X)
        return _inside_unit(sigmoid(np.concatenate([-z, z], axis=1)))

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """The logarithm of :meth:`predict_proba`, computed from the logits (finite where
        the probability underflows to 0)."""
        z = self._logits(X)
        if self._task == "multiclass":
            shifted = z - z.max(axis=1, keepdims=True)
            log_proba: np.ndarray = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            return log_proba
        log_p: np.ndarray = -np.logaddexp(0, -z)  # log sigmoid(z)
        if self._task == "multilabel":
            return log_p
        both: np.ndarray = np.concatenate([-np.logaddexp(0, z), log_p], axis=1)
        return both

    def _logits(self, X: Any) -> np.ndarray:
        """The network's outputs for ``X``, in the dtype of the predictions."""
        X = self._inputs(X)
        with limited_threads(self.n_threads):
            logits = self._network_for(X).predict_logits(X)
        z: np.ndarray = logits.astype(self.model_._result_dtype(X), copy=False)
        return z

    def _predict(self, method: str, X: Any) -> np.ndarray:
        X = self._inputs(X)
        with limited_threads(self.n_threads):
            result: np.ndarray = getattr(self._network_for(X), method)(X)
        return result

    # -- targets ------------------------------------------------------------------------
    def _check_y_params(self) -> dict[str, Any]:
        return {"multi_output": True}

    def _n_outputs(self) -> int:
        return self.n_outputs_

    def _encode_targets(self, y: Any, weights: np.ndarray | None, first: bool, classes: Any,
                        partial: bool) -> tuple[np.ndarray, np.ndarray | None]:
        check_classification_targets(y)
        multilabel = type_of_target(y, input_name="y") == "multilabel-indicator"
        if not multilabel:
            y = column_or_1d(y, warn=True)
        if first:
            self._set_classes(y, multilabel, classes, partial)
            self._set_n_outputs()
        else:
            self._check_continuation(y, multilabel, classes, partial)
        if multilabel:
            return np.asarray(y, dtype=np.float64), None
        try:
            codes = self._encoder.transform(y)
        except UnknownLabelError as exc:
            how = ("pass every label in classes= on the first call to partial_fit" if partial
                   else "fit afresh (warm_start=False) to learn new classes")
            raise ValueError(f"y holds the label {exc.label!r}, which is not one of the "
                             f"classes {exc.classes} the estimator was first fit with: "
                             f"{how}") from None
        return (codes.astype(np.float64) if self._task == "binary" else codes), codes

    def _set_classes(self, y: np.ndarray, multilabel: bool, classes: Any,
                     partial: bool) -> None:
        self.classes_: np.ndarray
        if multilabel:
            self._task = "multilabel"
            self.classes_ = np.arange(y.shape[1])
            self._label_dtype = y.dtype
            return
        if partial and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit: "
                             "every label the data will hold")
        encoder = LabelEncoder().fit(y if classes is None else np.asarray(classes))
        labels = encoder.classes_
        assert labels is not None  # fitted
        if labels.size < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes, got "
                             f"1 class ({labels[0]!r})")
        self._encoder = encoder
        self._task = "binary" if labels.size == 2 else "multiclass"
        self.classes_ = labels

    def _check_continuation(self, y: np.ndarray, multilabel: bool, classes: Any,
                            partial: bool) -> None:
        if multilabel != (self._task == "multilabel"):
            raise ValueError(f"y is {'multilabel' if multilabel else 'single-label'}, but the "
                             f"estimator was first fit on {self._task} targets")
        if multilabel and y.shape[1] != self.classes_.size:
            raise ValueError(f"y has {y.shape[1]} labels, but the estimator was first fit on "
                             f"{self.classes_.size}")
        if partial and classes is not None and not np.array_equal(
                np.unique(np.asarray(classes)), self.classes_):
            raise ValueError(f"classes={list(np.unique(classes))} is not the same as on the "
                             f"first call to partial_fit, {self.classes_.tolist()}")

    # -- files --------------------------------------------------------------------------
    def _target_state(self) -> dict[str, Any]:
        if self._task == "multilabel":
            return {"task": self._task, "n_labels": int(self.classes_.size),
                    "label_dtype": self._label_dtype.str}
        return {"task": self._task, **self._encoder.get_config()}

    def _restore_targets(self, state: dict[str, Any]) -> None:
        self._task = state["task"]
        if self._task == "multilabel":
            self.classes_ = np.arange(int(state["n_labels"]))
            self._label_dtype = np.dtype(state["label_dtype"])
        else:
            self._encoder = LabelEncoder.from_config({"classes": state["classes"]})
            assert self._encoder.classes_ is not None  # fitted
            self.classes_ = self._encoder.classes_
        self._set_n_outputs()

    def _set_n_outputs(self) -> None:
        """``n_outputs_``: the network's outputs (one sigmoid for a binary problem)."""
        self.n_outputs_ = 1 if self._task == "binary" else int(self.classes_.size)

    def _file_metadata(self) -> dict[str, Any]:
        if self._task == "multilabel":
            return {}
        return {"classes": self._encoder.get_config()["classes"]}

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


def _inside_unit(proba: np.ndarray) -> np.ndarray:
    """``proba`` clipped, in place, to ``[tiny, 1 - epsneg]`` of its dtype: the nearest
    values to 0 and 1 that are not 0 and 1."""
    info = np.finfo(proba.dtype)
    clipped: np.ndarray = np.clip(proba, info.tiny, 1 - info.epsneg, out=proba)
    return clipped
