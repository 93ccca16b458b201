"""The network an estimator trains: built from its hyperparameters or from a description.

An estimator's ``model`` hyperparameter is one of

* ``None``: a multi-layer perceptron from ``hidden_layer_sizes``, ``activation``,
  ``dropout`` and ``batch_norm`` (``Dense [BatchNorm1d] activation [Dropout]`` per hidden
  layer, then a ``Dense`` output layer; a ``Flatten`` first for samples of more than one
  axis);
* a description, as :meth:`numnet.Sequential.get_config` or an architecture JSON file
  (:func:`numnet.io.save_architecture`) gives it: any network of registered layers,
  convolutional ones included; or the path of such a file (as ``numnet train --model``
  takes it), read at fit time;
* a :class:`numnet.Sequential`, used as a template (its description; not its weights);
* a function ``(n_features, n_outputs) -> Sequential or list of layers``, called at fit
  time with the number of features (an int for 2-D ``X``, the per-sample shape for
  images and other higher-rank ``X``) and the number of outputs the targets need.

Whatever the source, the network the estimator trains is built here with the estimator's
loss, dtype and seed, so that ``random_state`` decides its initial weights; the last layer
must give logits (or, for regression, the outputs themselves), one per output.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from numnet.io import load_architecture
from numnet.layers import (
    BatchNorm1d,
    Dense,
    Dropout,
    Flatten,
    Identity,
    Layer,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from numnet.model import Sequential

#: the ``activation`` names and their layers (``logistic`` is scikit-learn's name)
ACTIVATIONS: dict[str, Callable[[], Layer]] = {
    "relu": ReLU,
    "tanh": Tanh,
    "sigmoid": Sigmoid,
    "logistic": Sigmoid,
    "leaky_relu": LeakyReLU,
    "identity": Identity,
}


def hidden_sizes(value: Any) -> tuple[int, ...]:
    """``hidden_layer_sizes`` as a tuple of positive ints (an int is one hidden layer,
    an empty sequence none: a linear or logistic model)."""
    sizes = [value] if isinstance(value, (int, np.integer)) else list(value)
    if not all(isinstance(h, (int, np.integer)) and not isinstance(h, bool) and h >= 1
               for h in sizes):
        raise ValueError(f"hidden_layer_sizes must be positive integers, got {value!r}")
    return tuple(int(h) for h in sizes)


def mlp_layers(sample_shape: tuple[int, ...], n_outputs: int, hidden: Sequence[int],
               activation: str, dropout: float, batch_norm: bool) -> list[Layer]:
    """The layers of a multi-layer perceptron from ``sample_shape`` to ``n_outputs``."""
    layers: list[Layer] = [Flatten()] if len(sample_shape) > 1 else []
    width = math.prod(sample_shape)
    for size in hidden:
        layers.append(Dense(width, size))
        if batch_norm:
            layers.append(BatchNorm1d(size))
        layers.append(ACTIVATIONS[activation]())
        if dropout:
            layers.append(Dropout(dropout))
        width = size
    layers.append(Dense(width, n_outputs))
    return layers


def build_network(spec: Any, sample_shape: tuple[int, ...], n_outputs: int, loss: str,
                  dtype: str, seed: int, mlp: dict[str, Any]) -> Sequential:
    """The network for ``spec`` (the ``model`` hyperparameter), checked against the data.

    ``mlp`` holds the arguments of :func:`mlp_layers` other than the shapes, used when
    ``spec`` is None. Raises ValueError, prefixed ``model:``, when the description is
    invalid or the network does not take ``sample_shape`` to ``(n_outputs,)``.
    """
    if spec is None:
        model = Sequential(mlp_layers(sample_shape, n_outputs, **mlp), loss=loss,
                           input_shape=sample_shape, dtype=dtype, seed=seed)
    else:
        built = spec
        if isinstance(spec, (str, os.PathLike)):
            built = load_architecture(spec)
        elif callable(spec) and not isinstance(spec, Sequential):
            features: int | tuple[int, ...] = (sample_shape[0] if len(sample_shape) == 1
                                               else sample_shape)
            built = spec(features, n_outputs)
        model = _from_description(built, sample_shape, loss, dtype, seed)
    _check_output(model, sample_shape, n_outputs)
    return model


def _from_description(built: Any, sample_shape: tuple[int, ...], loss: str, dtype: str,
                      seed: int) -> Sequential:
    if isinstance(built, (list, tuple)) and all(isinstance(layer, Layer) for layer in built):
        try:
            return Sequential(list(built), loss=loss, input_shape=sample_shape, dtype=dtype,
                              seed=seed)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"model: {exc}") from exc
    if isinstance(built, Sequential):
        config = built.get_config()
    elif isinstance(built, dict):
        config = copy.deepcopy(built)
    else:
        raise TypeError("model must be None, a model description (dict), a Sequential or a "
                        "function (n_features, n_outputs) -> Sequential or list of layers; "
                        f"got {type(built).__name__} {built!r}")
    config.update(loss={"type": loss}, dtype=dtype, seed=seed, target_shape=None)
    if config.get("input_shape") is None:
        config["input_shape"] = list(sample_shape)
    try:
        return Sequential.from_config(config)
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"model: the description does not build a network: {exc}") from exc


def _check_output(model: Sequential, sample_shape: tuple[int, ...], n_outputs: int) -> None:
    """The network takes the samples and gives one logit (or value) per output."""
    try:
        out = model.output_shape(sample_shape)
    except ValueError as exc:
        raise ValueError(f"model: the network cannot take samples of shape {sample_shape}: "
                         f"{exc}") from exc
    if out != (n_outputs,):
        raise ValueError(f"model: the network gives outputs of shape {out} per sample, but "
                         f"the targets need ({n_outputs},): make its last layer give "
                         f"{n_outputs} output(s)")
    last = model.layers[-1]
    if isinstance(last, (Softmax, Sigmoid)):
        raise ValueError(f"model: the network ends with {type(last).__name__}, but the "
                         "estimator's loss takes logits (it applies the softmax or sigmoid "
                         "itself, stably, as predict_proba does): remove the last layer")
