"""Load a CSV file of numbers into a feature matrix and a label vector, fast.

How it stays fast and small on a 500 MB file:

* A first pass counts the lines (one NumPy comparison per megabyte read) so the result
  arrays are allocated once, at their final size: the file's values are held exactly
  once, plus temporaries the size of one block.
* A second pass reads blocks of whole lines (about half a megabyte: the parser's
  temporaries then stay in the CPU cache) and parses each block with a handful of
  vectorised NumPy calls: separators are located with one comparison, every cell is
  checked against a strict number grammar, and the digits are turned into numbers by a
  right-aligned Horner scheme that loops over digit *positions* (a few), never over
  cells or rows.
* Only a block the strict grammar rejects (spaces around cells, ``nan``/``inf``, or a
  real error) goes to a slower path: a compiled regular expression validates it line by
  line (still C speed) and, when a line fails, Python looks at that one line to name the
  column.
* A label column holding text (class names such as ``setosa``) is found by the same
  path: the first label cell that is not a number restarts the second pass in text mode,
  which takes each block's label cells out (Python work per row, on that column only),
  puts a ``0`` in their place and parses the rest as above.

Decimal values are rebuilt as ``mantissa / 10**k``, which is exactly rounded when the
mantissa has at most 15 significant digits and ``|k| <= 22`` (Clinger's fast path); longer
mantissas or larger exponents may differ from Python's ``float()`` in the last bit of a
float64, far below float32 resolution.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import IO

import numpy as np

from numnet.data.idx import PathLike, data_error
from numnet.errors import DataError

__all__ = ["load_csv"]

_BLOCK_BYTES = 1 << 19  # parse blocks: small enough that temporaries stay in cache
_COUNT_BYTES = 1 << 20  # first pass: reads of 1 MiB, nothing but counting
_NEWLINE = 10
with np.errstate(over="ignore"):
    _POW10 = 10.0 ** np.arange(400, dtype=np.float64)  # 10**k for k <= 308, inf beyond
_STRICT_CHARS = b"0123456789.eE+-\n"
_NUMBER = (
    r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|[nN][aA][nN]|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)"
)
_NUMBER_RE = re.compile(r"\s*" + _NUMBER + r"\s*")


def load_csv(
    path: PathLike,
    label_column: int | str | None = 0,
    header: bool | None = None,
    delimiter: str = ",",
    dtype: np.dtype | type = np.float32,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Load a CSV file of numbers as features ``X`` and labels ``y`` (numbers or text).

    Parameters
    ----------
    path : str or os.PathLike
        The file; a name ending in ``.gz`` is decompressed on the fly.
    label_column : int, str or None, default 0
        Column holding the labels: an index (negative counts from the end) or, when the
        file has a header, a column name. ``None`` means the file has no labels.
    header : bool or None, default None
        Whether the first line holds column names. ``None`` detects it: the first line
        is a header when none of its non-empty cells is a number (quoted cells count as
        names). A first line with some numbers is data, so a non-numeric cell there is
        an error naming line 1 and its column, not a silently dropped row.
    delimiter : str, default ","
        One ASCII character separating the cells (e.g. ``";"`` or ``"\\t"``).
    dtype : floating dtype, default numpy.float32
        dtype of ``X``.

    Returns
    -------
    X : numpy.ndarray
        Features, shape ``(rows, columns - 1)`` (``(rows, columns)`` without labels).
    y : numpy.ndarray or None
        Labels, shape ``(rows,)``: int64 when every label is integral, float64 when every
        label is a number but some are not integral, and an array of str when some label
        cell is not a number (e.g. ``setosa``): then every label is the text of its cell,
        without surrounding spaces and quotes (``1.0`` stays ``'1.0'``). ``None`` when
        ``label_column`` is ``None``.

    Raises
    ------
    DataError
        (a ``ValueError``) when the file is empty, has no data rows, has a row with the
        wrong number of cells, a blank line before the end, an empty cell (label or
        feature), a non-numeric feature cell, or no column named ``label_column``; also
        when the first line was detected as data (see ``header``) and its label is text
        while every other label is a number: it is then a header. The message names the
        file, the line and the column; the exception's ``path``, ``line`` and ``column``
        attributes hold the same.

    Notes
    -----
    Cells are plain decimal numbers (``12``, ``-0.5``, ``1e-3``, ``.5``), optionally
    padded with spaces, or ``nan``/``inf``. Quoted cells are not supported, except in
    the header and the label column (a quoted cell cannot contain the delimiter). Blank
    lines are allowed only at the end of the file. Line endings may be ``\\n`` or
    ``\\r\\n``; a bare ``\\r`` (old Mac line endings) is an error naming the line.
    A delimiter at the end of a line makes an empty last cell: an error.
    """
    path = Path(path)
    delim = _check_delimiter(delimiter)
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"load_csv: dtype must be a floating type, got {dtype}")
    n_lines = _count_content_lines(path)
    if n_lines == 0:
        raise data_error(f"{path}: the file is empty (no non-blank line)", path, line=1)
    with _open(path) as handle:
        blocks = _iter_blocks(handle, path)
        first = next(blocks)
        ctx = _first_line(first, path, delim, header)
        ctx.label = _resolve_label(label_column, ctx)
        n_rows = n_lines - (ctx.names is not None)
        if n_rows == 0:
            raise data_error(f"{path}: no data rows after the header line", path, line=2)
        X = np.empty((n_rows, ctx.ncols - (ctx.label is not None)), dtype=dtype)
        try:
            return X, _fill(chain([first], blocks), ctx, X)
        except _TextLabels:
            pass  # some label is not a number: read the file again, labels as text
    return X, _fill_text_labels(ctx, X)


