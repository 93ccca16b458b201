"""Weight averaging: an exponential moving average of the weights over training steps.

Polyak averaging (Polyak & Juditsky, 1992) in its exponential form: the average of the
weights the optimiser visits lies nearer the bottom of the valley than the last of them,
which a constant learning rate keeps bouncing from wall to wall. It is the same moving
average as the seeds' momentum and Adam's moments, applied to the weights themselves:
Keras's ``use_ema`` optimiser option, ``torch.optim.swa_utils.AveragedModel`` with an EMA,
Lightning's ``EMAWeightAveraging``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from numnet._checks import real_number
from numnet.callbacks import Callback


class WeightAveraging(Callback):
    r"""Keep an exponential moving average of the weights; validate with it and end with it.

    After every training step ``t`` (from 1)::

        d_t = min(decay, (1 + t) / (10 + t))
        average <- d_t * average + (1 - d_t) * weights

    starting from the weights before the first step. The warm-up of ``d_t`` (as
    TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``) keeps the random
    initial weights from lingering in the average: with a constant ``decay = 0.999`` they
    would still weigh ``0.999 ** 1000 = 37%`` after 1,000 steps. The average covers every
    parameter (BatchNorm's running statistics, which are not parameters, are left as
    training leaves them).

    From the end of each epoch's training to the start of the next, the model holds the
    averaged weights: ``fit``'s validation scores them (swapped in at ``on_test_begin``),
    and so do the ``on_epoch_end`` of the callbacks after this one in the list (put it
    first: early stopping, checkpoints and your own callbacks then see the weights that
    were validated), as Keras's ``SwapEMAWeights(swap_on_epoch=True)``. Each epoch trains
    on from the optimiser's own weights, swapped back at ``on_epoch_begin``. When training
    ends the model keeps the average (that of its last epoch, or restored by
    :class:`~numnet.callbacks.EarlyStopping`), as Keras's ``use_ema`` does; after Ctrl-C or
    a divergence it keeps the weights ``fit`` says it keeps (the last finished batch's, the
    guard's rolled-back ones). :meth:`applied` swaps the average in anywhere else. Each
    ``fit`` starts a new average from the model's weights.

    Parameters
    ----------
    decay : float
        In (0, 1): the weight of the old average at each step; ``1 / (1 - decay)`` steps
        is roughly the span averaged over (0.999: the last thousand or so). The warm-up
        bound is the smaller one for the first ``9 / (1 - decay) - 10`` steps (8,990 for
        0.999): a shorter run averages over roughly its last ninth.

    Examples
    --------
    >>> averaging = WeightAveraging(decay=0.999)                      # doctest: +SKIP
    >>> model.fit(x, y, epochs=3, callbacks=[averaging])              # doctest: +SKIP
    """

    def __init__(self, decay: float = 0.999) -> None:
        super().__init__()
        self.decay = real_number(decay, "WeightAveraging decay", low=0.0, high=1.0,
                                 low_open=True, high_open=True)
        self.steps = 0
        #: the average (a flat vector laid out as ``model.flat_params``), once fit started
        self.average: np.ndarray | None = None
        self._scratch: np.ndarray | None = None
        self._held: np.ndarray | None = None  # the optimiser's weights while swapped out
        self._swapped = False

    def decay_at(self, step: int) -> float:
        """``d_t`` of step ``t`` (from 1)."""
        return min(self.decay, (1 + step) / (10 + step))

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.steps = 0
        self.average = self.model.flat_params.copy()
        self._scratch = np.empty_like(self.average)
        self._held = np.empty_like(self.average)
        self._swapped = False

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        average, scratch, _ = self._state()
        self.steps += 1
        # average += (1 - d) * (weights - average): the same update as d*a + (1-d)*w, in place
        np.subtract(self.model.flat_params, average, out=scratch)
        scratch *= average.dtype.type(1 - self.decay_at(self.steps))
        average += scratch

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._swap_out()  # train on from the optimiser's weights

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._swap_in()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._swap_in()  # without validation data: the average all the same

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        if logs.get("interrupted") or logs.get("diverged"):
            # the weights fit's message names, unless another callback (early stopping
            # restoring its best) has put weights of its own in the meantime
            if self._swapped and np.array_equal(self.model.flat_params, self._state()[0]):
                self._swap_out()
        elif not self._swapped and self.steps:  # stopped inside an epoch
            np.copyto(self.model.flat_params, self._state()[0])
        self._swapped = False

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Inside the ``with`` block the model holds the averaged weights (during an epoch,
        for instance in another callback's ``on_batch_end``); after it, what it held."""
        if self._swapped:
            yield
            return
        self._swap_in()
        try:
            yield
        finally:
            self._swap_out()

    def _swap_in(self) -> None:
        """Put the average in the model, holding the optimiser's weights aside."""
        average, _, held = self._state()
        if not self._swapped:
            np.copyto(held, self.model.flat_params)
            np.copyto(self.model.flat_params, average)
            self._swapped = True

    def _swap_out(self) -> None:
        """Give the model back the optimiser's weights held aside."""
        if self._swapped:
            np.copyto(self.model.flat_params, self._state()[2])
            self._swapped = False

    def _state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.average is None or self._scratch is None or self._held is None:
            raise RuntimeError("WeightAveraging has no average yet: it starts when fit "
                               "starts training (pass it in fit's callbacks)")
        return self.average, self._scratch, self._held
