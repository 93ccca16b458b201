"""Numerical gradient checking by central differences in float64.

For a scalar function ``f`` of an array ``x``, the numerical gradient is::

    df/dx_i ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)

with an error of order ``eps^2``. The relative error reported for a tensor is::

    max_i |a_i - n_i| / max(max_i |a_i|, max_i |n_i|, 1e-4 * max(1, |f|))

(``a`` analytic, ``n`` numerical): scaled by the tensor's largest entry, so near-zero
entries do not blow it up. The floor ``1e-4 * max(1, |f|)`` is for a tensor whose true
gradient is exactly zero (a bias just before batch norm): there both ``a`` and ``n`` are
rounding noise, and the test becomes absolute, ``max |a - n| <= 1e-10 * max(1, |f|)`` at
the default tolerance, which any real error of a gradient of that size still fails.
In float64 with ``eps = 1e-6`` a correct backward pass gives
about 1e-9 or less; a wrong one gives something of order 1.

The numerical gradient has two errors: truncation, which grows as ``eps^2``, and rounding,
which grows as ``|f| * 1e-16 / eps``. When the gradient is tiny next to ``f`` (a layer
norm over few features, say), rounding at ``eps = 1e-6`` can exceed the tolerance although
the backward pass is right; so a tensor that fails is measured again with ``eps`` ten and
a hundred times larger, and the smallest error counts. A wrong gradient is off by
something of order 1 at every step size, so this cannot hide a bug.

Layers are checked on the scalar ``L = sum(y * R)`` with a fixed random ``R``, so
``dL/dy = R``. Before every forward pass the layer's generator is reset to the same seed,
so a random layer (dropout) draws the same mask each time and is checked as the fixed
function it is for that mask.

Each check returns a :class:`GradCheckReport`: a dict of relative errors by tensor name
(``{"input": 3e-10, "W": 2e-10, ...}``) whose ``details`` say where each tensor is worst:
the element's index with its analytic and numerical values (:class:`TensorCheck`). A
failure raises :class:`GradientCheckError` with the same details in its message.

Every registered layer, loss and graph node gives examples of itself
(``gradcheck_cases()`` / ``gradcheck_inputs()``); :func:`check_layer_class`,
:func:`check_loss_class` and :func:`check_node_class` run them, and
:func:`registered_classes` lists what there is to check, so the test suite and
``bench/gradcheck_report.py`` check whatever is registered.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from numnet.layers.base import Layer
from numnet.layers.graph import Node
from numnet.losses import Loss

if TYPE_CHECKING:
    from numnet.model import Sequential

DEFAULT_TOL = 1e-6
DEFAULT_EPS = 1e-6
ZERO_GRAD_FLOOR = 1e-4  # times max(1, |f|): the smallest gradient scale errors are taken of


@dataclass(frozen=True)
class TensorCheck:
    """The check of one tensor: its relative error and its worst element.

    Attributes
    ----------
    error : float
        The relative error (see the module docstring).
    index : tuple of int
        Where ``|analytic - numerical|`` is largest (``()`` for a scalar).
    analytic, numerical : float
        The two gradients there.
    eps : float
        The step of the central differences that gave the smallest error.
    """

    error: float
    index: tuple[int, ...]
    analytic: float
    numerical: float
    eps: float

    def where(self, name: str) -> str:
        """``"W[2, 1]: analytic 0.5, numerical 0.25"``."""
        at = f"{name}[{', '.join(map(str, self.index))}]" if self.index else name
        return f"{at}: analytic {self.analytic:.6g}, numerical {self.numerical:.6g}"


class GradCheckReport(dict[str, float]):
    """``{tensor name: relative error}``, with ``details[name]`` a :class:`TensorCheck`."""

    def __init__(self, details: dict[str, TensorCheck]) -> None:
        super().__init__({name: check.error for name, check in details.items()})
        self.details = details


class GradientCheckError(AssertionError):
    """An analytic gradient disagrees with the numerical one beyond the tolerance.

    ``details`` maps each failing tensor to its :class:`TensorCheck` (worst element, its
    analytic and numerical values).
    """

    def __init__(self, message: str, details: dict[str, TensorCheck] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = DEFAULT_EPS
                       ) -> np.ndarray:
    """Central-difference gradient of ``f()`` with respect to ``x``, perturbing ``x`` in place.

    ``f`` takes no argument: it reads ``x`` (or something holding a view of it). ``x`` is
    restored exactly after each perturbation.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    flat_x = x.reshape(-1)  # a view: x must be contiguous for writes to reach it
    if not np.shares_memory(flat_x, x):
        raise ValueError("numerical_gradient needs a contiguous array to perturb")
    flat_grad = grad.reshape(-1)
    for i in range(flat_x.size):
        original = flat_x[i]
        flat_x[i] = original + eps
        f_plus = f()
        flat_x[i] = original - eps
        f_minus = f()
        flat_x[i] = original
        flat_grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def relative_error(analytic: np.ndarray, numerical: np.ndarray, floor: float = 0.0) -> float:
    """``max|a - n| / max(max|a|, max|n|, floor)``; 0 when both are exactly zero."""
    analytic = np.asarray(analytic, dtype=np.float64)
    numerical = np.asarray(numerical, dtype=np.float64)
    if analytic.shape != numerical.shape:
        raise ValueError(f"shape mismatch: analytic {analytic.shape} vs numerical "
                         f"{numerical.shape}")
    scale = max(np.abs(analytic).max(initial=0.0), np.abs(numerical).max(initial=0.0), floor)
    if scale == 0:
        return 0.0
    return float(np.abs(analytic - numerical).max() / scale)


