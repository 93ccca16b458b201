"""ONNX's image operators to numnet's image layers.

``Conv`` becomes a :class:`~numnet.layers.Conv2D`, ``MaxPool`` and ``AveragePool`` the
pools, ``GlobalAveragePool`` and ``ReduceMean`` over the height and width a
:class:`~numnet.layers.GlobalAvgPool2D`; a ``Squeeze`` of unit axes a reshape. Padding
may be ``pads``, ``auto_pad`` or a ``Pad`` node before the operator; it must be what numnet
can do: both sides alike, or for a convolution with stride 1 PyTorch's ``"same"`` (the odd
row or column at the bottom/right).

numnet's own float64 convolution and average pooling (:mod:`numnet.onnx_io._export_image`:
``Pad``, ``Gather`` of the window rows, ``Gather`` of the window columns, then ``Einsum``
with the weight (+ ``Add`` of the bias) or ``ReduceMean``) are read back too: the kernel
size, stride and dilation are recovered from the gathered indices, and checked to be
exactly the windows numnet would read.

ONNX keeps the unit axes of a global average, ``(N, C, 1, 1)``, where numnet's layer gives
``(N, C)``: the import adds a ``Reshape((C, 1, 1))`` after it, which the walk drops again
where a flatten or reshape follows (as after PyTorch's ``AdaptiveAvgPool2d(1)``).

Imported only once the optional ``onnx`` package is known to be installed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from onnx import NodeProto

from numnet.layers import AvgPool2D, Conv2D, Flatten, GlobalAvgPool2D, Layer, MaxPool2D, Reshape
from numnet.layers._spatial import conv_padding
from numnet.onnx_io._common import CONV_EQUATION, window_indices
from numnet.onnx_io._graph import ImportContext, Step, register_importer, vector

#: (top, bottom, left, right), numnet's order (ONNX's pads are [top, left, bottom, right])
Pads = tuple[int, int, int, int]
NO_PADS: Pads = (0, 0, 0, 0)
Pair = tuple[int, int]


# -- attributes --------------------------------------------------------------------------------
def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pair(ctx: ImportContext, node: NodeProto, attrs: dict[str, Any], name: str,
          default: list[int] | None) -> Pair:
    value = attrs.get(name, default)
    if value is None:
        raise ctx.fail(node, f"has no {name}")
    if len(value) != 2 or min(value) < 1:
        raise ctx.fail(node, f"has {name} {list(value)}; numnet's 2-D layers take two "
                             "positive values (height, width)")
    return int(value[0]), int(value[1])


def _images(ctx: ImportContext, node: NodeProto, data: str) -> None:
    """Refuse a node that does not read images ``(N, C, H, W)`` as its first input."""
    if node.input[0] != data:
        raise ctx.fail(node, "does not take the data as its first input")
    if ctx.rank != 4:
        raise ctx.fail(node, f"takes input of per-sample shape {ctx.shape}; numnet's 2-D "
                             "layers take images (N, C, H, W)")


def _padded_size(ctx: ImportContext, axis: int, pads: Pads) -> int | None:
    """Height (axis 0) or width (axis 1) of the input after ``pads``; None if unknown."""
    size = ctx.shape[1 + axis]
    return None if size is None else size + pads[2 * axis] + pads[2 * axis + 1]


def _pads(ctx: ImportContext, node: NodeProto, attrs: dict[str, Any], kernel: Pair,
          stride: Pair, dilation: Pair, before: Pads) -> Pads:
    """The node's padding (``pads`` or ``auto_pad``) plus ``before`` (a Pad node's)."""
    auto = _text(attrs.get("auto_pad", "NOTSET"))
    if auto == "NOTSET":
        pads = [int(p) for p in attrs.get("pads", [0, 0, 0, 0])]
        if len(pads) != 4 or min(pads) < 0:
            raise ctx.fail(node, f"has pads {pads}; expected four sizes >= 0 (top, left, "
                                 "bottom, right)")
        own = (pads[0], pads[2], pads[1], pads[3])
    elif auto == "VALID":
        own = NO_PADS
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        sides = []
        for axis in (0, 1):
            extent = dilation[axis] * (kernel[axis] - 1) + 1
            size = _padded_size(ctx, axis, before)
            if stride[axis] == 1:
                total = extent - 1
            elif size is None:
                raise ctx.fail(node, f"pads {auto} with stride {stride[axis]} on images of "
                                     "unknown size")
            else:
                total = max(0, (math.ceil(size / stride[axis]) - 1) * stride[axis]
                            + extent - size)
            small, large = total // 2, total - total // 2
            sides += [small, large] if auto == "SAME_UPPER" else [large, small]
        own = (sides[0], sides[1], sides[2], sides[3])
    else:
        raise ctx.fail(node, f"has auto_pad {auto!r}; expected NOTSET, VALID, SAME_UPPER or "
                             "SAME_LOWER")
    return (own[0] + before[0], own[1] + before[1], own[2] + before[2], own[3] + before[3])


def _symmetric(ctx: ImportContext, node: NodeProto, pads: Pads, what: str) -> Pair:
    top, bottom, left, right = pads
    if top != bottom or left != right:
        raise ctx.fail(node, f"pads (top, bottom, left, right) = {pads}; numnet's {what} pads "
                             "both sides of an axis alike")
    return top, left


def _conv_padding(ctx: ImportContext, node: NodeProto, pads: Pads, kernel: Pair,
                  stride: Pair, dilation: Pair, said_same: bool = False) -> Pair | str:
    """Conv2D's ``padding`` for ``pads``: "same" where the node said so (``auto_pad``) or
    where the sides differ as numnet's "same" does, else the pair of sizes."""
    top, bottom, left, right = pads
    same = stride == (1, 1) and pads == conv_padding("same", kernel, stride, dilation, "")[0]
    if same and (said_same or (top, left) != (bottom, right)):
        return "same"
    if top == bottom and left == right:
        return top, left
    raise ctx.fail(node, f"pads (top, bottom, left, right) = {pads}; numnet's Conv2D pads both "
                         "sides of an axis alike, or 'same' with stride 1 (the odd row and "
                         "column at the bottom/right, as PyTorch)")


