"""The training loop: :func:`fit` trains a model on mini-batches, :func:`evaluate` scores it.

Read top to bottom, ``fit`` is::

    check the arguments and the data, once
    for epoch in range(initial_epoch, epochs):
        for xb, yb, wb in batches:                   # reshuffled every epoch
            loss, output = train_step(model, optimizer, xb, yb, wb)
            callbacks.on_batch_end(batch, logs)      # running loss and accuracy
        score the validation data                    # between on_test_begin/_end
        callbacks.on_epoch_end(epoch, logs)          # early stopping, checkpoints, ...

and :func:`train_step` is one step of gradient descent: forward, loss, backward, step.
:func:`numnet.reference.fit` is the same loop with nothing else around it.

Each step runs inside a :class:`~numnet.training.guard.Guard`, which undoes the step and
stops training with a message naming the epoch, the batch and the layer when its numbers
turn NaN or infinite or its loss explodes far beyond where it started, and lets a Ctrl-C
finish the batch in progress before stopping.
The checks of the data and the arguments live in :mod:`numnet.training.data` and
:mod:`numnet.training.options`; nothing is checked again batch by batch.

The same loop trains one model over several MPI processes (``fit(..., distributed=True)``):
``opts.replicas`` gives each process its part of every batch, a guard whose step sums the
gradients over the processes, and the sums of the metrics (see
:mod:`numnet.training.parallel`); for one process each of these is the plain thing.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from numnet import _kernels, metrics
from numnet._checks import nonfinite_output, positive_int
from numnet._memory import check_batch
from numnet.callbacks import Callback
from numnet.errors import NonFiniteError, TrainingDiverged
from numnet.optim import Optimizer, clip_grad_norm
from numnet.training.data import (
    Batches,
    Data,
    Targets,
    batch_bounds,
    checked_data,
    split_validation,
)
from numnet.training.guard import Guard, Updater, catch_ctrl_c, uninformed_loss
from numnet.training.options import FitOptions, fit_options
from numnet.training.parallel import Replicas, local

if TYPE_CHECKING:
    from numnet.model import Sequential

EVAL_BATCH = 1024

#: sums a batch's numbers over the processes of a distributed run (as they are in one)
Reduce = Callable[..., tuple[float, ...]]


@dataclass
class History:
    """What ``fit`` returns: per-epoch logs, as Keras's ``History``.

    Attributes
    ----------
    history : dict of str to list of float
        One list per key, one entry per finished epoch: ``'loss'`` (including the L2 term),
        ``'accuracy'`` (classifiers), ``'val_loss'``/``'val_accuracy'`` (with validation
        data), ``'lr'`` (the rate used in that epoch) and ``'seconds'`` (wall time of the
        epoch, validation included).
    epoch : list of int
        The epoch numbers (from 0) the entries belong to.
    params : dict
        ``epochs``, ``batch_size``, ``steps`` (batches per epoch), ``samples`` and so on.
    interrupted : bool
        Training was stopped by Ctrl-C (KeyboardInterrupt); the history has the epochs
        that finished.
    stopped_early : bool
        A callback set ``model.stop_training``.
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    epoch: list[int] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    stopped_early: bool = False

    def record(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __len__(self) -> int:
        return len(self.epoch)

    def __repr__(self) -> str:
        last = {k: round(v[-1], 6) for k, v in self.history.items() if v}
        return f"History(epochs={len(self.epoch)}, last={last})"


def train_step(model: Sequential, optimizer: Updater, xb: np.ndarray, yb: np.ndarray,
               wb: np.ndarray | None = None,
               clip_norm: float | None = None) -> tuple[float, np.ndarray]:
    """One step of mini-batch gradient descent; returns the batch's loss and the output.

    ``xb``, ``yb`` and ``wb`` must be as ``fit`` prepares them (the model's dtype; targets
    as the loss's ``forward`` takes them): nothing here checks them. The loss includes the
    L2 term ``(l2 / 2) * sum(W ** 2)`` when the model has ``l2 > 0``.
    """
    loss_fn = model._need_loss()
    output = model.forward(xb, training=True)                # forward
    loss = loss_fn.forward(output, yb, wb)                   # loss
    model.backward(loss_fn.backward(), input_grad=False)     # backward: fills flat_grads
    if model.l2:
        loss += model.add_l2_gradient()
    if clip_norm is not None:
        clip_grad_norm(model, clip_norm)
    optimizer.step(model)                                    # step
    return loss, output


def fit(model: Sequential, X: Any, y: Any, epochs: int = 1, batch_size: int = 32,
        optimizer: Optimizer | str | None = None, shuffle: bool = True,
        validation_data: tuple[Any, ...] | None = None, validation_split: float = 0.0,
        callbacks: Sequence[Callback] = (), verbose: int = 1, seed: int | None = None,
        sample_weight: Any = None, clip_norm: float | None = None,
        lr_schedule: Any = None, initial_epoch: int = 0, distributed: bool = False,
        sync_batchnorm: bool = False, health: bool = True,
        validation_shuffle: bool = True) -> History:
    """Train ``model`` on ``(X, y)`` with mini-batches.

    Parameters
    ----------
    model : Sequential
        A model with a loss.
    X : array, shape (N, ...)
        Inputs; converted to the model's dtype once.
    y : array
        Integer labels ``(N,)`` or probability rows ``(N, C)`` for CrossEntropy; values in
        [0, 1] for BinaryCrossEntropy; targets of the output's shape otherwise.
    epochs, batch_size : int
        Passes over the data and samples per step (the last batch may be smaller).
    optimizer : Optimizer or str, optional
        Default ``Adam(1e-3)``. Pass the same object again to continue with its state.
    shuffle : bool
        Reshuffle the training samples every epoch.
    validation_data : (X_val, y_val) or (X_val, y_val, w_val), optional
        Evaluated after each epoch, giving ``val_loss`` (and ``val_accuracy``).
    validation_split : float in [0, 1)
        Hold out this fraction of ``X``/``y`` for validation (see ``validation_shuffle``).
        A warning names the classes the training part has and the validation part lacks.
    callbacks : list of Callback
    verbose : {0, 1, 2}
        Silent, a progress bar per epoch, or a line per epoch (on standard error).
    seed : int, optional
        Seeds the shuffling and the layers' random draws (dropout) of this run, so the same
        seed on the same model gives the same history and weights bit for bit. Without it
        the model's own generators are used (and advanced).
    sample_weight : array (N,), optional
        Per-sample loss weights (the loss is ``mean(w * l)``).
    clip_norm : float, optional
        Clip the global gradient norm to this before each step.
    lr_schedule : LRSchedule, ReduceLROnPlateau or function, optional
        Sets ``optimizer.lr`` per epoch (see :class:`numnet.callbacks.LearningRateScheduler`).
    initial_epoch : int
        The epoch to start from (as in Keras): ``epochs - initial_epoch`` epochs run, numbered
        from ``initial_epoch``, so a run resumed from a saved model and optimiser continues
        its schedule where it stopped.
    distributed : bool
        Data-parallel training over the processes of an MPI job (``mpiexec -n P python
        script.py``, every process calling ``fit`` with the same data and arguments): each
        rank trains on its part of every global batch of ``batch_size`` rows and the
        gradients are summed over the ranks before each step, so the result does not depend
        on P. See :mod:`numnet.distributed`; needs ``pip install 'numnet[mpi]'``.
    sync_batchnorm : bool
        With ``distributed``: BatchNorm takes its statistics over the global batch
        (SyncBatchNorm) instead of over each rank's part.
    health : bool
        Warn (:class:`numnet.errors.TrainingWarning`, once per kind) when training looks
        unhealthy before anything turns NaN: unscaled inputs, a rising loss, a loss or
        accuracy at chance level, dead or saturated layers, vanishing or exploding
        gradients (see :mod:`numnet.health`). A :class:`numnet.health.HealthCheck` in
        ``callbacks`` is used instead of the default one.
    validation_shuffle : bool
        How ``validation_split`` picks its rows. True (the default): at random, stratified
        by class for classifiers (each class keeps its share in both parts), by a generator
        seeded with ``seed`` (0 when None), so calls with the same seed hold out the same
        rows. False: the last rows before any shuffling, as Keras does (for time-ordered
        data); on data sorted by class that validates on the last class alone.

    Returns
    -------
    History
        Per-epoch ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ``lr``, ``seconds``.
        After Ctrl-C it holds the finished epochs and ``interrupted`` is True.

    Raises
    ------
    TrainingDiverged
        When a loss, gradient or parameter becomes NaN or infinite (the model keeps the
        weights from before the bad batch), or the loss explodes, its running average
        exceeding 1000 times the larger of its starting value and the loss of a
        prediction ignoring the inputs (the model keeps the weights the epoch started
        from); the optimiser's state is reset (see :mod:`numnet.training.guard`).
    ValueError, TypeError
        For inconsistent or malformed arguments, before any training.
    """
    model._need_loss()
    opts = fit_options(model, epochs=epochs, initial_epoch=initial_epoch,
                       batch_size=batch_size, shuffle=shuffle,
                       validation_split=validation_split, clip_norm=clip_norm,
                       verbose=verbose, optimizer=optimizer, seed=seed, callbacks=callbacks,
                       lr_schedule=lr_schedule, distributed=distributed,
                       sync_batchnorm=sync_batchnorm, health=health,
                       validation_shuffle=validation_shuffle)
    data, targets = checked_data(model, X, y, sample_weight, "fit")
    model.target_shape = tuple(np.shape(y)[1:])  # predict returns targets of this shape
    train, val = split_validation(model, targets, data, validation_data,
                                  opts.validation_split, opts.validation_shuffle, seed)
    if opts.health is not None:
        opts.health.watch(train.X, train.y, targets.kind, int(np.prod(targets.out_shape)))
    replicas = opts.replicas  # one process, or one rank of a distributed run
    bounds = batch_bounds(train.n, opts.batch_size,
                          replicas.min_batch(model, train.n, opts.batch_size))
    batches = replicas.batches(train, bounds, opts.shuffle, opts.rng)
    history = History(params=_params(opts, batches, train, val, targets))
    check_batch(model.layers, train.X.shape[1:], bounds[0][1] - bounds[0][0], model.dtype,
                f"fit: a batch of {bounds[0][1] - bounds[0][0]} samples")
    guard = replicas.guard(model, opts.optimizer, train.X, opts.epochs, len(batches),
                           targets)
    # the explosion rule's floor: the same on every rank (each holds all the targets)
    guard.uninformed = uninformed_loss(model, train.y, targets.out_shape, targets.classifier)
    was_training = model.training
    try:
        # a large model's element-wise work runs compiled however small each call
        with replicas.training(model, opts, train, val, batches), \
                _kernels.model_scope(model.num_params):
            _train(model, opts, batches, val, targets, guard, history)
    finally:
        model.training = was_training
    return history


def _train(model: Sequential, opts: FitOptions, batches: Batches, val: Data | None,
           targets: Targets, guard: Guard, history: History) -> None:
    """The epochs, with the callbacks around them; Ctrl-C stops after the current batch."""
    callbacks = opts.callbacks
    callbacks.set_context(model, opts.optimizer, history.params)
    model.stop_training = False
    callbacks.call("on_train_begin", {})
    with catch_ctrl_c(guard.interrupt) as interrupt:
        try:
            for epoch in range(opts.initial_epoch, opts.epochs):
                logs = _epoch(model, opts, epoch, batches, val, targets, guard)
                if logs is None:  # stopped inside the epoch: a partial epoch is not recorded
                    break
                history.record(epoch, logs)
                callbacks.call("on_epoch_end", epoch, logs)
                # distributed: a stop asked on any rank stops every rank
                if opts.replicas.stop_after_epoch(model) or interrupt.requested:
                    break
        except KeyboardInterrupt:  # a second Ctrl-C, or one raised by a callback
            interrupt.requested = True
        except TrainingDiverged:
            # progress bars close, and EarlyStopping may restore its best weights
            callbacks.call("on_train_end", {"interrupted": False, "diverged": True})
            raise
    history.interrupted = interrupt.requested
    history.stopped_early = bool(model.stop_training) and not interrupt.requested
    if interrupt.requested and opts.verbose:
        print(f"\ntraining interrupted in epoch {guard.epoch + 1}, batch {guard.batch + 1}: "
              f"keeping the weights after the last finished batch and the history of "
              f"{len(history)} finished epoch(s)", file=sys.stderr, flush=True)
    callbacks.call("on_train_end", {"interrupted": interrupt.requested})


def _epoch(model: Sequential, opts: FitOptions, epoch: int, batches: Batches,
           val: Data | None, targets: Targets, guard: Guard) -> dict[str, float] | None:
    """Train one epoch, then score the validation data: the epoch's logs, or None when
    training was stopped before the epoch's end."""
    start = time.perf_counter()
    callbacks = opts.callbacks
    model.train()
    callbacks.call("on_epoch_begin", epoch, {})
    lr = float(opts.optimizer.lr)
    meter = Meter(targets, opts.replicas.batch_sums,
                  None if targets.classifier else target_variance(batches.data.y),
                  opts.replicas.sum if opts.replicas.size > 1 else local)
    guard.start_epoch(epoch)
    for batch, (xb, yb, wb) in enumerate(batches):
        guard.batch = batch  # where we are, for the guard's messages
        first, last = batches.bounds[batch]
        size = last - first  # all the batch's rows (a distributed rank trains on a part)
        callbacks.call("on_batch_begin", batch, {"batch": batch, "size": size})
        loss, output = guard.run(train_step, xb, yb, wb, clip_norm=opts.clip_norm)
        meter.add(loss, output, yb)
        callbacks.call("on_batch_end", batch, {"batch": batch, "size": size, **meter.logs()})
        stop = guard.interrupt.requested or opts.replicas.stopping(model)
        if stop and meter.seen < batches.data.n:
            return None
    model.eval()
    opts.replicas.sync_buffers(model)  # distributed: the same running statistics everywhere
    logs = meter.logs(final=True)
    if val is not None:
        callbacks.call("on_test_begin", {})
        scores = _validate(model, targets, val, max(opts.batch_size, EVAL_BATCH), guard,
                           opts.replicas)
        callbacks.call("on_test_end", scores)
        logs.update(scores)
    logs["lr"] = lr
    logs["seconds"] = opts.replicas.maximum(time.perf_counter() - start)  # the slowest rank's
    return logs


class Meter:
    """The epoch's running mean loss (over samples) and accuracy (classifiers), or RMSE and
    R^2 (regression: against ``variance``, each output's variance over the training set).

    ``reduce`` sums a batch's numbers over the processes of a distributed run, so the meter
    counts the whole global batch on every rank. A regression's squared errors are summed
    by ``total`` once, at the epoch's end (``logs(final=True)``); in a distributed run the
    batch logs leave RMSE and R^2 out rather than add a collective to every step.
    """

    def __init__(self, targets: Targets, reduce: Reduce = local,
                 variance: np.ndarray | None = None, total: Reduce = local) -> None:
        self.targets, self.reduce = targets, reduce
        self.variance, self.total = variance, total
        self.loss_sum, self.seen, self.correct, self.counted = 0.0, 0, 0, 0
        # this process's squared errors per output (a regression), the same size everywhere
        self.sq_err = np.zeros(0 if variance is None else variance.size)

    def add(self, loss: float, output: np.ndarray, yb: np.ndarray) -> None:
        size = yb.shape[0]
        right, count = self.targets.count_correct(output, yb) if self.targets.classifier \
            else (0, 0)
        totals = self.reduce(loss * size, size, right, count)
        self.loss_sum += totals[0]
        self.seen += int(totals[1])
        self.correct += int(totals[2])
        self.counted += int(totals[3])
        if self.variance is not None and size:
            self.sq_err += squared_errors(output, yb)

    def logs(self, final: bool = False) -> dict[str, float]:
        logs = {"loss": self.loss_sum / self.seen}
        if self.targets.classifier:
            logs["accuracy"] = self.correct / self.counted
        elif self.variance is not None and (final or self.total is local):
            sq_err = np.asarray(self.total(*self.sq_err)) if final else self.sq_err
            logs.update(regression_scores(sq_err, self.variance * self.seen, self.seen))
        return logs


def squared_errors(output: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``sum((output - target) ** 2)`` over the batch, per output, in float64."""
    diff = (output.reshape(output.shape[0], -1) - target.reshape(target.shape[0], -1)
            ).astype(np.float64, copy=False)
    sums: np.ndarray = np.einsum("ij,ij->j", diff, diff)
    return sums


def target_variance(y: np.ndarray) -> np.ndarray:
    """Each output's variance over the samples (float64): R^2's denominator, per sample."""
    flat = y.reshape(y.shape[0], -1)
    variance: np.ndarray = flat.var(axis=0, dtype=np.float64)
    return variance


def regression_scores(sq_err: np.ndarray, ss_tot: np.ndarray, n: int) -> dict[str, float]:
    """``rmse`` over every output and ``r2`` averaged over the outputs (as
    :func:`numnet.metrics.r2_score`), from the summed squared errors per output."""
    sq = np.asarray(sq_err, dtype=np.float64)
    return {"rmse": math.sqrt(float(sq.sum()) / (n * sq.size)),
            "r2": float(metrics.r2_from_sums(sq, ss_tot).mean())}


def _validate(model: Sequential, targets: Targets, val: Data, batch_size: int,
              guard: Guard, replicas: Replicas) -> dict[str, float]:
    """``val_loss`` (and ``val_accuracy``); TrainingDiverged when the loss is not finite.

    A distributed run scores each rank's part of the validation data and sums over ranks.
    """
    scores = _scores(model, targets, replicas.part(val), batch_size, replicas.sum,
                     None if targets.classifier else target_variance(val.y) * val.n)
    if not math.isfinite(scores["loss"]):
        raise guard.diverged_on_validation(val.X, scores["loss"])
    return {f"val_{key}": scores[key] for key in ("loss", "accuracy", "rmse", "r2")
            if key in scores}


def _params(opts: FitOptions, batches: Batches, train: Data, val: Data | None,
            targets: Targets) -> dict[str, Any]:
    names = ["loss"] + (["accuracy"] if targets.classifier else ["rmse", "r2"])
    if val is not None:
        names += [f"val_{name}" for name in names]
    return {"epochs": opts.epochs, "batch_size": opts.batch_size, "steps": len(batches),
            "samples": train.n, "verbose": opts.verbose, "metrics": [*names, "lr", "seconds"]}


# ----------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------


def evaluate(model: Sequential, X: Any, y: Any, batch_size: int = EVAL_BATCH,
             sample_weight: Any = None) -> dict[str, float]:
    """Loss and metrics of ``model`` on ``(X, y)``, in evaluation mode.

    Returns
    -------
    dict
        ``{'loss', 'accuracy'}`` for classifiers, ``{'loss', 'mse', 'mae', 'rmse', 'r2'}``
        otherwise. ``loss`` is the mean (sample-weighted) loss plus the model's L2 term, as
        in training; the metrics are unweighted, over every output element (``r2``: each
        output's R^2, averaged, as :func:`numnet.metrics.r2_score`).

    Raises
    ------
    NonFiniteError
        When the model's output on ``X`` is NaN or infinite (so is the loss), naming the
        parameter that is not finite if there is one.
    """
    model._need_loss()
    batch_size = positive_int(batch_size, "batch_size")
    data, targets = checked_data(model, X, y, sample_weight, "evaluate")
    was_training = model.training
    model.eval()
    try:
        with _kernels.model_scope(model.num_params):
            scores = _scores(model, targets, data, batch_size)
    finally:
        model.training = was_training
    if not math.isfinite(scores["loss"]):
        raise NonFiniteError(nonfinite_output(model.layers, "evaluate")
                             + f"; the loss is {scores['loss']}")
    return scores


def _scores(model: Sequential, targets: Targets, data: Data, batch_size: int,
            reduce: Reduce = local, ss_tot: np.ndarray | None = None) -> dict[str, float]:
    """The loss and metrics of checked data, ``batch_size`` rows at a time (the sums
    ``reduce``d over the processes of a distributed run). A regression's R^2 divides by
    ``ss_tot``, each output's sum of squares about its mean over all the data (by default
    over ``data``: a distributed run scores a part and passes the whole's)."""
    loss_fn = model._need_loss()
    loss_sum, correct, counted, abs_sum = 0.0, 0.0, 0.0, 0.0
    sq_err = np.zeros(0 if targets.classifier else int(np.prod(targets.out_shape)))
    with np.errstate(over="ignore", invalid="ignore"):  # a non-finite loss is reported
        for start in range(0, data.n, batch_size):
            end = start + batch_size
            xb, yb = data.X[start:end], data.y[start:end]
            wb = None if data.w is None else data.w[start:end]
            output = model.forward(xb, training=False)
            loss_sum += loss_fn.forward(output, yb, wb) * xb.shape[0]
            if targets.classifier:
                right, count = targets.count_correct(output, yb)
                correct, counted = correct + right, counted + count
            else:
                sq_err += squared_errors(output, yb)
                abs_sum += float(np.abs(output.reshape(-1) - yb.reshape(-1)).sum())
    loss_sum, n, correct, counted, abs_sum, *summed = reduce(
        loss_sum, data.n, correct, counted, abs_sum, *sq_err)
    result = {"loss": loss_sum / n + model.l2_penalty()}
    if targets.classifier:
        result["accuracy"] = correct / counted
    else:
        elements = n * int(np.prod(targets.out_shape))
        result["mse"] = float(np.sum(summed)) / elements
        result["mae"] = abs_sum / elements
        if ss_tot is None:
            ss_tot = target_variance(data.y) * data.n
        result.update(regression_scores(np.asarray(summed), ss_tot, int(n)))
    return result
