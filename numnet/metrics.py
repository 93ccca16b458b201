"""Evaluation metrics, vectorised with NumPy.

Classification metrics take integer class labels. Where they take predictions, 2-D scores
(logits or probabilities of shape ``(N, C)``) are accepted too and turned into labels by
``argmax``; 2-D one-hot ``y_true`` likewise. Regression metrics (:func:`mean_squared_error`,
:func:`mean_absolute_error`, :func:`root_mean_squared_error` / :func:`rmse`, :func:`r2_score`
/ :func:`r2`) take targets and predictions of one shape, ``(N,)`` and ``(N, 1)`` counting as
the same. Every function checks that its inputs have the same number of samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from numnet._checks import check_finite, first_bad_index, positive_int
from numnet.errors import ShapeError


def _labels(values: Any, name: str) -> np.ndarray:
    """Whole, non-negative class labels as int64; ``(N, C)`` scores become their argmax."""
    values = np.asarray(values)
    if values.dtype.kind == "f":  # before argmax, which would hide a NaN score
        check_finite(values, name)
    if values.ndim == 2 and values.shape[1] > 1:
        values = values.argmax(axis=1)
    elif values.ndim == 2:
        values = values.reshape(-1)
    if values.ndim != 1:
        raise ShapeError(f"{name} must be labels (N,) or scores (N, C), got shape "
                         f"{values.shape}")
    if values.dtype.kind == "f":
        if (values != np.round(values)).any():
            i = first_bad_index(values != np.round(values))[0]
            raise ValueError(f"{name}[{i}] is {values[i]}, expected a whole class label")
    elif values.dtype.kind not in "biu":
        raise TypeError(f"{name} must hold integer class labels, got dtype {values.dtype}")
    labels: np.ndarray = values.astype(np.int64)
    if (labels < 0).any():
        i = first_bad_index(labels < 0)[0]
        raise ValueError(f"{name}[{i}] is {labels[i]}, class labels must be >= 0")
    return labels


def _same_length(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    if a.shape[0] != b.shape[0]:
        raise ShapeError(f"{names[0]} has {a.shape[0]} samples but {names[1]} has "
                         f"{b.shape[0]}")
    if a.shape[0] == 0:
        raise ShapeError(f"{names[0]} and {names[1]} are empty")


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    _same_length(t, p, ("y_true", "y_pred"))
    return t, p


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of samples whose predicted label equals the true one.

    ``y_pred`` may be labels ``(N,)`` or scores ``(N, C)`` (their argmax is taken).
    """
    t, p = _pair(y_true, y_pred)
    return float(np.count_nonzero(t == p) / t.shape[0])


