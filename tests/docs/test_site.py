"""The documentation site builds with ``mkdocs build --strict``, offline, with every page."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    pytest.importorskip("material", reason="mkdocs-material is not installed")
    pytest.importorskip("mkdocstrings_handlers.python", reason="mkdocstrings[python] missing")
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                             "--site-dir", str(site)], cwd=ROOT, capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    tutorials = sorted(p.stem for p in (ROOT / "docs" / "tutorials").glob("[0-9][0-9]_*.py"))
    assert len(tutorials) == 12
    for name in tutorials:
        page = (site / "tutorials" / name / "index.html").read_text()
        assert "Exercise: fill in the body" in page and "Solution" in page, name
        assert (site / "tutorials" / f"{name}.py").is_file()  # the script, to download
        assert not (site / "tutorials" / "solutions").exists()
    layers = (site / "api" / "layers" / "index.html").read_text()
    assert "numnet.layers.dense.Dense" in layers and "dL/dW" in layers
    reference = (site / "api" / "reference" / "index.html").read_text()
    assert "batchnorm_backward" in reference and ":func:" not in reference
    assert "fonts.googleapis" not in (site / "index.html").read_text()
