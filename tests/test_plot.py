"""numnet.plot: figures render to real PNG files; bad input and missing matplotlib are
clear errors."""

from __future__ import annotations

import struct
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib import _pylab_helpers  # noqa: E402  (after the importorskip)
from matplotlib.figure import Figure  # noqa: E402

from numnet import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential, plot  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def check_png(path: Path, min_bytes: int = 5000) -> tuple[int, int]:
    assert path.stat().st_size > min_bytes
    width, height = png_size(path)
    assert width > 100 and height > 100
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
    return width, height


@pytest.fixture
def digits() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 17, size=(6, 8, 8)).astype(np.uint8), np.arange(6) % 10


# ------------------------------------------------------------------------------ images


@pytest.mark.parametrize("layout", ["nhw", "n1hw", "nhw1", "flat", "rgb"])
def test_plot_images_layouts(digits, layout: str) -> None:
    images, labels = digits
    shaped = {
        "nhw": images,
        "n1hw": images[:, None],
        "nhw1": images[..., None],
        "flat": images.reshape(6, 64),
        "rgb": np.stack([images] * 3, axis=-1) / 16.0,
    }[layout]
    figure = plot.plot_images(shaped, labels, ncols=3)
    assert isinstance(figure, Figure)
    shown = [ax for ax in figure.axes if ax.images]
    assert len(shown) == 6
    expected = (8, 8, 3) if layout == "rgb" else (8, 8)
    assert shown[0].images[0].get_array().shape == expected


def test_plot_images_png(tmp_path: Path, digits) -> None:
    plot.plot_images(*digits, ncols=3, path=tmp_path / "grid.png")
    width, height = check_png(tmp_path / "grid.png", min_bytes=2000)
    assert width > height  # 3 columns, 2 rows


def test_misclassified_images_are_marked(digits) -> None:
    images, labels = digits
    predictions = labels.copy()
    predictions[3] = 5  # true label 3
    figure = plot.plot_images(images, labels, predictions)
    titles = [ax.title for ax in figure.axes[:6]]
    assert titles[3].get_text() == "pred 5 (true 3)"
    assert titles[3].get_color() == "tab:red"
    assert titles[0].get_text() == "pred 0" and titles[0].get_color() == "black"


def test_plot_images_class_names_one_hot_and_max_images(digits) -> None:
    images, labels = digits
    names = [f"c{i}" for i in range(10)]
    one_hot = np.eye(10)[labels]
    figure = plot.plot_images(images, one_hot, class_names=names, max_images=4)
    assert [ax.title.get_text() for ax in figure.axes if ax.images] == ["c0", "c1", "c2", "c3"]


@pytest.mark.parametrize(
    ("images", "kwargs", "words"),
    [
        (np.zeros((3, 50)), {}, "square number of pixels, got 50"),
        (np.zeros((3, 2, 8, 8)), {}, "expected images of shape"),
        (np.zeros((0, 8, 8)), {}, "no images"),
        (np.zeros((3, 8, 8)), {"labels": [1, 2]}, "labels must have one entry per image (3)"),
        (np.zeros((3, 8, 8)), {"ncols": 0}, "must be >= 1"),
    ],
)
def test_plot_images_errors(images, kwargs, words) -> None:
    with pytest.raises(ValueError) as info:
        plot.plot_images(images, **kwargs)
    assert words in str(info.value)


# ----------------------------------------------------------------------------- history


def test_plot_history_from_history_object(tmp_path: Path) -> None:
    history = SimpleNamespace(
        history={"loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.7],
                 "accuracy": [0.5, 0.7, 0.8], "val_accuracy": [0.45, 0.6, 0.7],
                 "lr": [0.1, 0.1, 0.05], "seconds": [1.0, 1.1, 1.0]},
        epoch=[0, 1, 2],
    )  # fmt: skip
    figure = plot.plot_history(history, path=tmp_path / "history.png")
    loss_ax, acc_ax = figure.axes
    assert loss_ax.get_title() == "loss" and acc_ax.get_title() == "accuracy"
    assert len(loss_ax.lines) == 2 and len(acc_ax.lines) == 2
    assert loss_ax.lines[0].get_xdata().tolist() == [1, 2, 3]  # epochs shown 1-based
    width, height = check_png(tmp_path / "history.png")
    assert width > height


