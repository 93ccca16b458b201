"""``numnet evaluate``: loss, accuracy, per-class report and confusion matrix of a model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from numnet import metrics, plot
from numnet.cli._common import (
    CLIError,
    Files,
    Parser,
    Subparsers,
    add_command,
    add_data_options,
    check_files,
    check_output,
    check_plot_file,
    fit_input,
    have_matplotlib,
    is_architecture,
    open_model,
)
from numnet.cli._data import SPLITS, data_for_model, data_inputs

EXAMPLES = ("  numnet evaluate numnet-model.npz\n"
            "  numnet evaluate model.npz --data mnist --plot confusion.png\n")


def add_parser(commands: Subparsers[Parser]) -> None:
    sub = add_command(commands, "evaluate", "Evaluate a model: loss, accuracy, per-class "
                                            "report, confusion matrix.", EXAMPLES, run,
                      files=files)
    sub.add_argument("model", metavar="MODEL", help="a model file (.npz)")
    add_data_options(sub, None)
    sub.add_argument("--split", choices=SPLITS, default="test",
                     help="which part of the data: a split as made at training time (same "
                          "seed and fractions), or all of it (default: test)")
    sub.add_argument("--plot", default=None, metavar="PATH",
                     help="also write the confusion matrix as a PNG")
    sub.add_argument("--normalize", action="store_true",
                     help="normalise the confusion-matrix plot by row")


def files(args: argparse.Namespace) -> Files:
    """Reads MODEL and --data; writes --plot."""
    return Files(inputs=[("MODEL", args.model), *data_inputs(args)],
                 outputs=[] if args.plot is None else [("--plot", args.plot)])


def run(args: argparse.Namespace) -> int:
    """``numnet evaluate``."""
    if args.plot is not None and not have_matplotlib():
        raise CLIError("--plot needs matplotlib (pip install 'numnet[plot]')")
    model, metadata = open_model(args.model)
    if is_architecture(args.model):
        raise CLIError(f"{args.model}: evaluate needs a trained model file (.npz), not an "
                       "architecture")
    if args.data is None and args.plot is not None:
        # the dataset recorded in the model file is read too: --plot must not replace it
        check_files(Files(inputs=_recorded_inputs(metadata), outputs=[("--plot", args.plot)]))
    if args.plot is not None:
        check_plot_file(args.plot, Path(args.plot))
    prepared = data_for_model(args, metadata)
    X, y = prepared.split(args.split)
    if len(y) == 0:
        raise CLIError(f"the {args.split} split of {prepared.name} is empty")
    X = fit_input(X, model, f"the {prepared.name} data")
    check_output(model, prepared.num_classes, args.model)
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
    print(matrix_text(cm, names))
    if args.plot is not None:
        plot.plot_confusion_matrix(cm, class_names=names, normalize=args.normalize,
                                   path=args.plot)
        print(f"saved confusion matrix plot to {args.plot}")
    return 0


def matrix_text(cm: np.ndarray, names: list[str]) -> str:
    """A confusion matrix as right-aligned columns, with the class names around it."""
    cm = np.asarray(cm)
    cells = [[""] + names] + [[names[i]] + [str(int(v)) for v in row]
                              for i, row in enumerate(cm)]
    width = max(len(c) for row in cells for c in row)
    return "\n".join(" ".join(c.rjust(width) for c in row) for row in cells)


def _recorded_inputs(metadata: dict[str, Any]) -> list[tuple[str, str]]:
    """The files of the dataset a model file records (its CSV, or the files of a built-in
    dataset's directory), as inputs."""
    source = metadata.get("source") or {}
    spec = source.get("path") or source.get("data")
    if not isinstance(spec, str):
        return []
    recorded = argparse.Namespace(data=spec, data_dir=source.get("data_dir"))
    try:
        files = data_inputs(recorded)
    except CLIError:  # an unknown dataset: data_for_model says so, naming it
        return []
    return [("the dataset recorded in the model", path) for _, path in files]
