"""Small validation helpers shared by layers, losses and the model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from numnet.errors import NonFiniteError

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def resolve_dtype(dtype: Any) -> np.dtype[Any]:
    """Return ``float32`` for None, else the given float dtype; anything else is an error."""
    if dtype is None:
        return np.dtype(np.float32)
    try:
        resolved: np.dtype[Any] = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"unknown dtype {dtype!r}: expected 'float32' or 'float64'") from exc
    if resolved not in FLOAT_DTYPES:
        raise ValueError(f"unsupported dtype {resolved}: expected 'float32' or 'float64'")
    return resolved


def fmt_shape(shape: Sequence[Any]) -> str:
    """A shape as it reads in a message: ``(N, 784)``, ``(10,)``."""
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def reshape_hint(got: Sequence[int], expected: Sequence[int]) -> str:
    """How to turn samples of shape ``got`` into the ``expected`` ones, as ``"; ..."`` (or "").

    For the mistakes a shape alone reveals: images without their channel axis, images with
    the channels last, flat rows given to an image model and images given to a flat one.
    """
    got, expected = tuple(int(d) for d in got), tuple(int(d) for d in expected)
    target = ", ".join(str(d) for d in expected)
    if len(expected) == 3 and got == expected[1:] and expected[0] == 1:
        return (f"; the images lack their channel axis: add it with x[:, None] or "
                f"x.reshape(N, {target}), or put Reshape(({target})) first")
    if len(expected) == 3 and got == (*expected[1:], expected[0]):
        return "; the images look channels-last (N, H, W, C): pass x.transpose(0, 3, 1, 2)"
    if int(np.prod(got)) != int(np.prod(expected)):
        return ""
    if len(got) == 1 and len(expected) > 1:
        return (f"; flat rows of the same size: pass x.reshape(N, {target}), or put "
                f"Reshape(({target})) first")
    if len(expected) == 1 and len(got) > 1:
        return "; samples of the same size: pass x.reshape(N, -1), or put Flatten() first"
    return ""


def first_bad_index(mask: np.ndarray) -> tuple[int, ...]:
    """Index of the first True entry of ``mask`` (as a tuple of ints)."""
    flat = int(np.argmax(mask.ravel()))
    return tuple(int(i) for i in np.unravel_index(flat, mask.shape))


def check_finite(x: np.ndarray, what: str) -> None:
    """Raise :class:`NonFiniteError` naming ``what`` and the first bad index."""
    if x.dtype.kind not in "fc":
        return
    if x.dtype.kind == "f" and x.flags.c_contiguous and all_finite(x.reshape(-1)):
        return  # the common case, in one BLAS pass
    if not np.isfinite(x).all():
        bad = ~np.isfinite(x)
        index = first_bad_index(bad)
        value = x[index]
        raise NonFiniteError(
            f"{what} contains {int(bad.sum())} non-finite value(s) (first: {value} at index "
            f"{index}); expected only finite numbers"
        )


def all_finite(v: np.ndarray) -> bool:
    """Whether the flat float vector ``v`` holds only finite numbers.

    ``v . v`` is one BLAS pass, and it is finite exactly when every entry is, except that a
    huge finite entry (above ~1.8e19 in float32) overflows its square: only then is the
    element-wise test paid for.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.dot(v, v)):
            return True
    return bool(np.isfinite(v).all())


def positive_int(value: Any, name: str) -> int:
    """Validate a strictly positive integer argument."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def non_negative_int(value: Any, name: str) -> int:
    """Validate an integer argument >= 0 (a patience, a count of epochs)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def real_number(value: Any, name: str, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> float:
    """Validate a finite real number within optional bounds."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number}")
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and (number >= high if high_open else number > high)
    if too_low or too_high:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(
            f"{name} must be in {lo}{'-inf' if low is None else low}, "
            f"{'inf' if high is None else high}{hi}, got {number}"
        )
    return number


def nonfinite_parameter(layers: Sequence[Any]) -> str | None:
    """``"parameter 'W' of layer 0 Dense(...)"``: the first parameter or buffer of
    ``layers`` holding NaN or infinite values, or None when all are finite."""
    for index, layer in enumerate(layers):
        for kind, store in (("parameter", layer.params), ("buffer", layer.buffers)):
            for name, value in store.items():
                if value.dtype.kind == "f" and not np.isfinite(value).all():
                    return f"{kind} {name!r} of layer {index} {layer!r}"
    return None


def nonfinite_output(layers: Sequence[Any], what: str) -> str:
    """Why a model's output (or loss) is not finite, for a message starting with ``what``:
    the weights, when one is NaN or infinite, else the inputs."""
    culprit = nonfinite_parameter(layers)
    if culprit is not None:
        return (f"{what}: the model's {culprit} holds NaN or infinite values, so its output "
                "is not finite (was it saved from a training run that diverged?)")
    return (f"{what}: the model's output became NaN or infinite though its weights are "
            "finite (are the inputs far outside the range it was trained on?)")
