"""Load a CSV file of numbers into a feature matrix and a label vector.

numnet does not parse numbers itself: a well-kept C parser does (see
:mod:`numnet.data._csv_parsers`), and this module checks the layout of the file and
names what is wrong in it.

* **pyarrow** (``pip install numnet[csv]``) when it is installed: its CSV reader parses
  a block on every core, with correctly rounded floats.
* **NumPy** otherwise (or with ``engine="numpy"``): :func:`numpy.loadtxt`, in C since
  NumPy 1.23.

How a file is read:

1. The first line is read here: header or data, the column names, where the label
   column is, and so how many cells every line must have.
2. A first pass only counts lines (and bytes), so that ``X`` is allocated once at its
   final size, and only when the file can fill it.
3. A second pass reads blocks of whole lines (memory stays the result plus a block's
   worth of temporaries), rejects bare carriage returns, and hands each block to the
   parser. The feature cells go straight into their rows of ``X``; the label cells come
   back as bytes, kept until the whole column is known, then read as integers, floats
   or text, exactly (``10**30`` stays distinct from ``10**30 + 1``).
4. When the parser refuses a block, or returns the wrong number of rows, ``_locate``
   looks at that block's lines and cells in Python to name the first bad line and
   cell. It runs only on errors, so its speed does not matter.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from io import BufferedIOBase
from itertools import chain
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from numnet.data._csv_parsers import BOM, Parser, Refused, label_cells, parser
from numnet.data.idx import PathLike, data_error
from numnet.errors import DataError

__all__ = ["load_csv"]

Engine = Literal["auto", "numpy", "pyarrow"]

_COUNT_BYTES = 1 << 20  # first pass: reads of 1 MiB, nothing but counting
_NUMBER = (
    r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|[nN][aA][nN]|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)"
)
_NUMBER_RE = re.compile(r"\s*" + _NUMBER + r"\s*")
_BLANK_LINE = re.compile(rb"^[ \t\v\f]*$", re.MULTILINE)
_DELIMITER_GUESSES = ";\t|, "  # suggested when the delimiter given finds one column


def load_csv(
    path: PathLike,
    label_column: int | str | None = 0,
    header: bool | None = None,
    delimiter: str = ",",
    dtype: npt.DTypeLike = np.float32,
    *,
    finite: bool = False,
    engine: Engine = "auto",
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
        dtype of ``X``. A value beyond its range becomes ``inf`` (``1e39`` in float32).
    finite : bool, default False
        Refuse NaN and infinite values (written as such, or overflowing ``dtype``), in
        features and numeric labels: the first one is a :class:`DataError` naming its
        line and column. numnet cannot train on them; the CLI sets this.
    engine : {"auto", "pyarrow", "numpy"}, default "auto"
        The parser: pyarrow's multi-threaded CSV reader when installed (``"auto"``),
        else :func:`numpy.loadtxt`. Both give the same errors and the same values (but
        for the last bit of a float32, rarely: pyarrow rounds a decimal straight to
        float32, NumPy through float64).

    Returns
    -------
    X : numpy.ndarray
        Features, shape ``(rows, columns - 1)`` (``(rows, columns)`` without labels),
        C-contiguous.
    y : numpy.ndarray or None
        Labels, shape ``(rows,)``, kept exact:

        * int64 when every label is a whole number that int64 holds exactly (``1``,
          ``2.0`` and ``3e0`` are integral; beyond 2**53 only plain integers qualify);
        * float64 when every label is a number but some are not integral (or are
          NaN/inf);
        * an array of str otherwise: when some label is not a number (``setosa``),
          every label is the text of its cell without surrounding spaces and quotes
          (``1.0`` stays ``'1.0'``); integral labels beyond int64 (``10**30``) are
          also returned as their text, so that distinct labels stay distinct.

        ``None`` when ``label_column`` is ``None``.

    Raises
    ------
    DataError
        (a ``ValueError``) when the file is empty, has no data rows, has a row with the
        wrong number of cells, a blank line before the end, a bare carriage return, an
        empty cell (label or feature), a non-numeric feature cell, a single column that
        looks split by another delimiter, no feature column, no column named
        ``label_column``, or (with ``finite=True``) a NaN or infinite value; also when
        the first line was detected as data (see ``header``) and its label is text while
        every other label is a number: it is then a header. The message names the file,
        the line (1-based, counting the header) and the column; the exception's
        ``path``, ``line`` and ``column`` attributes hold the same. A corrupt or
        truncated ``.gz`` file is a DataError too.
    FileNotFoundError
        If ``path`` is not a file.
    ImportError
        For ``engine="pyarrow"`` when pyarrow is not installed.

    Notes
    -----
    Cells are plain decimal numbers (``12``, ``-0.5``, ``1e-3``, ``.5``, any number of
    digits), optionally padded with spaces, or ``nan``/``inf``/``infinity`` in any case.
    Quoted cells are not supported, except in the header and the label column (a quoted
    cell cannot contain the delimiter). Blank lines are allowed only at the end of the
    file. Line endings may be ``\\n`` or ``\\r\\n``; a bare ``\\r`` (old Mac line endings)
    is an error naming the line. A delimiter at the end of a line makes an empty last
    cell: an error.
    """
    path = Path(path)
    delim = _check_delimiter(delimiter)
    out_dtype = _check_dtype(dtype)
    if not isinstance(finite, bool):
        raise TypeError(f"load_csv: finite must be True or False, got {finite!r}")
    parse, block_bytes = parser(engine)
    n_lines, n_bytes = _count_content_lines(path)
    if n_lines == 0:
        raise data_error(f"{path}: the file is empty (no non-blank line)", path, line=1)
    with _open(path) as handle:
        blocks = _iter_blocks(handle, path, block_bytes)
        first = next(blocks)
        ctx = _first_line(first, path, delim, header)
        ctx.label = _resolve_label(label_column, ctx)
        _check_one_column(first, ctx)
        n_rows = n_lines - ctx.first_row
        if n_rows == 0:
            raise data_error(f"{path}: no data rows after the header line", path, line=2)
        if 2 * n_rows * ctx.ncols - 1 > n_bytes:
            # Fewer bytes than n_rows lines of ncols one-character cells: some line is
            # short. Find it rather than allocate an X the file cannot fill.
            raise _first_error(chain([first], blocks), ctx)
        X = np.empty((n_rows, len(ctx.features)), dtype=out_dtype)
        texts = _fill(chain([first], blocks), ctx, X, parse, finite)
    y = None if texts is None else _labels(texts, n_rows, ctx, finite)
    if X.shape[1] == 0:
        raise data_error(
            f"{path}: the only column is the label column: no feature columns "
            "(pass label_column=None if it holds features)",
            path,
            line=1,
        )
    return X, y


