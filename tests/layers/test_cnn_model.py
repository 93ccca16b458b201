"""Convolutional networks in a Sequential: shapes before data, errors, end-to-end gradients."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from numnet import gradcheck, io
from numnet.callbacks import LambdaCallback
from numnet.data import load_digits
from numnet.errors import ShapeError, TrainingDiverged
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


def every_image_layer(seed=1):
    """A float32 model with every image layer, for files and descriptions."""
    return Sequential([
        Reshape((2, 7, 8)), Conv2D(2, 3, 3, padding="same"), BatchNorm2d(3), ReLU(),
        AvgPool2D(2, stride=1, padding=1), Conv2D(3, 4, (2, 3), stride=2, dilation=(1, 2)),
        Dropout(0.3), MaxPool2D(2, stride=1), GlobalAvgPool2D(), Dense(4, 3),
    ], loss="cross_entropy", input_shape=(112,), seed=seed)


def test_model_file_keeps_weights_statistics_and_optimizer_and_training_resumes(tmp_path):
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((24, 112)).astype(np.float32), rng.integers(0, 3, 24)
    model, optimizer = every_image_layer(), Adam(lr=1e-2)
    model.fit(x, y, epochs=1, batch_size=8, optimizer=optimizer, verbose=0, seed=3)
    path = io.save(model, tmp_path / "cnn.npz", optimizer=optimizer)
    loaded, loaded_opt = io.load(path), io.load_optimizer(path)
    assert np.abs(loaded.layers[2].buffers["running_mean"]).max() > 0  # trained statistics
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[key], value, err_msg=key)
    np.testing.assert_array_equal(loaded.predict_logits(x), model.predict_logits(x))
    # the same next epoch from the file as from memory, bit for bit
    model.fit(x, y, epochs=1, batch_size=8, optimizer=optimizer, verbose=0, seed=4)
    loaded.fit(x, y, epochs=1, batch_size=8, optimizer=loaded_opt, verbose=0, seed=4)
    np.testing.assert_array_equal(loaded.flat_params, model.flat_params)


def test_architecture_json_describes_every_image_layer(tmp_path):
    model = every_image_layer()
    path = io.save_architecture(model, tmp_path / "cnn.json")
    rebuilt = io.load_architecture(path)
    assert rebuilt.get_config() == model.get_config()
    assert rebuilt.summary() == model.summary()
    np.testing.assert_array_equal(rebuilt.flat_params, model.flat_params)  # same seed
    assert "numnet.Conv2D" in path.read_text() and '"padding": "same"' in path.read_text()


@pytest.mark.parametrize("input_shape", [(1, 28, 28), None])
def test_images_without_a_channel_axis_are_refused_saying_how_to_add_it(input_shape):
    model = issue_network(input_shape=input_shape, seed=0)
    images, labels = np.zeros((4, 28, 28), np.float32), np.zeros(4, np.int64)
    for call in (model.predict, model.predict_proba, lambda x: model.evaluate(x, labels),
                 lambda x: model.fit(x, labels, verbose=0)):
        with pytest.raises(ShapeError, match=r"add (it with|the channel axis:) x\[:, None\]"):
            call(images)
    if input_shape is not None:  # flat rows and channels-last images get their fix too
        with pytest.raises(ShapeError, match=r"x.reshape\(N, 1, 28, 28\), or put "
                                             r"Reshape\(\(1, 28, 28\)\) first"):
            model.predict(images.reshape(4, 784))
        with pytest.raises(ShapeError, match=r"channels-last .* x.transpose\(0, 3, 1, 2\)"):
            model.fit(images[..., None], labels, verbose=0)


def test_summary_without_an_input_shape_asks_for_image_axes():
    with pytest.raises(ValueError, match=r"input_shape=\(1, height, width\), e.g. "
                                         r"\(1, 28, 28\)"):
        issue_network().summary()
    with pytest.raises(ValueError, match=r"input_shape=\(channels, height, width\)"):
        Sequential([MaxPool2D(2), Flatten(), Dense(4, 2)]).summary()
    with pytest.raises(ValueError, match=r"input_shape=\(features,\)"):
        Sequential([ReLU(), Dense(4, 2)]).summary()


def test_trace_of_a_cnn_names_every_layer_and_parameter_gradient():
    model = tiny_network(seed=6)
    x = np.random.default_rng(6).standard_normal((2, 1, 12, 12))
    trace = model.trace(x, np.array([0, 1]))
    names = [row[0] for row in trace.forward_rows]
    assert names[0] == "input" and names[1] == "0 Conv2D" and names[-1] == "9 Dense"
    assert [row[1] for row in trace.forward_rows][1:4] == [(2, 2, 10, 10), (2, 2, 10, 10),
                                                          (2, 2, 5, 5)]
    back = {row[0]: row for row in trace.backward_rows}
    assert back["0 Conv2D d/dW"][1] == (2, 1, 3, 3) and back["0 Conv2D d/dW"][2] > 0
    assert back["3 Conv2D d/dinput"][1] == (2, 2, 5, 5)
    before = model.flat_params.copy()
    model.trace(x, np.array([0, 1]))
    np.testing.assert_array_equal(model.flat_params, before)  # on a copy


def diverge(model, x, y, **fit_kwargs):
    weights = []
    snapshot = LambdaCallback(on_batch_end=lambda batch, logs: weights.append(
        model.flat_params.copy()))
    with pytest.raises(TrainingDiverged) as info:
        model.fit(x, y, verbose=0, callbacks=[snapshot], shuffle=False, **fit_kwargs)
    return str(info.value), weights


def test_a_cnn_whose_convolution_overflows_stops_naming_the_layer():
    model = tiny_network(dtype="float32", seed=0)
    x = np.random.default_rng(0).random((8, 1, 12, 12), dtype=np.float32)
    y = np.arange(8) % 3
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    model.layers[0].params["W"][...] = 3e38  # the sums of the next forward pass overflow
    before = model.flat_params.copy()
    message, weights = diverge(model, x, y, epochs=2, batch_size=4)
    assert message.startswith("training diverged in epoch 1/2, batch 1/2: the output of "
                              "layer 0 Conv2D(in_channels=1, out_channels=2, kernel_size=3")
    assert weights == []
    np.testing.assert_array_equal(model.flat_params, before)


def test_a_cnn_whose_batch_norm_statistics_overflow_stops_and_keeps_them():
    model = Sequential([Conv2D(1, 2, 3), BatchNorm2d(2), ReLU(), GlobalAvgPool2D(),
                        Dense(2, 2)], loss="cross_entropy", input_shape=(1, 5, 5), seed=0)
    x = np.random.default_rng(1).random((4, 1, 5, 5), dtype=np.float32)
    y = np.array([0, 1, 0, 1])
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    running = {k: v.copy() for k, v in model.layers[1].buffers.items()}
    x[2, 0, 1, 1] = 1e25  # finite, but its square overflows float32 in the batch variance
    message, _ = diverge(model, x, y, epochs=1, batch_size=4)
    assert "epoch 1/1, batch 1/1" in message and "layer 1 BatchNorm2d" in message
    for key, value in running.items():
        np.testing.assert_array_equal(model.layers[1].buffers[key], value)
