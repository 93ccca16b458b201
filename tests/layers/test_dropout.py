"""Dropout: gradient checks with a fixed mask, statistics, modes, reproducibility, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numnet import gradcheck
from numnet.layers import Dense, Dropout, ReLU
from numnet.losses import CrossEntropy
from numnet.model import Sequential

WORST: dict[str, float] = {}


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _record(name: str, errors: dict[str, float]) -> None:
    for tensor, err in errors.items():
        key = f"{name}.{tensor}"
        WORST[key] = max(WORST.get(key, 0.0), err)


# -- gradient checks (check_layer re-seeds layer.rng before every forward: a fixed mask) --------
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.9])
@pytest.mark.parametrize("shape", [(1, 4), (2, 3), (7, 5), (3, 2, 5)])
def test_dropout_gradcheck(training, p, shape):
    errors = gradcheck.check_layer(Dropout(p), _x(shape), training=training)
    assert set(errors) == {"input"}
    assert errors["input"] < 1e-6
    _record(f"Dropout[training={training}]", errors)


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(1, 7), min_size=2, max_size=3), seed=st.integers(0, 2**16),
       p=st.floats(0.0, 0.95))
def test_dropout_gradcheck_random_shapes(shape, seed, p):
    errors = gradcheck.check_layer(Dropout(p), _x(tuple(shape), seed), training=True, seed=seed)
    assert errors["input"] < 1e-6
    _record("Dropout[training=True]", errors)


def test_whole_model_gradcheck_with_dropout():
    model = Sequential([Dense(5, 8), ReLU(), Dropout(0.5), Dense(8, 3)], loss=CrossEntropy(),
                       seed=1)
    x, y = _x((6, 5), seed=2), np.array([0, 1, 2, 0, 1, 2])
    errors = gradcheck.check_model(model, x, y, training=True)
    assert max(errors.values()) < 1e-6
    _record("model[training=True]", errors)


# -- what the mask does ------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_keep_rate_and_mean_are_preserved(p):
    layer = Dropout(p)
    layer.initialize(np.random.default_rng(0))
    x = np.ones((500, 400), dtype=np.float32)
    y = layer.forward(x, training=True)
    kept = y != 0
    n = x.size
    assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(y[kept], 1 / (1 - p), rtol=1e-6)  # kept units scaled by 1/(1-p)
    assert abs(y.mean() - 1.0) < 5 * np.sqrt(p / (1 - p) / n)  # E[y] = x


def test_backward_uses_the_mask_from_forward():
    layer = Dropout(0.5)
    x = _x((6, 7))
    y = layer.forward(x, training=True)
    g = _x((6, 7), seed=1).astype(np.float32)
    g_before = g.copy()
    dx = layer.backward(g)
    np.testing.assert_array_equal(dx, g * layer.mask)
    np.testing.assert_array_equal(dx == 0, y == 0)
    np.testing.assert_array_equal(g, g_before)  # grad_out is not written into


def test_evaluation_and_p_zero_are_the_identity_without_drawing():
    x = _x((4, 5)).astype(np.float32)
    for layer, training in ((Dropout(0.5), False), (Dropout(0.0), True)):
        state = layer.rng.bit_generator.state
        np.testing.assert_array_equal(layer.forward(x, training=training), x)
        np.testing.assert_array_equal(layer.backward(x), x)
        assert layer.rng.bit_generator.state == state  # no random numbers consumed


def test_p_close_to_one_stays_finite():
    layer = Dropout(0.999)
    x = np.ones((1000, 1000), dtype=np.float32)
    with np.errstate(all="raise"):
        y = layer.forward(x, training=True)
        dx = layer.backward(x)
    assert np.isfinite(y).all() and np.isfinite(dx).all()
    np.testing.assert_allclose(np.unique(y), [0.0, 1000.0], rtol=1e-4)
    assert abs(y.mean() - 1.0) < 0.15  # about 1000 kept units, each scaled by 1000
    # so close to 1 that float32 rounds p to 1: everything is dropped, still no NaN/inf
    y = Dropout(1 - 1e-9).forward(x, training=True)
    assert np.isfinite(y).all()


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan"), float("inf"), "half", True])
def test_p_outside_zero_one_is_rejected(p):
    with pytest.raises(ValueError, match="Dropout p"):
        Dropout(p)


def test_p_error_message_names_the_range():
    with pytest.raises(ValueError, match=r"must be in \[0.0, 1.0\), got 1.0"):
        Dropout(1.0)


def test_successive_calls_draw_fresh_masks():
    layer = Dropout(0.5)
    x = np.ones((8, 16))
    assert not np.array_equal(layer.forward(x, training=True), layer.forward(x, training=True))


# -- modes and reproducibility through the model ----------------------------------------------
def _model(seed: int | None) -> Sequential:
    return Sequential([Dense(10, 32), ReLU(), Dropout(0.5), Dense(32, 3)], seed=seed)


def test_same_seed_same_masks():
    x = _x((16, 10))
    a, b, c = _model(7).train(), _model(7).train(), _model(8).train()
    ya, yb = a.forward(x), b.forward(x)
    np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(a[2].mask, b[2].mask)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))  # the second masks agree too
    assert not np.array_equal(a[2].mask, c[2].mask)


def test_model_train_and_eval_modes_differ():
    model = _model(0)
    x = _x((16, 10))
    model.train()
    y_train = model.forward(x)
    model.eval()
    y_eval = model.forward(x)
    assert not np.allclose(y_train, y_eval)
    np.testing.assert_array_equal(model.forward(x), y_eval)  # evaluation is deterministic
    np.testing.assert_array_equal(model.forward(x, training=False), y_eval)
    np.testing.assert_array_equal(model.predict(x), y_eval)  # predict is evaluation mode
    assert not np.array_equal(model.forward(x, training=True), y_eval)


# -- dtype and configuration --------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_is_kept(dtype):
    layer = Dropout(0.3, dtype=dtype)
    y = layer(_x((5, 4)), training=True)  # the checked call casts float64 input
    assert y.dtype == layer.mask.dtype == np.dtype(dtype)
    assert layer.backward(np.ones_like(y)).dtype == np.dtype(dtype)


def test_float32_model_has_float32_masks():
    model = _model(0).train()
    model.forward(_x((4, 10)).astype(np.float32))
    assert model[2].mask.dtype == np.float32


def test_backward_before_forward_is_a_clear_error():
    with pytest.raises(RuntimeError, match="before forward"):
        Dropout(0.5).backward(np.zeros((2, 2)))


def test_config_round_trip_and_no_parameters():
    model = _model(0)
    rebuilt = Sequential.from_config(json.loads(json.dumps(model.get_config())))
    assert rebuilt[2].p == 0.5 and repr(rebuilt) == repr(model)
    layer = Dropout(0.25)
    assert layer.params == {} and layer.buffers == {} and layer.num_params == 0
    assert layer.output_shape((3, 4)) == (3, 4)


def test_worst_gradcheck_errors_are_tiny():
    """Runs last in this module: every check above stayed far below the tolerance."""
    assert WORST, "no gradient check recorded"
    assert max(WORST.values()) < 1e-6


def test_a_standalone_dropout_is_seeded_by_its_seed():
    x = np.ones((8, 16))
    first = Dropout(0.5, seed=3).forward(x, training=True)
    np.testing.assert_array_equal(Dropout(0.5, seed=3).forward(x, training=True), first)
    assert not np.array_equal(Dropout(0.5, seed=4).forward(x, training=True), first)
