"""``numnet evaluate``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from cli_helpers import (
    ARCH,
    PNG_MAGIC,
    assert_error,
    ok,
    run,
)

from numnet import io


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


def test_evaluate_checks_the_plot_format_before_the_report(trained: dict,
                                                           tmp_path: Path) -> None:
    result = run("evaluate", trained["model"], "--plot", "cm.txt", cwd=tmp_path)
    assert_error(result, "--plot cm.txt", "'txt'", ".png")
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


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
