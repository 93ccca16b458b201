"""Optimisers, learning-rate schedules and gradient clipping.

* :mod:`numnet.optim.base`: :class:`Optimizer`, the base class (flat state, step count,
  weight-decay mask, saving and restoring state);
* :mod:`numnet.optim.optimizers`: :class:`SGD`, :class:`AdaGrad`, :class:`RMSProp`,
  :class:`Adam`, :class:`AdamW` (each update rule written out in its docstring, matching
  ``torch.optim``; :mod:`numnet.reference` has slow, line-by-line versions),
  :func:`get_optimizer` and :func:`from_config`;
* :mod:`numnet.optim.schedules`: :class:`StepDecay`, :class:`ExponentialDecay`,
  :class:`CosineDecay` and :class:`ReduceLROnPlateau`;
* :mod:`numnet.optim.clipping`: :func:`clip_grad_norm` and :func:`global_grad_norm`.
"""

from numnet._checks import non_negative_int
from numnet.optim.base import Optimizer, ParameterVectors
from numnet.optim.clipping import clip_grad_norm, global_grad_norm
from numnet.optim.optimizers import (
    ALIASES,
    SGD,
    AdaGrad,
    Adam,
    AdamW,
    RMSProp,
    from_config,
    get_optimizer,
)
from numnet.optim.schedules import (
    CosineDecay,
    ExponentialDecay,
    LRSchedule,
    ReduceLROnPlateau,
    ScheduleLike,
    StepDecay,
    is_improvement,
    resolve_mode,
)

__all__ = [
    "ALIASES",
    "SGD",
    "AdaGrad",
    "Adam",
    "AdamW",
    "CosineDecay",
    "ExponentialDecay",
    "LRSchedule",
    "Optimizer",
    "ParameterVectors",
    "RMSProp",
    "ReduceLROnPlateau",
    "ScheduleLike",
    "StepDecay",
    "clip_grad_norm",
    "from_config",
    "get_optimizer",
    "global_grad_norm",
    "is_improvement",
    "non_negative_int",
    "resolve_mode",
]
