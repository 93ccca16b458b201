r"""ONNX export and import: serve a numnet model with ONNX Runtime, or load one made elsewhere.

``to_onnx(model, path)`` writes the graph of :meth:`Sequential.predict_logits`: the raw
outputs in evaluation mode (BatchNorm with its running statistics, Dropout the identity,
no softmax added). ``from_onnx(path)`` reads a chain of the same operators back into a
:class:`~numnet.Sequential`, e.g. a PyTorch MLP exported with ``torch.onnx.export``, so
it can be inspected with ``trace``, checked with :mod:`numnet.gradcheck` and fine-tuned.

``onnx`` is an optional dependency (``pip install "numnet[onnx]"``); it is imported on the
first call, never by ``import numnet``.

Operators
---------
======================  ==============================================================
numnet layer            ONNX nodes written by ``to_onnx``
======================  ==============================================================
Dense                   ``Gemm(x, W, b)`` (``W`` stored ``(in, out)``, ``transB=0``)
ReLU, Sigmoid, Tanh     ``Relu``, ``Sigmoid``, ``Tanh``
LeakyReLU               ``LeakyRelu``; in float64 ``Max(x, alpha*x)`` (``Min`` when
                        ``alpha > 1``): ONNX Runtime 1.32 runs a float64 ``LeakyRelu``
                        at opsets 16-18 only
Softmax                 ``Softmax(axis=-1)``
Identity                ``Identity``
Dropout                 nothing (the identity in evaluation)
Flatten                 ``Flatten(axis=1)``
Reshape                 ``Reshape(x, [0, *shape])`` (0 keeps the batch size)
BatchNorm1d/2d          ``BatchNormalization`` (running statistics, ``momentum`` as
                        ``1 - momentum``)
LayerNorm               ``LayerNormalization(axis=-1)``; in float64, or below opset 17,
                        ``ReduceMean, Sub, Mul, ReduceMean, Add, Sqrt, Div, Mul, Mul, Add``
Conv2D                  ``Conv`` (weight as it is, bias, strides, dilations, explicit
                        ``pads``: ``"same"`` resolved as numnet does); in float64
                        ``Pad, Gather, Gather, Einsum(, Add)``: the windows gathered (im2col
                        along each image axis) and contracted with the weight
MaxPool2D               ``MaxPool`` (``pads``: ONNX ignores padding as numnet's ``-inf``)
AvgPool2D               ``AveragePool(count_include_pad=1)``; in float64
                        ``Pad, Gather, Gather, ReduceMean``
GlobalAvgPool2D         ``GlobalAveragePool, Flatten``; in float64 ``ReduceMean`` over
                        axes 2 and 3
======================  ==============================================================

ONNX Runtime 1.32 has no float64 kernel for ``Conv``, ``AveragePool`` and
``GlobalAveragePool``, hence the float64 forms, all of operators it runs in float64 (run
them in batches of about a thousand images: the gathered windows take memory as an im2col
matrix does, about 1 GB per 1000 MNIST images for the issue's CNN).

``from_onnx`` accepts those graphs and the usual variants (what ``torch.onnx.export``
writes for an MLP at opsets 13 to 20): ``Gemm`` with any ``transB``/``alpha``/``beta``,
``MatMul`` (+ ``Add``), ``LeakyRelu``, ``Softmax`` over the last axis, ``Dropout``
(dropped), ``Flatten(axis=1)``, ``Reshape`` to ``(N, features)`` whether its target is a
constant or computed from ``Shape(x)`` (PyTorch's ``x.view(x.size(0), -1)``; in a graph
of fixed batch ``B``, a target ``(B, ...)`` keeps the batch too),
``BatchNormalization`` in inference mode, ``LayerNormalization`` over the last axis and its
decomposition (``Pow`` or ``Mul`` for the square, ``Div`` or ``Reciprocal`` for the
scale), with constants given as initializers, ``Constant`` nodes or any subgraph of
constants (folded with ``onnx.reference``). For CNNs (what ``torch.onnx.export`` writes):
``Conv`` (``pads`` or ``auto_pad``; padding both sides alike, or ``"same"`` with stride 1),
``MaxPool``, ``AveragePool`` (``count_include_pad=1``, or no padding), ``ceil_mode=1``
where it changes no output size, a ``Pad`` before any of them, ``GlobalAveragePool`` or
``ReduceMean`` over the height and width (``AdaptiveAvgPool2d(1)``, ``x.mean((2, 3))``),
``BatchNormalization`` of images, ``Reshape`` to any per-sample shape, ``Squeeze`` of unit
axes, and numnet's own float64 forms. Anything else is an :class:`OnnxImportError` naming
the node and its op type.

Float attributes (``epsilon``, ``alpha``, ``momentum``) are float32 in ONNX. float64
models keep their exact ``eps`` anyway: BatchNorm1d stores ``running_var + (eps -
float32(eps))`` so that the runtime's ``var + float32(eps)`` is numnet's ``var + eps``
(``from_onnx`` undoes it), and LayerNorm writes ``eps`` as a float64 constant of its
decomposition (which is also exact where ONNX Runtime's ``LayerNormalization`` kernel
computes the variance as ``E[x^2] - E[x]^2``).

Metadata (``ModelProto.metadata_props``): ``numnet_version``; ``loss`` (the loss name,
when the model has one); every key of ``metadata``, e.g. ``classes`` (strings as they are,
anything else as JSON). ``read_metadata`` decodes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from numnet.onnx_io.errors import OnnxExportError, OnnxImportError

if TYPE_CHECKING:
    import os

    from onnx import ModelProto

    from numnet.losses import Loss
    from numnet.model import Sequential

__all__ = ["OnnxExportError", "OnnxImportError", "from_onnx", "read_metadata", "to_onnx"]


def _require_onnx() -> None:
    """Fail with the install command when the optional ``onnx`` package is missing."""
    try:
        import onnx  # noqa: F401, PLC0415  (optional dependency: numnet[onnx])
    except ImportError as exc:
        raise ImportError('ONNX export and import need the onnx package: pip install '
                          '"numnet[onnx]"') from exc


def to_onnx(model: Sequential, path: str | os.PathLike[str] | None = None,
            input_shape: Sequence[int] | int | None = None, opset: int | None = None,
            input_name: str = "input", output_name: str = "logits",
            metadata: Mapping[str, Any] | None = None) -> ModelProto:
    """Export ``model`` as an ONNX graph computing its ``predict_logits``.

    Parameters
    ----------
    model : Sequential
        The model; its dtype (float32 or float64) is the graph's.
    path : str or os.PathLike, optional
        Where to write the ``.onnx`` file, atomically (a temporary file in the same
        directory, fsynced, then renamed over). Nothing is written when omitted.
    input_shape : tuple of int, optional
        The per-sample input shape, e.g. ``(784,)``; needed only when the model does not
        know it (its first layer fixes none and none was given to ``Sequential``).
    opset : int, optional
        The ONNX opset, from 13 to the installed onnx's newest; default
        ``min(28, newest)``, the highest tested with ONNX Runtime 1.32.
    input_name, output_name : str
        Names of the graph's input (shape ``("N", *input_shape)``, ``N`` dynamic) and
        output.
    metadata : mapping, optional
        Extra ``metadata_props``: ``{"classes": [...]}`` for a classifier, or the whole
        metadata dict of a numnet model file (:func:`numnet.io.load_metadata`).

    Returns
    -------
    onnx.ModelProto
        Checked with ``onnx.checker.check_model(full_check=True)``.

    Raises
    ------
    OnnxExportError
        If a layer has no ONNX exporter (the message names its index and repr), the
        model's class overrides how Sequential computes its outputs (a subclass with its
        own ``forward``), or the arguments are invalid.
    ImportError
        If onnx is not installed.
    """
    _require_onnx()
    from numnet.onnx_io import _export  # noqa: PLC0415  (imports the optional onnx)

    return _export.to_onnx(model, path, input_shape=input_shape, opset=opset,
                           input_name=input_name, output_name=output_name,
                           metadata=metadata)


def from_onnx(source: str | os.PathLike[str] | bytes | ModelProto,
              loss: Loss | str | None = None, seed: int | None = None) -> Sequential:
    """Build a :class:`~numnet.Sequential` from an ONNX graph that is a chain of layers.

    Parameters
    ----------
    source : str, os.PathLike, bytes or onnx.ModelProto
        An ``.onnx`` file, its bytes, or a loaded model.
    loss : Loss or str, optional
        The model's loss. By default the one recorded by :func:`to_onnx`; else
        ``"cross_entropy"`` when the metadata lists ``classes`` and the output has one
        logit per class (``"binary_cross_entropy"`` for one logit and two classes); else
        none (set ``model.loss`` before training).
    seed : int, optional
        Seed of the model's later random draws (shuffling, dropout); the weights come from
        the graph.

    Returns
    -------
    Sequential
        In evaluation mode, of the graph input's dtype (float32 or float64). Dropout nodes
        are dropped: add Dropout layers back for fine-tuning if wanted.

    Raises
    ------
    OnnxImportError
        If the file is not ONNX, or the graph is not a chain of supported operators (the
        message names the node and its op type).
    """
    _require_onnx()
    from numnet.onnx_io import _import  # noqa: PLC0415  (imports the optional onnx)

    return _import.from_onnx(source, loss=loss, seed=seed)


def read_metadata(source: str | os.PathLike[str] | bytes | ModelProto) -> dict[str, Any]:
    """The ``metadata_props`` of an ONNX model, JSON values decoded (text left as it is)."""
    _require_onnx()
    from numnet.onnx_io import _common  # noqa: PLC0415  (imports the optional onnx)

    return _common.read_metadata(_common.load_proto(source))
