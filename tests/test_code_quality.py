"""CI runs ``python -m pytest`` alone, so the linters the project holds itself to run here:
ruff (with PLC0415, imports at the top of every module, so an import cycle cannot hide in a
function) and mypy, strict on numnet/ (see ``[tool.mypy]`` in pyproject.toml). Both come
with the ``test`` extra; where they are missing the tests are skipped, saying so."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[test]')")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def test_ruff_is_clean():
    done = _run("ruff", "check", "--no-cache", "numnet", "tests", "bench", "examples", "docs")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_forbids_imports_inside_functions():
    lint = (ROOT / "pyproject.toml").read_text().split("[tool.ruff.lint]", 1)[1]
    select = re.search(r"^select = \[(.*?)\]", lint, re.M | re.S)
    assert select is not None and '"PLC0415"' in select.group(1)


def test_mypy_strict_is_clean():
    done = _run("mypy")  # files and strictness from [tool.mypy]
    assert done.returncode == 0, done.stdout + done.stderr
