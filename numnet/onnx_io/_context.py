"""The registry of exporters and the graph they build (:class:`ExportContext`).

An exporter is ``fn(ctx, layer, x) -> y``: it adds the nodes computing ``layer`` in
evaluation mode from the tensor named ``x`` through :class:`ExportContext` and returns the
name of the tensor holding the result. The exporters live in
:mod:`numnet.onnx_io._export` (the dense family) and :mod:`numnet.onnx_io._export_image`
(convolution and pooling); :func:`numnet.onnx_io._export.to_onnx` walks the model.

Imported only once the optional ``onnx`` package is known to be installed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from onnx import NodeProto, TensorProto, helper, numpy_helper

from numnet.layers import Layer

Exporter = Callable[["ExportContext", Any, str], str]

#: layer type -> the function writing its nodes
EXPORTERS: dict[type[Layer], Exporter] = {}


def register_exporter(*layer_types: type[Layer]) -> Callable[[Exporter], Exporter]:
    """Decorator: ``fn(ctx, layer, x) -> y`` exports each of ``layer_types``."""
    def register(fn: Exporter) -> Exporter:
        for layer_type in layer_types:
            EXPORTERS[layer_type] = fn
        return fn
    return register


class ExportContext:
    """The graph being built, and where in the model the exporter stands.

    Attributes
    ----------
    opset : int
        The opset written; an exporter may choose other nodes below some opset.
    dtype : numpy.dtype
        float32 or float64, the model's (and the graph's) float type.
    index : int
        Index of the layer being exported; names start with it (``"3.W"``, ``"3.Gemm"``).
    in_shape : tuple of int
        The per-sample shape of the layer's input (what ``"same"`` padding needs).
    """

    def __init__(self, opset: int, dtype: np.dtype, reserved: Sequence[str] = ()) -> None:
        self.opset = opset
        self.dtype = dtype
        self.index = 0
        self.layer: Layer | None = None
        self.in_shape: tuple[int, ...] = ()
        self.nodes: list[NodeProto] = []
        self.initializers: list[TensorProto] = []
        # the graph's input and output names, chosen by the user: never given to a tensor
        # made here (a node named "0.Gemm" and an input "0.Gemm" would break the graph)
        self._names: set[str] = set(reserved)

    def start(self, index: int, layer: Layer, in_shape: tuple[int, ...]) -> None:
        self.index, self.layer, self.in_shape = index, layer, in_shape

    def _name(self, base: str) -> str:
        """``"<index>.<base>"``, made unique with a suffix if needed."""
        name = f"{self.index}.{base}"
        suffix = 1
        while name in self._names:
            suffix += 1
            name = f"{self.index}.{base}_{suffix}"
        self._names.add(name)
        return name

    def constant(self, name: str, value: Any, dtype: Any = None) -> str:
        """Add an initializer ``"<index>.<name>"``, in the model's dtype unless ``dtype``."""
        array = np.ascontiguousarray(value, dtype=self.dtype if dtype is None else dtype)
        full = self._name(name)
        self.initializers.append(numpy_helper.from_array(array, full))
        return full

    def param(self, name: str) -> str:
        """The layer's parameter or buffer ``name`` as an initializer (named as in
        ``state_dict``)."""
        assert self.layer is not None
        store = self.layer.params if name in self.layer.params else self.layer.buffers
        return self.constant(name, store[name])

    def node(self, op_type: str, inputs: Sequence[str], **attributes: Any) -> str:
        """Add a node; returns the name of its (single) output, which is also its name."""
        name = self._name(op_type)
        self.nodes.append(helper.make_node(op_type, list(inputs), [name], name=name,
                                           **attributes))
        return name

    def reduce_mean(self, x: str, axes: Sequence[int], keepdims: bool) -> str:
        """``ReduceMean`` over ``axes`` (an attribute up to opset 17, an input from 18)."""
        if self.opset >= 18:
            return self.node("ReduceMean", [x, self.constant("axes", list(axes), np.int64)],
                             keepdims=int(keepdims))
        return self.node("ReduceMean", [x], axes=list(axes), keepdims=int(keepdims))

    def reduce_mean_last(self, x: str) -> str:
        """``ReduceMean`` over the last axis, keeping it."""
        return self.reduce_mean(x, [-1], keepdims=True)

    def rename_output(self, tensor: str, name: str, input_name: str) -> None:
        """Give the graph's last tensor the output's name (an Identity when it is the input,
        as for a model of Dropout layers only)."""
        if tensor == input_name:
            self.nodes.append(helper.make_node("Identity", [tensor], [name], name=name))
            return
        for node in self.nodes:
            for names in (node.input, node.output):
                names[:] = [name if value == tensor else value for value in names]
