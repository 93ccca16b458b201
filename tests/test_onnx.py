"""ONNX export and import, checked by running the graphs with ONNX Runtime.

Every layer type, alone and in the command line's MLP presets, must give ONNX Runtime's
output equal to ``predict_logits`` (1e-5 in float32, 1e-10 in float64), with a dynamic
batch; ``from_onnx`` must give back the same function, and read PyTorch's export.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from onnx_helpers import (
    DTYPES,
    TOL,
    assert_same,
    graph,
    inputs,
    onnx,
    randomise,
    run,
    session,
    torch_export,
)

import numnet
from numnet import gradcheck
from numnet.layers import (
    AvgPool2D,
    BatchNorm1d,
    BatchNorm2d,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    Identity,
    Layer,
    LayerNorm,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Reshape,
    Sigmoid,
    Softmax,
    Tanh,
)
from numnet.onnx_io import (
    OnnxExportError,
    OnnxImportError,
    from_onnx,
    read_metadata,
    to_onnx,
)
from numnet.onnx_io._common import MIN_OPSET, default_opset
from numnet.onnx_io._export import EXPORTERS

ROOT = Path(__file__).resolve().parent.parent

#: every public numnet layer type: how to build a model of it alone (layers, per-sample
#: input shape), or None for a layer that cannot be exported (it must fail clearly)
LAYER_CASES: dict[str, Callable[[], tuple[list[Layer], tuple[int, ...]]] | None] = {
    "Dense": lambda: ([Dense(6, 5)], (6,)),
    "ReLU": lambda: ([ReLU()], (6,)),
    "LeakyReLU": lambda: ([LeakyReLU(0.2)], (6,)),
    "Sigmoid": lambda: ([Sigmoid()], (6,)),
    "Tanh": lambda: ([Tanh()], (6,)),
    "Softmax": lambda: ([Softmax()], (6,)),
    "Identity": lambda: ([Identity()], (6,)),
    "Dropout": lambda: ([Dropout(0.4)], (6,)),
    "Flatten": lambda: ([Flatten()], (2, 3, 4)),
    "BatchNorm1d": lambda: ([BatchNorm1d(6, momentum=0.2, eps=1e-3)], (6,)),
    "LayerNorm": lambda: ([LayerNorm(6, eps=1e-4)], (6,)),
    "Reshape": lambda: ([Reshape((2, -1, 4))], (3, 8, 2)),
    # the image layers: more variants in test_onnx_image.py
    "Conv2D": lambda: ([Conv2D(3, 4, 3, stride=2, padding=1)], (3, 9, 8)),
    "MaxPool2D": lambda: ([MaxPool2D(3, stride=2, padding=1)], (3, 9, 8)),
    "AvgPool2D": lambda: ([AvgPool2D((3, 2), stride=(1, 2), padding=1)], (3, 9, 8)),
    "GlobalAvgPool2D": lambda: ([GlobalAvgPool2D()], (3, 5, 4)),
    "BatchNorm2d": lambda: ([BatchNorm2d(3, momentum=0.2, eps=1e-3)], (3, 5, 4)),
}


def public_layer_types() -> set[str]:
    return {cls.__name__ for name, cls in Layer.registry.items()
            if cls.__module__.startswith("numnet.") and not cls.__name__.startswith("_")}


# -- every layer type -------------------------------------------------------------------------
def test_the_table_covers_every_layer_type():
    """A new layer needs an exporter, or an explicit None entry saying it has none."""
    assert set(LAYER_CASES) == public_layer_types()
    for name, case in LAYER_CASES.items():
        exportable = Layer.lookup(name) in EXPORTERS
        assert exportable == (case is not None), name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(LAYER_CASES))
def test_every_layer_type_matches_onnx_runtime(name, dtype, tmp_path):
    case = LAYER_CASES[name]
    if case is None:
        layer = Layer.lookup(name)()
        with pytest.raises(OnnxExportError, match="cannot be exported"):
            to_onnx(numnet.Sequential([layer], input_shape=(6,)))
        return
    layers, shape = case()
    model = randomise(numnet.Sequential(layers, input_shape=shape, dtype=dtype, seed=0))
    proto = to_onnx(model, tmp_path / "model.onnx")
    onnx.checker.check_model(onnx.load(tmp_path / "model.onnx"), full_check=True)
    assert_same(model, proto, shape)
    back = from_onnx(tmp_path / "model.onnx")
    kept = [type(layer) for layer in layers if not isinstance(layer, Dropout)]
    assert [type(layer) for layer in back.layers] == (kept or [Identity])
    assert back.dtype == model.dtype
    x = inputs(shape, dtype)
    np.testing.assert_allclose(back.predict_logits(x), model.predict_logits(x),
                               rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layer", [LeakyReLU(0.0), LeakyReLU(1.0), LeakyReLU(3.5),
                                   Dense(6, 4, bias=False), LayerNorm(6, eps=1e-6)],
                         ids=repr)
def test_layer_variants(layer, dtype):
    """alpha 0, 1 and > 1 (Max and Min in float64), a Dense without bias, a tiny eps."""
    model = randomise(numnet.Sequential([layer], input_shape=(6,), dtype=dtype, seed=0))
    proto = to_onnx(model)
    assert_same(model, proto, (6,))
    back = from_onnx(proto)
    x = inputs((6,), dtype)
    np.testing.assert_allclose(back.predict_logits(x), model.predict_logits(x),
                               rtol=TOL[dtype], atol=TOL[dtype])
    assert back.layers[0].get_config() == model.layers[0].get_config()


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm_of_a_sequence_normalises_the_last_axis(dtype):
    model = randomise(numnet.Sequential([LayerNorm(6), Flatten(), Dense(18, 3)],
                                        input_shape=(3, 6), dtype=dtype, seed=0))
    proto = to_onnx(model)
    assert_same(model, proto, (3, 6))
    x = inputs((3, 6), dtype)
    np.testing.assert_allclose(from_onnx(proto).predict_logits(x), model.predict_logits(x),
                               rtol=TOL[dtype], atol=TOL[dtype])


def test_float64_keeps_the_exact_eps_where_the_variance_is_tiny():
    """ONNX float attributes are float32; float64 exports must not round eps to one.

    (Only float64: in float32 this input, 1e-3 around the running mean and scaled by
    1/sqrt(1e-5), loses its low digits to cancellation whatever computes it.)
    """
    dtype = "float64"
    model = randomise(numnet.Sequential([BatchNorm1d(6, eps=1e-5), LayerNorm(6, eps=1e-5)],
                                        dtype=dtype, seed=0))
    model.layers[0].buffers["running_var"][...] = 1e-6
    x = model.layers[0].buffers["running_mean"] + 1e-3 * inputs((6,), dtype)
    np.testing.assert_allclose(run(to_onnx(model), x), model.predict_logits(x),
                               rtol=TOL[dtype], atol=TOL[dtype])
    back = from_onnx(to_onnx(model))
    assert back.layers[0].eps == back.layers[1].eps == 1e-5
    np.testing.assert_allclose(back.predict_logits(x), model.predict_logits(x),
                               rtol=TOL[dtype], atol=TOL[dtype])


# -- whole models -----------------------------------------------------------------------------
def mlp(hidden: tuple[int, ...], n_in: int, n_out: int, dropout: float = 0.0,
        batch_norm: bool = False, activation: type[Layer] = ReLU,
        dtype: str = "float32") -> numnet.Sequential:
    """The command line's ``mlp:SIZES`` preset (``--dropout``), optionally with BatchNorm."""
    layers: list[Layer] = []
    width = n_in
    for size in hidden:
        layers.append(Dense(width, size))
        if batch_norm:
            layers.append(BatchNorm1d(size))
        layers.append(activation())
        if dropout:
            layers.append(Dropout(dropout))
        width = size
    layers.append(Dense(width, n_out))
    return numnet.Sequential(layers, loss="cross_entropy", dtype=dtype, seed=0)


