"""Training whose loss explodes without reaching NaN (issue 13, class 2): the guard's rule,
its rollback, and healthy runs it must leave alone (numnet.training.guard)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import numnet
from numnet import callbacks, optim
from numnet.data import load_digits
from numnet.errors import TrainingDiverged
from numnet.layers import Dense, ReLU
from numnet.optim import SGD, Adam, RMSProp
from numnet.training import guard as guard_module
from numnet.training import loop
from numnet.training.guard import EXPLOSION_FACTOR, Guard, uninformed_loss


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(flatten=True)
    return (X / 16).astype(np.float32), y


def mlp(hidden: int = 128, seed: int = 0) -> numnet.Sequential:
    return numnet.Sequential([Dense(64, hidden), ReLU(), Dense(hidden, 10)],
                             loss="cross_entropy", seed=seed)


class BatchLosses:
    """Records every batch loss ``train_step`` returns (patched in for a test)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.losses: list[float] = []
        real = loop.train_step

        def step(*args, **kwargs):
            loss, output = real(*args, **kwargs)
            self.losses.append(loss)
            return loss, output

        monkeypatch.setattr(loop, "train_step", step)


@pytest.mark.parametrize(("optimizer", "batch"), [(Adam(1e12), 2), (SGD(1e3), 2)])
def test_an_exploding_loss_stops_training(digits, optimizer, batch: int) -> None:
    X, y = digits
    model = mlp()
    start = model.flat_params.copy()
    with pytest.raises(TrainingDiverged) as info:
        model.fit(X, y, epochs=5, batch_size=32, optimizer=optimizer, verbose=0)
    message = str(info.value)
    assert message.startswith(f"training diverged in epoch 1/5, batch {batch}/57: the loss "
                              "exploded without becoming NaN"), message
    assert "more than 1000 times the larger of the loss where training started" in message
    assert "prediction ignoring the inputs (2.3)" in message  # ln 10
    assert "The model keeps its weights and running statistics from before training" in message
    assert "lower the learning rate" in message and "optimiser's state" in message
    assert info.value.epoch == 0 and info.value.batch == batch - 1
    np.testing.assert_array_equal(model.flat_params, start)
    assert np.isfinite(model.predict_logits(X)).all()


def test_the_weights_the_epoch_started_from_are_restored(digits) -> None:
    """The rate turns huge in epoch 3: the weights after epoch 2 come back, and the
    optimiser's moments are reset."""
    X, y = digits
    model = mlp()
    opt = Adam(1e-3)
    at_start: list[np.ndarray] = []

    class Sabotage(callbacks.Callback):
        def on_epoch_begin(self, epoch, logs):
            at_start.append(model.flat_params.copy())
            if epoch == 2:
                opt.lr = 1e9

    with pytest.raises(TrainingDiverged) as info:
        model.fit(X, y, epochs=4, optimizer=opt, verbose=0, callbacks=[Sabotage()])
    assert info.value.epoch == 2
    assert "from the end of epoch 2/4, the start of the epoch in which the loss exploded" \
        in str(info.value)
    np.testing.assert_array_equal(model.flat_params, at_start[2])
    assert opt.steps == 0 and not opt.state  # the moments saw the exploding gradients
    assert model.evaluate(X, y)["accuracy"] > 0.8  # two good epochs are kept


def test_a_regression_that_explodes() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 5)).astype(np.float32)
    y = (X @ rng.standard_normal(5) + 3).astype(np.float32)
    model = numnet.Sequential([Dense(5, 16), ReLU(), Dense(16, 1)], loss="mse", seed=0)
    with pytest.raises(TrainingDiverged, match="the loss exploded without becoming NaN"):
        model.fit(X, y, epochs=10, optimizer=SGD(1.0), verbose=0)


def test_a_spike_that_recovers_is_left_alone(digits, monkeypatch: pytest.MonkeyPatch) -> None:
    """RMSProp at lr 0.1 sends a batch loss to over a hundred times its start, then
    recovers: the running average stays far below the limit."""
    X, y = digits
    record = BatchLosses(monkeypatch)
    history = mlp().fit(X, y, epochs=5, batch_size=32, optimizer=RMSProp(0.1), verbose=0,
                        seed=0)
    losses = np.array(record.losses)
    assert losses.max() > 100 * losses[0]  # a real spike...
    assert history["accuracy"][-1] > 0.9  # ...that training recovers from


@pytest.mark.parametrize("optimizer", [SGD(1.0), Adam(0.1), RMSProp(0.01), optim.AdamW(0.1)])
def test_high_but_healthy_rates_train(digits, optimizer) -> None:
    X, y = digits
    history = mlp().fit(X, y, epochs=3, optimizer=optimizer, verbose=0, seed=0)
    assert history["accuracy"][-1] > 0.85


def test_unscaled_pixels_with_a_fine_rate_train(digits) -> None:
    """Inputs 0..16 start at a large loss; the reference is that starting loss."""
    X, y = digits
    history = mlp().fit(X * 16, y, epochs=3, optimizer=SGD(0.1), verbose=0, seed=0)
    assert history["accuracy"][-1] > 0.9


def test_the_uninformed_loss_is_the_chance_level() -> None:
    model = mlp()
    labels = np.arange(40) % 10
    assert math.isclose(uninformed_loss(model, labels, (10,), True), math.log(10),
                        rel_tol=1e-6)
    binary = numnet.Sequential([Dense(3, 2)], loss="binary_cross_entropy")
    targets = np.tile([[0.0, 1.0]], (8, 1)).astype(np.float32)
    assert math.isclose(uninformed_loss(binary, targets, (2,), True), math.log(2),
                        rel_tol=1e-6)
    regression = numnet.Sequential([Dense(3, 2)], loss="mse")
    y = np.array([[0.0, 10.0], [2.0, 30.0]], np.float32)
    assert math.isclose(uninformed_loss(regression, y, (2,), False), (1 + 100) / 2,
                        rel_tol=1e-6)  # the variance of each output, averaged


def _guard(uninformed: float) -> Guard:
    model = numnet.Sequential([Dense(2, 2)], loss="mse")
    return Guard(model, SGD(0.1), np.zeros((4, 2), np.float32), 1, 1, uninformed)


def test_the_limit_is_a_thousand_times_the_reference() -> None:
    assert EXPLOSION_FACTOR == 1000
    guard = _guard(uninformed=2.0)
    guard._watch(0.5)  # the first batch: the reference is max(0.5, 2.0)
    assert guard.limit == 2000.0
    for _ in range(100):
        guard._watch(1500.0)  # high, but below the limit however long it lasts
    guard._watch(6000.0)  # one odd batch moves the average by a tenth of its excess
    assert guard.running < guard.limit
    guard._watch(1000.0)
    with pytest.raises(TrainingDiverged, match=r"reached 2\.2\de\+03, more than 1000 times"):
        guard._watch(6000.0)  # a second one, soon after, is too many


def test_a_zero_reference_turns_the_rule_off() -> None:
    guard = _guard(uninformed=0.0)
    guard._watch(0.0)
    guard._watch(1e30)
    assert guard.limit == math.inf


def test_the_rule_uses_only_the_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    """O(1) per batch: the rule reads the loss the loop has and touches no array."""
    guard = _guard(uninformed=1.0)
    monkeypatch.setattr(guard_module, "np", None)  # any use of NumPy would fail
    guard._watch(1.0)
    guard._watch(2.0)
