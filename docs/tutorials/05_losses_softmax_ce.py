# %% [markdown]
# # 5. Losses, and the softmax-cross-entropy gradient derived
#
# The loss is the last node of the graph: its derivative is where back-propagation starts.
# This tutorial goes through the usual losses, derives the famous result that the
# gradient of softmax followed by cross-entropy is just "probabilities minus targets", and
# shows the two numerical traps of seed notebook 003: a softmax that overflows and a
# softmax Jacobian applied element by element.

# %%
import numpy as np

from numnet import BinaryCrossEntropy, CrossEntropy, MeanSquaredError, Softmax
from numnet.exercises import assert_close, check
from numnet.gradcheck import numerical_gradient

rng = np.random.default_rng(0)

# %% [markdown]
# ## Mean squared error and binary cross-entropy
#
# For regression, the **mean squared error** over $N$ samples of $M$ outputs is
# $L = \frac{1}{NM}\sum (y - t)^2$, with $\partial L/\partial y = 2(y - t)/(NM)$.
#
# For a yes/no target $t \in \{0, 1\}$ and a predicted probability
# $p = \sigma(z) = 1/(1 + e^{-z})$, the **binary cross-entropy** is
# $-[t \log p + (1 - t)\log(1 - p)]$, and its derivative with respect to the logit $z$
# collapses to $p - t$ (the $p(1-p)$ of the sigmoid cancels the $1/p$ and $1/(1-p)$ of the
# logarithms). Seed notebook 004 computed it from $p$ with an $\epsilon$ added inside the
# logarithm; numnet works from the logit $z$, as $\max(z, 0) - z t + \log(1 + e^{-|z|})$,
# which never takes the log of 0:

# %%
z, t = np.array([[-30.0], [0.0], [30.0]]), np.array([[1.0], [1.0], [1.0]])
print("BCE per sample:", [round(BinaryCrossEntropy()(z[i:i + 1], t[i:i + 1]), 6)
                          for i in range(3)])
print("MSE of (1, 2) against (0, 0):", MeanSquaredError()(np.array([[1.0, 2.0]]),
                                                         np.zeros((1, 2))))

# %% [markdown]
# ## Softmax, safely
#
# For $C$ classes the network outputs scores (logits) $z_1 \dots z_C$ and the softmax turns
# them into probabilities:
#
# $$p_j = \frac{e^{z_j}}{\sum_k e^{z_k}}.$$
#
# $e^{z}$ overflows for $z > 709$ in float64 (88 in float32), and seed notebook 003's
# softmax returned NaN as soon as a score grew that large. The cure: subtracting any
# constant $m$ from every $z_k$ leaves $p$ unchanged (it cancels between numerator and
# denominator), and with $m = \max_k z_k$ the largest exponent is $e^0 = 1$.

# %% [markdown]
# ## Exercise 1: a softmax that never overflows
#
# `z` is a batch $(N, C)$: one row of scores per sample.

# %% tags=["exercise"]
def softmax(z):
    """Row-wise softmax of z (N, C), shifted by each row's maximum."""
    raise NotImplementedError("fill in the body of softmax")


# %% tags=["check"]
with check("softmax"):
    z = rng.standard_normal((4, 5))
    p = softmax(z)
    assert_close(p.sum(axis=1), np.ones(4), "each row of probabilities sums to 1")
    assert_close(p, np.exp(z) / np.exp(z).sum(axis=1, keepdims=True), "the softmax of z")
    with np.errstate(over="raise", invalid="raise"):
        big = softmax(np.array([[1000.0, 1001.0, 999.0]]))
    assert_close(big, softmax(np.array([[1.0, 2.0, 0.0]])), "shift by the row maximum")

# %% [markdown]
# ## The cross-entropy, from the logits
#
# For a label $y$ (the index of the right class) the cross-entropy is $-\log p_y$,
# averaged over the batch. Written with the logits it needs no softmax at all:
#
# $$-\log p_y = -z_y + \log \sum_k e^{z_k} = -z_y + m + \log \sum_k e^{z_k - m},$$
#
# the *log-sum-exp*, shifted by $m = \max_k z_k$ again: finite for any finite scores, and
# never the $\log 0$ that the seeds patched with `+ 1e-7`.

