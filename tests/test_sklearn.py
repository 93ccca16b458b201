"""numnet.sklearn: scikit-learn's own estimator checks, and what they do not look at.

The checks run on small networks trained for a few epochs (the estimator parameters given
to ``parametrize_with_checks``); the whole file takes well under a minute on two cores.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not installed (extra "
                                                "'sklearn')")

from scipy import sparse  # noqa: E402  (a dependency of scikit-learn)
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402
from sklearn.utils.estimator_checks import (  # noqa: E402
    check_fit2d_1sample,
    check_sample_weight_equivalence_on_dense_data,
    check_sample_weight_equivalence_on_sparse_data,
    parametrize_with_checks,
)

from numnet import io  # noqa: E402
from numnet.data import load_digits  # noqa: E402
from numnet.errors import TrainingWarning  # noqa: E402
from numnet.layers import (  # noqa: E402
    BatchNorm1d,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    ReLU,
    Reshape,
    Softmax,
    Tanh,
)
from numnet.losses import BinaryCrossEntropy, CrossEntropy, MeanSquaredError  # noqa: E402
from numnet.model import Sequential  # noqa: E402
from numnet.sklearn import NumnetClassifier, NumnetRegressor  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

#: the checks scikit-learn's check_estimator runs that these estimators are expected to
#: fail, and why (one reason, dense or sparse X: see
#: test_sample_weight_equals_repeated_samples_full_batch)
_WEIGHTS_AS_REPEATS = (
    "mini-batch training in float32: a sample of weight k is one row of one batch where "
    "its k copies may fall into different batches, and float32 sums round differently; "
    "equal in expectation, not to rtol 1e-7 (in float64 with one batch it passes)")
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": _WEIGHTS_AS_REPEATS,
    "check_sample_weight_equivalence_on_sparse_data": _WEIGHTS_AS_REPEATS,  # densified
}


def expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS


@parametrize_with_checks(
    [NumnetClassifier((16,), epochs=20, lr=0.01, random_state=0),
     NumnetRegressor((16,), epochs=20, lr=0.01, random_state=0)],
    expected_failed_checks=expected_failed_checks)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", [
    NumnetClassifier((16,), epochs=20, lr=0.01, dtype="float64", batch_size=128),
    NumnetRegressor((16,), epochs=20, lr=0.01, dtype="float64", batch_size=128),
])
def test_sample_weight_equals_repeated_samples_full_batch(estimator):
    """The checks listed as expected failures pass where they can: one batch, float64.
    Weights are rescaled to mean 1 (loss sum(w l) / sum(w)) and the regressor's target
    scaling counts them too."""
    check_sample_weight_equivalence_on_dense_data(type(estimator).__name__, estimator)
    check_sample_weight_equivalence_on_sparse_data(type(estimator).__name__, estimator)


# -- data -----------------------------------------------------------------------------------
def blobs(n=150, classes=3, seed=0, features=4):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (classes, features))
    y = np.repeat(np.arange(classes), n // classes)  # sorted by class, as iris
    return centres[y] + rng.normal(0, 1, (y.size, features)), y


def regression(n=120, seed=0, outputs=1):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 3))
    Y = np.stack([X @ [1.0, -2.0, 0.5] + k * X[:, 0] * X[:, 1] for k in range(outputs)], 1)
    return X, (Y[:, 0] if outputs == 1 else Y)


def small(cls=NumnetClassifier, **params):
    return cls(**{"hidden_layer_sizes": (16,), "epochs": 15, "lr": 0.02, "random_state": 0,
                  **params})


# -- classification -------------------------------------------------------------------------
@pytest.mark.parametrize("labels", [
    np.array(["setosa", "versicolor", "virginica"]),
    np.array([-5, 3, 1000]),
    np.array([2.0, 4.0, 8.0]),
])
def test_classes_of_any_kind(labels):
    X, y = blobs()
    clf = small().fit(X, labels[y])
    np.testing.assert_array_equal(clf.classes_, np.sort(labels))
    predicted = clf.predict(X)
    assert predicted.shape == (150,) and set(predicted) <= set(labels)
    assert clf.score(X, labels[y]) > 0.9
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], predicted)
    assert isinstance(clf.model_.loss, CrossEntropy) and clf.model_.output_shape() == (3,)


def test_binary_problems_train_one_sigmoid_output():
    X, y = blobs(n=100, classes=2)
    labels = np.array(["no", "yes"])[y]
    clf = small().fit(X, labels)
    assert isinstance(clf.model_.loss, BinaryCrossEntropy) and clf.model_.output_shape() == (1,)
    proba = clf.predict_proba(X)
    assert proba.shape == (100, 2) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[(proba[:, 1] > 0.5).astype(int)])
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba, rtol=1e-6)
    assert clf.score(X, labels) > 0.9
    booleans = small().fit(X, y == 1)
    assert booleans.classes_.tolist() == [False, True] and booleans.predict(X).dtype == bool


def test_predict_log_proba_stays_finite_where_proba_underflows():
    X, y = blobs(classes=3)
    clf = small(epochs=60, lr=0.05).fit(X * 20, y)
    log_proba = clf.predict_log_proba(X * 20)
    assert np.isfinite(log_proba).all()
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(np.exp(log_proba), clf.predict_proba(X * 20), atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_binary_probabilities_of_confident_predictions_keep_their_precision(dtype):
    """P(class 0) is sigmoid(-z), not 1 - sigmoid(z), which rounds to exactly 0 once
    sigmoid(z) rounds to 1 (z > 37 in float64, 17 in float32): log(predict_proba) then
    equals predict_log_proba, as scikit-learn's check_classifiers_train requires."""
    X, y = blobs(n=100, classes=2)
    clf = small(epochs=30, lr=0.05).fit(X, y)
    # inputs scaled until the largest logit is about 60 (P(class 0) about 1e-26), the rows
    # whose logits stay within float32's range (its exp underflows past -87)
    far = (X * 60 / clf.model_.predict_logits(X).max()).astype(dtype)
    logits = clf.model_.predict_logits(far)[:, 0]
    far = far[np.abs(logits) < 80]
    assert (logits[np.abs(logits) < 80] > 40).any()
    proba, log_proba = clf.predict_proba(far), clf.predict_log_proba(far)
    assert (proba > 0).all()
    np.testing.assert_allclose(np.log(proba), log_proba, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("classes", [2, 3])
def test_log_of_predict_proba_agrees_with_predict_log_proba(dtype, classes):
    """Probabilities are kept inside (0, 1) at the dtype's resolution (a sigmoid or softmax
    never reaches 0 or 1; rounding does): log(predict_proba) is finite and agrees with the
    stable predict_log_proba within scikit-learn's check_classifiers_train tolerance, for
    float32 inputs too (where sigmoid(z) rounds to 1 from z = 17)."""
    X, y = blobs(n=120, classes=classes)
    clf = small(epochs=5).fit(X, y)
    last = clf.model_.layers[-1]
    scale = 300 / np.abs(clf.model_.predict_logits(X)).max()
    last.params["W"] *= scale  # logits up to 300: float32 probabilities round to 0 and 1
    last.params["b"] *= scale
    Xd = X.astype(dtype)
    proba, log_proba = clf.predict_proba(Xd), clf.predict_log_proba(Xd)
    assert proba.dtype == dtype and ((proba > 0) & (proba < 1)).all()
    np.testing.assert_allclose(log_proba, np.log(proba), rtol=8, atol=1e-9)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    assert (clf.classes_[proba.argmax(axis=1)] == clf.predict(Xd)).all()


def test_multilabel_targets_train_one_sigmoid_per_label():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    Y = np.c_[X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 3] < 0.5].astype(np.int32)
    clf = small(epochs=30).fit(X, Y)
    assert isinstance(clf.model_.loss, BinaryCrossEntropy) and clf.model_.output_shape() == (3,)
    predicted = clf.predict(X)
    assert predicted.shape == (200, 3) and predicted.dtype == np.int32
    assert set(np.unique(predicted)) <= {0, 1}
    assert clf.predict_proba(X).shape == (200, 3)
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    assert (predicted == Y).mean() > 0.9
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), clf.predict_proba(X),
                               rtol=1e-6)


