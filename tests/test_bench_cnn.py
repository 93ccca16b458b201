"""Smoke test of bench/profile_cnn.py (the CNN step profile): it runs and its JSON holds
every part of the step. Never looks at speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "bench" / "profile_cnn.py"

pytestmark = pytest.mark.skipif(not PROFILE.is_file(), reason="bench/profile_cnn.py not present")


def test_profile_cnn_times_every_part_of_the_step(tmp_path):
    out = tmp_path / "profile.json"
    proc = subprocess.run(
        [sys.executable, str(PROFILE), "--no-torch", "--repeats", "2", "--batch", "8",
         "--threads", "1", "--parts", "--data", str(tmp_path / "no-mnist"), "--json", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "random pixels" in proc.stdout and "sum of the parts" in proc.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    parts = report["parts"]
    for key in ("0 Conv2D im2col", "0 Conv2D dW GEMM (+ copies)", "2 MaxPool2D backward",
                "3 Conv2D dx GEMMs + col2im", "loss forward + backward", "Adam step"):
        assert parts[key] > 0, key
    assert "0 Conv2D dx GEMMs + col2im" not in parts  # the first layer skips dx
    assert report["memory"]["ratio"] > 1