def test_plot_history_plain_dict_loss_only() -> None:
    figure = plot.plot_history({"loss": [3.0, 2.0, 1.5, 1.2]})
    assert len(figure.axes) == 1 and len(figure.axes[0].lines) == 1


def test_plot_history_nothing_to_plot() -> None:
    with pytest.raises(ValueError, match=r"nothing to plot.*'lr'"):
        plot.plot_history({"lr": [0.1], "loss": []})
    with pytest.raises(TypeError, match="dict of lists"):
        plot.plot_history([1.0, 2.0])


# -------------------------------------------------------------------- confusion matrix


def test_plot_confusion_matrix(tmp_path: Path) -> None:
    cm = np.array([[50, 2, 0], [3, 40, 7], [0, 0, 0]])
    figure = plot.plot_confusion_matrix(cm, class_names=["a", "b", "c"],
                                        path=tmp_path / "cm.png")
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.texts][:3] == ["50", "2", "0"]
    assert len(ax.texts) == 9
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    check_png(tmp_path / "cm.png")


def test_plot_confusion_matrix_normalized_rows() -> None:
    cm = np.array([[3, 1], [0, 0]])
    figure = plot.plot_confusion_matrix(cm, normalize=True)
    assert [t.get_text() for t in figure.axes[0].texts] == ["0.75", "0.25", "0.00", "0.00"]


@pytest.mark.parametrize(
    ("cm", "kwargs", "words"),
    [
        (np.zeros((2, 3)), {}, "square"),
        (np.array([[1, -1], [0, 1]]), {}, "non-negative"),
        (np.eye(2), {"class_names": ["a"]}, "1 class names for a 2x2 matrix"),
    ],
)
def test_plot_confusion_matrix_errors(cm, kwargs, words) -> None:
    with pytest.raises(ValueError) as info:
        plot.plot_confusion_matrix(cm, **kwargs)
    assert words in str(info.value)


# ------------------------------------------------------------------------------ saving


def test_no_pyplot_figures_are_created(digits) -> None:
    before = _pylab_helpers.Gcf.get_num_fig_managers()
    plot.plot_images(*digits)
    plot.plot_confusion_matrix(np.eye(3))
    assert _pylab_helpers.Gcf.get_num_fig_managers() == before


def test_save_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        plot.plot_confusion_matrix(np.eye(2), path=tmp_path / "missing" / "cm.png")
    with pytest.raises(ValueError, match="unknown format 'xyz'"):
        plot.plot_confusion_matrix(np.eye(2), path=tmp_path / "cm.xyz")
    assert list(tmp_path.iterdir()) == []


def test_svg_by_suffix(tmp_path: Path) -> None:
    plot.plot_confusion_matrix(np.eye(2), path=tmp_path / "cm.svg")
    assert b"<svg" in (tmp_path / "cm.svg").read_bytes()[:1000]


def test_missing_matplotlib_message(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)  # every import of it now fails
    with pytest.raises(ImportError, match=r"pip install 'numnet\[plot\]'"):
        plot.plot_history({"loss": [1.0]})


# ------------------------------------------------------------ convolutional networks


def conv_model():
    return Sequential([Conv2D(1, 6, 3), ReLU(), MaxPool2D(2), Conv2D(6, 4, 3, padding=1),
                       ReLU(), Flatten(), Dense(4 * 3 * 3, 3)],
                      loss="cross_entropy", input_shape=(1, 8, 8), seed=0)


