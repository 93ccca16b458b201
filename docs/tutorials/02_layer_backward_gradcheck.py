# %% [markdown]
# # 2. One layer's backward pass, and its gradient check
#
# A layer is a node of the graph from tutorial 1 whose inputs are whole arrays. This
# tutorial derives the backward pass of the affine (`Dense`) layer, writes a numerical
# gradient to check it, and then writes a layer of your own and checks it the way numnet
# checks all of its layers.

# %%
import numpy as np

from numnet import Dense, Layer, gradcheck
from numnet.exercises import assert_close, check

rng = np.random.default_rng(0)

# %% [markdown]
# ## The affine layer
#
# A batch of $N$ samples with $D$ features each is a matrix $x$ of shape $(N, D)$ (samples
# are rows). The layer has weights $W$ of shape $(D, M)$ and a bias $b$ of shape $(M,)$:
#
# $$y = x W + b \qquad (N, M).$$
#
# Backward, the layer receives $g = \partial L / \partial y$, of the shape of $y$, and must
# give the gradient of the loss for its input and for each parameter. Write one entry of
# the product: $y_{nm} = \sum_d x_{nd} W_{dm} + b_m$. So
#
# * $\partial y_{nm} / \partial W_{dm} = x_{nd}$, and $W_{dm}$ touches every sample $n$:
#   $\dfrac{\partial L}{\partial W_{dm}} = \sum_n x_{nd}\, g_{nm}$, that is
#   $\partial L / \partial W = x^T g$ $(D, M)$;
# * $\partial y_{nm} / \partial x_{nd} = W_{dm}$, and $x_{nd}$ touches every output $m$:
#   $\partial L / \partial x = g\, W^T$ $(N, D)$;
# * $b_m$ is added to every sample: $\partial L / \partial b = \sum_n g_{n\cdot}$ $(M,)$.
#
# A quick test of any such formula: **a gradient has the shape of what it is the gradient
# of.** $x^T g$ is $(D, N)(N, M) = (D, M)$, the shape of $W$; there is only one way to
# multiply $x$ and $g$ into that shape.

# %% [markdown]
# ## Exercise 1: the affine backward pass

# %% tags=["exercise"]
def affine_backward(x, W, g):
    """Return (dx, dW, db) for y = x W + b, given g = dL/dy."""
    raise NotImplementedError("affine_backward: three products and a sum")


# %% tags=["check"]
with check("affine backward"):
    x, g = rng.standard_normal((5, 3)), rng.standard_normal((5, 4))
    layer = Dense(3, 4, seed=1, dtype="float64")
    layer(x)  # numnet's layer is the reference
    dx_expected = layer.backward(g)
    dx, dW, db = affine_backward(x, layer.params["W"], g)
    assert_close(dW, layer.grads["W"], "dW should be x^T g, of W's shape (3, 4)")
    assert_close(db, layer.grads["b"], "db should be the sum of g over the samples")
    assert_close(dx, dx_expected, "dx should be g W^T, of x's shape (5, 3)")

# %% [markdown]
# ## A referee: the numerical gradient
#
# For a scalar function $f$ of an array $x$, each component of the gradient is the slope
# along that component. The **central difference**
#
# $$\frac{\partial f}{\partial x_i} \approx \frac{f(x + h e_i) - f(x - h e_i)}{2h}$$
#
# has an error of order $h^2$ (the one-sided $(f(x+h) - f(x))/h$ has an error of order
# $h$). Too small an $h$ and rounding takes over: in float64 (about 16 digits),
# $h = 10^{-6}$ leaves about 10 correct digits; in float32 (7 digits) a gradient check is
# hopeless, so numnet checks in float64.
#
# Two slopes agree when their **relative error** is small:
# $\max_i |a_i - n_i| \,/\, \max(\max_i |a_i|, \max_i |n_i|)$. A correct backward pass gives
# $10^{-9}$ or less; a wrong one gives something of order 1.

# %% [markdown]
# ## Exercise 2: the numerical gradient
#
# `f` takes no argument: it reads `x`, which you perturb **in place**, one entry at a time,
# and put back exactly afterwards.

# %% tags=["exercise"]
def numerical_gradient(f, x, h=1e-6):
    """Central-difference gradient of f() with respect to the float64 array x."""
    grad = np.zeros_like(x)
    return grad


# %% tags=["check"]
with check("numerical gradient"):
    x = rng.standard_normal((3, 4))
    before = x.copy()
    grad = numerical_gradient(lambda: float(np.sum(x ** 3)), x)
    assert_close(grad, 3 * before ** 2, "the gradient of sum(x^3) is 3 x^2", rtol=1e-7)
    assert np.array_equal(x, before), "put every entry of x back after perturbing it"
    # the referee checks affine_backward: L = sum(y * R) has dL/dy = R
    x, W, R = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal((4, 2))
    _, dW, _ = affine_backward(x, W, R)
    assert_close(numerical_gradient(lambda: float(np.sum((x @ W) * R)), W), dW,
                 "numerical and analytic dW", rtol=1e-6)

# %% [markdown]
# ## Your own layer, checked as numnet checks its own
#
# A numnet layer subclasses `Layer`: `forward(x, training)` computes the output and keeps
# what `backward` needs; `backward(grad_out)` returns the gradient for the input (and, for
# a layer with parameters, writes theirs into `self.grads`). `numnet.gradcheck.check_layer`
# compares it with central differences on the scalar $L = \sum y \odot R$ for a random $R$,
# in float64, for the input and every parameter.
#
# The sigmoid $y = 1 / (1 + e^{-x})$ makes a good exercise. Staged as nodes,
# $x \to -x \to e^{-x} \to 1 + e^{-x} \to 1/(\cdot)$, its local derivatives multiply to
# $e^{-x} / (1 + e^{-x})^2$, which is $y (1 - y)$: the backward pass needs only the output.

# %% [markdown]
# ## Exercise 3: a sigmoid layer

# %% tags=["exercise"]
class MySigmoid(Layer, register=False):
    """y = 1 / (1 + exp(-x)); backward: dx = g * y * (1 - y)."""

    def forward(self, x, training=False):
        self.y = 1 / (1 + np.exp(-x))
        return self.y

    def backward(self, grad_out):
        raise NotImplementedError("MySigmoid.backward: the output y is all it needs")


# %% tags=["check"]
with check("MySigmoid passes numnet's gradient check"):
    report = gradcheck.check_layer(MySigmoid(), rng.standard_normal((4, 5)))
    print("relative error of each tensor:", report)

# %% [markdown]
# When a check fails, the error names the tensor, its relative error and the element where
# analytic and numerical gradients differ most, with both values. Here is what a common
# mistake (forgetting the `(1 - y)` factor) looks like:

# %%
class WrongSigmoid(MySigmoid, register=False):
    def backward(self, grad_out):
        return grad_out * self.y


try:
    gradcheck.check_layer(WrongSigmoid(), rng.standard_normal((4, 5)))
except gradcheck.GradientCheckError as error:
    print(error)

# %% [markdown]
# The same check runs from the command line on a layer class in a file of yours, with no
# model around it:
#
# ```bash
# numnet gradcheck --layer my_layers.py:MySigmoid --input-shape 5
# ```
#
# It prints one row per tensor (the worst relative error, the worst element, the analytic
# and numerical values there) and exits with status 1 when a tensor fails.
