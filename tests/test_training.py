"""``fit`` and ``evaluate``: learning, history, batching, checks, divergence, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import sys
import warnings

import numpy as np
import pytest

from numnet import io, metrics
from numnet.callbacks import LambdaCallback
from numnet.errors import NonFiniteError, ShapeError, TrainingDiverged
from numnet.layers import BatchNorm1d, Dense, Dropout, Layer, ReLU, Tanh
from numnet.model import Sequential
from numnet.optim import SGD, Adam, ExponentialDecay, StepDecay
from numnet.training import History, data, evaluate, fit


def spiral(n=100, classes=3, seed=0):
    """Interleaved 2-D spirals, one arm per class."""
    rng = np.random.default_rng(seed)
    r = np.tile(np.linspace(0.05, 1, n), classes)
    c = np.repeat(np.arange(classes), n)
    t = np.tile(np.linspace(0, 4, n), classes) + c * 2 * np.pi / classes
    t += rng.normal(0, 0.1, t.shape)
    return np.c_[r * np.sin(t), r * np.cos(t)], c


def xor(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 2))
    return X, (X[:, 0] * X[:, 1] > 0).astype(np.int64)


def classifier(seed=0, width=32, out=3, loss="cross_entropy", extra=(), **kwargs):
    return Sequential([Dense(2, width), ReLU(), *extra, Dense(width, width), ReLU(),
                       Dense(width, out)], loss=loss, seed=seed, **kwargs)


def without_time(history):
    return {k: v for k, v in history.history.items() if k != "seconds"}


# -- it learns ------------------------------------------------------------------------
def test_spiral_is_learnt_above_95_percent():
    X, y = spiral()
    model = classifier(width=64)
    history = model.fit(X, y, epochs=60, batch_size=32, optimizer=Adam(0.01), verbose=0,
                        seed=0)
    assert model.evaluate(X, y)["accuracy"] > 0.95
    assert history.history["loss"][-1] < 0.25 * history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.95


def test_xor_with_binary_cross_entropy():
    X, y = xor()
    model = classifier(out=1, loss="binary_cross_entropy")
    history = model.fit(X, y, epochs=80, batch_size=16, optimizer="adam", verbose=0, seed=1)
    assert model.evaluate(X, y)["accuracy"] > 0.95
    assert set(history.history) == {"loss", "accuracy", "lr", "seconds"}
    assert metrics.accuracy(y, model.predict(X).reshape(-1)) > 0.95


def test_regression_loss_goes_down_and_reports_mse_and_mae():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (200, 2))
    y = np.sin(2 * X[:, :1]) + X[:, 1:] ** 2
    model = Sequential([Dense(2, 32), Tanh(), Dense(32, 1)], loss="mse", seed=0)
    history = model.fit(X, y, epochs=100, batch_size=20, optimizer=Adam(0.01), verbose=0,
                        validation_split=0.2)
    loss = history.history["loss"]
    assert loss[-1] < 0.05 * loss[0] and history.history["val_loss"][-1] < 0.05
    assert set(history.history) == {"loss", "rmse", "r2", "val_loss", "val_rmse", "val_r2",
                                    "lr", "seconds"}
    assert history.history["r2"][-1] > 0.9 and history.history["val_r2"][-1] > 0.9
    scores = model.evaluate(X, y)
    assert set(scores) == {"loss", "mse", "mae", "rmse", "r2"}
    prediction = model.predict(X)
    assert scores["mse"] == pytest.approx(metrics.mean_squared_error(y, prediction), rel=1e-5)
    assert scores["mae"] == pytest.approx(metrics.mean_absolute_error(y, prediction), rel=1e-5)
    assert scores["loss"] == pytest.approx(scores["mse"], rel=1e-5)


def test_regression_reports_rmse_and_r2_in_evaluate_and_history():
    """Issue 14: evaluate gave loss, mse and mae only; R^2 and RMSE were nowhere."""
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (120, 3))
    y = np.c_[X @ [1.0, -2.0, 0.5], 10 + 3 * X[:, 0] * X[:, 1]]
    model = Sequential([Dense(3, 16), Tanh(), Dense(16, 2)], loss="mse", seed=0)
    Xv, yv = X[:30], y[:30]
    history = model.fit(X[30:], y[30:], epochs=5, batch_size=16, optimizer=Adam(0.02),
                        verbose=0, validation_data=(Xv, yv))
    scores = model.evaluate(Xv, yv)
    prediction = model.predict(Xv)
    assert scores["rmse"] == pytest.approx(metrics.rmse(yv, prediction), rel=1e-5)
    assert scores["r2"] == pytest.approx(metrics.r2(yv, prediction), rel=1e-5)
    assert history.history["val_rmse"][-1] == pytest.approx(scores["rmse"], rel=1e-6)
    assert history.history["val_r2"][-1] == pytest.approx(scores["r2"], rel=1e-6)
    assert "val_r2" in history.params["metrics"] and "rmse" in history.params["metrics"]
    # the training entries are the epoch's running values: R^2 against the training variance
    assert -10 < history.history["r2"][-1] <= 1
    assert history.history["rmse"][-1] == pytest.approx(
        np.sqrt(history.history["loss"][-1]), rel=1e-5)  # mse loss, no L2: rmse = sqrt(loss)


# -- the history ----------------------------------------------------------------------
def test_history_has_keras_names_one_entry_per_epoch():
    X, y = spiral(n=30)
    model = classifier()
    history = model.fit(X, y, epochs=3, batch_size=16, verbose=0, validation_data=(X, y))
    assert isinstance(history, History)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr",
                                    "seconds"}
    assert history.epoch == [0, 1, 2] and len(history) == 3
    assert all(len(v) == 3 for v in history.history.values())
    assert history.history["lr"] == [0.001] * 3  # the default Adam(1e-3)
    assert all(s > 0 for s in history["seconds"])
    assert history.params["steps"] == 6 and history.params["samples"] == 90
    assert not history.interrupted and not history.stopped_early
    assert "History(epochs=3" in repr(history)
    # the validation numbers are evaluate's on the same data
    scores = model.evaluate(X, y)
    assert history.history["val_loss"][-1] == pytest.approx(scores["loss"], rel=1e-6)
    assert history.history["val_accuracy"][-1] == scores["accuracy"]


def test_validation_split_without_shuffle_holds_out_the_last_fraction():
    X, y = spiral(n=50)
    model = classifier()
    seen = []
    probe = LambdaCallback(on_batch_end=lambda batch, logs: seen.append(logs["size"]))
    with pytest.warns(UserWarning, match=r"no sample of 2 class\(es\) .*\(0, 1\).*"
                                         "validation_shuffle=True"):
        history = model.fit(X, y, epochs=1, batch_size=40, validation_split=0.2, verbose=0,
                            callbacks=[probe], validation_shuffle=False)
    assert sum(seen) == 120 and history.params["samples"] == 120
    scores = model.evaluate(X[120:], y[120:])
    assert history.history["val_loss"][0] == pytest.approx(scores["loss"], rel=1e-6)


def test_validation_split_default_is_shuffled_and_stratified():
    """Issue 14: on class-sorted data (iris-like), the last-rows split validated on one
    class and reported val_accuracy 0.0; the default split keeps every class's share."""
    X, y = spiral(n=50)  # 150 samples, sorted by class
    histories = []
    for _ in range(2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            histories.append(classifier().fit(X, y, epochs=20, batch_size=16, verbose=0,
                                              validation_split=0.2, optimizer=Adam(0.05)))
        assert not [w for w in caught if "validation split" in str(w.message)]
    history = histories[0]
    assert history.params["samples"] == 120 and history.history["val_accuracy"][-1] > 0.5
    assert without_time(histories[1]) == without_time(history)  # the same rows every call
    # the rows held out, as fit draws them: its own generator, seeded by fit's seed (0)
    held = data.held_out_rows(y, 30, np.random.default_rng([0, data.SPLIT_STREAM]))
    assert np.bincount(y[held]).tolist() == [10, 10, 10]
    model = classifier()
    history = model.fit(X, y, epochs=3, batch_size=16, verbose=0, validation_split=0.2)
    scores = model.evaluate(X[held], y[held])
    assert history.history["val_loss"][-1] == pytest.approx(scores["loss"], rel=1e-6)
    assert history.history["val_accuracy"][-1] == scores["accuracy"]


def test_held_out_rows_keeps_each_class_share_and_a_row_in_training():
    rng = np.random.default_rng(3)
    strata = np.repeat([5, -1, 7, 9], [50, 30, 19, 1])  # any labels; one singleton class
    mask = data.held_out_rows(strata, 20, rng)
    assert mask.sum() == 20
    counts = {c: int(mask[strata == c].sum()) for c in (5, -1, 7, 9)}
    assert counts[5] == 10 and counts[-1] == 6 and counts[9] == 0 and counts[7] in (3, 4)
    assert sum(counts.values()) == 20
    again = data.held_out_rows(strata, 20, np.random.default_rng(3))
    np.testing.assert_array_equal(mask, again)  # the generator alone decides


def test_validation_split_warns_about_classes_it_cannot_hold_out():
    X, y = spiral(n=20)
    X, y = np.r_[X, [[0.0, 0.0]]], np.r_[y, 3]  # a class with a single sample
    model = Sequential([Dense(2, 4)], loss="cross_entropy", seed=0)
    with pytest.warns(UserWarning, match=r"no sample of 1 class\(es\) .*\(3\).*too few"):
        model.fit(X, y, epochs=1, verbose=0, validation_split=0.25)


def test_validation_split_of_a_regression_is_random_and_seeded():
    X = np.linspace(-1, 1, 100).reshape(-1, 1)
    y = X[:, 0] * 3.0
    val_losses = []
    for seed in (1, 1, 2):
        model = Sequential([Dense(1, 1)], loss="mse", seed=0)
        history = model.fit(X, y, epochs=1, verbose=0, validation_split=0.3, seed=seed)
        val_losses.append(history.history["val_loss"][0])
    assert val_losses[0] == val_losses[1] != val_losses[2]


def test_last_partial_batch_is_used():
    X, y = spiral(n=10, classes=1)
    sizes = []
    probe = LambdaCallback(on_batch_end=lambda batch, logs: sizes.append(logs["size"]))
    model = Sequential([Dense(2, 1)], loss="mse", seed=0)
    model.fit(X, y.astype(float), epochs=2, batch_size=4, verbose=0, callbacks=[probe])
    assert sizes == [4, 4, 2, 4, 4, 2]
    model.fit(X, y.astype(float), epochs=1, batch_size=50, verbose=0, callbacks=[probe])
    assert sizes[-1] == 10


def test_l2_shows_in_the_reported_loss():
    X, y = spiral(n=20)
    plain, regular = classifier(seed=2), classifier(seed=2, l2=0.5)
    base = plain.fit(X, y, epochs=1, batch_size=60, shuffle=False, optimizer=SGD(1e-9),
                     verbose=0)
    reg = regular.fit(X, y, epochs=1, batch_size=60, shuffle=False, optimizer=SGD(1e-9),
                      verbose=0)
    penalty = regular.l2_penalty()
    assert penalty > 0.1
    assert reg.history["loss"][0] == pytest.approx(base.history["loss"][0] + penalty, rel=1e-4)
    assert regular.evaluate(X, y)["loss"] == pytest.approx(plain.evaluate(X, y)["loss"]
                                                           + penalty, rel=1e-4)


def test_sample_weight_reaches_the_loss():
    # weights n/k on k kept samples and 0 elsewhere: the same gradient as the kept subset
    X, y = spiral(n=20)
    keep = np.arange(60) % 3 == 0
    w = np.where(keep, 60 / keep.sum(), 0.0)
    weighted, subset = classifier(seed=4), classifier(seed=4)
    weighted.fit(X, y, epochs=3, batch_size=60, shuffle=False, optimizer=SGD(0.1),
                 sample_weight=w, verbose=0)
    subset.fit(X[keep], y[keep], epochs=3, batch_size=60, shuffle=False, optimizer=SGD(0.1),
               verbose=0)
    np.testing.assert_allclose(weighted.flat_params, subset.flat_params, rtol=1e-4, atol=1e-6)


def test_clip_norm_bounds_every_step():
    X, y = spiral(n=30)
    norms = []

    def record(batch, logs):
        norms.append(float(np.linalg.norm(model.flat_grads.astype(np.float64))))

    model = classifier()
    model.fit(X, y, epochs=2, batch_size=8, optimizer=SGD(0.5), clip_norm=0.05, verbose=0,
              callbacks=[LambdaCallback(on_batch_end=record)])
    assert max(norms) <= 0.05 * (1 + 1e-5)


def test_lr_schedule_sets_the_rate_per_epoch():
    X, y = spiral(n=10)
    opt = SGD(0.4)
    history = classifier().fit(X, y, epochs=5, optimizer=opt, verbose=0,
                               lr_schedule=StepDecay(step_size=2, gamma=0.5))
    assert history.history["lr"] == pytest.approx([0.4, 0.4, 0.2, 0.2, 0.1])
    history = classifier().fit(X, y, epochs=2, optimizer=SGD(0.3), verbose=0,
                               lr_schedule=lambda epoch: 0.01 * (epoch + 1))
    assert history.history["lr"] == pytest.approx([0.01, 0.02])


def test_the_same_optimizer_object_continues_its_state():
    X, y = spiral(n=20)
    straight, twice = classifier(seed=5), classifier(seed=5)
    straight.fit(X, y, epochs=4, batch_size=20, optimizer=Adam(0.01), verbose=0, seed=3,
                 shuffle=False)
    opt = Adam(0.01)
    twice.fit(X, y, epochs=2, batch_size=20, optimizer=opt, verbose=0, shuffle=False)
    twice.fit(X, y, epochs=2, batch_size=20, optimizer=opt, verbose=0, shuffle=False)
    np.testing.assert_array_equal(straight.flat_params, twice.flat_params)


class DtypeProbe(Layer, register=False):
    """Records the dtype of everything passing through, forwards and backwards.

    The probes of this module are not registered: they are never saved, and they do not
    take part in the gradient checks every registered layer must pass.
    """

    def __init__(self):
        super().__init__()
        self.seen = set()

    def forward(self, x, training=False):
        self.seen.add(np.asarray(x).dtype)
        return x

    def backward(self, grad_out):
        self.seen.add(grad_out.dtype)
        return grad_out


@pytest.mark.parametrize("opt", [SGD(0.1, momentum=0.9, weight_decay=1e-3), Adam(0.01)])
def test_float32_training_stays_float32(opt):
    X, y = spiral(n=20)
    probes = [DtypeProbe(), DtypeProbe()]
    model = Sequential([probes[0], Dense(2, 8), ReLU(), probes[1], Dense(8, 3)],
                       loss="cross_entropy", seed=0, l2=1e-3)
    history = model.fit(X, y.astype(np.float64), epochs=2, batch_size=16, optimizer=opt,
                        verbose=0, sample_weight=np.ones(60), clip_norm=1.0,
                        validation_split=0.2)
    assert probes[0].seen == probes[1].seen == {np.dtype(np.float32)}
    assert model.flat_params.dtype == np.float32
    assert all(v.dtype == np.float32 for v in opt.state.values())
    assert json.loads(json.dumps(history.history)) == history.history  # plain floats


# -- reproducibility and modes --------------------------------------------------------
def test_same_seed_same_history_and_weights_bit_for_bit():
    X, y = spiral(n=30)
    runs = []
    for _ in range(2):
        model = classifier(seed=7, extra=(Dropout(0.3),))
        history = model.fit(X, y, epochs=3, batch_size=16, seed=11, validation_split=0.1,
                            verbose=0)
        runs.append((without_time(history), model.flat_params.copy()))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    other = classifier(seed=7, extra=(Dropout(0.3),))
    other.fit(X, y, epochs=3, batch_size=16, seed=12, validation_split=0.1, verbose=0)
    assert not np.array_equal(other.flat_params, runs[0][1])


def test_without_a_seed_the_model_generators_decide():
    X, y = spiral(n=30)
    a, b = classifier(seed=8), classifier(seed=8)
    ha = a.fit(X, y, epochs=2, batch_size=16, verbose=0)
    hb = b.fit(X, y, epochs=2, batch_size=16, verbose=0)
    assert without_time(ha) == without_time(hb)
    np.testing.assert_array_equal(a.flat_params, b.flat_params)


def test_two_fit_calls_continue_one_longer_call_bit_for_bit():
    X, y = spiral(n=30)
    straight, split = classifier(seed=6, extra=(Dropout(0.2),)), classifier(
        seed=6, extra=(Dropout(0.2),))
    straight.fit(X, y, epochs=3, batch_size=16, optimizer=Adam(0.01), verbose=0)
    opt = Adam(0.01)
    split.fit(X, y, epochs=1, batch_size=16, optimizer=opt, verbose=0)
    split.fit(X, y, epochs=2, batch_size=16, optimizer=opt, verbose=0)
    np.testing.assert_array_equal(straight.flat_params, split.flat_params)


def test_shuffle_false_ignores_the_seed():
    X, y = spiral(n=30)
    a, b = classifier(seed=9), classifier(seed=9)
    a.fit(X, y, epochs=2, batch_size=16, shuffle=False, seed=1, verbose=0)
    b.fit(X, y, epochs=2, batch_size=16, shuffle=False, seed=2, verbose=0)
    np.testing.assert_array_equal(a.flat_params, b.flat_params)


@pytest.mark.parametrize("start_training", [True, False])
def test_fit_and_evaluate_restore_the_previous_mode(start_training):
    X, y = spiral(n=10)
    model = classifier()
    model.train() if start_training else model.eval()
    modes = []
    model.fit(X, y, epochs=1, verbose=0, validation_split=0.2,
              callbacks=[LambdaCallback(on_batch_end=lambda b, logs: modes.append(
                  model.training))])
    assert modes and all(modes)  # batches run in training mode
    assert model.training is start_training
    model.evaluate(X, y)
    assert model.training is start_training


def test_evaluate_is_deterministic_and_matches_the_loss():
    X, y = spiral(n=30)
    model = classifier(extra=(Dropout(0.5),))
    model.train()
    first, second = model.evaluate(X, y, batch_size=7), model.evaluate(X, y)
    assert first["accuracy"] == second["accuracy"]
    assert first["loss"] == pytest.approx(second["loss"], rel=1e-6)
    expected = model.loss(model.predict_logits(X), y)
    assert first["loss"] == pytest.approx(expected, rel=1e-6)
    assert first["accuracy"] == metrics.accuracy(y, model.predict(X))
    one_hot = np.eye(3)[y]
    assert evaluate(model, X, one_hot)["accuracy"] == first["accuracy"]


# -- argument checks ------------------------------------------------------------------
X0, Y0 = spiral(n=10)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"y": Y0[:-1]}, ShapeError, "X has 30 samples but y has 29 entries"),
    ({"X": np.where(np.arange(60).reshape(30, 2) == 7, np.nan, X0)}, NonFiniteError,
     r"fit X contains 1 non-finite value\(s\) \(first: nan at index \(3, 1\)\)"),
    ({"X": np.c_[X0, X0]}, ShapeError, "X has 4 features per sample, but the model expects 2"),
    ({"X": X0[:, 0]}, ShapeError, "X must have a sample axis"),
    ({"X": np.array([["a", "b"]] * 30)}, TypeError, "X must be numeric"),
    ({"X": X0[:0], "y": Y0[:0]}, ShapeError, "X has no samples"),
    ({"y": Y0 + 1}, ValueError, r"label 3 at index 20 is out of range for the model's 3 "
                                r"outputs: labels must be in \[0, 3\)"),
    ({"y": Y0 - 1}, ValueError, r"label -1 at index 0 is out of range"),
    ({"y": Y0 + 0.5}, ValueError, "label at index 0 is 0.5, expected a whole class index"),
    ({"y": np.eye(4)[Y0]}, ShapeError, r"y has shape \(30, 4\), but the model outputs "
                                       r"\(30, 3\)"),
    ({"y": np.full((30, 3), 0.5)}, ValueError, "target row 0 is not a probability row"),
    ({"y": Y0.astype(str)}, TypeError, "y must be numeric"),
    ({"y": np.where(np.arange(30) == 4, np.nan, Y0)}, NonFiniteError, "fit y contains"),
    ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
    ({"batch_size": 2.5}, ValueError, "batch_size must be a positive integer"),
    ({"epochs": 0}, ValueError, "epochs must be a positive integer"),
    ({"validation_split": 1.0}, ValueError, r"validation_split must be in \[0.0, 1.0\)"),
    ({"validation_split": -0.1}, ValueError, r"validation_split must be in"),
    ({"validation_split": 0.99}, ValueError, "leaves an empty training or validation set"),
    ({"validation_split": 0.2, "validation_data": (X0, Y0)}, ValueError, "not both"),
    ({"validation_data": X0}, TypeError, r"validation_data must be a tuple \(X_val, y_val\)"),
    ({"validation_data": (X0[:, :1], Y0)}, ShapeError, "validation: X has 1 features"),
    ({"validation_data": (X0, Y0[:5])}, ShapeError, "validation: X has 30 samples but y"),
    ({"optimizer": 3}, TypeError, "optimizer must be an Optimizer or a name"),
    ({"optimizer": "adadelta"}, ValueError, "unknown optimizer 'adadelta'"),
    ({"callbacks": [print]}, TypeError, r"callbacks\[0\] is <built-in function print>"),
    ({"callbacks": "early"}, TypeError, "callbacks must be a list of Callback objects"),
    ({"verbose": 3}, ValueError, r"verbose must be 0 \(silent\), 1"),
    ({"shuffle": "yes"}, TypeError, "shuffle must be True or False"),
    ({"seed": -1}, ValueError, "seed must be None or an integer >= 0"),
    ({"seed": "abc"}, ValueError, "seed must be None or an integer >= 0"),
    ({"sample_weight": np.ones(29)}, ShapeError, r"sample_weight must have shape \(30,\)"),
    ({"sample_weight": -np.ones(30)}, ValueError, "sample_weight must be >= 0"),
    ({"sample_weight": np.full(30, np.inf)}, NonFiniteError, "sample_weight contains"),
    ({"sample_weight": np.array(["1"] * 30)}, TypeError, "sample_weight must be numeric"),
    ({"clip_norm": 0}, ValueError, r"clip_norm must be in \(0.0"),
    ({"lr_schedule": 5}, TypeError, "lr_schedule must be an LRSchedule"),
])
def test_fit_rejects_bad_arguments_before_training(kwargs, error, message):
    model = classifier()
    before = model.flat_params.copy()
    args = {"X": X0, "y": Y0, "verbose": 0, **kwargs}
    with pytest.raises(error, match=message):
        fit(model, args.pop("X"), args.pop("y"), **args)
    np.testing.assert_array_equal(model.flat_params, before)