def test_filters_of_a_first_layer_one_tile_per_output_channel(tmp_path: Path) -> None:
    layer = conv_model().layers[0]
    figure = plot.filters(layer, path=tmp_path / "filters.png", ncols=4)
    check_png(tmp_path / "filters.png", min_bytes=2000)
    tiles = [ax for ax in figure.axes if ax.images and ax.get_title()]
    assert [ax.get_title() for ax in tiles] == [str(o) for o in range(6)]
    assert len(figure.axes) == 6 + 1  # six tiles (the empty cells of the grid removed), a bar
    weights = layer.params["W"]
    limit = float(np.abs(weights).max())
    for o, ax in enumerate(tiles):
        np.testing.assert_allclose(ax.images[0].get_array(), weights[o, 0], rtol=1e-6)
        assert ax.images[0].get_clim() == pytest.approx((-limit, limit))  # 0 in the middle


def test_filters_of_a_deeper_layer_are_one_mosaic_of_every_kernel() -> None:
    layer = conv_model().layers[3]  # 6 -> 4 channels, 3x3
    figure = plot.filters(layer)
    (image_ax,) = [ax for ax in figure.axes if ax.images]
    mosaic = np.asarray(image_ax.images[0].get_array())
    assert mosaic.shape == (4 * 4 - 1, 6 * 4 - 1)  # a blank line between kernels
    weights = layer.params["W"]
    for o in range(4):
        for c in range(6):
            np.testing.assert_allclose(mosaic[4 * o:4 * o + 3, 4 * c:4 * c + 3],
                                       weights[o, c], rtol=1e-6)
    assert np.isnan(mosaic[3]).all() and np.isnan(mosaic[:, 3]).all()
    limit = float(np.abs(weights).max())
    assert image_ax.images[0].get_clim() == pytest.approx((-limit, limit))
    assert image_ax.get_xlabel() == "input channel" and image_ax.get_ylabel() == "output channel"
    assert len(figure.axes) == 2  # the mosaic and its colour bar


def test_filters_of_an_rgb_layer_are_colour_tiles_around_grey() -> None:
    layer = Conv2D(3, 5, 2, seed=0)
    figure = plot.filters(layer)
    assert len(figure.axes) == 5  # colour tiles, no colour bar
    weights = layer.params["W"]
    limit = float(np.abs(weights).max())
    shown = np.asarray(figure.axes[2].images[0].get_array())
    np.testing.assert_allclose(shown, 0.5 + weights[2].transpose(1, 2, 0) / (2 * limit),
                               rtol=1e-6)
    assert shown.min() >= 0 and shown.max() <= 1


def test_feature_maps_show_each_conv_output_for_one_image(tmp_path: Path) -> None:
    model = conv_model()
    image = np.random.default_rng(0).random((1, 8, 8))
    figure = plot.feature_maps(model, image, path=tmp_path / "maps.png")
    check_png(tmp_path / "maps.png", min_bytes=2000)
    parts = figure.subfigs
    assert [part._suptitle.get_text() for part in parts] == [
        "input", "layer 0 Conv2D: 6 channels 6x6", "layer 3 Conv2D: 4 channels 3x3"]
    assert len(parts[1].axes) == 6 + 1 and len(parts[2].axes) == 4 + 1  # tiles + bar
    first = model.layers[0].forward(image[None].astype(np.float32))[0]
    np.testing.assert_allclose(parts[1].axes[2].images[0].get_array(), first[2], rtol=1e-5)
    # a batch of one is the same; the model is left as it was (same predictions)
    before = model.predict_logits(image[None])
    again = plot.feature_maps(model, image[None], max_channels=2)
    assert len(again.subfigs[1].axes) == 2 + 1
    np.testing.assert_array_equal(model.predict_logits(image[None]), before)


def test_cnn_plot_errors() -> None:
    model = conv_model()
    with pytest.raises(TypeError, match="expected a Conv2D layer"):
        plot.filters(Dense(2, 3))
    with pytest.raises(ValueError, match=r"one sample .*\(1, 8, 8\).*got shape \(2, 1, 8, 8\)"):
        plot.feature_maps(model, np.zeros((2, 1, 8, 8)))
    with pytest.raises(ValueError, match="add it with x\\[:, None\\]"):
        plot.feature_maps(model, np.zeros((8, 8)))
    with pytest.raises(ValueError, match="no Conv2D layer"):
        plot.feature_maps(Sequential([Dense(4, 2)]), np.zeros(4))