def top_k_accuracy(y_true: Any, scores: Any, k: int = 5) -> float:
    """Fraction of samples whose true class is among the ``k`` highest scores.

    Ties are counted in the sample's favour: the true class is in the top ``k`` when fewer
    than ``k`` classes score strictly higher.
    """
    t = _labels(y_true, "y_true")
    s = np.asarray(scores)
    if s.ndim != 2:
        raise ShapeError(f"scores must have shape (N, C), got {s.shape}")
    _same_length(t, s, ("y_true", "scores"))
    if s.dtype.kind == "f":
        check_finite(s, "scores")
    k = positive_int(k, "k")
    classes = s.shape[1]
    if k > classes:
        raise ValueError(f"k={k} is larger than the number of classes {classes}")
    if t.max() >= classes:
        raise ValueError(f"y_true has label {t.max()} but scores has only {classes} columns")
    true_score = s[np.arange(t.shape[0]), t]
    higher = np.count_nonzero(s > true_score[:, None], axis=1)
    return float(np.count_nonzero(higher < k) / t.shape[0])


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int | None = None) -> np.ndarray:
    """Counts ``C[i, j]`` of samples of true class ``i`` predicted as ``j``; int64 ``(C, C)``.

    ``num_classes`` defaults to one more than the largest label seen.
    """
    t, p = _pair(y_true, y_pred)
    largest = int(max(t.max(), p.max()))
    if num_classes is None:
        num_classes = largest + 1
    num_classes = positive_int(num_classes, "num_classes")
    if largest >= num_classes:
        raise ValueError(f"label {largest} is out of range for num_classes={num_classes}")
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0 where ``den`` is 0 (a class never predicted / never present)."""
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def precision_recall_f1(y_true: Any, y_pred: Any,
                        num_classes: int | None = None) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and support.

    ``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)``,
    ``f1 = 2 precision recall / (precision + recall)``; each is 0 where its denominator is
    0. ``support`` is the number of true samples of each class.

    Returns
    -------
    dict
        ``'precision'``, ``'recall'``, ``'f1'`` (float64 arrays of length C) and
        ``'support'`` (int64).
    """
    cm = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    precision = _divide(tp, cm.sum(axis=0).astype(np.float64))
    recall = _divide(tp, support.astype(np.float64))
    f1 = _divide(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def classification_report(y_true: Any, y_pred: Any, class_names: Sequence[str] | None = None,
                          digits: int = 3) -> str:
    """A text table of per-class precision, recall, F1 and support, with accuracy and the
    macro (unweighted) and weighted (by support) averages."""
    t, p = _pair(y_true, y_pred)
    num_classes = int(max(t.max(), p.max())) + 1
    if class_names is not None:
        class_names = [str(name) for name in class_names]
        if len(class_names) < num_classes:
            raise ValueError(f"class_names has {len(class_names)} names, but the labels go up "
                             f"to {num_classes - 1}")
        num_classes = len(class_names)
    else:
        class_names = [str(c) for c in range(num_classes)]
    scores = precision_recall_f1(t, p, num_classes)
    support = scores["support"]
    total = int(support.sum())
    width = max(len(name) for name in class_names + ["weighted avg"])
    head = f"{'':>{width}}  {'precision':>9}  {'recall':>9}  {'f1-score':>9}  {'support':>9}"

    def row(name: str, values: Sequence[float], count: int) -> str:
        cells = "  ".join(f"{v:>9.{digits}f}" for v in values)
        return f"{name:>{width}}  {cells}  {count:>9d}"

    lines = [head, ""]
    for c, name in enumerate(class_names):
        values = [scores[key][c] for key in ("precision", "recall", "f1")]
        lines.append(row(name, values, int(support[c])))
    lines.append("")
    acc = accuracy(t, p)
    lines.append(f"{'accuracy':>{width}}  {'':>9}  {'':>9}  {acc:>9.{digits}f}  {total:>9d}")
    keys = ("precision", "recall", "f1")
    lines.append(row("macro avg", [float(scores[k].mean()) for k in keys], total))
    weights = support / max(total, 1)
    lines.append(row("weighted avg", [float(scores[k] @ weights) for k in keys], total))
    return "\n".join(lines)


def _regression_pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.ndim == 0 or p.ndim == 0:
        raise ShapeError("y_true and y_pred must be arrays with a sample axis")
    _same_length(t, p, ("y_true", "y_pred"))
    check_finite(t, "y_true")
    check_finite(p, "y_pred")
    if t.shape != p.shape:
        if t.size != p.size:
            raise ShapeError(f"y_true has shape {t.shape} but y_pred has shape {p.shape}")
        t, p = t.reshape(t.shape[0], -1), p.reshape(p.shape[0], -1)  # (N,) against (N, 1)
    return t, p


def mean_squared_error(y_true: Any, y_pred: Any) -> float:
    """``mean((y_true - y_pred) ** 2)`` over every element."""
    t, p = _regression_pair(y_true, y_pred)
    diff = t - p
    return float(np.mean(diff * diff))


def mean_absolute_error(y_true: Any, y_pred: Any) -> float:
    """``mean(|y_true - y_pred|)`` over every element."""
    t, p = _regression_pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def root_mean_squared_error(y_true: Any, y_pred: Any) -> float:
    """``sqrt(mean((y_true - y_pred) ** 2))`` over every element, in the targets' units.

    Also available as :func:`rmse`. ``(N,)`` and ``(N, 1)`` are taken as the same shape (no
    broadcasting to ``(N, N)``); other shapes must match. With several outputs this is the
    root of the mean over all of them, as Keras's ``RootMeanSquaredError`` (scikit-learn's
    ``root_mean_squared_error`` averages the per-output roots instead).
    """
    return math.sqrt(mean_squared_error(y_true, y_pred))


def r2_score(y_true: Any, y_pred: Any, multioutput: str = "uniform_average") -> Any:
    """The coefficient of determination ``R^2 = 1 - SS_res / SS_tot``, per output.

    ``SS_res = sum((y_true - y_pred) ** 2)`` and ``SS_tot = sum((y_true - mean(y_true)) ** 2)``
    over the samples, for each output (each column of ``(N, K)`` targets; one output for
    ``(N,)``). 1 is a perfect fit, 0 is what predicting the mean gives, and it is negative
    for anything worse. An output whose targets are constant scores 1.0 when predicted
    exactly and 0.0 otherwise (instead of a division by zero), as scikit-learn's
    ``r2_score``. Also available as :func:`r2`.

    Parameters
    ----------
    y_true, y_pred : array_like, shape (N,) or (N, K...)
        Finite targets and predictions; ``(N,)`` and ``(N, 1)`` are taken as the same shape.
    multioutput : {"uniform_average", "raw_values"}
        Average the outputs' scores (scikit-learn's default), or return one per output.

    Returns
    -------
    float, or numpy.ndarray of shape (K,) with ``multioutput="raw_values"``
    """
    if multioutput not in ("uniform_average", "raw_values"):
        raise ValueError(f"multioutput must be 'uniform_average' or 'raw_values', got "
                         f"{multioutput!r}")
    t, p = _regression_pair(y_true, y_pred)
    t, p = t.reshape(t.shape[0], -1), p.reshape(p.shape[0], -1)
    diff = t - p
    centred = t - t.mean(axis=0)
    scores = r2_from_sums(np.einsum("ij,ij->j", diff, diff),
                          np.einsum("ij,ij->j", centred, centred))
    return scores if multioutput == "raw_values" else float(scores.mean())


def r2_from_sums(ss_res: np.ndarray, ss_tot: np.ndarray) -> np.ndarray:
    """``1 - ss_res / ss_tot`` per output; 1.0 or 0.0 where ``ss_tot`` is 0 (see
    :func:`r2_score`). The training loop sums over batches and finishes here."""
    ss_res, ss_tot = np.asarray(ss_res, dtype=np.float64), np.asarray(ss_tot, dtype=np.float64)
    scores = np.where(ss_res == 0, 1.0, 0.0)
    np.subtract(1.0, ss_res / np.where(ss_tot > 0, ss_tot, 1.0), out=scores, where=ss_tot > 0)
    return scores


#: short names, as ``evaluate`` and the training history call them
rmse = root_mean_squared_error
r2 = r2_score
