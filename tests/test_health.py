"""Health warnings during fit: each of the issue's failures is named; a healthy run is quiet."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from numnet import (
    SGD,
    Adam,
    Dense,
    Dropout,
    HealthCheck,
    ReLU,
    Sequential,
    Sigmoid,
    TrainingDiverged,
    TrainingWarning,
)
from numnet.data import load_digits, train_dev_test_split
from numnet.health import chance_levels
from numnet.init import normal


@pytest.fixture(scope="module")
def digits():
    return load_digits(flatten=True, scale=True)


def relu_net(seed: int = 0) -> Sequential:
    return Sequential([Dense(64, 128), ReLU(), Dense(128, 10)], loss="cross_entropy",
                      seed=seed)


def sigmoid_net(std: float) -> Sequential:
    """The issue's 10-layer sigmoid network, its weights drawn from normal(std)."""
    layers = []
    for _ in range(9):
        layers += [Dense(64, 64, init=normal(std)), Sigmoid()]
    return Sequential([*layers, Dense(64, 10, init=normal(std))], loss="cross_entropy",
                      seed=0)


def fit_warnings(model: Sequential, *args, **kwargs) -> list[str]:
    """The TrainingWarning messages of one fit call."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(*args, verbose=0, **kwargs)
    return [str(w.message) for w in caught if issubclass(w.category, TrainingWarning)]


def test_the_readme_example_trains_without_a_warning(digits):
    X, y = digits
    (X_train, y_train), (X_val, y_val), _ = train_dev_test_split(
        X, y, dev=0.1, test=0.2, stratify=True, seed=0)
    model = Sequential([Dense(64, 128), ReLU(), Dropout(0.1), Dense(128, 10)],
                       loss="cross_entropy", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingWarning)
        model.fit(X_train, y_train, epochs=30, batch_size=32, optimizer=Adam(1e-3),
                  validation_data=(X_val, y_val), verbose=0)


def test_a_learning_rate_that_kills_the_relus(digits):
    """The issue: ``--optimizer sgd --lr 10`` exits 0 at 10% without a word."""
    X, y = digits
    messages = fit_warnings(relu_net(), X, y, epochs=3, optimizer=SGD(10), seed=0)
    dead = [m for m in messages if "dead" in m]
    assert any(m.startswith("after epoch 1: layer 1 ReLU: ") and "% of units dead" in m
               for m in dead), messages
    assert any("accuracy" in m and "at chance level" in m for m in messages)
    assert len(messages) == len(set(m.split(":")[0] + m.split(":")[1] for m in messages))


def test_vanishing_gradients_leave_the_loss_at_chance(digits):
    """The issue: a 10-layer sigmoid net with normal(0.01) sits at loss ln 10, silently."""
    X, y = digits
    messages = fit_warnings(sigmoid_net(0.01), X, y, epochs=2, seed=0)
    chance = next(m for m in messages if "chance level (ln C = 2.303)" in m)
    assert chance.startswith("epoch 1: the loss stays at 2.3")
    assert any("vanishing gradients" in m and "from layer 18 Dense to layer 0 Dense" in m
               for m in messages)


def test_saturating_sigmoids_are_named(digits):
    X, y = digits
    messages = fit_warnings(sigmoid_net(1.0), X, y, epochs=1, seed=0)
    assert any("Sigmoid" in m and "of outputs saturated" in m for m in messages), messages


def test_raw_pixels_warn_before_anything_turns_nan(digits):
    """The seeds' failure: pixels 0-255 and SGD; the loss climbs, no NaN, nobody told."""
    X, y = digits
    model = relu_net()
    losses = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(X * 255, y, epochs=2, optimizer=SGD(0.01), verbose=0, seed=0)
    messages = [str(w.message) for w in caught if issubclass(w.category, TrainingWarning)]
    losses = history.history["loss"]
    assert all(math.isfinite(v) for v in losses)
    assert messages[0].startswith("the inputs are far from standardised: feature ")
    assert "X spans [0, 255]" in messages[0] and "pixels / 255" in messages[0]
    rising = next(m for m in messages if "the loss is rising" in m)
    assert rising.startswith("epoch 1, batch ")
    assert "clip_norm=1.0" in rising and "numnet train --clip-norm 1" in rising
    # the first warning points at the user's fit call, not inside numnet
    assert caught[0].filename == __file__


