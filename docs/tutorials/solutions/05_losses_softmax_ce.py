"""Solutions of tutorial 5: losses and the softmax-cross-entropy gradient."""

import numpy as np


def softmax(z):
    """Row-wise softmax of z (N, C), shifted by each row's maximum."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(z, y):
    """Mean over the batch of -log softmax(z)[n, y[n]], via the log-sum-exp."""
    m = z.max(axis=1)
    log_sum_exp = m + np.log(np.exp(z - m[:, None]).sum(axis=1))
    return float(np.mean(log_sum_exp - z[np.arange(len(y)), y]))


def cross_entropy_grad(z, y):
    """d mean_cross_entropy / dz, of the shape of z."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    grad = e / e.sum(axis=1, keepdims=True)     # the probabilities p
    grad[np.arange(len(y)), y] -= 1             # minus the one-hot target
    return grad / len(y)                        # the mean over the batch


def softmax_backward(p, g):
    """dL/dz for p = softmax(z) (N, C) and g = dL/dp (N, C)."""
    return p * (g - np.sum(g * p, axis=1, keepdims=True))
