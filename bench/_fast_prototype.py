"""A prototype of the kernels' integration, by patching today's objects (for measurement).

Nothing in ``numnet`` is edited: :func:`install` patches one model (its Dense/ReLU pairs,
its loss), swaps in an optimiser subclass, and replaces two methods of
``numnet.training._Trainer`` for the rest of the process. It shows what the next wave
integrates for real:

* **optimiser**: ``fused_step(model, backup) -> finite`` runs the update through
  ``numnet._kernels.adam_step`` with the trainer's weight backup and finiteness check in
  the same pass (today: a copy, the update, then a BLAS dot over the parameters);
* **scope**: ``fit``'s epochs, ``evaluate`` and ``predict_logits`` run in
  ``K.model_scope(num_params)``,
  so in automatic mode a large model's small calls (the loss on 128 x 10 logits) run
  compiled too;
* **trainer**: the step uses ``fused_step`` (a failed check restores the backup and names
  the culprit exactly as today); the accuracy count comes from the loss kernel; the batch
  gather is ``gather_rows``;
* **Dense + ReLU**: the Dense layer adds its bias and applies the ReLU in place on the
  product's output in one pass (``bias_act``); the ReLU layer passes its input through and
  keeps it for backward (the output's sign is the input's); its backward multiplies by the
  mask in place and sums the bias gradient of the Dense below in the same pass
  (``relu_backward(..., bias_grad=...)``), so that Dense skips its ``np.sum``;
* **ReLU after another layer** (BatchNorm): in place on that layer's fresh output;
* **CrossEntropy**: value, gradient and the accuracy count in one pass
  (``softmax_cross_entropy``) for integer labels, trusting the labels ``fit`` validated
  once (the arch helper moves validation out of the losses);
* **inference**: ``predict_logits`` checks the input with ``all_finite`` and writes the last
  layer's product straight into the preallocated output (no concatenation).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from numnet import _kernels as K
from numnet import training
from numnet._checks import all_finite, check_finite
from numnet.errors import NonFiniteError
from numnet.layers import Dense, ReLU
from numnet.losses import CrossEntropy
from numnet.optim import Adam, clip_grad_norm

# -- optimiser ------------------------------------------------------------------------------


class FusedAdam(Adam):
    """Adam whose step can also back up the weights and check the result (one pass)."""

    def fused_step(self, model: Any, backup: np.ndarray | None) -> bool:
        params, grads = model.flat_params, model.flat_grads
        self._prepare(params, model.decay_mask)
        self.steps += 1
        decay = None if isinstance(self._decay, float) else self._decay
        return K.adam_step(params, grads, self.state["exp_avg"], self.state["exp_avg_sq"],
                           lr=self.lr, betas=self.betas, eps=self.eps, step=self.steps,
                           weight_decay=self.weight_decay, decoupled=self._decoupled,
                           decay=decay, backup=backup, work=self._scratch)

    def step(self, model: Any) -> None:
        self.fused_step(model, None)


# -- loss -----------------------------------------------------------------------------------


class FusedCrossEntropy(CrossEntropy):
    """CrossEntropy whose forward computes the gradient and the accuracy count too."""

    def __init__(self) -> None:
        super().__init__()
        self.grad_buf: np.ndarray | None = None
        self.fused_grad: np.ndarray | None = None
        self.correct: int | None = None

    def forward(self, prediction: Any, target: Any, sample_weight: Any = None) -> float:
        z, t = prediction, target
        if not (isinstance(z, np.ndarray) and z.ndim == 2 and isinstance(t, np.ndarray)
                and t.ndim == 1 and t.dtype.kind in "iu"):
            self.fused_grad = self.correct = None
            return super().forward(prediction, target, sample_weight)
        if self.grad_buf is None or self.grad_buf.shape[1:] != z.shape[1:] \
                or self.grad_buf.shape[0] < z.shape[0] or self.grad_buf.dtype != z.dtype:
            self.grad_buf = np.empty_like(z)
        grad = self.grad_buf[:z.shape[0]]
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=z.dtype)
        loss, self.correct = K.softmax_cross_entropy(z, t, w, grad)
        self.fused_grad = grad
        return loss

    def backward(self) -> np.ndarray:
        if self.fused_grad is None:
            return super().backward()
        grad, self.fused_grad = self.fused_grad, None
        return grad


# -- layers ---------------------------------------------------------------------------------


def _fuse_dense(dense: Dense, activation: str) -> None:
    """Dense.forward adds the bias and applies ``activation`` in place, in one pass."""
    W = dense.params["W"]
    b = dense.params["b"] if dense.bias else None

    def forward(x: np.ndarray, training: bool = False) -> np.ndarray:
        x = dense._as_input(x, ndim=2)
        dense.x = x
        return K.bias_act(x @ W, b, activation)

    dense.forward = forward  # type: ignore[method-assign]


def _skip_bias_sum(dense: Dense) -> None:
    """The ReLU above sums this layer's bias gradient: the matrix product alone remains."""
    def param_grads(grad_out: np.ndarray) -> None:
        x = dense._need_cache("x")
        np.matmul(x.T, grad_out, out=dense.grads["W"])

    dense._param_grads = param_grads  # type: ignore[method-assign]


