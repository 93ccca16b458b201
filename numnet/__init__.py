"""numnet: a neural-network library written from scratch on NumPy."""

from numnet import (
    averaging,
    callbacks,
    diagnosis,
    distributed,
    gradcheck,
    health,
    init,
    io,
    layers,
    losses,
    metrics,
    optim,
    reference,
    training,
)
from numnet._kernels import fast_path, set_fast_path
from numnet._version import __version__
from numnet.averaging import WeightAveraging
from numnet.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
)
from numnet.errors import (
    DataError,
    NonFiniteError,
    ShapeError,
    TrainingDiverged,
    TrainingWarning,
)
from numnet.health import HealthCheck
from numnet.layers import *  # noqa: F403 - the layer list is numnet/layers/__init__.py's
from numnet.losses import BinaryCrossEntropy, CrossEntropy, MeanSquaredError
from numnet.model import Sequential
from numnet.optim import SGD, AdaGrad, Adam, AdamW, RMSProp, clip_grad_norm, get_optimizer
from numnet.training import History

__all__ = [
    "SGD",
    "AdaGrad",
    "Adam",
    "AdamW",
    "BinaryCrossEntropy",
    "CSVLogger",
    "Callback",
    "CrossEntropy",
    "DataError",
    "EarlyStopping",
    "HealthCheck",
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
    "TrainingWarning",
    "WeightAveraging",
    "__version__",
    "averaging",
    "callbacks",
    "clip_grad_norm",
    "diagnosis",
    "distributed",
    "fast_path",
    "get_optimizer",
    "gradcheck",
    "health",
    "init",
    "io",
    "layers",
    "losses",
    "metrics",
    "optim",
    "reference",
    "set_fast_path",
    "training",
]
__all__ += layers.__all__  # every layer, from the one list in numnet/layers/__init__.py
