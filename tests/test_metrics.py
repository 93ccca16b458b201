"""Metrics: hand-computed values, agreement with scikit-learn, and input checks."""

from __future__ import annotations

import numpy as np
import pytest

from numnet.errors import NonFiniteError, ShapeError
from numnet.metrics import (
    accuracy,
    classification_report,
    confusion_matrix,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_f1,
    r2,
    r2_score,
    rmse,
    root_mean_squared_error,
    top_k_accuracy,
)

Y_TRUE = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2, 0])
Y_PRED = np.array([0, 1, 1, 1, 0, 2, 2, 1, 2, 0])


def test_accuracy_from_labels_scores_and_one_hot():
    assert accuracy(Y_TRUE, Y_PRED) == 0.7
    scores = np.eye(3)[Y_PRED] + 0.01
    assert accuracy(Y_TRUE, scores) == 0.7
    assert accuracy(np.eye(3)[Y_TRUE], Y_PRED) == 0.7
    assert accuracy([1.0, 2.0], [1, 0]) == 0.5
    assert accuracy(Y_TRUE.reshape(-1, 1), Y_PRED) == 0.7


def test_confusion_matrix_rows_true_columns_predicted():
    cm = confusion_matrix(Y_TRUE, Y_PRED)
    np.testing.assert_array_equal(cm, [[2, 1, 0], [1, 2, 0], [0, 1, 3]])
    assert cm.dtype == np.int64
    padded = confusion_matrix([0, 1], [1, 1], num_classes=4)
    assert padded.shape == (4, 4) and padded[0, 1] == 1 and padded.sum() == 2


def test_precision_recall_f1_by_hand():
    scores = precision_recall_f1(Y_TRUE, Y_PRED)
    np.testing.assert_allclose(scores["precision"], [2 / 3, 2 / 4, 3 / 3])
    np.testing.assert_allclose(scores["recall"], [2 / 3, 2 / 3, 3 / 4])
    f1 = [2 / 3, 2 * 0.5 * (2 / 3) / (0.5 + 2 / 3), 2 * 0.75 / 1.75]
    np.testing.assert_allclose(scores["f1"], f1)
    np.testing.assert_array_equal(scores["support"], [3, 3, 4])
    # a class never predicted and never present scores 0, not NaN
    empty = precision_recall_f1([0, 0], [0, 0], num_classes=2)
    np.testing.assert_array_equal(empty["precision"], [1, 0])
    np.testing.assert_array_equal(empty["f1"], [1, 0])


def test_agrees_with_scikit_learn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 5, 500), rng.integers(0, 5, 500)
    np.testing.assert_array_equal(confusion_matrix(t, p), sk.confusion_matrix(t, p))
    ours = precision_recall_f1(t, p)
    theirs = sk.precision_recall_fscore_support(t, p, zero_division=0)
    for mine, key in zip(theirs, ("precision", "recall", "f1", "support"), strict=True):
        np.testing.assert_allclose(ours[key], mine)
    scores = rng.standard_normal((500, 5))
    assert top_k_accuracy(t, scores, k=2) == sk.top_k_accuracy_score(t, scores, k=2)
    y, f = rng.standard_normal((50, 2)), rng.standard_normal((50, 2))
    assert mean_squared_error(y, f) == pytest.approx(sk.mean_squared_error(y, f))
    assert mean_absolute_error(y, f) == pytest.approx(sk.mean_absolute_error(y, f))
    # over every element, as Keras (scikit-learn averages the per-output RMSEs instead)
    assert rmse(y, f) == pytest.approx(np.sqrt(sk.mean_squared_error(y, f)))
    assert rmse(y[:, 0], f[:, 0]) == pytest.approx(sk.root_mean_squared_error(y[:, 0], f[:, 0]))
    assert r2(y, f) == pytest.approx(sk.r2_score(y, f))
    np.testing.assert_allclose(r2_score(y, f, multioutput="raw_values"),
                               sk.r2_score(y, f, multioutput="raw_values"))
    constant = np.c_[np.ones(50), y[:, 0]]  # a constant output scores 0 unless exact
    assert r2(constant, f) == pytest.approx(sk.r2_score(constant, f))


def test_top_k_accuracy_counts_ties_in_favour():
    scores = np.array([[0.1, 0.5, 0.4], [0.3, 0.3, 0.4], [0.9, 0.05, 0.1]])
    y = np.array([2, 0, 1])
    assert top_k_accuracy(y, scores, k=1) == 0.0
    assert top_k_accuracy(y, scores, k=2) == pytest.approx(2 / 3)  # row 1: a tie for second
    assert top_k_accuracy(y, scores, k=3) == 1.0
    assert top_k_accuracy([1], [[0.5, 0.5, 0.0]], k=1) == 1.0


