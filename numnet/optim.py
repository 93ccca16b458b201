r"""Optimisers, learning-rate schedules and gradient clipping.

An optimiser works on the model's flat parameter and gradient vectors (``model.flat_params``
and ``model.flat_grads``, of which every layer's ``params``/``grads`` are views), so one step
is a few vectorised, in-place operations over every parameter at once. Its state (moments,
momentum buffers) is a set of arrays of the same flat size, created at the first step.

Each update rule is written out in its class docstring. They follow PyTorch's
``torch.optim`` classes of the same names and arguments (single-tensor CPU code path): on
the same gradients the parameters agree to float64 rounding (PyTorch fuses some
multiply-adds, so the last bit can differ).

Two ways to shrink weights
--------------------------
*L2 regularisation* adds ``(l2 / 2) * sum(W ** 2)`` to the loss (``Sequential(..., l2=...)``),
so its gradient ``l2 * W`` flows through the optimiser like any other gradient: with Adam it
is divided by the adaptive denominator too. The ``weight_decay`` argument of
:class:`SGD`, :class:`RMSProp` and :class:`Adam` does exactly the same inside the optimiser
(``g <- g + wd * p``), as in PyTorch. *Decoupled* weight decay (:class:`AdamW`) instead
shrinks the weights directly, ``p <- p * (1 - lr * wd)``, outside the adaptive update.

In every case only the entries where ``model.decay_mask`` is True are decayed (weights, not
biases or normalisation parameters); pass ``decay_all=True`` to decay everything.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from numnet._checks import positive_int, real_number

# ----------------------------------------------------------------------------------------
# Optimisers
# ----------------------------------------------------------------------------------------


class Optimizer:
    """Base class: ``step(model)`` applies one update using ``model.flat_grads``.

    Subclasses name their state arrays in ``state_names`` and implement ``_update``. The
    base class creates the state lazily (zeros of the flat size and dtype), keeps the step
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
    #: how many flat scratch buffers ``_update`` needs
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

    # -- the public interface -----------------------------------------------------------
    def step(self, model: Any) -> None:
        """Update ``model.flat_params`` in place from ``model.flat_grads``."""
        params, grads = model.flat_params, model.flat_grads
        self._prepare(params, model.decay_mask)
        self.steps += 1
        dtype = params.dtype.type
        self._update(params, grads, dtype)

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
            self.state = {key: np.zeros(size, dtype=dtype) for key in self.state_names}
        if self._buffers_fit(size, dtype):
            return
        self._scratch = [np.empty(size, dtype=dtype) for _ in range(self.n_scratch)]
        coupled = self.weight_decay > 0 and not self._decoupled
        self._decayed_grad = np.empty(size, dtype=dtype) if coupled else None
        self._decay = self._decay_vector(decay_mask, dtype)

    def _buffers_fit(self, size: int, dtype: np.dtype) -> bool:
        return bool(self._scratch) and self._scratch[0].shape == (size,) \
            and self._scratch[0].dtype == dtype

    def _decay_vector(self, mask: np.ndarray, dtype: np.dtype) -> np.ndarray | float:
        """1.0 where decay applies, 0.0 elsewhere; the plain float 1.0 when it applies to all."""
        mask = np.asarray(mask, dtype=bool)
        if self.decay_all or mask.all():
            return 1.0
        return mask.astype(dtype)

    def _coupled_decay(self, params: np.ndarray, grads: np.ndarray, dtype: type) -> np.ndarray:
        """``g + wd * p`` on the decayed entries, into a scratch buffer (grads stay untouched)."""
        if self._decayed_grad is None:
            return grads
        out = self._decayed_grad
        np.multiply(params, dtype(self.weight_decay), out=out)
        if not isinstance(self._decay, float):
            out *= self._decay
        out += grads
        return out

    def _check_momentum(self, value: float, what: str = "momentum") -> float:
        return real_number(value, f"{type(self).__name__} {what}", low=0.0)


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum (heavy-ball or Nesterov).

    With ``g`` the gradient, ``mu`` the momentum and ``wd`` the weight decay, one step is::

        g   <- g + wd * p                        (if wd > 0, decayed entries only)
        buf <- g                                 (first step)
        buf <- mu * buf + g                      (later steps; if mu > 0)
        d   <- g + mu * buf   if nesterov   else buf        (d = g when mu = 0)
        p   <- p - lr * d

    This is ``torch.optim.SGD(lr, momentum, dampening=0, weight_decay, nesterov)``; the
    same gradients give the same parameters to float64 rounding.

    Parameters
    ----------
    lr : float
        Learning rate.
    momentum : float
        Momentum factor ``mu`` in [0, 1).
    nesterov : bool
        Use Nesterov momentum (needs ``momentum > 0``).
    weight_decay : float
        L2 penalty coefficient added to the gradient.
    decay_all : bool
        Decay biases and normalisation parameters too.
    """

    name = "sgd"

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, decay_all: bool = False) -> None:
        super().__init__(lr, weight_decay, decay_all)
        self.momentum = real_number(momentum, "SGD momentum", low=0.0, high=1.0, high_open=True)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")
        self.state_names = ("momentum_buffer",) if self.momentum else ()

    def _update(self, params: np.ndarray, grads: np.ndarray, dtype: type) -> None:
        g = self._coupled_decay(params, grads, dtype)
        if self.momentum:
            buf = self.state["momentum_buffer"]
            mu = dtype(self.momentum)
            if self.steps == 1:
                np.copyto(buf, g)
            else:
                buf *= mu
                buf += g
            if self.nesterov:
                direction = self._scratch[0]
                np.multiply(buf, mu, out=direction)
                direction += g
                g = direction
            else:
                g = buf
        # p - lr * d: multiply into scratch so the (possibly shared) gradient is not touched
        step = self._scratch[0]
        np.multiply(g, dtype(self.lr), out=step)
        params -= step

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class RMSProp(Optimizer):
    r"""RMSProp: divide the gradient by a running root mean square of recent gradients.

    With ``alpha`` the smoothing constant, one step is::

        g   <- g + wd * p                                    (if wd > 0)
        v   <- alpha * v + (1 - alpha) * g * g               (v starts at 0)
        gm  <- gm + (1 - alpha) * (g - gm)                   (centered only; gm starts at 0)
        den <- sqrt(v - gm * gm) + eps   if centered   else   sqrt(v) + eps
        buf <- mu * buf + g / den;  p <- p - lr * buf        (if momentum mu > 0)
        p   <- p - lr * g / den                              (otherwise)

    ``eps`` is added outside the square root. This is ``torch.optim.RMSprop(lr, alpha, eps,
    weight_decay, momentum, centered)`` (defaults alpha 0.99, eps 1e-8), to float64 rounding.
    Note that Keras's RMSprop differs (default rho 0.9, eps inside the root).

    Parameters
    ----------
    lr : float
        Learning rate (default 0.01, as in PyTorch).
    alpha : float
        Smoothing constant in [0, 1).
    eps : float
        Added to the denominator, >= 0.
    momentum : float
        Momentum factor in [0, 1).
    centered : bool
        Normalise by an estimate of the gradient's variance instead of its second moment.
    weight_decay, decay_all
        As in :class:`SGD` (L2 penalty added to the gradient).
    """

    name = "rmsprop"
    n_scratch = 2

    def __init__(self, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 momentum: float = 0.0, centered: bool = False, weight_decay: float = 0.0,
                 decay_all: bool = False) -> None:
        super().__init__(lr, weight_decay, decay_all)
        self.alpha = real_number(alpha, "RMSProp alpha", low=0.0, high=1.0, high_open=True)
        self.eps = real_number(eps, "RMSProp eps", low=0.0)
        self.momentum = real_number(momentum, "RMSProp momentum", low=0.0, high=1.0,
                                    high_open=True)
        self.centered = bool(centered)
        names = ["square_avg"]
        if self.centered:
            names.append("grad_avg")
        if self.momentum:
            names.append("momentum_buffer")
        self.state_names = tuple(names)

    def _update(self, params: np.ndarray, grads: np.ndarray, dtype: type) -> None:
        g = self._coupled_decay(params, grads, dtype)
        v = self.state["square_avg"]
        den = self._scratch[0]
        # v*alpha + ((1-alpha)*g)*g, in PyTorch's order of operations
        np.multiply(g, dtype(1 - self.alpha), out=den)
        den *= g
        v *= dtype(self.alpha)
        v += den
        if self.centered:
            gm = self.state["grad_avg"]
            np.subtract(g, gm, out=den)
            den *= dtype(1 - self.alpha)
            gm += den
            np.multiply(gm, gm, out=den)
            np.subtract(v, den, out=den)
            np.sqrt(den, out=den)
        else:
            np.sqrt(v, out=den)
        den += dtype(self.eps)
        if self.momentum:
            buf = self.state["momentum_buffer"]
            buf *= dtype(self.momentum)
            np.divide(g, den, out=den)
            buf += den
            np.multiply(buf, dtype(self.lr), out=den)
        else:
            # (-lr * g) / den, as torch's addcdiv computes it
            step = self._scratch[1]
            np.multiply(g, dtype(self.lr), out=step)
            np.divide(step, den, out=den)
        params -= den

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha, "eps": self.eps,
                "momentum": self.momentum, "centered": self.centered}


class Adam(Optimizer):
    r"""Adam: adaptive moment estimation (Kingma & Ba, 2015).

    With ``t`` the step count (1 at the first step) and ``wd`` the weight decay::

        g     <- g + wd * p                              (if wd > 0: L2, coupled)
        m     <- m + (1 - beta1) * (g - m)               (= beta1 m + (1 - beta1) g)
        v     <- beta2 * v + (1 - beta2) * g * g
        den   <- sqrt(v) / sqrt(1 - beta2^t) + eps
        p     <- p - (lr / (1 - beta1^t)) * m / den

    ``m`` and ``v`` start at 0; the two ``1 - beta^t`` factors correct their bias towards 0.
    This is ``torch.optim.Adam(lr, betas, eps, weight_decay)`` (amsgrad off), to float64
    rounding. Its weight decay is an L2 penalty that goes through the adaptive scaling;
    :class:`AdamW` decouples it.

    Parameters
    ----------
    lr : float
        Learning rate (default 1e-3).
    betas : (float, float)
        Decay rates of the first and second moment estimates, each in [0, 1).
    eps : float
        Added to the denominator, >= 0.
    weight_decay, decay_all
        As in :class:`SGD`.
    """

    name = "adam"
    state_names = ("exp_avg", "exp_avg_sq")
    n_scratch = 2

    def __init__(self, lr: float = 1e-3, betas: Sequence[float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decay_all: bool = False) -> None:
        super().__init__(lr, weight_decay, decay_all)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{type(self).__name__} betas must be a pair (beta1, beta2), "
                             f"got {betas!r}")
        self.betas = tuple(real_number(b, f"{type(self).__name__} beta{i + 1}", low=0.0,
                                       high=1.0, high_open=True) for i, b in enumerate(betas))
        self.eps = real_number(eps, f"{type(self).__name__} eps", low=0.0)

    def _update(self, params: np.ndarray, grads: np.ndarray, dtype: type) -> None:
        beta1, beta2 = self.betas
        if self._decoupled:
            self._decoupled_decay(params, dtype)
            g = grads
        else:
            g = self._coupled_decay(params, grads, dtype)
        m, v = self.state["exp_avg"], self.state["exp_avg_sq"]
        a, b = self._scratch[0], self._scratch[1]
        np.subtract(g, m, out=a)                 # m.lerp_(g, 1 - beta1)
        a *= dtype(1 - beta1)
        m += a
        np.multiply(g, dtype(1 - beta2), out=a)  # v*beta2 + ((1-beta2)*g)*g
        a *= g
        v *= dtype(beta2)
        v += a
        t = self.steps
        step_size = self.lr / (1 - beta1 ** t)
        root_bc2 = (1 - beta2 ** t) ** 0.5
        # step_size * m / (sqrt(v) / root_bc2 + eps)
        #   = (step_size * root_bc2) * m / (sqrt(v) + eps * root_bc2): one pass fewer
        np.sqrt(v, out=a)
        a += dtype(self.eps * root_bc2)
        np.divide(m, a, out=b)
        b *= dtype(step_size * root_bc2)
        params -= b

    def _decoupled_decay(self, params: np.ndarray, dtype: type) -> None:
        """``p <- p * (1 - lr * wd)`` on the decayed entries."""
        if self.weight_decay == 0:
            return
        shrink = 1 - self.lr * self.weight_decay
        if isinstance(self._decay, float):
            params *= dtype(shrink)
            return
        factor = self._scratch[2]
        np.multiply(self._decay, dtype(-self.lr * self.weight_decay), out=factor)
        factor += dtype(1)  # 1 - lr*wd where decayed, exactly 1 elsewhere
        params *= factor

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "betas": list(self.betas), "eps": self.eps}


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    The weights shrink directly, before and outside the adaptive update::

        p     <- p * (1 - lr * wd)                       (= p - lr * wd * p; decayed entries)
        m     <- m + (1 - beta1) * (g - m)
        v     <- beta2 * v + (1 - beta2) * g * g
        den   <- sqrt(v) / sqrt(1 - beta2^t) + eps
        p     <- p - (lr / (1 - beta1^t)) * m / den

    This is ``torch.optim.AdamW(lr, betas, eps, weight_decay)`` (default ``wd = 0.01``), to
    float64 rounding. Parameters as in :class:`Adam`.
    """

    name = "adamw"
    n_scratch = 3
    _decoupled = True

    def __init__(self, lr: float = 1e-3, betas: Sequence[float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01, decay_all: bool = False) -> None:
        super().__init__(lr, betas, eps, weight_decay, decay_all)


# names accepted by get_optimizer, with the defaults an alias adds
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "sgd": ("sgd", {}),
    "momentum": ("sgd", {"momentum": 0.9}),
    "nesterov": ("sgd", {"momentum": 0.9, "nesterov": True}),
    "rmsprop": ("rmsprop", {}),
    "adam": ("adam", {}),
    "adamw": ("adamw", {}),
}


