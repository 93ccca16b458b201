"""Helpers of the ``numnet`` command-line tests: run it in a subprocess, check its output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import IO

import numpy as np

from numnet.data import load_digits

ROOT = Path(__file__).resolve().parents[2]
ARCH = ROOT / "examples" / "architecture.json"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def environment(pythonpath: tuple[Path, ...] = ()) -> dict[str, str]:
    """The environment of a ``numnet`` subprocess: the repository importable, Agg plots."""
    path = os.pathsep.join([*(str(p) for p in pythonpath), str(ROOT)])
    env = dict(os.environ, PYTHONPATH=path, MPLBACKEND="Agg")
    env.pop("NUMNET_DATA", None)
    return env


def run(*args: str | os.PathLike, cwd: Path, pythonpath: tuple[Path, ...] = (),
        timeout: float = 120, stdout: IO[bytes] | None = None) -> subprocess.CompletedProcess:
    """``python -m numnet ARGS`` in ``cwd`` with the repository importable; standard output
    goes to ``stdout`` when given (a binary file), else it is captured."""
    if stdout is not None:
        return subprocess.run([sys.executable, "-m", "numnet", *map(str, args)], cwd=cwd,
                              stdout=stdout, stderr=subprocess.PIPE, text=True,
                              env=environment(pythonpath), timeout=timeout)
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


def digits_raw(n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(flatten=True)
    return X[:n].astype(np.float64), y[:n]
