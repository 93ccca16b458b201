"""Solutions of tutorial 6: exponential moving averages and their bias correction."""

import numpy as np


def ema(values, beta):
    """The list [v_1, ..., v_T] of the EMA of values, starting from v_0 = 0."""
    averages, v = [], 0.0
    for theta in values:
        v = beta * v + (1 - beta) * theta
        averages.append(v)
    return averages


def ema_corrected(values, beta):
    """The list of bias-corrected averages v_t / (1 - beta^t)."""
    return [v / (1 - beta ** t) for t, v in enumerate(ema(values, beta), start=1)]


def running_mean_after(batch_means, momentum):
    """BatchNorm1d's running_mean after these batches, starting from 0."""
    running = np.zeros(np.shape(batch_means)[1])
    for mean in batch_means:
        running = (1 - momentum) * running + momentum * mean
    return running
