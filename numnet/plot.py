"""Plots: sample images, training curves, confusion matrices, and what a convolutional
network learned (its filters, and the feature maps of one image).

matplotlib is optional (``pip install numnet[plot]``) and imported only when a function
here is called. Figures are built with :class:`matplotlib.figure.Figure` on the Agg
canvas directly, never through :mod:`matplotlib.pyplot`: nothing touches pyplot's global
state, no window opens, and it works headless. Each function returns the ``Figure``;
given ``path`` it also saves it (PNG unless the suffix names another format matplotlib
writes, e.g. ``.svg`` or ``.pdf``) atomically: a temporary file renamed into place.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from numnet._files import PathLike, atomic_write
from numnet.layers.conv import Conv2D

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure, SubFigure

    from numnet.model import Sequential

__all__ = ["feature_maps", "filters", "plot_confusion_matrix", "plot_history", "plot_images"]

_WRONG = "tab:red"
_RIGHT = "black"


def _new_figure(figsize: tuple[float, float]) -> Figure:
    """A Figure attached to an Agg canvas, or an ImportError saying how to get matplotlib."""
    try:  # matplotlib is optional: imported when a plot is asked for, not with numnet
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
        from matplotlib.figure import Figure  # noqa: PLC0415
    except ImportError as err:
        raise ImportError(
            "numnet.plot needs matplotlib, which is not installed: "
            "pip install 'numnet[plot]' (or pip install matplotlib)"
        ) from err
    figure = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _finish(figure: Figure, path: PathLike | None, dpi: int = 100) -> Figure:
    """Save ``figure`` atomically when a path is given; return it."""
    if path is not None:
        path = Path(path)
        fmt = path.suffix.lstrip(".").lower() or "png"
        supported = figure.canvas.get_supported_filetypes()
        if fmt not in supported:
            raise ValueError(
                f"cannot save a plot as {path}: unknown format {fmt!r}; "
                f"use one of {', '.join(sorted(supported))}"
            )
        with atomic_write(path) as handle:
            figure.savefig(handle, format=fmt, dpi=dpi)
    return figure


# ------------------------------------------------------------------------------ images


def _image_stack(images: np.ndarray) -> np.ndarray:
    """(N, H, W) grayscale or (N, H, W, 3|4) colour, from the layouts numnet uses."""
    images = np.asarray(images)
    if images.ndim == 2:  # (N, H*W) flattened
        side = math.isqrt(images.shape[1])
        if side * side != images.shape[1]:
            raise ValueError(
                f"plot_images: flattened images need a square number of pixels, got "
                f"{images.shape[1]} per image (shape {images.shape}); reshape to (N, H, W)"
            )
        return images.reshape(-1, side, side)
    if images.ndim == 3:
        return images
    if images.ndim == 4:
        if images.shape[1] in (1, 3, 4) and images.shape[-1] not in (1, 3, 4):
            images = np.moveaxis(images, 1, -1)  # channels first -> last
        if images.shape[-1] == 1:
            return images[..., 0]
        if images.shape[-1] in (3, 4):
            return images
    raise ValueError(
        f"plot_images: expected images of shape (N, H, W), (N, 1, H, W), (N, H, W, C) or "
        f"(N, H*W), got {images.shape}"
    )


def _class_indices(values: Any, n: int, name: str) -> np.ndarray | None:
    """1-D class indices (one-hot rows or scores are reduced by argmax), length ``n``."""
    if values is None:
        return None
    indices = np.asarray(values)
    if indices.ndim == 2:
        indices = np.asarray(indices.argmax(axis=1))
    if indices.ndim != 1 or indices.shape[0] != n:
        raise ValueError(
            f"plot_images: {name} must have one entry per image ({n}), got shape {indices.shape}"
        )
    return indices


def _caption(
    label: Any, prediction: Any, class_names: Sequence[str] | None
) -> tuple[str, str]:
    """Title and colour of one image: misclassified ones in red, with the truth."""

    def name(k: Any) -> str:
        return str(class_names[int(k)]) if class_names is not None else str(k)

    if prediction is None:
        return (name(label) if label is not None else ""), _RIGHT
    if label is None:
        return f"pred {name(prediction)}", _RIGHT
    if prediction == label:
        return f"pred {name(prediction)}", _RIGHT
    return f"pred {name(prediction)} (true {name(label)})", _WRONG


def plot_images(
    images: np.ndarray,
    labels: np.ndarray | None = None,
    predictions: np.ndarray | None = None,
    ncols: int = 10,
    max_images: int = 100,
    path: PathLike | None = None,
    class_names: Sequence[str] | None = None,
    cmap: str = "gray",
) -> Figure:
    """A grid of images, titled with their labels and predictions.

    Parameters
    ----------
    images : array_like
        Shape ``(N, H, W)``, ``(N, 1, H, W)``, ``(N, H, W, C)`` or flattened
        ``(N, H*W)`` with square images.
    labels, predictions : array_like, optional
        Class indices, shape ``(N,)`` (one-hot rows or class scores are reduced with
        argmax). With both, a misclassified image gets a red title
        ``"pred 3 (true 5)"``.
    ncols : int, default 10
        Images per row.
    max_images : int, default 100
        Show at most the first ``max_images``.
    path : str or os.PathLike, optional
        Save the figure there (PNG), atomically.
    class_names : sequence of str, optional
        Names to show instead of class indices.
    cmap : str, default "gray"
        Colour map of grayscale images.

    Returns
    -------
    matplotlib.figure.Figure
    """
    stack = _image_stack(images)
    n_all = stack.shape[0]
    if n_all == 0:
        raise ValueError("plot_images: no images to plot (N = 0)")
    labels = _class_indices(labels, n_all, "labels")
    predictions = _class_indices(predictions, n_all, "predictions")
    if ncols < 1 or max_images < 1:
        raise ValueError(
            f"plot_images: ncols and max_images must be >= 1, got {ncols} and {max_images}"
        )
    n = min(n_all, max_images)
    shown = stack[:n]
    cols = min(ncols, n)
    rows = math.ceil(n / cols)
    titled = labels is not None or predictions is not None
    figure = _new_figure((1.2 * cols, (1.45 if titled else 1.2) * rows))
    axes = figure.subplots(rows, cols, squeeze=False)
    # One colour scale for all images, so that brightness compares across the grid.
    low, high = float(shown.min()), float(shown.max())
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        ax.imshow(shown[i], cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
        if titled:
            text, colour = _caption(
                None if labels is None else labels[i],
                None if predictions is None else predictions[i],
                class_names,
            )
            ax.set_title(text, color=colour, fontsize=8)
    return _finish(figure, path)


# ----------------------------------------------------------------------------- history


def _series(values: Sequence[float]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def plot_history(history: Any, path: PathLike | None = None) -> Figure:
    """Training curves: loss (train and validation) and, when recorded, accuracy.

    Parameters
    ----------
    history : History or mapping
        An object with ``history`` (a dict of lists, Keras-style keys ``"loss"``,
        ``"val_loss"``, ``"accuracy"``, ``"val_accuracy"``, any of which may be missing)
        and ``epoch`` (list of 0-based epoch numbers), or such a dict directly.
        Other keys (``"lr"``, ``"seconds"``, ...) are ignored.
    path : str or os.PathLike, optional
        Save the figure there (PNG), atomically.

    Returns
    -------
    matplotlib.figure.Figure
        One panel for the loss and one for the accuracy (when present).

    Raises
    ------
    ValueError
        When there is neither a loss nor an accuracy to plot.
    """
    records = getattr(history, "history", history)
    if not isinstance(records, Mapping):
        raise TypeError(
            "plot_history: expected a History (with a .history dict) or a dict of lists, "
            f"got {type(history).__name__}"
        )
    epochs = getattr(history, "epoch", None)
    panels = [
        ("loss", [("loss", "train"), ("val_loss", "validation")]),
        ("accuracy", [("accuracy", "train"), ("val_accuracy", "validation"),
                      ("acc", "train"), ("val_acc", "validation")]),
    ]  # fmt: skip
    panels = [(t, [(k, lab) for k, lab in keys if len(records.get(k) or ())]) for t, keys in panels]
    panels = [(t, keys) for t, keys in panels if keys]
    if not panels:
        raise ValueError(
            "plot_history: nothing to plot: no 'loss', 'val_loss', 'accuracy' or "
            f"'val_accuracy' values (keys: {sorted(records)})"
        )
    figure = _new_figure((5.0 * len(panels), 3.6))
    # optional matplotlib, known to be installed once _new_figure succeeded
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, keys) in zip(axes, panels, strict=True):
        for key, label in keys:
            y = _series(records[key])
            x = _epoch_axis(epochs, len(y))
            ax.plot(x, y, marker="o" if len(y) <= 30 else None, markersize=3, label=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
    return _finish(figure, path)


def _epoch_axis(epochs: Sequence[int] | None, n: int) -> np.ndarray:
    """1-based epoch numbers: from ``History.epoch`` when it matches, else 1..n."""
    if epochs is not None and len(epochs) == n:
        return np.asarray(epochs, dtype=np.float64) + 1
    return np.arange(1, n + 1, dtype=np.float64)


# -------------------------------------------------------------------- confusion matrix


def plot_confusion_matrix(
    cm: np.ndarray,
    class_names: Sequence[str] | None = None,
    normalize: bool = False,
    path: PathLike | None = None,
    annotate: bool | None = None,
) -> Figure:
    """A confusion matrix as a heat map with annotated cells.

    Parameters
    ----------
    cm : array_like, shape (K, K)
        Counts; rows are true classes, columns predicted classes.
    class_names : sequence of K str, optional
        Tick labels (default 0..K-1).
    normalize : bool, default False
        Show each row as fractions of its total (recall on the diagonal); empty rows
        stay 0.
    path : str or os.PathLike, optional
        Save the figure there (PNG), atomically.
    annotate : bool, optional
        Write the value in each cell; default: when K <= 30.

    Returns
    -------
    matplotlib.figure.Figure
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"plot_confusion_matrix: expected a square (K, K) matrix, got {cm.shape}")
    if cm.dtype.kind not in "iuf" or not np.isfinite(cm).all() or (cm < 0).any():
        raise ValueError("plot_confusion_matrix: expected finite non-negative counts")
    k = cm.shape[0]
    if class_names is not None and len(class_names) != k:
        raise ValueError(
            f"plot_confusion_matrix: {len(class_names)} class names for a {k}x{k} matrix"
        )
    names = [str(c) for c in class_names] if class_names is not None else [str(i) for i in range(k)]
    values = cm.astype(np.float64)
    if normalize:
        totals = values.sum(axis=1, keepdims=True)
        values = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
    side = max(4.0, 0.45 * k + 2.5)
    figure = _new_figure((side + 1.0, side))
    ax = figure.subplots()
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else None)
    figure.colorbar(image, ax=ax)
    ax.set_xticks(range(k), names, rotation=45 if max(map(len, names)) > 2 else 0, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("confusion matrix" + (" (normalised by row)" if normalize else ""))
    if annotate if annotate is not None else k <= 30:
        _annotate(ax, values, normalize)
    return _finish(figure, path)


def _annotate(ax: Any, values: np.ndarray, normalize: bool) -> None:
    """Write each cell's value, white on dark cells."""
    threshold = 0.5 * (values.max() if values.size else 0.0)
    for (i, j), v in np.ndenumerate(values):  # K*K text labels: a plot, not a hot path
        text = f"{v:.2f}" if normalize else f"{v:.0f}"
        colour = "white" if v > threshold else "black"
        ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=8)