class _Context:
    """What error messages need to know about the file being parsed."""

    def __init__(self, path: Path, delim: int, ncols: int, names: list[str] | None) -> None:
        self.path = path
        self.delim = delim
        self.ncols = ncols
        self.names = names
        self.data_first = False  # True when header detection read line 1 as data
        self.label: int | None = None  # 0-based index of the label column
        self.text_labels = False  # True once some label cell is not a number

    def column(self, index: int) -> str:
        """'column 3' or "column 3 ('pixel2')" for a 0-based index."""
        if self.names is not None and index < len(self.names):
            return f"column {index + 1} ({self.names[index]!r})"
        return f"column {index + 1}"

    def error(self, line: int, column: int | None, what: str) -> DataError:
        where = f"line {line}" if column is None else f"line {line}, {self.column(column)}"
        if line == 1 and self.data_first:
            what += (
                " (line 1 was read as data: a header needs every non-empty cell to be a "
                "name, not a number; pass header=True if it is a header)"
            )
        col = None if column is None else column + 1
        return data_error(f"{self.path}: {where}: {what}", self.path, line=line, column=col)


class _TextLabels(Exception):
    """Raised by the numeric pass when a label cell is not a number: read it as text."""


# ----------------------------------------------------------------------------- reading


def _open(path: Path) -> IO[bytes]:
    if not path.is_file():
        raise FileNotFoundError(f"load_csv: no such file: {path}")
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def _check_delimiter(delimiter: str) -> int:
    if not isinstance(delimiter, str) or len(delimiter) != 1 or not delimiter.isascii():
        raise ValueError(f"load_csv: delimiter must be one ASCII character, got {delimiter!r}")
    if delimiter in "0123456789.eE+-\"'\r\n":
        raise ValueError(
            f"load_csv: delimiter {delimiter!r} cannot separate numbers (it can be part of one)"
        )
    return ord(delimiter)


def _count_content_lines(path: Path) -> int:
    """Lines up to the last one that is not blank: the first pass, only counting."""
    newlines = 0
    content = 0
    with _open(path) as handle:
        try:
            while data := handle.read(_COUNT_BYTES):
                kept = _content_length(data)
                found = _count_newlines(data)
                if kept:
                    content = newlines + found - data.count(b"\n", kept) + 1
                newlines += found
        except (EOFError, gzip.BadGzipFile, zlib.error) as err:
            raise data_error(f"{path}: corrupt or truncated gzip stream: {err}", path) from err
    return content


def _count_newlines(data: bytes) -> int:
    # A NumPy comparison is about 4x faster than bytes.count for one character.
    return int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == _NEWLINE))


def _content_length(data: bytes) -> int:
    """len(data.rstrip()) without copying all of ``data`` (only its tail, usually)."""
    for size in (4096, len(data)):
        tail = data[-size:]
        kept = len(tail.rstrip())
        if kept or size >= len(data):
            return len(data) - len(tail) + kept
    return 0  # not reached: the second size always returns


