"""The ``numnet`` command line: train, inspect, evaluate and use networks without Python.

Commands
--------
``numnet train``        train a classifier (default: a small MLP on the built-in digits)
``numnet evaluate``     loss, accuracy, per-class report and confusion matrix of a model
``numnet predict``      labels (and probabilities) for a CSV, ``.npy`` or image files
``numnet summary``      the layer table of a model file or a JSON architecture
``numnet gradcheck``    gradient-check every layer of a model or architecture
``numnet trace``        the shape-and-statistics trace of one batch through a model
``numnet export``       a model file as an ONNX graph (for ONNX Runtime; needs onnx)
``numnet datasets``     the built-in and cached datasets, and where they live

Every error prints one line, ``numnet: error: ...``, to standard error and exits with
status 2 (``--debug`` shows the traceback instead); a diverging training run (a loss that
turned NaN or exploded, see :mod:`numnet.training.guard`; the previous ``--out`` is then
kept) and a failed gradient check exit with status 1. Ctrl-C exits with status 130; during
``numnet train`` the weights after the last finished batch are saved first (the file
records ``"interrupted"``).

Preprocessing
-------------
``numnet train`` records in the model file (see :func:`numnet.io.load_metadata`) how the
inputs were scaled, and ``evaluate``, ``predict`` and ``trace`` apply the same scaling, so
they always take *raw* inputs, in the units of the training data:

* ``digits``: pixel values 0..16, divided by 16;
* ``mnist`` / ``fashion-mnist``: pixel values 0..255, divided by 255;
* a CSV file: each feature standardised with the mean and standard deviation of the
  training split (``numnet.data.Standardizer``); both are stored in the model file.

The description stored is the scaler's ``get_config()``; library users rebuild it with
:func:`numnet.data.preprocessing_from_config`.

CSV labels (``--label-column``: an index or a header name) may be any whole numbers, or
text when the CSV reader returns it; they are mapped to classes ``0..K-1`` in sorted order
(:class:`numnet.data.LabelEncoder`) and the original values are stored as the model's
``classes``, so ``predict`` prints labels as they were in the file.

Images given to ``predict`` are read as grey levels, white ink on a black background like
MNIST and the digits; ``--invert`` reads dark drawings on a light background.

Layout
------
One module per command (``train``, ``evaluate``, ``predict``, ``summary``, ``gradcheck``,
``trace``, ``export``, ``datasets``), each with ``add_parser(commands)``, ``run(args) -> int``
and ``files(args)``, the files it reads and writes (checked before it runs: no output may be
one of its inputs or another output; see :mod:`numnet.cli._common`);
:mod:`numnet.cli._common` holds the error type, the parser and argument types, and
:mod:`numnet.cli._data` loads, splits and scales datasets. This module assembles the parser
and runs a command.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from numnet import __version__, distributed
from numnet.cli import (
    datasets,
    evaluate,
    export,
    gradcheck,
    predict,
    summary,
    trace,
    train,
)
from numnet.cli._common import (
    PROG,
    CLIError,
    Formatter,
    LineTracker,
    Parser,
    check_files,
    describe,
    fit_input,
    open_model,
)
from numnet.cli._data import Prepared, apply_preprocessing, load_data
from numnet.cli.predict import read_inputs
from numnet.cli.train import build_model
from numnet.errors import TrainingDiverged

# build_parser and main, and the helpers numnet.cli offered when it was one module
__all__ = [
    "CLIError",
    "Prepared",
    "apply_preprocessing",
    "build_model",
    "build_parser",
    "fit_input",
    "load_data",
    "main",
    "open_model",
    "read_inputs",
]

#: the sub-commands, in the order ``numnet --help`` lists them
COMMANDS = (train, evaluate, predict, summary, gradcheck, trace, export, datasets)


def build_parser() -> Parser:
    """The ``numnet`` argument parser with every sub-command."""
    parser = Parser(
        prog=PROG, formatter_class=Formatter,
        description="numnet: train, inspect, evaluate and use NumPy neural networks.",
        epilog="examples:\n  numnet train                      # digits MLP, a few seconds\n"
               "  numnet evaluate numnet-model.npz\n"
               "  numnet predict numnet-model.npz inputs.csv --proba\n\n"
               "Run 'numnet COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"numnet {__version__}")
    parser.add_argument("--debug", action="store_true", default=False,
                        help="show the full traceback on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    for command in COMMANDS:
        command.add_parser(commands)
    parser.commands = dict(commands.choices)
    return parser


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
    sys.stderr = tracker = LineTracker(stderr)
    try:
        return _run(args, debug, tracker)
    finally:
        sys.stderr = stderr


def _owner(parser: Parser, command: str, argv: list[str], extra: str
           ) -> argparse.ArgumentParser:
    """The parser whose ``--help`` to point to for an unknown argument: the sub-command's,
    unless the argument came before the command name."""
    sub = parser.commands.get(command)
    if sub is None or (extra in argv and argv.index(extra) < argv.index(command)):
        return parser
    return sub


def _run(args: argparse.Namespace, debug: bool, tracker: LineTracker) -> int:
    """Check the command's files, run it; turn exceptions into one line on standard error."""
    try:
        check_files(args.files(args))  # before any work: no output may destroy an input
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        tracker.end_line()
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`numnet summary M | head`): nothing is wrong and nothing
        # is left to say; stdout points at /dev/null so the exit's flush cannot fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a program killed by the signal would report
    except Exception as exc:  # every failure becomes one line unless --debug
        status = 1 if isinstance(exc, TrainingDiverged) else 2
        if getattr(exc, "every_rank", False) and not distributed.is_main():
            return status  # every rank of an MPI job raised it: rank 0 prints it
        if debug:
            traceback.print_exc()
        tracker.end_line()  # a progress bar may have left the cursor mid-line
        print(f"{PROG}: error: {describe(exc)}", file=sys.stderr)
        return status
