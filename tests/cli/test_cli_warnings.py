"""Training warnings on the command line can be silenced as any Python warning can."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import ok, run

DEAD_RELU = ("train", "-q", "--optimizer", "sgd", "--lr", "10", "--epochs", "1", "--plot",
             "off")


@pytest.mark.parametrize("option", ["ignore", "ignore::UserWarning"])
def test_python_warnings_ignore_silences_them(tmp_path: Path, monkeypatch, option) -> None:
    monkeypatch.setenv("PYTHONWARNINGS", option)
    result = run(*DEAD_RELU, cwd=tmp_path)
    assert "test accuracy" in ok(result)
    assert "warning" not in result.stderr, result.stderr


def test_other_filters_leave_every_warning_on(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PYTHONWARNINGS", "default")  # once per place: would hide all but one
    result = run(*DEAD_RELU, cwd=tmp_path)
    ok(result)
    lines = [line for line in result.stderr.splitlines() if line.startswith("numnet: warning:")]
    assert len(lines) >= 3, result.stderr
