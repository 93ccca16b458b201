# %% [markdown]
# # 9. Batch normalisation: the staged backward pass and the closed form
#
# Batch normalisation standardises each feature over the batch, then lets the network
# rescale it. Its forward pass is four lines; its backward pass is the best exercise in
# the chain rule there is, because the mean and the variance depend on every sample, so
# every output depends on every input. This tutorial derives it twice: node by node
# through the computational graph, and in the compact closed form numnet uses; then
# shows what it does for a network that would not train.

# %%
import os
import time
import warnings

import numpy as np

from numnet import BatchNorm1d, Dense, Sequential, Sigmoid, TrainingWarning
from numnet.data import load_digits
from numnet.exercises import assert_close, check
from numnet.gradcheck import numerical_gradient
from numnet.init import normal

QUICK = os.environ.get("NUMNET_TUTORIAL_QUICK") == "1"  # the test suite runs it shorter
rng = np.random.default_rng(0)

# %% [markdown]
# ## Forward, as a graph of eight nodes
#
# For a batch $x$ of shape $(N, D)$, every feature $d$ gets its own mean and variance over
# the $N$ samples (axis 0: the *batch* axis; averaging over the feature axis would be layer
# normalisation, a different layer, and seed notebook 000 mixed the two up):
#
# | node | computes | shape |
# |---|---|---|
# | 1 | $\mu = \frac1N \sum_n x_n$ | $(D,)$ |
# | 2 | $x_\mu = x - \mu$ | $(N, D)$ |
# | 3 | $q = x_\mu^2$ | $(N, D)$ |
# | 4 | $\sigma^2 = \frac1N \sum_n q_n$ | $(D,)$ |
# | 5 | $s = \sqrt{\sigma^2 + \epsilon}$ | $(D,)$ |
# | 6 | $r = 1/s$ | $(D,)$ |
# | 7 | $\hat x = x_\mu\, r$ | $(N, D)$ |
# | 8 | $y = \gamma \hat x + \beta$ | $(N, D)$ |
#
# $\gamma$ and $\beta$ have shape $(D,)$, one scale and shift per feature (seed 000 gave
# $\gamma$ the shape $(D, D)$). With a batch of one sample, $\sigma^2 = 0$ and $\hat x = 0$
# whatever the input: numnet refuses to train batch norm on a batch of one.

# %% [markdown]
# ## Exercise 1: the forward pass
#
# Return the output and a `cache` dict of what the backward passes need (at least
# `xmu`, `std`, `inv`, `xhat` and `gamma`).

