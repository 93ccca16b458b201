# %% [markdown]
# # 12. MNIST with a convolutional network
#
# The MLP of tutorial 11 sees an image as a row of 784 unrelated numbers: shift a digit by
# one pixel and, to it, every input has changed. A convolutional network looks at small
# patches with the same few weights everywhere, so it knows from the start that nearby
# pixels belong together and that a stroke is a stroke wherever it is. This tutorial
# writes a convolution and a max-pooling by hand, checks them against numnet's `Conv2D`
# and `MaxPool2D`, and trains a small CNN on MNIST (or the 8x8 digits when MNIST is not
# available).

# %%
import os

import numpy as np

from numnet import (
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    ReLU,
    Reshape,
    Sequential,
    gradcheck,
)
from numnet.data import load_digits, load_mnist, train_dev_test_split
from numnet.exercises import assert_close, check

QUICK = os.environ.get("NUMNET_TUTORIAL_QUICK") == "1"  # the test suite runs a subset
rng = np.random.default_rng(0)

# %% [markdown]
# ## Convolution
#
# Images are batches of shape $(N, C, H, W)$: samples, channels (1 for grey levels),
# height, width. A convolution layer has a kernel $W$ of shape
# $(C_\text{out}, C_\text{in}, k, k)$ and a bias per output channel. Each output channel
# slides its $C_\text{in} \times k \times k$ kernel over the input and, at every position,
# takes the dot product with the patch under it:
#
# $$y_{n,o,i,j} = b_o + \sum_{c}\sum_{u=0}^{k-1}\sum_{v=0}^{k-1}
#   W_{o,c,u,v}\; x_{n,c,\,i s + u,\, j s + v}$$
#
# with stride $s$ (how far the kernel moves each step), after padding the input with $p$
# zeros on every side. The output is $\lfloor (H + 2p - k)/s \rfloor + 1$ positions high
# (and the same formula across). A $3 \times 3$ kernel with padding 1 and stride 1 keeps
# the size.
#
# A $3\times3$ convolution from 1 to 8 channels has $8 \cdot 9 + 8 = 80$ weights, however
# large the image; a Dense layer from 784 pixels to 8 units has 6,280.

# %% [markdown]
# ## Exercise 1: the output size

# %% tags=["exercise"]
def conv_output_size(size, kernel, stride=1, padding=0):
    """Output height (or width) of a convolution or pooling over `size` input pixels."""
    raise NotImplementedError("fill in the body of conv_output_size")


# %% tags=["check"]
with check("conv_output_size"):
    assert conv_output_size(28, 3, padding=1) == 28, "3x3, padding 1: the same size"
    assert conv_output_size(28, 5) == 24, "5x5 without padding loses 4 pixels"
    assert conv_output_size(7, 3, stride=2) == 3, "stride 2"
    for size, kernel, stride, padding in ((10, 3, 1, 0), (9, 4, 2, 1), (12, 5, 3, 2)):
        layer = Conv2D(1, 1, kernel, stride=stride, padding=padding)
        assert conv_output_size(size, kernel, stride, padding) == \
            layer.output_shape((1, size, size))[1], "the same as numnet's Conv2D"

# %% [markdown]
# ## Exercise 2: a convolution, by hand
#
# Loop over the output positions $(i, j)$ only; at each one, take the patch
# `x[:, :, i*s : i*s+k, j*s : j*s+k]` of every sample and channel and contract it with the
# kernel (`np.tensordot(patch, W, axes=([1, 2, 3], [1, 2, 3]))` gives $(N, C_\text{out})$).
# Pad first with `np.pad`.

# %% tags=["exercise"]
def conv2d_naive(x, W, b, stride=1, padding=0):
    """y (N, C_out, H_out, W_out) for x (N, C_in, H, W) and W (C_out, C_in, k, k)."""
    raise NotImplementedError("fill in the body of conv2d_naive")


# %% tags=["check"]
with check("conv2d_naive"):
    for stride, padding in ((1, 0), (1, 1), (2, 1)):
        layer = Conv2D(3, 4, 3, stride=stride, padding=padding, dtype="float64")
        layer.params["b"][...] = rng.standard_normal(4)
        x = rng.standard_normal((2, 3, 7, 7))
        assert_close(conv2d_naive(x, layer.params["W"], layer.params["b"], stride, padding),
                     layer(x), f"numnet's Conv2D with stride {stride}, padding {padding}")

# %% [markdown]
# numnet computes the same thing without the Python loop: it copies every patch into one
# row of a matrix (*im2col*) and does the whole convolution as one matrix product, where
# the CPU is fast. Backward, the kernel's gradient is the same product with the output
# gradient, and the input's gradient scatters the patches back.

