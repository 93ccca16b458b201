"""ONNX graphs to numnet layers: one importer per op type, plus patterns of a few nodes.

The graph must be a chain: from its one input to its one output, each tensor feeds the
next node (or the few nodes of one pattern, such as a decomposed LayerNorm). Constants
(initializers, ``Constant`` nodes and any node computed from constants alone) are folded
first. An importer is ``fn(ctx, node) -> Step`` for the node consuming the current tensor
``ctx.tensor``; a fan-out pattern is ``fn(ctx, tensor) -> Step | None`` for a tensor that
feeds several nodes. A :class:`Step` lists the layers made (each with the arrays of its
parameters and buffers), the tensor reached, and the nodes used.

Imported only once the optional ``onnx`` package is known to be installed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import ModelProto, NodeProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from numnet.layers import (
    BatchNorm1d,
    Dense,
    Flatten,
    Identity,
    Layer,
    LayerNorm,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from numnet.losses import Loss, get_loss
from numnet.model import Sequential  # numnet.io re-exports from_onnx; this module is lazy
from numnet.onnx_io._common import (
    DTYPES,
    ELEM_TYPES,
    LOSS_KEY,
    load_proto,
    read_metadata,
    short_float32,
)
from numnet.onnx_io.errors import OnnxImportError

Shape = tuple[int | None, ...]


@dataclass
class Step:
    """What an importer made: layers with their arrays, the tensor reached, nodes used."""

    layers: list[tuple[Layer, dict[str, np.ndarray]]]
    output: str
    nodes: list[NodeProto] = field(default_factory=list)


Importer = Callable[["ImportContext", NodeProto], Step]
Pattern = Callable[["ImportContext", str], "Step | None"]

#: op type -> the function turning the node (and maybe the few after it) into layers
IMPORTERS: dict[str, Importer] = {}
#: patterns tried, in order, where a tensor feeds more than one node
FANOUT_PATTERNS: list[Pattern] = []

#: ops that are never folded although they have no non-constant input
_NOT_CONSTANT = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                 "Multinomial", "Bernoulli"}


def register_importer(*op_types: str) -> Callable[[Importer], Importer]:
    """Decorator: ``fn(ctx, node) -> Step`` imports nodes of each of ``op_types``."""
    def register(fn: Importer) -> Importer:
        for op_type in op_types:
            IMPORTERS[op_type] = fn
        return fn
    return register


def register_pattern(fn: Pattern) -> Pattern:
    """Decorator: ``fn(ctx, tensor) -> Step | None`` for a tensor feeding several nodes."""
    FANOUT_PATTERNS.append(fn)
    return fn


class ImportContext:
    """The graph being read: its constants, who consumes each tensor, where the walk is.

    Attributes
    ----------
    tensor : str
        The tensor the next layer reads.
    shape : tuple
        Its per-sample shape (None for a size the graph leaves symbolic).
    dtype : numpy.dtype
        The graph input's float type, the model's.
    opset : int
        The graph's default-domain opset (attribute defaults depend on it).
    """

    def __init__(self, model: ModelProto, where: str) -> None:
        self.where = where
        graph = model.graph
        self.opset = next((o.version for o in model.opset_import
                           if o.domain in ("", "ai.onnx")), 1)
        self.constants: dict[str, np.ndarray] = {
            t.name: numpy_helper.to_array(t) for t in graph.initializer}
        inputs = [v for v in graph.input if v.name not in self.constants]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise OnnxImportError(
                f"{where}: the graph has {len(inputs)} input(s) and {len(graph.output)} "
                "output(s); numnet imports a model with one input and one output")
        self.input_name, self.output_name = inputs[0].name, graph.output[0].name
        self.dtype, self.shape = self._input_type(inputs[0])
        self.tensor = self.input_name
        nodes = list(graph.node)  # one Python object per node: identities stay valid
        self.index = {id(node): i for i, node in enumerate(nodes)}
        self.nodes = [node for node in nodes if not self._fold(node)]
        self.producer = {out: node for node in self.nodes for out in node.output if out}
        self.consumers: dict[str, list[NodeProto]] = {}
        for node in self.nodes:
            for name in dict.fromkeys(node.input):  # a node reading x twice consumes it once
                if name and name not in self.constants:
                    self.consumers.setdefault(name, []).append(node)

    def _input_type(self, value: onnx.ValueInfoProto) -> tuple[np.dtype, Shape]:
        tensor_type = value.type.tensor_type
        dtype = DTYPES.get(tensor_type.elem_type)
        if dtype is None:
            name = onnx.TensorProto.DataType.Name(tensor_type.elem_type)
            raise OnnxImportError(f"{self.where}: the input {value.name!r} holds {name}; numnet "
                                  "models are float32 (FLOAT) or float64 (DOUBLE)")
        if not tensor_type.HasField("shape") or len(tensor_type.shape.dim) < 2:
            raise OnnxImportError(f"{self.where}: the input {value.name!r} must be a batch "
                                  "of rank 2 or more, (N, features) or (N, C, H, W)")
        dims = tensor_type.shape.dim[1:]
        return dtype, tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)

    def _fold(self, node: NodeProto) -> bool:
        """Compute ``node`` now if all its inputs are constants; whether it was."""
        if (node.domain not in ("", "ai.onnx") or node.op_type in _NOT_CONSTANT
                or any(name and name not in self.constants for name in node.input)):
            return False
        if node.op_type == "Identity":
            outputs: list[Any] = [self.constants[node.input[0]]]
        else:
            feeds = {name: self.constants[name] for name in node.input if name}
            try:
                outputs = list(ReferenceEvaluator(node, opsets={"": self.opset}).run(None,
                                                                                     feeds))
            except Exception as exc:  # noqa: BLE001  (any failure: report the node instead)
                raise OnnxImportError(f"{self.where}: {self.label(node)} computes a constant "
                                      f"that cannot be evaluated: {exc}") from exc
        for name, value in zip(node.output, outputs, strict=False):
            if name:
                self.constants[name] = np.asarray(value)
        return True

    # -- helpers for importers ----------------------------------------------------------------
    def label(self, node: NodeProto) -> str:
        """``node 3 'name' (Gemm)``: how messages name a node."""
        return f"node {self.index.get(id(node), '?')} {node.name!r} ({node.op_type})"

    def fail(self, node: NodeProto, problem: str) -> OnnxImportError:
        return OnnxImportError(f"{self.where}: {self.label(node)} {problem}")

    def attrs(self, node: NodeProto) -> dict[str, Any]:
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def const(self, node: NodeProto, position: int, what: str) -> np.ndarray:
        """The constant at input ``position`` of ``node`` (an error naming it otherwise)."""
        name = node.input[position] if position < len(node.input) else ""
        if name not in self.constants:
            raise self.fail(node, f"takes its {what} from {name!r}, which is not a constant; "
                                  "numnet imports weights stored in the graph")
        return self.constants[name]

    def array(self, value: np.ndarray) -> np.ndarray:
        """``value`` in the model's dtype."""
        return np.asarray(value, dtype=self.dtype)

    def scalar(self, value: Any) -> float:
        """A float attribute or constant as numnet holds it.

        float32 models get the shortest decimal of the same float32 (``1e-05``, not
        ``9.99999974e-06``); float64 models the exact value, which is what the graph
        computes with.
        """
        value = float(np.asarray(value).reshape(-1)[0])
        return short_float32(value) if self.dtype == np.float32 else value

    def follow(self, tensor: str, *op_types: str) -> NodeProto | None:
        """The one node consuming ``tensor`` if it is of one of ``op_types``, else None."""
        consumers = self.consumers.get(tensor, [])
        if tensor == self.output_name or len(consumers) != 1:
            return None
        return consumers[0] if consumers[0].op_type in op_types else None

    def other_input(self, node: NodeProto, tensor: str) -> np.ndarray | None:
        """The constant operand of a binary ``node`` whose other operand is ``tensor``."""
        if len(node.input) != 2 or tensor not in node.input:
            return None
        other = node.input[1] if node.input[0] == tensor else node.input[0]
        return self.constants.get(other)

    def only_first_output(self, node: NodeProto) -> None:
        """Refuse a node whose optional extra outputs (a mask, batch statistics) are used."""
        for name in node.output[1:]:
            if name and (name in self.consumers or name == self.output_name):
                raise self.fail(node, f"has its extra output {name!r} used; numnet computes "
                                      "the first output only")

    @property
    def rank(self) -> int:
        """The rank of the current tensor, batch axis included."""
        return 1 + len(self.shape)

    def last_axis(self, axes: Any) -> bool:
        """Whether ``axes`` (a list or an int) names the last axis only."""
        axes = np.asarray(axes).reshape(-1)
        return axes.size == 1 and int(axes[0]) % self.rank == self.rank - 1


