"""The compiled paths (numba) of MaxPool2D and of Conv2D's col2im give the NumPy paths'
numbers bit for bit, and the environment chooses between them."""

from __future__ import annotations

import copy
import warnings
import weakref

import numpy as np
import pytest
import test_conv
from test_pooling import GRID, IDS, _images

from numnet import Sequential
from numnet.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, _fastpath
from numnet.optim import Adam

pytest.importorskip("numba")


def _pair_of_layers(k, s, p, dtype):
    compiled, reference = MaxPool2D(k, s, p, dtype=dtype), MaxPool2D(k, s, p, dtype=dtype)
    reference._use_compiled = False
    return compiled, reference


def _both(monkeypatch, compiled, reference, x, g_seed=0, training=True):
    """forward and backward of both layers; the compiled one must really be compiled."""
    monkeypatch.setenv("NUMNET_FAST", "1")
    assert compiled._kernels(x) is not None
    assert reference._kernels(x) is None
    y, y_ref = compiled.forward(x, training), reference.forward(x, training)
    # side-by-side windows in training: the winners come from the forward pass
    assert (compiled._arg is not None) == (training and compiled._disjoint)
    g = np.random.default_rng(g_seed).integers(-9, 10, y.shape).astype(x.dtype)
    return (y, compiled.backward(g)), (y_ref, reference.backward(g))


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("k", "s", "p", "hw", "n"), GRID, ids=IDS)
def test_compiled_max_pool_equals_numpy(monkeypatch, k, s, p, hw, n, dtype, training):
    x = _images((n, 5, *hw), seed=1, last=True).astype(dtype)
    x[:, :2] = np.round(x[:, :2])  # two channels full of ties
    compiled, reference = _pair_of_layers(k, s, p, dtype)
    (y, dx), (y_ref, dx_ref) = _both(monkeypatch, compiled, reference, x, training=training)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(dx, dx_ref)
    assert y.dtype == dx.dtype == np.dtype(dtype)
    assert y.transpose(0, 2, 3, 1).flags.c_contiguous  # channels-last, like the input
    assert dx.transpose(0, 2, 3, 1).flags.c_contiguous


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(("k", "s", "p"), [(2, None, 0), (3, 1, 1), (2, 2, 1)])
def test_compiled_max_pool_edge_values_route_like_numpy(monkeypatch, k, s, p, training):
    # NaN (no gradient routed), -inf windows (padding compares equal), +inf and zeros
    x = np.zeros((2, 3, 6, 6))
    x[0, 0, 0, 1] = np.nan
    x[0, 1] = -np.inf
    x[1, 2, 2:4, 2:4] = np.inf
    x[1, 0, 0, 0], x[1, 0, 1, 1] = 5.0, np.nan  # a NaN after the window's maximum
    x[0, 2, 0, 0] = -np.inf  # -inf first, zeros after
    x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    compiled, reference = _pair_of_layers(k, s, p, "float64")
    (y, dx), (y_ref, dx_ref) = _both(monkeypatch, compiled, reference, x, training=training)
    np.testing.assert_array_equal(y, y_ref)  # NaN where NaN
    np.testing.assert_array_equal(dx, dx_ref)


def test_gradient_in_channels_first_order_is_accepted(monkeypatch):
    monkeypatch.setenv("NUMNET_FAST", "1")
    layer = MaxPool2D(2, dtype="float64")
    y = layer.forward(_images((2, 3, 6, 6), seed=10, last=True))
    g = np.random.default_rng(10).standard_normal(y.shape)  # channels-first
    np.testing.assert_array_equal(
        layer.backward(g), layer.backward(np.ascontiguousarray(g.transpose(0, 2, 3, 1))
                                          .transpose(0, 3, 1, 2)))


def test_the_environment_and_the_size_choose_the_path(monkeypatch):
    layer = MaxPool2D(2)
    small = _images((1, 4, 6, 6), last=True).astype(np.float32)
    large = _images((16, 16, 16, 16), last=True).astype(np.float32)
    monkeypatch.delenv("NUMNET_FAST", raising=False)
    assert layer._kernels(small) is None and layer._kernels(large) is not None
    monkeypatch.setenv("NUMNET_FAST", "0")
    assert layer._kernels(large) is None
    monkeypatch.setenv("NUMNET_FAST", "1")
    assert layer._kernels(small) is not None
    assert layer._kernels(np.ascontiguousarray(large)) is None  # channels-first: NumPy
    assert layer._kernels(large.astype(np.float64)) is None  # not the layer's dtype
    monkeypatch.setenv("NUMNET_FAST", "maybe")
    with pytest.raises(ValueError, match="NUMNET_FAST='maybe' is not understood"):
        layer._kernels(large)