@dataclass
class _Context:
    """The file's layout, and what error messages need to know about it."""

    path: Path
    delim: int
    ncols: int
    names: list[str] | None  # None when the first line is data
    data_first: bool = False  # True when header detection read line 1 as data
    label: int | None = None  # 0-based index of the label column
    arrow_piece: int = 0  # pyarrow's piece size, once a line was longer than the default

    @property
    def first_row(self) -> int:
        """Lines before the first data row: 1 with a header, else 0."""
        return int(self.names is not None)

    @cached_property
    def features(self) -> list[int]:
        """0-based indices of the feature columns (read once ``label`` is set)."""
        return [j for j in range(self.ncols) if j != self.label]

    @property
    def sep(self) -> str:
        return chr(self.delim)

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


# ----------------------------------------------------------------------------- checks


def _check_delimiter(delimiter: str) -> int:
    if not isinstance(delimiter, str) or len(delimiter) != 1 or not delimiter.isascii():
        raise ValueError(f"load_csv: delimiter must be one ASCII character, got {delimiter!r}")
    if delimiter in "0123456789.eE+-\"'\r\n":
        raise ValueError(
            f"load_csv: delimiter {delimiter!r} cannot separate numbers (it can be part of one)"
        )
    return ord(delimiter)


def _check_dtype(dtype: npt.DTypeLike) -> np.dtype:
    try:
        checked = np.dtype(dtype)
    except TypeError as err:
        raise TypeError(f"load_csv: dtype must be a floating type, got {dtype!r}") from err
    if not np.issubdtype(checked, np.floating):
        raise TypeError(f"load_csv: dtype must be a floating type, got {checked}")
    return checked


# ----------------------------------------------------------------------------- reading


def _open(path: Path) -> BufferedIOBase:
    if not path.is_file():
        raise FileNotFoundError(f"load_csv: no such file: {path}")
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def _gzip_error(path: Path, err: Exception) -> DataError:
    return data_error(f"{path}: corrupt or truncated gzip stream: {err}", path)


