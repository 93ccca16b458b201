"""Gradient clipping by the global norm of all gradients together."""

from __future__ import annotations

import math

import numpy as np

from numnet._checks import real_number
from numnet.optim.base import ParameterVectors


def global_grad_norm(model: ParameterVectors) -> float:
    """Euclidean norm of all gradients together, ``sqrt(sum g^2)``."""
    g = model.flat_grads
    with np.errstate(over="ignore"):
        total = float(np.dot(g, g))
    if math.isinf(total) and np.isfinite(g).all():
        total = float(np.dot(g.astype(np.float64), g.astype(np.float64)))  # float32 overflow
    return math.sqrt(total) if total >= 0 else float("nan")


def clip_grad_norm(model: ParameterVectors, max_norm: float) -> float:
    """Scale all gradients together so their global norm is at most ``max_norm``.

    ``g <- g * max_norm / (norm + 1e-6)`` when ``norm > max_norm`` (as
    ``torch.nn.utils.clip_grad_norm_``); the direction is kept.

    Returns
    -------
    float
        The global norm before clipping (``inf``/``nan`` if a gradient is not finite; then
        nothing is scaled).
    """
    max_norm = real_number(max_norm, "max_norm", low=0.0, low_open=True)
    total = global_grad_norm(model)
    if math.isfinite(total) and total > max_norm:
        g = model.flat_grads
        g *= g.dtype.type(max_norm / (total + 1e-6))
    return total
