"""``numnet gradcheck``: every layer and the loss of a model, or one layer class of your own,
checked in float64 against central differences."""

from __future__ import annotations

import argparse
import copy
import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from numnet import gradcheck, inspection
from numnet._memory import check_batch
from numnet.cli._common import (
    CLIError,
    Files,
    Parser,
    Subparsers,
    add_command,
    open_model,
    positive_float,
    positive_int,
    seed,
    shape,
)
from numnet.gradcheck import TensorCheck
from numnet.layers.base import Layer
from numnet.losses import BinaryCrossEntropy, CrossEntropy, Loss

EXAMPLES = ("  numnet gradcheck examples/architecture.json\n"
            "  numnet gradcheck numnet-model.npz --tol 1e-7\n"
            "  numnet gradcheck --layer my_layers.py:Cube --input-shape 5\n"
            "  numnet gradcheck --layer mypackage.layers:Scale --args '{\"size\": 4}' "
            "--input-shape 4\n")

#: a failed or NaN check, in the table
FAILED = TensorCheck(float("nan"), (), float("nan"), float("nan"), 0.0)


def add_parser(commands: Subparsers[Parser]) -> None:
    sub = add_command(commands, "gradcheck", "Gradient-check every layer of a model, or a "
                                             "layer class of your own (float64, random data).",
                      EXAMPLES, run, files=files)
    sub.add_argument("model", metavar="MODEL", nargs="?", default=None,
                     help="a model file (.npz) or architecture (.json)")
    sub.add_argument("--layer", default=None, metavar="MODULE:CLASS",
                     help="check one Layer class instead of a model: MODULE:CLASS (a module "
                          "importable from the current directory) or path/to/file.py:CLASS")
    sub.add_argument("--args", default=None, metavar="JSON",
                     help="with --layer: the constructor's keyword arguments as a JSON object "
                          "(default: none)")
    sub.add_argument("--tol", type=positive_float, default=1e-6,
                     help="largest acceptable relative error (default: 1e-6)")
    sub.add_argument("--batch-size", type=positive_int, default=4,
                     help="random samples per check (default: 4)")
    sub.add_argument("--seed", type=seed, default=0, help="(default: 0)")
    sub.add_argument("--input-shape", type=shape, default=None, metavar="SHAPE",
                     help="per-sample input shape when the model or layer does not fix one")


def files(args: argparse.Namespace) -> Files:
    """Reads MODEL (or the --layer file); writes nothing."""
    return Files(inputs=[] if args.model is None else [("MODEL", args.model)])


def run(args: argparse.Namespace) -> int:
    """``numnet gradcheck``: every layer and the loss, in float64, on random data.

    Each layer is checked in training mode on the output of the layers before it, and in
    evaluation mode as well when its output differs between the modes (dropout, batch
    normalisation); the table shows the worst relative error of each tensor, the element
    where it is worst and the analytic and numerical gradients there. Each layer's input is
    the previous layer's output nudged off exact ties (:func:`_off_ties`).
    """
    if (args.model is None) == (args.layer is None):
        raise CLIError("give a MODEL file or architecture, or --layer MODULE:CLASS (one of "
                       "the two)")
    if args.args is not None and args.layer is None:
        raise CLIError("--args goes with --layer")
    table = Table(args.tol)
    if args.layer is not None:
        batch = check_own_layer(args, table)
    else:
        batch = check_model(args, table)
    table.print()
    print(f"{table.total} tensors checked (float64, batch of {batch}), tolerance "
          f"{args.tol:g}: " + ("all passed" if table.bad == 0 else f"{table.bad} FAILED"))
    return 1 if table.bad else 0


class Table:
    """The rows of the report: one per tensor, with its worst element."""

    def __init__(self, tol: float) -> None:
        self.tol = tol
        self.rows = [("layer", "modes", "tensor", "worst rel. error", "worst element",
                      "analytic", "numerical", "")]
        self.bad = self.total = 0

    def add(self, name: str, modes: str, checks: dict[str, TensorCheck]) -> None:
        for tensor, check in checks.items():
            ok = check.error <= self.tol  # False for NaN
            self.bad += not ok
            self.total += 1
            where = f"[{', '.join(map(str, check.index))}]" if check.index else ""
            self.rows.append((name, modes, tensor, f"{check.error:.3g}", where,
                              f"{check.analytic:.6g}", f"{check.numerical:.6g}",
                              "ok" if ok else "FAIL"))

    def print(self) -> None:
        widths = [max(len(r[i]) for r in self.rows) for i in range(len(self.rows[0]))]
        for row in self.rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def check_model(args: argparse.Namespace, table: Table) -> int:
    """Every layer of the model on the output of the layers before it, then the loss."""
    model, _ = open_model(args.model, args.input_shape)
    input_shape = model.input_shape
    if input_shape is None:
        channels = inspection.image_channels(model)
        example = "" if channels is None else f", e.g. --input-shape {channels or 1},28,28"
        raise CLIError(f"{args.model}: the model does not fix its input shape; pass "
                       f"--input-shape{example}")
    check_batch(model.layers, input_shape, args.batch_size, np.float64,
                f"--batch-size {args.batch_size}: a float64 batch of {args.batch_size} samples")
    model = copy.deepcopy(model).astype(np.float64)
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((args.batch_size,) + tuple(input_shape))
    for index, layer in enumerate(model.layers):
        modes, worst, out_train = _check_modes(layer, x, args.seed)
        table.add(f"{index} {type(layer).__name__}", modes, worst)
        x = _off_ties(out_train, rng)
    if model.loss is not None:
        try:
            report = gradcheck.check_loss(model.loss, x, _random_target(model.loss, x, rng),
                                          tol=np.inf)
            checks = report.details
        except gradcheck.GradientCheckError:
            checks = {"prediction": FAILED}
        table.add(f"loss {type(model.loss).__name__}", "-", checks)
    return int(args.batch_size)


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