def test_one_class_is_refused():
    with pytest.raises(ValueError, match="at least 2 classes, got 1 class"):
        small().fit(np.zeros((4, 2)), ["a"] * 4)


def test_a_regression_target_is_refused_by_the_classifier():
    with pytest.raises(ValueError, match="Unknown label type"):
        small().fit(np.zeros((4, 2)), [0.5, 1.5, 2.5, 3.1])


# -- regression ------------------------------------------------------------------------------
def test_regression_predicts_the_shape_of_y_in_the_input_precision():
    X, y = regression()
    reg = small(NumnetRegressor, epochs=40).fit(X, y)
    prediction = reg.predict(X)
    assert prediction.shape == (120,) and prediction.dtype == np.float64
    assert reg.predict(X.astype(np.float32)).dtype == np.float32
    assert reg.score(X, y) > 0.9
    reg.fit(X, y.reshape(-1, 1))
    assert reg.predict(X).shape == (120, 1) and reg.n_outputs_ == 1


def test_multi_output_regression():
    X, Y = regression(outputs=3)
    reg = small(NumnetRegressor, epochs=60).fit(X, Y)
    assert reg.n_outputs_ == 3 and reg.model_.output_shape() == (3,)
    assert reg.predict(X).shape == (120, 3) and reg.score(X, Y) > 0.8
    assert isinstance(reg.model_.loss, MeanSquaredError)


