"""Convolutional networks in a Sequential: shapes before data, errors, end-to-end gradients."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from numnet import gradcheck, io
from numnet.data import load_digits
from numnet.errors import ShapeError
from numnet.layers import (
    AvgPool2D,
    BatchNorm2d,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    MaxPool2D,
    ReLU,
    Reshape,
    Tanh,
)
from numnet.model import Sequential
from numnet.optim import Adam


def issue_network(dense_in=1600, **kwargs):
    """conv(1->32, 3x3)-ReLU-maxpool2-conv(32->64, 3x3)-ReLU-maxpool2-Flatten-Dense-ReLU-Dense."""
    return Sequential([Conv2D(1, 32, 3), ReLU(), MaxPool2D(2), Conv2D(32, 64, 3), ReLU(),
                       MaxPool2D(2), Flatten(), Dense(dense_in, 128), ReLU(), Dense(128, 10)],
                      loss="cross_entropy", **kwargs)


def tiny_network(dtype="float64", seed=0):
    """The issue's architecture, narrow, for 12x12 images (gradcheck-sized)."""
    return Sequential([Conv2D(1, 2, 3), ReLU(), MaxPool2D(2), Conv2D(2, 3, 3), ReLU(),
                       MaxPool2D(2), Flatten(), Dense(3, 4), ReLU(), Dense(4, 3)],
                      loss="cross_entropy", input_shape=(1, 12, 12), dtype=dtype, seed=seed)


def test_issue_network_shapes_and_parameter_counts_before_any_data():
    model = issue_network(input_shape=(1, 28, 28))
    shapes = []
    shape = model.input_shape
    for layer in model.layers:
        shape = layer.output_shape(shape)
        shapes.append(shape)
    assert shapes == [(32, 26, 26), (32, 26, 26), (32, 13, 13), (64, 11, 11), (64, 11, 11),
                      (64, 5, 5), (1600,), (128,), (128,), (10,)]
    assert [layer.num_params for layer in model.layers] == [320, 0, 0, 18496, 0, 0, 0,
                                                            204928, 0, 1290]
    assert model.num_params == 225034
    summary = model.summary()
    assert "(N, 32, 26, 26)" in summary and "(N, 64, 5, 5)" in summary
    assert "18,496" in summary and "total parameters: 225,034" in summary
    assert model.output_shape() == (10,)


def test_a_dense_size_mismatch_after_flatten_is_a_shape_error_at_construction():
    with pytest.raises(ShapeError) as info:
        issue_network(dense_in=1024, input_shape=(1, 28, 28))
    message = str(info.value)
    assert "layer 7 Dense(in_features=1024" in message
    assert "layer 6 Flatten()" in message
    assert "(1024,)" in message and "(1600,)" in message
    assert "the size that fits here is (1600,) (Dense(1600, 128))" in message
    assert isinstance(info.value, ValueError)  # ShapeError stays a ValueError


@pytest.mark.parametrize(("input_shape", "match"), [
    ((28, 28), r"layer 0 Conv2D.*add the channel axis: x\[:, None\]"),
    ((3, 28, 28), r"layer 0 Conv2D.*expects 1 input channel"),
    ((1, 8, 8), r"layer 5 MaxPool2D.*cannot take the output of layer 4 ReLU\(\) of size "
                r"\(64, 1, 1\).*smaller than the window 2x2"),
])
def test_image_shape_errors_at_construction_name_the_layer(input_shape, match):
    with pytest.raises(ShapeError, match=match):
        issue_network(input_shape=input_shape)


def test_model_without_input_shape_is_checked_from_the_first_dense():
    model = issue_network()  # shapes unknown until the Dense layer
    assert model.input_shape is None
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    assert model.predict_logits(x).shape == (2, 10)


@pytest.mark.parametrize("training", [True, False])
def test_tiny_issue_network_gradchecks_end_to_end(training):
    model = tiny_network()
    x = np.random.default_rng(1).standard_normal((3, 1, 12, 12))
    errors = gradcheck.check_model(model, x, np.array([0, 2, 1]), training=training)
    assert set(errors) >= {"input", "0.W", "0.b", "3.W", "3.b", "7.W", "9.b"}
    assert max(errors.values()) < 1e-6


