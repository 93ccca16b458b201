"""numnet models to ONNX graphs: the dense-family exporters, and the walk along the model.

Exporters (``fn(ctx, layer, x) -> y``, see :mod:`numnet.onnx_io._context`) are registered
per layer type, here and in :mod:`numnet.onnx_io._export_image` (imported below for its
registrations, so ``EXPORTERS`` is complete once this module is). Layer types are looked up
*exactly* (not through
``isinstance``): a subclass may compute something else, so it needs its own exporter, and
without one the export fails naming the layer, never writing a wrong file.

Imported only once the optional ``onnx`` package is known to be installed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import ModelProto, helper

from numnet import __version__
from numnet._checks import FLOAT_DTYPES
from numnet._files import atomic_write
from numnet.errors import ShapeError
from numnet.layers import (
    BatchNorm1d,
    BatchNorm2d,
    Dense,
    Dropout,
    Flatten,
    Identity,
    Layer,
    LayerNorm,
    LeakyReLU,
    ReLU,
    Reshape,
    Sigmoid,
    Softmax,
    Tanh,
)
from numnet.model import Sequential  # numnet.io re-exports to_onnx; this module is lazy

# importing _export_image registers the image layers' exporters
from numnet.onnx_io import _export_image  # noqa: F401
from numnet.onnx_io._common import (
    ELEM_TYPES,
    LOSS_KEY,
    MIN_OPSET,
    VERSION_KEY,
    default_opset,
    encode_metadata,
)
from numnet.onnx_io._context import EXPORTERS, ExportContext, Exporter, register_exporter
from numnet.onnx_io.errors import OnnxExportError

__all__ = ["EXPORTERS", "ExportContext", "register_exporter", "to_onnx"]


# -- the exporters ----------------------------------------------------------------------------
@register_exporter(Dense)
def _dense(ctx: ExportContext, layer: Dense, x: str) -> str:
    # W is stored (in, out) as numnet holds it: y = x W + b is Gemm with transB=0
    inputs = [x, ctx.param("W")] + ([ctx.param("b")] if layer.bias else [])
    return ctx.node("Gemm", inputs)


def _elementwise(op_type: str) -> Exporter:
    def export(ctx: ExportContext, layer: Layer, x: str) -> str:
        return ctx.node(op_type, [x])
    export.__name__ = f"_{op_type.lower()}"
    return export


for _layer_type, _op_type in ((ReLU, "Relu"), (Sigmoid, "Sigmoid"), (Tanh, "Tanh"),
                              (Identity, "Identity")):
    register_exporter(_layer_type)(_elementwise(_op_type))


@register_exporter(LeakyReLU)
def _leaky_relu(ctx: ExportContext, layer: LeakyReLU, x: str) -> str:
    if ctx.dtype == np.float32:
        return ctx.node("LeakyRelu", [x], alpha=layer.alpha)
    # ONNX Runtime 1.32 has a float64 LeakyRelu kernel for opsets 16-18 only. For
    # alpha <= 1 the function is max(x, alpha x), for alpha >= 1 min(x, alpha x), with
    # alpha kept in float64 (an attribute would round it to float32)
    scaled = ctx.node("Mul", [x, ctx.constant("alpha", layer.alpha)])
    return ctx.node("Max" if layer.alpha <= 1 else "Min", [x, scaled])


@register_exporter(Softmax)
def _softmax(ctx: ExportContext, layer: Softmax, x: str) -> str:
    return ctx.node("Softmax", [x], axis=-1)


@register_exporter(Dropout)
def _dropout(ctx: ExportContext, layer: Dropout, x: str) -> str:
    return x  # the identity in evaluation: no node at all


@register_exporter(Flatten)
def _flatten(ctx: ExportContext, layer: Flatten, x: str) -> str:
    return ctx.node("Flatten", [x], axis=1)


@register_exporter(Reshape)
def _reshape(ctx: ExportContext, layer: Reshape, x: str) -> str:
    # 0 copies the batch size (allowzero=0, the default): the per-sample shape follows
    return ctx.node("Reshape", [x, ctx.constant("shape", [0, *layer.shape], np.int64)])


@register_exporter(BatchNorm1d, BatchNorm2d)
def _batch_norm(ctx: ExportContext, layer: BatchNorm1d, x: str) -> str:
    # BatchNormalization normalises axis 1, of (N, C) and (N, C, H, W) alike. ONNX's
    # epsilon is a float32 attribute, so the runtime adds float32(eps). In float64 the
    # difference is moved into the variance input, making var + float32(eps) numnet's
    # var + eps to the last bit or so (from_onnx moves it back).
    running_var = layer.buffers["running_var"].astype(ctx.dtype)
    if ctx.dtype == np.float64:
        running_var = running_var + (layer.eps - float(np.float32(layer.eps)))
    inputs = [x, ctx.param("gamma"), ctx.param("beta"), ctx.param("running_mean"),
              ctx.constant("running_var", running_var)]
    # ONNX's momentum weighs the old average (Keras's convention), numnet's the new batch
    return ctx.node("BatchNormalization", inputs, epsilon=layer.eps,
                    momentum=1.0 - layer.momentum)


@register_exporter(LayerNorm)
def _layer_norm(ctx: ExportContext, layer: LayerNorm, x: str) -> str:
    gamma, beta = ctx.param("gamma"), ctx.param("beta")
    if ctx.dtype == np.float32 and ctx.opset >= 17:
        return ctx.node("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=layer.eps)
    # LayerNormalization exists from opset 17 only, and its float32 epsilon would change a
    # float64 model (ONNX Runtime's kernel also takes the variance as E[x^2] - E[x]^2): the
    # decomposition is numnet's forward pass, operation for operation
    centred = ctx.node("Sub", [x, ctx.reduce_mean_last(x)])
    var = ctx.reduce_mean_last(ctx.node("Mul", [centred, centred]))
    std = ctx.node("Sqrt", [ctx.node("Add", [var, ctx.constant("eps", layer.eps)])])
    inv_std = ctx.node("Div", [ctx.constant("one", 1.0), std])
    x_hat = ctx.node("Mul", [centred, inv_std])
    return ctx.node("Add", [ctx.node("Mul", [x_hat, gamma]), beta])


# -- the model --------------------------------------------------------------------------------
def to_onnx(model: Sequential, path: str | os.PathLike[str] | None = None, *,
            input_shape: Sequence[int] | int | None, opset: int | None, input_name: str,
            output_name: str, metadata: Mapping[str, Any] | None) -> ModelProto:
    """See :func:`numnet.onnx_io.to_onnx`."""
    layers = _check_model(model)
    opset = _check_opset(opset)
    _check_names(input_name, output_name)
    dtype = np.dtype(model.dtype)
    shape = _input_shape(model, input_shape)
    props = _metadata(model, metadata)

    ctx = ExportContext(opset, dtype, reserved=(input_name, output_name))
    tensor = input_name
    out_shape = shape
    for index, layer in enumerate(layers):
        exporter = EXPORTERS.get(type(layer))
        if exporter is None:
            raise OnnxExportError(
                f"layer {index} {layer!r} cannot be exported to ONNX: no exporter is "
                f"registered for {type(layer).__qualname__} (exportable layer types: "
                f"{', '.join(sorted(t.__name__ for t in EXPORTERS))})")
        _check_finite(index, layer)
        in_shape = out_shape
        try:
            out_shape = layer.output_shape(in_shape)
        except ShapeError as exc:
            raise OnnxExportError(f"layer {index} {layer!r} cannot take input of per-sample "
                                  f"shape {in_shape}: {exc}") from exc
        ctx.start(index, layer, in_shape)
        tensor = exporter(ctx, layer, tensor)
    ctx.rename_output(tensor, output_name, input_name)

    elem = ELEM_TYPES[dtype]
    graph = helper.make_graph(
        ctx.nodes, "numnet",
        [helper.make_tensor_value_info(input_name, elem, ["N", *shape])],
        [helper.make_tensor_value_info(output_name, elem, ["N", *out_shape])],
        initializer=ctx.initializers)
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(
        graph, opset_imports=opsets, producer_name="numnet", producer_version=__version__,
        ir_version=helper.find_min_ir_version_for(opsets, True),
        doc_string=f"numnet {__version__}: the predict_logits of\n{model!r}")
    helper.set_model_props(proto, props)
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        with atomic_write(path) as handle:  # numnet's one writer (numnet._files)
            handle.write(proto.SerializeToString())
    return proto


#: the Sequential methods predict_logits runs through: a model class overriding one of them
#: may compute something else than the chain of its layers the graph is
_FORWARD_PATH = ("predict_logits", "forward", "__call__", "_forward_layers", "_input")


def _check_model(model: Any) -> list[Layer]:
    layers = getattr(model, "layers", None)
    if not isinstance(model, Sequential) or not isinstance(layers, list) or not layers \
            or not all(isinstance(layer, Layer) for layer in layers):
        raise TypeError(f"to_onnx expects a numnet Sequential model, got "
                        f"{type(model).__name__}")
    overridden = [name for name in _FORWARD_PATH
                  if getattr(type(model), name) is not getattr(Sequential, name)]
    if overridden:
        raise OnnxExportError(
            f"{type(model).__qualname__} overrides {', '.join(overridden)} of Sequential, so "
            "it may compute something else than the chain of its layers that to_onnx "
            "writes; export a numnet.Sequential of the same layers if that is what it "
            "computes")
    if np.dtype(getattr(model, "dtype", None)) not in FLOAT_DTYPES:
        raise OnnxExportError(f"to_onnx exports float32 and float64 models, this one is "
                              f"{model.dtype}")
    return layers


def _check_opset(opset: Any) -> int:
    newest = onnx.defs.onnx_opset_version()
    if opset is None:
        return default_opset()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) \
            or not MIN_OPSET <= opset <= newest:
        raise OnnxExportError(f"opset must be an integer from {MIN_OPSET} to {newest} (the "
                              f"newest the installed onnx {onnx.__version__} knows), got "
                              f"{opset!r}")
    return int(opset)


def _check_names(input_name: Any, output_name: Any) -> None:
    for what, name in (("input_name", input_name), ("output_name", output_name)):
        if not isinstance(name, str) or not name:
            raise OnnxExportError(f"{what} must be a non-empty string, got {name!r}")
    if input_name == output_name:
        raise OnnxExportError(f"input_name and output_name are both {input_name!r}; an ONNX "
                              "graph needs two different names")


def _input_shape(model: Sequential, given: Sequence[int] | int | None) -> tuple[int, ...]:
    known = model.input_shape
    if given is None:
        if known is None:
            raise OnnxExportError("the model does not know its input shape (its first layer "
                                  "fixes none): pass input_shape=(features,) to to_onnx")
        return tuple(known)
    shape = (given,) if isinstance(given, (int, np.integer)) else tuple(given)
    if not shape or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool)
                            and d >= 1 for d in shape):
        raise OnnxExportError(f"input_shape must be the per-sample shape, positive sizes "
                              f"without the batch axis such as (784,), got {given!r}")
    shape = tuple(int(d) for d in shape)
    if known is not None and tuple(known) != shape:
        raise OnnxExportError(f"input_shape {shape} differs from the model's input shape "
                              f"{tuple(known)}")
    return shape


def _check_finite(index: int, layer: Layer) -> None:
    for store in (layer.params, layer.buffers):
        for name, value in store.items():
            if not np.isfinite(value).all():
                raise OnnxExportError(f"layer {index} {layer!r}: {name} holds NaN or infinite "
                                      "values; a model with non-finite weights is not "
                                      "exported")


def _metadata(model: Sequential, metadata: Mapping[str, Any] | None) -> dict[str, str]:
    props = {VERSION_KEY: __version__}
    if model.loss is not None:
        props[LOSS_KEY] = model.loss.name
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise OnnxExportError(f"metadata must be a mapping such as {{'classes': [...]}}, "
                                  f"got {type(metadata).__name__}")
        clash = sorted(set(metadata) & set(props))
        if clash:
            raise OnnxExportError(f"metadata keys {clash} are written by numnet itself")
        try:
            props.update(encode_metadata(metadata))
        except ValueError as exc:
            raise OnnxExportError(str(exc)) from exc
    return props
