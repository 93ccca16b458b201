"""``numnet export``: a model file as an ONNX graph, to serve it with ONNX Runtime."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from numnet import io
from numnet.cli._common import (
    CLIError,
    Parser,
    Subparsers,
    add_command,
    is_architecture,
    shape,
)
from numnet.onnx_io import to_onnx

EXAMPLES = ("  numnet export numnet-model.npz numnet-model.onnx\n"
            "  numnet export model.npz model.onnx --opset 17 --input-name pixels\n")

#: metadata keys to_onnx writes itself (from the model), left out of the file's metadata
OWN_KEYS = ("numnet_version", "loss")


def add_parser(commands: Subparsers[Parser]) -> None:
    sub = add_command(
        commands, "export", "Export a model file to ONNX (its predict_logits), for ONNX "
                            "Runtime.", EXAMPLES, run)
    sub.description = ("Write a model's predict_logits (raw outputs, evaluation mode) as an "
                       "ONNX graph that ONNX Runtime runs, with the model file's classes and "
                       "preprocessing in the graph's metadata. Needs the onnx package: pip "
                       'install "numnet[onnx]".')
    sub.add_argument("model", metavar="MODEL", help="a model file (.npz) written by numnet")
    sub.add_argument("out", metavar="OUT", help="the ONNX file to write (e.g. model.onnx)")
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


def run(args: argparse.Namespace) -> int:
    """``numnet export``."""
    _check_files(args.model, args.out)
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
        raise CLIError(f"cannot write OUT {args.out}: {exc.strerror or exc}") from exc
    dims = proto.graph.output[0].type.tensor_type.shape.dim
    out_shape = ", ".join(d.dim_param or str(d.dim_value) for d in dims)
    print(f"exported {args.model} to {args.out} (ONNX opset {proto.opset_import[0].version}, "
          f"{model.dtype.name}; input {args.input_name!r}, output {args.output_name!r} "
          f"of shape ({out_shape}))")
    return 0


def _check_files(model: str, out: str) -> None:
    """Refuse, before any work, an OUT that cannot be written or is the model file itself
    (the same path once resolved, or the same file through a hard or symbolic link)."""
    target = Path(out)
    if target.is_dir():
        raise CLIError(f"OUT {out} is a directory; name the file to write, e.g. "
                       f"{target / 'model.onnx'}")
    if not target.parent.is_dir():
        raise CLIError(f"OUT {out}: the directory {target.parent} does not exist")
    source = Path(model)
    same = target.resolve() == source.resolve()
    if not same and target.exists() and source.exists():
        same = os.path.samefile(target, source)
    if same:
        raise CLIError(f"OUT {out} is the model file MODEL {model}: exporting would overwrite "
                       f"it; name another file, e.g. {source.with_suffix('.onnx')}")
