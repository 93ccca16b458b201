"""MaxPool2D, AvgPool2D, GlobalAvgPool2D: gradient checks, loop references, PyTorch, ties."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from numnet import gradcheck
from numnet.errors import ShapeError
from numnet.layers import AvgPool2D, GlobalAvgPool2D, MaxPool2D

# (kernel, stride, padding, (H, W), batch): kernel sizes {1, 2, 3, 5}, strides {None (the
# kernel), 1, 2, 3}, paddings {0, 1, 2} up to half the kernel, odd and even sizes
GRID = [
    (1, None, 0, (3, 5), 2),
    (1, 2, 0, (5, 4), 1),
    (2, None, 0, (6, 6), 2),  # the fast path, divisible
    (2, None, 0, (7, 5), 1),  # the fast path, with rows and columns left over
    (2, 1, 1, (5, 5), 1),
    (2, 3, 1, (7, 8), 2),
    (3, None, 0, (9, 7), 1),
    (3, 1, 1, (5, 7), 2),
    (3, 2, 1, (7, 7), 1),
    (3, 2, 0, (8, 9), 1),
    (5, 1, 2, (5, 5), 1),
    (5, 3, 2, (11, 9), 2),
    (5, None, 0, (11, 10), 1),
    ((2, 3), (1, 2), (1, 1), (5, 7), 1),
    ((3, 2), None, (1, 0), (7, 6), 1),
]
IDS = [f"k{k}-s{s}-p{p}-{h}x{w}-n{n}".replace(" ", "") for k, s, p, (h, w), n in GRID]
POOLS = [MaxPool2D, AvgPool2D]


def _images(shape, seed=0, last=False):
    x = np.random.default_rng(seed).standard_normal(shape)
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2) if last else x


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def reference_pool(kind, x, k, s, p):
    """y and dL/dx for dL/dy = g, by loops over every output (first maximum on ties)."""
    kh, kw = _pair(k)
    sh, sw = _pair(k if s is None else s)
    ph, pw = _pair(p)
    fill = -np.inf if kind is MaxPool2D else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    n, c, hp, wp = xp.shape
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    y = np.zeros((n, c, oh, ow))
    winner = {}
    for idx in np.ndindex(n, c, oh, ow):
        i, ch, r, q = idx
        window = xp[i, ch, r * sh:r * sh + kh, q * sw:q * sw + kw]
        if kind is MaxPool2D:
            flat = int(np.argmax(window))  # the first maximum in scan order
            y[idx] = window.flat[flat]
            winner[idx] = (r * sh + flat // kw, q * sw + flat % kw)
        else:
            y[idx] = window.sum() / (kh * kw)

    def backward(g):
        dxp = np.zeros_like(xp)
        for idx in np.ndindex(n, c, oh, ow):
            i, ch, r, q = idx
            if kind is MaxPool2D:
                dxp[(i, ch, *winner[idx])] += g[idx]
            else:
                dxp[i, ch, r * sh:r * sh + kh, q * sw:q * sw + kw] += g[idx] / (kh * kw)
        return dxp[:, :, ph:hp - ph, pw:wp - pw]

    return y, backward


# -- gradient checks ------------------------------------------------------------------------
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize(("k", "s", "p", "hw", "n"), GRID, ids=IDS)
@pytest.mark.parametrize("pool", POOLS)
def test_pool_gradcheck(pool, k, s, p, hw, n, training):
    x = _images((n, 2, *hw), seed=hw[0] * 7 + n)  # distinct values: no ties within eps
    errors = gradcheck.check_layer(pool(k, s, p), x, training=training)
    assert errors["input"] < 1e-6


@pytest.mark.parametrize("training", [True, False])
def test_global_avg_pool_gradcheck(training):
    errors = gradcheck.check_layer(GlobalAvgPool2D(), _images((2, 3, 5, 7)), training=training)
    assert errors["input"] < 1e-6


# -- against loop references, both paths, both memory orders ------------------------------
@pytest.mark.parametrize("fast", [True, False], ids=["fast-path-allowed", "general-path"])
@pytest.mark.parametrize("last", [False, True], ids=["channels-first", "channels-last"])
@pytest.mark.parametrize(("k", "s", "p", "hw", "n"), GRID, ids=IDS)
@pytest.mark.parametrize("pool", POOLS)
def test_pool_matches_loop_reference(pool, k, s, p, hw, n, last, fast):
    layer = pool(k, s, p, dtype="float64")
    layer._use_fast_path = fast
    x = _images((n, 3, *hw), seed=1, last=last)
    y = layer.forward(x, training=True)
    y_ref, backward = reference_pool(pool, x, k, s, p)
    np.testing.assert_allclose(y, y_ref, rtol=1e-13, atol=1e-13)
    assert layer.output_shape(x.shape[1:]) == y.shape[1:]
    g = np.random.default_rng(2).standard_normal(y.shape)
    dx = layer.backward(g)
    np.testing.assert_allclose(dx, backward(g), rtol=1e-13, atol=1e-13)
    if last:  # the memory order is kept through forward and backward
        assert y.transpose(0, 2, 3, 1).flags.c_contiguous
        assert dx.strides[1] < dx.strides[3]


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize(("k", "hw"), [(2, (8, 8)), (2, (9, 7)), (3, (9, 11)), ((2, 3), (6, 9))])
def test_fast_path_equals_general_path(pool, k, hw):
    fast, general = pool(k, dtype="float64"), pool(k, dtype="float64")
    general._use_fast_path = False
    assert fast._fast() and not general._fast()
    # integer values: many ties, which both paths must route to the same input
    x = np.random.default_rng(3).integers(0, 3, (2, 4, *hw)).astype(np.float64)
    y = fast.forward(x)
    np.testing.assert_array_equal(y, general.forward(x))
    g = np.random.default_rng(4).standard_normal(y.shape)
    np.testing.assert_array_equal(fast.backward(g), general.backward(g))


# -- against PyTorch ----------------------------------------------------------------------
@pytest.mark.parametrize(("k", "s", "p", "hw", "n"), GRID, ids=IDS)
@pytest.mark.parametrize("pool", POOLS)
def test_pool_matches_torch(pool, k, s, p, hw, n):
    torch = pytest.importorskip("torch")
    functional = {MaxPool2D: torch.nn.functional.max_pool2d,
                  AvgPool2D: torch.nn.functional.avg_pool2d}[pool]
    layer = pool(k, s, p, dtype="float64")
    x = _images((n, 3, *hw), seed=5)
    y = layer.forward(x, training=True)
    xt = torch.tensor(x, requires_grad=True)
    yt = functional(xt, k, k if s is None else s, p)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(6).standard_normal(y.shape)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(layer.backward(g), xt.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("k", "s", "p"), [(2, None, 0), (3, 1, 1), (3, 2, 1), (2, 1, 0)])
def test_max_pool_ties_go_to_the_first_maximum_like_torch(k, s, p):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x = rng.integers(0, 2, (2, 3, 7, 7)).astype(np.float64)  # ties everywhere
    x[0, 0] = 1.0  # whole windows of one value
    layer = MaxPool2D(k, s, p, dtype="float64")
    y = layer.forward(x)
    g = rng.integers(-9, 10, y.shape).astype(np.float64)  # exact sums in any order
    xt = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool2d(xt, k, k if s is None else s, p).backward(torch.tensor(g))
    np.testing.assert_array_equal(layer.backward(g), xt.grad.numpy())


def test_max_pool_tie_worked_example():
    # every window holds two equal maxima; scan order is row by row, left to right
    x = np.array([[[[1.0, 5.0, 2.0, 2.0],
                    [5.0, 0.0, 0.0, 0.0],
                    [0.0, 0.0, 3.0, 1.0],
                    [4.0, 4.0, 3.0, 0.0]]]])
    layer = MaxPool2D(2, dtype="float64")
    np.testing.assert_array_equal(layer.forward(x), [[[[5.0, 2.0], [4.0, 3.0]]]])
    dx = layer.backward(np.array([[[[10.0, 20.0], [30.0, 40.0]]]]))
    np.testing.assert_array_equal(dx, [[[[0, 10, 20, 0], [0, 0, 0, 0],
                                         [0, 0, 40, 0], [30, 0, 0, 0]]]])


def test_max_pool_overlapping_windows_add_up():
    # stride 1: the centre 9 wins all four 2x2 windows and collects all four gradients
    x = np.array([[[[0.0, 1.0, 0.0], [2.0, 9.0, 3.0], [0.0, 4.0, 0.0]]]])
    layer = MaxPool2D(2, stride=1, dtype="float64")
    np.testing.assert_array_equal(layer.forward(x), [[[[9.0, 9.0], [9.0, 9.0]]]])
    dx = layer.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    np.testing.assert_array_equal(dx, [[[[0, 0, 0], [0, 10, 0], [0, 0, 0]]]])


def test_avg_pool_counts_padding_in_the_divisor():
    layer = AvgPool2D(3, stride=1, padding=1, dtype="float64")
    y = layer.forward(np.ones((1, 1, 3, 3)))
    # the corner window holds 4 ones and 5 zeros of padding: 4/9 (count_include_pad=True)
    assert y[0, 0, 0, 0] == pytest.approx(4 / 9)
    assert y[0, 0, 1, 1] == pytest.approx(1.0)


def test_global_avg_pool_values_and_shapes():
    x = _images((2, 3, 4, 5), seed=8, last=True)
    layer = GlobalAvgPool2D(dtype="float64")
    y = layer.forward(x)
    np.testing.assert_allclose(y, x.mean(axis=(2, 3)))
    assert layer.output_shape((3, 4, 5)) == (3,)
    dx = layer.backward(np.ones((2, 3)))
    np.testing.assert_allclose(dx, np.full(x.shape, 1 / 20))
    assert dx.strides[1] < dx.strides[3]  # channels-last like its input
    torch = pytest.importorskip("torch")
    xt = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
    g = np.random.default_rng(9).standard_normal((2, 3))
    torch.nn.functional.adaptive_avg_pool2d(xt, 1).reshape(2, 3).backward(torch.tensor(g))
    np.testing.assert_allclose(layer.backward(g), xt.grad.numpy(), rtol=1e-13, atol=1e-15)


def test_gradient_of_the_other_memory_order_is_accepted():
    for pool in POOLS:
        layer = pool(2, dtype="float64")
        y = layer.forward(_images((2, 3, 6, 6), seed=10, last=True))
        g = np.random.default_rng(10).standard_normal(y.shape)  # channels-first
        dx = layer.backward(g)
        dx_last = layer.backward(np.ascontiguousarray(g.transpose(0, 2, 3, 1))
                                 .transpose(0, 3, 1, 2))
        np.testing.assert_array_equal(dx, dx_last)


def test_float32_is_kept():
    for layer in (MaxPool2D(2), AvgPool2D(3, 2, 1), GlobalAvgPool2D()):
        x = _images((2, 3, 6, 6)).astype(np.float32)
        y = layer.forward(x, training=True)
        assert y.dtype == np.float32
        assert layer.backward(np.ones_like(y)).dtype == np.float32


def test_backward_works_on_a_copy_made_after_forward():
    layer = MaxPool2D(3, 2, 1, dtype="float64")
    y = layer.forward(_images((2, 2, 7, 7), seed=11))
    g = np.random.default_rng(11).standard_normal(y.shape)
    np.testing.assert_array_equal(copy.deepcopy(layer).backward(g), layer.backward(g))


# -- config and errors --------------------------------------------------------------------
@pytest.mark.parametrize("layer", [MaxPool2D(2), MaxPool2D((3, 2), (1, 2), (1, 0)),
                                   AvgPool2D(3, 1, 1, dtype="float64"), GlobalAvgPool2D()])
def test_config_round_trips_through_json(layer):
    config = json.loads(json.dumps(layer.get_config()))
    clone = type(layer)(**config)
    assert clone.get_config() == layer.get_config()
    x = _images((1, 2, 7, 7)).astype(layer.dtype)
    np.testing.assert_array_equal(clone.forward(x), layer.forward(x))


def test_stride_defaults_to_the_kernel():
    assert MaxPool2D(3).stride == (3, 3)
    assert MaxPool2D(2).output_shape((4, 28, 28)) == (4, 14, 14)
    assert AvgPool2D((2, 3)).output_shape((1, 7, 7)) == (1, 3, 2)


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize(("args", "match"), [
    ((0,), "kernel_size must be positive"),
    (((2, 2, 2),), "kernel_size must be an int or a pair"),
    ((2, 0), "stride must be positive"),
    ((2, 2, -1), "padding must be >= 0"),
    ((2, 2, 2), "padding must be at most half the kernel size"),
    ((3, 1, (1, 2)), "padding must be at most half the kernel size"),
])
def test_bad_arguments_are_rejected(pool, args, match):
    with pytest.raises(ValueError, match=match):
        pool(*args)


@pytest.mark.parametrize(("layer", "shape", "match"), [
    (MaxPool2D(2), (28, 28), r"add the channel axis: x\[:, None\]"),
    (AvgPool2D(2), (784,), r"Reshape\(\(1, 28, 28\)\)"),
    (MaxPool2D(3), (4, 2, 5), r"images of size 2x5 .* smaller than the window 3x3"),
    (GlobalAvgPool2D(), (16,), r"expects images of shape \(N, C, H, W\)"),
])
def test_output_shape_explains_bad_input(layer, shape, match):
    with pytest.raises(ShapeError, match=match):
        layer.output_shape(shape)
