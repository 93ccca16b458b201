"""``numnet export``: a model file as an ONNX graph, to serve it with ONNX Runtime."""

from __future__ import annotations

import argparse
import sys

from numnet import io
from numnet.cli._common import (
    CLIError,
    Files,
    Parser,
    Subparsers,
    add_command,
    is_architecture,
    shape,
)
from numnet.onnx_io import to_onnx

EXAMPLES = ("  numnet export numnet-model.npz numnet-model.onnx\n"
            "  numnet export model.npz model.onnx --opset 17 --input-name pixels\n"
            "  numnet export model.npz - | my-onnx-server   # the graph to standard output\n")

#: metadata keys to_onnx writes itself (from the model), left out of the file's metadata
OWN_KEYS = ("numnet_version", "loss")


def add_parser(commands: Subparsers[Parser]) -> None:
    sub = add_command(
        commands, "export", "Export a model file to ONNX (its predict_logits), for ONNX "
                            "Runtime.", EXAMPLES, run, files=files)
    sub.description = ("Write a model's predict_logits (raw outputs, evaluation mode) as an "
                       "ONNX graph that ONNX Runtime runs, with the model file's classes and "
                       "preprocessing in the graph's metadata. Needs the onnx package: pip "
                       'install "numnet[onnx]".')
    sub.add_argument("model", metavar="MODEL", help="a model file (.npz) written by numnet")
    sub.add_argument("out", metavar="OUT", help="the ONNX file to write (e.g. model.onnx; - "
                                                "for standard output)")
    sub.add_argument("--opset", type=int, default=None,
                     help="ONNX opset, 13 or newer (default: the newest tested with ONNX "
                          "Runtime)")
    sub.add_argument("--input-name", default="input",
                     help="name of the graph's input (default: input)")
    sub.add_argument("--output-name", default="logits",
                     help="name of the graph's output (default: logits)")
    sub.add_argument("--input-shape", type=shape, default=None, metavar="SHAPE",
                     help="per-sample input shape when the model does not fix one, e.g. 784 "
                          "or 1,28,28")


def files(args: argparse.Namespace) -> Files:
    """Reads MODEL; writes OUT (refused before any work when it is MODEL itself, even
    through a link; streamed into when it is a device, a FIFO or ``-``)."""
    return Files(inputs=[("MODEL", args.model)], outputs=[("OUT", args.out)])


def run(args: argparse.Namespace) -> int:
    """``numnet export``."""
    if is_architecture(args.model):
        raise CLIError(f"{args.model} is an architecture, without trained weights: train it "
                       f"first (numnet train --model {args.model}), then export the model "
                       "file")
    model = io.load(args.model)
    metadata = {key: value for key, value in io.load_metadata(args.model).items()
                if key not in OWN_KEYS}
    try:
        proto = to_onnx(model, args.out, input_shape=args.input_shape, opset=args.opset,
                        input_name=args.input_name, output_name=args.output_name,
                        metadata=metadata)
    except OSError as exc:  # the conversion raises no OSError: the write failed
        reason = (exc.strerror or str(exc)).removeprefix("cannot write: ")
        raise CLIError(f"cannot write OUT {args.out}: {reason}") from exc
    dims = proto.graph.output[0].type.tensor_type.shape.dim
    out_shape = ", ".join(d.dim_param or str(d.dim_value) for d in dims)
    # with the graph on standard output, the message goes to standard error
    stream = sys.stderr if files(args).writes_to_stdout() else sys.stdout
    print(f"exported {args.model} to {args.out} (ONNX opset {proto.opset_import[0].version}, "
          f"{model.dtype.name}; input {args.input_name!r}, output {args.output_name!r} "
          f"of shape ({out_shape}))", file=stream)
    return 0
