"""The scaling a model file records, train_dev_test_split and minibatches."""

from __future__ import annotations

import json

import numpy as np
import pytest

import numnet.data.preprocessing as preprocessing
from numnet.data import (
    MinMaxScaler,
    Rescale,
    Standardizer,
    minibatches,
    one_hot,
    preprocessing_from_config,
    train_dev_test_split,
)

# ------------------------------------------------------- the scaling a model file records


def test_preprocessing_from_config_rebuilds_each_kind() -> None:
    X = np.random.default_rng(0).standard_normal((20, 3)) * 5 + 2
    for scaler in (Standardizer().fit(X), MinMaxScaler().fit(X), Rescale(16)):
        config = json.loads(json.dumps(scaler.get_config()))
        again = preprocessing_from_config(config)
        assert type(again) is type(scaler)
        np.testing.assert_array_equal(again.transform(X), scaler.transform(X))


def test_preprocessing_from_config_reads_what_old_model_files_hold() -> None:
    """``numnet train`` wrote these dicts before the scalers described themselves."""
    digits = preprocessing_from_config({"type": "scale", "factor": 1 / 16, "raw_max": 16.0})
    X = np.array([[0, 8, 16]], dtype=np.int64)
    np.testing.assert_array_equal(digits.transform(X),
                                  X.astype(np.float32) * np.float32(1 / 16))
    csv = preprocessing_from_config({"type": "standardize", "mean": [1.0, 2.0],
                                     "std": [2.0, 1.0]})
    np.testing.assert_array_equal(csv.transform(np.array([[3.0, 2.0]])), [[1.0, 0.0]])


@pytest.mark.parametrize("config", [{"type": "pca"}, {}, None, "scale", {"type": 3}])
def test_preprocessing_from_config_unknown_type(config) -> None:
    with pytest.raises(ValueError, match=r"unknown preprocessing .* \(known: 'minmax', "
                                         r"'scale', 'standardize'\)"):
        preprocessing_from_config(config)


def test_names_stay_importable_from_the_preprocessing_module() -> None:
    for name in ("one_hot", "from_one_hot", "Standardizer", "MinMaxScaler", "NotFittedError",
                 "LabelEncoder", "Rescale", "train_dev_test_split", "minibatches"):
        assert hasattr(preprocessing, name), name


# ------------------------------------------------------------------------------ splits


def test_split_sizes_from_fractions_and_counts() -> None:
    X, y = np.arange(1000).reshape(-1, 1), np.arange(1000) % 3
    (a, _), (b, _), (c, _) = train_dev_test_split(X, y, dev=0.15, test=0.1, seed=0)
    assert (len(a), len(b), len(c)) == (750, 150, 100)
    (a, _), (b, _), (c, _) = train_dev_test_split(X, y, dev=7, test=3, seed=0)
    assert (len(a), len(b), len(c)) == (990, 7, 3)
    (a, _), (b, _), (c, _) = train_dev_test_split(X[:7], y[:7], dev=0.1, test=0.1, seed=0)
    assert (len(a), len(b), len(c)) == (5, 1, 1)  # fractions round up, as in scikit-learn


def test_split_is_a_partition_and_keeps_pairs() -> None:
    X = np.arange(200)
    y = X * 10
    parts = train_dev_test_split(X, y, dev=0.2, test=0.3, seed=3)
    joined = np.concatenate([p[0] for p in parts])
    assert sorted(joined.tolist()) == list(range(200))
    for Xp, yp in parts:
        np.testing.assert_array_equal(yp, Xp * 10)


def test_split_reproducible_bit_for_bit() -> None:
    X = np.random.default_rng(0).normal(size=(300, 4))
    y = np.arange(300) % 5
    for stratify in (False, True):
        one = train_dev_test_split(X, y, stratify=stratify, seed=42)
        two = train_dev_test_split(X, y, stratify=stratify, seed=42)
        other = train_dev_test_split(X, y, stratify=stratify, seed=43)
        for (X1, y1), (X2, y2) in zip(one, two, strict=True):
            assert X1.tobytes() == X2.tobytes() and y1.tobytes() == y2.tobytes()
        assert one[0][0].tobytes() != other[0][0].tobytes()


def test_split_without_shuffle_is_contiguous() -> None:
    X = np.arange(10)
    (a, ya), (b, _), (c, _) = train_dev_test_split(X, X, dev=2, test=3, shuffle=False)
    assert a.tolist() == [0, 1, 2, 3, 4] and b.tolist() == [5, 6] and c.tolist() == [7, 8, 9]
    assert np.shares_memory(a, X)


def test_stratified_split_keeps_class_proportions() -> None:
    counts = [500, 300, 150, 50]
    y = np.repeat(np.arange(4), counts)
    X = np.arange(y.size)
    parts = train_dev_test_split(X, y, dev=0.2, test=0.1, stratify=True, seed=0)
    sizes = [len(p[1]) for p in parts]
    assert sizes == [700, 200, 100]
    for (_, yp), size in zip(parts, sizes, strict=True):
        expected = np.array(counts) * size / y.size
        assert np.all(np.abs(np.bincount(yp, minlength=4) - expected) <= 1)
    # Classes are mixed, not grouped, within each part.
    assert not np.all(np.diff(parts[0][1]) >= 0)


