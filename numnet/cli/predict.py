"""``numnet predict``: labels (and probabilities) for a CSV, a ``.npy`` array or images."""

from __future__ import annotations

import argparse
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from numnet import data
from numnet._files import atomic_write
from numnet.cli._common import (
    CLIError,
    Files,
    Parser,
    Subparsers,
    add_command,
    column,
    delimiter,
    fit_input,
    have_matplotlib,
    is_architecture,
    open_model,
)
from numnet.cli._data import apply_preprocessing
from numnet.model import Sequential

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")

EXAMPLES = ("  numnet predict numnet-model.npz inputs.csv\n"
            "  numnet predict numnet-model.npz digit.png --proba\n"
            "  numnet predict numnet-model.npz drawing.png --invert  # black on white\n"
            "  numnet predict model.npz batch.npy --out predictions.csv\n")


def add_parser(commands: Subparsers[Parser]) -> None:
    sub = add_command(commands, "predict", "Predict labels (and probabilities) for new inputs.",
                      EXAMPLES, run, files=files)
    sub.add_argument("model", metavar="MODEL", help="a model file (.npz)")
    sub.add_argument("inputs", nargs="+", metavar="INPUT",
                     help="a CSV of raw features (one row per sample), a .npy array (one "
                          "sample, or one per row), or image files (.png/.jpg) of the model's "
                          "input size; images are read as grey levels with white ink on a "
                          "black background, like MNIST and the digits (see --invert)")
    sub.add_argument("--invert", action="store_true",
                     help="invert image files first: for dark drawings on a light background")
    sub.add_argument("--label-column", type=column, default=None, metavar="COLUMN",
                     help="CSV column to ignore because it holds labels (an index or a "
                          "header name)")
    sub.add_argument("--delimiter", type=delimiter, default=",", metavar="CHAR",
                     help="the CSV file's delimiter: one character, or tab (default: ',')")
    sub.add_argument("--proba", action="store_true", help="also write class probabilities")
    sub.add_argument("--out", default=None, metavar="PATH",
                     help="write the CSV here instead of standard output ('-' is standard "
                          "output)")


def files(args: argparse.Namespace) -> Files:
    """Reads MODEL and every INPUT; writes --out."""
    return Files(inputs=[("MODEL", args.model), *(("INPUT", p) for p in args.inputs)],
                 outputs=[] if args.out is None else [("--out", args.out)])


def run(args: argparse.Namespace) -> int:
    """``numnet predict``."""
    if is_architecture(args.model):
        raise CLIError(f"{args.model}: predict needs a trained model file (.npz), not an "
                       "architecture")
    model, metadata = open_model(args.model)
    X, names = read_inputs(args.inputs, model, metadata, args.label_column, args.invert,
                           args.delimiter)
    what = ", ".join(args.inputs)
    X = fit_input(apply_preprocessing(X, metadata.get("preprocessing"), what), model, what)
    labels = model.predict(X)  # NonFiniteError when an output is NaN or infinite
    classes = metadata.get("classes")
    header = ["file" if names is not None else "index", "label"]
    rows: list[list[str]] = []
    proba = model.predict_proba(X) if args.proba else None
    n_out = proba.shape[1] if proba is not None and proba.ndim == 2 else 0
    if proba is not None:
        # a binary model with one sigmoid output gives P(class 1), the second class
        first = 1 if n_out == 1 and classes and len(classes) == 2 else 0
        header += [f"p_{classes[j] if classes and j < len(classes) else j}"
                   for j in range(first, first + n_out)]
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
        with atomic_write(args.out) as handle:
            handle.write(text.encode("utf-8"))
        print(f"wrote {len(rows)} predictions to {args.out}", file=sys.stderr)
    return 0


def _csv_cell(text: str) -> str:
    return f'"{text}"' if ("," in text or '"' in text) else text