def _layer(ctx: ImportContext, node: NodeProto, layer_type: Callable[..., Layer], *args: Any,
           **kwargs: Any) -> Layer:
    """``layer_type(*args, **kwargs)`` in the model's dtype; its refusal names the node."""
    try:
        return layer_type(*args, dtype=ctx.dtype, **kwargs)
    except ValueError as exc:
        raise ctx.fail(node, f"cannot be a {layer_type.__name__}: {exc}") from exc


# -- convolution ------------------------------------------------------------------------------
@register_importer("Conv")
def _conv(ctx: ImportContext, node: NodeProto) -> Step:
    return conv_step(ctx, node, ctx.tensor, NO_PADS)


def conv_step(ctx: ImportContext, node: NodeProto, data: str, before: Pads) -> Step:
    """A Conv reading ``data``, padded by ``before`` (a Pad node's) on top of its own."""
    _images(ctx, node, data)
    attrs = ctx.attrs(node)
    weight = ctx.const(node, 1, "weight W")
    if weight.ndim != 4:
        raise ctx.fail(node, f"has a weight of shape {weight.shape}; numnet's Conv2D takes "
                             "(C_out, C_in, kh, kw)")
    if attrs.get("group", 1) != 1:
        raise ctx.fail(node, f"is a grouped convolution (group={attrs['group']}); numnet's "
                             "Conv2D connects every input channel to every output channel")
    out_channels, in_channels, kh, kw = (int(d) for d in weight.shape)
    if _pair(ctx, node, attrs, "kernel_shape", [kh, kw]) != (kh, kw):
        raise ctx.fail(node, f"has kernel_shape {attrs['kernel_shape']} and a weight of "
                             f"shape {weight.shape}")
    stride = _pair(ctx, node, attrs, "strides", [1, 1])
    dilation = _pair(ctx, node, attrs, "dilations", [1, 1])
    pads = _pads(ctx, node, attrs, (kh, kw), stride, dilation, before)
    said_same = _text(attrs.get("auto_pad", "NOTSET")).startswith("SAME") and not any(before)
    padding = _conv_padding(ctx, node, pads, (kh, kw), stride, dilation, said_same)
    has_bias = len(node.input) > 2 and bool(node.input[2])
    layer = _layer(ctx, node, Conv2D, in_channels, out_channels, (kh, kw), stride=stride,
                   padding=padding, dilation=dilation, bias=has_bias)
    state = {"W": ctx.array(weight)}
    if has_bias:
        state["b"] = vector(ctx, node, ctx.const(node, 2, "bias B"), out_channels, "bias")
    return Step([(layer, state)], node.output[0], [node])


