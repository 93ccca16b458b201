"""Learning-rate schedules and the plateau rule."""

from __future__ import annotations

import math

import pytest

from numnet.optim import CosineDecay, ExponentialDecay, ReduceLROnPlateau, StepDecay


def test_step_and_exponential_decay():
    step = StepDecay(step_size=2, gamma=0.5, initial_lr=0.1)
    assert [step(e) for e in range(5)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    exp = ExponentialDecay(0.9, initial_lr=1.0)
    assert [exp(e) for e in range(3)] == pytest.approx([1.0, 0.9, 0.81])


def test_cosine_decay_with_warmup():
    cosine = CosineDecay(total_epochs=6, warmup_epochs=2, min_lr=0.0, initial_lr=0.3)
    # warm-up 0.1, 0.2; then cos over 4 epochs: 0.3, 0.3(1+cos(pi/4))/2, 0.15, ...
    expected = [0.1, 0.2, 0.3, 0.15 * (1 + math.cos(math.pi / 4)), 0.15,
                0.15 * (1 + math.cos(3 * math.pi / 4)), 0.0, 0.0]
    assert [cosine(e) for e in range(8)] == pytest.approx(expected, abs=1e-15)
    assert CosineDecay(4, min_lr=0.01, initial_lr=0.1)(0) == 0.1
    # per batch: fractional epochs on the same curve
    per_batch = CosineDecay(3, initial_lr=1.0, per_batch=True)
    assert per_batch.lr_at(1.5, 1.0) == pytest.approx(0.5)
    assert per_batch.lr_at(2.75, 1.0) == pytest.approx((1 + math.cos(math.pi * 2.75 / 3)) / 2)
    assert "per_batch=True" in repr(per_batch)


def test_schedule_errors():
    with pytest.raises(ValueError, match="has no initial_lr"):
        StepDecay(2)(0)
    with pytest.raises(ValueError, match="epoch must be an integer >= 0"):
        StepDecay(2, initial_lr=0.1)(-1)
    with pytest.raises(ValueError, match="step_size must be a positive integer"):
        StepDecay(0)
    with pytest.raises(ValueError, match="warmup_epochs must be an integer in"):
        CosineDecay(3, warmup_epochs=3)
    with pytest.raises(ValueError, match="gamma must be in"):
        ExponentialDecay(0)
    with pytest.raises(ValueError, match="factor must be in"):
        ReduceLROnPlateau(factor=1.0)
    with pytest.raises(ValueError, match="mode must be"):
        ReduceLROnPlateau(mode="lowest")
    with pytest.raises(ValueError, match="patience must be an integer >= 0"):
        ReduceLROnPlateau(patience=-1)


def test_reduce_on_plateau_patience_cooldown_and_floor():
    plateau = ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_lr=0.02, min_delta=0)
    lr, seen = 0.1, []
    for value in [1.0, 0.9, 0.9, 0.95, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]:
        lr = plateau.step(value, lr)
        seen.append(lr)
    # two bad epochs -> 0.05, one cooldown epoch, two bad -> 0.025, cooldown, two -> floor
    assert seen == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025,
                                  0.02, 0.02])
    assert ReduceLROnPlateau(monitor="val_accuracy").mode == "max"
    maximise = ReduceLROnPlateau(monitor="val_accuracy", patience=1, factor=0.1)
    assert maximise.step(0.5, 1.0) == 1.0 and maximise.step(0.6, 1.0) == 1.0
    assert maximise.step(0.55, 1.0) == pytest.approx(0.1)
