"""Validation helpers shared by layers, losses, the model and the training loop."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numnet._checks import all_finite


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_finds_every_kind_of_bad_value(dtype):
    v = np.linspace(-3, 3, 1001).astype(dtype)
    assert all_finite(v)
    for bad in (np.nan, np.inf, -np.inf):
        w = v.copy()
        w[517] = bad
        assert not all_finite(w)


def test_all_finite_is_not_fooled_by_a_square_that_overflows():
    v = np.ones(100, dtype=np.float32)
    v[3] = 3e38  # finite, but v . v overflows float32
    assert all_finite(v)
    v[4] = np.nan
    assert not all_finite(v)


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, st.integers(0, 300),
                  elements=st.floats(width=32, allow_nan=True, allow_infinity=True)))
def test_all_finite_agrees_with_the_element_wise_test(v):
    assert all_finite(v) == bool(np.isfinite(v).all())
