"""Learning-rate schedules: per-epoch rules, and a reduction when a metric plateaus."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from numnet._checks import non_negative_int, positive_int, real_number


class LRSchedule:
    """A learning rate per epoch: ``schedule(epoch) -> lr`` (epoch counted from 0).

    ``initial_lr=None`` means "the optimiser's initial rate" (``optimizer.initial_lr``, the
    rate it was made with), looked up by ``fit`` at each start without changing the
    schedule, so one schedule can serve several optimisers. Pass a schedule to
    ``fit(..., lr_schedule=...)`` or wrap it in :class:`numnet.callbacks.LearningRateScheduler`.
    """

    def __init__(self, initial_lr: float | None = None) -> None:
        self.initial_lr = None if initial_lr is None else real_number(
            initial_lr, f"{type(self).__name__} initial_lr", low=0.0, low_open=True)

    def __call__(self, epoch: int) -> float:
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"{type(self).__name__}: epoch must be an integer >= 0, "
                             f"got {epoch!r}")
        if self.initial_lr is None:
            raise ValueError(f"{type(self).__name__} has no initial_lr: pass one, or use it "
                             "in fit(), which takes the optimiser's learning rate")
        return float(self.lr_at(int(epoch), self.initial_lr))

    def lr_at(self, epoch: int, initial_lr: float) -> float:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class StepDecay(LRSchedule):
    """``lr = initial_lr * gamma ** (epoch // step_size)``: multiply by ``gamma`` every
    ``step_size`` epochs (``torch.optim.lr_scheduler.StepLR``)."""

    def __init__(self, step_size: int, gamma: float = 0.1,
                 initial_lr: float | None = None) -> None:
        super().__init__(initial_lr)
        self.step_size = positive_int(step_size, "StepDecay step_size")
        self.gamma = real_number(gamma, "StepDecay gamma", low=0.0, low_open=True)

    def lr_at(self, epoch: int, initial_lr: float) -> float:
        return initial_lr * self.gamma ** (epoch // self.step_size)


class ExponentialDecay(LRSchedule):
    """``lr = initial_lr * gamma ** epoch`` (``torch.optim.lr_scheduler.ExponentialLR``)."""

    def __init__(self, gamma: float, initial_lr: float | None = None) -> None:
        super().__init__(initial_lr)
        self.gamma = real_number(gamma, "ExponentialDecay gamma", low=0.0, low_open=True)

    def lr_at(self, epoch: int, initial_lr: float) -> float:
        return initial_lr * self.gamma ** epoch


class CosineDecay(LRSchedule):
    r"""Linear warm-up, then a half cosine from ``initial_lr`` down to ``min_lr``.

    With ``w = warmup_epochs`` and ``T = total_epochs``::

        lr = initial_lr * (epoch + 1) / (w + 1)                          epoch < w
        lr = min_lr + (initial_lr - min_lr) * (1 + cos(pi * s)) / 2      w <= epoch < T
             with s = (epoch - w) / (T - w)
        lr = min_lr                                                      epoch >= T

    The warm-up climbs in equal steps and reaches ``initial_lr`` at epoch ``w``; the cosine
    part is ``torch.optim.lr_scheduler.CosineAnnealingLR`` with ``T_max = T - w``.

    ``per_batch=True`` sets the rate before every batch instead, at the fractional epoch
    ``epoch + batch / steps`` (``steps`` batches per epoch): the rate then glides down
    to ``min_lr`` within the last epoch, as ``CosineAnnealingLR`` stepped after every batch
    with ``T_max`` counted in batches (Loshchilov & Hutter, SGDR, 2017), instead of staying
    at the last epoch's value (for 3 epochs: 1, 0.75, 0.25 times ``initial_lr``).
    """

    def __init__(self, total_epochs: int, warmup_epochs: int = 0, min_lr: float = 0.0,
                 initial_lr: float | None = None, per_batch: bool = False) -> None:
        super().__init__(initial_lr)
        self.per_batch = bool(per_batch)
        self.total_epochs = positive_int(total_epochs, "CosineDecay total_epochs")
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, (int, np.integer)) \
                or not 0 <= warmup_epochs < self.total_epochs:
            raise ValueError(f"CosineDecay warmup_epochs must be an integer in [0, "
                             f"total_epochs={self.total_epochs}), got {warmup_epochs!r}")
        self.warmup_epochs = int(warmup_epochs)
        self.min_lr = real_number(min_lr, "CosineDecay min_lr", low=0.0)

    def lr_at(self, epoch: float, initial_lr: float) -> float:
        """The rate at ``epoch``, which may be fractional (``per_batch``)."""
        w, total = self.warmup_epochs, self.total_epochs
        if epoch < w:
            return initial_lr * (epoch + 1) / (w + 1)
        if epoch >= total:
            return self.min_lr
        s = (epoch - w) / (total - w)
        return self.min_lr + (initial_lr - self.min_lr) * (1 + math.cos(math.pi * s)) / 2


class ReduceLROnPlateau:
    """Multiply the learning rate by ``factor`` when a monitored metric stops improving.

    Call :meth:`step` once per epoch with the metric's value and the current learning rate;
    it returns the new learning rate. ``fit(..., lr_schedule=ReduceLROnPlateau(...))`` does
    this at the end of each epoch with ``logs[monitor]``.

    A value *improves* when it beats the best so far by more than ``min_delta`` (lower for
    ``mode='min'``, higher for ``'max'``; ``'auto'`` picks ``'max'`` for accuracy-like names).
    After ``patience`` epochs in a row without improvement the rate becomes
    ``max(lr * factor, min_lr)``, then ``cooldown`` epochs pass before counting again (as
    Keras's ``ReduceLROnPlateau``).

    Parameters
    ----------
    monitor : str
        Key of the epoch logs, e.g. ``"val_loss"`` or ``"loss"``.
    factor : float
        In (0, 1).
    patience : int
        Epochs without improvement before a reduction, >= 0.
    mode : {'auto', 'min', 'max'}
    min_delta : float
        Smallest change that counts as an improvement, >= 0.
    cooldown : int
        Epochs to wait after a reduction before counting bad epochs again.
    min_lr : float
        The rate never goes below this.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0,
                 min_lr: float = 0.0) -> None:
        self.monitor = str(monitor)
        self.factor = real_number(factor, "ReduceLROnPlateau factor", low=0.0, high=1.0,
                                  low_open=True, high_open=True)
        self.patience = non_negative_int(patience, "ReduceLROnPlateau patience")
        self.mode = resolve_mode(mode, self.monitor)
        self.min_delta = real_number(min_delta, "ReduceLROnPlateau min_delta", low=0.0)
        self.cooldown = non_negative_int(cooldown, "ReduceLROnPlateau cooldown")
        self.min_lr = real_number(min_lr, "ReduceLROnPlateau min_lr", low=0.0)
        self.reset()

    def reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.cooldown_left = 0

    def step(self, value: float, lr: float) -> float:
        """Record this epoch's ``value``; return the learning rate for the next epoch."""
        value = float(value)
        if is_improvement(value, self.best, self.mode, self.min_delta):
            self.best = value
            self.wait = 0
            return lr
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            return lr
        self.wait += 1
        if self.wait >= max(self.patience, 1):
            new_lr = max(lr * self.factor, self.min_lr)
            self.wait = 0
            if new_lr < lr:
                self.cooldown_left = self.cooldown
                return new_lr
        return lr

    def __repr__(self) -> str:
        return (f"ReduceLROnPlateau(monitor={self.monitor!r}, factor={self.factor}, "
                f"patience={self.patience}, mode={self.mode!r}, min_lr={self.min_lr})")


# -- what "improves" means, shared with numnet.callbacks (EarlyStopping, ModelCheckpoint) --


def resolve_mode(mode: str, monitor: str) -> str:
    """'min' or 'max'; 'auto' means 'max' for accuracy-like metrics and R^2, else 'min'."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    maximise = ("acc", "accuracy", "f1", "precision", "recall", "auc", "r2")
    return "max" if any(monitor.endswith(word) for word in maximise) else "min"


def is_improvement(value: float, best: float, mode: str, min_delta: float) -> bool:
    if mode == "min":
        return value < best - min_delta
    return value > best + min_delta


ScheduleLike = LRSchedule | ReduceLROnPlateau | Callable[..., float]
