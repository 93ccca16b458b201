"""Read and write IDX files, the binary format MNIST and Fashion-MNIST ship in.

An IDX file is a 4-byte magic number ``00 00 <dtype code> <rank>``, then ``rank``
big-endian uint32 dimensions, then the array in C order, big-endian. Files whose name
ends in ``.gz`` are gzip-compressed.

This module also holds :func:`data_error`, which the rest of :mod:`numnet.data` shares;
files are written with numnet's one writer, :func:`numnet._files.atomic_write`.
"""

from __future__ import annotations

import gzip
import math
import os
import stat
import sys
import zlib
from io import BufferedIOBase
from pathlib import Path
from typing import Union

import numpy as np

from numnet._files import atomic_write
from numnet.errors import DataError

PathLike = Union[str, "os.PathLike[str]"]

#: IDX dtype code -> NumPy dtype (as stored: big-endian).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_FOR_KIND = {(dt.kind, dt.itemsize): code for code, dt in IDX_DTYPES.items()}
_CHUNK_BYTES = 1 << 18  # reads of 256 KiB when the declared size cannot be trusted
_MAX_DEFLATE_RATIO = 1032  # deflate turns at most 2 bits into 258 bytes
_CODE_NAMES = "0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64"


def data_error(
    message: str,
    path: PathLike | None = None,
    line: int | None = None,
    column: int | None = None,
) -> DataError:
    """A :class:`numnet.errors.DataError` carrying where the problem is.

    Parameters
    ----------
    message : str
        What was wrong, what was expected and where.
    path : str or None
        The file concerned, if any; stored as the ``path`` attribute.
    line, column : int or None
        1-based position in a text file, when known; the ``line`` and ``column``
        attributes.
    """
    error = DataError(message)
    error.path = None if path is None else os.fspath(path)
    error.line = line
    error.column = column
    return error


def _open_binary(path: Path) -> BufferedIOBase:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _byte_view(array: np.ndarray) -> memoryview:
    """The bytes of a C-contiguous array, without a copy (works for 0-d and empty)."""
    return array.reshape(-1).view(np.uint8).data


def _read_exactly(handle: BufferedIOBase, view: memoryview) -> tuple[int, bool]:
    """Fill ``view`` from ``handle``.

    Returns
    -------
    filled : int
        How many bytes arrived (fewer than ``len(view)`` at the end of the file).
    cut : bool
        True when a gzip stream ended without its end-of-stream marker.
    """
    filled = 0
    while filled < len(view):
        try:
            # readinto1: one read at a time, so that bytes decompressed before a cut
            # stream raises EOFError are counted (and gzip makes no full-size copy).
            got = handle.readinto1(view[filled:])
        except EOFError:
            return filled, True
        if not got:
            break
        filled += got
    return filled, False


def _read_growing(handle: BufferedIOBase, limit: int) -> tuple[bytearray, bool]:
    """Up to ``limit`` bytes, read in bounded chunks: memory follows what is really there.

    Returns the bytes and, as :func:`_read_exactly`, whether a gzip stream was cut.
    """
    data = bytearray()
    while len(data) < limit:
        try:
            chunk = handle.read1(min(_CHUNK_BYTES, limit - len(data)))
        except EOFError:
            return data, True
        if not chunk:
            break
        data += chunk
    return data, False


def _parse_header(path: Path, handle: BufferedIOBase) -> tuple[np.dtype, tuple[int, ...], int]:
    """Read and check the magic number and dimensions; return dtype, shape, header size."""
    magic = handle.read(4)
    if len(magic) < 4:
        raise data_error(
            f"{path}: not an IDX file: it has {len(magic)} bytes, "
            "fewer than the 4 of the magic number",
            path,
        )
    if magic[0] != 0 or magic[1] != 0:
        raise data_error(
            f"{path}: bad IDX magic number 0x{magic.hex()}: the first two bytes must be "
            "zero (is this an IDX file? a .gz file needs a name ending in .gz)",
            path,
        )
    code, rank = magic[2], magic[3]
    if code not in IDX_DTYPES:
        raise data_error(
            f"{path}: unknown IDX dtype code 0x{code:02X} in the magic number; "
            f"expected one of {_CODE_NAMES}",
            path,
        )
    raw_dims = handle.read(4 * rank)
    if len(raw_dims) < 4 * rank:
        raise data_error(
            f"{path}: truncated IDX header: rank {rank} needs {4 * rank} bytes of "
            f"dimensions, found {len(raw_dims)}",
            path,
        )
    shape = tuple(int(d) for d in np.frombuffer(raw_dims, dtype=">u4"))
    # NumPy refuses a shape whose non-zero dimensions multiply past its index range, even
    # when another dimension is 0, so that no data bytes are declared and the size checks
    # (which name a bigger shape's problem: too few bytes) pass: name it here.
    span = math.prod(d for d in shape if d) * IDX_DTYPES[code].itemsize
    if 0 in shape and span > np.iinfo(np.intp).max:
        raise data_error(
            f"{path}: the IDX header declares shape {shape} of {IDX_DTYPES[code].name}: "
            f"its dimensions multiply to {span} bytes, beyond any array "
            f"(at most {np.iinfo(np.intp).max})",
            path,
        )
    return IDX_DTYPES[code], shape, 4 + 4 * rank


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (raw or ``.gz``) into a NumPy array.

    Parameters
    ----------
    path : str or os.PathLike
        The file. Names ending in ``.gz`` are decompressed on the fly.

    Returns
    -------
    numpy.ndarray
        A writable array in native byte order with the file's dtype (uint8, int8,
        int16, int32, float32 or float64) and shape.

    Raises
    ------
    DataError
        If the magic number, the dtype code or the dimensions do not match the file:
        the message names the file and the check that failed (for a truncated file or
        gzip stream, how many data bytes were expected and how many were found). The
        dimensions are checked against the file before the array is allocated, so a
        corrupt header cannot ask for more memory than the file could hold.
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = Path(path)
    try:
        with _open_binary(path) as handle:
            dtype, shape, header = _parse_header(path, handle)
            out = _read_body(path, handle, dtype.newbyteorder("="), shape, header)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise data_error(f"{path}: corrupt or truncated gzip stream: {err}", path) from err
    if sys.byteorder == "little" and out.itemsize > 1:
        out.byteswap(inplace=True)
    return out


