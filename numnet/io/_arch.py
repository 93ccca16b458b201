"""Architecture files: a model description as plain JSON, and building a model from one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from numnet.io._format import (
    DEFAULT_MODEL_TYPE,
    MODEL_TYPES,
    ModelFileError,
    PathLike,
    parse_json,
)
from numnet.io._header import check_description

if TYPE_CHECKING:
    from numnet.model import Sequential

#: an architecture file larger than this is not one (numnet writes a few kB)
MAX_ARCHITECTURE_BYTES = 16 * 2**20


def load_architecture(path: PathLike, seed: int | None = None,
                      dtype: Any = None) -> Sequential:
    """Build a model from a JSON description (the format of ``Sequential.get_config()``).

    A minimal file::

        {"layers": [{"type": "Dense", "config": {"in_features": 64, "out_features": 32}},
                    {"type": "ReLU"},
                    {"type": "Dense", "config": {"in_features": 32, "out_features": 10}}],
         "loss": {"type": "cross_entropy"}}

    Parameters
    ----------
    path : str or os.PathLike
        The ``.json`` file.
    seed : int, optional
        Overrides the file's ``"seed"`` (the seed of the initial weights) when given.
    dtype : str, optional
        Overrides the file's ``"dtype"`` when given.

    Returns
    -------
    Sequential
        With freshly initialised weights.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ModelFileError
        If the file is not valid JSON, not a model description, or the description is
        invalid (unknown layer type, bad arguments, layers that do not fit).
    """
    path = Path(path)
    try:
        return _load_architecture(path, seed, dtype)
    except ModelFileError as exc:  # the messages name what the file is meant to be
        raise ModelFileError(path, exc.problem, noun="architecture file") from exc.__cause__


def _load_architecture(path: Path, seed: int | None, dtype: str | None) -> Sequential:
    if not path.exists():
        raise FileNotFoundError(2, "no such architecture file", str(path))
    if path.is_dir():
        raise ModelFileError(path, "is a directory, not an architecture file")
    with path.open("rb") as handle:
        raw = handle.read(MAX_ARCHITECTURE_BYTES + 1)
    if len(raw) > MAX_ARCHITECTURE_BYTES:
        raise ModelFileError(path, f"not a JSON architecture file (larger than "
                                   f"{MAX_ARCHITECTURE_BYTES // 2**20} MiB)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFileError(path, "not a JSON architecture file (not UTF-8 text)") from exc
    config = parse_json(path, text, "the file")
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ModelFileError(path, "not a model description: expected a JSON object with a "
                                   "\"layers\" list")
    if seed is not None:
        config["seed"] = seed
    if dtype is not None:
        config["dtype"] = dtype
    return build(path, config)


def build(path: PathLike, config: dict[str, Any], where: str = "field ") -> Sequential:
    """The model ``config`` describes (its class's ``from_config``); ``where`` prefixes
    field names in errors."""
    check_description(path, config, where)
    name = config.get("type", DEFAULT_MODEL_TYPE)
    model_class = MODEL_TYPES.get(name)
    if model_class is None:
        raise ModelFileError(path, f"{where}type is {name!r}, not a model type numnet knows "
                                   f"({sorted(MODEL_TYPES)})")
    try:
        return model_class.from_config(config)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        # AllocationError (a ValueError) included: a layer too large to build
        raise ModelFileError(path, f"invalid model description: {exc}") from exc
