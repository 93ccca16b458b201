"""numnet: a neural-network library written from scratch on NumPy."""

from numnet import gradcheck, init, losses, optim
from numnet.errors import DataError, NonFiniteError, ShapeError, TrainingDiverged
from numnet.layers import (
    Add,
    Dense,
    Flatten,
    Identity,
    Layer,
    LeakyReLU,
    Mul,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from numnet.losses import BinaryCrossEntropy, CrossEntropy, MeanSquaredError
from numnet.model import Sequential
from numnet.optim import SGD

__version__ = "0.1.0"

__all__ = [
    "SGD",
    "Add",
    "BinaryCrossEntropy",
    "CrossEntropy",
    "DataError",
    "Dense",
    "Flatten",
    "Identity",
    "Layer",
    "LeakyReLU",
    "MeanSquaredError",
    "Mul",
    "NonFiniteError",
    "ReLU",
    "Sequential",
    "ShapeError",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "TrainingDiverged",
    "gradcheck",
    "init",
    "losses",
    "optim",
]
