# %% [markdown]
# # 8. Optimisers compared: SGD, momentum, AdaGrad, RMSProp, Adam
#
# Back-propagation gives the gradient; the optimiser decides what step to take with it.
# This tutorial writes the five classic update rules as short functions, checks each
# against numnet's fast versions, and compares them on one figure: their paths across a
# long narrow valley, and their training loss on the digits.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from numnet import SGD, AdaGrad, Adam, Dense, ReLU, RMSProp, Sequential, reference
from numnet.data import load_digits
from numnet.exercises import assert_close, check

QUICK = os.environ.get("NUMNET_TUTORIAL_QUICK") == "1"  # the test suite runs it shorter
rng = np.random.default_rng(0)

# %% [markdown]
# ## The five rules
#
# Each takes the parameters $p$, the gradient $g$ and a `state` dict (empty at the first
# step) that it updates, and returns the new parameters. With learning rate $\eta$:
#
# * **SGD**: $p \leftarrow p - \eta g$. The step is proportional to the slope: tiny on a
#   plateau, huge on a cliff, and in a long narrow valley it bounces across the steep
#   direction while crawling along the shallow one.
# * **Momentum** ($\mu = 0.9$): $b \leftarrow \mu b + g$ (with $b = g$ at the first
#   step), $p \leftarrow p - \eta b$. The buffer is an exponential moving average of the
#   gradients (tutorial 6): steps across the valley cancel out, steps along it add up.
# * **AdaGrad**: $s \leftarrow s + g^2$, $p \leftarrow p - \eta\, g / (\sqrt{s} + \epsilon)$.
#   Every parameter gets its own rate, small where the gradients have been large. As $s$
#   only grows, the steps shrink for ever.
# * **RMSProp** ($\alpha = 0.99$): $v \leftarrow \alpha v + (1-\alpha) g^2$,
#   $p \leftarrow p - \eta\, g / (\sqrt{v} + \epsilon)$. AdaGrad with a moving average
#   instead of a sum, so old gradients are forgotten.
# * **Adam** ($\beta_1 = 0.9$, $\beta_2 = 0.999$): momentum and RMSProp together, both
#   bias-corrected (tutorial 6): $m \leftarrow \beta_1 m + (1-\beta_1) g$,
#   $v \leftarrow \beta_2 v + (1-\beta_2) g^2$, $\hat m = m / (1 - \beta_1^t)$,
#   $\hat v = v / (1 - \beta_2^t)$, $p \leftarrow p - \eta\, \hat m / (\sqrt{\hat v} +
#   \epsilon)$, where $t$ counts the steps from 1.
#
# All element-wise: `g * g` squares each entry. numnet's optimisers follow `torch.optim`
# exactly, and `numnet.reference` has them in this slow, readable form.

# %% [markdown]
# ## Exercise 1: SGD and momentum

# %% tags=["exercise"]
def sgd(p, g, state, lr):
    """One step of plain SGD."""
    raise NotImplementedError("fill in the body of sgd")


def momentum(p, g, state, lr, mu=0.9):
    """One step of SGD with heavy-ball momentum; the buffer lives in state["buf"]."""
    raise NotImplementedError("fill in the body of momentum")


# %% [markdown]
# The checks run your rules and numnet's optimisers side by side for a few steps on the
# gradient of a bowl, $g = A p + \text{noise}$.

# %% tags=["check"]
class FlatModel:
    """What a numnet optimiser needs of a model: one vector of parameters and gradients."""

    def __init__(self, p):
        self.flat_params, self.flat_grads = p.copy(), np.zeros_like(p)
        self.decay_mask = np.ones(p.size, dtype=bool)


def side_by_side(rule, optimizer, steps=6):
    """Run rule(p, g, state) and a numnet optimiser on the same gradients; compare."""
    p0, scales = np.array([1.5, -2.0, 0.5]), np.array([1.0, 0.3, 4.0])
    model, p, state = FlatModel(p0), p0.copy(), {}
    for step in range(steps):
        noise = np.sin(step + np.arange(3)) * 0.2
        model.flat_grads[:] = scales * model.flat_params + noise
        optimizer.step(model)
        p = rule(p, scales * p + noise, state)
        assert_close(p, model.flat_params, f"{type(optimizer).__name__}, step {step + 1}")


with check("sgd and momentum"):
    side_by_side(lambda p, g, state: sgd(p, g, state, lr=0.1), SGD(0.1))
    side_by_side(lambda p, g, state: momentum(p, g, state, lr=0.1), SGD(0.1, momentum=0.9))

# %% [markdown]
# ## Exercise 2: AdaGrad and RMSProp

# %% tags=["exercise"]
def adagrad(p, g, state, lr, eps=1e-10):
    """One step of AdaGrad; the sum of squares lives in state["sum"]."""
    raise NotImplementedError("fill in the body of adagrad")


def rmsprop(p, g, state, lr, alpha=0.99, eps=1e-8):
    """One step of RMSProp; the average of squares lives in state["v"]."""
    raise NotImplementedError("fill in the body of rmsprop")


