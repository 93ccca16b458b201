r"""im2col and col2im: a convolution as one matrix product, and its gradient scattered back.

A convolution of ``x`` (N, C, H, W) with a kernel (O, C, kh, kw) reads, for every output
pixel ``(n, p, q)``, the ``K = C * kh * kw`` input values under the kernel. Writing those
values as one row per output pixel gives the **column matrix** (``M = N * H_out * W_out``
rows, ``K`` columns), and the convolution becomes one matrix product::

    y[(n, p, q), o] = sum_k col[(n, p, q), k] * Wmat[k, o]          (M, K) @ (K, O)

Both layouts of the column matrix are built here, by one ``np.copyto`` from a strided
window view of the (padded) input (``sliding_window_view``, no data copied until then):

* ``rows``: ``col`` is ``(M, K)``, ``k`` running over ``(kh, kw, C)``: for channels-last
  input, each copy moves runs of ``C`` contiguous values;
* ``cols``: ``col`` is ``(K, M)``, ``k`` running over ``(C, kh, kw)``: for channels-first
  input (and one channel), each copy moves runs of ``W_out`` contiguous values, and the
  product is ``col.T @ Wmat`` (BLAS reads the transpose in place).

Both give the output as ``(M, O)``: channels-last, handed on as a transposed view.

With a bias, the column matrix carries one more column (or row) of ones and ``Wmat`` one
more row, ``b``: the product adds the bias, and the weight-gradient product
``col^T @ g`` yields ``dL/db = sum_m g[m]`` as its last row, with no pass of its own.

**col2im.** The input gradient is ``dcol = g @ Wmat^T`` scattered back: the value for
kernel offset ``(i, j)`` of output pixel ``(p, q)`` belongs to padded input pixel
``(p*s + i*d, q*s + j*d)``. It is computed one kernel offset at a time, ``dcol_(i, j) = g @
W[:, :, i, j]^T`` (an ``(M, C)`` block, into one reused buffer small enough to stay in
cache until it is used), and each block is scattered by one vectorised add of ``(N,
H_out, W_out, C)`` values into the strided slice of the input gradient that offset meets
(:func:`offset_view`). One offset never meets the same pixel twice, so the adds are exact
for any stride, padding and dilation, overlapping windows included. (Measured against
one batched product into a ``(kh*kw, M, C)`` array: as fast or faster, and that array,
as large as the column matrix, is never needed.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from numnet.layers._spatial import Padding, Pair, empty_images, offset_view


class Workspace:
    """Work arrays a layer reuses from batch to batch.

    ``get(name, shape, dtype)`` returns a contiguous array of that shape laid over one flat
    buffer per name, which only grows: a smaller batch (the last of an epoch) reuses the
    memory of the larger ones. When the shape under a name changes (or is new), the array
    is first filled with ``fill`` if given, so that a constant border or a column of ones
    is written once per shape, not once per batch; a caller that writes only the other
    entries can rely on them.
    """

    def __init__(self) -> None:
        self._flat: dict[str, np.ndarray] = {}
        self._shape: dict[str, tuple[int, ...]] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: Any,
            fill: float | None = None) -> np.ndarray:
        size = math.prod(shape)
        flat = self._flat.get(name)
        if flat is None or flat.dtype != dtype or flat.size < size:
            flat = self._flat[name] = np.empty(size, dtype)
            self._shape.pop(name, None)
        array = flat[:size].reshape(shape)
        if self._shape.get(name) != shape:
            if fill is not None:
                array.fill(fill)
            self._shape[name] = shape
        return array

    def clear(self) -> None:
        self._flat.clear()
        self._shape.clear()


def padded(work: Workspace, name: str, x: np.ndarray, padding: Padding, fill: float,
           last: bool) -> np.ndarray:
    """``x`` inside a reused buffer with a ``fill`` border (``x`` itself without padding)."""
    if not any(padding):
        return x
    top, bottom, left, right = padding
    n, c, h, w = x.shape
    hp, wp = h + top + bottom, w + left + right
    shape = (n, hp, wp, c) if last else (n, c, hp, wp)
    # one buffer per memory order: the two shapes can coincide with borders elsewhere
    buf = work.get(f"{name}:{'last' if last else 'first'}", shape, x.dtype, fill)
    xp = buf.transpose(0, 3, 1, 2) if last else buf
    xp[:, :, top:top + h, left:left + w] = x
    return xp


def windows(xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair) -> np.ndarray:
    """Read-only view ``(N, C, H_out, W_out, kh, kw)`` of every window of padded ``xp``."""
    span = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    view = sliding_window_view(xp, span, axis=(2, 3))
    return view[:, :, ::stride[0], ::stride[1], ::dilation[0], ::dilation[1]]


def im2col(xp: np.ndarray, col: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair,
           rows: bool) -> None:
    """Write the column matrix of padded ``xp`` into the first ``K`` columns/rows of ``col``.

    ``rows``: ``col`` is ``(M, K[+1])`` with ``k`` over ``(kh, kw, C)``; otherwise ``col``
    is ``(K[+1], M)`` with ``k`` over ``(C, kh, kw)``. A trailing bias column/row is left
    as it is (ones, written when the buffer was made).
    """
    n, c = xp.shape[:2]
    win = windows(xp, kernel, stride, dilation)  # (N, C, OH, OW, kh, kw)
    oh, ow = win.shape[2:4]
    k = c * kernel[0] * kernel[1]
    if rows:
        target = col[:, :k].reshape(n, oh, ow, kernel[0], kernel[1], c)
        np.copyto(target, win.transpose(0, 2, 3, 4, 5, 1))
    else:
        target = col[:k].reshape(c, kernel[0], kernel[1], n, oh, ow)
        np.copyto(target, win.transpose(1, 4, 5, 0, 2, 3))


def col2im(block: Callable[[int], np.ndarray], in_shape: tuple[int, int, int, int],
           out_hw: Pair, kernel: Pair, stride: Pair, padding: Padding, dilation: Pair,
           dtype: Any, kernels: Any = None) -> np.ndarray:
    """Scatter the column gradient back onto the input, one kernel offset at a time.

    ``block(offset)`` returns the ``(M, C)`` column gradient of kernel offset ``offset``
    (``i * kw + j``), rows in ``(N, H_out, W_out)`` order. Returns the input gradient
    ``(N, C, H, W)``, channels-last in memory (a fresh array: a view into it when there is
    padding to cut off). ``kernels``, when given, is :mod:`numnet.layers._spatial_numba`:
    each offset's add then runs as one compiled loop (same sums, same order).
    """
    n, c, h, w = in_shape
    top, bottom, left, right = padding
    oh, ow = out_hw
    dxp = empty_images((n, c, h + top + bottom, w + left + right), dtype, last=True)
    if kernels is not None:
        rows = dxp.transpose(0, 2, 3, 1)
        for offset in range(kernel[0] * kernel[1]):
            i, j = divmod(offset, kernel[1])
            kernels.col2im_add(rows, block(offset).reshape(n, oh, ow, c), i, j, *stride,
                               *dilation, offset == 0)
        return dxp if not any(padding) else dxp[:, :, top:top + h, left:left + w]
    # offset (0, 0) of a stride-1 convolution covers the block [:oh, :ow] alone: it is
    # copied there, and only the rest of the gradient needs zeros
    first_copies = stride == (1, 1)
    if first_copies:
        dxp[:, :, oh:, :] = 0
        dxp[:, :, :oh, ow:] = 0
    else:
        dxp[...] = 0
    for offset in range(kernel[0] * kernel[1]):
        i, j = divmod(offset, kernel[1])
        values = block(offset).reshape(n, oh, ow, c).transpose(0, 3, 1, 2)
        target = offset_view(dxp, i, j, out_hw, stride, dilation)
        if offset == 0 and first_copies:
            np.copyto(target, values)
        else:
            np.add(target, values, out=target)
    if not any(padding):
        return dxp
    return dxp[:, :, top:top + h, left:left + w]