@pytest.mark.parametrize("training", [True, False])
def test_network_with_every_image_layer_gradchecks(training):
    model = Sequential([
        Reshape((2, 7, 8)), Conv2D(2, 3, 3, padding="same"), BatchNorm2d(3), Tanh(),
        AvgPool2D(2, stride=1, padding=1), Conv2D(3, 4, (2, 3), stride=2, dilation=(1, 2)),
        Dropout(0.3), MaxPool2D(2, stride=1), GlobalAvgPool2D(), Dense(4, 3),
    ], loss="cross_entropy", input_shape=(112,), dtype="float64", seed=1)
    assert model.output_shape() == (3,)
    x = np.random.default_rng(2).standard_normal((2, 112))
    errors = gradcheck.check_model(model, x, np.array([1, 2]), training=training)
    assert max(errors.values()) < 1e-6


def test_training_skips_the_first_conv_input_gradient_and_matches_full_backward():
    model = tiny_network()
    x = np.random.default_rng(3).standard_normal((4, 1, 12, 12))
    y = np.array([0, 1, 2, 1])
    model.loss_and_grad(x, y)  # input_grad=False: backward_params on the first conv
    skipped = model.flat_grads.copy()
    model.loss.forward(model.forward(x, training=True), y)
    assert model.backward(model.loss.backward(), input_grad=True).shape == x.shape
    np.testing.assert_array_equal(model.flat_grads, skipped)


def test_fit_on_digits_learns_and_is_reproducible():
    images, labels = load_digits(scale=True)
    x, y = images[:400, None], labels[:400]

    def train():
        model = Sequential([Conv2D(1, 8, 3, padding=1, init="he_normal"), ReLU(),
                            MaxPool2D(2), Flatten(), Dense(8 * 4 * 4, 10)],
                           loss="cross_entropy", input_shape=(1, 8, 8), seed=0)
        history = model.fit(x, y, epochs=10, batch_size=32, optimizer=Adam(lr=1e-2),
                            verbose=0, seed=0)
        return model, history

    model, history = train()
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert model.evaluate(images[400:600, None], labels[400:600])["accuracy"] > 0.8
    again, _ = train()
    np.testing.assert_array_equal(again.flat_params, model.flat_params)


def test_predict_in_large_batches_equals_small_batches():
    model = issue_network(input_shape=(1, 28, 28), seed=0)
    x = np.random.default_rng(4).random((300, 1, 28, 28), dtype=np.float32)
    # 300 images exceed the evaluation column budget of the second conv: blocks inside
    np.testing.assert_allclose(model.predict_logits(x, batch_size=300),
                               model.predict_logits(x, batch_size=7), rtol=2e-5, atol=2e-5)


def test_config_state_and_model_file_round_trip(tmp_path):
    model = tiny_network(dtype="float32", seed=5)
    x = np.random.default_rng(5).random((3, 1, 12, 12), dtype=np.float32)
    clone = Sequential.from_config(model.get_config())
    clone.load_state_dict(copy.deepcopy(model.state_dict()))
    np.testing.assert_array_equal(clone.predict_logits(x), model.predict_logits(x))
    path = io.save(model, tmp_path / "cnn.npz")
    loaded = io.load(path)
    np.testing.assert_array_equal(loaded.predict_logits(x), model.predict_logits(x))
    assert [type(layer).__name__ for layer in loaded.layers] == \
        [type(layer).__name__ for layer in model.layers]


def test_trace_runs_on_a_cnn():
    model = tiny_network(seed=6)
    x = np.random.default_rng(6).standard_normal((2, 1, 12, 12))
    text = str(model.trace(x, np.array([0, 1])))
    assert "0 Conv2D" in text and "(2, 2, 10, 10)" in text and "3 Conv2D d/dW" in text
