"""``numnet trace``: shapes and statistics of every activation and gradient of one batch,
and what they show (dead units, saturation, vanishing or exploding gradients, update sizes;
see :mod:`numnet.diagnosis`)."""

from __future__ import annotations

import argparse

from numnet import io, optim
from numnet.cli._common import (
    CLIError,
    Files,
    Parser,
    Subparsers,
    add_command,
    add_data_options,
    check_output,
    fit_input,
    is_architecture,
    open_model,
    positive_float,
    positive_int,
    seed,
)
from numnet.cli._data import SPLITS, data_for_model, data_inputs
from numnet.cli.train import OPTIMIZERS

EXAMPLES = ("  numnet trace numnet-model.npz\n"
            "  numnet trace examples/architecture.json --data digits --batch-size 64\n"
            "  numnet trace numnet-model.npz --optimizer sgd --lr 0.1\n")


def add_parser(commands: Subparsers[Parser]) -> None:
    sub = add_command(commands, "trace", "Trace one batch through a model: shapes and "
                                         "statistics of every activation and gradient, and "
                                         "what looks wrong.",
                      EXAMPLES, run, files=files)
    sub.add_argument("model", metavar="MODEL", help="a model file (.npz) or architecture (.json)")
    add_data_options(sub, None)
    sub.add_argument("--split", choices=SPLITS, default="test", help="(default: test)")
    sub.add_argument("--batch-size", type=positive_int, default=32, help="(default: 32)")
    sub.add_argument("--training", action="store_true",
                     help="trace in training mode (dropout on, batch statistics)")
    sub.add_argument("--seed", type=seed, default=None,
                     help="seed of the data split (default: the model's, else 0)")
    sub.add_argument("--optimizer", default=None, type=str.lower, choices=OPTIMIZERS,
                     help="the optimiser whose step measures the update-to-weight ratios "
                          "(default: the one saved with the model, with its state; else adam)")
    sub.add_argument("--lr", type=positive_float, default=None,
                     help="its learning rate (default: the saved optimiser's, or the "
                          "optimizer's own default)")


def files(args: argparse.Namespace) -> Files:
    """Reads MODEL and --data; writes nothing."""
    return Files(inputs=[("MODEL", args.model), *data_inputs(args)])


def run(args: argparse.Namespace) -> int:
    """``numnet trace``."""
    model, metadata = open_model(args.model)
    if args.data is None and not metadata.get("source"):
        raise CLIError(f"{args.model} does not record a dataset: pass --data")
    prepared = data_for_model(args, metadata, seed=args.seed)
    X, y = prepared.split(args.split)
    X, y = X[:args.batch_size], y[:args.batch_size]
    if len(y) == 0:
        raise CLIError(f"the {args.split} split of {prepared.name} is empty")
    X = fit_input(X, model, f"the {prepared.name} data")
    if model.loss is not None:
        check_output(model, prepared.num_classes, args.model)
    model.train() if args.training else model.eval()
    optimizer = _optimizer(args)
    print(f"trace of {len(y)} samples from {prepared.name} ({args.split} split), "
          f"{'training' if args.training else 'evaluation'} mode; update/weight for one "
          f"step of {type(optimizer).__name__}(lr={optimizer.lr:g})")
    print(model.trace(X, y if model.loss is not None else None, optimizer=optimizer))
    return 0


def _optimizer(args: argparse.Namespace) -> optim.Optimizer:
    """``--optimizer``/``--lr``, else the optimiser saved with the model, else Adam."""
    saved = None if is_architecture(args.model) else io.load_optimizer(args.model)
    if args.optimizer is None and saved is not None:
        if args.lr is not None:
            saved.lr = args.lr
        return saved
    kwargs = {} if args.lr is None else {"lr": args.lr}
    return optim.get_optimizer(args.optimizer or "adam", **kwargs)