def get_optimizer(name: str | Optimizer, **kwargs: Any) -> Optimizer:
    """An optimiser from a name (``"sgd"``, ``"momentum"``, ``"nesterov"``, ``"rmsprop"``,
    ``"adam"``, ``"adamw"``) and its keyword arguments; an Optimizer is returned as is.

    ``"momentum"`` is SGD with momentum 0.9 and ``"nesterov"`` adds Nesterov's correction.

    Raises
    ------
    ValueError
        For an unknown name, listing the known ones.
    """
    if isinstance(name, Optimizer):
        if kwargs:
            raise ValueError("get_optimizer: keyword arguments apply only to an optimiser name")
        return name
    if not isinstance(name, str):
        raise TypeError(f"optimizer must be an Optimizer or a name, got {name!r}")
    key = name.lower()
    if key not in ALIASES:
        raise ValueError(f"unknown optimizer {name!r}; known: {sorted(ALIASES)}")
    registered, defaults = ALIASES[key]
    return Optimizer.registry[registered](**{**defaults, **kwargs})


def from_config(config: dict[str, Any]) -> Optimizer:
    """Rebuild an optimiser from :meth:`Optimizer.get_config` (its state is not included)."""
    if not isinstance(config, dict) or "name" not in config:
        raise ValueError("optimizer description must be a dict with a 'name'")
    options = {key: value for key, value in config.items() if key != "name"}
    cls = Optimizer.registry.get(str(config["name"]).lower())
    if cls is None:
        raise ValueError(f"unknown optimizer {config['name']!r}; known: "
                         f"{sorted(Optimizer.registry)}")
    try:
        return cls(**options)
    except TypeError as exc:
        raise ValueError(f"optimizer {config['name']!r}: bad arguments: {exc}") from exc


