# %% [markdown]
# # 10. Overfitting 300 samples, and three cures: dropout, L2, early stopping
#
# Seed notebook 002 trained a two-layer network on 300 samples and got 100% on them and
# about 79% on held-out data: it learnt the training set by heart. This tutorial does the
# same on purpose with the digits, then tries the three standard cures, each of which you
# write once by hand.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from numnet import (
    SGD,
    CrossEntropy,
    Dense,
    Dropout,
    EarlyStopping,
    LambdaCallback,
    ReLU,
    Sequential,
)
from numnet.data import load_digits
from numnet.exercises import assert_close, check

QUICK = os.environ.get("NUMNET_TUTORIAL_QUICK") == "1"  # the test suite runs it shorter
rng = np.random.default_rng(0)

# %% [markdown]
# ## A network too big for its data
#
# 300 training images, the other 1497 held out, and a network with about 85,000 weights:
# nearly 300 weights per training sample.

# %%
X, y = load_digits(flatten=True, scale=True)
order = np.random.default_rng(0).permutation(len(X))
train, val = order[:300], order[300:]
X_train, y_train, X_val, y_val = X[train], y[train], X[val], y[val]
epochs = 40 if QUICK else 150


def network(dropout=0.0, l2=0.0):
    layers = [Dense(64, 256), ReLU()]
    layers += [Dropout(dropout)] if dropout else []
    layers += [Dense(256, 256), ReLU()]
    layers += [Dropout(dropout)] if dropout else []
    return Sequential([*layers, Dense(256, 10)], loss="cross_entropy", seed=0, l2=l2)


def train(model, callbacks=()):
    """Fit; the history also gets "val_ce", the validation cross-entropy alone (numnet's
    val_loss includes the L2 term, as the training loss does)."""
    val_ce = []
    record = LambdaCallback(on_epoch_end=lambda epoch, logs: val_ce.append(
        CrossEntropy()(model.predict_logits(X_val), y_val)))
    history = model.fit(X_train, y_train, epochs=epochs, optimizer=SGD(0.05, momentum=0.9),
                        validation_data=(X_val, y_val), callbacks=[record, *callbacks],
                        verbose=0, seed=0)
    history.history["val_ce"] = val_ce
    return history


plain = train(network())
print(f"train accuracy {plain.history['accuracy'][-1]:.1%}, validation accuracy "
      f"{plain.history['val_accuracy'][-1]:.1%}")
print(f"train loss {plain.history['loss'][-1]:.4f}, validation loss "
      f"{plain.history['val_loss'][-1]:.3f} (lowest {min(plain.history['val_loss']):.3f})")

# %% [markdown]
# 100% on the training set, 95% on the rest, and the training loss goes to nearly 0 while
# the validation loss stops falling after a few epochs and drifts up again: past that
# point, every step fits the quirks of 300 particular images better and the rest of the
# world worse. The three cures attack this in different ways.

# %% [markdown]
# ## Dropout
#
# During training, each unit of a layer is kept with probability $1 - p$ and zeroed
# otherwise, with a fresh random mask for every batch. No unit can rely on a particular
# other unit being there, so the network cannot build the fragile co-adaptations that
# memorising needs: it is like training a crowd of thinned networks that share weights.
#
# *Inverted* dropout scales the kept units by $1/(1-p)$ during training, so the expected
# value of every unit is unchanged and evaluation needs no change at all: in evaluation
# mode dropout is the identity. Backward, the gradient flows only through the kept units,
# scaled the same way: $\partial x = g \odot \text{mask}$ where the mask holds $0$ or
# $1/(1-p)$.

# %% [markdown]
# ## Exercise 1: inverted dropout

# %% tags=["exercise"]
def dropout_forward(x, p, rng):
    """Training-mode dropout: (out, mask), mask holding 0 or 1 / (1 - p)."""
    raise NotImplementedError("fill in the body of dropout_forward")


def dropout_backward(dout, mask):
    """dL/dx of dropout with this mask."""
    raise NotImplementedError("fill in the body of dropout_backward")


# %% tags=["check"]
with check("inverted dropout"):
    x = rng.uniform(1, 2, (2000, 50))
    out, mask = dropout_forward(x, 0.3, np.random.default_rng(1))
    assert out.shape == x.shape and mask.shape == x.shape, "out and mask of x's shape"
    assert set(np.unique(mask).round(6)) == {0.0, round(1 / 0.7, 6)}, \
        "the mask holds 0 where dropped and 1 / (1 - p) where kept"
    assert_close(np.mean(mask == 0), 0.3, "about a fraction p dropped", atol=0.01)
    assert_close(out.mean(), x.mean(), "the mean is kept (inverted dropout)", rtol=0.01)
    assert_close(out, x * mask, "out = x * mask")
    dout = rng.standard_normal(x.shape)
    assert_close(dropout_backward(dout, mask), dout * mask, "backward: dout * mask")

