"""Computational-graph nodes: the seeds' apple example and gradient checks."""

from __future__ import annotations

import numpy as np
import pytest

from numnet import gradcheck
from numnet.errors import ShapeError
from numnet.layers import Add, Mul


def test_apple_example():
    apple, count, tax = 100, 2, 1.1
    mul_apple, mul_tax = Mul(), Mul()
    price = mul_tax.forward(mul_apple.forward(apple, count), tax)
    assert price == pytest.approx(220)
    d_apple_price, d_tax = mul_tax.backward(1)
    d_apple, d_count = mul_apple.backward(d_apple_price)
    assert (float(d_apple), float(d_count), float(d_tax)) == pytest.approx((2.2, 110, 200))


def test_apple_and_orange_example():
    # two apples at 100, three oranges at 150, tax 1.1: 715 in all
    mul_apple, mul_orange, add, mul_tax = Mul(), Mul(), Add(), Mul()
    total = mul_tax.forward(
        add.forward(mul_apple.forward(100, 2), mul_orange.forward(150, 3)), 1.1)
    assert total == pytest.approx(715)
    d_sum, d_tax = mul_tax.backward(1)
    d_apples, d_oranges = add.backward(d_sum)
    assert [float(v) for v in mul_apple.backward(d_apples)] == pytest.approx([2.2, 110])
    assert [float(v) for v in mul_orange.backward(d_oranges)] == pytest.approx([3.3, 165])
    assert float(d_tax) == pytest.approx(650)


@pytest.mark.parametrize("node", [Add, Mul])
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 3), (1, 5, 1)),
                                    ((), (2, 2))])
def test_node_gradcheck_with_broadcasting(node, shapes):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    errors = gradcheck.check_node(node(), x, y)
    assert max(errors.values()) < 1e-6


def test_node_backward_before_forward():
    with pytest.raises(RuntimeError, match="before forward"):
        Mul().backward(1.0)


def test_a_scalar_gradient_starts_a_chain_on_array_inputs():
    node = Mul()
    node.forward(np.ones((3, 4)), 2.0)
    dx, dy = node.backward(1.0)
    np.testing.assert_array_equal(dx, np.full((3, 4), 2.0))
    assert dy == pytest.approx(12.0)


@pytest.mark.parametrize("node", [Add(), Mul()])
def test_a_gradient_of_the_wrong_shape_names_the_node(node):
    node.forward(np.ones((1, 4)), np.ones((1, 4)))
    with pytest.raises(ShapeError, match=r"\(\)\.backward expects a gradient of the output's "
                                         r"shape \(1, 4\).*got \(3,\)"):
        node.backward(np.ones(3))
