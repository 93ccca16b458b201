"""Model files whose structure is valid but whose content is not (issue 13, class 4): numnet's
metadata fields, NaN or infinite weights, JSON nested without bound. Each is a
ModelFileError naming the file and the field or array, from every reader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import numnet
from numnet import io
from numnet.data import Rescale, Standardizer
from numnet.errors import NonFiniteError
from numnet.io import ModelFileError
from numnet.layers import Dense, ReLU

READERS = [io.load, io.load_metadata, io.file_info, io.load_optimizer]


def make_model() -> numnet.Sequential:
    return numnet.Sequential([Dense(6, 8), ReLU(), Dense(8, 3)], loss="cross_entropy",
                             seed=0)


def metadata() -> dict:
    """What ``numnet train`` writes, for a model of 6 inputs (2x3 images) and 3 classes."""
    return {
        "source": {"data": "digits", "seed": 0, "val_split": 0.1, "test_split": 0.2},
        "preprocessing": Rescale(16.0).get_config(),
        "classes": [0, 1, 2],
        "image_shape": [2, 3],
        "epochs": 3,
        "command": "numnet train",
        "test": {"loss": 0.25, "accuracy": 0.9},
        "my own key": {"anything": [1, "x"]},
    }


def arrays_of(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def rewrite(path: Path, header: dict | None = None,
            arrays: dict[str, np.ndarray] | None = None) -> None:
    """Rewrite ``path`` with a new header and/or arrays, as a hand edit would."""
    content = arrays_of(path)
    if header is not None:
        content["__numnet__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    content.update(arrays or {})
    with open(path, "wb") as f:
        np.savez(f, **content)


def header_of(path: Path) -> dict:
    return json.loads(arrays_of(path)["__numnet__"].tobytes())


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "m.npz"
    io.save(make_model(), path, metadata=metadata())
    return path


def test_what_train_writes_is_valid(saved: Path) -> None:
    assert io.load_metadata(saved) == metadata()
    assert isinstance(io.load(saved), numnet.Sequential)


def expect_everywhere(path: Path, *patterns: str) -> None:
    for read in READERS:
        with pytest.raises(ModelFileError) as info:
            read(path)
        message = str(info.value)
        assert message.startswith(f"model file {path}: "), message
        for pattern in patterns:
            assert pattern in message, (read.__name__, pattern, message)


INVALID = [
    ("classes", 5, ["metadata field classes is an integer (5)", "list of class labels"]),
    ("classes", [], ["metadata field classes is a list"]),
    ("classes", [0, 1, [2]], ["metadata field classes[2] is a list"]),
    ("classes", [0, 1, 1], ["metadata field classes lists the class 1 twice"]),
    ("classes", [True, 1, 2], ["metadata field classes[0] is a boolean"]),
    ("preprocessing", [1, 2], ["metadata field preprocessing is a list", "object"]),
    ("preprocessing", {"type": "scale"}, ["metadata field preprocessing does not describe "
                                          "a scaling", "'factor' or 'raw_max'"]),
    ("preprocessing", {"type": "scale", "factor": "x"}, ["metadata field preprocessing"]),
    ("preprocessing", {"type": "standardize", "mean": [0], "std": [0]},
     ["metadata field preprocessing", "std"]),
    ("preprocessing", {"type": "whiten"}, ["metadata field preprocessing", "'whiten'"]),
    ("source", "digits", ["metadata field source is a string ('digits')", "an object"]),
    ("source", {"seed": 0}, ["metadata field source.data is null"]),
    ("source", {"data": "digits", "seed": -1}, ["metadata field source.seed is an integer"]),
    ("source", {"data": "x.csv", "val_split": 2}, ["metadata field source.val_split"]),
    ("source", {"data": "x.csv", "label_column": [1]}, ["source.label_column is a list"]),
    ("source", {"data": "mnist", "data_dir": 5}, ["source.data_dir is an integer"]),
    ("test", {"loss": 0.1}, ["metadata field test.accuracy is null", "[0, 1]"]),
    ("test", {"accuracy": 0.5, "loss": "low"}, ["metadata field test.loss is a string"]),
    ("test", {"accuracy": 1.5, "loss": 0.1}, ["metadata field test.accuracy is a number"]),
    ("test", 0.9, ["metadata field test is a number"]),
    ("image_shape", [28, -28], ["metadata field image_shape"]),
    ("image_shape", "28x28", ["metadata field image_shape is a string"]),
    ("epochs", "3", ["metadata field epochs is a string"]),
    ("epochs", -1, ["metadata field epochs is an integer (-1)"]),
    ("command", ["numnet"], ["metadata field command is a list"]),
    ("interrupted", "yes", ["metadata field interrupted is a string"]),
]


@pytest.mark.parametrize(("field", "value", "patterns"), INVALID)
def test_invalid_metadata_field(saved: Path, field: str, value: object,
                                patterns: list[str]) -> None:
    header = header_of(saved)
    header["metadata"][field] = value
    rewrite(saved, header)
    expect_everywhere(saved, *patterns)


@pytest.mark.parametrize(("field", "value", "patterns"), INVALID)
def test_invalid_metadata_is_refused_at_save(tmp_path: Path, field: str, value: object,
                                             patterns: list[str]) -> None:
    path = tmp_path / "m.npz"
    with pytest.raises(ValueError) as info:
        io.save(make_model(), path, metadata={**metadata(), field: value})
    assert str(path) in str(info.value) and patterns[0] in str(info.value)
    assert not path.exists()


@pytest.mark.parametrize(("field", "value", "pattern"), [
    ("classes", [0, 1], "metadata field classes lists 2 classes, but the model has 3 "
                        "(its output shape is (3,))"),
    ("classes", ["a", "b", "c", "d"], "lists 4 classes, but the model has 3"),
    ("image_shape", [2, 2], "metadata field image_shape is [2, 2], 4 pixels, but the model "
                            "takes 6 inputs"),
    ("preprocessing", Standardizer().fit(np.ones((3, 5))).get_config(),
     "metadata field preprocessing scales 5 features, but the model takes 6 inputs"),
])
def test_metadata_that_contradicts_the_model(saved: Path, field: str, value: object,
                                             pattern: str) -> None:
    header = header_of(saved)
    header["metadata"][field] = value
    rewrite(saved, header)
    for read in (io.load, io.load_metadata):
        with pytest.raises(ModelFileError, match=pattern.replace("(", r"\(").replace(
                ")", r"\)").replace("[", r"\[").replace("]", r"\]")):
            read(saved)


def test_binary_classifier_has_two_classes(tmp_path: Path) -> None:
    model = numnet.Sequential([Dense(2, 1)], loss="binary_cross_entropy", seed=0)
    path = tmp_path / "b.npz"
    io.save(model, path, metadata={"classes": ["no", "yes"]})
    assert io.load_metadata(path)["classes"] == ["no", "yes"]
    io.save(model, path, metadata={"classes": ["only"]})  # checked against the model at load
    with pytest.raises(ModelFileError, match="lists 1 classes, but the model has 2"):
        io.load(path)


# -- NaN and infinite weights ---------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused_naming_the_array(saved: Path, bad: float) -> None:
    W = arrays_of(saved)["model/2.W"].copy()
    W[3, 1] = bad
    rewrite(saved, arrays={"model/2.W": W})
    expect_everywhere(saved, "array model/2.W (parameter W of layer 2, numnet.Dense) holds 1 "
                             "NaN or infinite value(s)", "(3, 1)", "diverged")


def test_non_finite_optimizer_state_is_refused(tmp_path: Path) -> None:
    model = make_model()
    opt = numnet.optim.Adam()
    model.fit(np.ones((4, 6), np.float32), np.arange(4) % 3, epochs=1, optimizer=opt,
              verbose=0)
    path = tmp_path / "m.npz"
    io.save(model, path, optimizer=opt)
    key = next(k for k in arrays_of(path) if k.startswith("optimizer/") and
               arrays_of(path)[k].ndim == 1)
    state = arrays_of(path)[key].copy()
    state[0] = np.nan
    rewrite(path, arrays={key: state})
    expect_everywhere(path, f"array {key} holds 1 NaN")


def test_a_model_with_nan_weights_is_not_saved(tmp_path: Path) -> None:
    model = make_model()
    model.layers[0].params["b"][2] = np.nan
    with pytest.raises(ValueError, match=r"parameter 'b' of layer 0 Dense.*NaN or infinite"):
        io.save(model, tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def test_nan_weights_are_blamed_in_predict_and_evaluate() -> None:
    model = make_model()
    model.layers[2].params["W"][0, 0] = np.nan
    X, y = np.ones((5, 6), np.float32), np.zeros(5, np.int64)
    for call in (lambda: model.predict(X), lambda: model.predict_proba(X),
                 lambda: model.evaluate(X, y)):
        with pytest.raises(NonFiniteError, match=r"the model's parameter 'W' of layer 2 "
                                                 r"Dense\(in_features=8.*NaN or infinite"):
            call()


def test_outputs_that_overflow_blame_the_inputs() -> None:
    model = make_model()
    for layer in (model.layers[0], model.layers[2]):
        layer.params["W"][...] = 1.0
    with pytest.raises(NonFiniteError, match="weights are finite.*inputs far outside"):
        model.predict(np.full((2, 6), 1e38, np.float32))


# -- JSON nested without bound --------------------------------------------------------------
@pytest.mark.parametrize("depth", [150, 100_000])
def test_deeply_nested_header(saved: Path, depth: int) -> None:
    header = header_of(saved)
    text = json.dumps(header)[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    content = arrays_of(saved)
    content["__numnet__"] = np.frombuffer(text.encode(), dtype=np.uint8)
    with open(saved, "wb") as f:
        np.savez(f, **content)
    expect_everywhere(saved, "the header nests JSON", "100")


@pytest.mark.parametrize("depth", [150, 100_000])
def test_deeply_nested_architecture(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "a.json"
    path.write_text('{"layers": [], "x": ' + "[" * depth + "]" * depth + "}")
    with pytest.raises(ModelFileError, match="nests JSON .*100") as info:
        io.load_architecture(path)
    assert str(info.value).startswith(f"architecture file {path}: ")  # not "model file"


def test_nesting_that_numnet_writes_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    io.save(make_model(), path, metadata={"deep": [[[[[[[[1]]]]]]]]})
    assert io.load_metadata(path)["deep"] == [[[[[[[[1]]]]]]]]
