"""numnet layers: one module per family."""

from numnet.layers.activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from numnet.layers.base import Layer
from numnet.layers.dense import Dense
from numnet.layers.graph import Add, Mul, Node
from numnet.layers.reshape import Flatten

__all__ = [
    "Add",
    "Dense",
    "Flatten",
    "Identity",
    "Layer",
    "LeakyReLU",
    "Mul",
    "Node",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
]
