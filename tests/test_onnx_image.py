"""ONNX export and import of the image layers and CNNs, checked with ONNX Runtime and PyTorch.

float32 graphs use ONNX's Conv, MaxPool, AveragePool and GlobalAveragePool; float64 graphs
write the convolution and the average pools with operators ONNX Runtime runs in float64
(Pad, Gather, Einsum, ReduceMean). Both must equal ``predict_logits`` (1e-5, 1e-10), and
``from_onnx`` must read both back, as well as what ``torch.onnx.export`` writes for a CNN.
"""

from __future__ import annotations

import copy

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
    torch_export,
)

import numnet
from numnet import gradcheck
from numnet.cli.train import build_model
from numnet.layers import (
    AvgPool2D,
    BatchNorm2d,
    Conv2D,
    Dense,
    Flatten,
    GlobalAvgPool2D,
    Layer,
    MaxPool2D,
    ReLU,
    Reshape,
)
from numnet.onnx_io import OnnxImportError, from_onnx, to_onnx
from numnet.onnx_io._common import MIN_OPSET, default_opset

h = onnx.helper


def he_scaled(model: numnet.Sequential, seed: int = 0) -> numnet.Sequential:
    """Random parameters (:func:`randomise`), weights rescaled to He's variance so the
    outputs stay of order one however wide the layers are."""
    randomise(model, seed)
    for layer in model.layers:
        if "W" in layer.params:
            fan_in = layer.params["W"].size // layer.params["W"].shape[
                0 if isinstance(layer, Conv2D) else 1]
            layer.params["W"] *= np.sqrt(2 / fan_in) / 0.7
    return model


def assert_round_trip(model: numnet.Sequential, proto: onnx.ModelProto,
                      shape: tuple[int, ...]) -> numnet.Sequential:
    """``from_onnx`` gives the same layer types and the same function."""
    back = from_onnx(proto)
    assert [type(layer) for layer in back.layers] == [type(layer) for layer in model.layers]
    assert back.dtype == model.dtype and back.input_shape == shape
    dtype = model.dtype.name
    x = inputs(shape, dtype)
    np.testing.assert_allclose(back.predict_logits(x), model.predict_logits(x),
                               rtol=TOL[dtype], atol=TOL[dtype])
    return back


# -- the layers, in their variants ------------------------------------------------------------
VARIANTS = [
    (Conv2D(3, 4, 3, padding="same"), (3, 7, 6)),
    (Conv2D(3, 4, 4, padding="same"), (3, 7, 6)),  # even kernel: one more at bottom/right
    (Conv2D(3, 4, (2, 3), padding="same", dilation=(2, 1)), (3, 9, 8)),
    (Conv2D(3, 4, 3, stride=(3, 2), dilation=2, bias=False), (3, 9, 8)),
    (Conv2D(3, 2, (1, 3), stride=2, padding=(0, 1)), (3, 5, 8)),
    (Conv2D(2, 3, 5), (2, 5, 5)),  # one output pixel: the window gather fixes no stride
    (Conv2D(2, 3, 3, stride=2, padding="valid"), (2, 4, 4)),
    (MaxPool2D(2), (3, 9, 8)),
    (MaxPool2D((3, 2), stride=(2, 1), padding=1), (3, 9, 8)),
    (MaxPool2D(3, stride=1, padding=1), (2, 5, 4)),
    (AvgPool2D(2), (3, 9, 8)),
    (AvgPool2D(3, stride=2, padding=1), (3, 9, 8)),
    (AvgPool2D((2, 3), stride=1), (2, 5, 4)),
    (GlobalAvgPool2D(), (4, 1, 1)),
    (BatchNorm2d(3, eps=1e-4), (3, 1, 4)),
    (Reshape((1, 28, 28)), (784,)),
    (Reshape((-1,)), (2, 3)),  # comes back as a Flatten
]