def blobs(n: int = 96, features: int = 20, classes: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=n)
    X = rng.standard_normal((n, features)) + y[:, None] * 0.8
    return X.astype(np.float32), y


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("preset", ["mlp", "mlp-dropout", "mlp-bn", "mlp-tanh", "linear"])
def test_cli_presets_match_onnx_runtime_after_training(preset, dtype):
    hidden, kwargs = {
        "mlp": ((32,), {}), "mlp-dropout": ((32, 16), {"dropout": 0.3}),
        "mlp-bn": ((32, 16), {"batch_norm": True, "dropout": 0.2}),
        "mlp-tanh": ((16,), {"activation": Tanh}), "linear": ((), {}),
    }[preset]
    model = mlp(hidden, 20, 4, dtype=dtype, **kwargs)
    X, y = blobs()
    model.fit(X, y, epochs=2, batch_size=16, verbose=0, seed=0)  # trained running statistics
    proto = to_onnx(model, metadata={"classes": ["a", "b", "c", "d"]})
    assert_same(model, proto, (20,))
    assert [n.op_type for n in proto.graph.node].count("Gemm") == len(hidden) + 1
    assert "Dropout" not in [n.op_type for n in proto.graph.node]


def test_mnist_mlp_shape_matches_onnx_runtime():
    model = randomise(mlp((256, 128), 784, 10), seed=3)
    for layer in model.layers:  # He-scaled weights keep the logits of order one
        if isinstance(layer, Dense):
            layer.params["W"] *= np.sqrt(2 / layer.in_features) / 0.7
    assert_same(model, to_onnx(model), (784,), batches=(1, 300))


@pytest.mark.parametrize("opset", sorted({MIN_OPSET, 16, 17, 18, default_opset()}))
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_supported_opset_runs(opset, dtype):
    model = randomise(numnet.Sequential(
        [Dense(5, 8), BatchNorm1d(8), LeakyReLU(0.1), LayerNorm(8), Tanh(), Dense(8, 3),
         Softmax()], dtype=dtype, seed=0))
    proto = to_onnx(model, opset=opset)
    assert proto.opset_import[0].version == opset
    onnx.checker.check_model(proto, full_check=True)
    assert_same(model, proto, (5,))
    x = inputs((5,), dtype)
    np.testing.assert_allclose(from_onnx(proto).predict_logits(x), model.predict_logits(x),
                               rtol=TOL[dtype], atol=TOL[dtype])