# -- single-node importers --------------------------------------------------------------------
def _vector(ctx: ImportContext, node: NodeProto, value: np.ndarray, size: int,
            what: str) -> np.ndarray:
    """``value`` as a ``(size,)`` vector: a scalar, ``(size,)`` or ``(1, size)``."""
    if value.size == 1:
        return np.full(size, value.reshape(-1)[0], dtype=ctx.dtype)
    if value.shape in ((size,), (1, size)):
        return ctx.array(value.reshape(size))
    raise ctx.fail(node, f"has a {what} of shape {value.shape}; expected ({size},)")


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
        state["b"] = _vector(ctx, node, bias, out_features, "bias")
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
    return _reshape_to(ctx, node, target)


def _reshape_to(ctx: ImportContext, node: NodeProto, target: list[int]) -> Step:
    """A Reshape to ``target`` (ONNX's: 0 copies a size, -1 is inferred) as a layer."""
    keeps_batch = target and (target[0] == 0 or (target[0] == -1 and all(
        d > 0 for d in target[1:])))
    if not keeps_batch or (ctx.attrs(node).get("allowzero", 0) and 0 in target):
        raise ctx.fail(node, f"reshapes to {target}; numnet needs the batch axis kept "
                             "(0 or -1 first), as (N, -1) does")
    known = _known(ctx.shape)
    size = None if known is None else int(np.prod(known))
    if len(target) != 2 or (size is not None and target[1] not in (-1, size)):
        raise ctx.fail(node, f"reshapes per-sample shape {ctx.shape} to {target}; numnet "
                             "imports a reshape to (N, features) only (as Flatten)")
    return Step([(Flatten(dtype=ctx.dtype), {})], node.output[0], [node])


