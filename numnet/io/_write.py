"""Writing model files and architecture files, through numnet's one file writer."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from numnet import optim
from numnet._checks import all_finite
from numnet._files import atomic_write
from numnet._version import __version__
from numnet.io._format import (
    FILE_FORMAT,
    FILE_KIND,
    HEADER_KEY,
    MODEL_PREFIX,
    MODEL_TYPES,
    OPTIMIZER_PREFIX,
    PathLike,
    json_default,
    rng_state,
)
from numnet.io._metadata import InvalidField, check_metadata

if TYPE_CHECKING:
    from numnet.model import Sequential


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
        completely written and synced; a device, a FIFO or ``-`` (standard output) is
        written into (see :mod:`numnet._files`).
    optimizer : Optimizer, optional
        When given, its configuration and state are saved too, so that training can
        resume exactly (see :func:`load_optimizer`).
    metadata : mapping, optional
        Any JSON-serialisable information to keep with the model (the command line
        stores the dataset, the input preprocessing and the test score here); read it back
        with :func:`load_metadata`. The keys numnet itself uses (``classes``,
        ``preprocessing``, ``source``, ...; see :mod:`numnet.io`) must hold what numnet
        writes there.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        If ``model`` is not a :class:`Sequential`.
    ValueError
        If ``metadata`` or a configuration is not JSON-serialisable, a metadata field of
        numnet's is invalid, or a weight is NaN or infinite (the file could not be read
        back).
    OSError
        If the file cannot be written (the previous file, if any, is left intact), or
        ``path`` is a directory.
    """
    if not isinstance(model, tuple(MODEL_TYPES.values())):
        raise TypeError(f"save expects a numnet Sequential model, got {type(model).__name__}")
    path = Path(path)
    metadata = _checked_metadata(path, metadata)
    _check_finite_weights(path, model)
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
            "model": rng_state(model.rng),
            "layers": [rng_state(getattr(layer, "rng", None)) for layer in model.layers],
        },
        "optimizer": optimizer_config,
        "arrays": {"model": model_shapes, "optimizer": optimizer_shapes},
        "metadata": metadata,
    }
    try:
        text = json.dumps(header, default=json_default, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot save {path}: the description or metadata is not "
                         f"JSON-serialisable: {exc}") from exc
    arrays[HEADER_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    with atomic_write(path) as handle:
        np.savez(handle, allow_pickle=False, **arrays)
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
    text = json.dumps(model.get_config(), indent=2, default=json_default) + "\n"
    with atomic_write(path) as handle:
        handle.write(text.encode("utf-8"))
    return path



def _checked_metadata(path: Path, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """``metadata`` as a dict whose numnet fields are valid (ValueError naming one)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TypeError(f"cannot save {path}: metadata must be a dict, got "
                        f"{type(metadata).__name__}")
    try:
        check_metadata(metadata)
    except InvalidField as exc:
        raise ValueError(f"cannot save {path}: {exc}") from None
    return dict(metadata)


def _check_finite_weights(path: Path, model: Sequential) -> None:
    """Refuse NaN or infinite parameters and buffers: load would refuse the file."""
    for key, value in model.state_dict().items():
        if value.dtype.kind == "f" and not all_finite(np.ascontiguousarray(value).reshape(-1)):
            index, _, name = key.partition(".")
            layer = model.layers[int(index)]
            raise ValueError(f"cannot save {path}: parameter {name!r} of layer {index} "
                             f"{layer!r} holds NaN or infinite values (training diverged?); "
                             "such a model could not be loaded back")