def test_default_opset_is_the_newest_tested_and_at_least_17():
    proto = to_onnx(mlp((4,), 3, 2))
    assert proto.opset_import[0].version == default_opset() >= 17
    assert proto.ir_version == onnx.helper.find_min_ir_version_for(proto.opset_import, True)


def test_graph_interface_names_types_and_dynamic_batch(tmp_path):
    model = mlp((8,), 5, 3, dtype="float64")
    proto = to_onnx(model, tmp_path / "m.onnx", input_name="pixels", output_name="scores")
    (graph_input,), (graph_output,) = proto.graph.input, proto.graph.output
    assert (graph_input.name, graph_output.name) == ("pixels", "scores")
    for value, size in ((graph_input, 5), (graph_output, 3)):
        tensor = value.type.tensor_type
        assert tensor.elem_type == onnx.TensorProto.DOUBLE
        assert tensor.shape.dim[0].dim_param == "N"
        assert tensor.shape.dim[1].dim_value == size
    assert not proto.graph.input[1:]  # the weights are initializers, not inputs
    sess = session(onnx.load(tmp_path / "m.onnx"))
    assert [i.name for i in sess.get_inputs()] == ["pixels"]
    for batch in (1, 7, 1000):
        (out,) = sess.run(None, {"pixels": inputs((5,), "float64", batch)})
        assert out.shape == (batch, 3)


@pytest.mark.parametrize(("input_name", "output_name"), [("0.Gemm", "logits"),
                                                         ("input", "0.W"),
                                                         ("2.b", "1.Relu")])
def test_names_of_the_graph_may_be_those_of_inner_tensors(input_name, output_name):
    """The input and output keep the names given, even the ones numnet gives its own
    tensors ("<layer index>.<name>"): those are renamed instead."""
    model = randomise(mlp((4,), 3, 2))
    proto = to_onnx(model, input_name=input_name, output_name=output_name)
    assert (proto.graph.input[0].name, proto.graph.output[0].name) == (input_name, output_name)
    assert_same(model, proto, (3,))


def test_model_of_dropout_only_is_the_identity():
    model = numnet.Sequential([Dropout(0.5)], input_shape=(4,))
    proto = to_onnx(model)
    assert [n.op_type for n in proto.graph.node] == ["Identity"]
    assert_same(model, proto, (4,))


# -- metadata ---------------------------------------------------------------------------------
def test_metadata_carries_version_loss_and_classes(tmp_path):
    meta = {"classes": ["cat", "dog", 7], "preprocessing": {"kind": "scale", "max": 255.0},
            "command": "numnet train --data mnist", "epochs": 3}
    proto = to_onnx(mlp((4,), 3, 3), tmp_path / "m.onnx", metadata=meta)
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["numnet_version"] == numnet.__version__
    assert props["loss"] == "cross_entropy"
    assert props["command"] == "numnet train --data mnist"  # text as it is
    assert read_metadata(tmp_path / "m.onnx") == {
        "numnet_version": numnet.__version__, "loss": "cross_entropy", **meta}
    assert proto.producer_name == "numnet" and proto.producer_version == numnet.__version__
    custom = session(proto).get_modelmeta().custom_metadata_map
    assert custom["classes"] == '["cat", "dog", 7]'


def test_metadata_from_a_numnet_model_file(tmp_path):
    """The command line's model files keep classes in their metadata: pass it through."""
    model = mlp((4,), 3, 2)
    numnet.io.save(model, tmp_path / "m.npz", metadata={"classes": ["no", "yes"]})
    proto = to_onnx(numnet.io.load(tmp_path / "m.npz"),
                    metadata=numnet.io.load_metadata(tmp_path / "m.npz"))
    assert read_metadata(proto)["classes"] == ["no", "yes"]


def test_bad_metadata_is_refused():
    model = mlp((4,), 3, 2)
    with pytest.raises(OnnxExportError, match="written by numnet itself"):
        to_onnx(model, metadata={"numnet_version": "9"})
    with pytest.raises(OnnxExportError, match="JSON"):
        to_onnx(model, metadata={"when": object()})
    with pytest.raises(OnnxExportError, match="mapping"):
        to_onnx(model, metadata=["classes"])


# -- export errors ----------------------------------------------------------------------------
class Scale(Layer, register=False):
    """A custom layer numnet knows nothing about: y = 2 x."""

    def forward(self, x, training=False):
        return 2 * np.asarray(x, dtype=self.dtype)


class WiderDense(Dense, register=False):
    """A subclass computing something else than its parent must not pass as a Dense."""

    def forward(self, x, training=False):
        return 2 * super().forward(x, training)


