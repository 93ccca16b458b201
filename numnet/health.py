r"""Health warnings during training: the early, soft signal before anything turns NaN.

``fit`` adds a :class:`HealthCheck` to its callbacks unless ``health=False``. It issues a
:class:`numnet.errors.TrainingWarning` (Python's :mod:`warnings`, so
``warnings.filterwarnings("ignore", category=TrainingWarning)`` silences it too) at most once
per kind and run, naming what it saw and what to try:

* ``inputs``, at the start: a feature of ``X`` has a root mean square above 5 (raw 0-255
  pixels), or every feature one below 0.01 (:func:`numnet.diagnosis.input_findings`);
* ``loss-rising``, after any batch: the running loss (an exponential moving average of the
  batch losses, ``beta = 0.9``, bias-corrected) is at least :data:`RISE` (3) times its
  lowest value so far and above the first batch's loss; or an epoch's loss is 3 times the
  previous epoch's and above the first batch's loss;
* ``loss-at-chance``, at an epoch's end (from the 20th step on): the loss at the epoch's
  first batch, its mean and its running value at the end all lie within
  :data:`CHANCE_BAND` (2%) of the chance level, between the entropy of the label
  frequencies (the loss of predicting them) and ``ln C`` (a uniform guess over C classes);
* ``accuracy-at-chance``, at an epoch's end (from the 20th step on): the training accuracy
  is at most the frequency of the most common class plus
  :data:`CHANCE_ACCURACY_MARGIN` (0.02), and the running loss did not fall by
  :data:`FALLING` (5%) over the epoch (a slow start is not a failure);
* ``dead``, ``saturated``, ``vanishing``, ``exploding``, ``no-gradient``, at an epoch's
  end: the findings of :mod:`numnet.diagnosis` (half the units of a ReLU layer dead, a
  quarter of a sigmoid/tanh layer's outputs saturated, the gradient changing 1000x or
  more across the network, or not reaching its first layer) on one forward and backward
  pass over a fixed sample of up to 256 training rows in evaluation mode (the weights are
  not changed, the gradients are put back).

The per-batch work is a few float operations. The forward and backward pass runs after the
first epoch, and after later ones while these passes have taken at most
:data:`TRACE_BUDGET` (5%) of the training time so far, so tiny data sets whose epochs take
milliseconds do not pay for it every epoch.

These thresholds sit well below those of the divergence guard (which stops training whose
loss explodes or turns NaN), so the warning comes first.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from typing import Any

import numpy as np

from numnet import diagnosis, inspection
from numnet._checks import positive_int
from numnet.callbacks import Callback
from numnet.diagnosis import Finding
from numnet.errors import TrainingWarning

#: the running loss rising this many times above its lowest value is a warning
RISE = 3.0
#: weight of the past in the running loss (an exponential moving average of batch losses)
BETA = 0.9
#: relative tolerance around the chance-level loss
CHANCE_BAND = 0.02
#: an accuracy at most this much above the most common class's frequency is at chance
CHANCE_ACCURACY_MARGIN = 0.02
#: a loss that fell by this fraction over an epoch is learning, even at chance accuracy
FALLING = 0.05
#: the loss and accuracy are compared with chance only after this many training steps
MIN_STEPS = 20
#: the rows of the training data run through the model at each epoch's end
SAMPLE = 256
#: the share of the training time the epoch-end traces may take (the first always runs)
TRACE_BUDGET = 0.05
#: the trace findings that become warnings at an epoch's end
EPOCH_KINDS = ("dead", "saturated", "vanishing", "exploding", "no-gradient")


class HealthCheck(Callback):
    """Warn when training looks unhealthy, once per kind and run (see the module docstring).

    ``fit`` adds one by default (``fit(..., health=False)`` leaves it out) and hands it the
    training data; pass your own in ``callbacks`` to change ``sample_size``.

    Parameters
    ----------
    sample_size : int
        Rows of the training data traced at each epoch's end.

    Attributes
    ----------
    findings : list of Finding
        Every warning issued in the last run, as data.
    """

    #: in a distributed run rank 0 alone warns (the ranks see the same logs and weights)
    main_only = True

    def __init__(self, sample_size: int = SAMPLE) -> None:
        super().__init__()
        self.sample_size = positive_int(sample_size, "HealthCheck sample_size")
        self.findings: list[Finding] = []
        self._X: np.ndarray | None = None
        self._sample: tuple[np.ndarray, np.ndarray] | None = None
        self._chance: tuple[float, float, float] | None = None  # low, high loss; accuracy
        self._reset_run()

    # -- what fit tells it --------------------------------------------------------------
    def watch(self, X: np.ndarray, y: np.ndarray, target_kind: str, outputs: int) -> None:
        """The checked training data: ``X``, ``y`` as the loss takes it, the loss's
        ``target_kind`` (``"classes"``, ``"binary"`` or ``"real"``) and the model's number of
        outputs per sample. Called by ``fit``."""
        self._X = X
        rows = np.arange(0, X.shape[0], max(1, X.shape[0] // self.sample_size))
        rows = rows[:self.sample_size]
        self._sample = (X[rows], y[rows])
        self._chance = chance_levels(y, target_kind, outputs)

    # -- the hooks ----------------------------------------------------------------------
    def _reset_run(self) -> None:
        self.findings = []
        self._warned: set[str] = set()
        self._ema = 0.0
        self._steps = 0
        self._lowest = math.inf
        self._first = math.nan
        self._previous_epoch = math.nan
        self._trace_seconds = self._train_seconds = 0.0
        self._traced = False

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._reset_run()
        if self._X is not None:
            for finding in diagnosis.input_findings(self._X):
                self._warn(finding)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch
        self._seen, self._sum = 0, 0.0
        self._epoch_first = self._running = math.nan

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if not logs or "loss" not in logs or not logs.get("size"):
            return
        # the logs hold the epoch's running mean: recover this batch's own loss from it
        size = int(logs["size"])
        total = float(logs["loss"]) * (self._seen + size)
        loss = (total - self._sum) / size
        self._seen, self._sum = self._seen + size, total
        if not math.isfinite(loss):
            return  # the guard stops training and says why
        self._steps += 1
        self._ema = BETA * self._ema + (1 - BETA) * loss
        running = self._ema / (1 - BETA ** self._steps)  # bias-corrected
        if math.isnan(self._first):
            self._first = loss
        if math.isnan(self._epoch_first):
            self._epoch_first = loss
        self._lowest = min(self._lowest, running)
        if running >= RISE * self._lowest and running > self._first and self._lowest > 0:
            self._warn(Finding("loss-rising", None, (
                f"epoch {self._epoch + 1}, batch {batch + 1}: the loss is rising, "
                f"{running / self._lowest:.1f}x its lowest running value ({self._lowest:.4g}"
                f" -> {running:.4g}), before anything turned NaN: lower the learning rate, "
                f"standardise the inputs, check the initialisation, or "
                f"{diagnosis.CLIP_HINT}")))
        self._running = running

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        loss = logs.get("loss")
        if loss is not None and math.isfinite(loss):
            self._epoch_checks(epoch, float(loss), logs.get("accuracy"))
        self._train_seconds += float(logs.get("seconds", 0.0))
        if self._sample is not None and not self._warned.issuperset(EPOCH_KINDS) and (
                not self._traced or self._trace_seconds <= TRACE_BUDGET * self._train_seconds):
            start = time.perf_counter()
            self._trace_checks(epoch)
            self._trace_seconds += time.perf_counter() - start
            self._traced = True

    # -- the checks ---------------------------------------------------------------------
    def _epoch_checks(self, epoch: int, loss: float, accuracy: float | None) -> None:
        previous, self._previous_epoch = self._previous_epoch, loss
        # a loss still below where training started is not climbing away (a small loss
        # near the end of training may well triple from one epoch to the next)
        if previous > 0 and loss >= RISE * previous and loss > self._first:
            self._warn(Finding("loss-rising", None, (
                f"epoch {epoch + 1}: the loss rose {loss / previous:.1f}x from the previous "
                f"epoch ({previous:.4g} -> {loss:.4g}): lower the learning rate, standardise "
                f"the inputs, check the initialisation, or {diagnosis.CLIP_HINT}")))
        if self._chance is None or self._steps < MIN_STEPS:
            return  # a network needs a few steps before it can beat chance
        low, high, chance_accuracy = self._chance
        band = (low * (1 - CHANCE_BAND), high * (1 + CHANCE_BAND))
        samples = (self._epoch_first, loss, self._running)
        if all(band[0] <= value <= band[1] for value in samples):
            self._warn(Finding("loss-at-chance", None, (
                f"epoch {epoch + 1}: the loss stays at {loss:.4g}, the chance level "
                f"({_chance_text(low, high)}): the network predicts no better than the class "
                f"frequencies and is not learning; look for vanishing gradients (numnet "
                f"trace), a poor initialisation, a learning rate far too low or too high, "
                f"or labels that do not match the inputs")))
        falling = self._running < (1 - FALLING) * self._epoch_first  # slow, but learning
        if accuracy is not None and accuracy <= chance_accuracy + CHANCE_ACCURACY_MARGIN \
                and not falling:
            self._warn(Finding("accuracy-at-chance", None, (
                f"epoch {epoch + 1}: the training accuracy {accuracy:.2%} is at chance level "
                f"(the most common class is {chance_accuracy:.2%} of the data): the network "
                f"is not learning; check the learning rate, the initialisation and the "
                f"inputs' scale (numnet trace shows dead or saturated layers)")))

    def _trace_checks(self, epoch: int) -> None:
        """One forward and backward pass over the sample, in evaluation mode; the model's
        gradients are put back (a callback must not change what training computes)."""
        assert self._sample is not None
        X, y = self._sample
        model = self.model
        grads = model.flat_grads.copy()
        was_training = model.training
        model.eval()
        try:
            with np.errstate(all="ignore"):
                found = inspection.trace(model, X, y, checked=True).findings
        finally:
            np.copyto(model.flat_grads, grads)
            model.training = was_training
        for finding in found:
            if finding.kind in EPOCH_KINDS:
                self._warn(Finding(finding.kind, finding.layer,
                                   f"after epoch {epoch + 1}: {finding.message}"))

    def _warn(self, finding: Finding) -> None:
        if finding.kind in self._warned:
            return
        self._warned.add(finding.kind)
        self.findings.append(finding)
        warnings.warn(finding.message, TrainingWarning, stacklevel=_caller_level())


def chance_levels(y: np.ndarray, target_kind: str,
                  outputs: int) -> tuple[float, float, float] | None:
    """``(loss low, loss high, accuracy)`` of guessing without looking at the inputs.

    For classes, the loss of predicting the label frequencies (their entropy) and of a
    uniform prediction (``ln C``), and the frequency of the most common class; for binary
    targets the same per output, averaged; None for real-valued targets.
    """
    if target_kind == "classes":
        if y.ndim == 1:
            frequencies = np.bincount(y, minlength=outputs) / y.shape[0]
        else:
            frequencies = y.astype(np.float64).mean(axis=0)
        present = frequencies[frequencies > 0]
        entropy = float(-(present * np.log(present)).sum())
        return entropy, math.log(max(outputs, 2)), float(frequencies.max())
    if target_kind == "binary":
        p = np.clip(y.astype(np.float64).reshape(y.shape[0], -1).mean(axis=0), 1e-12,
                    1 - 1e-12)
        entropy = float(np.mean(-(p * np.log(p) + (1 - p) * np.log(1 - p))))
        return entropy, math.log(2), float(np.mean(np.maximum(p, 1 - p)))
    return None


def _caller_level() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside numnet (the
    user's ``fit`` call), as ``warnings.warn(skip_file_prefixes=...)`` does on Python 3.12."""
    level, frame = 1, sys._getframe(1)
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith("numnet"):
        frame, level = frame.f_back, level + 1
    return level


def _chance_text(low: float, high: float) -> str:
    if abs(high - low) < 1e-3 * high:
        return f"ln C = {high:.4g}"
    return f"{low:.4g} for predicting the label frequencies, {high:.4g} = ln C for a uniform guess"
