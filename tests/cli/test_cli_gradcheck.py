"""``numnet gradcheck``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from cli_helpers import (
    ARCH,
    ROOT,
    assert_error,
    ok,
    run,
)


def test_gradcheck(trained: dict, tmp_path: Path) -> None:
    out = ok(run("gradcheck", ARCH, cwd=tmp_path))
    assert "2 Dropout" in out and "5 Dense" in out and "CrossEntropy" in out
    assert "all passed" in out
    # the worst error of each tensor, then its worst element, analytic, numerical, ok
    errors = [float(m) for m in re.findall(r"\s([0-9.]+e-\d+|0)\s+\[[\d, ]*\]\s.*\sok$", out,
                                           flags=re.MULTILINE)]
    assert len(errors) == 13
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