# %% tags=["check"]
with check("adagrad and rmsprop"):
    side_by_side(lambda p, g, state: adagrad(p, g, state, lr=0.5), AdaGrad(0.5))
    side_by_side(lambda p, g, state: rmsprop(p, g, state, lr=0.01), RMSProp(0.01))

# %% [markdown]
# ## Exercise 3: Adam

# %% tags=["exercise"]
def adam(p, g, state, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    """One step of Adam; m, v and the step count t live in state."""
    raise NotImplementedError("fill in the body of adam")


# %% tags=["check"]
with check("adam"):
    side_by_side(lambda p, g, state: adam(p, g, state, lr=0.1), Adam(0.1))
    side_by_side(lambda p, g, state: adam(p, g, state, lr=0.05, beta1=0.8),
                 Adam(0.05, betas=(0.8, 0.999)))

# %% [markdown]
# ## A long, narrow valley
#
# $f(x, y) = x^2/20 + y^2$ is twenty times steeper along $y$ than along $x$, a caricature
# of the loss surfaces of real networks, whose curvature differs wildly between
# directions. Start every optimiser at $(-7, 2)$ and take 40 steps, each with a learning
# rate that suits it:

# %%
def valley_gradient(p):
    return np.array([p[0] / 10, 2 * p[1]])


rules = {
    "SGD (lr 0.95)": lambda p, g, s: sgd(p, g, s, lr=0.95),
    "momentum (lr 0.1)": lambda p, g, s: momentum(p, g, s, lr=0.1),
    "AdaGrad (lr 1.5)": lambda p, g, s: adagrad(p, g, s, lr=1.5),
    "RMSProp (lr 0.3)": lambda p, g, s: rmsprop(p, g, s, lr=0.3),
    "Adam (lr 0.3)": lambda p, g, s: adam(p, g, s, lr=0.3),
}
paths = {}
for name, rule in rules.items():
    p, state, path = np.array([-7.0, 2.0]), {}, [np.array([-7.0, 2.0])]
    for _ in range(40):
        p = rule(p, valley_gradient(p), state)
        path.append(p)
    paths[name] = np.array(path)
    value = p[0] ** 2 / 20 + p[1] ** 2
    print(f"{name:>18}: ends at ({p[0]:6.3f}, {p[1]:6.3f}), f = {value:.2e}")

# %% [markdown]
# SGD zigzags across the valley (its step along $y$ overshoots) and crawls along it;
# momentum overshoots and swings back; AdaGrad and RMSProp rescale each direction by its
# own gradient size and head almost straight for the minimum; Adam combines the two.
#
# ## Training a network
#
# The same five, now numnet's own, training one MLP on the digits from the same initial
# weights, one step per batch of 32. The learning rates are each rule's usual default.

# %%
X, y = load_digits(flatten=True, scale=True)
optimizers = {"SGD": SGD(0.01), "momentum": SGD(0.01, momentum=0.9),
              "AdaGrad": AdaGrad(0.01), "RMSProp": RMSProp(0.001), "Adam": Adam(0.001)}
epochs = 3 if QUICK else 10
curves = {}
for name, optimizer in optimizers.items():
    model = Sequential([Dense(64, 100), ReLU(), Dense(100, 100), ReLU(), Dense(100, 10)],
                       loss="cross_entropy", seed=0)
    order_rng, losses = np.random.default_rng(1), []
    for _ in range(epochs):
        order = order_rng.permutation(len(X))
        for start in range(0, len(X), 32):
            batch = order[start:start + 32]
            losses.append(model.loss_and_grad(X[batch], y[batch]))  # forward and backward
            optimizer.step(model)                                    # the update rule
    curves[name] = reference.ema(losses, 0.9, bias_correction=True)  # smoothed (tutorial 6)
    print(f"{name:>9}: loss {curves[name][-1]:.3f} after {len(losses)} steps, accuracy "
          f"{np.mean(model.predict(X) == y):.1%}")

# %% [markdown]
# ## Both on one figure

# %%
figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
grid_x, grid_y = np.meshgrid(np.linspace(-8, 8, 200), np.linspace(-3, 3, 200))
left.contour(grid_x, grid_y, grid_x ** 2 / 20 + grid_y ** 2, levels=20, colors="0.8")
for name, path in paths.items():
    left.plot(path[:, 0], path[:, 1], "o-", markersize=2.5, label=name)
left.plot(0, 0, "k+", markersize=12)
left.set_title("f(x, y) = x^2 / 20 + y^2: 40 steps from (-7, 2)")
left.legend(fontsize=8)
for name, curve in curves.items():
    right.plot(curve, label=name)
right.set_yscale("log")
right.set_xlabel("step (batch of 32)")
right.set_ylabel("training loss (moving average)")
right.set_title("MLP 64-100-100-10 on the digits")
right.legend()
figure.tight_layout()
plt.show()

# %% [markdown]
# On the network momentum and the adaptive methods leave plain SGD far behind at these
# rates. AdaGrad does well on a run this short; on long runs its ever-growing sums slow it
# down, which is what RMSProp and Adam fix. No optimiser wins everywhere: the rates matter
# as much as the rules, and `numnet trace` (the update-to-weight column, about $10^{-3}$
# when healthy) is a quick way to see whether a rate is in the right range.
