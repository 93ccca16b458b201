"""Gradient checks, worked examples and error paths for the core layers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numnet import gradcheck
from numnet.errors import ShapeError
from numnet.layers import (
    Dense,
    Flatten,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)

ACTIVATIONS = [ReLU, lambda: LeakyReLU(0.1), Sigmoid, Tanh, Softmax, Identity]
WORST: dict[str, float] = {}


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _record(name: str, errors: dict[str, float]) -> None:
    for tensor, err in errors.items():
        key = f"{name}.{tensor}"
        WORST[key] = max(WORST.get(key, 0.0), err)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("batch", [1, 2, 7])
def test_dense_gradcheck(training, batch):
    layer = Dense(5, 3, seed=1)
    errors = gradcheck.check_layer(layer, _x((batch, 5)), training=training)
    assert set(errors) == {"input", "W", "b"}
    assert max(errors.values()) < 1e-6
    _record("Dense", errors)


def test_dense_without_bias_gradcheck():
    layer = Dense(4, 2, bias=False, seed=0)
    assert set(layer.params) == {"W"}
    assert max(gradcheck.check_layer(layer, _x((3, 4))).values()) < 1e-6


@pytest.mark.parametrize("make", ACTIVATIONS)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(1, 4), (6, 3), (2, 3, 5)])
def test_activation_gradcheck(make, training, shape):
    layer = make()
    errors = gradcheck.check_layer(layer, _x(shape, seed=len(shape)), training=training)
    assert errors["input"] < 1e-6
    _record(type(layer).__name__, errors)


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 6), features=st.integers(1, 6), out=st.integers(1, 5),
       seed=st.integers(0, 2**16))
def test_dense_gradcheck_random_shapes(batch, features, out, seed):
    layer = Dense(features, out, seed=seed)
    errors = gradcheck.check_layer(layer, _x((batch, features), seed), training=True)
    assert max(errors.values()) < 1e-6


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=2, max_size=4), seed=st.integers(0, 2**16),
       which=st.integers(0, len(ACTIVATIONS) - 1))
def test_activation_gradcheck_random_shapes(shape, seed, which):
    x = _x(tuple(shape), seed)
    x[np.abs(x) < 1e-3] = 0.5  # keep away from ReLU's kink, where no derivative exists
    assert gradcheck.check_layer(ACTIVATIONS[which](), x)["input"] < 1e-6


def test_flatten_gradcheck_and_shapes():
    layer = Flatten()
    x = _x((2, 3, 4, 5))
    assert layer.forward(x).shape == (2, 60)
    assert layer.output_shape((3, 4, 5)) == (60,)
    assert gradcheck.check_layer(layer, x)["input"] < 1e-6


def test_dense_worked_example():
    layer = Dense(2, 2, dtype="float64")
    layer.params["W"][...] = [[1.0, 2.0], [3.0, 4.0]]
    layer.params["b"][...] = [0.5, -0.5]
    y = layer.forward(np.array([[1.0, 1.0], [0.0, 2.0]]))
    np.testing.assert_allclose(y, [[4.5, 5.5], [6.5, 7.5]])
    dx = layer.backward(np.array([[1.0, 0.0], [0.0, 1.0]]))
    np.testing.assert_allclose(dx, [[1.0, 3.0], [2.0, 4.0]])
    np.testing.assert_allclose(layer.grads["W"], [[1.0, 0.0], [1.0, 2.0]])
    np.testing.assert_allclose(layer.grads["b"], [1.0, 1.0])


def test_relu_and_softmax_worked_examples():
    # the seeds' unit tests, with their expected values
    x = np.array([[1.0, 2.0, -2.0, -3.0], [-2, -2, 1, 0.1]])
    np.testing.assert_allclose(ReLU().forward(x), [[1, 2, 0, 0], [0, 0, 1, 0.1]])
    probs = Softmax().forward(np.array([[-3.44, 1.16, -0.81, 3.91]]))
    np.testing.assert_allclose(probs, [[0.0006, 0.0596, 0.0083, 0.9315]], atol=1e-4)
    # column-major in the seed; here each sample is a row
    z = np.array([[1.0, 2, 3, 4], [2, 2, 3, 4], [5, 5, 5, 4]]).T
    expected = np.array([[0.01714783, 0.0452785, 0.10650698, 0.33333333],
                         [0.04661262, 0.0452785, 0.10650698, 0.33333333],
                         [0.93623955, 0.909443, 0.78698604, 0.33333333]]).T
    np.testing.assert_allclose(Softmax().forward(z), expected, atol=1e-6)


def test_softmax_backward_is_the_full_jacobian():
    x = _x((1, 4))
    layer = Softmax(dtype="float64")
    y = layer.forward(x)[0]
    jacobian = np.diag(y) - np.outer(y, y)
    g = np.array([[0.3, -1.0, 2.0, 0.5]])
    np.testing.assert_allclose(layer.backward(g)[0], jacobian.T @ g[0], atol=1e-12)
    assert not np.allclose(layer.backward(g), g * y * (1 - y))  # not the element-wise form


def test_sigmoid_and_softmax_extremes_do_not_overflow():
    x = np.array([[-1e4, -800.0, 0.0, 800.0, 1e4]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = Sigmoid().forward(x)
        p = Softmax().forward(x)
    np.testing.assert_array_equal(y, [[0, 0, 0.5, 1, 1]])
    assert np.isfinite(p).all() and p[0, -1] == 1


def test_leaky_relu_values():
    y = LeakyReLU(0.2, dtype="float64").forward(np.array([[-2.0, 3.0]]))
    np.testing.assert_allclose(y, [[-0.4, 3.0]])


@pytest.mark.parametrize("make", ACTIVATIONS + [lambda: Dense(3, 3, seed=0), Flatten])
def test_backward_never_writes_into_its_argument(make):
    layer = make()
    x = _x((4, 3))
    layer.forward(x, training=True)
    grad = _x((4, 3), seed=5).astype(layer.dtype)
    before = grad.copy()
    layer.backward(grad)
    np.testing.assert_array_equal(grad, before)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("make", ACTIVATIONS + [lambda: Dense(3, 3, seed=0), Flatten])
def test_dtype_is_kept_through_forward_and_backward(make, dtype):
    layer = make().astype(dtype)
    y = layer(_x((4, 3)).astype(np.float64))  # the checked call casts float64 input
    assert y.dtype == np.dtype(dtype)
    assert layer.backward(np.ones_like(y)).dtype == np.dtype(dtype)
    assert all(g.dtype == np.dtype(dtype) for g in layer.grads.values())


@pytest.mark.parametrize("dtype, other", [("float32", np.float64), ("float64", np.float32)])
@pytest.mark.parametrize("make", ACTIVATIONS + [lambda: Dense(3, 3, seed=0), Flatten])
def test_a_gradient_of_another_dtype_is_cast_to_the_layers(make, dtype, other):
    layer = make().astype(dtype)
    y = layer(_x((4, 3)))
    assert layer.backward_checked(np.ones(y.shape, dtype=other)).dtype == np.dtype(dtype)


@pytest.mark.parametrize("make", ACTIVATIONS + [lambda: Dense(3, 3, seed=0), Flatten])
def test_a_gradient_of_the_wrong_shape_names_the_layer(make):
    layer = make()
    y = layer(_x((4, 3)), training=True)
    with pytest.raises(ShapeError, match=r"\.backward expects a gradient of the shape of its "
                                         rf"last output, \({y.shape[0]}, {y.shape[1]}\), "
                                         r"got \(3, 5\)"):
        layer.backward_checked(np.ones((3, 5)))
    with pytest.raises(RuntimeError, match=r"backward_checked called before the layer was "
                                           r"called on an input \(y = layer\(x\)\)"):
        make().backward_checked(np.ones((4, 3)))


def test_dense_rejects_wrong_rank_and_size():
    layer = Dense(4, 2)
    with pytest.raises(ShapeError, match=r"rank 2.*\(3, 2, 2\)"):
        layer(np.zeros((3, 2, 2)))
    with pytest.raises(ShapeError, match=r"\(N, 4\), got \(3, 5\)"):
        layer(np.zeros((3, 5)))
    with pytest.raises(ShapeError, match="4 input features"):
        layer.output_shape((5,))


@pytest.mark.parametrize("args", [(0, 3), (3, -1), (2.5, 3), (True, 3)])
def test_dense_rejects_bad_sizes(args):
    with pytest.raises(ValueError, match="positive integer"):
        Dense(*args)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="unknown initialiser 'bogus'"):
        Dense(2, 2, init="bogus")
    with pytest.raises(ValueError, match="unsupported dtype int32"):
        Dense(2, 2, dtype="int32")
    with pytest.raises(ValueError, match="alpha must be in"):
        LeakyReLU(-1)
    with pytest.raises(ValueError, match="must be a number"):
        LeakyReLU("a lot")


def test_backward_before_forward_is_a_clear_error():
    with pytest.raises(RuntimeError, match="before forward"):
        Dense(2, 2).backward(np.zeros((1, 2)))
    with pytest.raises(RuntimeError, match="before forward"):
        ReLU().backward(np.zeros((1, 2)))


def test_same_seed_same_weights():
    a, b, c = Dense(8, 4, seed=3), Dense(8, 4, seed=3), Dense(8, 4, seed=4)
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert not np.array_equal(a.params["W"], c.params["W"])


def test_worst_gradcheck_errors_are_tiny():
    """Runs last in this module: every check above stayed far below the tolerance."""
    assert WORST, "no gradient check recorded"
    assert max(WORST.values()) < 1e-6


@pytest.mark.parametrize("bias", [True, False])
def test_dense_backward_params_fills_the_same_gradients_as_backward(bias):
    rng = np.random.default_rng(7)
    layer = Dense(5, 3, bias=bias, dtype="float64", seed=7)
    x, g = rng.standard_normal((4, 5)), rng.standard_normal((4, 3))
    layer.forward(x, training=True)
    dx = layer.backward(g)
    full = {k: v.copy() for k, v in layer.grads.items()}
    for v in layer.grads.values():
        v.fill(np.nan)
    assert layer.backward_params(g) is None
    for key, value in full.items():
        np.testing.assert_array_equal(layer.grads[key], value)
    np.testing.assert_allclose(dx, g @ layer.params["W"].T)
