"""Callbacks: hook order, early stopping, checkpoints, schedules, CSV logging, lambdas."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from numnet.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
)
from numnet.layers import Dense, ReLU
from numnet.model import Sequential
from numnet.optim import SGD, CosineDecay, ReduceLROnPlateau


def data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    return X, (X[:, 0] > 0).astype(np.int64)


def model(seed=0):
    return Sequential([Dense(2, 8), ReLU(), Dense(8, 2)], loss="cross_entropy", seed=seed)


class Scripted(Callback):
    """Replaces each epoch's monitored value by the next one of a script."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values = key, list(values)

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


class Recorder(Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin",))

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_batch_begin(self, batch, logs=None):
        self.calls.append(("batch_begin", batch))

    def on_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", batch))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, sorted(logs)))

    def on_train_end(self, logs=None):
        self.calls.append(("train_end",))


def test_hooks_run_in_order_with_context():
    X, y = data(n=6)
    recorder = Recorder()
    net = model()
    opt = SGD(0.1)
    net.fit(X, y, epochs=2, batch_size=4, optimizer=opt, verbose=0, callbacks=[recorder])
    keys = ["accuracy", "loss", "lr", "seconds"]
    assert recorder.calls == [
        ("train_begin",),
        ("epoch_begin", 0), ("batch_begin", 0), ("batch_end", 0), ("batch_begin", 1),
        ("batch_end", 1), ("epoch_end", 0, keys),
        ("epoch_begin", 1), ("batch_begin", 0), ("batch_end", 0), ("batch_begin", 1),
        ("batch_end", 1), ("epoch_end", 1, keys),
        ("train_end",),
    ]
    assert recorder.model is net and recorder.optimizer is opt
    assert recorder.params["epochs"] == 2 and recorder.params["steps"] == 2
    assert recorder.params["metrics"] == ["loss", "accuracy", "lr", "seconds"]


def test_batch_logs_hold_running_means():
    X, y = data(n=10)
    logs_seen = []
    net = model()
    history = net.fit(X, y, epochs=1, batch_size=4, verbose=0, shuffle=False,
                      callbacks=[LambdaCallback(on_batch_end=lambda b, logs: logs_seen.append(
                          dict(logs)))])
    assert [logs["size"] for logs in logs_seen] == [4, 4, 2]
    assert logs_seen[-1]["loss"] == pytest.approx(history.history["loss"][0])
    assert logs_seen[-1]["accuracy"] == history.history["accuracy"][0]


def test_stop_training_from_a_callback_ends_after_that_epoch():
    X, y = data()
    stopper = LambdaCallback(on_epoch_end=lambda epoch, logs: setattr(
        stopper.model, "stop_training", epoch == 1))
    history = model().fit(X, y, epochs=10, verbose=0, callbacks=[stopper])
    assert history.epoch == [0, 1] and history.stopped_early


# -- EarlyStopping ----------------------------------------------------------------------
@pytest.mark.parametrize("patience, stops_after", [(0, 4), (1, 4), (2, 5), (4, 7)])
def test_early_stopping_patience(patience, stops_after):
    # best 0.7 at epoch 2; every later value (the tie 0.7 included) fails to improve on it
    X, y = data()
    script = Scripted("val_loss", [1.0, 0.8, 0.7, 0.75, 0.7, 0.72, 0.9, 0.9])
    stop = EarlyStopping(patience=patience)
    history = model().fit(X, y, epochs=8, verbose=0, validation_split=0.25,
                          callbacks=[script, stop])
    assert len(history.epoch) == stops_after
    assert stop.best == 0.7 and stop.best_epoch == 2 and stop.stopped_epoch == stops_after - 1


def test_early_stopping_min_delta_and_max_mode():
    X, y = data()
    script = Scripted("val_accuracy", [0.5, 0.52, 0.53, 0.9])
    stop = EarlyStopping(monitor="val_accuracy", patience=2, min_delta=0.05)
    history = model().fit(X, y, epochs=4, verbose=0, validation_split=0.25,
                          callbacks=[script, stop])
    assert stop.mode == "max"
    assert len(history.epoch) == 3 and stop.best == 0.5  # +0.02, +0.03 are not enough
    # R^2 (regression's val_r2) is maximised too; losses and errors are minimised
    assert EarlyStopping(monitor="val_r2").mode == "max"
    assert EarlyStopping(monitor="val_rmse").mode == "min"


def test_early_stopping_restores_the_best_weights():
    X, y = data()
    weights = []
    script = Scripted("loss", [3.0, 1.0, 2.0, 2.5, 2.6])
    keep = LambdaCallback(on_epoch_end=lambda e, logs: weights.append(
        net.flat_params.copy()))
    net = model()
    stop = EarlyStopping(monitor="loss", patience=2, restore_best_weights=True, verbose=1)
    history = net.fit(X, y, epochs=5, verbose=0, callbacks=[keep, script, stop])
    assert history.epoch == [0, 1, 2, 3]
    np.testing.assert_array_equal(net.flat_params, weights[1])
    assert not np.array_equal(weights[1], weights[3])


def test_monitors_that_will_not_exist_fail_before_training():
    X, y = data()
    net = model()
    before = net.flat_params.copy()
    with pytest.raises(ValueError, match=r"EarlyStopping monitors 'val_loss', but the epoch "
                                         r"logs will only have \['loss', 'accuracy', 'lr', "
                                         r"'seconds'\] \(pass validation_data"):
        net.fit(X, y, epochs=2, verbose=0, callbacks=[EarlyStopping()])
    with pytest.raises(ValueError, match="ModelCheckpoint monitors 'val_acc'"):
        net.fit(X, y, verbose=0, callbacks=[ModelCheckpoint("x.npz", monitor="val_acc",
                                                            save_best_only=True)])
    with pytest.raises(ValueError, match="LearningRateScheduler monitors 'val_loss'"):
        net.fit(X, y, verbose=0, lr_schedule=ReduceLROnPlateau())
    np.testing.assert_array_equal(net.flat_params, before)


def test_callback_arguments_are_checked():
    with pytest.raises(ValueError, match="patience must be an integer >= 0"):
        EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="min_delta must be in"):
        EarlyStopping(min_delta=-0.1)
    with pytest.raises(ValueError, match="mode must be 'auto', 'min' or 'max'"):
        EarlyStopping(mode="up")
    with pytest.raises(TypeError, match="ModelCheckpoint path must be a string or path"):
        ModelCheckpoint(3)
    with pytest.raises(TypeError, match="CSVLogger path must be a string or path"):
        CSVLogger(None)
    with pytest.raises(TypeError, match="LearningRateScheduler needs an LRSchedule"):
        LearningRateScheduler(0.1)
    with pytest.raises(TypeError, match=r"unknown hook\(s\) \['on_step'\]"):
        LambdaCallback(on_step=print)
    with pytest.raises(TypeError, match="on_epoch_end must be callable"):
        LambdaCallback(on_epoch_end=3)


