"""Datasets for the commands: load, split, encode labels and scale, as at training time.

The label encoding (:class:`numnet.data.LabelEncoder`) and the scaling
(:func:`numnet.data.preprocessing_from_config`) are the library's; this module adds what
the command line decides: which dataset ``--data`` names, the split of its seed and
fractions, the scaling chosen per dataset, and errors that name options and files.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from numnet import data
from numnet.cli._common import CLIError

BUILTIN = ("digits", "mnist", "fashion-mnist")
SPLITS = ("train", "val", "test", "all")

Split = Callable[[], tuple[np.ndarray, np.ndarray]]


@dataclass
class Prepared:
    """A dataset split, scaled, with what is needed to scale new inputs the same way."""

    name: str
    source: dict[str, Any]
    preprocessing: dict[str, Any]
    classes: list[Any]
    image_shape: list[int] | None
    raw: dict[str, Split] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(X, y)`` of one split, scaled (computed on demand: MNIST is large)."""
        X, y = self.raw[name]()
        return apply_preprocessing(X, self.preprocessing, f"the {self.name} data"), y


def data_kind(spec: str) -> str:
    """``digits``, ``mnist``, ``fashion-mnist`` or ``csv`` for a ``--data`` value."""
    key = spec.lower().replace("_", "-")
    if key in BUILTIN:
        return key
    if key in ("fashion", "fashionmnist"):
        return "fashion-mnist"
    path = Path(spec)
    if path.is_dir():
        raise CLIError(f"--data {spec} is a directory; expected digits, mnist, "
                       "fashion-mnist or a CSV file (for MNIST files in a directory: "
                       f"--data mnist --data-dir {spec})")
    if path.suffix.lower() in (".csv", ".gz", ".txt", ".tsv") or path.exists():
        return "csv"
    raise CLIError(f"unknown --data {spec!r}: expected digits, mnist, fashion-mnist or a "
                   "path to a CSV file")


