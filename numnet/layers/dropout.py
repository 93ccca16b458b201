r"""Inverted dropout."""

from __future__ import annotations

from typing import Any

import numpy as np

from numnet._checks import real_number
from numnet.layers.base import GradCheckCase, Layer


class Dropout(Layer):
    r"""Inverted dropout: zero each unit with probability ``p`` while training.

    Training, with ``u ~ Uniform[0, 1)`` drawn per element from the layer's generator
    ``self.rng`` (a model seeds it, so a seeded run draws the same masks)::

        m = [u >= p] / (1 - p)        (same shape as x: 0 or 1/(1-p))
        y = x * m
        dx = g * m                    (the mask from forward is kept for backward)

    Kept units are scaled by ``1/(1-p)`` so ``E[y] = x``: evaluation then needs no
    rescaling and is the identity, ``y = x``, ``dx = g``. With ``p = 0`` training is the
    identity too, and no random numbers are drawn.

    Parameters
    ----------
    p : float
        Probability of dropping a unit, in ``[0, 1)``. ``p`` near 1 is allowed (the
        scale ``1/(1-p)`` stays finite); ``p = 1`` would drop everything and is rejected.
    dtype : str or numpy dtype, optional
        ``float32`` (default) or ``float64``; the uniform draws are made in this dtype.
    seed : int, optional
        Seed for the masks when the layer is used on its own; a model gives it a generator
        derived from the model's seed.
    """

    def __init__(self, p: float = 0.5, dtype: Any = None, seed: int | None = None) -> None:
        super().__init__(dtype)
        self.rng = np.random.default_rng(seed)
        self.p = real_number(p, "Dropout p (the probability of dropping a unit)",
                             low=0.0, high=1.0, high_open=True)
        self.mask: np.ndarray | None = None
        self.shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.shape = x.shape
        if not training or self.p == 0:
            self.mask = None
            return x
        # one buffer: the uniform draws become the 0/1 keep mask, then the scaled mask
        mask = self.rng.random(x.shape, dtype=self.dtype)
        np.greater_equal(mask, self.dtype.type(self.p), out=mask)
        mask *= self.dtype.type(1.0 / (1.0 - self.p))  # computed in float64, then cast
        self.mask = mask
        return x * mask

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        self._need_cache("shape")  # forward ran
        if self.mask is None:
            return grad_out
        return grad_out * self.mask

    def get_config(self) -> dict[str, Any]:
        return {"p": self.p, "dtype": self.dtype.name}

    @classmethod
    def gradcheck_cases(cls) -> list[GradCheckCase]:
        rng = np.random.default_rng(3)
        return [GradCheckCase(cls(p), rng.standard_normal(shape))
                for p, shape in ((0.5, (1, 6)), (0.5, (5, 4)), (0.3, (2, 3, 4)), (0.0, (3, 2)))]
