"""Shared fixtures: where the real MNIST files are, when they are present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def find_mnist_dir() -> Path | None:
    """The real MNIST directory: ``$NUMNET_MNIST_DIR``, else ``../shared/data/mnist``."""
    candidates = []
    if os.environ.get("NUMNET_MNIST_DIR"):
        candidates.append(Path(os.environ["NUMNET_MNIST_DIR"]))
    candidates.append(ROOT.parent / "shared" / "data" / "mnist")
    for path in candidates:
        if all((path / name).is_file() for name in MNIST_FILES):
            return path
    return None


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    path = find_mnist_dir()
    if path is None:
        pytest.skip(
            "real MNIST files not found: set NUMNET_MNIST_DIR or put them in ../shared/data/mnist"
        )
    return path


@pytest.fixture(scope="session")
def mnist_dir_or_none() -> Path | None:
    """The real MNIST directory, or None (for tests that fall back to other data)."""
    return find_mnist_dir()