def check_own_layer(args: argparse.Namespace, table: Table) -> int:
    """``--layer``: one layer class, built from ``--args``, on random input."""
    cls = load_layer_class(args.layer)
    layer = _build(cls, args.args)
    input_shape = args.input_shape or layer.input_shape
    if input_shape is None:
        raise CLIError(f"{cls.__name__} does not fix its input shape; pass --input-shape "
                       "(e.g. --input-shape 5 or --input-shape 3,8,8)")
    x = np.random.default_rng(args.seed).standard_normal(
        (args.batch_size,) + tuple(input_shape))
    try:
        layer.checked_input(x)
        modes, worst, _ = _check_modes(layer, x, args.seed)
    except (NotImplementedError, ValueError, TypeError, RuntimeError, IndexError,
            AttributeError) as exc:
        raise CLIError(f"{cls.__name__} on input of shape {x.shape}: "
                       f"{type(exc).__name__}: {exc}") from exc
    table.add(repr(layer), modes, worst)
    return int(args.batch_size)


def _check_modes(layer: Layer, x: np.ndarray, seed: int
                 ) -> tuple[str, dict[str, TensorCheck], np.ndarray]:
    """Check ``layer`` in training mode, and in evaluation mode too when that changes its
    output; the worst check per tensor, the modes, and the training output."""
    modes = [True]
    probe = copy.deepcopy(layer).astype(np.float64)
    probe.rng = np.random.default_rng(seed)
    out_train = probe.forward(x, training=True)
    if not np.array_equal(out_train, probe.forward(x, training=False)):
        modes.append(False)
    worst: dict[str, TensorCheck] = {}
    for training in modes:
        try:
            checks = gradcheck.check_layer(layer, x, training=training, seed=seed,
                                           tol=np.inf).details
        except gradcheck.GradientCheckError:  # a NaN error
            checks = {"input": FAILED}
        for tensor, check in checks.items():
            worst[tensor] = _worse(worst.get(tensor), check)
    return ("train+eval" if len(modes) == 2 else "train"), worst, out_train


def _worse(old: TensorCheck | None, new: TensorCheck) -> TensorCheck:
    if old is None or np.isnan(new.error) or new.error > old.error:
        return new
    return old


def load_layer_class(spec: str) -> type[Layer]:
    """The class named by ``MODULE:CLASS`` or ``path/to/file.py:CLASS``."""
    target, colon, name = spec.rpartition(":")
    if not colon or not target or not name.isidentifier():
        raise CLIError(f"--layer {spec!r}: expected MODULE:CLASS or path/to/file.py:CLASS, "
                       "e.g. my_layers.py:Cube")
    try:
        module = _import(target)
    except CLIError:
        raise
    except Exception as exc:  # the learner's module failed to run: say where
        raise CLIError(f"--layer {spec}: importing {target} failed: {type(exc).__name__}: "
                       f"{exc}") from exc
    cls = getattr(module, name, None)
    if cls is None:
        found = sorted(n for n, v in vars(module).items()
                       if isinstance(v, type) and issubclass(v, Layer) and v is not Layer)
        raise CLIError(f"--layer {spec}: {target} has no class {name!r} (its Layer classes: "
                       f"{', '.join(found) or 'none'})")
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise CLIError(f"--layer {spec}: {name} is not a subclass of numnet.layers.Layer")
    return cls


def _import(target: str) -> Any:
    path = Path(target)
    if path.suffix == ".py" or path.parent != Path("."):
        if not path.is_file():
            raise CLIError(f"--layer: no such file: {target}")
        module_name = f"numnet_user_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise CLIError(f"--layer: cannot import {target} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # so its classes register and pickle by name
        spec.loader.exec_module(module)
        return module
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # modules of the current directory, as `python -m` finds them
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name != target.split(".")[0] and exc.name != target:
            raise
        raise CLIError(f"--layer: no module named {target!r} (run from the directory that "
                       f"holds it, or give path/to/file.py:CLASS)") from exc


def _build(cls: type[Layer], arguments: str | None) -> Layer:
    try:
        kwargs = {} if arguments is None else json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise CLIError(f"--args is not valid JSON: {exc}") from exc
    if not isinstance(kwargs, dict):
        raise CLIError(f"--args must be a JSON object of keyword arguments, got {arguments}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        hint = "" if kwargs else "; pass its arguments with --args '{\"name\": value}'"
        raise CLIError(f"{cls.__name__}(**{kwargs}) failed: {exc}{hint}") from exc


def _random_target(loss: Loss, out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Targets of the kind ``loss`` takes, shaped for the model's output ``out``."""
    if isinstance(loss, CrossEntropy):
        return np.asarray(rng.integers(0, out.shape[1], size=out.shape[0]))
    if isinstance(loss, BinaryCrossEntropy):
        return rng.integers(0, 2, size=out.shape).astype(np.float64)
    return rng.standard_normal(out.shape)
