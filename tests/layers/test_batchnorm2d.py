"""BatchNorm2d: gradient checks, PyTorch (values, gradients, running statistics), errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from numnet import gradcheck
from numnet.errors import ShapeError
from numnet.layers import BatchNorm1d, BatchNorm2d


def _images(shape, seed=0, last=False):
    x = 2 * np.random.default_rng(seed).standard_normal(shape) + 0.5
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2) if last else x


def _randomised(channels, seed):
    layer = BatchNorm2d(channels, dtype="float64")
    rng = np.random.default_rng(seed)
    layer.params["gamma"][...] = rng.uniform(0.5, 2.0, channels) * rng.choice([-1, 1], channels)
    layer.params["beta"][...] = rng.standard_normal(channels)
    layer.buffers["running_mean"][...] = rng.standard_normal(channels)
    layer.buffers["running_var"][...] = rng.uniform(0.2, 3.0, channels)
    return layer


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(1, 3, 3, 5), (2, 1, 3, 3), (3, 4, 2, 1), (2, 2, 5, 3)])
def test_batchnorm2d_gradcheck(shape, training):
    layer = _randomised(shape[1], seed=sum(shape))
    errors = gradcheck.check_layer(layer, _images(shape, seed=shape[0]), training=training)
    assert set(errors) == {"input", "gamma", "beta"}
    assert max(errors.values()) < 1e-6


@pytest.mark.parametrize("last", [False, True], ids=["channels-first", "channels-last"])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm2d_matches_torch(training, last):
    torch = pytest.importorskip("torch")
    layer = _randomised(3, seed=1)
    ref = torch.nn.BatchNorm2d(3, momentum=0.1, eps=1e-5, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(layer.params["gamma"]))
        ref.bias.copy_(torch.tensor(layer.params["beta"]))
        ref.running_mean.copy_(torch.tensor(layer.buffers["running_mean"]))
        ref.running_var.copy_(torch.tensor(layer.buffers["running_var"]))
    ref.train(training)
    x = _images((4, 3, 5, 6), seed=2, last=last)
    y = layer.forward(x, training=training)
    xt = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
    yt = ref(xt)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(3).standard_normal(y.shape)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(layer.backward(g), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["gamma"], ref.weight.grad.numpy(), rtol=1e-11)
    np.testing.assert_allclose(layer.grads["beta"], ref.bias.grad.numpy(), rtol=1e-11)
    # running statistics: PyTorch's momentum, unbiased variance with n = N * H * W
    np.testing.assert_allclose(layer.buffers["running_mean"], ref.running_mean.numpy(),
                               rtol=1e-13)
    np.testing.assert_allclose(layer.buffers["running_var"], ref.running_var.numpy(),
                               rtol=1e-13)
    if last:
        assert y.transpose(0, 2, 3, 1).flags.c_contiguous


def test_running_statistics_worked_example():
    x = np.arange(2 * 1 * 2 * 2, dtype=np.float64).reshape(2, 1, 2, 2)  # 0..7
    layer = BatchNorm2d(1, momentum=0.5, dtype="float64")
    layer.forward(x, training=True)
    # mean 3.5, biased var 5.25, unbiased 6.0 (n = 8)
    np.testing.assert_allclose(layer.buffers["running_mean"], [0.5 * 0 + 0.5 * 3.5])
    np.testing.assert_allclose(layer.buffers["running_var"], [0.5 * 1 + 0.5 * 6.0])


def test_shares_batchnorm1d_maths_on_a_one_pixel_image():
    x = np.random.default_rng(4).standard_normal((5, 3))
    two_d, one_d = _randomised(3, seed=5), BatchNorm1d(3, dtype="float64")
    for mine, theirs in ((one_d.params, two_d.params), (one_d.buffers, two_d.buffers)):
        for key, value in theirs.items():
            mine[key][...] = value
    for training in (True, False):
        y1 = one_d.forward(x, training=training)
        y2 = two_d.forward(x[:, :, None, None], training=training)
        np.testing.assert_allclose(y2[:, :, 0, 0], y1, rtol=1e-14)
        g = np.random.default_rng(6).standard_normal(x.shape)
        np.testing.assert_allclose(two_d.backward(g[:, :, None, None])[:, :, 0, 0],
                                   one_d.backward(g), rtol=1e-13)
        np.testing.assert_allclose(two_d.grads["gamma"], one_d.grads["gamma"], rtol=1e-13)


def test_one_image_trains_one_value_per_channel_does_not():
    layer = BatchNorm2d(2)
    assert layer.min_train_batch == 1
    assert layer.forward(_images((1, 2, 3, 3)).astype(np.float32), training=True).shape == \
        (1, 2, 3, 3)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        layer(np.ones((1, 2, 1, 1), dtype=np.float32), training=True)  # the checked path


def test_config_round_trips_and_shapes():
    layer = BatchNorm2d(8, momentum=0.2, eps=1e-3, dtype="float64")
    clone = BatchNorm2d(**json.loads(json.dumps(layer.get_config())))
    assert clone.get_config() == layer.get_config()
    assert layer.output_shape((8, 5, 7)) == (8, 5, 7)
    assert layer.input_shape is None


@pytest.mark.parametrize(("shape", "match"), [
    ((8,), r"expects images of shape \(N, 8, H, W\)"),
    ((5, 5), r"without a channel axis"),
    ((4, 5, 5), r"expects 8 input channel\(s\), got input shape \(N, 4, 5, 5\)"),
])
def test_output_shape_explains_bad_input(shape, match):
    with pytest.raises(ShapeError, match=match):
        BatchNorm2d(8).output_shape(shape)


@pytest.mark.parametrize("kwargs", [{"num_features": 0}, {"num_features": 2, "momentum": 2},
                                    {"num_features": 2, "eps": 0}])
def test_bad_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError):
        BatchNorm2d(**kwargs)