def data_inputs(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The files ``--data`` and ``--data-dir`` name, as inputs of a command: a CSV file, or
    the files of a built-in dataset's directory (``--data-dir``, else where numnet finds
    the dataset: its cache, ``$NUMNET_DATA``, the digits shipped with numnet)."""
    kind = None if args.data is None else data_kind(args.data)
    if kind == "csv":
        return [("--data", args.data)]
    if args.data_dir is not None:
        name, directory = f"--data-dir {args.data_dir}", Path(args.data_dir)
    elif kind is not None:
        info = next(i for i in data.dataset_info() if i.name == kind)
        name, directory = f"--data {kind} ({info.status})", info.location
    else:
        return []
    if not directory.is_dir():
        return []
    return [(name, str(path)) for path in sorted(directory.iterdir()) if path.is_file()]


def load_data(spec: str, *, label_column: int | str | None = None, data_dir: str | None = None,
              seed: int = 0, val_split: float = 0.1, test_split: float = 0.2,
              preprocessing: dict[str, Any] | None = None,
              classes: list[Any] | None = None, delimiter: str | None = None) -> Prepared:
    """Load, split and scale a dataset for the CLI.

    When ``preprocessing`` and ``classes`` (from a model file) are given they are applied;
    otherwise they are derived from the training split. ``delimiter`` (default ``,``)
    separates a CSV file's cells.
    """
    kind = data_kind(spec)
    source: dict[str, Any] = {"data": kind, "seed": seed, "val_split": val_split,
                              "test_split": test_split}
    image_shape: list[int] | None = None
    raw_max: float | None
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
        splits["test"] = _constant(X_test, y_test)
        splits["all"] = lambda: (np.concatenate([X, X_test]), np.concatenate([y, y_test]))
    else:
        path = Path(spec)
        if not path.exists():
            raise FileNotFoundError(2, "no such data file", str(path))
        label = 0 if label_column is None else label_column
        sep = "," if delimiter is None else delimiter
        X, labels = data.load_csv(path, label_column=label, finite=True, delimiter=sep)
        source.update(path=str(path.resolve()), label_column=label, delimiter=sep)
        raw_max = None
        y, classes = encode_labels(labels, classes, path)
        splits = _split(X, y, val_split, test_split, seed)
    if classes is None:
        classes = sorted(int(c) for c in np.unique(y))
    if preprocessing is None:
        scaling = (data.Rescale(raw_max) if raw_max is not None
                   else data.Standardizer().fit(splits["train"]()[0]))
        preprocessing = scaling.get_config()
    return Prepared(spec if kind == "csv" else kind, source, preprocessing, classes,
                    image_shape, splits)


def _split(X: np.ndarray, y: np.ndarray, val: float, test: float, seed: int
           ) -> dict[str, Split]:
    try:
        parts = data.train_dev_test_split(X, y, dev=val, test=test, shuffle=True,
                                          stratify=True, seed=seed)
    except ValueError as exc:  # name the options, not the function
        reason = str(exc).removeprefix("train_dev_test_split: ").replace("dev (", "validation (")
        raise CLIError(f"--val-split {val:g} and --test-split {test:g}: {reason}; lower "
                       "them") from exc
    splits = {name: _constant(part_X, part_y) for name, (part_X, part_y)
              in zip(("train", "val", "test"), parts, strict=True)}
    splits["all"] = _constant(X, y)
    return splits


def _constant(X: np.ndarray, y: np.ndarray | None) -> Split:
    """A split that is already in memory."""
    assert y is not None  # the splits of labelled data
    return lambda: (X, y)


def encode_labels(y: np.ndarray | None, classes: list[Any] | None, path: Path
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
    try:
        if classes is None:
            encoder = data.LabelEncoder().fit(y)
            found = encoder.get_config()["classes"]
            if len(found) < 2:
                raise CLIError(f"{path}: the label column has a single class ({found}); "
                               "is --label-column right?")
        else:
            encoder = data.LabelEncoder.from_config({"classes": classes})
        encoded = encoder.transform(np.asarray(y).reshape(-1))
    except data.UnknownLabelError as exc:
        raise CLIError(f"{path}: label {exc.label!r} is not one of the model's classes "
                       f"{classes}") from None
    except CLIError:
        raise
    except ValueError as exc:  # the file, not the class, is what the user knows
        reason = re.sub(r"^LabelEncoder\.\w+: ", "", str(exc))
        raise CLIError(f"{path}: {reason}") from None
    return encoded, encoder.get_config()["classes"]


def apply_preprocessing(X: np.ndarray, preprocessing: dict[str, Any] | None,
                        what: str = "the inputs") -> np.ndarray:
    """Scale raw inputs as recorded in a model file (see :mod:`numnet.cli`).

    ``what`` names the inputs in errors, e.g. ``"inputs.csv"``.
    """
    X = np.asarray(X)
    if X.dtype.kind != "f":
        X = X.astype(np.float32)  # pixels and other integers: float32 is exact to 2**24
    if not preprocessing:
        return X
    try:
        scaling = data.preprocessing_from_config(preprocessing)
    except ValueError as exc:
        raise CLIError(f"{exc}, recorded in the model file") from None
    if isinstance(scaling, data.Rescale):
        return scaling.transform(X)
    flat = X.reshape(X.shape[0], math.prod(X.shape[1:]))  # also for an empty split
    if flat.shape[1] != scaling.n_features_in_:
        raise CLIError(f"{what} has {flat.shape[1]} features per sample, the model was "
                       f"trained on {scaling.n_features_in_}")
    return scaling.transform(flat).reshape(X.shape)


def data_for_model(args: argparse.Namespace, metadata: dict[str, Any],
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
        kind = data_kind(spec)
        same = kind == source.get("data") and (
            kind != "csv" or str(Path(spec).resolve()) == source.get("path"))
    label_column, delimiter = args.label_column, args.delimiter
    if same:  # the CSV the model was trained on: read it as it was read then
        label_column = source.get("label_column") if label_column is None else label_column
        delimiter = source.get("delimiter") if delimiter is None else delimiter
    data_dir = args.data_dir if args.data_dir is not None else source.get("data_dir")
    split_seed = seed if seed is not None else int(source.get("seed", 0))
    return load_data(spec, label_column=label_column, data_dir=data_dir, seed=split_seed,
                     val_split=float(source.get("val_split", 0.1)),
                     test_split=float(source.get("test_split", 0.2)),
                     preprocessing=metadata.get("preprocessing"),
                     classes=metadata.get("classes"), delimiter=delimiter)
