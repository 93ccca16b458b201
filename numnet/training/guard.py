"""The guard around each training step: divergence, rollback and Ctrl-C.

:meth:`Guard.run` wraps one call of :func:`numnet.training.loop.train_step`:

1. before it, the guard copies the running statistics (the buffers that change in the
   forward pass); the weights are copied by the optimiser's update itself
   (:meth:`~numnet.optim.Optimizer.checked_step`), in the same pass where it can;
2. the step runs, with NumPy's overflow warnings silenced (overflow is reported below);
   the optimiser it is given updates the weights inside an *atomic* block that no
   Ctrl-C splits;
3. after it, the guard checks that the loss and the buffers are finite, and the update
   reports whether the weights are (a NaN or infinite gradient makes the updated weights
   so too; the fused kernels check in the update's pass). If one is not, it puts
   the weights and statistics from before the batch back, resets the optimiser's state
   (its moments saw the bad step) and raises :class:`~numnet.errors.TrainingDiverged`
   naming the epoch, the batch and where the numbers went bad: the layer whose output,
   buffer or gradient turned NaN or infinite first, or the update that overflowed.

4. the loss may also *explode* without ever becoming NaN (a learning rate of 1e3 sends
   it to 1e16 and leaves it there): the guard keeps a running average of the batch
   losses, ``s <- s + (loss - s) / 10`` (about the last ten batches, so one odd batch
   moves it by a tenth of its loss), and stops training when it exceeds
   :data:`EXPLOSION_FACTOR` (1000) times the *reference loss* ``max(L0, Lu)``:

   * ``L0``, the loss of the first batch, computed before any update: where training
     started;
   * ``Lu``, the loss of the best prediction that ignores the inputs (zero logits, i.e.
     uniform probabilities, for classifiers: ln C for C classes with cross-entropy,
     ln 2 per output with binary cross-entropy; the targets' mean for regression:
     their variance with the squared error), computed once from the training targets.

   A model whose running loss is a thousand times worse than both knowing nothing and
   its own start is not learning: for cross-entropy on 10 classes that is an average
   loss above 2300 nats, logits wrong by thousands; healthy runs, even with learning
   rates high enough to spike the loss briefly, stay far below (RMSProp at lr 0.1 on the
   digits peaks near 65 times the reference). The rule costs two float operations per
   batch, on the loss the loop has anyway. Weights from before the bad batch would
   already be far out (the loss rose over several batches), so the guard puts back the
   weights and running statistics from the *start of the epoch* (the end of the last
   epoch, or those ``fit`` began with), resets the optimiser's state, and raises
   :class:`~numnet.errors.TrainingDiverged` naming the epoch and the batch, as for NaN.
   When the reference is 0 (a model that already fits its targets exactly) the rule is
   off.

Ctrl-C (:func:`catch_ctrl_c`): the first press sets a flag the loop reads between
batches, so the batch in progress finishes; a second press stops at once (the model keeps
the weights and statistics from before the batch), except during the update and its
check, where it waits until they are done, so a bad update is always undone.
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from numnet._checks import all_finite
from numnet.errors import TrainingDiverged
from numnet.optim import Optimizer

if TYPE_CHECKING:
    from numnet.layers.base import Layer
    from numnet.model import Sequential

#: training stops when the running loss exceeds this many times the reference loss
EXPLOSION_FACTOR = 1000.0
#: weight of a batch's loss in the running average the explosion rule watches
SMOOTHING = 0.1
#: the uninformed loss is computed on at most this many training targets
BASELINE_SAMPLES = 4096

HINT = ("lower the learning rate{lr}, scale or standardise the inputs{span}, check the "
        "weights' initialisation (each layer shows its init: He for ReLU, Glorot for "
        "sigmoid/tanh; a normal with std 1 is far too large), or clip gradients with "
        "fit(..., clip_norm=1.0) (numnet train --clip-norm 1)")


class Updater(Protocol):
    """What a training step needs of an optimiser: ``step(model)``."""

    def step(self, model: Sequential) -> None: ...


#: a training step: ``step(model, optimizer, xb, yb, wb, **options) -> (loss, output)``
Step = Callable[..., tuple[float, np.ndarray]]


class Interrupt:
    """The state of Ctrl-C during ``fit``."""

    def __init__(self) -> None:
        self.requested = False  # the first Ctrl-C: stop after the current batch
        self.deferred = False   # a second Ctrl-C that arrived inside the atomic block
        self.atomic = False     # True while the weights are updated and checked

    def press(self) -> None:
        """One Ctrl-C: the first asks to stop after the current batch; a second stops at
        once (KeyboardInterrupt), or right after the update in progress is checked."""
        if not self.requested:
            self.requested = True
        elif self.atomic:
            self.deferred = True
        else:
            raise KeyboardInterrupt


@contextmanager
def catch_ctrl_c(interrupt: Interrupt) -> Iterator[Interrupt]:
    """Turn the first Ctrl-C into ``interrupt.requested`` (a second one raises).

    Only the main thread can receive signals; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield interrupt
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        interrupt.press()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield interrupt
    finally:
        signal.signal(signal.SIGINT, previous)


