"""The metadata fields numnet itself writes into a model file, checked as strictly as the
model description.

``save(..., metadata=...)`` takes any JSON object. These keys are numnet's: ``numnet
train`` writes them, and ``evaluate``, ``predict`` and ``trace`` rely on them, so their
values are checked when a file is saved and whenever it is read (other keys are the
user's and are kept as they are):

================  ===========================================================================
``source``        an object: ``data`` (a string, required), ``seed`` (an integer >= 0),
                  ``val_split`` and ``test_split`` (numbers in [0, 1)), ``path`` and
                  ``data_dir`` (strings), ``label_column`` (an integer or a string)
``preprocessing`` an object :func:`numnet.data.preprocessing_from_config` accepts, or null
``classes``       a list of distinct integers or strings: one per output of the model
``image_shape``   a list of positive integers (height, width), or null
``epochs``        an integer >= 0
``command``       a string
``test``          an object with ``loss`` (a finite number) and ``accuracy`` (in [0, 1])
``interrupted``   a boolean
================  ===========================================================================

Against the model (:func:`check_against_model`): ``classes`` has one entry per output
(two for a single binary output), and the number of features of ``preprocessing`` and
``image_shape`` is the model's input size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from numnet.data.preprocessing import (
    MinMaxScaler,
    Standardizer,
    preprocessing_from_config,
)
from numnet.io._format import kind
from numnet.losses import BinaryCrossEntropy, CrossEntropy

if TYPE_CHECKING:
    from numnet.model import Sequential


class InvalidField(ValueError):
    """A metadata field that is not what numnet writes; the message names it."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"metadata field {field} {problem}")


def _shown(value: Any) -> str:
    """``an integer (5)``: the JSON type of a value, and the value when it is short."""
    text = repr(value)
    return kind(value) + (f" ({text})" if len(text) <= 40 else "")


def _need(field: str, value: Any, ok: bool, expected: str) -> None:
    if not ok:
        raise InvalidField(field, f"is {_shown(value)}, expected {expected}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite JSON number (an int of any size, which math.isfinite cannot take)."""
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


def _source(value: Any) -> None:
    _need("source", value, isinstance(value, dict),
          'an object such as {"data": "digits", "seed": 0}')
    data = value.get("data")
    _need("source.data", data, isinstance(data, str), "the dataset (a string)")
    seed = value.get("seed")
    _need("source.seed", seed, seed is None or (_is_int(seed) and seed >= 0),
          "an integer >= 0")
    for split in ("val_split", "test_split"):
        share = value.get(split)
        _need(f"source.{split}", share, share is None or (_is_number(share)
                                                          and 0 <= share < 1),
              "a fraction in [0, 1)")
    for name in ("path", "data_dir"):
        text = value.get(name)
        _need(f"source.{name}", text, text is None or isinstance(text, str), "a string")
    sep = value.get("delimiter")
    _need("source.delimiter", sep, sep is None or (isinstance(sep, str) and len(sep) == 1),
          "one character")
    column = value.get("label_column")
    _need("source.label_column", column, column is None or _is_int(column)
          or isinstance(column, str), "a column index or name")


def _preprocessing(value: Any) -> None:
    if value is None:
        return
    _need("preprocessing", value, isinstance(value, dict),
          'an object such as {"type": "scale", "factor": 0.0625}')
    try:
        preprocessing_from_config(value)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise InvalidField("preprocessing", f"does not describe a scaling: {exc}") from None


def _classes(value: Any) -> None:
    _need("classes", value, isinstance(value, list) and len(value) > 0,
          "a non-empty list of class labels (integers or strings)")
    for index, label in enumerate(value):
        _need(f"classes[{index}]", label, _is_int(label) or isinstance(label, str),
              "a class label (an integer or a string)")
    seen: set[Any] = set()
    for label in value:
        if label in seen:
            raise InvalidField("classes", f"lists the class {label!r} twice")
        seen.add(label)


def _image_shape(value: Any) -> None:
    _need("image_shape", value, value is None or (
        isinstance(value, list) and 1 <= len(value) <= 3
        and all(_is_int(d) and d > 0 for d in value)),
        "a list of positive sizes such as [28, 28], or null")


def _epochs(value: Any) -> None:
    _need("epochs", value, _is_int(value) and value >= 0, "an integer >= 0")


def _command(value: Any) -> None:
    _need("command", value, isinstance(value, str), "a string")


def _test(value: Any) -> None:
    _need("test", value, isinstance(value, dict),
          'an object such as {"loss": 0.12, "accuracy": 0.97}')
    loss, accuracy = value.get("loss"), value.get("accuracy")
    _need("test.loss", loss, _is_number(loss), "a finite number")
    _need("test.accuracy", accuracy, _is_number(accuracy) and 0 <= accuracy <= 1,
          "a number in [0, 1]")


def _interrupted(value: Any) -> None:
    _need("interrupted", value, isinstance(value, bool), "true or false")


#: numnet's metadata fields and their checks
FIELDS: dict[str, Callable[[Any], None]] = {
    "source": _source, "preprocessing": _preprocessing, "classes": _classes,
    "image_shape": _image_shape, "epochs": _epochs, "command": _command, "test": _test,
    "interrupted": _interrupted,
}


def check_metadata(metadata: Mapping[str, Any]) -> None:
    """Check numnet's fields of ``metadata``; raise :class:`InvalidField` naming one."""
    for name, check in FIELDS.items():
        if name in metadata:
            check(metadata[name])


def check_against_model(metadata: Mapping[str, Any], model: Sequential) -> None:
    """Check that ``classes``, ``preprocessing`` and ``image_shape`` fit ``model``."""
    try:
        outputs = model.output_shape()
    except ValueError:
        outputs = None  # the model does not fix its input shape
    classes = metadata.get("classes")
    if classes is not None and outputs is not None:
        expected = _class_count(model, outputs)
        if expected is not None and len(classes) != expected:
            raise InvalidField("classes", f"lists {len(classes)} classes, but the model has "
                                          f"{expected} (its output shape is "
                                          f"{tuple(outputs)})")
    if model.input_shape is None:
        return
    features = math.prod(model.input_shape)
    image_shape = metadata.get("image_shape")
    if image_shape is not None and math.prod(image_shape) != features:
        raise InvalidField("image_shape", f"is {image_shape}, {math.prod(image_shape)} "
                                          f"pixels, but the model takes {features} inputs")
    config = metadata.get("preprocessing")
    if config is not None:
        scaling = preprocessing_from_config(config)  # checked by check_metadata
        if isinstance(scaling, (Standardizer, MinMaxScaler)) \
                and scaling.n_features_in_ != features:
            raise InvalidField("preprocessing", f"scales {scaling.n_features_in_} features, "
                                                f"but the model takes {features} inputs")


def _class_count(model: Sequential, outputs: tuple[int, ...]) -> int | None:
    """How many classes a classifier with ``outputs`` tells apart (None: not a classifier)."""
    if isinstance(model.loss, CrossEntropy) and len(outputs) == 1:
        return outputs[0]
    if isinstance(model.loss, BinaryCrossEntropy) and outputs == (1,):
        return 2
    return None
