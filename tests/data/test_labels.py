"""Class labels: one_hot / from_one_hot and the LabelEncoder."""

from __future__ import annotations

import datetime
import json
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numnet.data import LabelEncoder, NotFittedError, UnknownLabelError, from_one_hot, one_hot


def test_one_hot_basic() -> None:
    Y = one_hot([2, 0, 1, 2])
    assert Y.dtype == np.float32 and Y.shape == (4, 3)
    np.testing.assert_array_equal(Y, [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])


def test_one_hot_num_classes_dtype_and_integral_floats() -> None:
    Y = one_hot(np.array([1.0, 3.0]), num_classes=5, dtype=np.float64)
    assert Y.dtype == np.float64 and Y.shape == (2, 5) and Y[1, 3] == 1


def test_one_hot_empty() -> None:
    assert one_hot(np.array([], dtype=np.int64), num_classes=4).shape == (0, 4)


@pytest.mark.parametrize(
    ("labels", "kwargs", "words"),
    [
        ([0, 1, -2], {}, "label -2 at index 2 is negative"),
        ([0, 5, 1], {"num_classes": 3}, "label 5 at index 1 is out of range for num_classes=3"),
        ([0.0, 2.5], {}, "label 2.5 at index 1 is not an integer"),
        ([0.0, np.nan], {}, "at index 1 is not an integer"),
        ([[0], [1]], {}, "labels.ravel()"),
        (["a", "b"], {}, "must be integers"),
    ],
)
def test_one_hot_errors(labels, kwargs, words) -> None:
    with pytest.raises(ValueError) as info:
        one_hot(np.asarray(labels), **kwargs)
    assert words in str(info.value)


def test_from_one_hot_round_trip_and_scores() -> None:
    labels = np.array([3, 0, 2, 2, 1])
    out = from_one_hot(one_hot(labels))
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, labels)
    np.testing.assert_array_equal(from_one_hot([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]]), [1, 0])


@pytest.mark.parametrize("bad", [np.zeros(3), np.zeros((2, 3, 4)), np.zeros((2, 0))])
def test_from_one_hot_wrong_rank(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="from_one_hot"):
        from_one_hot(bad)


def test_from_one_hot_nan_row() -> None:
    with pytest.raises(ValueError, match="row 1 contains NaN"):
        from_one_hot([[1.0, 0.0], [np.nan, 1.0]])


# ----------------------------------------------------------------------- label encoder


@pytest.mark.parametrize(
    ("labels", "classes", "codes"),
    [
        ([5, 7, 9, 7, 5], [5, 7, 9], [0, 1, 2, 1, 0]),
        ([10, -1, 3, -1], [-1, 3, 10], [2, 0, 1, 0]),  # negative and sparse
        (np.array([5.0, 9.0, 7.0]), [5, 7, 9], [0, 2, 1]),  # whole floats: int classes
        (np.array([3, 1], dtype=np.uint8), [1, 3], [1, 0]),
        (["virginica", "setosa", "versicolor", "setosa"],
         ["setosa", "versicolor", "virginica"], [2, 0, 1, 0]),
        (np.array(["b", "a"], dtype=object), ["a", "b"], [1, 0]),
        (np.array(["B", "a", "C"]), ["B", "C", "a"], [0, 2, 1]),  # code point order
        ([True, False, True], [False, True], [1, 0, 1]),
    ],
)
def test_label_encoder_sorts_the_classes_and_maps_labels_to_indices(labels, classes,
                                                                    codes) -> None:
    encoder = LabelEncoder().fit(labels)
    assert encoder.classes_.tolist() == classes
    assert encoder.transform(labels).tolist() == codes
    assert encoder.transform(labels).dtype == np.int64
    assert LabelEncoder().fit_transform(labels).tolist() == codes
    assert encoder.inverse_transform(codes).tolist() == [
        classes[c] for c in codes]


def test_label_encoder_classes_have_a_plain_dtype() -> None:
    assert LabelEncoder().fit(np.array([2.0, 1.0])).classes_.dtype == np.int64
    assert LabelEncoder().fit([3, 1]).classes_.dtype == np.int64
    assert LabelEncoder().fit(np.array(["x"], dtype=object)).classes_.dtype.kind == "U"


def test_label_encoder_matches_integer_and_whole_float_labels() -> None:
    encoder = LabelEncoder().fit([5, 7, 9])
    assert encoder.transform(np.array([9.0, 5.0])).tolist() == [2, 0]
    assert LabelEncoder().fit([5.0, 7.0]).transform([7]).tolist() == [1]


def test_label_encoder_keeps_the_shape_of_its_input() -> None:
    encoder = LabelEncoder().fit(["a", "b", "c"])
    labels = np.array([["c", "a"], ["b", "b"]])
    codes = encoder.transform(labels)
    assert codes.shape == (2, 2) and codes.tolist() == [[2, 0], [1, 1]]
    np.testing.assert_array_equal(encoder.inverse_transform(codes), labels)
    assert encoder.transform(np.array([], dtype=str)).shape == (0,)


def test_label_encoder_other_hashable_labels() -> None:
    days = [datetime.date(2024, 5, 1), datetime.date(2023, 1, 2)]
    encoder = LabelEncoder().fit(days)
    assert encoder.classes_.tolist() == sorted(days)
    assert encoder.transform(days).tolist() == [1, 0]


