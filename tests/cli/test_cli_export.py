"""``numnet export``: a model file to ONNX, end to end in a subprocess, and its errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import ARCH, assert_error, environment, ok, run

import numnet
from numnet import io
from numnet.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Reshape

onnx = pytest.importorskip("onnx", reason="numnet export needs the optional onnx package")
ort = pytest.importorskip("onnxruntime", reason="the exported graphs are run with onnxruntime")


def ort_logits(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x})
    return np.asarray(out)


def small_cnn(dtype: str) -> numnet.Sequential:
    """Rows of 64 pixels, reshaped to 8x8 images, through a small convolutional network."""
    return numnet.Sequential(
        [Reshape((1, 8, 8)), Conv2D(1, 4, 3, padding="same"), ReLU(), MaxPool2D(2),
         Flatten(), Dense(64, 10)], input_shape=(64,), loss="cross_entropy", dtype=dtype,
        seed=0)


def test_export_of_the_trained_default_model(trained, tmp_path):
    """The digits MLP of ``numnet train``: ONNX Runtime computes its predict_logits, and
    the file carries its classes and preprocessing."""
    out = tmp_path / "digits.onnx"
    printed = ok(run("export", trained["model"], out, cwd=tmp_path))
    assert f"to {out}" in printed and "float32" in printed and "(N, 10)" in printed
    model = io.load(trained["model"])
    x = np.random.default_rng(0).uniform(0, 1, (9, *model.input_shape)).astype(np.float32)
    np.testing.assert_allclose(ort_logits(out, x), model.predict_logits(x), rtol=1e-5,
                               atol=1e-5)
    meta = numnet.onnx_io.read_metadata(out)
    saved = io.load_metadata(trained["model"])
    assert meta["classes"] == saved["classes"] and meta["preprocessing"] == saved[
        "preprocessing"]
    assert meta["numnet_version"] == numnet.__version__ and meta["loss"] == "cross_entropy"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_export_of_a_cnn_with_names_and_opset(dtype, tmp_path):
    model = small_cnn(dtype)
    io.save(model, tmp_path / "cnn.npz", metadata={"classes": list("abcdefghij")})
    out = tmp_path / "cnn.onnx"
    ok(run("export", "cnn.npz", "cnn.onnx", "--opset", "17", "--input-name", "pixels",
           "--output-name", "scores", cwd=tmp_path))
    proto = onnx.load(out)
    assert proto.opset_import[0].version == 17
    assert (proto.graph.input[0].name, proto.graph.output[0].name) == ("pixels", "scores")
    x = np.random.default_rng(1).standard_normal((7, 64)).astype(dtype)
    tol = 1e-5 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(ort_logits(out, x), model.predict_logits(x), rtol=tol, atol=tol)
    assert numnet.onnx_io.read_metadata(out)["classes"] == list("abcdefghij")


def test_export_errors(trained, tmp_path):
    model = trained["model"]
    err = assert_error(run("export", tmp_path / "missing.npz", "m.onnx", cwd=tmp_path),
                       "missing.npz")
    assert "no such" in err.lower()
    (tmp_path / "notes.npz").write_text("these are my notes, not a model\n")
    assert_error(run("export", "notes.npz", "m.onnx", cwd=tmp_path), "notes.npz",
                 "not a numnet model file")
    assert_error(run("export", ARCH, "m.onnx", cwd=tmp_path), "is an architecture",
                 "train it first")
    assert_error(run("export", model, tmp_path / "no" / "such" / "m.onnx", cwd=tmp_path),
                 "does not exist")
    assert_error(run("export", model, tmp_path, cwd=tmp_path), "is a directory")
    assert_error(run("export", model, "m.onnx", "--opset", "3", cwd=tmp_path),
                 "opset must be an integer from 13")
    assert_error(run("export", model, "m.onnx", "--input-name", "x", "--output-name", "x",
                     cwd=tmp_path), "two different names")
    assert_error(run("export", model, "m.onnx", "--input-shape", "5", cwd=tmp_path),
                 "differs from the model's input shape")
    assert not (tmp_path / "m.onnx").exists()


def test_output_that_is_the_model_file_is_refused(tmp_path):
    """The same path, written differently, through a symbolic or a hard link: refused before
    any work, the model file left as it was."""
    model = tmp_path / "m.npz"
    io.save(small_cnn("float32"), model)
    before = model.read_bytes()
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.npz").symlink_to(model)
    os.link(model, tmp_path / "hard.npz")
    for source, out in (("m.npz", "m.npz"), ("m.npz", "sub/../m.npz"),
                        ("m.npz", str(model)), ("link.npz", "m.npz"),
                        ("m.npz", "link.npz"), ("hard.npz", "m.npz")):
        assert_error(run("export", source, out, cwd=tmp_path),
                     f"OUT {out} is the same file as MODEL {source}", "choose another OUT")
    assert model.read_bytes() == before


def _unwritable_directory(tmp_path: Path) -> Path:
    """A directory in which no file can be created (as root, chmod does not stop writes)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    candidates = [locked, Path("/sys")]
    for directory in candidates:
        probe = directory / ".numnet-probe"
        try:
            probe.touch()
        except OSError:
            return directory
        probe.unlink()
    pytest.skip("no directory here refuses to create files")


def test_unwritable_directory_is_a_clear_error(trained, tmp_path):
    directory = _unwritable_directory(tmp_path)
    out = directory / "m.onnx"
    try:
        assert_error(run("export", trained["model"], out, cwd=tmp_path),
                     f"cannot write OUT {out}", "ermission denied")
        assert not out.exists()
    finally:
        (tmp_path / "locked").chmod(0o755)


CUSTOM = '''
import numpy as np
from numnet.layers import Layer


class Doubler(Layer):
    """y = 2 x: a layer numnet does not know how to export."""

    def forward(self, x, training=False):
        return 2 * x

    def backward(self, grad_out):
        return 2 * grad_out
'''


def test_a_layer_without_exporter_is_named(tmp_path):
    """A model file with a user's layer (registered by a module the interpreter imports at
    start-up): the export fails naming the layer, and writes nothing."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "my_layers.py").write_text(CUSTOM)
    (plugins / "sitecustomize.py").write_text("import my_layers  # noqa: F401\n")
    save = ("import numnet, my_layers; numnet.io.save(numnet.Sequential("
            "[numnet.Dense(3, 4), my_layers.Doubler(), numnet.Dense(4, 2)], seed=0), "
            "'custom.npz')")
    subprocess.run([sys.executable, "-c", save], cwd=tmp_path, check=True,
                   env=environment((plugins,)))
    err = assert_error(run("export", "custom.npz", "custom.onnx", cwd=tmp_path,
                           pythonpath=(plugins,)),
                       "layer 1 Doubler", "cannot be exported to ONNX")
    assert "Dense" in err  # the exportable types are listed
    assert not (tmp_path / "custom.onnx").exists()


def test_missing_onnx_names_the_extra(trained, tmp_path):
    fake = tmp_path / "fake"
    (fake / "onnx").mkdir(parents=True)
    (fake / "onnx" / "__init__.py").write_text("raise ImportError('onnx is not installed')\n")
    assert_error(run("export", trained["model"], "m.onnx", cwd=tmp_path, pythonpath=(fake,)),
                 'pip install "numnet[onnx]"')
    assert not (tmp_path / "m.onnx").exists()
