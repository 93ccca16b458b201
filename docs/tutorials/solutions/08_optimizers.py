"""Solutions of tutorial 8: the five update rules."""

import numpy as np


def sgd(p, g, state, lr):
    """One step of plain SGD."""
    return p - lr * g


def momentum(p, g, state, lr, mu=0.9):
    """One step of SGD with heavy-ball momentum; the buffer lives in state["buf"]."""
    state["buf"] = g if "buf" not in state else mu * state["buf"] + g
    return p - lr * state["buf"]


def adagrad(p, g, state, lr, eps=1e-10):
    """One step of AdaGrad; the sum of squares lives in state["sum"]."""
    state["sum"] = state.get("sum", 0.0) + g * g
    return p - lr * g / (np.sqrt(state["sum"]) + eps)


def rmsprop(p, g, state, lr, alpha=0.99, eps=1e-8):
    """One step of RMSProp; the average of squares lives in state["v"]."""
    state["v"] = alpha * state.get("v", 0.0) + (1 - alpha) * g * g
    return p - lr * g / (np.sqrt(state["v"]) + eps)


def adam(p, g, state, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    """One step of Adam; m, v and the step count t live in state."""
    t = state["t"] = state.get("t", 0) + 1
    state["m"] = beta1 * state.get("m", 0.0) + (1 - beta1) * g
    state["v"] = beta2 * state.get("v", 0.0) + (1 - beta2) * g * g
    m_hat = state["m"] / (1 - beta1 ** t)
    v_hat = state["v"] / (1 - beta2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)
