"""Saving and loading models: one ``.npz`` file, never pickled.

A numnet model file is an ordinary NumPy ``.npz`` archive (a zip of ``.npy`` arrays) with

* ``__numnet__``: a ``uint8`` array holding UTF-8 JSON, the *header*::

      {"kind": "numnet-model", "format": 1, "numnet_version": "0.1.0",
       "model": <Sequential.get_config()>,
       "rng": {"model": <bit-generator state>, "layers": [<state>, ...]},
       "optimizer": <optimizer.get_config()> or null,
       "arrays": {"model": {"0.W": [[64, 128], "float32"], ...}, "optimizer": {...}},
       "metadata": {...}}

* ``model/<layer index>.<name>``: every parameter and buffer (``Sequential.state_dict()``);
* ``optimizer/<name>``: the optimiser's state (``Optimizer.state_dict()``), when saved.

The random generators' states (the model's, used for shuffling, and each layer's, used
for dropout masks) are stored as JSON, so training resumed from a file draws exactly the
random numbers it would have drawn had it never stopped.

Loading reads with ``allow_pickle=False`` and rebuilds the model from the JSON
description, then copies the arrays in. This module does not import the model: the model
class registers itself here (:func:`register_model`) under the name its descriptions
carry in their ``"type"`` field (``"numnet.Sequential"``, also assumed when the field is
absent), and its layers are found in the layer registry
(:meth:`numnet.layers.Layer.lookup`). Anything wrong with the file (not a zip, truncated,
corrupt, written by a newer numnet, an array missing or of the wrong shape or dtype, an
unknown layer type) raises :class:`ModelFileError`, a :class:`ValueError`, whose message
names the file and the problem.

Saving writes to a temporary file in the destination's directory, flushes and fsyncs it,
then renames it onto the destination with :func:`os.replace`: an interrupted save leaves
the previous file as it was. A save stopped by an exception (``KeyboardInterrupt``
included) also removes its temporary file; a process killed outright (``SIGKILL``, a power
cut) can leave one behind, named ``.<file name>.<random hex>.tmp`` next to the
destination, which is safe to delete.

The API
-------
``save(model, path, optimizer=None, metadata=None)``
    Write a model (and optionally its optimiser and a JSON ``metadata`` dict); also
    ``model.save(path, ...)``.
``load(path) -> Sequential``
    The model, with its weights, buffers and random-generator states; also
    ``Sequential.load(path)``.
``load_optimizer(path) -> Optimizer | None``
    The optimiser saved alongside, with its state; ``None`` when none was saved.
``load_metadata(path) -> dict``
    The ``metadata`` dict given to :func:`save` (``{}`` when none).
``file_info(path) -> dict``
    The whole JSON header (format, numnet version, descriptions, metadata).
``load_architecture(path) -> Sequential`` / ``save_architecture(model, path)``
    A model description as a plain JSON file (freshly initialised weights).
``to_onnx(model, path)`` / ``from_onnx(path) -> Sequential``
    ONNX files, for ONNX Runtime and other frameworks (see :mod:`numnet.onnx_io`; needs
    the optional ``onnx`` package).

To resume training exactly, save the optimiser too and call ``fit`` without ``seed``
(``fit(seed=s)`` restarts every random stream from ``s``; without it the model's restored
generators continue where they stopped).

Examples
--------
>>> import numnet, numnet.io
>>> model = numnet.Sequential([numnet.Dense(4, 3)], loss="cross_entropy", seed=0)
>>> opt = numnet.optim.Adam()
>>> numnet.io.save(model, "model.npz", optimizer=opt)      # doctest: +SKIP
>>> model = numnet.io.load("model.npz")                    # doctest: +SKIP
>>> opt = numnet.io.load_optimizer("model.npz")            # doctest: +SKIP
>>> model.fit(X, y, epochs=1, optimizer=opt)               # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import secrets
import zipfile
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from numnet import optim
from numnet._version import __version__
from numnet.errors import DataError
from numnet.layers.base import NAMESPACE, Layer
from numnet.onnx_io import from_onnx, to_onnx  # re-exported: ONNX files (optional onnx)

if TYPE_CHECKING:
    from numnet.model import Sequential

__all__ = [
    "FILE_FORMAT",
    "ModelFileError",
    "file_info",
    "from_onnx",
    "load",
    "load_architecture",
    "load_metadata",
    "load_optimizer",
    "register_model",
    "save",
    "save_architecture",
    "to_onnx",
]

#: Version of the file layout written by :func:`save`; files with a larger number are
#: refused with a request to upgrade numnet.
FILE_FORMAT = 1
HEADER_KEY = "__numnet__"
FILE_KIND = "numnet-model"
MODEL_PREFIX = "model/"
OPTIMIZER_PREFIX = "optimizer/"

PathLike = str | os.PathLike[str]

#: model classes by the name in their descriptions' ``"type"`` field
MODEL_TYPES: dict[str, type[Sequential]] = {}
#: a description without a ``"type"`` field (numnet before 0.2) is one of these
DEFAULT_MODEL_TYPE = f"{NAMESPACE}.Sequential"


def register_model(cls: type[Sequential]) -> type[Sequential]:
    """Let :func:`load` and :func:`load_architecture` build ``cls`` (the model module calls
    this for :class:`~numnet.model.Sequential`); ``cls.type_name`` is its name."""
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
    """

    def __init__(self, path: PathLike, problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"model file {self.path}: {problem}")


