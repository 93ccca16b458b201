"""Compiled loops (numba) for the image layers: the optional fast path of max pooling and
of Conv2D's col2im.

Imported only through :func:`numnet.layers._fastpath.spatial_kernels`, never at ``import
numnet``: numba is optional (the ``fast`` extra) and costs tenths of a second to import.

The NumPy paths (:mod:`numnet.layers.pooling`, :mod:`numnet.layers._im2col`) are the
reference. Max pooling computes the same numbers bit for bit, window by window, in one
pass over the input each way instead of a few NumPy passes per kernel offset (whose inner
loops, on channels-last images, run over only ``C`` values at a time):

* forward: ``y[n, p, q, c]`` is the running maximum of the window, padding counting as
  ``-inf``; a NaN makes it NaN, as ``np.maximum`` does;
* backward: ``g[n, p, q, c]`` goes to the first position of the window, in scan order,
  whose value equals ``y`` (padding counting as ``-inf``, and dropped with the padding);
  a NaN window routes nothing. This is the NumPy path's rule, so ties and every edge
  case route alike.

col2im adds one kernel offset's column gradient into the input gradient in one pass
(:func:`col2im_add`), the same additions in the same order as NumPy's ``np.add`` into the
offset's strided slice, so the same numbers too.

Arrays are indexed ``(N, H, W, C)`` (the layers pass ``x.transpose(0, 2, 3, 1)``, which is
contiguous for channels-last images), so the innermost loop runs over contiguous channels.
Samples are split over the threads numba is given (``prange``; the caller sets how many,
see :mod:`numnet.layers._fastpath`): each writes its own rows of ``y`` and ``dx``.
"""

# numba compiles these loops for the dtypes of each call; annotations would all be Any
# mypy: disallow-untyped-defs=False, disallow-untyped-decorators=False

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange


def max_threads() -> int:
    """The most threads numba can give a loop (``NUMBA_NUM_THREADS``)."""
    # numba.config is typed only where numba is installed (CI may lack it: unused-ignore)
    return int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined, unused-ignore]


def set_threads(n: int) -> None:
    """Split each loop over ``n`` threads (of the calling thread's numba pool)."""
    numba.set_num_threads(n)


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def max_pool_forward(x, y, kh, kw, sh, sw, ph, pw):
    """``y`` (N, H_out, W_out, C) = window maxima of ``x`` (N, H, W, C)."""
    n, h, w, c = x.shape
    oh, ow = y.shape[1], y.shape[2]
    neg_inf = -np.inf
    for s in prange(n):
        for p in range(oh):
            for q in range(ow):
                for ch in range(c):
                    y[s, p, q, ch] = neg_inf
                for i in range(kh):
                    r = p * sh - ph + i
                    if r < 0 or r >= h:
                        continue
                    for j in range(kw):
                        col = q * sw - pw + j
                        if col < 0 or col >= w:
                            continue
                        for ch in range(c):
                            v = x[s, r, col, ch]
                            if v > y[s, p, q, ch] or v != v:
                                y[s, p, q, ch] = v


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def max_pool_backward(x, y, g, dx, kh, kw, sh, sw, ph, pw):
    """``dx`` (N, H, W, C): each ``g`` added at its window's first position equal to ``y``."""
    n, h, w, c = x.shape
    oh, ow = y.shape[1], y.shape[2]
    neg_inf = -np.inf
    for s in prange(n):
        done = np.empty(c, dtype=np.bool_)
        for r in range(h):
            for col in range(w):
                for ch in range(c):
                    dx[s, r, col, ch] = 0
        for p in range(oh):
            for q in range(ow):
                for ch in range(c):
                    done[ch] = False
                for i in range(kh):
                    r = p * sh - ph + i
                    inside_r = 0 <= r < h
                    for j in range(kw):
                        col = q * sw - pw + j
                        inside = inside_r and 0 <= col < w
                        for ch in range(c):
                            if done[ch]:
                                continue
                            v = x[s, r, col, ch] if inside else neg_inf
                            if v == y[s, p, q, ch]:
                                done[ch] = True
                                if inside:
                                    dx[s, r, col, ch] += g[s, p, q, ch]