def test_missing_numba_warns_once_and_runs_numpy(monkeypatch):
    monkeypatch.setenv("NUMNET_FAST", "1")
    monkeypatch.setattr(_fastpath._State, "kernels", None)
    monkeypatch.setattr(_fastpath._State, "error", "ImportError: no numba")
    monkeypatch.setattr(_fastpath._State, "warned", False)
    layer = MaxPool2D(2)
    x = _images((2, 4, 6, 6), last=True).astype(np.float32)
    with pytest.warns(RuntimeWarning, match="numba cannot be used"):
        assert layer._kernels(x) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer.forward(x)


@pytest.mark.parametrize("last", [False, True], ids=["channels-first", "channels-last"])
@pytest.mark.parametrize(("k", "s", "p", "d", "hw", "n"), test_conv.GRID, ids=test_conv.IDS)
def test_compiled_col2im_equals_numpy(monkeypatch, k, s, p, d, hw, n, last):
    monkeypatch.setenv("NUMNET_FAST", "1")
    x = _images((n, 3, *hw), seed=1, last=last)
    compiled, reference = (Conv2D(3, 4, k, s, p, d, dtype="float64", seed=2) for _ in "ab")
    reference._use_compiled = False
    y = compiled.forward(x, training=True)
    np.testing.assert_array_equal(y, reference.forward(x, training=True))
    g = np.random.default_rng(2).standard_normal(y.shape)
    np.testing.assert_array_equal(compiled.backward(g), reference.backward(g))


def test_compiled_col2im_in_float32_and_the_kernel_really_runs(monkeypatch):
    monkeypatch.setenv("NUMNET_FAST", "1")
    calls = []
    kernels = _fastpath.spatial_kernels(1)
    monkeypatch.setattr(kernels, "col2im_add", lambda *a, f=kernels.col2im_add: (
        calls.append(1), f(*a))[1])
    x = _images((2, 8, 9, 9), seed=3, last=True).astype(np.float32)
    compiled, reference = (Conv2D(8, 6, 3, padding=1, seed=0) for _ in "ab")
    reference._use_compiled = False
    g = np.random.default_rng(4).standard_normal((2, 6, 9, 9)).astype(np.float32)
    compiled.forward(x, training=True)
    reference.forward(x, training=True)
    dx = compiled.backward(g)
    assert len(calls) == 9 and dx.dtype == np.float32
    np.testing.assert_array_equal(dx, reference.backward(g))


def test_kernel_threads_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("NUMNET_FAST", "1")
    monkeypatch.setenv("NUMNET_KERNEL_THREADS", "2")
    x = _images((4, 6, 8, 8), seed=5, last=True)
    y = MaxPool2D(2, dtype="float64").forward(x)  # split over (up to) two threads
    monkeypatch.setenv("NUMNET_KERNEL_THREADS", "1")
    np.testing.assert_array_equal(MaxPool2D(2, dtype="float64").forward(x), y)
    assert _fastpath._State.threads == 1
    monkeypatch.setenv("NUMNET_KERNEL_THREADS", "two")
    with pytest.raises(ValueError, match="NUMNET_KERNEL_THREADS='two' is not understood"):
        _fastpath.spatial_kernels(1)


def test_training_forward_of_side_by_side_windows_lets_x_go(monkeypatch):
    monkeypatch.setenv("NUMNET_FAST", "1")
    layer, reference = _pair_of_layers(2, None, 0, "float64")
    x = _images((2, 4, 7, 7), seed=12, last=True)
    y = layer.forward(x, training=True)
    reference.forward(x.copy(order="K"), training=True)
    alive = weakref.ref(x)
    del x
    assert alive() is None  # the winners are recorded: the input's memory is free
    g = np.random.default_rng(12).standard_normal(y.shape)
    monkeypatch.setenv("NUMNET_FAST", "0")  # backward still uses the recorded winners
    np.testing.assert_array_equal(layer.backward(g), reference.backward(g))
    np.testing.assert_array_equal(copy.deepcopy(layer).backward(g), reference.backward(g))


def test_a_cnn_trains_bit_for_bit_alike_on_both_paths(monkeypatch):
    rng = np.random.default_rng(13)
    x = rng.random((8, 1, 14, 14), dtype=np.float32)
    y = rng.integers(0, 3, 8)
    weights = {}
    for fast in ("0", "1"):
        monkeypatch.setenv("NUMNET_FAST", fast)
        model = Sequential([Conv2D(1, 4, 3), ReLU(), MaxPool2D(2), Conv2D(4, 6, 3), ReLU(),
                            MaxPool2D(2), Flatten(), Dense(24, 3)],
                           loss="cross_entropy", input_shape=(1, 14, 14), seed=0)
        optimizer = Adam(lr=1e-2)
        for _ in range(3):
            model.loss_and_grad(x, y)
            optimizer.step(model)
        assert (model.layers[2]._arg is not None) == (fast == "1")  # the path really taken
        weights[fast] = [p.copy() for layer in model.layers for p in layer.params.values()]
    for numpy_param, compiled_param in zip(weights["0"], weights["1"], strict=True):
        np.testing.assert_array_equal(numpy_param, compiled_param)
