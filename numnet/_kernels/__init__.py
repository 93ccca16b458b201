"""Fused kernels for the per-step element-wise work, on two interchangeable paths.

Every hot element-wise operation of training and inference has two implementations with
one signature:

* :mod:`numnet._kernels.numpy_kernels`, the **reference**: complete, readable NumPy, a
  few in-place passes; always available;
* :mod:`numnet._kernels.numba_kernels`, the **fast path**: each operation fused into one
  compiled pass (numba); installed with ``pip install numnet[fast]``.

The functions below pick the path and prepare the arguments (coefficients rounded to the
dtype once, absent arrays resolved), so both paths compute the same values: the optimiser
updates and the activations bit for bit, the loss and the bias-gradient sums to float
rounding. The test suite runs both.

Which path runs
---------------
``NUMNET_FAST=0`` in the environment, or :func:`set_fast_path(False) <set_fast_path>`:
the NumPy path. ``NUMNET_FAST=1`` / ``set_fast_path(True)``: the compiled path for every
call. Unset, ``auto`` or ``set_fast_path(None)``, when numba is installed: the compiled
path for the work of a large model - ``fit``, ``evaluate`` and ``predict`` of a model of at
least :data:`AUTO_MIN_SIZE` parameters, which declare it with :func:`model_scope` - and,
outside any scope, for single calls on that many entries; the NumPy path for the rest.
Importing numba and loading its cached kernels costs about 0.6 s and 120 MB once per
process (compiling them about 2 s once per machine: they are cached on disk), which only
large problems repay: a small model, such as the README's digits MLP, never imports numba.
The choice depends on the model and the call alone, never on what ran before, so a run
gives the same result bit for bit whatever else the process did. :func:`fast_path` says
which path large work takes.

Compiled kernels run on the calling thread unless :func:`set_kernel_threads`
(``NUMNET_KERNEL_THREADS``) lets them split large arrays; see there why one is the default.

The optimiser updates take the trainer's weight backup and finiteness check with them:
``backup`` (when given) receives the parameters before the update, and the return value
says whether every updated parameter is finite (a NaN or infinite gradient makes its
parameter so too, so this one check covers the gradients as well).
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from types import ModuleType

import numpy as np

from numnet._kernels import numpy_kernels
from numnet._kernels.common import (
    ACTIVATIONS,
    adam_coefficients,
    decay_coefficients,
    decay_mode,
    rmsprop_coefficients,
    sgd_coefficients,
)

ENV_VAR = "NUMNET_FAST"
THREADS_ENV_VAR = "NUMNET_KERNEL_THREADS"
_OFF = ("0", "false", "no", "off", "numpy")
_ON = ("1", "true", "yes", "on", "numba")
_AUTO = ("", "auto")
#: in automatic mode, the fewest parameters of a model (or entries of a single call) for
#: which the compiled path runs (bench/compile_cost.py: numba's start-up against the
#: savings per step measured in bench/profile_kernels.py)
AUTO_MIN_SIZE = 32_768


class _State:
    choice: bool | None = None         # set_fast_path: None = follow the environment
    mode: str | None = None            # "numpy", "numba" (every call) or "auto" (large)
    compiled: ModuleType | None = None  # numnet._kernels.numba_kernels, once imported
    numba_error: str | None = None      # why numba could not be used, once known
    threads: int | None = None          # set_kernel_threads; None = from the environment


def set_fast_path(enabled: bool | None = True) -> None:
    """Run every kernel compiled (True), every kernel in NumPy (False), or choose from
    ``$NUMNET_FAST`` and, by default, by size (None; see the module docstring).

    Raises
    ------
    ImportError
        ``set_fast_path(True)`` when numba is not installed (``pip install numnet[fast]``).
    """
    if enabled is not None and not isinstance(enabled, (bool, np.bool_)):
        raise TypeError(f"set_fast_path expects True, False or None, got {enabled!r}")
    _State.choice = None if enabled is None else bool(enabled)
    _State.mode = None
    if _State.choice and load_numba() is None:
        _State.choice = None
        raise ImportError(f"the compiled fast path needs numba: pip install 'numnet[fast]' "
                          f"({_State.numba_error})")


def set_kernel_threads(threads: int | None) -> None:
    """How many threads a compiled kernel may split a large array over (None: from
    ``$NUMNET_KERNEL_THREADS``, default 1).

    One is the default because a second thread did not pay on a 2-core machine (bench/
    thread_study.py): Adam's update alone went from about 105 to 85 us at best, but after
    the step's matrix products, whose OpenBLAS worker then spins on the other core, two
    threads were never faster (1.12 against 1.20 ms for the products and the update, at
    best); on a busy machine a second thread makes each kernel wait for a core, often for
    milliseconds. The NumPy path always runs on the calling thread.
    """
    if threads is not None and (isinstance(threads, bool)
                                or not isinstance(threads, (int, np.integer)) or threads < 1):
        raise ValueError(f"set_kernel_threads expects an integer >= 1 or None, got {threads!r}")
    _State.threads = None if threads is None else int(threads)
    if _State.compiled is not None:
        _State.compiled.set_threads(kernel_threads())


def kernel_threads() -> int:
    """The threads a compiled kernel may use (see :func:`set_kernel_threads`)."""
    if _State.threads is not None:
        return _State.threads
    value = os.environ.get(THREADS_ENV_VAR, "").strip()
    if not value:
        return 1
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{THREADS_ENV_VAR}={value!r} is not understood: expected a whole "
                         "number of threads >= 1")
    return int(value)


def fast_path() -> str:
    """The path of large calls: ``"numba"`` (compiled) or ``"numpy"`` (the reference).

    In automatic mode this does not import numba: it says whether numba is installed (and
    not known to be broken).
    """
    return "numpy" if _mode() == "numpy" else "numba"


def _wanted() -> bool | None:
    """True/False when the fast path is asked for or refused, None to decide by size."""
    if _State.choice is not None:
        return _State.choice
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value in _AUTO:
        return None
    if value in _OFF:
        return False
    if value in _ON:
        return True
    raise ValueError(f"{ENV_VAR}={os.environ[ENV_VAR]!r} is not understood: expected 0 (NumPy "
                     f"path), 1 (compiled fast path) or auto")


def _mode() -> str:
    if _State.mode is None:
        wanted = _wanted()
        if wanted is None:
            _State.mode = "auto" if numba_installed() else "numpy"
        elif wanted and load_numba() is None:
            warnings.warn(f"{ENV_VAR} asks for the compiled fast path but numba cannot be "
                          f"used ({_State.numba_error}); running the NumPy path",
                          RuntimeWarning, stacklevel=4)
            _State.mode = "numpy"
        else:
            _State.mode = "numba" if wanted else "numpy"
    return _State.mode


_MODEL_SIZE: ContextVar[int] = ContextVar("numnet_kernels_model_size", default=0)


@contextmanager
def model_scope(num_params: int) -> Iterator[None]:
    """Calls inside run for a model of ``num_params`` parameters: in automatic mode they
    take the compiled path when the model is large, however small each call (a loss on
    128 x 10 logits, a layer 128 units wide), and the NumPy path when it is small, however
    large each call (predicting 10,000 rows at once). ``fit`` and ``predict`` open one."""
    token = _MODEL_SIZE.set(int(num_params))
    try:
        yield
    finally:
        _MODEL_SIZE.reset(token)


def _backend(size: int, *arrays: np.ndarray) -> ModuleType:
    """The kernels for a call on ``size`` entries; ``arrays`` must be C-contiguous, at
    least 1-d and in native byte order for the compiled path (which views them as rows and
    types them once), else the NumPy path takes any array."""
    mode = _State.mode or _mode()
    small = (_MODEL_SIZE.get() or size) < AUTO_MIN_SIZE
    if mode == "numpy" or (mode == "auto" and small) \
            or not all(a.flags.c_contiguous and a.ndim and a.dtype.isnative for a in arrays):
        return numpy_kernels
    compiled = _State.compiled or load_numba()
    if compiled is None:  # installed, but it does not import
        warnings.warn(f"numba is installed but cannot be used ({_State.numba_error}); "
                      "running the NumPy path", RuntimeWarning, stacklevel=3)
        _State.mode = "numpy"
        return numpy_kernels
    return compiled


def numba_installed() -> bool:
    """Whether numba can be found (without importing it)."""
    return _State.compiled is not None or importlib.util.find_spec("numba") is not None


def load_numba() -> ModuleType | None:
    """The compiled kernels' module, or None when numba is missing or broken."""
    if _State.compiled is not None:
        return _State.compiled
    try:
        # numba is optional (the "fast" extra) and takes tenths of a second to import:
        # only on the first large kernel call, never at ``import numnet``
        from numnet._kernels import numba_kernels  # noqa: PLC0415
    except ImportError as exc:
        _State.numba_error = f"{type(exc).__name__}: {exc}"
        return None
    numba_kernels.set_threads(kernel_threads())
    _State.compiled = numba_kernels
    return numba_kernels