def test_stratified_rounding_depends_on_the_seed() -> None:
    # 50 samples, 5 to test: the lone class-2 sample belongs there with probability 1/10.
    y = np.array([0] * 40 + [1] * 9 + [2])
    X = np.arange(50)
    where = []
    for seed in range(300):
        parts = train_dev_test_split(X, y, stratify=True, seed=seed)
        where.append([int((p[1] == 2).sum()) for p in parts].index(1))
        for (_, yp), size in zip(parts, (40, 5, 5), strict=True):
            expected = np.bincount(y) * size / y.size
            assert np.all(np.abs(np.bincount(yp, minlength=3) - expected) < 1)
    share = np.bincount(where, minlength=3) / len(where)  # train, dev, test
    assert 0.7 < share[0] < 0.9 and 0.04 < share[1] < 0.16 and 0.04 < share[2] < 0.16


def test_stratified_split_accepts_one_hot_and_column_labels() -> None:
    y = np.repeat(np.arange(4), [50, 30, 15, 5])
    X = np.arange(y.size)
    by_label = train_dev_test_split(X, y, dev=0.2, test=0.1, stratify=True, seed=3)
    for labels in (one_hot(y), y[:, None]):
        parts = train_dev_test_split(X, labels, dev=0.2, test=0.1, stratify=True, seed=3)
        for (Xp, yp), (Xl, _) in zip(parts, by_label, strict=True):
            np.testing.assert_array_equal(Xp, Xl)  # the same split as with y itself
            np.testing.assert_array_equal(yp, labels[Xp])


def test_stratified_split_refuses_other_label_shapes() -> None:
    with pytest.raises(ValueError) as info:
        train_dev_test_split(np.arange(10), np.zeros((10, 2, 2)), stratify=True)
    assert "stratify=True" in str(info.value) and "shape (10, 2, 2)" in str(info.value)
    assert "one-hot" in str(info.value)


def test_split_y_none() -> None:
    (a, ya), (_, yb), _ = train_dev_test_split(np.arange(20), None, seed=0)
    assert ya is None and yb is None and len(a) == 16


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"dev": 1.0}, ValueError, "dev=1.0 as a fraction must be in [0, 1)"),
        ({"test": -0.1}, ValueError, "test=-0.1"),
        ({"dev": 11}, ValueError, "dev=11 samples, but there are 10"),
        ({"dev": 5, "test": 5}, ValueError, "leave nothing of the 10 for training"),
        ({"dev": "a"}, TypeError, "fraction or a count"),
        ({"dev": True}, TypeError, "fraction or a count"),
        ({"stratify": True, "shuffle": False}, ValueError, "stratify=True needs y and shuffle"),
    ],
)
def test_split_errors(kwargs, error, words) -> None:
    with pytest.raises(error) as info:
        train_dev_test_split(np.arange(10), np.arange(10), **kwargs)
    assert words in str(info.value)


def test_split_length_mismatch() -> None:
    with pytest.raises(ValueError, match=r"X has 10 samples but y has shape \(9,\)"):
        train_dev_test_split(np.arange(10), np.arange(9))
    with pytest.raises(ValueError, match="needs y"):
        train_dev_test_split(np.arange(10), None, stratify=True)


# ------------------------------------------------------------------------ mini-batches


def test_minibatches_in_order_are_views() -> None:
    X = np.arange(20).reshape(10, 2)
    y = np.arange(10)
    batches = list(minibatches(X, y, batch_size=4, shuffle=False))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    assert all(np.shares_memory(bx, X) for bx, _ in batches)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)


def test_minibatches_shuffled_cover_everything_once() -> None:
    X = np.arange(103)
    seen = [bx for bx, by in minibatches(X, X * 2, batch_size=10, seed=0)]
    assert sorted(np.concatenate(seen).tolist()) == list(range(103))
    assert np.concatenate(seen).tolist() != list(range(103))
    for bx, by in minibatches(X, X * 2, batch_size=10, seed=0):
        np.testing.assert_array_equal(by, bx * 2)


def test_minibatches_seed_and_drop_last() -> None:
    X = np.arange(50)
    one = [b[0].tolist() for b in minibatches(X, batch_size=8, seed=5, drop_last=True)]
    two = [b[0].tolist() for b in minibatches(X, batch_size=8, seed=5, drop_last=True)]
    assert one == two and len(one) == 6 and all(len(b) == 8 for b in one)
    assert all(b[1] is None for b in minibatches(X, batch_size=8))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"batch_size": 0}, ValueError), ({"batch_size": 2.5}, TypeError),
     ({"y": np.arange(3)}, ValueError)],
)  # fmt: skip
def test_minibatches_errors_are_raised_at_call_time(kwargs, error) -> None:
    with pytest.raises(error):
        minibatches(np.arange(10), **kwargs)  # no next(): the call itself checks
