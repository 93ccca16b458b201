"""Max pooling as compiled loops (numba): the optional fast path of :class:`MaxPool2D`.

Imported only through :func:`numnet.layers._fastpath.pool_kernels`, never at ``import
numnet``: numba is optional (the ``fast`` extra) and costs tenths of a second to import.

The NumPy path (:mod:`numnet.layers.pooling`) is the reference; these loops compute the
same numbers bit for bit, window by window, in one pass over the input each way instead
of a few NumPy passes per kernel offset (whose inner loops, on channels-last images, run
over only ``C`` values at a time):

* forward: ``y[n, p, q, c]`` is the running maximum of the window, padding counting as
  ``-inf``; a NaN makes it NaN, as ``np.maximum`` does;
* backward: ``g[n, p, q, c]`` goes to the first position of the window, in scan order,
  whose value equals ``y`` (padding counting as ``-inf``, and dropped with the padding);
  a NaN window routes nothing. This is the NumPy path's rule, so ties and every edge
  case route alike.

Arrays are indexed ``(N, H, W, C)`` (the layer passes ``x.transpose(0, 2, 3, 1)``, which is
contiguous for channels-last images), so the innermost loop runs over contiguous channels.
Samples are split over threads (``prange``): each writes its own rows of ``y`` and ``dx``.
"""

# numba compiles these loops for the dtypes of each call; annotations would all be Any
# mypy: disallow-untyped-defs=False, disallow-untyped-decorators=False

from __future__ import annotations

import numpy as np
from numba import njit, prange


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
        # rows and columns no window reaches
        for r in range(oh * kh, h):
            for col in range(w):
                for ch in range(c):
                    dx[s, r, col, ch] = 0
        for r in range(oh * kh):
            for col in range(ow * kw, w):
                for ch in range(c):
                    dx[s, r, col, ch] = 0
