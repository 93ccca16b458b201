"""In process: the label encoding, the recorded scaling and the activation choices of the CLI."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from numnet.cli import CLIError, build_parser
from numnet.cli._data import apply_preprocessing, encode_labels
from numnet.cli.train import activations, build_model, snake_case
from numnet.layers import Layer, LeakyReLU, ReLU, Sigmoid, Tanh


def test_encode_text_labels_onto_a_models_classes(tmp_path: Path) -> None:
    encoded, classes = encode_labels(np.array(["b", "a", "c", "a"]), None, tmp_path)
    assert classes == ["a", "b", "c"] and encoded.tolist() == [1, 0, 2, 0]
    encoded, _ = encode_labels(np.array(["c", "a"], dtype=object), ["a", "b", "c"], tmp_path)
    assert encoded.tolist() == [2, 0]
    with pytest.raises(CLIError, match="label 'd' is not one of the model's classes"):
        encode_labels(np.array(["a", "d"]), ["a", "b", "c"], tmp_path)


def test_encode_numeric_labels_as_the_cli_always_has(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    encoded, classes = encode_labels(np.array([9.0, -1.0, 9.0, 4.0]), None, path)
    assert classes == [-1, 4, 9] and [type(c) for c in classes] == [int, int, int]
    assert encoded.tolist() == [2, 0, 2, 1] and encoded.dtype == np.int64
    encoded, classes = encode_labels(np.array([7, 5]), [5, 7, 9], path)  # a model's classes
    assert encoded.tolist() == [1, 0] and classes == [5, 7, 9]


@pytest.mark.parametrize(("labels", "classes", "message"), [
    (np.array([0.0, 1 / 3, 1.0]), None,
     "labels must be whole numbers (class labels), found [0.33333333]"),
    (np.array([1, 1, 1]), None,
     "the label column has a single class ([1]); is --label-column right?"),
    (np.array([0, 1]), [5, 7, 9], "label 0 is not one of the model's classes [5, 7, 9]"),
    (None, None, "no label column"),
])
def test_label_errors_name_the_file_not_the_encoder(tmp_path: Path, labels, classes,
                                                    message) -> None:
    path = tmp_path / "data.csv"
    with pytest.raises(CLIError) as info:
        encode_labels(labels, classes, path)
    assert str(info.value) == f"{path}: {message}"  # the wording the CLI always had


def test_apply_preprocessing_reads_the_dicts_model_files_hold() -> None:
    pixels = np.array([[0, 8, 16]])
    out = apply_preprocessing(pixels, {"type": "scale", "factor": 1 / 16, "raw_max": 16.0})
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, pixels.astype(np.float32) * np.float32(1 / 16))
    X = np.array([[3.0, 2.0], [1.0, 4.0]])
    standardize = {"type": "standardize", "mean": [1.0, 2.0], "std": [2.0, 1.0]}
    np.testing.assert_array_equal(apply_preprocessing(X, standardize), [[1.0, 0.0], [0.0, 2.0]])
    np.testing.assert_array_equal(apply_preprocessing(X, None), X)
    images = np.ones((2, 1, 2))  # flattened for the scaler, then put back in shape
    assert apply_preprocessing(images, standardize).shape == (2, 1, 2)


def test_apply_preprocessing_errors() -> None:
    standardize = {"type": "standardize", "mean": [1.0, 2.0], "std": [2.0, 1.0]}
    with pytest.raises(CLIError, match="^in.csv has 3 features per sample, the model was "
                                       "trained on 2$"):
        apply_preprocessing(np.zeros((1, 3)), standardize, "in.csv")
    with pytest.raises(CLIError, match="unknown preprocessing 'pca'.*recorded in the model"):
        apply_preprocessing(np.zeros((1, 3)), {"type": "pca"})


# -- --activation comes from the layer registry -----------------------------------------
def test_activation_choices_are_the_registered_activation_layers() -> None:
    found = activations()
    assert {"relu", "leaky_relu", "sigmoid", "tanh"} <= set(found)
    assert found["relu"] is ReLU and found["leaky_relu"] is LeakyReLU
    assert found["sigmoid"] is Sigmoid and found["tanh"] is Tanh
    assert "dense" not in found and "dropout" not in found  # weights, or no init_family


@pytest.mark.parametrize(("name", "snake"), [
    ("ReLU", "relu"), ("LeakyReLU", "leaky_relu"), ("Tanh", "tanh"), ("GELU", "gelu"),
    ("LogSoftmax", "log_softmax"), ("HardSwish", "hard_swish"), ("SiLU", "silu"),
])
def test_snake_case(name: str, snake: str) -> None:
    assert snake_case(name) == snake


def test_registry_keys_with_a_namespace_give_the_same_choices(
        monkeypatch: pytest.MonkeyPatch) -> None:
    before = activations()
    monkeypatch.setattr(Layer, "registry", {
        key if "." in key else f"numnet.{key}": cls for key, cls in Layer.registry.items()})
    assert activations() == before


def test_a_new_activation_layer_needs_no_cli_edit(monkeypatch: pytest.MonkeyPatch) -> None:
    # forget the classes afterwards; without any other test's Swish (tests/layers/test_swish)
    registry = {key: cls for key, cls in Layer.registry.items() if cls.__name__ != "Swish"}
    monkeypatch.setattr(Layer, "registry", registry)

    class Swish(Layer):
        """``y = x * sigmoid(x)``."""

        init_family = "he_normal"

        def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
            return x / (1 + np.exp(-x))

    class _Private(Swish):
        pass

    class Scaled(Swish):  # an argument without a default: not a preset activation
        def __init__(self, factor: float) -> None:
            super().__init__()

    # registered by hand: classes defined in a function may not register themselves
    for cls in (Swish, _Private, Scaled):
        registry[f"tests.{cls.__name__}"] = cls
    assert activations()["swish"] is Swish
    assert "_private" not in activations() and "scaled" not in activations()
    args = build_parser().parse_args(["train", "--activation", "swish"])
    assert isinstance(args, argparse.Namespace) and args.activation == "swish"
    model = build_model("mlp:5", 3, 2, activation="swish")
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Swish", "Dense"]