def test_targets_are_standardised_by_default():
    X, y = regression()
    y_far = 5000 + 1000 * y  # targets in large units
    reg = small(NumnetRegressor, epochs=40).fit(X, y_far)
    scaler = reg.target_scaler_
    assert scaler.mean_ == pytest.approx(y_far.mean()) and scaler.scale_ == pytest.approx(
        y_far.std())
    # the network learns the standardised targets: its outputs are near (y - mean) / std
    raw = reg.model_.predict(X)  # float32 maths (the estimator's: float64 for float64 X)
    np.testing.assert_allclose(scaler.inverse_transform(raw), reg.predict(X), rtol=1e-5)
    assert abs(raw.mean()) < 0.5 and reg.score(X, y_far) > 0.9
    plain = small(NumnetRegressor, epochs=40, scale_target=False).fit(X, y_far)
    assert plain.target_scaler_ is None
    np.testing.assert_array_equal(plain.predict(X.astype(np.float32)),
                                  plain.model_.predict(X.astype(np.float32)))


def test_sparse_inputs_are_taken_as_mlp_classifier_takes_them():
    """A sparse X (one-hot encoded columns, as OneHotEncoder gives them) is densified: the
    same predictions as the dense array, in a Pipeline as on its own."""
    X, y = blobs()
    dense = small(epochs=5).fit(X, y)
    for convert in (sparse.csr_matrix, sparse.csc_array):
        fitted = small(epochs=5).fit(convert(X), y)
        np.testing.assert_array_equal(fitted.model_.flat_params, dense.model_.flat_params)
        np.testing.assert_array_equal(fitted.predict_proba(convert(X)), dense.predict_proba(X))
    Xr, yr = regression()
    reg = small(NumnetRegressor, epochs=3).fit(sparse.csr_matrix(Xr), yr)
    np.testing.assert_array_equal(reg.predict(sparse.csr_matrix(Xr)), reg.predict(Xr))
    colours = np.array(["red", "green", "blue"])[y].reshape(-1, 1)
    pipe = make_pipeline(OneHotEncoder(), small(epochs=20)).fit(colours, y)
    assert pipe.score(colours, y) == 1.0


@pytest.mark.parametrize("cls, method", [(NumnetClassifier, "predict_proba"),
                                         (NumnetClassifier, "predict_log_proba"),
                                         (NumnetRegressor, "predict")])
