"""Patterns of a few ONNX nodes that are one numnet layer, where a tensor feeds several nodes.

Imported only once the optional ``onnx`` package is known to be installed.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import NodeProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from numnet.layers import LeakyReLU
from numnet.onnx_io._common import ELEM_TYPES
from numnet.onnx_io._graph import ImportContext, Step, known_shape, register_pattern
from numnet.onnx_io._ops import layer_norm_layer, reshape_to


def _pair(ctx: ImportContext, tensor: str, first: set[str], second: set[str]
          ) -> tuple[NodeProto, NodeProto] | None:
    """The two consumers of ``tensor``, one of an op in ``first``, the other in ``second``."""
    consumers = ctx.consumers.get(tensor, [])
    if len(consumers) != 2:
        return None
    a, b = consumers
    if a.op_type in first and b.op_type in second:
        return a, b
    if b.op_type in first and a.op_type in second:
        return b, a
    return None


@register_pattern
def _leaky_relu_max(ctx: ImportContext, tensor: str) -> Step | None:
    """``Max(x, alpha * x)`` (``Min`` for alpha > 1): numnet's own float64 LeakyReLU."""
    pair = _pair(ctx, tensor, {"Mul"}, {"Max", "Min"})
    if pair is None:
        return None
    mul, pick = pair
    alpha = ctx.other_input(mul, tensor)
    if alpha is None or alpha.size != 1 or ctx.follow(mul.output[0], pick.op_type) is not pick \
            or sorted(pick.input) != sorted([tensor, mul.output[0]]):
        return None
    value = ctx.scalar(alpha)
    if value < 0 or (value > 1 if pick.op_type == "Max" else value < 1):
        return None  # another function than a leaky ReLU
    return Step([(LeakyReLU(value, dtype=ctx.dtype), {})], pick.output[0], [mul, pick])


def _reduce_mean_last(ctx: ImportContext, node: NodeProto | None) -> bool:
    """Whether ``node`` is ReduceMean over the last axis, keeping it."""
    if node is None or node.op_type != "ReduceMean":
        return False
    attrs = ctx.attrs(node)
    axes = attrs.get("axes")
    if len(node.input) > 1 and node.input[1]:
        axes = ctx.constants.get(node.input[1])
    return axes is not None and attrs.get("keepdims", 1) == 1 and ctx.last_axis(axes)


@register_pattern
def _layer_norm_decomposed(ctx: ImportContext, tensor: str) -> Step | None:
    """LayerNorm written out: mean, centre, square, mean, + eps, sqrt, divide (or multiply by
    the reciprocal), then optionally * gamma and + beta. numnet's float64 export, and what
    exporters write below opset 17."""
    pair = _pair(ctx, tensor, {"ReduceMean"}, {"Sub"})
    if pair is None:
        return None
    mean, sub = pair
    if not _reduce_mean_last(ctx, mean) or list(sub.input) != [tensor, mean.output[0]] \
            or ctx.follow(mean.output[0], "Sub") is not sub:
        return None
    centred = sub.output[0]
    pair = _pair(ctx, centred, {"Mul", "Pow"}, {"Div", "Mul"})
    if pair is None:
        return None
    square, scale = pair
    if square.op_type == "Mul" and scale.op_type == "Mul" and list(scale.input) == [
            centred, centred]:
        square, scale = scale, square
    exponent = ctx.other_input(square, centred) if square.op_type == "Pow" else None
    if (square.op_type == "Mul" and list(square.input) != [centred, centred]) or (
            square.op_type == "Pow" and (exponent is None or exponent.size != 1
                                         or float(exponent.reshape(-1)[0]) != 2.0)):
        return None
    nodes = [mean, sub, square]
    var = ctx.follow(square.output[0], "ReduceMean")
    add = ctx.follow(var.output[0], "Add") if _reduce_mean_last(ctx, var) and var else None
    eps = ctx.other_input(add, var.output[0]) if add is not None and var is not None else None
    sqrt = ctx.follow(add.output[0], "Sqrt") if add is not None else None
    if var is None or add is None or eps is None or eps.size != 1 or sqrt is None:
        return None
    nodes += [var, add, sqrt]
    x_hat = _normalised(ctx, centred, sqrt.output[0], scale, nodes)
    if x_hat is None:
        return None
    gamma = beta = None
    out = x_hat
    mul = ctx.follow(out, "Mul")
    if mul is not None and ctx.other_input(mul, out) is not None:
        gamma, out = ctx.other_input(mul, out), mul.output[0]
        nodes.append(mul)
    add = ctx.follow(out, "Add")
    if add is not None and ctx.other_input(add, out) is not None:
        beta, out = ctx.other_input(add, out), add.output[0]
        nodes.append(add)
    layer = layer_norm_layer(ctx, sub, ctx.scalar(eps), gamma, beta)
    return Step([layer], out, nodes)


