"""The NumPy kernels: the reference every compiled kernel is tested against.

Each function is a short sequence of in-place ufunc calls with ``out=`` (no temporaries
beyond the caller's ``work`` buffers), written in the order of operations of PyTorch's
single-tensor CPU code, so the values are those of ``numnet.optim`` today. Arguments are
already prepared by :mod:`numnet._kernels` (coefficients rounded to the dtype, the decay
mode worked out); see that module for what each argument means.

``work`` is a list the caller keeps between calls: the scratch vectors a kernel needs are
appended to it the first time and reused afterwards (the compiled path needs none, so a
model trained on it never allocates them).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import numpy as np

from numnet._checks import all_finite as _all_finite_flat
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

P = ParamSpec("P")
R = TypeVar("R")


def _quiet(kernel: Callable[P, R]) -> Callable[P, R]:
    """No overflow/invalid warnings: a non-finite loss is reported by its value, as the
    compiled path does, which never warns. (The optimiser updates are not wrapped: an
    errstate per step costs more than the update of a small model, and ``fit``'s guard
    silences them already, reporting a non-finite update by the kernel's return value.)"""
    @functools.wraps(kernel)
    def quiet(*args: P.args, **kwargs: P.kwargs) -> R:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return kernel(*args, **kwargs)
    return quiet


# -- optimiser updates ----------------------------------------------------------------------


def _work(work: list[np.ndarray], count: int, like: np.ndarray) -> list[np.ndarray]:
    """``count`` scratch vectors the shape and dtype of ``like``, kept in ``work``."""
    if work and (work[0].shape != like.shape or work[0].dtype != like.dtype):
        work.clear()
    while len(work) < count:
        work.append(np.empty_like(like))
    return work


def _begin(params: np.ndarray, backup: np.ndarray | None) -> None:
    if backup is not None:
        np.copyto(backup, params)


def _decayed_grad(params: np.ndarray, grads: np.ndarray, decay: Decay, mode: int,
                  mask: np.ndarray | None, out: np.ndarray) -> np.ndarray:
    """``g + (p * wd) * mask`` into ``out`` for coupled decay; ``grads`` itself otherwise."""
    if mode not in (COUPLED_ALL, COUPLED_MASK):
        return grads
    np.multiply(params, decay.wd, out=out)
    if mode == COUPLED_MASK and mask is not None:
        out *= mask
    out += grads
    return out


def _decoupled_decay(params: np.ndarray, decay: Decay, mode: int, mask: np.ndarray | None,
                     out: np.ndarray) -> None:
    """``p <- p * (1 - lr * wd)`` (AdamW) on every entry, or where ``mask`` is 1."""
    if mode == DECOUPLED_ALL:
        params *= decay.shrink
    elif mode == DECOUPLED_MASK and mask is not None:
        np.multiply(mask, decay.neg_lr_wd, out=out)
        out += params.dtype.type(1)  # 1 - lr*wd where decayed, exactly 1 elsewhere
        params *= out


def adam(params: np.ndarray, grads: np.ndarray, exp_avg: np.ndarray, exp_avg_sq: np.ndarray,
         coef: AdamCoefficients, decay: Decay, mode: int, mask: np.ndarray | None,
         backup: np.ndarray | None, check: bool, work: list[np.ndarray]) -> bool:
    """Adam/AdamW in 12 passes (13-15 with decay); see ``numnet._kernels.adam_step``."""
    a, b = _work(work, 2, params)[:2]
    _begin(params, backup)
    _decoupled_decay(params, decay, mode, mask, a)
    g = _decayed_grad(params, grads, decay, mode, mask, b)
    np.subtract(g, exp_avg, out=a)                # m.lerp_(g, 1 - beta1)
    a *= coef.one_minus_beta1
    exp_avg += a
    np.multiply(g, coef.one_minus_beta2, out=a)   # v*beta2 + ((1-beta2)*g)*g
    a *= g
    exp_avg_sq *= coef.beta2
    exp_avg_sq += a
    np.sqrt(exp_avg_sq, out=a)
    a += coef.eps_hat
    np.divide(exp_avg, a, out=b)
    b *= coef.scale
    params -= b
    return not check or _all_finite_flat(params)


def sgd(params: np.ndarray, grads: np.ndarray, momentum_buffer: np.ndarray | None,
        coef: SGDCoefficients, first_step: bool, nesterov: bool, decay: Decay, mode: int,
        mask: np.ndarray | None, backup: np.ndarray | None, check: bool,
        work: list[np.ndarray]) -> bool:
    """SGD with optional (Nesterov) momentum; see ``numnet._kernels.sgd_step``."""
    coupled = mode in (COUPLED_ALL, COUPLED_MASK)
    a, *b = _work(work, 1 + coupled, params)[:1 + coupled]
    _begin(params, backup)
    g = _decayed_grad(params, grads, decay, mode, mask, b[0]) if coupled else grads
    if momentum_buffer is not None:
        if first_step:
            np.copyto(momentum_buffer, g)
        else:
            momentum_buffer *= coef.momentum
            momentum_buffer += g
        if nesterov:
            np.multiply(momentum_buffer, coef.momentum, out=a)
            a += g
            g = a
        else:
            g = momentum_buffer
    np.multiply(g, coef.lr, out=a)  # into scratch: the gradient is not touched
    params -= a
    return not check or _all_finite_flat(params)


def rmsprop(params: np.ndarray, grads: np.ndarray, square_avg: np.ndarray,
            grad_avg: np.ndarray | None, momentum_buffer: np.ndarray | None,
            coef: RMSPropCoefficients, decay: Decay, mode: int, mask: np.ndarray | None,
            backup: np.ndarray | None, check: bool, work: list[np.ndarray]) -> bool:
    """RMSProp, optionally centred and with momentum; see ``numnet._kernels.rmsprop_step``."""
    coupled = mode in (COUPLED_ALL, COUPLED_MASK)
    needed = 1 + coupled + (momentum_buffer is None)
    den, *more = _work(work, needed, params)[:needed]
    _begin(params, backup)
    g = _decayed_grad(params, grads, decay, mode, mask, more.pop()) if coupled else grads
    np.multiply(g, coef.one_minus_alpha, out=den)  # v*alpha + ((1-alpha)*g)*g
    den *= g
    square_avg *= coef.alpha
    square_avg += den
    if grad_avg is not None:
        np.subtract(g, grad_avg, out=den)
        den *= coef.one_minus_alpha
        grad_avg += den
        np.multiply(grad_avg, grad_avg, out=den)
        np.subtract(square_avg, den, out=den)
        np.sqrt(den, out=den)
    else:
        np.sqrt(square_avg, out=den)
    den += coef.eps
    if momentum_buffer is not None:
        momentum_buffer *= coef.momentum
        np.divide(g, den, out=den)
        momentum_buffer += den
        np.multiply(momentum_buffer, coef.lr, out=den)
    else:
        step = more[0]
        np.multiply(g, coef.lr, out=step)  # (lr * g) / den, as torch's addcdiv
        np.divide(step, den, out=den)
    params -= den
    return not check or _all_finite_flat(params)


# -- layers and loss ------------------------------------------------------------------------


def bias_act(y: np.ndarray, bias: np.ndarray | None, act: int, alpha: float,
             x: np.ndarray | None = None) -> np.ndarray:
    """``y <- act(x + bias)`` (act 0 linear, 1 ReLU, 2 leaky ReLU); ``x`` is ``y`` (in
    place) when not given, else an array of ``y``'s shape."""
    source = y if x is None else x
    if bias is not None:
        np.add(source, bias, out=y)
        source = y
    if act == 1:
        # against a row of zeros NumPy runs its vectorised loop (twice the speed of scalar 0)
        np.maximum(source, np.zeros(y.shape[-1:], dtype=y.dtype), out=y)
    elif act == 2:
        if source is not y:
            np.copyto(y, source)
        np.multiply(y, y.dtype.type(alpha), out=y, where=y <= 0)
    elif source is not y:
        np.copyto(y, source)
    return y


def relu_backward(grad_out: np.ndarray, y: np.ndarray, alpha: float, out: np.ndarray,
                  col_sum: np.ndarray | None) -> np.ndarray:
    """``out = grad_out * [y > 0]`` (``alpha * grad_out`` where ``y <= 0`` for leaky);
    ``col_sum`` (optional) receives the sums of ``out`` over the batch axis."""
    positive = y > 0
    if alpha == 0:
        np.multiply(grad_out, positive, out=out)
    else:
        np.multiply(grad_out, y.dtype.type(alpha), out=out, where=~positive)
        if out is not grad_out:
            np.copyto(out, grad_out, where=positive)
    if col_sum is not None:
        np.sum(out.reshape(out.shape[0], col_sum.size), axis=0, out=col_sum)  # 0 rows: 0
    return out


@_quiet
def softmax_xent(z: np.ndarray, labels: np.ndarray, weights: np.ndarray | None,
                 grad: np.ndarray | None, count: bool = True) -> tuple[float, int]:
    """Mean softmax cross-entropy of logits ``z`` (N, C) for integer ``labels``, and how many
    rows have their label as the (first) largest logit.

    ``l_n = log(sum_c exp(z_nc - m_n)) - (z_{n,y_n} - m_n)`` with ``m_n = max_c z_nc``; the
    loss is ``mean(w * l)``. When ``grad`` is given it receives
    ``(softmax(z) - onehot(labels)) * w_n / N``.
    """
    n = z.shape[0]
    rows = np.arange(n)
    correct = int(np.count_nonzero(z.argmax(axis=1) == labels)) if count else -1
    top = z.max(axis=1, keepdims=True)
    e = np.subtract(z, top, out=grad) if grad is not None else z - top
    picked = e[rows, labels]  # z_y - m, before e is exponentiated in place
    np.exp(e, out=e)
    total = e.sum(axis=1)
    per_sample = np.log(total)
    per_sample -= picked
    if weights is not None:
        per_sample *= weights
    loss = float(per_sample.mean())
    if grad is not None:
        e /= total[:, None]
        e[rows, labels] -= 1
        if weights is None:
            e *= z.dtype.type(1 / n)
        else:
            e *= (weights / z.dtype.type(n))[:, None]
    return loss, correct


def gather_rows(x: np.ndarray, index: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[i] = x[index[i]]`` for the first ``len(index)`` rows of ``out``."""
    # mode="clip" skips the buffered bounds check; the indices are in range by construction
    return np.take(x, index, axis=0, out=out[:index.shape[0]], mode="clip")


def all_finite(x: np.ndarray) -> bool:
    """Whether the contiguous float array ``x`` holds only finite numbers."""
    return _all_finite_flat(x.reshape(-1))
