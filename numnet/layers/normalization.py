r"""Normalisation layers: batch normalisation and layer normalisation.

Both standardise their input and then apply a learnable per-feature affine map::

    x_hat = (x - mu) / sqrt(var + eps)
    y     = gamma * x_hat + beta

They differ only in *which* axis ``mu`` and ``var`` are taken over:

* :class:`BatchNorm1d` averages over the **batch** axis (one ``mu``/``var`` per feature,
  shared by every sample of the batch), and so needs running estimates for evaluation;
  :class:`BatchNorm2d` is the same for images, one ``mu``/``var`` per channel over the
  batch and both spatial axes;
* :class:`LayerNorm` averages over the **feature** axis (one ``mu``/``var`` per sample), so
  a sample's output never depends on the rest of the batch, in training or evaluation.

``gamma`` and ``beta`` always have shape ``(num_features,)``: one scale and one shift per
feature, broadcast over the batch. They are not weight-decayed (``decay_keys`` is empty).

Backward, in the compact closed form. Write ``g = dL/dy``, ``s = 1 / sqrt(var + eps)`` and
let ``M`` be the number of values averaged into each ``mu`` (the batch size ``N`` for batch
norm, the feature count ``D`` for layer norm); sums run over the same axis as ``mu``. With
``h = dL/dx_hat`` the three routes from ``x`` to ``L`` (directly, through ``mu``, through
``var``) collapse to::

    dL/dx = (s / M) * (M * h - sum(h) - x_hat * sum(h * x_hat))

For batch norm ``h = gamma * g`` and ``gamma`` is constant along the batch axis, giving
``dx = (gamma * s / N) * (N g - sum_n g - x_hat * sum_n g x_hat)``. The parameter
gradients are always sums over the batch::

    dL/dgamma = sum_n g * x_hat        dL/dbeta = sum_n g
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from numnet._checks import positive_int, real_number
from numnet.errors import ShapeError
from numnet.layers._spatial import image_shape
from numnet.layers.base import GradCheckCase, Layer


class BatchStatsSync(Protocol):
    """Batch statistics over a batch split across processes (SyncBatchNorm).

    ``fit(..., distributed=True, sync_batchnorm=True)`` sets one as a BatchNorm layer's
    ``sync`` for the run (:class:`numnet.distributed.SyncBatchStats`); the layer then takes
    its mean, variance and backward sums over every process's part of the global batch.
    """

    def moments(self, x: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """``(mean, biased var, values per channel)`` over the global batch."""

    def sums(self, sum_g: np.ndarray, sum_g_xhat: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, int]:
        """``(sum g, sum g * x_hat, values per channel)`` over the global batch."""


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


class BatchNorm1d(Layer):
    r"""Batch normalisation over the batch axis of ``(N, num_features)`` inputs.

    Training (``training=True``), with batch statistics per feature ``c``::

        mu_c    = (1/N) sum_n x_nc
        var_c   = (1/N) sum_n (x_nc - mu_c)^2              (biased: what is normalised with)
        x_hat   = (x - mu) / sqrt(var + eps)               (N, C)
        y       = gamma * x_hat + beta                     (N, C); gamma, beta: (C,)

    and the running estimates are updated in place with PyTorch's convention (``momentum``
    is the weight of the *new* batch, not of the old average as in Keras)::

        running_mean = (1 - momentum) * running_mean + momentum * mu
        running_var  = (1 - momentum) * running_var  + momentum * var * N / (N - 1)

    The running variance uses the unbiased batch variance ``N/(N-1) * var`` (as PyTorch
    does) while the batch is normalised with the biased one.

    Evaluation (``training=False``): ``x_hat = (x - running_mean) / sqrt(running_var + eps)``,
    an affine map per feature, so each output row depends only on its own input row.

    Backward, ``g = dL/dy`` of shape ``(N, C)``, ``s = 1/sqrt(var + eps)`` of shape ``(C,)``:

    * training (``mu`` and ``var`` depend on every row)::

        dx     = (gamma * s / N) * (N g - sum_n g - x_hat * sum_n (g * x_hat))
        dgamma = sum_n g * x_hat
        dbeta  = sum_n g

    * evaluation (the statistics are constants): ``dx = g * gamma * s``, same
      ``dgamma``/``dbeta``.

    :func:`numnet.reference.batchnorm_backward` derives the same ``dx`` the long way, node
    by node through the computational graph (mean, centre, square, variance, square root,
    inverse, normalise, scale), and the tests hold the two equal.

    Parameters
    ----------
    num_features : int
        ``C``, the size of the feature axis.
    momentum : float
        Weight of the current batch in the running averages, in ``[0, 1]`` (default 0.1).
    eps : float
        Added to the variance before the square root, ``> 0`` (default 1e-5).
    dtype : str or numpy dtype, optional
        ``float32`` (default) or ``float64``.

    Raises
    ------
    ValueError
        In training, for a batch of one sample (its variance is 0 and carries no
        information), as PyTorch does. :class:`~numnet.errors.ShapeError` (a ValueError)
        for input that is not ``(N, num_features)``.

    Notes
    -----
    Parameters ``gamma`` (init 1) and ``beta`` (init 0); buffers ``running_mean`` (init 0)
    and ``running_var`` (init 1), saved by ``Sequential.state_dict`` but not trained. Only
    2-D input is handled; :class:`BatchNorm2d` is the per-channel version for images
    ``(N, C, H, W)``, the same maths with the statistics also taken over the spatial axes.

    In ``fit(..., distributed=True)`` each process normalises its part of the global batch
    with that part's statistics, unless ``sync_batchnorm=True`` takes them over the global
    batch (``sync``; see :mod:`numnet.distributed`).
    """

    #: ``fit`` never gives a training batch smaller than this (a last batch of one sample
    #: joins the batch before it)
    min_train_batch = 2
    #: the axes the statistics are taken over (all but the channel axis)
    _axes: tuple[int, ...] = (0,)
    #: None: the statistics of the batch this process sees. Set for a distributed run with
    #: ``sync_batchnorm=True``: the statistics of the global batch over every process
    sync: BatchStatsSync | None = None

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5,
                 dtype: Any = None) -> None:
        super().__init__(dtype)
        self.num_features = positive_int(num_features, "BatchNorm1d num_features")
        self.momentum = real_number(momentum, "BatchNorm1d momentum", low=0.0, high=1.0)
        self.eps = real_number(eps, "BatchNorm1d eps", low=0.0, low_open=True)
        shape = (self.num_features,)
        self._add_param("gamma", shape)
        self._add_param("beta", shape)
        self.buffers["running_mean"] = np.zeros(shape, dtype=self.dtype)
        self.buffers["running_var"] = np.ones(shape, dtype=self.dtype)
        # cache for backward: normalised input, 1/std per feature, and which statistics
        self.x_hat: np.ndarray | None = None
        self.inv_std: np.ndarray | None = None
        self.used_batch_stats = False
        self.initialize(self.rng)

    def initialize(self, rng: np.random.Generator) -> None:
        super().initialize(rng)
        # in place: a model may already hold views of these arrays
        self.params["gamma"].fill(1)
        self.params["beta"].fill(0)
        self.buffers["running_mean"].fill(0)
        self.buffers["running_var"].fill(1)

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        return (self.num_features,)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if tuple(input_shape) != (self.num_features,):
            raise ShapeError(
                f"{self!r} expects {self.num_features} input features, got input shape "
                f"{_fmt_shape(tuple(input_shape))}"
            )
        return (self.num_features,)

    def check_input(self, x: np.ndarray, training: bool) -> None:
        if training and x.size // self.num_features < 2:
            raise ValueError(
                f"{self!r}: expected more than 1 value per channel when training, got "
                f"input shape {x.shape}; a batch of one has zero variance. Use a batch "
                "of at least 2, or evaluation mode (running statistics)"
            )

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        eps = self.dtype.type(self.eps)
        if training and self.sync is not None:  # SyncBatchNorm: over the global batch
            mean, var, n = self.sync.moments(x, self.buffers["running_mean"])
            centred = x - self._per_channel(mean)
            self._update_running(mean, var, n)
        elif training:
            n = x.size // self.num_features  # values per channel
            mean = x.mean(axis=self._axes)
            centred = x - self._per_channel(mean)
            # biased: what the batch is scaled by
            var = np.mean(centred * centred, axis=self._axes)
            self._update_running(mean, var, n)
        else:
            var = self.buffers["running_var"]
            centred = x - self._per_channel(self.buffers["running_mean"])
        # a fresh array, safe to keep after buffers change
        inv_std = self._per_channel(1 / np.sqrt(var + eps))
        x_hat = centred
        x_hat *= inv_std  # centred is our own temporary: normalise it in place
        self.x_hat, self.inv_std, self.used_batch_stats = x_hat, inv_std, bool(training)
        return x_hat * self._per_channel(self.params["gamma"]) + self._per_channel(
            self.params["beta"])

    def _update_running(self, mean: np.ndarray, var: np.ndarray, n: int) -> None:
        """Exponential moving averages, written in place (the buffers are never rebound)."""
        momentum = self.dtype.type(self.momentum)
        keep = self.dtype.type(1 - self.momentum)
        unbias = self.dtype.type(n / (n - 1))  # Bessel's correction for the estimate only
        running_mean, running_var = self.buffers["running_mean"], self.buffers["running_var"]
        running_mean *= keep
        running_mean += momentum * mean
        running_var *= keep
        running_var += (momentum * unbias) * var

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x_hat = self._need_cache("x_hat")
        inv_std = self._need_cache("inv_std")
        g = grad_out
        sum_g = np.sum(g, axis=self._axes, out=self.grads["beta"])
        sum_g_xhat = np.sum(g * x_hat, axis=self._axes, out=self.grads["gamma"])
        scale = self._per_channel(self.params["gamma"]) * inv_std  # per channel
        if not self.used_batch_stats:
            return g * scale
        count = g.size // self.num_features  # values per channel
        if self.sync is not None:  # sums over the global batch (fresh arrays: grads stay local)
            sum_g, sum_g_xhat, count = self.sync.sums(sum_g, sum_g_xhat)
        n = self.dtype.type(count)
        dx = g * n
        dx -= self._per_channel(sum_g)
        dx -= x_hat * self._per_channel(sum_g_xhat)
        dx *= scale / n
        return dx

    def _per_channel(self, v: np.ndarray) -> np.ndarray:
        """A per-channel ``(C,)`` vector shaped to broadcast against the input."""
        return v

    def get_config(self) -> dict[str, Any]:
        return {
            "num_features": self.num_features,
            "momentum": self.momentum,
            "eps": self.eps,
            "dtype": self.dtype.name,
        }

    @classmethod
    def gradcheck_cases(cls) -> list[GradCheckCase]:
        """Non-trivial gamma, beta and running statistics (so evaluation mode is too)."""
        cases = []
        for batch, features in ((2, 3), (5, 4), (9, 1)):
            rng = np.random.default_rng(10 * batch + features)
            # a batch of two normalises to +-1 whatever x is: a larger eps makes its tiny
            # input gradient measurable by central differences
            layer = cls(features, eps=0.5 if batch == 2 else 1e-5)
            layer.params["gamma"][...] = (rng.uniform(0.5, 2.0, features)
                                          * rng.choice([-1, 1], features))
            layer.params["beta"][...] = rng.standard_normal(features)
            layer.buffers["running_mean"][...] = rng.standard_normal(features)
            layer.buffers["running_var"][...] = rng.uniform(0.2, 3.0, features)
            cases.append(GradCheckCase(layer, 2 * rng.standard_normal((batch, features)) + 0.3))
        return cases


class BatchNorm2d(BatchNorm1d):
    r"""Batch normalisation of images ``(N, C, H, W)``: one mean and variance per channel.

    The maths of :class:`BatchNorm1d` with the statistics of channel ``c`` taken over the
    batch *and* the spatial axes, ``m = N * H * W`` values each::

        mu_c  = (1/m) sum_{n,h,w} x[n, c, h, w]
        var_c = (1/m) sum_{n,h,w} (x[n, c, h, w] - mu_c)^2            (biased)
        x_hat = (x - mu) / sqrt(var + eps)                              (N, C, H, W)
        y     = gamma * x_hat + beta            gamma, beta: (C,), broadcast over N, H, W

    Running statistics follow the same (PyTorch) convention, with ``n = N * H * W``::

        running_mean = (1 - momentum) * running_mean + momentum * mu
        running_var  = (1 - momentum) * running_var  + momentum * var * n / (n - 1)

    and evaluation uses them: ``x_hat = (x - running_mean) / sqrt(running_var + eps)``.

    Backward, ``g = dL/dy`` (N, C, H, W), ``s = 1/sqrt(var + eps)``, sums over ``n, h, w``:

    * training: ``dx = (gamma * s / m) * (m g - sum g - x_hat * sum (g * x_hat))``
    * evaluation: ``dx = g * gamma * s``

    and always ``dgamma = sum g * x_hat``, ``dbeta = sum g`` (each ``(C,)``).

    Parameters
    ----------
    num_features : int
        ``C``, the number of channels.
    momentum : float
        Weight of the current batch in the running averages, in ``[0, 1]`` (default 0.1).
    eps : float
        Added to the variance before the square root, ``> 0`` (default 1e-5).
    dtype : str or numpy dtype, optional
        ``float32`` (default) or ``float64``.

    Notes
    -----
    A batch of one image trains fine (its ``H * W`` values per channel make the
    statistics); only ``N * H * W == 1`` is refused, as PyTorch does. The output keeps the
    memory order of the input (channels-last after a :class:`~numnet.layers.Conv2D`).
    """

    min_train_batch = 1
    _axes = (0, 2, 3)

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        return None  # the channels are fixed, the image size is not

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return image_shape(self, input_shape, self.num_features)

    @classmethod
    def gradcheck_cases(cls) -> list[GradCheckCase]:
        """Non-trivial gamma, beta and running statistics; a batch of one image too."""
        cases = []
        for shape in ((1, 3, 3, 5), (2, 1, 3, 3), (3, 4, 2, 1)):
            rng = np.random.default_rng(sum(shape))
            channels = shape[1]
            layer = cls(channels)
            layer.params["gamma"][...] = (rng.uniform(0.5, 2.0, channels)
                                          * rng.choice([-1, 1], channels))
            layer.params["beta"][...] = rng.standard_normal(channels)
            layer.buffers["running_mean"][...] = rng.standard_normal(channels)
            layer.buffers["running_var"][...] = rng.uniform(0.2, 3.0, channels)
            cases.append(GradCheckCase(layer, 2 * rng.standard_normal(shape) + 0.3))
        return cases

    def _per_channel(self, v: np.ndarray) -> np.ndarray:
        return v.reshape(-1, 1, 1)


class LayerNorm(Layer):
    r"""Layer normalisation: each sample standardised over its own feature axis.

    For input ``x`` of shape ``(N, D)`` (or ``(N, ..., D)``: the last axis is normalised)::

        mu_n  = (1/D) sum_d x_nd               var_n = (1/D) sum_d (x_nd - mu_n)^2
        x_hat = (x - mu) / sqrt(var + eps)     y = gamma * x_hat + beta

    ``gamma`` (init 1) and ``beta`` (init 0) have shape ``(D,)``. There are no running
    statistics: training and evaluation compute the same thing, and a batch of one is fine.

    Backward, ``g = dL/dy``, ``s_n = 1/sqrt(var_n + eps)`` and ``h = g * gamma``
    (``gamma`` varies along the summed axis here, so it stays inside the sums)::

        dx     = (s / D) * (D h - sum_d h - x_hat * sum_d (h * x_hat))
        dgamma = sum over every axis but the last of g * x_hat     (D,)
        dbeta  = sum over every axis but the last of g             (D,)

    Parameters
    ----------
    normalized_shape : int or tuple of one int
        ``D``, the size of the last axis.
    eps : float
        Added to the variance before the square root, ``> 0`` (default 1e-5).
    dtype : str or numpy dtype, optional
        ``float32`` (default) or ``float64``.
    """

    def __init__(self, normalized_shape: int | tuple[int], eps: float = 1e-5,
                 dtype: Any = None) -> None:
        super().__init__(dtype)
        if isinstance(normalized_shape, (tuple, list)):
            if len(normalized_shape) != 1:
                raise ValueError(
                    "LayerNorm normalises the last axis only: normalized_shape must be an int "
                    f"or a tuple of one int, got {tuple(normalized_shape)!r}"
                )
            normalized_shape = normalized_shape[0]
        self.normalized_shape = positive_int(normalized_shape, "LayerNorm normalized_shape")
        self.eps = real_number(eps, "LayerNorm eps", low=0.0, low_open=True)
        self._add_param("gamma", (self.normalized_shape,))
        self._add_param("beta", (self.normalized_shape,))
        self.x_hat: np.ndarray | None = None
        self.inv_std: np.ndarray | None = None
        self.initialize(self.rng)

    def initialize(self, rng: np.random.Generator) -> None:
        super().initialize(rng)
        self.params["gamma"].fill(1)
        self.params["beta"].fill(0)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        shape = tuple(input_shape)
        if not shape or shape[-1] != self.normalized_shape:
            raise ShapeError(
                f"{self!r} expects a last axis of size {self.normalized_shape}: input of shape "
                f"(N, ..., {self.normalized_shape}) (batch first, rank >= 2), got samples of "
                f"shape {_fmt_shape(shape)}"
            )
        return shape

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        mean = x.mean(axis=-1, keepdims=True)
        centred = x - mean
        var = np.mean(centred * centred, axis=-1, keepdims=True)
        inv_std = 1 / np.sqrt(var + self.dtype.type(self.eps))  # (N, ..., 1)
        x_hat = centred
        x_hat *= inv_std
        self.x_hat, self.inv_std = x_hat, inv_std
        return x_hat * self.params["gamma"] + self.params["beta"]

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x_hat = self._need_cache("x_hat")
        inv_std = self._need_cache("inv_std")
        g = grad_out
        batch_axes = tuple(range(g.ndim - 1))
        np.sum(g, axis=batch_axes, out=self.grads["beta"])
        np.sum(g * x_hat, axis=batch_axes, out=self.grads["gamma"])
        h = g * self.params["gamma"]  # dL/dx_hat
        d = self.dtype.type(self.normalized_shape)
        dx = h * d
        dx -= h.sum(axis=-1, keepdims=True)
        h *= x_hat  # h is our own temporary: reuse it for h * x_hat
        dx -= x_hat * h.sum(axis=-1, keepdims=True)
        dx *= inv_std / d
        return dx

    def get_config(self) -> dict[str, Any]:
        return {
            "normalized_shape": self.normalized_shape,
            "eps": self.eps,
            "dtype": self.dtype.name,
        }

    @classmethod
    def gradcheck_cases(cls) -> list[GradCheckCase]:
        cases = []
        for shape in ((1, 5), (4, 3), (3, 2, 6)):
            d = shape[-1]
            rng = np.random.default_rng(d)
            layer = cls(d)
            layer.params["gamma"][...] = rng.uniform(-2, 2, d)
            layer.params["beta"][...] = rng.standard_normal(d)
            cases.append(GradCheckCase(layer, 2 * rng.standard_normal(shape) + 0.3))
        return cases
