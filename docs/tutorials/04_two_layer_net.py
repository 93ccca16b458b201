# %% [markdown]
# # 4. A two-layer network by hand
#
# Everything so far comes together here: a network with one hidden layer of ReLU units and
# a softmax output, written with plain arrays, checked numerically, and trained with
# mini-batch gradient descent on the built-in 8x8 digits. At the end the same network
# takes four lines of numnet.
#
# The network (seed notebook 002's `TwoLayerNet`):
#
# $$h = \mathrm{ReLU}(x W_1 + b_1), \qquad z = h W_2 + b_2, \qquad
# L = \mathrm{CE}(\mathrm{softmax}(z), y).$$

# %%
import os

import numpy as np

from numnet import SGD, CrossEntropy, Dense, ReLU, Sequential, gradcheck
from numnet.data import load_digits, train_dev_test_split
from numnet.exercises import assert_close, check

QUICK = os.environ.get("NUMNET_TUTORIAL_QUICK") == "1"  # the test suite runs it shorter
rng = np.random.default_rng(0)

# %% [markdown]
# ## ReLU, forward and backward
#
# $\mathrm{ReLU}(x) = \max(x, 0)$ passes its input where it is positive and 0 elsewhere, so
# its local derivative is 1 where $x > 0$ and 0 elsewhere: backward, the gradient passes
# where the input was positive and is cut where it was not.
#
# Seed notebook 002's ReLU wrote zeros *into the gradient it was given*
# (`dout[mask] = 0`). That array belongs to the layer above, which may still need it (or
# may hand the same array to two places): a backward pass must never modify its argument.

# %% [markdown]
# ## Exercise 1: ReLU

# %% tags=["exercise"]
def relu_forward(x):
    """Return max(x, 0)."""
    raise NotImplementedError("fill in the body of relu_forward")


def relu_backward(x, dout):
    """Return dL/dx given the forward input x and dout = dL/dy, without changing dout."""
    raise NotImplementedError("fill in the body of relu_backward")


# %% tags=["check"]
with check("ReLU"):
    x = np.array([[-2.0, 0.5, 0.0], [3.0, -0.1, 1.0]])
    assert_close(relu_forward(x), [[0, 0.5, 0], [3, 0, 1]], "relu_forward")
    dout = np.arange(6.0).reshape(2, 3) + 1
    kept = dout.copy()
    assert_close(relu_backward(x, dout), [[0, 2, 0], [4, 0, 6]],
                 "relu_backward passes dout where x > 0 (the derivative at 0 is taken as 0)")
    assert np.array_equal(dout, kept), "relu_backward changed the dout it was given"

# %% [markdown]
# ## The loss and its gradient
#
# The softmax turns the scores $z$ into probabilities and the cross-entropy takes the
# log-probability of the right class, averaged over the batch. Tutorial 5 derives its
# gradient, which is remarkably simple: $\partial L / \partial z = (\mathrm{softmax}(z) -
# \mathrm{onehot}(y)) / N$. Here numnet's `CrossEntropy` computes both:

# %%
cross_entropy = CrossEntropy()


def softmax_cross_entropy(z, y):
    """The mean cross-entropy of the logits z (N, C) for labels y, and dL/dz."""
    loss = cross_entropy(z, y)
    return loss, cross_entropy.backward()


# %% [markdown]
# ## Exercise 2: the loss and every gradient
#
# `params` is a dict with `W1` $(D, H)$, `b1` $(H,)$, `W2` $(H, C)$ and `b2` $(C,)$.
# Return the loss and a dict of gradients under the same keys. Go forward keeping what
# backward needs, then backward through the second affine map, the ReLU and the first
# affine map (tutorial 2's formulas and your ReLU).

# %% tags=["exercise"]
def loss_and_grads(params, X, y):
    """Return (loss, grads) of the two-layer network on the batch (X, y)."""
    raise NotImplementedError("fill in the body of loss_and_grads")