def _error(f: Callable[[], float], x: np.ndarray, analytic: np.ndarray, eps: float,
           tol: float) -> TensorCheck:
    """The check of ``analytic`` against the numerical gradient at the best of three steps."""
    best: TensorCheck | None = None
    floor = ZERO_GRAD_FLOOR * max(1.0, abs(float(f())))
    for step in (eps, eps * 10, eps * 100):
        numerical = numerical_gradient(f, x, step)
        error = relative_error(analytic, numerical, floor)
        if best is None or error < best.error or (np.isnan(best.error)
                                                   and not np.isnan(error)):
            best = _worst_element(error, np.asarray(analytic, dtype=np.float64), numerical,
                                  step)
        if best.error <= tol:
            break
    assert best is not None
    return best


def _worst_element(error: float, analytic: np.ndarray, numerical: np.ndarray,
                   eps: float) -> TensorCheck:
    if analytic.size == 0:
        return TensorCheck(error, (), 0.0, 0.0, eps)
    difference = np.abs(analytic - numerical)
    # NaN compares as the largest: a NaN entry is the worst there is
    flat = int(np.argmax(np.where(np.isnan(difference), np.inf, difference)))
    index = tuple(int(i) for i in np.unravel_index(flat, analytic.shape))
    return TensorCheck(error, index, float(analytic.reshape(-1)[flat]),
                       float(numerical.reshape(-1)[flat]), eps)


def _raise_if_bad(checks: dict[str, TensorCheck], tol: float, what: str) -> GradCheckReport:
    bad = {name: check for name, check in checks.items() if not check.error <= tol}
    if bad:
        detail = ", ".join(f"{name}: {check.error:.3g} (worst element {check.where(name)})"
                           for name, check in bad.items())
        raise GradientCheckError(
            f"gradient check failed for {what}: relative error above {tol:g} in {detail}",
            bad)
    return GradCheckReport(checks)


def check_layer(layer: Layer, x: np.ndarray, training: bool = True, seed: int = 0,
                tol: float = DEFAULT_TOL, eps: float = DEFAULT_EPS) -> GradCheckReport:
    """Check a layer's input gradient and every parameter gradient.

    The layer is copied and converted to float64, so the original is untouched.

    Returns
    -------
    GradCheckReport
        ``{"input": err, "W": err, ...}``: the relative error of each tensor, and in
        ``details`` its worst element with the analytic and numerical values there.

    Raises
    ------
    GradientCheckError
        Naming every tensor whose error exceeds ``tol``, with its worst element.
    """
    layer = copy.deepcopy(layer).astype(np.float64)
    # a private copy to perturb: C-contiguous whatever the order of x (a convolution's
    # output is channels-last in memory, and a reshape of it would not be a view)
    x = np.array(x, dtype=np.float64, order="C")
    rng = np.random.default_rng(seed)
    probe = rng.standard_normal(layer(x, training=training).shape)  # x checked once

    def loss() -> float:
        layer.rng = np.random.default_rng(seed + 1)
        return float(np.sum(layer.forward(x, training=training) * probe))

    loss()
    analytic = {"input": layer.backward(probe.copy())}
    analytic.update({name: g.copy() for name, g in layer.grads.items()})
    errors = {"input": _error(loss, x, analytic["input"], eps, tol)}
    for name, param in layer.params.items():
        errors[name] = _error(loss, param, analytic[name], eps, tol)
    return _raise_if_bad(errors, tol, f"{layer!r} (training={training})")


def check_loss(loss: Loss, prediction: np.ndarray, target: Any, sample_weight: Any = None,
               tol: float = DEFAULT_TOL, eps: float = DEFAULT_EPS) -> GradCheckReport:
    """Check ``loss.backward()`` against the numerical gradient w.r.t. the prediction."""
    prediction = np.array(prediction, dtype=np.float64, order="C")
    target = np.asarray(target)
    if target.dtype.kind == "f":
        target = target.astype(np.float64)

    def value() -> float:
        return loss(prediction, target, sample_weight)

    value()
    analytic = loss.backward()
    errors = {"prediction": _error(value, prediction, analytic, eps, tol)}
    return _raise_if_bad(errors, tol, repr(loss))


