"""numnet: a neural-network library written from scratch on NumPy."""

from numnet import (
    callbacks,
    distributed,
    gradcheck,
    init,
    io,
    layers,
    losses,
    metrics,
    optim,
    training,
)
from numnet._version import __version__
from numnet.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
)
from numnet.errors import DataError, NonFiniteError, ShapeError, TrainingDiverged
from numnet.layers import *  # noqa: F403 - the layer list is numnet/layers/__init__.py's
from numnet.losses import BinaryCrossEntropy, CrossEntropy, MeanSquaredError
from numnet.model import Sequential
from numnet.optim import SGD, Adam, AdamW, RMSProp, clip_grad_norm, get_optimizer
from numnet.training import History

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "BinaryCrossEntropy",
    "CSVLogger",
    "Callback",
    "CrossEntropy",
    "DataError",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "LearningRateScheduler",
    "MeanSquaredError",
    "ModelCheckpoint",
    "NonFiniteError",
    "RMSProp",
    "Sequential",
    "ShapeError",
    "TrainingDiverged",
    "__version__",
    "callbacks",
    "clip_grad_norm",
    "distributed",
    "get_optimizer",
    "gradcheck",
    "init",
    "io",
    "layers",
    "losses",
    "metrics",
    "optim",
    "training",
]
__all__ += layers.__all__  # every layer, from the one list in numnet/layers/__init__.py
