"""Helpers of the ONNX tests: trained-looking parameters, ONNX Runtime sessions, the
comparison of ONNX Runtime with ``predict_logits``, hand-written graphs, PyTorch's export."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

# a test module importing these helpers is skipped without the optional packages
onnx = pytest.importorskip("onnx", reason="ONNX export needs the optional onnx package "
                                          '(pip install "numnet[onnx]")')
ort = pytest.importorskip("onnxruntime", reason="the ONNX tests run the exported graphs with "
                                                "onnxruntime (in numnet[test])")

import numnet  # noqa: E402

TOL = {"float32": 1e-5, "float64": 1e-10}
DTYPES = ("float32", "float64")


def randomise(model: numnet.Sequential, seed: int = 0) -> numnet.Sequential:
    """Trained-looking parameters: every weight, scale, shift and running statistic drawn."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for store in (layer.params, layer.buffers):
            for name, value in store.items():
                if name == "running_var":
                    value[...] = rng.uniform(0.3, 3.0, value.shape)
                elif name == "gamma":
                    value[...] = rng.uniform(0.5, 2.0, value.shape) * rng.choice([-1, 1],
                                                                                 value.shape)
                else:
                    value[...] = rng.normal(0.0, 0.7, value.shape)
    return model


def session(proto: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def run(proto: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    name = proto.graph.input[0].name
    (out,) = session(proto).run(None, {name: x})
    return np.asarray(out)


def inputs(shape: tuple[int, ...], dtype: str, batch: int = 7, seed: int = 1) -> np.ndarray:
    return (2 * np.random.default_rng(seed).standard_normal((batch, *shape)) + 0.3).astype(dtype)


def assert_same(model: numnet.Sequential, proto: onnx.ModelProto, shape: tuple[int, ...],
                batches: tuple[int, ...] = (1, 7)) -> None:
    """ONNX Runtime equals predict_logits, in the model's dtype, at each batch size."""
    dtype = model.dtype.name
    for batch in batches:
        x = inputs(shape, dtype, batch)
        got = run(proto, x)
        assert got.dtype == model.dtype
        np.testing.assert_allclose(got, model.predict_logits(x), rtol=TOL[dtype],
                                   atol=TOL[dtype])


def graph(nodes, inits, n_in=3, n_out=2, elem=onnx.TensorProto.FLOAT, opset=18,
          inputs_=None):
    """A hand-written ONNX model from ``x`` (N, n_in) to ``y`` (N, n_out); ``n_in`` and
    ``n_out`` may be per-sample shapes (tuples)."""
    h = onnx.helper

    def dims(n):
        return ["N", *n] if isinstance(n, tuple) else ["N", n]

    made = h.make_graph(
        nodes, "test", inputs_ or [h.make_tensor_value_info("x", elem, dims(n_in))],
        [h.make_tensor_value_info("y", elem, dims(n_out))],
        initializer=[onnx.numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    return h.make_model(made, opset_imports=[h.make_opsetid("", opset)], ir_version=8)


def torch_export(torch, module, x, path, opset, **options):
    """The TorchScript exporter (``dynamo=False``): the default dynamo exporter of torch
    >= 2.9 needs onnxscript, which numnet does not depend on."""
    kwargs = {"input_names": ["features"], "output_names": ["scores"], "opset_version": opset,
              "dynamic_axes": {"features": {0: "N"}, "scores": {0: "N"}}, **options}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(module, (x,), str(path), dynamo=False, **kwargs)
        except TypeError:  # a torch without the TorchScript exporter: use dynamo
            pytest.importorskip("onnxscript", reason="torch's dynamo exporter needs onnxscript")
            torch.onnx.export(module, (x,), str(path), **kwargs)