@njit(cache=True, nogil=True, error_model="numpy")
def _zero_uncovered(dx, s, rows, cols):
    """Zero the rows from ``rows`` and the columns from ``cols`` of sample ``s`` of ``dx``:
    the pixels side-by-side windows leave out."""
    h, w, c = dx.shape[1], dx.shape[2], dx.shape[3]
    for r in range(h):
        for col in range(cols if r < rows else 0, w):
            for ch in range(c):
                dx[s, r, col, ch] = 0


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def max_pool_backward_disjoint(x, y, g, dx, kh, kw):
    """:func:`max_pool_backward` for side-by-side windows (stride = kernel, no padding):
    every pixel of ``dx`` is written once (``g`` or 0), none is read."""
    n, h, w, c = x.shape
    oh, ow = y.shape[1], y.shape[2]
    for s in prange(n):
        done = np.empty(c, dtype=np.bool_)
        for p in range(oh):
            for q in range(ow):
                for ch in range(c):
                    done[ch] = False
                for i in range(kh):
                    r = p * kh + i
                    for j in range(kw):
                        col = q * kw + j
                        for ch in range(c):
                            hit = x[s, r, col, ch] == y[s, p, q, ch] and not done[ch]
                            dx[s, r, col, ch] = g[s, p, q, ch] if hit else 0
                            done[ch] = done[ch] or hit
        _zero_uncovered(dx, s, oh * kh, ow * kw)


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def col2im_add(dxp, block, i, j, sh, sw, dh, dw, first):
    """Add one kernel offset's column gradient ``block`` (N, H_out, W_out, C) into the
    padded input gradient ``dxp`` (N, H_pad, W_pad, C) at the pixels offset ``(i, j)``
    meets: ``dxp[n, p*sh + i*dh, q*sw + j*dw] += block[n, p, q]``; ``first`` zeroes ``dxp``
    first (sample by sample, while it is in cache)."""
    n, oh, ow, c = block.shape
    hp, wp = dxp.shape[1], dxp.shape[2]
    for s in prange(n):
        if first:
            for r in range(hp):
                for col in range(wp):
                    for ch in range(c):
                        dxp[s, r, col, ch] = 0
        for p in range(oh):
            r = p * sh + i * dh
            for q in range(ow):
                col = q * sw + j * dw
                for ch in range(c):
                    dxp[s, r, col, ch] += block[s, p, q, ch]


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def max_pool_forward_disjoint(x, y, arg, kh, kw):
    """:func:`max_pool_forward` for side-by-side windows (stride = kernel, no padding),
    which also records in ``arg`` (uint8, like ``y``) each window's winner for backward:
    the offset ``i * kw + j`` of its first maximum, 255 for a NaN window (no winner).

    The window's first pixel starts the maximum; each later one replaces it when larger
    or NaN (a NaN then stays, as nothing compares larger), written as selects rather than
    branches so the loop over channels vectorises (measured 2.0 -> 1.3 ms on 2.8 million
    values, one thread).
    """
    n = x.shape[0]
    oh, ow, c = y.shape[1], y.shape[2], y.shape[3]
    for s in prange(n):
        for p in range(oh):
            for q in range(ow):
                y_row, arg_row = y[s, p, q], arg[s, p, q]
                first = x[s, p * kh, q * kw]
                for ch in range(c):
                    y_row[ch] = first[ch]
                    arg_row[ch] = 0
                for i in range(kh):
                    for j in range(kw):
                        if i + j == 0:
                            continue
                        x_row = x[s, p * kh + i, q * kw + j]
                        offset = np.uint8(i * kw + j)
                        for ch in range(c):
                            v = x_row[ch]
                            take = v > y_row[ch] or v != v
                            y_row[ch] = v if take else y_row[ch]
                            arg_row[ch] = offset if take else arg_row[ch]
                for ch in range(c):
                    arg_row[ch] = np.uint8(255) if y_row[ch] != y_row[ch] else arg_row[ch]


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def max_pool_backward_index(arg, g, dx, kh, kw):
    """Backward of :func:`max_pool_forward_disjoint`: ``dx`` (N, H, W, C) is ``g`` at
    each window's recorded winner and 0 everywhere else, every pixel written once."""
    n, h, w, c = dx.shape
    oh, ow = g.shape[1], g.shape[2]
    for s in prange(n):
        for p in range(oh):
            for i in range(kh):
                r = p * kh + i
                for q in range(ow):
                    for j in range(kw):
                        col = q * kw + j
                        offset = i * kw + j
                        for ch in range(c):
                            dx[s, r, col, ch] = g[s, p, q, ch] if arg[s, p, q, ch] == offset \
                                else 0
        _zero_uncovered(dx, s, oh * kh, ow * kw)