# -- pooling ----------------------------------------------------------------------------------
@register_importer("MaxPool", "AveragePool")
def _pool(ctx: ImportContext, node: NodeProto) -> Step:
    return pool_step(ctx, node, ctx.tensor, NO_PADS)


def pool_step(ctx: ImportContext, node: NodeProto, data: str, before: Pads) -> Step:
    """A MaxPool or AveragePool reading ``data``, padded by ``before`` (a Pad node's)."""
    _images(ctx, node, data)
    attrs = ctx.attrs(node)
    kernel = _pair(ctx, node, attrs, "kernel_shape", None)
    stride = _pair(ctx, node, attrs, "strides", [1, 1])  # ONNX's default: 1, not the kernel
    if _pair(ctx, node, attrs, "dilations", [1, 1]) != (1, 1):
        raise ctx.fail(node, f"has dilations {attrs['dilations']}; numnet's pools read "
                             "adjacent pixels")
    pads = _pads(ctx, node, attrs, kernel, stride, (1, 1), before)
    own = any(p != b for p, b in zip(pads, before, strict=True))  # the node's own padding
    if attrs.get("ceil_mode", 0):
        _floor_equals_ceil(ctx, node, kernel, stride, pads)
    if node.op_type == "MaxPool":
        ctx.only_first_output(node)  # the indices of the maxima
        layer_type: type[Layer] = MaxPool2D
    else:
        if own and not attrs.get("count_include_pad", 0):
            raise ctx.fail(node, "leaves its padding out of the average (count_include_pad=0); "
                                 "numnet's AvgPool2D always divides by kh * kw, as PyTorch's "
                                 "default count_include_pad=True")
        layer_type = AvgPool2D
    padding = _symmetric(ctx, node, pads, layer_type.__name__)
    layer = _layer(ctx, node, layer_type, kernel, stride, padding)
    return Step([(layer, {})], node.output[0], [node])


def _floor_equals_ceil(ctx: ImportContext, node: NodeProto, kernel: Pair, stride: Pair,
                       pads: Pads) -> None:
    """Accept ``ceil_mode=1`` only where it gives the floor mode's output size."""
    for axis in (0, 1):
        size = _padded_size(ctx, axis, pads)
        if size is None or (size - kernel[axis]) % stride[axis]:
            raise ctx.fail(node, "rounds its output size up (ceil_mode=1), adding a partial "
                                 f"window to images of per-sample shape {ctx.shape}; numnet's "
                                 "pools round down (PyTorch's default ceil_mode=False)")


# -- global average ---------------------------------------------------------------------------
@register_importer("GlobalAveragePool")
def _global_average(ctx: ImportContext, node: NodeProto) -> Step:
    _images(ctx, node, ctx.tensor)
    return _global_step(ctx, node, keepdims=True)


