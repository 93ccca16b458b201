"""The ``cnn`` preset of ``numnet train``, and every command on the model it saves."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import PNG_MAGIC, assert_error, digits_raw, ok, run

from numnet import io
from numnet.cli import build_model
from numnet.data import preprocessing_from_config
from numnet.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Tanh


def layer_names(model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


def test_cnn_is_the_issue_network_on_28x28_images() -> None:
    model = build_model("cnn", 784, 10, image_shape=[28, 28])
    assert model.input_shape == (1, 28, 28)
    assert layer_names(model) == ["Conv2D", "ReLU", "MaxPool2D", "Conv2D", "ReLU", "MaxPool2D",
                                  "Flatten", "Dense", "ReLU", "Dense"]
    convs = [layer for layer in model.layers if isinstance(layer, Conv2D)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == \
        [(1, 32, (3, 3), "valid"), (32, 64, (3, 3), "valid")]
    dense = [layer for layer in model.layers if isinstance(layer, Dense)]
    assert [(d.in_features, d.out_features) for d in dense] == [(1600, 128), (128, 10)]
    assert model.num_params == 225034
    assert all(isinstance(layer, MaxPool2D) and layer.kernel_size == (2, 2)
               for layer in model.layers[2:6:3])
    same = build_model("cnn:32,64,128", 784, 10, image_shape=[28, 28])
    np.testing.assert_array_equal(same.flat_params, model.flat_params)


@pytest.mark.parametrize(("spec", "image", "convs", "padding", "dense"), [
    ("cnn:16,32", [28, 28], [16], "valid", (16 * 13 * 13, 32)),  # one block
    ("cnn:8,16,32,64", [28, 28], [8, 16, 32], "same", (32 * 3 * 3, 64)),  # 28 -> 14 -> 7 -> 3
    ("cnn", [8, 8], [32, 64], "same", (64 * 2 * 2, 128)),        # the digits: 8 -> 4 -> 2
    ("cnn:4,8", [12, 10], [4], "valid", (4 * 5 * 4, 8)),         # not square
])
def test_cnn_widths_and_padding_follow_the_image_size(spec, image, convs, padding, dense):
    model = build_model(spec, int(np.prod(image)), 3, image_shape=image)
    found = [layer for layer in model.layers if isinstance(layer, Conv2D)]
    assert [c.out_channels for c in found] == convs
    assert {c.padding for c in found} == {padding}
    first = next(layer for layer in model.layers if isinstance(layer, Dense))
    assert (first.in_features, first.out_features) == dense
    assert model.output_shape() == (3,)


def test_cnn_activation_dropout_and_square_csv_rows() -> None:
    model = build_model("cnn:4,6", 100, 2, activation="tanh", dropout=0.25)  # 10x10 rows
    assert model.input_shape == (1, 10, 10)
    assert layer_names(model) == ["Conv2D", "Tanh", "MaxPool2D", "Flatten", "Dense", "Tanh",
                                  "Dropout", "Dense"]
    assert isinstance(model.layers[1], Tanh) and isinstance(model.layers[6], Dropout)
    assert not any(isinstance(layer, (ReLU, Flatten)) for layer in model.layers[:3])


def test_train_cnn_on_digits_with_plots(cnn_trained: dict) -> None:
    out = ok(cnn_trained["result"])
    assert ("Conv2D(in_channels=1, out_channels=4, kernel_size=3, padding='same', "
            "init='he_normal')") in out
    assert "(N, 4, 8, 8)" in out and "(N, 8, 2, 2)" in out
    # --batch-size given; the rest of the recipe: a constant rate, the weights averaged
    assert "batch size 32, weights averaged (decay 0.999)" in out and "CosineDecay" not in out
    assert float(re.search(r"test accuracy: ([\d.]+)%", out).group(1)) > 80
    folder = cnn_trained["dir"]
    for name in ("numnet-history.png", "numnet-history-filters.png"):
        assert (folder / name).read_bytes()[:8] == PNG_MAGIC
    assert "saved the first convolution's filters to" in out
    model = io.load(cnn_trained["model"])
    assert model.input_shape == (1, 8, 8)
    assert io.load_metadata(cnn_trained["model"])["image_shape"] == [8, 8]


def test_cnn_model_evaluates_like_training_said(cnn_trained: dict, tmp_path: Path) -> None:
    trained = re.search(r"test accuracy: ([\d.]+)%", cnn_trained["result"].stdout).group(1)
    out = ok(run("evaluate", cnn_trained["model"], cwd=tmp_path))
    assert f"accuracy: {trained}%" in out and "confusion matrix" in out


def test_cnn_model_predicts_csv_npy_and_png(cnn_trained: dict, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.image as mpimg  # noqa: PLC0415  (optional)

    X, _ = digits_raw(6)
    model = io.load(cnn_trained["model"])
    scaling = preprocessing_from_config(io.load_metadata(cnn_trained["model"])["preprocessing"])
    expected = model.predict(scaling.transform(X).reshape(6, 1, 8, 8))
    np.savetxt(tmp_path / "rows.csv", X, delimiter=",", fmt="%d")
    inputs = {"rows.csv": expected}
    for name, array, labels in [("flat.npy", X, expected),
                                ("images.npy", X.reshape(6, 8, 8), expected),
                                ("nchw.npy", X.reshape(6, 1, 8, 8), expected),
                                ("one.npy", X[0].reshape(8, 8), expected[:1])]:
        np.save(tmp_path / name, array)
        inputs[name] = labels
    for name, labels in inputs.items():
        out = ok(run("predict", cnn_trained["model"], tmp_path / name, cwd=tmp_path))
        got = [int(line.split(",")[1]) for line in out.strip().splitlines()[1:]]
        assert got == list(labels), name
    pngs = []
    for i in range(3):
        pngs.append(tmp_path / f"digit{i}.png")
        mpimg.imsave(pngs[-1], X[i].reshape(8, 8) / 16.0, cmap="gray", vmin=0, vmax=1)
    out = ok(run("predict", cnn_trained["model"], *pngs, "--proba", cwd=tmp_path))
    lines = out.strip().splitlines()
    assert lines[0].startswith("file,label,p_0")
    assert [int(line.split(",")[1]) for line in lines[1:]] == list(expected[:3])


def test_cnn_model_summary_trace_and_gradcheck(cnn_trained: dict, tmp_path: Path) -> None:
    out = ok(run("summary", cnn_trained["model"], cwd=tmp_path))
    assert "Conv2D" in out and "(N, 8, 4, 4)" in out and "trained on: digits" in out
    out = ok(run("trace", cnn_trained["model"], "--batch-size", "5", cwd=tmp_path))
    assert "(5, 1, 8, 8)" in out and "0 Conv2D d/dW" in out
    out = ok(run("gradcheck", cnn_trained["model"], "--batch-size", "2", cwd=tmp_path))
    assert "2 MaxPool2D" in out and "all passed" in out


def test_cnn_preset_errors(tmp_path: Path) -> None:
    for spec in ("cnn:8", "cnn:0,8", "cnn:a,b", "cnn:8,"):
        assert_error(run("train", "--model", spec, cwd=tmp_path), f"--model '{spec}'",
                     "cnn:32,64,128")
    assert_error(run("train", "--model", "cnn:2,2,2,2,8", cwd=tmp_path),
                 "8x8 images are too small for 4 conv blocks", "use at most 3")
    rows = tmp_path / "rows.csv"
    rows.write_text("".join(f"{i % 2},{i},{i * 2},{i + 1}\n" for i in range(40)))
    assert_error(run("train", "--data", rows, "--model", "cnn", cwd=tmp_path),
                 "3 features per sample, not a square number of pixels")
    assert_error(run("train", "--model", "cnn:2,4", "--out", "numnet-history-filters.png",
                     "--plot", "on", cwd=tmp_path),
                 "--plot on: the filter grid would be written to numnet-history-filters.png, "
                 "which is "
                 "the --out file")
    assert list(tmp_path.iterdir()) == [rows]


def test_summary_and_gradcheck_ask_an_image_architecture_for_image_axes(tmp_path: Path) -> None:
    arch = tmp_path / "cnn.json"
    arch.write_text('{"layers": [{"type": "numnet.Conv2D", "config": {"in_channels": 1, '
                    '"out_channels": 2, "kernel_size": 3}}, {"type": "numnet.ReLU"}, '
                    '{"type": "numnet.MaxPool2D", "config": {"kernel_size": 2}}, '
                    '{"type": "numnet.Flatten"}], "loss": null}')
    for command in ("summary", "gradcheck"):
        assert_error(run(command, arch, cwd=tmp_path), "--input-shape 1,28,28")
    out = ok(run("gradcheck", arch, "--input-shape", "1,7,7", cwd=tmp_path))
    assert "2 MaxPool2D" in out and "all passed" in out  # max pool after ReLU: no ties


def mnist_subset_csv(mnist_dir: Path, path: Path, n: int, offset: int = 0) -> np.ndarray:
    """``n`` MNIST training images as CSV rows: label, then 784 pixels 0..255."""
    with gzip.open(mnist_dir / "train-images-idx3-ubyte.gz") as handle:
        handle.read(16 + 784 * offset)
        pixels = np.frombuffer(handle.read(784 * n), np.uint8).reshape(n, 784)
    with gzip.open(mnist_dir / "train-labels-idx1-ubyte.gz") as handle:
        handle.read(8 + offset)
        labels = np.frombuffer(handle.read(n), np.uint8)
    np.savetxt(path, np.column_stack([labels, pixels]), delimiter=",", fmt="%d")
    return pixels


def test_issue_network_on_an_mnist_subset_csv(tmp_path: Path, mnist_dir: Path) -> None:
    """The issue's network from a CSV of 28x28 MNIST rows, then every command on it."""
    mnist_subset_csv(mnist_dir, tmp_path / "mnist.csv", 1500)
    out = ok(run("train", "--data", "mnist.csv", "--model", "cnn", "--epochs", "2",
                 "--val-split", "0", "--plot", "off", cwd=tmp_path, timeout=300))
    assert "batch size 128, weights averaged (decay 0.999)" in out  # the recipe
    accuracy = float(re.search(r"test accuracy: ([\d.]+)%", out).group(1))
    assert accuracy > 50  # chance is 10%: 1,200 images, 2 x 10 steps
    model = io.load(tmp_path / "numnet-model.npz")
    assert model.input_shape == (1, 28, 28) and model.num_params == 225034
    assert f"accuracy: {accuracy:.2f}%" in ok(run("evaluate", "numnet-model.npz",
                                                  cwd=tmp_path))
    pixels = mnist_subset_csv(mnist_dir, tmp_path / "new.csv", 4, offset=50000)
    np.savetxt(tmp_path / "new_pixels.csv", pixels, delimiter=",", fmt="%d")
    out = ok(run("predict", "numnet-model.npz", "new_pixels.csv", cwd=tmp_path))
    assert len(out.strip().splitlines()) == 5