# -- optimiser updates --------------------------------------------------------------------


def adam_step(params: np.ndarray, grads: np.ndarray, exp_avg: np.ndarray,
              exp_avg_sq: np.ndarray, *, lr: float, betas: Sequence[float], eps: float,
              step: int, weight_decay: float = 0.0, decoupled: bool = False,
              decay: np.ndarray | None = None, backup: np.ndarray | None = None,
              check: bool = True, work: list[np.ndarray] | None = None) -> bool:
    """One Adam (``decoupled=False``) or AdamW step on flat vectors, in place.

    ``params``, ``grads``, ``exp_avg`` and ``exp_avg_sq`` are 1-d contiguous vectors of one
    float dtype; ``step`` counts from 1. ``decay`` is None (every entry decays when
    ``weight_decay > 0``) or a 0/1 vector of the dtype. ``backup`` receives the parameters
    from before the step. ``work`` is a list the caller keeps for the NumPy path's scratch
    vectors. Returns whether every updated parameter is finite (True when ``check`` is
    False). The formulas are :class:`numnet.optim.Adam`'s and :class:`~numnet.optim.AdamW`'s.
    """
    dtype = params.dtype
    coef = adam_coefficients(lr, betas[0], betas[1], eps, step, dtype)
    return bool(_backend(params.size).adam(
        params, grads, exp_avg, exp_avg_sq, coef, decay_coefficients(lr, weight_decay, dtype),
        decay_mode(weight_decay, decay, decoupled), decay, backup, check,
        [] if work is None else work))


