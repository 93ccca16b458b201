"""Fixtures of the command-line tests: one default training run and a small CSV dataset,
made once per session and shared by every command's tests."""

from __future__ import annotations

import time

import numpy as np
import pytest
from cli_helpers import run


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``numnet train`` with no arguments, in an empty directory."""
    workdir = tmp_path_factory.mktemp("train")
    start = time.perf_counter()
    result = run("train", cwd=workdir)
    seconds = time.perf_counter() - start
    return {"dir": workdir, "result": result, "seconds": seconds,
            "model": workdir / "numnet-model.npz"}


@pytest.fixture(scope="session")
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


@pytest.fixture(scope="session")
def cnn_trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``numnet train --model cnn:4,8,16`` on the digits (8x8: padding 'same'), with plots."""
    workdir = tmp_path_factory.mktemp("cnn")
    result = run("train", "--model", "cnn:4,8,16", "--epochs", "6", "--batch-size", "32",
                 "--lr", "0.01", "--plot", "on", "--out", "cnn.npz", cwd=workdir)
    return {"dir": workdir, "result": result, "model": workdir / "cnn.npz"}