def _config(layer: Layer) -> dict:
    """The config from_onnx gives back: "valid" is 0, an odd kernel's "same" its symmetric
    padding (the export writes explicit pads)."""
    config = layer.get_config()
    if config.get("padding") == "valid":
        config["padding"] = 0
    if isinstance(layer, Conv2D) and layer.padding == "same":
        top, bottom, left, right = layer.pads
        if (top, left) == (bottom, right):
            config["padding"] = top if top == left else [top, left]
    config.pop("init", None)
    return config


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("layer", "shape"), VARIANTS, ids=[repr(v[0]) for v in VARIANTS])
def test_layer_variants_match_onnx_runtime_and_come_back(layer, shape, dtype):
    model = randomise(numnet.Sequential([copy.deepcopy(layer)], input_shape=shape, dtype=dtype,
                                        seed=0))
    proto = to_onnx(model)
    ops = [node.op_type for node in proto.graph.node]
    if isinstance(layer, Conv2D):  # ONNX Runtime has no float64 Conv
        assert ops == (["Conv"] if dtype == "float32" else [
            *(["Pad"] if any(layer.pads) else []), "Gather", "Gather", "Einsum",
            *(["Add"] if layer.bias else [])])
    assert_same(model, proto, shape)
    back = from_onnx(proto)
    expected = Flatten if layer.get_config().get("shape") == [-1] else type(layer)
    assert [type(b) for b in back.layers] == [expected]
    if expected is type(layer):
        assert _config(back.layers[0]) == _config(layer) | {"dtype": dtype}
    x = inputs(shape, dtype)
    np.testing.assert_allclose(back.predict_logits(x), model.predict_logits(x),
                               rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("opset", sorted({MIN_OPSET, 17, 18, default_opset()}))
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_supported_opset_runs_a_cnn(opset, dtype):
    """ReduceMean takes its axes as an attribute up to opset 17, as an input from 18."""
    model = he_scaled(numnet.Sequential(
        [Conv2D(2, 3, 3, padding=1), BatchNorm2d(3), ReLU(), AvgPool2D(2), MaxPool2D(2, 1),
         Conv2D(3, 4, 2), GlobalAvgPool2D(), Dense(4, 3)], input_shape=(2, 8, 8), dtype=dtype,
        seed=0))
    proto = to_onnx(model, opset=opset)
    onnx.checker.check_model(proto, full_check=True)
    assert_same(model, proto, (2, 8, 8))
    assert_round_trip(model, proto, (2, 8, 8))


# -- the command line's CNN -------------------------------------------------------------------
def mnist_cnn(dtype: str, flat: bool = False) -> numnet.Sequential:
    """The CNN preset: conv(1->32, 3x3) ReLU maxpool2 conv(32->64, 3x3) ReLU maxpool2
    Flatten Dense(1600, 128) ReLU Dense(128, 10), on (1, 28, 28) images or, with a leading
    Reshape, on rows of 784 pixels."""
    layers: list[Layer] = [Reshape((1, 28, 28))] if flat else []
    layers += [Conv2D(1, 32, 3), ReLU(), MaxPool2D(2), Conv2D(32, 64, 3), ReLU(), MaxPool2D(2),
               Flatten(), Dense(1600, 128), ReLU(), Dense(128, 10)]
    return numnet.Sequential(layers, input_shape=(784,) if flat else (1, 28, 28),
                             loss="cross_entropy", dtype=dtype, seed=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("spec", "image"), [("cnn", (28, 28)), ("cnn:8,16,32", (8, 8))],
                         ids=["mnist", "digits"])
def test_the_command_lines_cnn_preset_itself_matches_onnx_runtime(dtype, spec, image):
    # the model `numnet train --model SPEC` builds, not a copy of it ('same' padding on 8x8)
    model = he_scaled(build_model(spec, image[0] * image[1], 10, dtype=dtype,
                                  image_shape=image), seed=3)
    proto = to_onnx(model, metadata={"classes": list(range(10))})
    assert_same(model, proto, (1, *image), batches=(1, 7))
    assert_round_trip(model, proto, (1, *image))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("flat", [False, True], ids=["images", "rows"])
def test_cli_cnn_preset_matches_onnx_runtime(dtype, flat):
    model = he_scaled(mnist_cnn(dtype, flat), seed=2)
    shape = (784,) if flat else (1, 28, 28)
    proto = to_onnx(model, metadata={"classes": list(range(10))})
    ops = [node.op_type for node in proto.graph.node]
    assert ops.count("MaxPool") == 2 and ops.count("Gemm") == 2
    assert ops.count("Conv" if dtype == "float32" else "Einsum") == 2
    assert_same(model, proto, shape, batches=(1, 7) if dtype == "float64" else (1, 7, 64))
    back = assert_round_trip(model, proto, shape)
    assert isinstance(back.loss, numnet.CrossEntropy)


@pytest.mark.parametrize("dtype", DTYPES)
def test_trained_cnn_with_batch_norm_matches_onnx_runtime(dtype):
    """After a few training steps (running statistics that mean something)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 48)
    X = (rng.standard_normal((48, 1, 10, 10)) + y[:, None, None, None]).astype(dtype)
    model = numnet.Sequential(
        [Conv2D(1, 4, 3, padding="same"), BatchNorm2d(4), ReLU(), MaxPool2D(2),
         Conv2D(4, 6, 3, padding=1, bias=False), BatchNorm2d(6), ReLU(), AvgPool2D(2),
         GlobalAvgPool2D(), Dense(6, 3)], input_shape=(1, 10, 10), loss="cross_entropy",
        dtype=dtype, seed=0)
    model.fit(X, y, epochs=2, batch_size=16, verbose=0, seed=0)
    proto = to_onnx(model)
    assert_same(model, proto, (1, 10, 10))
    assert_round_trip(model, proto, (1, 10, 10))


# -- PyTorch ----------------------------------------------------------------------------------
def _torch_cnn(torch):
    nn = torch.nn
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4),  # folded into the Conv by torch
        nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(4),      # kept: BatchNormalization
        nn.Conv2d(4, 6, 3, padding="same", bias=False), nn.ReLU(),
        nn.MaxPool2d(3, stride=1, padding=1), nn.AvgPool2d(2),
        nn.Conv2d(6, 8, 2, stride=2, padding=1, dilation=2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))
    with torch.no_grad():
        for bn in (module[1], module[4]):
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.normal_()
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.3, 3.0)
    return module.eval()


@pytest.mark.parametrize("opset", [13, 17, 20])  # 20: the TorchScript exporter's newest
def test_torch_cnn_round_trips_through_from_onnx(opset, tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    module = _torch_cnn(torch)
    x = inputs((1, 12, 12), "float32")
    path = tmp_path / "cnn.onnx"
    torch_export(torch, module, torch.from_numpy(x[:2]), path, opset)
    ops = [node.op_type for node in onnx.load(path).graph.node]
    assert {"Conv", "BatchNormalization", "MaxPool", "AveragePool",
            "GlobalAveragePool", "Flatten", "Gemm"} <= set(ops)
    model = from_onnx(path, loss="cross_entropy", seed=0)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv2D", "ReLU", "MaxPool2D", "BatchNorm2d", "Conv2D", "ReLU", "MaxPool2D",
        "AvgPool2D", "Conv2D", "ReLU", "GlobalAvgPool2D", "Dense"]
    assert model.input_shape == (1, 12, 12)
    assert model.layers[4].padding == "same" and not model.layers[4].bias
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.predict_logits(x), expected, rtol=1e-5, atol=1e-5)
    if opset != 17:
        return  # the same model: check its gradients and train it once

    # the imported model is a numnet model: gradients check, and it trains
    y = np.arange(len(x)) % 3
    errors = gradcheck.check_model(model, x[:3], y[:3], training=True)
    assert max(errors.values()) < 1e-6
    before = model.evaluate(x, y)["loss"]
    model.fit(x, y, epochs=10, batch_size=7, optimizer=numnet.Adam(lr=0.01), verbose=0,
              seed=0)
    assert model.evaluate(x, y)["loss"] < before


def test_torch_global_means_and_views(tmp_path):
    """``x.mean((2, 3))`` (ReduceMean), ``x.mean((2, 3), keepdim=True)`` then
    ``x.view(x.size(0), -1)`` (Shape, Gather, Concat, Reshape) or not, and padding
    ``"same"`` of an even kernel (auto_pad SAME_UPPER)."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    nn = torch.nn

    class Mean(nn.Module):
        def __init__(self, keepdim):
            super().__init__()
            self.keepdim = keepdim

        def forward(self, x):
            return x.mean((2, 3), keepdim=self.keepdim)

    class View(nn.Module):
        def forward(self, x):
            return x.view(x.size(0), -1)

    torch.manual_seed(0)
    x = inputs((2, 9, 9), "float32")
    for tail, layers in (([Mean(False)], ["GlobalAvgPool2D"]),
                         ([Mean(True), View()], ["GlobalAvgPool2D"]),
                         ([Mean(True)], ["GlobalAvgPool2D", "Reshape"])):
        module = nn.Sequential(nn.Conv2d(2, 3, 4, padding="same"), nn.ReLU(), *tail,
                               ).eval()
        path = tmp_path / "m.onnx"
        torch_export(torch, module, torch.from_numpy(x[:2]), path, 17)
        model = from_onnx(path)
        assert [type(layer).__name__ for layer in model.layers] == ["Conv2D", "ReLU", *layers]
        assert model.layers[0].padding == "same"
        with torch.no_grad():
            expected = module(torch.from_numpy(x)).numpy()
        got = model.predict_logits(x)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_torch_layers_numnet_lacks_are_named(tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    nn = torch.nn
    x = torch.zeros(2, 2, 9, 9)
    for module, message in (
            (nn.Conv2d(2, 4, 3, groups=2), r"\(Conv\) is a grouped convolution"),
            (nn.AvgPool2d(3, 1, 1, count_include_pad=False), "count_include_pad=0"),
            (nn.MaxPool2d(2, ceil_mode=True), r"ceil_mode=1"),
            (nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"), "mode 'reflect'")):
        path = tmp_path / "m.onnx"
        torch_export(torch, nn.Sequential(module).eval(), x, path, 17)
        with pytest.raises(OnnxImportError, match=message):
            from_onnx(path)


# -- graphs written by hand -------------------------------------------------------------------
FLOAT = onnx.TensorProto.FLOAT
RNG = np.random.default_rng(7)
WEIGHT = RNG.standard_normal((3, 2, 3, 3)).astype(np.float32)
BIAS = RNG.standard_normal(3).astype(np.float32)


def image_graph(nodes, inits, in_shape=(2, 7, 7), out_shape=(3, 7, 7), opset=18):
    return graph(nodes, inits, n_in=in_shape, n_out=out_shape, opset=opset)


def pads_input(top, left, bottom, right):
    return np.array([0, 0, top, left, 0, 0, bottom, right], dtype=np.int64)


def assert_imports_as(proto, layer_types, shape=(2, 7, 7)):
    model = from_onnx(proto)
    assert [type(layer) for layer in model.layers] == layer_types
    x = inputs(shape, "float32")
    expected = run(proto, x)
    got = model.predict_logits(x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    return model


@pytest.mark.parametrize(("attrs", "padding"), [
    ({"pads": [1, 1, 1, 1]}, (1, 1)),
    ({"pads": [0, 0, 1, 1], "kernel_shape": [2, 2]}, "same"),  # the odd one bottom/right
    ({"auto_pad": "SAME_UPPER", "kernel_shape": [2, 2]}, "same"),
    ({"auto_pad": "SAME_LOWER"}, "same"),  # an odd kernel: both sides alike
    ({"auto_pad": "SAME_UPPER", "strides": [2, 2]}, (1, 1)),  # 7 -> 4: (4-1)*2+3-7 = 2
    ({"auto_pad": "VALID", "dilations": [2, 2]}, (0, 0)),
])
def test_conv_padding_forms(attrs, padding):
    kernel = attrs.get("kernel_shape", [3, 3])
    weight = WEIGHT[:, :, :kernel[0], :kernel[1]].copy()
    conv = h.make_node("Conv", ["x", "W", "B"], ["y"], **attrs)
    proto = image_graph([conv], {"W": weight, "B": BIAS}, out_shape=(3, None, None))
    model = assert_imports_as(proto, [Conv2D])
    conv2d = model.layers[0]
    assert conv2d.padding == (padding if isinstance(padding, str) else
                              padding[0] if padding[0] == padding[1] else list(padding))


@pytest.mark.parametrize(("before", "op", "attrs", "value"), [
    ((1, 1, 1, 1), "Conv", {"pads": [0, 1, 0, 1]}, 0.0),  # added to the Conv's own
    ((1, 0, 1, 0), "Conv", {}, 0.0),
    ((1, 1, 1, 1), "MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2]}, -np.inf),
    ((1, 1, 1, 1), "AveragePool", {"kernel_shape": [3, 3]}, 0.0),  # zeros of the data: counted
])
def test_a_pad_node_is_the_padding_of_the_next_layer(before, op, attrs, value):
    inits = {"pads": pads_input(*before), "value": np.array(value, np.float32)}
    node_inputs = ["p"] + (["W", "B"] if op == "Conv" else [])
    if op == "Conv":
        inits |= {"W": WEIGHT, "B": BIAS}
    nodes = [h.make_node("Pad", ["x", "pads", "value"], ["p"]),
             h.make_node(op, node_inputs, ["y"], **attrs)]
    proto = image_graph(nodes, inits, out_shape=(None, None, None))
    layer_type = {"Conv": Conv2D, "MaxPool": MaxPool2D, "AveragePool": AvgPool2D}[op]
    assert_imports_as(proto, [layer_type])


def test_pad_of_old_opsets_and_of_some_axes():
    """Pad's widths and value are attributes up to opset 10; from 18 it may name its axes."""
    old = image_graph([h.make_node("Pad", ["x"], ["p"], pads=[0, 0, 1, 2, 0, 0, 1, 2]),
                       h.make_node("Conv", ["p", "W", "B"], ["y"])],
                      {"W": WEIGHT, "B": BIAS}, out_shape=(3, 7, 9), opset=10)
    assert from_onnx(old).layers[0].padding == [1, 2]
    some_axes = image_graph([h.make_node("Pad", ["x", "pads", "", "axes"], ["p"]),
                             h.make_node("Conv", ["p", "W", "B"], ["y"])],
                            {"W": WEIGHT, "B": BIAS, "pads": np.array([2, 1, 2, 1], np.int64),
                             "axes": np.array([3, 2], np.int64)}, out_shape=(3, 7, 9))
    model = assert_imports_as(some_axes, [Conv2D])
    assert model.layers[0].padding == [1, 2]


@pytest.mark.parametrize(("nodes", "inits", "message"), [
    ([h.make_node("Pad", ["x", "pads"], ["p"], mode="reflect", name="n"),
      h.make_node("Conv", ["p", "W"], ["y"])], {"pads": pads_input(1, 1, 1, 1), "W": WEIGHT},
     r"'n' \(Pad\) pads in mode 'reflect'"),
    ([h.make_node("Pad", ["x", "pads"], ["p"], name="n"), h.make_node("Relu", ["p"], ["y"])],
     {"pads": pads_input(1, 1, 1, 1)}, r"'n' \(Pad\) pads with 0.0, then feeds another"),
    ([h.make_node("Pad", ["x", "pads"], ["p"], name="n"),
      h.make_node("MaxPool", ["p"], ["y"], kernel_shape=[3, 3])],
     {"pads": pads_input(1, 1, 1, 1)}, r"'n' \(Pad\) pads with 0.0, then feeds MaxPool"),
    ([h.make_node("Conv", ["x", "W"], ["y"], pads=[1, 1, 0, 0], kernel_shape=[2, 2],
                  name="n")], {"W": WEIGHT[:, :, :2, :2].copy()},
     r"'n' \(Conv\) pads \(top, bottom, left, right\) = \(1, 0, 1, 0\)"),
    ([h.make_node("Conv", ["x", "W"], ["y"], auto_pad="SAME_LOWER", kernel_shape=[2, 2],
                  name="n")], {"W": WEIGHT[:, :, :2, :2].copy()},
     r"'n' \(Conv\) pads \(top, bottom, left, right\) = \(1, 0, 1, 0\)"),
    ([h.make_node("Conv", ["x", "W"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2],
                  kernel_shape=[2, 2], name="n")], {"W": WEIGHT[:, :, :2, :2].copy()},
     r"'n' \(Conv\) pads \(top, bottom, left, right\) = \(0, 1, 0, 1\)"),
    ([h.make_node("Conv", ["x", "W"], ["y"], name="n")], {"W": WEIGHT[:, :, 0]},
     r"'n' \(Conv\) has a weight of shape \(3, 2, 3\)"),
    ([h.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 2], name="n")],
     {}, r"'n' \(MaxPool\) has dilations"),
    ([h.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], pads=[0, 0, 1, 1],
                  name="n")], {}, r"'n' \(MaxPool\) pads .* pads both sides of an axis"),
    ([h.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2],
                  ceil_mode=1, name="n")], {}, r"'n' \(MaxPool\) rounds its output size up"),
    ([h.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], pads=[2, 2, 2, 2],
                  name="n")], {}, r"'n' \(MaxPool\) cannot be a MaxPool2D: .*at most half"),
    ([h.make_node("MaxPool", ["x"], ["t", "i"], kernel_shape=[2, 2], name="n"),
      h.make_node("Cast", ["i"], ["c"], to=FLOAT), h.make_node("Add", ["t", "c"], ["y"])],
     {}, r"'n' \(MaxPool\) has its extra output 'i' used"),
    ([h.make_node("ReduceMean", ["x"], ["y"], axes=[1], name="n")], {},
     r"'n' \(ReduceMean\) averages axes \[1\] of a rank-4 tensor"),
    ([h.make_node("GlobalAveragePool", ["x"], ["g"]),
      h.make_node("Squeeze", ["g"], ["y"], name="n")], {},
     r"'n' \(Squeeze\) squeezes every axis of size 1"),
    ([h.make_node("Gather", ["x", "i"], ["y"], axis=1, name="n")],
     {"i": np.array([[0, 1]], np.int64)}, r"'n' \(Gather\) .*only as the windows"),
])
def test_image_graphs_numnet_cannot_compute_are_refused(nodes, inits, message):
    proto = image_graph(nodes, inits, out_shape=(None, None, None), opset=13)
    with pytest.raises(OnnxImportError, match=message):
        from_onnx(proto)