# %% [markdown]
# ## L2 regularisation
#
# Add $\frac{\lambda}{2}\sum W^2$ over the weights (not the biases) to the loss. Its
# gradient is $\lambda W$: every step pulls every weight a little towards 0, so only the
# weights the data keeps pushing for stay large, and the function the network computes
# becomes smoother. In numnet, `Sequential(..., l2=lam)` adds it to the loss and to the
# gradients of every weight matrix (`decay_keys`, the `W` of Dense layers).

# %% [markdown]
# ## Exercise 2: the L2 penalty and its gradients

# %% tags=["exercise"]
def l2_penalty_and_grads(weights, lam):
    """For a list of weight arrays: (lam / 2 * sum of all squares, [lam * W, ...])."""
    raise NotImplementedError("fill in the body of l2_penalty_and_grads")


# %% tags=["check"]
with check("l2_penalty_and_grads"):
    model = network(l2=0.01)
    weights = [layer.params["W"].astype(np.float64) for layer in model.layers
               if "W" in layer.params]
    penalty, grads = l2_penalty_and_grads(weights, 0.01)
    assert_close(penalty, model.l2_penalty(), "numnet's Sequential.l2_penalty", rtol=1e-5)
    model.zero_grad()
    model.add_l2_gradient()
    expected = [layer.grads["W"] for layer in model.layers if "W" in layer.grads]
    assert len(grads) == len(expected), "one gradient per weight array"
    for k, (mine, theirs) in enumerate(zip(grads, expected, strict=True)):
        assert_close(mine, theirs, f"the gradient of weight {k}", rtol=1e-5, atol=1e-8)

# %% [markdown]
# ## Early stopping
#
# Watch the validation loss after every epoch; stop when it has not improved for
# `patience` epochs in a row, and keep the weights of the best epoch. It costs nothing and
# needs no tuning beyond the patience.

# %% [markdown]
# ## Exercise 3: where to stop
#
# Given the validation loss of each epoch, return `(stop, best)`: the epoch (from 0) after
# which training stops, and the epoch with the lowest loss. An epoch *improves* when its
# loss is below the best so far; training stops after `patience` epochs in a row that do
# not improve, or after the last epoch.

# %% tags=["exercise"]
def early_stopping(val_losses, patience):
    """(stop, best) for these validation losses."""
    return len(val_losses) - 1, 0


# %% tags=["check"]
with check("early_stopping"):
    assert early_stopping([1.0, 0.8, 0.7, 0.75, 0.72, 0.71, 0.9], patience=3) == (5, 2), \
        "three epochs without beating 0.7: stop after epoch 5, best epoch 2"
    assert early_stopping([1.0, 0.9, 0.8], patience=2) == (2, 2), "still improving at the end"
    assert early_stopping([0.5, 0.6, 0.4, 0.45], patience=1) == (1, 0), "patience 1"
    losses = list(plain.history["val_loss"])
    stopper = EarlyStopping(patience=10)
    stopped = train(network(), [stopper])
    assert early_stopping(losses, 10) == (len(stopped) - 1, stopper.best_epoch), \
        "the same as numnet's EarlyStopping on the plain network's validation losses"

# %% [markdown]
# ## The cures compared

# %%
runs = {"plain": plain,
        "dropout 0.5": train(network(dropout=0.5)),
        "L2 1e-3": train(network(l2=1e-3)),
        "early stopping": train(network(), [EarlyStopping(patience=10,
                                                          restore_best_weights=True)]),
        "all three": train(network(dropout=0.5, l2=1e-3),
                           [EarlyStopping(patience=20, restore_best_weights=True)])}
figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
for name, history in runs.items():
    val_ce = history.history["val_ce"]
    left.plot(val_ce, label=name)
    right.plot(history.history["val_accuracy"], label=name)
    best = int(np.argmin(val_ce))
    print(f"{name:>15}: {len(history):3d} epochs, lowest validation cross-entropy "
          f"{val_ce[best]:.3f} (epoch {best + 1}), last {val_ce[-1]:.3f}; validation "
          f"accuracy at the end {history.history['val_accuracy'][-1]:.1%}, training "
          f"accuracy {history.history['accuracy'][-1]:.1%}")
left.plot(plain.history["loss"], "k:", label="plain, training loss")
left.set_yscale("log")
left.set_title("validation cross-entropy")
right.set_title("validation accuracy")
for ax in (left, right):
    ax.set_xlabel("epoch")
    ax.legend(fontsize=8)
figure.tight_layout()
plt.show()

# %% [markdown]
# The dotted line is the heart of it: the training loss falls by orders of magnitude while
# the validation cross-entropy bottoms out within ten epochs and then drifts up. On these
# easy 8x8 digits the cures win modestly, and differently: dropout and L2 (and better, all
# three together) lower the validation cross-entropy below the plain network's best and
# keep it from drifting; early stopping does not change the curve but cuts it at its
# lowest point, for free, after a fifth of the epochs. Accuracy hardly moves: a network
# can get more *confident* on the wrong examples long before it gets more of them wrong,
# which is why the loss is the better thing to watch. With 300 samples the biggest cure of
# all is still more data; regularisation only makes the most of the data there is.