@pytest.mark.parametrize("odd", [Scale(), WiderDense(4, 4)], ids=["custom", "subclass"])
def test_a_layer_without_exporter_is_a_clear_error(odd, tmp_path):
    model = numnet.Sequential([Dense(3, 4), odd, Dense(4, 2)], seed=0)
    path = tmp_path / "m.onnx"
    with pytest.raises(OnnxExportError) as info:
        to_onnx(model, path)
    message = str(info.value)
    assert f"layer 1 {odd!r} cannot be exported to ONNX" in message
    assert type(odd).__name__ in message and "Dense" in message  # what is exportable
    assert not path.exists() and not list(tmp_path.iterdir())


class Residual(numnet.Sequential):
    """A model class computing something else than the chain of its layers: y = f(x) + x."""

    def _forward_layers(self, x, training):
        return super()._forward_layers(x, training) + x


class Scaled(numnet.Sequential):
    """A model class preprocessing its input: what the chain reads is x / 2."""

    def _input(self, x, training=False):
        return super()._input(x, training) / 2


class Named(numnet.Sequential):
    """A model class that adds a method only: it computes what Sequential does."""

    def describe(self):
        return f"{len(self.layers)} layers"


@pytest.mark.parametrize(("cls", "method"), [(Residual, "_forward_layers"),
                                             (Scaled, "_input")])
def test_a_model_class_with_its_own_forward_is_a_clear_error(cls, method, tmp_path):
    model = cls([Dense(4, 4), Tanh()], input_shape=(4,), seed=0)
    path = tmp_path / "m.onnx"
    with pytest.raises(OnnxExportError, match=f"{cls.__name__} overrides {method}"):
        to_onnx(model, path)
    assert not path.exists()
    named = randomise(Named([Dense(4, 4), Tanh()], input_shape=(4,), seed=0))
    assert_same(named, to_onnx(named), (4,))


def test_export_argument_errors():
    model = mlp((4,), 3, 2)
    with pytest.raises(OnnxExportError, match="opset must be an integer from 13"):
        to_onnx(model, opset=12)
    with pytest.raises(OnnxExportError, match="opset"):
        to_onnx(model, opset=onnx.defs.onnx_opset_version() + 1)
    with pytest.raises(OnnxExportError, match="input_shape"):
        to_onnx(numnet.Sequential([ReLU()]))
    with pytest.raises(OnnxExportError, match="differs from the model's input shape"):
        to_onnx(model, input_shape=(4,))
    with pytest.raises(OnnxExportError, match="per-sample shape"):
        to_onnx(numnet.Sequential([ReLU()]), input_shape=(0,))
    with pytest.raises(OnnxExportError, match="two different names"):
        to_onnx(model, input_name="x", output_name="x")
    with pytest.raises(OnnxExportError, match="non-empty string"):
        to_onnx(model, output_name="")
    with pytest.raises(TypeError, match="numnet Sequential"):
        to_onnx([Dense(3, 2)])
    with pytest.raises(OnnxExportError, match=r"layer 1 .*cannot take input"):
        to_onnx(numnet.Sequential([Flatten(), Dense(6, 2)]), input_shape=(2, 2))
    model.layers[0].params["W"][0, 0] = np.nan
    with pytest.raises(OnnxExportError, match=r"layer 0 Dense.*W holds NaN"):
        to_onnx(model)


def test_input_shape_for_a_model_that_fixes_none():
    model = numnet.Sequential([Flatten(), Tanh()])
    proto = to_onnx(model, input_shape=(2, 3))
    assert_same(model, proto, (2, 3))
    assert proto.graph.output[0].type.tensor_type.shape.dim[1].dim_value == 6


