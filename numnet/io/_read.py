"""Reading model files: the header and every array checked before a model is built."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from numnet import optim
from numnet._checks import all_finite, first_bad_index
from numnet._version import __version__
from numnet.io._arch import build
from numnet.io._format import (
    FILE_FORMAT,
    FILE_KIND,
    HEADER_KEY,
    MODEL_PREFIX,
    OPTIMIZER_PREFIX,
    ModelFileError,
    PathLike,
    from_json,
    parse_json,
)
from numnet.io._header import check_header
from numnet.io._metadata import InvalidField, check_against_model
from numnet.io._npz import read_arrays
from numnet.layers.base import Layer

if TYPE_CHECKING:
    from numnet.model import Sequential


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
        newer format version, lacks an array or holds one of the wrong shape or dtype,
        holds NaN or infinite weights, declares arrays larger than the memory available,
        describes an unknown layer type, or has metadata that numnet does not write
        (see :mod:`numnet.io`).
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
        As :func:`load` (the whole file is read and checked, and numnet's metadata
        fields against the model: ``classes`` must have one entry per output).
    """
    model_file = _read(path)
    model_file.model()  # the metadata is checked against the model it describes
    return dict(model_file.header.get("metadata") or {})


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
        model = build(self.path, config, "header field model.")
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
        try:
            check_against_model(self.header.get("metadata") or {}, model)
        except InvalidField as exc:
            raise self._fail(str(exc)) from None
        return model.eval()

    def check_finite(self) -> None:
        """Refuse NaN or infinite numbers in the arrays, naming the first such array."""
        for key, value in self.arrays.items():
            if value.dtype.kind != "f" or all_finite(np.ascontiguousarray(value).reshape(-1)):
                continue
            bad = ~np.isfinite(value)
            owner = self._owner(key[len(MODEL_PREFIX):]) if key.startswith(MODEL_PREFIX) else ""
            raise self._fail(f"array {key}{owner} holds {int(bad.sum())} NaN or "
                             f"infinite value(s) (the first at index "
                             f"{first_bad_index(bad)}): the model cannot be used (was it "
                             "saved from a training run that diverged, or is the file "
                             "corrupt?)")

    def _owner(self, key: str) -> str:
        """`` (parameter W of layer 0, numnet.Dense)`` for the array ``0.W``."""
        index, _, name = key.partition(".")
        layers = self.header["model"]["layers"]
        if not index.isdigit() or int(index) >= len(layers):
            return ""
        return f" (parameter {name} of layer {index}, {layers[int(index)]['type']})"

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
            bit_generator.state = from_json(state)
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
    arrays = read_arrays(path, HEADER_KEY)
    raw = arrays.pop(HEADER_KEY)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError(path, f"header has dtype {raw.dtype} and shape {raw.shape}, "
                                   "expected a 1-d uint8 array")
    try:
        text = raw.tobytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFileError(path, f"header is not valid JSON ({exc})") from exc
    header = parse_json(path, text, "the header")
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
    check_header(path, header)
    model_file = _ModelFile(path, header, arrays)
    model_file.check_finite()
    return model_file
