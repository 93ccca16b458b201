"""The compiled kernels (numba): one fused pass per operation.

Imported only through :func:`numnet._kernels.load_numba`, never at ``import numnet``:
numba is an optional dependency, and importing it costs a few tenths of a second.

Each operation is written once as a plain loop over a range of entries (``*_range``);
with more than one kernel thread allowed (``numnet._kernels.set_kernel_threads``; the
default is one, see there), a ``parallel=True`` driver (``*_par``) splits a large problem
into one contiguous chunk per thread with ``prange``. The loop bodies repeat the
NumPy kernels' order of operations with scalars already rounded to the dtype, and
``fastmath`` stays off, so results are equal to the NumPy path to float rounding (for the
optimiser updates, bit for bit). A non-finite check is folded into the loops that write
the values checked: ``x - x`` is 0 exactly when ``x`` is finite.

Kernels compile lazily, at their first call, for the dtypes of that call, and are cached
on disk (``cache=True``, in ``__pycache__`` beside this file, or numba's user cache dir
when that is not writable), so only the first run on a machine pays the compilation.
"""

# numba compiles these loops for the dtypes of each call; annotations would all be Any
# mypy: disallow-untyped-defs=False, disallow-untyped-decorators=False

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from numba import njit, prange

from numnet._kernels.common import (
    COUPLED_ALL,
    COUPLED_MASK,
    DECOUPLED_ALL,
    DECOUPLED_MASK,
    AdamCoefficients,
    Decay,
    RMSPropCoefficients,
    SGDCoefficients,
)

#: below this many entries per thread a kernel runs on the calling thread alone, even when
#: more threads are allowed: waking a second thread costs more than it saves
MIN_PARALLEL = 32768

_serial = njit(cache=True, nogil=True, error_model="numpy")
_parallel = njit(cache=True, nogil=True, parallel=True, error_model="numpy")


_MAX_THREADS: int = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]


class _Threads:
    #: the most threads a kernel uses (``set_threads``)
    limit: int = 1


def set_threads(n: int) -> None:
    """Let kernels use at most ``n`` threads (1: every kernel runs on the calling thread;
    at most numba's ``NUMBA_NUM_THREADS``)."""
    _Threads.limit = max(1, min(int(n), _MAX_THREADS))


