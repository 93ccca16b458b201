r"""SyncBatchNorm: batch statistics over a global batch split across processes.

``fit(..., distributed=True, sync_batchnorm=True)`` gives every BatchNorm layer a
:class:`SyncBatchStats` for the run (its ``sync`` attribute). The layer's maths stays
the same; only the sums over "the batch" become sums over every rank's part of it:

Forward, per channel ``c``, with ``M`` values per channel over the global batch (the
batch rows times the spatial positions of an image batch), one all-reduce of
``[sum_i (x_i - K), sum_i (x_i - K)^2, m_r]`` (``2C + 1`` numbers)::

    mu  = K + S1 / M          var = S2 / M - (S1 / M)^2        (biased, as the layer's)

``K`` is the running mean, the same on every rank: a shift that keeps the one-pass variance
accurate when ``|mu|`` is large against the spread (it is close to ``mu`` after a few steps).

Backward, one all-reduce of ``[sum_i g_i, sum_i g_i * x_hat_i]`` (``2C`` numbers): the
layer's closed form ``dx = (gamma * s / M) * (M g - sum g - x_hat * sum g x_hat)`` with the
sums over the global batch. One subtlety: each rank back-propagates the gradient of *its*
loss, the mean over its ``n_r`` rows, and the optimiser step sums ``w_r = n_r / N`` times
each rank's gradients (see :mod:`numnet.training.parallel`). The global batch's gradient
at row ``i`` of rank ``r`` is ``w_r g_i``, so the global sums are ``sum_r w_r sum_i g_i``,
and the input gradient a rank passes down, in its own loss's scale, is the global one
divided by ``w_r``::

    S_g  = allreduce(w_r * sum_i g_i) / w_r        S_gx = allreduce(w_r * sum_i g_i x_hat_i) / w_r

``dgamma`` and ``dbeta`` stay the rank's own sums: the step's all-reduce combines them with
every other gradient. The result equals one process training on the global batch.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from numnet.distributed._world import World


class Share(Protocol):
    """This rank's share of the current global batch, ``n_r / N`` (set by the batching)."""

    @property
    def weight(self) -> float: ...


class SyncBatchStats:
    """The global-batch statistics of one BatchNorm layer (``layer.sync``), axis-generic.

    Works for any input ``(N, C, ...)``: the statistics of channel ``c`` are taken over
    every axis but axis 1 (BatchNorm1d ``(N, C)``, BatchNorm2d ``(N, C, H, W)``).

    Parameters
    ----------
    world : World
        The ranks to reduce over.
    share : Share
        Gives this rank's share ``n_r / N`` of the current global batch.
    """

    def __init__(self, world: World, share: Share) -> None:
        self.world, self.share = world, share
        self.count = 0  # values per channel in the global batch, from the last forward

    def moments(self, x: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """``(mean, var, M)`` per channel over the global batch (``var`` biased)."""
        channels = shift.shape[0]
        axes = (0, *range(2, x.ndim))
        d = x - shift.reshape((channels,) + (1,) * (x.ndim - 2))
        sums = np.empty(2 * channels + 1)  # float64: exact counts, accurate sums
        np.sum(d, axis=axes, dtype=np.float64, out=sums[:channels])
        d *= d
        np.sum(d, axis=axes, dtype=np.float64, out=sums[channels:-1])
        sums[-1] = x.size // channels
        self.world.allreduce(sums, "BatchNorm statistics")
        count = sums[-1]
        mean_d = sums[:channels] / count
        var = np.maximum(sums[channels:-1] / count - mean_d * mean_d, 0.0)
        self.count = int(count)
        return (shift + mean_d).astype(x.dtype), var.astype(x.dtype), self.count

    def sums(self, sum_g: np.ndarray, sum_g_xhat: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, int]:
        """``(sum g, sum g * x_hat, M)`` over the global batch, in this rank's loss scale."""
        channels = sum_g.shape[0]
        weight = self.share.weight
        sums = np.concatenate([sum_g, sum_g_xhat]).astype(np.float64)
        sums *= weight
        self.world.allreduce(sums, "BatchNorm gradients")
        if weight:  # a rank with no rows of this batch has no input gradient to scale
            sums /= weight
        dtype = sum_g.dtype
        return sums[:channels].astype(dtype), sums[channels:].astype(dtype), self.count
