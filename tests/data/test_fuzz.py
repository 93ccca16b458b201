"""Fuzzing the file loaders (issue 13): whatever bytes a CSV or IDX file holds, plain or
gzipped, ``load_csv`` and ``read_idx`` return arrays or raise their documented error, a
:class:`DataError` (a ``ValueError``) naming the file. Never an IndexError, TypeError,
MemoryError, OverflowError, zlib.error, EOFError, RecursionError, UnicodeDecodeError...

Inputs are random bytes, truncations and mutations (bytes replaced, inserted or deleted;
CSV cells replaced by hostile ones) of a valid file, and the same gzipped, plus
mutations of the gzip stream itself. Hypothesis runs derandomized with a fixed number
of examples, so CI sees the same inputs every time.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from numnet.data import DataError, load_csv, read_idx, write_idx

FUZZ = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

VALID_CSV = (
    b"label,a,b,c\n"
    b"1,0.5,-2,3e1\n"
    b"0, 1.25 ,nan,4\n"
    b"2,7,8,-Infinity\n"
    b"1,.5,6.,1E-3\n"
)
HOSTILE_CELLS = [
    b"", b" ", b"nan", b"inf", b"-0", b"1e999", b"1e-999", b"9" * 400, b"0." + b"0" * 400 + b"5",
    b"1e" + b"0" * 400 + b"1", b"1" + b"0" * 30, b'"x"', b"'", b"\"", b"x", b"1,2", b"1;2",
    b"\r", b"\r\n", b"\n", b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b"\t", b"#", b"0x1A",
    b"1_000", b"--1", b"1e", b".", b"+", b"setosa", "é".encode(), b"\\", b"1.2.3",
]  # fmt: skip
CSV_BYTES = b"0123456789.,;-+eE\r\n \t\"'nainfNAIF#\x00\xff"


def check_csv(path: Path, engine: str) -> None:
    """load_csv(path) gives consistent arrays, or a DataError naming the file."""
    for label_column in (0, None, -1):
        try:
            X, y = load_csv(path, label_column=label_column, engine=engine)
        except DataError as err:
            assert str(path) in str(err), err
            assert isinstance(err, ValueError)
            continue
        assert X.ndim == 2 and X.dtype == np.float32 and X.flags.c_contiguous
        assert X.shape[0] >= 1
        if label_column is None:
            assert y is None
        else:
            assert y is not None and y.shape == (X.shape[0],)
            assert y.dtype.kind in "ifU"


def check_idx(path: Path) -> None:
    """read_idx(path) gives an array, or a DataError naming the file."""
    try:
        array = read_idx(path)
    except DataError as err:
        assert str(path) in str(err), err
        return
    assert isinstance(array, np.ndarray) and array.dtype.isnative


def mutate(data: bytes, draw: st.DrawFn, alphabet: bytes) -> bytes:
    """A few bytes of ``data`` replaced, inserted or deleted."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["replace", "insert", "delete"]))
        at = draw(st.integers(0, max(len(out) - 1, 0)))
        byte = draw(st.one_of(st.sampled_from(list(alphabet)), st.integers(0, 255)))
        if kind == "replace" and out:
            out[at] = byte
        elif kind == "insert":
            out.insert(at, byte)
        elif out:
            del out[at]
    return bytes(out)


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """Random bytes, a truncation, byte mutations or cell replacements of VALID_CSV."""
    kind = draw(st.sampled_from(["random", "truncate", "mutate", "cells"]))
    if kind == "random":
        return draw(st.binary(max_size=200))
    if kind == "truncate":
        return VALID_CSV[: draw(st.integers(0, len(VALID_CSV)))]
    if kind == "mutate":
        return mutate(VALID_CSV, draw, CSV_BYTES)
    lines = [line.split(b",") for line in VALID_CSV.split(b"\n")]
    for _ in range(draw(st.integers(1, 3))):
        row = draw(st.integers(0, len(lines) - 1))
        col = draw(st.integers(0, len(lines[row]) - 1))
        lines[row][col] = draw(st.sampled_from(HOSTILE_CELLS))
    return b"\n".join(b",".join(cells) for cells in lines)


