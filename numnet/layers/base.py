"""The layer contract every numnet layer follows.

A layer is a small object with

* ``forward(x, training=False) -> y``: computes the output and caches what backward needs;
* ``backward(grad_out) -> grad_in``: given dL/dy, returns dL/dx and *writes* dL/dparam into
  ``grads`` (it overwrites, it does not accumulate, and it never writes into ``grad_out``);
  ``backward_params(grad_out)`` does the same but returns nothing, so a layer may skip the
  input gradient where nothing needs it (the first layer of a model in training);
* ``params`` and ``grads``: dicts of arrays under the same keys (``"W"``, ``"b"``, ...);
* ``buffers``: state that is saved with the model but not trained (running statistics);
* ``output_shape(input_shape)``: the per-sample output shape, computed without data.

Shapes exclude the batch axis: a Dense layer's ``input_shape`` is ``(in_features,)``.
Parameters and gradients are written in place, never rebound after construction, so a
model can move them into one contiguous buffer and hand the layer views into it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from numnet._checks import resolve_dtype
from numnet.errors import ShapeError


class Layer:
    """Base class of all layers; see the module docstring for the contract."""

    #: every subclass, by class name, so a model can be rebuilt from its description
    registry: ClassVar[dict[str, type[Layer]]] = {}
    #: parameter keys that weight decay / L2 regularisation applies to (weights, not biases)
    decay_keys: ClassVar[tuple[str, ...]] = ()
    #: the default initialiser family this layer asks of the Dense layer before it
    init_family: ClassVar[str | None] = None
    #: the fewest samples a training batch must hold for this layer
    min_train_batch: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Layer.registry[cls.__name__] = cls

    def __init__(self, dtype: Any = None) -> None:
        self.dtype = resolve_dtype(dtype)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.rng = np.random.default_rng()
        #: weak reference to the model whose flat buffers hold this layer's parameters
        self.owner: Any = None

    # -- the contract -------------------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward_params(self, grad_out: np.ndarray) -> None:
        """Fill ``grads`` only: the backward pass of a layer whose input needs no gradient.

        A model calls this on its first layer with parameters during training, where the
        input is data. The default runs :meth:`backward` and drops the input gradient;
        layers for which that gradient costs real work (Dense: a matrix product as large
        as the forward one) skip it.
        """
        self.backward(grad_out)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Per-sample output shape for a per-sample ``input_shape`` (default: unchanged)."""
        return tuple(input_shape)

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """The per-sample input shape this layer requires, when it fixes one."""
        return None

    # -- life cycle ---------------------------------------------------------------------
    def initialize(self, rng: np.random.Generator) -> None:
        """(Re)initialise parameters in place and take ``rng`` for any later randomness."""
        self.rng = rng

    def astype(self, dtype: Any) -> Layer:
        """Convert parameters, gradients and buffers to ``dtype`` (before a model is built)."""
        self.dtype = resolve_dtype(dtype)
        for store in (self.params, self.grads, self.buffers):
            for key, value in store.items():
                store[key] = value.astype(self.dtype)
        return self

    def zero_grad(self) -> None:
        for grad in self.grads.values():
            grad.fill(0)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serialisable, from which ``type(self)(**config)``."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        return cls(**config)

    @property
    def num_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    # -- helpers for subclasses ---------------------------------------------------------
    def _add_param(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        self.params[name] = np.zeros(shape, dtype=self.dtype)
        self.grads[name] = np.zeros(shape, dtype=self.dtype)
        return self.params[name]

    def _as_input(self, x: Any, ndim: int | None = None) -> np.ndarray:
        """``x`` as an array of the layer's dtype (no copy when it already is one)."""
        x = np.asarray(x, dtype=self.dtype)
        if ndim is not None and x.ndim != ndim:
            raise ShapeError(
                f"{self!r} expects input of rank {ndim} (batch first), got shape {x.shape}"
            )
        return x

    def _as_grad(self, grad_out: Any, shape: tuple[int, ...]) -> np.ndarray:
        """``grad_out`` in the layer's dtype, checked against the forward output's ``shape``.

        A float64 gradient reaching a float32 layer is cast down here, so it cannot turn the
        rest of the backward pass into float64.
        """
        grad_out = np.asarray(grad_out, dtype=self.dtype)
        if grad_out.shape != tuple(shape):
            raise ShapeError(f"{self!r}.backward expects a gradient of the shape of its last "
                             f"output, {tuple(shape)}, got {grad_out.shape}")
        return grad_out

    def _need_cache(self, name: str) -> Any:
        value = getattr(self, name, None)
        if value is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return value

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "dtype")
        return f"{type(self).__name__}({args})"
