"""The checks of a model file's header and of a model description: the type of every
field, so that nothing but :class:`~numnet.io.ModelFileError` (naming the field) escapes
from reading a file, however it was edited."""

from __future__ import annotations

from typing import Any

import numpy as np

from numnet.io._format import ModelFileError, PathLike, kind
from numnet.io._metadata import InvalidField, check_metadata

_OBJECT = "an object"


def expect(path: PathLike, field: str, value: Any, types: tuple[type, ...],
           expected: str, optional: bool = True) -> None:
    """Raise ModelFileError naming ``field`` unless ``value`` is one of ``types``.

    ``field`` is as it reads in the message, e.g. ``"header field metadata"``; ``None``
    passes when ``optional``.
    """
    if (value is None and optional) or (isinstance(value, types)
                                        and not isinstance(value, bool)):
        return
    raise ModelFileError(path, f"{field} is {kind(value)}, expected "
                               f"{expected}{' or null' if optional else ''}")


def check_header(path: PathLike, header: dict[str, Any]) -> None:
    """Check the types of the header's fields, so nothing but ModelFileError escapes."""
    field = "header field "
    expect(path, field + "model", header.get("model"), (dict,), _OBJECT, optional=False)
    check_description(path, header["model"], field + "model.")
    expect(path, field + "metadata", header.get("metadata"), (dict,), _OBJECT)
    try:
        check_metadata(header.get("metadata") or {})
    except InvalidField as exc:
        raise ModelFileError(path, str(exc)) from None
    expect(path, field + "optimizer", header.get("optimizer"), (dict,), _OBJECT)
    rng = header.get("rng")
    expect(path, field + "rng", rng, (dict,), _OBJECT)
    if rng is not None:
        expect(path, field + "rng.model", rng.get("model"), (dict,), _OBJECT)
        expect(path, field + "rng.layers", rng.get("layers"), (list,), "a list")
        for index, state in enumerate(rng.get("layers") or []):
            expect(path, f"{field}rng.layers[{index}]", state, (dict,), _OBJECT)
    arrays = header.get("arrays")
    expect(path, field + "arrays", arrays, (dict,), _OBJECT, optional=False)
    assert isinstance(arrays, dict)  # for the type checker: expect raised otherwise
    for section in ("model", "optimizer"):
        listed = arrays.get(section)
        expect(path, f"{field}arrays.{section}", listed, (dict,), _OBJECT)
        for key, spec in (listed or {}).items():
            _check_array_spec(path, f"{field}arrays.{section}[{key!r}]", spec)


def _check_array_spec(path: PathLike, field: str, spec: Any) -> None:
    """An array's entry in the header: ``[[d0, d1, ...], "<dtype>"]``."""
    expected = 'expected [shape, dtype] such as [[64, 128], "<f4"]'
    if not (isinstance(spec, list) and len(spec) == 2 and isinstance(spec[0], list)
            and isinstance(spec[1], str)):
        raise ModelFileError(path, f"{field} is {spec!r}, {expected}")
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in spec[0]):
        raise ModelFileError(path, f"{field} has shape {spec[0]!r}, expected a list of "
                                   "sizes >= 0")
    try:
        np.dtype(spec[1])
    except (TypeError, ValueError) as exc:
        raise ModelFileError(path, f"{field} has dtype {spec[1]!r}, which is not a NumPy "
                                   "dtype") from exc


def check_description(path: PathLike, config: dict[str, Any], where: str = "field ") -> None:
    """Check the types in a model description, naming the field (``where`` + its name)."""
    layers = config.get("layers")
    expect(path, f"{where}layers", layers, (list,), "a list", optional=False)
    assert isinstance(layers, list)  # for the type checker: expect raised otherwise
    for index, entry in enumerate(layers):
        field = f"{where}layers[{index}]"
        expect(path, field, entry, (dict,), _OBJECT, optional=False)
        if "type" not in entry:
            raise ModelFileError(path, f"{field} has no 'type' (a layer type name such as "
                                       "\"Dense\")")
        expect(path, f"{field}.type", entry["type"], (str,), "a layer type name",
                optional=False)
        expect(path, f"{field}.config", entry.get("config"), (dict,), _OBJECT)
    expect(path, f"{where}type", config.get("type"), (str,), "a model type name")
    expect(path, f"{where}loss", config.get("loss"), (dict, str), "an object or a loss name")
    expect(path, f"{where}input_shape", config.get("input_shape"), (list,), "a list")
