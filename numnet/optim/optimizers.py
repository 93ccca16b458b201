r"""The update rules: SGD (momentum, Nesterov), AdaGrad, RMSProp, Adam and AdamW, and lookup
by name.

Each update rule is written out in its class docstring, and once more as plain, slow code in
:mod:`numnet.reference` (one line per formula), which the tests hold equal to these fast,
in-place versions. They follow PyTorch's
``torch.optim`` classes of the same names and arguments (single-tensor CPU code path): on
the same gradients the parameters agree to float64 rounding (PyTorch fuses some
multiply-adds, so the last bit can differ).

Two ways to shrink weights
--------------------------
*L2 regularisation* adds ``(l2 / 2) * sum(W ** 2)`` to the loss (``Sequential(..., l2=...)``),
so its gradient ``l2 * W`` flows through the optimiser like any other gradient: with Adam it
is divided by the adaptive denominator too. The ``weight_decay`` argument of
:class:`SGD`, :class:`AdaGrad`, :class:`RMSProp` and :class:`Adam` does exactly the same
inside the optimiser
(``g <- g + wd * p``), as in PyTorch. *Decoupled* weight decay (:class:`AdamW`) instead
shrinks the weights directly, ``p <- p * (1 - lr * wd)``, outside the adaptive update.

In every case only the entries where ``model.decay_mask`` is True are decayed (weights, not
biases or normalisation parameters); pass ``decay_all=True`` to decay everything.

Where the passes run
--------------------
SGD, RMSProp, Adam and AdamW hand their update to :mod:`numnet._kernels`: a few in-place
NumPy passes (:mod:`numnet._kernels.numpy_kernels`, the reference, in the order of
operations shown in each class), or one compiled pass when numba is installed (the fast
path, equal to it bit for bit), which also takes the training guard's weight backup and
finiteness check with it (:meth:`~numnet.optim.Optimizer.checked_step`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from numnet import _kernels
from numnet._checks import real_number
from numnet.optim.base import Optimizer


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
    :func:`numnet.reference.sgd_step` is the same rule, line by line.

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
    n_scratch = 0

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, decay_all: bool = False) -> None:
        super().__init__(lr, weight_decay, decay_all)
        self.momentum = real_number(momentum, "SGD momentum", low=0.0, high=1.0, high_open=True)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")
        self.state_names = ("momentum_buffer",) if self.momentum else ()

    def _checked_update(self, params: np.ndarray, grads: np.ndarray, dtype: type,
                        backup: np.ndarray | None, check: bool) -> bool:
        buf = self.state["momentum_buffer"] if self.momentum else None
        return _kernels.sgd_step(
            params, grads, buf, lr=self.lr, momentum=self.momentum, nesterov=self.nesterov,
            first_step=self.steps == 1, weight_decay=self.weight_decay,
            decay=self._decay_mask(), backup=backup, check=check, work=self._scratch)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class AdaGrad(Optimizer):
    r"""AdaGrad: each parameter's step divided by the root of the sum of all its past squared
    gradients (Duchi, Hazan & Singer, 2011).

    With ``t`` the step count (1 at the first step)::

        g   <- g + wd * p                                (if wd > 0, decayed entries only)
        clr <- lr / (1 + (t - 1) * lr_decay)
        s   <- s + g * g                                 (s starts at initial_accumulator_value)
        p   <- p - clr * g / (sqrt(s) + eps)

    Parameters that have seen large gradients get small steps, rarely updated ones large
    steps; since ``s`` only grows, every step size shrinks towards 0 (RMSProp replaces the
    sum by a moving average to avoid that). This is ``torch.optim.Adagrad(lr, lr_decay,
    weight_decay, initial_accumulator_value, eps)`` (defaults 0.01, 0, 0, 0, 1e-10), to
    float64 rounding; :func:`numnet.reference.adagrad_step` is the same rule, line by line.

    Parameters
    ----------
    lr : float
        Learning rate (default 0.01, as in PyTorch).
    lr_decay : float
        ``>= 0``: the rate at step ``t`` is ``lr / (1 + (t - 1) * lr_decay)``.
    initial_accumulator_value : float
        ``>= 0``: the starting value of every sum of squares.
    eps : float
        Added to the denominator, >= 0 (default 1e-10).
    weight_decay, decay_all
        As in :class:`SGD` (L2 penalty added to the gradient).
    """

    name = "adagrad"
    state_names = ("sum",)
    n_scratch = 2

    def __init__(self, lr: float = 0.01, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10,
                 decay_all: bool = False) -> None:
        super().__init__(lr, weight_decay, decay_all)
        self.lr_decay = real_number(lr_decay, "AdaGrad lr_decay", low=0.0)
        self.initial_accumulator_value = real_number(
            initial_accumulator_value, "AdaGrad initial_accumulator_value", low=0.0)
        self.eps = real_number(eps, "AdaGrad eps", low=0.0)

    def _initial_value(self, key: str) -> float:
        return self.initial_accumulator_value

    def _update(self, params: np.ndarray, grads: np.ndarray, dtype: type) -> None:
        g = self._coupled_decay(params, grads, dtype)
        total = self.state["sum"]
        den, step = self._scratch[0], self._scratch[1]
        np.multiply(g, g, out=den)
        total += den
        np.sqrt(total, out=den)
        den += dtype(self.eps)
        clr = self.lr / (1 + (self.steps - 1) * self.lr_decay)
        # (clr * g) / den, as torch's addcdiv computes it
        np.multiply(g, dtype(clr), out=step)
        np.divide(step, den, out=step)
        params -= step

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "lr_decay": self.lr_decay,
                "initial_accumulator_value": self.initial_accumulator_value, "eps": self.eps}


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
    :func:`numnet.reference.rmsprop_step` is the same rule, line by line.

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
    n_scratch = 0

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

    def _checked_update(self, params: np.ndarray, grads: np.ndarray, dtype: type,
                        backup: np.ndarray | None, check: bool) -> bool:
        return _kernels.rmsprop_step(
            params, grads, self.state["square_avg"], self.state.get("grad_avg"),
            self.state.get("momentum_buffer"), lr=self.lr, alpha=self.alpha, eps=self.eps,
            momentum=self.momentum, weight_decay=self.weight_decay, decay=self._decay_mask(),
            backup=backup, check=check, work=self._scratch)

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
    :class:`AdamW` decouples it. The update (:func:`numnet._kernels.numpy_kernels.adam`,
    the NumPy reference of the kernel) folds the two corrections into one constant to save
    a pass over the parameters; :func:`numnet.reference.adam_step` is the formula as
    written above, line by line.

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
    n_scratch = 0

    def __init__(self, lr: float = 1e-3, betas: Sequence[float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decay_all: bool = False) -> None:
        super().__init__(lr, weight_decay, decay_all)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{type(self).__name__} betas must be a pair (beta1, beta2), "
                             f"got {betas!r}")
        self.betas = tuple(real_number(b, f"{type(self).__name__} beta{i + 1}", low=0.0,
                                       high=1.0, high_open=True) for i, b in enumerate(betas))
        self.eps = real_number(eps, f"{type(self).__name__} eps", low=0.0)

    def _checked_update(self, params: np.ndarray, grads: np.ndarray, dtype: type,
                        backup: np.ndarray | None, check: bool) -> bool:
        # step_size * m / (sqrt(v) / root_bc2 + eps)
        #   = (step_size * root_bc2) * m / (sqrt(v) + eps * root_bc2): one pass fewer
        return _kernels.adam_step(
            params, grads, self.state["exp_avg"], self.state["exp_avg_sq"], lr=self.lr,
            betas=self.betas, eps=self.eps, step=self.steps, weight_decay=self.weight_decay,
            decoupled=self._decoupled, decay=self._decay_mask(), backup=backup, check=check,
            work=self._scratch)

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
    float64 rounding; :func:`numnet.reference.adam_step` with ``decoupled=True`` is the same
    rule, line by line. Parameters as in :class:`Adam`.
    """

    name = "adamw"
    _decoupled = True

    def __init__(self, lr: float = 1e-3, betas: Sequence[float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01, decay_all: bool = False) -> None:
        super().__init__(lr, betas, eps, weight_decay, decay_all)


# names accepted by get_optimizer, with the defaults an alias adds
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "sgd": ("sgd", {}),
    "momentum": ("sgd", {"momentum": 0.9}),
    "nesterov": ("sgd", {"momentum": 0.9, "nesterov": True}),
    "adagrad": ("adagrad", {}),
    "rmsprop": ("rmsprop", {}),
    "adam": ("adam", {}),
    "adamw": ("adamw", {}),
}


def get_optimizer(name: str | Optimizer, **kwargs: Any) -> Optimizer:
    """An optimiser from a name (``"sgd"``, ``"momentum"``, ``"nesterov"``, ``"adagrad"``,
    ``"rmsprop"``, ``"adam"``, ``"adamw"``) and its keyword arguments; an Optimizer is
    returned as is.

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