def _fuse_relu(relu: ReLU, dense_below: Dense | None, already_applied: bool) -> None:
    """ReLU in place (or already applied by the Dense below); backward in place, with the
    bias gradient of the Dense below in the same pass."""
    bias_grad = dense_below.grads["b"] if dense_below is not None and dense_below.bias \
        else None

    def forward(x: np.ndarray, training: bool = False) -> np.ndarray:
        if not already_applied:
            K.bias_act(x, None, "relu")  # the layer below's fresh output
        relu.x = x  # the output: its sign is the input's
        return x

    def backward(grad_out: np.ndarray) -> np.ndarray:
        # grad_out is the fresh output of the layer above's backward: ours to overwrite
        return K.relu_backward(grad_out, relu._need_cache("x"), 0.0, out=grad_out,
                               bias_grad=bias_grad)

    relu.forward = forward  # type: ignore[method-assign]
    relu.backward = backward  # type: ignore[method-assign]
    if bias_grad is not None and dense_below is not None:
        _skip_bias_sum(dense_below)


def fuse_model(model: Any) -> None:
    layers = model.layers
    for i, layer in enumerate(layers):
        after = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(layer, Dense):
            _fuse_dense(layer, "relu" if isinstance(after, ReLU) else "linear")
        if isinstance(layer, ReLU):
            below = layers[i - 1] if i > 0 else None
            dense = below if isinstance(below, Dense) else None
            # a ReLU first in the model would clobber the user's input: not fused
            if below is not None:
                _fuse_relu(layer, dense, already_applied=dense is not None)
    model.loss = FusedCrossEntropy()
    model.predict_logits = lambda x, batch_size=1024: predict_logits(model, x, batch_size)


# -- trainer --------------------------------------------------------------------------------


def _batches(self: Any) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    data = self.train
    order = self.rng.permutation(data.n) if self.shuffle else None
    for start, end in self.bounds:
        if order is None:
            yield data.X[start:end], data.y[start:end], \
                None if data.w is None else data.w[start:end]
            continue
        index = order[start:end]
        m = index.shape[0]
        xb = K.gather_rows(data.X, index, self.xbuf)
        yb = np.take(data.y, index, axis=0, out=self.ybuf[:m], mode="clip")
        wb = None if data.w is None else np.take(data.w, index, out=self.wbuf[:m],
                                                 mode="clip")
        yield xb, yb, wb


def _step_or_raise(self: Any, xb: np.ndarray, yb: np.ndarray,
                   wb: np.ndarray | None) -> tuple[float, int, int]:
    model = self.model
    try:
        loss, output = model.loss_and_grad(xb, yb, wb, training=True, return_output=True)
    except NonFiniteError as exc:
        raise self._diverged(self._forward_culprit(xb)) from exc
    if not math.isfinite(loss):
        raise self._diverged(self._loss_culprit(loss, output))
    bad_buffer = next(((i, name) for i, name, value in self.buffers
                       if not all_finite(value.reshape(-1))), None)
    if bad_buffer is not None:
        raise self._diverged(self._buffer_culprit(*bad_buffer))
    if self.clip_norm is not None:
        clip_grad_norm(model, self.clip_norm)
    optimizer = self.optimizer
    with training._atomic(self.interrupt):
        if hasattr(optimizer, "fused_step"):
            finite = optimizer.fused_step(model, self.backup)
        else:
            np.copyto(self.backup, model.flat_params)
            optimizer.step(model)
            finite = all_finite(model.flat_params)
        if not finite:
            culprit = self._param_culprit() if all_finite(model.flat_grads) \
                else self._grad_culprit()
            np.copyto(model.flat_params, self.backup)
            optimizer.zero_state()
            raise self._diverged(culprit + "; the optimiser's state (moments, step count) "
                                 "was reset")
    correct = getattr(model.loss, "correct", None)
    if correct is not None:
        return loss, correct, yb.shape[0]
    right, counted = self.targets.count_correct(output, yb) if self.targets.classifier \
        else (0, 0)
    return loss, right, counted


_loop = training._loop
_evaluate = training._evaluate


def _loop_in_scope(trainer: Any, history: Any) -> None:
    """The epochs run in the model's kernel scope (automatic mode: a large model's work
    runs compiled, however small each call)."""
    with K.model_scope(trainer.model.num_params):
        _loop(trainer, history)


def _evaluate_in_scope(model: Any, targets: Any, data: Any, batch_size: int) -> Any:
    with K.model_scope(model.num_params):
        return _evaluate(model, targets, data, batch_size)


def patch_trainer() -> None:
    training._Trainer._batches = _batches  # type: ignore[method-assign]
    training._Trainer._step_or_raise = _step_or_raise  # type: ignore[method-assign]
    training._loop = _loop_in_scope
    training._evaluate = _evaluate_in_scope


# -- inference ------------------------------------------------------------------------------


def predict_logits(model: Any, x: Any, batch_size: int = 1024) -> np.ndarray:
    with K.model_scope(model.num_params):
        return _predict_logits(model, x, batch_size)


def _predict_logits(model: Any, x: Any, batch_size: int) -> np.ndarray:
    x = model._input(x)
    if not K.all_finite(x):
        check_finite(x, "predict input")  # names the first bad entry
    n = x.shape[0]
    out = np.empty((n,) + model.output_shape(x.shape[1:]), dtype=model.dtype)
    *hidden, last = model.layers
    for start in range(0, n, batch_size):
        h = x[start:start + batch_size]
        for layer in hidden:
            h = layer.forward(h, training=False)
        if isinstance(last, Dense):
            block = out[start:start + batch_size]
            np.matmul(h, last.params["W"], out=block)
            if last.bias:
                K.bias_act(block, last.params["b"], "linear")
        else:
            out[start:start + batch_size] = last.forward(h, training=False)
    return out


def install(model: Any) -> FusedAdam:
    """Patch ``model`` and the trainer; returns the optimiser to train with."""
    fuse_model(model)
    patch_trainer()
    return FusedAdam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8)


__all__ = ["FusedAdam", "FusedCrossEntropy", "install", "predict_logits"]
