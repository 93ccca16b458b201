"""The README's example runs as written and prints what it claims."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_example_runs(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text()
    code = re.search(r"## Fifteen lines\n\n```python\n(.*?)```", text, re.S).group(1)
    assert len(code.strip().splitlines()) <= 16
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr  # a healthy run: no TrainingWarning
    accuracy = float(re.search(r"'accuracy': ([0-9.]+)", done.stdout).group(1))
    assert accuracy > 0.9
    assert (tmp_path / "digits.npz").is_file()


def test_readme_commands_are_the_ci_ones() -> None:
    text = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = 'pip install -e ".[test]" && python -m pytest'
    assert test_command in text and test_command in ci
    assert 'pip install ".[plot,progress,fast]" && numnet train' in text
