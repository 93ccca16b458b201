r"""Reference versions: short, slow, formula-for-formula code to read next to the maths.

The fast code of numnet works in place on one flat vector, folds constants and reuses
buffers; that is why it is fast, and also why it cannot be read line by line against a
formula. Each function here is the textbook formula, one line per equation, on fresh arrays.
The tests hold the fast code equal to these (float64, to 1e-12, over several steps), so
reading this module is reading what the fast code computes.

* :class:`numnet.optim.SGD`: :func:`sgd_step` (momentum, Nesterov);
* :class:`numnet.optim.AdaGrad`: :func:`adagrad_step`;
* :class:`numnet.optim.RMSProp`: :func:`rmsprop_step` (momentum, centred);
* :class:`numnet.optim.Adam` and :class:`numnet.optim.AdamW`: :func:`adam_step`
  (``decoupled=True`` for AdamW);
* momentum, Adam's moments and batch norm's running statistics: :func:`ema`, exponential
  moving averages and their bias correction;
* :class:`numnet.BatchNorm1d`: :func:`batchnorm_forward` and :func:`batchnorm_backward`,
  staged, node by node;
* :func:`numnet.training.fit`: :func:`fit`, the loop without checks or callbacks.

Every optimiser step takes the parameters ``p`` and the gradient ``g`` (arrays of one
shape), a ``state`` dict it reads and updates (empty before the first step) and the
hyper-parameters, and returns the new parameters. ``decay`` is 1 where weight decay applies
and 0 elsewhere (``model.decay_mask``; a plain 1.0 decays everything).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from numnet.training.options import generator

if TYPE_CHECKING:
    from numnet.model import Sequential

Array = np.ndarray
#: an update rule as :func:`fit` takes it: ``update(p, g, state) -> new p``
Update = Callable[[Array, Array, dict[str, Any]], Array]


# -- optimisers ---------------------------------------------------------------------------
def sgd_step(p: Array, g: Array, state: dict[str, Any], lr: float, momentum: float = 0.0,
             nesterov: bool = False, weight_decay: float = 0.0,
             decay: Array | float = 1.0) -> Array:
    """Stochastic gradient descent, with heavy-ball or Nesterov momentum."""
    g = g + weight_decay * decay * p                 # L2 penalty, through the gradient
    if momentum == 0:
        return p - lr * g                            # p <- p - lr g
    if "buf" not in state:
        buf = g                                      # the first step: buf = g
    else:
        buf = momentum * state["buf"] + g            # buf <- mu buf + g
    state["buf"] = buf
    direction = g + momentum * buf if nesterov else buf
    return p - lr * direction


def adagrad_step(p: Array, g: Array, state: dict[str, Any], lr: float, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, decay: Array | float = 1.0) -> Array:
    """AdaGrad: divide by the root of the sum of all past squared gradients."""
    t = state.get("t", 0) + 1                        # step count, from 1
    g = g + weight_decay * decay * p
    clr = lr / (1 + (t - 1) * lr_decay)              # the decayed learning rate
    s = state.get("sum", initial_accumulator_value) + g * g   # s <- s + g^2
    state.update(t=t, sum=s)
    return p - clr * g / (np.sqrt(s) + eps)


def rmsprop_step(p: Array, g: Array, state: dict[str, Any], lr: float, alpha: float = 0.99,
                 eps: float = 1e-8, momentum: float = 0.0, centered: bool = False,
                 weight_decay: float = 0.0, decay: Array | float = 1.0) -> Array:
    """RMSProp: divide by the root of a moving average of squared gradients."""
    g = g + weight_decay * decay * p
    v = alpha * state.get("v", 0.0) + (1 - alpha) * g * g     # v <- a v + (1 - a) g^2
    state["v"] = v
    if centered:                                     # subtract the squared mean gradient
        mean = alpha * state.get("mean", 0.0) + (1 - alpha) * g
        state["mean"] = mean
        den = np.sqrt(v - mean * mean) + eps
    else:
        den = np.sqrt(v) + eps
    if momentum == 0:
        return p - lr * g / den
    buf = momentum * state.get("buf", 0.0) + g / den
    state["buf"] = buf
    return p - lr * buf


def adam_step(p: Array, g: Array, state: dict[str, Any], lr: float = 1e-3,
              betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
              weight_decay: float = 0.0, decoupled: bool = False,
              decay: Array | float = 1.0) -> Array:
    """Adam, and AdamW with ``decoupled=True`` (the weights shrink outside the update)."""
    beta1, beta2 = betas
    t = state.get("t", 0) + 1
    if decoupled:
        p = p - lr * weight_decay * decay * p        # AdamW: p <- p (1 - lr wd)
    else:
        g = g + weight_decay * decay * p             # Adam: L2 through the gradient
    m = beta1 * state.get("m", 0.0) + (1 - beta1) * g        # first moment
    v = beta2 * state.get("v", 0.0) + (1 - beta2) * g * g    # second moment
    state.update(t=t, m=m, v=v)
    m_hat = m / (1 - beta1 ** t)                     # bias corrections: m and v start at 0
    v_hat = v / (1 - beta2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


# -- moving averages ----------------------------------------------------------------------
def ema(values: Any, beta: float, bias_correction: bool = False,
        start: float = 0.0) -> Array:
    """The exponential moving average ``v_t = beta v_(t-1) + (1 - beta) x_t`` of a series.

    ``v_0 = start``. With ``bias_correction`` each ``v_t`` is divided by ``1 - beta^t``:
    starting from 0 pulls the early averages towards 0 (they hold only ``1 - beta^t`` of the
    weight), and the division undoes exactly that (for ``start = 0``). Momentum is this
    average of gradients, Adam's ``m`` and ``v`` are two of them (corrected), and batch
    norm's running statistics are one with ``beta = 1 - momentum`` (not corrected: they
    start at 0 and 1 instead).
    """
    out = []
    v = start
    for t, x in enumerate(np.asarray(values, dtype=np.float64), start=1):
        v = beta * v + (1 - beta) * x
        out.append(v / (1 - beta ** t) if bias_correction else v)
    return np.array(out)


# -- batch normalisation, node by node ----------------------------------------------------
def batchnorm_forward(x: Array, gamma: Array, beta: Array,
                      eps: float = 1e-5) -> tuple[Array, dict[str, Array]]:
    """Batch normalisation of ``(N, C)`` inputs in training mode, one graph node per line.

    Returns the output and the cache of every node's inputs for
    :func:`batchnorm_backward`.
    """
    mu = x.mean(axis=0)                    # 1. mean of each feature over the batch
    xmu = x - mu                           # 2. centre
    sq = xmu ** 2                          # 3. square
    var = sq.mean(axis=0)                  # 4. (biased) variance
    std = np.sqrt(var + eps)               # 5. standard deviation
    inv = 1 / std                          # 6. its inverse
    xhat = xmu * inv                       # 7. normalise
    out = gamma * xhat + beta              # 8. scale and shift
    return out, {"xmu": xmu, "sq": sq, "std": std, "inv": inv, "xhat": xhat, "gamma": gamma}


def batchnorm_backward(dout: Array, cache: dict[str, Array]) -> tuple[Array, Array, Array]:
    """Back-propagate through the nodes of :func:`batchnorm_forward`, last node first.

    Each step applies the chain rule to one node: the gradient of its output times the
    node's local derivative; where a value feeds two nodes (``xmu`` feeds 3 and 7, ``x``
    feeds 1 and 2) the two gradients add up. Returns ``(dx, dgamma, dbeta)``. The closed
    form :class:`numnet.BatchNorm1d` uses collapses these steps into one line.
    """
    xmu, std, inv, xhat, gamma = (cache[k] for k in ("xmu", "std", "inv", "xhat", "gamma"))
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)               # 8. out = gamma * xhat + beta
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    dinv = (dxhat * xmu).sum(axis=0)       # 7. xhat = xmu * inv
    dxmu_direct = dxhat * inv
    dstd = -dinv / std ** 2                # 6. inv = 1 / std
    dvar = dstd / (2 * std)                # 5. std = sqrt(var + eps)
    dsq = np.ones_like(xmu) * dvar / n     # 4. var = mean(sq)
    dxmu_square = 2 * xmu * dsq            # 3. sq = xmu ** 2
    dxmu = dxmu_direct + dxmu_square       #    xmu feeds nodes 3 and 7: add
    dx_direct = dxmu                       # 2. xmu = x - mu
    dmu = -dxmu.sum(axis=0)
    dx_mean = np.ones_like(xmu) * dmu / n  # 1. mu = mean(x)
    return dx_direct + dx_mean, dgamma, dbeta   # x feeds nodes 1 and 2: add


# -- the training loop --------------------------------------------------------------------
def fit(model: Sequential, X: Array, y: Array, epochs: int, batch_size: int,
        update: Update, seed: int) -> list[float]:
    """Mini-batch training as :func:`numnet.training.fit` does it, without its checks,
    callbacks or divergence guard; returns the loss of each epoch.

    ``X`` and ``y`` must be as the model and its loss take them (the model's dtype; labels
    as integers), and ``update(p, g, state)`` an update rule such as
    ``functools.partial(adam_step, lr=1e-3, decay=model.decay_mask)``. The samples are
    shuffled by the generator ``fit`` makes from ``seed``, so the same seed visits the
    batches in the same order (a last batch too small for batch norm is not merged here).
    """
    rng = generator(model, seed)           # fit's shuffling generator for this seed
    loss_fn = model._need_loss()
    state: dict[str, Any] = {}
    history = []
    n = X.shape[0]
    for _epoch in range(epochs):
        model.train()
        order = rng.permutation(n)         # a fresh order every epoch
        total = 0.0
        for start in range(0, n, batch_size):
            batch = order[start:start + batch_size]
            xb, yb = X[batch], y[batch]
            output = model.forward(xb, training=True)               # forward
            loss = loss_fn(output, yb)                              # loss
            model.backward(loss_fn.backward(), input_grad=False)    # backward: fills grads
            if model.l2:
                loss += model.add_l2_gradient()                     # L2 term and gradient
            new = update(model.flat_params, model.flat_grads, state)   # step
            model.flat_params[...] = new           # in place: the layers hold views of it
            total += loss * len(batch)
        history.append(total / n)
    model.eval()
    return history