def test_targets_for_binary_and_regression_models_are_checked():
    binary = classifier(out=1, loss="binary_cross_entropy")
    with pytest.raises(ValueError, match=r"binary targets must be in \[0, 1\], got 2.0"):
        binary.fit(X0, Y0.astype(float), verbose=0)
    regression = Sequential([Dense(2, 2)], loss="mse")
    with pytest.raises(ShapeError, match=r"y has shape \(30,\), but the model outputs "
                                         r"\(30, 2\)"):
        regression.fit(X0, Y0.astype(float), verbose=0)


def test_a_model_without_a_loss_cannot_be_trained():
    with pytest.raises(ValueError, match="this model has no loss"):
        Sequential([Dense(2, 3)]).fit(X0, Y0, verbose=0)
    with pytest.raises(ValueError, match="this model has no loss"):
        Sequential([Dense(2, 3)]).evaluate(X0, Y0)


def test_evaluate_rejects_bad_arguments():
    model = classifier()
    with pytest.raises(ShapeError, match="evaluate: X has 30 samples but y has 29"):
        model.evaluate(X0, Y0[:-1])
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.evaluate(X0, Y0, batch_size=0)
    with pytest.raises(ValueError, match="out of range"):
        model.evaluate(X0, Y0 + 3)


# -- divergence -----------------------------------------------------------------------
class FaultyScale(Layer, register=False):
    """``y = x * s`` that turns bad on its ``bad_at``-th call (forward or backward)."""

    def __init__(self, size, bad_at=None, where="grad", dtype=None):
        super().__init__(dtype)
        self.size, self.bad_at, self.where, self.calls = size, bad_at, where, 0
        self._add_param("s", (size,))
        self.params["s"][...] = 1.0

    def forward(self, x, training=False):
        self.x = self._as_input(x)
        out = self.x * self.params["s"]
        if self.where == "forward" and training and self._turns_bad():
            out[0, 0] = np.nan
        return out

    def backward(self, grad_out):
        np.sum(grad_out * self.x, axis=0, out=self.grads["s"])
        grad_in = grad_out * self.params["s"]
        if self.where == "grad" and self._turns_bad():
            self.grads["s"][1] = np.nan
            grad_in[:, 1] = np.nan  # and it flows down to layer 0
        return grad_in

    def _turns_bad(self):
        self.calls += 1
        return self.bad_at is not None and self.calls >= self.bad_at

    def get_config(self):
        return {"size": self.size}


