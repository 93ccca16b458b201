"""Fuzzing the model-file and architecture readers (issue 13): whatever a file holds, ``load``,
``load_optimizer``, ``load_metadata``, ``file_info`` and ``load_architecture`` return what
they promise or raise their documented error, a :class:`ModelFileError` (a ``ValueError``)
naming the file. Never a KeyError, TypeError, AttributeError, IndexError, RecursionError,
MemoryError, OverflowError, zipfile or zlib error.

Inputs are random bytes, truncations and byte mutations of a valid file; field mutations
of its JSON header (a value anywhere replaced by another JSON value, or removed); its
arrays dropped, added, swapped, truncated, resized, retyped (pickled objects included) or
filled with NaN; and its zip entries renamed, duplicated, compressed, joined by strangers
or given a corrupt ``.npy`` header. Hypothesis runs derandomized with a fixed number of
examples, so CI sees the same inputs every time.
"""

from __future__ import annotations

import functools
import io as stdio
import json
import os
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numnet
from numnet import io
from numnet.data import Rescale
from numnet.io import ModelFileError
from numnet.layers import BatchNorm1d, Dense, Dropout, ReLU

# NUMNET_FUZZ_EXAMPLES=5000 explores further, with fresh random inputs each run
_EXPLORE = int(os.environ.get("NUMNET_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_EXPLORE or 100, derandomize=not _EXPLORE, deadline=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])
READERS = (io.load, io.load_optimizer, io.load_metadata, io.file_info)


@functools.cache
def valid() -> bytes:
    """A model file as ``numnet train`` writes them, with an optimiser's state (made once;
    a function rather than a fixture, so that Hypothesis does not print it)."""
    model = numnet.Sequential([Dense(4, 6), BatchNorm1d(6), ReLU(), Dropout(0.2),
                               Dense(6, 3)], loss="cross_entropy", seed=0)
    opt = numnet.optim.Adam()
    rng = np.random.default_rng(0)
    model.fit(rng.standard_normal((24, 4)).astype(np.float32), np.arange(24) % 3, epochs=1,
              batch_size=8, optimizer=opt, verbose=0)
    metadata = {"source": {"data": "x.csv", "seed": 0, "val_split": 0.1, "test_split": 0.2,
                           "path": "/x.csv", "label_column": -1},
                "preprocessing": Rescale(16.0).get_config(), "classes": ["a", "b", "c"],
                "image_shape": [2, 2], "epochs": 1, "command": "numnet train",
                "test": {"loss": 0.5, "accuracy": 0.75}}
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "valid.npz"
        io.save(model, path, optimizer=opt, metadata=metadata)
        for read in READERS:
            read(path)  # the starting point is valid
        return path.read_bytes()


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzzed") / "model.npz"


def check_model_file(path: Path) -> None:
    """Every reader returns or raises a ModelFileError naming ``path``."""
    for read in READERS:
        try:
            read(path)
        except ModelFileError as error:
            assert str(path) in str(error), error


# -- bytes ------------------------------------------------------------------------------------
def mutate(data: bytes, draw: st.DrawFn) -> bytes:
    """A few bytes of ``data`` replaced, inserted or deleted."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["replace", "insert", "delete"]))
        at = draw(st.integers(0, max(len(out) - 1, 0)))
        if kind == "replace" and out:
            out[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif out:
            del out[at:at + draw(st.integers(1, 8))]
    return bytes(out)


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes(target: Path, data: bytes) -> None:
    target.write_bytes(data)
    check_model_file(target)


@FUZZ
@given(st.data())
def test_truncations_and_byte_mutations(target: Path, data: st.DataObject
                                         ) -> None:
    cut = data.draw(st.integers(0, len(valid())))
    target.write_bytes(valid()[:cut] if data.draw(st.booleans()) else mutate(valid(), data.draw))
    check_model_file(target)


# -- the JSON header ------------------------------------------------------------------------
SPECIAL = ["numnet.Dense", "Dense", "numnet.Sequential", "cross_entropy", "mse", "float64",
           "float16", "<f4", "<i8", "|O", "adam", "sgd", "MT19937", "PCG64", "scale",
           "standardize", "minmax", "__ndarray__", "numnet-model", ""]
INTEGERS = st.integers(-10, 300) | st.sampled_from(
    [2**31, 2**32 + 1, 2**62, 2**63, 2**64, 10**30, -(2**63), 10**400])
FLOATS = st.sampled_from([0.0, -0.0, 0.5, 1e-300, 1e308, float("nan"), float("inf"),
                          float("-inf")])
SCALARS = (st.none() | st.booleans() | INTEGERS | FLOATS | st.sampled_from(SPECIAL)
           | st.text(max_size=6))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=6) | st.sampled_from(SPECIAL), inner,
                                      max_size=3), max_leaves=6)


def json_paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every place in a JSON document, as the keys and indices that lead there."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from json_paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from json_paths(child, (*prefix, index))


def edit_json(document: Any, draw: st.DrawFn) -> Any:
    """``document`` with one to three values replaced by others, or removed."""
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(json_paths(document))))
        if not path:
            document = draw(JSON)
            continue
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.integers(0, 3)) == 0:
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON)
    return document


def arrays_of(data: bytes) -> dict[str, np.ndarray]:
    with np.load(stdio.BytesIO(data), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def write(path: Path, arrays: dict[str, Any], header: Any = None) -> None:
    arrays = dict(arrays)
    if header is not None:
        text = json.dumps(header, allow_nan=True)
        arrays["__numnet__"] = np.frombuffer(text.encode(), dtype=np.uint8)
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


@FUZZ
@given(st.data())
def test_header_field_mutations(target: Path, data: st.DataObject) -> None:
    arrays = arrays_of(valid())
    header = json.loads(arrays.pop("__numnet__").tobytes())
    write(target, arrays, edit_json(header, data.draw))
    check_model_file(target)


@FUZZ
@given(st.data())
def test_metadata_mutations(target: Path, data: st.DataObject) -> None:
    """The same, aimed at numnet's metadata fields (a small part of the header)."""
    arrays = arrays_of(valid())
    header = json.loads(arrays.pop("__numnet__").tobytes())
    header["metadata"] = edit_json(header["metadata"], data.draw)
    write(target, arrays, header)
    check_model_file(target)


# -- the arrays ---------------------------------------------------------------------------
DTYPES = ["<f4", "<f8", ">f4", "<i8", "|u1", "|b1", "<c8", "<U3", "|V4", "O"]


def other_array(draw: st.DrawFn, like: np.ndarray) -> np.ndarray:
    kind = draw(st.sampled_from(["shape", "dtype", "truncate", "values", "scalar"]))
    if kind == "shape":
        shape = tuple(draw(st.lists(st.integers(0, 7), max_size=3)))
        return np.zeros(shape, dtype=like.dtype)
    if kind == "dtype":
        dtype = draw(st.sampled_from(DTYPES))
        if dtype == "O":
            return np.array([{"pickled": 1}, None], dtype=object)
        return np.zeros(like.shape, dtype=dtype)
    if kind == "truncate":
        return like.reshape(-1)[:draw(st.integers(0, max(like.size - 1, 0)))].copy()
    if kind == "values" and like.dtype.kind == "f" and like.size:
        out = like.copy()
        out.reshape(-1)[draw(st.integers(0, out.size - 1))] = draw(FLOATS)
        return out
    return np.asarray(draw(st.integers(-(2**63), 2**63 - 1)), dtype=np.int64)


@FUZZ
@given(st.data())
def test_array_mutations(target: Path, data: st.DataObject) -> None:
    arrays = arrays_of(valid())
    names = sorted(arrays)
    for _ in range(data.draw(st.integers(1, 3))):
        name = data.draw(st.sampled_from(names))
        action = data.draw(st.sampled_from(["replace", "drop", "add", "swap"]))
        if action == "replace" and name in arrays:
            arrays[name] = other_array(data.draw, arrays[name])
        elif action == "drop":
            arrays.pop(name, None)
        elif action == "add":
            arrays[data.draw(st.sampled_from(["model/9.W", "optimizer/x", "extra", name]))
                   ] = np.zeros(3, np.float32)
        else:
            other = data.draw(st.sampled_from(names))
            if name in arrays and other in arrays:
                arrays[name], arrays[other] = arrays[other], arrays[name]
    write(target, arrays)
    check_model_file(target)


# -- the zip entries ----------------------------------------------------------------------
@FUZZ
@given(st.data())
def test_zip_entry_mutations(target: Path, data: st.DataObject) -> None:
    with zipfile.ZipFile(stdio.BytesIO(valid())) as archive:
        entries = [(info.filename, archive.read(info)) for info in archive.infolist()]
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(entries) - 1))
        name, content = entries[index]
        action = data.draw(st.sampled_from(["rename", "duplicate", "stranger", "header",
                                            "body", "drop"]))
        if action == "rename":
            new = data.draw(st.sampled_from(
                [name[:-4], name + ".npy", "model/0.W.npy", "__numnet__.npy", "x/"]))
            entries[index] = (new or "x", content)  # zipfile cannot write an empty name
        elif action == "duplicate":
            entries.append((name, content))
        elif action == "stranger":
            entries.append((data.draw(st.sampled_from(["readme.txt", "a.npy", "../x.npy"])),
                            data.draw(st.binary(max_size=64))))
        elif action == "header":  # the .npy header's text, edited (its length kept)
            start = content.find(b"{")
            end = content.find(b"}") + 1
            text = mutate(content[start:end], data.draw)[:end - start].ljust(end - start)
            entries[index] = (name, content[:start] + text + content[end:])
        elif action == "body":
            entries[index] = (name, mutate(content, data.draw))
        elif len(entries) > 1:
            del entries[index]
    compression = data.draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    with zipfile.ZipFile(target, "w", compression=compression) as archive, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": the point here
        for name, content in entries:
            archive.writestr(name, content)
    check_model_file(target)


