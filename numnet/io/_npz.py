"""Reading the arrays of an ``.npz`` archive without trusting it.

:func:`numpy.load` allocates whatever an array's ``.npy`` header declares before reading
its data, so a few hundred bytes declaring a (10^6, 10^6) array end in a MemoryError (or
an allocation the kernel grants lazily and kills later), and it leaves the zip checksums
of arrays it does not read to the end unchecked. Here every entry's header is read first:
its dtype must be numeric (never pickled objects), its declared size must match the
entry's size in the archive and fit in the memory available, all before anything is
allocated; then each array is read in chunks, to its end, so its CRC is checked.
"""

from __future__ import annotations

import math
import struct
import tokenize
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
from numpy.lib import format as npy

from numnet._memory import check_array, check_bytes, human, shape_text
from numnet.errors import AllocationError
from numnet.io._format import ModelFileError

#: how much of an array is read at a time
CHUNK = 1 << 24
#: what a damaged archive can raise from the zip reader or the decompressor
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError,
              NotImplementedError, RuntimeError, struct.error, UnicodeDecodeError,
              ValueError, OverflowError, OSError)
#: the .npy header readers by format version
HEADER_READERS = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}

Spec = tuple[tuple[int, ...], bool, np.dtype]


def read_arrays(path: Path, header_key: str) -> dict[str, np.ndarray]:
    """Every array of the archive at ``path`` by name (without ``.npy``), checked.

    Raises
    ------
    ModelFileError
        For anything wrong with the archive or one of its arrays, naming it; a size
        that does not fit in memory is an :class:`~numnet.errors.AllocationError` named
        so.
    PermissionError
        When the file cannot be read at all.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            specs = _entries(path, archive, header_key)
            return {name: _read(path, archive, info, name, spec)
                    for name, (info, spec) in specs.items()}
    except (ModelFileError, PermissionError):
        raise
    except ZIP_ERRORS as exc:
        raise ModelFileError(path, f"corrupt or truncated file ({type(exc).__name__}: "
                                   f"{exc})") from exc


def _entries(path: Path, archive: zipfile.ZipFile, header_key: str
             ) -> dict[str, tuple[zipfile.ZipInfo, Spec]]:
    """Each entry's name and checked .npy header, before any array is allocated."""
    found: dict[str, tuple[zipfile.ZipInfo, Spec]] = {}
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            raise ModelFileError(path, f"not a numnet model file (the archive holds "
                                       f"{info.filename!r}, which is not a .npy array)")
        name = info.filename[:-len(".npy")]
        if name in found:
            raise ModelFileError(path, f"the archive holds two arrays named {name!r}")
        with archive.open(info) as member:
            spec = _header(path, member, name)
            data = info.file_size - member.tell()
        shape, _, dtype = spec
        declared = math.prod(shape) * dtype.itemsize
        if declared != data:
            raise ModelFileError(path, f"array {name} declares {shape_text(shape, dtype)}, "
                                       f"{human(declared)}, but its entry holds "
                                       f"{human(max(data, 0))} of data (the file is corrupt "
                                       "or truncated)")
        with _within_memory(path):
            check_array(shape, dtype, f"array {name}")
        found[name] = (info, spec)
    if header_key not in found:
        raise ModelFileError(path, f"not a numnet model file (an .npz archive without the "
                                   f"{header_key} header)")
    total = sum(math.prod(s) * d.itemsize for _, (s, _, d) in found.values())
    with _within_memory(path):
        check_bytes(total, f"the {len(found)} arrays of the file need {human(total)} "
                           "together")
    return found


def _header(path: Path, member: IO[bytes], name: str) -> Spec:
    """The shape, order and dtype an entry's .npy header declares; numbers only."""
    try:
        version = npy.read_magic(member)
        reader = HEADER_READERS.get(version)
        if reader is None:
            raise ValueError(f".npy format version {version} is not one numnet writes")
        with warnings.catch_warnings():  # "created on Python 2", "invalid escape
            warnings.simplefilter("ignore")  # sequence" in a mangled header: judged below
            shape, fortran, dtype = reader(member)
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError, OverflowError,
            tokenize.TokenError) as exc:  # NumPy parses the header as Python literals
        raise ModelFileError(path, f"array {name} has an invalid .npy header ({exc})") from exc
    if dtype.hasobject:
        raise ModelFileError(path, f"not a numnet model file (array {name} holds pickled "
                                   "objects, and numnet never unpickles)")
    if dtype.kind not in "biuf" or dtype.subdtype is not None:
        raise ModelFileError(path, f"array {name} has dtype {dtype}, but a numnet model file "
                                   "holds numbers only")
    if any(d < 0 for d in shape):
        raise ModelFileError(path, f"array {name} has an invalid .npy header (shape {shape})")
    return tuple(int(d) for d in shape), bool(fortran), dtype


@contextmanager
def _within_memory(path: Path) -> Iterator[None]:
    """A size that does not fit in memory is a ModelFileError: the file cannot be read on
    this machine."""
    try:
        yield
    except AllocationError as exc:
        raise ModelFileError(path, str(exc)) from None


def _read(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str,
          spec: Spec) -> np.ndarray:
    """The array of one entry, read in chunks to the end of the entry (checking its CRC)."""
    shape, fortran, dtype = spec
    with archive.open(info) as member, _reading(path, name):
        _header(path, member, name)
        flat = np.empty(math.prod(shape), dtype=dtype)
        view = memoryview(flat.view(np.uint8))  # type: ignore[arg-type]
        filled = 0
        while filled < len(view):
            count = member.readinto(view[filled:filled + CHUNK])  # type: ignore[attr-defined]
            if not count:
                raise ModelFileError(path, f"array {name} is truncated: "
                                           f"{human(filled)} of {human(len(view))}")
            filled += count
        if member.read(1):  # also makes zipfile check the CRC at the end of the entry
            raise ModelFileError(path, f"array {name} has data after its end")
    return flat.reshape(shape, order="F" if fortran else "C")


@contextmanager
def _reading(path: Path, name: str) -> Iterator[None]:
    """Name the array in the error of a damaged entry."""
    try:
        yield
    except (ModelFileError, PermissionError):
        raise
    except ZIP_ERRORS as exc:
        raise ModelFileError(path, f"array {name} is corrupt ({type(exc).__name__}: "
                                   f"{exc})") from exc
