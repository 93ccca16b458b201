# %% [markdown]
# # 11. MNIST with a multi-layer perceptron
#
# The real thing: 70,000 handwritten digits of 28x28 pixels, a network of two hidden
# layers, and about 98% on the test set after a few minutes on a laptop's CPU. Along the
# way: the preprocessing seed notebook 003 forgot, the numbers to watch while training,
# and what numnet says when something is off.
#
# The tutorial uses MNIST when it finds the files (in `$NUMNET_MNIST_DIR`, numnet's cache,
# or by downloading them) and the built-in 8x8 digits otherwise, so it runs anywhere.

# %%
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np

from numnet import (
    CrossEntropy,
    Dense,
    Dropout,
    ReLU,
    Sequential,
    TrainingDiverged,
    TrainingWarning,
)
from numnet.data import load_digits, load_mnist, train_dev_test_split
from numnet.exercises import assert_close, check
from numnet.metrics import confusion_matrix

QUICK = os.environ.get("NUMNET_TUTORIAL_QUICK") == "1"  # the test suite runs a subset


def load_data():
    """(name, X_train, y_train, X_test, y_test, max pixel value): MNIST when it can be
    found or downloaded, else the built-in 8x8 digits."""
    try:
        (X_train, y_train), (X_test, y_test) = load_mnist(
            path=os.environ.get("NUMNET_MNIST_DIR"), download=not QUICK)
        return "MNIST", X_train, y_train, X_test, y_test, 255
    except (OSError, ValueError) as error:  # not found, no network, or a damaged file
        print("MNIST is not available:", str(error).splitlines()[0][:120])
        X, y = load_digits()
        (X_train, y_train), _, (X_test, y_test) = train_dev_test_split(
            X, y, dev=0.0, test=0.2, stratify=True, seed=0)
        return "the 8x8 digits", X_train, y_train, X_test, y_test, 16


name, images_train, y_train, images_test, y_test, max_value = load_data()
if QUICK:  # a subset keeps the test suite fast; remove these lines to use everything
    images_train, y_train = images_train[:6000], y_train[:6000]
    images_test, y_test = images_test[:1000], y_test[:1000]
print(f"{name}: {images_train.shape} training images ({images_train.dtype}, values "
      f"{images_train.min()}..{images_train.max()}), {images_test.shape[0]} test images")

# %% [markdown]
# ## Preprocessing
#
# The network takes rows of features: each image becomes a row of $28 \times 28 = 784$
# pixels. And the pixels must be scaled. Raw values of 0 to 255 make the first layer's
# pre-activations about a hundred times larger than its initialisation assumes (tutorial
# 7): ReLUs die, softmaxes saturate, and the loss explodes. Seed notebook 003 fed raw
# pixels to full-batch gradient descent, which turned to NaN at iteration 29. Dividing by
# the largest value puts them in $[0, 1]$, which is enough here (standardising each pixel,
# `numnet.data.Standardizer`, also works).

# %% [markdown]
# ## Exercise 1: flatten and scale

# %% tags=["exercise"]
def preprocess(images, max_value):
    """Images (N, H, W) of integers 0..max_value to float32 rows (N, H*W) in [0, 1]."""
    raise NotImplementedError("fill in the body of preprocess")


# %% tags=["check"]
with check("preprocess"):
    fake = np.random.default_rng(0).integers(0, 256, (5, 4, 3)).astype(np.uint8)
    rows = preprocess(fake, 255)
    assert rows.shape == (5, 12), "one row of H * W pixels per image"
    assert rows.dtype == np.float32, "float32, numnet's default precision"
    assert_close(rows, fake.reshape(5, 12) / 255, "pixels divided by their largest value")

# %%
X_train = preprocess(images_train, max_value)
X_test = preprocess(images_test, max_value)
n_features, n_classes = X_train.shape[1], 10

# %% [markdown]
# ## The model
#
# Two hidden layers of ReLUs (He initialisation, which numnet picks by itself for a Dense
# layer followed by a ReLU), dropout against overfitting (tutorial 10), and a last Dense
# layer giving 10 *logits*, with `loss="cross_entropy"` working from them (tutorial 5): no
# softmax layer at the end.

