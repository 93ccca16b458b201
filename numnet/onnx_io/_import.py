"""ONNX graphs to a numnet :class:`~numnet.Sequential`: the walk along the chain.

See :mod:`numnet.onnx_io._graph` for how the graph is read, :mod:`numnet.onnx_io._ops` and
:mod:`numnet.onnx_io._patterns` for what becomes which layer.

Imported only once the optional ``onnx`` package is known to be installed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numnet.layers import (
    AvgPool2D,
    Conv2D,
    Flatten,
    GlobalAvgPool2D,
    Identity,
    Layer,
    MaxPool2D,
    Reshape,
)
from numnet.losses import Loss, get_loss
from numnet.model import Sequential  # numnet.io re-exports from_onnx; this module is lazy

# importing _ops, _ops_image and _patterns registers the importers and patterns they define
from numnet.onnx_io import _ops, _ops_image, _patterns  # noqa: F401
from numnet.onnx_io._common import LOSS_KEY, load_proto, read_metadata
from numnet.onnx_io._graph import (
    FANOUT_PATTERNS,
    IMPORTERS,
    ImportContext,
    Shape,
    Step,
    known_shape,
)
from numnet.onnx_io.errors import OnnxImportError


def from_onnx(source: Any, *, loss: Loss | str | None, seed: int | None) -> Sequential:
    """See :func:`numnet.onnx_io.from_onnx`."""
    model = load_proto(source)
    named = isinstance(source, str) or hasattr(source, "__fspath__")
    ctx = ImportContext(model, f"ONNX file {source}" if named else "ONNX model")
    input_shape = known_shape(ctx.shape)
    layers = _walk(ctx)
    try:
        result = Sequential([layer for layer, _ in layers], input_shape=input_shape,
                            dtype=ctx.dtype, seed=seed)
    except ValueError as exc:
        raise OnnxImportError(f"{ctx.where}: the layers read from the graph do not fit "
                              f"together: {exc}") from exc
    result.load_state_dict({f"{index}.{name}": value
                            for index, (_, state) in enumerate(layers)
                            for name, value in state.items()})
    result.loss = _loss(ctx, read_metadata(model), loss, result)
    return result.eval()


def _walk(ctx: ImportContext) -> list[tuple[Layer, dict[str, np.ndarray]]]:
    """Follow the chain from the input to the output, one step at a time."""
    layers: list[tuple[Layer, dict[str, np.ndarray]]] = []
    used: set[int] = set()
    while ctx.tensor != ctx.output_name:
        step = _step(ctx)
        used.update(id(node) for node in step.nodes)
        for layer, _ in step.layers:
            ctx.shape = _advance(layer, ctx.shape)
        layers += step.layers
        ctx.tensor = step.output
    left = [node for node in ctx.nodes if id(node) not in used]
    if left:
        raise OnnxImportError(f"{ctx.where}: {ctx.label(left[0])} is not on the chain from "
                              f"the input {ctx.input_name!r} to the output "
                              f"{ctx.output_name!r}; numnet imports a chain of layers")
    return _ops_image.drop_unit_axes(ctx, layers) or [(Identity(dtype=ctx.dtype), {})]


def _step(ctx: ImportContext) -> Step:
    tensor = ctx.tensor
    consumers = ctx.consumers.get(tensor, [])
    if not consumers:
        raise OnnxImportError(f"{ctx.where}: the tensor {tensor!r} is read by no node and is "
                              f"not the graph output {ctx.output_name!r}")
    if len(consumers) > 1:
        for pattern in FANOUT_PATTERNS:
            step = pattern(ctx, tensor)
            if step is not None:
                return step
        nodes = ", ".join(ctx.label(node) for node in consumers)
        raise OnnxImportError(f"{ctx.where}: the tensor {tensor!r} feeds {len(consumers)} "
                              f"nodes ({nodes}); numnet imports a chain of layers, in which "
                              "each tensor feeds the next layer only")
    node = consumers[0]
    importer = IMPORTERS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
    if importer is None:
        op = f"{node.domain}.{node.op_type}" if node.domain else node.op_type
        raise OnnxImportError(f"{ctx.where}: {ctx.label(node)}: the op {op} is not "
                              f"supported by numnet's ONNX import (supported: "
                              f"{', '.join(sorted(IMPORTERS))})")
    return importer(ctx, node)


def _advance(layer: Layer, shape: Shape) -> Shape:
    """The per-sample shape after ``layer`` (None where the graph leaves a size open)."""
    known = known_shape(shape)
    if known is not None:
        return layer.output_shape(known)
    if layer.input_shape is not None:
        return layer.output_shape(layer.input_shape)
    # images of a size the graph leaves open: the channels are known, or the target's
    if isinstance(layer, Conv2D):
        return (layer.out_channels, None, None)
    if isinstance(layer, GlobalAvgPool2D):
        return shape[:1]
    if isinstance(layer, Reshape):
        return tuple(None if d == -1 else d for d in layer.shape)
    if isinstance(layer, (MaxPool2D, AvgPool2D)):
        return (shape[0], None, None)
    return (None,) if isinstance(layer, Flatten) else shape


def _loss(ctx: ImportContext, metadata: dict[str, Any], given: Loss | str | None,
          model: Sequential) -> Loss | None:
    """The loss given, else the one recorded, else one guessed from the classes."""
    if given is not None:
        return get_loss(given)
    recorded = metadata.get(LOSS_KEY)
    if recorded is not None:
        try:
            return get_loss(str(recorded))
        except ValueError as exc:
            raise OnnxImportError(f"{ctx.where}: the recorded loss {recorded!r} is unknown "
                                  "to this numnet; pass loss=... to from_onnx") from exc
    classes = metadata.get("classes")
    if not isinstance(classes, list) or len(classes) < 2 or len(ctx.shape) != 1:
        return None
    outputs = ctx.shape[0]
    if outputs == len(classes):
        return get_loss("cross_entropy")
    if outputs == 1 and len(classes) == 2:
        return get_loss("binary_cross_entropy")
    return None
