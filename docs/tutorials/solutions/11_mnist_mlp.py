"""Solutions of tutorial 11: MNIST with an MLP."""

import numpy as np

from numnet import Dense, Dropout, ReLU, Sequential


def preprocess(images, max_value):
    """Images (N, H, W) of integers 0..max_value to float32 rows (N, H*W) in [0, 1]."""
    rows = images.reshape(len(images), -1).astype(np.float32)
    return rows / np.float32(max_value)


def build_mlp(n_features, n_classes):
    """A Sequential MLP classifier giving logits."""
    return Sequential([Dense(n_features, 256), ReLU(), Dropout(0.2),
                       Dense(256, 128), ReLU(), Dropout(0.2),
                       Dense(128, n_classes)], loss="cross_entropy", seed=0)