@register_importer("ReduceMean")
def _reduce_mean(ctx: ImportContext, node: NodeProto) -> Step:
    attrs = ctx.attrs(node)
    axes = attrs.get("axes")
    if len(node.input) > 1 and node.input[1]:
        axes = ctx.const(node, 1, "axes")
    spatial = axes is not None and ctx.rank == 4 and sorted(
        int(a) % 4 for a in np.asarray(axes).reshape(-1)) == [2, 3]
    if not spatial:
        raise ctx.fail(node, f"averages axes {None if axes is None else list(axes)} of a "
                             f"rank-{ctx.rank} tensor; numnet imports a mean over the height "
                             "and width of images (N, C, H, W) as GlobalAvgPool2D (and a "
                             "LayerNorm's means with the rest of the LayerNorm)")
    return _global_step(ctx, node, keepdims=bool(attrs.get("keepdims", 1)))


def _global_step(ctx: ImportContext, node: NodeProto, keepdims: bool) -> Step:
    step = Step([(GlobalAvgPool2D(dtype=ctx.dtype), {})], node.output[0], [node])
    if keepdims:
        channels = ctx.shape[0]
        if channels is None:
            raise ctx.fail(node, "averages images with an unknown number of channels")
        unit_axes = Reshape((channels, 1, 1), dtype=ctx.dtype)
        ctx.unit_axes.add(id(unit_axes))
        step.layers.append((unit_axes, {}))
    return step


def drop_unit_axes(ctx: ImportContext, layers: list[tuple[Layer, dict[str, np.ndarray]]]
                   ) -> list[tuple[Layer, dict[str, np.ndarray]]]:
    """The layers without the Reshape((C, 1, 1)) after a global average where a flatten or
    reshape follows it (and without that flatten, or a reshape to (C,), as the average is
    flat already)."""
    kept: list[tuple[Layer, dict[str, np.ndarray]]] = []
    skip = False
    for index, (layer, state) in enumerate(layers):
        if skip:
            skip = False
            continue
        after = layers[index + 1][0] if index + 1 < len(layers) else None
        if id(layer) in ctx.unit_axes and isinstance(after, (Flatten, Reshape)):
            assert isinstance(layer, Reshape)
            skip = isinstance(after, Flatten) or after.shape in ((layer.shape[0],), (-1,))
            continue
        kept.append((layer, state))
    return kept


@register_importer("Squeeze")
def _squeeze(ctx: ImportContext, node: NodeProto) -> Step:
    axes = ctx.attrs(node).get("axes")
    if len(node.input) > 1 and node.input[1]:
        axes = ctx.const(node, 1, "axes")
    if axes is None:
        raise ctx.fail(node, "squeezes every axis of size 1 (no axes given), the batch axis "
                             "too for a batch of one; numnet imports a Squeeze of given axes")
    dropped = {int(a) % ctx.rank for a in np.asarray(axes).reshape(-1)}
    if 0 in dropped or any(ctx.shape[a - 1] != 1 for a in dropped):
        raise ctx.fail(node, f"squeezes axes {sorted(dropped)} of per-sample shape "
                             f"{ctx.shape}; numnet imports a Squeeze of sample axes of size 1")
    sample = [d for axis, d in enumerate(ctx.shape, start=1) if axis not in dropped]
    if len(sample) == 1:
        return Step([(Flatten(dtype=ctx.dtype), {})], node.output[0], [node])
    if None in sample:
        raise ctx.fail(node, f"squeezes per-sample shape {ctx.shape}, of unknown sizes")
    return Step([(Reshape([int(d) for d in sample if d is not None], dtype=ctx.dtype), {})],
                node.output[0], [node])