# -- saving ---------------------------------------------------------------------------------
def save(model: Sequential, path: PathLike, optimizer: optim.Optimizer | None = None,
         metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` (and optionally ``optimizer``) to one ``.npz`` file, atomically.

    Parameters
    ----------
    model : Sequential
        The model: its description, every parameter and buffer, and the states of its
        random generators are written.
    path : str or os.PathLike
        Destination, used as given (no suffix is added; ``.npz`` is the convention). Its
        directory must exist. An existing file is replaced only once the new one is
        completely written and synced.
    optimizer : Optimizer, optional
        When given, its configuration and state are saved too, so that training can
        resume exactly (see :func:`load_optimizer`).
    metadata : mapping, optional
        Any JSON-serialisable information to keep with the model (the command line
        stores the dataset, the input preprocessing and the test score here); read it back
        with :func:`load_metadata`.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        If ``model`` is not a :class:`Sequential`.
    ValueError
        If ``metadata`` or a configuration is not JSON-serialisable.
    OSError
        If the file cannot be written (the previous file, if any, is left intact).
    """
    if not isinstance(model, tuple(MODEL_TYPES.values())):
        raise TypeError(f"save expects a numnet Sequential model, got {type(model).__name__}")
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    model_shapes = {}
    for key, value in model.state_dict().items():
        value = np.asarray(value, order="C")
        arrays[MODEL_PREFIX + key] = value
        model_shapes[key] = [list(value.shape), value.dtype.str]
    optimizer_config = None
    optimizer_shapes: dict[str, list[Any]] = {}
    if optimizer is not None:
        optimizer_config = optimizer.get_config()
        for key, value in optimizer.state_dict().items():
            value = np.asarray(value, order="C")
            if value.dtype.hasobject:
                raise ValueError(f"optimizer state {key!r} is an object array; numnet model "
                                 "files hold numeric arrays only")
            arrays[OPTIMIZER_PREFIX + key] = value
            optimizer_shapes[key] = [list(value.shape), value.dtype.str]
    header = {
        "kind": FILE_KIND,
        "format": FILE_FORMAT,
        "numnet_version": __version__,
        "model": model.get_config(),
        "rng": {
            "model": _rng_state(model.rng),
            "layers": [_rng_state(getattr(layer, "rng", None)) for layer in model.layers],
        },
        "optimizer": optimizer_config,
        "arrays": {"model": model_shapes, "optimizer": optimizer_shapes},
        "metadata": dict(metadata) if metadata is not None else {},
    }
    try:
        text = json.dumps(header, default=_json_default, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot save {path}: the description or metadata is not "
                         f"JSON-serialisable: {exc}") from exc
    arrays[HEADER_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    _atomic_write(path, lambda handle: np.savez(handle, allow_pickle=False, **arrays))
    return path


def save_architecture(model: Sequential, path: PathLike) -> Path:
    """Write ``model.get_config()`` as an indented JSON file (atomically).

    Parameters
    ----------
    model : Sequential
        The model whose description (layers, loss, dtype, seed) is written; no weights.
    path : str or os.PathLike
        Destination ``.json`` file.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path)
    text = json.dumps(model.get_config(), indent=2, default=_json_default) + "\n"
    _atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))
    return path


def _atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(handle)`` on a temporary file next to ``path``, then rename it over.

    The temporary file ``.<name>.<hex>.tmp`` is flushed and fsynced before
    :func:`os.replace`, and removed on any exception (including ``KeyboardInterrupt``),
    leaving ``path`` untouched. A process killed outright can leave it behind; it is never
    read and is safe to delete.
    """
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(2, "directory does not exist", str(directory))
    tmp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
    # os.open with mode 0o666 lets the umask decide the final permissions, as for an
    # ordinary new file (tempfile.mkstemp would make the model file private).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable where the platform allows (POSIX); best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- loading --------------------------------------------------------------------------------
def load(path: PathLike) -> Sequential:
    """Read a model written by :func:`save`.

    The model is rebuilt from its JSON description, then every parameter and buffer and the
    state of every random generator is restored, so its predictions are bit-identical to
    the saved model's and training continues exactly where it stopped. The model is
    returned in evaluation mode.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.

    Returns
    -------
    Sequential

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ModelFileError
        If the file is not a numnet model file, is truncated or corrupt, was written by a
        newer format version, lacks an array or holds one of the wrong shape or dtype, or
        describes an unknown layer type.
    """
    return _read(path).model()


def load_optimizer(path: PathLike) -> optim.Optimizer | None:
    """Read the optimiser saved with a model by ``save(model, path, optimizer=...)``.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.

    Returns
    -------
    Optimizer or None
        The optimiser (built with :func:`numnet.optim.from_config`) with its state loaded,
        or ``None`` if the file holds no optimiser.

    Raises
    ------
    FileNotFoundError, ModelFileError
        As :func:`load`.
    """
    return _read(path).optimizer()


def load_metadata(path: PathLike) -> dict[str, Any]:
    """The ``metadata`` dict saved with a model (``{}`` when none was given).

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.

    Returns
    -------
    dict

    Raises
    ------
    FileNotFoundError, ModelFileError
        As :func:`load` (the whole file is read and checked).
    """
    return dict(_read(path).header.get("metadata") or {})


def file_info(path: PathLike) -> dict[str, Any]:
    """The file's JSON header: format, numnet version, model description, metadata, ...

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.

    Returns
    -------
    dict
        The header described in the module docstring.
    """
    return _read(path).header


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
    if not path.exists():
        raise FileNotFoundError(2, "no such architecture file", str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFileError(path, "not a JSON architecture file (not UTF-8 text)") from exc
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFileError(path, f"not valid JSON: {exc.msg} at line {exc.lineno} "
                                   f"column {exc.colno}") from exc
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ModelFileError(path, "not a model description: expected a JSON object with a "
                                   "\"layers\" list")
    if seed is not None:
        config["seed"] = seed
    if dtype is not None:
        config["dtype"] = dtype
    return _build(path, config)


def _build(path: PathLike, config: dict[str, Any], where: str = "field ") -> Sequential:
    """The model ``config`` describes (its class's ``from_config``); ``where`` prefixes
    field names in errors."""
    _check_description(path, config, where)
    name = config.get("type", DEFAULT_MODEL_TYPE)
    model_class = MODEL_TYPES.get(name)
    if model_class is None:
        raise ModelFileError(path, f"{where}type is {name!r}, not a model type numnet knows "
                                   f"({sorted(MODEL_TYPES)})")
    try:
        return model_class.from_config(config)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ModelFileError(path, f"invalid model description: {exc}") from exc


class _ModelFile:
    """The parsed content of a model file: header and arrays, validated lazily."""

    def __init__(self, path: Path, header: dict[str, Any], arrays: dict[str, np.ndarray]):
        self.path = path
        self.header = header
        self.arrays = arrays

    def _fail(self, problem: str) -> ModelFileError:
        return ModelFileError(self.path, problem)

    def _section(self, prefix: str, name: str) -> dict[str, np.ndarray]:
        """The arrays under ``prefix``, checked against the header's list of them."""
        listed = self.header["arrays"].get(name) or {}
        if not isinstance(listed, dict):
            raise self._fail(f"header entry arrays.{name} is not an object")
        present = {key[len(prefix):]: value for key, value in self.arrays.items()
                   if key.startswith(prefix)}
        for key, spec in listed.items():
            if key not in present:
                raise self._fail(f"array {prefix}{key} is missing (the file is incomplete)")
            shape, dtype = tuple(spec[0]), np.dtype(spec[1])  # checked by _check_header
            value = present[key]
            if value.shape != shape or value.dtype != dtype:
                raise self._fail(f"array {prefix}{key} has shape {value.shape} and dtype "
                                 f"{value.dtype}, the header says {shape} {dtype}")
        extra = sorted(set(present) - set(listed))
        if extra:
            raise self._fail(f"unexpected arrays not listed in the header: "
                             f"{[prefix + k for k in extra]}")
        return present

    def model(self) -> Sequential:
        config = self.header["model"]
        state = self._section(MODEL_PREFIX, "model")
        self._check_described_shapes(config, state)
        model = _build(self.path, config, "header field model.")
        own = model.state_dict()
        missing = sorted(set(own) - set(state))
        if missing:
            raise self._fail(f"array {MODEL_PREFIX}{missing[0]} is missing "
                             f"(missing: {[MODEL_PREFIX + k for k in missing]})")
        unexpected = sorted(set(state) - set(own))
        if unexpected:
            raise self._fail(f"arrays {[MODEL_PREFIX + k for k in unexpected]} do not belong "
                             "to the described model")
        for key, target in own.items():
            value = state[key]
            if value.shape != target.shape:
                raise self._fail(f"array {MODEL_PREFIX}{key} has shape {value.shape}, the "
                                 f"described model needs {target.shape}")
            if value.dtype != target.dtype:
                raise self._fail(f"array {MODEL_PREFIX}{key} has dtype {value.dtype}, the "
                                 f"described model needs {target.dtype}")
        model.load_state_dict(state)
        rng = self.header.get("rng") or {}
        if rng.get("model") is not None:
            model.rng = self._generator(rng["model"], "model")
        layer_states = rng.get("layers") or []
        if layer_states and len(layer_states) != len(model.layers):
            raise self._fail(f"header has {len(layer_states)} layer generator states for "
                             f"{len(model.layers)} layers")
        for index, (layer, state_json) in enumerate(zip(model.layers, layer_states,
                                                        strict=False)):
            if state_json is not None:
                layer.rng = self._generator(state_json, f"layer {index}")
        return model.eval()

    def _check_described_shapes(self, config: dict[str, Any],
                                state: dict[str, np.ndarray]) -> int | None:
        """Compare each described layer's arrays with the stored ones, before building.

        Each layer is constructed alone, so a description claiming a layer too large to
        allocate, or of another size than its stored arrays, is refused before the model
        is assembled. Returns the number of trainable parameters described, or None when a
        layer could not be built alone (building the model then reports why).
        """
        num_params: int | None = 0
        for index, entry in enumerate(config["layers"]):
            try:
                layer_cls = Layer.lookup(entry["type"])
            except ValueError:
                num_params = None
                continue  # _build names the unknown type
            try:
                layer = layer_cls.from_config(dict(entry.get("config") or {}))
            except MemoryError as exc:
                raise self._fail(f"layer {index} ({entry['type']}) of the description is too "
                                 f"large to build: {exc}") from exc
            except (ValueError, TypeError, KeyError, AttributeError):
                num_params = None
                continue  # bad arguments: _build reports them
            if num_params is not None:
                num_params += layer.num_params
            for store in (layer.params, layer.buffers):
                for name, value in store.items():
                    key = f"{index}.{name}"
                    if key in state and state[key].shape != value.shape:
                        raise self._fail(f"array {MODEL_PREFIX}{key} has shape "
                                         f"{state[key].shape}, the described model needs "
                                         f"{value.shape}")
        return num_params

    def _check_optimizer_state(self, state: dict[str, np.ndarray]) -> None:
        """Scalars ``step`` and ``initial_lr``; every other array one entry per parameter."""
        size = self._check_described_shapes(self.header["model"],
                                            self._section(MODEL_PREFIX, "model"))
        if size is None:
            size = self.model().num_params  # raises what is wrong with the description
        for key, value in state.items():
            name = OPTIMIZER_PREFIX + key
            if key in ("step", "initial_lr"):
                if value.shape != () or value.dtype.kind not in ("iu" if key == "step"
                                                                 else "iuf"):
                    raise self._fail(f"array {name} has shape {value.shape} and dtype "
                                     f"{value.dtype}, expected a single "
                                     f"{'integer' if key == 'step' else 'number'}")
                if key == "step" and int(value) < 0:
                    raise self._fail(f"array {name} is {int(value)}, expected a step count "
                                     ">= 0")
            elif value.shape != (size,):
                raise self._fail(f"array {name} has shape {value.shape}, but the model has "
                                 f"{size} parameters: the optimiser state does not fit it "
                                 f"(expected shape ({size},))")

    def _generator(self, state: Any, what: str) -> np.random.Generator:
        try:
            name = state["bit_generator"]
            bit_generator_cls = getattr(np.random, name)
            if not (isinstance(bit_generator_cls, type)
                    and issubclass(bit_generator_cls, np.random.BitGenerator)):
                raise ValueError(f"{name!r} is not a NumPy bit generator")
            bit_generator = bit_generator_cls()
            bit_generator.state = _from_json(state)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise self._fail(f"the random-generator state of the {what} is invalid: "
                             f"{exc}") from exc
        return np.random.Generator(bit_generator)

    def optimizer(self) -> optim.Optimizer | None:
        config = self.header.get("optimizer")
        if config is None:
            return None
        try:
            opt = optim.from_config(config)
        except (ValueError, TypeError, KeyError) as exc:
            raise self._fail(f"invalid optimizer description: {exc}") from exc
        state = self._section(OPTIMIZER_PREFIX, "optimizer")
        self._check_optimizer_state(state)
        try:
            opt.load_state_dict(state)
        except (ValueError, TypeError, KeyError) as exc:
            raise self._fail(f"optimizer state does not fit: {exc}") from exc
        return opt


def _read(path: PathLike) -> _ModelFile:
    """Open, parse and fully read a model file (every array, so CRCs are checked)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "no such model file", str(path))
    if path.is_dir():
        raise ModelFileError(path, "is a directory, not a model file")
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic.startswith(b"\x93NUMPY"):
        raise ModelFileError(path, "not a numnet model file (a single .npy array, not an "
                                   ".npz archive)")
    if not zipfile.is_zipfile(path):
        if not magic:
            raise ModelFileError(path, "the file is empty (corrupt or truncated)")
        if magic.startswith(b"PK"):
            raise ModelFileError(path, "corrupt or truncated file (the zip directory at its "
                                       "end is missing)")
        raise ModelFileError(path, "not a numnet model file (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            if HEADER_KEY not in names:
                raise ModelFileError(path, "not a numnet model file (an .npz archive without "
                                           f"the {HEADER_KEY} header)")
            arrays = {name: archive[name] for name in names}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ModelFileError(path, f"corrupt or truncated file ({exc})") from exc
    except ValueError as exc:
        if "pickle" in str(exc):
            raise ModelFileError(path, "not a numnet model file (it holds pickled objects, "
                                       "and numnet never unpickles)") from exc
        raise ModelFileError(path, f"corrupt or truncated file ({exc})") from exc
    except OSError as exc:
        if isinstance(exc, PermissionError):
            raise
        raise ModelFileError(path, f"corrupt or truncated file ({exc})") from exc
    raw = arrays.pop(HEADER_KEY)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError(path, f"header has dtype {raw.dtype} and shape {raw.shape}, "
                                   "expected a 1-d uint8 array")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(path, f"header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict) or header.get("kind") != FILE_KIND:
        raise ModelFileError(path, "not a numnet model file (header kind is "
                                   f"{header.get('kind') if isinstance(header, dict) else None!r})")
    version = header.get("format")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFileError(path, f"header has an invalid format version {version!r}")
    if version > FILE_FORMAT:
        raise ModelFileError(
            path, f"written in file format {version} by numnet "
                  f"{header.get('numnet_version', '?')}; this numnet ({__version__}) reads "
                  f"format {FILE_FORMAT} or older: upgrade numnet")
    _check_header(path, header)
    return _ModelFile(path, header, arrays)


# -- header checks ----------------------------------------------------------------------------
_OBJECT = "an object"


def _kind(value: Any) -> str:
    """'a list', 'a string', ... : the JSON type of ``value``, for error messages."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             int: "an integer", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _expect(path: PathLike, field: str, value: Any, types: tuple[type, ...],
            expected: str, optional: bool = True) -> None:
    """Raise ModelFileError naming ``field`` unless ``value`` is one of ``types``.

    ``field`` is as it reads in the message, e.g. ``"header field metadata"``; ``None``
    passes when ``optional``.
    """
    if (value is None and optional) or (isinstance(value, types)
                                        and not isinstance(value, bool)):
        return
    raise ModelFileError(path, f"{field} is {_kind(value)}, expected "
                               f"{expected}{' or null' if optional else ''}")


def _check_header(path: PathLike, header: dict[str, Any]) -> None:
    """Check the types of the header's fields, so nothing but ModelFileError escapes."""
    field = "header field "
    _expect(path, field + "model", header.get("model"), (dict,), _OBJECT, optional=False)
    _check_description(path, header["model"], field + "model.")
    _expect(path, field + "metadata", header.get("metadata"), (dict,), _OBJECT)
    _expect(path, field + "optimizer", header.get("optimizer"), (dict,), _OBJECT)
    rng = header.get("rng")
    _expect(path, field + "rng", rng, (dict,), _OBJECT)
    if rng is not None:
        _expect(path, field + "rng.model", rng.get("model"), (dict,), _OBJECT)
        _expect(path, field + "rng.layers", rng.get("layers"), (list,), "a list")
        for index, state in enumerate(rng.get("layers") or []):
            _expect(path, f"{field}rng.layers[{index}]", state, (dict,), _OBJECT)
    arrays = header.get("arrays")
    _expect(path, field + "arrays", arrays, (dict,), _OBJECT, optional=False)
    assert isinstance(arrays, dict)  # for the type checker: _expect raised otherwise
    for section in ("model", "optimizer"):
        listed = arrays.get(section)
        _expect(path, f"{field}arrays.{section}", listed, (dict,), _OBJECT)
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


def _check_description(path: PathLike, config: dict[str, Any], where: str = "field ") -> None:
    """Check the types in a model description, naming the field (``where`` + its name)."""
    layers = config.get("layers")
    _expect(path, f"{where}layers", layers, (list,), "a list", optional=False)
    assert isinstance(layers, list)  # for the type checker: _expect raised otherwise
    for index, entry in enumerate(layers):
        field = f"{where}layers[{index}]"
        _expect(path, field, entry, (dict,), _OBJECT, optional=False)
        if "type" not in entry:
            raise ModelFileError(path, f"{field} has no 'type' (a layer type name such as "
                                       "\"Dense\")")
        _expect(path, f"{field}.type", entry["type"], (str,), "a layer type name",
                optional=False)
        _expect(path, f"{field}.config", entry.get("config"), (dict,), _OBJECT)
    _expect(path, f"{where}type", config.get("type"), (str,), "a model type name")
    _expect(path, f"{where}loss", config.get("loss"), (dict, str), "an object or a loss name")
    _expect(path, f"{where}input_shape", config.get("input_shape"), (list,), "a list")


# -- JSON helpers ---------------------------------------------------------------------------
def _rng_state(rng: Any) -> dict[str, Any] | None:
    if not isinstance(rng, np.random.Generator):
        return None
    state: dict[str, Any] = _to_json(rng.bit_generator.state)
    return state


def _to_json(value: Any) -> Any:
    """Bit-generator states hold ints and (for MT19937) arrays; make them JSON."""
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.integer):
        return int(value)
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.asarray(value["__ndarray__"], dtype=np.dtype(value["dtype"]))
        return {k: _from_json(v) for k, v in value.items()}
    return value


def _json_default(value: Any) -> Any:
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
