"""The command line's diagnosis: one-line training warnings, ``--clip-norm``, the trace's
findings, and ``numnet gradcheck --layer`` for a learner's own layer class."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import assert_error, ok, run


def warnings_of(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("numnet: warning: ")]


def test_a_healthy_default_run_has_no_warning(trained: dict) -> None:
    """The README's ``numnet train`` on digits."""
    assert "warning" not in trained["result"].stderr


def test_a_dead_relu_run_warns_on_one_line_each(tmp_path: Path) -> None:
    """The issue: ``--optimizer sgd --lr 10`` exits 0 at 10% and nothing names the cause."""
    result = run("train", "--optimizer", "sgd", "--lr", "10", "--epochs", "3", "--plot", "off",
                 cwd=tmp_path)
    out = ok(result)
    assert "test accuracy" in out
    lines = warnings_of(result.stderr)
    assert any("layer 1 ReLU: 100% of units dead" in line for line in lines), result.stderr
    assert any("at chance level" in line for line in lines)
    assert len(lines) == len({line.split(":")[2] + line.split(":")[3] for line in lines})
    for line in result.stderr.splitlines():  # each warning on a line of its own
        assert "numnet: warning:" not in line or line.startswith("numnet: warning:")
    trace = ok(run("trace", "numnet-model.npz", cwd=tmp_path))
    assert "update/weight for one step of SGD(lr=10)" in trace
    assert "\nfindings:\n- layer 1 ReLU: 100% of units dead for this batch" in trace
    assert "- no gradient reaches layer 0 Dense" in trace
    quiet = run("train", "-q", "--optimizer", "sgd", "--lr", "10", "--epochs", "1",
                "--plot", "off", "--out", "quiet.npz", cwd=tmp_path)
    assert warnings_of(ok(quiet) and quiet.stderr)  # -q silences progress, not warnings


def test_clip_norm(tmp_path: Path) -> None:
    out = ok(run("train", "--clip-norm", "1", "--epochs", "2", "--plot", "off", "-q",
                 cwd=tmp_path))
    assert "test accuracy" in out
    out = ok(run("train", "--clip-norm", "0.5", "--epochs", "1", "--plot", "off", cwd=tmp_path))
    assert "gradients clipped to norm 0.5" in out
    assert_error(run("train", "--clip-norm", "0", cwd=tmp_path), "--clip-norm")
    assert_error(run("train", "--clip-norm", "x", cwd=tmp_path), "--clip-norm")


def test_the_divergence_hint_mentions_initialisation_and_clip_norm(tmp_path: Path) -> None:
    result = run("train", "-q", "--optimizer", "sgd", "--lr", "1e30", "--epochs", "2",
                 cwd=tmp_path)
    err = assert_error(result, "training diverged", status=1)
    assert "initialisation" in err and "--clip-norm" in err
    # the layer named shows the initialiser it really used, not init=None
    assert "Dense(in_features=128, out_features=10, init='glorot_uniform'" in err
    assert "init=None" not in err


def test_adagrad_and_momentum_from_the_command_line(tmp_path: Path) -> None:
    for name in ("adagrad", "momentum"):
        out = ok(run("train", "--optimizer", name, "--epochs", "2", "--plot", "off", "-q",
                     "--out", f"{name}.npz", cwd=tmp_path))
        assert "test accuracy" in out


def test_trace_of_a_vanishing_gradient_architecture(tmp_path: Path) -> None:
    layers = []
    for index in range(10):
        width = 10 if index == 9 else 64
        layers.append({"type": "Dense", "config": {"in_features": 64, "out_features": width,
                                                   "init": "normal"}})
        if index < 9:
            layers.append({"type": "Sigmoid"})
    arch = tmp_path / "sigmoid10.json"
    arch.write_text(json.dumps({"layers": layers, "loss": {"type": "cross_entropy"},
                                "seed": 0}))
    out = ok(run("trace", arch, "--data", "digits", "--batch-size", "64", cwd=tmp_path))
    assert "update/weight for one step of Adam(lr=0.001)" in out
    assert "x from layer 18 Dense to layer 0 Dense: vanishing gradients" in out
    out = ok(run("trace", arch, "--data", "digits", "--optimizer", "sgd", "--lr", "0.1",
                 cwd=tmp_path))
    assert "SGD(lr=0.1)" in out


