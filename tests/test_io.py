"""numnet.io: model files (save / load / load_optimizer), architecture files, atomic writes."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npformat

import numnet
from numnet import io
from numnet.errors import DataError
from numnet.io import ModelFileError
from numnet.layers import BatchNorm1d, Dense, Dropout, ReLU, Tanh

ROOT = Path(__file__).resolve().parent.parent


def make_model(dtype: str = "float32", seed: int = 0, dropout: bool = True) -> numnet.Sequential:
    layers = [Dense(6, 16), BatchNorm1d(16), ReLU()]
    if dropout:
        layers.append(Dropout(0.3))
    layers += [Dense(16, 8), Tanh(), Dense(8, 3)]
    return numnet.Sequential(layers, loss="cross_entropy", dtype=dtype, seed=seed)


def blobs(n: int = 96, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    X = rng.standard_normal((n, 6)) + y[:, None]
    return X.astype(np.float32), y


def arrays_of(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def header_of(path: Path) -> dict:
    return json.loads(arrays_of(path)["__numnet__"].tobytes().decode())


def rewrite(path: Path, arrays: dict[str, np.ndarray], header: dict | None = None) -> None:
    """Write an npz like numnet's, with the given arrays and (JSON) header."""
    arrays = dict(arrays)
    if header is not None:
        arrays["__numnet__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.fixture
def saved(tmp_path: Path) -> tuple[numnet.Sequential, Path]:
    model = make_model()
    X, y = blobs()
    model.fit(X, y, epochs=1, batch_size=16, verbose=0)  # moves weights, buffers and rngs
    path = tmp_path / "model.npz"
    io.save(model, path)
    return model, path


# -- round trips ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_predictions_are_bit_identical(tmp_path: Path, dtype: str) -> None:
    model = make_model(dtype)
    X, y = blobs()
    model.fit(X, y, epochs=2, batch_size=16, verbose=0)
    path = tmp_path / "m.npz"
    assert io.save(model, path) == path
    loaded = io.load(path)
    assert isinstance(loaded, numnet.Sequential)
    assert loaded.dtype == np.dtype(dtype)
    assert not loaded.training
    np.testing.assert_array_equal(loaded.predict_logits(X), model.predict_logits(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    for key, value in model.state_dict().items():
        restored = loaded.state_dict()[key]
        assert restored.dtype == value.dtype
        np.testing.assert_array_equal(restored, value, err_msg=key)
    assert loaded.get_config() == model.get_config()


def test_buffers_are_saved(saved: tuple[numnet.Sequential, Path]) -> None:
    model, path = saved
    loaded = io.load(path)
    running = [k for k in model.state_dict() if k.startswith("1.") and k not in ("1.gamma",
                                                                                 "1.beta")]
    assert running, "BatchNorm1d should have running-statistics buffers"
    for key in running:
        np.testing.assert_array_equal(loaded.state_dict()[key], model.state_dict()[key])
    # the running statistics moved away from their initial values, so this is a real check
    fresh = make_model().state_dict()
    assert any(not np.array_equal(fresh[k], model.state_dict()[k]) for k in running)


def test_random_generator_states_are_restored(saved: tuple[numnet.Sequential, Path]) -> None:
    model, path = saved
    loaded = io.load(path)
    assert loaded.rng.bit_generator.state == model.rng.bit_generator.state
    for mine, theirs in zip(model.layers, loaded.layers, strict=True):
        assert theirs.rng.bit_generator.state == mine.rng.bit_generator.state
    # and they draw the same numbers afterwards
    np.testing.assert_array_equal(loaded.rng.random(5), model.rng.random(5))
    np.testing.assert_array_equal(loaded.layers[3].rng.random(5), model.layers[3].rng.random(5))


def test_file_layout_is_plain_arrays_and_json(saved: tuple[numnet.Sequential, Path]) -> None:
    model, path = saved
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    assert "__numnet__.npy" in names
    assert {f"model/{k}.npy" for k in model.state_dict()} <= names
    arrays = arrays_of(path)  # allow_pickle=False: nothing in the file needs unpickling
    assert all(not a.dtype.hasobject for a in arrays.values())
    raw = arrays["__numnet__"]
    assert raw.dtype == np.uint8 and raw.ndim == 1
    header = json.loads(raw.tobytes().decode("utf-8"))
    assert header["kind"] == "numnet-model"
    assert header["format"] == io.FILE_FORMAT
    assert header["numnet_version"] == numnet.__version__
    assert header["model"] == model.get_config()
    assert header["model"]["layers"][0]["type"] == "numnet.Dense"
    assert header["model"]["loss"]["type"] == "cross_entropy"
    assert header["optimizer"] is None
    assert header["rng"]["model"]["bit_generator"] == "PCG64"
    assert len(header["rng"]["layers"]) == len(model.layers)
    assert io.file_info(path)["format"] == io.FILE_FORMAT


def test_metadata_round_trip(tmp_path: Path) -> None:
    model = make_model()
    meta = {"classes": [3, 5, 7], "scale": np.float64(0.5), "n": np.int64(4),
            "mean": np.arange(3.0)}
    io.save(model, tmp_path / "m.npz", metadata=meta)
    assert io.load_metadata(tmp_path / "m.npz") == {"classes": [3, 5, 7], "scale": 0.5, "n": 4,
                                                   "mean": [0.0, 1.0, 2.0]}
    io.save(model, tmp_path / "plain.npz")
    assert io.load_metadata(tmp_path / "plain.npz") == {}


def test_unserialisable_metadata_is_refused_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    with pytest.raises(ValueError, match="JSON"):
        io.save(make_model(), path, metadata={"bad": object()})
    assert list(tmp_path.iterdir()) == []


def test_save_rejects_non_models(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="Sequential"):
        io.save(Dense(2, 2), tmp_path / "m.npz")  # type: ignore[arg-type]


def test_save_uses_the_path_as_given_and_ordinary_permissions(tmp_path: Path) -> None:
    io.save(make_model(), tmp_path / "weights.bin")
    assert (tmp_path / "weights.bin").is_file()
    assert not (tmp_path / "weights.bin.npz").exists()
    umask = os.umask(0o022)
    os.umask(umask)
    assert (tmp_path / "weights.bin").stat().st_mode & 0o777 == 0o666 & ~umask


def test_save_into_a_missing_directory_fails(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        io.save(make_model(), tmp_path / "nope" / "m.npz")


# -- optimiser state and resuming -------------------------------------------------------------
@pytest.mark.parametrize("name", ["sgd", "rmsprop", "adam", "adamw"])
def test_optimizer_round_trip(tmp_path: Path, name: str) -> None:
    model = make_model()
    X, y = blobs()
    opt = numnet.optim.get_optimizer(name, lr=0.01)
    model.fit(X, y, epochs=1, batch_size=16, optimizer=opt, verbose=0)
    path = tmp_path / "m.npz"
    io.save(model, path, optimizer=opt)
    loaded = io.load_optimizer(path)
    assert type(loaded) is type(opt)
    assert loaded.get_config() == opt.get_config()
    expected = opt.state_dict()
    got = loaded.state_dict()
    assert set(got) == set(expected)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    assert any(k.startswith("optimizer/") for k in arrays_of(path)) or set(expected) == {"step"}


def test_load_optimizer_is_none_without_one(saved: tuple[numnet.Sequential, Path]) -> None:
    assert io.load_optimizer(saved[1]) is None


def _resume_runs(tmp_path: Path, name: str, shuffle: bool
                 ) -> tuple[numnet.Sequential, numnet.Sequential, Path]:
    """Train 2 epochs straight, and 1 epoch + save + load + 1 epoch; return both models."""
    X, y = blobs(100)
    kwargs = {"batch_size": 16, "verbose": 0, "shuffle": shuffle}

    straight = make_model(seed=7)
    straight.fit(X, y, epochs=2, optimizer=numnet.optim.get_optimizer(name, lr=0.05), **kwargs)

    first = make_model(seed=7)
    opt1 = numnet.optim.get_optimizer(name, lr=0.05)
    first.fit(X, y, epochs=1, optimizer=opt1, **kwargs)
    path = tmp_path / "checkpoint.npz"
    io.save(first, path, optimizer=opt1)
    del first, opt1

    resumed = io.load(path)
    resumed.fit(X, y, epochs=1, optimizer=io.load_optimizer(path), **kwargs)
    return straight, resumed, path


def _assert_same_training_state(a: numnet.Sequential, b: numnet.Sequential) -> None:
    np.testing.assert_array_equal(b.flat_params, a.flat_params)
    for key, value in a.state_dict().items():  # BatchNorm running statistics included
        np.testing.assert_array_equal(b.state_dict()[key], value, err_msg=key)
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert lb.rng.bit_generator.state == la.rng.bit_generator.state


@pytest.mark.parametrize("name", ["momentum", "adam", "rmsprop"])
def test_resumed_training_continues_bit_for_bit(tmp_path: Path, name: str) -> None:
    """2 epochs in one go == 1 epoch, save, load, 1 more epoch: bit for bit.

    The model has dropout (its masks come from the layer's generator, whose stream the file
    restores), batch normalisation (running statistics are buffers) and an optimiser with
    state (momentum / moments and the step count). ``fit`` is called without ``seed``:
    ``fit(seed=s)`` restarts the random streams from ``s`` on every call, by design, so it
    cannot continue a run. Batches are taken in order here; see the next test for shuffling.
    """
    straight, resumed, path = _resume_runs(tmp_path, name, shuffle=False)
    _assert_same_training_state(straight, resumed)

    # the check has teeth: without the restored dropout generator the result differs
    X, y = blobs(100)
    naive = io.load(path)
    naive.layers[3].rng = np.random.default_rng(123)
    naive.fit(X, y, epochs=1, optimizer=io.load_optimizer(path), batch_size=16, verbose=0,
              shuffle=False)
    assert not np.array_equal(naive.flat_params, straight.flat_params)
    # ... and so does resuming without the optimiser state
    fresh_opt = io.load(path)
    fresh_opt.fit(X, y, epochs=1, optimizer=numnet.optim.get_optimizer(name, lr=0.05),
                  batch_size=16, verbose=0, shuffle=False)
    assert not np.array_equal(fresh_opt.flat_params, straight.flat_params)


def test_resumed_training_with_shuffling_continues_bit_for_bit(tmp_path: Path) -> None:
    straight, resumed, _ = _resume_runs(tmp_path, "adam", shuffle=True)
    # the shuffling generator itself is restored exactly ...
    assert resumed.rng.bit_generator.state == straight.rng.bit_generator.state
    # ... and fit draws each epoch's order from it alone, so the runs agree
    _assert_same_training_state(straight, resumed)


# -- errors: every one names the file and the problem -------------------------------------------
def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        io.load(tmp_path / "nope.npz")


def test_errors_are_value_errors() -> None:
    assert issubclass(ModelFileError, ValueError)
    assert issubclass(ModelFileError, DataError)


def expect_error(path: Path, *patterns: str) -> ModelFileError:
    with pytest.raises(ModelFileError) as info:
        io.load(path)
    message = str(info.value)
    assert str(path) in message
    for pattern in patterns:
        assert pattern in message, message
    assert info.value.path == str(path)
    return info.value


def test_newer_format_is_refused(saved: tuple[numnet.Sequential, Path]) -> None:
    _, path = saved
    arrays = arrays_of(path)
    header = header_of(path)
    header["format"] = io.FILE_FORMAT + 1
    header["numnet_version"] = "9.0.0"
    del arrays["__numnet__"]
    rewrite(path, arrays, header)
    expect_error(path, f"file format {io.FILE_FORMAT + 1}", "9.0.0", "upgrade numnet")


def test_newer_model_description_is_refused(saved: tuple[numnet.Sequential, Path]) -> None:
    _, path = saved
    arrays = arrays_of(path)
    header = header_of(path)
    header["model"]["format"] = 99
    del arrays["__numnet__"]
    rewrite(path, arrays, header)
    expect_error(path, "format 99", "upgrade numnet")


def test_missing_array(saved: tuple[numnet.Sequential, Path]) -> None:
    _, path = saved
    arrays = arrays_of(path)
    del arrays["model/4.W"]
    rewrite(path, arrays)
    expect_error(path, "model/4.W", "missing")


def test_missing_array_not_listed_in_header(saved: tuple[numnet.Sequential, Path]) -> None:
    _, path = saved
    arrays = arrays_of(path)
    header = header_of(path)
    del arrays["model/0.b"], arrays["__numnet__"]
    del header["arrays"]["model"]["0.b"]
    rewrite(path, arrays, header)
    expect_error(path, "model/0.b", "missing")


def test_misshapen_array(saved: tuple[numnet.Sequential, Path]) -> None:
    _, path = saved
    arrays = arrays_of(path)
    arrays["model/0.W"] = arrays["model/0.W"][:, :5]
    rewrite(path, arrays)
    expect_error(path, "model/0.W", "shape")


def test_misshapen_array_consistent_with_header(saved: tuple[numnet.Sequential, Path]) -> None:
    _, path = saved
    arrays = arrays_of(path)
    header = header_of(path)
    del arrays["__numnet__"]
    arrays["model/0.W"] = arrays["model/0.W"][:, :5].copy()
    header["arrays"]["model"]["0.W"][0] = [6, 5]
    rewrite(path, arrays, header)
    expect_error(path, "model/0.W", "(6, 5)", "(6, 16)")


def test_wrong_dtype(saved: tuple[numnet.Sequential, Path]) -> None:
    _, path = saved
    arrays = arrays_of(path)
    header = header_of(path)
    del arrays["__numnet__"]
    arrays["model/0.W"] = arrays["model/0.W"].astype(np.float64)
    header["arrays"]["model"]["0.W"][1] = "<f8"
    rewrite(path, arrays, header)
    expect_error(path, "model/0.W", "dtype float64", "float32")


def test_unexpected_array(saved: tuple[numnet.Sequential, Path]) -> None:
    _, path = saved
    arrays = arrays_of(path)
    arrays["model/9.W"] = np.zeros(3, dtype=np.float32)
    rewrite(path, arrays)
    expect_error(path, "model/9.W")


def test_unknown_layer_type(saved: tuple[numnet.Sequential, Path]) -> None:
    _, path = saved
    arrays = arrays_of(path)
    header = header_of(path)
    del arrays["__numnet__"]
    header["model"]["layers"][2]["type"] = "Conv9d"
    rewrite(path, arrays, header)
    expect_error(path, "unknown layer type", "Conv9d")


def test_not_an_npz_file(tmp_path: Path) -> None:
    path = tmp_path / "model.npz"
    path.write_text("this is not a model\n")
    expect_error(path, "not a numnet model file", "not an .npz")


def test_an_npy_file(tmp_path: Path) -> None:
    path = tmp_path / "model.npy"
    np.save(path, np.arange(4))
    expect_error(path, ".npy")


def test_an_npz_without_header(tmp_path: Path) -> None:
    path = tmp_path / "other.npz"
    np.savez(path, a=np.arange(3))
    expect_error(path, "not a numnet model file")


def test_header_that_is_not_json(saved: tuple[numnet.Sequential, Path]) -> None:
    _, path = saved
    arrays = arrays_of(path)
    arrays["__numnet__"] = np.frombuffer(b"{not json", dtype=np.uint8)
    rewrite(path, arrays)
    expect_error(path, "header is not valid JSON")


def test_header_of_wrong_kind(saved: tuple[numnet.Sequential, Path]) -> None:
    _, path = saved
    arrays = arrays_of(path)
    header = header_of(path)
    del arrays["__numnet__"]
    header["kind"] = "something-else"
    rewrite(path, arrays, header)
    expect_error(path, "not a numnet model file", "something-else")


def test_pickled_content_is_never_loaded(tmp_path: Path) -> None:
    path = tmp_path / "evil.npz"
    np.savez(path, __numnet__=np.array([{"kind": "numnet-model"}], dtype=object))
    expect_error(path, "pickled", "never unpickles")


def test_truncated_file(saved: tuple[numnet.Sequential, Path]) -> None:
    _, path = saved
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 100):
        path.write_bytes(data[:cut])
        expect_error(path, "corrupt or truncated")


def test_corrupt_file(saved: tuple[numnet.Sequential, Path]) -> None:
    model, path = saved
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("model/0.W.npy")
    # flip bytes inside the weights' data: the zip CRC catches it
    position = info.header_offset + 30 + len(info.filename) + 200
    data[position:position + 8] = bytes(255 - b for b in data[position:position + 8])
    path.write_bytes(bytes(data))
    expect_error(path, "corrupt")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty.npz"):
        io.load(path)


def test_directory_is_not_a_model(tmp_path: Path) -> None:
    expect_error(tmp_path, "directory")


def test_bad_rng_state(saved: tuple[numnet.Sequential, Path]) -> None:
    _, path = saved
    arrays = arrays_of(path)
    header = header_of(path)
    del arrays["__numnet__"]
    header["rng"]["model"] = {"bit_generator": "NoSuchBitGen"}
    rewrite(path, arrays, header)
    expect_error(path, "random-generator state")


def test_bad_optimizer_state(tmp_path: Path) -> None:
    path = _saved_with_optimizer(tmp_path)
    arrays = arrays_of(path)
    header = header_of(path)
    del arrays["__numnet__"]
    header["optimizer"]["name"] = "lbfgs"
    rewrite(path, arrays, header)
    assert isinstance(io.load(path), numnet.Sequential)  # the model itself is fine
    with pytest.raises(ModelFileError, match="invalid optimizer description.*lbfgs"):
        io.load_optimizer(path)


# -- atomic writes ------------------------------------------------------------------------------
def _no_temporaries(directory: Path) -> None:
    assert sorted(p.name for p in directory.iterdir()) == ["model.npz"]


def test_interrupted_write_keeps_the_old_file(saved: tuple[numnet.Sequential, Path],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    model, path = saved
    before = path.read_bytes()
    X, _ = blobs()
    expected = model.predict_logits(X)

    def failing_savez(file, *args, **kwargs):  # writes half an archive, then fails
        file.write(b"PK\x03\x04" + b"\0" * 1000)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="No space left"):
        io.save(make_model(seed=99), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    np.testing.assert_array_equal(io.load(path).predict_logits(X), expected)
    _no_temporaries(path.parent)


def test_failure_inside_the_array_writer(saved: tuple[numnet.Sequential, Path],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail in the middle of the real writer (after some arrays are in the temp file)."""
    _, path = saved
    before = path.read_bytes()
    real = npformat.write_array
    calls = {"n": 0}

    def flaky(fp, array, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # even an interrupt leaves no temporary file behind
        return real(fp, array, *args, **kwargs)

    monkeypatch.setattr(npformat, "write_array", flaky)
    with pytest.raises(KeyboardInterrupt):
        io.save(make_model(seed=5), path)
    monkeypatch.undo()
    assert calls["n"] == 3, "the patch should have reached numpy's array writer"
    assert path.read_bytes() == before
    _no_temporaries(path.parent)


def test_failed_fsync_keeps_the_old_file(saved: tuple[numnet.Sequential, Path],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _, path = saved
    before = path.read_bytes()
    synced = []

    def failing_fsync(fd: int) -> None:
        synced.append(fd)
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="Input/output"):
        io.save(make_model(seed=5), path)
    monkeypatch.undo()
    assert synced, "save must fsync before renaming"
    assert path.read_bytes() == before
    _no_temporaries(path.parent)


def test_save_replaces_the_file_after_fsync(saved: tuple[numnet.Sequential, Path],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _, path = saved
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace",
                        lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    other = make_model(seed=3)
    io.save(other, path)
    monkeypatch.undo()
    assert events[:2] == ["fsync", "replace"]
    X, _ = blobs()
    np.testing.assert_array_equal(io.load(path).predict_logits(X), other.predict_logits(X))
    _no_temporaries(path.parent)


# -- architecture files -------------------------------------------------------------------------
def test_architecture_round_trip(tmp_path: Path) -> None:
    model = make_model()
    path = io.save_architecture(model, tmp_path / "arch.json")
    assert json.loads(path.read_text()) == model.get_config()
    rebuilt = io.load_architecture(path)
    assert rebuilt.get_config() == model.get_config()
    # same seed, same initial weights
    np.testing.assert_array_equal(rebuilt.flat_params, model.flat_params)


def test_architecture_overrides(tmp_path: Path) -> None:
    path = io.save_architecture(make_model(seed=1), tmp_path / "arch.json")
    changed = io.load_architecture(path, seed=2, dtype="float64")
    assert changed.seed == 2 and changed.dtype == np.float64
    assert not np.array_equal(changed.flat_params, make_model(seed=1).flat_params)


def test_example_architecture_file() -> None:
    model = io.load_architecture(ROOT / "examples" / "architecture.json")
    assert model.input_shape == (64,)
    assert model.output_shape() == (10,)
    assert model.loss is not None


def test_minimal_architecture(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"layers": [
        {"type": "Dense", "config": {"in_features": 4, "out_features": 5}},
        {"type": "ReLU"},
        {"type": "Dense", "config": {"in_features": 5, "out_features": 2}}],
        "loss": {"type": "cross_entropy"}}))
    model = io.load_architecture(path)
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "ReLU", "Dense"]
    assert model.predict(np.ones((3, 4))).shape == (3,)


@pytest.mark.parametrize("text, pattern", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "\"layers\" list"),
    ('{"layers": 3}', "\"layers\" list"),
    ('{"layers": [{"type": "Conv9d"}]}', "unknown layer type 'Conv9d'"),
    ('{"layers": [{"type": "Dense", "config": {"in_features": 4}}]}', "bad arguments"),
    ('{"layers": [{"type": "Dense", "config": {"in_features": 4, "out_features": 3}},'
     ' {"type": "Dense", "config": {"in_features": 5, "out_features": 2}}]}', "size"),
    ('{"format": 42, "layers": []}', "upgrade numnet"),
    ('{"layers": [{"config": {}}]}', "no 'type'"),
])
def test_architecture_errors(tmp_path: Path, text: str, pattern: str) -> None:
    path = tmp_path / "arch.json"
    path.write_text(text)
    with pytest.raises(ModelFileError) as info:
        io.load_architecture(path)
    assert str(path) in str(info.value)
    assert pattern in str(info.value)


def test_architecture_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "arch.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ModelFileError, match="UTF-8"):
        io.load_architecture(path)


def test_architecture_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.json"):
        io.load_architecture(tmp_path / "nope.json")


# -- hand-edited headers: always a ModelFileError naming the file and the field -----------------
def _edit_header(path: Path, edit) -> None:
    arrays = arrays_of(path)
    header = header_of(path)
    del arrays["__numnet__"]
    edit(header)
    rewrite(path, arrays, header)


def _set(*keys: str | int, value: object):
    def edit(header: dict) -> None:
        target = header
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return edit


@pytest.mark.parametrize("edit, patterns", [
    (_set("metadata", value=[1, 2]), ["header field metadata", "a list", "object"]),
    (_set("rng", value="abc"), ["header field rng", "a string"]),
    (_set("rng", "layers", value="abc"), ["header field rng.layers", "a string"]),
    (_set("rng", "layers", 0, value=7), ["header field rng.layers[0]", "an integer"]),
    (_set("rng", "model", "state", "state", value=2**200), ["random-generator state"]),
    (_set("rng", "model", "state", "state", value=-5), ["random-generator state"]),
    (_set("model", "layers", 0, "config", value="abc"),
     ["header field model.layers[0].config", "a string", "object"]),
    (_set("model", "layers", value="abc"), ["header field model.layers", "a list"]),
    (_set("model", "layers", 1, value=5), ["header field model.layers[1]", "an integer"]),
    (_set("model", "layers", 0, "type", value=5), ["model.layers[0].type", "an integer"]),
    (_set("model", "loss", value=5), ["header field model.loss", "an integer"]),
    (_set("model", value=[1]), ["header field model", "a list"]),
    (_set("optimizer", value="adam"), ["header field optimizer", "a string"]),
    (_set("arrays", "model", "0.W", value="x"), ["arrays.model['0.W']", "[shape, dtype]"]),
    (_set("arrays", "model", "0.W", value=[[6, 16], {"a": 1}]), ["arrays.model['0.W']"]),
    (_set("arrays", "model", "0.W", value=[[6, -16], "<f4"]), ["arrays.model['0.W']",
                                                              "sizes >= 0"]),
    (_set("arrays", "model", "0.W", value=[[6, 16], "no-such-dtype"]),
     ["arrays.model['0.W']", "dtype"]),
    (_set("arrays", "optimizer", value=[]), ["header field arrays.optimizer", "a list"]),
])
def test_malformed_header_fields(saved: tuple[numnet.Sequential, Path], edit,
                                 patterns: list[str]) -> None:
    _, path = saved
    _edit_header(path, edit)
    expect_error(path, *patterns)


def test_malformed_metadata_fails_load_metadata(saved: tuple[numnet.Sequential, Path]) -> None:
    _, path = saved
    _edit_header(path, _set("metadata", value=["not", "a", "dict"]))
    with pytest.raises(ModelFileError, match="header field metadata is a list"):
        io.load_metadata(path)


def test_architecture_layer_config_must_be_an_object(tmp_path: Path) -> None:
    path = tmp_path / "arch.json"
    path.write_text('{"layers": [{"type": "Dense", "config": "in=4,out=3"}]}')
    with pytest.raises(ModelFileError) as info:
        io.load_architecture(path)
    assert str(path) in str(info.value)
    assert "field layers[0].config is a string" in str(info.value)


def test_description_is_checked_against_the_arrays_before_building(
        saved: tuple[numnet.Sequential, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """A header claiming a huge layer is refused without building the model first."""
    _, path = saved
    _edit_header(path, _set("model", "layers", 0, "config", "out_features", value=10**6))

    def never(config):
        raise AssertionError("the model was built before its shapes were checked")

    monkeypatch.setattr(numnet.Sequential, "from_config", staticmethod(never))
    expect_error(path, "model/0.W", "(6, 16)", "(6, 1000000)")


def test_description_too_large_to_allocate(saved: tuple[numnet.Sequential, Path]) -> None:
    _, path = saved
    _edit_header(path, _set("model", "layers", 0, "config", "out_features", value=10**15))
    expect_error(path, "layer 0 (numnet.Dense)", "too large")


def _saved_with_optimizer(tmp_path: Path) -> Path:
    model = make_model()
    X, y = blobs()
    opt = numnet.optim.get_optimizer("adam")
    model.fit(X, y, epochs=1, batch_size=32, optimizer=opt, verbose=0)
    path = tmp_path / "m.npz"
    io.save(model, path, optimizer=opt)
    return path


def test_optimizer_state_that_does_not_fit_the_model(tmp_path: Path) -> None:
    path = _saved_with_optimizer(tmp_path)
    n_params = io.load(path).num_params
    arrays = arrays_of(path)
    header = header_of(path)
    del arrays["__numnet__"]
    for key, spec in header["arrays"]["optimizer"].items():
        if spec[0]:  # the flat moment vectors, not the scalar step count
            arrays["optimizer/" + key] = np.zeros(5, dtype=arrays["optimizer/" + key].dtype)
            spec[0] = [5]
    rewrite(path, arrays, header)
    assert isinstance(io.load(path), numnet.Sequential)  # the model itself is fine
    with pytest.raises(ModelFileError) as info:
        io.load_optimizer(path)
    message = str(info.value)
    assert str(path) in message and "optimizer/" in message
    assert "(5,)" in message and f"{n_params} parameters" in message


def test_optimizer_step_must_be_a_count(tmp_path: Path) -> None:
    path = _saved_with_optimizer(tmp_path)
    arrays = arrays_of(path)
    arrays["optimizer/step"] = np.array(-3, dtype=np.int64)
    rewrite(path, arrays)
    with pytest.raises(ModelFileError, match="optimizer/step is -3"):
        io.load_optimizer(path)


def test_docstring_and_leftover_temporary_file(saved: tuple[numnet.Sequential, Path]) -> None:
    """A killed save can leave ``.<name>.<hex>.tmp``: documented, never read, harmless."""
    assert "no temporary file behind" not in io.__doc__
    assert "SIGKILL" in io.__doc__ and "safe to delete" in io.__doc__
    model, path = saved
    stale = path.parent / f".{path.name}.0123456789ab.tmp"
    stale.write_bytes(b"PK\x03\x04 half a model")
    io.save(model, path)
    X, _ = blobs()
    np.testing.assert_array_equal(io.load(path).predict_logits(X), model.predict_logits(X))
    assert stale.exists()  # left alone: it belongs to a process that may still be running