def test_ceil_mode_that_changes_nothing_is_accepted():
    """6 = 2 * 3 rows: rounding up adds no window."""
    proto = image_graph([h.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2],
                                     strides=[2, 2], ceil_mode=1)], {}, in_shape=(2, 6, 6),
                        out_shape=(2, 3, 3))
    assert_imports_as(proto, [MaxPool2D], shape=(2, 6, 6))


def test_global_average_keeps_the_unit_axes_onnx_keeps():
    """A GlobalAveragePool at the end: numnet's output has ONNX's (C, 1, 1) shape too."""
    proto = image_graph([h.make_node("GlobalAveragePool", ["x"], ["y"])], {},
                        out_shape=(2, 1, 1))
    model = assert_imports_as(proto, [GlobalAvgPool2D, Reshape])
    assert model.output_shape() == (2, 1, 1)
    flat = image_graph([h.make_node("ReduceMean", ["x"], ["m"], axes=[-1, -2], keepdims=1),
                        h.make_node("Flatten", ["m"], ["y"])], {}, out_shape=(2,), opset=13)
    assert_imports_as(flat, [GlobalAvgPool2D])
    squeezed = image_graph([h.make_node("GlobalAveragePool", ["x"], ["m"]),
                            h.make_node("Squeeze", ["m", "axes"], ["y"])],
                           {"axes": np.array([3, 2], np.int64)}, out_shape=(2,), opset=13)
    assert_imports_as(squeezed, [GlobalAvgPool2D])
    one_axis = image_graph([h.make_node("GlobalAveragePool", ["x"], ["m"]),
                            h.make_node("Squeeze", ["m"], ["y"], axes=[-1])], {},
                           out_shape=(2, 1), opset=12)
    assert_imports_as(one_axis, [GlobalAvgPool2D, Reshape])


def _float64_windows(dtype="float64"):
    model = randomise(numnet.Sequential([Conv2D(2, 3, 3, stride=2, padding=1)],
                                        input_shape=(2, 7, 7), dtype=dtype, seed=0))
    return to_onnx(model)


def test_tampered_float64_windows_are_refused():
    """The window indices must be exactly the windows of a convolution numnet can run."""
    proto = _float64_windows()
    rows = next(t for t in proto.graph.initializer if t.name.endswith("rows"))
    indices = onnx.numpy_helper.to_array(rows).copy()
    indices[1, 1] += 1
    rows.CopyFrom(onnx.numpy_helper.from_array(indices, rows.name))
    with pytest.raises(OnnxImportError, match=r"\(Gather\) gathers indices that are not the "
                                              "windows"):
        from_onnx(proto)
    proto = _float64_windows()
    einsum = next(n for n in proto.graph.node if n.op_type == "Einsum")
    einsum.attribute[0].s = b"ncipjq,ocij->nopj"
    with pytest.raises(OnnxImportError, match=r"\(Einsum\) computes 'ncipjq,ocij->nopj'"):
        from_onnx(proto)
