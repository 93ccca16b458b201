"""Data-parallel training over MPI: the parts ``fit(..., distributed=True)`` swaps in.

``fit`` reads the same top to bottom for one process and for many: it asks
``opts.replicas`` for the few things that differ. :class:`Replicas` is one process (each
method the plain thing); :class:`DataParallel` is one of P processes (*ranks*) that each
hold a replica of the model (its batches, step and guard are in
:mod:`numnet.training.replica`):

====================  ===============  ==================================================
                      one process      DataParallel, on rank r of P
====================  ===============  ==================================================
batches               every row        :class:`Shards`: rank r's part of each global batch
the step              train_step       :class:`ReplicaGuard`: train_step on the part, the
                                       update held until one ``Allreduce`` (:class:`StepSum`)
                                       has summed the weighted gradient with the batch's
                                       loss, accuracy counts and verdict; clip, step
the batch's numbers   as they are      summed by that same all-reduce
validation data       all of it        rank r's part; the sums reduced
running statistics    as they are      averaged over the ranks at each epoch's end
around the run        nothing          the same start everywhere, SyncBatchNorm, abort
                                       the job on an error only this rank saw
====================  ===============  ==================================================

**Sharding.** The global batch is the ``batch_size`` rows one process would train on, cut
by the same permutation on every rank (its generator is rank 0's). Rank r takes rows
``shard_bounds(N, r, P)`` of it: contiguous parts whose sizes differ by at most one, the
larger ones first. A last batch smaller than P leaves some ranks an empty part; they still
take part in every collective of the step (:func:`join`).

**Weighting.** A loss is a mean over its batch, ``L = (1/N) sum_i w_i l_i`` (``w_i`` the
sample weights, 1 without), and rank r's loss the mean over its ``n_r`` rows, so
``L = sum_r (n_r / N) L_r`` and the same holds for the gradients: each rank scales its flat
gradient by its share ``n_r / N`` and one ``Allreduce`` sums them. Every rank then steps
with the gradient of the whole global batch, so the learning dynamics do not depend on P.

**One synchronisation per step.** What else the ranks must agree on after a step (the
batch's loss and accuracy for the History, a NaN on any rank, a Ctrl-C on any rank) rides
in the same all-reduce as the gradient, a few numbers more: on a busy machine every extra
collective costs a wait for the slowest rank, far more than its bytes.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np

from numnet.distributed import SyncBatchStats, World, world
from numnet.errors import DistributedError, TrainingDiverged
from numnet.layers.base import Layer
from numnet.layers.normalization import BatchNorm1d
from numnet.optim import Optimizer
from numnet.training.data import Batches, Data, Targets, min_batch
from numnet.training.guard import Guard
from numnet.training.replica import ReplicaGuard, Shards, shard_bounds

if TYPE_CHECKING:
    from numnet.model import Sequential
    from numnet.training.options import FitOptions


def local(*values: float) -> tuple[float, ...]:
    """Numbers summed over the processes of a one-process run: as they are."""
    return values


# ----------------------------------------------------------------------------------------
# One process
# ----------------------------------------------------------------------------------------


class Replicas:
    """One process: what ``fit`` does when it is not distributed."""

    size = 1

    def min_batch(self, model: Sequential, n: int, batch_size: int) -> int:
        """The fewest rows of a training batch (a smaller last batch joins the one before)."""
        return min_batch(model, n)

    def batches(self, data: Data, bounds: list[tuple[int, int]], shuffle: bool,
                rng: np.random.Generator) -> Batches:
        return Batches(data, bounds, shuffle, rng)

    def guard(self, model: Sequential, optimizer: Optimizer, X: np.ndarray, epochs: int,
              steps: int, targets: Targets) -> Guard:
        return Guard(model, optimizer, X, epochs, steps)

    def batch_sums(self, *values: float) -> tuple[float, ...]:
        """A training batch's loss sum, rows, correct and counted over the processes."""
        return local(*values)

    def sum(self, *values: float) -> tuple[float, ...]:
        """The values summed over the processes: as they are here."""
        return local(*values)

    def maximum(self, value: float) -> float:
        return value

    def stopping(self, model: Sequential) -> bool:
        """Whether training stops after this batch: a callback set ``model.stop_training``."""
        return bool(model.stop_training)

    def stop_after_epoch(self, model: Sequential) -> bool:
        """Whether training stops after this epoch's callbacks."""
        return bool(model.stop_training)

    def part(self, data: Data) -> Data:
        """The rows of ``data`` this process scores: all of them."""
        return data

    def sync_buffers(self, model: Sequential) -> None:
        """Make the running statistics the same on every process: nothing to do here."""

    def training(self, model: Sequential, opts: FitOptions, train: Data, val: Data | None,
                 batches: Batches) -> AbstractContextManager[None]:
        """What surrounds the epochs: nothing for one process."""
        return nullcontext()