def _iter_blocks(handle: IO[bytes], path: Path) -> Iterator[bytes]:
    """Yield blocks of whole lines, each ending in b'\\n' (one is added at EOF if needed)."""
    pending: list[bytes] = []  # pieces of a line longer than a block: joined once, not re-copied
    first = True
    try:
        while data := handle.read(_BLOCK_BYTES):
            if first:
                data, first = data.removeprefix(b"\xef\xbb\xbf"), False
            cut = data.rfind(b"\n") + 1
            if not cut:
                pending.append(data)
                continue
            yield b"".join([*pending, data[:cut]])
            pending = [data[cut:]]
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise data_error(f"{path}: corrupt or truncated gzip stream: {err}", path) from err
    tail = b"".join(pending)
    if tail or first:
        yield tail + b"\n"


# ------------------------------------------------------------------- header and labels


def _first_line(first: bytes, path: Path, delim: int, header: bool | None) -> _Context:
    """Read the first line of the first block: the column count, and names if a header."""
    line = first[: first.find(b"\n")]
    if b"\r" in line.removesuffix(b"\r"):
        raise _bare_cr_error(path, 1)
    names = _header_cells(line, delim)
    has_header = _decide_header(line, delim, header)
    ctx = _Context(path, delim, len(names), names if has_header else None)
    ctx.data_first = header is None and not has_header
    return ctx


def _raw_cells(line: bytes, delim: int) -> list[str]:
    text = line.removesuffix(b"\r").decode("utf-8", errors="replace")
    return [cell.strip() for cell in text.split(chr(delim))]


def _header_cells(line: bytes, delim: int) -> list[str]:
    return [_unquote(cell) for cell in _raw_cells(line, delim)]


def _unquote(text: str) -> str:
    return text.strip().strip("\"'").strip()


def _decide_header(line: bytes, delim: int, header: bool | None) -> bool:
    """Declared, or detected: some non-empty cell and no (unquoted) number among them."""
    if header is None:
        cells = [cell for cell in _raw_cells(line, delim) if cell]
        return bool(cells) and not any(_NUMBER_RE.fullmatch(cell) for cell in cells)
    if not isinstance(header, bool):
        raise TypeError(f"load_csv: header must be True, False or None, got {header!r}")
    return header


def _resolve_label(label_column: int | str | None, ctx: _Context) -> int | None:
    """The 0-based index of the label column, or None."""
    if label_column is None:
        return None
    if isinstance(label_column, str):
        if ctx.names is None:
            raise data_error(
                f"{ctx.path}: label_column={label_column!r} is a column name, but the "
                "file has no header line (its first line is numeric); pass an index, "
                "or header=True if the first line is a header",
                ctx.path,
                line=1,
            )
        if label_column not in ctx.names:
            shown = ", ".join(repr(n) for n in ctx.names[:12])
            more = ", ..." if len(ctx.names) > 12 else ""
            raise data_error(
                f"{ctx.path}: no column named {label_column!r} in the header; "
                f"columns are {shown}{more}",
                ctx.path,
                line=1,
            )
        return ctx.names.index(label_column)
    if isinstance(label_column, bool) or not isinstance(label_column, (int, np.integer)):
        raise TypeError(
            f"load_csv: label_column must be an int, a str or None, got {label_column!r}"
        )
    if not -ctx.ncols <= label_column < ctx.ncols:
        raise data_error(
            f"{ctx.path}: label_column={label_column} is out of range: the file has "
            f"{ctx.ncols} columns",
            ctx.path,
            line=1,
        )
    return int(label_column) % ctx.ncols


def _label_dtype(y: np.ndarray) -> np.ndarray:
    """int64 when every label is integral (and fits), else the float64 values."""
    finite = np.isfinite(y).all()
    if finite and np.abs(y).max() < 2.0**63 and np.array_equal(y, np.trunc(y)):
        return y.astype(np.int64)
    return y


def _fill_text_labels(ctx: _Context, X: np.ndarray) -> np.ndarray:
    """Parse the whole file again into ``X``, returning the labels as an array of str."""
    ctx.text_labels = True
    with _open(ctx.path) as handle:
        y = _fill(_iter_blocks(handle, ctx.path), ctx, X)
    _check_first_label(y, ctx)
    return y


def _check_first_label(y: np.ndarray, ctx: _Context) -> None:
    """A text label on a line 1 read as data, above numbers only, is a header cell."""
    if not ctx.data_first or y.size < 2 or _NUMBER_RE.fullmatch(y[0]):
        return
    if all(_NUMBER_RE.fullmatch(text) for text in y[1:].tolist()):  # stops at a text label
        raise ctx.error(1, ctx.label, f"{str(y[0])!r} is not a number, and every other label is")