def test_a_prediction_does_not_depend_on_the_rows_it_comes_with(cls, method):
    """float32 GEMMs round a row differently with the batch's shape (about 1e-7, beyond
    scikit-learn's check_methods_subset_invariance): float64 inputs are predicted by a
    float64 copy of the float32 network, so that one row at a time gives the same values."""
    rnd = np.random.RandomState(0)
    X = 3 * rnd.uniform(size=(20, 3))
    y = X[:, 0].astype(int)
    for seed in range(3):
        estimator = cls(epochs=10, random_state=seed).fit(X, y)  # 100 hidden units
        assert estimator.model_.dtype == np.float32
        full = getattr(estimator, method)(X)
        rows = np.concatenate([getattr(estimator, method)(X[i:i + 1]) for i in range(20)])
        np.testing.assert_allclose(rows, full, rtol=1e-12, atol=1e-12)
        assert full.dtype == np.float64
        single = getattr(estimator, method)(X.astype(np.float32))  # float32 in: float32
        assert single.dtype == np.float32
        np.testing.assert_allclose(single, full, rtol=1e-5, atol=1e-5)
    # the float64 copy follows the network: trained further, or changed by hand
    estimator.partial_fit(X, y)
    again = getattr(estimator, method)(X)
    assert not np.array_equal(again, full)
    np.testing.assert_allclose(again, getattr(estimator, method)(X.astype(np.float32)),
                               rtol=1e-5, atol=1e-5)
    estimator.model_.layers[0].params["W"][:] = 0
    np.testing.assert_allclose(getattr(estimator, method)(X),
                               getattr(estimator, method)(X.astype(np.float32)),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", [NumnetClassifier, NumnetRegressor])
def test_one_sample_with_batch_norm_is_refused_as_scikit_learn_expects(cls):
    """BatchNorm cannot train on one sample: the error says "1 sample", the words
    scikit-learn's check_fit2d_1sample looks for."""
    check_fit2d_1sample(cls.__name__, cls((8,), batch_norm=True, epochs=2, random_state=0))


def test_fitted_attributes_scikit_learn_users_look_for():
    """MLPClassifier's ``loss_`` (the last epoch's training loss) and ``n_outputs_``."""
    X, y = blobs()
    clf = small(epochs=3).fit(X, y)
    assert clf.loss_ == clf.loss_curve_[-1] and clf.n_outputs_ == 3
    assert small(epochs=1).fit(X[y < 2], y[y < 2]).n_outputs_ == 1  # one sigmoid output
    multilabel = small(epochs=1).fit(X, np.c_[y == 0, y == 1, y == 2, y < 2].astype(int))
    assert multilabel.n_outputs_ == 4
    reg = small(NumnetRegressor, epochs=2).fit(*regression(outputs=2))
    assert reg.loss_ == reg.loss_curve_[-1] and reg.n_outputs_ == 2


# -- the estimator's life cycle --------------------------------------------------------------
def test_pandas_frames_give_feature_names():
    pd = pytest.importorskip("pandas")
    X, y = blobs()
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = small().fit(frame, y)
    assert clf.feature_names_in_.tolist() == ["a", "b", "c", "d"] and clf.n_features_in_ == 4
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        np.testing.assert_array_equal(clf.predict(frame), clf.predict(X))
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(frame.rename(columns={"a": "z"}))
    reg = small(NumnetRegressor).fit(frame, pd.Series(X[:, 0]))
    assert reg.predict(frame).shape == (150,)


def test_partial_fit_needs_the_classes_first_and_then_continues():
    X, y = blobs()
    labels = np.array(["a", "b", "c"])[y]
    clf = small()
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, labels)
    order = np.random.default_rng(0).permutation(150)
    clf.partial_fit(X[order[:50]], labels[order[:50]], classes=["a", "b", "c"])
    weights = clf.model_.flat_params.copy()
    for _ in range(10):
        clf.partial_fit(X[order[50:]], labels[order[50:]])
    assert clf.n_iter_ == 11 and len(clf.loss_curve_) == 11
    assert not np.array_equal(weights, clf.model_.flat_params)
    assert clf.score(X, labels) > 0.9
    with pytest.raises(ValueError, match="label 'd', which is not one of the classes"):
        clf.partial_fit(X[:3], ["a", "b", "d"])
    with pytest.raises(ValueError, match="is not the same as on the first call"):
        clf.partial_fit(X[:3], ["a", "b", "a"], classes=["a", "b"])
    with pytest.raises(ValueError, match="X has 3 features"):
        clf.partial_fit(X[:3, :3], ["a", "b", "a"])
    reg = small(NumnetRegressor)
    Xr, yr = regression()
    for _ in range(3):
        reg.partial_fit(Xr, yr)
    assert reg.n_iter_ == 3 and reg.predict(Xr).shape == (120,)