# -- files ------------------------------------------------------------------------------------
def test_the_file_is_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "m.onnx"
    to_onnx(mlp((4,), 3, 2), path)
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        to_onnx(mlp((5,), 3, 2), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temporary left
    with pytest.raises(FileNotFoundError):
        to_onnx(mlp((4,), 3, 2), tmp_path / "missing" / "m.onnx")


def test_the_public_names_in_numnet_io():
    assert numnet.io.to_onnx is to_onnx and numnet.io.from_onnx is from_onnx


def test_onnx_is_imported_only_when_used():
    code = "import numnet, numnet.onnx_io, sys; assert 'onnx' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_missing_onnx_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` fail
    for call in (lambda: to_onnx(mlp((4,), 3, 2)), lambda: from_onnx(b"")):
        with pytest.raises(ImportError, match=r'pip install "numnet\[onnx\]"'):
            call()


# -- import -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_restores_the_model(dtype, tmp_path):
    model = mlp((16, 8), 10, 3, dropout=0.2, batch_norm=True, dtype=dtype)
    randomise(model)
    path = tmp_path / "m.onnx"
    to_onnx(model, path, metadata={"classes": [0, 1, 2]})
    back = from_onnx(path, seed=5)
    assert [type(layer) for layer in back.layers] == [
        type(layer) for layer in model.layers if not isinstance(layer, Dropout)]
    assert type(back.loss) is type(model.loss)
    assert back.input_shape == (10,) and not back.training and back.seed == 5
    x = inputs((10,), dtype)
    np.testing.assert_allclose(back.predict_logits(x), model.predict_logits(x),
                               rtol=TOL[dtype], atol=TOL[dtype])
    source = {k: v for k, v in model.state_dict().items()}
    kept = [i for i, layer in enumerate(model.layers) if not isinstance(layer, Dropout)]
    for new_index, old_index in enumerate(kept):
        for name, value in back.layers[new_index].params.items():
            np.testing.assert_allclose(value, source[f"{old_index}.{name}"], rtol=1e-15)
    bn = back.layers[1]
    assert (bn.momentum, bn.eps) == (0.1, 1e-5)


def test_loss_recorded_guessed_or_given():
    model = mlp((4,), 3, 2)
    proto = to_onnx(model)
    assert isinstance(from_onnx(proto).loss, numnet.CrossEntropy)
    assert isinstance(from_onnx(proto, loss="mse").loss, numnet.MeanSquaredError)
    model.loss = None
    assert from_onnx(to_onnx(model)).loss is None
    guessed = from_onnx(to_onnx(model, metadata={"classes": ["a", "b"]}))
    assert isinstance(guessed.loss, numnet.CrossEntropy)  # two logits, two classes
    binary = numnet.Sequential([Dense(3, 1)])
    guessed = from_onnx(to_onnx(binary, metadata={"classes": ["a", "b"]}))
    assert isinstance(guessed.loss, numnet.BinaryCrossEntropy)
    proto = to_onnx(binary)
    proto.metadata_props.add(key="loss", value="hinge")
    with pytest.raises(OnnxImportError, match="recorded loss 'hinge'"):
        from_onnx(proto)


W = np.arange(6, dtype=np.float32).reshape(3, 2) / 5
B = np.array([0.5, -1.0], dtype=np.float32)


@pytest.mark.parametrize("form", ["matmul+add", "matmul", "gemm-transB", "gemm-alpha-beta",
                                  "constant-node", "transposed-constant"])
def test_dense_patterns(form):
    h = onnx.helper
    if form == "matmul+add":
        nodes, inits = [h.make_node("MatMul", ["x", "W"], ["t"]),
                        h.make_node("Add", ["B", "t"], ["y"])], {"W": W, "B": B}
    elif form == "matmul":
        nodes, inits = [h.make_node("MatMul", ["x", "W"], ["y"])], {"W": W}
    elif form == "gemm-transB":
        nodes, inits = [h.make_node("Gemm", ["x", "Wt", "B"], ["y"], transB=1)], {
            "Wt": W.T.copy(), "B": B}
    elif form == "gemm-alpha-beta":
        nodes, inits = [h.make_node("Gemm", ["x", "W", "B"], ["y"], alpha=0.5, beta=2.0)], {
            "W": 2 * W, "B": B.reshape(1, 2) / 2}
    elif form == "constant-node":
        nodes, inits = [h.make_node("Constant", [], ["W"], value=onnx.numpy_helper.from_array(
            W, "W")), h.make_node("Gemm", ["x", "W", "B"], ["y"])], {"B": B}
    else:  # weights computed from constants: folded before the import
        nodes, inits = [h.make_node("Transpose", ["Wt"], ["W"]),
                        h.make_node("Gemm", ["x", "W", "B"], ["y"])], {"Wt": W.T.copy(),
                                                                       "B": B}
    proto = graph(nodes, inits)
    model = from_onnx(proto)
    assert [type(layer) for layer in model.layers] == [Dense]
    x = inputs((3,), "float32")
    expected = x @ W + (0 if form == "matmul" else B)
    np.testing.assert_allclose(model.predict_logits(x), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(run(proto, x), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("target", [[0, -1], [-1, 6], [0, 6]])
def test_reshape_to_rows_is_a_flatten(target):
    h = onnx.helper
    proto = graph([h.make_node("Reshape", ["x", "shape"], ["y"])],
                  {"shape": np.array(target, dtype=np.int64)}, n_out=6,
                  inputs_=[h.make_tensor_value_info("x", onnx.TensorProto.FLOAT,
                                                    ["N", 2, 3])])
    model = from_onnx(proto)
    assert [type(layer) for layer in model.layers] == [Flatten]
    x = inputs((2, 3), "float32")
    np.testing.assert_array_equal(model.predict_logits(x), run(proto, x))


@pytest.mark.parametrize(("target", "sample", "layer"), [([2, -1], (6,), Flatten),
                                                        ([2, 3, 2], (3, 2), Reshape)])
def test_reshape_of_a_graph_of_fixed_batch_keeps_the_batch(target, sample, layer):
    """torch.onnx.export without dynamic_axes writes x.view(x.size(0), -1) as a Reshape to
    (B, -1) of an input of batch B: its first axis is the batch, kept for any batch."""
    h = onnx.helper
    proto = graph([h.make_node("Reshape", ["x", "shape"], ["y"])],
                  {"shape": np.array(target, dtype=np.int64)}, n_out=sample,
                  inputs_=[h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 2, 3])])
    model = from_onnx(proto)
    assert [type(each) for each in model.layers] == [layer]
    x = inputs((2, 3), "float32", batch=2)
    np.testing.assert_array_equal(model.predict_logits(x), run(proto, x))
    x = inputs((2, 3), "float32", batch=5)
    np.testing.assert_array_equal(model.predict_logits(x), x.reshape(5, *sample))
    other = graph([h.make_node("Reshape", ["x", "shape"], ["y"], name="r")],
                  {"shape": np.array([1, -1], dtype=np.int64)}, n_out=12,
                  inputs_=[h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 2, 3])])
    with pytest.raises(OnnxImportError, match=r"'r' \(Reshape\) reshapes to \[1, -1\]"):
        from_onnx(other)  # the samples merged: not a per-sample reshape


