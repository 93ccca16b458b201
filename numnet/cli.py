"""The ``numnet`` command line: train, inspect, evaluate and use networks without Python.

Commands
--------
``numnet train``        train a classifier (default: a small MLP on the built-in digits)
``numnet evaluate``     loss, accuracy, per-class report and confusion matrix of a model
``numnet predict``      labels (and probabilities) for a CSV, ``.npy`` or image files
``numnet summary``      the layer table of a model file or a JSON architecture
``numnet gradcheck``    gradient-check every layer of a model or architecture
``numnet trace``        the shape-and-statistics trace of one batch through a model
``numnet datasets``     the built-in and cached datasets, and where they live

Every error prints one line, ``numnet: error: ...``, to standard error and exits with
status 2 (``--debug`` shows the traceback instead); a diverging training run and a failed
gradient check exit with status 1. Ctrl-C exits with status 130; during ``numnet train`` the
weights after the last finished batch are saved first (the file records ``"interrupted"``).

Preprocessing
-------------
``numnet train`` records in the model file (see :func:`numnet.io.load_metadata`) how the
inputs were scaled, and ``evaluate``, ``predict`` and ``trace`` apply the same scaling, so
they always take *raw* inputs, in the units of the training data:

* ``digits``: pixel values 0..16, divided by 16;
* ``mnist`` / ``fashion-mnist``: pixel values 0..255, divided by 255;
* a CSV file: each feature standardised with the mean and standard deviation of the
  training split (``numnet.data.Standardizer``); both are stored in the model file.

CSV labels (``--label-column``: an index or a header name) may be any whole numbers, or
text when the CSV reader returns it; they are mapped to classes ``0..K-1`` in sorted order
and the original values are stored as the model's ``classes``, so ``predict`` prints labels
as they were in the file.

Images given to ``predict`` are read as grey levels, white ink on a black background like
MNIST and the digits; ``--invert`` reads dark drawings on a light background.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import json
import os
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PROG = "numnet"
DEFAULT_MODEL_FILE = "numnet-model.npz"
DEFAULT_PLOT_FILE = "numnet-history.png"
DEFAULT_MLP = (128,)
BUILTIN = ("digits", "mnist", "fashion-mnist")
OPTIMIZERS = ("sgd", "rmsprop", "adam", "adamw")
ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "leaky_relu": "LeakyReLU"}
SPLITS = ("train", "val", "test", "all")


class CLIError(ValueError):
    """A user error: printed as ``numnet: error: <message>`` with exit status 2."""


# -- argument parsing -----------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, ``numnet: error: ...``, exit status 2.

    ``commands`` maps each sub-command's name to its parser (set by :func:`build_parser`).
    """

    commands: dict[str, argparse.ArgumentParser]

    def error(self, message: str) -> Any:  # type: ignore[override]
        hint = f" (see '{self.prog} --help')"
        self.exit(2, f"{PROG}: error: {message}{hint}\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples in the epilogs as written."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _column(text: str) -> int | str:
    """A CSV column: an index (negative counts from the end) or a header name."""
    try:
        return int(text)
    except ValueError:
        if not text.strip():
            raise argparse.ArgumentTypeError("expected a column index or name, got an empty "
                                             "string") from None
        return text


def _fraction(low_closed: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        ok = (0.0 <= value < 1.0) if low_closed else (0.0 < value < 1.0)
        if not ok:
            interval = "[0, 1)" if low_closed else "(0, 1)"
            raise argparse.ArgumentTypeError(f"expected a fraction in {interval}, got {text!r}")
        return value
    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value > 0 and np.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected sizes such as 64 or 8,8, got {text!r}")
    return shape


def build_parser() -> _Parser:
    """The ``numnet`` argument parser with every sub-command."""
    from numnet import __version__

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback on errors")

    parser = _Parser(
        prog=PROG, formatter_class=_Formatter,
        description="numnet: train, inspect, evaluate and use NumPy neural networks.",
        epilog="examples:\n  numnet train                      # digits MLP, a few seconds\n"
               "  numnet evaluate numnet-model.npz\n"
               "  numnet predict numnet-model.npz inputs.csv --proba\n\n"
               "Run 'numnet COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"numnet {__version__}")
    parser.add_argument("--debug", action="store_true", default=False,
                        help="show the full traceback on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    def command(name: str, help_text: str, epilog: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, description=help_text,
                                   epilog="example:\n" + epilog, parents=[common],
                                   formatter_class=_Formatter)

    def data_options(sub: argparse.ArgumentParser, default: str | None) -> None:
        sub.add_argument("--data", default=default, metavar="DATA",
                         help="digits, mnist, fashion-mnist or a PATH.csv"
                              + ("" if default else " (default: the dataset the model was "
                                                    "trained on)"))
        sub.add_argument("--label-column", type=_column, default=None, metavar="COLUMN",
                         help="CSV column holding the labels: an index (default 0; negative "
                              "counts from the end) or a name from the header line")
        sub.add_argument("--data-dir", default=None, metavar="DIR",
                         help="directory of the MNIST / Fashion-MNIST files (default: "
                              "numnet's cache, downloading if needed)")

    # train
    sub = command("train", "Train a classifier and save it.",
                  "  numnet train\n  numnet train --data mnist --model mlp:256,128 --epochs 5\n"
                  "  numnet train --data iris.csv --label-column -1 --model arch.json\n")
    sub.set_defaults(func=cmd_train)
    data_options(sub, "digits")
    sub.add_argument("--model", default="mlp", metavar="SPEC",
                     help="'mlp' (one hidden layer of 128), 'mlp:256,128' (hidden sizes), "
                          "'mlp:' (no hidden layer), or a JSON architecture file")
    sub.add_argument("--activation", default="relu", choices=sorted(ACTIVATIONS),
                     help="hidden activation of the mlp preset (default: relu)")
    sub.add_argument("--dropout", type=_fraction(True), default=0.0, metavar="P",
                     help="dropout probability after each hidden layer of the mlp preset "
                          "(default: 0, no dropout)")
    sub.add_argument("--optimizer", default="adam", type=str.lower, choices=OPTIMIZERS,
                     help="(default: adam)")
    sub.add_argument("--lr", type=_positive_float, default=None,
                     help="learning rate (default: the optimizer's)")
    sub.add_argument("--epochs", type=_positive_int, default=20, help="(default: 20)")
    sub.add_argument("--batch-size", type=_positive_int, default=32, help="(default: 32)")
    sub.add_argument("--seed", type=_int, default=None,
                     help="seed of the data split, the initial weights and the shuffling "
                          "(default: 0; the initial weights of an architecture file use its "
                          "own \"seed\" unless --seed is given)")
    sub.add_argument("--val-split", type=_fraction(True), default=0.1, metavar="F",
                     help="fraction of the data held out for validation (default: 0.1)")
    sub.add_argument("--test-split", type=_fraction(False), default=0.2, metavar="F",
                     help="fraction held out for testing, for datasets without a test set "
                          "(default: 0.2)")
    sub.add_argument("--early-stopping", type=_positive_int, default=None, metavar="PATIENCE",
                     help="stop after PATIENCE epochs without improvement of the validation "
                          "loss and keep the best weights")
    sub.add_argument("--dtype", default=None, choices=("float32", "float64"),
                     help="(default: float32, or an architecture file's own \"dtype\")")
    sub.add_argument("--out", default=DEFAULT_MODEL_FILE, metavar="PATH",
                     help=f"where to write the model file (default: {DEFAULT_MODEL_FILE})")
    sub.add_argument("--plot", default="auto", metavar="PATH|on|off",
                     help=f"training-curve PNG: 'auto' writes {DEFAULT_PLOT_FILE} next to "
                          "the model when matplotlib is installed, 'on' requires it, 'off' "
                          "skips it, or a path (default: auto)")
    sub.add_argument("-q", "--quiet", action="store_true", help="no progress output")

    # evaluate
    sub = command("evaluate", "Evaluate a model: loss, accuracy, per-class report, "
                              "confusion matrix.",
                  "  numnet evaluate numnet-model.npz\n"
                  "  numnet evaluate model.npz --data mnist --plot confusion.png\n")
    sub.set_defaults(func=cmd_evaluate)
    sub.add_argument("model", metavar="MODEL", help="a model file (.npz)")
    data_options(sub, None)
    sub.add_argument("--split", choices=SPLITS, default="test",
                     help="which part of the data: a split as made at training time (same "
                          "seed and fractions), or all of it (default: test)")
    sub.add_argument("--plot", default=None, metavar="PATH",
                     help="also write the confusion matrix as a PNG")
    sub.add_argument("--normalize", action="store_true",
                     help="normalise the confusion-matrix plot by row")

    # predict
    sub = command("predict", "Predict labels (and probabilities) for new inputs.",
                  "  numnet predict numnet-model.npz inputs.csv\n"
                  "  numnet predict numnet-model.npz digit.png --proba\n"
                  "  numnet predict numnet-model.npz drawing.png --invert  # black on white\n"
                  "  numnet predict model.npz batch.npy --out predictions.csv\n")
    sub.set_defaults(func=cmd_predict)
    sub.add_argument("model", metavar="MODEL", help="a model file (.npz)")
    sub.add_argument("inputs", nargs="+", metavar="INPUT",
                     help="a CSV of raw features (one row per sample), a .npy array (one "
                          "sample, or one per row), or image files (.png/.jpg) of the model's "
                          "input size; images are read as grey levels with white ink on a "
                          "black background, like MNIST and the digits (see --invert)")
    sub.add_argument("--invert", action="store_true",
                     help="invert image files first: for dark drawings on a light background")
    sub.add_argument("--label-column", type=_column, default=None, metavar="COLUMN",
                     help="CSV column to ignore because it holds labels (an index or a "
                          "header name)")
    sub.add_argument("--proba", action="store_true", help="also write class probabilities")
    sub.add_argument("--out", default=None, metavar="PATH",
                     help="write the CSV here instead of standard output")

    # summary
    sub = command("summary", "Show the layers, shapes and parameter counts of a model.",
                  "  numnet summary numnet-model.npz\n"
                  "  numnet summary examples/architecture.json\n")
    sub.set_defaults(func=cmd_summary)
    sub.add_argument("model", metavar="MODEL", help="a model file (.npz) or architecture (.json)")
    sub.add_argument("--input-shape", type=_shape, default=None, metavar="SHAPE",
                     help="per-sample input shape when the model does not fix one, e.g. 8,8")

    # gradcheck
    sub = command("gradcheck", "Gradient-check every layer (float64, random data).",
                  "  numnet gradcheck examples/architecture.json\n"
                  "  numnet gradcheck numnet-model.npz --tol 1e-7\n")
    sub.set_defaults(func=cmd_gradcheck)
    sub.add_argument("model", metavar="MODEL", help="a model file (.npz) or architecture (.json)")
    sub.add_argument("--tol", type=_positive_float, default=1e-6,
                     help="largest acceptable relative error (default: 1e-6)")
    sub.add_argument("--batch-size", type=_positive_int, default=4,
                     help="random samples per check (default: 4)")
    sub.add_argument("--seed", type=_int, default=0, help="(default: 0)")
    sub.add_argument("--input-shape", type=_shape, default=None, metavar="SHAPE",
                     help="per-sample input shape when the model does not fix one")

    # trace
    sub = command("trace", "Trace one batch through a model: shapes and statistics of every "
                           "activation and gradient.",
                  "  numnet trace numnet-model.npz\n"
                  "  numnet trace examples/architecture.json --data digits --batch-size 64\n")
    sub.set_defaults(func=cmd_trace)
    sub.add_argument("model", metavar="MODEL", help="a model file (.npz) or architecture (.json)")
    data_options(sub, None)
    sub.add_argument("--split", choices=SPLITS, default="test", help="(default: test)")
    sub.add_argument("--batch-size", type=_positive_int, default=32, help="(default: 32)")
    sub.add_argument("--training", action="store_true",
                     help="trace in training mode (dropout on, batch statistics)")
    sub.add_argument("--seed", type=_int, default=None,
                     help="seed of the data split (default: the model's, else 0)")

    # datasets
    sub = command("datasets", "List the built-in and cached datasets and where they are.",
                  "  numnet datasets\n")
    sub.set_defaults(func=cmd_datasets)
    parser.commands = dict(commands.choices)
    return parser


# -- entry point ----------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failed check, 2 error).

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 when training diverged or a gradient check failed, 2 on errors.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        _owner(parser, args.command, argv, extras[0]).error(
            f"unrecognized arguments: {' '.join(extras)}")
    args.argv = argv
    debug = bool(getattr(args, "debug", False))
    stderr = sys.stderr
    sys.stderr = tracker = _LineTracker(stderr)
    try:
        return _run(args, debug, tracker)
    finally:
        sys.stderr = stderr


def _owner(parser: _Parser, command: str, argv: list[str], extra: str
           ) -> argparse.ArgumentParser:
    """The parser whose ``--help`` to point to for an unknown argument: the sub-command's,
    unless the argument came before the command name."""
    sub = parser.commands.get(command)
    if sub is None or (extra in argv and argv.index(extra) < argv.index(command)):
        return parser
    return sub


def _run(args: argparse.Namespace, debug: bool, tracker: _LineTracker) -> int:
    """Run the chosen command; turn exceptions into one line on standard error."""
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        tracker.end_line()
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # every failure becomes one line unless --debug
        if debug:
            traceback.print_exc()
        from numnet.errors import TrainingDiverged

        tracker.end_line()  # a progress bar may have left the cursor mid-line
        print(f"{PROG}: error: {_describe(exc)}", file=sys.stderr)
        return 1 if isinstance(exc, TrainingDiverged) else 2


class _LineTracker:
    """A text stream wrapper that remembers whether the last character written was a newline.

    Parameters
    ----------
    stream : text stream
        Where the writes go (standard error); every other attribute is the stream's.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.at_line_start = True

    def write(self, text: str) -> int:
        if text:
            self.at_line_start = text.endswith("\n")
        return self._stream.write(text)

    def end_line(self) -> None:
        """Start a fresh line unless the output is already at the start of one."""
        if not self.at_line_start:
            self.write("\n")
            self.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _describe(exc: BaseException) -> str:
    """One line for an exception: its message, and the file for OS errors."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.strerror}: {exc.filename}"
    from numnet.errors import TrainingDiverged

    text = str(exc) or type(exc).__name__
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    if not isinstance(exc, (ValueError, OSError, ImportError, LookupError, TrainingDiverged)):
        text = f"unexpected {type(exc).__name__}: {text} (run with --debug for the traceback)"
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


# -- data -----------------------------------------------------------------------------------
@dataclass
class Prepared:
    """A dataset split, scaled, with what is needed to scale new inputs the same way."""

    name: str
    source: dict[str, Any]
    preprocessing: dict[str, Any]
    classes: list[Any]
    image_shape: list[int] | None
    raw: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(X, y)`` of one split, scaled (computed on demand: MNIST is large)."""
        X, y = self.raw[name]()
        return apply_preprocessing(X, self.preprocessing, f"the {self.name} data"), y


def _data_kind(spec: str) -> str:
    key = spec.lower().replace("_", "-")
    if key in BUILTIN:
        return key
    if key in ("fashion", "fashionmnist"):
        return "fashion-mnist"
    path = Path(spec)
    if path.suffix.lower() in (".csv", ".gz", ".txt", ".tsv") or path.exists():
        return "csv"
    raise CLIError(f"unknown --data {spec!r}: expected digits, mnist, fashion-mnist or a "
                   "path to a CSV file")


def load_data(spec: str, *, label_column: int | str | None = None, data_dir: str | None = None,
              seed: int = 0, val_split: float = 0.1, test_split: float = 0.2,
              preprocessing: dict[str, Any] | None = None,
              classes: list[Any] | None = None) -> Prepared:
    """Load, split and scale a dataset for the CLI.

    When ``preprocessing`` and ``classes`` (from a model file) are given they are applied;
    otherwise they are derived from the training split.
    """
    from numnet import data

    kind = _data_kind(spec)
    source: dict[str, Any] = {"data": kind, "seed": seed, "val_split": val_split,
                              "test_split": test_split}
    image_shape: list[int] | None = None
    if kind == "digits":
        X, y = data.load_digits(flatten=True, scale=False)
        image_shape, raw_max = [8, 8], 16.0
        splits = _split(X, y, val_split, test_split, seed)
    elif kind in ("mnist", "fashion-mnist"):
        loader = data.load_mnist if kind == "mnist" else data.load_fashion_mnist
        kwargs: dict[str, Any] = {"flatten": True, "scale": False}
        if data_dir is not None:
            if not Path(data_dir).is_dir():
                raise CLIError(f"--data-dir {data_dir}: no such directory")
            kwargs["path"] = data_dir
            source["data_dir"] = str(Path(data_dir).resolve())
        (X, y), (X_test, y_test) = loader(**kwargs)
        image_shape, raw_max = [28, 28], 255.0
        splits = _split(X, y, val_split, 0.0, seed)
        splits["test"] = lambda: (X_test, y_test)
        splits["all"] = lambda: (np.concatenate([X, X_test]), np.concatenate([y, y_test]))
    else:
        path = Path(spec)
        if not path.exists():
            raise FileNotFoundError(2, "no such data file", str(path))
        column = 0 if label_column is None else label_column
        X, y = data.load_csv(path, label_column=column, finite=True)
        source.update(path=str(path.resolve()), label_column=column)
        raw_max = None
        y, classes = _encode_labels(y, classes, path)
        splits = _split(X, y, val_split, test_split, seed)
    if kind != "csv":
        classes = classes if classes is not None else sorted(int(c) for c in np.unique(y))
    assert classes is not None
    if preprocessing is None:
        if raw_max is not None:
            preprocessing = {"type": "scale", "factor": 1.0 / raw_max, "raw_max": raw_max}
        else:
            preprocessing = _fit_standardizer(splits["train"]()[0])
    return Prepared(spec if kind == "csv" else kind, source, preprocessing, classes,
                    image_shape, splits)


def _split(X: np.ndarray, y: np.ndarray, val: float, test: float, seed: int
           ) -> dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]]:
    from numnet.data import train_dev_test_split

    try:
        parts = train_dev_test_split(X, y, dev=val, test=test, shuffle=True, stratify=True,
                                     seed=seed)
    except ValueError as exc:  # name the options, not the function
        reason = str(exc).removeprefix("train_dev_test_split: ").replace("dev (", "validation (")
        raise CLIError(f"--val-split {val:g} and --test-split {test:g}: {reason}; lower "
                       "them") from exc
    splits: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {
        name: (lambda part=part: part) for name, part in zip(("train", "val", "test"), parts,
                                                              strict=True)}
    splits["all"] = lambda: (X, y)
    return splits


def _encode_labels(y: np.ndarray | None, classes: list[Any] | None, path: Path
                   ) -> tuple[np.ndarray, list[Any]]:
    """Map CSV labels to 0..K-1, or onto a model's recorded ``classes``.

    Parameters
    ----------
    y : numpy.ndarray or None
        The label column: whole numbers (int or float), or text (str or object arrays).
    classes : list, optional
        A model's classes (ints or strings); by default the sorted distinct labels.
    path : pathlib.Path
        The CSV file, named in errors.

    Returns
    -------
    encoded : numpy.ndarray
        int64 class indices into ``classes``.
    classes : list
        Python ints for numeric labels, strings for text labels.
    """
    if y is None:
        raise CLIError(f"{path}: no label column")
    y = np.asarray(y).reshape(-1)
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise CLIError(f"{path}: labels must be whole numbers (class labels), found "
                           f"{y[~(y == np.round(y))][:1]}")
        y = y.astype(np.int64)
    values, inverse = np.unique(y, return_inverse=True)  # sorted
    found = [int(v) if y.dtype.kind in "biu" else str(v) for v in values]
    if classes is None:
        if len(found) < 2:
            raise CLIError(f"{path}: the label column has a single class ({found}); "
                           "is --label-column right?")
        classes = found
    lookup = {value: index for index, value in enumerate(classes)}
    unknown = [value for value in found if value not in lookup]
    if unknown:
        raise CLIError(f"{path}: label {unknown[0]!r} is not one of the model's classes "
                       f"{classes}")
    encoded = np.array([lookup[value] for value in found], dtype=np.int64)
    return encoded[inverse.reshape(-1)], classes


def _fit_standardizer(X: np.ndarray) -> dict[str, Any]:
    from numnet.data import Standardizer

    scaler = Standardizer().fit(X)
    return {"type": "standardize", "mean": np.asarray(scaler.mean_).tolist(),
            "std": np.asarray(scaler.scale_).tolist()}


def apply_preprocessing(X: np.ndarray, preprocessing: dict[str, Any] | None,
                        what: str = "the inputs") -> np.ndarray:
    """Scale raw inputs as recorded in a model file (see the module docstring).

    ``what`` names the inputs in errors, e.g. ``"inputs.csv"``.
    """
    X = np.asarray(X)
    if X.dtype.kind != "f":
        X = X.astype(np.float32)  # pixels and other integers: float32 is exact to 2**24
    if not preprocessing:
        return X
    kind = preprocessing.get("type")
    if kind == "scale":
        return X * X.dtype.type(preprocessing["factor"])
    if kind == "standardize":
        from numnet.data import Standardizer

        scaler = Standardizer()
        scaler.mean_ = np.asarray(preprocessing["mean"], dtype=np.float64)
        scaler.scale_ = np.asarray(preprocessing["std"], dtype=np.float64)
        flat = X.reshape(X.shape[0], -1)
        if flat.shape[1] != scaler.mean_.size:
            raise CLIError(f"{what} has {flat.shape[1]} features per sample, the model was "
                           f"trained on {scaler.mean_.size}")
        return scaler.transform(flat).reshape(X.shape)
    raise CLIError(f"unknown preprocessing {kind!r} recorded in the model file")


def fit_input(X: np.ndarray, model: Any, what: str) -> np.ndarray:
    """``X`` in the model's per-sample input shape (reshaped when only the layout differs)."""
    expected = model.input_shape
    if expected is None or tuple(X.shape[1:]) == tuple(expected):
        return X
    if int(np.prod(X.shape[1:])) == int(np.prod(expected)):
        return X.reshape((X.shape[0],) + tuple(expected))
    got = int(np.prod(X.shape[1:]))
    raise CLIError(f"{what} has {got} features per sample (shape {tuple(X.shape[1:])}), the "
                   f"model expects input of shape {tuple(expected)} "
                   f"({int(np.prod(expected))} features)")


# -- model construction ---------------------------------------------------------------------
def build_model(spec: str, n_features: int, n_classes: int, *, activation: str = "relu",
                dropout: float = 0.0, dtype: str | None = None, seed: int | None = None
                ) -> Any:
    """A model from ``--model``: an ``mlp`` preset or a JSON architecture file.

    ``dtype`` and ``seed`` given as ``None`` mean float32 and 0 for the preset, and the
    file's own ``"dtype"`` and ``"seed"`` for an architecture file.
    """
    import numnet
    from numnet import io

    text = spec.strip()
    head, colon, rest = text.partition(":")
    if head.lower() == "cnn":
        raise CLIError("--model cnn: the cnn preset is not available yet (convolution layers "
                       "have not landed in numnet); use --model mlp:SIZES or a JSON "
                       "architecture file")
    if head.lower() == "mlp":
        if not colon:
            hidden: tuple[int, ...] = DEFAULT_MLP
        else:
            try:
                hidden = tuple(int(part) for part in rest.split(",") if part.strip())
            except ValueError:
                hidden = (0,)
            if any(h < 1 for h in hidden):
                raise CLIError(f"--model {spec!r}: hidden sizes must be positive integers, "
                               "e.g. mlp:256,128")
        layers: list[Any] = []
        width = n_features
        act = getattr(numnet.layers, ACTIVATIONS[activation])
        for size in hidden:
            layers += [numnet.layers.Dense(width, size), act()]
            if dropout > 0:
                layers.append(numnet.layers.Dropout(dropout))
            width = size
        layers.append(numnet.layers.Dense(width, n_classes))
        return numnet.Sequential(layers, loss="cross_entropy", dtype=dtype or "float32",
                                 seed=0 if seed is None else seed)
    path = Path(text)
    if path.suffix.lower() == ".json" or path.exists():
        if dropout > 0:
            raise CLIError("--dropout applies to the mlp preset; put Dropout layers in the "
                           "architecture file instead")
        model = io.load_architecture(path, seed=seed, dtype=dtype)
        if model.loss is None:
            model.loss = numnet.losses.get_loss("cross_entropy")
        return model
    raise CLIError(f"unknown --model {spec!r}: expected mlp, mlp:SIZES (e.g. mlp:256,128), "
                   "cnn, or a JSON architecture file")


def _check_output(model: Any, n_classes: int, what: str) -> None:
    try:
        out = model.output_shape()
    except ValueError:
        return
    if out != (n_classes,):
        raise CLIError(f"{what} outputs shape {tuple(out)}, but the data has {n_classes} "
                       f"classes: the last layer should have {n_classes} outputs")


def open_model(path: str, input_shape: tuple[int, ...] | None = None) -> tuple[Any, dict]:
    """A model from a ``.npz`` model file or a ``.json`` architecture, with its metadata."""
    from numnet import io

    p = Path(path)
    if p.suffix.lower() == ".json":
        model = io.load_architecture(p)
        metadata: dict[str, Any] = {}
    else:
        model = io.load(p)
        metadata = io.load_metadata(p)
    if input_shape is not None and model.input_shape is None:
        model.input_shape = tuple(input_shape)
    return model, metadata


def _data_for_model(args: argparse.Namespace, metadata: dict[str, Any],
                    seed: int | None = None) -> Prepared:
    """The dataset for evaluate/trace: ``--data`` or the one recorded at training time."""
    source = metadata.get("source") or {}
    spec = args.data
    same = False
    if spec is None:
        spec = source.get("path") or source.get("data")
        if spec is None:
            raise CLIError("this model file does not record its dataset: pass --data")
        same = True
    else:
        kind = _data_kind(spec)
        same = kind == source.get("data") and (
            kind != "csv" or str(Path(spec).resolve()) == source.get("path"))
    label_column = args.label_column
    if label_column is None and same:
        label_column = source.get("label_column")
    data_dir = args.data_dir if args.data_dir is not None else source.get("data_dir")
    split_seed = seed if seed is not None else int(source.get("seed", 0))
    return load_data(spec, label_column=label_column, data_dir=data_dir, seed=split_seed,
                     val_split=float(source.get("val_split", 0.1)),
                     test_split=float(source.get("test_split", 0.2)),
                     preprocessing=metadata.get("preprocessing"),
                     classes=metadata.get("classes"))


# -- commands -------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    """``numnet train``."""
    from numnet import io, optim

    out = Path(args.out)
    plot_path = _plot_target(args.plot, out)
    _check_out(out)
    _check_splits(args)
    prepared = load_data(args.data, label_column=args.label_column, data_dir=args.data_dir,
                         seed=0 if args.seed is None else args.seed,
                         val_split=args.val_split, test_split=args.test_split)
    X_train, y_train = prepared.split("train")
    X_val, y_val = prepared.split("val")
    X_test, y_test = prepared.split("test")
    n_features = int(np.prod(X_train.shape[1:]))
    model = build_model(args.model, n_features, prepared.num_classes,
                        activation=args.activation, dropout=args.dropout, dtype=args.dtype,
                        seed=args.seed)
    _check_output(model, prepared.num_classes, f"--model {args.model}")
    X_train = fit_input(X_train, model, f"--data {args.data}")
    X_val = fit_input(X_val, model, f"--data {args.data}")
    X_test = fit_input(X_test, model, f"--data {args.data}")
    say = (lambda *a, **k: None) if args.quiet else print
    say(f"data: {prepared.name}: {len(y_train)} train, {len(y_val)} validation, "
        f"{len(y_test)} test samples; {n_features} features, {prepared.num_classes} classes")
    say(model.summary())
    opt_kwargs = {} if args.lr is None else {"lr": args.lr}
    optimizer = optim.get_optimizer(args.optimizer, **opt_kwargs)
    say(f"optimizer: {optimizer!r}; {args.epochs} epochs, batch size {args.batch_size}")
    started = time.perf_counter()
    history = model.fit(X_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                        optimizer=optimizer,
                        validation_data=(X_val, y_val) if len(y_val) else None,
                        callbacks=_train_callbacks(args, has_val=len(y_val) > 0),
                        verbose=0 if args.quiet else 1)
    trained = time.perf_counter() - started
    note = (" (interrupted)" if history.interrupted else
            " (stopped early, keeping the best weights)" if history.stopped_early else "")
    say(f"trained {len(history.epoch)} epoch(s) in {trained:.1f} s{note}")
    metadata = {
        "source": prepared.source,
        "preprocessing": prepared.preprocessing,
        "classes": prepared.classes,
        "image_shape": prepared.image_shape,
        "epochs": len(history.epoch),
        "command": "numnet " + " ".join(shlex.quote(a) for a in args.argv),
    }
    if history.interrupted:
        return _save_interrupted(model, out, optimizer, metadata)
    scores = model.evaluate(X_test, y_test)
    metadata["test"] = {"loss": float(scores["loss"]), "accuracy": float(scores["accuracy"])}
    print(f"test accuracy: {scores['accuracy']:.2%} (loss {scores['loss']:.4f}, "
          f"{len(y_test)} samples)")
    io.save(model, out, optimizer=optimizer, metadata=metadata)
    print(f"saved model to {out}")
    if plot_path is not None and len(history.epoch) == 0:
        print("no epoch finished: no training-curve plot")
    elif plot_path is not None:
        _write_history_plot(history, plot_path)
    return 0


def _check_out(out: Path) -> None:
    """Fail before training when the model file ``out`` cannot be written."""
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise CLIError(f"--out {out}: the directory {out.parent} does not exist")
    if out.is_dir():
        raise CLIError(f"--out {out} is a directory; give a file name such as "
                       f"{out / DEFAULT_MODEL_FILE}")


def _check_splits(args: argparse.Namespace) -> None:
    """Fail before loading when ``--val-split`` and ``--test-split`` leave no training data."""
    if _data_kind(args.data) in ("mnist", "fashion-mnist"):
        return  # these have their own test set: --test-split is not used
    if args.val_split + args.test_split >= 1.0:
        raise CLIError(f"--val-split {args.val_split:g} and --test-split {args.test_split:g} "
                       f"hold out {args.val_split + args.test_split:g} of the data and leave "
                       "none for training: together they must be below 1")


def _train_callbacks(args: argparse.Namespace, has_val: bool) -> list[Any]:
    """The callbacks ``numnet train`` adds to ``fit`` (early stopping, when asked)."""
    from numnet import callbacks

    if args.early_stopping is None:
        return []
    return [callbacks.EarlyStopping(monitor="val_loss" if has_val else "loss",
                                    patience=args.early_stopping, restore_best_weights=True,
                                    verbose=0 if args.quiet else 1)]


def _save_interrupted(model: Any, out: Path, optimizer: Any, metadata: dict[str, Any]) -> int:
    """After Ctrl-C: save the weights of the last finished batch, say so, return 130."""
    from numnet import io

    io.save(model, out, optimizer=optimizer, metadata={**metadata, "interrupted": True})
    _fresh_line()
    print(f"{PROG}: interrupted: saved the weights after the last finished batch to {out} "
          f"({metadata['epochs']} full epoch(s); not evaluated, no plot)", file=sys.stderr)
    return 130


def _fresh_line() -> None:
    """Make the next message on standard error start on a line of its own."""
    end_line = getattr(sys.stderr, "end_line", None)
    if end_line is not None:
        end_line()


def _plot_target(option: str, out: Path) -> Path | None:
    key = option.lower()
    default = (out.parent / DEFAULT_PLOT_FILE) if str(out.parent) else Path(DEFAULT_PLOT_FILE)
    if key in ("off", "none", "no", "false", "0"):
        return None
    if key == "auto":
        return default
    target = default if key in ("on", "yes", "true", "1") else Path(option)
    if not _have_matplotlib():
        raise CLIError(f"--plot {option}: writing the training curves needs matplotlib "
                       "(pip install 'numnet[plot]'), or pass --plot off")
    _check_plot_file(option, target)
    return target


def _check_plot_file(option: str, target: Path) -> None:
    """Fail before any work when matplotlib cannot write a plot to ``target``.

    The format comes from the suffix (none means PNG), as in :func:`numnet.plot._finish`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not (target.parent if str(target.parent) else Path(".")).is_dir():
        raise CLIError(f"--plot {option}: the directory {target.parent} does not exist")
    fmt = target.suffix.lstrip(".").lower() or "png"
    supported = FigureCanvasAgg.get_supported_filetypes()
    if fmt not in supported:
        raise CLIError(f"--plot {option}: matplotlib cannot write {fmt!r} files; give a name "
                       f"ending in one of {', '.join('.' + f for f in sorted(supported))}")


def _have_matplotlib() -> bool:
    """Whether matplotlib can be imported (selecting the non-interactive Agg backend)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _write_history_plot(history: Any, path: Path) -> None:
    if not _have_matplotlib():
        print("matplotlib is not installed: no training-curve plot (pip install "
              "'numnet[plot]' to get one)")
        return
    from numnet import plot

    figure = plot.plot_history(history, path=path)
    _close(figure)
    print(f"saved training curves to {path}")


def _close(figure: Any) -> None:
    with contextlib.suppress(Exception):
        import matplotlib.pyplot as plt

        plt.close(figure)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``numnet evaluate``."""
    from numnet import metrics

    if args.plot is not None:
        if not _have_matplotlib():
            raise CLIError("--plot needs matplotlib (pip install 'numnet[plot]')")
        _check_plot_file(args.plot, Path(args.plot))
    model, metadata = open_model(args.model)
    if Path(args.model).suffix.lower() == ".json":
        raise CLIError(f"{args.model}: evaluate needs a trained model file (.npz), not an "
                       "architecture")
    prepared = _data_for_model(args, metadata)
    X, y = prepared.split(args.split)
    if len(y) == 0:
        raise CLIError(f"the {args.split} split of {prepared.name} is empty")
    X = fit_input(X, model, f"the {prepared.name} data")
    _check_output(model, prepared.num_classes, args.model)
    scores = model.evaluate(X, y)
    y_pred = model.predict(X)
    names = [str(c) for c in prepared.classes]
    print(f"model: {args.model}")
    print(f"data: {prepared.name} ({args.split} split, {len(y)} samples)")
    print(f"loss: {float(scores['loss']):.4f}")
    print(f"accuracy: {float(scores['accuracy']):.2%}")
    print()
    print(metrics.classification_report(y, y_pred, class_names=names))
    cm = metrics.confusion_matrix(y, y_pred, num_classes=prepared.num_classes)
    print()
    print("confusion matrix (rows: true class, columns: predicted class)")
    print(_matrix_text(cm, names))
    if args.plot is not None:
        from numnet import plot

        figure = plot.plot_confusion_matrix(cm, class_names=names, normalize=args.normalize,
                                            path=args.plot)
        _close(figure)
        print(f"saved confusion matrix plot to {args.plot}")
    return 0


def _matrix_text(cm: np.ndarray, names: list[str]) -> str:
    cm = np.asarray(cm)
    cells = [[""] + names] + [[names[i]] + [str(int(v)) for v in row]
                              for i, row in enumerate(cm)]
    width = max(len(c) for row in cells for c in row)
    return "\n".join(" ".join(c.rjust(width) for c in row) for row in cells)


def cmd_predict(args: argparse.Namespace) -> int:
    """``numnet predict``."""
    from numnet import io

    if Path(args.model).suffix.lower() == ".json":
        raise CLIError(f"{args.model}: predict needs a trained model file (.npz), not an "
                       "architecture")
    model, metadata = open_model(args.model)
    if args.out is not None:
        target = Path(args.out)
        if not (target.parent if str(target.parent) else Path(".")).is_dir():
            raise CLIError(f"--out {args.out}: the directory {target.parent} does not exist")
    X, names = read_inputs(args.inputs, model, metadata, args.label_column, args.invert)
    what = ", ".join(args.inputs)
    X = fit_input(apply_preprocessing(X, metadata.get("preprocessing"), what), model, what)
    labels = model.predict(X)
    classes = metadata.get("classes")
    header = ["file" if names is not None else "index", "label"]
    rows: list[list[str]] = []
    proba = model.predict_proba(X) if args.proba else None
    n_out = proba.shape[1] if proba is not None and proba.ndim == 2 else 0
    if proba is not None:
        header += [f"p_{classes[j] if classes and j < len(classes) else j}"
                   for j in range(n_out)]
    for i, label in enumerate(labels):
        values = [int(v) for v in np.asarray(label).reshape(-1)]  # (N,) or (N, 1) labels
        shown = " ".join(str(classes[v] if classes and 0 <= v < len(classes) else v)
                         for v in values)
        row = [names[i] if names is not None else str(i), shown]
        if proba is not None:
            row += [f"{p:.6g}" for p in np.asarray(proba[i]).reshape(-1)]
        rows.append(row)
    text = "\n".join(",".join(_csv_cell(c) for c in r) for r in [header] + rows) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        io._atomic_write(Path(args.out), lambda handle: handle.write(text.encode("utf-8")))
        print(f"wrote {len(rows)} predictions to {args.out}", file=sys.stderr)
    return 0


def _csv_cell(text: str) -> str:
    return f'"{text}"' if ("," in text or '"' in text) else text


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")


def read_inputs(paths: Sequence[str], model: Any, metadata: dict[str, Any],
                label_column: int | str | None, invert: bool = False
                ) -> tuple[np.ndarray, list[str] | None]:
    """Raw inputs from one CSV, one ``.npy`` or several image files; names for images.

    A ``.npy`` array shaped like one sample (the model's input shape, or the image shape
    recorded at training time) is one sample. ``invert`` turns dark-on-light images into
    the white-on-black of the training data.
    """
    for p in paths:
        if not Path(p).exists():
            raise FileNotFoundError(2, "no such input file", p)
    suffixes = {Path(p).suffix.lower() for p in paths}
    if suffixes <= set(IMAGE_SUFFIXES):
        return _read_images(paths, model, metadata, invert), [str(p) for p in paths]
    if len(paths) != 1:
        raise CLIError("give one CSV or .npy file, or any number of image files")
    path = Path(paths[0])
    if path.suffix.lower() == ".npy":
        try:
            X = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise CLIError(f"{path}: not a readable numeric .npy file ({exc})") from None
        if not isinstance(X, np.ndarray) or X.dtype.kind not in "biuf":
            raise CLIError(f"{path}: expected a numeric array, got dtype "
                           f"{getattr(X, 'dtype', type(X).__name__)}")
        expected = model.input_shape
        one_sample = [tuple(shape) for shape in (expected, metadata.get("image_shape"))
                      if shape is not None]
        if tuple(X.shape) in one_sample:
            X = X[np.newaxis]  # a single sample
        if X.ndim < 2:
            X = X.reshape(1, -1) if expected is not None and X.size == int(
                np.prod(expected)) else X.reshape(-1, 1)
        return X.astype(np.float64), None
    from numnet import data

    X, _ = data.load_csv(path, label_column=label_column, dtype=np.float64, finite=True)
    width = int(np.prod(model.input_shape)) if model.input_shape is not None else None
    if label_column is None and width is not None and X.shape[1] == width + 1:
        raise CLIError(f"{path} has {X.shape[1]} columns, the model takes {width} features: "
                       "if one column holds labels, pass --label-column")
    return X, None


def _read_images(paths: Sequence[str], model: Any, metadata: dict[str, Any],
                 invert: bool = False) -> np.ndarray:
    """Grayscale images in the training data's pixel range (0..1 scaled to ``raw_max``)."""
    images = []
    for p in paths:
        gray = _read_gray(Path(p))
        if invert:
            gray = 1.0 - gray
        images.append(gray)
        if gray.shape != images[0].shape:
            raise CLIError(f"{p} is {gray.shape[1]}x{gray.shape[0]} pixels but {paths[0]} is "
                           f"{images[0].shape[1]}x{images[0].shape[0]}: all images must have "
                           "the same size")
    X = np.stack(images)
    height, width = X.shape[1:]
    expected = metadata.get("image_shape")
    if expected is None and model.input_shape is not None:
        if int(np.prod(model.input_shape)) != height * width:
            raise CLIError(f"images are {width}x{height} = {width * height} pixels, the model "
                           f"expects {int(np.prod(model.input_shape))} inputs")
    elif expected is not None and [height, width] != list(expected):
        raise CLIError(f"images are {width}x{height} pixels, the model was trained on "
                       f"{expected[1]}x{expected[0]} images (numnet does not resize)")
    raw_max = (metadata.get("preprocessing") or {}).get("raw_max")
    if raw_max is not None:
        X = X * float(raw_max)
    return X.reshape(X.shape[0], -1)


def _read_gray(path: Path) -> np.ndarray:
    """An image as a 2-d float array in [0, 1] (white = 1), via Pillow or matplotlib."""
    if importlib.util.find_spec("PIL") is not None:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as image:
                return np.asarray(image.convert("L"), dtype=np.float64) / 255.0
        except (UnidentifiedImageError, OSError) as exc:
            raise CLIError(f"{path}: not a readable image ({exc})") from None
    if not _have_matplotlib():
        raise CLIError("reading images needs Pillow or matplotlib (pip install 'numnet[plot]')")
    import matplotlib.image as mpimg

    try:
        array = np.asarray(mpimg.imread(path), dtype=np.float64)
    except (ValueError, OSError, SyntaxError) as exc:
        raise CLIError(f"{path}: not a readable image ({exc})") from None
    if array.max(initial=0) > 1.0:
        array = array / 255.0
    if array.ndim == 3:
        array = array[..., :3] @ np.array([0.299, 0.587, 0.114])
    if array.ndim != 2:
        raise CLIError(f"{path}: unexpected image shape {array.shape}")
    return array


def cmd_summary(args: argparse.Namespace) -> int:
    """``numnet summary``."""
    model, metadata = open_model(args.model, args.input_shape)
    if model.input_shape is None and args.input_shape is None:
        raise CLIError(f"{args.model}: the model does not fix its input shape; pass "
                       "--input-shape, e.g. --input-shape 8,8")
    print(model.summary(args.input_shape))
    if Path(args.model).suffix.lower() != ".json":
        from numnet import io

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


def cmd_gradcheck(args: argparse.Namespace) -> int:
    """``numnet gradcheck``: every layer and the loss, in float64, on random data.

    Each layer is checked in training mode on the output of the layers before it, and in
    evaluation mode as well when its output differs between the modes (dropout, batch
    normalisation); the table shows the worst relative error of each tensor.
    """
    from numnet import gradcheck

    model, _ = open_model(args.model, args.input_shape)
    shape = model.input_shape
    if shape is None:
        raise CLIError(f"{args.model}: the model does not fix its input shape; pass "
                       "--input-shape")
    model = copy.deepcopy(model).astype(np.float64)
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((args.batch_size,) + tuple(shape))
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
        x = out_train
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


def _worse(old: float | None, new: float) -> float:
    if old is None or np.isnan(new):
        return float(new)
    return float(max(old, new))


def _random_target(loss: Any, out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from numnet.losses import BinaryCrossEntropy, CrossEntropy

    if isinstance(loss, CrossEntropy):
        return rng.integers(0, out.shape[1], size=out.shape[0])
    if isinstance(loss, BinaryCrossEntropy):
        return rng.integers(0, 2, size=out.shape).astype(np.float64)
    return rng.standard_normal(out.shape)


def cmd_trace(args: argparse.Namespace) -> int:
    """``numnet trace``."""
    model, metadata = open_model(args.model)
    if args.data is None and not metadata.get("source"):
        raise CLIError(f"{args.model} does not record a dataset: pass --data")
    prepared = _data_for_model(args, metadata, seed=args.seed)
    X, y = prepared.split(args.split)
    X, y = X[:args.batch_size], y[:args.batch_size]
    if len(y) == 0:
        raise CLIError(f"the {args.split} split of {prepared.name} is empty")
    X = fit_input(X, model, f"the {prepared.name} data")
    if model.loss is not None:
        _check_output(model, prepared.num_classes, args.model)
    model.train() if args.training else model.eval()
    print(f"trace of {len(y)} samples from {prepared.name} ({args.split} split), "
          f"{'training' if args.training else 'evaluation'} mode")
    print(model.trace(X, y if model.loss is not None else None))
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    """``numnet datasets``."""
    from numnet import data

    info = data.dataset_info() if hasattr(data, "dataset_info") else data.list_datasets()
    if isinstance(info, str):
        print(info.rstrip("\n"))
        return 0
    entries = info.values() if isinstance(info, dict) else info
    for entry in entries:
        print(entry if not isinstance(entry, dict) else
              "  ".join(f"{k}: {v}" for k, v in entry.items()))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
