# %% [markdown]
# # 7. Initialisation: activation histograms
#
# Gradient descent starts from the initial weights, and a bad start can stop it before it
# begins. This tutorial pushes one batch through a deep stack of sigmoid layers for three
# choices of initial weights and looks at the histograms of the activations, then lets
# numnet's trace name what the pictures show.

# %%
import matplotlib.pyplot as plt
import numpy as np

from numnet import Dense, ReLU, Sequential, Sigmoid, Tanh, diagnosis, init
from numnet.exercises import assert_close, check

rng = np.random.default_rng(0)

# %% [markdown]
# ## How the scale of the weights travels
#
# One unit of a layer computes $z = \sum_{d=1}^{n} x_d W_d$ over its $n$ inputs (its
# *fan-in*). With independent inputs and weights of mean 0,
# $\mathrm{Var}(z) = n\, \mathrm{Var}(x)\, \mathrm{Var}(W)$. So if the weights have standard
# deviation $\sigma$, each layer scales the variance by $n \sigma^2$:
#
# * $\sigma = 1$ with $n = 100$: the pre-activations have a standard deviation of about 10,
#   and a sigmoid of $\pm 10$ is 0 or 1: **saturated**, where its slope $y(1-y)$ is nearly
#   0, and back-propagation multiplies the gradient by that slope at every layer;
# * $\sigma = 0.01$: the pre-activations are about $0.1$ in size, every sigmoid sits near
#   0.5, all the units of a layer say the same thing, and the gradient, scaled by
#   $0.25\cdot n\sigma^2$ per layer, **vanishes**;
# * **Glorot** (Xavier) initialisation picks $\sigma^2 = 2/(n_\text{in} + n_\text{out})$,
#   which keeps the variance about constant forward *and* backward for activations that
#   are linear around 0 (sigmoid, tanh); **He** picks $\sigma^2 = 2/n_\text{in}$ for ReLU,
#   which zeroes half of its inputs and so halves the variance (hence the 2).

# %% [markdown]
# ## Exercise 1: the two standard deviations
#
# For the normal versions: Glorot $\sqrt{2/(n_\text{in} + n_\text{out})}$, He
# $\sqrt{2/n_\text{in}}$.

# %% tags=["exercise"]
def glorot_std(fan_in, fan_out):
    """The standard deviation of Glorot's normal initialisation."""
    raise NotImplementedError("fill in the body of glorot_std")


def he_std(fan_in):
    """The standard deviation of He's normal initialisation."""
    raise NotImplementedError("fill in the body of he_std")


# %% tags=["check"]
with check("glorot_std and he_std"):
    assert_close(glorot_std(100, 100), 0.1, "Glorot for 100 -> 100")
    assert_close(he_std(50), 0.2, "He for a fan-in of 50")
    drawn = init.glorot_normal((400, 600), rng, np.float64)
    assert_close(glorot_std(400, 600), drawn.std(), "numnet's glorot_normal", rtol=0.01)
    drawn = init.he_normal((300, 200), rng, np.float64)
    assert_close(he_std(300), drawn.std(), "numnet's he_normal", rtol=0.01)

# %% [markdown]
# ## Exercise 2: the activations of every layer
#
# Push `x` through the layers: at each, multiply by the weight matrix (no biases here)
# and apply `activation`; return the list of every layer's output.

# %% tags=["exercise"]
def layer_activations(x, weights, activation):
    """[a_1, ..., a_L] with a_(i+1) = activation(a_i @ weights[i]) and a_0 = x."""
    raise NotImplementedError("fill in the body of layer_activations")


# %% tags=["check"]
def sigmoid(z):
    return 1 / (1 + np.exp(-z))


with check("layer_activations"):
    x = rng.standard_normal((10, 6))
    weights = [rng.standard_normal((6, 6)) * 0.5 for _ in range(3)]
    outs = layer_activations(x, weights, sigmoid)
    assert len(outs) == 3, "one output per layer"
    model = Sequential([Dense(6, 6, bias=False), Sigmoid(), Dense(6, 6, bias=False),
                        Sigmoid(), Dense(6, 6, bias=False), Sigmoid()], dtype="float64")
    for layer, W in zip(model.layers[::2], weights, strict=True):
        layer.params["W"][...] = W
    assert_close(outs[-1], model.forward(x), "the last layer's output")

