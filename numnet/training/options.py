"""``fit``'s scalar arguments, checked once before any training."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from numnet._checks import positive_int, real_number
from numnet.callbacks import Callback, CallbackList, LearningRateScheduler, ProgressBar
from numnet.health import HealthCheck
from numnet.optim import Adam, LRSchedule, Optimizer, ReduceLROnPlateau, get_optimizer
from numnet.training.parallel import DataParallel, Replicas

if TYPE_CHECKING:
    from numnet.model import Sequential


@dataclass
class FitOptions:
    """The checked arguments of one ``fit`` call (see :func:`numnet.training.fit`)."""

    epochs: int
    initial_epoch: int
    batch_size: int
    shuffle: bool
    validation_split: float
    clip_norm: float | None
    verbose: int
    optimizer: Optimizer
    rng: np.random.Generator  # shuffles the batches
    callbacks: CallbackList
    health: HealthCheck | None  # the health warnings (one of the callbacks), or None
    replicas: Replicas = field(default_factory=Replicas)  # one process, or DataParallel
    validation_shuffle: bool = True


def fit_options(model: Sequential, *, epochs: Any, initial_epoch: Any, batch_size: Any,
                shuffle: Any, validation_split: Any, clip_norm: Any, verbose: Any,
                optimizer: Any, seed: Any, callbacks: Any, lr_schedule: Any,
                distributed: Any = False, sync_batchnorm: Any = False,
                health: Any = True, validation_shuffle: Any = True) -> FitOptions:
    """Check ``fit``'s arguments other than the data; raise naming the bad one."""
    epochs = positive_int(epochs, "epochs")
    if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, (int, np.integer)) \
            or not 0 <= initial_epoch < epochs:
        raise ValueError(f"initial_epoch must be an integer in [0, epochs={epochs}), got "
                         f"{initial_epoch!r}")
    batch_size = positive_int(batch_size, "batch_size")
    verbose = _verbose(verbose)
    for name, flag in (("shuffle", shuffle), ("validation_shuffle", validation_shuffle)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    validation_split = real_number(validation_split, "validation_split", low=0.0, high=1.0,
                                   high_open=True)
    if clip_norm is not None:
        clip_norm = real_number(clip_norm, "clip_norm", low=0.0, low_open=True)
    optimizer = Adam(1e-3) if optimizer is None else get_optimizer(optimizer)
    rng = generator(model, seed)
    if not isinstance(health, (bool, np.bool_)):
        raise TypeError(f"health must be True or False, got {health!r}")
    callback_list = CallbackList(_callbacks(callbacks, lr_schedule, verbose))
    checker = _health_check(callback_list, bool(health))
    return FitOptions(epochs, int(initial_epoch), batch_size, bool(shuffle), validation_split,
                      clip_norm, verbose, optimizer, rng, callback_list, checker,
                      _replicas(distributed, sync_batchnorm), bool(validation_shuffle))


def _replicas(distributed: Any, sync_batchnorm: Any) -> Replicas:
    """One process, or one rank of a data-parallel MPI job (starting MPI)."""
    for name, value in (("distributed", distributed), ("sync_batchnorm", sync_batchnorm)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, got {value!r}")
    if sync_batchnorm and not distributed:
        raise ValueError("sync_batchnorm=True synchronises BatchNorm statistics across the "
                         "processes of an MPI job: it needs distributed=True")
    return DataParallel(bool(sync_batchnorm)) if distributed else Replicas()


def generator(model: Sequential, seed: Any) -> np.random.Generator:
    """The shuffling generator; with a seed, also reseed every layer's generator."""
    if seed is None:
        return model.rng
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be None or an integer >= 0, got {seed!r}")
    children = np.random.SeedSequence(int(seed)).spawn(len(model.layers) + 1)
    for layer, child in zip(model.layers, children[1:], strict=True):
        layer.rng = np.random.default_rng(child)
    return np.random.default_rng(children[0])


def _callbacks(callbacks: Any, lr_schedule: Any, verbose: int) -> list[Callback]:
    if isinstance(callbacks, Callback):
        callbacks = [callbacks]
    if callbacks is None:
        callbacks = []
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list of Callback objects, got {callbacks!r}")
    for index, callback in enumerate(callbacks):
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks[{index}] is {callback!r}, expected a "
                            "numnet.callbacks.Callback (wrap functions in LambdaCallback)")
    result = list(callbacks)
    if lr_schedule is not None:
        if not isinstance(lr_schedule, (LRSchedule, ReduceLROnPlateau)) \
                and not callable(lr_schedule):
            raise TypeError("lr_schedule must be an LRSchedule, a ReduceLROnPlateau or a "
                            f"function epoch -> lr, got {lr_schedule!r}")
        # after the user's callbacks, so a plateau can monitor a metric one of them adds
        result.append(LearningRateScheduler(lr_schedule))
    if verbose:
        result.append(ProgressBar(verbose))
    return result


def _health_check(callbacks: CallbackList, health: bool) -> HealthCheck | None:
    """The user's HealthCheck, else a default one added last (after the progress bar, so an
    epoch's warnings follow its closed bar), unless ``health`` is False."""
    mine = next((cb for cb in callbacks.callbacks if isinstance(cb, HealthCheck)), None)
    if mine is None and health:
        mine = HealthCheck()
        callbacks.callbacks.append(mine)
    return mine


def _verbose(verbose: Any) -> int:
    if isinstance(verbose, bool):
        return int(verbose)
    if not isinstance(verbose, (int, np.integer)) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0 (silent), 1 (progress bar) or 2 (a line per "
                         f"epoch), got {verbose!r}")
    return int(verbose)