def test_warm_start_continues_the_network_and_its_optimiser():
    X, y = blobs()
    cold = small(epochs=4).fit(X, y)
    warm = small(epochs=4, warm_start=True).fit(X, y)
    steps = warm.optimizer_.steps
    warm.fit(X, y)
    assert warm.n_iter_ == 8 and warm.optimizer_.steps == 2 * steps
    assert warm.history_.epoch == list(range(8))
    assert warm.loss_curve_[-1] < cold.loss_curve_[-1]
    cold.fit(X, y)  # without warm_start: afresh, the same as the first fit
    assert cold.n_iter_ == 4
    warm.fit(X[y < 2], y[y < 2])  # fewer classes: still the first fit's three
    assert warm.classes_.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="label 3, which is not one of the classes"):
        warm.fit(X, np.where(y == 2, 3, y))


def test_early_stopping_holds_out_a_stratified_fraction_and_keeps_the_best_weights():
    X, y = blobs(n=300)  # sorted by class: a last-rows split would hold out class 2 alone
    clf = small(epochs=200, early_stopping=True, patience=3, validation_fraction=0.2)
    clf.fit(X, y)
    assert clf.n_iter_ < 200 and clf.history_.stopped_early
    val = clf.history_["val_loss"]
    assert clf.best_validation_loss_ == min(val) and val.index(min(val)) == len(val) - 4
    assert clf.history_.params["samples"] == 240
    assert clf.history_["val_accuracy"][-1] > 0.9  # every class is in the validation part
    clf.partial_fit(X, y)  # partial_fit never holds data out
    assert np.isnan(clf.history_["val_loss"][-1])


def test_same_random_state_same_network_bit_for_bit():
    X, y = blobs()
    a = small(dropout=0.2).fit(X, y)
    b = small(dropout=0.2).fit(X, y)
    np.testing.assert_array_equal(a.model_.flat_params, b.model_.flat_params)
    c = small(dropout=0.2, random_state=1).fit(X, y)
    assert not np.array_equal(a.model_.flat_params, c.model_.flat_params)


def test_sample_weights_count_and_are_checked():
    X, y = blobs(n=100, classes=2)
    weights = np.where(y == 0, 1.0, 0.0)
    weights[-1] = 1e-3  # class 1 barely counts: its samples are predicted as class 0
    clf = small(epochs=20).fit(X, y, sample_weight=weights)
    assert (clf.predict(X) == 0).mean() > 0.9
    with pytest.raises(ValueError, match="all zero"):
        small().fit(X, y, sample_weight=np.zeros(100))
    with pytest.raises(ValueError, match="finite weights >= 0"):
        small().fit(X, y, sample_weight=-weights)
    with pytest.raises(ValueError, match=r"shape \(3,\), expected \(100,\)"):
        small().fit(X, y, sample_weight=[1, 2, 3])


def test_pickle_and_clone():
    X, y = blobs()
    clf = small(dropout=0.1, batch_norm=True).fit(X, np.array(["x", "y", "z"])[y])
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.predict_proba(X), clf.predict_proba(X))
    fresh = clone(clf)
    assert fresh.get_params() == clf.get_params() and not hasattr(fresh, "model_")
    with pytest.raises(NotFittedError):
        fresh.predict(X)