# ----------------------------------------------------------------------------------------
# Gradient clipping
# ----------------------------------------------------------------------------------------


def global_grad_norm(model: Any) -> float:
    """Euclidean norm of all gradients together, ``sqrt(sum g^2)``."""
    g = model.flat_grads
    with np.errstate(over="ignore"):
        total = float(np.dot(g, g))
    if math.isinf(total) and np.isfinite(g).all():
        total = float(np.dot(g.astype(np.float64), g.astype(np.float64)))  # float32 overflow
    return math.sqrt(total) if total >= 0 else float("nan")


def clip_grad_norm(model: Any, max_norm: float) -> float:
    """Scale all gradients together so their global norm is at most ``max_norm``.

    ``g <- g * max_norm / (norm + 1e-6)`` when ``norm > max_norm`` (as
    ``torch.nn.utils.clip_grad_norm_``); the direction is kept.

    Returns
    -------
    float
        The global norm before clipping (``inf``/``nan`` if a gradient is not finite; then
        nothing is scaled).
    """
    max_norm = real_number(max_norm, "max_norm", low=0.0, low_open=True)
    total = global_grad_norm(model)
    if math.isfinite(total) and total > max_norm:
        g = model.flat_grads
        g *= g.dtype.type(max_norm / (total + 1e-6))
    return total