# EOFError: a cut gzip stream; BadGzipFile (an OSError): a bad header; zlib.error: bad data.
_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def _count_content_lines(path: Path) -> tuple[int, int]:
    """Lines up to the last one that is not blank, and their bytes: the first pass."""
    newlines = 0
    content = 0
    size = 0  # bytes read before this chunk
    end = 0  # bytes up to the end of the last non-blank line
    with _open(path) as handle:
        try:
            first = True
            while data := handle.read(_COUNT_BYTES):
                if first:  # a byte-order mark is not content: a file of one is empty
                    data, first = data.removeprefix(BOM), False
                kept = _content_length(data)
                found = data.count(b"\n")
                if kept:
                    content = newlines + found - data.count(b"\n", kept) + 1
                    end = size + kept
                newlines += found
                size += len(data)
        except _GZIP_ERRORS as err:
            raise _gzip_error(path, err) from err
    return content, end


def _content_length(data: bytes) -> int:
    """len(data.rstrip()) without copying all of ``data`` (only its tail, usually)."""
    for size in (4096, len(data)):
        tail = data[-size:]
        kept = len(tail.rstrip())
        if kept or size >= len(data):
            return len(data) - len(tail) + kept
    return 0  # not reached: the second size always returns


def _iter_blocks(handle: BufferedIOBase, path: Path, size: int) -> Iterator[bytes]:
    """Yield blocks of whole lines, each ending in b'\\n' (one is added at EOF if needed).

    At least one block, even for an empty file (or one holding only a byte-order mark).
    """
    pending: list[bytes] = []  # pieces of a line longer than a block: joined once
    first = True
    yielded = False
    try:
        while data := handle.read(size):
            if first:
                data, first = data.removeprefix(BOM), False
            cut = data.rfind(b"\n") + 1
            if not cut:
                pending.append(data)
                continue
            yield b"".join([*pending, data[:cut]])
            yielded = True
            pending = [data[cut:]]
    except _GZIP_ERRORS as err:
        raise _gzip_error(path, err) from err
    tail = b"".join(pending)
    if tail or not yielded:
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
    # NUL is no text (and a NumPy str array would drop it at the end of a label anyway).
    return text.strip().strip("\"'\x00").strip()


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


def _check_one_column(first: bytes, ctx: _Context) -> None:
    """One column, and another delimiter in every one of the first lines: say so."""
    if ctx.ncols != 1:
        return
    lines = [line.strip() for line in first.decode("utf-8", errors="replace").split("\n")[:3]]
    lines = [line for line in lines if line]
    for guess in _DELIMITER_GUESSES:
        if guess != ctx.sep and all(guess in line for line in lines):
            raise data_error(
                f"{ctx.path}: one column found with delimiter {ctx.sep!r}; is the "
                f"delimiter {guess!r}? pass delimiter={guess!r} (on the command line: "
                f"--delimiter {_shell(guess)})",
                ctx.path,
                line=1,
            )


def _shell(sep: str) -> str:
    """``sep`` as a command-line argument (numnet's ``--delimiter`` takes ``tab``)."""
    return "tab" if sep == "\t" else f"'{sep}'"


def _label_block(cells: bytes, done: list[bytes], ctx: _Context) -> bytes:
    """A block's label cells (one a line), checked for empty ones.

    They are kept as these bytes, compact whatever the file, and read as numbers or text
    once the whole column is known. ``done`` are the blocks before.
    """
    if _BLANK_LINE.search(cells):
        texts = _decode(b"\n".join([*done, cells])).split("\n")
        blank = ctx.ncols == 1  # the label cell is the whole line
        raise _empty_label_error([t.strip() for t in texts], ctx, ctx.first_row + 1, blank)
    return cells


def _labels(blocks: list[bytes], n_rows: int, ctx: _Context, finite: bool) -> np.ndarray:
    """The label cells as int64, float64 or str labels (see ``load_csv``)."""
    cells = b"\n".join(blocks)
    exact = _loadtxt_labels(cells, n_rows, ctx, np.int64)  # plain integers, as they are
    if exact is not None:
        return exact
    values = _loadtxt_labels(cells, n_rows, ctx, np.float64)
    if values is None:
        names = [_unquote(cell) for cell in _decode(cells).split("\n")]
        if not all(names):  # a quoted empty cell
            raise _empty_label_error(names, ctx, ctx.first_row + 1)
        y = np.array(names, dtype=str)
        _check_first_label(y, ctx)
        return y
    if finite and not np.isfinite(values).all():
        i = int(np.argmin(np.isfinite(values)))
        cell = _decode(cells).split("\n")[i].strip()
        raise ctx.error(ctx.first_row + 1 + i, ctx.label,
                        f"label {_shown(cell)} is not a finite number")  # fmt: skip
    if not np.isfinite(values).all() or not np.array_equal(values, np.trunc(values)):
        return values
    if np.abs(values).max() < 2.0**53:  # 2.0, 3e0: integral, and exact in float64
        return values.astype(np.int64)
    # Integral, but beyond int64 or beyond 2**53 and not written as an integer (10**30,
    # 1e30): float64 would merge distinct labels, so they stay their text.
    return np.array([cell.strip() for cell in _decode(cells).split("\n")], dtype=str)