# %% [markdown]
# ## Exercise 2: the mean cross-entropy of a batch

# %% tags=["exercise"]
def cross_entropy(z, y):
    """Mean over the batch of -log softmax(z)[n, y[n]], via the log-sum-exp."""
    raise NotImplementedError("fill in the body of cross_entropy")


# %% tags=["check"]
with check("cross_entropy"):
    z, y = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    assert_close(cross_entropy(z, y), CrossEntropy()(z, y), "the mean cross-entropy")
    extreme = np.array([[1000.0, -1000.0], [-1000.0, 1000.0]])
    assert_close(cross_entropy(extreme, np.array([1, 0])), 2000.0,
                 "finite for huge scores: -z_y + log-sum-exp")

# %% [markdown]
# ## The gradient, derived
#
# For one sample, $L = -z_y + \log \sum_k e^{z_k}$. Differentiate with respect to $z_j$:
# the first term gives $-1$ if $j = y$ and 0 otherwise; the second gives
# $e^{z_j} / \sum_k e^{z_k} = p_j$. So
#
# $$\frac{\partial L}{\partial z_j} = p_j - [j = y],$$
#
# probabilities minus the one-hot target, and for the batch mean each row is divided by
# $N$. The gradient pushes up the score of the right class and down the others, each in
# proportion to how much probability it wrongly holds. The same result comes out of the
# chain rule through the softmax's Jacobian (below) and the $-1/p_y$ of the logarithm,
# much more laboriously.

# %% [markdown]
# ## Exercise 3: the gradient of the mean cross-entropy

# %% tags=["exercise"]
def cross_entropy_grad(z, y):
    """d mean_cross_entropy / dz, of the shape of z."""
    raise NotImplementedError("fill in the body of cross_entropy_grad")


# %% tags=["check"]
with check("cross_entropy_grad"):
    z, y = rng.standard_normal((5, 3)), rng.integers(0, 3, 5)
    numerical = numerical_gradient(lambda: CrossEntropy()(z, y), z)
    assert_close(cross_entropy_grad(z, y), numerical, "(softmax(z) - onehot(y)) / N",
                 rtol=1e-6, atol=1e-9)

# %% [markdown]
# ## The softmax on its own: a full Jacobian
#
# When the softmax is a layer of its own (its output fed to some other loss), its backward
# pass needs its Jacobian, $\partial p_i / \partial z_j = p_i(\delta_{ij} - p_j)$: every
# output depends on every input. Given $g = \partial L / \partial p$,
#
# $$\frac{\partial L}{\partial z_j} = \sum_i g_i\, p_i (\delta_{ij} - p_j)
#   = p_j \Big(g_j - \sum_i g_i p_i\Big).$$
#
# Seed notebook 003 multiplied element by element, $g_j\, p_j (1 - p_j)$: that keeps only
# the diagonal of the Jacobian and is wrong whenever more than one class matters.

# %% [markdown]
# ## Exercise 4: the softmax's backward pass

# %% tags=["exercise"]
def softmax_backward(p, g):
    """dL/dz for p = softmax(z) (N, C) and g = dL/dp (N, C)."""
    return g * p * (1 - p)  # the element-wise mistake: replace it


# %% tags=["check"]
with check("softmax_backward"):
    z, g = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    layer = Softmax(dtype="float64")
    p = layer(z)
    assert_close(softmax_backward(p, g), layer.backward(g),
                 "the full Jacobian: p * (g - sum(g * p))")

# %% [markdown]
# In practice a classifier's last layer gives logits and `CrossEntropy` takes them
# directly: one node whose gradient is $p - \mathrm{onehot}(y)$, cheaper and more accurate
# than a `Softmax` layer followed by a loss on probabilities.
