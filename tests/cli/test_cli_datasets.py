"""``numnet datasets``."""

from __future__ import annotations

import re
from pathlib import Path

from cli_helpers import (
    ok,
    run,
)


def test_datasets(tmp_path: Path) -> None:
    out = ok(run("datasets", cwd=tmp_path))
    assert re.search(r"^digits\s+built-in\s+\S", out, re.MULTILINE)
    assert "mnist" in out and "fashion-mnist" in out