def test_hyperparameters_reach_the_network_and_the_optimiser():
    X, y = blobs()
    clf = small(hidden_layer_sizes=(8, 6), activation="tanh", dropout=0.3, batch_norm=True,
                optimizer="sgd", momentum=0.5, weight_decay=1e-3, lr=0.05, dtype="float64",
                epochs=2).fit(X, y)
    kinds = [type(layer) for layer in clf.model_.layers]
    assert kinds == [Dense, BatchNorm1d, Tanh, Dropout, Dense, BatchNorm1d, Tanh, Dropout, Dense]
    assert clf.model_.layers[3].p == 0.3 and clf.model_.dtype == np.float64
    opt = clf.optimizer_
    assert (opt.name, opt.momentum, opt.lr, opt.weight_decay) == ("sgd", 0.5, 0.05, 1e-3)
    adam = small(optimizer="adam", momentum=0.5, optimizer_kwargs={"betas": (0.8, 0.9)},
                 epochs=1).fit(X, y)
    assert adam.optimizer_.betas == (0.8, 0.9)  # momentum is ignored by adam
    assert small(hidden_layer_sizes=(), epochs=1).fit(X, y).model_.layers[0].params["W"].shape \
        == (4, 3)  # no hidden layer: a logistic regression


@pytest.mark.parametrize("params, match", [
    ({"epochs": 0}, "'epochs' parameter of NumnetClassifier must be an int in the range"),
    ({"activation": "swish"}, "'activation' parameter"),
    ({"optimizer": "lbfgs"}, "'optimizer' parameter"),
    ({"dtype": "float16"}, "'dtype' parameter"),
    ({"validation_fraction": 1.0}, "'validation_fraction' parameter"),
    ({"model": 3}, "'model' parameter"),
])
def test_bad_hyperparameters_are_refused_by_fit_not_init(params, match):
    clf = NumnetClassifier(**params)  # stored as given
    assert all(clf.get_params()[k] is v for k, v in params.items())
    with pytest.raises(InvalidParameterError, match=match):
        clf.fit(*blobs())


@pytest.mark.parametrize("params, error, match", [
    ({"hidden_layer_sizes": (8, 0)}, ValueError, "hidden_layer_sizes must be positive"),
    ({"optimizer_kwargs": {"lr": 0.1}}, ValueError, r"optimizer_kwargs sets \['lr'\]"),
    ({"optimizer_kwargs": {"beta": 0.1}}, ValueError, "do not fit the 'adam' optimiser"),
])
def test_hyperparameters_checked_beyond_the_constraints(params, error, match):
    with pytest.raises(error, match=match):
        small(**params).fit(*blobs())


# -- the network: from a description, a template, a function ---------------------------------
def description(n_in=4, n_out=3):
    return Sequential([Dense(n_in, 12), ReLU(), Dense(12, n_out)]).get_config()


def test_model_from_a_description_a_template_or_a_function():
    X, y = blobs()
    by_config = small(model=description(), epochs=20).fit(X, y)
    assert [type(layer) for layer in by_config.model_.layers] == [Dense, ReLU, Dense]
    assert by_config.score(X, y) > 0.9
    template = Sequential([Dense(4, 12), ReLU(), Dense(12, 3)], loss="mse", seed=123)
    by_template = small(model=template, epochs=20).fit(X, y)
    np.testing.assert_array_equal(by_template.model_.flat_params, by_config.model_.flat_params)
    assert isinstance(by_template.model_.loss, CrossEntropy)  # the estimator's loss

    def network(n_features, n_outputs):
        return [Dense(n_features, 12), ReLU(), Dense(12, n_outputs)]

    by_function = small(model=network, epochs=20).fit(X, y)
    np.testing.assert_array_equal(by_function.model_.flat_params, by_config.model_.flat_params)
    regressor = small(NumnetRegressor, model=lambda n, k: Sequential(network(n, k)),
                      epochs=2).fit(*regression())
    assert regressor.model_.output_shape() == (1,)