# ------------------------------------------------------------ convolutional networks

#: a diverging colour map: weights and activations around 0 show as white, positive red
_DIVERGING = "RdBu_r"


def _symmetric_limit(values: np.ndarray) -> float:
    """``max |values|`` (1 for all zeros): a colour scale ``[-m, m]`` puts 0 in its middle."""
    limit = float(np.abs(values).max(initial=0.0))
    return limit if limit > 0 else 1.0


def _kernels(layer: Any) -> tuple[np.ndarray, str]:
    """A Conv2D layer's weights (out, in, kh, kw) as float64, and a name for titles."""
    weight = getattr(layer, "params", {}).get("W") if hasattr(layer, "params") else None
    if weight is None or np.ndim(weight) != 4:
        raise TypeError(f"filters: expected a Conv2D layer (weights of shape (out, in, kh, "
                        f"kw)), got {layer!r}")
    return np.asarray(weight, dtype=np.float64), repr(layer)


def _grid(n: int, ncols: int) -> tuple[int, int]:
    """Rows and columns of a grid of ``n`` tiles, at most ``ncols`` wide."""
    cols = max(1, min(ncols, n))
    return math.ceil(n / cols), cols


def _tiles(parent: Figure | SubFigure, n: int, ncols: int) -> list[Any]:
    """``n`` axes in a grid (the unused cells of the last row removed), without ticks."""
    rows, cols = _grid(n, ncols)
    axes = list(parent.subplots(rows, cols, squeeze=False).flat)
    for ax in axes[n:]:
        ax.remove()
    for ax in axes[:n]:
        ax.set_xticks([])
        ax.set_yticks([])
    return axes[:n]


