"""Initialisers: scales, names, and the deep-ReLU activation-size property."""

from __future__ import annotations

import copy
import inspect

import numpy as np
import pytest

from numnet import SGD, TrainingDiverged, init
from numnet.layers import BatchNorm1d, Dense, Dropout, Layer, ReLU, Sigmoid, Tanh
from numnet.model import Sequential


@pytest.mark.parametrize("name, expected_var", [
    ("glorot_uniform", 2 / (400 + 600)), ("glorot_normal", 2 / (400 + 600)),
    ("he_uniform", 2 / 400), ("he_normal", 2 / 400), ("normal", 1e-4)])
def test_variances(name, expected_var):
    w = init.get_initializer(name)((400, 600), np.random.default_rng(0), np.float64)
    assert w.shape == (400, 600)
    assert w.var() == pytest.approx(expected_var, rel=0.03)
    assert abs(w.mean()) < 0.01


def test_uniform_bounds_and_dtype():
    w = init.he_uniform((50, 10), np.random.default_rng(0), np.float32)
    assert w.dtype == np.float32
    assert np.abs(w).max() <= np.sqrt(6 / 50)


def test_conv_fans_and_zeros():
    assert init.fans((8, 3, 5, 5)) == (75, 200)
    assert not init.zeros((3, 2)).any()
    with pytest.raises(ValueError, match="rank >= 2"):
        init.fans((3,))


def test_custom_callable_and_errors():
    def ones(shape, rng, dtype):
        return np.ones(shape, dtype)

    assert (Dense(3, 2, init=ones).params["W"] == 1).all()
    assert init.normal(0.5)((300, 300), np.random.default_rng(1)).std() == pytest.approx(
        0.5, rel=0.02)
    with pytest.raises(ValueError, match="positive finite std"):
        init.normal(0)
    with pytest.raises(ValueError, match="unknown initialiser"):
        init.get_initializer("uniformish")


def _deep(activation, depth=10, width=256, **dense_kwargs):
    layers = []
    for _ in range(depth):
        layers += [Dense(width, width, **dense_kwargs), activation()]
    return Sequential(layers, seed=0)


def test_default_init_keeps_deep_relu_activations_sensible():
    x = np.random.default_rng(1).standard_normal((512, 256)).astype(np.float32)
    model = _deep(ReLU)
    out = x
    for layer in model.layers:
        out = layer.forward(out)
    rms = np.sqrt((out ** 2).mean())
    assert 0.3 < rms < 3, rms  # He: the second moment is preserved through 10 layers


def test_model_picks_he_for_relu_and_glorot_for_tanh():
    relu = _deep(ReLU, depth=1, width=400)
    tanh = _deep(Tanh, depth=1, width=400)
    assert relu.layers[0].params["W"].var() == pytest.approx(2 / 400, rel=0.05)
    assert tanh.layers[0].params["W"].var() == pytest.approx(2 / 800, rel=0.05)


def test_seeds_scale_kills_the_signal():
    """The seeds' 1/(outs*ins) scale: after 10 layers nothing of the input is left."""
    scale = init.normal(1 / (256 * 256))
    x = np.random.default_rng(1).standard_normal((64, 256))
    out = x
    for layer in _deep(ReLU, init=scale).layers:
        out = layer.forward(out)
    assert np.abs(out).max() < 1e-20


def test_default_init_looks_past_batchnorm_and_dropout():
    model = Sequential([Dense(400, 400), BatchNorm1d(400), Dropout(0.1), ReLU(),
                        Dense(400, 400), Dense(400, 400), Tanh()], seed=0)
    assert model.layers[0].params["W"].var() == pytest.approx(2 / 400, rel=0.05)  # He
    assert model.layers[4].params["W"].var() == pytest.approx(2 / 800, rel=0.05)  # no activation
    assert model.layers[5].params["W"].var() == pytest.approx(2 / 800, rel=0.05)  # Glorot


def weighted_layer_cases():
    """One small instance of every registered layer class that takes an initialiser."""
    cases = []
    for cls in sorted(Layer.registry.values(), key=lambda c: str(c.type_name)):
        takes_init = "init" in inspect.signature(cls).parameters
        if (takes_init or cls.weight_key is not None) and cls.gradcheck_cases():
            cases.append(cls.gradcheck_cases()[0])
    return cases


@pytest.mark.parametrize("case", weighted_layer_cases(), ids=lambda c: type(c.layer).__name__)
def test_every_weighted_layer_shows_the_initialiser_it_really_uses(case):
    """repr, summary and error messages name the initialiser in use, never init=None."""
    shape = case.x.shape[1:]
    for after, expected in ((ReLU(), "he_normal"), (Sigmoid(), "glorot_uniform"),
                            (None, "glorot_uniform")):
        layer = copy.deepcopy(case.layer)
        layer.init = None  # the default: the model chooses from the activation after it
        model = Sequential([layer] + ([after] if after is not None else []),
                           input_shape=shape, seed=0)
        assert layer.init_name == expected
        assert f"init='{expected}'" in repr(layer) and "init=None" not in repr(layer)
        assert f"init='{expected}'" in model.summary()
    layer = copy.deepcopy(case.layer)
    layer.init = init.normal(1.0)
    Sequential([layer, ReLU()], input_shape=shape, seed=0)
    assert "init='normal(std=1)'" in repr(layer)


def test_a_divergence_message_names_the_initialiser_in_use():
    X = np.random.default_rng(0).standard_normal((32, 4))
    y = np.arange(32) % 3
    model = Sequential([Dense(4, 8, init=init.normal(1.0)), ReLU(), Dense(8, 3)],
                       loss="cross_entropy", seed=0)
    with pytest.raises(TrainingDiverged) as info:
        model.fit(X * 1e20, y, optimizer=SGD(1e20), verbose=0, health=False)
    message = str(info.value)
    assert "init=None" not in message
    assert "init='normal(std=1)'" in message or "init='glorot_uniform'" in message
    assert "check the weights' initialisation" in message


@pytest.mark.parametrize("std", [1.0, 0.01, 1 / (256 * 256)])
def test_a_normal_initialiser_is_kept_by_model_files_and_architectures(tmp_path, std):
    """A model saved with normal(std) weights still says so when loaded (its trace and
    divergence messages name the initialiser), and an architecture can ask for it."""
    model = Sequential([Dense(4, 8, init=init.normal(std)), Sigmoid(), Dense(8, 3)],
                       loss="cross_entropy", seed=0)
    name = model.layers[0].init_name
    assert name is not None and name.startswith("normal(std=")
    model.save(tmp_path / "normal.npz")
    loaded = Sequential.load(tmp_path / "normal.npz")
    assert loaded.layers[0].init_name == name
    assert f"init='{name}'" in loaded.summary()
    rebuilt = Sequential.from_config(model.get_config())
    assert rebuilt.layers[0].init_name == name
    w = init.get_initializer(name)((300, 300), np.random.default_rng(0), np.float64)
    assert w.std() == pytest.approx(std, rel=0.02)


def test_normal_by_name():
    w = init.get_initializer("normal(std=0.5)")((300, 300), np.random.default_rng(0))
    assert w.std() == pytest.approx(0.5, rel=0.02)
    assert Dense(3, 2, init="normal(std=2)").init_name == "normal(std=2)"
    for bad in ("normal(std=-1)", "normal(std=x)", "normal(0.5)"):
        with pytest.raises(ValueError, match="initialiser"):
            init.get_initializer(bad)