# ----------------------------------------------------------------------------------------
# Learning-rate schedules
# ----------------------------------------------------------------------------------------


class LRSchedule:
    """A learning rate per epoch: ``schedule(epoch) -> lr`` (epoch counted from 0).

    ``initial_lr=None`` means "the optimiser's initial rate" (``optimizer.initial_lr``, the
    rate it was made with), looked up by ``fit`` at each start without changing the
    schedule, so one schedule can serve several optimisers. Pass a schedule to
    ``fit(..., lr_schedule=...)`` or wrap it in :class:`numnet.callbacks.LearningRateScheduler`.
    """

    def __init__(self, initial_lr: float | None = None) -> None:
        self.initial_lr = None if initial_lr is None else real_number(
            initial_lr, f"{type(self).__name__} initial_lr", low=0.0, low_open=True)

    def __call__(self, epoch: int) -> float:
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"{type(self).__name__}: epoch must be an integer >= 0, "
                             f"got {epoch!r}")
        if self.initial_lr is None:
            raise ValueError(f"{type(self).__name__} has no initial_lr: pass one, or use it "
                             "in fit(), which takes the optimiser's learning rate")
        return float(self.lr_at(int(epoch), self.initial_lr))

    def lr_at(self, epoch: int, initial_lr: float) -> float:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class StepDecay(LRSchedule):
    """``lr = initial_lr * gamma ** (epoch // step_size)``: multiply by ``gamma`` every
    ``step_size`` epochs (``torch.optim.lr_scheduler.StepLR``)."""

    def __init__(self, step_size: int, gamma: float = 0.1,
                 initial_lr: float | None = None) -> None:
        super().__init__(initial_lr)
        self.step_size = positive_int(step_size, "StepDecay step_size")
        self.gamma = real_number(gamma, "StepDecay gamma", low=0.0, low_open=True)

    def lr_at(self, epoch: int, initial_lr: float) -> float:
        return initial_lr * self.gamma ** (epoch // self.step_size)


class ExponentialDecay(LRSchedule):
    """``lr = initial_lr * gamma ** epoch`` (``torch.optim.lr_scheduler.ExponentialLR``)."""

    def __init__(self, gamma: float, initial_lr: float | None = None) -> None:
        super().__init__(initial_lr)
        self.gamma = real_number(gamma, "ExponentialDecay gamma", low=0.0, low_open=True)

    def lr_at(self, epoch: int, initial_lr: float) -> float:
        return initial_lr * self.gamma ** epoch


class CosineDecay(LRSchedule):
    r"""Linear warm-up, then a half cosine from ``initial_lr`` down to ``min_lr``.

    With ``w = warmup_epochs`` and ``T = total_epochs``::

        lr = initial_lr * (epoch + 1) / (w + 1)                          epoch < w
        lr = min_lr + (initial_lr - min_lr) * (1 + cos(pi * s)) / 2      w <= epoch < T
             with s = (epoch - w) / (T - w)
        lr = min_lr                                                      epoch >= T

    The warm-up climbs in equal steps and reaches ``initial_lr`` at epoch ``w``; the cosine
    part is ``torch.optim.lr_scheduler.CosineAnnealingLR`` with ``T_max = T - w``.
    """

    def __init__(self, total_epochs: int, warmup_epochs: int = 0, min_lr: float = 0.0,
                 initial_lr: float | None = None) -> None:
        super().__init__(initial_lr)
        self.total_epochs = positive_int(total_epochs, "CosineDecay total_epochs")
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, (int, np.integer)) \
                or not 0 <= warmup_epochs < self.total_epochs:
            raise ValueError(f"CosineDecay warmup_epochs must be an integer in [0, "
                             f"total_epochs={self.total_epochs}), got {warmup_epochs!r}")
        self.warmup_epochs = int(warmup_epochs)
        self.min_lr = real_number(min_lr, "CosineDecay min_lr", low=0.0)

    def lr_at(self, epoch: int, initial_lr: float) -> float:
        w, total = self.warmup_epochs, self.total_epochs
        if epoch < w:
            return initial_lr * (epoch + 1) / (w + 1)
        if epoch >= total:
            return self.min_lr
        s = (epoch - w) / (total - w)
        return self.min_lr + (initial_lr - self.min_lr) * (1 + math.cos(math.pi * s)) / 2


