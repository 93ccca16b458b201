"""The ``numnet`` command line, end to end in subprocesses: outputs, files and exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import numnet
from numnet import io
from numnet.data import load_digits

ROOT = Path(__file__).resolve().parent.parent
ARCH = ROOT / "examples" / "architecture.json"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def environment(pythonpath: tuple[Path, ...] = ()) -> dict[str, str]:
    """The environment of a ``numnet`` subprocess: the repository importable, Agg plots."""
    path = os.pathsep.join([*(str(p) for p in pythonpath), str(ROOT)])
    env = dict(os.environ, PYTHONPATH=path, MPLBACKEND="Agg")
    env.pop("NUMNET_DATA", None)
    return env


def run(*args: str | os.PathLike, cwd: Path, pythonpath: tuple[Path, ...] = (),
        timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m numnet ARGS`` in ``cwd`` with the repository importable."""
    return subprocess.run([sys.executable, "-m", "numnet", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=environment(pythonpath),
                          timeout=timeout)


def assert_error(result: subprocess.CompletedProcess, *patterns: str, status: int = 2) -> str:
    """Exit ``status``; standard error is one line ``numnet: error: ...`` with no traceback."""
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    err = result.stderr.strip()
    assert "Traceback" not in err, err
    assert "\n" not in err, err
    assert err.startswith("numnet: error: "), err
    for pattern in patterns:
        assert pattern in err, (pattern, err)
    return err


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stdout


# -- fixtures: one default training run and a small CSV dataset ---------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``numnet train`` with no arguments, in an empty directory."""
    workdir = tmp_path_factory.mktemp("train")
    start = time.perf_counter()
    result = run("train", cwd=workdir)
    seconds = time.perf_counter() - start
    return {"dir": workdir, "result": result, "seconds": seconds,
            "model": workdir / "numnet-model.npz"}


@pytest.fixture(scope="module")
def csv_data(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Three Gaussian blobs, labels 5/7/9 in the last column, a header row, and a model."""
    workdir = tmp_path_factory.mktemp("csv")
    rng = np.random.default_rng(0)
    labels = np.array([5, 7, 9])
    y = labels[rng.integers(0, 3, size=240)]
    X = rng.standard_normal((240, 4)) * 2.0 + 100.0 + 4.0 * (y[:, None] - 7)
    path = workdir / "blobs.csv"
    rows = "\n".join(",".join(f"{v:.5f}" for v in x) + f",{label}"
                     for x, label in zip(X, y, strict=True))
    path.write_text("a,b,c,d,label\n" + rows + "\n")
    features = workdir / "features.csv"
    features.write_text("\n".join(",".join(f"{v:.5f}" for v in x) for x in X[:20]) + "\n")
    result = run("train", "--data", path, "--label-column", "-1", "--model", "mlp:16",
                 "--epochs", "15", "--lr", "0.01", "--out", "blobs.npz", "--plot", "off",
                 cwd=workdir)
    return {"dir": workdir, "path": path, "features": features, "X": X, "y": y,
            "result": result, "model": workdir / "blobs.npz"}


def digits_raw(n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(flatten=True)
    return X[:n].astype(np.float64), y[:n]


# -- numnet train -------------------------------------------------------------------------------
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


def test_error_after_half_a_progress_line_starts_a_new_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """A bar left mid-line (no trailing newline) does not swallow the error's start."""
    from numnet import cli
    from numnet.errors import TrainingDiverged

    def half_a_bar(args: object) -> int:
        sys.stderr.write("\repoch 1/3:  40%|####      | 512/1.26k")
        raise TrainingDiverged("training diverged in epoch 1/3, batch 5/40: a NaN")

    monkeypatch.setattr(cli, "cmd_train", half_a_bar)
    assert cli.main(["train"]) == 1
    err = capsys.readouterr().err
    assert err.endswith("512/1.26k\nnumnet: error: training diverged in epoch 1/3, batch 5/40: "
                        "a NaN\n"), repr(err)


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT to a subprocess")
def test_ctrl_c_saves_the_weights_and_exits_130(tmp_path: Path) -> None:
    import signal

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


def test_evaluate_checks_the_plot_format_before_the_report(trained: dict,
                                                           tmp_path: Path) -> None:
    result = run("evaluate", trained["model"], "--plot", "cm.txt", cwd=tmp_path)
    assert_error(result, "--plot cm.txt", "'txt'", ".png")
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


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


def test_encode_text_labels_onto_a_models_classes(tmp_path: Path) -> None:
    from numnet.cli import CLIError, _encode_labels

    encoded, classes = _encode_labels(np.array(["b", "a", "c", "a"]), None, tmp_path)
    assert classes == ["a", "b", "c"] and encoded.tolist() == [1, 0, 2, 0]
    encoded, _ = _encode_labels(np.array(["c", "a"], dtype=object), ["a", "b", "c"], tmp_path)
    assert encoded.tolist() == [2, 0]
    with pytest.raises(CLIError, match="label 'd' is not one of the model's classes"):
        _encode_labels(np.array(["a", "d"]), ["a", "b", "c"], tmp_path)


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
    (["--model", "cnn"], ["cnn", "not available yet"]),
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
                 "one column found", "is the delimiter ';'?")
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


# -- numnet evaluate ----------------------------------------------------------------------------
def test_evaluate(trained: dict, tmp_path: Path) -> None:
    out = ok(run("evaluate", trained["model"], "--plot", "cm.png", "--normalize",
                 cwd=tmp_path))
    meta = io.load_metadata(trained["model"])
    assert f"accuracy: {meta['test']['accuracy']:.2%}" in out  # the same test split
    assert f"loss: {meta['test']['loss']:.4f}" in out
    assert "precision" in out and "recall" in out and "macro avg" in out
    assert "confusion matrix" in out
    rows = out.split("confusion matrix")[1].strip().splitlines()[1:]
    matrix = np.array([[int(v) for v in row.split()[1:]] for row in rows[1:11]])
    assert matrix.shape == (10, 10) and matrix.sum() == 360
    assert (tmp_path / "cm.png").read_bytes().startswith(PNG_MAGIC)


def test_evaluate_other_splits_and_data(trained: dict, tmp_path: Path) -> None:
    out = ok(run("evaluate", trained["model"], "--split", "all", "--data", "digits",
                 cwd=tmp_path))
    assert "all split, 1797 samples" in out
    out = ok(run("evaluate", trained["model"], "--split", "val", cwd=tmp_path))
    assert "val split, 180 samples" in out


def test_evaluate_csv_model(csv_data: dict) -> None:
    out = ok(run("evaluate", csv_data["model"], cwd=csv_data["dir"]))
    assert "blobs.csv" in out and "test split, 48 samples" in out
    assert re.search(r"^\s+5\s", out, re.MULTILINE) and re.search(r"^\s+9\s", out, re.MULTILINE)


def test_evaluate_errors(trained: dict, csv_data: dict, tmp_path: Path) -> None:
    assert_error(run("evaluate", tmp_path / "nope.npz", cwd=tmp_path), "nope.npz")
    assert_error(run("evaluate", cwd=tmp_path), "MODEL")
    garbage = tmp_path / "garbage.npz"
    garbage.write_text("not a model")
    assert_error(run("evaluate", garbage, cwd=tmp_path), "garbage.npz",
                 "not a numnet model file")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(trained["model"].read_bytes()[:-100])
    assert_error(run("evaluate", truncated, cwd=tmp_path), "truncated.npz", "truncated")
    assert_error(run("evaluate", ARCH, cwd=tmp_path), "architecture")
    # digits model on the 4-feature CSV: wrong input width
    assert_error(run("evaluate", trained["model"], "--data", csv_data["path"],
                     "--label-column", "-1", cwd=tmp_path), "4 features", "(64,)")
    # CSV model on a CSV whose labels it does not know
    other = tmp_path / "other.csv"
    other.write_text("\n".join(f"1,2,3,4,{i % 2}" for i in range(10)) + "\n")
    assert_error(run("evaluate", csv_data["model"], "--data", other, "--label-column", "-1",
                     "--split", "all", cwd=tmp_path), "label 0", "[5, 7, 9]")
    assert_error(run("evaluate", trained["model"], "--split", "nope", cwd=tmp_path),
                 "--split")


def test_newer_model_file_is_refused(trained: dict, tmp_path: Path) -> None:
    with np.load(trained["model"], allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(arrays.pop("__numnet__").tobytes())
    header["format"] = 99
    arrays["__numnet__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    newer = tmp_path / "newer.npz"
    np.savez(newer, **arrays)
    assert_error(run("summary", newer, cwd=tmp_path), "newer.npz", "upgrade numnet")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.npz"
    garbage.write_text("not a model")
    result = run("--debug", "summary", garbage, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "ModelFileError" in result.stderr
    result = run("summary", garbage, "--debug", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" in result.stderr


# -- numnet predict -----------------------------------------------------------------------------
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
    import matplotlib.image

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
    import matplotlib.image

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
    import matplotlib.image

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


# -- summary, gradcheck, trace, datasets --------------------------------------------------------
def test_summary(trained: dict, tmp_path: Path) -> None:
    out = ok(run("summary", trained["model"], cwd=tmp_path))
    assert "Dense(in_features=64, out_features=128" in out
    assert "total parameters: 9,610" in out
    assert "format 1" in out and f"numnet {numnet.__version__}" in out
    assert "trained on: digits (20 epochs)" in out and "test accuracy" in out
    assert '"name": "adam"' in out
    out = ok(run("summary", ARCH, cwd=tmp_path))
    assert "Dropout" in out and "(N, 10)" in out


def test_summary_needs_an_input_shape(tmp_path: Path) -> None:
    arch = tmp_path / "act.json"
    arch.write_text('{"layers": [{"type": "ReLU"}, {"type": "Tanh"}]}')
    assert_error(run("summary", arch, cwd=tmp_path), "--input-shape")
    out = ok(run("summary", arch, "--input-shape", "4,3", cwd=tmp_path))
    assert "(N, 4, 3)" in out
    assert_error(run("summary", arch, "--input-shape", "x", cwd=tmp_path), "--input-shape")


def test_summary_errors(tmp_path: Path) -> None:
    assert_error(run("summary", tmp_path / "nope.json", cwd=tmp_path), "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"layers": [{"type": "Dense", "config": {"in_features": -1, '
                   '"out_features": 2}}]}')
    assert_error(run("summary", bad, cwd=tmp_path), "bad.json", "in_features")


def test_gradcheck(trained: dict, tmp_path: Path) -> None:
    out = ok(run("gradcheck", ARCH, cwd=tmp_path))
    assert "2 Dropout" in out and "5 Dense" in out and "CrossEntropy" in out
    assert "all passed" in out
    errors = [float(m) for m in re.findall(r"\s([0-9.]+e-\d+|0)\s+ok", out)]
    assert errors and max(errors) < 1e-6
    out = ok(run("gradcheck", trained["model"], "--batch-size", "3", "--seed", "2",
                 cwd=tmp_path))
    assert "all passed" in out


def test_gradcheck_failure_exits_1(tmp_path: Path) -> None:
    result = run("gradcheck", ARCH, "--tol", "1e-30", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "FAIL" in result.stdout and "FAILED" in result.stdout


def test_gradcheck_catches_a_wrong_backward(tmp_path: Path) -> None:
    """A layer registered by a plugin module, with a backward pass missing a factor."""
    (tmp_path / "plugin").mkdir()
    (tmp_path / "plugin" / "wronglayer.py").write_text(
        "import numpy as np\n"
        "from numnet.layers import Layer\n"
        "class WrongSquare(Layer):\n"
        "    def forward(self, x, training=False):\n"
        "        self.x = np.asarray(x)\n"
        "        return self.x ** 2\n"
        "    def backward(self, g):\n"
        "        return g * self.x  # should be 2 * x\n"
        "    def get_config(self):\n"
        "        return {}\n")
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps({"layers": [
        {"type": "Dense", "config": {"in_features": 3, "out_features": 4}},
        {"type": "WrongSquare"},
        {"type": "Dense", "config": {"in_features": 4, "out_features": 2}}],
        "loss": {"type": "cross_entropy"}}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "plugin"), str(ROOT)]))
    code = "import sys, wronglayer; from numnet.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", code, "gradcheck", str(arch)],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("1 WrongSquare"))
    assert "FAIL" in line
    assert all("FAIL" not in line for line in result.stdout.splitlines()
               if line.startswith(("0 Dense", "2 Dense")))


def test_gradcheck_errors(tmp_path: Path) -> None:
    assert_error(run("gradcheck", tmp_path / "nope.npz", cwd=tmp_path), "nope.npz")
    assert_error(run("gradcheck", ARCH, "--tol", "0", cwd=tmp_path), "--tol")
    arch = tmp_path / "act.json"
    arch.write_text('{"layers": [{"type": "ReLU"}]}')
    assert_error(run("gradcheck", arch, cwd=tmp_path), "--input-shape")
    assert "all passed" in ok(run("gradcheck", arch, "--input-shape", "5", cwd=tmp_path))


def test_trace(trained: dict, tmp_path: Path) -> None:
    out = ok(run("trace", trained["model"], cwd=tmp_path))
    assert "32 samples from digits (test split), evaluation mode" in out
    assert "forward" in out and "backward" in out and "loss:" in out
    assert "(32, 128)" in out and "d/dW" in out
    out = ok(run("trace", ARCH, "--data", "digits", "--batch-size", "5", "--training",
                 cwd=tmp_path))
    assert "training mode" in out and "(5, 64)" in out and "2 Dropout" in out


def test_trace_errors(trained: dict, csv_data: dict, tmp_path: Path) -> None:
    assert_error(run("trace", ARCH, cwd=tmp_path), "--data")
    assert_error(run("trace", trained["model"], "--data", csv_data["path"], "--label-column",
                     "-1", cwd=tmp_path), "4 features")
    assert_error(run("trace", trained["model"], "--batch-size", "0", cwd=tmp_path),
                 "--batch-size")
    assert_error(run("trace", tmp_path / "nope.npz", cwd=tmp_path), "nope.npz")


def test_datasets(tmp_path: Path) -> None:
    out = ok(run("datasets", cwd=tmp_path))
    assert re.search(r"^digits\s+built-in\s+\S", out, re.MULTILINE)
    assert "mnist" in out and "fashion-mnist" in out


# -- the parser -------------------------------------------------------------------------------
def test_version(tmp_path: Path) -> None:
    assert ok(run("--version", cwd=tmp_path)).strip() == f"numnet {numnet.__version__}"


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "summary", "gradcheck",
                                     "trace", "datasets"])
