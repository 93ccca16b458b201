"""Reshape, and Flatten and Dropout on image batches."""

from __future__ import annotations

import json

import numpy as np
import pytest

from numnet import gradcheck
from numnet.errors import ShapeError
from numnet.layers import Conv2D, Dropout, Flatten, Reshape


def _images_last(shape, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape)
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@pytest.mark.parametrize(("shape", "per_sample", "out"), [
    ((1, 28, 28), (784,), (1, 28, 28)),
    ((-1, 4, 4), (32,), (2, 4, 4)),
    ([2, -1], (3, 2, 2), (2, 6)),
    (12, (3, 4), (12,)),
])
def test_reshape_shapes_and_gradcheck(shape, per_sample, out):
    layer = Reshape(shape)
    assert layer.output_shape(per_sample) == out
    x = np.random.default_rng(0).standard_normal((2, *per_sample))
    assert layer.forward(x).shape == (2, *out)
    assert gradcheck.check_layer(layer, x)["input"] < 1e-6
    assert layer.backward(np.ones((2, *out))).shape == x.shape


def test_reshape_feeds_flat_rows_to_a_conv():
    rows = np.random.default_rng(1).random((3, 784), dtype=np.float32)
    images = Reshape((1, 28, 28)).forward(rows)
    np.testing.assert_array_equal(images, rows.reshape(3, 1, 28, 28))
    assert Conv2D(1, 2, 3).forward(images).shape == (3, 2, 26, 26)


def test_reshape_config_round_trips():
    layer = Reshape((1, -1, 28), dtype="float64")
    clone = Reshape(**json.loads(json.dumps(layer.get_config())))
    assert clone.shape == (1, -1, 28) and clone.get_config() == layer.get_config()


@pytest.mark.parametrize(("shape", "per_sample", "match"), [
    ((1, 28, 28), (780,), r"\(780 values\) to \(1, 28, 28\) \(1 x 28 x 28 = 784 values\)"),
    ((-1, 28, 28), (780,), r"780 is not a multiple of 784"),
])
def test_reshape_size_mismatch_is_named(shape, per_sample, match):
    with pytest.raises(ShapeError, match=match):
        Reshape(shape).output_shape(per_sample)


@pytest.mark.parametrize("shape", [(), (-1, -1), (0, 4), (2, -2), "28", (2.0, 3), (True, 2)])
def test_reshape_bad_targets_are_rejected(shape):
    with pytest.raises(ValueError, match="Reshape shape"):
        Reshape(shape)


def test_flatten_on_channels_last_images_is_in_channels_first_order():
    x = _images_last((2, 3, 4, 5))
    layer = Flatten(dtype="float64")
    y = layer.forward(x)
    np.testing.assert_array_equal(y, np.ascontiguousarray(x).reshape(2, 60))  # as PyTorch
    g = np.random.default_rng(2).standard_normal((2, 60))
    np.testing.assert_array_equal(layer.backward(g), g.reshape(2, 3, 4, 5))
    assert gradcheck.check_layer(layer, np.ascontiguousarray(x))["input"] < 1e-6


@pytest.mark.parametrize("training", [True, False])
def test_dropout_on_image_batches(training):
    x = _images_last((4, 3, 6, 6), seed=3)
    layer = Dropout(0.5, dtype="float64", seed=0)
    y = layer.forward(x, training=training)
    assert y.shape == x.shape
    if training:
        kept = y != 0
        np.testing.assert_allclose(y[kept], 2 * x[kept])
        assert 0.3 < kept.mean() < 0.7
    else:
        np.testing.assert_array_equal(y, x)
    assert gradcheck.check_layer(layer, np.ascontiguousarray(x), training=training)[
        "input"] < 1e-6