def _mosaic(kernels: np.ndarray) -> np.ndarray:
    """``(out, in, kh, kw)`` kernels as one image: row ``o``, column ``c`` holds kernel
    ``(o, c)``, with a NaN (blank) line between neighbours."""
    out, inp, kh, kw = kernels.shape
    padded = np.full((out, kh + 1, inp, kw + 1), np.nan)
    padded[:, :kh, :, :kw] = kernels.transpose(0, 2, 1, 3)
    return padded.reshape(out * (kh + 1), inp * (kw + 1))[:-1, :-1]


def filters(layer: Any, path: PathLike | None = None, ncols: int = 8) -> Figure:
    """The kernels of a :class:`~numnet.layers.Conv2D` layer, as a grid of small images.

    The colour scale is symmetric around 0 and shared by every kernel (white is 0, red
    positive, blue negative), so kernels compare with each other and a sign is visible.

    * One input channel (a first layer on grey images): one tile per output channel, its
      ``kh x kw`` kernel, in a grid ``ncols`` wide, with a colour bar.
    * Three input channels (a first layer on RGB images): one colour tile per output
      channel, each colour channel mapped from ``[-m, m]`` to ``[0, 1]`` (grey is 0).
    * Otherwise: one tile per ``(output, input)`` kernel, drawn as a single mosaic whose
      row ``o`` and column ``c`` hold the kernel from input channel ``c`` to output channel
      ``o`` (a 32 -> 64 layer has 2,048 kernels: one image draws them at once).

    Parameters
    ----------
    layer : Conv2D
        Any layer with a 4-D weight ``params["W"]`` of shape ``(out, in, kh, kw)``.
    path : str or os.PathLike, optional
        Save the figure there (PNG unless the suffix says otherwise), atomically.
    ncols : int, default 8
        Tiles per row of the grid (one or three input channels).

    Returns
    -------
    matplotlib.figure.Figure
    """
    kernels, name = _kernels(layer)
    if ncols < 1:
        raise ValueError(f"filters: ncols must be >= 1, got {ncols}")
    out, inp, kh, kw = kernels.shape
    limit = _symmetric_limit(kernels)
    if inp in (1, 3):
        rows, cols = _grid(out, ncols)
        figure = _new_figure((1.0 * cols + (1.0 if inp == 1 else 0.2), 1.0 * rows + 0.6))
        image = None
        for o, ax in enumerate(_tiles(figure, out, ncols)):
            if inp == 1:
                image = ax.imshow(kernels[o, 0], cmap=_DIVERGING, vmin=-limit, vmax=limit,
                                  interpolation="nearest")
            else:  # (3, kh, kw) -> (kh, kw, 3) in [0, 1], 0.5 for a zero weight
                ax.imshow(0.5 + kernels[o].transpose(1, 2, 0) / (2 * limit),
                          interpolation="nearest")
            ax.set_title(str(o), fontsize=7)
        if image is not None:
            figure.colorbar(image, ax=figure.axes, shrink=0.8)
        figure.suptitle(f"{name}: {out} filters {kh}x{kw}", fontsize=9)
        return _finish(figure, path)
    mosaic = _mosaic(kernels)
    height = min(12.0, max(3.0, 0.12 * mosaic.shape[0]))
    width = min(16.0, max(3.0, height * mosaic.shape[1] / mosaic.shape[0] + 1.5))
    figure = _new_figure((width, height))
    ax = figure.subplots()
    image = ax.imshow(mosaic, cmap=_DIVERGING, vmin=-limit, vmax=limit,
                      interpolation="nearest")
    step_h, step_w = kh + 1, kw + 1
    ax.set_xticks(_tick_positions(inp, step_w, kw), [str(c) for c in _tick_labels(inp)])
    ax.set_yticks(_tick_positions(out, step_h, kh), [str(o) for o in _tick_labels(out)])
    ax.tick_params(labelsize=7, length=0)
    ax.set_xlabel("input channel")
    ax.set_ylabel("output channel")
    ax.set_title(f"{name}: {out} x {inp} kernels {kh}x{kw}", fontsize=9)
    figure.colorbar(image, ax=ax, shrink=0.8)
    return _finish(figure, path)