@pytest.mark.parametrize(("target", "sample"), [([0, 3, 1, 2], (3, 1, 2)),
                                               ([-1, 3, 2], (3, 2)),
                                               ([0, 0, -1, 1], (2, 3, 1))])
def test_reshape_to_a_grid_is_a_reshape(target, sample):
    """0 copies the input's size at its position, -1 is inferred; the batch is kept."""
    h = onnx.helper
    proto = graph([h.make_node("Reshape", ["x", "shape"], ["y"])],
                  {"shape": np.array(target, dtype=np.int64)}, n_in=(2, 3), n_out=sample)
    model = from_onnx(proto)
    assert [type(layer) for layer in model.layers] == [Reshape]
    x = inputs((2, 3), "float32")
    expected = run(proto, x)
    assert model.output_shape() == expected.shape[1:]
    np.testing.assert_array_equal(model.predict_logits(x), expected)


@pytest.mark.parametrize("target", [[2, -1], [0, 4, 2], [-1, 2, -1], [0, 2, 3, 0]])
def test_reshape_that_fixes_the_batch_or_changes_the_size_is_refused(target):
    h = onnx.helper
    proto = graph([h.make_node("Reshape", ["x", "shape"], ["y"], name="r")],
                  {"shape": np.array(target, dtype=np.int64)}, n_in=(2, 3), n_out=6)
    with pytest.raises(OnnxImportError, match=r"'r' \(Reshape\) reshapes "):
        from_onnx(proto)


def test_dropout_and_identity_nodes():
    """Dropout is dropped (its mask unused); Identity of a constant is a constant; Identity
    of the data is an Identity layer."""
    h = onnx.helper
    proto = graph([h.make_node("Identity", ["W0"], ["W"]),
                   h.make_node("Gemm", ["x", "W", "B"], ["t"]),
                   h.make_node("Dropout", ["t", "ratio"], ["d"]),
                   h.make_node("Identity", ["d"], ["y"])],
                  {"W0": W, "B": B, "ratio": np.array(0.5, np.float32)}, opset=18)
    model = from_onnx(proto)
    assert [type(layer) for layer in model.layers] == [Dense, Identity]
    x = inputs((3,), "float32")
    np.testing.assert_allclose(model.predict_logits(x), x @ W + B, rtol=1e-6)
    masked = graph([h.make_node("Dropout", ["x"], ["kept", "mask"], name="drop"),
                    h.make_node("Cast", ["mask"], ["m"], to=onnx.TensorProto.FLOAT),
                    h.make_node("Add", ["kept", "m"], ["y"])], {}, n_out=3)
    with pytest.raises(OnnxImportError, match=r"'drop' \(Dropout\) has its extra output "
                                              "'mask' used"):
        from_onnx(masked)
    training = graph([h.make_node("Dropout", ["x", "", "on"], ["y"], name="drop")],
                     {"on": np.array(True)}, n_out=3)
    with pytest.raises(OnnxImportError, match=r"'drop' \(Dropout\) drops units"):
        from_onnx(training)


@pytest.mark.parametrize("square", ["Mul", "Pow"])
@pytest.mark.parametrize("scale", ["Div", "Reciprocal", "Div1"])
@pytest.mark.parametrize("affine", ["none", "gamma", "gamma+beta"])
def test_decomposed_layer_norm_variants(square, scale, affine):
    """What exporters write for LayerNorm below opset 17, in its usual spellings."""
    h = onnx.helper
    rng = np.random.default_rng(0)
    gamma, beta = rng.uniform(0.5, 2, 3).astype(np.float32), rng.normal(size=3).astype(
        np.float32)
    inits = {"eps": np.array(1e-3, np.float32), "two": np.array(2.0, np.float32),
             "one": np.array(1.0, np.float32), "gamma": gamma, "beta": beta}
    nodes = [h.make_node("ReduceMean", ["x"], ["mu"], axes=[-1]),
             h.make_node("Sub", ["x", "mu"], ["d"]),
             h.make_node("Mul", ["d", "d"], ["sq"]) if square == "Mul"
             else h.make_node("Pow", ["d", "two"], ["sq"]),
             h.make_node("ReduceMean", ["sq"], ["var"], axes=[-1]),
             h.make_node("Add", ["var", "eps"], ["ve"]),
             h.make_node("Sqrt", ["ve"], ["std"])]
    if scale == "Div":
        nodes.append(h.make_node("Div", ["d", "std"], ["xh"]))
    else:
        nodes += [h.make_node("Reciprocal", ["std"], ["inv"]) if scale == "Reciprocal"
                  else h.make_node("Div", ["one", "std"], ["inv"]),
                  h.make_node("Mul", ["inv", "d"], ["xh"])]
    out = "xh"
    if affine != "none":
        nodes.append(h.make_node("Mul", ["xh", "gamma"], ["g"]))
        out = "g"
    if affine == "gamma+beta":
        nodes.append(h.make_node("Add", ["g", "beta"], ["b"]))
        out = "b"
    nodes.append(h.make_node("Relu", [out], ["y"]))
    proto = graph(nodes, inits, n_out=3, opset=13)
    model = from_onnx(proto)
    assert [type(layer) for layer in model.layers] == [LayerNorm, ReLU]
    assert model.layers[0].eps == 1e-3
    x = inputs((3,), "float32")
    np.testing.assert_allclose(model.predict_logits(x), run(proto, x), rtol=1e-5, atol=1e-5)