# ------------------------------------------------------------------------ second pass


def _fill(blocks: Iterator[bytes], ctx: _Context, X: np.ndarray) -> np.ndarray | None:
    """Parse the blocks of the whole file into the rows of ``X``; return the labels.

    Raises ``_TextLabels`` at the first label cell that is not a number, unless
    ``ctx.text_labels`` is set: the labels are then returned as an array of str.
    """
    n_rows = X.shape[0]
    numeric = ctx.label is not None and not ctx.text_labels
    y = np.empty(n_rows, dtype=np.float64) if numeric else None
    texts: list[np.ndarray] = []
    first_line = 1 + (ctx.names is not None)
    row = 0
    for block in _data_blocks(blocks, ctx.names is not None):
        if row == n_rows:
            break  # what is left are the trailing blank lines the first pass skipped
        if not block:
            continue
        k = _count_newlines(block)
        if row + k > n_rows:
            block = _first_lines(block, n_rows - row)
            k = n_rows - row
        values, labels = _parse_block(block, ctx, first_line + row)
        _store(values, X, y, row, ctx.label)
        if labels is not None:
            texts.append(labels)
        row += k
    if row != n_rows:
        raise data_error(
            f"{ctx.path}: found {row} data rows, but the first pass counted {n_rows} "
            "(did the file change while it was read?)",
            ctx.path,
        )
    if y is not None:
        return _label_dtype(y)
    return np.concatenate(texts) if ctx.text_labels and ctx.label is not None else None


def _data_blocks(blocks: Iterator[bytes], has_header: bool) -> Iterator[bytes]:
    """The blocks without the header line."""
    first = next(blocks)
    yield first[first.find(b"\n") + 1 :] if has_header else first
    yield from blocks


def _first_lines(block: bytes, k: int) -> bytes:
    newlines = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == _NEWLINE)
    return block[: newlines[k - 1] + 1]


def _store(
    values: np.ndarray, X: np.ndarray, y: np.ndarray | None, row: int, label: int | None
) -> None:
    rows = slice(row, row + values.shape[0])
    if label is None:
        X[rows] = values
        return
    X[rows, :label] = values[:, :label]
    X[rows, label:] = values[:, label + 1 :]
    if y is not None:  # None for text labels: their column holds zeros here
        y[rows] = values[:, label]


