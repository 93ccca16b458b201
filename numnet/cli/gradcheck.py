"""``numnet gradcheck``: every layer and the loss of a model, checked in float64."""

from __future__ import annotations

import argparse
import copy

import numpy as np

from numnet import gradcheck, inspection
from numnet.cli._common import (
    CLIError,
    Parser,
    Subparsers,
    add_command,
    integer,
    open_model,
    positive_float,
    positive_int,
    shape,
)
from numnet.losses import BinaryCrossEntropy, CrossEntropy, Loss

EXAMPLES = ("  numnet gradcheck examples/architecture.json\n"
            "  numnet gradcheck numnet-model.npz --tol 1e-7\n")


def add_parser(commands: Subparsers[Parser]) -> None:
    sub = add_command(commands, "gradcheck", "Gradient-check every layer (float64, random "
                                             "data).", EXAMPLES, run)
    sub.add_argument("model", metavar="MODEL", help="a model file (.npz) or architecture (.json)")
    sub.add_argument("--tol", type=positive_float, default=1e-6,
                     help="largest acceptable relative error (default: 1e-6)")
    sub.add_argument("--batch-size", type=positive_int, default=4,
                     help="random samples per check (default: 4)")
    sub.add_argument("--seed", type=integer, default=0, help="(default: 0)")
    sub.add_argument("--input-shape", type=shape, default=None, metavar="SHAPE",
                     help="per-sample input shape when the model does not fix one")


def run(args: argparse.Namespace) -> int:
    """``numnet gradcheck``: every layer and the loss, in float64, on random data.

    Each layer is checked in training mode on the output of the layers before it, and in
    evaluation mode as well when its output differs between the modes (dropout, batch
    normalisation); the table shows the worst relative error of each tensor. That output is
    nudged off exact ties first (:func:`_off_ties`).
    """
    model, _ = open_model(args.model, args.input_shape)
    input_shape = model.input_shape
    if input_shape is None:
        channels = inspection.image_channels(model)
        example = "" if channels is None else f", e.g. --input-shape {channels or 1},28,28"
        raise CLIError(f"{args.model}: the model does not fix its input shape; pass "
                       f"--input-shape{example}")
    model = copy.deepcopy(model).astype(np.float64)
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((args.batch_size,) + tuple(input_shape))
    rows = [("layer", "modes", "tensor", "worst rel. error", "")]
    bad = total = 0

    def report(name: str, modes: str, errors: dict[str, float]) -> None:
        nonlocal bad, total
        for tensor, err in errors.items():
            ok = err <= args.tol  # False for NaN
            bad += not ok
            total += 1
            rows.append((name, modes, tensor, f"{err:.3g}", "ok" if ok else "FAIL"))

    for index, layer in enumerate(model.layers):
        modes = [True]
        probe = copy.deepcopy(layer)
        probe.rng = np.random.default_rng(args.seed)
        out_train = probe.forward(x, training=True)
        if not np.array_equal(out_train, probe.forward(x, training=False)):
            modes.append(False)
        worst: dict[str, float] = {}
        for training in modes:
            try:
                errors = gradcheck.check_layer(layer, x, training=training, seed=args.seed,
                                               tol=np.inf)
            except gradcheck.GradientCheckError:  # a NaN error
                errors = {"input": float("nan")}
            for tensor, err in errors.items():
                worst[tensor] = _worse(worst.get(tensor), err)
        report(f"{index} {type(layer).__name__}",
               "train+eval" if len(modes) == 2 else "train", worst)
        x = _off_ties(out_train, rng)
    if model.loss is not None:
        try:
            errors = gradcheck.check_loss(model.loss, x, _random_target(model.loss, x, rng),
                                          tol=np.inf)
        except gradcheck.GradientCheckError:
            errors = {"prediction": float("nan")}
        report(f"loss {type(model.loss).__name__}", "-", errors)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    print(f"{total} tensors checked (float64, batch of {args.batch_size}), tolerance "
          f"{args.tol:g}: " + ("all passed" if bad == 0 else f"{bad} FAILED"))
    return 1 if bad else 0


def _off_ties(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``x`` plus noise of 1% of its spread.

    A layer's output can hold exact ties, such as the zeros a ReLU leaves: a max pool after
    it then meets windows of equal values, a kink of the function where no gradient exists
    (the central difference gives 1/2, the pool routes 1 to one input), and its check would
    fail for a correct backward pass. The noise moves the point off such kinks.
    """
    scale = 0.01 * (float(np.std(x)) or 1.0)
    nudged: np.ndarray = x + scale * rng.standard_normal(x.shape)
    return nudged


def _worse(old: float | None, new: float) -> float:
    if old is None or np.isnan(new):
        return float(new)
    return float(max(old, new))


def _random_target(loss: Loss, out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Targets of the kind ``loss`` takes, shaped for the model's output ``out``."""
    if isinstance(loss, CrossEntropy):
        return np.asarray(rng.integers(0, out.shape[1], size=out.shape[0]))
    if isinstance(loss, BinaryCrossEntropy):
        return rng.integers(0, 2, size=out.shape).astype(np.float64)
    return rng.standard_normal(out.shape)
