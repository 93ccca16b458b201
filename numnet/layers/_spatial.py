"""Geometry shared by the 2-D layers (convolution and pooling): arguments, sizes, views.

Images are ``(N, C, H, W)`` in every public shape. Their *memory* may be channels-last
(``C`` varying fastest): a convolution writes its output that way (see
:mod:`numnet.layers.conv`) and hands it on as a transposed view, so the functions here
index logically (``N, C, H, W``) and leave the memory order to NumPy, which follows it.

For a kernel of size ``k``, stride ``s``, dilation ``d`` and padding ``p_lo + p_hi`` on an
axis of size ``n`` the output size is (PyTorch's floor mode)::

    out = floor((n + p_lo + p_hi - d * (k - 1) - 1) / s) + 1

and the input rows that kernel offset ``i`` meets are ``i*d, i*d + s, ..., i*d + s*(out-1)``
of the padded input: :func:`offset_view` is that strided slice, the building block of the
pooling layers and of col2im.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from numnet.errors import ShapeError

Pair = tuple[int, int]
#: padding as (top, bottom, left, right)
Padding = tuple[int, int, int, int]


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def int_pair(value: Any, name: str, minimum: int = 1) -> Pair:
    """``value`` (an int or a pair of ints, each ``>= minimum``) as ``(height, width)``."""
    if _is_int(value):
        items = [value, value]
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(map(_is_int, value)):
        items = list(value)
    else:
        raise ValueError(f"{name} must be an int or a pair of ints (height, width), got "
                         f"{value!r}")
    if min(items) < minimum:
        what = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(items[0]), int(items[1])


def compact(pair: Sequence[int]) -> int | list[int]:
    """A pair as it reads best in a config: one int when both sides agree, else a list."""
    return int(pair[0]) if pair[0] == pair[1] else [int(pair[0]), int(pair[1])]


def conv_padding(value: Any, kernel: Pair, stride: Pair, dilation: Pair,
                 name: str) -> tuple[Padding, int | list[int] | str]:
    """Resolve a convolution's ``padding`` argument.

    Returns ``((top, bottom, left, right), config_value)``. ``"valid"`` is no padding;
    ``"same"`` (stride 1 only, as in PyTorch) pads ``d * (k - 1)`` in total per axis so the
    output has the input's size, the odd one on the bottom/right as PyTorch does.
    """
    if isinstance(value, str):
        if value == "valid":
            return (0, 0, 0, 0), "valid"
        if value == "same":
            if stride != (1, 1):
                raise ValueError(f"{name}='same' needs stride 1 (the output size of a strided "
                                 f"convolution cannot equal the input's), got stride {stride}; "
                                 "pass an explicit padding instead")
            pads = []
            for k, d in zip(kernel, dilation, strict=True):
                total = d * (k - 1)
                pads += [total // 2, total - total // 2]
            return (pads[0], pads[1], pads[2], pads[3]), "same"
        raise ValueError(f"{name} must be an int, a pair of ints, 'same' or 'valid', got "
                         f"{value!r}")
    ph, pw = int_pair(value, name, minimum=0)
    return (ph, ph, pw, pw), compact((ph, pw))


def output_size(size: int, kernel: int, stride: int, pad: int, dilation: int = 1) -> int:
    """Output length along one axis (floor mode); < 1 when the window does not fit."""
    return (size + pad - dilation * (kernel - 1) - 1) // stride + 1


def _fmt(shape: Sequence[Any]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def image_shape(layer: Any, input_shape: Sequence[int], channels: int | None = None
                ) -> tuple[int, int, int]:
    """``(C, H, W)`` of a per-sample image shape, or a ShapeError that says how to fix it."""
    shape = tuple(int(d) for d in input_shape)
    if len(shape) == 3:
        c, h, w = shape
        if channels is None or c == channels:
            return c, h, w
        hint = ""
        if w == channels:
            hint = ("; the last axis has that size, so the images look channels-last "
                    "(N, H, W, C): pass x.transpose(0, 3, 1, 2)")
        raise ShapeError(f"{layer!r} expects {channels} input channel(s), got input shape "
                         f"(N, {c}, {h}, {w}) with {c} channel(s){hint}")
    c_text = "C" if channels is None else str(channels)
    expect = f"{layer!r} expects images of shape (N, {c_text}, H, W) (batch, channels, " \
             "height, width)"
    if len(shape) == 2:
        h, w = shape
        fix = (f"add the channel axis: x[:, None] or x.reshape(N, 1, {h}, {w})"
               if channels in (None, 1) else
               f"the input needs {channels} channels, as (N, {channels}, {h}, {w})")
        raise ShapeError(f"{expect}, got per-sample shape {_fmt(shape)}, i.e. batches "
                         f"(N, {h}, {w}) without a channel axis: {fix}")
    if len(shape) == 1:
        side = math.isqrt(shape[0])
        fix = ""
        if side * side == shape[0] and channels in (None, 1):
            fix = (f": for flat rows of {side}x{side} images put Reshape((1, {side}, {side})) "
                   f"first, or pass x.reshape(N, 1, {side}, {side})")
        raise ShapeError(f"{expect}, got flat per-sample shape {_fmt(shape)}{fix}")
    raise ShapeError(f"{expect}, got per-sample shape {_fmt(shape)} (batches of rank "
                     f"{len(shape) + 1})")


def pooled_size(layer: Any, c: int, h: int, w: int, kernel: Pair, stride: Pair,
                padding: Padding, dilation: Pair = (1, 1)) -> tuple[int, int]:
    """Output ``(H_out, W_out)``, or a ShapeError when the (dilated) window is too large."""
    oh = output_size(h, kernel[0], stride[0], padding[0] + padding[1], dilation[0])
    ow = output_size(w, kernel[1], stride[1], padding[2] + padding[3], dilation[1])
    if oh < 1 or ow < 1:
        eh = dilation[0] * (kernel[0] - 1) + 1
        ew = dilation[1] * (kernel[1] - 1) + 1
        ph, pw = h + padding[0] + padding[1], w + padding[2] + padding[3]
        raise ShapeError(
            f"{layer!r}: input images of size {h}x{w} (padded {ph}x{pw}, input shape "
            f"(N, {c}, {h}, {w})) are smaller than the {'dilated ' if dilation != (1, 1) else ''}"
            f"window {eh}x{ew}; use larger images, more padding or a smaller kernel"
        )
    return oh, ow


def offset_view(xp: np.ndarray, i: int, j: int, out_hw: Pair, stride: Pair,
                dilation: Pair = (1, 1)) -> np.ndarray:
    """The ``(N, C, H_out, W_out)`` slice of padded ``xp`` that kernel offset ``(i, j)`` meets."""
    (oh, ow), (sh, sw), (dh, dw) = out_hw, stride, dilation
    top, left = i * dh, j * dw
    return xp[:, :, top:top + sh * (oh - 1) + 1:sh, left:left + sw * (ow - 1) + 1:sw]


def blocks(a: np.ndarray, kernel: Pair, out_hw: Pair) -> np.ndarray:
    """Side-by-side ``kh x kw`` windows of ``(N, C, H, W)`` ``a`` as a ``(N, H_out, kh, W_out,
    kw, C)`` view (rows and columns past ``H_out * kh``, ``W_out * kw`` left out).

    For channels-last memory, ``view[:, :, i]`` (row ``i`` of every window) is a run of
    ``W_out * kw * C`` contiguous values per window row: element-wise work on it runs at
    full speed, unlike work on one kernel offset (runs of ``C`` values).
    """
    (kh, kw), (oh, ow) = kernel, out_hw
    s_n, s_c, s_h, s_w = a.strides
    return as_strided(a, (a.shape[0], oh, kh, ow, kw, a.shape[1]),
                      (s_n, kh * s_h, s_h, kw * s_w, s_w, s_c))


def channels_last(x: np.ndarray) -> bool:
    """Whether the channels of the ``(N, C, H, W)`` array ``x`` vary fastest in memory."""
    return x.shape[1] > 1 and abs(x.strides[1]) < abs(x.strides[3])


def empty_images(shape: Sequence[int], dtype: Any, last: bool) -> np.ndarray:
    """An uninitialised ``(N, C, H, W)`` array, channels-last in memory when ``last``."""
    n, c, h, w = shape
    if last:
        return np.empty((n, h, w, c), dtype=dtype).transpose(0, 3, 1, 2)
    return np.empty((n, c, h, w), dtype=dtype)


def same_layout(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``a`` in the memory order of ``ref`` (a copy only when they differ).

    Element-wise NumPy operations between arrays of different memory orders walk one of
    them against its grain and are many times slower (measured: 11 ms instead of 1.6 ms
    for a ReLU backward on 2.8 M floats), so a layer converts a gradient arriving in the
    other order once, up front.
    """
    last = channels_last(ref)
    if channels_last(a) == last or a.shape[1] == 1:
        return a
    out = empty_images(a.shape, a.dtype, last)
    np.copyto(out, a)
    return out
