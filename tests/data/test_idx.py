"""IDX reader and writer: round trips, every structural check, atomic writes."""

from __future__ import annotations

import gzip
import math
import os
import re
import stat
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numnet.data import DataError, read_idx, write_idx
from numnet.data.idx import atomic_write

DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]
CODES = {"uint8": 0x08, "int8": 0x09, "int16": 0x0B, "int32": 0x0C, "float32": 0x0D,
         "float64": 0x0E}  # fmt: skip


def idx_bytes(code: int, shape: tuple[int, ...], body: bytes) -> bytes:
    header = bytes([0, 0, code, len(shape)]) + np.asarray(shape, dtype=">u4").tobytes()
    return header + body


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("suffix", ["idx", "idx.gz"])
def test_round_trip_every_dtype(tmp_path: Path, dtype: str, suffix: str) -> None:
    array = (np.arange(2 * 3 * 5) - 7).astype(dtype).reshape(2, 3, 5)
    path = tmp_path / f"a.{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable and back.flags.c_contiguous


@pytest.mark.parametrize("shape", [(), (0,), (4,), (2, 0, 3), (1, 2, 3, 4, 5)])
def test_round_trip_any_rank(tmp_path: Path, shape: tuple[int, ...]) -> None:
    array = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    write_idx(tmp_path / "a.idx", array)
    back = read_idx(tmp_path / "a.idx")
    assert back.shape == shape
    np.testing.assert_array_equal(back, array)


@settings(max_examples=25, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.dtype(d) for d in DTYPES]),
        shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
    ),
    st.booleans(),
)
def test_round_trip_property(tmp_path_factory: pytest.TempPathFactory, array: np.ndarray,
                             gz: bool) -> None:
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if gz else "a.idx")
    write_idx(path, array)
    np.testing.assert_array_equal(read_idx(path), array)  # NaN == NaN here


def test_reads_big_endian_as_stored(tmp_path: Path) -> None:
    # Written by hand, independently of write_idx: int16 1 and 258 are 00 01 and 01 02.
    (tmp_path / "a.idx").write_bytes(idx_bytes(0x0B, (2,), b"\x00\x01\x01\x02"))
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), [1, 258])


def test_gz_output_is_reproducible(tmp_path: Path) -> None:
    array = np.arange(100, dtype=np.uint8)
    write_idx(tmp_path / "a.idx.gz", array)
    write_idx(tmp_path / "b.idx.gz", array)
    assert (tmp_path / "a.idx.gz").read_bytes() == (tmp_path / "b.idx.gz").read_bytes()
    assert gzip.decompress((tmp_path / "a.idx.gz").read_bytes())[:4] == b"\x00\x00\x08\x01"


# ------------------------------------------------------------------------ reader checks


def read_error(tmp_path: Path, content: bytes, name: str = "bad.idx") -> str:
    path = tmp_path / name
    path.write_bytes(gzip.compress(content) if name.endswith(".gz") else content)
    with pytest.raises(DataError) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert info.value.path == str(path)
    return str(info.value)


def test_too_short_for_magic(tmp_path: Path) -> None:
    assert "fewer than the 4 of the magic number" in read_error(tmp_path, b"\x00\x00")


def test_bad_magic_number(tmp_path: Path) -> None:
    message = read_error(tmp_path, b"\x1f\x8b\x08\x00" + bytes(20))
    assert "magic number 0x1f8b0800" in message and "first two bytes must be zero" in message


def test_unknown_dtype_code(tmp_path: Path) -> None:
    message = read_error(tmp_path, idx_bytes(0x0A, (2,), b"\x00\x00"))
    assert "unknown IDX dtype code 0x0A" in message and "0x08 uint8" in message


def test_truncated_dimensions(tmp_path: Path) -> None:
    message = read_error(tmp_path, bytes([0, 0, 8, 3]) + b"\x00\x00\x00\x02")
    assert "truncated IDX header" in message and "needs 12 bytes" in message
    assert "found 4" in message


@pytest.mark.parametrize("name", ["bad.idx", "bad.idx.gz"])
def test_truncated_data_says_expected_and_found(tmp_path: Path, name: str) -> None:
    content = idx_bytes(0x0C, (10, 3), bytes(100))  # int32: 120 bytes declared
    message = read_error(tmp_path, content, name)
    assert "truncated IDX file" in message
    assert "120 data bytes" in message and "only 100 were found" in message


def test_trailing_bytes(tmp_path: Path) -> None:
    message = read_error(tmp_path, idx_bytes(0x08, (3,), bytes(5)))
    assert "shape (3,)" in message and "2 more bytes" in message


def test_gzip_stream_cut_in_the_middle(tmp_path: Path) -> None:
    body = np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8).tobytes()
    full = gzip.compress(idx_bytes(0x08, (1000,), body))
    path = tmp_path / "cut.idx.gz"
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message and info.value.path == str(path)
    assert "truncated gzip stream" in message and "shape (1000,)" in message
    assert "1000 data bytes" in message
    found = int(re.search(r"after (\d+) of them were decompressed", message).group(1))
    assert 0 < found < 1000


def test_gzip_stream_cut_in_the_header(tmp_path: Path) -> None:
    full = gzip.compress(idx_bytes(0x08, (3,), b"abc"))
    path = tmp_path / "cut.idx.gz"
    path.write_bytes(full[:12])  # the gzip header and a few bytes of deflate data
    with pytest.raises(DataError, match="corrupt or truncated gzip stream"):
        read_idx(path)