def _parse_block(
    block: bytes, ctx: _Context, first_line: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Values of a block of whole lines as a float64 array (lines, ncols), and its labels.

    The labels are an array of str when ``ctx.text_labels`` is set (their column of the
    values then holds zeros), else None.
    """
    if b"\r" in block:
        block = block.replace(b"\r\n", b"\n")
        if b"\r" in block:
            line = first_line + block.count(b"\n", 0, block.index(b"\r"))
            raise _bare_cr_error(ctx.path, line)
    buf, is_sep, ends = _separators(block, ctx.delim)
    _check_ragged(block, buf, ends, ctx, first_line)
    labels = None
    if ctx.text_labels and ctx.label is not None:
        block, labels = _take_labels(block, buf, ends, ctx, first_line)
        buf, is_sep, ends = _separators(block, ctx.delim)
    values = _strict_values(block, buf, is_sep, ends, ctx.delim)
    if values is None:
        values = _lenient_values(block, ctx, first_line)
    return values.reshape(-1, ctx.ncols), labels


def _separators(block: bytes, delim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The block's bytes, where the separators are, and their positions."""
    buf = np.frombuffer(block, dtype=np.uint8)
    is_sep = (buf == delim) | (buf == _NEWLINE)
    return buf, is_sep, np.flatnonzero(is_sep)


def _take_labels(
    block: bytes, buf: np.ndarray, ends: np.ndarray, ctx: _Context, first_line: int
) -> tuple[bytes, np.ndarray]:
    """The block with each label cell replaced by ``0``, and the labels' text.

    ``ends`` are the positions of the separators of a block whose lines all have
    ``ctx.ncols`` cells. The cells are cut out with one vectorised mask; only the
    label texts are made one row at a time.
    """
    cell = np.arange(ctx.label, ends.size, ctx.ncols)  # each line's label cell
    stop = ends[cell]
    start = ends[cell - 1] + 1  # after the previous separator ...
    if ctx.label == 0:
        start[0] = 0  # ... or at the start of the block
    labels = [_unquote(block[a:b].decode("utf-8", errors="replace"))
              for a, b in zip(start.tolist(), stop.tolist(), strict=True)]
    empty = [i for i, text in enumerate(labels) if not text]
    if empty:
        line = first_line + empty[0]
        raise ctx.error(line, ctx.label, "empty label cell, expected a class name or a number")
    # Keep the first byte of each label cell (as '0'); drop the rest of it.
    edges = np.zeros(buf.size + 1, dtype=np.int32)
    edges[start + 1] += 1
    edges[stop] -= 1
    keep = np.cumsum(edges[:-1], dtype=np.int32) == 0
    out = buf.copy()
    out[start] = ord("0")
    return out[keep].tobytes(), np.array(labels, dtype=str)


def _bare_cr_error(path: Path, line: int) -> DataError:
    return data_error(
        f"{path}: line {line}: a carriage return (\\r) not followed by a line feed; "
        "expected lines ending in \\n or \\r\\n (old Mac line endings? convert them to \\n)",
        path,
        line=line,
    )


def _check_ragged(
    block: bytes, buf: np.ndarray, ends: np.ndarray, ctx: _Context, first_line: int
) -> None:
    """Every line must have ``ncols`` cells: count separators per line, vectorised."""
    line_last = np.flatnonzero(buf[ends] == _NEWLINE)  # index of each line's last cell
    cells = np.diff(line_last, prepend=-1)
    bad = np.flatnonzero(cells != ctx.ncols)
    if bad.size == 0:
        return
    i = int(bad[0])
    line = first_line + i
    start = int(ends[line_last[i - 1]]) + 1 if i else 0
    if not block[start : int(ends[line_last[i]])].strip():
        raise ctx.error(line, None, "blank line (blank lines are only allowed at the end)")
    found = int(cells[i])
    if found > ctx.ncols:
        what = f"{_cells(found)}, expected {ctx.ncols}: extra cell(s) from here"
        raise ctx.error(line, ctx.ncols, what)
    what = f"{_cells(found)}, expected {ctx.ncols}: missing cell(s) from here"
    raise ctx.error(line, found, what)


def _cells(n: int) -> str:
    return f"{n} cell" if n == 1 else f"{n} cells"


def _strict_values(
    block: bytes, buf: np.ndarray, is_sep: np.ndarray, ends: np.ndarray, delim: int
) -> np.ndarray | None:
    """Parse cells of the strict grammar ``[+-]digits[.digits][(e|E)[+-]digits]``.

    Returns None when any cell falls outside it (the caller then takes the slow path).
    """
    if block.translate(None, _STRICT_CHARS + bytes([delim])):
        return None  # some other character: spaces, letters, ...
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lens = ends - starts
    if lens.min() == 0:
        return None  # an empty cell
    if not any(c in block for c in (b".", b"e", b"E", b"+", b"-")):
        return _digit_runs(buf, ends, lens)  # the common case: non-negative integers
    # Cell index of every byte: the number of separators before it.
    cell_of = np.cumsum(is_sep, dtype=np.int32)
    return _decimal_values(block, buf, cell_of, starts, ends)


def _digit_runs(buf: np.ndarray, ends: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Integer value of each run of digits ``buf[end - len:end]`` (runs may be empty).

    Right-aligned: step k adds the k-th digit from the right of every run at once, so
    the loop runs over digit positions (the longest run's length), not over cells.
    """
    if ends.size == 0:
        return np.zeros(0, dtype=np.float64)
    shortest, longest = int(lens.min()), int(lens.max())
    # The last digit of every run, or 0 for empty runs.
    last = buf.take(ends - 1, mode="clip") - np.uint8(48)
    if shortest == 0:
        last *= lens >= 1
    out = last.astype(np.float64)
    for k in range(2, longest + 1):
        # Bytes left of a short run belong to another cell: masked to 0 below.
        digit = buf.take(ends - k, mode="clip") - np.uint8(48)
        if k > shortest:
            digit *= lens >= k
        if k > 309:  # 0 * inf: only in runs of 300+ digits, which the caller redoes
            with np.errstate(invalid="ignore", over="ignore"):
                out += digit * _POW10[min(k - 1, 399)]
        else:
            out += digit * _POW10[k - 1]
    return out


def _positions(block: bytes, buf: np.ndarray, chars: bytes) -> np.ndarray:
    """Sorted positions of any of ``chars``; skips the scan for absent characters."""
    present = [c for c in chars if bytes([c]) in block]
    if not present:
        return np.empty(0, dtype=np.intp)
    mask = buf == present[0]
    for c in present[1:]:
        mask |= buf == c
    return np.flatnonzero(mask)


class _Cells:
    """Where the parts of each cell are: ``[sign] int [. frac] [e [sign] exp]``."""

    def __init__(self, starts: np.ndarray, ends: np.ndarray) -> None:
        n = ends.size
        self.ends = ends
        self.e_at = np.full(n, -1, dtype=np.intp)  # position of 'e', -1 if none
        self.mant_start = starts.copy()
        self.exp_start = np.zeros(n, dtype=np.intp)
        self.negative = np.zeros(n, dtype=bool)
        self.exp_negative = np.zeros(n, dtype=bool)
        self.int_end = ends  # replaced by the exponent and decimal-point passes
        self.frac_len = np.zeros(n, dtype=np.intp)


def _decimal_values(
    block: bytes, buf: np.ndarray, cell_of: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> np.ndarray | None:
    """Strict-grammar cells with signs, decimal points or exponents; None if malformed."""
    cells = _Cells(starts, ends)
    if not _find_exponents(block, buf, cell_of, cells):
        return None
    mant_end = cells.int_end.copy()
    if not _find_signs(block, buf, cell_of, starts, cells):
        return None
    if not _find_points(block, buf, cell_of, mant_end, cells):
        return None
    int_len = cells.int_end - cells.mant_start
    has_e = cells.e_at >= 0
    exp_len = np.where(has_e, ends - cells.exp_start, 0)
    if (int_len + cells.frac_len == 0).any() or (has_e & (exp_len == 0)).any():
        return None  # no digits in the mantissa, or none in the exponent
    mantissa = _digit_runs(buf, cells.int_end, int_len)
    if cells.frac_len.any():
        with np.errstate(over="ignore"):  # only cells of 300+ digits; redone below
            mantissa *= _POW10[np.minimum(cells.frac_len, 399)]
        mantissa += _digit_runs(buf, mant_end, cells.frac_len)
    power = -cells.frac_len.astype(np.float64)
    if exp_len.any():
        exponent = _digit_runs(buf, ends, exp_len)
        power += np.where(cells.exp_negative, -exponent, exponent)
    values = _scale(mantissa, power, cells.negative)
    # Cells of over 300 digits would overflow the mantissa: let Python parse those few.
    for i in np.flatnonzero(int_len + cells.frac_len > 300):
        values[i] = float(block[starts[i] : ends[i]])
    return values


def _find_exponents(block: bytes, buf: np.ndarray, cell_of: np.ndarray, cells: _Cells) -> bool:
    e_pos = _positions(block, buf, b"eE")
    if e_pos.size == 0:
        return True
    e_cell = cell_of[e_pos]
    if (np.diff(e_cell) == 0).any():
        return False  # two exponents in one cell
    cells.e_at[e_cell] = e_pos
    cells.exp_start[e_cell] = e_pos + 1
    cells.int_end = cells.ends.copy()
    cells.int_end[e_cell] = e_pos  # the mantissa ends at the 'e'
    return True


def _find_signs(
    block: bytes, buf: np.ndarray, cell_of: np.ndarray, starts: np.ndarray, cells: _Cells
) -> bool:
    s_pos = _positions(block, buf, b"+-")
    if s_pos.size == 0:
        return True
    s_cell = cell_of[s_pos]
    leading = s_pos == starts[s_cell]
    after_e = ~leading & (cells.e_at[s_cell] >= 0) & (s_pos == cells.exp_start[s_cell])
    if not (leading | after_e).all():
        return False  # a sign in the middle of a number
    minus = buf[s_pos] == ord("-")
    cells.negative[s_cell[leading]] = minus[leading]
    cells.mant_start[s_cell[leading]] += 1
    cells.exp_negative[s_cell[after_e]] = minus[after_e]
    cells.exp_start[s_cell[after_e]] += 1
    return True


def _find_points(
    block: bytes, buf: np.ndarray, cell_of: np.ndarray, mant_end: np.ndarray, cells: _Cells
) -> bool:
    d_pos = _positions(block, buf, b".")
    if d_pos.size == 0:
        return True
    d_cell = cell_of[d_pos]
    if (np.diff(d_cell) == 0).any():
        return False  # two decimal points in one cell
    if (d_pos >= mant_end[d_cell]).any():
        return False  # a decimal point inside the exponent
    cells.int_end = mant_end.copy()
    cells.int_end[d_cell] = d_pos
    cells.frac_len[d_cell] = mant_end[d_cell] - d_pos - 1
    return True


def _scale(mantissa: np.ndarray, power: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """+-mantissa * 10**power.

    One multiplication or division by an exact power of ten: correctly rounded whenever
    the mantissa is exact (Clinger's fast path). Powers beyond +-300 (many digits and a
    large exponent, e.g. ``1.1172984522364697e-293``) take a second step, so that an
    intermediate 10**309 does not overflow to inf.
    """
    first = np.clip(power, -300, 300)
    values = _times_pow10(mantissa, first)
    rest = power - first
    if rest.any():
        values = _times_pow10(values, rest)
    values[mantissa == 0] = 0.0  # 0 * inf would be nan
    np.negative(values, out=values, where=negative)
    return values


def _times_pow10(values: np.ndarray, power: np.ndarray) -> np.ndarray:
    scale = _POW10[np.minimum(np.abs(power), 399).astype(np.intp)]
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return np.where(power < 0, values / scale, values * scale)


# -------------------------------------------------------------------------- slow path


@lru_cache(maxsize=8)
def _block_regex(delim: int) -> tuple[re.Pattern[bytes], re.Pattern[bytes], bytes]:
    """Regexes for one cell and for a run of valid lines, and the padding characters."""
    pad = b" \t".replace(bytes([delim]), b"")
    pad_class = b"[" + pad.replace(b"\t", b"\\t") + b"]*"
    cell = pad_class + _NUMBER.encode() + pad_class
    sep = re.escape(bytes([delim]))
    # Possessive repeat: no backtracking, so a bad line costs one failed attempt.
    lines = re.compile(b"(?:" + cell + b"(?:" + sep + cell + b")*\n)*+")
    return re.compile(cell), lines, pad


def _lenient_values(block: bytes, ctx: _Context, first_line: int) -> np.ndarray:
    """Cells padded with spaces, nan or inf, or a real error to locate."""
    cell_re, lines_re, pad = _block_regex(ctx.delim)
    valid_to = lines_re.match(block).end()
    if valid_to < len(block):
        _raise_bad_cell(block, valid_to, cell_re, ctx, first_line)
    # Every cell is now a padded number: the padding can go, then the fast path.
    if pad:
        block = block.translate(None, pad)
    buf = np.frombuffer(block, dtype=np.uint8)
    is_sep = (buf == ctx.delim) | (buf == _NEWLINE)
    values = _strict_values(block, buf, is_sep, np.flatnonzero(is_sep), ctx.delim)
    if values is None:  # nan or inf somewhere: NumPy's own text parser handles those
        to_comma = bytes.maketrans(bytes([ctx.delim, _NEWLINE]), b",,")
        values = np.fromstring(block.translate(to_comma), dtype=np.float64, sep=",")
    expected = block.count(b"\n") * ctx.ncols
    if values.size != expected:  # defensive: the regex and NumPy disagree
        raise ctx.error(first_line, None, f"parsed {values.size} numbers, expected {expected}")
    return values


def _raise_bad_cell(
    block: bytes, offset: int, cell_re: re.Pattern[bytes], ctx: _Context, first_line: int
) -> None:
    """Name the first bad cell of the line starting at ``offset``."""
    line_no = first_line + block.count(b"\n", 0, offset)
    line = block[offset : block.index(b"\n", offset)]
    if not line.strip():
        raise ctx.error(line_no, None, "blank line (blank lines are only allowed at the end)")
    cells = line.split(bytes([ctx.delim]))
    for j, cell in enumerate(cells):
        if not cell.strip():
            last = " (the line ends with the delimiter)" if j == len(cells) - 1 else ""
            raise ctx.error(line_no, j, f"empty cell, expected a number{last}")
        if not cell_re.fullmatch(cell):
            if j == ctx.label and not ctx.text_labels:
                raise _TextLabels  # not an error: the labels are text
            text = cell.decode("utf-8", errors="replace")
            raise ctx.error(line_no, j, f"{text!r} is not a number")
    raise ctx.error(line_no, None, "cannot parse this line")  # not reached in practice