# -- explicit padding, and numnet's float64 windows -------------------------------------------
@register_importer("Pad")
def _pad(ctx: ImportContext, node: NodeProto) -> Step:
    """A ``Pad`` of the height and width, as the padding of the convolution or pool after it."""
    attrs = ctx.attrs(node)
    mode = _text(attrs.get("mode", "constant"))
    # the widths and the value are attributes up to opset 10, inputs from 11
    widths = ctx.const(node, 1, "pads") if ctx.opset >= 11 else attrs.get("pads", [])
    value = 0.0
    if len(node.input) > 2 and node.input[2]:
        value = float(ctx.const(node, 2, "constant_value").reshape(-1)[0])
    elif ctx.opset < 11:
        value = float(attrs.get("value", 0.0))
    widths = _all_axes(ctx, node, np.asarray(widths, dtype=np.int64).reshape(-1))
    if (ctx.rank != 4 or mode != "constant" or widths.size != 8 or widths[[0, 1, 4, 5]].any()
            or widths.min() < 0):
        raise ctx.fail(node, f"pads in mode {mode!r} by {widths.tolist()}; numnet imports a "
                             "Pad only as the zero (or, before a max pool, -inf) padding of "
                             "the height and width of the images a convolution or pool reads")
    pads = (int(widths[2]), int(widths[6]), int(widths[3]), int(widths[7]))
    after = ctx.follow(node.output[0], "Conv", "AveragePool", "MaxPool", "Gather")
    wanted = -math.inf if after is not None and after.op_type == "MaxPool" else 0.0
    if after is None or value != wanted:
        raise ctx.fail(node, f"pads with {value}, then feeds "
                             f"{'another node' if after is None else after.op_type}; numnet "
                             "has no padding layer: it imports a Pad only as the padding of "
                             "the convolution (zeros) or pool (zeros for an average, -inf for "
                             "a max) right after it")
    importer = {"Conv": conv_step, "Gather": windows_step}.get(after.op_type, pool_step)
    step = importer(ctx, after, node.output[0], pads)
    step.nodes.insert(0, node)
    return step


def _all_axes(ctx: ImportContext, node: NodeProto, widths: np.ndarray) -> np.ndarray:
    """Pad widths for every axis (``[begin..., end...]``), given ``axes`` (opset 18) or not."""
    if len(node.input) <= 3 or not node.input[3]:
        return widths
    axes = [int(a) % ctx.rank for a in ctx.const(node, 3, "axes").reshape(-1)]
    if widths.size != 2 * len(axes):
        return widths  # refused by the caller
    full = np.zeros(2 * ctx.rank, dtype=np.int64)
    for i, axis in enumerate(axes):
        full[axis], full[ctx.rank + axis] = widths[i], widths[len(axes) + i]
    return full


@register_importer("Gather")
def _gather(ctx: ImportContext, node: NodeProto) -> Step:
    return windows_step(ctx, node, ctx.tensor, NO_PADS)