# %% [markdown]
# ## Max pooling
#
# A $2\times2$ max pooling keeps the largest value of each non-overlapping $2\times2$ block
# of every channel: it halves the height and width, and makes the network a little
# indifferent to where exactly a feature is. Backward, the gradient goes to the position
# of the maximum and nowhere else (like a ReLU, it routes rather than computes).

# %% [markdown]
# ## Exercise 3: max pooling, by hand

# %% tags=["exercise"]
def maxpool_naive(x, k):
    """The maximum of each non-overlapping k x k block of x (N, C, H, W)."""
    raise NotImplementedError("fill in the body of maxpool_naive")


# %% tags=["check"]
with check("maxpool_naive"):
    x = rng.standard_normal((2, 3, 8, 6))
    assert_close(maxpool_naive(x, 2), MaxPool2D(2, dtype="float64")(x), "numnet's MaxPool2D")
    assert maxpool_naive(np.arange(16.0).reshape(1, 1, 4, 4), 2).ravel().tolist() == \
        [5.0, 7.0, 13.0, 15.0], "the largest value of each 2x2 block"

# %% [markdown]
# ## The network
#
# The images arrive as rows of pixels (tutorial 11's `preprocess`); `Reshape((1, H, W))`
# turns each row back into a one-channel image. Then two rounds of convolution, ReLU and
# pooling (the image shrinks by 2 each time while the channels grow), `Flatten`, and a
# Dense layer to the 10 logits:
#
# ```
# (N, H*W) -> (N, 1, H, W) -> conv 3x3, 8 -> pool 2 -> conv 3x3, 16 -> pool 2 -> dense 10
# ```

# %% [markdown]
# ## Exercise 4: build the CNN
#
# For square images of `side` pixels (28 for MNIST, 8 for the digits), with
# `loss="cross_entropy"` and `seed=0`. The Dense layer's input size is the number of
# values left after the second pooling.

# %% tags=["exercise"]
def build_cnn(side, n_classes=10):
    """The CNN above as a Sequential taking rows of side * side pixels."""
    raise NotImplementedError("fill in the body of build_cnn")


# %% tags=["check"]
with check("build_cnn"):
    for side in (28, 8):
        model = build_cnn(side)
        assert isinstance(model, Sequential), "return a numnet Sequential"
        assert model.output_shape((side * side,)) == (10,), f"10 logits for {side}x{side}"
        assert sum(isinstance(layer, Conv2D) for layer in model.layers) == 2, "two Conv2D"
    print(build_cnn(28).summary(input_shape=(28 * 28,)))

# %% [markdown]
# Every layer's backward pass is checked numerically like any other, here on a small
# version of the network (float64, a batch of 2):

# %%
small = build_cnn(8)
report = gradcheck.check_model(small, rng.random((2, 64)), np.array([3, 7]))
print("worst relative error:", max(report.values()))

# %% [markdown]
# ## Training

# %%
def load_data():
    """(X_train, y_train, X_test, y_test, side) as float32 rows in [0, 1]."""
    try:
        (X_train, y_train), (X_test, y_test) = load_mnist(
            path=os.environ.get("NUMNET_MNIST_DIR"), download=not QUICK, flatten=True,
            scale=True)
        return X_train, y_train, X_test, y_test, 28
    except (OSError, ValueError) as error:  # not found, no network, or a damaged file
        print("MNIST is not available:", str(error).splitlines()[0][:120])
        X, y = load_digits(flatten=True, scale=True)
        (X_train, y_train), _, (X_test, y_test) = train_dev_test_split(
            X, y, dev=0.0, test=0.2, stratify=True, seed=0)
        return X_train, y_train, X_test, y_test, 8


X_train, y_train, X_test, y_test, side = load_data()
if QUICK:  # a subset keeps the test suite fast; remove these lines to use everything
    X_train, y_train, X_test, y_test = X_train[:3000], y_train[:3000], X_test[:500], \
        y_test[:500]
model = build_cnn(side)
history = model.fit(X_train, y_train, epochs=1 if QUICK else 5, batch_size=64,
                    validation_split=0.1, verbose=0 if QUICK else 1, seed=0)
print(f"validation accuracy after each epoch: "
      f"{[round(a, 4) for a in history.history['val_accuracy']]}")
print(f"test accuracy {model.evaluate(X_test, y_test)['accuracy']:.2%}")

# %% [markdown]
# On all of MNIST this small CNN reaches about 99% in a few epochs, with fewer weights
# than tutorial 11's MLP. The trace shows the feature maps (dead units of an image batch
# are counted per channel: a filter whose map is 0 for the whole batch):

# %%
print(model.trace(X_test[:32], y_test[:32]))