# %% tags=["check"]
def init_params(D, H, C, rng):
    """He initialisation for the ReLU layer, Glorot for the output layer."""
    return {"W1": rng.standard_normal((D, H)) * np.sqrt(2 / D), "b1": np.zeros(H),
            "W2": rng.standard_normal((H, C)) * np.sqrt(2 / (H + C)), "b2": np.zeros(C)}


with check("loss_and_grads against numerical gradients"):
    small = init_params(5, 7, 3, rng)
    small["b1"] += 0.1  # non-zero biases, so their gradients are tested too
    Xs, ys = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    loss, grads = loss_and_grads(small, Xs, ys)
    assert set(grads) == {"W1", "b1", "W2", "b2"}, "a gradient for each parameter"
    for name, value in small.items():
        numerical = gradcheck.numerical_gradient(lambda: loss_and_grads(small, Xs, ys)[0],
                                                 value)
        assert_close(grads[name], numerical, f"d loss / d {name}", rtol=1e-5, atol=1e-8)

# %% [markdown]
# ## Exercise 3: one step of gradient descent
#
# Update every parameter **in place**: $\theta \leftarrow \theta - \eta\, \partial L /
# \partial \theta$. (Seed notebook 002 returned the new values into a name nobody read.)

# %% tags=["exercise"]
def sgd_step(params, grads, lr):
    """Update every array of params in place."""


# %% tags=["check"]
with check("sgd_step updates in place"):
    params = {"W": np.ones((2, 2)), "b": np.zeros(2)}
    W = params["W"]
    sgd_step(params, {"W": np.full((2, 2), 0.5), "b": np.ones(2)}, lr=0.1)
    assert params["W"] is W, "update the arrays themselves, not new ones"
    assert_close(params["W"], np.full((2, 2), 0.95), "W - lr * dW")
    assert_close(params["b"], np.full(2, -0.1), "b - lr * db")

# %% [markdown]
# ## Training on the digits
#
# Mini-batch gradient descent: shuffle the training set every epoch, cut it into batches
# of 32, take one step per batch, and watch the accuracy on held-out data.

# %%
X, y = load_digits(flatten=True, scale=True)  # (1797, 64) in [0, 1], labels 0-9
(X_train, y_train), (X_val, y_val), _ = train_dev_test_split(
    X.astype(np.float64), y, dev=0.2, test=0.0, stratify=True, seed=0)
params = init_params(64, 64, 10, np.random.default_rng(1))


def accuracy(params, X, y):
    h = relu_forward(X @ params["W1"] + params["b1"])
    return float(np.mean((h @ params["W2"] + params["b2"]).argmax(axis=1) == y))


epochs = 8 if QUICK else 30
for epoch in range(epochs):
    order = rng.permutation(len(X_train))
    for start in range(0, len(order), 32):
        batch = order[start:start + 32]
        loss, grads = loss_and_grads(params, X_train[batch], y_train[batch])
        sgd_step(params, grads, lr=0.1)
    if epoch % 4 == 3 or epoch == epochs - 1:
        print(f"epoch {epoch + 1}: loss {loss:.3f}, validation accuracy "
              f"{accuracy(params, X_val, y_val):.1%}")

# %% [markdown]
# ## The same network in numnet
#
# `Dense` is the affine map with its backward pass, `ReLU` yours, `CrossEntropy` the loss
# from the logits, `fit` the loop above (with shuffling, batches, validation and a guard
# against divergence):

# %%
model = Sequential([Dense(64, 64), ReLU(), Dense(64, 10)], loss="cross_entropy", seed=0)
history = model.fit(X_train, y_train, epochs=epochs, batch_size=32, optimizer=SGD(0.1),
                    validation_data=(X_val, y_val), verbose=0, seed=0)
print(f"numnet: validation accuracy {history.history['val_accuracy'][-1]:.1%}")
print(model.trace(X_val[:32], y_val[:32]))