def test_a_climbing_loss_warns_epochs_before_the_guard_stops_it():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 8))
    y = X @ rng.standard_normal((8, 1))
    model = Sequential([Dense(8, 16), ReLU(), Dense(16, 1)], loss="mse", seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TrainingDiverged) as stopped:
            model.fit(X, y, epochs=20, batch_size=256, optimizer=SGD(0.5), verbose=0)
    rising = [str(w.message) for w in caught if "the loss is rising" in str(w.message)]
    assert len(rising) == 1
    warned_at = int(rising[0].split(",")[0].removeprefix("epoch "))
    assert warned_at + 2 <= stopped.value.epoch + 1
    # a loss that rises several-fold from one epoch to the next, then recovers
    model = Sequential([Dense(8, 16), ReLU(), Dense(16, 1)], loss="mse", seed=0)
    messages = fit_warnings(model, X, y, epochs=6, batch_size=256, optimizer=SGD(0.3))
    assert any(m.startswith("epoch 4: the loss rose 3.3x from the previous epoch")
               for m in messages)


def test_warnings_come_once_per_kind_and_can_be_silenced(digits):
    # raw pixels and SGD(0.03): every epoch has unscaled inputs and dead ReLUs, and the loss
    # stays below the divergence guard's explosion stop (SGD(10) would trip it in batch 2)
    X, y = digits
    messages = fit_warnings(relu_net(), X * 255, y, epochs=3, optimizer=SGD(0.03), seed=0)
    kinds = [m.split(":")[0] for m in messages if m.startswith("the inputs")]
    assert len(kinds) == 1
    assert fit_warnings(relu_net(), X * 255, y, epochs=1, optimizer=SGD(0.03), seed=0,
                        health=False) == []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=TrainingWarning)
        relu_net().fit(X * 255, y, epochs=1, optimizer=SGD(0.03), verbose=0)
    assert not [w for w in caught if issubclass(w.category, TrainingWarning)]


def test_a_health_check_of_ones_own_keeps_its_findings(digits):
    X, y = digits
    check = HealthCheck(sample_size=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        relu_net().fit(X * 255, y, epochs=2, optimizer=SGD(0.03), verbose=0, callbacks=[check],
                       health=False)
    found = {finding.kind for finding in check.findings}
    assert {"inputs", "dead"} <= found
    assert all(finding.message for finding in check.findings)


def test_the_health_check_does_not_change_training(digits):
    X, y = digits
    with_check, without = relu_net(), relu_net()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = with_check.fit(X, y, epochs=3, optimizer=SGD(10), verbose=0, seed=1)
        b = without.fit(X, y, epochs=3, optimizer=SGD(10), verbose=0, seed=1, health=False)
    np.testing.assert_array_equal(with_check.flat_params, without.flat_params)
    np.testing.assert_array_equal(with_check.flat_grads, without.flat_grads)
    assert a.history["loss"] == b.history["loss"]


def test_bad_arguments(digits):
    X, y = digits
    with pytest.raises(TypeError, match="health must be True or False"):
        relu_net().fit(X, y, health="yes", verbose=0)
    with pytest.raises(ValueError, match="HealthCheck sample_size must be a positive integer"):
        HealthCheck(sample_size=0)


def test_chance_levels():
    balanced = np.repeat(np.arange(4), 5)
    low, high, accuracy = chance_levels(balanced, "classes", 4)
    assert low == pytest.approx(math.log(4)) and high == pytest.approx(math.log(4))
    assert accuracy == 0.25
    skewed = np.array([0] * 9 + [1])
    low, high, accuracy = chance_levels(skewed, "classes", 3)
    assert low == pytest.approx(-(0.9 * math.log(0.9) + 0.1 * math.log(0.1)))
    assert high == pytest.approx(math.log(3)) and accuracy == 0.9
    one_hot = np.eye(4)[balanced]
    assert chance_levels(one_hot, "classes", 4) == pytest.approx((math.log(4),) * 2 + (0.25,))
    binary = np.array([[1.0], [0.0], [0.0], [0.0]])
    low, high, accuracy = chance_levels(binary, "binary", 1)
    assert low == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))
    assert high == pytest.approx(math.log(2)) and accuracy == 0.75
    assert chance_levels(np.zeros((3, 2)), "real", 2) is None