# %% [markdown]
# ## Exercise 2: build the network
#
# Return a `Sequential` for `n_features` inputs and `n_classes` outputs: for instance
# 784-256-128-10 with ReLUs and a `Dropout(0.2)` after each hidden layer, and
# `loss="cross_entropy"`, `seed=0`.

# %% tags=["exercise"]
def build_mlp(n_features, n_classes):
    """A Sequential MLP classifier giving logits."""
    raise NotImplementedError("fill in the body of build_mlp")


# %% tags=["check"]
with check("build_mlp"):
    model = build_mlp(n_features, n_classes)
    assert isinstance(model, Sequential), "return a numnet Sequential"
    assert model.output_shape((n_features,)) == (n_classes,), f"{n_classes} outputs"
    assert isinstance(model.loss, CrossEntropy), 'loss="cross_entropy" (from logits)'
    assert sum(isinstance(layer, Dense) for layer in model.layers) >= 2, \
        "at least one hidden layer: two Dense layers or more"
    assert type(model.layers[-1]).__name__ == "Dense", "the last layer gives the logits"
    print(model.summary())

# %% [markdown]
# ## Training
#
# Adam with its default rate, batches of 128, and a tenth of the training images held out
# to watch the validation loss. On all of MNIST, 10 epochs take a few minutes.

# %%
model = build_mlp(n_features, n_classes)
history = model.fit(X_train, y_train, epochs=2 if QUICK else 10, batch_size=128,
                    validation_split=0.1, verbose=0 if QUICK else 1, seed=0)
for epoch, (loss, val) in enumerate(zip(history.history["loss"],
                                        history.history["val_accuracy"], strict=True)):
    print(f"epoch {epoch + 1}: training loss {loss:.4f}, validation accuracy {val:.2%}")
scores = model.evaluate(X_test, y_test)
print(f"test accuracy {scores['accuracy']:.2%} (loss {scores['loss']:.4f})")

# %% [markdown]
# ## Where it goes wrong
#
# The confusion matrix counts, for each true digit (row), what the network predicted
# (column); the diagonal is right. The images it gets wrong are often ones a human would
# hesitate over too.

# %%
predicted = model.predict(X_test)
print(confusion_matrix(y_test, predicted, num_classes=10))
wrong = np.flatnonzero(predicted != y_test)[:16]
side = images_test.shape[1]
figure, axes = plt.subplots(2, 8, figsize=(12, 3.6))
for ax, index in zip(axes.flat, wrong, strict=False):  # fewer than 16 mistakes is fine
    ax.imshow(images_test[index].reshape(side, side), cmap="gray")
    ax.set_title(f"{predicted[index]} (true {y_test[index]})", fontsize=9, color="tab:red")
for ax in axes.flat:
    ax.set_axis_off()
plt.show()

# %% [markdown]
# ## Looking inside
#
# The trace of one batch: every layer's output statistics, the fraction of dead ReLU
# units, each layer's gradient gain and the update-to-weight ratio of one Adam step. A
# healthy network has no findings.

# %%
print(model.trace(X_test[:64], y_test[:64]))

# %% [markdown]
# ## When the pixels are not scaled
#
# Train the same network on the raw 0-255 values (here with plain SGD, as in seed 003).
# numnet's health check warns during training, long before anything turns NaN, and says
# what to do:

# %%
raw = images_train.reshape(len(images_train), -1).astype(np.float32)[:2000]
stopped = None
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", TrainingWarning)
    try:
        build_mlp(n_features, n_classes).fit(raw, y_train[:2000], epochs=2, optimizer="sgd",
                                             verbose=0)
    except TrainingDiverged as error:
        stopped = error
for warning in caught:
    print("warning:", warning.message, "\n")
if stopped is not None:
    print("then the divergence guard stopped training:", stopped)

# %% [markdown]
# The warnings come first, while the loss is merely large; the guard stops training when
# a number becomes infinite, keeping the weights from before the bad batch, and its
# message says the same things in the same order.
