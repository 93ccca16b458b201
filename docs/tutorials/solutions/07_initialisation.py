"""Solutions of tutorial 7: initialisation."""

import numpy as np


def glorot_std(fan_in, fan_out):
    """The standard deviation of Glorot's normal initialisation."""
    return np.sqrt(2 / (fan_in + fan_out))


def he_std(fan_in):
    """The standard deviation of He's normal initialisation."""
    return np.sqrt(2 / fan_in)


def layer_activations(x, weights, activation):
    """[a_1, ..., a_L] with a_(i+1) = activation(a_i @ weights[i]) and a_0 = x."""
    outputs, a = [], x
    for W in weights:
        a = activation(a @ W)
        outputs.append(a)
    return outputs


def saturated_fraction(y):
    """The fraction of the sigmoid outputs y below 0.01 or above 0.99."""
    return float(np.mean((y < 0.01) | (y > 0.99)))