def snapshot_after_each_batch(model, store):
    return LambdaCallback(on_batch_end=lambda batch, logs: store.append(
        model.flat_params.copy()))


@pytest.mark.parametrize("where, culprit", [
    ("grad", r"the gradient of parameter 's' of layer 2 FaultyScale\(size=8\) became NaN or "
             r"infinite first in back-propagation \(then also in layer\(s\) 0\)"),
    ("forward", r"the output of layer 2 FaultyScale\(size=8\) became NaN or infinite in "
                r"the forward pass"),
])
def test_injected_nan_stops_training_naming_epoch_batch_and_layer(where, culprit):
    X, y = spiral(n=10)
    model = Sequential([Dense(2, 8), ReLU(), FaultyScale(8, bad_at=6, where=where),
                        Dense(8, 3)], loss="cross_entropy", seed=0)
    weights = []
    with pytest.raises(TrainingDiverged) as info:  # health=False: its trace would count
        model.fit(X, y, epochs=3, batch_size=10, verbose=0, health=False,
                  callbacks=[snapshot_after_each_batch(model, weights)])
    message = str(info.value)
    assert message.startswith("training diverged in epoch 2/3, batch 3/3: ")  # 6th batch
    assert culprit.replace("\\", "") in message or pytest.fail(message)
    assert "lower the learning rate (now 0.001)" in message and "clip_norm" in message
    assert info.value.epoch == 1 and info.value.batch == 2
    assert len(weights) == 5  # five good steps, the sixth was not applied
    np.testing.assert_array_equal(model.flat_params, weights[-1])