LAYERS = '''\
import numpy as np
from numnet.layers import Layer


class Cube(Layer, name="learner.Cube"):
    def forward(self, x, training=False):
        self.x = x
        return x ** 3

    def backward(self, grad_out):
        return grad_out * 3 * self.x ** 2


class WrongCube(Layer, name="learner.WrongCube"):
    def forward(self, x, training=False):
        self.x = x
        return x ** 3

    def backward(self, grad_out):
        return grad_out * 2 * self.x ** 2  # should be 3 x^2


class Scale(Layer, name="learner.Scale"):
    def __init__(self, size, dtype=None):
        super().__init__(dtype)
        self._add_param("s", (size,))
        self.params["s"][...] = np.linspace(0.5, 2.0, size)

    def forward(self, x, training=False):
        self.x = x
        return x * self.params["s"]

    def backward(self, grad_out):
        self.grads["s"][...] = 2 * (grad_out * self.x).sum(axis=0)  # twice too large
        return grad_out * self.params["s"]


class Unfinished(Layer, name="learner.Unfinished"):
    def forward(self, x, training=False):
        return x

    def backward(self, grad_out):
        raise NotImplementedError("write the backward pass")
'''


def test_gradcheck_a_layer_class_of_ones_own(tmp_path: Path) -> None:
    (tmp_path / "my_layers.py").write_text(LAYERS)
    out = ok(run("gradcheck", "--layer", "my_layers.py:Cube", "--input-shape", "5",
                 cwd=tmp_path))
    assert "Cube()" in out and "1 tensors checked (float64, batch of 4)" in out
    assert "all passed" in out and "worst element" in out and "analytic" in out
    wrong = run("gradcheck", "--layer", "my_layers:WrongCube", "--input-shape", "3,2",
                cwd=tmp_path)
    assert wrong.returncode == 1, wrong.stderr
    row = next(line for line in wrong.stdout.splitlines() if line.startswith("WrongCube()"))
    assert row.split()[2:4] == ["input", "0.333"] and row.endswith("FAIL")
    analytic, numerical = (float(v) for v in row.split()[-3:-1])
    assert analytic == pytest.approx(2 / 3 * numerical, rel=1e-5)  # printed to 6 digits
    scale = run("gradcheck", "--layer", str(tmp_path / "my_layers.py") + ":Scale", "--args",
                '{"size": 4}', "--input-shape", "4", "--batch-size", "3", cwd=tmp_path.parent)
    assert scale.returncode == 1
    lines = scale.stdout.splitlines()
    assert any(" input " in line and line.endswith("ok") for line in lines)
    assert any(" s " in line and "0.5" in line and line.endswith("FAIL") for line in lines)
    assert "batch of 3" in scale.stdout


def test_gradcheck_layer_errors(tmp_path: Path) -> None:
    (tmp_path / "my_layers.py").write_text(LAYERS)
    (tmp_path / "broken.py").write_text("def f(:\n")
    cases = [
        (("--layer", "my_layers.py:Nope"), "has no class 'Nope' (its Layer classes: Cube, "
                                           "Scale, Unfinished, WrongCube)"),
        (("--layer", "my_layers.py:np"), "np is not a subclass of numnet.layers.Layer"),
        (("--layer", "my_layers.py:Scale", "--input-shape", "4"), "pass its arguments with "
                                                                  "--args"),
        (("--layer", "my_layers.py:Scale", "--args", "[4]"), "JSON object"),
        (("--layer", "my_layers.py:Scale", "--args", "{size: 4}"), "not valid JSON"),
        (("--layer", "my_layers.py:Cube"), "--input-shape"),
        (("--layer", "my_layers.py:Unfinished", "--input-shape", "2"),
         "NotImplementedError: write the backward pass"),
        (("--layer", "nosuchmodule:Cube"), "no module named 'nosuchmodule'"),
        (("--layer", "missing.py:Cube"), "no such file: missing.py"),
        (("--layer", "broken.py:Cube"), "importing broken.py failed: SyntaxError"),
        (("--layer", "Cube"), "expected MODULE:CLASS"),
        (("--layer", "numnet.optim:SGD"), "not a subclass of numnet.layers.Layer"),
        ((), "give a MODEL file or architecture, or --layer"),
        (("model.json", "--layer", "my_layers.py:Cube"), "one of the two"),
        (("model.json", "--args", "{}"), "--args goes with --layer"),
    ]
    for args, message in cases:
        assert_error(run("gradcheck", *args, cwd=tmp_path), message)