@register_importer("BatchNormalization")
def _batch_norm(ctx: ImportContext, node: NodeProto) -> Step:
    attrs = ctx.attrs(node)
    ctx.only_first_output(node)
    if attrs.get("training_mode", 0) or not attrs.get("spatial", 1):
        raise ctx.fail(node, "normalises with batch statistics (training_mode=1) or "
                             "spatial=0; numnet imports inference with running statistics")
    if len(ctx.shape) != 1:
        raise ctx.fail(node, f"normalises input of per-sample shape {ctx.shape}; numnet "
                             "imports BatchNormalization of (N, features) as BatchNorm1d")
    gamma, beta, mean, var = (ctx.const(node, i, what) for i, what in enumerate(
        ("scale", "bias B", "input_mean", "input_var"), start=1))
    size = gamma.size
    eps32 = float(np.float32(attrs.get("epsilon", 1e-5)))
    eps = short_float32(eps32)
    momentum = short_float32(1.0 - short_float32(attrs.get("momentum", 0.9)))
    try:
        layer = BatchNorm1d(size, momentum=momentum, eps=eps, dtype=ctx.dtype)
    except ValueError as exc:
        raise ctx.fail(node, f"cannot be a BatchNorm1d: {exc}") from exc
    running_var = _vector(ctx, node, var, size, "variance")
    if ctx.dtype == np.float64:
        # the graph adds float32(eps); numnet adds eps: keep the sum (see the exporter)
        running_var = running_var + (eps32 - eps)
    state = {"gamma": _vector(ctx, node, gamma, size, "scale"),
             "beta": _vector(ctx, node, beta, size, "bias"),
             "running_mean": _vector(ctx, node, mean, size, "mean"),
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
    step.layers.append(_layer_norm_layer(ctx, node, ctx.scalar(attrs.get("epsilon", 1e-5)),
                                         gamma, beta))
    return step


def _layer_norm_layer(ctx: ImportContext, node: NodeProto, eps: float,
                      gamma: np.ndarray | None, beta: np.ndarray | None
                      ) -> tuple[Layer, dict[str, np.ndarray]]:
    size = ctx.shape[-1] or (gamma.size if gamma is not None else None)
    if size is None:
        raise ctx.fail(node, "normalises a last axis of unknown size")
    layer = LayerNorm(size, eps=eps, dtype=ctx.dtype)
    ones, zeros = np.ones(size), np.zeros(size)
    return layer, {"gamma": _vector(ctx, node, ones if gamma is None else gamma, size, "scale"),
                   "beta": _vector(ctx, node, zeros if beta is None else beta, size, "bias")}


# -- fan-out patterns -------------------------------------------------------------------------
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
    layer = _layer_norm_layer(ctx, sub, ctx.scalar(eps), gamma, beta)
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
    known = _known(ctx.shape)
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
    step = _reshape_to(ctx, reshape, [0, *targets[0][1:]])
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


# -- the model --------------------------------------------------------------------------------
def from_onnx(source: Any, *, loss: Loss | str | None, seed: int | None) -> Sequential:
    """See :func:`numnet.onnx_io.from_onnx`."""
    model = load_proto(source)
    named = isinstance(source, str) or hasattr(source, "__fspath__")
    ctx = ImportContext(model, f"ONNX file {source}" if named else "ONNX model")
    input_shape = _known(ctx.shape)
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
    return layers or [(Identity(dtype=ctx.dtype), {})]


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
    known = _known(shape)
    if known is not None:
        return layer.output_shape(known)
    if layer.input_shape is not None:
        return layer.output_shape(layer.input_shape)
    return (None,) if isinstance(layer, Flatten) else shape


def _known(shape: Shape) -> tuple[int, ...] | None:
    """``shape`` if every size is known, else None."""
    sizes = tuple(d for d in shape if d is not None)
    return sizes if len(sizes) == len(shape) else None


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
