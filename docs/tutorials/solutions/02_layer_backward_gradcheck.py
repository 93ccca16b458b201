"""Solutions of tutorial 2: one layer's backward pass and its gradient check."""

import numpy as np

from numnet import Layer


def affine_backward(x, W, g):
    """Return (dx, dW, db) for y = x W + b, given g = dL/dy."""
    dx = g @ W.T          # (N, M)(M, D) = (N, D)
    dW = x.T @ g          # (D, N)(N, M) = (D, M)
    db = g.sum(axis=0)    # (M,)
    return dx, dW, db


def numerical_gradient(f, x, h=1e-6):
    """Central-difference gradient of f() with respect to the float64 array x."""
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + h
        f_plus = f()
        x[index] = original - h
        f_minus = f()
        x[index] = original  # exactly as it was
        grad[index] = (f_plus - f_minus) / (2 * h)
    return grad


class MySigmoid(Layer, register=False):
    """y = 1 / (1 + exp(-x)); backward: dx = g * y * (1 - y)."""

    def forward(self, x, training=False):
        self.y = 1 / (1 + np.exp(-x))
        return self.y

    def backward(self, grad_out):
        return grad_out * self.y * (1 - self.y)