def _read_body(
    path: Path, handle: BufferedIOBase, dtype: np.dtype, shape: tuple[int, ...], header: int
) -> np.ndarray:
    """The data after the header, checked against the size the header declares.

    Nothing is allocated for a declared size the file cannot hold: a raw file's size is
    compared first; a ``.gz`` file is read straight into the result only when its gzip
    trailer agrees with the declared size, and otherwise in bounded chunks.
    """
    expected = math.prod(shape) * dtype.itemsize  # a Python int: cannot overflow
    declared = (
        f"the header declares shape {shape} of {dtype.name}, i.e. {expected} data bytes "
        f"after the {header}-byte header"
    )
    if path.name.endswith(".gz"):
        trusted = _gzip_fits(path, header, expected)
    else:
        trusted = _check_raw_size(path, handle, expected, declared)
    if trusted:
        # Read straight into the result: one copy, no per-element Python work.
        out = np.empty(shape, dtype=dtype)
        found, cut = _read_exactly(handle, _byte_view(out))
    else:
        data, cut = _read_growing(handle, expected)
        found = len(data)
    if found < expected:
        raise _short_error(path, declared, found, cut)
    if not trusted:
        out = np.frombuffer(data, dtype=dtype).reshape(shape)  # writable, no copy
    _check_end(path, handle, shape, expected)
    return out


def _check_end(path: Path, handle: BufferedIOBase, shape: tuple[int, ...], expected: int) -> None:
    """Nothing may follow the declared data."""
    extra = len(handle.read(1 << 16))
    if extra:
        raise data_error(
            f"{path}: the IDX header declares shape {shape} ({expected} data "
            f"bytes) but the file has at least {extra} more bytes after them",
            path,
        )


def _check_raw_size(path: Path, handle: BufferedIOBase, expected: int, declared: str) -> bool:
    """Compare a raw file's length with the declared data size, before reading it.

    Returns False when the size is unknown (a pipe or a device): the read finds out.
    """
    info = os.fstat(handle.fileno())
    if not stat.S_ISREG(info.st_mode):
        return False
    available = info.st_size - handle.tell()
    if available < expected:
        raise _short_error(path, declared, available, cut=False)
    if available > expected:
        raise data_error(
            f"{path}: {declared}, but the file has {available - expected} more bytes "
            f"after them ({available} data bytes in all)",
            path,
        )
    return True


def _gzip_fits(path: Path, header: int, expected: int) -> bool:
    """Whether a ``.gz`` file can hold ``expected`` data bytes after the header.

    Its gzip trailer (ISIZE, the uncompressed size modulo 2**32) must match, and deflate
    cannot expand data more than 1032-fold. A file that fails (truncated, corrupt, or
    made of several gzip members) is read in bounded chunks instead, which finds out.
    """
    size = os.path.getsize(path)
    if size < 18 or expected > _MAX_DEFLATE_RATIO * size:  # 18: gzip header + trailer
        return False
    with open(path, "rb") as raw:
        raw.seek(-4, os.SEEK_END)
        isize = int.from_bytes(raw.read(4), "little")
    return isize == (header + expected) % 2**32


def _short_error(path: Path, declared: str, found: int, cut: bool) -> DataError:
    """The error for a file with fewer data bytes than its header declares."""
    if cut:
        return data_error(
            f"{path}: truncated gzip stream: {declared}, but the compressed data ends "
            f"(no end-of-stream marker) after {found} of them were decompressed",
            path,
        )
    return data_error(f"{path}: truncated IDX file: {declared}, but only {found} were found", path)


def write_idx(path: PathLike, array: np.ndarray) -> None:
    """Write an array as an IDX file, atomically; gzip it when ``path`` ends in ``.gz``.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; its directory must exist. An existing file is replaced only once
        the new one is complete.
    array : array_like
        Data of dtype uint8, int8, int16, int32, float32 or float64 (other dtypes are
        refused rather than silently cast), with at most 255 dimensions each below
        2**32.

    Raises
    ------
    DataError
        If the dtype or the shape cannot be stored in IDX.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _CODE_FOR_KIND.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise data_error(
            f"cannot write {path}: dtype {array.dtype} has no IDX code; expected one of "
            f"{_CODE_NAMES} (cast with .astype() first)",
            path,
        )
    if array.ndim > 255 or any(d >= 2**32 for d in array.shape):
        raise data_error(
            f"cannot write {path}: shape {array.shape} does not fit IDX "
            "(at most 255 dimensions, each below 2**32)",
            path,
        )
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    body = np.ascontiguousarray(array, dtype=IDX_DTYPES[code])
    with atomic_write(path) as raw:
        if path.name.endswith(".gz"):
            # mtime=0 and no file name: the same array always gives the same bytes.
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                gz.write(header)
                gz.write(_byte_view(body))
        else:
            raw.write(header)
            raw.write(_byte_view(body))
