r"""What the numbers of a trace or a training run mean: plain-language findings.

:func:`numnet.inspection.trace` measures one batch layer by layer; the functions here turn
those measurements into :class:`Finding` objects, the same for ``model.trace(...)``,
``numnet trace`` and the :class:`numnet.health.HealthCheck` warnings during ``fit``. The
measures and the thresholds are:

**Dead units** (activations with ``can_die``: ReLU). A unit is dead for a batch when its
output is 0 for every sample: its gradient is then 0 for every sample too, so nothing below
it learns through it. A unit is a feature of ``(N, F)`` outputs and a channel of image
outputs ``(N, C, H, W)`` (a filter whose map is 0 everywhere for the whole batch). A layer
with at least :data:`DEAD` (half) of its units dead is a finding. LeakyReLU is not counted:
its negative side still passes ``alpha * g``, which is why it exists.

**Saturation** (bounded activations, with ``saturation = (low, high)``: Sigmoid (0, 1) and
Tanh (-1, 1)). An output within :data:`SATURATION_MARGIN` (1%) of the range from either
asymptote is saturated: sigmoid ``y < 0.01`` or ``y > 0.99``, tanh ``|y| > 0.98``. There the
derivative is below 4% of its peak (``y (1 - y) < 0.0099`` against 0.25), so the gradient
through it nearly vanishes. A layer with at least :data:`SATURATED` of its outputs
saturated is a finding.

**Gradient flow.** For each layer with weights, the RMS of the gradient reaching its output
(``dL/dy``, an RMS so layers of different widths compare). If the gradient at the lowest
such layer is smaller than at the highest by :data:`GRADIENT_CHANGE` (1000x) or more, the
gradients vanish; if larger by as much, they explode; if it is exactly 0, no gradient
reaches the bottom of the network at all; when a layer in between has most of its units
dead, the finding blames them rather than the initialisation. The trace's ``gain`` column
shows each layer's share: the norm of the gradient a layer passes down divided by the norm
it receives.

**Update-to-weight ratio.** ``||delta W|| / ||W||`` for one step of the optimiser (on a
copy). About 1e-3 is the usual rule of thumb; above :data:`UPDATE_RATIO` ``[1]`` (0.25) a
single step rewrites a quarter of the weights (the learning rate is too high for them),
below ``[0]`` (1e-5) the layer barely moves.

**Inputs.** Each input feature's root mean square ``sqrt(mean^2 + std^2)`` over (a sample
of) the data: above :data:`INPUT_RMS_HIGH` (raw 0-255 pixels, unscaled measurements) the
first layer's pre-activations are huge; an RMS below :data:`INPUT_RMS_LOW` over every
feature means the inputs were scaled twice or are nearly constant.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numnet.layers.base import Layer

#: an output within this fraction of the range from an asymptote is saturated
SATURATION_MARGIN = 0.01
#: a layer with at least this fraction of saturated outputs is a finding
SATURATED = 0.25
#: a layer with at least this fraction of dead units is a finding
DEAD = 0.5
#: a change of the gradient's RMS by this factor (or more) across the network is a finding
GRADIENT_CHANGE = 1e3
#: update-to-weight ratios outside this range are findings (about 1e-3 is healthy; Adam's
#: first step is about lr / rms(W), 0.1 for weights of rms 0.01, which is still fine)
UPDATE_RATIO = (1e-5, 0.25)
#: input features with a root mean square above this are far from standardised
INPUT_RMS_HIGH = 5.0
#: inputs whose every feature has a root mean square below this are too small
INPUT_RMS_LOW = 1e-2
#: the rows of a data set the input check looks at (evenly spaced)
INPUT_SAMPLE = 4096
#: the advice to clip gradients, for Python and for the command line
CLIP_HINT = "clip gradients (fit(..., clip_norm=1.0), numnet train --clip-norm 1)"


@dataclass(frozen=True)
class Finding:
    """One thing that looks wrong, in plain language.

    Attributes
    ----------
    kind : str
        ``"dead"``, ``"saturated"``, ``"vanishing"``, ``"exploding"``, ``"no-gradient"``,
        ``"update-large"``, ``"update-small"`` or ``"inputs"`` (a trace), and
        ``"loss-rising"``, ``"loss-at-chance"``, ``"accuracy-at-chance"`` (training).
    layer : int or None
        The index of the layer it is about, if one.
    message : str
        What was seen, what it means and what to try.
    """

    kind: str
    layer: int | None
    message: str

    def __str__(self) -> str:
        return self.message


def layer_name(index: int, layer: Layer) -> str:
    """``"layer 3 ReLU"``."""
    return f"layer {index} {type(layer).__name__}"


# -- activations --------------------------------------------------------------------------
def dead_fraction(out: np.ndarray) -> float:
    """The fraction of units whose output is <= 0 for every sample of the batch.

    Units are the features of ``(N, F)`` and the channels (axis 1) of ``(N, C, ...)``.
    """
    if out.ndim < 2 or out.shape[0] == 0:
        return 0.0
    axes = (0,) if out.ndim == 2 else (0, *range(2, out.ndim))
    alive = out.max(axis=axes) > 0
    return float(1.0 - np.count_nonzero(alive) / alive.size)


def saturated_fraction(out: np.ndarray, low: float, high: float) -> float:
    """The fraction of outputs within ``SATURATION_MARGIN * (high - low)`` of an asymptote."""
    margin = SATURATION_MARGIN * (high - low)
    near = (out < low + margin) | (out > high - margin)
    return float(np.count_nonzero(near) / max(near.size, 1))


def activation_health(layer: Layer, out: np.ndarray) -> tuple[float | None, float | None]:
    """``(dead fraction, saturated fraction)`` of a layer's output; None where it does not
    apply (only ``can_die`` layers die, only layers with ``saturation`` saturate)."""
    dead = dead_fraction(out) if layer.can_die else None
    bounds = layer.saturation
    saturated = saturated_fraction(out, *bounds) if bounds is not None else None
    return dead, saturated


def activation_findings(index: int, layer: Layer, dead: float | None,
                        saturated: float | None, shape: tuple[int, ...],
                        explained: Collection[str] = ()) -> list[Finding]:
    """Findings for a layer with many dead units or saturated outputs; ``shape`` is the
    shape of the batch of outputs measured. The messages of the kinds in ``explained``
    leave out the explanation and the advice (an earlier layer's finding gave them)."""
    found = []
    name = layer_name(index, layer)
    if dead is not None and dead >= DEAD:
        unit = "channels" if len(shape) > 2 else "units"
        why = (", so no gradient flows through them: the learning rate may be too high (a "
               "large step pushed their inputs below 0 for good), or the weights or inputs "
               "badly scaled; try a lower learning rate, He initialisation, LeakyReLU or "
               "batch normalisation") if "dead" not in explained else ""
        found.append(Finding("dead", index, f"{name}: {dead:.0%} of {unit} dead for this "
                                            f"batch (0 for all {shape[0]} samples){why}"))
    if saturated is not None and saturated >= SATURATED:
        low, high = layer.saturation or (0.0, 1.0)
        margin = SATURATION_MARGIN * (high - low)
        why = (f" (within {margin:g} of {low:g} or {high:g}, where the derivative is below 4% "
               f"of its peak), so little gradient passes: the pre-activations are too large; "
               f"the weights' initialisation is likely too large (try Glorot: "
               f"init='glorot_uniform'), or standardise the inputs, or add batch "
               f"normalisation before the activation") if "saturated" not in explained else ""
        found.append(Finding("saturated", index,
                             f"{name}: {saturated:.0%} of outputs saturated{why}"))
    return found


# -- gradients ----------------------------------------------------------------------------
def norm(a: np.ndarray) -> float:
    """Euclidean norm of all entries, in float64."""
    # a ufunc sum, not BLAS's dot: on a busy machine BLAS threads cost milliseconds per call
    return math.sqrt(float(np.square(a, dtype=np.float64).sum()))


def rms(a: np.ndarray) -> float:
    """Root mean square, in float64."""
    return norm(a) / math.sqrt(max(a.size, 1))


def gradient_findings(layers: Sequence[Layer], grad_rms: dict[int, float],
                      zero_below: int | None, dead: Collection[int] = ()) -> list[Finding]:
    """Vanishing, exploding or absent gradients across the layers with weights.

    ``grad_rms[i]`` is the RMS of the gradient reaching the output of layer ``i``;
    ``zero_below`` is the layer whose input gradient was the first to be exactly 0 (from
    the top), if any; ``dead`` the layers found with most of their units dead, which a
    vanishing gradient through them is blamed on.
    """
    weighted = [i for i, layer in enumerate(layers) if layer.weight_key is not None
                and i in grad_rms]
    if len(weighted) < 2:
        return []
    top, bottom = weighted[-1], weighted[0]
    g_top, g_bottom = grad_rms[top], grad_rms[bottom]
    if g_top == 0 or not (math.isfinite(g_top) and math.isfinite(g_bottom)):
        return []
    top_name, bottom_name = layer_name(top, layers[top]), layer_name(bottom, layers[bottom])
    if g_bottom == 0:
        where = ""
        if zero_below is not None:
            culprit = layers[zero_below]
            why = " (its units are dead)" if culprit.can_die else ""
            where = f": the gradient is exactly 0 below {layer_name(zero_below, culprit)}{why}"
        return [Finding("no-gradient", bottom, (
            f"no gradient reaches {bottom_name}{where}, so the layers below it cannot learn"))]
    ratio = g_top / g_bottom
    if ratio >= GRADIENT_CHANGE:
        bounded = any(layer.saturation is not None for layer in layers)
        dying = [index for index in sorted(dead) if bottom < index < top]
        if dying:  # the dead units block it: their finding says why and what to try
            hint = (f"most units of {layer_name(dying[0], layers[dying[0]])} are dead and "
                    f"pass no gradient, which explains it: bring them back to life first")
        elif bounded:
            hint = ("try ReLU instead of sigmoid/tanh with He initialisation, or batch "
                    "normalisation")
        else:
            hint = "try He initialisation, ReLU or batch normalisation"
        return [Finding("vanishing", bottom, (
            f"the gradient shrinks {ratio:.1e}x from {top_name} to {bottom_name}: vanishing "
            f"gradients, the lower layers barely learn; {hint}"))]
    if ratio <= 1 / GRADIENT_CHANGE:
        return [Finding("exploding", bottom, (
            f"the gradient grows {1 / ratio:.1e}x from {top_name} to {bottom_name}: "
            f"exploding gradients; use smaller initial weights (Glorot or He), a lower "
            f"learning rate, batch normalisation, or {CLIP_HINT}"))]
    return []


def update_findings(layers: Sequence[Layer], ratios: dict[tuple[int, str], float],
                    optimizer: str) -> list[Finding]:
    """Update-to-weight ratios of the weights (not biases) far from about 1e-3; ``ratios``
    holds only parameters whose gradient is not 0. The first finding of each kind explains
    itself, the others are short."""
    found: list[Finding] = []
    low, high = UPDATE_RATIO
    for (index, key), ratio in ratios.items():
        layer = layers[index]
        if key != layer.weight_key or not math.isfinite(ratio) or low <= ratio <= high:
            continue
        kind = "update-large" if ratio > high else "update-small"
        first = all(finding.kind != kind for finding in found)
        where = f"{layer_name(index, layer)}: one step of {optimizer} changes {key} by"
        if kind == "update-large":
            why = (f" (about 1e-3 is typical; ||{key}|| = {norm(layer.params[key]):.3g}): the "
                   f"steps are too large for weights of this size; lower the learning rate, "
                   f"or check the initialisation") if first else ""
            found.append(Finding(kind, index, f"{where} {ratio:.2g} of its norm{why}"))
        else:
            why = (" (about 1e-3 is typical): this layer barely learns; a higher learning "
                   "rate may help, or its gradient vanishes" if first else "")
            if ratio == 0:
                why += " (0: the step is below the weights' floating-point resolution)"
            found.append(Finding(kind, index, f"{where} only {ratio:.2g} of its norm{why}"))
    return found


# -- inputs -------------------------------------------------------------------------------
def input_findings(X: np.ndarray, name: str = "X") -> list[Finding]:
    """A finding when the inputs are far from standardised (see the module docstring)."""
    if X.ndim < 2 or X.shape[0] == 0:
        return []
    sample = X[::max(1, X.shape[0] // INPUT_SAMPLE)]
    rows = sample.reshape(sample.shape[0], -1).astype(np.float64, copy=False)
    mean, std = rows.mean(axis=0), rows.std(axis=0)
    feature_rms = np.sqrt(mean * mean + std * std)
    worst = int(np.argmax(feature_rms))
    span = f"{name} spans [{rows.min():.4g}, {rows.max():.4g}]"
    if feature_rms[worst] > INPUT_RMS_HIGH:
        return [Finding("inputs", None, (
            f"the inputs are far from standardised: feature {worst} of {name} has mean "
            f"{mean[worst]:.4g} and std {std[worst]:.4g} ({span}); large inputs make large "
            f"pre-activations and gradients. Standardise them (numnet.data.Standardizer) or "
            f"scale them (pixels / 255)"))]
    if feature_rms.max() < INPUT_RMS_LOW:
        what = "all 0" if feature_rms.max() == 0 else f"tiny ({span})"
        return [Finding("inputs", None, (
            f"the inputs are {what}: every feature of {name} has a root mean square below "
            f"{INPUT_RMS_LOW:g}, so the first layer sees almost nothing; were they scaled "
            f"twice? Standardise them (numnet.data.Standardizer)"))]
    return []
