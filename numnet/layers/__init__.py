"""numnet layers: one module per family.

This is the one list of the layers numnet exports: ``numnet/__init__.py`` re-exports
``__all__`` from here. A new layer module adds its import and its name below (see
CONTRIBUTING.md); defining the class is what registers it for model files.
"""

from numnet.layers.activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from numnet.layers.base import Layer
from numnet.layers.conv import Conv2D
from numnet.layers.dense import Dense
from numnet.layers.dropout import Dropout
from numnet.layers.graph import Add, Mul, Node
from numnet.layers.normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from numnet.layers.pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from numnet.layers.reshape import Flatten, Reshape

__all__ = [
    "Add",
    "AvgPool2D",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAvgPool2D",
    "Identity",
    "Layer",
    "LayerNorm",
    "LeakyReLU",
    "MaxPool2D",
    "Mul",
    "Node",
    "ReLU",
    "Reshape",
    "Sigmoid",
    "Softmax",
    "Tanh",
]
