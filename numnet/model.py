"""``Sequential``: a stack of layers with a loss.

The model owns three things the layers do not:

* **Shapes.** At construction it walks the layers with the known input shape (given, or
  taken from the first layer that fixes one, such as a Dense layer) and refuses a stack
  whose sizes do not fit, naming both layers and both sizes.
* **Randomness.** One seed is spread into independent generators (one per layer, one for
  the model's own shuffling), so the same seed gives the same weights, bit for bit.
* **Memory.** All parameters live in one contiguous vector ``flat_params`` and all
  gradients in ``flat_grads``; each layer's ``params``/``grads`` entries are views into
  them, so an optimiser can update everything in a few vectorised operations.

Its input is checked once, at its boundary (``forward``, and ``fit``, ``evaluate`` and
``predict*`` check the whole data set once); inside, the layers' ``forward`` and
``backward`` run the maths alone. Training is in :mod:`numnet.training` and files in
:mod:`numnet.io`, reached through ``fit``/``evaluate`` and ``save``/``load``.
"""

from __future__ import annotations

import copy
import os
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from numnet import _kernels, inspection, io
from numnet._checks import (
    all_finite,
    check_finite,
    fmt_shape,
    nonfinite_output,
    positive_int,
    real_number,
    reshape_hint,
    resolve_dtype,
)
from numnet._memory import check_array
from numnet.callbacks import Callback
from numnet.errors import AllocationError, NonFiniteError, ShapeError
from numnet.inspection import Trace
from numnet.layers.activations import sigmoid, softmax
from numnet.layers.base import NAMESPACE, Layer
from numnet.layers.dense import Dense
from numnet.losses import BinaryCrossEntropy, CrossEntropy, Loss, get_loss
from numnet.optim import Adam, Optimizer
from numnet.training import History, loop

#: version of the description ``get_config`` writes: 2 names layer types with their
#: namespace (``"numnet.Dense"``); format 1 (bare names, ``"Dense"``) is still read
CONFIG_FORMAT = 2


