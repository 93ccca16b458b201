"""The parsers behind :func:`numnet.data.load_csv`: pyarrow's CSV reader and NumPy's
:func:`numpy.loadtxt`.

A parser takes a block of whole lines (each ending in ``\\n``), fills the rows of ``out``
with the feature cells, and returns the label cells as bytes, one a line (or None when
the file has no label column). It checks nothing itself beyond what its library checks:
when the library refuses the block, or returns the wrong number of rows, it raises
:class:`Refused` and ``load_csv`` finds the bad line and cell on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from itertools import repeat
from types import ModuleType
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

# Lines handed to a parser at once. NumPy's works on a list of lines, a Python object
# each: small blocks keep them few. pyarrow's splits a block into pieces for its threads.
NUMPY_BLOCK_BYTES = 1 << 18  # 256 KiB
ARROW_BLOCK_BYTES = 1 << 22  # 4 MiB ...
ARROW_PIECE_BYTES = 1 << 20  # ... parsed in pieces of 1 MiB
BOM = b"\xef\xbb\xbf"  # the UTF-8 byte-order mark
_INTEGER_BYTES = b"0123456789+- \t\n"


class Columns(Protocol):
    """What a parser needs to know of a file's columns."""

    @property
    def sep(self) -> str: ...  # the delimiter

    @property
    def ncols(self) -> int: ...  # cells a line

    @property
    def label(self) -> int | None: ...  # 0-based index of the label column

    @property
    def features(self) -> list[int]: ...  # 0-based indices of the other columns

    arrow_piece: int  # pyarrow's piece size, once a line was longer than the default


Parser = Callable[[bytes, Columns, np.ndarray], bytes | None]


class Refused(Exception):
    """The parser cannot read a block; the message is the library's."""


def parser(engine: str) -> tuple[Parser, int]:
    """The parser for ``engine`` ("auto", "pyarrow" or "numpy"), and its block size."""
    if engine not in ("auto", "pyarrow", "numpy"):
        raise ValueError(f"load_csv: engine must be 'auto', 'pyarrow' or 'numpy', got {engine!r}")
    if engine != "numpy" and _pyarrow() is not None:
        return parse_arrow, ARROW_BLOCK_BYTES
    if engine == "pyarrow":
        raise ImportError("load_csv: engine='pyarrow' needs pyarrow: pip install numnet[csv]")
    return parse_numpy, NUMPY_BLOCK_BYTES


@lru_cache(maxsize=1)
def _pyarrow() -> tuple[ModuleType, ModuleType] | None:
    """pyarrow and pyarrow.csv, or None: pyarrow is optional (the ``csv`` extra)."""
    try:
        import pyarrow  # noqa: PLC0415  (optional dependency, imported on first use)
        import pyarrow.csv  # noqa: PLC0415
    except ImportError:
        return None
    return pyarrow, pyarrow.csv


def _arrow() -> tuple[ModuleType, ModuleType]:
    modules = _pyarrow()
    assert modules is not None  # only called once parser() found pyarrow
    return modules


def _parse_dtype(dtype: np.dtype) -> type[np.floating]:
    """float32 or float64: what the parsers produce for ``dtype`` (then cast)."""
    return np.float32 if dtype.itemsize <= 4 else np.float64


def _integers_only(block: bytes, sep: str) -> bool:
    """Whether every cell is a plain integer (or blank, for the parser to refuse).

    Both libraries parse integers faster than floats, and exactly; "-0" would lose the
    sign a float keeps, and an integer beyond int32 (400 digits) makes the integer
    parse fail, after which the block is parsed as floats.
    """
    allowed = _INTEGER_BYTES + sep.encode()
    if block[:4096].translate(None, allowed):
        return False  # most float files are told by their first line
    return not block.translate(None, allowed) and b"-0" not in block


def label_cells(lines: list[str], label: int, sep: str, ncols: int) -> list[str]:
    """The label cell of each line (every line has ``ncols`` cells)."""
    if 2 * label < ncols:
        return [line.split(sep, label + 1)[label] for line in lines]
    return [line.rsplit(sep, ncols - label)[1] for line in lines]


# ------------------------------------------------------------------------------ NumPy


def parse_numpy(block: bytes, columns: Columns, out: np.ndarray) -> bytes | None:
    """Parse a block with :func:`numpy.loadtxt` into ``out``; return the label cells."""
    lines = block.decode("utf-8", errors="replace").split("\n")
    lines.pop()  # the block ends with a newline
    # loadtxt does not check the cell count of lines when given usecols: count here.
    if set(map(str.count, lines, repeat(columns.sep))) != {columns.ncols - 1}:
        raise Refused("a line has the wrong number of cells")
    if columns.features:
        values = _loadtxt(block, lines, columns, out)
        with np.errstate(over="ignore"):  # to float16: beyond its range is inf, as documented
            out[...] = values
    if columns.label is None:
        return None
    return "\n".join(label_cells(lines, columns.label, columns.sep, columns.ncols)).encode()


