"""load_csv: formats it accepts, values it parses, errors it names, memory it uses.

Every test runs once per parser (``engine="numpy"`` and, when installed, ``"pyarrow"``):
both must give the same values and the same errors.
"""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numnet.data._csv_parsers as parsers
import numnet.data.csv as csv_module
from numnet.data import DataError, load_csv


@pytest.fixture
def write(tmp_path: Path):
    """write(text, name="data.csv") -> path of a file holding ``text``."""

    def _write(text: str | bytes, name: str = "data.csv") -> Path:
        path = tmp_path / name
        raw = text.encode() if isinstance(text, str) else text
        path.write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)
        return path

    return _write


@pytest.fixture(autouse=True, params=["numpy", "pyarrow"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with this parser as load_csv's default ``engine``."""
    if request.param == "pyarrow":
        pytest.importorskip("pyarrow")
    monkeypatch.setitem(load_csv.__kwdefaults__, "engine", request.param)
    return str(request.param)


@pytest.fixture
def tiny_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse in 64-byte blocks, so that short files cross many block boundaries."""
    for name in ("NUMPY_BLOCK_BYTES", "ARROW_BLOCK_BYTES", "ARROW_PIECE_BYTES"):
        monkeypatch.setattr(parsers, name, 64)
    monkeypatch.setattr(csv_module, "_COUNT_BYTES", 64)


# ------------------------------------------------------------------------------ layout


def test_header_detected_and_label_first(write) -> None:
    X, y = load_csv(write("label,a,b\n1,2,3\n0,5.5,-6e2\n"))
    assert X.dtype == np.float32 and X.shape == (2, 2)
    np.testing.assert_array_equal(X, [[2, 3], [5.5, -600]])
    assert y.dtype == np.int64 and y.tolist() == [1, 0]


def test_no_header_detected(write) -> None:
    X, y = load_csv(write("1,2,3\n4,5,6\n"))
    np.testing.assert_array_equal(X, [[2, 3], [5, 6]])
    assert y.tolist() == [1, 4]


def test_header_declared_true_on_numeric_first_line(write) -> None:
    X, y = load_csv(write("1,2\n3,4\n"), header=True)
    assert X.tolist() == [[4.0]] and y.tolist() == [3]


def test_header_declared_false_makes_a_text_first_line_an_error(write) -> None:
    # The label 'a' is text (a class name); the feature 'b' is not a number.
    with pytest.raises(DataError, match=r"line 1, column 2: 'b' is not a number"):
        load_csv(write("a,b\n1,2\n"), header=False)


def test_first_line_with_a_number_is_data_and_says_how_to_declare_a_header(write) -> None:
    path = write("1,2,x\n3,4,5\n")
    with pytest.raises(DataError) as info:
        load_csv(path)
    assert "line 1, column 3: 'x' is not a number" in str(info.value)
    assert "pass header=True" in str(info.value)
    X, y = load_csv(path, header=True)  # declared: line 1 is the header after all
    assert X.tolist() == [[4.0, 5.0]] and y.tolist() == [3]


@pytest.mark.parametrize(
    ("first", "names"),
    [(",a,b", ["", "a", "b"]), ('"a","1","2"', ["a", "1", "2"]), ("a, b ,c", ["a", "b", "c"])],
)
def test_header_detected_with_empty_or_quoted_numeric_names(write, first, names) -> None:
    X, y = load_csv(write(f"{first}\n1,2,3\n"), label_column=names[-1])
    assert X.tolist() == [[1.0, 2.0]] and y.tolist() == [3]


def test_bare_carriage_return_across_blocks(write, tiny_blocks) -> None:
    rows = ["1,22,333,4444"] * 200
    rows[150] = "1,22\r,333,4444"
    error = csv_error(write("a,b,c,d\r\n" + "\r\n".join(rows) + "\r\n"))
    assert error.line == 152 and "carriage return" in str(error)


def test_label_by_name_and_by_negative_index(write) -> None:
    path = write("x0,x1,target\n1,2,0\n3,4,1\n")
    X, y = load_csv(path, label_column="target")
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])
    assert y.tolist() == [0, 1]
    X2, y2 = load_csv(path, label_column=-1)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)


def test_quoted_header_names(write) -> None:
    _, y = load_csv(write('"a","label"\n1,7\n'), label_column="label")
    assert y.tolist() == [7]


def test_no_labels(write) -> None:
    X, y = load_csv(write("1,2\n3,4\n"), label_column=None)
    assert y is None and X.shape == (2, 2)


def test_float_labels_stay_float(write) -> None:
    _, y = load_csv(write("0.5,1\n2,3\n"))
    assert y.dtype == np.float64 and y.tolist() == [0.5, 2.0]


def test_integral_float_labels_become_int64(write) -> None:
    _, y = load_csv(write("1.0,1\n2e0,3\n-3,3\n"))
    assert y.dtype == np.int64 and y.tolist() == [1, 2, -3]


@pytest.mark.parametrize("delimiter", [";", "\t", "|", " "])
def test_delimiters(write, delimiter: str) -> None:
    text = f"y{delimiter}a\n1{delimiter}2.5\n0{delimiter}-1\n"
    X, y = load_csv(write(text), delimiter=delimiter)
    assert X[:, 0].tolist() == [2.5, -1.0] and y.tolist() == [1, 0]


def test_crlf_bom_no_final_newline_and_trailing_blank_lines(write) -> None:
    X, y = load_csv(write(b"\xef\xbb\xbflabel,a\r\n1,2\r\n3,4"))
    assert X.ravel().tolist() == [2, 4] and y.tolist() == [1, 3]
    X, _ = load_csv(write("1,2\n3,4\n\n  \n\t\n"))
    assert X.shape == (2, 1)


def test_gzipped_csv(write) -> None:
    X, y = load_csv(write("a,b\n1,2\n3,4\n", name="data.csv.gz"))
    assert X.ravel().tolist() == [2, 4] and y.tolist() == [1, 3]


def test_float64_dtype(write) -> None:
    X, _ = load_csv(write("0,0.1\n"), dtype=np.float64)
    assert X.dtype == np.float64 and X[0, 0] == 0.1


def test_padding_nan_and_inf_take_the_slow_path(write) -> None:
    X, y = load_csv(write("label, a , b\n 1 , 2.5,nan\n2,\tinf , -Infinity\n"))
    assert y.tolist() == [1, 2]
    assert X[0, 0] == 2.5 and np.isnan(X[0, 1])
    assert X[1].tolist() == [np.inf, -np.inf]


def test_many_blocks_and_long_lines(write, tiny_blocks) -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(-500, 500, size=(50, 30))
    text = "\n".join(",".join(map(str, row)) for row in values) + "\n\n"
    X, y = load_csv(write(text))  # every line is longer than a 64-byte block
    np.testing.assert_array_equal(X, values[:, 1:])
    np.testing.assert_array_equal(y, values[:, 0])


# ------------------------------------------------------------------------- text labels

IRIS = """sepal_length,sepal_width,petal_length,petal_width,species
5.1,3.5,1.4,0.2,setosa
7.0, 3.2 ,4.7,1.4, "versicolor"
6.3,3.3,6.0,2.5,'virginica'
"""


def test_text_labels_are_str_and_features_float32(write) -> None:
    X, y = load_csv(write(IRIS), label_column="species")
    assert X.dtype == np.float32
    np.testing.assert_array_equal(X, np.float32([[5.1, 3.5, 1.4, 0.2], [7.0, 3.2, 4.7, 1.4],
                                                 [6.3, 3.3, 6.0, 2.5]]))
    assert y.dtype.kind == "U" and y.tolist() == ["setosa", "versicolor", "virginica"]


def test_text_labels_without_header_gzipped_crlf_and_mixed_with_numbers(write) -> None:
    text = "5.1,3.5,1.0\r\n7,3.2,setosa\r\n6,2,Iris virginica\r\n"
    X, y = load_csv(write(text, name="data.csv.gz"), label_column=-1)
    np.testing.assert_array_equal(X, np.float32([[5.1, 3.5], [7, 3.2], [6, 2]]))
    assert y.tolist() == ["1.0", "setosa", "Iris virginica"]  # every label is its text


def test_single_row_with_a_text_label(write) -> None:
    _, y = load_csv(write("5.1,3.5,setosa\n"), label_column=-1)
    assert y.tolist() == ["setosa"]


@pytest.mark.parametrize("label_column", [0, 2, -1])
def test_text_labels_found_late_across_blocks(write, tiny_blocks, label_column: int) -> None:
    rng = np.random.default_rng(2)
    values = rng.integers(-500, 500, size=(200, 4)).astype(str)
    values[:, label_column] = [f"class {i % 3}" if i >= 150 else str(i % 3) for i in range(200)]
    text = "\n".join(",".join(row) for row in values) + "\n\n"
    X, y = load_csv(write(text), label_column=label_column)  # numbers up to line 150
    assert y.tolist() == values[:, label_column].tolist()
    np.testing.assert_array_equal(X, np.delete(values, label_column % 4, axis=1).astype(float))


def test_numeric_labels_with_padding_and_nan_stay_numbers(write) -> None:
    _, y = load_csv(write("a,b\n1,2\n0, 3\nnan,4\n"))
    assert y.dtype == np.float64 and y[:2].tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ("a,species\n1,setosa\n2, \n", 3, 2, "empty label cell, expected a class name"),
        ('a,species\n1,setosa\n2,""\n', 3, 2, "empty label cell"),
        ("a,species\n1,\n2,setosa\n", 2, 2, "empty cell"),  # before the first text label
        ("a,species,b\n1,setosa,2\n3,versicolor,x\n", 3, 3, "'x' is not a number"),
        ("a,species,b\n1,setosa,2\n3,,4\n", 3, 2, "empty label cell"),
        ("a,species\n1,setosa\n2,virginica,3\n", 3, 3, "3 cells, expected 2"),
        ("a,species\n1,setosa\n\n2,virginica\n", 3, None, "blank line"),
        ("a,species\n1,setosa\r2,virginica\n", 2, None, "carriage return"),
        # Text above numbers on a line 1 detected as data: a header, named as such.
        ("y,0,1\n1,2,3\n2,4,5\n", 1, 1, "'y' is not a number, and every other label is"),
    ],
)
def test_text_label_errors_name_line_and_column(write, text, line, column, words) -> None:
    error = csv_error(write(text), label_column=1 if text.startswith("a,") else 0)
    assert words in str(error)
    assert (error.line, error.column) == (line, column)


def test_text_label_on_a_header_like_line_1_says_how_to_declare_it(write) -> None:
    path = write("label,0,1\n5,2,3\n7,4,5\n")
    assert "pass header=True" in str(csv_error(path))
    X, y = load_csv(path, header=True)
    assert X.tolist() == [[2, 3], [4, 5]] and y.tolist() == [5, 7]
    _, y = load_csv(path, header=False)  # declared data: the labels are text
    assert y.tolist() == ["label", "5", "7"]


def test_text_label_errors_across_blocks(write, tiny_blocks) -> None:
    rows = [f"1,22,class{i % 3},4444" for i in range(200)]
    rows[156] = "1,2x2,class0,4444"
    error = csv_error(write("a,b,c,d\n" + "\n".join(rows) + "\n"), label_column="c")
    assert (error.line, error.column) == (158, 2)
    rows[156] = "1,22, ,4444"
    error = csv_error(write("a,b,c,d\n" + "\n".join(rows) + "\n"), label_column="c")
    assert (error.line, error.column) == (158, 3) and "empty label cell" in str(error)
    rows[156] = "1,22,class0"
    error = csv_error(write("a,b,c,d\n" + "\n".join(rows) + "\n"), label_column="c")
    assert error.line == 158 and "3 cells, expected 4" in str(error)


# ------------------------------------------------------------------------------ values

FORMATS = ["{!r}", "{:.6g}", "{:.18e}", "{:.3f}", "{:.0f}", "{:.2E}"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.floats(min_value=-1e30, max_value=1e30, allow_nan=False, allow_subnormal=False),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from(FORMATS),
)
def test_values_match_python_float(write, values: list[float], fmt: str) -> None:
    cells = [fmt.format(v) for v in values]
    text = ",".join(cells) + "\n"
    X, _ = load_csv(write(text), label_column=None, header=False, dtype=np.float64)
    expected = np.array([float(c) for c in cells])
    # Exact for up to 15 significant digits; longer mantissas may be 1-2 ulp off.
    np.testing.assert_array_max_ulp(X[0], expected, maxulp=2)
    X32, _ = load_csv(write(text), label_column=None, header=False)
    np.testing.assert_array_max_ulp(X32[0], expected.astype(np.float32), maxulp=1)


def test_short_mantissas_are_exact(write) -> None:
    cells = ["0", "-0", "+1.5", ".5", "5.", "1e3", "1E-3", "-2.5e+10", "0.1", "3.14159",
             "123456789012345", "-0.000123", "7e22", "1e400", "1e-400", "-1.0e-5"]  # fmt: skip
    X, _ = load_csv(write(",".join(cells) + "\n"), label_column=None, dtype=np.float64)
    assert X[0].tolist() == [float(c) for c in cells]
    assert np.signbit(X[0, 1])  # "-0" keeps its sign, as float("-0") does


def test_cells_of_hundreds_of_digits(write) -> None:
    cells = ["1" + "0" * 310 + ".5", "0." + "0" * 305 + "17e300", "-" + "9" * 20 + "." + "1" * 300]
    X, _ = load_csv(write(",".join(cells) + "\n"), label_column=None, dtype=np.float64)
    assert X[0].tolist() == [float(c) for c in cells]


# ---------------------------------------------------- hostile inputs (issue 13, classes 4, 5)

LONG_CELLS = [
    "1e" + "0" * 400 + "1",  # 1e1: an exponent of 400 digits
    "0." + "0" * 400 + "5",  # 5e-401: underflows to 0
    "1" + "0" * 399,  # 1e399: a 400-digit integer, beyond float64
    "-" + "9" * 400,
    "1" + "0" * 310 + ".5",
    "0." + "0" * 305 + "17e300",
    "123456789" * 40 + "e-350",  # 1.2345678912345679e+10
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numbers_of_hundreds_of_digits_parse_to_the_right_float(write, tiny_blocks,
                                                               dtype: type) -> None:
    """More than ~309 digits: the correct value (inf when it overflows the dtype), never
    an IndexError, and the other cells of the block keep their values."""
    rows = [["7", cell, "2.5", "-3"] for cell in LONG_CELLS] + [["1", "4", "5", "6"]] * 30
    text = "label,a,b,c\n" + "\n".join(",".join(row) for row in rows) + "\n"
    X, y = load_csv(write(text), dtype=dtype)
    expected = np.array([float(cell) for cell in LONG_CELLS]).astype(dtype)
    np.testing.assert_array_equal(X[: len(LONG_CELLS), 0], expected)
    assert X[:, 1:].tolist() == [[2.5, -3.0]] * len(LONG_CELLS) + [[5.0, 6.0]] * 30
    assert y.tolist() == [7] * len(LONG_CELLS) + [1] * 30


def test_integer_files_beyond_int32_and_negative_zero(write) -> None:
    """Blocks of plain integers are parsed as int32 first: what int32 cannot hold (and
    the sign of -0) must come out as a float parse gives it."""
    cells = ["2147483648", "-2147483649", "9" * 400, "16777217", "-0", "0"]
    X, _ = load_csv(write(",".join(cells) + "\n"), label_column=None, dtype=np.float64)
    assert X[0].tolist() == [float(c) for c in cells] and np.signbit(X[0, 4])
    X, _ = load_csv(write("16777217,2147483647\n"), label_column=None)
    assert X[0].tolist() == [16777216.0, 2147483648.0]  # float32's nearest, as a float parse


def test_overflow_to_inf_is_a_non_finite_value_where_refused(write) -> None:
    path = write("label,a,b\n1,2,3\n0," + "9" * 400 + ",4\n")
    X, _ = load_csv(path, dtype=np.float64)
    assert X[1].tolist() == [np.inf, 4.0]
    error = csv_error(path, finite=True)
    assert (error.line, error.column) == (3, 2)
    assert "is beyond the range of float32 (it would be inf)" in str(error)
    assert "(400 characters)" in str(error)  # the cell is quoted, cut short
    error = csv_error(write("a,b\n1,2\n0,1e39\n"), finite=True)
    assert "'1e39' is beyond the range of float32" in str(error)


def test_labels_beyond_int64_stay_distinct_and_exact(write) -> None:
    """Ten labels k * 10**30 are ten classes (no int64 overflow): kept as their text."""
    labels = [str(k * 10**30) for k in range(1, 11)]
    text = "".join(f"{label},{k},{k % 3}\n" for k, label in enumerate(labels * 3))
    X, y = load_csv(write(text))
    assert y.dtype.kind == "U" and y.tolist() == labels * 3
    assert len(np.unique(y)) == 10 and X.shape == (30, 2)


def test_integral_labels_as_exact_as_int64_allows(write) -> None:
    big = [2**62 + 1, -(2**63), 2**63 - 1]  # not exact in float64
    X, y = load_csv(write("".join(f"{label},0\n" for label in big)))
    assert y.dtype == np.int64 and y.tolist() == big
    _, y = load_csv(write("1e30,0\n2,0\n"))  # integral, beyond int64: the text
    assert y.tolist() == ["1e30", "2"]
    _, y = load_csv(write("1e30,0\n2.5,0\n"))  # not all integral: numbers
    assert y.dtype == np.float64 and y.tolist() == [1e30, 2.5]


@pytest.mark.parametrize("header", [True, False])
def test_non_finite_cell_is_named_by_its_line_in_the_file(write, tiny_blocks,
                                                          header: bool) -> None:
    rows = [f"{i % 2},{i}.5,{i}" for i in range(60)]
    rows[41] = "1,41.5,nan"
    rows[50] = "0,-inf,50"
    text = ("label,a,b\n" if header else "") + "\n".join(rows) + "\n"
    path = write(text)
    X, _ = load_csv(path)  # accepted unless refused
    assert np.isnan(X[41, 1]) and X[50, 0] == -np.inf
    error = csv_error(path, finite=True)
    line = 42 + header  # 1-based, counting the header
    assert (error.line, error.column) == (line, 3)
    assert f"line {line}, column 3" in str(error) and "'nan' is not a finite number" in str(error)


def test_one_column_with_another_delimiter_says_which(write) -> None:
    error = csv_error(write("label;a;b\n1;2.5;3\n0;1;2\n"))
    assert "one column found with delimiter ','; is the delimiter ';'? pass delimiter=';'" in str(
        error
    )
    error = csv_error(write("1\t2\t3\n4\t5\t6\n"), label_column=None)
    assert "is the delimiter '\\t'?" in str(error) and "--delimiter tab" in str(error)
    X, y = load_csv(write("label;a;b\n1;2.5;3\n0;1;2\n"), delimiter=";")
    assert X.tolist() == [[2.5, 3.0], [1.0, 2.0]] and y.tolist() == [1, 0]


def test_labels_only_is_an_error_not_zero_features(write) -> None:
    error = csv_error(write("label\n1\n0\n"))
    assert "no feature columns" in str(error)
    X, y = load_csv(write("x\n1\n0\n"), label_column=None)  # one feature column is fine
    assert X.tolist() == [[1.0], [0.0]] and y is None


@pytest.mark.parametrize("label", ["inf", "-Infinity", "nan"])
def test_non_finite_label_says_what_was_found(write, label: str) -> None:
    path = write(f"label,a\n1,2\n{label},3\n0,4\n")
    _, y = load_csv(path)  # float64 labels when not refused
    assert y.dtype == np.float64 and not np.isfinite(y[1])
    error = csv_error(path, finite=True)
    assert (error.line, error.column) == (3, 1)
    assert f"label {label!r} is not a finite number" in str(error)


def test_short_lines_are_found_before_allocating(write) -> None:
    """A first line of 100,000 cells, then 100,000 lines of one: X would need 40 GB. The
    file cannot fill it, so the short line is named without allocating (issue 13 class 3)."""
    path = write(",".join(["1"] * 100_000) + "\n" + "2\n" * 100_000)
    tracemalloc.start()
    try:
        error = csv_error(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (error.line, error.column) == (2, 2) and "1 cell, expected 100000" in str(error)
    assert peak < 50e6, peak


# ------------------------------------------------------------------------------ errors


def csv_error(path: Path, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        load_csv(path, **kwargs)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)
    return info.value


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ("a,b\n1,2\n3\n", 3, 2, "1 cell, expected 2"),
        ("1,2\n3,4,5\n", 2, 3, "3 cells, expected 2"),
        ("1,2\n3,x\n", 2, 2, "'x' is not a number"),
        ("1,2\n3,\n", 2, 2, "empty cell"),
        ("1,2\n3, \n", 2, 2, "empty cell"),
        ("1,2\n3,1 2\n", 2, 2, "'1 2' is not a number"),
        ("1,2\n3,1e\n", 2, 2, "'1e' is not a number"),
        ("1,2\n3,--1\n", 2, 2, "'--1' is not a number"),
        ("1,2\n3,1.2.3\n", 2, 2, "'1.2.3' is not a number"),
        ("1,2\n3,0x1A\n", 2, 2, "'0x1A' is not a number"),
        ("1,2\n3,1_000\n", 2, 2, "'1_000' is not a number"),
        ('1,2\n4,"3"\n', 2, 2, "'\"3\"' is not a number"),
        ("1,2\n\n3,4\n", 2, None, "blank line"),
        ("1\n\n3\n", 2, None, "blank line"),
        # A first line with a number is data, not a header: its bad cell is an error.
        ("1,2,x\n3,4,5\n", 1, 3, "'x' is not a number"),
        ("y,0,1\n1,2,3\n", 1, 1, "'y' is not a number"),
        (",,\n1,2,3\n", 1, 1, "empty cell"),
        # A trailing delimiter is an empty last cell, with or without a header.
        ("1,2,3,\n4,5,6,\n", 1, 4, "empty cell, expected a number (the line ends with"),
        ("a,b,c,\n1,2,3,\n", 2, 4, "the line ends with the delimiter"),
        # Bare carriage returns (old Mac line endings) are named, not misread.
        ("a,b\r1,2\r3,4\r", 1, None, "carriage return (\\r) not followed by a line feed"),
        ("1,2\r3,4\r", 1, None, "carriage return"),
        ("1,2\r\n3\r,4\r\n", 2, None, "carriage return"),
    ],
)
def test_bad_rows_name_line_and_column(write, text, line, column, words) -> None:
    error = csv_error(write(text))
    assert words in str(error)
    assert f"line {line}" in str(error)
    assert (error.line, error.column) == (line, column)
    if column is not None:
        assert f"column {column}" in str(error)


def test_column_name_in_message(write) -> None:
    error = csv_error(write("label,width,height\n1,2,3\n1,2,oops\n"))
    assert "line 3, column 3 ('height'): 'oops' is not a number" in str(error)


def test_error_line_numbers_across_blocks(write, tiny_blocks) -> None:
    rows = ["1,22,333,4444"] * 200
    rows[156] = "1,22,3x3,4444"
    error = csv_error(write("a,b,c,d\n" + "\n".join(rows) + "\n"))
    assert (error.line, error.column) == (158, 3)  # header is line 1, rows[0] line 2
    rows[156] = "1,22,333"
    error = csv_error(write("\n".join(rows) + "\n"))
    assert error.line == 157 and "3 cells, expected 4" in str(error)


@pytest.mark.parametrize("text", ["", "\n\n  \n", "\ufeff", "\ufeff\n \n"])
def test_empty_file(write, text: str) -> None:
    # A byte-order mark alone ended in StopIteration before the fuzz test found it.
    assert "the file is empty" in str(csv_error(write(text)))


def test_header_only(write) -> None:
    assert "no data rows after the header" in str(csv_error(write("a,b,c\n")))


def test_label_name_without_header(write) -> None:
    error = csv_error(write("1,2\n3,4\n"), label_column="label")
    assert "no header line" in str(error)


def test_unknown_label_name(write) -> None:
    error = csv_error(write("a,b\n1,2\n"), label_column="label")
    assert "no column named 'label'" in str(error) and "'a', 'b'" in str(error)


def test_label_index_out_of_range(write) -> None:
    error = csv_error(write("1,2\n"), label_column=2)
    assert "label_column=2 is out of range" in str(error) and "2 columns" in str(error)


@pytest.mark.parametrize("delimiter", ["", ";;", ".", "-", "1", "\n", "é"])
def test_bad_delimiter(write, delimiter: str) -> None:
    with pytest.raises(ValueError, match="delimiter"):
        load_csv(write("1,2\n"), delimiter=delimiter)


def test_bad_dtype_and_label_column_type(write) -> None:
    path = write("1,2\n")
    with pytest.raises(TypeError, match="floating"):
        load_csv(path, dtype=np.int32)
    with pytest.raises(TypeError, match="label_column"):
        load_csv(path, label_column=1.0)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_csv(tmp_path / "nope.csv")


def test_file_changed_between_passes(write, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_module, "_count_content_lines", lambda path: (4, 100))  # lines, bytes
    assert "did the file change" in str(csv_error(write("1,2\n3,4\n")))


def test_truncated_gzip(write) -> None:
    path = write("", name="d.csv.gz")
    full = gzip.compress(("1,2\n" * 5000).encode())
    path.write_bytes(full[: len(full) // 2])
    assert "gzip" in str(csv_error(path))


# ------------------------------------------------------------------------------ memory


def load_with_peak(path: Path, engine: str) -> tuple[np.ndarray, np.ndarray, int]:
    """load_csv(path) and the peak memory it allocated beyond its result, in bytes.

    NumPy reports its allocations to tracemalloc; pyarrow's own pool counts its peak
    (over the process's life: earlier tests only parse small files).
    """
    tracemalloc.start()
    try:
        X, y = load_csv(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    if engine == "pyarrow":
        peak += pytest.importorskip("pyarrow").default_memory_pool().max_memory()
    return X, y, peak - X.nbytes - y.nbytes


@pytest.mark.parametrize("labels", ["numbers", "text"])
def test_values_are_held_once(write, monkeypatch: pytest.MonkeyPatch, engine: str,
                              labels: str) -> None:
    """Peak memory is the result plus block-sized temporaries, not several copies."""
    monkeypatch.setattr(parsers, "NUMPY_BLOCK_BYTES", 1 << 18)
    monkeypatch.setattr(parsers, "ARROW_BLOCK_BYTES", 1 << 18)
    monkeypatch.setattr(parsers, "ARROW_PIECE_BYTES", 1 << 16)
    rng = np.random.default_rng(1)
    block = rng.integers(0, 256, size=(500, 200)).astype(str)
    block[block.astype(int) < 100] = "0"
    if labels == "text":
        block[:, 0] = np.char.add("class", block[:, 0])
    path = write(("\n".join(",".join(row) for row in block) + "\n") * 24)
    X, y, extra = load_with_peak(path, engine)
    assert X.shape == (12000, 199) and y.dtype.kind == ("U" if labels == "text" else "i")
    assert extra < 0.5 * (X.nbytes + y.nbytes), extra


def test_labels_of_a_narrow_file_are_held_compactly(write, monkeypatch: pytest.MonkeyPatch,
                                                    engine: str) -> None:
    """Two cells a line: the label column is kept as bytes until the end, then parsed
    once. A Python object a row (about 58 bytes) would weigh over 4 times the result.
    (Blocks of 256 KiB: their temporaries are bounded, whatever the file's size.)"""
    monkeypatch.setattr(parsers, "ARROW_BLOCK_BYTES", 1 << 18)
    X, y, extra = load_with_peak(write("1,2\n0,3\n" * 250_000), engine)
    assert y.dtype == np.int64 and X.shape == (500_000, 1)
    assert extra < 2 * (X.nbytes + y.nbytes), extra