def _normalised(ctx: ImportContext, centred: str, std: str, scale: NodeProto,
                nodes: list[NodeProto]) -> str | None:
    """``centred / std`` as ``Div(centred, std)``, or ``Mul(centred, 1/std)`` with ``1/std``
    a ``Reciprocal`` or ``Div(1, std)``; appends the nodes and returns the result's name."""
    if scale.op_type == "Div":
        if list(scale.input) != [centred, std] or ctx.follow(std, "Div") is not scale:
            return None
        nodes.append(scale)
        return str(scale.output[0])
    invert = ctx.follow(std, "Reciprocal", "Div")
    if invert is None or (invert.op_type == "Div" and (
            invert.input[1] != std or invert.input[0] not in ctx.constants
            or float(ctx.constants[invert.input[0]].reshape(-1)[0]) != 1.0)):
        return None
    if sorted(scale.input) != sorted([centred, invert.output[0]]) \
            or ctx.follow(invert.output[0], "Mul") is not scale:
        return None
    nodes += [invert, scale]
    return str(scale.output[0])


@register_pattern
def _reshape_by_own_shape(ctx: ImportContext, tensor: str) -> Step | None:
    """``x.view(x.size(0), -1)`` as PyTorch writes it: a Reshape of ``x`` to a target
    computed from ``Shape(x)`` (Gather, Unsqueeze, Concat...). The target is evaluated for
    two batch sizes; when it keeps the batch and fixes the rest, it is a fixed reshape."""
    consumers = ctx.consumers.get(tensor, [])
    reshapes = [n for n in consumers if n.op_type == "Reshape" and n.input[0] == tensor]
    known = known_shape(ctx.shape)
    if len(reshapes) != 1 or known is None or len(reshapes[0].input) < 2:
        return None
    reshape = reshapes[0]
    nodes = _shape_subgraph(ctx, reshape.input[1], tensor)
    if nodes is None or not {id(n) for n in consumers} <= {id(n) for n in [*nodes, reshape]}:
        return None
    targets = [_evaluate(ctx, nodes, tensor, reshape.input[1], (batch, *known))
               for batch in (2, 3)]
    if [t[0] for t in targets] not in ([2, 3], [-1, -1]) or targets[0][1:] != targets[1][1:]:
        return None
    step = reshape_to(ctx, reshape, [0, *targets[0][1:]])
    step.nodes = nodes + step.nodes
    return step


def _shape_subgraph(ctx: ImportContext, target: str, tensor: str) -> list[NodeProto] | None:
    """The nodes computing ``target`` from constants and ``Shape(tensor)`` alone (in graph
    order), each output used only among them; None if there is no such subgraph."""
    found: dict[int, NodeProto] = {}
    pending = [target]
    while pending:
        name = pending.pop()
        node = ctx.producer.get(name)
        if node is None:
            return None  # the graph input, or something else that is not a constant
        if id(node) in found:
            continue
        if tensor in node.input and node.op_type != "Shape":
            return None
        found[id(node)] = node
        pending += [i for i in node.input if i and i != tensor and i not in ctx.constants]
    nodes = sorted(found.values(), key=lambda n: ctx.index[id(n)])
    for node in nodes:
        for out in node.output:
            if out != target and any(id(c) not in found for c in ctx.consumers.get(out, [])):
                return None
    return nodes


def _evaluate(ctx: ImportContext, nodes: list[NodeProto], tensor: str, target: str,
              shape: tuple[int, ...]) -> list[int]:
    """Run ``nodes`` on zeros of ``shape`` fed as ``tensor``; the value of ``target``."""
    used = {i for node in nodes for i in node.input if i in ctx.constants}
    graph = helper.make_graph(
        nodes, "shape", [helper.make_tensor_value_info(tensor, ELEM_TYPES[ctx.dtype], shape)],
        [helper.make_tensor_value_info(target, onnx.TensorProto.INT64, None)],
        initializer=[numpy_helper.from_array(ctx.constants[name], name) for name in used])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ctx.opset)])
    (value,) = ReferenceEvaluator(model).run([target], {tensor: np.zeros(shape, ctx.dtype)})
    return [int(d) for d in np.asarray(value).reshape(-1)]


