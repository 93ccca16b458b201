"""The layer contract every numnet layer follows.

A layer subclass writes the maths, and nothing else:

* ``forward(x, training=False) -> y``: computes the output and caches what backward needs;
* ``backward(grad_out) -> grad_in``: given dL/dy, returns dL/dx and *writes* dL/dparam into
  ``grads`` (it overwrites, it does not accumulate, and it never writes into ``grad_out``);
  ``backward_params(grad_out)`` does the same but returns nothing, so a layer may skip the
  input gradient where nothing needs it (the first layer of a model in training);
* ``output_shape(input_shape)``: the per-sample output shape, computed without data. It is
  also where a layer states which inputs it takes: it raises
  :class:`~numnet.errors.ShapeError` with a clear message for a per-sample shape it cannot
  take. ``input_shape`` names the one per-sample shape a layer requires, when it fixes one;
  the optional hook ``check_input(x, training)`` rejects what a shape cannot say (a batch of
  one sample for batch normalisation in training);
* ``params`` and ``grads``: dicts of arrays under the same keys (``"W"``, ``"b"``, ...);
  ``buffers``: state that is saved with the model but not trained (running statistics).

**Checked and unchecked paths.** ``forward`` and ``backward`` trust their arguments: a
model checks its input once at its boundary (:meth:`numnet.model.Sequential.forward`, and
``fit``/``evaluate``/``predict`` check the whole data set once), and the shapes between
its layers were checked when it was built, so the training loop runs nothing but the
maths. Calling a layer on its own goes through the checked path:

* ``layer(x, training=False)`` converts ``x`` to an array of the layer's dtype and checks
  that it has a batch axis and a per-sample shape ``output_shape`` accepts (and
  ``check_input``), raising :class:`~numnet.errors.ShapeError` naming the layer, then
  calls ``forward``;
* ``layer.backward_checked(grad_out)`` casts ``grad_out`` to the layer's dtype (a float64
  gradient cannot turn a float32 layer's backward pass into float64) and checks it has the
  shape of the output of the last ``layer(x)``, naming the layer, then calls ``backward``.
  Plain ``backward`` does neither: given a gradient of another shape it fails inside NumPy
  or, where shapes broadcast, computes something else.

**Weights and their initialiser.** A layer with a weight matrix or kernel sets the class
attribute ``weight_key`` (``"W"``), takes ``init`` in its constructor (stored with
:meth:`Layer._set_init`) and fills the weight with :meth:`Layer.init_weight` in
``initialize``. A model then gives every such layer without a chosen ``init`` the family
the activation after it asks for (its ``init_family``: ``"he_normal"`` for the ReLU family,
``"glorot_uniform"`` otherwise). :meth:`Layer.fans` gives ``(fan_in, fan_out)`` of the
weight; override it for a layout :func:`numnet.init.fans` does not know.

**The registry.** Every public subclass is registered under a namespaced type name, from
which a model file or an architecture JSON rebuilds it: ``"numnet.Dense"`` for numnet's
own layers, ``"<module>.<qualified name>"`` for others, or the name given at class
definition, ``class Swish(Layer, name="mypackage.Swish")`` (do that for a layer defined in
a notebook or a script, whose module is ``__main__``). A name taken by another class is an
error; defining the same class again (a re-run notebook cell, a reloaded module) replaces
it. Private classes (a name starting with ``_``), classes defined inside functions and
classes defined with ``register=False`` are not registered. Bare names (``"Dense"``) in
files written before names were namespaced still load.

**Gradient checks.** Each layer class provides small examples in ``gradcheck_cases()``;
the test suite checks every registered layer with them, so a registered layer without
cases fails it.

Shapes exclude the batch axis: a Dense layer's ``input_shape`` is ``(in_features,)``.
Parameters and gradients are written in place, never rebound after construction, so a
model can move them into one contiguous buffer and hand the layer views into it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from numnet import init as initializers
from numnet._checks import fmt_shape, resolve_dtype
from numnet._memory import check_array
from numnet.errors import ShapeError

if TYPE_CHECKING:
    from numnet.model import Sequential

#: the namespace of numnet's own layers, losses and models in their type names
NAMESPACE = "numnet"


@dataclass
class GradCheckCase:
    """One gradient check: a small layer, an input for it and the modes to check it in.

    ``x`` should be float64 and keep away from points where the layer's function has no
    derivative (ReLU's kink at 0).
    """

    layer: Layer
    x: np.ndarray
    modes: tuple[bool, ...] = (True, False)  # training=True, training=False


def registry_name(cls: type, name: str | None) -> str | None:
    """The registry name of ``cls``: ``name`` if given, else ``numnet.<qualified name>`` for
    numnet's own classes and ``<module>.<qualified name>`` for others; None for a class that
    is not registered (private, or defined inside a function)."""
    if name is not None:
        return name
    qualname = cls.__qualname__
    if "<locals>" in qualname or any(part.startswith("_") for part in qualname.split(".")):
        return None
    module = cls.__module__
    if module == NAMESPACE or module.startswith(NAMESPACE + "."):
        return f"{NAMESPACE}.{qualname}"
    return f"{module}.{qualname}"


def register_class(registry: dict[str, Any], cls: Any, name: str | None, kind: str) -> str | None:
    """Put ``cls`` into ``registry`` under its type name; refuse a name another class holds.

    A class with the same module and qualified name as the holder replaces it: that is the
    same class defined again (a re-run notebook cell, a reloaded module).
    """
    if name is not None:
        if not isinstance(name, str) or "." not in name.strip(".") or name != name.strip():
            raise ValueError(f"{kind} name {name!r} of {cls.__qualname__} must be namespaced, "
                             f"like 'mypackage.{cls.__name__}'")
        own = cls.__module__ == NAMESPACE or cls.__module__.startswith(NAMESPACE + ".")
        if name.startswith(NAMESPACE + ".") and not own:
            raise ValueError(f"{kind} name {name!r} of {cls.__qualname__}: the "
                             f"'{NAMESPACE}.' namespace is numnet's own; use your package's")
    full = registry_name(cls, name)
    if full is None:
        return None
    holder = registry.get(full)
    if holder is not None and holder is not cls and (
            holder.__module__, holder.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(
            f"{kind} type name {full!r} is already taken by {holder.__module__}."
            f"{holder.__qualname__}; give {cls.__module__}.{cls.__qualname__} a name of its "
            f"own: class {cls.__name__}(..., name='mypackage.{cls.__name__}')")
    registry[full] = cls
    return full


def lookup_class(registry: dict[str, Any], name: str, kind: str) -> Any:
    """The class registered as ``name``; a bare name (no dot) as written by older numnet.

    A bare name means numnet's own class of that name if there is one (``"Dense"`` is
    always ``numnet.Dense``), else the one registered class of that qualified name.
    """
    found = registry.get(name)
    if found is None and isinstance(name, str) and "." not in name:
        found = registry.get(f"{NAMESPACE}.{name}")
        if found is None:
            matches = [cls for key, cls in registry.items()
                       if key.rpartition(".")[2] == name and cls.__qualname__ == name]
            if len(matches) > 1:
                raise ValueError(f"{kind} type {name!r} is ambiguous: it could be any of "
                                 f"{sorted(str(cls.type_name) for cls in matches)}")
            found = matches[0] if matches else None
    if found is None:
        module = name.rpartition(".")[0] if isinstance(name, str) else ""
        own = ""
        if module == "__main__":
            own = ("; it was defined in a script or notebook: define it again (better with "
                   "a name of its own, class X(Layer, name='mypackage.X')) before loading")
        elif module and module.split(".")[0] != NAMESPACE:
            own = (f"; a class of your own is registered when its module runs: import "
                   f"{module} (the module that defines it) first")
        raise ValueError(f"unknown {kind} type {name!r}{own}; known: {sorted(registry)}")
    return found


class Layer:
    """Base class of all layers; see the module docstring for the contract."""

    #: every registered subclass, by its namespaced type name (``"numnet.Dense"``)
    registry: ClassVar[dict[str, type[Layer]]] = {}
    #: this class's name in the registry and in model files; None when not registered
    type_name: ClassVar[str | None] = None
    #: parameter keys that weight decay / L2 regularisation applies to (weights, not biases)
    decay_keys: ClassVar[tuple[str, ...]] = ()
    #: the parameter a model's default initialiser fills; set by layers with weights
    weight_key: ClassVar[str | None] = None
    #: activations: the initialiser family they ask of the layer with weights before them
    init_family: ClassVar[str | None] = None
    #: the fewest samples a training batch must hold for this layer
    min_train_batch: ClassVar[int] = 1
    #: bounded activations: the asymptotes ``(low, high)`` of the output, near which the
    #: derivative vanishes (the diagnosis counts outputs there as saturated)
    saturation: ClassVar[tuple[float, float] | None] = None
    #: activations whose unit passes no gradient when its output is 0 (ReLU): a unit that is
    #: 0 for every sample of a batch is dead (see :mod:`numnet.diagnosis`)
    can_die: ClassVar[bool] = False

    def __init_subclass__(cls, name: str | None = None, register: bool = True,
                          **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.type_name = register_class(Layer.registry, cls, name, "layer") if register else None

    @staticmethod
    def lookup(name: str) -> type[Layer]:
        """The layer class registered as ``name`` (a bare ``"Dense"`` is ``numnet.Dense``)."""
        found: type[Layer] = lookup_class(Layer.registry, name, "layer")
        return found

    def __init__(self, dtype: Any = None) -> None:
        self.dtype = resolve_dtype(dtype)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.rng = np.random.default_rng()
        #: the initialiser the user chose for ``params[weight_key]`` (None: the default)
        self.init: initializers.InitSpec = None
        #: the initialiser used when the user chose none; a model sets it from the
        #: activation after this layer (:meth:`set_default_init`)
        self.default_init = "glorot_uniform"
        #: weak reference to the model whose flat buffers hold this layer's parameters
        self.owner: weakref.ReferenceType[Sequential] | None = None
        self._called_shape: tuple[int, ...] | None = None  # output of the last layer(x)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the weak reference to the owning model (a model restores it)."""
        state = self.__dict__.copy()
        state["owner"] = None
        return state

    # -- the contract: the maths ----------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -- running the activation after this layer as one (Dense, Conv2D) ------------------
    #: the output of :meth:`forward_activated` while the last forward ran the pair as one
    activated: np.ndarray | None = None
    #: LeakyReLU's slope of that pair (0 for ReLU)
    activation_alpha: float = 0.0

    def fuses_with(self, layer: Layer) -> bool:
        """Whether this layer runs ``layer``, the next one in a model, together with itself
        (:meth:`forward_activated`, :meth:`backward_activated`). Layers that can do so
        override this; the values are always those of the two layers run one after the
        other."""
        return False

    def _fused_maths_are_its_own(self) -> bool:
        """Whether the pair's methods still compute this layer's maths: not in a subclass
        that overrides ``forward`` or ``backward`` without them (a model would skip its
        code), as :func:`~numnet.layers.activations.fused_activation` takes no subclass."""
        kind = type(self)

        def owner(name: str) -> type:
            return next(cls for cls in kind.__mro__ if name in vars(cls))

        return (owner("forward") is owner("forward_activated")
                and owner("backward") is owner("backward_activated"))

    def forward_activated(self, x: np.ndarray, activation: Layer,
                          training: bool = False) -> np.ndarray:
        """``activation(self.forward(x))`` in one pass; keeps the output in ``activated``."""
        raise NotImplementedError(f"{type(self).__name__} does not fuse with {activation!r}")

    def backward_activated(self, grad_out: np.ndarray, input_grad: bool = True,
                           in_place: bool = False) -> np.ndarray | None:
        """Backward through the activation and this layer, after :meth:`forward_activated`:
        the input gradient (None without ``input_grad``). ``in_place``: ``grad_out`` is the
        caller's scratch and may be overwritten."""
        raise NotImplementedError(f"{type(self).__name__} does not fuse with an activation")

    def backward_params(self, grad_out: np.ndarray) -> None:
        """Fill ``grads`` only: the backward pass of a layer whose input needs no gradient.

        A model calls this on its first layer with parameters during training, where the
        input is data. The default runs :meth:`backward` and drops the input gradient;
        layers for which that gradient costs real work (Dense: a matrix product as large
        as the forward one) skip it.
        """
        self.backward(grad_out)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Per-sample output shape for a per-sample ``input_shape`` (default: unchanged).

        Raises :class:`~numnet.errors.ShapeError` for an input shape the layer cannot take.
        """
        return tuple(input_shape)

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """The per-sample input shape this layer requires, when it fixes one."""
        return None

    def check_input(self, x: np.ndarray, training: bool) -> None:
        """Hook: reject a batch that has an acceptable shape but still cannot be used."""

    # -- the checked path, for direct use ---------------------------------------------------
    def __call__(self, x: Any, training: bool = False) -> np.ndarray:
        """Check ``x`` (see the module docstring), then return ``forward(x, training)``."""
        y = self.forward(self.checked_input(x, training), training=training)
        self._called_shape = y.shape
        return y

    def checked_input(self, x: Any, training: bool = False) -> np.ndarray:
        """``x`` as an array of the layer's dtype, checked against what the layer takes."""
        if x is None or isinstance(x, (str, bytes)):
            raise TypeError(f"{self!r} expects an array of samples, got {x!r}")
        given = np.asarray(x)
        if given.dtype.kind not in "biuf":
            raise TypeError(f"{self!r} expects numbers, got an array of dtype {given.dtype}")
        array: np.ndarray = given.astype(self.dtype, copy=False)
        shape = array.shape
        if not shape:
            raise ShapeError(f"{self!r} expects a batch (N, ...) with the samples along the "
                             "first axis, got a scalar")
        expected = self.input_shape
        if expected is not None and shape[1:] != tuple(expected):
            want = fmt_shape(("N", *expected))
            if len(shape) != len(expected) + 1:
                raise ShapeError(f"{self!r} expects input of rank {len(expected) + 1}, shape "
                                 f"{want}, got rank {len(shape)} shape {shape}")
            raise ShapeError(f"{self!r} expects input of shape {want}, got {shape}")
        try:
            self.output_shape(shape[1:])
        except ShapeError as exc:
            raise ShapeError(f"{exc}; the input has shape {shape} (samples along the first "
                             "axis)") from exc
        self.check_input(array, training)
        return array

    def backward_checked(self, grad_out: Any) -> np.ndarray:
        """``backward(grad_out)`` for direct callers: ``grad_out`` is cast to the layer's
        dtype and checked against the shape of the output of the last ``layer(x)``."""
        if self._called_shape is None:
            raise RuntimeError(f"{type(self).__name__}.backward_checked called before the "
                               "layer was called on an input (y = layer(x))")
        return self.backward(self._as_grad(grad_out, self._called_shape))

    # -- weights and their initialiser ---------------------------------------------------
    def _set_init(self, init: initializers.InitSpec) -> None:
        """Keep the user's choice of initialiser (checked now, not at first use); numnet's
        ``normal(std)`` is kept by its name, ``"normal(std=...)"``, which model files store."""
        initializers.get_initializer(init)
        self.init = initializers.spec_name(init)

    def set_default_init(self, name: str) -> None:
        """Use the initialiser ``name`` unless the user chose one (a model calls this)."""
        initializers.get_initializer(name)
        self.default_init = name

    @property
    def init_name(self) -> str | None:
        """The initialiser ``params[weight_key]`` really gets; None for a layer without one."""
        if self.weight_key is None:
            return None
        spec = self.default_init if self.init is None else self.init
        return spec if isinstance(spec, str) else getattr(spec, "__name__", repr(spec))

    def fans(self) -> initializers.Fans:
        """``(fan_in, fan_out)`` of the weight (:func:`numnet.init.fans` of its layout)."""
        if self.weight_key is None:
            raise TypeError(f"{type(self).__name__} has no weight (weight_key is None)")
        return initializers.fans(self.params[self.weight_key].shape)

    def init_weight(self, rng: np.random.Generator) -> None:
        """Fill ``params[weight_key]`` in place from the initialiser in use."""
        if self.weight_key is None:
            return
        weight = self.params[self.weight_key]
        spec = self.default_init if self.init is None else self.init
        function: Callable[..., np.ndarray] = initializers.get_initializer(spec)
        if isinstance(spec, str):  # numnet's initialisers take the layer's fans
            weight[...] = function(weight.shape, rng, self.dtype, fans=self.fans())
        else:
            weight[...] = function(weight.shape, rng, self.dtype)

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

    @classmethod
    def gradcheck_cases(cls) -> list[GradCheckCase]:
        """Small examples of this layer and its input for the gradient checks.

        Every registered layer must give some (the test suite checks them all, each input
        and parameter in float64, in the modes listed); the base class has none.
        """
        return []

    @property
    def num_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    # -- helpers for subclasses ---------------------------------------------------------
    def _add_param(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Allocate ``params[name]`` and ``grads[name]``, zeros of ``shape``; a size that
        cannot be allocated is refused first (:class:`~numnet.errors.AllocationError`)."""
        check_array(shape, self.dtype, f"{self._describe()}: its parameter {name}", copies=2,
                    why="with its gradient")
        self.params[name] = np.zeros(shape, dtype=self.dtype)
        self.grads[name] = np.zeros(shape, dtype=self.dtype)
        return self.params[name]

    def _describe(self) -> str:
        """``Dense(64, 10)``, or the class name while the layer is still being built."""
        try:
            return repr(self)
        except (AttributeError, KeyError, TypeError, ValueError):
            return type(self).__name__

    def _as_input(self, x: Any, ndim: int | None = None) -> np.ndarray:
        """``x`` as an array of the layer's dtype (no copy when it already is one)."""
        array: np.ndarray = np.asarray(x, dtype=self.dtype)
        if ndim is not None and array.ndim != ndim:
            raise ShapeError(
                f"{self!r} expects input of rank {ndim} (batch first), got shape {array.shape}"
            )
        return array

    def _as_grad(self, grad_out: Any, shape: tuple[int, ...]) -> np.ndarray:
        """``grad_out`` in the layer's dtype, checked against the forward output's ``shape``."""
        grad: np.ndarray = np.asarray(grad_out, dtype=self.dtype)
        if grad.shape != tuple(shape):
            raise ShapeError(f"{self!r}.backward expects a gradient of the shape of its last "
                             f"output, {tuple(shape)}, got {grad.shape}")
        return grad

    def _need_cache(self, name: str) -> Any:
        value = getattr(self, name, None)
        if value is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return value

    def __repr__(self) -> str:
        config = self.get_config()
        if self.weight_key is not None and "init" in config:
            config["init"] = self.init_name  # the initialiser in use, not just the choice
        args = ", ".join(f"{k}={v!r}" for k, v in config.items() if k != "dtype")
        return f"{type(self).__name__}({args})"

