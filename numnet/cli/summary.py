"""``numnet summary``: the layer table of a model file or a JSON architecture."""

from __future__ import annotations

import argparse
import json

from numnet import inspection, io
from numnet.cli._common import (
    CLIError,
    Files,
    Parser,
    Subparsers,
    add_command,
    is_architecture,
    open_model,
    shape,
)

EXAMPLES = "  numnet summary numnet-model.npz\n  numnet summary examples/architecture.json\n"


def add_parser(commands: Subparsers[Parser]) -> None:
    sub = add_command(commands, "summary",
                      "Show the layers, shapes and parameter counts of a model.", EXAMPLES, run,
                      files=files)
    sub.add_argument("model", metavar="MODEL", help="a model file (.npz) or architecture (.json)")
    sub.add_argument("--input-shape", type=shape, default=None, metavar="SHAPE",
                     help="per-sample input shape when the model does not fix one, e.g. 8,8")


def files(args: argparse.Namespace) -> Files:
    """Reads MODEL; writes nothing."""
    return Files(inputs=[("MODEL", args.model)])


def run(args: argparse.Namespace) -> int:
    """``numnet summary``."""
    model, metadata = open_model(args.model, args.input_shape)
    if model.input_shape is None and args.input_shape is None:
        channels = inspection.image_channels(model)
        example = "8,8" if channels is None else f"{channels or 1},28,28"
        raise CLIError(f"{args.model}: the model does not fix its input shape; pass "
                       f"--input-shape, e.g. --input-shape {example}")
    print(model.summary(args.input_shape))
    if not is_architecture(args.model):
        header = io.file_info(args.model)
        print(f"file: {args.model} (format {header.get('format')}, written by numnet "
              f"{header.get('numnet_version')})")
        opt = header.get("optimizer")
        if opt:
            print(f"optimizer: {json.dumps(opt)}")
        source = metadata.get("source")
        if source:
            print(f"trained on: {source.get('path') or source.get('data')} "
                  f"({metadata.get('epochs', '?')} epochs)")
        test = metadata.get("test")
        if test:
            print(f"test accuracy: {test['accuracy']:.2%} (loss {test['loss']:.4f})")
    return 0