def _loadtxt_labels(
    cells: bytes, n_rows: int, ctx: _Context, dtype: type[np.generic]
) -> np.ndarray | None:
    """The labels (one a line) parsed by NumPy as ``dtype``; None if some cell is not one."""
    try:
        values = np.loadtxt(
            io.BytesIO(cells), dtype=dtype, delimiter=ctx.sep, comments=None, ndmin=1,
            encoding="utf-8",
        )  # fmt: skip
    except (ValueError, OverflowError):  # UnicodeDecodeError is a ValueError
        return None
    return values if values.shape == (n_rows,) else None


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _empty_label_error(
    cells: list[str], ctx: _Context, first_line: int, blank: bool = False
) -> DataError:
    """Name the first empty label (``cells`` start on ``first_line``), worded as a class
    name if text labels came before it; ``blank``: the label cell is the whole line."""
    i = cells.index("")
    line = first_line + i
    if blank:
        return ctx.error(line, None, "blank line (blank lines are only allowed at the end)")
    if any(not _NUMBER_RE.fullmatch(cell) for cell in cells[:i]):
        return ctx.error(line, ctx.label, "empty label cell, expected a class name or a number")
    return ctx.error(line, ctx.label, "empty cell, expected a number")


def _check_first_label(y: np.ndarray, ctx: _Context) -> None:
    """A text label on a line 1 read as data, above numbers only, is a header cell."""
    if not ctx.data_first or y.size < 2 or _NUMBER_RE.fullmatch(y[0]):
        return
    if all(_NUMBER_RE.fullmatch(text) for text in y[1:].tolist()):  # stops at a text label
        what = f"{_shown(str(y[0]))} is not a number, and every other label is"
        raise ctx.error(1, ctx.label, what)


# ------------------------------------------------------------------------ second pass


def _fill(
    blocks: Iterator[bytes], ctx: _Context, X: np.ndarray, parse: Parser, finite: bool
) -> list[bytes] | None:
    """Parse the blocks of the whole file into the rows of ``X``; return the label texts."""
    n_rows = X.shape[0]
    labels: list[bytes] | None = None if ctx.label is None else []  # a block's cells each
    row = 0
    for block in _data_blocks(blocks, ctx.names is not None):
        if row == n_rows:
            break  # what is left are the trailing blank lines the first pass skipped
        k = block.count(b"\n")
        if not k:
            continue
        if row + k > n_rows:
            block = _first_lines(block, n_rows - row)
            k = n_rows - row
        first_line = ctx.first_row + 1 + row
        block = _without_cr(block, ctx.path, first_line)
        out = X[row : row + k]
        try:
            texts = parse(block, ctx, out)
        except Refused as err:
            raise _locate(block, ctx, first_line, str(err)) from None
        if finite:
            _check_finite(out, block, ctx, first_line)
        if labels is not None and texts is not None:
            labels.append(_label_block(texts, labels, ctx))
        row += k
    if row != n_rows:
        raise data_error(
            f"{ctx.path}: found {row} data rows, but the first pass counted {n_rows} "
            "(did the file change while it was read?)",
            ctx.path,
        )
    return labels


def _data_blocks(blocks: Iterator[bytes], has_header: bool) -> Iterator[bytes]:
    """The blocks without the header line."""
    first = next(blocks)
    yield first[first.find(b"\n") + 1 :] if has_header else first
    yield from blocks


def _first_lines(block: bytes, k: int) -> bytes:
    end = -1
    for _ in range(k):  # only for the last block, whose extra lines are blank
        end = block.index(b"\n", end + 1)
    return block[: end + 1]


