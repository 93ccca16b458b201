"""One rank of a data-parallel run: its part of each batch, its step and its guard.

:class:`Shards` gives the rank its part of every global batch (rows :func:`shard_bounds`),
:class:`ReplicaGuard` runs train_step on it with the update held back until one
``Allreduce`` (:class:`StepSum`) has summed the weighted gradient with everything the ranks
must agree on, and makes every rank take the same decision after the step (a NaN on any
rank, a Ctrl-C on any rank: :class:`AgreedInterrupt`). See
:mod:`numnet.training.parallel` for the whole run.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from numnet._checks import all_finite
from numnet.distributed import World
from numnet.errors import TrainingDiverged
from numnet.optim import Optimizer, clip_grad_norm
from numnet.training.data import Batch, Batches, Data, Targets
from numnet.training.guard import AtomicUpdate, Guard, Interrupt, Step, Updater

if TYPE_CHECKING:
    from numnet.model import Sequential
    from numnet.training.parallel import DataParallel


def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of ``n`` that rank ``rank`` of ``size`` takes.

    Contiguous parts in rank order whose sizes differ by at most one, the larger ones first
    (``numpy.array_split``'s rule); with ``n < size`` the last ranks get empty parts.
    """
    base, extra = divmod(n, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


class ReplicasDiverged(TrainingDiverged):
    """A divergence every rank of a distributed run raised, with the same message."""

    every_rank = True

class Shards(Batches):
    """Rank ``rank``'s part of every global batch (rows :func:`shard_bounds`).

    Every rank draws the same permutation, so over the ranks the parts of a global batch
    make up exactly the batch one process would train on. ``weight`` is the current part's
    share ``n_r / N`` of its global batch.
    """

    def __init__(self, data: Data, bounds: list[tuple[int, int]], shuffle: bool,
                 rng: np.random.Generator, rank: int, size: int) -> None:
        self.rank, self.size = rank, size
        self.weight = 0.0
        super().__init__(data, bounds, shuffle, rng)

    def rows(self, start: int, end: int) -> tuple[int, int]:
        lo, hi = shard_bounds(end - start, self.rank, self.size)
        return start + lo, start + hi

    def __iter__(self) -> Iterator[Batch]:
        for (start, end), batch in zip(self.bounds, super().__iter__(), strict=True):
            self.weight = batch[0].shape[0] / (end - start)
            yield batch


class StepSum:
    """The one ``Allreduce`` of a step: the gradient and every number the ranks must agree on.

    One buffer of the model's dtype, summed over the ranks::

        [ w_r * g_r | loss_r * n_r, n_r, correct_r, counted_r | bad_0 .. bad_{P-1} | ctrl_c | stop ]

    ``w_r = n_r / N`` is the rank's share of the global batch (see
    :mod:`numnet.training.parallel`), so the first part sums to the global batch's
    gradient; the L2 term ``l2 * W`` is the same on every rank and the shares sum to 1, so
    it comes through unchanged. Then the batch's loss and accuracy counts over all its rows,
    which ranks saw a NaN or infinite loss or running statistic, whether any rank saw a
    Ctrl-C, and whether a callback on any rank asked to stop (``model.stop_training``): one
    synchronisation of the ranks per step, whatever they must know. In a float32 model the
    loss sum travels in float32 too (about 7 significant digits).
    """

    def __init__(self, world: World, model: Sequential) -> None:
        self.world, self.size = world, model.flat_grads.size
        self.buffer = np.empty(self.size + 6 + world.size, dtype=model.dtype)

    def __call__(self, grads: np.ndarray, weight: float, totals: tuple[float, ...],
                 bad: bool, ctrl_c: bool, stop: bool
                 ) -> tuple[tuple[float, ...], np.ndarray, bool, bool]:
        """Sum over the ranks, in place into ``grads``: ``(totals, bad ranks, any Ctrl-C,
        any stop)``."""
        n, buffer = self.size, self.buffer
        np.multiply(grads, grads.dtype.type(weight), out=buffer[:n])
        rest = buffer[n:]
        rest[:4] = totals
        rest[4:] = 0
        rest[4 + self.world.rank] = bad
        rest[-2], rest[-1] = ctrl_c, stop
        self.world.allreduce(buffer, "the step's all-reduce")
        grads[...] = buffer[:n]
        return (tuple(float(v) for v in rest[:4]), np.flatnonzero(rest[4:-2]), bool(rest[-2]),
                bool(rest[-1]))


class Held:
    """The update a rank's train_step sees: it waits, for the step's all-reduce comes first
    (:class:`ReplicaGuard` steps the optimiser after it)."""

    def step(self, model: Sequential) -> None:
        pass


class AgreedInterrupt(Interrupt):
    """Ctrl-C for one rank: every rank stops after the same batch.

    ``mpiexec`` passes Ctrl-C to every rank, but each sees it at a different point of its
    work. A press only marks this rank ``pending``; after each step the ranks tell each
    other (:class:`ReplicaGuard`), and ``requested`` becomes True on every rank at once.
    A press once the stop is agreed aborts the job (as a second Ctrl-C to mpiexec does).
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self.pending = False
        self._agreed = False
        super().__init__()

    @property
    def requested(self) -> bool:
        return self._agreed

    @requested.setter
    def requested(self, value: bool) -> None:
        if value:  # the other ranks learn of it after the next step
            self.pending = True

    def agree(self, anyone: bool) -> None:
        self._agreed = self._agreed or anyone

    def press(self) -> None:
        if self._agreed:
            self.world.abort("Ctrl-C again: stopping every rank now", 130)
        self.pending = True


def join(model: Sequential, optimizer: Updater, xb: np.ndarray, yb: np.ndarray,
         wb: np.ndarray | None, **options: Any) -> tuple[float, np.ndarray]:
    """The step of a rank with no rows in this global batch (a last batch smaller than
    the number of ranks): it takes part in every collective of the step, SyncBatchNorm's in
    the forward and backward passes and the gradient all-reduce, adding nothing (its share
    of the batch is 0)."""
    output = model._forward_layers(xb, training=True)
    model.backward(np.zeros_like(output), input_grad=False)
    optimizer.step(model)
    return 0.0, output


class ReplicaGuard(Guard):
    """The guard of one rank: every rank steps with the global gradient and takes the same
    decision after every step.

    The step is train_step on this rank's part of the batch with the update held back
    (:class:`Held`); then one :class:`StepSum` all-reduce sums the weighted gradient
    together with the batch's loss and accuracy counts (the meter's numbers), which ranks
    saw a NaN or infinite loss or running statistic, and any Ctrl-C. Then:

    * no rank saw a bad number: the optimiser steps with the global gradient (clipped
      first when ``clip_norm`` is given: clipping must see the global gradient), and the
      weights, the same on every rank, are checked as in one process (an overflowing
      update is found alike everywhere, with the same message);
    * some rank did: no rank steps; every rank puts back its running statistics, the first
      such rank finds the culprit (re-running its forward pass with its own statistics)
      and broadcasts the message, and every rank raises that same
      :class:`ReplicasDiverged` (a TrainingDiverged);
    * a Ctrl-C on any rank stops every rank after this batch (:class:`AgreedInterrupt`);
    * so does ``model.stop_training`` set by a callback on any rank after the previous
      batch (:attr:`stopping`): a callback that decides on one rank alone (a time budget,
      code under ``is_main()``) stops every rank one batch later instead of leaving the
      others waiting in the next collective.
    """

    def __init__(self, model: Sequential, optimizer: Optimizer, X: np.ndarray, epochs: int,
                 steps: int, replicas: DataParallel, targets: Targets) -> None:
        super().__init__(model, optimizer, X, epochs, steps)
        assert replicas.shards is not None, "batches() comes before guard()"
        self.replicas, self.world, self.targets = replicas, replicas.world, targets
        self.shards = replicas.shards
        self.agreed = AgreedInterrupt(self.world)
        self.interrupt = self.agreed
        self.update = AtomicUpdate(optimizer, self.interrupt, self.backup)
        self.step_sum = StepSum(self.world, model)
        #: this batch's loss sum, rows, correct and counted, over every rank
        self.totals: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)
        self.bad = np.zeros(0, dtype=np.intp)  # the ranks whose numbers went bad
        #: a rank's callback asked to stop: agreed by the last step, the same on every rank
        self.stopping = False

    def run(self, step: Step, xb: np.ndarray, yb: np.ndarray, wb: np.ndarray | None,
            **options: Any) -> tuple[float, np.ndarray]:
        clip_norm = options.pop("clip_norm", None)
        part_step = step if xb.shape[0] else join

        def summed_step(model: Sequential, update: Updater, xb: np.ndarray, yb: np.ndarray,
                        wb: np.ndarray | None, **options: Any) -> tuple[float, np.ndarray]:
            loss, output = part_step(model, Held(), xb, yb, wb, **options)
            self._sum(loss, output, yb)
            if self.bad.size == 0:
                if clip_norm is not None:
                    clip_grad_norm(model, clip_norm)
                update.step(model)
            return loss, output

        return super().run(summed_step, xb, yb, wb, **options)

    def _sum(self, loss: float, output: np.ndarray, yb: np.ndarray) -> None:
        rows = yb.shape[0]
        right, count = self.targets.count_correct(output, yb) if self.targets.classifier \
            else (0, 0)
        bad = not (math.isfinite(loss) and all(
            all_finite(value.reshape(-1)) for _, _, value in self.buffers))
        self.totals, self.bad, ctrl_c, stop = self.step_sum(
            self.model.flat_grads, self.shards.weight, (loss * rows, rows, right, count),
            bad, self.agreed.pending, bool(self.model.stop_training))
        self.agreed.agree(ctrl_c)
        if stop:
            self.stopping = self.model.stop_training = True

    def _check(self, loss: float, output: np.ndarray, xb: np.ndarray) -> None:
        if self.bad.size == 0:  # only the weights can be bad now, alike on every rank
            try:
                super()._check(loss, output, xb)
            except TrainingDiverged as exc:
                raise ReplicasDiverged(str(exc), epoch=exc.epoch, batch=exc.batch) from None
            return
        comm = self.world
        first = int(self.bad[0])
        message = self._culprit(loss, output, xb) if comm.rank == first else None
        if comm.rank != first:
            self._undo()
        message = comm.broadcast_object(message, "the divergence message", root=first)
        where = f" (on rank {first} of {comm.size}, in its part of the global batch):"
        raise ReplicasDiverged(str(message).replace(":", where, 1), epoch=self.epoch,
                               batch=self.batch)

    def _culprit(self, loss: float, output: np.ndarray, xb: np.ndarray) -> str:
        """The message of the one-process check, on the rank whose numbers went bad (it
        undoes the step too); the forward pass it may re-run uses this rank's statistics."""
        with self.replicas.local_statistics():
            try:
                super()._check(loss, output, xb)
            except TrainingDiverged as exc:
                return str(exc)
        self._undo()  # not reached: this rank's loss or statistics are not finite
        return (f"training diverged in epoch {self.epoch + 1}/{self.epochs}, batch "
                f"{self.batch + 1}/{self.steps}: a loss or running statistic is not finite")

    def watched_loss(self, loss: float) -> float:
        """The global batch's loss, summed by the step's all-reduce: the same on every rank,
        so the explosion rule stops every rank at the same batch."""
        total, rows = self.totals[0], self.totals[1]
        return total / rows if rows else loss

    def exploded(self) -> TrainingDiverged:
        error = super().exploded()  # from the global loss: on every rank alike
        return ReplicasDiverged(str(error), epoch=error.epoch, batch=error.batch)

    def diverged_on_validation(self, X_val: np.ndarray, loss: float) -> TrainingDiverged:
        error = super().diverged_on_validation(X_val, loss)  # the reduced loss: on every rank
        return ReplicasDiverged(str(error), epoch=error.epoch, batch=error.batch)