def test_unseen_label_names_it_and_the_known_classes() -> None:
    encoder = LabelEncoder().fit(["a", "b", "c"])
    with pytest.raises(UnknownLabelError) as info:
        encoder.transform(["a", "e", "d"])
    error = info.value
    assert isinstance(error, ValueError)
    assert error.label == "d" and error.classes == ["a", "b", "c"]  # first in sorted order
    assert str(error) == ("LabelEncoder.transform: label 'd' is not one of the known classes "
                          "['a', 'b', 'c']")
    assert type(error.label) is str  # a Python value, not numpy.str_
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) and copy.label == "d"
    with pytest.raises(UnknownLabelError, match=r"label 4 is not one of the known classes "
                                                r"\[1, 2, 3\]"):
        LabelEncoder().fit([1, 2, 3]).transform([4])
    with pytest.raises(UnknownLabelError, match="label 1 is not one"):
        encoder.transform([1])  # numbers are not text
    many = LabelEncoder().fit(np.arange(100))
    with pytest.raises(UnknownLabelError, match=r"19, \.\.\.\] \(100 classes\)"):
        many.transform([100])


@pytest.mark.parametrize(
    ("labels", "words"),
    [
        ([0.0, 2.5], "whole numbers (class labels), found [2.5]"),
        ([1.0, np.nan], "whole numbers (class labels), found [nan]"),
        ([1.0, np.inf], "whole numbers"),
        ([1.0, 1e300], "label 1e+300 does not fit in int64"),
        ([1, "a"], "labels of types int, str cannot be sorted"),
        (np.array([1 + 2j]), "got dtype complex128"),
        ([[1], [2, 3]], "labels must be hashable, got [1]"),
    ],
)
def test_label_encoder_refuses_what_is_not_a_class_label(labels, words) -> None:
    with pytest.raises(ValueError) as info:
        LabelEncoder().fit(labels)
    assert words in str(info.value) and str(info.value).startswith("LabelEncoder.fit: ")


def test_label_encoder_before_fit() -> None:
    for method in ("transform", "inverse_transform"):
        with pytest.raises(NotFittedError, match=f"LabelEncoder.{method}: .*not fitted"):
            getattr(LabelEncoder(), method)([0])
    with pytest.raises(NotFittedError):
        LabelEncoder().get_config()
    assert repr(LabelEncoder()) == "LabelEncoder()"


@pytest.mark.parametrize(
    ("indices", "words"),
    [
        ([0, 3], "index 3 at position 1 is out of range for 3 classes (expected 0..2)"),
        ([-1], "index -1 at position 0 is out of range"),
        ([[0], [5]], "index 5 at position (1, 0)"),
        ([0.0, 1.5], "index 1.5 at position 1 is not an integer"),
        (["a"], "must be integers"),
    ],
)
def test_inverse_transform_errors(indices, words) -> None:
    encoder = LabelEncoder().fit(["a", "b", "c"])
    with pytest.raises(ValueError) as info:
        encoder.inverse_transform(np.asarray(indices))
    assert words in str(info.value)


@pytest.mark.parametrize("labels", [[5, -7, 9], ["setosa", "virginica"], [0.0, 1.0],
                                    [True, False]])
def test_label_encoder_config_is_json_and_round_trips(labels) -> None:
    encoder = LabelEncoder().fit(labels)
    config = encoder.get_config()
    assert json.loads(json.dumps(config)) == config
    again = LabelEncoder.from_config(json.loads(json.dumps(config)))
    np.testing.assert_array_equal(again.classes_, encoder.classes_)
    np.testing.assert_array_equal(again.transform(labels), encoder.transform(labels))
    assert repr(again) == repr(encoder)


def test_from_config_keeps_the_given_order_and_python_values() -> None:
    encoder = LabelEncoder.from_config({"classes": ["no", "yes", "maybe"]})
    assert encoder.transform(["maybe", "no"]).tolist() == [2, 0]
    assert encoder.get_config() == {"classes": ["no", "yes", "maybe"]}
    assert [type(c) for c in LabelEncoder().fit([3, 1]).get_config()["classes"]] == [int, int]


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"classes": [1, 2, 1]}, "the class 1 is given twice"),
        ({"classes": "abc"}, "a list of 'classes'"),
        ({}, "a list of 'classes'"),
        (["a"], "a list of 'classes'"),
        ({"classes": [0.5]}, "whole numbers"),
    ],
)
def test_from_config_errors(config, words) -> None:
    with pytest.raises(ValueError) as info:
        LabelEncoder.from_config(config)
    assert words in str(info.value) and "LabelEncoder.from_config" in str(info.value)


@settings(max_examples=60, deadline=None)
@given(st.one_of(
    st.lists(st.integers(-2**62, 2**62), min_size=1, max_size=40),
    # NumPy's str arrays drop trailing NUL characters: not a label anyone writes
    st.lists(st.text(st.characters(blacklist_characters="\x00"), max_size=4), min_size=1,
             max_size=40),
    st.lists(st.integers(-1000, 1000).map(float), min_size=1, max_size=40),
))
def test_label_encoder_round_trips_any_labels(labels) -> None:
    encoder = LabelEncoder()
    codes = encoder.fit_transform(labels)
    expected_classes = sorted(set(int(v) if isinstance(v, float) else v for v in labels))
    assert encoder.get_config()["classes"] == expected_classes
    assert codes.tolist() == [expected_classes.index(int(v) if isinstance(v, float) else v)
                              for v in labels]
    np.testing.assert_array_equal(encoder.transform(labels), codes)
    decoded = encoder.inverse_transform(codes).tolist()
    assert decoded == [int(v) if isinstance(v, float) else v for v in labels]
    again = LabelEncoder.from_config(json.loads(json.dumps(encoder.get_config())))
    np.testing.assert_array_equal(again.transform(labels), codes)