class ReduceLROnPlateau:
    """Multiply the learning rate by ``factor`` when a monitored metric stops improving.

    Call :meth:`step` once per epoch with the metric's value and the current learning rate;
    it returns the new learning rate. ``fit(..., lr_schedule=ReduceLROnPlateau(...))`` does
    this at the end of each epoch with ``logs[monitor]``.

    A value *improves* when it beats the best so far by more than ``min_delta`` (lower for
    ``mode='min'``, higher for ``'max'``; ``'auto'`` picks ``'max'`` for accuracy-like names).
    After ``patience`` epochs in a row without improvement the rate becomes
    ``max(lr * factor, min_lr)``, then ``cooldown`` epochs pass before counting again (as
    Keras's ``ReduceLROnPlateau``).

    Parameters
    ----------
    monitor : str
        Key of the epoch logs, e.g. ``"val_loss"`` or ``"loss"``.
    factor : float
        In (0, 1).
    patience : int
        Epochs without improvement before a reduction, >= 0.
    mode : {'auto', 'min', 'max'}
    min_delta : float
        Smallest change that counts as an improvement, >= 0.
    cooldown : int
        Epochs to wait after a reduction before counting bad epochs again.
    min_lr : float
        The rate never goes below this.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0,
                 min_lr: float = 0.0) -> None:
        self.monitor = str(monitor)
        self.factor = real_number(factor, "ReduceLROnPlateau factor", low=0.0, high=1.0,
                                  low_open=True, high_open=True)
        self.patience = non_negative_int(patience, "ReduceLROnPlateau patience")
        self.mode = resolve_mode(mode, self.monitor)
        self.min_delta = real_number(min_delta, "ReduceLROnPlateau min_delta", low=0.0)
        self.cooldown = non_negative_int(cooldown, "ReduceLROnPlateau cooldown")
        self.min_lr = real_number(min_lr, "ReduceLROnPlateau min_lr", low=0.0)
        self.reset()

    def reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.cooldown_left = 0

    def step(self, value: float, lr: float) -> float:
        """Record this epoch's ``value``; return the learning rate for the next epoch."""
        value = float(value)
        if is_improvement(value, self.best, self.mode, self.min_delta):
            self.best = value
            self.wait = 0
            return lr
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            return lr
        self.wait += 1
        if self.wait >= max(self.patience, 1):
            new_lr = max(lr * self.factor, self.min_lr)
            self.wait = 0
            if new_lr < lr:
                self.cooldown_left = self.cooldown
                return new_lr
        return lr

    def __repr__(self) -> str:
        return (f"ReduceLROnPlateau(monitor={self.monitor!r}, factor={self.factor}, "
                f"patience={self.patience}, mode={self.mode!r}, min_lr={self.min_lr})")


# -- helpers shared with numnet.callbacks ------------------------------------------------


def non_negative_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def resolve_mode(mode: str, monitor: str) -> str:
    """'min' or 'max'; 'auto' means 'max' for accuracy-like metrics, else 'min'."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    maximise = ("acc", "accuracy", "f1", "precision", "recall", "auc")
    return "max" if any(monitor.endswith(word) for word in maximise) else "min"


def is_improvement(value: float, best: float, mode: str, min_delta: float) -> bool:
    if mode == "min":
        return value < best - min_delta
    return value > best + min_delta


ScheduleLike = LRSchedule | ReduceLROnPlateau | Callable[..., float]
