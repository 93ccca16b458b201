"""``numnet summary``."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import (
    ARCH,
    assert_error,
    ok,
    run,
)

import numnet


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