class Sequential:
    """A feed-forward stack of layers.

    Parameters
    ----------
    layers : sequence of Layer
        Applied in order.
    loss : Loss or str, optional
        ``CrossEntropy()`` / ``"cross_entropy"`` for classification from logits,
        ``"binary_cross_entropy"``, ``"mse"``. Needed for training and ``predict``'s
        choice of output.
    input_shape : tuple of int, optional
        Per-sample input shape, e.g. ``(784,)``. When omitted it is taken from the first
        layer that fixes one (a Dense layer fixes ``(in_features,)``).
    dtype : str, optional
        ``"float32"`` (default) or ``"float64"``; every layer is converted to it.
    seed : int, optional
        Seed for the initial weights and every random draw of the model (dropout masks,
        shuffling). ``None`` draws fresh entropy.
    l2 : float
        L2 regularisation strength ``lambda >= 0``: the training loss becomes
        ``data loss + (lambda / 2) * sum(W ** 2)`` over the parameters where ``decay_mask``
        is True (weights; not biases or normalisation parameters), so every such gradient
        gains ``lambda * W``. Unlike an optimiser's decoupled weight decay (AdamW) this is
        part of the loss: it is reported in the loss and scaled by adaptive optimisers.

    Raises
    ------
    ValueError
        If two neighbouring layers do not fit, naming both and both sizes.
    """

    #: the name model files and descriptions give this class
    type_name = f"{NAMESPACE}.Sequential"

    def __init__(self, layers: Sequence[Layer], loss: Loss | str | None = None,
                 input_shape: Sequence[int] | None = None, dtype: Any = "float32",
                 seed: int | None = None, l2: float = 0.0) -> None:
        layers = list(layers)
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for index, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {index} is {layer!r}, expected a numnet Layer")
            _check_unshared(layers, index, self)
        self.layers: list[Layer] = layers
        self.loss: Loss | None = None if loss is None else get_loss(loss)
        self.dtype = resolve_dtype(dtype)
        self.seed = seed
        self.l2 = real_number(l2, "Sequential l2", low=0.0)
        self.training = False
        self.stop_training = False  # set by callbacks to end fit() after the current batch
        #: per-sample shape of the targets of the last ``fit`` (``()`` for ``y`` of shape
        #: ``(N,)``): the shape regression ``predict`` returns; None before any fit
        self.target_shape: tuple[int, ...] | None = None
        self.input_shape = self._check_shapes(input_shape)
        self._set_default_inits()
        for layer in self.layers:
            if layer.dtype != self.dtype:
                layer.astype(self.dtype)
        seeds = np.random.SeedSequence(seed).spawn(len(layers) + 1)
        for layer, layer_seed in zip(self.layers, seeds, strict=False):
            layer.initialize(np.random.default_rng(layer_seed))
        self.rng = np.random.default_rng(seeds[-1])
        self._flatten()

    # -- construction -------------------------------------------------------------------
    def _check_shapes(self, input_shape: Sequence[int] | None) -> tuple[int, ...] | None:
        """Walk the stack with the known shape; return the model's per-sample input shape."""
        if isinstance(input_shape, (int, np.integer)):
            input_shape = (input_shape,)
        shape: tuple[int, ...] | None = self.layers[0].input_shape
        if input_shape is not None:
            shape = tuple(int(d) for d in input_shape)
        model_input = shape
        previous = "the model input"
        for index, layer in enumerate(self.layers):
            here = f"layer {index} {layer!r}"
            expected = layer.input_shape
            if shape is None:
                shape = expected  # sizes become known from here on
            elif expected is not None and tuple(expected) != shape:
                raise ShapeError(
                    f"{here} expects input of size {fmt_shape(expected)}, but {previous} has "
                    f"size {fmt_shape(shape)}: the size that fits here is {fmt_shape(shape)}"
                    f"{_fitting_hint(layer, shape)}"
                )
            if shape is not None:
                try:
                    shape = layer.output_shape(shape)
                except ShapeError as exc:
                    raise ShapeError(f"{here} cannot take {previous} of size "
                                     f"{fmt_shape(shape)}: {exc}") from exc
            previous = f"the output of {here}"
        return model_input

    def _set_default_inits(self) -> None:
        """Give each layer with weights the initialiser its activation suits, unless the
        user chose one.

        The activation is the first layer after it that names an ``init_family``; layers in
        between that name none and have no weights (BatchNorm, Dropout) are looked past. A
        layer followed by none (or by another layer with weights first) gets Glorot.
        """
        for index, layer in enumerate(self.layers):
            if layer.weight_key is not None:
                family = next((later.init_family for later in self.layers[index + 1:]
                               if later.init_family or later.weight_key is not None), None)
                layer.set_default_init(family or "glorot_uniform")

    def _flatten(self) -> None:
        """Move every parameter and gradient into one contiguous vector each."""
        entries = [(layer, name) for layer in self.layers for name in layer.params]
        total = sum(layer.params[name].size for layer, name in entries)
        check_array((total,), self.dtype, f"the flat parameter vector of the model's "
                    f"{len(self.layers)} layers", copies=2, why="with the gradient vector")
        self.flat_params = np.empty(total, dtype=self.dtype)
        self.flat_grads = np.zeros(total, dtype=self.dtype)
        self.decay_mask = np.zeros(total, dtype=bool)
        offset = 0
        for layer, name in entries:
            value = layer.params[name]
            view = slice(offset, offset + value.size)
            self.flat_params[view] = value.reshape(-1)
            layer.params[name] = self.flat_params[view].reshape(value.shape)
            layer.grads[name] = self.flat_grads[view].reshape(value.shape)
            self.decay_mask[view] = name in layer.decay_keys
            offset += value.size
        for layer in self.layers:
            layer.owner = weakref.ref(self)
        # training's backward stops here: the first layer with parameters
        self._first_trainable = next(
            (i for i, layer in enumerate(self.layers) if layer.params), 0)
        self._min_train_batch = max(layer.min_train_batch for layer in self.layers)
        self._fitting_shape: tuple[int, ...] | None = None  # last sample shape that fitted

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the flat buffers: the layers carry their parameters, and
        :meth:`__setstate__` gathers them into new buffers (views cannot be pickled as such)."""
        state = self.__dict__.copy()
        for name in ("flat_params", "flat_grads", "decay_mask"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._flatten()

    def __copy__(self) -> Sequential:
        """A shallow copy shares the layers and their buffers (pickling's state would
        move the shared layers' parameters into new buffers)."""
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def __deepcopy__(self, memo: dict[int, Any]) -> Sequential:
        clone = copy.copy(self)
        memo[id(self)] = clone
        clone.layers = copy.deepcopy(self.layers, memo)
        clone.loss = copy.deepcopy(self.loss, memo)
        clone.rng = copy.deepcopy(self.rng, memo)
        clone._flatten()  # deepcopy breaks the views; rebuild them on the copies
        return clone

    def astype(self, dtype: Any) -> Sequential:
        """Convert the model (parameters, buffers) to ``dtype`` in place."""
        self.dtype = resolve_dtype(dtype)
        for layer in self.layers:
            layer.astype(self.dtype)
        self._flatten()
        return self

    # -- the forward and backward passes -------------------------------------------------
    def train(self) -> Sequential:
        """Put the model in training mode (dropout active, batch statistics)."""
        self.training = True
        return self

    def eval(self) -> Sequential:
        """Put the model in evaluation mode (dropout off, running statistics)."""
        self.training = False
        return self

    def _input(self, data: Any, training: bool = False) -> np.ndarray:
        """``data`` as an array of the model dtype whose samples fit the model (no data scan)."""
        x: np.ndarray = np.asarray(data, dtype=self.dtype)
        if self.input_shape is not None:
            if x.shape[1:] != self.input_shape or x.ndim == 0:
                raise ShapeError(f"model expects input of shape "
                                 f"{fmt_shape(('N', *self.input_shape))}, got {x.shape}"
                                 f"{reshape_hint(x.shape[1:], self.input_shape)}")
        elif x.ndim == 0:
            raise ShapeError("model expects a batch (N, ...) with the samples along the first "
                             "axis, got a scalar")
        elif x.shape[1:] != self._fitting_shape:
            self.output_shape(x.shape[1:])  # each layer names what it cannot take
            self._fitting_shape = x.shape[1:]  # so the next batch of this shape is not walked
        if training and x.shape[0] < self._min_train_batch:
            layer = max(self.layers, key=lambda layer: layer.min_train_batch)
            raise ValueError(f"{layer!r} needs at least {layer.min_train_batch} samples per "
                             f"training batch, got {x.shape[0]}")
        return x

    def forward(self, x: Any, training: bool | None = None) -> np.ndarray:
        """Run every layer; ``training`` defaults to the model's mode.

        The input is converted to the model dtype and its shape checked here, once, at the
        model's boundary; the layers' own ``forward`` (the maths alone) runs after that,
        relying on the shapes between them checked when the model was built.
        """
        training = self.training if training is None else training
        return self._forward_layers(self._input(x, training), training)

    __call__ = forward

    def _forward_layers(self, x: np.ndarray, training: bool) -> np.ndarray:
        """Every layer in turn; a Dense or Conv2D layer and the ReLU/LeakyReLU after it as
        one pair (:meth:`Layer.fuses_with`)."""
        layers, i = self.layers, 0
        while i < len(layers):
            layer = layers[i]
            after = layers[i + 1] if i + 1 < len(layers) else None
            if after is not None and layer.fuses_with(after):
                # Dense/Conv2D + ReLU: the activation in one pass over the product's output
                x = layer.forward_activated(x, after, training)
                i += 2
            else:
                x = layer.forward(x, training=training)
                i += 1
        return x

    def backward(self, grad_out: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """Back-propagate ``dL/doutput`` through every layer; returns ``dL/dinput``.

        ``grad_out`` must be the gradient of the last output: of its shape, in the model's
        dtype (as a numnet loss's ``backward`` returns it); it is not checked.

        With ``input_grad=False`` (training: the input is data) the pass stops at the first
        layer with parameters, which computes its parameter gradients only
        (:meth:`Layer.backward_params`), and returns None: for an MLP that saves the largest
        matrix product of the backward pass.

        A Dense or Conv2D layer and the ReLU or LeakyReLU after it, run as one pair in the
        forward pass (:meth:`Layer.forward_activated`), go back as one too
        (:meth:`Layer.backward_activated`); ``grad_out`` itself is never written to.
        """
        stop = 0 if input_grad else self._first_trainable
        layers, grad, i = self.layers, grad_out, len(self.layers) - 1
        while i >= stop:
            below = layers[i - 1] if i - 1 >= stop else None
            if below is not None and below.activated is not None \
                    and below.fuses_with(layers[i]):
                # the pair ran as one (forward_activated): the mask and the bias sum take
                # one pass, in place unless the gradient is the caller's grad_out
                below_grad = below.backward_activated(
                    grad, input_grad or i - 1 > stop,
                    in_place=not np.may_share_memory(grad, grad_out))
                if below_grad is None:  # the first trainable layer: no input gradient
                    return None
                grad, i = below_grad, i - 2
            elif i == stop and not input_grad:
                layers[i].backward_params(grad)
                return None
            else:
                grad = layers[i].backward(grad)
                i -= 1
        return grad if input_grad else None

    def loss_and_grad(self, x: Any, y: Any, sample_weight: Any = None,
                      training: bool = True, return_output: bool = False
                      ) -> float | tuple[float, np.ndarray]:
        """Forward, loss and backward on one batch: fills every ``grads`` and returns the loss.

        For hand-written training loops: ``y`` and ``sample_weight`` are checked by the
        loss (``fit`` checks its data once and calls :func:`numnet.training.train_step`).
        The loss includes the L2 term ``(l2 / 2) * sum(W ** 2)`` when ``l2 > 0``. With
        ``return_output=True`` the model's output is returned too, as ``(loss, output)``.
        """
        loss = self._need_loss()
        output = self.forward(x, training=training)
        value = loss(output, y, sample_weight)
        self.backward(loss.backward(), input_grad=False)
        if self.l2:
            value += self.add_l2_gradient()
        return (value, output) if return_output else value

    def add_l2_gradient(self) -> float:
        """Add ``l2 * W`` to the decayed gradients; return ``(l2 / 2) * sum(W ** 2)``."""
        lam = self.dtype.type(self.l2)
        for layer, name, param, grad in self.parameters():
            if name in layer.decay_keys:
                grad += lam * param
        return self.l2_penalty()

    def l2_penalty(self) -> float:
        """The L2 term ``(l2 / 2) * sum(W ** 2)`` of the loss (0.0 when ``l2 == 0``)."""
        if not self.l2:
            return 0.0
        total = sum(float(np.dot(p.reshape(-1), p.reshape(-1)))
                    for layer, name, p, _ in self.parameters() if name in layer.decay_keys)
        return 0.5 * self.l2 * total

    def zero_grad(self) -> None:
        self.flat_grads.fill(0)

    def parameters(self) -> Iterator[tuple[Layer, str, np.ndarray, np.ndarray]]:
        """Iterate ``(layer, name, param, grad)`` over every parameter."""
        for layer in self.layers:
            for name, param in layer.params.items():
                yield layer, name, param, layer.grads[name]

    @property
    def num_params(self) -> int:
        return int(self.flat_params.size)

    # -- inference ----------------------------------------------------------------------
    def _need_loss(self) -> Loss:
        if self.loss is None:
            raise ValueError("this model has no loss: pass loss=... to Sequential")
        return self.loss

    def predict_logits(self, x: Any, batch_size: int = 1024) -> np.ndarray:
        """Raw outputs in evaluation mode, computed ``batch_size`` rows at a time.

        Raises :class:`~numnet.errors.NonFiniteError` when an output is NaN or infinite,
        naming the parameter that is not finite if there is one."""
        batch_size = positive_int(batch_size, "batch_size")
        x = self._input(x)
        check_finite(x, "predict input")
        with _kernels.model_scope(self.num_params), \
                np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below
            parts = [self._forward_layers(x[i:i + batch_size], training=False)
                     for i in range(0, x.shape[0], batch_size)]
        if not parts:
            return np.empty((0,) + self.output_shape(x.shape[1:]), dtype=self.dtype)
        # one fresh block is returned as it is (no copy)
        logits = parts[0] if len(parts) == 1 and not np.may_share_memory(parts[0], x) \
            else np.concatenate(parts, axis=0)
        if not all_finite(logits.reshape(-1)):  # one BLAS pass: never a silent NaN
            raise NonFiniteError(nonfinite_output(self.layers, "predict"))
        return logits

    def predict_proba(self, x: Any, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities for classifiers.

        With :class:`~numnet.losses.CrossEntropy`: the softmax of the logits, ``(N, C)``,
        rows summing to 1. With :class:`~numnet.losses.BinaryCrossEntropy`: the sigmoid of
        each output, ``(N, K)``, column ``j`` holding ``P(y_j = 1)``; a binary model with one
        output gives ``(N, 1)``, the probability of class 1 (that of class 0 is ``1 - p``;
        :class:`numnet.sklearn.NumnetClassifier` returns both columns, as scikit-learn).

        The dtype is the input's float dtype where it is more precise than the model's
        (float64 inputs to a float32 model give float64), else the model's.
        """
        x = np.asarray(x)
        logits = self.predict_logits(x, batch_size).astype(self._result_dtype(x), copy=False)
        if isinstance(self.loss, CrossEntropy):
            return softmax(logits)
        if isinstance(self.loss, BinaryCrossEntropy):
            return sigmoid(logits)
        raise ValueError("predict_proba needs a classification loss (CrossEntropy or "
                         f"BinaryCrossEntropy), this model has {self.loss!r}")

    def predict(self, x: Any, batch_size: int = 1024) -> np.ndarray:
        """Labels for classifiers, predicted targets otherwise.

        * :class:`~numnet.losses.CrossEntropy`: class indices, int64 ``(N,)`` (the argmax
          of the logits), whether the model was fit on labels or on one-hot rows;
        * :class:`~numnet.losses.BinaryCrossEntropy`: 0/1 int64, ``(N,)`` for a model with
          one output (binary classification), ``(N, K)`` for ``K`` outputs (multilabel);
        * any other loss (regression): the outputs, shaped as the targets of the last
          ``fit`` (:attr:`target_shape`; ``(N,)`` after ``y`` of shape ``(N,)``, so that
          ``y - model.predict(X)`` does not broadcast to ``(N, N)``), in the input's float
          dtype where it is more precise than the model's (float64 for float64 inputs to
          a float32 model; computed in the model's precision, then converted). A model
          never fit, or read from a file written before numnet recorded the shape,
          returns its output shape ``(N, *output_shape)``; set ``model.target_shape = ()``
          to get ``(N,)`` from it.

        Compare labels with labels of the same shape: ``(model.predict(X) == y).mean()``
        for ``y`` of shape ``(N,)`` (use ``y.ravel()`` for a column ``(N, 1)``).
        """
        x = np.asarray(x)
        logits = self.predict_logits(x, batch_size)
        if isinstance(self.loss, CrossEntropy):
            classes: np.ndarray = logits.argmax(axis=1).astype(np.int64)
            return classes
        if isinstance(self.loss, BinaryCrossEntropy):
            labels = (logits > 0).astype(np.int64)
            return labels.reshape(-1) if labels.shape[1:] == (1,) else labels
        outputs = logits.astype(self._result_dtype(x), copy=False)
        shape = self.target_shape
        if shape is not None and int(np.prod(shape)) == int(np.prod(outputs.shape[1:])):
            outputs = outputs.reshape((outputs.shape[0], *shape))
        return outputs

    def _result_dtype(self, x: np.ndarray) -> np.dtype[Any]:
        """The input's float dtype when it is more precise than the model's, else the model's."""
        if x.dtype.kind == "f" and x.dtype.itemsize > self.dtype.itemsize:
            return x.dtype
        return self.dtype

    # -- training (implemented in numnet.training) --------------------------------------
    def fit(self, X: Any, y: Any, epochs: int = 1, batch_size: int = 32,
            optimizer: Optimizer | str | None = None, shuffle: bool = True,
            validation_data: tuple[Any, ...] | None = None, validation_split: float = 0.0,
            callbacks: Sequence[Callback] = (), verbose: int = 1, seed: int | None = None,
            sample_weight: Any = None, clip_norm: float | None = None,
            lr_schedule: Any = None, initial_epoch: int = 0, distributed: bool = False,
            sync_batchnorm: bool = False, health: bool = True,
            validation_shuffle: bool = True) -> History:
        """Train on ``(X, y)`` in mini-batches; returns a :class:`numnet.training.History`.

        See :func:`numnet.training.fit` for every argument; ``distributed=True`` trains
        one model over the processes of an MPI job (:mod:`numnet.distributed`). ``y`` holds
        numbers: class indices ``0..K-1`` (or one-hot rows) for a classifier; map labels of
        any other kind (``"setosa"``, ``-1/1``, ``3/7/10``) with
        :class:`numnet.data.LabelEncoder` (``y = LabelEncoder().fit_transform(labels)``,
        ``encoder.inverse_transform(model.predict(X))`` back), or use
        :class:`numnet.sklearn.NumnetClassifier`. ``validation_split`` holds out a random,
        stratified fraction unless ``validation_shuffle=False`` (then the last rows, as
        Keras).

        Examples
        --------
        >>> from numnet import Dense, EarlyStopping, ReLU
        >>> model = Sequential([Dense(2, 16), ReLU(), Dense(16, 3)], loss="cross_entropy")
        >>> history = model.fit(X, y, epochs=20, batch_size=32, validation_split=0.1,
        ...                     callbacks=[EarlyStopping(patience=3)])  # doctest: +SKIP
        >>> history.history["val_accuracy"][-1]                         # doctest: +SKIP
        """
        return loop.fit(self, X, y, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                        shuffle=shuffle, validation_data=validation_data,
                        validation_split=validation_split, callbacks=callbacks,
                        verbose=verbose, seed=seed, sample_weight=sample_weight,
                        clip_norm=clip_norm, lr_schedule=lr_schedule,
                        initial_epoch=initial_epoch, distributed=distributed,
                        sync_batchnorm=sync_batchnorm, health=health,
                        validation_shuffle=validation_shuffle)

    def evaluate(self, X: Any, y: Any, batch_size: int = 1024,
                 sample_weight: Any = None) -> dict[str, float]:
        """Loss and metrics in evaluation mode: ``{'loss', 'accuracy'}`` for classifiers,
        ``{'loss', 'mse', 'mae', 'rmse', 'r2'}`` otherwise. See
        :func:`numnet.training.evaluate`."""
        return loop.evaluate(self, X, y, batch_size=batch_size, sample_weight=sample_weight)

    # -- files (implemented in numnet.io) -------------------------------------------------
    def save(self, path: str | os.PathLike[str], optimizer: Optimizer | None = None,
             metadata: Mapping[str, Any] | None = None) -> Path:
        """Write the model (and optionally its optimiser) to one ``.npz`` file, atomically.

        See :func:`numnet.io.save`; :meth:`load` reads it back.
        """
        return io.save(self, path, optimizer=optimizer, metadata=metadata)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Sequential:
        """The model saved by :meth:`save` (or :func:`numnet.io.save`) at ``path``.

        See :func:`numnet.io.load`; the optimiser saved with it comes from
        :func:`numnet.io.load_optimizer`.
        """
        model = io.load(path)
        if not isinstance(model, cls):
            raise TypeError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    # -- inspection ---------------------------------------------------------------------
    def output_shape(self, input_shape: Sequence[int] | None = None) -> tuple[int, ...]:
        shape = tuple(input_shape) if input_shape is not None else self.input_shape
        if shape is None:
            raise ValueError("input shape unknown: pass input_shape="
                             f"{inspection.input_shape_example(self)}")
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return shape

    def summary(self, input_shape: Sequence[int] | None = None) -> str:
        """A table: one row per layer with its output shape and parameter count; totals.

        See :func:`numnet.inspection.summary`.
        """
        return inspection.summary(self, input_shape)

    def trace(self, x: Any, y: Any = None, optimizer: Optimizer | str | None = None) -> Trace:
        """Run one batch forward (and backward when ``y`` is given), tabulate statistics and
        say what looks wrong.

        Forward rows give each layer's output shape, mean, std, min, max, fraction of
        zeros, and the fraction of dead units (ReLU) or saturated outputs (sigmoid, tanh);
        backward rows give the norm of the gradient reaching each layer's input with the
        layer's gain, and of each parameter gradient with its update-to-weight ratio for one
        step of ``optimizer`` (default ``Adam(1e-3)``; an instance is copied with its
        state). ``trace.findings`` lists what looks wrong in plain language (dead units,
        saturation, vanishing or exploding gradients, updates far from about 1e-3 of the
        weights, unscaled inputs); ``print(trace)`` shows the tables and the findings. See
        :mod:`numnet.diagnosis` for the definitions and thresholds.

        It runs on a copy of the model, so the model's gradients, running statistics and
        random generators are left as they were (see :func:`numnet.inspection.trace`).
        """
        return inspection.trace(copy.deepcopy(self), x, y,
                                optimizer=Adam(1e-3) if optimizer is None else optimizer)

    # -- description and state ----------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """A JSON-serialisable description from which :meth:`from_config` rebuilds the model.

        Layers are named by their registered type name (``"numnet.Dense"``).
        """
        return {
            "format": CONFIG_FORMAT,
            "type": self.type_name,
            "layers": [{"type": _layer_type(index, layer), "config": layer.get_config()}
                       for index, layer in enumerate(self.layers)],
            "loss": None if self.loss is None else {
                "type": _loss_type(self.loss), "config": self.loss.get_config()},
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "dtype": self.dtype.name,
            "seed": self.seed,
            "l2": self.l2,
            "target_shape": None if self.target_shape is None else list(self.target_shape),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        """Build a model from :meth:`get_config`'s description (weights freshly initialised)."""
        if not isinstance(config, dict) or "layers" not in config:
            raise ValueError("model description must be a dict with a 'layers' list")
        version = config.get("format", CONFIG_FORMAT)
        if not isinstance(version, int) or version > CONFIG_FORMAT:
            raise ValueError(f"model description has format {version!r}; this numnet reads "
                             f"format {CONFIG_FORMAT} or older: upgrade numnet")
        layers = []
        for index, entry in enumerate(config["layers"]):
            if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
                raise ValueError(f"layer {index} of the description has no 'type'")
            try:
                layer_cls = Layer.lookup(entry["type"])
            except ValueError as exc:
                raise ValueError(f"layer {index}: {exc}") from exc
            try:
                layers.append(layer_cls.from_config(dict(entry.get("config", {}))))
            except TypeError as exc:
                raise ValueError(f"layer {index} ({entry['type']}): bad arguments: {exc}") from exc
            except AllocationError as exc:  # too large to build: say which layer
                raise AllocationError(f"layer {index}: {exc}") from exc
        loss = config.get("loss")
        if isinstance(loss, dict):
            loss = get_loss(loss.get("type", ""), loss.get("config"))
        model = cls(layers, loss=loss, input_shape=config.get("input_shape"),
                    dtype=config.get("dtype", "float32"), seed=config.get("seed"),
                    l2=config.get("l2", 0.0))
        model.target_shape = _target_shape(config.get("target_shape"))
        return model

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter and buffer under ``"<layer index>.<name>"`` (arrays, not copies)."""
        state = {}
        for index, layer in enumerate(self.layers):
            for store in (layer.params, layer.buffers):
                state.update({f"{index}.{name}": value for name, value in store.items()})
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays into the model's parameters and buffers (in place), checking each."""
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(f"state does not fit the model: missing {missing}, "
                             f"unexpected {unexpected}")
        for key, target in own.items():
            value = np.asarray(state[key])
            if value.shape != target.shape:
                raise ShapeError(f"state entry {key!r} has shape {value.shape}, the model "
                                 f"expects {target.shape}")
            target[...] = value

    def __repr__(self) -> str:
        inner = ",\n".join(f"    {layer!r}" for layer in self.layers)
        return f"Sequential([\n{inner}\n], loss={self.loss!r})"

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Layer:
        return self.layers[index]


io.register_model(Sequential)


def _layer_type(index: int, layer: Layer) -> str:
    if layer.type_name is None:
        raise ValueError(f"layer {index} {layer!r} cannot be described: its class is not "
                         "registered (it was defined with register=False, inside a function "
                         "or with a private name)")
    return layer.type_name


def _loss_type(loss: Loss) -> str:
    if loss.type_name is None:
        raise ValueError(f"loss {loss!r} cannot be described: its class is not registered (it "
                         "was defined with register=False, inside a function or with a "
                         "private name)")
    return loss.type_name


def _target_shape(value: Any) -> tuple[int, ...] | None:
    """A description's ``target_shape``: None (unknown) or a list of sizes >= 1."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in value):
        raise ValueError(f"target_shape must be null or a list of sizes >= 1, got {value!r}")
    return tuple(value)


def _check_unshared(layers: list[Layer], index: int, model: Sequential) -> None:
    """A layer object may stand at one place of one model: it keeps its own caches, and its
    parameters become views into that model's buffers."""
    layer = layers[index]
    if any(other is layer for other in layers[:index]):
        raise ValueError(f"layer {index} {layer!r} is the same object as an earlier layer: "
                         "give every position its own layer (its caches are its own)")
    owner = layer.owner() if layer.owner is not None else None
    if owner is not None and owner is not model and any(
            np.shares_memory(p, owner.flat_params) for p in layer.params.values()):
        raise ValueError(f"layer {index} {layer!r} already belongs to another model, whose "
                         "parameter buffer it uses; pass copy.deepcopy(layer) to reuse it")


def _fitting_hint(layer: Layer, shape: tuple[int, ...]) -> str:
    """How to write ``layer`` so that it takes ``shape`` (for layers with a size argument)."""
    if isinstance(layer, Dense) and len(shape) == 1:
        return f" (Dense({shape[0]}, {layer.out_features}))"
    return ""