def windows_step(ctx: ImportContext, rows: NodeProto, data: str, pads: Pads) -> Step:
    """numnet's float64 Conv2D or AvgPool2D: Gather rows (axis 2), Gather columns (axis 4),
    then Einsum with the weight (+ Add of the bias) or ReduceMean over axes 2 and 4."""
    refusal = ("numnet imports a Gather only as the windows of its own float64 convolution "
               "or average pooling (rows along axis 2, then columns along axis 4, then an "
               "Einsum or a ReduceMean)")
    _images(ctx, rows, data)
    cols = ctx.follow(rows.output[0], "Gather")
    last = ctx.follow(cols.output[0], "Einsum", "ReduceMean") if cols is not None else None
    # axes of (N, C, H, W) for the rows, of (N, C, kh, H_out, W) for the columns
    if (cols is None or last is None or ctx.attrs(rows).get("axis", 0) % 4 != 2
            or ctx.attrs(cols).get("axis", 0) % 5 != 4 or cols.input[0] != rows.output[0]
            or last.input[0] != cols.output[0]):
        raise ctx.fail(rows, refusal)
    (kh, sh, dh), (kw, sw, dw) = (_geometry(ctx, node, axis, pads)
                                  for axis, node in enumerate((rows, cols)))
    step = Step([], last.output[0], [rows, cols, last])
    if last.op_type == "ReduceMean":
        attrs = ctx.attrs(last)
        axes = ctx.const(last, 1, "axes") if len(last.input) > 1 and last.input[1] \
            else attrs.get("axes")
        if (axes is None or sorted(int(a) % 6 for a in np.asarray(axes).reshape(-1)) != [2, 4]
                or attrs.get("keepdims", 1) or (dh, dw) != (1, 1)):
            raise ctx.fail(rows, refusal)
        pool_padding = _symmetric(ctx, rows, pads, "AvgPool2D")
        step.layers.append((_layer(ctx, last, AvgPool2D, (kh, kw), (sh, sw), pool_padding),
                            {}))
        return step
    weight = ctx.const(last, 1, "weight")
    equation = _text(ctx.attrs(last).get("equation", ""))
    if _letters(equation) != _letters(CONV_EQUATION) or weight.ndim != 4 \
            or weight.shape[2:] != (kh, kw):
        raise ctx.fail(last, f"computes {equation!r} with a weight of shape {weight.shape}; "
                             f"numnet's float64 convolution is {CONV_EQUATION!r} with a "
                             f"(C_out, C_in, {kh}, {kw}) weight")
    padding = _conv_padding(ctx, rows, pads, (kh, kw), (sh, sw), (dh, dw))
    out_channels = int(weight.shape[0])
    add = ctx.follow(last.output[0], "Add")
    bias = ctx.other_input(add, last.output[0]) if add is not None else None
    if add is None or bias is None or bias.size != out_channels \
            or bias.shape not in ((out_channels, 1, 1), (1, out_channels, 1, 1)):
        bias = None
    layer = _layer(ctx, last, Conv2D, int(weight.shape[1]), out_channels, (kh, kw),
                   stride=(sh, sw), padding=padding, dilation=(dh, dw), bias=bias is not None)
    state = {"W": ctx.array(weight)}
    if add is not None and bias is not None:
        state["b"] = ctx.array(bias.reshape(out_channels))
        step.nodes.append(add)
        step.output = add.output[0]
    step.layers.append((layer, state))
    return step


def _geometry(ctx: ImportContext, node: NodeProto, axis: int, pads: Pads
              ) -> tuple[int, int, int]:
    """``(kernel, stride, dilation)`` along ``axis`` from a window Gather's indices.

    ``indices[i, p] = i * dilation + p * stride`` for every window ``p`` that fits the padded
    axis. A stride that one window leaves open is the smallest giving one window.
    """
    indices = ctx.const(node, 1, "indices")
    size = _padded_size(ctx, axis, pads)
    if indices.ndim != 2 or size is None:
        raise ctx.fail(node, f"gathers indices of shape {indices.shape} from an axis of size "
                             f"{size}; numnet's float64 windows gather (kernel, windows) "
                             "indices from an axis of known size")
    kernel, out = (int(d) for d in indices.shape)
    dilation = int(indices[1, 0] - indices[0, 0]) if kernel > 1 else 1
    extent = dilation * (kernel - 1) + 1
    stride = int(indices[0, 1] - indices[0, 0]) if out > 1 else max(1, size - extent + 1)
    if dilation < 1 or stride < 1 or not np.array_equal(
            indices, window_indices(size, kernel, stride, dilation)):
        raise ctx.fail(node, "gathers indices that are not the windows of a convolution or "
                             "pool (i * dilation + p * stride, from 0, for each window that "
                             "fits)")
    return kernel, stride, dilation


def _letters(equation: str) -> str:
    """An Einsum equation with its letters renamed in order of appearance: equal for
    equations that differ only by the names of their axes."""
    names: dict[str, str] = {}
    return "".join(names.setdefault(ch, chr(ord("a") + len(names))) if ch.isalpha() else ch
                   for ch in equation.replace(" ", ""))