def _chunks(size: int) -> int:
    """How many threads share a problem of ``size`` entries (1 = run serially)."""
    return max(1, min(_Threads.limit, size // MIN_PARALLEL))


_DUMMY: dict[np.dtype, np.ndarray] = {}


def _dummy(dtype: np.dtype) -> np.ndarray:
    """A one-entry stand-in for an absent array (numba needs one type per argument)."""
    if dtype not in _DUMMY:
        _DUMMY[dtype] = np.zeros(1, dtype=dtype)
    return _DUMMY[dtype]


@_serial
def _bound(chunk: int, chunks: int, size: int) -> int:
    """Start of ``chunk`` of ``chunks`` over ``size`` entries, on a 16-entry boundary."""
    if chunk >= chunks:
        return size
    return min(size, (size * chunk // chunks) // 16 * 16)


# -- optimiser updates ----------------------------------------------------------------------


@_serial
def _decayed(p: Any, g: Any, mask_i: Any, wd: Any, mode: int) -> Any:
    """The gradient after coupled decay, ``g + (p * wd) * mask``."""
    if mode == COUPLED_ALL:
        return p * wd + g
    if mode == COUPLED_MASK:
        return p * wd * mask_i + g
    return g


@_serial
def _shrunk(p: Any, mask_i: Any, shrink: Any, neg_lr_wd: Any, one: Any, mode: int) -> Any:
    """The parameter after decoupled decay, ``p * (1 - lr * wd)``."""
    if mode == DECOUPLED_ALL:
        return p * shrink
    if mode == DECOUPLED_MASK:
        return p * (mask_i * neg_lr_wd + one)
    return p


@_serial
def adam_range(lo, hi, p, g, m, v, backup, mask, c1, b2, c2, eps_hat, scale, wd, shrink,
               neg_lr_wd, mode, save):
    p, g, m, v = p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi]
    backup = backup[lo:hi] if save else backup
    masked = mode == COUPLED_MASK or mode == DECOUPLED_MASK
    mask = mask[lo:hi] if masked else mask
    one = p.dtype.type(1)
    zero = p.dtype.type(0)
    bad = 0
    for i in range(p.shape[0]):  # from 0: numba drops its negative-index check, LLVM vectorises
        pi = p[i]
        if save:
            backup[i] = pi
        mi = mask[i] if masked else one
        pi = _shrunk(pi, mi, shrink, neg_lr_wd, one, mode)
        gi = _decayed(pi, g[i], mi, wd, mode)
        m_new = m[i] + (gi - m[i]) * c1
        v_new = v[i] * b2 + (gi * c2) * gi
        m[i] = m_new
        v[i] = v_new
        pi = pi - m_new / (math.sqrt(v_new) + eps_hat) * scale
        p[i] = pi
        bad += (pi - pi) != zero
    return bad


@_parallel
def adam_par(chunks, p, g, m, v, backup, mask, c1, b2, c2, eps_hat, scale, wd, shrink,
             neg_lr_wd, mode, save):
    bad = 0
    for c in prange(chunks):
        bad += adam_range(_bound(c, chunks, p.size), _bound(c + 1, chunks, p.size), p, g, m,
                          v, backup, mask, c1, b2, c2, eps_hat, scale, wd, shrink, neg_lr_wd,
                          mode, save)
    return bad


@_serial
def sgd_range(lo, hi, p, g, buf, backup, mask, lr, mu, wd, mode, momentum, first,
              nesterov, save):
    p, g = p[lo:hi], g[lo:hi]
    buf = buf[lo:hi] if momentum else buf
    backup = backup[lo:hi] if save else backup
    masked = mode == COUPLED_MASK
    mask = mask[lo:hi] if masked else mask
    one = p.dtype.type(1)
    zero = p.dtype.type(0)
    bad = 0
    for i in range(p.shape[0]):
        pi = p[i]
        if save:
            backup[i] = pi
        mi = mask[i] if masked else one
        d = _decayed(pi, g[i], mi, wd, mode)
        if momentum:
            b = d if first else buf[i] * mu + d
            buf[i] = b
            d = b * mu + d if nesterov else b
        pi = pi - d * lr
        p[i] = pi
        bad += (pi - pi) != zero
    return bad


@_parallel
def sgd_par(chunks, p, g, buf, backup, mask, lr, mu, wd, mode, momentum, first, nesterov,
            save):
    bad = 0
    for c in prange(chunks):
        bad += sgd_range(_bound(c, chunks, p.size), _bound(c + 1, chunks, p.size), p, g, buf,
                         backup, mask, lr, mu, wd, mode, momentum, first, nesterov, save)
    return bad


@_serial
def rmsprop_range(lo, hi, p, g, v, gm, buf, backup, mask, alpha, c, eps, lr, mu, wd, mode,
                  centered, momentum, save):
    p, g, v = p[lo:hi], g[lo:hi], v[lo:hi]
    gm = gm[lo:hi] if centered else gm
    buf = buf[lo:hi] if momentum else buf
    backup = backup[lo:hi] if save else backup
    masked = mode == COUPLED_MASK
    mask = mask[lo:hi] if masked else mask
    one = p.dtype.type(1)
    zero = p.dtype.type(0)
    bad = 0
    for i in range(p.shape[0]):
        pi = p[i]
        if save:
            backup[i] = pi
        mi = mask[i] if masked else one
        gi = _decayed(pi, g[i], mi, wd, mode)
        vi = v[i] * alpha + (gi * c) * gi
        v[i] = vi
        if centered:
            gmi = gm[i] + (gi - gm[i]) * c
            gm[i] = gmi
            den = math.sqrt(vi - gmi * gmi) + eps
        else:
            den = math.sqrt(vi) + eps
        if momentum:
            b = buf[i] * mu + gi / den
            buf[i] = b
            pi = pi - b * lr
        else:
            pi = pi - (gi * lr) / den
        p[i] = pi
        bad += (pi - pi) != zero
    return bad


@_parallel
def rmsprop_par(chunks, p, g, v, gm, buf, backup, mask, alpha, c, eps, lr, mu, wd, mode,
                centered, momentum, save):
    bad = 0
    for k in prange(chunks):
        bad += rmsprop_range(_bound(k, chunks, p.size), _bound(k + 1, chunks, p.size), p, g,
                             v, gm, buf, backup, mask, alpha, c, eps, lr, mu, wd, mode,
                             centered, momentum, save)
    return bad


def adam(params: np.ndarray, grads: np.ndarray, exp_avg: np.ndarray, exp_avg_sq: np.ndarray,
         coef: AdamCoefficients, decay: Decay, mode: int, mask: np.ndarray | None,
         backup: np.ndarray | None, check: bool, work: list[np.ndarray]) -> bool:
    dummy = _dummy(params.dtype)
    args = (params, grads, exp_avg, exp_avg_sq, dummy if backup is None else backup,
            dummy if mask is None else mask, *coef, *decay, mode, backup is not None)
    chunks = _chunks(params.size)
    bad = adam_range(0, params.size, *args) if chunks == 1 else adam_par(chunks, *args)
    return not check or bad == 0


def sgd(params: np.ndarray, grads: np.ndarray, momentum_buffer: np.ndarray | None,
        coef: SGDCoefficients, first_step: bool, nesterov: bool, decay: Decay, mode: int,
        mask: np.ndarray | None, backup: np.ndarray | None, check: bool,
        work: list[np.ndarray]) -> bool:
    dummy = _dummy(params.dtype)
    args = (params, grads, dummy if momentum_buffer is None else momentum_buffer,
            dummy if backup is None else backup, dummy if mask is None else mask, coef.lr,
            coef.momentum, decay.wd, mode, momentum_buffer is not None, first_step, nesterov,
            backup is not None)
    chunks = _chunks(params.size)
    bad = sgd_range(0, params.size, *args) if chunks == 1 else sgd_par(chunks, *args)
    return not check or bad == 0


def rmsprop(params: np.ndarray, grads: np.ndarray, square_avg: np.ndarray,
            grad_avg: np.ndarray | None, momentum_buffer: np.ndarray | None,
            coef: RMSPropCoefficients, decay: Decay, mode: int, mask: np.ndarray | None,
            backup: np.ndarray | None, check: bool, work: list[np.ndarray]) -> bool:
    dummy = _dummy(params.dtype)
    args = (params, grads, square_avg, dummy if grad_avg is None else grad_avg,
            dummy if momentum_buffer is None else momentum_buffer,
            dummy if backup is None else backup, dummy if mask is None else mask, *coef,
            decay.wd, mode, grad_avg is not None, momentum_buffer is not None,
            backup is not None)
    chunks = _chunks(params.size)
    bad = rmsprop_range(0, params.size, *args) if chunks == 1 else rmsprop_par(chunks, *args)
    return not check or bad == 0


# -- layers and loss ------------------------------------------------------------------------


@_serial
def bias_act_rows(lo, hi, x, y, b, has_bias, act, alpha):
    x, y = x[lo:hi], y[lo:hi]
    zero = y.dtype.type(0)
    for r in range(y.shape[0]):
        x_row, y_row = x[r], y[r]
        for j in range(y_row.shape[0]):
            t = x_row[j] + b[j] if has_bias else x_row[j]
            if act == 1:
                t = zero if t < zero else t  # NaN stays NaN, as np.maximum
            elif act == 2 and t <= zero:
                t = t * alpha
            y_row[j] = t


@_parallel
def bias_act_par(chunks, x, y, b, has_bias, act, alpha):
    for c in prange(chunks):
        bias_act_rows(_bound(c, chunks, y.shape[0]), _bound(c + 1, chunks, y.shape[0]), x, y,
                      b, has_bias, act, alpha)


def bias_act(y: np.ndarray, bias: np.ndarray | None, act: int, alpha: float,
             x: np.ndarray | None = None) -> np.ndarray:
    cols = int(np.prod(y.shape[1:]))
    y2 = y.reshape(y.shape[0], cols)  # rows may be 0
    x2 = y2 if x is None else x.reshape(y2.shape)
    args = (x2, y2, _dummy(y.dtype) if bias is None else bias, bias is not None, act,
            y.dtype.type(alpha))
    chunks = min(_chunks(y.size), max(1, y.shape[0] // 16))
    if chunks == 1:
        bias_act_rows(0, y2.shape[0], *args)
    else:
        bias_act_par(chunks, *args)
    return y


@_serial
def relu_backward_rows(lo, hi, g, y, alpha, out, col_sum, want_sum):
    g, y, out = g[lo:hi], y[lo:hi], out[lo:hi]
    one = g.dtype.type(1)
    if want_sum:
        col_sum[:] = 0
    for r in range(g.shape[0]):
        g_row, y_row, out_row = g[r], y[r], out[r]
        for j in range(g_row.shape[0]):
            d = g_row[j] * one if y_row[j] > 0 else g_row[j] * alpha
            out_row[j] = d
            if want_sum:
                col_sum[j] += d


@_parallel
def relu_backward_par(chunks, g, y, alpha, out, col_sums, want_sum):
    for c in prange(chunks):
        relu_backward_rows(_bound(c, chunks, g.shape[0]), _bound(c + 1, chunks, g.shape[0]), g,
                           y, alpha, out, col_sums[c], want_sum)


def relu_backward(grad_out: np.ndarray, y: np.ndarray, alpha: float, out: np.ndarray,
                  col_sum: np.ndarray | None) -> np.ndarray:
    rows, cols = grad_out.shape[0], int(np.prod(grad_out.shape[1:]))
    g2, y2, out2 = (a.reshape(rows, cols) for a in (grad_out, y, out))  # rows may be 0
    chunks = min(_chunks(grad_out.size), max(1, rows // 16))
    want = col_sum is not None
    if chunks == 1:
        sums = _dummy(y.dtype) if col_sum is None else col_sum
        relu_backward_rows(0, rows, g2, y2, y.dtype.type(alpha), out2, sums, want)
        return out
    partial = np.empty((chunks, g2.shape[1] if want else 1), dtype=y.dtype)
    relu_backward_par(chunks, g2, y2, y.dtype.type(alpha), out2, partial, want)
    if col_sum is not None:
        np.sum(partial, axis=0, out=col_sum)
    return out


@_serial
def softmax_xent_rows(z, labels, w, weighted, grad, want_grad, n):
    one = z.dtype.type(1)
    inv_n = one / n
    total = 0.0
    correct = 0
    for r in range(z.shape[0]):
        row = z[r]
        label = labels[r]
        top = row[0]
        best = 0
        for j in range(1, row.shape[0]):
            if row[j] > top:  # the first of equal maxima, as np.argmax
                top = row[j]
                best = j
        correct += best == label
        s = z.dtype.type(0)
        out = grad[r]
        for j in range(row.shape[0]):
            e = math.exp(row[j] - top)
            s += e
            if want_grad:
                out[j] = e  # kept, not recomputed, for the gradient below
        loss = math.log(s) - (row[label] - top)
        total += loss * w[r] if weighted else loss
        if want_grad:
            scale = w[r] / n if weighted else inv_n
            for j in range(row.shape[0]):
                p = out[j] / s
                out[j] = (p - one if j == label else p) * scale
    return total, correct


def softmax_xent(z: np.ndarray, labels: np.ndarray, weights: np.ndarray | None,
                 grad: np.ndarray | None, count: bool = True) -> tuple[float, int]:
    # the count comes with the row maxima at no cost: always computed
    n = int(z.shape[0])
    w = _dummy(z.dtype) if weights is None else weights
    g = z if grad is None else grad  # never written when want_grad is False
    total, correct = softmax_xent_rows(z, labels, w, weights is not None, g, grad is not None,
                                       z.dtype.type(n))
    return float(total) / n, int(correct)


# No compiled batch gather or finiteness check: in bench/profile_kernels.py a compiled row
# copy was no faster than np.take's memcpy (9-17 us against 10-11 us for 128 rows of 784)
# and a compiled finiteness pass about matched the BLAS dot of numnet._checks.all_finite
# (6-8 us for 128x784, 0.8-2.5 ms for 10,000x784: both bound by memory), so
# numnet._kernels calls the NumPy ones on both paths.
