"""Sizes checked against the memory available, before anything is allocated.

A size nobody can allocate (``Dense(64, 10**9)``, a model file declaring a (10^6, 10^6)
array, a batch of 10^12 samples) must give a clear error naming what asked for it, not a
raw :class:`MemoryError` from NumPy, or worse, an allocation that Linux grants lazily and
the out-of-memory killer ends later. :func:`check_bytes` compares a request with
:func:`available_bytes`:

* ``MemAvailable`` of ``/proc/meminfo`` plus free swap (Linux), else
  ``os.sysconf("SC_AVPHYS_PAGES")`` pages (other POSIX systems);
* capped by a cgroup's memory limit (a container) when one is set;
* when none of these can be read, only sizes beyond what any machine addresses (2**63
  bytes) are refused.

Requests below :data:`SMALL` bytes are never checked: they are the common case, and
reading ``/proc/meminfo`` for each would slow down building small models.

Sizes are computed with Python integers (:func:`nbytes`), which cannot overflow as
``np.prod`` of a large shape does.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from numnet.errors import AllocationError

#: requests below this many bytes are not checked (64 MiB)
SMALL = 1 << 26
#: beyond any machine's address space
ADDRESSABLE = 1 << 63

_CGROUP_FILES = (
    (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory.current")),  # v2
    (Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
     Path("/sys/fs/cgroup/memory/memory.usage_in_bytes")),  # v1
)


def nbytes(shape: Sequence[int], dtype: Any) -> int:
    """Bytes of an array of ``shape`` and ``dtype``, exactly (no integer overflow)."""
    return math.prod(int(d) for d in shape) * int(np.dtype(dtype).itemsize)


def available_bytes() -> int | None:
    """Memory this process can still allocate, in bytes; None when it cannot be told."""
    found = _meminfo()
    if found is None:
        found = _sysconf()
    limit = _cgroup_room()
    if limit is not None:
        found = limit if found is None else min(found, limit)
    return found


def _meminfo() -> int | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    fields: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[name] = int(parts[0]) * 1024  # the values are in kB
    if "MemAvailable" not in fields:
        return None
    return fields["MemAvailable"] + fields.get("SwapFree", 0)


def _sysconf() -> int | None:
    try:
        pages, size = os.sysconf("SC_AVPHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * size if pages > 0 and size > 0 else None


def _cgroup_room() -> int | None:
    """A container's memory limit minus what it uses, when a limit is set."""
    for limit_file, usage_file in _CGROUP_FILES:
        try:
            limit_text = limit_file.read_text().strip()
            usage = int(usage_file.read_text().strip())
        except (OSError, ValueError):
            continue
        if not limit_text.isdigit() or int(limit_text) >= ADDRESSABLE // 2:
            return None  # "max", or v1's "no limit" (a huge number)
        return max(int(limit_text) - usage, 0)
    return None


def human(size: int) -> str:
    """``256 GB``, ``1.5 MB``: a size in bytes as it reads in a message (powers of 1000)."""
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if value < 1000 or unit == "PB":
            if unit == "bytes":
                return f"{int(value)} bytes"
            return f"{value:.3g} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def check_bytes(size: int, what: str) -> None:
    """Raise :class:`AllocationError` when ``size`` bytes cannot be allocated.

    ``what`` says who needs them and why, e.g. ``"Dense(64, 1000000000) needs 256 GB for
    its weight W (64 x 1000000000 float32)"``; the message adds what is available.
    """
    if size < SMALL:
        return
    if size >= ADDRESSABLE:
        raise AllocationError(f"{what}, more than any machine can address")
    available = available_bytes()
    if available is not None and size > available:
        raise AllocationError(f"{what}, more than the {human(available)} of memory available "
                              "on this machine")


def shape_text(shape: Sequence[int], dtype: Any) -> str:
    """``64 x 1000000000 float32``: a shape and dtype for a message."""
    dims = " x ".join(str(int(d)) for d in shape) or "a scalar"
    return f"{dims} {np.dtype(dtype).name}"


def check_array(shape: Sequence[int], dtype: Any, what: str, copies: int = 1,
                why: str = "") -> None:
    """Refuse ``copies`` arrays of ``shape`` and ``dtype`` that cannot be allocated.

    ``what`` names the array (``"Dense(64, 10): its parameter W"``) and ``why`` says what
    the copies are (``"with its gradient"``).
    """
    one = nbytes(shape, dtype)
    total = f", {human(one * copies)} {why}" if copies > 1 else ""
    check_bytes(one * copies, f"{what} ({shape_text(shape, dtype)}) needs {human(one)}{total}")


def check_batch(layers: Sequence[Any], sample_shape: Sequence[int], batch: int,
                dtype: Any, what: str) -> None:
    """Refuse a batch whose pass through ``layers`` cannot fit in memory.

    The forward pass of training keeps every layer's output for the backward pass, which
    adds the gradient of the largest: ``batch x (input + every output + the largest)``
    numbers of ``dtype``. ``what`` names the batch (``"fit: a batch of 32 samples"``).
    """
    shape = tuple(int(d) for d in sample_shape)
    sizes = [math.prod(shape)]
    for layer in layers:
        shape = tuple(layer.output_shape(shape))
        sizes.append(math.prod(shape))
    per_sample = sum(sizes) + max(sizes)
    size = int(batch) * per_sample * np.dtype(dtype).itemsize
    check_bytes(size, f"{what} needs {human(size)} for its activations and gradients "
                      f"({per_sample} {np.dtype(dtype).name} numbers per sample)")