def read_inputs(paths: Sequence[str], model: Sequential, metadata: dict[str, Any],
                label_column: int | str | None, invert: bool = False, delimiter: str = ","
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
        return _read_npy(path, model, metadata), None
    X, _ = data.load_csv(path, label_column=label_column, dtype=np.float64, finite=True,
                          delimiter=delimiter)
    width = int(np.prod(model.input_shape)) if model.input_shape is not None else None
    if label_column is None and width is not None and X.shape[1] == width + 1:
        raise CLIError(f"{path} has {X.shape[1]} columns, the model takes {width} features: "
                       "if one column holds labels, pass --label-column")
    return X, None


def _read_npy(path: Path, model: Sequential, metadata: dict[str, Any]) -> np.ndarray:
    """A numeric ``.npy`` array as rows of samples (a lone sample gets its batch axis)."""
    try:
        X: np.ndarray = np.load(path, allow_pickle=False)
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
    return X.astype(np.float64)


def _read_images(paths: Sequence[str], model: Sequential, metadata: dict[str, Any],
                 invert: bool = False) -> np.ndarray:
    """Grayscale images in the training data's pixel range (0..1 scaled to ``raw_max``).

    Each image's size is read from its header and checked against the model's before it
    is decoded, so a file declaring 30000x30000 pixels costs nothing.
    """
    expected = metadata.get("image_shape")
    inputs = int(np.prod(model.input_shape)) if model.input_shape is not None else None
    images = []
    for p in paths:
        gray = _read_gray(Path(p), Size(expected, inputs))
        if invert:
            gray = 1.0 - gray
        images.append(gray)
        if gray.shape != images[0].shape:
            raise CLIError(f"{p} is {gray.shape[1]}x{gray.shape[0]} pixels but {paths[0]} is "
                           f"{images[0].shape[1]}x{images[0].shape[0]}: all images must have "
                           "the same size")
    X = np.stack(images)
    scaling = metadata.get("preprocessing")
    if scaling is not None:
        rescale = data.preprocessing_from_config(scaling)  # checked when the file was read
        if isinstance(rescale, data.Rescale):
            X = X * float(rescale.raw_max)
    return X.reshape(X.shape[0], -1)


class Size:
    """The image size a model takes: ``image_shape`` recorded at training time, or its
    number of inputs; :meth:`check` refuses any other size before decoding."""

    def __init__(self, image_shape: list[int] | None, inputs: int | None) -> None:
        self.image_shape, self.inputs = image_shape, inputs

    def check(self, path: Path, width: int, height: int) -> None:
        if self.image_shape is not None and [height, width] != list(self.image_shape):
            raise CLIError(f"{path} is {width}x{height} pixels, but the model was trained on "
                           f"{self.image_shape[1]}x{self.image_shape[0]} images (numnet does "
                           "not resize)")
        if self.image_shape is None and self.inputs is not None \
                and width * height != self.inputs:
            raise CLIError(f"{path} is {width}x{height} = {width * height} pixels, the model "
                           f"expects {self.inputs} inputs")


def _read_gray(path: Path, size: Size) -> np.ndarray:
    """An image as a 2-d float array in [0, 1] (white = 1), via Pillow or matplotlib; its
    declared size is checked before it is decoded."""
    if importlib.util.find_spec("PIL") is not None:
        return _read_with_pillow(path, size)
    if not have_matplotlib():
        raise CLIError("reading images needs Pillow or matplotlib (pip install 'numnet[plot]')")
    import matplotlib.image as mpimg  # noqa: PLC0415  (optional, known to be installed here)

    png_size = _png_size(path)
    if png_size is not None:
        size.check(path, *png_size)
    try:
        array = np.asarray(mpimg.imread(path), dtype=np.float64)
    except (ValueError, OSError, SyntaxError, MemoryError) as exc:
        raise CLIError(f"{path}: not a readable image ({exc})") from None
    if array.max(initial=0) > 1.0:
        array = array / 255.0
    if array.ndim == 3:
        array = array[..., :3] @ np.array([0.299, 0.587, 0.114])
    if array.ndim != 2:
        raise CLIError(f"{path}: unexpected image shape {array.shape}")
    size.check(path, array.shape[1], array.shape[0])
    return array


def _read_with_pillow(path: Path, size: Size) -> np.ndarray:
    # optional: Pillow reads more formats than matplotlib
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415

    bomb = (Image.DecompressionBombError, Image.DecompressionBombWarning)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)  # reads the header only
    except bomb as exc:
        raise CLIError(f"{path}: refused before decoding: {exc}") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise CLIError(f"{path}: not a readable image ({exc})") from None
    with image:
        size.check(path, *image.size)
        try:
            gray: np.ndarray = np.asarray(image.convert("L"), dtype=np.float64) / 255.0
        except (OSError, ValueError, MemoryError, *bomb) as exc:
            raise CLIError(f"{path}: not a readable image ({exc})") from None
    return gray


def _png_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` from a PNG's IHDR chunk, or None for another format."""
    with path.open("rb") as handle:
        head = handle.read(24)
    if len(head) < 24 or not head.startswith(b"\x89PNG\r\n\x1a\n") or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