def test_model_from_an_architecture_file(tmp_path):
    """``model`` may name an architecture JSON file (as ``numnet train --model`` takes it)."""
    X, y = blobs()
    path = io.save_architecture(Sequential.from_config(description()), tmp_path / "a.json")
    by_config = small(model=description(), epochs=3).fit(X, y)
    for spec in (path, str(path)):
        by_file = small(model=spec, epochs=3).fit(X, y)
        assert by_file.model == spec  # stored unchanged
        np.testing.assert_array_equal(by_file.model_.flat_params, by_config.model_.flat_params)
    loaded = NumnetClassifier.load(by_file.save(tmp_path / "clf.npz"))
    assert loaded.model == by_file.model_.get_config()  # the description, not the path
    with pytest.raises(FileNotFoundError, match="no such architecture file"):
        small(model=str(tmp_path / "missing.json")).fit(X, y)


@pytest.mark.parametrize("model, match", [
    (description(n_out=2), r"outputs of shape \(2,\) per sample, but the targets need \(3,\)"),
    (description(n_in=5), r"model: the network cannot take samples of shape \(4,\): Dense"),
    ({"layers": [{"type": "Dense", "config": {"in_features": 4}}]},
     "model: the description does not build a network"),
    (Sequential([Dense(4, 3), Softmax()]).get_config(), "ends with Softmax"),
    ({"layers": [{"type": "Nope"}]}, "unknown layer type 'Nope'"),
    (lambda n, k: "not a network", "model must be None, a model description"),
])
def test_model_errors_say_what_is_wrong(model, match):
    with pytest.raises((ValueError, TypeError), match=match):
        small(model=model).fit(*blobs())


def test_a_convolutional_network_through_its_description(tmp_path):
    X, y = load_digits(flatten=True, scale=True)
    cnn = Sequential([Reshape((1, 8, 8)), Conv2D(1, 8, 3, padding="same"), ReLU(),
                      MaxPool2D(2), Flatten(), Dense(8 * 4 * 4, 10)])
    clf = NumnetClassifier(model=cnn.get_config(), epochs=8, lr=0.01, random_state=0)
    clf.fit(X[:1200], y[:1200])  # flat rows, as scikit-learn passes them
    assert [type(layer) for layer in clf.model_.layers][:2] == [Reshape, Conv2D]
    assert clf.score(X[1200:], y[1200:]) > 0.85
    loaded = NumnetClassifier.load(clf.save(tmp_path / "cnn.npz"))
    np.testing.assert_array_equal(loaded.predict_proba(X[1200:]), clf.predict_proba(X[1200:]))
    unpickled = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(unpickled.predict_proba(X[1200:]), clf.predict_proba(X[1200:]))
    by_template = clone(NumnetClassifier(model=cnn, epochs=1, random_state=0)).fit(X, y)
    assert type(by_template.model_.layers[1]) is Conv2D
    images = X.reshape(-1, 1, 8, 8)  # or images (N, C, H, W), for a network that takes them

    def network(shape, n_outputs):
        assert shape == (1, 8, 8)
        return [Conv2D(1, 4, 3), ReLU(), Flatten(), Dense(4 * 6 * 6, n_outputs)]

    on_images = NumnetClassifier(model=network, epochs=2, random_state=0).fit(images, y)
    assert on_images.n_features_in_ == 1 and on_images.predict(images[:5]).shape == (5,)


# -- files ------------------------------------------------------------------------------------
def test_classifier_round_trips_through_a_model_file(tmp_path):
    X, y = blobs()
    labels = np.array(["cat", "dog", "emu"])[y]
    clf = small(dropout=0.1).fit(X, labels)
    path = clf.save(tmp_path / "clf.npz")
    loaded = NumnetClassifier.load(path)
    assert loaded.get_params() == clf.get_params()
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.history_.history == clf.history_.history and loaded.n_iter_ == clf.n_iter_
    # training continues exactly as it would have: optimiser state and generators travel
    clf.partial_fit(X, labels)
    loaded.partial_fit(X, labels)
    np.testing.assert_array_equal(loaded.model_.flat_params, clf.model_.flat_params)
    # it is an ordinary model file too, whose classes the command line reads
    assert io.load_metadata(path)["classes"] == ["cat", "dog", "emu"]
    assert isinstance(io.load(path), Sequential)