# %% tags=["exercise"]
def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Batch norm of x (N, D) in training mode: (out, cache)."""
    raise NotImplementedError("fill in the body of batchnorm_forward")


# %% tags=["check"]
with check("batchnorm_forward"):
    x = 3 * rng.standard_normal((6, 4)) + 2
    gamma, beta = rng.uniform(0.5, 2, 4), rng.standard_normal(4)
    out, cache = batchnorm_forward(x, gamma, beta)
    layer = BatchNorm1d(4, dtype="float64")
    layer.params["gamma"][...], layer.params["beta"][...] = gamma, beta
    assert_close(out, layer(x, training=True), "the same as numnet's BatchNorm1d")
    assert {"xmu", "std", "inv", "xhat", "gamma"} <= set(cache), "the cache's keys"

# %% [markdown]
# ## Backward, node by node
#
# Walk the table upwards. Each node receives the gradient of its output and multiplies it
# by its local derivative; a node whose output is a sum over the batch (1 and 4) sends
# the same share back to every sample; a value used by two nodes (node 2's $x_\mu$ feeds 3
# and 7, and $x$ feeds 1 and 2) receives the **sum** of the two gradients.
#
# * 8: $\partial\beta = \sum_n g$, $\partial\gamma = \sum_n g \hat x$,
#   $\partial \hat x = g \gamma$
# * 7: $\partial r = \sum_n \partial\hat x \cdot x_\mu$, and a first part of
#   $\partial x_\mu$: $\partial\hat x \cdot r$
# * 6: $\partial s = -\partial r / s^2$
# * 5: $\partial \sigma^2 = \partial s / (2 s)$
# * 4: $\partial q = \partial\sigma^2 / N$, the same for every sample
# * 3: the second part of $\partial x_\mu$: $2 x_\mu\, \partial q$; add the two parts
# * 2: a first part of $\partial x$: $\partial x_\mu$; and $\partial\mu = -\sum_n
#   \partial x_\mu$
# * 1: the second part of $\partial x$: $\partial\mu / N$, the same for every sample; add.

# %% [markdown]
# ## Exercise 2: the staged backward pass

# %% tags=["exercise"]
def batchnorm_backward_staged(dout, cache):
    """(dx, dgamma, dbeta), through the eight nodes one at a time."""
    raise NotImplementedError("fill in the body of batchnorm_backward_staged")


# %% tags=["check"]
with check("batchnorm_backward_staged"):
    x = 2 * rng.standard_normal((5, 3)) + 1
    gamma, beta, probe = rng.uniform(0.5, 2, 3), rng.standard_normal(3), rng.normal(size=(5, 3))
    _, cache = batchnorm_forward(x, gamma, beta)
    dx, dgamma, dbeta = batchnorm_backward_staged(probe, cache)

    def loss():
        return float(np.sum(batchnorm_forward(x, gamma, beta)[0] * probe))

    assert_close(dx, numerical_gradient(loss, x), "dx against central differences",
                 rtol=1e-5, atol=1e-8)
    assert_close(dgamma, numerical_gradient(loss, gamma), "dgamma", rtol=1e-5, atol=1e-8)
    assert_close(dbeta, numerical_gradient(loss, beta), "dbeta", rtol=1e-5, atol=1e-8)

# %% [markdown]
# ## The closed form
#
# Collapse the stages algebraically. With $h = \partial\hat x = g\gamma$ and
# $r = 1/\sqrt{\sigma^2 + \epsilon}$, the three routes from $x$ to the loss (directly
# through $\hat x$, through $\mu$, through $\sigma^2$) add up to
#
# $$\frac{\partial L}{\partial x} = \frac{r}{N}\Big(N h - \sum_n h
#   - \hat x \sum_n h \hat x\Big).$$
#
# Read it as: the gradient $h$, minus its mean over the batch (the part the mean
# absorbs), minus its projection on $\hat x$ (the part the variance absorbs), scaled by
# $r$. Two sums over the batch instead of eight nodes and their temporaries: fewer passes
# over memory, so faster.

# %% [markdown]
# ## Exercise 3: the closed form

# %% tags=["exercise"]
def batchnorm_backward_closed(dout, cache):
    """(dx, dgamma, dbeta), in the closed form."""
    raise NotImplementedError("fill in the body of batchnorm_backward_closed")


# %% tags=["check"]
with check("batchnorm_backward_closed"):
    x = rng.standard_normal((16, 8)) * 4 - 1
    gamma, beta, probe = rng.uniform(0.5, 2, 8), rng.standard_normal(8), rng.normal(size=(16, 8))
    _, cache = batchnorm_forward(x, gamma, beta)
    closed = batchnorm_backward_closed(probe, cache)
    for name, a, b in zip(("dx", "dgamma", "dbeta"), closed,
                          batchnorm_backward_staged(probe, cache), strict=True):
        assert_close(a, b, f"{name}: the closed form equals the staged one", rtol=1e-9)
    layer = BatchNorm1d(8, dtype="float64")
    layer.params["gamma"][...], layer.params["beta"][...] = gamma, beta
    layer(x, training=True)
    assert_close(closed[0], layer.backward(probe), "and numnet's BatchNorm1d", rtol=1e-9)

# %% [markdown]
# Timed on a batch of 256 samples of 512 features:

# %%
x, dout = rng.standard_normal((256, 512)), rng.standard_normal((256, 512))
_, cache = batchnorm_forward(x, np.ones(512), np.zeros(512))
for backward in (batchnorm_backward_staged, batchnorm_backward_closed):
    start = time.perf_counter()
    for _ in range(20):
        backward(dout, cache)
    print(f"{backward.__name__}: {(time.perf_counter() - start) / 20 * 1e3:.2f} ms")

# %% [markdown]
# `numnet.reference.batchnorm_backward` keeps the staged version next to the library, and
# the test suite holds numnet's closed form equal to it.
#
# ## What it is for
#
# A deep sigmoid network whose weights are drawn with standard deviation 0.01 does not
# train at all (tutorial 7): its pre-activations are tiny, every sigmoid sits at 0.5 and
# the gradient vanishes on its way down. A batch-norm layer before each sigmoid rescales
# the pre-activations to unit variance, whatever the weights. Train both for a few epochs
# on the digits and compare; the training warnings numnet gives along the way are printed
# too.

# %%
X, y = load_digits(flatten=True, scale=True)


def deep_sigmoid(batch_norm):
    layers = []
    for _ in range(6):
        layers.append(Dense(64, 64, init=normal(0.01)))
        if batch_norm:
            layers.append(BatchNorm1d(64))
        layers.append(Sigmoid())
    return Sequential([*layers, Dense(64, 10)], loss="cross_entropy", seed=0)


for batch_norm in (False, True):
    model = deep_sigmoid(batch_norm)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TrainingWarning)
        history = model.fit(X, y, epochs=3 if QUICK else 10, verbose=0, seed=0,
                            validation_split=0.2)
    print(f"batch norm {batch_norm}: validation accuracy "
          f"{history.history['val_accuracy'][-1]:.1%}")
    for warning in caught:
        print("   warning:", str(warning.message)[:140])
    print("   trace findings:", [f.kind for f in model.trace(X[:256], y[:256]).findings])

# %% [markdown]
# Without batch norm the network stays at chance, and numnet says why as soon as the first
# epoch is over; with it the same weights train. The running statistics that batch norm
# keeps for evaluation are the moving averages of tutorial 6.
