"""The gradient checker itself: it must catch wrong gradients and name the tensor."""

from __future__ import annotations

import numpy as np
import pytest

from numnet import gradcheck
from numnet.layers import BatchNorm1d, Conv2D, Dense, Flatten, LayerNorm, MaxPool2D, ReLU
from numnet.losses import MeanSquaredError
from numnet.model import Sequential


class BrokenDense(Dense, register=False):
    """dW deliberately off by a factor of two (kept out of the registry, whose every layer
    must pass its gradient checks)."""

    def backward(self, grad_out):
        grad_in = super().backward(grad_out)
        self.grads["W"] *= 2
        return grad_in


class ElementwiseSoftmaxLoss(MeanSquaredError, register=False):
    """Backward forgets the 2/D factor (kept out of the registry, as BrokenDense)."""

    def backward(self):
        return super().backward() * 3


def test_numerical_gradient_of_a_known_function():
    x = np.array([1.0, -2.0, 3.0])
    grad = gradcheck.numerical_gradient(lambda: float(np.sum(x ** 3)), x)
    np.testing.assert_allclose(grad, 3 * x ** 2, rtol=1e-8)
    np.testing.assert_array_equal(x, [1.0, -2.0, 3.0])  # restored


def test_relative_error():
    assert gradcheck.relative_error(np.zeros(3), np.zeros(3)) == 0
    assert gradcheck.relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.2])) == pytest.approx(
        0.2 / 2.2)
    with pytest.raises(ValueError, match="shape mismatch"):
        gradcheck.relative_error(np.zeros(2), np.zeros(3))


def test_a_wrong_parameter_gradient_is_named():
    with pytest.raises(gradcheck.GradientCheckError, match=r"in W: "):
        gradcheck.check_layer(BrokenDense(3, 2, seed=0), np.ones((2, 3)))


def test_a_wrong_loss_gradient_is_caught():
    with pytest.raises(gradcheck.GradientCheckError, match="prediction"):
        gradcheck.check_loss(ElementwiseSoftmaxLoss(), np.ones((2, 2)), np.zeros((2, 2)))


def test_a_correct_layer_passes_and_returns_each_tensor():
    errors = gradcheck.check_layer(ReLU(), np.array([[1.0, -2.0, 0.5]]))
    assert list(errors) == ["input"] and errors["input"] < 1e-9


def test_check_layer_does_not_touch_the_original():
    layer = Dense(3, 2, seed=0)
    before = layer.params["W"].copy()
    gradcheck.check_layer(layer, np.ones((2, 3)))
    assert layer.dtype == np.float32
    np.testing.assert_array_equal(layer.params["W"], before)


def test_a_tiny_true_gradient_is_not_failed_by_rounding():
    """LayerNorm over 5 features of one row: at eps=1e-6 rounding alone gives ~3e-6."""
    x = np.array([[0.12573022, -0.13210486, 0.64042265, 0.10490012, -0.53566937]])
    layer = LayerNorm(5)
    errors = gradcheck.check_layer(layer, x, training=True)
    assert errors["input"] < 1e-6
    # measured at the single step eps=1e-6, the same correct gradient misses the tolerance
    layer64 = LayerNorm(5, dtype="float64")
    probe = np.random.default_rng(0).standard_normal((1, 5))
    x = x.copy()

    def f() -> float:
        return float(np.sum(layer64.forward(x, training=True) * probe))

    f()
    analytic = layer64.backward(probe)
    single = gradcheck.relative_error(analytic, gradcheck.numerical_gradient(f, x, 1e-6))
    assert single > 1e-6


def test_a_bias_before_batch_norm_has_a_zero_gradient_and_passes():
    """Its true gradient is exactly 0, so analytic and numerical are both rounding noise."""
    rng = np.random.default_rng(0)
    model = Sequential([Dense(5, 8), BatchNorm1d(8), ReLU(), Dense(8, 3)],
                       loss="cross_entropy", dtype="float64", seed=0)
    errors = gradcheck.check_model(model, rng.standard_normal((6, 5)), rng.integers(0, 3, 6))
    assert errors["0.b"] <= 1e-6


def test_the_zero_gradient_floor_still_catches_a_wrong_tiny_gradient():
    assert gradcheck.relative_error(np.array([1e-7]), np.array([0.0]), floor=1e-4) > 1e-6
    assert gradcheck.relative_error(np.array([1e-12]), np.array([3e-12]), floor=1e-4) < 1e-6


def test_channels_last_inputs_are_checked_on_a_contiguous_copy():
    # a convolution's output is channels-last in memory; the layers after it, and a model
    # given such an array, must be checkable on it (the checker perturbs a private copy)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((2, 3, 5, 4)).transpose(0, 3, 1, 2)  # (2, 4, 3, 5)
    assert not images.flags.c_contiguous
    for layer in (ReLU(), MaxPool2D(2, stride=1), Flatten()):
        assert max(gradcheck.check_layer(layer, images).values()) < 1e-6
    model = Sequential([Conv2D(4, 2, 2), ReLU(), Flatten(), Dense(2 * 2 * 4, 3)],
                       loss="cross_entropy", dtype="float64", seed=0)
    errors = gradcheck.check_model(model, images, np.array([0, 2]))
    assert max(errors.values()) < 1e-6


def test_the_worst_element_is_reported_with_both_values():
    layer = BrokenDense(3, 2, seed=0)
    x = np.random.default_rng(0).standard_normal((4, 3))
    with pytest.raises(gradcheck.GradientCheckError) as info:
        gradcheck.check_layer(layer, x)
    check = info.value.details["W"]
    assert set(info.value.details) == {"W"}
    assert check.analytic == pytest.approx(2 * check.numerical, rel=1e-6)
    # dW is doubled, so the worst element is where the true gradient is largest
    correct = Dense(3, 2, seed=0).astype(np.float64)
    probe = np.random.default_rng(0).standard_normal((4, 2))  # check_layer's probe, seed 0
    correct(x)
    correct.backward(probe)
    true_dw = correct.grads["W"]
    assert check.index == np.unravel_index(np.argmax(np.abs(true_dw)), true_dw.shape)
    assert check.numerical == pytest.approx(true_dw[check.index], rel=1e-6)
    row, col = check.index
    message = str(info.value)
    assert f"W: 0.5 (worst element W[{row}, {col}]: analytic {check.analytic:.6g}, " \
           f"numerical {check.numerical:.6g})" in message


def test_a_report_is_a_dict_of_errors_with_details():
    x = np.random.default_rng(1).standard_normal((5, 3))
    report = gradcheck.check_layer(Dense(3, 4, seed=1), x)
    assert isinstance(report, dict) and set(report) == {"input", "W", "b"}
    assert max(report.values()) < 1e-6
    for name, check in report.details.items():
        assert check.error == report[name]
        assert check.analytic == pytest.approx(check.numerical, rel=1e-5, abs=1e-9)
        assert len(check.index) == {"input": 2, "W": 2, "b": 1}[name]
        assert check.where(name).startswith(f"{name}[")
    loss = gradcheck.check_loss(MeanSquaredError(), x, x + 1)
    assert set(loss.details) == {"prediction"}