@st.composite
def gzip_files(draw: st.DrawFn, content: st.SearchStrategy[bytes]) -> bytes:
    """``content`` gzipped, and sometimes the gzip stream cut or damaged."""
    packed = gzip.compress(draw(content), mtime=0)
    kind = draw(st.sampled_from(["intact", "truncate", "mutate"]))
    if kind == "truncate":
        return packed[: draw(st.integers(0, len(packed)))]
    if kind == "mutate":
        return mutate(packed, draw, b"\x00\xff\x1f\x8b")
    return packed


def engines() -> list[str]:
    try:
        import pyarrow  # noqa: F401, PLC0415  (optional: fuzz its parser only when there)
    except ImportError:
        return ["numpy"]
    return ["numpy", "pyarrow"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def test_valid_files_load(folder: Path) -> None:
    """The seeds of the fuzzing are valid: the errors below come from the mutations."""
    (folder / "valid.csv").write_bytes(VALID_CSV)
    X, y = load_csv(folder / "valid.csv")
    assert X.shape == (4, 3) and y.tolist() == [1, 0, 2, 1]
    write_idx(folder / "valid.idx", np.arange(60, dtype=np.int16).reshape(3, 4, 5))
    assert read_idx(folder / "valid.idx").shape == (3, 4, 5)


@pytest.mark.parametrize("engine", engines())
@FUZZ
@given(data=csv_files())
def test_csv_fuzz(folder: Path, engine: str, data: bytes) -> None:
    path = folder / "fuzz.csv"
    path.write_bytes(data)
    check_csv(path, engine)


@pytest.mark.parametrize("engine", engines())
@FUZZ
@given(data=gzip_files(csv_files()))
def test_csv_gzip_fuzz(folder: Path, engine: str, data: bytes) -> None:
    path = folder / "fuzz.csv.gz"
    path.write_bytes(data)
    check_csv(path, engine)


def idx_seeds() -> list[bytes]:
    """Valid IDX files of several dtypes and ranks, as bytes."""
    seeds = []
    for dtype, shape in [(">u1", (3, 4, 5)), (">i4", (6,)), (">f8", (2, 3)), (">i2", ())]:
        array = np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)
        code = {"u1": 0x08, "i4": 0x0C, "f8": 0x0E, "i2": 0x0B}[dtype[1:]]
        header = bytes([0, 0, code, len(shape)]) + np.asarray(shape, dtype=">u4").tobytes()
        seeds.append(header + array.tobytes())
    return seeds


@st.composite
def idx_files(draw: st.DrawFn) -> bytes:
    """Random bytes, a truncation, byte or header-field mutations of a valid IDX file."""
    seed = draw(st.sampled_from(idx_seeds()))
    kind = draw(st.sampled_from(["random", "truncate", "mutate", "header"]))
    if kind == "random":
        return draw(st.binary(max_size=100))
    if kind == "truncate":
        return seed[: draw(st.integers(0, len(seed)))]
    if kind == "mutate":
        return mutate(seed, draw, b"\x00\x01\x08\x0b\x0c\x0d\x0e\xff")
    # A header field replaced: the dtype code, the rank or one dimension.
    out = bytearray(seed)
    field = draw(st.integers(2, min(len(seed), 4 + 4 * seed[3]) - 1))
    out[field] = draw(st.integers(0, 255))
    if field >= 4:  # a whole dimension
        start = 4 + 4 * ((field - 4) // 4)
        dim = draw(st.sampled_from([0, 1, 2**31 - 1, 2**32 - 1, 7]))
        out[start : start + 4] = dim.to_bytes(4, "big")
    return bytes(out)


@FUZZ
@given(data=idx_files())
def test_idx_fuzz(folder: Path, data: bytes) -> None:
    path = folder / "fuzz.idx"
    path.write_bytes(data)
    check_idx(path)


@FUZZ
@given(data=gzip_files(idx_files()))
def test_idx_gzip_fuzz(folder: Path, data: bytes) -> None:
    path = folder / "fuzz.idx.gz"
    path.write_bytes(data)
    check_idx(path)