def test_seed_003_unscaled_pixels_and_a_large_rate_diverge_loudly():
    # as in seed 003: pixels 0..255 fed unscaled, full-batch descent with a large rate; a
    # linear model on one-hot targets blows up geometrically within a few steps: the
    # explosion rule stops it before the numbers overflow, keeping the weights the epoch
    # started from
    rng = np.random.default_rng(3)
    X = rng.integers(0, 256, (256, 64)).astype(np.uint8)
    targets = np.eye(10)[rng.integers(0, 10, 256)]
    model = Sequential([Dense(64, 10)], loss="mse", seed=0)
    weights = []
    with pytest.raises(TrainingDiverged) as info:
        model.fit(X, targets, epochs=100, batch_size=256, optimizer=SGD(0.01), verbose=0,
                  callbacks=[snapshot_after_each_batch(model, weights)])
    message = str(info.value)
    assert f"training diverged in epoch {len(weights) + 1}/100, batch 1/1" in message
    assert "the loss exploded without becoming NaN" in message
    assert f"from the end of epoch {len(weights)}/100" in message
    assert "scale or standardise the inputs (X spans [0, 255])" in message
    assert np.isfinite(model.flat_params).all()
    np.testing.assert_array_equal(model.flat_params, weights[-1])


def test_an_update_that_overflows_is_undone():
    X, y = spiral(n=10)
    model = classifier()
    before = model.flat_params.copy()
    with pytest.raises(TrainingDiverged, match=r"epoch 1/1, batch 1/1: the optimiser's update "
                                               r"made parameter 'W' of layer 0 Dense"):
        model.fit(X * 1e30, y, batch_size=30, optimizer=SGD(1e30), verbose=0)
    np.testing.assert_array_equal(model.flat_params, before)


