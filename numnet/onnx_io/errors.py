"""The errors of ONNX export and import (importable without the optional onnx package)."""

from __future__ import annotations


class OnnxExportError(ValueError):
    """A model cannot be written as ONNX: a layer without an exporter, a bad argument."""


class OnnxImportError(ValueError):
    """An ONNX model cannot be read as a numnet model: not ONNX, or an unsupported graph."""
