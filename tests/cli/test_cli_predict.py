"""``numnet predict``: CSV, ``.npy`` and image inputs, labels and probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from cli_helpers import (
    ARCH,
    assert_error,
    digits_raw,
    ok,
    run,
)

import numnet
from numnet import io


def expected_labels(model_path: Path, X_raw: np.ndarray) -> np.ndarray:
    return io.load(model_path).predict(X_raw / 16.0)


def test_predict_csv(trained: dict, tmp_path: Path) -> None:
    X, _ = digits_raw(12)
    path = tmp_path / "in.csv"
    np.savetxt(path, X, delimiter=",", fmt="%d")
    out = ok(run("predict", trained["model"], path, cwd=tmp_path))
    lines = out.strip().splitlines()
    assert lines[0] == "index,label"
    labels = np.array([int(line.split(",")[1]) for line in lines[1:]])
    np.testing.assert_array_equal(labels, expected_labels(trained["model"], X))


def test_predict_proba_to_file(trained: dict, tmp_path: Path) -> None:
    X, _ = digits_raw(5)
    path = tmp_path / "in.csv"
    np.savetxt(path, X, delimiter=",", fmt="%d")
    result = run("predict", trained["model"], path, "--proba", "--out", "pred.csv",
                 cwd=tmp_path)
    assert ok(result) == ""
    assert "wrote 5 predictions to pred.csv" in result.stderr
    lines = (tmp_path / "pred.csv").read_text().strip().splitlines()
    assert lines[0] == "index,label," + ",".join(f"p_{k}" for k in range(10))
    probs = np.array([[float(v) for v in line.split(",")[2:]] for line in lines[1:]])
    assert probs.shape == (5, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-4)
    labels = [int(line.split(",")[1]) for line in lines[1:]]
    np.testing.assert_array_equal(labels, probs.argmax(axis=1))


def test_predict_npy_shapes(trained: dict, tmp_path: Path) -> None:
    X, _ = digits_raw(4)
    expected = expected_labels(trained["model"], X)
    for name, array in [("flat.npy", X), ("images.npy", X.reshape(4, 8, 8)),
                        ("one.npy", X[0]), ("uint8.npy", X.astype(np.uint8)),
                        ("one_image.npy", X[0].reshape(8, 8))]:
        np.save(tmp_path / name, array)
        out = ok(run("predict", trained["model"], tmp_path / name, cwd=tmp_path))
        labels = [int(line.split(",")[1]) for line in out.strip().splitlines()[1:]]
        np.testing.assert_array_equal(labels, expected[:len(labels)], err_msg=name)
        assert len(labels) == (1 if name.startswith("one") else 4), name


def test_predict_images(trained: dict, tmp_path: Path) -> None:
    import matplotlib.image  # noqa: PLC0415  (optional: the images are written with it)

    X, _ = digits_raw(3)
    paths = []
    for i, x in enumerate(X):
        path = tmp_path / f"digit{i}.png"
        matplotlib.image.imsave(path, x.reshape(8, 8) / 16, cmap="gray", vmin=0, vmax=1)
        paths.append(path)
    out = ok(run("predict", trained["model"], *paths, "--proba", cwd=tmp_path))
    lines = out.strip().splitlines()
    assert lines[0].startswith("file,label,p_0")
    assert [line.split(",")[0] for line in lines[1:]] == [str(p) for p in paths]
    # the PNG round trip quantises 0..16 to 0..255 grey levels: compare on the same pixels
    grey = np.stack([matplotlib.image.imread(p)[..., 0] for p in paths]).reshape(3, 64)
    model = io.load(trained["model"])
    np.testing.assert_array_equal([int(line.split(",")[1]) for line in lines[1:]],
                                  model.predict(grey))


def test_predict_inverted_drawings(trained: dict, tmp_path: Path) -> None:
    """Images are white ink on black; --invert reads black-on-white drawings the same."""
    import matplotlib.image  # noqa: PLC0415  (optional: the images are written with it)

    X, _ = digits_raw(4)
    plain, inverted = [], []
    for i, x in enumerate(X):
        grey = np.round(x.reshape(8, 8) * 255 / 16).astype(np.uint8)
        for paths, pixels in ((plain, grey), (inverted, 255 - grey)):
            path = tmp_path / f"{'inv' if paths is inverted else 'img'}{i}.png"
            matplotlib.image.imsave(path, np.stack([pixels] * 3, axis=-1))
            paths.append(path)

    def labels(*args: str | Path) -> list[str]:
        out = ok(run("predict", trained["model"], *args, cwd=tmp_path))
        return [line.split(",")[1] for line in out.strip().splitlines()[1:]]

    expected = labels(*plain)
    assert labels(*inverted, "--invert") == expected
    assert labels(*inverted) != expected  # read as white on black, they are not digits
    help_text = " ".join(ok(run("predict", "--help", cwd=tmp_path)).split())
    assert "white ink on a black background" in help_text and "--invert" in help_text


def test_predict_csv_model_keeps_label_values(csv_data: dict) -> None:
    out = ok(run("predict", csv_data["model"], csv_data["features"], cwd=csv_data["dir"]))
    labels = np.array([int(line.split(",")[1]) for line in out.strip().splitlines()[1:]])
    assert set(labels) <= {5, 7, 9}
    assert np.mean(labels == csv_data["y"][:20]) >= 0.9
    # the labelled file itself, with --label-column to skip the labels
    out = ok(run("predict", csv_data["model"], csv_data["path"], "--label-column", "-1",
                 "--proba", cwd=csv_data["dir"]))
    assert out.splitlines()[0] == "index,label,p_5,p_7,p_9"
    assert len(out.strip().splitlines()) == 241


def test_predict_errors(trained: dict, csv_data: dict, tmp_path: Path) -> None:
    model = trained["model"]
    X, _ = digits_raw(3)
    narrow = tmp_path / "narrow.csv"
    np.savetxt(narrow, X[:, :10], delimiter=",", fmt="%d")
    assert_error(run("predict", model, narrow, cwd=tmp_path), "10 features", "(64,)")
    labelled = tmp_path / "labelled.csv"
    np.savetxt(labelled, np.hstack([np.zeros((3, 1)), X]), delimiter=",", fmt="%d")
    assert_error(run("predict", model, labelled, cwd=tmp_path), "65 columns",
                 "--label-column")
    ok(run("predict", model, labelled, "--label-column", "0", cwd=tmp_path))
    assert_error(run("predict", model, tmp_path / "missing.csv", cwd=tmp_path), "missing.csv")
    assert_error(run("predict", tmp_path / "missing.npz", narrow, cwd=tmp_path), "missing.npz")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    assert_error(run("predict", model, tmp_path / "objects.npy", cwd=tmp_path), "objects.npy")
    np.save(tmp_path / "wide.npy", np.zeros((2, 100)))
    assert_error(run("predict", model, tmp_path / "wide.npy", cwd=tmp_path), "100 features")
    import matplotlib.image  # noqa: PLC0415  (optional: the images are written with it)

    big = tmp_path / "big.png"
    matplotlib.image.imsave(big, np.zeros((10, 12)), cmap="gray")
    assert_error(run("predict", model, big, cwd=tmp_path), "12x10", "8x8", "does not resize")
    fake = tmp_path / "fake.png"
    fake.write_text("not an image")
    assert_error(run("predict", model, fake, cwd=tmp_path), "fake.png", "not a readable image")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("1,2,3\n4,5\n")
    assert_error(run("predict", model, ragged, cwd=tmp_path), "ragged.csv")
    assert_error(run("predict", model, narrow, narrow, cwd=tmp_path), "one CSV")
    assert_error(run("predict", ARCH, narrow, cwd=tmp_path), "architecture")
    assert_error(run("predict", model, narrow, "--out", "nodir/p.csv", cwd=tmp_path), "nodir")
    assert_error(run("predict", model, cwd=tmp_path), "INPUT")
    # the CSV model's features are standardised: a digits row does not fit either
    assert_error(run("predict", csv_data["model"], narrow, cwd=tmp_path),
                 "narrow.csv has 10 features", "trained on 4")


def test_model_files_written_before_the_split_still_predict_and_evaluate(
        tmp_path: Path) -> None:
    """A model file whose metadata is spelled out by hand, exactly as ``numnet train`` wrote
    it before numnet.data described its own scalers and label encoder."""
    rng = np.random.default_rng(1)
    y = np.array([5, 7, 9])[rng.integers(0, 3, size=90)]
    X = rng.standard_normal((90, 2)) + 50.0 + 3.0 * (y[:, None] - 7)
    data = tmp_path / "old.csv"
    data.write_text("".join(f"{a:.4f},{b:.4f},{label}\n" for (a, b), label
                            in zip(X, y, strict=True)))
    mean, std = X.mean(axis=0), X.std(axis=0)
    model = numnet.Sequential([numnet.Dense(2, 3)], loss="cross_entropy", dtype="float64",
                              seed=0)
    model.fit((X - mean) / std, np.searchsorted([5, 7, 9], y), epochs=30, verbose=0)
    metadata = {
        "source": {"data": "csv", "seed": 0, "val_split": 0.1, "test_split": 0.2,
                   "path": str(data.resolve()), "label_column": -1},
        "preprocessing": {"type": "standardize", "mean": mean.tolist(), "std": std.tolist()},
        "classes": [5, 7, 9], "image_shape": None, "epochs": 30,
        "command": "numnet train --data old.csv --label-column -1",
    }
    io.save(model, tmp_path / "old.npz", metadata=metadata)
    features = tmp_path / "features.csv"
    np.savetxt(features, X[:10], delimiter=",", fmt="%.4f")
    out = ok(run("predict", "old.npz", features, "--proba", cwd=tmp_path))
    lines = out.strip().splitlines()
    assert lines[0] == "index,label,p_5,p_7,p_9"
    expected = np.array([5, 7, 9])[model.predict((np.round(X[:10], 4) - mean) / std)]
    assert [int(line.split(",")[1]) for line in lines[1:]] == expected.tolist()
    report = ok(run("evaluate", "old.npz", cwd=tmp_path))
    assert "test split, 18 samples" in report and "accuracy: " in report