def _loadtxt(block: bytes, lines: list[str], columns: Columns, out: np.ndarray) -> np.ndarray:
    dtypes: list[npt.DTypeLike] = [_parse_dtype(out.dtype)]
    if _integers_only(block, columns.sep):
        dtypes.insert(0, np.int32)  # several times faster than floats in NumPy
    for dtype in dtypes:
        try:
            values = np.loadtxt(
                lines,
                dtype=dtype,
                delimiter=columns.sep,
                usecols=None if columns.label is None else columns.features,
                comments=None,
                quotechar=None,
                ndmin=2,
            )
        except (ValueError, OverflowError) as err:
            error = str(err)
            continue
        if values.shape != out.shape:  # loadtxt skips blank lines
            raise Refused(f"parsed {values.shape[0]} rows of {len(lines)}")
        return values
    raise Refused(error)


# ---------------------------------------------------------------------------- pyarrow


def parse_arrow(block: bytes, columns: Columns, out: np.ndarray) -> bytes | None:
    """Parse a block with pyarrow's CSV reader into ``out``; return the label cells."""
    pa, _ = _arrow()
    names = [f"c{j}" for j in range(columns.ncols)]
    numbers = [pa.float32() if _parse_dtype(out.dtype) is np.float32 else pa.float64()]
    if _integers_only(block, columns.sep):
        numbers.insert(0, pa.int32())  # about a fifth faster than floats in pyarrow
    for number in numbers:
        types = {name: number for name in names}
        if columns.label is not None:
            types[names[columns.label]] = pa.binary()  # bytes: decoded as NumPy's path does
        try:
            table = _arrow_table(block, columns, names, types)
            break
        except pa.ArrowException as err:
            error = str(err)
    else:
        raise Refused(error)
    if table.num_rows != out.shape[0]:
        raise Refused(f"parsed {table.num_rows} rows of {out.shape[0]}")
    features = [names[j] for j in columns.features]
    row = 0
    for batch in table.select(features).to_batches() if features else []:
        # One C++ call makes the batch a row-major matrix: no per-column Python work.
        with np.errstate(over="ignore"):  # to float16: beyond its range is inf
            out[row : row + batch.num_rows] = np.asarray(batch.to_tensor(row_major=True))
        row += batch.num_rows
    return None if columns.label is None else _joined(table.column(columns.label))


def _arrow_table(block: bytes, columns: Columns, names: list[str], types: dict[str, Any]) -> Any:
    """The block as a pyarrow Table, parsed in pieces of about ``ARROW_PIECE_BYTES``.

    A line longer than a piece cannot be parsed that way ("straddling object"): pieces
    then grow to the whole block, for this block and the rest of the file.
    """
    pa, pa_csv = _arrow()
    skip = 0
    if block.startswith(BOM):  # pyarrow would drop it: put a line before, and skip it
        block, skip = b"\n" + block, 1
    while True:
        piece = max(ARROW_PIECE_BYTES, columns.arrow_piece)
        try:
            return pa_csv.read_csv(
                pa.py_buffer(block),
                read_options=pa_csv.ReadOptions(
                    column_names=names, block_size=piece, skip_rows=skip,
                    # one piece has nothing to share out: no thread pool for small files
                    use_threads=len(block) > piece,
                ),
                parse_options=pa_csv.ParseOptions(
                    delimiter=columns.sep, quote_char=False, ignore_empty_lines=False
                ),
                convert_options=pa_csv.ConvertOptions(
                    column_types=types,
                    null_values=[],
                    strings_can_be_null=False,
                    check_utf8=False,
                ),
            )
        except pa.ArrowInvalid as err:
            if "straddl" not in str(err) or piece > len(block):
                raise
            columns.arrow_piece = len(block) + 1


def _joined(column: Any) -> bytes:
    """A pyarrow column of binary cells as one bytes, a cell a line (no object a cell)."""
    cells = column.combine_chunks()
    _, offsets_buffer, data_buffer = cells.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int32)[cells.offset : cells.offset + len(cells) + 1]
    data = np.frombuffer(data_buffer, np.uint8)[offsets[0] : offsets[-1]]
    return np.insert(data, offsets[1:-1] - offsets[0], ord("\n")).tobytes()
