"""Sizes nobody can allocate (issue 13, class 3): checked against the memory available before
allocating, with an error naming the layer or array and the bytes it would need."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npformat

import numnet
from numnet import _memory, io
from numnet._memory import AllocationError, check_array, human, nbytes
from numnet.errors import AllocationError as PublicAllocationError
from numnet.io import ModelFileError
from numnet.layers import BatchNorm1d, Dense, LayerNorm, ReLU

GB = 10**9


@pytest.fixture
def small_machine(monkeypatch: pytest.MonkeyPatch) -> int:
    """A machine with 1 GB of memory available."""
    monkeypatch.setattr(_memory, "available_bytes", lambda: GB)
    return GB


def test_sizes_are_exact_python_integers() -> None:
    shape = (10**6, 10**6, 10**6, 10**6)  # np.prod overflows int64 here
    assert nbytes(shape, np.float32) == 4 * 10**24
    assert human(256 * GB) == "256 GB" and human(1500) == "1.5 kB" and human(12) == "12 bytes"


def test_allocation_error_is_a_value_error_and_a_memory_error() -> None:
    assert AllocationError is PublicAllocationError
    assert issubclass(AllocationError, ValueError) and issubclass(AllocationError, MemoryError)


def test_available_memory_is_known_here() -> None:
    available = _memory.available_bytes()
    assert available is None or available > 0


def test_fallbacks_when_proc_meminfo_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_memory, "_meminfo", lambda: None)
    monkeypatch.setattr(_memory, "_cgroup_room", lambda: None)
    monkeypatch.setattr(_memory, "_sysconf", lambda: 5 * GB)
    assert _memory.available_bytes() == 5 * GB
    monkeypatch.setattr(_memory, "_sysconf", lambda: None)
    assert _memory.available_bytes() is None
    check_array((10**9, 10), np.float32, "unknown memory: only the impossible is refused")
    with pytest.raises(AllocationError, match="more than any machine can address"):
        check_array((10**10, 10**10), np.float64, "x")


def test_a_container_limit_caps_the_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_memory, "_meminfo", lambda: 64 * GB)
    monkeypatch.setattr(_memory, "_cgroup_room", lambda: 2 * GB)
    assert _memory.available_bytes() == 2 * GB


def test_dense_too_large_names_the_layer_weight_and_bytes() -> None:
    with pytest.raises(AllocationError) as info:
        Dense(64, 10**9)
    message = str(info.value)
    assert "Dense(in_features=64, out_features=1000000000" in message
    assert "its parameter W (64 x 1000000000 float32) needs 256 GB" in message
    assert "512 GB with its gradient" in message and "memory available" in message


@pytest.mark.parametrize("make", [lambda: Dense(10**5, 10**5, dtype="float64"),
                                  lambda: BatchNorm1d(10**9), lambda: LayerNorm(10**9)])
def test_every_parameter_is_checked(small_machine: int, make) -> None:
    with pytest.raises(AllocationError, match="more than the 1 GB of memory available"):
        make()


def test_the_model_flat_buffers_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_memory, "SMALL", 0)
    monkeypatch.setattr(_memory, "available_bytes", lambda: 100_000)
    layers = [Dense(100, 100), ReLU(), Dense(100, 100)]  # 80 kB each with its gradient
    with pytest.raises(AllocationError, match=r"flat parameter vector of the model's 3 "
                                              r"layers \(20200 float32\) needs 80.8 kB, "
                                              r"162 kB with the gradient vector, more than "
                                              r"the 100 kB"):
        numnet.Sequential(layers)


def test_small_requests_do_not_read_meminfo(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail() -> int:
        raise AssertionError("available_bytes read for a small layer")
    monkeypatch.setattr(_memory, "available_bytes", fail)
    numnet.Sequential([Dense(64, 128), ReLU(), Dense(128, 10)])


def test_fit_checks_the_batch_once(small_machine: int) -> None:
    model = numnet.Sequential([Dense(4, 1000), ReLU(), Dense(1000, 2)], loss="cross_entropy")
    X = np.zeros((200_000, 4), np.float32)
    y = np.zeros(200_000, np.int64)
    with pytest.raises(AllocationError, match=r"fit: a batch of 200000 samples needs 2.4 GB "
                                              "for its activations and gradients"):
        model.fit(X, y, batch_size=200_000, verbose=0)


def test_architecture_with_a_huge_layer(tmp_path: Path) -> None:
    config = numnet.Sequential([Dense(64, 10), ReLU(), Dense(10, 10)]).get_config()
    config["layers"][0]["config"]["out_features"] = 10**9
    config["layers"][2]["config"]["in_features"] = 10**9
    path = tmp_path / "big.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match=r"layer 0: Dense\(in_features=64, "
                                             r"out_features=1000000000.*needs 256 GB"):
        io.load_architecture(path)


def _npz_with_declared_shape(path: Path, shape: tuple[int, ...], header: dict) -> None:
    """A model file whose array 0.W declares ``shape`` in its .npy header (no data)."""
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("__numnet__.npy", "w") as member:
            npformat.write_array(member, np.frombuffer(json.dumps(header).encode(),
                                                       dtype=np.uint8))
        with archive.open("model/0.W.npy", "w") as member:
            npformat.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False,
                                                     "shape": shape})
            member.write(b"\0" * 64)


def _header() -> dict:
    model = numnet.Sequential([Dense(4, 2, bias=False)], loss="cross_entropy", seed=0)
    return {"kind": "numnet-model", "format": 1, "model": model.get_config(),
            "arrays": {"model": {"0.W": [[4, 2], "<f4"]}}, "metadata": {}}


def test_model_file_array_declaring_a_huge_shape(tmp_path: Path) -> None:
    path = tmp_path / "huge.npz"
    _npz_with_declared_shape(path, (10**6, 10**6), _header())
    for read in (io.load, io.load_metadata, io.file_info, io.load_optimizer):
        with pytest.raises(ModelFileError) as info:
            read(path)
        message = str(info.value)
        assert str(path) in message and "array model/0.W" in message
        assert "1000000 x 1000000 float32, 4 TB" in message and "64 bytes" in message


def test_model_file_array_larger_than_memory(tmp_path: Path, small_machine: int,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.npz"
    model = numnet.Sequential([Dense(4, 2, bias=False)], loss="cross_entropy", seed=0)
    io.save(model, path)
    monkeypatch.setattr(_memory, "SMALL", 0)  # check even this small array...
    monkeypatch.setattr(_memory, "available_bytes", lambda: 16)  # ...on a tiny machine
    with pytest.raises(ModelFileError, match=r"array model/0.W \(4 x 2 float32\) needs 32 "
                                             "bytes, more than the 16 bytes of memory"):
        io.load(path)
