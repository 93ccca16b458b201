"""Data-parallel training across processes and machines with MPI.

Install the optional extra (mpi4py and the MPI runtime, ``mpiexec`` included)::

    pip install 'numnet[mpi]'

and start one process per core (or per machine) with the MPI launcher::

    mpiexec -n 4 python train.py                 # one machine
    mpiexec -f hosts -n 8 python train.py        # MPICH, across the machines in 'hosts'
    mpirun --hostfile hosts -n 8 python train.py # Open MPI

Every process (a *rank*) runs the whole script; ``model.fit(X, y, ...,
distributed=True)`` then trains one model together:

* every rank starts from rank 0's weights, running statistics, optimiser state and
  shuffling generator, so the shuffled order is the same everywhere;
* each global batch (the ``batch_size`` rows asked for) is split into one contiguous part
  per rank; each rank computes the gradient of its part, and one ``Allreduce`` of the flat
  gradient buffer per step, weighted by each part's share of the batch, gives every rank
  the gradient of the whole global batch before the optimiser steps. The learning
  dynamics do not depend on the number of ranks; with dropout off and float64, the
  weights equal one process's to rounding;
* the loss and accuracy of every batch and the validation scores are reduced over the
  ranks, so the History is the same on every rank; the progress bar and the callbacks
  that write files (:class:`~numnet.callbacks.ModelCheckpoint`,
  :class:`~numnet.callbacks.CSVLogger`) run on rank 0 only; ``model.stop_training`` set by a
  callback on any rank stops every rank (inside an epoch, one batch later);
* BatchNorm (1d and 2d) keeps per-rank statistics by default (as PyTorch's
  DistributedDataParallel): each rank normalises its part with that part's mean and
  variance, and the running statistics are averaged over the ranks at the end of every
  epoch.
  ``sync_batchnorm=True`` takes the statistics over the global batch instead (PyTorch's
  SyncBatchNorm: one extra small all-reduce per BatchNorm layer in the forward pass and
  one in the backward pass), which equals one process training on the global batch;
* dropout draws independent masks on every rank (each rank masks its own rows), so a run
  with dropout on P ranks is not bit-equal to one process: it is an equally valid draw.

When things go wrong no rank is left waiting: a NaN or infinite number on any rank stops
every rank with the same :class:`~numnet.errors.TrainingDiverged` message; Ctrl-C (which
``mpiexec`` passes to every rank) stops every rank after the same batch, and a second
Ctrl-C aborts the job; an exception on one rank inside ``fit`` aborts the job
(``MPI_Abort``) with its traceback; a rank that waits more than ``$NUMNET_MPI_TIMEOUT``
seconds (default 1800; :func:`set_timeout`) in one collective aborts the job. Outside
``fit``, run scripts as ``mpiexec -n P python -m mpi4py script.py`` so that an uncaught
exception on one rank aborts the job too (mpi4py's own guard).

:func:`rank`, :func:`size` and :func:`is_main` tell user code where it runs (0, 1 and True
in a process not started by an MPI launcher, without importing mpi4py).
"""

from numnet.distributed._world import (
    Traffic,
    World,
    is_main,
    launched,
    rank,
    set_timeout,
    size,
    timeout,
    world,
)
from numnet.distributed.batchnorm import SyncBatchStats

__all__ = ["SyncBatchStats", "Traffic", "World", "is_main", "launched", "rank", "set_timeout",
           "size", "timeout", "world"]