def bn_classifier(seed=0):
    return Sequential([Dense(2, 3), BatchNorm1d(3), ReLU(), Dense(3, 3)],
                      loss="cross_entropy", seed=seed)


def test_a_divergence_in_the_forward_pass_restores_the_running_statistics():
    X, y = spiral(n=10)
    model = bn_classifier()
    model.fit(X, y, epochs=1, batch_size=10, verbose=0)
    running = {k: v.copy() for k, v in model.layers[1].buffers.items()}
    model.layers[0].params["W"][0, 0] = 1e37  # the next forward pass overflows
    with pytest.raises(TrainingDiverged, match="running statistics from before this batch"):
        model.fit(X, y, epochs=1, batch_size=10, verbose=0)
    for key, value in running.items():
        np.testing.assert_array_equal(model.layers[1].buffers[key], value)


def test_a_finite_loss_with_non_finite_running_statistics_stops_training():
    X, y = spiral(n=10)
    X[5, 1] = 1e20  # squares to inf in float32 inside BatchNorm's running variance
    model = bn_classifier()
    before = {k: v.copy() for k, v in model.layers[1].buffers.items()}
    with pytest.raises(TrainingDiverged, match=r"epoch 1/1, batch 1/1: the buffer "
                                               r"'running_var' of layer 1 BatchNorm1d"):
        model.fit(X, y, epochs=1, batch_size=30, shuffle=False, verbose=0)
    for key, value in before.items():
        np.testing.assert_array_equal(model.layers[1].buffers[key], value)


