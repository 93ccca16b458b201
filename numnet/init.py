"""Weight initialisers.

An initialiser is a callable ``init(shape, rng, dtype) -> np.ndarray``. The named ones
below also take ``fans=(fan_in, fan_out)``: a layer passes the fans of its weight (see
:meth:`numnet.layers.Layer.fans`), so a weight of any layout gets the right scale. Without
``fans`` they are computed by :func:`fans` from the layout: a 2-D Dense weight is
``(in_features, out_features)``; a weight of rank > 2 is a convolution kernel
``(out_channels, in_channels, *kernel)``.

=================  ===============================================  ========================
name               distribution                                     suits
=================  ===============================================  ========================
``glorot_uniform`` U(-a, a), a = sqrt(6 / (fan_in + fan_out))       sigmoid, tanh, softmax
``glorot_normal``  N(0, 2 / (fan_in + fan_out))                     sigmoid, tanh, softmax
``he_uniform``     U(-a, a), a = sqrt(6 / fan_in)                   ReLU family
``he_normal``      N(0, 2 / fan_in)                                 ReLU family
``normal``         N(0, std^2), std 0.01 (``"normal(std=S)"``: S)   small nets, tests
``zeros``          0                                                biases
=================  ===============================================  ========================

He (Kaiming) keeps the variance of ReLU activations constant from layer to layer; Glorot
(Xavier) keeps it for activations that are linear around 0. The seeds' scale
``1 / (outs * ins)`` shrinks activations by a factor of the width at every layer, so a deep
network's output is 0 and nothing trains.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

#: ``init(shape, rng, dtype)``, and ``fans=`` for the named initialisers
Initializer = Callable[..., np.ndarray]
InitSpec = str | Initializer | None
Fans = tuple[int, int]


def fans(shape: tuple[int, ...]) -> Fans:
    """Return ``(fan_in, fan_out)`` for a weight of the given shape."""
    if len(shape) < 2:
        raise ValueError(f"fans need a weight of rank >= 2, got shape {shape}")
    if len(shape) == 2:
        return int(shape[0]), int(shape[1])
    receptive = int(np.prod(shape[2:]))
    return int(shape[1]) * receptive, int(shape[0]) * receptive


_fans = fans  # the initialisers' ``fans`` argument shadows the function


def _uniform(shape: tuple[int, ...], rng: np.random.Generator, dtype: Any,
             limit: float) -> np.ndarray:
    return rng.uniform(-limit, limit, size=shape).astype(dtype, copy=False)


def _normal(shape: tuple[int, ...], rng: np.random.Generator, dtype: Any,
            std: float) -> np.ndarray:
    return (rng.standard_normal(size=shape) * std).astype(dtype, copy=False)


def glorot_uniform(shape: tuple[int, ...], rng: np.random.Generator, dtype: Any = np.float32,
                   fans: Fans | None = None) -> np.ndarray:
    """Glorot/Xavier uniform: U(-a, a) with a = sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fans or _fans(shape)
    return _uniform(shape, rng, dtype, np.sqrt(6.0 / (fan_in + fan_out)))


def glorot_normal(shape: tuple[int, ...], rng: np.random.Generator, dtype: Any = np.float32,
                  fans: Fans | None = None) -> np.ndarray:
    """Glorot/Xavier normal: N(0, 2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans or _fans(shape)
    return _normal(shape, rng, dtype, np.sqrt(2.0 / (fan_in + fan_out)))


def he_uniform(shape: tuple[int, ...], rng: np.random.Generator, dtype: Any = np.float32,
               fans: Fans | None = None) -> np.ndarray:
    """He/Kaiming uniform: U(-a, a) with a = sqrt(6 / fan_in)."""
    fan_in, _ = fans or _fans(shape)
    return _uniform(shape, rng, dtype, np.sqrt(6.0 / fan_in))


def he_normal(shape: tuple[int, ...], rng: np.random.Generator, dtype: Any = np.float32,
              fans: Fans | None = None) -> np.ndarray:
    """He/Kaiming normal: N(0, 2 / fan_in)."""
    fan_in, _ = fans or _fans(shape)
    return _normal(shape, rng, dtype, np.sqrt(2.0 / fan_in))


def normal(std: float = 0.01) -> Initializer:
    """Return an initialiser drawing from N(0, std^2)."""
    if not np.isfinite(std) or std <= 0:
        raise ValueError(f"normal initialiser needs a positive finite std, got {std}")

    def init(shape: tuple[int, ...], rng: np.random.Generator, dtype: Any = np.float32,
             fans: Fans | None = None) -> np.ndarray:
        return _normal(shape, rng, dtype, std)

    # its name is what a layer's repr, its messages and its model file show, and what
    # get_initializer reads back: "normal(std=1)" (exact, so a model file keeps the std)
    shown = f"{std:g}"
    if float(shown) != std:
        shown = repr(float(std))
    init.__name__ = init.__qualname__ = f"normal(std={shown})"
    return init


#: the name of a ``normal(std)`` initialiser, which get_initializer reads back
_NORMAL_NAME = re.compile(r"normal\(std=(?P<std>[^()]+)\)")


def zeros(shape: tuple[int, ...], rng: np.random.Generator | None = None,
          dtype: Any = np.float32, fans: Fans | None = None) -> np.ndarray:
    """All zeros (the usual bias initialiser)."""
    return np.zeros(shape, dtype=dtype)



INITIALIZERS: dict[str, Initializer] = {
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "xavier_uniform": glorot_uniform,
    "xavier_normal": glorot_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "kaiming_uniform": he_uniform,
    "kaiming_normal": he_normal,
    "normal": normal(0.01),
    "zeros": zeros,
}


def get_initializer(spec: InitSpec, default: str = "glorot_uniform") -> Initializer:
    """Look up an initialiser by name, pass a callable through, or use ``default`` for None."""
    if spec is None:
        spec = default
    if callable(spec):
        return spec
    if isinstance(spec, str) and spec in INITIALIZERS:
        return INITIALIZERS[spec]
    if isinstance(spec, str) and (match := _NORMAL_NAME.fullmatch(spec.replace(" ", ""))):
        try:
            std = float(match["std"])
        except ValueError:
            pass
        else:
            return normal(std)
    raise ValueError(
        f"unknown initialiser {spec!r}: expected a callable, 'normal(std=S)' or one of "
        f"{sorted(INITIALIZERS)}"
    )


def spec_name(spec: InitSpec) -> InitSpec:
    """``spec``, or the name of one of numnet's parametrised initialisers (``normal(0.5)``
    is ``"normal(std=0.5)"``), so that a layer's config, and its model file, keep it."""
    name = getattr(spec, "__name__", None)
    if callable(spec) and getattr(spec, "__module__", None) == __name__ and \
            isinstance(name, str) and _NORMAL_NAME.fullmatch(name):
        return name
    return spec
