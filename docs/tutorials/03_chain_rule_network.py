# %% [markdown]
# # 3. The chain rule across a whole network
#
# Tutorial 2 gave one layer's backward pass. A network is a chain of them, and its
# gradient is the chain rule applied once per layer, from the loss back to the input. This
# tutorial derives the recursion for a stack of fully connected layers with activations,
# writes it as one loop, and checks it against numnet.

# %%
import numpy as np

from numnet import Dense, LeakyReLU, Sequential
from numnet.exercises import assert_close, check
from numnet.init import normal

rng = np.random.default_rng(0)

# %% [markdown]
# ## The network as a recursion
#
# Number the layers $0 \dots n-1$. Layer $i$ takes the activations $x_i$ (shape
# $(N, D_i)$, one row per sample), computes the pre-activation $z_i$ and applies an
# activation $f_i$ element by element:
#
# $$z_i = x_i W_i + b_i, \qquad x_{i+1} = f_i(z_i).$$
#
# $x_0$ is the input, $x_n$ the output, and the loss is $L(x_n, t)$ for targets $t$.
# Unfolded, $L = L(f_{n-1}(f_{n-2}(\dots) W_{n-1} + b_{n-1}), t)$: the parameters of layer 0
# sit inside every other layer, so their derivative needs the most factors of the chain
# rule.
#
# Back-propagation computes those factors once each, from the top. Call
# $\delta_i = \partial L / \partial z_i$, the gradient at layer $i$'s pre-activation. Then:
#
# 1. Start with $\partial L / \partial x_n$, the loss's own derivative.
# 2. Through the activation (element-wise, so the chain rule is an element-wise product):
#    $\delta_i = \dfrac{\partial L}{\partial x_{i+1}} \odot f_i'(z_i)$.
# 3. Through the affine map, as in tutorial 2:
#    $\dfrac{\partial L}{\partial W_i} = x_i^T \delta_i$,
#    $\dfrac{\partial L}{\partial b_i} = \sum_n \delta_{i}$,
#    $\dfrac{\partial L}{\partial x_i} = \delta_i W_i^T$.
# 4. Step 3's $\partial L / \partial x_i$ is step 2's input for layer $i - 1$: repeat down to
#    layer 0.
#
# (Seed notebook 001 derives the same thing with samples as columns, so its products come
# out transposed: $\delta x^T$ and $W^T \delta$. Two of its mistakes are worth knowing: its
# generic loop multiplied by $f$ where the recursion needs $f'$, and it initialised the
# weights with a scale of $1/(\text{outs}\cdot\text{ins})$, so that every output was 0 and
# nothing trained. Both are silent: the code runs.)
#
# The forward pass must keep every $x_i$ and $z_i$, because the backward pass needs them.

# %% [markdown]
# ## Exercise 1: the forward pass, keeping what backward needs

# %% tags=["exercise"]
def forward(x, Ws, bs, fs):
    """Return (xs, zs): xs = [x_0, ..., x_n] (n + 1 arrays), zs = [z_0, ..., z_(n-1)]."""
    raise NotImplementedError("forward: loop over the layers, keeping every x and z")


# %% [markdown]
# The check builds the same network in numnet (Dense layers and LeakyReLU activations with
# slope 0.1, as seed 001 used) and copies its weights into plain arrays.

# %% tags=["check"]
def leaky_relu(z, alpha=0.1):
    return np.where(z > 0, z, alpha * z)


def leaky_relu_slope(z, alpha=0.1):
    return np.where(z > 0, 1.0, alpha)


sizes = [4, 6, 5, 3]
model = Sequential([Dense(4, 6), LeakyReLU(0.1), Dense(6, 5), LeakyReLU(0.1),
                    Dense(5, 3), LeakyReLU(0.1)], loss="mse", dtype="float64", seed=3)
Ws = [model.layers[i].params["W"].copy() for i in (0, 2, 4)]
bs = [rng.standard_normal(n) * 0.1 for n in sizes[1:]]
for i, b in zip((0, 2, 4), bs, strict=True):
    model.layers[i].params["b"][...] = b
x, t = rng.standard_normal((8, 4)), rng.standard_normal((8, 3))

with check("forward through three layers"):
    xs, zs = forward(x, Ws, bs, [leaky_relu] * 3)
    assert len(xs) == 4 and len(zs) == 3, "xs holds the input and one output per layer"
    assert_close(zs[0], x @ Ws[0] + bs[0], "z_0 = x_0 W_0 + b_0")
    assert_close(xs[-1], model.forward(x), "the network's output")

# %% [markdown]
# ## Exercise 2: the backward pass, as one loop

# %% tags=["exercise"]
def backward(xs, zs, Ws, dfs, grad_out):
    """Given grad_out = dL/dx_n, return (dWs, dbs), the gradients of every layer, in the
    order of the layers (layer 0 first)."""
    raise NotImplementedError("backward: walk the layers from the last to the first")


# %% [markdown]
# The check compares with numnet's gradients of a mean squared error. numnet's
# `MeanSquaredError` is $L = \frac{1}{N M}\sum (x_n - t)^2$ over all $N M$ entries, so
# $\partial L / \partial x_n = 2 (x_n - t) / (N M)$.

# %% tags=["check"]
with check("backward through three layers"):
    xs, zs = forward(x, Ws, bs, [leaky_relu] * 3)
    model.loss_and_grad(x, t)  # numnet's gradients, into each layer's grads
    grad_out = 2 * (xs[-1] - t) / xs[-1].size
    dWs, dbs = backward(xs, zs, Ws, [leaky_relu_slope] * 3, grad_out)
    assert len(dWs) == len(dbs) == 3, "one dW and one db per layer, layer 0 first"
    for k, i in enumerate((0, 2, 4)):
        assert_close(dWs[k], model.layers[i].grads["W"], f"dW of layer {k}")
        assert_close(dbs[k], model.layers[i].grads["b"], f"db of layer {k}")

# %% [markdown]
# ## Why the seed's initialisation trained nothing
#
# With weights drawn at scale $1/(\text{outs}\cdot\text{ins})$, each layer multiplies the
# size of its input by about $\sqrt{\text{ins}}/(\text{outs}\cdot\text{ins})$: far below 1.
# Forward, the activations shrink layer after layer; backward, $\delta_i W_i^T$ shrinks the
# gradient the same way, so the first layers receive almost nothing. numnet's trace
# measures this and says so:

# %%
width = 32
tiny = Sequential([Dense(4, width, init=normal(1 / (4 * width))), LeakyReLU(0.1),
                   Dense(width, width, init=normal(1 / width ** 2)), LeakyReLU(0.1),
                   Dense(width, width, init=normal(1 / width ** 2)), LeakyReLU(0.1),
                   Dense(width, 3, init=normal(1 / (3 * width)))], loss="mse", seed=0)
trace = tiny.trace(rng.standard_normal((16, 4)), rng.standard_normal((16, 3)))
for finding in trace.findings:
    print("-", finding)

# %% [markdown]
# The update-to-weight findings say the same from the other side: with weights this small,
# even one step of Adam (about `lr` per entry) rewrites most of each weight.
#
# With numnet's default initialisation (He for layers followed by a ReLU-like activation,
# Glorot otherwise; tutorial 7 shows why) the same network has no such finding:

# %%
default = Sequential([Dense(4, width), LeakyReLU(0.1), Dense(width, width), LeakyReLU(0.1),
                      Dense(width, width), LeakyReLU(0.1), Dense(width, 3)], loss="mse",
                     seed=0)
print(default.trace(rng.standard_normal((16, 4)), rng.standard_normal((16, 3))).findings)