def test_regressor_and_multilabel_round_trip(tmp_path):
    pd = pytest.importorskip("pandas")
    X, Y = regression(outputs=2)
    frame = pd.DataFrame(X, columns=["u", "v", "w"])
    reg = small(NumnetRegressor, model=lambda n, k: [Dense(n, 8), ReLU(), Dense(8, k)],
                random_state=np.random.RandomState(0)).fit(frame, Y)
    loaded = NumnetRegressor.load(reg.save(tmp_path / "reg.npz"))
    np.testing.assert_array_equal(loaded.predict(frame), reg.predict(frame))
    assert loaded.feature_names_in_.tolist() == ["u", "v", "w"]
    assert isinstance(loaded.model, dict) and loaded.random_state is None  # JSON holds these
    multi = small().fit(X, (Y > 0).astype(np.int8))
    again = NumnetClassifier.load(multi.save(tmp_path / "multi.npz"))
    np.testing.assert_array_equal(again.predict(X), multi.predict(X))
    assert again.predict(X).dtype == np.int8


def test_the_command_line_predicts_labels_from_an_estimator_file(tmp_path):
    """The estimator and ``numnet predict`` use the same LabelEncoder classes."""
    X, y = blobs(n=100, classes=2)
    clf = small().fit(X, np.array(["no", "yes"])[y])
    path = clf.save(tmp_path / "binary.npz")
    np.savetxt(tmp_path / "in.csv", X[:5], delimiter=",")
    done = subprocess.run([sys.executable, "-m", "numnet", "predict", str(path),
                           str(tmp_path / "in.csv"), "--proba"], capture_output=True,
                          text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          check=True)
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "index,label,p_yes"  # the one sigmoid output is P("yes")
    assert [line.split(",")[1] for line in lines[1:]] == clf.predict(X[:5]).tolist()
    np.testing.assert_allclose([float(line.split(",")[2]) for line in lines[1:]],
                               clf.predict_proba(X[:5])[:, 1], rtol=1e-5)


def test_loading_the_wrong_file_says_so(tmp_path):
    X, y = regression()
    path = small(NumnetRegressor, epochs=1).fit(X, y).save(tmp_path / "reg.npz")
    with pytest.raises(io.ModelFileError, match="holds a numnet.sklearn._regressor"):
        NumnetClassifier.load(path)
    plain = Sequential([Dense(3, 1)], loss="mse").save(tmp_path / "plain.npz")
    with pytest.raises(io.ModelFileError, match="holds no scikit-learn estimator"):
        NumnetRegressor.load(plain)
    with pytest.raises(NotFittedError):
        NumnetRegressor().save(tmp_path / "unfitted.npz")


# -- scikit-learn's tools ---------------------------------------------------------------------
def test_pipeline_cross_validation_and_a_serial_search():
    X, y = blobs()
    pipe = make_pipeline(StandardScaler(), small(epochs=10))
    assert cross_val_score(pipe, X, y, cv=3).mean() > 0.9
    search = GridSearchCV(small(epochs=5), {"hidden_layer_sizes": [(4,), (16,)],
                                            "dropout": [0.0, 0.2]}, cv=3)
    search.fit(X, y)
    assert set(search.best_params_) == {"hidden_layer_sizes", "dropout"}
    assert search.best_estimator_.n_iter_ == 5


def test_verbose_prints_a_line_per_epoch(capsys):
    small(epochs=3, verbose=2).fit(*blobs())
    assert capsys.readouterr().err.count("loss") >= 3


def test_importing_numnet_does_not_import_scikit_learn():
    code = ("import sys, numnet, numnet.io, numnet.data, numnet.training; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('sklearn', 'dask', 'distributed', 'threadpoolctl', 'joblib')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]"


def test_health_warnings_can_be_switched_off():
    X, y = blobs()
    with pytest.warns(TrainingWarning, match="far from standardised"):
        small(epochs=1).fit(X * 100, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingWarning)
        small(epochs=1, health=False).fit(X * 100, y)


def test_fit_warns_about_a_column_vector_y():
    X, y = blobs()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        small(epochs=1).fit(X, y.reshape(-1, 1))
    assert any("column-vector y" in str(w.message) for w in caught)
