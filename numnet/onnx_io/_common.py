"""What export and import share: opsets, element types, float attributes, metadata, files.

Imported only once the optional ``onnx`` package is known to be installed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import ModelProto, TensorProto

from numnet.onnx_io.errors import OnnxImportError

#: the oldest opset written: Softmax's axis semantics and the Gemm/Dropout in use are 13's
MIN_OPSET = 13
#: the newest opset tested against ONNX Runtime (1.32 runs every opset up to onnx 1.23's 28)
MAX_TESTED_OPSET = 28

ELEM_TYPES: dict[np.dtype, int] = {np.dtype(np.float32): TensorProto.FLOAT,
                                   np.dtype(np.float64): TensorProto.DOUBLE}
DTYPES: dict[int, np.dtype] = {elem: dtype for dtype, elem in ELEM_TYPES.items()}

#: float64 convolution (see numnet.onnx_io._export_image): the windows (N, C, kh, H_out, kw,
#: W_out) contracted with the weight (C_out, C_in, kh, kw)
CONV_EQUATION = "ncipjq,ocij->nopq"

#: metadata_props keys numnet writes itself
VERSION_KEY = "numnet_version"
LOSS_KEY = "loss"


def default_opset() -> int:
    """The newest opset both the installed onnx and the tested ONNX Runtime support."""
    return min(MAX_TESTED_OPSET, onnx.defs.onnx_opset_version())


def short_float32(value: float) -> float:
    """The shortest decimal that rounds to the same float32 as ``value``.

    ONNX stores float attributes as float32: ``epsilon=1e-5`` comes back as
    ``9.99999974e-06``. Written as ``1e-05`` again it is the same float32, and the float
    the user wrote.
    """
    return float(str(np.float32(value)))


def window_indices(size: int, kernel: int, stride: int, dilation: int) -> np.ndarray:
    """Which rows (columns) of an axis of ``size`` padded pixels each window reads.

    ``(kernel, out)`` int64 with ``[i, p] = i * dilation + p * stride``: kernel offset ``i``
    of window ``p``, for the ``out = (size - dilation * (kernel - 1) - 1) // stride + 1``
    windows that fit (PyTorch's floor mode). ``Gather`` with it along an image axis is
    im2col along that axis.
    """
    out = (size - dilation * (kernel - 1) - 1) // stride + 1
    return (np.arange(kernel)[:, None] * dilation + np.arange(out)[None, :] * stride
            ).astype(np.int64)


def encode_metadata(metadata: Mapping[str, Any]) -> dict[str, str]:
    """Strings as they are, any other value as JSON (``metadata_props`` hold text)."""
    encoded = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"metadata keys must be non-empty strings, got {key!r}")
        if isinstance(value, str):
            encoded[key] = value
            continue
        try:
            encoded[key] = json.dumps(value, default=_json_default, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"metadata[{key!r}] is not JSON-serialisable: {exc}") from exc
    return encoded


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON-serialisable")


def read_metadata(model: ModelProto) -> dict[str, Any]:
    """``metadata_props`` as a dict: values that parse as JSON decoded, text left as it is."""
    result: dict[str, Any] = {}
    for prop in model.metadata_props:
        try:
            result[prop.key] = json.loads(prop.value)
        except ValueError:
            result[prop.key] = prop.value
    return result


def load_proto(source: Any) -> ModelProto:
    """A checked ``ModelProto`` from a path, bytes or a ``ModelProto``."""
    if isinstance(source, ModelProto):
        where = "the ONNX model"
        model = source
    elif isinstance(source, (bytes, bytearray, memoryview)):
        where = "the ONNX bytes"
        model = _parse(bytes(source), where)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        where = f"ONNX file {path}"
        if not path.is_file():
            raise FileNotFoundError(2, "no such ONNX file", str(path))
        try:
            model = onnx.load(path)
        except DecodeError as exc:
            raise OnnxImportError(f"{where}: not an ONNX model, or truncated ({exc})") from exc
    else:
        raise TypeError(f"from_onnx expects a path, bytes or an onnx.ModelProto, got "
                        f"{type(source).__name__}")
    if not model.graph.node and not model.graph.input:
        raise OnnxImportError(f"{where}: not an ONNX model (it holds no graph)")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OnnxImportError(f"{where}: not a valid ONNX model: {first}") from exc
    return model


def _parse(data: bytes, where: str) -> ModelProto:
    model = ModelProto()
    try:
        model.ParseFromString(data)
    except DecodeError as exc:
        raise OnnxImportError(f"{where}: not an ONNX model, or truncated ({exc})") from exc
    return model
