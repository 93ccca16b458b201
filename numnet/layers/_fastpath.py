"""Whether a layer takes its compiled fast path (numba) or the NumPy reference path.

``NUMNET_FAST=0`` (or ``false``, ``no``, ``off``, ``numpy``) in the environment: the NumPy
path always. ``NUMNET_FAST=1`` (``true``, ``yes``, ``on``, ``numba``): the compiled path for
every call it supports (a warning and the NumPy path when numba cannot be imported).
Unset or ``auto``: the compiled path for calls on at least :data:`AUTO_MIN_SIZE` values
when numba is installed, the NumPy path otherwise, so small work (the gradient checks, a
digits model) never pays numba's import (tenths of a second) or its first compilation.

The choice depends on the environment and the call alone, and both paths give the same
numbers bit for bit (tested), so a run is reproducible whichever path it takes.

The compiled loops run on the calling thread unless ``numnet._kernels.set_kernel_threads`` or
``NUMNET_KERNEL_THREADS`` (default 1)
allows more: they then split the batch over that many threads. One is the default, as for
numnet's other compiled kernels: on a 2-core machine the OpenBLAS worker that a matrix
product leaves spinning holds the second core, and on a busy machine a kernel that waits
for a second thread can take many times as long (measured: 240 ms instead of 1.4 ms for
col2im under a load of 17 on 2 cores).
"""

from __future__ import annotations

import importlib.util
import warnings
from types import ModuleType

from numnet import _kernels

ENV_VAR = _kernels.ENV_VAR
#: in automatic mode, the fewest input values for which a pool takes the compiled path
#: (a 2x2 max pool over 32 channels of 26x26 images, batch 128, has 2.8 million)
AUTO_MIN_SIZE = 1 << 16


class _State:
    kernels: ModuleType | None = None
    error: str | None = None  # why numba could not be imported, once known
    warned = False
    threads = 0  # the thread count last given to numba


def _wanted() -> bool | None:
    """True/False when the compiled path is asked for / refused, else None (automatic):
    ``numnet.set_fast_path`` first, then ``$NUMNET_FAST``, one switch for every kernel."""
    return _kernels._wanted()


def kernel_threads() -> int:
    """The threads a compiled loop may use: ``numnet._kernels.set_kernel_threads`` first, then
    ``$NUMNET_KERNEL_THREADS``, default 1 (the same setting as every compiled kernel's)."""
    return _kernels.kernel_threads()


def _load() -> ModuleType | None:
    if _State.kernels is None and _State.error is None:
        try:
            # numba is optional (the "fast" extra) and slow to import: only on first use
            from numnet.layers import _spatial_numba  # noqa: PLC0415
        except ImportError as exc:
            _State.error = f"{type(exc).__name__}: {exc}"
        else:
            _State.kernels = _spatial_numba
    if _State.kernels is not None:
        threads = min(kernel_threads(), _State.kernels.max_threads())
        if threads != _State.threads:
            _State.kernels.set_threads(threads)
            _State.threads = threads
    return _State.kernels


def loaded_kernels() -> ModuleType:
    """The compiled loops, once a call has loaded them (a layer that ran one already)."""
    kernels = _load()
    if kernels is None:
        raise RuntimeError(f"numba's compiled loops are not available ({_State.error})")
    return kernels


def spatial_kernels(size: int) -> ModuleType | None:
    """The compiled loops of :mod:`numnet.layers._spatial_numba` for a call on ``size``
    input values, or None for the NumPy path."""
    wanted = _wanted()
    if wanted is False:
        return None
    if wanted is None and (size < AUTO_MIN_SIZE or _State.error is not None
                           or (_State.kernels is None
                               and importlib.util.find_spec("numba") is None)):
        return None
    kernels = _load()
    if kernels is None and wanted and not _State.warned:
        _State.warned = True
        warnings.warn(f"{ENV_VAR} asks for the compiled fast path but numba cannot be used "
                      f"({_State.error}); running the NumPy path", RuntimeWarning, stacklevel=3)
    return kernels
