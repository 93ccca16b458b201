"""What both kernel paths share: the scalar coefficients of each update and the decay modes.

Every scalar is computed once per step in float64 and rounded to the parameters' dtype
here, so the NumPy and the compiled kernels multiply by exactly the same numbers (a
float32 array times a Python float would otherwise round differently in the two paths).

Weight decay comes in five modes (``decay_mode``): none; *coupled* (``g <- g + wd * p``,
an L2 penalty inside the optimiser: SGD, RMSProp, Adam) on every entry or on the entries
of a 0/1 mask; *decoupled* (``p <- p * (1 - lr * wd)``: AdamW) on every entry or masked.
A mask is a float vector of the parameters' dtype holding 1.0 where decay applies and 0.0
elsewhere (``Optimizer._decay_vector``).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

NO_DECAY, COUPLED_ALL, COUPLED_MASK, DECOUPLED_ALL, DECOUPLED_MASK = range(5)

#: the activations ``bias_act`` applies after the bias, by name -> code
ACTIVATIONS = {"linear": 0, "relu": 1, "leaky_relu": 2}


def decay_mode(weight_decay: float, decay: np.ndarray | None, decoupled: bool) -> int:
    """The decay mode for a coefficient, an optional 0/1 mask and the kind of decay."""
    if weight_decay == 0:
        return NO_DECAY
    if decoupled:
        return DECOUPLED_ALL if decay is None else DECOUPLED_MASK
    return COUPLED_ALL if decay is None else COUPLED_MASK


class Decay(NamedTuple):
    """``wd`` (coupled: ``g + (p * wd) * mask``), ``shrink = 1 - lr * wd`` (decoupled, all
    entries) and ``neg_lr_wd = -lr * wd`` (decoupled, masked: ``p * (mask * neg_lr_wd + 1)``)."""

    wd: np.floating
    shrink: np.floating
    neg_lr_wd: np.floating


@functools.lru_cache(maxsize=64)  # the same few values step after step
def decay_coefficients(lr: float, weight_decay: float, dtype: np.dtype) -> Decay:
    cast = np.dtype(dtype).type
    return Decay(cast(weight_decay), cast(1 - lr * weight_decay), cast(-lr * weight_decay))


class AdamCoefficients(NamedTuple):
    """One Adam step: ``m += (g - m) * one_minus_beta1``;
    ``v = v * beta2 + (g * one_minus_beta2) * g``; ``p -= m / (sqrt(v) + eps_hat) * scale``."""

    one_minus_beta1: np.floating
    beta2: np.floating
    one_minus_beta2: np.floating
    eps_hat: np.floating
    scale: np.floating


def adam_coefficients(lr: float, beta1: float, beta2: float, eps: float, step: int,
                      dtype: np.dtype) -> AdamCoefficients:
    """The scalars of Adam's step ``step`` (counted from 1), in ``dtype``.

    ``step_size * m / (sqrt(v) / root_bc2 + eps)`` is computed as
    ``(step_size * root_bc2) * m / (sqrt(v) + eps * root_bc2)``: the same value with one
    element-wise pass fewer (``step_size = lr / (1 - beta1 ** t)``,
    ``root_bc2 = sqrt(1 - beta2 ** t)``).
    """
    cast = np.dtype(dtype).type
    step_size = lr / (1 - beta1 ** step)
    root_bc2 = (1 - beta2 ** step) ** 0.5
    return AdamCoefficients(cast(1 - beta1), cast(beta2), cast(1 - beta2),
                            cast(eps * root_bc2), cast(step_size * root_bc2))


class SGDCoefficients(NamedTuple):
    """``buf = buf * momentum + g``; ``d = buf * momentum + g`` (Nesterov); ``p -= d * lr``."""

    lr: np.floating
    momentum: np.floating


@functools.lru_cache(maxsize=64)
def sgd_coefficients(lr: float, momentum: float, dtype: np.dtype) -> SGDCoefficients:
    cast = np.dtype(dtype).type
    return SGDCoefficients(cast(lr), cast(momentum))


class RMSPropCoefficients(NamedTuple):
    """``v = v * alpha + (g * one_minus_alpha) * g``; ``gm += (g - gm) * one_minus_alpha``;
    ``den = sqrt(v [- gm * gm]) + eps``; then ``p -= (g * lr) / den`` or, with momentum,
    ``buf = buf * momentum + g / den``, ``p -= buf * lr``."""

    alpha: np.floating
    one_minus_alpha: np.floating
    eps: np.floating
    lr: np.floating
    momentum: np.floating


@functools.lru_cache(maxsize=64)
def rmsprop_coefficients(lr: float, alpha: float, eps: float, momentum: float,
                         dtype: np.dtype) -> RMSPropCoefficients:
    cast = np.dtype(dtype).type
    return RMSPropCoefficients(cast(alpha), cast(1 - alpha), cast(eps), cast(lr),
                               cast(momentum))