def _tick_labels(n: int) -> list[int]:
    """At most about 16 channel numbers to label: every one, or every k-th."""
    step = max(1, math.ceil(n / 16))
    return list(range(0, n, step))


def _tick_positions(n: int, step: int, size: int) -> list[float]:
    """Centre of each labelled tile along an axis of the mosaic."""
    return [i * step + (size - 1) / 2 for i in _tick_labels(n)]


def feature_maps(model: Sequential, x: Any, path: PathLike | None = None,
                 ncols: int = 8, max_channels: int | None = None) -> Figure:
    """What each :class:`~numnet.layers.Conv2D` layer of ``model`` outputs for one image.

    The image runs through the model in evaluation mode (the model is not changed); the
    figure shows the image, then one grid per convolution layer: a tile per output channel,
    on a colour scale symmetric around 0 shared within the layer (white is 0, red positive:
    what a ReLU after it passes on).

    Parameters
    ----------
    model : Sequential
        A model with at least one Conv2D layer.
    x : array_like
        One sample, in the model's per-sample input shape (e.g. ``(1, 28, 28)``, or
        ``(784,)`` for a model that starts with ``Reshape``), or a batch of one sample.
    path : str or os.PathLike, optional
        Save the figure there (PNG unless the suffix says otherwise), atomically.
    ncols : int, default 8
        Tiles per row of each layer's grid.
    max_channels : int, optional
        Show at most this many channels of each layer (default: all).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if ncols < 1 or (max_channels is not None and max_channels < 1):
        raise ValueError(f"feature_maps: ncols and max_channels must be >= 1, got {ncols} "
                         f"and {max_channels}")
    image, maps = _conv_outputs(model, x)
    shown = [(name, out[:max_channels]) for name, out in maps]
    heights = [1.6] + [1.0 * _grid(out.shape[0], ncols)[0] + 0.5 for _, out in shown]
    width = 1.0 * max(_grid(out.shape[0], ncols)[1] for _, out in shown) + 1.2
    figure = _new_figure((max(width, 3.0), sum(heights)))
    parts = figure.subfigures(len(shown) + 1, 1, height_ratios=heights, squeeze=False)[:, 0]
    ax = parts[0].subplots()
    ax.imshow(image, cmap="gray", interpolation="nearest")
    ax.set_axis_off()
    parts[0].suptitle("input", fontsize=9)
    for part, (name, out) in zip(parts[1:], shown, strict=True):
        limit = _symmetric_limit(out)
        picture = None
        for c, tile in enumerate(_tiles(part, out.shape[0], ncols)):
            picture = tile.imshow(out[c], cmap=_DIVERGING, vmin=-limit, vmax=limit,
                                  interpolation="nearest")
            tile.set_title(str(c), fontsize=7)
        part.colorbar(picture, ax=part.axes, shrink=0.8)
        part.suptitle(name, fontsize=9)
    return _finish(figure, path)


def _conv_outputs(model: Sequential, x: Any) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """The image the first convolution sees (for display) and each convolution's output
    ``(C, H, W)`` for the one sample ``x``, computed on a copy of the model in evaluation
    mode."""
    sample = np.asarray(x)
    expected = model.input_shape
    rank = 3 if expected is None else len(expected)
    if sample.ndim == rank + 1 and sample.shape[0] != 1:
        raise ValueError(f"feature_maps: x must be one sample (per-sample shape "
                         f"{'(C, H, W)' if expected is None else tuple(expected)}) or a batch "
                         f"of one, got shape {sample.shape}")
    # anything else that is not a batch of one is taken as one sample: the model's boundary
    # check then says what is wrong with it (a missing channel axis, say)
    batch = sample if sample.ndim == rank + 1 else sample[np.newaxis]
    if not any(isinstance(layer, Conv2D) for layer in model.layers):
        raise ValueError("feature_maps: the model has no Conv2D layer")
    copy_ = copy.deepcopy(model)
    out = copy_._input(batch)  # checked and converted at the model's boundary
    image: np.ndarray | None = None
    maps = []
    for index, layer in enumerate(copy_.layers):
        if isinstance(layer, Conv2D) and image is None:
            image = _display_image(out[0])
        out = layer.forward(out, training=False)
        if isinstance(layer, Conv2D):
            c, h, w = out.shape[1:]
            maps.append((f"layer {index} Conv2D: {c} channels {h}x{w}",
                         np.asarray(out[0], dtype=np.float64)))
    assert image is not None
    return image, maps


def _display_image(x: np.ndarray) -> np.ndarray:
    """A ``(C, H, W)`` input as something ``imshow`` draws: grey, or RGB scaled to [0, 1]."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] == 3:
        low, high = float(x.min()), float(x.max())
        rgb: np.ndarray = (x.transpose(1, 2, 0) - low) / (high - low if high > low else 1.0)
        return rgb
    grey: np.ndarray = x.mean(axis=0)
    return grey
