"""numnet's image layers to ONNX nodes: convolution, max and average pooling, global average.

float32 graphs use ONNX's own operators. ONNX Runtime 1.32 has no float64 kernel for
``Conv``, ``AveragePool`` or ``GlobalAveragePool`` (it has one for ``MaxPool``, ``Pad``,
``Gather``, ``Einsum`` and ``ReduceMean``), so float64 graphs write those layers with
operators it runs, as numnet computes them: the windows of the padded input are gathered
(im2col, one ``Gather`` per image axis with constant indices) and then contracted with the
weight (``Einsum``) or averaged (``ReduceMean``). :mod:`numnet.onnx_io._ops_image` reads
both forms back. The gathered windows are as large as numnet's column matrix, and ONNX
Runtime's float64 ``Einsum`` copies them: about 1 GB per 1000 images for MNIST's CNN
(measured with ONNX Runtime 1.32), so float64 graphs are best run in batches of that order.

Imported only once the optional ``onnx`` package is known to be installed.
"""

from __future__ import annotations

import numpy as np

from numnet.layers import AvgPool2D, Conv2D, GlobalAvgPool2D, MaxPool2D
from numnet.onnx_io._common import CONV_EQUATION, window_indices
from numnet.onnx_io._context import ExportContext, register_exporter

Pads = tuple[int, int, int, int]


def _onnx_pads(pads: Pads) -> list[int]:
    """numnet's ``(top, bottom, left, right)`` in ONNX's order ``[top, left, bottom, right]``."""
    top, bottom, left, right = pads
    return [top, left, bottom, right]


def windows(ctx: ExportContext, x: str, kernel: tuple[int, int], stride: tuple[int, int],
            dilation: tuple[int, int], pads: Pads) -> str:
    """The windows of the ``(N, C, H, W)`` tensor ``x``, as ``(N, C, kh, H_out, kw, W_out)``.

    ``cols[n, c, i, p, j, q] = x_pad[n, c, p*s_h + i*d_h, q*s_w + j*d_w]`` with ``x_pad``
    padded by zeros: ``Pad`` (when there is padding), then ``Gather`` of the window rows
    along axis 2 and of the window columns along axis 4 (:func:`window_indices`).
    """
    _, h, w = ctx.in_shape
    top, bottom, left, right = pads
    if any(pads):
        pad_widths = ctx.constant("pads", [0, 0, top, left, 0, 0, bottom, right], np.int64)
        x = ctx.node("Pad", [x, pad_widths], mode="constant")
    rows = window_indices(h + top + bottom, kernel[0], stride[0], dilation[0])
    x = ctx.node("Gather", [x, ctx.constant("rows", rows, np.int64)], axis=2)
    cols = window_indices(w + left + right, kernel[1], stride[1], dilation[1])
    return ctx.node("Gather", [x, ctx.constant("cols", cols, np.int64)], axis=4)


@register_exporter(Conv2D)
def _conv(ctx: ExportContext, layer: Conv2D, x: str) -> str:
    # explicit pads from the layer ("same" resolved as numnet does, the odd one at the
    # bottom/right), rather than auto_pad: every runtime reads them the same way
    if ctx.dtype == np.float32:
        inputs = [x, ctx.param("W")] + ([ctx.param("b")] if layer.bias else [])
        return ctx.node("Conv", inputs, kernel_shape=list(layer.kernel_size),
                        strides=list(layer.stride), dilations=list(layer.dilation),
                        pads=_onnx_pads(layer.pads), group=1)
    cols = windows(ctx, x, layer.kernel_size, layer.stride, layer.dilation, layer.pads)
    y = ctx.node("Einsum", [cols, ctx.param("W")], equation=CONV_EQUATION)
    if not layer.bias:
        return y
    return ctx.node("Add", [y, ctx.constant("b", layer.params["b"].reshape(-1, 1, 1))])


@register_exporter(MaxPool2D)
def _max_pool(ctx: ExportContext, layer: MaxPool2D, x: str) -> str:
    # ONNX's MaxPool ignores its padding (as numnet's -inf does); ONNX Runtime runs float64
    ph, pw = layer.padding
    return ctx.node("MaxPool", [x], kernel_shape=list(layer.kernel_size),
                    strides=list(layer.stride), pads=[ph, pw, ph, pw], ceil_mode=0)


@register_exporter(AvgPool2D)
def _avg_pool(ctx: ExportContext, layer: AvgPool2D, x: str) -> str:
    ph, pw = layer.padding
    if ctx.dtype == np.float32:
        # count_include_pad=1: the divisor is kh * kw, padding included, as numnet's
        return ctx.node("AveragePool", [x], kernel_shape=list(layer.kernel_size),
                        strides=list(layer.stride), pads=[ph, pw, ph, pw],
                        count_include_pad=1, ceil_mode=0)
    cols = windows(ctx, x, layer.kernel_size, layer.stride, (1, 1), (ph, ph, pw, pw))
    return ctx.reduce_mean(cols, [2, 4], keepdims=False)


@register_exporter(GlobalAvgPool2D)
def _global_avg_pool(ctx: ExportContext, layer: GlobalAvgPool2D, x: str) -> str:
    if ctx.dtype == np.float32:
        # GlobalAveragePool keeps (N, C, 1, 1); numnet's output is (N, C)
        return ctx.node("Flatten", [ctx.node("GlobalAveragePool", [x])], axis=1)
    return ctx.reduce_mean(x, [2, 3], keepdims=False)