def test_classification_report_layout():
    report = classification_report(Y_TRUE, Y_PRED, class_names=["cat", "dog", "emu"])
    lines = report.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    assert lines[2].split() == ["cat", "0.667", "0.667", "0.667", "3"]
    assert lines[4].split() == ["emu", "1.000", "0.750", "0.857", "4"]
    assert lines[6].split() == ["accuracy", "0.700", "10"]
    assert lines[7].split()[:2] == ["macro", "avg"] and lines[8].split()[:2] == ["weighted",
                                                                                "avg"]
    assert "  2  " not in classification_report(Y_TRUE, Y_PRED).splitlines()[2][:3]


def test_regression_metrics():
    assert mean_squared_error([1.0, 2.0, 3.0], [1.0, 0.0, 4.0]) == pytest.approx(5 / 3)
    assert mean_absolute_error([1.0, 2.0, 3.0], [1.0, 0.0, 4.0]) == pytest.approx(1.0)
    assert mean_squared_error(np.ones(4), np.zeros((4, 1))) == 1.0  # (N,) against (N, 1)


def test_rmse_and_r2_by_hand():
    y, f = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 2.0, 5.0])
    assert rmse(y, f) == root_mean_squared_error(y, f) == pytest.approx(np.sqrt(0.5))
    assert r2(y, f) == r2_score(y, f) == pytest.approx(1 - 2 / 5)  # SS_tot = 5, SS_res = 2
    # (N,) against (N, 1) is the same shape, not a broadcast to (N, N)
    assert rmse(y, f.reshape(-1, 1)) == pytest.approx(np.sqrt(0.5))
    assert r2(y.reshape(-1, 1), f) == pytest.approx(0.6)
    assert r2(y, y) == 1.0 and r2(y, np.full(4, y.mean())) == 0.0
    assert r2([2.0, 2.0], [2.0, 2.0]) == 1.0 and r2([2.0, 2.0], [2.0, 3.0]) == 0.0
    two = np.c_[y, 2 * y]
    np.testing.assert_allclose(r2_score(two, np.c_[f, 2 * y], multioutput="raw_values"),
                               [0.6, 1.0])
    assert r2(two, np.c_[f, 2 * y]) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="multioutput must be"):
        r2(y, f, multioutput="variance_weighted")


@pytest.mark.parametrize("call, error, message", [
    (lambda: accuracy([0, 1, 2], [0, 1]), ShapeError, "y_true has 3 samples but y_pred has 2"),
    (lambda: accuracy([], []), ShapeError, "are empty"),
    (lambda: accuracy([0.5], [0]), ValueError, r"y_true\[0\] is 0.5, expected a whole"),
    (lambda: accuracy([-1], [0]), ValueError, r"y_true\[0\] is -1, class labels must be >= 0"),
    (lambda: accuracy(["a"], [0]), TypeError, "must hold integer class labels"),
    (lambda: accuracy([np.nan], [0]), NonFiniteError, "y_true contains"),
    (lambda: accuracy(np.zeros((2, 2, 2)), [0, 1]), ShapeError, r"must be labels \(N,\)"),
    (lambda: confusion_matrix([0, 3], [0, 1], num_classes=3), ValueError,
     "label 3 is out of range for num_classes=3"),
    (lambda: confusion_matrix([0], [0], num_classes=0), ValueError, "num_classes must be a"),
    (lambda: precision_recall_f1([0, 1], [1]), ShapeError, "y_true has 2 samples"),
    (lambda: top_k_accuracy([0, 1], np.zeros((3, 4))), ShapeError, "scores has 3"),
    (lambda: top_k_accuracy([0], np.zeros(4)), ShapeError, r"scores must have shape \(N, C\)"),
    (lambda: top_k_accuracy([0], np.zeros((1, 4)), k=5), ValueError, "k=5 is larger than"),
    (lambda: top_k_accuracy([0], np.zeros((1, 4)), k=0), ValueError, "k must be a positive"),
    (lambda: top_k_accuracy([4], np.zeros((1, 4)), k=1), ValueError, "only 4 columns"),
    (lambda: classification_report([0, 2], [0, 1], class_names=["a", "b"]), ValueError,
     "class_names has 2 names, but the labels go up to 2"),
    (lambda: mean_squared_error([1.0, 2.0], [1.0]), ShapeError, "y_true has 2 samples"),
    (lambda: mean_squared_error(np.ones((2, 2)), np.ones((2, 3))), ShapeError,
     r"y_true has shape \(2, 2\) but y_pred has shape \(2, 3\)"),
    (lambda: mean_absolute_error([1.0, np.inf], [1.0, 2.0]), NonFiniteError, "y_true contains"),
    (lambda: mean_absolute_error(1.0, 2.0), ShapeError, "must be arrays with a sample axis"),
])
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("call", [
    lambda s: accuracy([1, 1], s),
    lambda s: top_k_accuracy([0, 1], s, k=1),
    lambda s: confusion_matrix([0, 1], s),
])
def test_nan_scores_are_refused_not_argmaxed(call):
    with pytest.raises(NonFiniteError, match="non-finite"):
        call(np.array([[np.nan, 1.0], [0.0, 1.0]]))
