"""Losses: gradient checks, worked examples, stability and error paths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numnet import gradcheck
from numnet.errors import NonFiniteError, ShapeError
from numnet.losses import BinaryCrossEntropy, CrossEntropy, MeanSquaredError, get_loss

RNG = np.random.default_rng(0)


def _probs(n, c, seed=0):
    p = np.random.default_rng(seed).random((n, c)) + 0.1
    return p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("n", [1, 4])
def test_gradchecks(n):
    z = RNG.standard_normal((n, 5))
    labels = np.arange(n) % 5
    w = RNG.random(n) + 0.5
    checks = [
        (CrossEntropy(), labels, None),
        (CrossEntropy(), np.eye(5)[labels], None),
        (CrossEntropy(), _probs(n, 5), None),
        (CrossEntropy(), labels, w),
        (BinaryCrossEntropy(), RNG.random((n, 5)), None),
        (BinaryCrossEntropy(), (RNG.random((n, 5)) > 0.5).astype(float), w),
        (MeanSquaredError(), RNG.standard_normal((n, 5)), None),
        (MeanSquaredError(), RNG.standard_normal((n, 5)), w),
    ]
    for loss, target, weight in checks:
        errors = gradcheck.check_loss(loss, z, target, sample_weight=weight)
        assert errors["prediction"] < 1e-6, (loss, errors)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 8), c=st.integers(2, 7), seed=st.integers(0, 2**16))
def test_cross_entropy_gradcheck_random_shapes(n, c, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, c)) * 3
    assert gradcheck.check_loss(CrossEntropy(), z, rng.integers(0, c, n))["prediction"] < 1e-6


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 8), shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       kind=st.sampled_from(["mse", "bce", "ce_rows"]), weighted=st.booleans(),
       seed=st.integers(0, 2**16))
def test_every_loss_gradchecks_on_random_shapes(n, shape, kind, weighted, seed):
    rng = np.random.default_rng(seed)
    if kind == "ce_rows":  # probability rows: (N, C) only
        z = rng.standard_normal((n, shape[0] + 1)) * 3
        target, loss = _probs(n, shape[0] + 1, seed), CrossEntropy()
    else:
        z = rng.standard_normal((n, *shape)) * 3
        target = rng.random(z.shape) if kind == "bce" else rng.standard_normal(z.shape)
        loss = BinaryCrossEntropy() if kind == "bce" else MeanSquaredError()
    weight = rng.random(n) + 0.1 if weighted else None
    assert gradcheck.check_loss(loss, z, target, sample_weight=weight)["prediction"] < 1e-6


def test_cross_entropy_worked_examples():
    # seed 003: column-major there, rows here; -mean log softmax of the true class
    z = np.array([[1.0, 2, 3, 4], [2, 2, 3, 4], [5, 5, 5, 4]]).T
    onehot = np.array([[0.0, 0, 1], [0, 0, 1], [0, 0, 1], [1, 0, 0]])
    loss = CrossEntropy()
    assert loss(z, onehot) == pytest.approx(0.37474097876709611, abs=1e-7)
    expected_grad = np.array([[0.01714783, 0.0452785, 0.10650698, -0.66666667],
                              [0.04661262, 0.0452785, 0.10650698, 0.33333333],
                              [-0.06376045, -0.090557, -0.21301396, 0.33333333]]).T / 4
    np.testing.assert_allclose(loss.backward(), expected_grad, atol=1e-7)
    # integer labels give the same loss and gradient as one-hot rows
    assert loss(z, np.array([2, 2, 2, 0])) == pytest.approx(0.37474097876709611)
    np.testing.assert_allclose(loss.backward(), expected_grad, atol=1e-7)


def test_cross_entropy_is_finite_for_huge_logits():
    loss = CrossEntropy()
    z = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 0.0]], dtype=np.float32)
    value = loss(z, [2, 1])
    grad = loss.backward()
    assert value == pytest.approx(1e4)  # (2e4 + 0) / 2
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, [[0.5, 0, -0.5], [0, 0, 0]])


def test_binary_cross_entropy_stable_and_correct():
    loss = BinaryCrossEntropy()
    z = np.array([[-1e4, 1e4, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = loss(z, [[1.0, 0.0, 1.0]])
    assert value == pytest.approx((1e4 + 1e4 + np.log(2)) / 3)
    p = 1 / (1 + np.exp(-0.3))
    assert loss(np.array([[0.3]]), [[1.0]]) == pytest.approx(-np.log(p))


def test_mse_value_and_gradient():
    loss = MeanSquaredError()
    assert loss(np.array([[1.0, 2.0], [3.0, 4.0]]), [[1.0, 0.0], [0.0, 4.0]]) == 13 / 4
    np.testing.assert_allclose(loss.backward(), [[0, 1.0], [1.5, 0]])
    assert loss(np.array([[1.0], [2.0]]), np.array([0.0, 0.0])) == 2.5  # (N,) target


def test_losses_keep_float32():
    z = RNG.standard_normal((3, 4)).astype(np.float32)
    for loss, target in [(CrossEntropy(), [0, 1, 2]), (MeanSquaredError(), np.zeros((3, 4))),
                         (BinaryCrossEntropy(), np.ones((3, 4)))]:
        loss(z, target)
        assert loss.backward().dtype == np.float32


@pytest.mark.parametrize("labels, message", [
    ([0, 1, 5], r"label at index 2 is 5, expected a class index in \[0, 3\)"),
    ([0, -1, 2], r"label at index 1 is -1"),
    ([0.0, 1.5, 2.0], r"label at index 1 is 1.5, expected a whole class index"),
    (["a", "b", "c"], "labels must be integers"),
])
def test_cross_entropy_rejects_bad_labels(labels, message):
    with pytest.raises(ValueError, match=message):
        CrossEntropy()(np.zeros((3, 3)), np.array(labels))


def test_cross_entropy_rejects_bad_targets():
    loss = CrossEntropy()
    with pytest.raises(ShapeError, match="2 labels for a batch of 3"):
        loss(np.zeros((3, 3)), [0, 1])
    with pytest.raises(ShapeError, match=r"target shape \(3, 4\) does not match"):
        loss(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="row 1 sums to 2"):
        loss(np.zeros((2, 2)), [[1.0, 0.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match="negative entry"):
        loss(np.zeros((1, 2)), [[1.5, -0.5]])
    with pytest.raises(ShapeError, match=r"logits of shape \(N, C\)"):
        loss(np.zeros(3), [0, 1, 2])


@pytest.mark.parametrize("loss", [CrossEntropy(), MeanSquaredError(), BinaryCrossEntropy()])
def test_non_finite_inputs_are_rejected(loss):
    z = np.zeros((2, 2))
    z[1, 0] = np.nan
    with pytest.raises(NonFiniteError, match=r"prediction contains 1 non-finite.*\(1, 0\)"):
        loss(z, np.zeros((2, 2)) if not isinstance(loss, CrossEntropy) else [0, 1])
    target = np.zeros((2, 2))
    target[0, 1] = np.inf
    with pytest.raises(NonFiniteError, match="target"):
        loss(np.zeros((2, 2)), target)


def test_mismatched_shapes_and_weights():
    with pytest.raises(ShapeError, match=r"target shape \(2, 3\) does not match prediction "
                                         r"shape \(2, 2\)"):
        MeanSquaredError()(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"expected values in \[0, 1\]"):
        BinaryCrossEntropy()(np.zeros((1, 2)), [[0.0, 2.0]])
    with pytest.raises(ShapeError, match=r"sample_weight must have shape \(2,\)"):
        MeanSquaredError()(np.zeros((2, 2)), np.zeros((2, 2)), sample_weight=[1.0])
    with pytest.raises(ValueError, match="sample_weight must be >= 0"):
        MeanSquaredError()(np.zeros((2, 2)), np.zeros((2, 2)), sample_weight=[1, -1])
    with pytest.raises(ShapeError, match="non-empty batch"):
        MeanSquaredError()(np.zeros((0, 2)), np.zeros((0, 2)))


def test_sample_weight_semantics():
    z = np.array([[0.0], [2.0]])
    assert MeanSquaredError()(z, [[0.0], [0.0]], sample_weight=[1.0, 0.0]) == 0.0
    assert MeanSquaredError()(z, [[0.0], [0.0]], sample_weight=[0.0, 2.0]) == 4.0


def test_get_loss_by_name_and_errors():
    assert isinstance(get_loss("cross_entropy"), CrossEntropy)
    assert isinstance(get_loss("MSE"), MeanSquaredError)
    assert isinstance(get_loss("bce"), BinaryCrossEntropy)
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        get_loss("hinge")
    with pytest.raises(RuntimeError, match="before forward"):
        CrossEntropy().backward()