def test_an_overflowing_update_resets_the_optimiser_state():
    X, y = spiral(n=10)
    model = classifier()
    opt = SGD(1e30, momentum=0.9)
    with pytest.raises(TrainingDiverged, match="optimiser's state .* was reset"):
        model.fit(X * 1e30, y, batch_size=30, optimizer=opt, verbose=0)
    assert opt.steps == 0 and opt.state == {}


def test_a_divergence_on_the_validation_data_says_so():
    X, y = spiral(n=10)
    X_val = X.copy()
    X_val[3, 0] = 3e38
    with pytest.raises(TrainingDiverged) as info:
        classifier().fit(X, y, epochs=2, batch_size=10, verbose=0, validation_data=(X_val, y))
    message = str(info.value)
    assert message.startswith("training diverged after epoch 1/2: the model's output on the "
                              "validation data became NaN or infinite")
    assert "weights from the end of this epoch" in message and "X_val spans" in message
    assert info.value.epoch == 0 and info.value.batch is None


def test_callbacks_end_training_when_it_diverges():
    X, y = spiral(n=10)
    ended = []
    with pytest.raises(TrainingDiverged):
        classifier().fit(X * 1e30, y, batch_size=30, optimizer=SGD(1e30), verbose=0,
                         callbacks=[LambdaCallback(on_train_end=ended.append)])
    assert ended == [{"interrupted": False, "diverged": True}]