def test_corrupt_gzip_stream(tmp_path: Path) -> None:
    full = bytearray(gzip.compress(idx_bytes(0x08, (100,), bytes(range(100)))))
    full[-8] ^= 0xFF  # the CRC32 of the trailer
    path = tmp_path / "crc.idx.gz"
    path.write_bytes(bytes(full))
    with pytest.raises(DataError, match="corrupt or truncated gzip stream: CRC check"):
        read_idx(path)


@pytest.mark.parametrize("name", ["huge.idx", "huge.idx.gz"])
@pytest.mark.parametrize(
    "shape", [(60_000_000, 28, 28), (2**32 - 1, 28, 28), (2**32 - 1, 2**32 - 1, 2**32 - 1)]
)
def test_impossible_dimensions_fail_before_allocating(tmp_path: Path, name: str,
                                                      shape: tuple[int, ...]) -> None:
    # Without the check: MemoryError (43.8 GiB) or "array is too big", naming no file.
    tracemalloc.start()
    try:
        message = read_error(tmp_path, idx_bytes(0x08, shape, bytes(100)), name)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 21, peak
    assert f"shape {shape}" in message and f"{math.prod(shape)} data bytes" in message
    assert "only 100 were found" in message


@pytest.mark.parametrize("name", ["zero.idx", "zero.idx.gz"])
def test_zero_size_shape_beyond_numpys_range(tmp_path: Path, name: str) -> None:
    """A 0 dimension makes no data bytes, but NumPy still refuses dimensions whose other
    factors overflow its index range (found by the fuzz test): a DataError, not NumPy's
    bare ValueError."""
    shape = (0, 2**32 - 1, 2**32 - 1)
    message = read_error(tmp_path, idx_bytes(0x08, shape, b""), name)
    assert f"shape {shape}" in message and "beyond any array" in message
    ok = (0, 2**31, 2**31)  # within range: an empty array of that shape
    path = tmp_path / name
    path.write_bytes(gzip.compress(idx_bytes(0x08, ok, b"")) if name.endswith(".gz")
                     else idx_bytes(0x08, ok, b""))  # fmt: skip
    assert read_idx(path).shape == ok


def test_forged_gzip_trailer_cannot_force_an_allocation(tmp_path: Path) -> None:
    shape = (60_000_000, 28, 28)
    header_and_data = 16 + math.prod(shape)
    full = gzip.compress(idx_bytes(0x08, shape, bytes(100)))
    forged = full[:-4] + (header_and_data % 2**32).to_bytes(4, "little")  # ISIZE agrees
    path = tmp_path / "forged.idx.gz"
    path.write_bytes(forged)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=str(path)):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 21, peak


def test_multi_member_gzip_is_read_in_chunks(tmp_path: Path) -> None:
    array = np.arange(3000, dtype=np.int32).reshape(30, 100)
    content = idx_bytes(0x0C, array.shape, array.astype(">i4").tobytes())
    path = tmp_path / "two.idx.gz"  # ISIZE covers the second member only
    path.write_bytes(gzip.compress(content[:5000]) + gzip.compress(content[5000:]))
    back = read_idx(path)
    np.testing.assert_array_equal(back, array)
    assert back.dtype.isnative and back.flags.writeable


def test_gz_trailing_bytes(tmp_path: Path) -> None:
    message = read_error(tmp_path, idx_bytes(0x08, (3,), bytes(5)), "bad.idx.gz")
    assert "shape (3,)" in message and "at least 2 more bytes" in message


def test_gz_name_without_gzip_content(tmp_path: Path) -> None:
    path = tmp_path / "plain.idx.gz"
    path.write_bytes(idx_bytes(0x08, (2,), b"\x01\x02"))
    with pytest.raises(DataError, match="gzip"):
        read_idx(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.idx")


# ------------------------------------------------------------------------ writer checks


@pytest.mark.parametrize("dtype", ["bool", "int64", "uint16", "complex64", "float16"])
def test_write_refuses_dtypes_without_code(tmp_path: Path, dtype: str) -> None:
    with pytest.raises(DataError, match=f"dtype {dtype} has no IDX code"):
        write_idx(tmp_path / "a.idx", np.zeros(3, dtype=dtype))
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_dimensions_beyond_uint32(tmp_path: Path) -> None:
    huge = np.broadcast_to(np.uint8(0), (2**32,))  # a view: no 4 GB allocated
    with pytest.raises(DataError, match="does not fit IDX"):
        write_idx(tmp_path / "a.idx", huge)


def test_write_into_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_idx(tmp_path / "no" / "a.idx", np.zeros(3, np.uint8))


@pytest.mark.parametrize("interruption", [RuntimeError, KeyboardInterrupt])
def test_atomic_write_keeps_old_file_on_error(tmp_path: Path, interruption: type) -> None:
    path = tmp_path / "a.idx"
    write_idx(path, np.arange(5, dtype=np.uint8))
    before = path.read_bytes()
    with pytest.raises(interruption), atomic_write(path) as handle:
        handle.write(b"half")
        raise interruption("interrupted")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.idx"]  # no temporary left


def test_written_file_mode_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_idx(tmp_path / "a.idx", np.zeros(2, np.uint8))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.idx").stat().st_mode) == 0o644


# ---------------------------------------------------------------------------- real data


def test_real_mnist_files(mnist_dir: Path) -> None:
    images = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974,
                                            1009]  # fmt: skip