class AtomicUpdate:
    """The optimiser as the guard hands it to the step: its update opens the atomic block,
    copies the weights from before it into ``backup`` and says whether the new ones are
    finite (``finite``)."""

    def __init__(self, optimizer: Optimizer, interrupt: Interrupt,
                 backup: np.ndarray) -> None:
        self.optimizer, self.interrupt, self.backup = optimizer, interrupt, backup
        self.done = False
        self.finite = True

    def step(self, model: Sequential) -> None:
        self.interrupt.atomic = True  # closed by the guard once it has checked the update
        self.finite = self.optimizer.checked_step(model, self.backup)
        self.done = True


class Guard:
    """Keeps the last finite weights and statistics; undoes and explains a step gone bad."""

    def __init__(self, model: Sequential, optimizer: Optimizer, X: np.ndarray,
                 epochs: int, steps: int, uninformed: float = 0.0) -> None:
        self.model, self.optimizer, self.X = model, optimizer, X
        self.epochs, self.steps = epochs, steps
        # the explosion rule: the loss of a prediction ignoring the inputs (set by fit), the
        # reference and the running average (set by the first batch)
        self.uninformed = uninformed
        self.start_loss: float | None = None
        self.limit = math.inf
        self.running = 0.0
        self.first_epoch: int | None = None
        self.interrupt = Interrupt()
        self.backup = np.empty_like(model.flat_params)  # the weights before the update
        self.update = AtomicUpdate(optimizer, self.interrupt, self.backup)
        # running statistics change in the forward pass: kept, and restored, with the weights
        self.buffers = [(i, name, value) for i, layer in enumerate(model.layers)
                        for name, value in layer.buffers.items()]
        self.buffer_backup = [value.copy() for _, _, value in self.buffers]
        # the weights and statistics at the start of the epoch, put back when the loss
        # explodes
        self.epoch_params = np.empty_like(model.flat_params)
        self.epoch_buffers = [value.copy() for _, _, value in self.buffers]
        self.epoch = self.batch = 0  # set by the loop, for the messages

    def start_epoch(self, epoch: int) -> None:
        """Keep the weights and statistics the epoch starts from (once per epoch)."""
        self.epoch = epoch
        if self.first_epoch is None:
            self.first_epoch = epoch
        np.copyto(self.epoch_params, self.model.flat_params)
        for (_, _, value), saved in zip(self.buffers, self.epoch_buffers, strict=True):
            np.copyto(saved, value)

    # -- one step -----------------------------------------------------------------------
    def run(self, step: Step, xb: np.ndarray, yb: np.ndarray, wb: np.ndarray | None,
            **options: Any) -> tuple[float, np.ndarray]:
        """``step(model, optimizer, xb, yb, wb, **options)``, undone if its numbers turn
        NaN or infinite; ``epoch`` and ``batch`` say where, for the message."""
        for (_, _, value), saved in zip(self.buffers, self.buffer_backup, strict=True):
            np.copyto(saved, value)
        self.update.done, self.update.finite = False, True
        try:
            # overflow is found below and reported as TrainingDiverged: NumPy's warnings
            # about it would only be noise
            with np.errstate(over="ignore", invalid="ignore"):
                loss, output = step(self.model, self.update, xb, yb, wb, **options)
                self._check(loss, output, xb)
        except KeyboardInterrupt:  # raised before the update (the update defers Ctrl-C)
            self._restore_buffers()
            raise
        finally:
            self.interrupt.atomic = False
        if self.interrupt.deferred:  # a Ctrl-C that waited for the update to finish
            raise KeyboardInterrupt
        self._watch(loss)
        return loss, output

    def watched_loss(self, loss: float) -> float:
        """The loss the explosion rule watches: this batch's. (A distributed rank's guard
        gives the global batch's, the same on every rank, so that all ranks stop together.)"""
        return loss

    def _watch(self, loss: float) -> None:
        """The explosion rule (see the module docstring): O(1) per batch."""
        loss = self.watched_loss(loss)
        if self.start_loss is None:
            self.start_loss = self.running = loss
            reference = max(loss, self.uninformed)
            self.limit = EXPLOSION_FACTOR * reference if reference > 0 else math.inf
            return
        self.running += SMOOTHING * (loss - self.running)
        if self.running > self.limit:
            raise self.exploded()

    def exploded(self) -> TrainingDiverged:
        """Put back the epoch's starting weights and explain the explosion."""
        np.copyto(self.model.flat_params, self.epoch_params)
        for (_, _, value), saved in zip(self.buffers, self.epoch_buffers, strict=True):
            np.copyto(value, saved)
        self.optimizer.zero_state()
        start, uninformed = self.start_loss or 0.0, self.uninformed
        what = (f"the loss exploded without becoming NaN: its running average over about "
                f"the last {round(1 / SMOOTHING)} batches reached {self.running:.3g}, more "
                f"than {EXPLOSION_FACTOR:g} times the larger of the loss where training "
                f"started ({start:.3g}) and that of a prediction ignoring the inputs "
                f"({uninformed:.3g})")
        kept = ("from before training (the loss exploded in the first epoch)"
                if self.epoch == self.first_epoch else
                f"from the end of epoch {self.epoch}/{self.epochs}, the start of the epoch "
                "in which the loss exploded")
        return self._diverged(what, kept, reset=True)

    def _check(self, loss: float, output: np.ndarray, xb: np.ndarray) -> None:
        """Raise TrainingDiverged, with the model put back, if the step went bad."""
        if not math.isfinite(loss):
            self._undo()
            culprit = (self._loss_culprit(loss, output) if all_finite(output.reshape(-1))
                       else self._forward_culprit(xb))
            self._restore_buffers()  # finding the culprit ran the forward pass again
            raise self._diverged(culprit)
        bad_buffer = next(((i, name) for i, name, value in self.buffers
                           if not all_finite(value.reshape(-1))), None)
        if bad_buffer is not None:
            self._undo()
            raise self._diverged(self._buffer_culprit(*bad_buffer))
        if not self.update.finite:
            culprit = (self._param_culprit() if all_finite(self.model.flat_grads)
                       else self._grad_culprit())
            self._undo()
            raise self._diverged(culprit)

    def _undo(self) -> None:
        """Put back the weights and statistics from before the batch; when the update ran,
        the weights come from its backup and the optimiser forgets its state (its moments
        took in the bad gradients). Before the update the weights are as they were."""
        if self.update.done:
            np.copyto(self.model.flat_params, self.backup)
            self.optimizer.zero_state()
        self._restore_buffers()

    def _restore_buffers(self) -> None:
        for (_, _, value), saved in zip(self.buffers, self.buffer_backup, strict=True):
            np.copyto(value, saved)

    # -- what went bad ------------------------------------------------------------------
    def _entries(self) -> Iterator[tuple[int, Layer, str, slice]]:
        """``(layer index, layer, param name, slice of the flat vectors)`` in flat order."""
        offset = 0
        for index, layer in enumerate(self.model.layers):
            for name, value in layer.params.items():
                yield index, layer, name, slice(offset, offset + value.size)
                offset += value.size

    def _grad_culprit(self) -> str:
        grads = self.model.flat_grads
        bad = [(i, layer, name) for i, layer, name, s in self._entries()
               if not np.isfinite(grads[s]).all()]
        # back-propagation runs from the output down, so the highest layer went bad first
        i, layer, name = max(bad, key=lambda entry: entry[0])
        others = sorted({f"{j}" for j, _, _ in bad if j != i})
        also = f" (then also in layer(s) {', '.join(others)})" if others else ""
        return (f"the gradient of parameter {name!r} of layer {i} {layer!r} became NaN or "
                f"infinite first in back-propagation{also}")

    def _param_culprit(self) -> str:
        params = self.model.flat_params
        for i, layer, name, s in self._entries():
            if not np.isfinite(params[s]).all():
                return (f"the optimiser's update made parameter {name!r} of layer {i} "
                        f"{layer!r} NaN or infinite (its gradients were finite but too large)")
        return "the optimiser's update made a parameter NaN or infinite"

    def _forward_culprit(self, xb: np.ndarray) -> str:
        """Re-run the forward pass layer by layer to find where the output stops being finite."""
        out = xb
        for i, layer in enumerate(self.model.layers):
            out = layer.forward(out, training=True)
            if not np.isfinite(out).all():
                return (f"the output of layer {i} {layer!r} became NaN or infinite in the "
                        f"forward pass (its input was finite), so the loss is not finite")
        return "the model's output became NaN or infinite, so the loss is not finite"

    def _loss_culprit(self, loss: float, output: np.ndarray) -> str:
        index = len(self.model.layers) - 1
        last = self.model.layers[index]
        return (f"the loss became {loss}: the output of layer {index} {last!r} is finite but "
                f"reaches |{float(np.abs(output).max()):.3g}|, too large for the loss in "
                f"{output.dtype}")

    def _buffer_culprit(self, index: int, name: str) -> str:
        layer = self.model.layers[index]
        return (f"the buffer {name!r} of layer {index} {layer!r} became NaN or infinite in the "
                "forward pass (an input far out of range?), though the loss was finite")

    def _diverged(self, what: str, kept: str = "from before this batch",
                  reset: bool | None = None) -> TrainingDiverged:
        """The error naming the epoch and batch; ``reset`` (default: whether the update
        ran) says that the optimiser's state was reset."""
        reset = self.update.done if reset is None else reset
        reset_note = "; the optimiser's state (moments, step count) was reset" if reset else ""
        hint = HINT.format(lr=f" (now {self.optimizer.lr:g})", span=span_note(self.X))
        return TrainingDiverged(
            f"training diverged in epoch {self.epoch + 1}/{self.epochs}, batch "
            f"{self.batch + 1}/{self.steps}: {what}{reset_note}. The model keeps its weights and "
            f"running statistics {kept}. Try to: {hint}.",
            epoch=self.epoch, batch=self.batch)

    def diverged_on_validation(self, X_val: np.ndarray, loss: float) -> TrainingDiverged:
        """The error for validation scores that are not finite after an epoch."""
        return TrainingDiverged(
            f"training diverged after epoch {self.epoch + 1}/{self.epochs}: the model's "
            f"output on the validation data became NaN or infinite (its loss is {loss}). The "
            f"model keeps its weights from the end of this epoch. Try to: "
            + HINT.format(lr=f" (now {self.optimizer.lr:g})", span=span_note(X_val, "X_val"))
            + ".", epoch=self.epoch)


def uninformed_loss(model: Sequential, y: np.ndarray, out_shape: tuple[int, ...],
                    classifier: bool) -> float:
    """The loss of the best prediction that ignores the inputs, on the first
    :data:`BASELINE_SAMPLES` targets ``y`` (as the loss's ``forward`` takes them): zero
    logits (uniform probabilities) for a classifier, the targets' mean otherwise; 0.0 when
    it is not a finite positive number."""
    y = y[:BASELINE_SAMPLES]
    shape = (y.shape[0], *out_shape)
    if classifier:
        prediction = np.zeros(shape, dtype=model.dtype)
    else:
        mean = y.reshape(shape).mean(axis=0, dtype=np.float64).astype(model.dtype)
        prediction = np.ascontiguousarray(np.broadcast_to(mean, shape))
    with np.errstate(all="ignore"):
        value = float(model._need_loss().forward(prediction, y, None))
    return value if math.isfinite(value) and value > 0 else 0.0


def span_note(X: np.ndarray, name: str = "X") -> str:
    """A hint naming the range of ``X`` when it is far from standardised."""
    span = float(np.abs(X).max())
    return f" ({name} spans [{X.min():.4g}, {X.max():.4g}])" if span > 10 else ""
