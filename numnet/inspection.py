"""Looking inside a model: ``summary`` (its layers, shapes and sizes) and ``trace`` (one
batch through it, layer by layer, forward and backward)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from numnet._checks import fmt_shape
from numnet.errors import ShapeError

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


def trace(model: Sequential, x: Any, y: Any = None) -> Trace:
    """Run one batch through ``model`` (backward too when ``y`` is given), layer by layer.

    It changes the model's gradients, running statistics and generators:
    :meth:`Sequential.trace` runs it on a copy.
    """
    training = model.training
    out = model._input(x)  # checked once, at the model's boundary
    forward_rows = [("input", out.shape, *_stats(out))]
    for index, layer in enumerate(model.layers):
        out = layer.forward(out, training=training)
        forward_rows.append((f"{index} {type(layer).__name__}", out.shape, *_stats(out)))
    backward_rows: list[tuple[Any, ...]] = []
    loss_value = None
    if y is not None:
        loss = model._need_loss()
        loss_value = loss(out, y)
        grad = loss.backward()
        backward_rows.append(("d loss/d output", grad.shape, _norm(grad)))
        for index in reversed(range(len(model.layers))):
            layer = model.layers[index]
            grad = layer.backward(grad)
            name = f"{index} {type(layer).__name__}"
            backward_rows.append((f"{name} d/dinput", grad.shape, _norm(grad)))
            for key, g in layer.grads.items():
                backward_rows.append((f"{name} d/d{key}", g.shape, _norm(g)))
    return Trace(forward_rows, backward_rows, loss_value)


@dataclass
class Trace:
    """Rows of :func:`trace`; ``str(trace)`` prints them as tables."""

    forward_rows: list[tuple[Any, ...]] = field(default_factory=list)
    backward_rows: list[tuple[Any, ...]] = field(default_factory=list)
    loss: float | None = None

    def __str__(self) -> str:
        head = ("forward", "shape", "mean", "std", "min", "max", "zeros")
        rows = [head] + [(name, fmt_shape(shape), *(f"{v:.4g}" for v in stats))
                         for name, shape, *stats in self.forward_rows]
        text = _table(rows)
        if self.backward_rows:
            back = [("backward", "shape", "norm")] + [
                (name, fmt_shape(shape), f"{norm:.4g}")
                for name, shape, norm in self.backward_rows]
            text += f"\n\nloss: {self.loss:.6g}\n" + _table(back)
        return text


def _stats(a: np.ndarray) -> tuple[float, float, float, float, float]:
    a64 = a.astype(np.float64, copy=False)
    return (float(a64.mean()), float(a64.std()), float(a64.min()), float(a64.max()),
            float(np.mean(a64 == 0)))


def _norm(a: np.ndarray) -> float:
    return float(np.linalg.norm(a.astype(np.float64, copy=False).ravel()))


def _table(rows: list[tuple[Any, ...]]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
