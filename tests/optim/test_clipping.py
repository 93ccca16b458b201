"""Gradient clipping by the global norm."""

from __future__ import annotations

import math

import numpy as np
import pytest
from optim_helpers import FlatModel

from numnet.optim import clip_grad_norm, global_grad_norm


def test_clip_grad_norm_scales_all_gradients_together():
    model = FlatModel()
    model.flat_grads[:] = [3.0, 4.0, 0.0, 0.0, 12.0]  # norm 13
    total = clip_grad_norm(model, 6.5)
    assert total == 13.0
    np.testing.assert_allclose(model.flat_grads, np.array([3, 4, 0, 0, 12]) * 6.5 / 13,
                               rtol=1e-6)
    assert clip_grad_norm(model, 100.0) == pytest.approx(6.5, rel=1e-6)  # below: untouched
    np.testing.assert_allclose(model.flat_grads, np.array([3, 4, 0, 0, 12]) * 0.5, rtol=1e-6)


def test_clip_grad_norm_survives_float32_overflow_and_reports_nan():
    model = FlatModel(dtype=np.float32)
    model.flat_grads[:] = 1e20  # the float32 sum of squares overflows; the norm does not
    assert clip_grad_norm(model, 1.0) == pytest.approx(math.sqrt(5) * 1e20, rel=1e-6)
    assert np.linalg.norm(model.flat_grads.astype(np.float64)) == pytest.approx(1.0, rel=1e-5)
    model.flat_grads[1] = np.nan
    assert math.isnan(clip_grad_norm(model, 1.0))
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(model, 0)


def test_global_grad_norm_is_the_euclidean_norm_of_every_gradient():
    model = FlatModel()
    model.flat_grads[:] = [3.0, 4.0, 0.0, 0.0, 12.0]
    assert global_grad_norm(model) == 13.0
    np.testing.assert_array_equal(model.flat_grads, [3.0, 4.0, 0.0, 0.0, 12.0])  # untouched
