"""The ``numnet`` entry points, the parser and the error contract shared by every command."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import (
    assert_error,
    ok,
    run,
)

import numnet
import numnet.cli.train
from numnet.cli import main
from numnet.errors import TrainingDiverged


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
    assert main(["summary", str(trained["model"])]) == 0
    assert "total parameters" in capsys.readouterr().out
    assert main(["summary", str(trained["dir"] / "nope.npz")]) == 2
    assert capsys.readouterr().err.startswith("numnet: error: ")


def test_error_after_half_a_progress_line_starts_a_new_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """A bar left mid-line (no trailing newline) does not swallow the error's start."""

    def half_a_bar(args: object) -> int:
        sys.stderr.write("\repoch 1/3:  40%|####      | 512/1.26k")
        raise TrainingDiverged("training diverged in epoch 1/3, batch 5/40: a NaN")

    monkeypatch.setattr(numnet.cli.train, "run", half_a_bar)
    assert main(["train"]) == 1
    err = capsys.readouterr().err
    assert err.endswith("512/1.26k\nnumnet: error: training diverged in epoch 1/3, batch 5/40: "
                        "a NaN\n"), repr(err)


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.npz"
    garbage.write_text("not a model")
    result = run("--debug", "summary", garbage, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "ModelFileError" in result.stderr
    result = run("summary", garbage, "--debug", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_newer_model_file_is_refused(trained: dict, tmp_path: Path) -> None:
    with np.load(trained["model"], allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(arrays.pop("__numnet__").tobytes())
    header["format"] = 99
    arrays["__numnet__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    newer = tmp_path / "newer.npz"
    np.savez(newer, **arrays)
    assert_error(run("summary", newer, cwd=tmp_path), "newer.npz", "upgrade numnet")


def test_a_reader_that_goes_away_is_no_error(tmp_path: Path) -> None:
    # `numnet datasets | head -0`: the pipe's reader is gone before numnet writes
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "wb") as closed_pipe:
        result = run("datasets", cwd=tmp_path, stdout=closed_pipe)
    assert result.returncode == 141, result.stderr
    assert result.stderr == ""
