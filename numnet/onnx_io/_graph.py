"""The ONNX graph as numnet's import reads it: constants folded, consumers indexed.

The graph must be a chain: from its one input to its one output, each tensor feeds the
next node (or the few nodes of one pattern, such as a decomposed LayerNorm). Constants
(initializers, ``Constant`` nodes and any node computed from constants alone) are folded
first. An importer (:mod:`numnet.onnx_io._ops`) is ``fn(ctx, node) -> Step`` for the node
consuming the current tensor ``ctx.tensor``; a fan-out pattern
(:mod:`numnet.onnx_io._patterns`) is ``fn(ctx, tensor) -> Step | None`` for a tensor that
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

from numnet.layers import Layer
from numnet.onnx_io._common import DTYPES, short_float32
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
    batch : int or None
        The input's batch size where the graph fixes it (exported without a dynamic batch
        axis), else None.
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
        first = inputs[0].type.tensor_type.shape.dim[0]
        self.batch = first.dim_value if first.HasField("dim_value") and first.dim_value \
            else None
        self.tensor = self.input_name
        #: ids of the Reshape((C, 1, 1)) layers giving a global average ONNX's unit axes
        #: back; the walk drops those a flatten or reshape follows
        self.unit_axes: set[int] = set()
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
        names = [name for name in node.output if name]
        if node.op_type == "Identity":
            outputs: list[Any] = [self.constants[node.input[0]]]
        else:
            feeds = {name: self.constants[name] for name in node.input if name}
            # a function of the one node, at the graph's opset: evaluated alone, a node runs
            # at onnx's newest opset whatever ``opsets`` says (onnx 1.23), and an older
            # node's attributes (opset 11's Unsqueeze axes) would then be refused or misread
            opsets = [helper.make_opsetid(domain, self.opset)
                      for domain in sorted({"", node.domain})]
            function = helper.make_function("numnet.fold", "fold", list(feeds), names, [node],
                                            opsets)
            try:
                outputs = list(ReferenceEvaluator(function).run(None, feeds, attributes={}))
            except Exception as exc:  # noqa: BLE001  (any failure: report the node instead)
                raise OnnxImportError(f"{self.where}: {self.label(node)} computes a constant "
                                      f"that cannot be evaluated: {exc}") from exc
        for name, value in zip(names, outputs, strict=False):
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


# -- helpers for importers and patterns ------------------------------------------------------
def known_shape(shape: Shape) -> tuple[int, ...] | None:
    """``shape`` if every size is known, else None."""
    sizes = tuple(d for d in shape if d is not None)
    return sizes if len(sizes) == len(shape) else None


def vector(ctx: ImportContext, node: NodeProto, value: np.ndarray, size: int,
           what: str) -> np.ndarray:
    """``value`` as a ``(size,)`` vector: a scalar, ``(size,)`` or ``(1, size)``."""
    if value.size == 1:
        return np.full(size, value.reshape(-1)[0], dtype=ctx.dtype)
    if value.shape in ((size,), (1, size)):
        return ctx.array(value.reshape(size))
    raise ctx.fail(node, f"has a {what} of shape {value.shape}; expected ({size},)")