def test_a_last_batch_of_one_joins_the_batch_before_for_batch_norm():
    X, y = spiral(n=11)  # 33 samples
    sizes = []
    model = bn_classifier()
    model.fit(X, y, epochs=1, batch_size=16, verbose=0,
              callbacks=[LambdaCallback(on_batch_end=lambda b, logs: sizes.append(logs["size"]))])
    assert sizes == [16, 17]
    sizes.clear()
    classifier().fit(X, y, epochs=1, batch_size=16, verbose=0, callbacks=[LambdaCallback(
        on_batch_end=lambda b, logs: sizes.append(logs["size"]))])
    assert sizes == [16, 16, 1]  # no BatchNorm: every batch as it falls
    with pytest.raises(ValueError, match=r"BatchNorm1d.* needs at least 2 samples per training "
                                         r"batch, but the training set has 1"):
        bn_classifier().fit(X[:1], y[:1], verbose=0)


def test_validation_runs_in_evaluation_mode():
    X, y = spiral(n=20)
    model = Sequential([Dense(2, 16), BatchNorm1d(16), ReLU(), Dropout(0.5), Dense(16, 3)],
                       loss="cross_entropy", seed=0)
    history = model.fit(X, y, epochs=2, batch_size=16, verbose=0, validation_data=(X, y))
    scores = model.evaluate(X, y)
    assert history.history["val_loss"][-1] == pytest.approx(scores["loss"], rel=1e-6)
    assert history.history["val_accuracy"][-1] == scores["accuracy"]


# -- Ctrl-C ---------------------------------------------------------------------------
def test_keyboard_interrupt_keeps_weights_and_history(capsys):
    X, y = spiral(n=20)
    model = classifier()
    weights, ended = [], []

    def on_batch_end(batch, logs):
        weights.append(model.flat_params.copy())
        if len(weights) == 6:  # epoch 2 (index 1), batch 2 (index 1) of 4
            raise KeyboardInterrupt

    history = model.fit(X, y, epochs=5, batch_size=16, verbose=2, callbacks=[LambdaCallback(
        on_batch_end=on_batch_end, on_train_end=lambda logs: ended.append(logs))])
    assert history.interrupted and history.epoch == [0]
    assert len(history.history["loss"]) == 1
    np.testing.assert_array_equal(model.flat_params, weights[-1])
    assert ended == [{"interrupted": True}]
    err = capsys.readouterr().err
    assert "training interrupted in epoch 2, batch 2" in err
    assert "history of 1 finished epoch(s)" in err


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or sys.platform == "win32",
                    reason="needs POSIX signals")
@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_finishes_the_batch_then_stops(presses):
    X, y = spiral(n=20)
    model = classifier()
    weights = []

    def on_batch_begin(batch, logs):
        if len(weights) == 5:
            for _ in range(presses):
                os.kill(os.getpid(), signal.SIGINT)

    record = LambdaCallback(on_batch_begin=on_batch_begin,
                            on_batch_end=lambda b, logs: weights.append(
                                model.flat_params.copy()))
    previous = signal.getsignal(signal.SIGINT)
    history = model.fit(X, y, epochs=5, batch_size=16, verbose=0, callbacks=[record])
    assert signal.getsignal(signal.SIGINT) is previous
    assert history.interrupted and history.epoch == [0]
    # one press: batch 6 still runs to its end; two presses: it stops at once, before it
    assert len(weights) == (6 if presses == 1 else 5)
    np.testing.assert_array_equal(model.flat_params, weights[-1])


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or sys.platform == "win32",
                    reason="needs POSIX signals")
