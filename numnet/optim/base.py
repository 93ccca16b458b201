"""The optimiser base class: lazy flat state, the step count, weight-decay masks, saving.

An optimiser works on the model's flat parameter and gradient vectors (``model.flat_params``
and ``model.flat_grads``, of which every layer's ``params``/``grads`` are views), so one step
is a few vectorised, in-place operations over every parameter at once. Its state (moments,
momentum buffers) is a set of arrays of the same flat size, created at the first step.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import numpy as np

from numnet._checks import all_finite, real_number


class ParameterVectors(Protocol):
    """What an optimiser and the clipping functions use of a model (a ``Sequential``)."""

    @property
    def flat_params(self) -> np.ndarray:
        """Every parameter in one contiguous vector (the layers' ``params`` are views)."""

    @property
    def flat_grads(self) -> np.ndarray:
        """The gradients, laid out as ``flat_params``."""

    @property
    def decay_mask(self) -> np.ndarray:
        """True where weight decay applies (weights, not biases)."""


class Optimizer:
    """Base class: ``step(model)`` applies one update using ``model.flat_grads``.

    Subclasses name their state arrays in ``state_names`` and implement ``_update``. The
    base class creates the state lazily (arrays of the flat size and dtype, filled with
    ``_initial_value(name)``, 0 by default), keeps the step
    count, builds the weight-decay mask, and saves and restores state.

    Parameters
    ----------
    lr : float
        Learning rate, > 0. Schedules change the attribute ``lr`` between steps.
    weight_decay : float
        Decay coefficient, >= 0 (its meaning depends on the optimiser, see its docstring).
    decay_all : bool
        Decay every parameter, not only those where ``model.decay_mask`` is True.
    """

    name: ClassVar[str] = "optimizer"
    registry: ClassVar[dict[str, type[Optimizer]]] = {}
    #: names of the flat state arrays saved by :meth:`state_dict` (set per instance)
    state_names: tuple[str, ...] = ()
    #: how many flat scratch buffers ``_update`` needs (0 for the optimisers whose update is
    #: a kernel of numnet._kernels, which keeps its own)
    n_scratch: ClassVar[int] = 1
    #: True when weight decay shrinks the weights directly (AdamW) instead of the gradient
    _decoupled: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            Optimizer.registry[cls.name] = cls

    def __init__(self, lr: float, weight_decay: float = 0.0, decay_all: bool = False) -> None:
        self.lr = real_number(lr, f"{type(self).__name__} lr", low=0.0, low_open=True)
        self.weight_decay = real_number(weight_decay, f"{type(self).__name__} weight_decay",
                                        low=0.0)
        if not isinstance(decay_all, (bool, np.bool_)):
            raise TypeError(f"{type(self).__name__} decay_all must be True or False, "
                            f"got {decay_all!r}")
        self.decay_all = bool(decay_all)
        #: the rate the optimiser was made with: the base of a schedule without its own
        #: ``initial_lr``, saved with the state so a resumed run follows the same schedule
        self.initial_lr = self.lr
        self.steps = 0
        self.state: dict[str, np.ndarray] = {}
        self._pending: dict[str, np.ndarray] | None = None  # loaded before the first step
        self._scratch: list[np.ndarray] = []
        self._decayed_grad: np.ndarray | None = None
        self._decay: np.ndarray | float = 0.0
        self._buffers_for: tuple[int, np.dtype[Any]] | None = None  # size, dtype of the above

    # -- the public interface -----------------------------------------------------------
    def step(self, model: ParameterVectors) -> None:
        """Update ``model.flat_params`` in place from ``model.flat_grads``."""
        self._step(model, None, check=False)

    def checked_step(self, model: ParameterVectors, backup: np.ndarray) -> bool:
        """:meth:`step`, copying the parameters from before it into ``backup`` (a vector
        of ``flat_params``'s size and dtype) and returning whether every updated parameter
        is finite (a NaN or infinite gradient makes its parameter so too).

        The training guard's rollback and divergence check: Adam, AdamW, SGD and RMSProp do
        all three in the update's own pass (see :mod:`numnet._kernels`), other optimisers
        copy, update, then check.
        """
        if type(self).step is not Optimizer.step:  # a subclass's own step() is what runs
            np.copyto(backup, model.flat_params)
            self.step(model)
            return all_finite(model.flat_params)
        return self._step(model, backup, check=True)

    def _step(self, model: ParameterVectors, backup: np.ndarray | None, check: bool) -> bool:
        params, grads = model.flat_params, model.flat_grads
        self._prepare(params, model.decay_mask)
        self.steps += 1
        return self._checked_update(params, grads, params.dtype.type, backup, check)

    def get_config(self) -> dict[str, Any]:
        """Hyper-parameters, JSON-serialisable, with ``"name"``; see :func:`from_config`."""
        return {"name": self.name, "lr": self.lr, "weight_decay": self.weight_decay,
                "decay_all": self.decay_all}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the state: ``"step"`` (0-d int64), ``"initial_lr"`` (0-d float64) and
        every moment / buffer array."""
        state = {"step": np.array(self.steps, dtype=np.int64),
                 "initial_lr": np.array(self.initial_lr, dtype=np.float64)}
        source = self.state if self.state else (self._pending or {})
        state.update({key: value.copy() for key, value in source.items()})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned, so training continues bit for bit.

        The arrays are checked against the model's flat size at the next step.
        """
        if not isinstance(state, dict) or "step" not in state:
            raise ValueError(f"{type(self).__name__} state must be a dict with a 'step' entry")
        scalars = ("step", "initial_lr")
        arrays = {key: np.array(value) for key, value in state.items() if key not in scalars}
        unexpected = sorted(set(arrays) - set(self.state_names))
        missing = sorted(set(self.state_names) - set(arrays))
        step = int(np.asarray(state["step"]))
        if unexpected or (step > 0 and missing):
            raise ValueError(f"{type(self).__name__} state does not fit: missing {missing}, "
                             f"unexpected {unexpected} (expected 'step' and "
                             f"{list(self.state_names)})")
        sizes = {value.shape for value in arrays.values()}
        if len(sizes) > 1 or any(len(shape) != 1 for shape in sizes):
            raise ValueError(f"{type(self).__name__} state arrays must be flat vectors of one "
                             f"size, got shapes {sorted(sizes)}")
        if "initial_lr" in state:  # absent from files of numnet 0.1.0's first sessions
            self.initial_lr = real_number(float(np.asarray(state["initial_lr"])),
                                          f"{type(self).__name__} initial_lr", low=0.0,
                                          low_open=True)
        self.steps = step
        self.state = {}
        self._pending = arrays if arrays else None

    def zero_state(self) -> None:
        """Forget moments and the step count (the next step starts afresh)."""
        self.steps = 0
        self.state = {}
        self._pending = None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"

    # -- for subclasses -----------------------------------------------------------------
    def _update(self, params: np.ndarray, grads: np.ndarray, dtype: type) -> None:
        raise NotImplementedError

    def _checked_update(self, params: np.ndarray, grads: np.ndarray, dtype: type,
                        backup: np.ndarray | None, check: bool) -> bool:
        """``_update`` with the backup before it and the finiteness check after it; an
        optimiser whose kernel does the three in one pass overrides this instead."""
        if backup is not None:
            np.copyto(backup, params)
        self._update(params, grads, dtype)
        return not check or all_finite(params)

    def _decay_mask(self) -> np.ndarray | None:
        """The 0/1 decay vector for the kernels, None when every entry decays."""
        return None if isinstance(self._decay, float) else self._decay

    def _initial_value(self, key: str) -> float:
        """What the state array ``key`` holds before the first step (0 unless overridden)."""
        return 0.0

    def _prepare(self, params: np.ndarray, decay_mask: np.ndarray) -> None:
        """Create (or adopt loaded) state arrays of the flat size on first use."""
        size, dtype = params.size, params.dtype
        if self._pending is not None:
            for key, value in self._pending.items():
                if value.shape != (size,):
                    raise ValueError(f"{type(self).__name__} state {key!r} has {value.size} "
                                     f"entries but the model has {size} parameters")
            self.state, self._pending = self._pending, None
        if self.state:
            first = next(iter(self.state.values()))
            if first.shape != (size,):
                raise ValueError(f"{type(self).__name__} holds state for {first.size} "
                                 f"parameters, but this model has {size}: use one optimiser "
                                 "per model")
            if first.dtype != dtype:
                self.state = {key: value.astype(dtype) for key, value in self.state.items()}
        else:
            self.state = {key: np.full(size, self._initial_value(key), dtype=dtype)
                          for key in self.state_names}
        if self._buffers_for == (size, dtype):
            return
        self._buffers_for = (size, dtype)
        # the kernels' NumPy path appends the scratch vectors it needs to this list (the
        # compiled path needs none); other optimisers get their n_scratch here
        self._scratch = [np.empty(size, dtype=dtype) for _ in range(self.n_scratch)]
        self._decayed_grad = None
        self._decay = self._decay_vector(decay_mask, dtype)

    def _decay_vector(self, mask: np.ndarray, dtype: np.dtype) -> np.ndarray | float:
        """1.0 where decay applies, 0.0 elsewhere; the plain float 1.0 when it applies to all."""
        mask = np.asarray(mask, dtype=bool)
        if self.decay_all or mask.all():
            return 1.0
        return mask.astype(dtype)

    def _coupled_decay(self, params: np.ndarray, grads: np.ndarray, dtype: type) -> np.ndarray:
        """``g + wd * p`` on the decayed entries, into a scratch buffer (grads stay untouched)."""
        if self.weight_decay == 0 or self._decoupled:
            return grads
        if self._decayed_grad is None:
            self._decayed_grad = np.empty_like(params)
        out = self._decayed_grad
        np.multiply(params, dtype(self.weight_decay), out=out)
        if not isinstance(self._decay, float):
            out *= self._decay
        out += grads
        return out