def sgd_step(params: np.ndarray, grads: np.ndarray, momentum_buffer: np.ndarray | None, *,
             lr: float, momentum: float = 0.0, nesterov: bool = False, first_step: bool = False,
             weight_decay: float = 0.0, decay: np.ndarray | None = None,
             backup: np.ndarray | None = None, check: bool = True,
             work: list[np.ndarray] | None = None) -> bool:
    """One SGD step (:class:`numnet.optim.SGD`); ``momentum_buffer`` is None without
    momentum, and ``first_step`` makes it a copy of the gradient. Other arguments and the
    result as in :func:`adam_step`."""
    dtype = params.dtype
    return bool(_backend(params.size).sgd(
        params, grads, momentum_buffer, sgd_coefficients(lr, momentum, dtype), first_step,
        nesterov, decay_coefficients(lr, weight_decay, dtype),
        decay_mode(weight_decay, decay, False), decay, backup, check,
        [] if work is None else work))


def rmsprop_step(params: np.ndarray, grads: np.ndarray, square_avg: np.ndarray,
                 grad_avg: np.ndarray | None, momentum_buffer: np.ndarray | None, *,
                 lr: float, alpha: float, eps: float, momentum: float = 0.0,
                 weight_decay: float = 0.0, decay: np.ndarray | None = None,
                 backup: np.ndarray | None = None, check: bool = True,
                 work: list[np.ndarray] | None = None) -> bool:
    """One RMSProp step (:class:`numnet.optim.RMSProp`); ``grad_avg`` is given when
    centred, ``momentum_buffer`` with momentum. Other arguments as in :func:`adam_step`."""
    dtype = params.dtype
    return bool(_backend(params.size).rmsprop(
        params, grads, square_avg, grad_avg, momentum_buffer,
        rmsprop_coefficients(lr, alpha, eps, momentum, dtype), decay_coefficients(
            lr, weight_decay, dtype), decay_mode(weight_decay, decay, False), decay, backup,
        check, [] if work is None else work))


# -- layers and loss ------------------------------------------------------------------------


def memory_order(*arrays: np.ndarray) -> tuple[np.ndarray, ...] | None:
    """C-contiguous views of ``arrays`` in the order their values lie in memory, when they
    share one shape and one dense layout (C-contiguous, or a transpose of it: channels-last
    images seen as ``(N, C, H, W)`` are ``x.transpose(0, 2, 3, 1)``); else None.

    An element-wise kernel may then run over the views, whose rows are long runs of
    memory, and leave its result in the original arrays' shape and layout.
    """
    first = arrays[0]
    if any(a.shape != first.shape for a in arrays):
        return None
    if all(a.flags.c_contiguous for a in arrays):
        return arrays
    # the axes from the largest stride to the smallest (stable: size-1 axes keep their place)
    order = sorted(range(first.ndim), key=lambda axis: -first.strides[axis])
    views = tuple(a.transpose(order) for a in arrays)
    if all(v.flags.c_contiguous and a.strides == first.strides
           for v, a in zip(views, arrays, strict=True)):
        return views
    return None