def test_weights_must_be_constants():
    h = onnx.helper
    square = graph([h.make_node("MatMul", ["x", "x"], ["y"], name="mm")], {}, n_in=3,
                   n_out=3)
    with pytest.raises(OnnxImportError, match="'mm' \\(MatMul\\) takes its weight from 'x'"):
        from_onnx(square)


@pytest.mark.parametrize("opset", [11, 13])
def test_constants_are_folded_at_the_graph_opset(opset):
    # a weight computed from constants (torch.onnx.export with do_constant_folding=False)
    # is folded as the graph's opset defines its nodes: Unsqueeze takes its axes as an
    # attribute up to opset 12 and as an input from 13
    h = onnx.helper
    w = np.arange(1, 4, dtype=np.float32)
    if opset < 13:
        unsqueeze = h.make_node("Unsqueeze", ["w"], ["W"], axes=[1])
        inits = {"w": w}
    else:
        unsqueeze = h.make_node("Unsqueeze", ["w", "axes"], ["W"])
        inits = {"w": w, "axes": np.array([1], np.int64)}
    proto = graph([unsqueeze, h.make_node("MatMul", ["x", "W"], ["y"])], inits, n_out=1,
                  opset=opset)
    model = from_onnx(proto)
    x = inputs((3,), "float32")
    np.testing.assert_allclose(model.predict_logits(x), x @ w[:, None], rtol=1e-6)
    np.testing.assert_allclose(model.predict_logits(x), run(proto, x), rtol=1e-6)


def test_import_unsupported_graphs_name_the_node(tmp_path):
    h = onnx.helper
    cos = graph([h.make_node("Gemm", ["x", "W", "B"], ["t"], name="fc"),
                 h.make_node("Cos", ["t"], ["y"], name="wave")], {"W": W, "B": B})
    with pytest.raises(OnnxImportError, match=r"node 1 'wave' \(Cos\).*op Cos is not "
                                              r"supported"):
        from_onnx(cos)
    branch = graph([h.make_node("Relu", ["x"], ["a"]), h.make_node("Sigmoid", ["x"], ["b"]),
                    h.make_node("Add", ["a", "b"], ["y"])], {}, n_out=3)
    with pytest.raises(OnnxImportError, match="'x' feeds 2 nodes.*chain of layers"):
        from_onnx(branch)
    weight_input = graph([h.make_node("MatMul", ["x", "w"], ["y"], name="mm")], {},
                         inputs_=[h.make_tensor_value_info("x", onnx.TensorProto.FLOAT,
                                                           ["N", 3]),
                                  h.make_tensor_value_info("w", onnx.TensorProto.FLOAT,
                                                           [3, 2])])
    with pytest.raises(OnnxImportError, match="2 input"):
        from_onnx(weight_input)
    ints = graph([h.make_node("Relu", ["x"], ["y"])], {}, n_out=3,
                 elem=onnx.TensorProto.INT32)
    with pytest.raises(OnnxImportError, match="INT32"):
        from_onnx(ints)
    softmax0 = graph([h.make_node("Softmax", ["x"], ["y"], axis=0, name="s")], {}, n_out=3)
    with pytest.raises(OnnxImportError, match=r"'s' \(Softmax\) normalises axis 0"):
        from_onnx(softmax0)
    training = graph([h.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"],
                                  training_mode=1)],
                     {k: np.ones(3, np.float32) for k in "gbmv"}, n_out=3)
    with pytest.raises(OnnxImportError, match="training_mode"):
        from_onnx(training)


