# %% [markdown]
# # 1. The chain rule, one node at a time
#
# Every network in numnet learns by *back-propagation*, and back-propagation is nothing more
# than the chain rule applied to a graph of small operations. Before any layer or loss, this
# tutorial works it through on the smallest graph there is: the price of some apples.
#
# You will:
#
# * compute a result **forward** through a graph of multiply and add nodes;
# * send the derivative **backward** through the same nodes, each one multiplying by its own
#   local derivative;
# * check the result against a numerical derivative.
#
# **Exercises** are cells whose functions you fill in (they raise `NotImplementedError`
# until you do); the **check** cell after each one prints `right: ...` or
# `wrong: ...` with the reason.

# %%
import numpy as np

from numnet.exercises import assert_close, check
from numnet.layers import Add, Mul

# %% [markdown]
# ## A graph of two nodes
#
# You buy 2 apples at 100 each, and pay 10% tax. As a computational graph:
#
# ```
# apple (100) ──┐
#               ×── apple_price (200) ──┐
# count (2) ────┘                       ×── price (220)
#                           tax (1.1) ──┘
# ```
#
# **Forward**, each node computes its output from its inputs. **Backward**, we ask: if an
# input changes a little, how much does the final price change? That is the derivative of
# the price with respect to that input.
#
# The chain rule says that the derivative of the price with respect to a node's input is the
# derivative with respect to the node's *output* (what arrives from further along the
# graph, called `dout`) times the node's *local* derivative. For a multiplication
# $z = x y$ the local derivatives are
#
# $$\frac{\partial z}{\partial x} = y, \qquad \frac{\partial z}{\partial y} = x,$$
#
# so the node sends back `dout * y` to `x` and `dout * x` to `y`: it *swaps* its inputs.
# For an addition $z = x + y$ both local derivatives are 1: the node passes `dout` through
# to both inputs unchanged.
#
# A node must remember its inputs from the forward pass, because the backward pass needs
# them.

# %% [markdown]
# ## Exercise 1: the backward pass of two nodes
#
# Write `backward` for both nodes. It returns the pair `(dx, dy)`.

# %% tags=["exercise"]
class MulNode:
    """z = x * y"""

    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, dout):
        raise NotImplementedError("MulNode.backward: what does z = x * y send back to x, "
                                  "and to y?")


class AddNode:
    """z = x + y"""

    def forward(self, x, y):
        return x + y

    def backward(self, dout):
        raise NotImplementedError("AddNode.backward: return the pair (dx, dy)")


# %% tags=["check"]
with check("the apple price and its derivatives"):
    mul_apple, mul_tax = MulNode(), MulNode()
    apple_price = mul_apple.forward(100, 2)
    price = mul_tax.forward(apple_price, 1.1)
    assert_close(price, 220, "the price forward")
    d_apple_price, d_tax = mul_tax.backward(1.0)
    d_apple, d_count = mul_apple.backward(d_apple_price)
    assert_close(d_apple, 2.2, "d price / d apple: one more unit of apple price adds 2 x 1.1")
    assert_close(d_count, 110, "d price / d count: one more apple adds 100 x 1.1")
    assert_close(d_tax, 200, "d price / d tax: the price before tax")
    assert_close(AddNode().backward(3.0), (3.0, 3.0), "an add node passes dout to both")
    # the same nodes on arrays: numnet's Mul and Add are the reference
    rng = np.random.default_rng(0)
    x, y, dout = rng.standard_normal((3, 3, 4))
    mine, theirs = MulNode(), Mul()
    mine.forward(x, y)
    theirs.forward(x, y)
    assert_close(mine.backward(dout), theirs.backward(dout), "MulNode on arrays")

# %% [markdown]
# ## Branches add up
#
# Now you also buy 3 oranges at 150. An add node joins the two branches before the tax:
#
# ```
# apple (100), count (2) ──× apple_price (200) ─────┐
#                                                   +── subtotal (650) ──× total (715)
# orange (150), count (3) ─× orange_price (450) ────┘            tax (1.1) ┘
# ```
#
# Backward, the tax node sends $\partial\,\text{total}/\partial\,\text{subtotal} = 1.1$ to
# the add node, which passes 1.1 to both branches; each multiply node then swaps its
# inputs. Run the graph backward in the reverse order of the forward pass: every node must
# receive its `dout` before it can compute its own.

# %% [markdown]
# ## Exercise 2: the whole graph, backward
#
# Build the graph with your nodes, run it forward and backward, and return the total and
# the derivative of the total with respect to each of the five inputs.

# %% tags=["exercise"]
def apple_orange_gradients(apple=100.0, apple_count=2.0, orange=150.0, orange_count=3.0,
                           tax=1.1):
    """Return a dict with "total", "d_apple", "d_apple_count", "d_orange",
    "d_orange_count" and "d_tax"."""
    return {}


# %% tags=["check"]
def total_price(apple, apple_count, orange, orange_count, tax):
    return (apple * apple_count + orange * orange_count) * tax


with check("the graph with oranges"):
    result = apple_orange_gradients()
    assert isinstance(result, dict) and "total" in result, \
        "return a dict with the total and the five derivatives"
    assert_close(result["total"], 715, "the total forward")
    point = dict(apple=100.0, apple_count=2.0, orange=150.0, orange_count=3.0, tax=1.1)
    for name in ("apple", "apple_count", "orange", "orange_count", "tax"):
        h = 1e-6  # a central difference: how much the total moves per unit change
        up, down = dict(point), dict(point)
        up[name] += h
        down[name] -= h
        numerical = (total_price(**up) - total_price(**down)) / (2 * h)
        assert_close(result[f"d_{name}"], numerical, f"d total / d {name}", rtol=1e-6)

# %% [markdown]
# ## What this has to do with networks
#
# A network is the same thing with bigger nodes: a `Dense` layer is a multiply node with a
# matrix and an add node with a bias; an activation is a node whose local derivative is
# its slope; the loss is the last node, and the backward pass starts there with
# `dout = 1`. Each node only ever needs its own local derivative and the `dout` handed to
# it: that is what makes back-propagation cheap (one backward pass costs about as much as
# the forward pass) and what lets numnet write every layer as a small class with a
# `forward` and a `backward`.
#
# The numerical derivative used by the check, $(f(x+h) - f(x-h)) / 2h$, is slow (two
# forward passes per input) but needs no derivation at all, which makes it the perfect
# referee. The next tutorial uses it to check a whole layer.