# ----------------------------------------------------------------------------------------
# P processes
# ----------------------------------------------------------------------------------------


class DataParallel(Replicas):
    """One rank of a data-parallel run over the processes of an MPI job.

    Parameters
    ----------
    sync_batchnorm : bool
        Take the BatchNorm statistics over the global batch (SyncBatchNorm) rather than
        over each rank's part (the default, as PyTorch's DistributedDataParallel).
    comm : World, optional
        The ranks (default: every process of the job, :func:`numnet.distributed.world`).
    """

    def __init__(self, sync_batchnorm: bool = False, comm: World | None = None) -> None:
        self.world = world() if comm is None else comm
        self.size = self.world.size
        self.sync_batchnorm = bool(sync_batchnorm)
        self.shards: Shards | None = None
        self.synced: dict[BatchNorm1d, SyncBatchStats] = {}

    def _synchronised(self, layer: Layer) -> bool:
        return self.sync_batchnorm and isinstance(layer, BatchNorm1d)

    def _per_rank_statistics(self, model: Sequential) -> Layer | None:
        """The layer that needs the most rows in every rank's part: one keeping per-rank
        batch statistics (running buffers) that are not synchronised; None when none does."""
        layers = [layer for layer in model.layers
                  if layer.buffers and not self._synchronised(layer)]
        return max(layers, key=lambda layer: layer.min_train_batch, default=None)

    # -- the data -----------------------------------------------------------------------
    def min_batch(self, model: Sequential, n: int, batch_size: int) -> int:
        smallest = min_batch(model, n)  # of the global batch, as for one process
        layer = self._per_rank_statistics(model)
        if layer is None:  # empty parts are fine: they add nothing
            return smallest
        per_rank = max(1, layer.min_train_batch)
        needed = per_rank * self.size
        fix = (f"{layer!r} keeps per-rank batch statistics and needs at least {per_rank} "
               f"row(s) in every rank's part of a batch")
        if batch_size < needed:
            raise ValueError(f"batch_size={batch_size} split over {self.size} ranks leaves "
                             f"parts of {batch_size // self.size} row(s), but {fix}: use "
                             f"batch_size >= {needed}, or fit(..., sync_batchnorm=True)")
        if n < needed:
            raise ValueError(f"the training set has {n} samples, but {fix} on "
                             f"{self.size} ranks: {needed} samples at least")
        return max(smallest, needed)

    def batches(self, data: Data, bounds: list[tuple[int, int]], shuffle: bool,
                rng: np.random.Generator) -> Shards:
        self.shards = Shards(data, bounds, shuffle, rng, self.world.rank, self.size)
        return self.shards

    def guard(self, model: Sequential, optimizer: Optimizer, X: np.ndarray, epochs: int,
              steps: int, targets: Targets) -> ReplicaGuard:
        self.step_guard = ReplicaGuard(model, optimizer, X, epochs, steps, self, targets)
        return self.step_guard

    def batch_sums(self, *values: float) -> tuple[float, ...]:
        """The batch's numbers over every rank: the step's all-reduce summed them already."""
        return self.step_guard.totals

    def sum(self, *values: float) -> tuple[float, ...]:
        totals = self.world.allreduce(np.array(values, dtype=np.float64), "metrics")
        return tuple(float(value) for value in totals)

    def maximum(self, value: float) -> float:
        return self.world.maximum(value, "metrics")

    def stopping(self, model: Sequential) -> bool:
        """A stop asked on any rank before this batch's step, agreed by the step."""
        return self.step_guard.stopping

    def stop_after_epoch(self, model: Sequential) -> bool:
        """A stop asked on any rank by this epoch's callbacks stops every rank."""
        stop = self.world.maximum(float(model.stop_training), "stop_training") > 0
        model.stop_training = stop
        return stop

    def part(self, data: Data) -> Data:
        lo, hi = shard_bounds(data.n, self.world.rank, self.size)
        return data.part(slice(lo, hi))

    def sync_buffers(self, model: Sequential) -> None:
        """Average the running statistics kept per rank (not those of SyncBatchNorm, the
        same everywhere) over the ranks.

        Each rank's running mean and unbiased variance estimate the same population values
        from its parts of the batches; their average estimates them from every row, and
        gives every rank the same model to evaluate and save. (PyTorch's DDP instead
        broadcasts rank 0's buffers at every forward pass, keeping rank 0's estimate.)
        """
        arrays = [value for layer in model.layers if not self._synchronised(layer)
                  for value in layer.buffers.values()]
        if not arrays:
            return
        flat = np.concatenate([value.reshape(-1) for value in arrays]).astype(np.float64)
        self.world.allreduce(flat, "running statistics")
        flat /= self.size
        offset = 0
        for value in arrays:
            value[...] = flat[offset:offset + value.size].reshape(value.shape)
            offset += value.size

    # -- around the epochs --------------------------------------------------------------
    @contextmanager
    def training(self, model: Sequential, opts: FitOptions, train: Data, val: Data | None,
                 batches: Batches) -> Iterator[None]:
        """Agree, start from rank 0's state, train; then leave every rank the same model.

        Only errors every rank raises together (a divergence) leave the block; any other
        exception aborts the job, as the other ranks would wait for this one for ever.
        """
        self._agree(model, opts, train, val, batches)
        self._start_alike(model, opts)
        silenced = [] if self.world.is_main else _quiet(opts)
        min_train_batch = model._min_train_batch
        self._synchronise_batchnorm(model)
        try:
            with self.world.abort_on_error("training"):
                try:
                    yield
                except TrainingDiverged:  # every rank raises it after the same batch
                    self.sync_buffers(model)
                    raise
                self.sync_buffers(model)
                self._check_alike(model)
        finally:
            for callback, verbose in silenced:
                callback.verbose = verbose
            for layer in self.synced:
                layer.sync = None
            self.synced = {}
            model._min_train_batch = min_train_batch

    def _agree(self, model: Sequential, opts: FitOptions, train: Data, val: Data | None,
               batches: Batches) -> None:
        """Fail on every rank, naming what differs, unless every rank trains on the same data
        with the same arguments."""
        optimizer = opts.optimizer.state_dict()
        facts = {
            "the number of training samples": train.n,
            "a checksum of the training data": _checksum(train),
            "the number of validation samples": 0 if val is None else val.n,
            "a checksum of the validation data": 0 if val is None else _checksum(val),
            "batch_size": opts.batch_size,
            "the number of batches per epoch": len(batches),
            "epochs": opts.epochs,
            "initial_epoch": opts.initial_epoch,
            "shuffle": opts.shuffle,
            "clip_norm": opts.clip_norm,
            "sync_batchnorm": self.sync_batchnorm,
            "the layers": [type(layer).__name__ for layer in model.layers],
            "the number of parameters": model.num_params,
            "dtype": model.dtype.name,
            "the loss": repr(model.loss),
            "l2": model.l2,
            "the optimiser": opts.optimizer.get_config(),
            "the optimiser's state": (int(optimizer["step"]), sorted(optimizer)),
        }
        every = self.world.allgather_object(facts, "the agreement at the start of fit")
        for key in facts:
            values = [rank_facts[key] for rank_facts in every]
            if any(value != values[0] for value in values):
                listed = ", ".join(f"rank {r}: {value!r}" for r, value in enumerate(values))
                raise DistributedError(f"fit(distributed=True): the ranks disagree on {key} "
                                       f"({listed}); every rank must call fit with the same "
                                       "data and arguments")

    def _start_alike(self, model: Sequential, opts: FitOptions) -> None:
        """Rank 0's weights, running statistics, optimiser state and shuffling generator on
        every rank; the layers' own generators (dropout) independent on every rank."""
        comm = self.world
        what = "the start of fit"
        comm.broadcast(model.flat_params, what)
        for layer in model.layers:
            for value in layer.buffers.values():
                comm.broadcast(value, what)
        state = opts.optimizer.state_dict()
        moments = sorted(key for key, value in state.items() if value.ndim)
        if moments:  # a resumed optimiser: its moments from rank 0
            for key in moments:
                comm.broadcast(state[key], what)
            opts.optimizer.load_state_dict(state)
        opts.rng.bit_generator.state = comm.broadcast_object(
            opts.rng.bit_generator.state if comm.is_main else None, what)
        if comm.rank:  # rank 0 keeps its generators: one rank runs as one process would
            for layer in model.layers:
                entropy = int(layer.rng.integers(2**63))
                layer.rng = np.random.default_rng(
                    np.random.SeedSequence(entropy, spawn_key=(comm.rank,)))

    def _synchronise_batchnorm(self, model: Sequential) -> None:
        if not self.sync_batchnorm:
            return
        assert self.shards is not None, "batches() comes before training()"
        for layer in model.layers:
            if isinstance(layer, BatchNorm1d):
                self.synced[layer] = layer.sync = SyncBatchStats(self.world, self.shards)
        # the statistics are the global batch's: a rank's part may be smaller than one
        # process's minimum (an empty part never reaches this check, see join)
        other = self._per_rank_statistics(model)
        model._min_train_batch = 1 if other is None else max(1, other.min_train_batch)

    @contextmanager
    def local_statistics(self) -> Iterator[None]:
        """SyncBatchNorm off for a while: for the forward pass one rank re-runs alone to
        find where a divergence started."""
        for layer in self.synced:
            layer.sync = None
        try:
            yield
        finally:
            for layer, stats in self.synced.items():
                layer.sync = stats

    def _check_alike(self, model: Sequential) -> None:
        """Every rank should hold the same model now; warn, and take rank 0's, if not."""
        arrays = [model.flat_params] + [value for layer in model.layers
                                        for value in layer.buffers.values()]
        digest = 0
        for value in arrays:
            digest = zlib.crc32(value.tobytes(), digest)
        digests = self.world.allgather_object(digest, "the check at the end of fit")
        if len(set(digests)) == 1:
            return
        warnings.warn("fit(distributed=True): the ranks' weights differ after training (an "
                      "all-reduce not bit-identical on every rank, or a callback changed "
                      "them on one rank); every rank now takes rank 0's", RuntimeWarning,
                      stacklevel=4)
        for value in arrays:
            self.world.broadcast(value, "the check at the end of fit")


def _checksum(data: Data) -> int:
    """A CRC of the targets, the weights and up to ~256 rows of ``X`` spread over the set."""
    step = max(1, data.n // 256)
    digest = zlib.crc32(data.X[::step].tobytes())
    digest = zlib.crc32(data.y.tobytes(), digest)
    if data.w is not None:
        digest = zlib.crc32(data.w.tobytes(), digest)
    return digest


def _quiet(opts: FitOptions) -> list[tuple[Any, Any]]:
    """A rank other than 0: no progress output, no callbacks that write files or to the
    terminal (``main_only``), the others run with ``verbose=0``; returns what to restore."""
    opts.verbose = 0
    kept = [callback for callback in opts.callbacks.callbacks if not callback.main_only]
    opts.callbacks.callbacks = kept
    chatty: list[Any] = [callback for callback in kept if getattr(callback, "verbose", 0)]
    silenced = [(callback, callback.verbose) for callback in chatty]
    for callback in chatty:
        callback.verbose = 0
    return silenced