def check_model(model: Sequential, x: np.ndarray, y: Any, training: bool = True,
                seed: int = 0, tol: float = DEFAULT_TOL,
                eps: float = DEFAULT_EPS) -> GradCheckReport:
    """Check a whole model (its loss on ``(x, y)``) for the input and every parameter.

    The model is copied and converted to float64. Keys are ``"input"`` and
    ``"<layer index>.<param>"``, e.g. ``"0.W"``.
    """
    model = copy.deepcopy(model)
    if model.dtype != np.float64:
        model = model.astype(np.float64)
    x = np.array(x, dtype=np.float64, order="C")  # a private copy to perturb, contiguous
    loss = model._need_loss()

    def value() -> float:
        for index, layer in enumerate(model.layers):
            layer.rng = np.random.default_rng(seed + index)
        return loss(model.forward(x, training=training), y)

    value()
    analytic = {"input": cast(np.ndarray, model.backward(loss.backward()))}
    for index, layer in enumerate(model.layers):
        analytic.update({f"{index}.{k}": g.copy() for k, g in layer.grads.items()})
    errors = {"input": _error(value, x, analytic["input"], eps, tol)}
    for index, layer in enumerate(model.layers):
        for name, param in layer.params.items():
            key = f"{index}.{name}"
            errors[key] = _error(value, param, analytic[key], eps, tol)
    return _raise_if_bad(errors, tol, f"model (training={training})")


def check_node(node: Node, x: Any, y: Any, seed: int = 0, tol: float = DEFAULT_TOL,
               eps: float = DEFAULT_EPS) -> GradCheckReport:
    """Check a two-input graph node (:class:`numnet.layers.Add`, ``Mul``)."""
    x = np.array(x, dtype=np.float64, order="C")
    y = np.array(y, dtype=np.float64, order="C")
    probe = np.random.default_rng(seed).standard_normal(np.shape(node.forward(x, y)))

    def value() -> float:
        return float(np.sum(node.forward(x, y) * probe))

    value()
    dx, dy = node.backward(probe.copy())
    errors = {"x": _error(value, x, dx, eps, tol), "y": _error(value, y, dy, eps, tol)}
    return _raise_if_bad(errors, tol, repr(node))


# -- everything registered ------------------------------------------------------------------
def registered_classes() -> dict[str, list[type[Any]]]:
    """Every registered layer, loss and graph node class, to be gradient-checked."""
    return {"layer": sorted(Layer.registry.values(), key=_name),
            "loss": sorted(Loss.registry.values(), key=_name),
            "node": sorted(Node.registry.values(), key=_name)}


def _name(cls: type[Any]) -> str:
    return str(getattr(cls, "type_name", None) or cls.name)


def _worst(into: dict[str, float], key: str, errors: dict[str, float]) -> None:
    for tensor, err in errors.items():
        name = f"{key}.{tensor}"
        into[name] = max(into.get(name, 0.0), err)


def _no_cases(cls: type[Any], method: str) -> GradientCheckError:
    return GradientCheckError(
        f"{_name(cls)} ({cls.__module__}.{cls.__qualname__}) gives no gradient-check cases: "
        f"define the classmethod {method}() returning small examples (see CONTRIBUTING.md)")


def check_layer_class(cls: type[Layer], tol: float = DEFAULT_TOL,
                      eps: float = DEFAULT_EPS) -> dict[str, float]:
    """Check every case of ``cls.gradcheck_cases()`` in each of its modes.

    Returns the worst relative error per ``"<mode>.<tensor>"`` (``"train.input"``,
    ``"eval.W"``, ...); raises :class:`GradientCheckError` for a failing tensor, or when
    the class gives no cases.
    """
    cases = cls.gradcheck_cases()
    if not cases:
        raise _no_cases(cls, "gradcheck_cases")
    worst: dict[str, float] = {}
    for index, case in enumerate(cases):
        for training in case.modes:
            errors = check_layer(case.layer, case.x, training=training, seed=index, tol=tol,
                                 eps=eps)
            _worst(worst, "train" if training else "eval", errors)
    return worst


def check_loss_class(cls: type[Loss], tol: float = DEFAULT_TOL,
                     eps: float = DEFAULT_EPS) -> dict[str, float]:
    """Check every case of ``cls.gradcheck_cases()``; the worst error (key ``"prediction"``)."""
    cases = cls.gradcheck_cases()
    if not cases:
        raise _no_cases(cls, "gradcheck_cases")
    worst: dict[str, float] = {}
    for case in cases:
        _worst(worst, "loss", check_loss(case.loss, case.prediction, case.target,
                                         case.sample_weight, tol=tol, eps=eps))
    return worst


def check_node_class(cls: type[Node], tol: float = DEFAULT_TOL,
                     eps: float = DEFAULT_EPS) -> dict[str, float]:
    """Check ``cls()`` on every pair of ``cls.gradcheck_inputs()``; the worst errors."""
    pairs = cls.gradcheck_inputs()
    if not pairs:
        raise _no_cases(cls, "gradcheck_inputs")
    worst: dict[str, float] = {}
    for seed, (x, y) in enumerate(pairs):
        _worst(worst, "node", check_node(cls(), x, y, seed=seed, tol=tol, eps=eps))
    return worst