# -- ModelCheckpoint --------------------------------------------------------------------
def test_checkpoint_saves_every_epoch_with_formatted_names(tmp_path, monkeypatch):
    calls = []
    # ModelCheckpoint saves through the model's own method
    monkeypatch.setattr(Sequential, "save", lambda m, path, **kw: calls.append((path, kw)))
    X, y = data()
    net = model()
    check = ModelCheckpoint(tmp_path / "ckpt-{epoch:02d}-{loss:.1f}.npz", monitor="loss")
    net.fit(X, y, epochs=3, verbose=0, callbacks=[check])
    assert [path.split("/")[-1][:8] for path, _ in calls] == ["ckpt-01-", "ckpt-02-",
                                                              "ckpt-03-"]
    assert all(kw == {"optimizer": None} for _, kw in calls)
    assert check.saved == [p for p, _ in calls]


def test_checkpoint_save_best_only(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(Sequential, "save", lambda m, path, **kw: calls.append(
        (path, kw.get("optimizer"))))
    X, y = data()
    script = Scripted("val_loss", [1.0, 1.2, 0.5, 0.5, 0.7])
    opt = SGD(0.1)
    check = ModelCheckpoint(str(tmp_path / "e{epoch}.npz"), save_best_only=True,
                            save_optimizer=True)
    model().fit(X, y, epochs=5, verbose=0, optimizer=opt, validation_split=0.25,
                callbacks=[script, check])
    assert [p.split("/")[-1] for p, _ in calls] == ["e1.npz", "e3.npz"]
    assert all(o is opt for _, o in calls)


def test_checkpoint_round_trip_through_numnet_io(tmp_path):
    io = pytest.importorskip("numnet.io")
    X, y = data()
    net = model()
    path = tmp_path / "best.npz"
    net.fit(X, y, epochs=2, verbose=0, validation_data=(X, y),
            callbacks=[ModelCheckpoint(path, save_best_only=True)])
    restored = io.load(path)
    assert restored.evaluate(X, y)["loss"] <= model().evaluate(X, y)["loss"]
    np.testing.assert_array_equal(restored.predict_logits(X), net.predict_logits(X))


# -- LearningRateScheduler --------------------------------------------------------------
def test_scheduler_accepts_schedules_and_both_function_forms():
    X, y = data()
    opt = SGD(0.2)
    history = model().fit(X, y, epochs=3, optimizer=opt, verbose=0, callbacks=[
        LearningRateScheduler(lambda epoch, lr: lr * 0.5)])
    assert history.history["lr"] == pytest.approx([0.1, 0.05, 0.025])
    cosine = CosineDecay(total_epochs=4, warmup_epochs=1)
    history = model().fit(X, y, epochs=4, optimizer=SGD(0.2), verbose=0,
                          callbacks=[LearningRateScheduler(cosine)])
    assert cosine.initial_lr is None  # taken from the optimiser, the schedule unchanged
    assert history.history["lr"] == pytest.approx([0.1, 0.2, 0.15, 0.05])
    history = model().fit(X, y, epochs=2, optimizer=SGD(0.02), verbose=0,
                          callbacks=[LearningRateScheduler(cosine)])
    assert history.history["lr"] == pytest.approx([0.01, 0.02])  # the new optimiser's rate


def test_a_per_batch_cosine_sets_the_rate_before_every_batch():
    X, y = data()  # 40 samples, batches of 10: 4 steps per epoch, 8 in 2 epochs
    rates = []
    record = LambdaCallback(on_batch_end=lambda batch, logs: rates.append(opt.lr))
    opt = SGD(0.2)
    cosine = CosineDecay(total_epochs=2, per_batch=True)
    history = model().fit(X, y, epochs=2, batch_size=10, optimizer=opt, verbose=0,
                          callbacks=[record], lr_schedule=cosine)
    expected = [0.1 * (1 + math.cos(math.pi * k / 8)) for k in range(8)]
    assert rates == pytest.approx(expected)
    assert history.history["lr"] == pytest.approx([0.2, 0.1])  # each epoch's first rate
    # the same schedule per epoch keeps the rate through the epoch
    rates.clear()
    opt = SGD(0.2)
    model().fit(X, y, epochs=2, batch_size=10, optimizer=opt, verbose=0, callbacks=[record],
                lr_schedule=CosineDecay(total_epochs=2))
    assert rates == pytest.approx([0.2] * 4 + [0.1] * 4)


def test_scheduler_rejects_a_bad_rate(capsys):
    X, y = data()
    with pytest.raises(ValueError, match="learning rate from the schedule at epoch 0"):
        model().fit(X, y, verbose=0, lr_schedule=lambda epoch: float("nan"))
    model().fit(X, y, epochs=2, verbose=0, optimizer=SGD(0.1),
                callbacks=[LearningRateScheduler(lambda e: 0.1 / (e + 1), verbose=1)])
    assert "epoch 2: learning rate 0.1 -> 0.05" in capsys.readouterr().err


def test_reduce_on_plateau_through_fit():
    X, y = data()
    script = Scripted("val_loss", [1.0, 1.0, 1.0, 1.0, 1.0])
    plateau = ReduceLROnPlateau(factor=0.5, patience=2)
    history = model().fit(X, y, epochs=5, optimizer=SGD(0.4), verbose=0, validation_split=0.25,
                          callbacks=[script], lr_schedule=plateau)
    # the scripted value replaces the logs before the schedule reads them (callbacks first)
    assert history.history["lr"] == pytest.approx([0.4, 0.4, 0.4, 0.2, 0.2])


# -- CSVLogger --------------------------------------------------------------------------
def test_csv_logger_flushes_each_epoch(tmp_path):
    path = tmp_path / "log.csv"
    rows_during = []
    X, y = data()
    reader = LambdaCallback(on_epoch_end=lambda e, logs: rows_during.append(
        len(path.read_text().splitlines())))
    history = model().fit(X, y, epochs=3, verbose=0, validation_split=0.25,
                          callbacks=[CSVLogger(path), reader])
    assert rows_during == [2, 3, 4]  # header + one row per finished epoch, at once
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr",
                             "seconds"]
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert [float(r["loss"]) for r in rows] == history.history["loss"]


