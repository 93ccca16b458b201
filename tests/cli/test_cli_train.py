"""``numnet train``, end to end in subprocesses: outputs, files and exit codes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import (
    ARCH,
    PNG_MAGIC,
    assert_error,
    environment,
    ok,
    run,
)

from numnet import io


def test_default_train(trained: dict) -> None:
    out = ok(trained["result"])
    match = re.search(r"test accuracy: ([\d.]+)%", out)
    assert match, out
    assert float(match.group(1)) >= 95.0
    assert "data: digits" in out and "Dense" in out
    assert "saved model to numnet-model.npz" in out
    assert "saved training curves to numnet-history.png" in out
    assert trained["seconds"] < 30
    assert sorted(p.name for p in trained["dir"].iterdir()) == ["numnet-history.png",
                                                                "numnet-model.npz"]
    assert (trained["dir"] / "numnet-history.png").read_bytes().startswith(PNG_MAGIC)
    model = io.load(trained["model"])
    assert model.input_shape == (64,) and model.output_shape() == (10,)
    meta = io.load_metadata(trained["model"])
    assert meta["source"]["data"] == "digits"
    assert meta["preprocessing"] == {"type": "scale", "factor": 1 / 16, "raw_max": 16.0}
    assert meta["classes"] == list(range(10))
    assert meta["test"]["accuracy"] >= 0.95
    assert io.load_optimizer(trained["model"]).get_config()["name"] == "adam"


def test_train_is_reproducible(tmp_path: Path, trained: dict) -> None:
    ok(run("train", "-q", "--plot", "off", cwd=tmp_path))
    again = io.load(tmp_path / "numnet-model.npz")
    first = io.load(trained["model"])
    np.testing.assert_array_equal(again.flat_params, first.flat_params)


def test_train_options(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    result = run("train", "--model", "mlp:24,12", "--activation", "tanh", "--dropout", "0.2",
                 "--optimizer", "SGD", "--lr", "0.1", "--epochs", "3", "--batch-size", "64",
                 "--seed", "3", "--val-split", "0.2", "--test-split", "0.25",
                 "--early-stopping", "1", "--dtype", "float64", "--out", "sub/m.npz",
                 "--plot", "off", cwd=tmp_path)
    out = ok(result)
    assert "SGD(lr=0.1" in out
    assert "test accuracy" in out and "450 test samples" in out
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["m.npz", "sub"]
    model = io.load(tmp_path / "sub" / "m.npz")
    assert model.dtype == np.float64
    assert [type(layer).__name__ for layer in model.layers] == [
        "Dense", "Tanh", "Dropout", "Dense", "Tanh", "Dropout", "Dense"]
    assert model.layers[0].out_features == 24 and model.layers[3].out_features == 12
    meta = io.load_metadata(tmp_path / "sub" / "m.npz")
    assert meta["source"]["seed"] == 3 and meta["source"]["val_split"] == 0.2
    assert 1 <= meta["epochs"] <= 3


def test_train_quiet_without_hidden_layer_and_plot_path(tmp_path: Path) -> None:
    out = ok(run("train", "-q", "--model", "mlp:", "--epochs", "2", "--plot", "curves.png",
                 cwd=tmp_path))
    assert "Dense" not in out  # no summary in quiet mode
    assert "test accuracy" in out
    assert (tmp_path / "curves.png").read_bytes().startswith(PNG_MAGIC)
    assert not (tmp_path / "numnet-history.png").exists()
    model = io.load(tmp_path / "numnet-model.npz")
    assert [type(layer).__name__ for layer in model.layers] == ["Dense"]


def test_train_with_architecture_file(tmp_path: Path) -> None:
    result = run("train", "--model", ARCH, "--epochs", "2", "--plot", "on", "--out", "a.npz",
                 cwd=tmp_path)
    out = ok(result)
    assert "Dropout" in out
    assert (tmp_path / "numnet-history.png").is_file()
    model = io.load(tmp_path / "a.npz")
    assert [type(layer).__name__ for layer in model.layers] == [
        "Dense", "ReLU", "Dropout", "Dense", "ReLU", "Dense"]


def test_train_on_csv(csv_data: dict) -> None:
    out = ok(csv_data["result"])
    assert "3 classes" in out and "4 features" in out
    accuracy = float(re.search(r"test accuracy: ([\d.]+)%", out).group(1))
    assert accuracy >= 90
    meta = io.load_metadata(csv_data["model"])
    assert meta["classes"] == [5, 7, 9]
    assert meta["preprocessing"]["type"] == "standardize"
    assert len(meta["preprocessing"]["mean"]) == 4
    assert meta["source"]["label_column"] == -1
    assert np.allclose(meta["preprocessing"]["mean"], 100, atol=3)


def test_train_without_matplotlib(tmp_path: Path) -> None:
    """Default --plot: trains and says the plot was skipped; --plot on: an error up front."""
    fake = tmp_path / "fake"
    (fake / "matplotlib").mkdir(parents=True)
    (fake / "matplotlib" / "__init__.py").write_text(
        "raise ImportError('No module named matplotlib')\n")
    work = tmp_path / "work"
    work.mkdir()
    out = ok(run("train", "-q", "--epochs", "1", cwd=work, pythonpath=(fake,)))
    assert "matplotlib is not installed" in out
    assert sorted(p.name for p in work.iterdir()) == ["numnet-model.npz"]
    assert_error(run("train", "--plot", "on", cwd=work, pythonpath=(fake,)), "matplotlib")
    assert_error(run("evaluate", work / "numnet-model.npz", "--plot", "cm.png", cwd=work,
                     pythonpath=(fake,)), "matplotlib")


def test_train_diverges_with_exit_1(tmp_path: Path) -> None:
    result = run("train", "-q", "--optimizer", "sgd", "--lr", "1e30", "--epochs", "3",
                 cwd=tmp_path)
    assert_error(result, "training diverged", "lower the learning rate", status=1)
    assert list(tmp_path.iterdir()) == []


def test_train_diverges_after_the_progress_bar(tmp_path: Path) -> None:
    """Without -q the bar is on: the error still has a line of its own, the last one."""
    result = run("train", "--optimizer", "sgd", "--lr", "1e8", "--epochs", "2", "--plot", "off",
                 cwd=tmp_path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    last = result.stderr.rstrip("\n").split("\n")[-1]
    assert last.startswith("numnet: error: training diverged in epoch 1/2, batch "), repr(last)
    assert "lower the learning rate" in last
    assert result.stderr.count("training diverged") == 1  # no doubled prefix
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT to a subprocess")
def test_ctrl_c_saves_the_weights_and_exits_130(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    stderr_file = tmp_path / "stderr.txt"
    with open(stderr_file, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "numnet", "train", "--epochs", "100000", "--plot", "off",
             "--out", "m.npz"], cwd=work, stdout=subprocess.PIPE, stderr=stderr, text=True,
            env=environment())
        try:
            deadline = time.monotonic() + 60
            while ("epoch 3/" not in stderr_file.read_text() and process.poll() is None
                   and time.monotonic() < deadline):
                time.sleep(0.05)  # until two epochs have finished
            process.send_signal(signal.SIGINT)
            out, _ = process.communicate(timeout=60)
        finally:
            process.kill()
    err = stderr_file.read_text()
    assert process.returncode == 130, (out, err)
    assert "Traceback" not in err
    last = err.rstrip("\n").split("\n")[-1]
    assert last.startswith("numnet: interrupted: saved the weights after the last finished "
                           "batch to m.npz ("), repr(last)
    assert "test accuracy" not in out
    assert sorted(p.name for p in work.iterdir()) == ["m.npz"]
    meta = io.load_metadata(work / "m.npz")
    assert meta["interrupted"] is True and meta["epochs"] >= 2 and "test" not in meta
    assert io.load(work / "m.npz").input_shape == (64,)


def test_architecture_file_keeps_its_dtype_and_seed(tmp_path: Path) -> None:
    config = json.loads(ARCH.read_text())
    config.update(dtype="float64", seed=7)
    arch = tmp_path / "arch64.json"
    arch.write_text(json.dumps(config))
    ok(run("train", "-q", "--model", arch, "--epochs", "1", "--plot", "off", "--out", "a.npz",
           cwd=tmp_path))
    model = io.load(tmp_path / "a.npz")
    assert model.dtype == np.float64 and model.seed == 7
    assert model.flat_params.dtype == np.float64
    assert io.load_metadata(tmp_path / "a.npz")["source"]["seed"] == 0  # the split's default
    # options given on the command line still win
    ok(run("train", "-q", "--model", arch, "--epochs", "1", "--plot", "off", "--out", "b.npz",
           "--dtype", "float32", "--seed", "3", cwd=tmp_path))
    model = io.load(tmp_path / "b.npz")
    assert model.dtype == np.float32 and model.seed == 3


def test_label_column_by_name(csv_data: dict, tmp_path: Path) -> None:
    ok(run("train", "-q", "--data", csv_data["path"], "--label-column", "label", "--model",
           "mlp:8", "--epochs", "2", "--plot", "off", "--out", "named.npz", cwd=tmp_path))
    meta = io.load_metadata(tmp_path / "named.npz")
    assert meta["source"]["label_column"] == "label" and meta["classes"] == [5, 7, 9]
    out = ok(run("evaluate", tmp_path / "named.npz", cwd=tmp_path))  # the recorded name
    assert "test split, 48 samples" in out
    out = ok(run("predict", tmp_path / "named.npz", csv_data["path"], "--label-column",
                 "label", cwd=tmp_path))
    assert len(out.strip().splitlines()) == 241
    assert_error(run("train", "--data", csv_data["path"], "--label-column", "nope",
                     cwd=tmp_path), "blobs.csv", "'nope'", "'label'")


def test_text_class_labels(tmp_path: Path) -> None:
    """Text labels in the CSV (iris-like species) become sorted classes whose names are
    kept in the model file and printed by predict, end to end."""
    species = np.array(["virginica", "setosa", "versicolor"])  # not in sorted order
    rng = np.random.default_rng(0)
    y = np.concatenate([np.arange(3), rng.integers(0, 3, size=237)])  # virginica first
    X = rng.standard_normal((240, 4)) * 0.3 + 3.0 * y[:, None] + [5.0, 3.0, 1.5, 0.2]
    rows = "\n".join(",".join(f"{v:.3f}" for v in x) + f",{species[label]}"
                     for x, label in zip(X, y, strict=True))
    data = tmp_path / "iris.csv"
    data.write_text("sepal_length,sepal_width,petal_length,petal_width,species\n" + rows + "\n")
    features = tmp_path / "features.csv"
    features.write_text("\n".join(",".join(f"{v:.3f}" for v in x) for x in X[:20]) + "\n")
    ok(run("train", "--data", data, "--label-column", "species", "-q", "--epochs", "2",
           "--model", "mlp:16", "--lr", "0.05", "--plot", "off", "--out", "iris.npz",
           cwd=tmp_path))
    meta = io.load_metadata(tmp_path / "iris.npz")
    assert meta["classes"] == ["setosa", "versicolor", "virginica"]
    lines = ok(run("predict", "iris.npz", features, "--proba", cwd=tmp_path)).splitlines()
    assert lines[0] == "index,label,p_setosa,p_versicolor,p_virginica"
    predicted = np.array([line.split(",")[1] for line in lines[1:]])
    assert set(predicted) <= set(species) and np.mean(predicted == species[y[:20]]) >= 0.9
    out = ok(run("predict", "iris.npz", data, "--label-column", "species", cwd=tmp_path))
    assert len(out.splitlines()) == 241  # the text label column is skipped
    report = ok(run("evaluate", "iris.npz", cwd=tmp_path))  # reads iris.csv again
    assert "test split, 48 samples" in report and "virginica" in report


@pytest.mark.parametrize("args, patterns", [
    (["--epochs", "0"], ["--epochs", "positive integer"]),
    (["--epochs", "many"], ["--epochs"]),
    (["--optimizer", "lbfgs"], ["--optimizer", "lbfgs"]),
    (["--val-split", "1.5"], ["--val-split", "[0, 1)"]),
    (["--test-split", "0"], ["--test-split"]),
    (["--dropout", "1"], ["--dropout"]),
    (["--lr", "-1"], ["--lr"]),
    (["--dtype", "float16"], ["--dtype"]),
    (["--no-such-option"], ["unrecognized arguments"]),
    (["--model", "cnn:32,x"], ["cnn:32,x", "positive integers"]),
    (["--model", "mlp:12,x"], ["mlp:12,x", "positive integers"]),
    (["--model", "mlp:0"], ["positive integers"]),
    (["--model", "resnet"], ["unknown --model 'resnet'"]),
    (["--model", "missing.json"], ["missing.json"]),
    (["--model", str(ARCH), "--dropout", "0.3"], ["--dropout"]),
    (["--data", "imagenet"], ["unknown --data 'imagenet'"]),
    (["--data", "missing.csv"], ["missing.csv"]),
    (["--out", "nodir/m.npz"], ["nodir"]),
    (["--out", "."], ["is a directory"]),
    (["--plot", "nodir/curves.png"], ["nodir"]),
    (["--plot", "curves.txt"], ["--plot curves.txt", "'txt'", ".png"]),
    (["--bogus"], ["unrecognized arguments: --bogus", "see 'numnet train --help'"]),
    (["--val-split", "0.95", "--test-split", "0.9"], ["--val-split 0.95", "--test-split 0.9",
                                                      "below 1"]),
])
def test_train_errors(tmp_path: Path, args: list[str], patterns: list[str]) -> None:
    result = run("train", "-q", *args, cwd=tmp_path)
    err = assert_error(result, *patterns)
    assert "train_dev_test_split" not in err  # options, not internal functions
    assert result.stdout == ""  # before any data is loaded or any training
    assert list(tmp_path.iterdir()) == []


def test_train_architecture_that_does_not_fit_the_data(tmp_path: Path) -> None:
    wide = tmp_path / "wide.json"
    wide.write_text(json.dumps({"layers": [
        {"type": "Dense", "config": {"in_features": 784, "out_features": 10}}]}))
    assert_error(run("train", "--model", wide, cwd=tmp_path), "64 features", "(784,)")
    few = tmp_path / "few.json"
    few.write_text(json.dumps({"layers": [
        {"type": "Dense", "config": {"in_features": 64, "out_features": 3}}]}))
    assert_error(run("train", "--model", few, cwd=tmp_path), "10 classes", "10 outputs")
    bad = tmp_path / "bad.json"
    bad.write_text('{"layers": [{"type": "Conv9d"}]}')
    assert_error(run("train", "--model", bad, cwd=tmp_path), "bad.json", "Conv9d")
    broken = tmp_path / "broken.json"
    broken.write_text("{oops")
    assert_error(run("train", "--model", broken, cwd=tmp_path), "broken.json", "JSON")


def test_train_csv_errors(tmp_path: Path) -> None:
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("1,2,3\n4,5\n")
    assert_error(run("train", "--data", ragged, cwd=tmp_path), "ragged.csv")
    fractional = tmp_path / "fractional.csv"
    fractional.write_text("\n".join(f"{i / 3:.3f},{i},{i}" for i in range(30)) + "\n")
    assert_error(run("train", "--data", fractional, cwd=tmp_path), "whole numbers")
    single = tmp_path / "single.csv"
    single.write_text("\n".join(f"1,{i},{i}" for i in range(30)) + "\n")
    assert_error(run("train", "--data", single, cwd=tmp_path), "single class",
                 "--label-column")
    assert_error(run("train", "--data", single, "--label-column", "7", cwd=tmp_path),
                 "single.csv")
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("".join(f"{i},{i % 2}\n" for i in range(6)))
    err = assert_error(run("train", "--data", tiny, "--val-split", "0.5", "--test-split", "0.45",
                           cwd=tmp_path), "--val-split 0.5 and --test-split 0.45",
                       "leave nothing of the 6 for training")
    assert "train_dev_test_split" not in err


def test_train_mnist(tmp_path: Path, mnist_dir: Path) -> None:
    result = run("train", "-q", "--data", "mnist", "--data-dir", mnist_dir, "--model",
                 "mlp:32", "--epochs", "1", "--batch-size", "256", "--plot", "off",
                 cwd=tmp_path)
    out = ok(result)
    assert float(re.search(r"test accuracy: ([\d.]+)%", out).group(1)) > 85
    assert "10000 samples" in out
    assert io.load_metadata(tmp_path / "numnet-model.npz")["preprocessing"]["raw_max"] == 255


def test_train_csv_hostile_inputs(tmp_path: Path) -> None:
    """Issue 13 (classes 4 and 5): a CSV case is named by its line in the file and what
    was found there, before any training; huge class labels stay distinct."""
    rng = np.random.default_rng(0)
    rows = [f"{i % 3},{a:.3f},{b:.3f}" for i, (a, b) in enumerate(rng.normal(size=(60, 2)))]

    def write(name: str, lines: list[str], sep: str = ",") -> Path:
        path = tmp_path / name
        path.write_text("\n".join(["label,a,b", *lines]).replace(",", sep) + "\n")
        return path

    semicolon = write("semi.csv", rows, sep=";")
    assert_error(run("train", "--data", semicolon, cwd=tmp_path), "semi.csv",
                 "one column found", "is the delimiter ';'?", "--delimiter ';'")
    nan = write("nan.csv", rows[:40] + ["1,nan,0.5"] + rows[41:])
    assert_error(run("train", "--data", nan, cwd=tmp_path),
                 "nan.csv: line 42, column 2 ('a'): 'nan' is not a finite number")
    inf = write("inf.csv", rows[:7] + ["inf,0.1,0.5"] + rows[8:])
    assert_error(run("train", "--data", inf, cwd=tmp_path),
                 "inf.csv: line 9, column 1 ('label'): label 'inf' is not a finite number")
    huge = [f"{(i % 10 + 1) * 10**30}," + row.split(",", 1)[1] for i, row in
            enumerate(rows + rows[:40])]  # fmt: skip
    out = tmp_path / "huge.npz"
    ok(run("train", "--data", write("huge.csv", huge), "--epochs", "1", "-q", "--out", out,
           "--plot", "off", cwd=tmp_path))
    classes = io.load_metadata(out)["classes"]
    assert classes == sorted(str(k * 10**30) for k in range(1, 11))  # ten classes, exact
    assert_error(run("predict", out, nan, "--label-column", "label", cwd=tmp_path),
                 "nan.csv: line 42, column 2 ('a'): 'nan' is not a finite number")



def test_train_on_csv_without_a_validation_split(csv_data: dict, tmp_path: Path) -> None:
    """--val-split 0 leaves an empty validation split, which is scaled like the others."""
    out = ok(run("train", "--data", csv_data["path"], "--label-column", "-1", "--val-split",
                 "0", "--epochs", "1", "--plot", "off", "-q", cwd=tmp_path))
    assert "test accuracy" in out and (tmp_path / "numnet-model.npz").exists()
