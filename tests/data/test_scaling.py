"""The scalers (Standardizer, MinMaxScaler, Rescale) and their JSON descriptions."""

from __future__ import annotations

import json

import numpy as np
import pytest

import numnet.data.scaling as scaling
from numnet.data import MinMaxScaler, NotFittedError, Rescale, Standardizer


def data(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(loc=[1.0, -5.0, 100.0], scale=[2.0, 0.1, 30.0], size=(500, 3))
    return X.astype(np.float32)


def test_standardizer_statistics() -> None:
    X = data()
    scaler = Standardizer().fit(X)
    Z = scaler.transform(X)
    assert Z.dtype == np.float32
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(Z.std(axis=0), 1, atol=1e-5)
    np.testing.assert_allclose(scaler.mean_, X.astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(scaler.inverse_transform(Z), X, rtol=1e-5, atol=1e-4)


def test_standardizer_uses_training_statistics_only() -> None:
    train, test = data(0), data(1) + 10
    scaler = Standardizer().fit(train)
    expected = (test - train.astype(np.float64).mean(0)) / train.astype(np.float64).std(0)
    np.testing.assert_allclose(scaler.transform(test), expected, rtol=1e-5, atol=1e-5)


def test_standardizer_small_blocks_match(monkeypatch: pytest.MonkeyPatch) -> None:
    X = data()
    full = Standardizer().fit(X)
    monkeypatch.setattr(scaling, "_STAT_BLOCK_VALUES", 20)  # blocks of 6 rows of 3 features
    blocked = Standardizer().fit(X)
    np.testing.assert_allclose(blocked.var_, full.var_, rtol=1e-12)


@pytest.mark.parametrize("Scaler", [Standardizer, MinMaxScaler])
def test_constant_feature_does_not_divide_by_zero(Scaler) -> None:
    X = np.column_stack([np.full(10, 3.7), np.arange(10.0)])
    out = Scaler().fit_transform(X)
    assert np.isfinite(out).all()
    assert np.all(out[:, 0] == out[0, 0])
    assert out[0, 0] == 0.0  # (x - mean) = 0 for Standardizer; low = 0 for MinMaxScaler


@pytest.mark.parametrize("Scaler", [Standardizer, MinMaxScaler])
def test_transform_before_fit(Scaler) -> None:
    scaler = Scaler()
    for method in (scaler.transform, scaler.inverse_transform):
        with pytest.raises(NotFittedError, match="not fitted yet; call fit"):
            method(np.zeros((2, 3)))
    assert issubclass(NotFittedError, ValueError)


@pytest.mark.parametrize("Scaler", [Standardizer, MinMaxScaler])
def test_wrong_feature_count(Scaler) -> None:
    scaler = Scaler().fit(data())
    with pytest.raises(ValueError, match="X has 4 features, but this .* fitted on 3 features"):
        scaler.transform(np.zeros((2, 4)))


@pytest.mark.parametrize("Scaler", [Standardizer, MinMaxScaler])
def test_bad_fit_input(Scaler) -> None:
    with pytest.raises(ValueError, match=r"or \(samples,\) .*got a scalar"):
        Scaler().fit(np.float64(5.0))
    with pytest.raises(ValueError, match=r"contains nan at index \(1, 0\)"):
        Scaler().fit(np.array([[1.0], [np.nan]]))
    with pytest.raises(ValueError, match="no samples"):
        Scaler().fit(np.zeros((0, 3)))


def test_uint8_images_become_float32_and_keep_their_shape() -> None:
    X = np.random.default_rng(0).integers(0, 256, size=(20, 4, 4), dtype=np.uint8)
    for scaler in (Standardizer(), MinMaxScaler()):
        out = scaler.fit_transform(X)
        assert out.dtype == np.float32 and out.shape == X.shape
    assert MinMaxScaler().fit_transform(np.zeros((3, 2), np.float64)).dtype == np.float64


def test_min_max_scaler_range_and_inverse() -> None:
    X = data()
    scaler = MinMaxScaler(feature_range=(-1, 1)).fit(X)
    Z = scaler.transform(X)
    np.testing.assert_allclose(Z.min(axis=0), -1, atol=1e-6)
    np.testing.assert_allclose(Z.max(axis=0), 1, atol=1e-6)
    np.testing.assert_allclose(scaler.inverse_transform(Z), X, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="low < high"):
        MinMaxScaler(feature_range=(1, 1))


# ------------------------------------------------------------------------------ rescale


def test_rescale_maps_zero_to_raw_max_onto_the_unit_interval() -> None:
    pixels = np.array([[0, 51, 255]], dtype=np.uint8)
    scaling = Rescale(255)
    out = scaling.transform(pixels)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, pixels.astype(np.float32) * np.float32(1 / 255))
    assert scaling.fit(pixels) is scaling
    np.testing.assert_array_equal(scaling.fit_transform(pixels), out)
    images = np.full((2, 8, 8), 16.0)  # any shape, float64 kept
    assert Rescale(16).transform(images).dtype == np.float64
    np.testing.assert_array_equal(Rescale(16).transform(images), 1.0)
    np.testing.assert_allclose(scaling.inverse_transform(out), pixels, rtol=1e-6)
    assert np.isnan(Rescale(2).transform([np.nan])[0])  # left for the model to report


def test_rescale_errors() -> None:
    with pytest.raises(ValueError, match="Rescale raw_max must be in"):
        Rescale(0)
    with pytest.raises(ValueError, match="Rescale.transform: X must be numeric"):
        Rescale(1).transform(np.array(["a"]))


# ---------------------------------------------------------------------- configurations


def fitted_scalers() -> list:
    X = data()
    return [Standardizer().fit(X), MinMaxScaler((-1.0, 2.0)).fit(X), Rescale(255)]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_config_is_json_and_rebuilds_the_same_transform_bit_for_bit(index: int) -> None:
    scaler = fitted_scalers()[index]
    config = scaler.get_config()
    assert json.loads(json.dumps(config)) == config
    again = type(scaler).from_config(json.loads(json.dumps(config)))
    X = data(1)
    np.testing.assert_array_equal(again.transform(X), scaler.transform(X))
    np.testing.assert_array_equal(again.inverse_transform(X), scaler.inverse_transform(X))
    assert again.get_config() == config


def test_config_formats() -> None:
    """The dicts ``numnet train`` has always written into model files."""
    assert Rescale(16).get_config() == {"type": "scale", "factor": 1 / 16, "raw_max": 16.0}
    scaler = Standardizer().fit(np.array([[1.0, 5.0], [3.0, 5.0]]))
    assert scaler.get_config() == {"type": "standardize", "mean": [2.0, 5.0], "std": [1.0, 1.0]}
    minmax = MinMaxScaler().fit(np.array([[1.0], [3.0]]))
    assert minmax.get_config() == {"type": "minmax", "feature_range": [0.0, 1.0],
                                   "data_min": [1.0], "data_max": [3.0]}


def test_configs_keep_multi_dimensional_features() -> None:
    X = np.random.default_rng(0).standard_normal((6, 2, 3))
    for scaler in (Standardizer().fit(X), MinMaxScaler().fit(X)):
        again = type(scaler).from_config(json.loads(json.dumps(scaler.get_config())))
        np.testing.assert_array_equal(again.transform(X), scaler.transform(X))


def test_rescale_from_config_keeps_the_stored_factor() -> None:
    stored = {"type": "scale", "factor": 0.1, "raw_max": 10.0}
    assert Rescale.from_config(stored).factor == 0.1
    assert Rescale.from_config({"type": "scale", "raw_max": 4.0}).factor == 0.25
    assert Rescale.from_config({"type": "scale", "factor": 0.5}).raw_max == 2.0


@pytest.mark.parametrize(
    ("cls", "config", "words"),
    [
        (Standardizer, {"type": "scale", "factor": 1.0}, '"type": \'standardize\''),
        (Standardizer, {"type": "standardize", "mean": [0.0]}, "'std' must be a non-empty"),
        (Standardizer, {"type": "standardize", "mean": [0.0, 1.0], "std": [1.0]},
         "'mean' has shape (2,) but 'std' has shape (1,)"),
        (Standardizer, {"type": "standardize", "mean": [0.0], "std": [0.0]},
         "every 'std' must be > 0"),
        (Standardizer, {"type": "standardize", "mean": ["a"], "std": [1.0]}, "'mean' must be"),
        (Standardizer, {"type": "standardize", "mean": [np.nan], "std": [1.0]}, "finite"),
        (MinMaxScaler, {"type": "minmax", "data_min": [2.0], "data_max": [1.0]},
         "data_min <= data_max"),
        (MinMaxScaler, {"type": "minmax", "data_min": [0.0], "data_max": [1.0],
                        "feature_range": [1.0]}, "'feature_range' must be [low, high]"),
        (MinMaxScaler, {"type": "minmax", "data_min": [0.0], "data_max": [1.0],
                        "feature_range": [1.0, 0.0]}, "low < high"),
        (Rescale, {"type": "scale"}, "expected 'factor' or 'raw_max'"),
        (Rescale, {"type": "scale", "factor": -1.0}, "factor must be in"),
        (Rescale, "scale", '"type": \'scale\''),
    ],
)
def test_from_config_errors(cls, config, words) -> None:
    with pytest.raises(ValueError) as info:
        cls.from_config(config)
    assert words in str(info.value)


@pytest.mark.parametrize("scaler", [Standardizer(), MinMaxScaler()])
def test_config_before_fit(scaler) -> None:
    with pytest.raises(NotFittedError, match="get_config: .*not fitted"):
        scaler.get_config()


def test_n_features_in() -> None:
    assert Standardizer().fit(data()).n_features_in_ == 3
    assert MinMaxScaler().fit(np.zeros((4, 2, 5))).n_features_in_ == 10
    with pytest.raises(NotFittedError, match="n_features_in_"):
        _ = Standardizer().n_features_in_


@pytest.mark.parametrize("Scaler", [Standardizer, MinMaxScaler])
def test_a_1d_target_is_accepted_and_stays_1d(Scaler) -> None:
    """Issue 14: a regression target (N,) is scaled without reshaping, and comes back 1-D."""
    y = np.array([10.0, 20.0, 30.0, 60.0])
    scaler = Scaler().fit(y)
    scaled = scaler.transform(y)
    assert scaled.shape == (4,) and scaler.n_features_in_ == 1
    np.testing.assert_allclose(scaled, Scaler().fit(y.reshape(-1, 1)).transform(
        y.reshape(-1, 1)).ravel())
    np.testing.assert_allclose(scaler.inverse_transform(scaled), y)
    assert scaler.fit_transform(y).shape == (4,)
    rebuilt = Scaler.from_config(json.loads(json.dumps(scaler.get_config())))
    np.testing.assert_array_equal(rebuilt.transform(y), scaled)
    with pytest.raises(ValueError, match=r"fitted on 1-D data \(N,\) \(use X.ravel\(\)\)"):
        scaler.transform(y.reshape(-1, 1))
    with pytest.raises(ValueError, match=r"has shape \(4,\), but .* samples of shape \(1,\)"):
        Scaler().fit(y.reshape(-1, 1)).transform(y)


def test_standardizer_1d_statistics() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    scaler = Standardizer().fit(y)
    assert scaler.mean_ == 2.5 and scaler.scale_ == pytest.approx(np.std(y))
    assert scaler.get_config() == {"type": "standardize", "mean": 2.5, "std": np.std(y)}
    assert Standardizer().fit(np.full(3, 7.0)).transform(np.full(3, 7.0)).tolist() == [0, 0, 0]