def _without_cr(block: bytes, path: Path, first_line: int) -> bytes:
    """``\\r\\n`` line endings made ``\\n``; a bare ``\\r`` is an error (parsers split there)."""
    if b"\r" not in block:
        return block
    block = block.replace(b"\r\n", b"\n")
    if b"\r" in block:
        raise _bare_cr_error(path, first_line + block.count(b"\n", 0, block.index(b"\r")))
    return block


def _bare_cr_error(path: Path, line: int) -> DataError:
    return data_error(
        f"{path}: line {line}: a carriage return (\\r) not followed by a line feed; "
        "expected lines ending in \\n or \\r\\n (old Mac line endings? convert them to \\n)",
        path,
        line=line,
    )


def _check_finite(out: np.ndarray, block: bytes, ctx: _Context, first_line: int) -> None:
    """With ``finite=True``: name the first NaN or infinite feature of a block."""
    if np.isfinite(out).all():
        return
    i, j = (int(k) for k in np.argwhere(~np.isfinite(out))[0])
    column = ctx.features[j]
    line = block.split(b"\n", i + 1)[i].decode("utf-8", errors="replace")
    text = line.split(ctx.sep)[column].strip()
    if text.lstrip("+-")[:3].lower() in ("nan", "inf"):
        what = f"{_shown(text)} is not a finite number"
    else:
        what = f"{_shown(text)} is beyond the range of {out.dtype} (it would be inf)"
    raise ctx.error(first_line + i, column, what)


# ------------------------------------------------------------------------- errors


def _locate(block: bytes, ctx: _Context, first_line: int, reason: str) -> DataError:
    """The error for the first bad line of a block the parser refused."""
    error = _first_problem(block, ctx, first_line)
    if error is not None:
        return error
    # Not expected: the parser refused what _line_problem accepts.
    last = first_line + block.count(b"\n") - 1
    return ctx.error(first_line, None, f"cannot parse lines {first_line}..{last}: {reason}")


def _first_error(blocks: Iterator[bytes], ctx: _Context) -> DataError:
    """The error for the first bad line of a file known to have one."""
    row = 0
    for block in _data_blocks(blocks, ctx.names is not None):
        first_line = ctx.first_row + 1 + row
        error = _first_problem(_without_cr(block, ctx.path, first_line), ctx, first_line)
        if error is not None:
            return error
        row += block.count(b"\n")
    return data_error(f"{ctx.path}: lines with missing cells", ctx.path)  # not reached


def _first_problem(block: bytes, ctx: _Context, first_line: int) -> DataError | None:
    """The error for the first line of a block that is not valid, or None.

    Python looks at every cell, at about a microsecond each: this runs only once the
    parser has refused the block, or the file is known to be wrong.
    """
    lines = block.decode("utf-8", errors="replace").split("\n")[:-1]
    for i, line in enumerate(lines):
        found = _line_problem(line, ctx)
        if found == (ctx.label, ""):  # an empty label cell: worded as _labels words it
            assert ctx.label is not None
            texts = label_cells(lines[: i + 1], ctx.label, ctx.sep, ctx.ncols)
            return _empty_label_error([text.strip() for text in texts], ctx, first_line)
        if found is not None:
            return ctx.error(first_line + i, *found)
    return None


def _line_problem(line: str, ctx: _Context) -> tuple[int | None, str] | None:
    """(0-based column or None, what is wrong) for a line that is not valid.

    An empty label cell gives ``(label, "")``: its wording depends on the labels above.
    """
    if not line.strip():
        return None, "blank line (blank lines are only allowed at the end)"
    cells = line.split(ctx.sep)
    if len(cells) != ctx.ncols:
        found = len(cells)
        side = "extra cell(s)" if found > ctx.ncols else "missing cell(s)"
        return min(found, ctx.ncols), f"{_cells(found)}, expected {ctx.ncols}: {side} from here"
    for j, cell in enumerate(cells):
        if not cell.strip():
            last = " (the line ends with the delimiter)" if j == len(cells) - 1 else ""
            return j, "" if j == ctx.label else f"empty cell, expected a number{last}"
        if j != ctx.label and not _NUMBER_RE.fullmatch(cell):
            return j, f"{_shown(cell)} is not a number"
    return None


def _cells(n: int) -> str:
    return f"{n} cell" if n == 1 else f"{n} cells"


def _shown(text: str, limit: int = 40) -> str:
    """A cell's text quoted for a message; a long one cut in the middle (400 digits...)."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[: limit // 2]!r}...{text[-10:]!r} ({len(text)} characters)"