# %% [markdown]
# ## The histograms
#
# A batch of 1000 samples of 100 standard normal features through five sigmoid layers of
# 100 units, for each initial scale:

# %%
x = rng.standard_normal((1000, 100))
scales = {"std 1": lambda: 1.0, "std 0.01": lambda: 0.01,
          "Glorot": lambda: glorot_std(100, 100)}
figure, axes = plt.subplots(3, 5, figsize=(13, 7), sharey="row")
for row, (name, std) in enumerate(scales.items()):
    weights = [rng.standard_normal((100, 100)) * std() for _ in range(5)]
    for column, a in enumerate(layer_activations(x, weights, sigmoid)):
        axes[row, column].hist(a.ravel(), bins=30, range=(0, 1))
        axes[row, column].set_title(f"{name}: layer {column + 1}", fontsize=9)
figure.tight_layout()
plt.show()

# %% [markdown]
# Top row: the activations pile up at 0 and 1, saturated. Middle row: everything
# collapses onto 0.5. Bottom row: Glorot keeps a spread of values in every layer.

# %% [markdown]
# ## Exercise 3: measuring saturation
#
# numnet's trace counts a sigmoid output as *saturated* when it is within 1% of the range
# from an asymptote: below 0.01 or above 0.99, where the slope $y(1-y)$ is below 4% of its
# peak of 0.25. Write the fraction of saturated values of an array of sigmoid outputs.

# %% tags=["exercise"]
def saturated_fraction(y):
    """The fraction of the sigmoid outputs y below 0.01 or above 0.99."""
    raise NotImplementedError("fill in the body of saturated_fraction")


# %% tags=["check"]
with check("saturated_fraction"):
    assert_close(saturated_fraction(np.array([0.001, 0.5, 0.995, 0.3])), 0.5,
                 "two of the four are saturated")
    y = sigmoid(3 * rng.standard_normal((50, 40)))
    assert_close(saturated_fraction(y), diagnosis.saturated_fraction(y, 0.0, 1.0),
                 "the same as numnet.diagnosis")

# %%
for name, std in scales.items():
    weights = [rng.standard_normal((100, 100)) * std() for _ in range(5)]
    fractions = [saturated_fraction(a) for a in layer_activations(x, weights, sigmoid)]
    print(f"{name:>8}: saturated per layer", " ".join(f"{f:4.0%}" for f in fractions))

# %% [markdown]
# ## What the trace says
#
# The same three networks as numnet models, with a loss so that the trace runs backward
# too. Its findings name the problem in each case:

# %%
labels = rng.integers(0, 10, 1000)
for name, make_init in (("std 1", lambda: init.normal(1.0)),
                        ("std 0.01", lambda: init.normal(0.01)),
                        ("Glorot", lambda: "glorot_normal")):
    layers = []
    for _ in range(5):
        layers += [Dense(100, 100, init=make_init()), Sigmoid()]
    model = Sequential([*layers, Dense(100, 10)], loss="cross_entropy", seed=0)
    findings = model.trace(x[:256], labels[:256]).findings
    print(f"{name}:")
    for finding in findings[:3]:
        print("   -", finding.message[:150])
    if not findings:
        print("   no findings")

# %% [markdown]
# Even Glorot leaves a finding: its activations are healthy, but the sigmoid's slope is at
# most 0.25, so the gradient shrinks by a factor of 4 or more at every layer, thousands of
# times over five layers. (The std 0.01 network also gets an update-to-weight finding:
# weights that small are rewritten by a tenth at Adam's first step.) Tanh, whose slope is
# 1 at 0, with Glorot, and ReLU with He initialisation keep the gradient's size through
# ten layers, which is a large part of why deep networks use ReLU:

# %%
for activation, initialiser in ((Tanh, "glorot_normal"), (ReLU, "he_normal")):
    layers = []
    for _ in range(10):
        layers += [Dense(100, 100, init=initialiser), activation()]
    model = Sequential([*layers, Dense(100, 10)], loss="cross_entropy", seed=0)
    trace = model.trace(x[:256], labels[:256])
    gains = [row[3] for row in trace.backward_rows if row[3] is not None]
    print(f"{activation.__name__:>5} + {initialiser}: gradient gain through the whole net "
          f"{np.prod(gains):.2g}, findings: {[f.kind for f in trace.findings]}")
