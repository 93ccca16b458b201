"""numnet layers: one module per family.

This is the one list of the layers numnet exports: ``numnet/__init__.py`` re-exports
``__all__`` from here. A new layer module adds its import and its name below (see
CONTRIBUTING.md); defining the class is what registers it for model files.
"""

from numnet.layers.activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from numnet.layers.base import Layer
from numnet.layers.dense import Dense
from numnet.layers.dropout import Dropout
from numnet.layers.graph import Add, Mul, Node
from numnet.layers.normalization import BatchNorm1d, LayerNorm
from numnet.layers.reshape import Flatten

__all__ = [
    "Add",
    "BatchNorm1d",
    "Dense",
    "Dropout",
    "Flatten",
    "Identity",
    "Layer",
    "LayerNorm",
    "LeakyReLU",
    "Mul",
    "Node",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
]
