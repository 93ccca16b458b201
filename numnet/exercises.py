"""Checks for the exercises of the tutorials (``docs/tutorials``): right or wrong, and why.

An exercise is a function the learner fills in; the cell after it checks the result::

    with check("affine backward"):
        dx, dW, db = affine_backward(x, W, g)
        assert_close(dW, x.T @ g, "dW should be x^T g")

which prints ``right: affine backward`` or ``wrong: affine backward: dW should be x^T g
(largest difference 0.73 at [2, 1])`` and then raises :class:`ExerciseFailed`, so a notebook
run stops at the first exercise still to do (as a failed assert would), and a test can tell.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np


class ExerciseFailed(AssertionError):
    """An exercise's check found the answer wrong or missing."""


@contextmanager
def check(name: str) -> Iterator[None]:
    """Run the block; print whether the exercise ``name`` is right, and why not.

    An ``AssertionError`` in the block means a wrong answer, ``NotImplementedError`` one not
    written yet, any other exception an answer that crashed: each prints one line saying so
    and raises :class:`ExerciseFailed` (chained to the crash, whose traceback shows where).
    """
    try:
        yield
    except NotImplementedError as exc:
        what = str(exc) or "a function still raises NotImplementedError"
        message = f"not done yet: {name}: {what}"
        print(message)
        raise ExerciseFailed(message) from None
    except AssertionError as exc:
        message = f"wrong: {name}: {exc}"
        print(message)
        raise ExerciseFailed(message) from None
    except Exception as exc:  # the answer crashed: say so, keep the traceback for the learner
        message = f"wrong: {name}: it raised {type(exc).__name__}: {exc}"
        print(message)
        raise ExerciseFailed(message) from exc
    print(f"right: {name}")


def assert_close(actual: Any, expected: Any, message: str, rtol: float = 1e-6,
                 atol: float = 1e-9) -> None:
    """Assert ``actual`` equals ``expected`` (shape and values to ``rtol``/``atol``);
    the message says where they differ most."""
    if actual is None:
        raise AssertionError(f"{message} (got None: does the function return its result?)")
    actual_array = np.asarray(actual, dtype=np.float64)
    expected_array = np.asarray(expected, dtype=np.float64)
    if actual_array.shape != expected_array.shape:
        raise AssertionError(f"{message} (shape {actual_array.shape}, expected "
                             f"{expected_array.shape})")
    if np.allclose(actual_array, expected_array, rtol=rtol, atol=atol):
        return
    difference = np.abs(actual_array - expected_array)
    where = np.unravel_index(int(np.nanargmax(np.where(np.isnan(difference), np.inf,
                                                       difference))), difference.shape)
    at = f" at {list(map(int, where))}" if difference.ndim else ""
    raise AssertionError(f"{message} (largest difference {float(difference[where]):.3g}{at}: "
                         f"got {float(actual_array[where]):.6g}, expected "
                         f"{float(expected_array[where]):.6g})")