def test_help_has_examples(tmp_path: Path, command: str) -> None:
    out = ok(run(command, "--help", cwd=tmp_path))
    assert out.startswith(f"usage: numnet {command}")
    assert "example:\n  numnet " + command in out


def test_top_level_help_and_errors(tmp_path: Path) -> None:
    out = ok(run("--help", cwd=tmp_path))
    for command in ("train", "evaluate", "predict", "summary", "gradcheck", "trace",
                    "datasets"):
        assert command in out
    assert_error(run(cwd=tmp_path), "COMMAND")
    assert_error(run("fly", cwd=tmp_path), "fly")
    assert_error(run("--bogus", "datasets", cwd=tmp_path), "--bogus", "see 'numnet --help'")
    assert_error(run("datasets", "--bogus", cwd=tmp_path), "see 'numnet datasets --help'")


def test_main_in_process(trained: dict, capsys: pytest.CaptureFixture) -> None:
    """``numnet.cli.main`` returns the status instead of exiting (the console script)."""
    from numnet.cli import main

    assert main(["summary", str(trained["model"])]) == 0
    assert "total parameters" in capsys.readouterr().out
    assert main(["summary", str(trained["dir"] / "nope.npz")]) == 2
    assert capsys.readouterr().err.startswith("numnet: error: ")
