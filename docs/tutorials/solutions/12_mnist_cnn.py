"""Solutions of tutorial 12: MNIST with a convolutional network."""

import numpy as np

from numnet import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Reshape, Sequential


def conv_output_size(size, kernel, stride=1, padding=0):
    """Output height (or width) of a convolution or pooling over `size` input pixels."""
    return (size + 2 * padding - kernel) // stride + 1


def conv2d_naive(x, W, b, stride=1, padding=0):
    """y (N, C_out, H_out, W_out) for x (N, C_in, H, W) and W (C_out, C_in, k, k)."""
    k = W.shape[2]
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    height = (x.shape[2] - k) // stride + 1
    width = (x.shape[3] - k) // stride + 1
    y = np.empty((x.shape[0], W.shape[0], height, width))
    for i in range(height):
        for j in range(width):
            patch = x[:, :, i * stride:i * stride + k, j * stride:j * stride + k]
            y[:, :, i, j] = np.tensordot(patch, W, axes=([1, 2, 3], [1, 2, 3])) + b
    return y


def maxpool_naive(x, k):
    """The maximum of each non-overlapping k x k block of x (N, C, H, W)."""
    n, c, h, w = x.shape
    blocks = x[:, :, :h // k * k, :w // k * k].reshape(n, c, h // k, k, w // k, k)
    return blocks.max(axis=(3, 5))


def build_cnn(side, n_classes=10):
    """The CNN above as a Sequential taking rows of side * side pixels."""
    left = side // 2 // 2  # the size after two 2x2 poolings
    return Sequential([Reshape((1, side, side)),
                       Conv2D(1, 8, 3, padding=1), ReLU(), MaxPool2D(2),
                       Conv2D(8, 16, 3, padding=1), ReLU(), MaxPool2D(2),
                       Flatten(), Dense(16 * left * left, n_classes)],
                      loss="cross_entropy", seed=0)