def test_a_compressed_archive_is_a_valid_model_file(target: Path) -> None:
    """np.savez_compressed writes deflated entries: they read as well."""
    arrays = arrays_of(valid())
    with open(target, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    model = io.load(target)
    assert isinstance(model, numnet.Sequential) and io.load_optimizer(target) is not None


# -- architecture files ---------------------------------------------------------------------
def check_architecture(path: Path) -> None:
    try:
        model = io.load_architecture(path)
    except ModelFileError as error:
        assert str(path) in str(error), error
    else:
        assert isinstance(model, numnet.Sequential)


ARCH = numnet.Sequential([Dense(4, 6), BatchNorm1d(6), ReLU(), Dropout(0.2), Dense(6, 3)],
                         loss="cross_entropy", seed=0).get_config()


@FUZZ
@given(st.data())
def test_architecture_field_mutations(target: Path, data: st.DataObject) -> None:
    path = target.with_suffix(".json")
    config = json.loads(json.dumps(ARCH))
    path.write_text(json.dumps(edit_json(config, data.draw), allow_nan=True))
    check_architecture(path)


@FUZZ
@given(st.data())
def test_architecture_bytes(target: Path, data: st.DataObject) -> None:
    path = target.with_suffix(".json")
    text = json.dumps(ARCH).encode()
    choice = data.draw(st.sampled_from(["random", "truncate", "mutate"]))
    if choice == "random":
        content = data.draw(st.binary(max_size=500))
    elif choice == "truncate":
        content = text[:data.draw(st.integers(0, len(text)))]
    else:
        content = mutate(text, data.draw)
    path.write_bytes(content)
    check_architecture(path)
