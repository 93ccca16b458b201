"""What reading and writing model files share: the layout's names, the error, the model
registry, and JSON that round-trips generator states and cannot nest without bound."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from numnet.errors import DataError
from numnet.layers.base import NAMESPACE

if TYPE_CHECKING:
    from numnet.model import Sequential

#: Version of the file layout written by :func:`numnet.io.save`; files with a larger
#: number are refused with a request to upgrade numnet.
FILE_FORMAT = 1
HEADER_KEY = "__numnet__"
FILE_KIND = "numnet-model"
MODEL_PREFIX = "model/"
OPTIMIZER_PREFIX = "optimizer/"
#: deepest nesting accepted in a header or an architecture file; numnet writes about 6
MAX_JSON_DEPTH = 100

PathLike = str | os.PathLike[str]

#: model classes by the name in their descriptions' ``"type"`` field
MODEL_TYPES: dict[str, type[Sequential]] = {}
#: a description without a ``"type"`` field (numnet before 0.2) is one of these
DEFAULT_MODEL_TYPE = f"{NAMESPACE}.Sequential"


def register_model(cls: type[Sequential]) -> type[Sequential]:
    """Let :func:`~numnet.io.load` and :func:`~numnet.io.load_architecture` build ``cls``
    (the model module calls this for :class:`~numnet.model.Sequential`); ``cls.type_name``
    is its name."""
    MODEL_TYPES[cls.type_name] = cls
    return cls


class ModelFileError(DataError):
    """A model or architecture file cannot be read: corrupt, truncated, too new, ...

    A subclass of :class:`numnet.errors.DataError` and so of :class:`ValueError`.

    Parameters
    ----------
    path : str or os.PathLike
        The file concerned; it is named in the message.
    problem : str
        What is wrong with it.
    noun : str, default "model file"
        What the file is meant to be (``"architecture file"`` for a JSON architecture).
    """

    def __init__(self, path: PathLike, problem: str, noun: str = "model file") -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{noun} {self.path}: {problem}")


def kind(value: Any) -> str:
    """'a list', 'a string', ... : the JSON type of ``value``, for error messages."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             int: "an integer", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


# -- JSON ---------------------------------------------------------------------------------
def parse_json(path: PathLike, text: str, what: str) -> Any:
    """``json.loads(text)``, refusing nesting deeper than :data:`MAX_JSON_DEPTH`.

    The parser itself gives up with a RecursionError near Python's recursion limit; a
    document just below it would still exhaust the recursion of whatever walks it next.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFileError(path, f"{what} is not valid JSON: {exc.msg} at line "
                                   f"{exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:
        raise ModelFileError(path, f"{what} nests JSON too deeply (more than "
                                   f"{MAX_JSON_DEPTH} levels)") from exc
    depth = json_depth(value)
    if depth > MAX_JSON_DEPTH:
        raise ModelFileError(path, f"{what} nests JSON {depth} levels deep, more than the "
                                   f"{MAX_JSON_DEPTH} numnet accepts")
    return value


def json_depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (0 for a scalar), without recursion."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def rng_state(rng: Any) -> dict[str, Any] | None:
    """A generator's bit-generator state as JSON (None when ``rng`` is no Generator)."""
    if not isinstance(rng, np.random.Generator):
        return None
    state: dict[str, Any] = to_json(rng.bit_generator.state)
    return state


def to_json(value: Any) -> Any:
    """Bit-generator states hold ints and (for MT19937) arrays; make them JSON."""
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.integer):
        return int(value)
    return value


def from_json(value: Any) -> Any:
    """The inverse of :func:`to_json`."""
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.asarray(value["__ndarray__"], dtype=np.dtype(value["dtype"]))
        return {k: from_json(v) for k, v in value.items()}
    return value


def json_default(value: Any) -> Any:
    """``json.dumps``'s ``default``: NumPy scalars and arrays, tuples and sets."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set)):
        return list(value)
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON-serialisable")
