"""Looking inside a model: ``summary`` (its layers, shapes and sizes) and ``trace`` (one
batch through it, layer by layer, forward and backward, with the findings of
:mod:`numnet.diagnosis`: dead units, saturation, vanishing or exploding gradients, update
sizes)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from numnet import diagnosis
from numnet._checks import fmt_shape
from numnet.diagnosis import Finding
from numnet.errors import ShapeError
from numnet.optim import Optimizer, get_optimizer

if TYPE_CHECKING:
    from numnet.model import Sequential


def summary(model: Sequential, input_shape: Sequence[int] | None = None) -> str:
    """A table: one row per layer with its output shape and parameter count; totals."""
    shape = tuple(input_shape) if input_shape is not None else model.input_shape
    if shape is None:
        raise ValueError(f"summary needs an input shape: pass input_shape="
                         f"{input_shape_example(model)}")
    rows = [("#", "layer", "output shape", "params")]
    for index, layer in enumerate(model.layers):
        shape = layer.output_shape(shape)
        rows.append((str(index), repr(layer), fmt_shape(("N", *shape)),
                     f"{layer.num_params:,}"))
    trainable = model.num_params
    buffers = sum(b.size for layer in model.layers for b in layer.buffers.values())
    footer = [
        f"total parameters: {trainable:,} ({trainable * model.dtype.itemsize / 1024:.1f} KiB, "
        f"{model.dtype.name})",
        f"non-trained buffers: {buffers:,}",
        f"loss: {model.loss!r}",
    ]
    return _table(rows) + "\n" + "\n".join(footer)


def image_channels(model: Sequential) -> int | None:
    """For a model without a known input shape: None when it starts with layers that take
    flat samples, else the channels its first image layer takes (0 when it does not say)."""
    for layer in model.layers:
        if layer.input_shape is not None:
            return None
        channels = getattr(layer, "in_channels", None)
        if isinstance(channels, int):
            return channels
        try:
            layer.output_shape((16,))
        except ShapeError:  # a layer that takes images only
            return 0
    return None


def input_shape_example(model: Sequential) -> str:
    """What to pass as ``input_shape`` (for messages): ``(features,)`` or image axes."""
    channels = image_channels(model)
    if channels is None:
        return "(features,)"
    c = str(channels) if channels else "channels"
    return f"({c}, height, width), e.g. ({channels or 1}, 28, 28)"


def trace(model: Sequential, x: Any, y: Any = None,
          optimizer: Optimizer | str | None = None, checked: bool = False) -> Trace:
    """Run one batch through ``model`` (backward too when ``y`` is given), layer by layer,
    and diagnose what it shows (:mod:`numnet.diagnosis`).

    With ``y`` and an ``optimizer`` (an instance, copied with its state, or a name), one
    step of it is taken to measure each parameter's update-to-weight ratio, and undone.
    ``checked=True`` says ``y`` is already in the form the loss's ``forward`` takes (as
    ``fit`` prepares it), so the loss does not check it again.

    It changes the model's gradients, caches, running statistics and generators:
    :meth:`Sequential.trace` runs it on a copy.
    """
    training = model.training
    out = model._input(x)  # checked once, at the model's boundary
    forward_rows: list[tuple[Any, ...]] = [("input", out.shape, *_stats(out), None, None)]
    findings = diagnosis.input_findings(out, "the input")
    for index, layer in enumerate(model.layers):
        out = layer.forward(out, training=training)
        dead, saturated = diagnosis.activation_health(layer, out)
        forward_rows.append((f"{index} {type(layer).__name__}", out.shape, *_stats(out),
                             dead, saturated))
        findings += diagnosis.activation_findings(index, layer, dead, saturated, out.shape,
                                                  {finding.kind for finding in findings})
    if y is None:
        return Trace(forward_rows, [], None, findings)
    loss = model._need_loss()
    loss_value = loss.forward(out, y) if checked else loss(out, y)
    grad = loss.backward()
    passes, grad_rms, zero_below = _backward(model, grad)
    dead_layers = {finding.layer for finding in findings
                   if finding.kind == "dead" and finding.layer is not None}
    findings += diagnosis.gradient_findings(model.layers, grad_rms, zero_below, dead_layers)
    ratios: dict[tuple[int, str], float] = {}
    if optimizer is not None:
        opt = copy.deepcopy(get_optimizer(optimizer))
        ratios = _update_ratios(model, opt)
        findings += diagnosis.update_findings(model.layers, ratios,
                                              f"{type(opt).__name__}(lr={opt.lr:g})")
    backward_rows: list[tuple[Any, ...]] = [("d loss/d output", grad.shape, _norm(grad),
                                             None, None)]
    for index, (shape, norm, gain) in passes:
        layer = model.layers[index]
        name = f"{index} {type(layer).__name__}"
        backward_rows.append((f"{name} d/dinput", shape, norm, gain, None))
        for key, g in layer.grads.items():
            backward_rows.append((f"{name} d/d{key}", g.shape, _norm(g), None,
                                  ratios.get((index, key))))
    return Trace(forward_rows, backward_rows, loss_value, findings,
                 update_ratios=bool(ratios))


Pass = tuple[int, tuple[tuple[int, ...], float, float | None]]


def _backward(model: Sequential, grad: np.ndarray
              ) -> tuple[list[Pass], dict[int, float], int | None]:
    """Back-propagate layer by layer: per layer (from the top) the shape and norm of the
    input gradient and its gain; the RMS of the gradient reaching each layer's output; the
    first layer whose input gradient is exactly 0."""
    passes: list[Pass] = []
    grad_rms: dict[int, float] = {}
    zero_below = None
    for index in reversed(range(len(model.layers))):
        received = _norm(grad)
        grad_rms[index] = diagnosis.rms(grad)
        grad = model.layers[index].backward(grad)
        passed = _norm(grad)
        if zero_below is None and passed == 0 < received:
            zero_below = index
        passes.append((index, (grad.shape, passed, passed / received if received else None)))
    return passes, grad_rms, zero_below


def _update_ratios(model: Sequential, optimizer: Optimizer) -> dict[tuple[int, str], float]:
    """``||delta p|| / ||p||`` of each parameter with a non-zero value and gradient, for one
    step of ``optimizer`` on the gradients in ``grads`` (plus the L2 term, as in training);
    the step is undone."""
    if model.l2:
        model.add_l2_gradient()
    before = model.flat_params.copy()
    optimizer.step(model)
    delta = model.flat_params - before
    np.copyto(model.flat_params, before)
    ratios = {}
    offset = 0
    for index, layer in enumerate(model.layers):
        for key, value in layer.params.items():
            part = slice(offset, offset + value.size)
            offset += value.size
            weight = _norm(before[part])
            if weight > 0 and _norm(layer.grads[key]) > 0:  # no gradient: nothing to measure
                ratios[(index, key)] = _norm(delta[part]) / weight
    return ratios


@dataclass
class Trace:
    """Rows of :func:`trace`; ``str(trace)`` prints them as tables, then the findings.

    Attributes
    ----------
    forward_rows : list of tuple
        ``(name, shape, mean, std, min, max, zeros, dead, saturated)`` for the input and
        each layer's output; ``zeros`` is the fraction of exact zeros, ``dead`` the
        fraction of dead units (ReLU) and ``saturated`` that of saturated outputs
        (sigmoid, tanh), None where they do not apply (see :mod:`numnet.diagnosis`).
    backward_rows : list of tuple
        ``(name, shape, norm, gain, update_ratio)``: for each layer's input gradient its
        norm and ``gain`` (its norm over that of the gradient the layer received), for each
        parameter gradient its norm and the parameter's update-to-weight ratio for one
        optimiser step (None where not measured).
    loss : float or None
        The loss of the batch, when targets were given.
    findings : list of Finding
        What looks wrong, in plain language (empty when nothing does).
    """

    forward_rows: list[tuple[Any, ...]] = field(default_factory=list)
    backward_rows: list[tuple[Any, ...]] = field(default_factory=list)
    loss: float | None = None
    findings: list[Finding] = field(default_factory=list)
    update_ratios: bool = False  # whether backward_rows hold update-to-weight ratios

    def __str__(self) -> str:
        health = [i for i, on in ((7, "dead"), (8, "saturated"))
                  if any(row[i] is not None for row in self.forward_rows)]
        head = ("forward", "shape", "mean", "std", "min", "max", "zeros",
                *(("dead", "saturated")[i - 7] for i in health))
        rows = [head] + [(row[0], fmt_shape(row[1]), *(f"{v:.4g}" for v in row[2:7]),
                          *(_percent(row[i]) for i in health))
                         for row in self.forward_rows]
        text = _table(rows)
        if self.backward_rows:
            back = [("backward", "shape", "norm", "gain",
                     *(("update/weight",) if self.update_ratios else ()))]
            back += [(name, fmt_shape(shape), f"{norm:.4g}", _number(gain),
                      *((_number(ratio),) if self.update_ratios else ()))
                     for name, shape, norm, gain, ratio in self.backward_rows]
            text += f"\n\nloss: {self.loss:.6g}\n" + _table(back)
        if self.findings:
            text += "\n\nfindings:\n" + "\n".join(f"- {f.message}" for f in self.findings)
        else:
            text += "\n\nfindings: none"
        return text


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def _stats(a: np.ndarray) -> tuple[float, float, float, float, float]:
    a64 = a.astype(np.float64, copy=False)
    return (float(a64.mean()), float(a64.std()), float(a64.min()), float(a64.max()),
            float(np.mean(a64 == 0)))


_norm = diagnosis.norm


def _table(rows: list[tuple[Any, ...]]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