def test_lr_schedule_option(tmp_path: Path) -> None:
    out = ok(run("train", "--model", "mlp:8", "--epochs", "2", "--lr-schedule", "cosine",
                 "--plot", "off", cwd=tmp_path))
    assert "batch size 32, CosineDecay(initial_lr=None, per_batch=True" in out
    # the decay ends near 0; the model file keeps the run's rate (Adam's 1e-3)
    assert io.load_optimizer(tmp_path / "numnet-model.npz").lr == pytest.approx(1e-3)
    out = ok(run("train", "--model", "cnn:2,4", "--epochs", "1", "--lr-schedule", "constant",
                 "--weight-averaging", "off", "--plot", "off", cwd=tmp_path))
    assert "batch size 128\n" in out and "CosineDecay" not in out
    assert_error(run("train", "--lr-schedule", "linear", cwd=tmp_path), "--lr-schedule")


def test_weight_averaging_option(tmp_path: Path) -> None:
    """Off by default for an MLP; asked for, the saved model holds the average."""
    args = ("train", "--model", "mlp:16", "--epochs", "4", "--lr", "0.01", "--plot", "off")
    out = ok(run(*args, cwd=tmp_path))
    assert "averaged" not in out
    plain = io.load(tmp_path / "numnet-model.npz").flat_params.copy()
    out = ok(run(*args, "--weight-averaging", "0.9", cwd=tmp_path))
    assert "batch size 32, weights averaged (decay 0.9)" in out
    averaged = io.load(tmp_path / "numnet-model.npz").flat_params
    assert not np.array_equal(plain, averaged)
    accuracy = float(re.search(r"test accuracy: ([\d.]+)%", out).group(1))
    assert accuracy > 80
    for bad in ("1", "0.0.1", "-0.5", "fast"):
        assert_error(run("train", "--weight-averaging", bad, cwd=tmp_path),
                     "--weight-averaging")
