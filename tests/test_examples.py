"""The examples run and print what they promise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_example(name: str, **env_vars: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg", **env_vars)
    done = subprocess.run([sys.executable, str(ROOT / "examples" / name)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_graph_nodes_example():
    out = run_example("graph_nodes.py")
    assert "price: 220.00" in out
    assert "d price/d apple = 2.20, d price/d count = 110.00, d price/d tax = 200.00" in out


def test_sigmoid_net_example_learns():
    out = run_example("sigmoid_net.py")
    last = out.strip().splitlines()[-1]
    assert float(last.rsplit("accuracy", 1)[1]) > 0.95


def test_two_layer_net_example_learns():
    pytest.importorskip("numnet.data")
    out = run_example("two_layer_net.py")
    assert "relative error" in out
    last = out.strip().splitlines()[-1]
    assert float(last.rsplit("test accuracy", 1)[1]) > 0.9


def test_cnn_mnist_example_learns_quickly(mnist_dir):
    """One epoch on 2,000 images, tested on 1,000 ($NUMNET_EXAMPLE_QUICK)."""
    out = run_example("cnn_mnist.py", NUMNET_EXAMPLE_QUICK="1", NUMNET_MNIST_DIR=str(mnist_dir))
    assert "total parameters: 225,034" in out
    last = out.strip().splitlines()[-1]
    assert float(last.rsplit("test accuracy", 1)[1]) > 0.6  # 16 steps: chance is 0.1