def test_a_second_ctrl_c_inside_the_optimiser_step_lets_the_step_finish():
    X, y = spiral(n=20)

    class PressedDuringStep(SGD):
        def step(self, model):
            if self.steps == 2:  # the third step: two presses while the weights change
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)
            super().step(model)

    reference, weights = classifier(), []
    reference.fit(X, y, epochs=1, batch_size=16, optimizer=SGD(0.1), seed=0, verbose=0,
                  callbacks=[snapshot_after_each_batch(reference, weights)])
    model = classifier()
    history = model.fit(X, y, epochs=1, batch_size=16, optimizer=PressedDuringStep(0.1),
                        seed=0, verbose=0)
    assert history.interrupted
    np.testing.assert_array_equal(model.flat_params, weights[2])  # whole, not half a step


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or sys.platform == "win32",
                    reason="needs POSIX signals")
def test_a_ctrl_c_inside_a_bad_update_still_undoes_it():
    X, y = spiral(n=10)

    class PressedDuringStep(SGD):
        def step(self, model):
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            super().step(model)

    model = classifier()
    before = model.flat_params.copy()
    with pytest.raises(TrainingDiverged, match="the optimiser's update made parameter"):
        model.fit(X * 1e30, y, batch_size=30, optimizer=PressedDuringStep(1e30), verbose=0)
    np.testing.assert_array_equal(model.flat_params, before)


class InterruptAt(Layer, register=False):
    """Identity that raises KeyboardInterrupt in its ``at``-th training forward pass."""

    def __init__(self, at=0):
        super().__init__()
        self.at, self.calls = at, 0

    def forward(self, x, training=False):
        if training:
            self.calls += 1
            if self.calls == self.at:
                raise KeyboardInterrupt
        return self._as_input(x)

    def backward(self, grad_out):
        return grad_out


def test_a_ctrl_c_inside_the_forward_pass_keeps_statistics_and_weights_together():
    X, y = spiral(n=20)
    model = Sequential([Dense(2, 8), BatchNorm1d(8), InterruptAt(at=4), ReLU(), Dense(8, 3)],
                       loss="cross_entropy", seed=0)
    seen = []
    history = model.fit(X, y, epochs=2, batch_size=16, verbose=0, callbacks=[LambdaCallback(
        on_batch_end=lambda b, logs: seen.append(model.layers[1].buffers["running_mean"].copy()))])
    assert history.interrupted and len(seen) == 3
    np.testing.assert_array_equal(model.layers[1].buffers["running_mean"], seen[-1])


# -- progress output ------------------------------------------------------------------
def test_verbose_two_prints_one_line_per_epoch_on_stderr(capsys):
    X, y = spiral(n=10)
    classifier().fit(X, y, epochs=3, verbose=2, validation_split=0.2)
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert out == "" and len(lines) == 3
    assert lines[0].startswith("epoch 1/3 - ")
    assert all(key in lines[2] for key in ("loss: ", "accuracy: ", "val_loss: ", "lr: "))


def test_verbose_one_shows_a_tqdm_bar(capsys):
    pytest.importorskip("tqdm")
    X, y = spiral(n=10)
    classifier().fit(X, y, epochs=2, verbose=1)
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err
    assert "sample/s" in err and "loss=" in err and "accuracy=" in err


def test_without_tqdm_verbose_one_falls_back_to_lines(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    X, y = spiral(n=10)
    classifier().fit(X, y, epochs=2, verbose=1)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2 - ")


def test_verbose_zero_is_silent(capsys):
    X, y = spiral(n=10)
    classifier().fit(X, y, epochs=2, verbose=0, validation_split=0.2)
    assert capsys.readouterr() == ("", "")


def test_a_resumed_run_continues_its_schedule_bit_for_bit(tmp_path):
    X, y = spiral(n=20)
    schedule = ExponentialDecay(0.5)
    straight, opt = classifier(seed=5), Adam(0.01)
    whole = straight.fit(X, y, epochs=3, batch_size=16, optimizer=opt, verbose=0,
                         lr_schedule=schedule)
    first, opt = classifier(seed=5), Adam(0.01)
    first.fit(X, y, epochs=1, batch_size=16, optimizer=opt, verbose=0, lr_schedule=schedule)
    io.save(first, tmp_path / "m.npz", optimizer=opt)
    resumed, opt = io.load(tmp_path / "m.npz"), io.load_optimizer(tmp_path / "m.npz")
    rest = resumed.fit(X, y, epochs=3, batch_size=16, optimizer=opt, verbose=0,
                       lr_schedule=schedule, initial_epoch=1)
    assert rest.epoch == [1, 2]
    assert rest.history["lr"] == whole.history["lr"][1:] == [0.005, 0.0025]
    np.testing.assert_array_equal(resumed.flat_params, straight.flat_params)


@pytest.mark.parametrize("initial_epoch", [-1, 3, 1.0, True])
def test_initial_epoch_is_checked(initial_epoch):
    X, y = spiral(n=5)
    with pytest.raises(ValueError, match=r"initial_epoch must be an integer in \[0, epochs=3\)"):
        classifier().fit(X, y, epochs=3, initial_epoch=initial_epoch, verbose=0)
