r"""2-D convolution, as one matrix product over an im2col matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from numnet import _kernels
from numnet._checks import positive_int
from numnet.init import InitSpec
from numnet.layers._fastpath import spatial_kernels
from numnet.layers._im2col import Workspace, col2im, im2col, padded
from numnet.layers._spatial import (
    channels_last,
    compact,
    conv_padding,
    image_shape,
    int_pair,
    output_size,
    pooled_size,
)
from numnet.layers.activations import activation_kernel, fused_activation
from numnet.layers.base import GradCheckCase, Layer

#: in evaluation mode the batch is convolved in blocks of samples whose column matrix holds
#: at most this many values (16 MiB of float32): the product runs as fast, and predicting
#: on 10,000 images does not build a column matrix of gigabytes
EVAL_COLUMN_BUDGET = 1 << 22


class Conv2D(Layer):
    r"""2-D convolution (cross-correlation, as in PyTorch) of ``(N, C, H, W)`` images.

    Shapes: ``x`` is ``(N, C_in, H, W)``, the weight ``W`` is ``(C_out, C_in, kh, kw)``, the
    bias ``b`` is ``(C_out,)`` (PyTorch's layout: its weights copy in unchanged), and ``y``
    is ``(N, C_out, H_out, W_out)`` with, per axis (floor mode)::

        H_out = floor((H + pad_top + pad_bottom - d_h * (kh - 1) - 1) / s_h) + 1

    Forward, with ``x_pad`` the zero-padded input::

        y[n, o, p, q] = b[o] + sum_{c, i, j} W[o, c, i, j] * x_pad[n, c, p*s_h + i*d_h,
                                                                     q*s_w + j*d_w]

    computed as one matrix product ``y = col @ Wmat + b`` over the column matrix ``col``
    (``M = N * H_out * W_out`` rows, one per output pixel; ``K = C_in * kh * kw`` columns,
    the values under the kernel) and ``Wmat`` (K, C_out), the weight unfolded
    (:mod:`numnet.layers._im2col`).

    Backward, ``g = dL/dy`` unfolded to ``(M, C_out)``::

        dL/dW = col^T g       (K, C_out), folded back to (C_out, C_in, kh, kw)
        dL/db = sum_m g[m]    (C_out,)
        dL/dx = col2im(g Wmat^T)    every column-matrix entry's gradient added back onto
                                    the input pixel it was copied from (N, C_in, H, W)

    The first layer of a model skips ``dL/dx`` in training (:meth:`backward_params`).

    Parameters
    ----------
    in_channels, out_channels : int
        ``C_in`` and ``C_out``.
    kernel_size : int or (int, int)
        ``(kh, kw)``.
    stride : int or (int, int)
        Step between windows (default 1).
    padding : int, (int, int), "valid" or "same"
        Zeros added on both sides of each axis (``(ph, pw)``). ``"valid"`` is 0;
        ``"same"`` (stride 1 only) keeps ``H_out = H`` and ``W_out = W``, padding
        ``d * (k - 1)`` in total, the odd one at the bottom/right, as PyTorch does.
    dilation : int or (int, int)
        Spacing between kernel taps (default 1).
    bias : bool
        Whether to add ``b``.
    init : str or callable, optional
        Weight initialiser (:mod:`numnet.init`), fans over the receptive field:
        ``fan_in = C_in * kh * kw``, ``fan_out = C_out * kh * kw``. ``None`` lets a model
        pick He for a ReLU-family activation after this layer and Glorot otherwise (the
        layer alone uses Glorot uniform). The bias starts at zero.
    dtype : str or numpy dtype, optional
        ``float32`` (default) or ``float64``.
    seed : int, optional
        Seed for the initial weights when the layer is used on its own; a model re-draws
        them from its own seed.

    Notes
    -----
    The output is channels-last in memory (``y.transpose(0, 2, 3, 1)`` is contiguous):
    the product writes it so with no copy, and the element-wise layers and pools after it
    keep that order. Inputs of either memory order are read without a conversion: the
    column matrix takes the layout that copies fastest from them (see
    :mod:`numnet.layers._im2col`). The column matrix and the other work arrays are kept
    from batch to batch while the batch shape stays the same; ``backward`` differentiates
    the most recent ``forward``. In evaluation mode large batches are convolved in blocks
    of samples (:data:`EVAL_COLUMN_BUDGET`), which bounds the memory of prediction. With
    numba installed, each kernel offset's add of col2im runs as one compiled loop on large
    batches (:mod:`numnet.layers._fastpath`; the same sums in the same order). Followed by a
    :class:`~numnet.layers.ReLU` or :class:`~numnet.layers.LeakyReLU` in a model, the layer
    runs the pair as one, as :class:`~numnet.layers.Dense` does: the activation in place on
    the product's output, its mask in place on the incoming gradient
    (:meth:`forward_activated`, :meth:`backward_activated`).
    """

    decay_keys = ("W",)
    weight_key = "W"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] | str = 0,
                 dilation: int | tuple[int, int] = 1, bias: bool = True, init: InitSpec = None,
                 dtype: Any = None, seed: int | None = None) -> None:
        super().__init__(dtype)
        self.in_channels = positive_int(in_channels, "Conv2D in_channels")
        self.out_channels = positive_int(out_channels, "Conv2D out_channels")
        self.kernel_size = int_pair(kernel_size, "Conv2D kernel_size")
        self.stride = int_pair(stride, "Conv2D stride")
        self.dilation = int_pair(dilation, "Conv2D dilation")
        self._pad, self.padding = conv_padding(padding, self.kernel_size, self.stride,
                                               self.dilation, "Conv2D padding")
        self._set_init(init)
        self.bias = bool(bias)
        kh, kw = self.kernel_size
        self._add_param("W", (self.out_channels, self.in_channels, kh, kw))
        if self.bias:
            self._add_param("b", (self.out_channels,))
        self._work = Workspace()
        self._x: np.ndarray | None = None
        self._col: np.ndarray | None = None  # the column matrix of the last forward, if kept
        self._rows = True  # its layout: (M, K) rows, or (K, M)
        self._force_rows: bool | None = None  # benchmarks and tests pin the layout
        self._use_compiled = True  # tests switch the compiled col2im (numba) off
        self.initialize(np.random.default_rng(seed))

    # -- life cycle ---------------------------------------------------------------------
    def initialize(self, rng: np.random.Generator) -> None:
        super().initialize(rng)
        self.init_weight(rng)
        if self.bias:
            self.params["b"].fill(0)

    def get_config(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": compact(self.kernel_size),
            "stride": compact(self.stride),
            "padding": self.padding,
            "dilation": compact(self.dilation),
            "bias": self.bias,
            "init": self.init if isinstance(self.init, str) else None,
            "dtype": self.dtype.name,
        }

    def __repr__(self) -> str:
        # the arguments that differ from their defaults, so a summary row stays readable,
        # and always the initialiser in use (a model picks it when init is None)
        defaults = {"stride": 1, "padding": 0, "dilation": 1, "bias": True}
        config = {**self.get_config(), "init": self.init_name}
        args = ", ".join(f"{k}={v!r}" for k, v in config.items()
                         if k != "dtype" and not (k in defaults and v == defaults[k]))
        return f"Conv2D({args})"

    def __getstate__(self) -> dict[str, Any]:
        # copies (deepcopy, pickle) leave the work arrays behind: they are rebuilt on demand
        state = super().__getstate__()
        state["_work"] = Workspace()
        state["_col"] = None
        return state

    # -- shapes -------------------------------------------------------------------------
    @property
    def pads(self) -> tuple[int, int, int, int]:
        """``(top, bottom, left, right)``: the zeros added on each side, ``"same"`` resolved."""
        return self._pad

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        c, h, w = image_shape(self, input_shape, self.in_channels)
        oh, ow = pooled_size(self, c, h, w, self.kernel_size, self.stride, self._pad,
                             self.dilation)
        return (self.out_channels, oh, ow)

    def _out_hw(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """``(H_out, W_out)`` for a batch shape the layer was validated for."""
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        top, bottom, left, right = self._pad
        return (output_size(shape[2], kh, sh, top + bottom, dh),
                output_size(shape[3], kw, sw, left + right, dw))

    # -- forward ------------------------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return self._forward(x, training, None)

    def forward_activated(self, x: np.ndarray, activation: Layer,
                          training: bool = False) -> np.ndarray:
        """``activation(conv(x))`` for the ReLU or LeakyReLU that follows this layer
        (:meth:`fuses_with`), applied in place to the product's output: no second array of
        the output's size. The output is kept for :meth:`backward_activated` (it has the
        sign of the activation's input, which is all the mask needs)."""
        return self._forward(x, training, activation_kernel(activation))

    def _forward(self, x: np.ndarray, training: bool,
                 activation: tuple[str, float] | None) -> np.ndarray:
        n = x.shape[0]
        oh, ow = self._out_hw(x.shape)
        self._x, self.activated = x, None
        self._rows = self._rows_for(x)
        wmat = self._weight_matrix()
        per_sample = oh * ow * wmat.shape[0]
        if training or n * per_sample <= EVAL_COLUMN_BUDGET:
            col = self._columns(x)
            out = self._product(col, wmat)
        else:  # evaluation of a large batch: blocks of samples, nothing kept for backward
            block = max(1, EVAL_COLUMN_BUDGET // per_sample)
            out = np.empty((n * oh * ow, self.out_channels), dtype=self.dtype)
            for start in range(0, n, block):
                part = x[start:start + block]
                rows = slice(start * oh * ow, (start + part.shape[0]) * oh * ow)
                self._product(self._columns(part), wmat, out=out[rows])
            self._col = None
        y = out.reshape(n, oh, ow, self.out_channels).transpose(0, 3, 1, 2)
        if activation is not None:
            kind, self.activation_alpha = activation
            _kernels.bias_act(out, None, kind, self.activation_alpha)
            self.activated = y
        return y

    def _rows_for(self, x: np.ndarray) -> bool:
        """The column-matrix layout for ``x``: rows for channels-last input (measured
        fastest there: runs of C values to copy), (K, M) otherwise (runs of W_out)."""
        return channels_last(x) if self._force_rows is None else self._force_rows

    def _weight_matrix(self) -> np.ndarray:
        """``Wmat`` (K [+1 bias row], C_out) in the column matrix's ``k`` order."""
        w = self.params["W"]
        o, c, kh, kw = w.shape
        k = c * kh * kw
        wmat = self._work.get("wmat", (k + self.bias, o), self.dtype)
        if self._rows:  # k over (kh, kw, C)
            np.copyto(wmat[:k].reshape(kh, kw, c, o), w.transpose(2, 3, 1, 0))
        else:  # k over (C, kh, kw)
            np.copyto(wmat[:k], w.reshape(o, k).T)
        if self.bias:
            wmat[k] = self.params["b"]
        return wmat

    def _columns(self, x: np.ndarray) -> np.ndarray:
        """Build (into the reused buffer) and keep the column matrix of ``x``."""
        n = x.shape[0]
        oh, ow = self._out_hw(x.shape)
        kh, kw = self.kernel_size
        rows = n * oh * ow
        k = self.in_channels * kh * kw + self.bias
        shape = (rows, k) if self._rows else (k, rows)
        # ones: the bias column (row); one buffer per layout, whose shapes can coincide
        col = self._work.get(f"col:{'rows' if self._rows else 'cols'}", shape, self.dtype,
                             fill=1)
        xp = padded(self._work, "x_pad", x, self._pad, 0.0, self._rows)
        im2col(xp, col, self.kernel_size, self.stride, self.dilation, self._rows)
        self._col = col
        return col

    def _product(self, col: np.ndarray, wmat: np.ndarray, out: np.ndarray | None = None
                 ) -> np.ndarray:
        return np.matmul(col if self._rows else col.T, wmat, out=out)

    # -- backward -----------------------------------------------------------------------
    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        g = self._grad_rows(grad_out)
        self._param_grads(g)
        return self._input_grad(g)

    def backward_params(self, grad_out: np.ndarray) -> None:
        """``dL/dW`` and ``dL/db`` only: a model's first layer needs no ``dL/dx``."""
        self._param_grads(self._grad_rows(grad_out))

    def backward_activated(self, grad_out: np.ndarray, input_grad: bool = True,
                           in_place: bool = False) -> np.ndarray | None:
        """Backward through the activation and this layer, after :meth:`forward_activated`:
        ``g = grad_out * [y > 0]`` (``alpha * grad_out`` where ``y <= 0`` for LeakyReLU)
        in one pass, into ``grad_out`` itself when ``in_place`` (the caller's scratch), then
        :meth:`backward` of ``g`` (:meth:`backward_params` without ``input_grad``)."""
        y = self._need_cache("activated")
        g = _kernels.relu_backward(grad_out, y, self.activation_alpha,
                                   out=grad_out if in_place else None)
        if not input_grad:
            self.backward_params(g)
            return None
        return self.backward(g)

    def fuses_with(self, layer: Layer) -> bool:
        """Whether :meth:`forward_activated` takes ``layer`` (a ReLU or LeakyReLU), unless
        a subclass changed :meth:`forward` or :meth:`backward` without it."""
        return fused_activation(layer) is not None and self._fused_maths_are_its_own()

    def _grad_rows(self, grad_out: np.ndarray) -> np.ndarray:
        """``g`` as ``(M, C_out)``: a view for channels-last gradients, else one copy."""
        n, o, oh, ow = grad_out.shape
        return grad_out.transpose(0, 2, 3, 1).reshape(n * oh * ow, o)

    def _param_grads(self, g: np.ndarray) -> None:
        x = self._need_cache("_x")
        col = self._col
        if col is None:  # not kept (evaluation in blocks, or a copied layer): rebuild it
            self._rows = self._rows_for(x)
            col = self._columns(x)
        o, c, kh, kw = self.params["W"].shape
        k = c * kh * kw
        if self._rows:
            # dW^T = g^T col, (C_out, K): BLAS runs this faster than col^T g (measured
            # 8.0 against 9.0 ms on the CNN's second convolution, one thread)
            dwmat = self._work.get("dwmat:rows", (o, col.shape[1]), self.dtype)
            np.matmul(g.T, col, out=dwmat)
            np.copyto(self.grads["W"], dwmat[:, :k].reshape(o, kh, kw, c).transpose(0, 3, 1, 2))
            bias_grad = dwmat[:, k] if self.bias else None
        else:
            dwmat = self._work.get("dwmat:cols", (col.shape[0], o), self.dtype)
            np.matmul(col, g, out=dwmat)
            np.copyto(self.grads["W"].reshape(o, k), dwmat[:k].T)
            bias_grad = dwmat[k] if self.bias else None
        if bias_grad is not None:
            self.grads["b"][...] = bias_grad

    def _input_grad(self, g: np.ndarray) -> np.ndarray:
        x = self._need_cache("_x")
        o, c, kh, kw = self.params["W"].shape
        # W per kernel offset, (kh*kw, C_out, C_in): the offset-major column gradient
        w_offsets = self._work.get("w_offsets", (kh * kw, o, c), self.dtype)
        np.copyto(w_offsets.reshape(kh, kw, o, c), self.params["W"].transpose(2, 3, 0, 1))
        dcol = self._work.get("dcol", (g.shape[0], c), self.dtype)  # one offset's block

        def block(offset: int) -> np.ndarray:
            return np.matmul(g, w_offsets[offset], out=dcol)

        kernels = spatial_kernels(x.size) if self._use_compiled else None
        return col2im(block, x.shape, self._out_hw(x.shape), self.kernel_size, self.stride,
                      self._pad, self.dilation, self.dtype, kernels)

    @classmethod
    def gradcheck_cases(cls) -> list[GradCheckCase]:
        """Strides, paddings ('same' with an even kernel), dilation, one channel, no bias."""
        rng = np.random.default_rng(3)
        cases = []
        for kwargs, shape in (
                ({"kernel_size": 3, "stride": 2, "padding": 1}, (2, 2, 7, 6)),
                ({"kernel_size": (2, 3), "padding": "same", "dilation": (2, 1)}, (1, 2, 5, 6)),
                ({"kernel_size": 1, "bias": False}, (2, 2, 3, 3))):
            layer = cls(shape[1], 3, seed=4, **kwargs)
            if layer.bias:
                layer.params["b"][...] = rng.standard_normal(3)
            cases.append(GradCheckCase(layer, rng.standard_normal(shape)))
        return cases