def bias_act(y: np.ndarray, bias: np.ndarray | None, activation: str = "linear",
             alpha: float = 0.0) -> np.ndarray:
    """``y <- activation(y + bias)`` in place and return ``y``, shape ``(N, C)``.

    ``activation`` is ``"linear"``, ``"relu"`` (``max(t, 0)``, NaN kept) or ``"leaky_relu"``
    (``alpha * t`` where ``t <= 0``).
    """
    kernels = _backend(y.size, y)
    return kernels.bias_act(y, bias, ACTIVATIONS[activation], alpha)  # type: ignore[no-any-return]


def activate(x: np.ndarray, activation: str = "relu", alpha: float = 0.0) -> np.ndarray:
    """``activation(x)`` (as :func:`bias_act` names them) into a new array of ``x``'s shape
    and memory layout, in one pass over ``x`` in the order of its memory."""
    out = np.empty_like(x)  # keeps x's layout (channels-last images stay so)
    views = memory_order(x, out)
    if views is None:  # a strided view: the NumPy path, in any layout
        return numpy_kernels.bias_act(out, None, ACTIVATIONS[activation], alpha, x)
    x_mem, out_mem = views
    _backend(x.size, x_mem, out_mem).bias_act(out_mem, None, ACTIVATIONS[activation], alpha,
                                              x_mem)
    return out


def relu_backward(grad_out: np.ndarray, y: np.ndarray, alpha: float = 0.0,
                  out: np.ndarray | None = None,
                  bias_grad: np.ndarray | None = None) -> np.ndarray:
    """``grad_out`` where ``y > 0``, ``alpha * grad_out`` elsewhere (``alpha = 0``: ReLU).

    ``y`` may be the activation's input or its output (same sign for ``alpha >= 0``);
    arrays have the batch first. ``out`` may be ``grad_out`` itself when the caller owns
    it; when not given it takes ``grad_out``'s memory layout. ``bias_grad`` (optional,
    shape ``grad_out.shape[1:]`` flattened, C-contiguous arrays only) receives
    ``out.sum(axis=0)`` from the same pass: the bias gradient of a Dense layer just before
    the activation.
    """
    if out is None:
        out = np.empty_like(grad_out)
    views = memory_order(grad_out, y, out) if bias_grad is None else None
    if views is not None and views[0] is not grad_out:  # same layout, in memory order
        g_mem, y_mem, out_mem = views
        _backend(grad_out.size, g_mem, y_mem, out_mem).relu_backward(
            g_mem, y_mem, alpha, out_mem, None)
        return out
    return _backend(grad_out.size, grad_out, y, out).relu_backward(  # type: ignore[no-any-return]
        grad_out, y, alpha, out, bias_grad)


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray,
                          weights: np.ndarray | None = None,
                          grad: np.ndarray | None = None,
                          count: bool = True) -> tuple[float, int]:
    """Mean softmax cross-entropy of ``logits`` (N, C) for integer ``labels`` (N,) in [0, C),
    and the number of rows whose largest logit (the first, on ties) is at the label.

    ``l_n = log(sum_c exp(z_nc - m_n)) - (z_{n,y_n} - m_n)``, ``m_n = max_c z_nc``; the loss
    is ``mean(w * l)`` (``w = 1`` by default). When ``grad`` (N, C) is given it receives
    ``dL/dz = (softmax(z) - onehot(y)) * w_n / N`` in the same pass. Non-finite logits give
    a non-finite loss (no exception: the caller checks the loss). ``count=False``: the
    count may be skipped (-1) where it costs a pass (the NumPy path).
    """
    loss, correct = _backend(logits.size).softmax_xent(logits, labels, weights, grad, count)
    return float(loss), int(correct)


def gather_rows(x: np.ndarray, index: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[:m] = x[index]`` (rows; ``m = len(index)``), returning the view ``out[:m]``.

    ``x`` and ``out`` have the same row shape; ``index`` holds valid row numbers (not
    checked). NumPy's ``take`` on both paths: a compiled row copy was no faster
    (bench/profile_kernels.py).
    """
    return numpy_kernels.gather_rows(x, index, out)


def all_finite(x: np.ndarray) -> bool:
    """Whether the float array ``x`` holds only finite numbers.

    One BLAS dot on both paths (``numnet._checks.all_finite``): a compiled pass was no
    faster, both being bound by memory (bench/profile_kernels.py).
    """
    return numpy_kernels.all_finite(x)


__all__ = [
    "AUTO_MIN_SIZE",
    "ENV_VAR",
    "THREADS_ENV_VAR",
    "adam_step",
    "all_finite",
    "bias_act",
    "fast_path",
    "gather_rows",
    "kernel_threads",
    "load_numba",
    "model_scope",
    "relu_backward",
    "rmsprop_step",
    "set_fast_path",
    "set_kernel_threads",
    "sgd_step",
    "softmax_cross_entropy",
]