def test_csv_logger_truncates_or_appends(tmp_path):
    path = tmp_path / "log.csv"
    X, y = data()
    model().fit(X, y, epochs=2, verbose=0, callbacks=[CSVLogger(path)])
    model().fit(X, y, epochs=1, verbose=0, callbacks=[CSVLogger(path, append=True)])
    assert len(path.read_text().splitlines()) == 4
    model().fit(X, y, epochs=1, verbose=0, callbacks=[CSVLogger(path, separator=";")])
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch;loss;")


def test_a_custom_metric_from_another_callback_can_be_monitored():
    X, y = data()
    script = Scripted("val_f1", [0.5, 0.4, 0.3, 0.2])
    stop = EarlyStopping(monitor="val_f1", patience=1)
    history = model().fit(X, y, epochs=4, verbose=0, validation_split=0.25,
                          callbacks=[script, stop])
    assert stop.mode == "max" and history.epoch == [0, 1]
    with pytest.raises(ValueError, match=r"EarlyStopping monitors 'f2', but the epoch logs have "
                                         r"only \['loss'"):
        model().fit(X, y, epochs=1, verbose=0, callbacks=[EarlyStopping(monitor="f2")])


def test_checkpoint_path_fields_are_checked_before_training(tmp_path):
    X, y = data()
    net = model()
    before = net.flat_params.copy()
    with pytest.raises(ValueError, match="monitors 'val_loss'.*pass validation_data"):
        net.fit(X, y, epochs=1, verbose=0,
                callbacks=[ModelCheckpoint(str(tmp_path / "c-{val_loss:.3f}.npz"))])
    np.testing.assert_array_equal(net.flat_params, before)  # nothing trained
    with pytest.raises(ValueError, match=r"names 'nope', which the epoch logs do not have"):
        net.fit(X, y, epochs=1, verbose=0,
                callbacks=[ModelCheckpoint(str(tmp_path / "c-{nope}.npz"))])
    with pytest.raises(ValueError, match="not a valid format string"):
        net.fit(X, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(str(tmp_path / "c-{"))])


@pytest.mark.parametrize("name", ["c{}.npz", "c{0}.npz", "c-{epoch}-{1:.2f}.npz"])
def test_checkpoint_path_with_a_positional_field_is_refused_before_training(tmp_path, name):
    X, y = data()
    with pytest.raises(ValueError, match="has a positional field"):
        model().fit(X, y, epochs=1, verbose=0,
                    callbacks=[ModelCheckpoint(str(tmp_path / name))])


def test_early_stopping_leaves_the_weights_of_a_divergence_alone():
    """fit keeps the weights from before the bad batch and says so: no best-epoch restore."""
    X, y = data()
    net = model()
    stopper = EarlyStopping(monitor="loss", patience=10, restore_best_weights=True)
    net.fit(X, y, epochs=2, verbose=0, callbacks=[stopper])
    best = {k: v.copy() for k, v in stopper.best_state.items()}
    net.flat_params[...] += 1.0  # as if later epochs had moved on from the best one
    moved = net.flat_params.copy()
    stopper.on_train_end({"interrupted": False, "diverged": True})
    np.testing.assert_array_equal(net.flat_params, moved)
    stopper.on_train_end({"interrupted": False})
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value, best[key])