def test_import_refuses_files_that_are_not_onnx(tmp_path):
    with pytest.raises(FileNotFoundError):
        from_onnx(tmp_path / "missing.onnx")
    (tmp_path / "text.onnx").write_text("hello, I am not a model\n" * 20)
    with pytest.raises(OnnxImportError, match="text.onnx"):
        from_onnx(tmp_path / "text.onnx")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(OnnxImportError, match="holds no graph"):
        from_onnx(tmp_path / "empty.onnx")
    data = to_onnx(mlp((16,), 10, 3)).SerializeToString()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(OnnxImportError, match="cut.onnx"):
        from_onnx(tmp_path / "cut.onnx")
    with pytest.raises(TypeError, match="path, bytes or an onnx.ModelProto"):
        from_onnx(42)
    assert isinstance(from_onnx(data), numnet.Sequential)  # bytes are fine


# -- PyTorch ----------------------------------------------------------------------------------
@pytest.mark.parametrize("opset", [13, 17, 20])  # 20: the TorchScript exporter's newest
def test_torch_mlp_round_trips_through_from_onnx(opset, tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    nn = torch.nn
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(10, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3),
                           nn.Linear(16, 12), nn.LayerNorm(12), nn.Tanh(), nn.Linear(12, 8),
                           nn.Sigmoid(), nn.Linear(8, 6), nn.LeakyReLU(0.2), nn.Linear(6, 3))
    with torch.no_grad():
        module[1].weight.uniform_(0.5, 2.0)
        module[1].bias.normal_()
        module[1].running_mean.normal_()
        module[1].running_var.uniform_(0.3, 3.0)
        module[5].weight.normal_()
        module[5].bias.normal_()
    module.eval()
    x = inputs((10,), "float32")
    path = tmp_path / "torch.onnx"
    torch_export(torch, module, torch.from_numpy(x[:2]), path, opset)
    model = from_onnx(path, loss="cross_entropy", seed=0)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Dense", "BatchNorm1d", "ReLU", "Dense", "LayerNorm", "Tanh", "Dense", "Sigmoid",
        "Dense", "LeakyReLU", "Dense"]
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.predict_logits(x), expected, rtol=1e-5, atol=1e-5)
    assert (model.layers[1].eps, model.layers[1].momentum, model.layers[9].alpha) == (
        1e-5, 0.1, 0.2)

    # the imported model is a numnet model: gradients check, and it trains
    y = np.arange(len(x)) % 3
    errors = gradcheck.check_model(model, x, y, training=True)
    assert max(errors.values()) < 1e-6
    before = model.evaluate(x, y)["loss"]
    model.fit(x, y, epochs=20, batch_size=7, optimizer=numnet.Adam(lr=0.01), verbose=0,
              seed=0)
    assert model.evaluate(x, y)["loss"] < before


# -- the benchmark ----------------------------------------------------------------------------
def test_throughput_benchmark_runs(tmp_path):
    """bench/onnx_throughput.py on a few random images, MLP and CNN: it runs and checks the
    outputs agree (its speed is reported, never asserted)."""
    out = tmp_path / "onnx.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "onnx_throughput.py"),
                           "--synthetic", "1200", "--repeats", "1", "--threads", "1",
                           "--json", str(out)], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "CPU:" in done.stdout and "outputs agree" in done.stdout
    rows = json.loads(out.read_text())["rows"]
    assert [(row["model"], row["batch"]) for row in rows] == [
        ("mlp", 1000), ("mlp", 1200), ("cnn", 1000), ("cnn", 1200)]


def test_torch_variants_view_images_no_bias_softmax(tmp_path):
    """``x.view(x.size(0), -1)`` (a Reshape to a shape computed from Shape(x)), images
    flattened, a Linear without bias, Softmax(dim=1); an op numnet lacks is named."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    nn = torch.nn

    class View(nn.Module):
        def forward(self, x):
            return x.view(x.size(0), -1)

    torch.manual_seed(0)
    module = nn.Sequential(View(), nn.Linear(16, 8, bias=False), nn.ReLU(),
                           nn.Linear(8, 5), nn.Softmax(dim=1)).eval()
    x = inputs((1, 4, 4), "float32")
    path = tmp_path / "view.onnx"
    torch_export(torch, module, torch.from_numpy(x[:2]), path, 17)
    assert "Shape" in [n.op_type for n in onnx.load(path).graph.node]
    model = from_onnx(path)
    assert [type(layer) for layer in model.layers] == [Flatten, Dense, ReLU, Dense, Softmax]
    assert model.input_shape == (1, 4, 4) and not model.layers[1].bias
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.predict_logits(x), expected, rtol=1e-5, atol=1e-6)

    torch_export(torch, nn.Sequential(nn.Flatten(), nn.Linear(16, 4), nn.GELU()).eval(),
                  torch.from_numpy(x[:2]), path, 17)
    with pytest.raises(OnnxImportError, match=r"tensor '.*Gemm.*' feeds 2 nodes"):
        from_onnx(path)  # GELU written out as Div, Erf, Add, Mul, Mul
    torch_export(torch, nn.Sequential(nn.Flatten(), nn.Linear(16, 4), nn.ELU()).eval(),
                  torch.from_numpy(x[:2]), path, 17)
    with pytest.raises(OnnxImportError, match=r"\(Elu\): the op Elu is not supported"):
        from_onnx(path)
