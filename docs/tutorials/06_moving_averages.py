# %% [markdown]
# # 6. Exponential moving averages and their bias correction
#
# Seed notebook 003's to-do list has "momentum", "exponentially moving average" and "Adam"
# on three lines; they are one idea. So are batch normalisation's running statistics. This
# tutorial builds the exponential moving average (EMA), shows why it starts too low and
# how Adam corrects that, and finds it inside momentum, Adam and `BatchNorm1d`.

# %%
import matplotlib.pyplot as plt
import numpy as np

from numnet import BatchNorm1d, reference
from numnet.exercises import assert_close, check

rng = np.random.default_rng(0)

# %% [markdown]
# ## The average that forgets
#
# Given a series $\theta_1, \theta_2, \dots$ (a noisy temperature, a gradient step after
# step), the EMA with decay $\beta \in [0, 1)$ is
#
# $$v_0 = 0, \qquad v_t = \beta\, v_{t-1} + (1 - \beta)\, \theta_t .$$
#
# Unrolled, $v_t = (1-\beta)\sum_{i=1}^{t} \beta^{t-i}\theta_i$: every past value is
# still in it, with a weight that decays geometrically. A weight falls below $1/e$ after
# about $1/(1-\beta)$ steps, the average's *memory*: $\beta = 0.9$ averages over about the
# last 10 values, $\beta = 0.99$ over the last 100. It costs one number of memory and two
# multiplications per step, whatever the window, which is why optimisers use it.

# %% [markdown]
# ## Exercise 1: the EMA of a series

# %% tags=["exercise"]
def ema(values, beta):
    """The list [v_1, ..., v_T] of the EMA of values, starting from v_0 = 0."""
    raise NotImplementedError("fill in the body of ema")


# %% tags=["check"]
with check("ema"):
    series = rng.standard_normal(20)
    assert_close(ema(series, 0.9), reference.ema(series, 0.9), "v_t = beta v_(t-1) + "
                                                             "(1 - beta) theta_t")
    assert_close(ema([2.0, 2.0], 0.5), [1.0, 1.5], "starting from v_0 = 0")

# %% [markdown]
# ## Too low at the start
#
# The weights $(1-\beta)\beta^{t-i}$ sum to $1 - \beta^t$, not 1: $v_0 = 0$ counts as a
# value, and early on it dominates. For a constant series $\theta_t = c$,
# $v_t = c\,(1 - \beta^t)$: with $\beta = 0.99$ the first average is $0.01\,c$. The
# **bias correction** divides by the missing weight,
#
# $$\hat v_t = \frac{v_t}{1 - \beta^t},$$
#
# which is exact for a constant series and fades away as $\beta^t \to 0$.

# %% [markdown]
# ## Exercise 2: the corrected EMA

# %% tags=["exercise"]
def ema_corrected(values, beta):
    """The list of bias-corrected averages v_t / (1 - beta^t)."""
    raise NotImplementedError("fill in the body of ema_corrected")


# %% tags=["check"]
with check("ema_corrected"):
    assert_close(ema_corrected(np.full(5, 3.0), 0.99), np.full(5, 3.0),
                 "a constant series averages to itself from the first step")
    series = rng.standard_normal(30)
    assert_close(ema_corrected(series, 0.8),
                 reference.ema(series, 0.8, bias_correction=True), "v_t / (1 - beta^t)")

# %% [markdown]
# On a noisy series the difference is plain: the raw average with $\beta = 0.98$ needs
# dozens of steps to climb to the level of the data; the corrected one is there at once.

# %%
days = np.arange(1, 101)
temperature = 10 + 5 * np.sin(days / 16) + rng.normal(0, 2, days.size)
figure, ax = plt.subplots(figsize=(8, 4))
ax.plot(days, temperature, ".", color="0.6", label="data")
for beta, colour in ((0.9, "C0"), (0.98, "C1")):
    ax.plot(days, ema(temperature, beta), color=colour, ls="--", label=f"EMA, beta={beta}")
    ax.plot(days, ema_corrected(temperature, beta), color=colour,
            label=f"corrected, beta={beta}")
ax.set_xlabel("t")
ax.legend()
plt.show()

# %% [markdown]
# ## Where the EMA hides
#
# * **Momentum.** SGD with momentum keeps $b_t = \mu\, b_{t-1} + g_t$, a *sum* rather than
#   an average: $b_t = \sum_i \mu^{t-i} g_i$, which is the EMA of the gradients with
#   $\beta = \mu$, divided by $1 - \mu$. The step follows the recent average direction
#   and, in a steady slope, is $1/(1-\mu)$ times larger (10 times for $\mu = 0.9$).
# * **Adam.** It keeps two EMAs, of the gradient ($m$, $\beta_1 = 0.9$) and of its square
#   ($v$, $\beta_2 = 0.999$), both bias-corrected: without the correction, $v$ would start
#   at a thousandth of its value and the first steps, divided by $\sqrt{v}$, would be about
#   30 times too large. `numnet.reference.adam_step` writes it out.
# * **Batch normalisation.** In evaluation mode a `BatchNorm1d` normalises with running
#   estimates of each feature's mean and variance, EMAs of the batch statistics.
#   PyTorch's convention, which numnet follows, calls $1 - \beta$ the *momentum*
#   (default 0.1, so $\beta = 0.9$), and does not correct the bias: the running mean
#   starts at 0 and the running variance at 1, sensible values for standardised data.

# %% [markdown]
# ## Exercise 3: a batch-norm layer's running mean
#
# Predict `running_mean` after a layer with `momentum` has seen batches whose means are
# `batch_means` (one row per batch, one column per feature).

# %% tags=["exercise"]
def running_mean_after(batch_means, momentum):
    """BatchNorm1d's running_mean after these batches, starting from 0."""
    raise NotImplementedError("fill in the body of running_mean_after")


# %% tags=["check"]
with check("running_mean_after"):
    layer = BatchNorm1d(3, momentum=0.2, dtype="float64")
    batches = [rng.standard_normal((8, 3)) + 5 for _ in range(6)]
    for batch in batches:
        layer(batch, training=True)
    means = np.array([batch.mean(axis=0) for batch in batches])
    assert_close(running_mean_after(means, 0.2), layer.buffers["running_mean"],
                 "an EMA with beta = 1 - momentum, not corrected")

# %% [markdown]
# Six batches in, the running mean is still well below 5 (the true mean): $1 - 0.8^6
# \approx 74\%$ of the weight is on the data, the rest on the starting 0. This is why a
# network with batch norm evaluated after very few training steps behaves oddly, and why
# the running variance uses the unbiased $N/(N-1)$ batch variance.
