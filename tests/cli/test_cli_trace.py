"""``numnet trace``."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import (
    ARCH,
    assert_error,
    ok,
    run,
)


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
