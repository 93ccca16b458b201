"""numnet: a neural-network library written from scratch on NumPy."""

from numnet import callbacks, gradcheck, init, io, losses, metrics, optim, training
from numnet._kernels import fast_path, set_fast_path
from numnet.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
)
from numnet.errors import DataError, NonFiniteError, ShapeError, TrainingDiverged
from numnet.layers import (
    Add,
    BatchNorm1d,
    Dense,
    Dropout,
    Flatten,
    Identity,
    Layer,
    LayerNorm,
    LeakyReLU,
    Mul,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from numnet.losses import BinaryCrossEntropy, CrossEntropy, MeanSquaredError
from numnet.model import Sequential
from numnet.optim import SGD, Adam, AdamW, RMSProp, clip_grad_norm, get_optimizer
from numnet.training import History

__version__ = "0.1.0"

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "Add",
    "BatchNorm1d",
    "BinaryCrossEntropy",
    "CSVLogger",
    "Callback",
    "CrossEntropy",
    "DataError",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "Flatten",
    "History",
    "Identity",
    "LambdaCallback",
    "Layer",
    "LayerNorm",
    "LearningRateScheduler",
    "LeakyReLU",
    "MeanSquaredError",
    "ModelCheckpoint",
    "Mul",
    "NonFiniteError",
    "RMSProp",
    "ReLU",
    "Sequential",
    "ShapeError",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "TrainingDiverged",
    "callbacks",
    "clip_grad_norm",
    "fast_path",
    "get_optimizer",
    "gradcheck",
    "init",
    "io",
    "losses",
    "metrics",
    "optim",
    "set_fast_path",
    "training",
]
