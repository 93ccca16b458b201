"""Single ONNX nodes to numnet layers: one importer per op type.

Imported only once the optional ``onnx`` package is known to be installed.
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto

from numnet.layers import (
    BatchNorm1d,
    BatchNorm2d,
    Dense,
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
from numnet.onnx_io._common import short_float32
from numnet.onnx_io._graph import (
    ImportContext,
    Importer,
    Step,
    known_shape,
    register_importer,
    vector,
)


def _dense(ctx: ImportContext, node: NodeProto, weight: np.ndarray,
           bias: np.ndarray | None) -> tuple[Layer, dict[str, np.ndarray]]:
    if weight.ndim != 2:
        raise ctx.fail(node, f"multiplies by a weight of shape {weight.shape}; numnet's Dense "
                             "needs a matrix")
    if len(ctx.shape) != 1:
        raise ctx.fail(node, f"multiplies input of per-sample shape {ctx.shape}; numnet's "
                             "Dense takes (N, features)")
    in_features, out_features = weight.shape
    layer = Dense(in_features, out_features, bias=bias is not None, dtype=ctx.dtype)
    state = {"W": ctx.array(weight)}
    if bias is not None:
        state["b"] = vector(ctx, node, bias, out_features, "bias")
    return layer, state


@register_importer("Gemm")
def _gemm(ctx: ImportContext, node: NodeProto) -> Step:
    attrs = ctx.attrs(node)
    if node.input[0] != ctx.tensor or attrs.get("transA", 0):
        raise ctx.fail(node, "does not compute x B (+ C) from the data x (it is the second "
                             "operand, or transA=1); numnet's Dense computes x W + b")
    weight = ctx.const(node, 1, "weight B")
    if weight.ndim == 2 and attrs.get("transB", 0):
        weight = weight.T
    weight = weight * attrs.get("alpha", 1.0)
    bias = None
    if len(node.input) > 2 and node.input[2]:
        bias = ctx.const(node, 2, "bias C") * attrs.get("beta", 1.0)
    return Step([_dense(ctx, node, weight, bias)], node.output[0], [node])


@register_importer("MatMul")
def _matmul(ctx: ImportContext, node: NodeProto) -> Step:
    if node.input[0] != ctx.tensor:
        raise ctx.fail(node, "multiplies a weight by the data (W x); numnet's Dense computes "
                             "x W + b")
    weight = ctx.const(node, 1, "weight")
    step = Step([], node.output[0], [node])
    add = ctx.follow(step.output, "Add")
    bias = None if add is None else ctx.other_input(add, step.output)
    if add is not None and bias is not None and weight.ndim == 2 \
            and bias.size in (1, weight.shape[1]) and bias.ndim <= 2:
        step.nodes.append(add)
        step.output = add.output[0]
    else:
        bias = None
    step.layers.append(_dense(ctx, node, weight, bias))
    return step


def _simple(layer_type: type[Layer]) -> Importer:
    def import_node(ctx: ImportContext, node: NodeProto) -> Step:
        return Step([(layer_type(dtype=ctx.dtype), {})], node.output[0], [node])
    return import_node


for _op_type, _layer_type in (("Relu", ReLU), ("Sigmoid", Sigmoid), ("Tanh", Tanh),
                              ("Identity", Identity)):
    register_importer(_op_type)(_simple(_layer_type))


@register_importer("LeakyRelu")
def _leaky_relu(ctx: ImportContext, node: NodeProto) -> Step:
    alpha = ctx.scalar(ctx.attrs(node).get("alpha", 0.01))
    if alpha < 0:
        raise ctx.fail(node, f"has alpha {alpha}; numnet's LeakyReLU needs alpha >= 0")
    return Step([(LeakyReLU(alpha, dtype=ctx.dtype), {})], node.output[0], [node])


@register_importer("Softmax")
def _softmax(ctx: ImportContext, node: NodeProto) -> Step:
    axis = ctx.attrs(node).get("axis", -1 if ctx.opset >= 13 else 1)
    if not ctx.last_axis(axis):
        raise ctx.fail(node, f"normalises axis {axis} of a rank-{ctx.rank} tensor; "
                             "numnet's Softmax normalises the last axis")
    return Step([(Softmax(dtype=ctx.dtype), {})], node.output[0], [node])


@register_importer("Dropout")
def _dropout(ctx: ImportContext, node: NodeProto) -> Step:
    ctx.only_first_output(node)
    if len(node.input) > 2 and node.input[2]:
        training = ctx.const(node, 2, "training_mode")
        if bool(np.asarray(training).reshape(-1)[0]):
            raise ctx.fail(node, "drops units (training_mode is true); numnet imports the "
                                 "inference graph")
    return Step([], node.output[0], [node])  # the identity in inference: no layer


@register_importer("Flatten")
def _flatten(ctx: ImportContext, node: NodeProto) -> Step:
    axis = ctx.attrs(node).get("axis", 1)
    if axis % ctx.rank != 1:
        raise ctx.fail(node, f"flattens from axis {axis}; numnet's Flatten keeps the batch "
                             "axis and flattens the rest (axis=1)")
    return Step([(Flatten(dtype=ctx.dtype), {})], node.output[0], [node])


@register_importer("Reshape")
def _reshape(ctx: ImportContext, node: NodeProto) -> Step:
    target = [int(d) for d in ctx.const(node, 1, "shape").reshape(-1)]
    return reshape_to(ctx, node, target)


def reshape_to(ctx: ImportContext, node: NodeProto, target: list[int]) -> Step:
    """A Reshape to ``target`` (ONNX's: 0 copies a size, -1 is inferred) as a layer:
    Flatten for ``(N, features)``, else Reshape to the per-sample shape."""
    written = target
    if ctx.batch is not None and target and target[0] == ctx.batch:
        # a graph of a fixed batch (exported without a dynamic axis) writes its size for
        # PyTorch's x.view(x.size(0), -1): the first axis is the batch, kept
        target = [0, *target[1:]]
    keeps_batch = target and (target[0] == 0 or (target[0] == -1 and all(
        d > 0 for d in target[1:])))
    if not keeps_batch or (ctx.attrs(node).get("allowzero", 0) and 0 in written):
        raise ctx.fail(node, f"reshapes to {written}; numnet needs the batch axis kept "
                             "(0 or -1 first), as (N, -1) does")
    sample = [_copied_size(ctx, node, written, axis) if d == 0 else d
              for axis, d in enumerate(target[1:], start=1)]
    known = known_shape(ctx.shape)
    layer: Layer
    try:
        if len(sample) == 1:
            layer = Flatten(dtype=ctx.dtype)
            size = None if known is None else int(np.prod(known))
            if size is not None and sample[0] not in (-1, size):
                raise ValueError(f"{size} values per sample do not make {sample[0]}")
        else:
            layer = Reshape(sample, dtype=ctx.dtype)
            if known is not None:
                layer.output_shape(known)
    except ValueError as exc:  # ShapeError included
        raise ctx.fail(node, f"reshapes per-sample shape {ctx.shape} to {written}: "
                             f"{exc}") from exc
    return Step([(layer, {})], node.output[0], [node])


def _copied_size(ctx: ImportContext, node: NodeProto, target: list[int], axis: int) -> int:
    """The input size a 0 at ``axis`` of a Reshape target copies."""
    size = ctx.shape[axis - 1] if axis - 1 < len(ctx.shape) else None
    if size is None:
        raise ctx.fail(node, f"reshapes to {target}, copying size {axis} of per-sample shape "
                             f"{ctx.shape}, which is unknown")
    return size


@register_importer("BatchNormalization")
def _batch_norm(ctx: ImportContext, node: NodeProto) -> Step:
    attrs = ctx.attrs(node)
    ctx.only_first_output(node)
    if attrs.get("training_mode", 0) or not attrs.get("spatial", 1):
        raise ctx.fail(node, "normalises with batch statistics (training_mode=1) or "
                             "spatial=0; numnet imports inference with running statistics")
    # (N, C) is BatchNorm1d's, (N, C, H, W) BatchNorm2d's: both normalise axis 1
    layer_type = {1: BatchNorm1d, 3: BatchNorm2d}.get(len(ctx.shape))
    if layer_type is None:
        raise ctx.fail(node, f"normalises input of per-sample shape {ctx.shape}; numnet "
                             "imports BatchNormalization of (N, features) as BatchNorm1d and "
                             "of images (N, C, H, W) as BatchNorm2d")
    gamma, beta, mean, var = (ctx.const(node, i, what) for i, what in enumerate(
        ("scale", "bias B", "input_mean", "input_var"), start=1))
    size = gamma.size
    eps32 = float(np.float32(attrs.get("epsilon", 1e-5)))
    eps = short_float32(eps32)
    momentum = short_float32(1.0 - short_float32(attrs.get("momentum", 0.9)))
    try:
        layer = layer_type(size, momentum=momentum, eps=eps, dtype=ctx.dtype)
    except ValueError as exc:
        raise ctx.fail(node, f"cannot be a {layer_type.__name__}: {exc}") from exc
    running_var = vector(ctx, node, var, size, "variance")
    if ctx.dtype == np.float64:
        # the graph adds float32(eps); numnet adds eps: keep the sum (see the exporter)
        running_var = running_var + (eps32 - eps)
    state = {"gamma": vector(ctx, node, gamma, size, "scale"),
             "beta": vector(ctx, node, beta, size, "bias"),
             "running_mean": vector(ctx, node, mean, size, "mean"),
             "running_var": running_var}
    return Step([(layer, state)], node.output[0], [node])


@register_importer("LayerNormalization")
def _layer_norm(ctx: ImportContext, node: NodeProto) -> Step:
    attrs = ctx.attrs(node)
    ctx.only_first_output(node)
    if not ctx.last_axis(attrs.get("axis", -1)):
        raise ctx.fail(node, f"normalises from axis {attrs.get('axis')}; numnet's LayerNorm "
                             "normalises the last axis only")
    gamma = ctx.const(node, 1, "scale")
    beta = ctx.const(node, 2, "bias B") if len(node.input) > 2 and node.input[2] else None
    step = Step([], node.output[0], [node])
    step.layers.append(layer_norm_layer(ctx, node, ctx.scalar(attrs.get("epsilon", 1e-5)),
                                         gamma, beta))
    return step


def layer_norm_layer(ctx: ImportContext, node: NodeProto, eps: float,
                      gamma: np.ndarray | None, beta: np.ndarray | None
                      ) -> tuple[Layer, dict[str, np.ndarray]]:
    size = ctx.shape[-1] or (gamma.size if gamma is not None else None)
    if size is None:
        raise ctx.fail(node, "normalises a last axis of unknown size")
    layer = LayerNorm(size, eps=eps, dtype=ctx.dtype)
    ones, zeros = np.ones(size), np.zeros(size)
    return layer, {"gamma": vector(ctx, node, ones if gamma is None else gamma, size, "scale"),
                   "beta": vector(ctx, node, zeros if beta is None else beta, size, "bias")}


