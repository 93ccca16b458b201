"""The issue's CNN in numnet and in PyTorch, from the same initial weights.

conv(1->c1, 3x3)-ReLU-maxpool2-conv(c1->c2, 3x3)-ReLU-maxpool2-Flatten-Dense(c2*5*5, h)-
ReLU-Dense(h, 10) on 28x28 images, with ``(c1, c2, h) = (32, 64, 128)`` by default.

numnet's convolutions are given ``init="he_normal"`` (what a ReLU after them asks for)
and its Dense layers get the model's defaults (He-normal before ReLU, Glorot-uniform for
the last); biases start at 0. The PyTorch network is given a **copy** of those weights
(conv weights have the same layout; a Dense weight ``(in, out)`` is a Linear weight
``(out, in)`` transposed), so both start at the same point.

The recipe, the ``cnn`` preset's of ``numnet train``: Adam at a constant lr 1e-3, batch
128, and an exponential moving average of the weights over the steps, which the test
accuracy is measured with (``numnet.WeightAveraging(DECAY)``; in PyTorch
:class:`TorchAverage`, the same formula over the same steps). It was chosen on a
validation split (see ``numnet/cli/_cnn.py``).

Import after :func:`_common.pin_threads_from_argv` (this imports numpy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import _common
import numpy as np

from numnet import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential, WeightAveraging
from numnet.optim import Adam

WIDTHS = (32, 64, 128)


#: the decay of the weight average (the ``cnn`` preset's ``--weight-averaging``)
DECAY = 0.999


def averaging() -> WeightAveraging:
    """numnet's weight average of the recipe, for ``fit(callbacks=[...])``."""
    return WeightAveraging(DECAY)


class TorchAverage:
    """:class:`numnet.WeightAveraging` for a PyTorch network: after step ``t`` (from 1)
    ``average <- average + (1 - d_t) * (weights - average)``, ``d_t = min(DECAY, (1 + t) /
    (10 + t))``, from the initial weights; :meth:`swap` exchanges weights and average."""

    def __init__(self, net: Any) -> None:
        import torch  # noqa: PLC0415 - optional: only the comparisons need PyTorch

        self.params = list(net.parameters())
        with torch.no_grad():
            self.average = [p.detach().clone() for p in self.params]
        self.steps = 0

    def update(self) -> None:
        import torch  # noqa: PLC0415

        self.steps += 1
        weight = 1 - min(DECAY, (1 + self.steps) / (10 + self.steps))
        with torch.no_grad():
            torch._foreach_lerp_(self.average, self.params, weight)

    def swap(self) -> None:
        import torch  # noqa: PLC0415

        with torch.no_grad():
            for p, a in zip(self.params, self.average, strict=True):
                kept = p.detach().clone()
                p.copy_(a)
                a.copy_(kept)


def numnet_cnn(seed: int, widths: tuple[int, int, int] = WIDTHS, dtype: str = "float32"
               ) -> Sequential:
    c1, c2, hidden = widths
    return Sequential([
        Conv2D(1, c1, 3, init="he_normal"), ReLU(), MaxPool2D(2),
        Conv2D(c1, c2, 3, init="he_normal"), ReLU(), MaxPool2D(2),
        Flatten(), Dense(c2 * 5 * 5, hidden), ReLU(), Dense(hidden, 10),
    ], loss="cross_entropy", input_shape=(1, 28, 28), dtype=dtype, seed=seed)


def torch_cnn(model: Sequential) -> Any:
    """The same network in PyTorch, with a copy of ``model``'s current weights."""
    import torch  # noqa: PLC0415 - optional: only the comparisons need PyTorch
    from torch import nn  # noqa: PLC0415

    layers: list[nn.Module] = []
    for layer in model.layers:
        if isinstance(layer, Conv2D):
            conv = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size)
            assert conv.bias is not None
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(np.array(layer.params["W"])))
                conv.bias.copy_(torch.from_numpy(np.array(layer.params["b"])))
            layers.append(conv)
        elif isinstance(layer, Dense):
            linear = nn.Linear(layer.in_features, layer.out_features)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.array(layer.params["W"].T)))
                linear.bias.copy_(torch.from_numpy(np.array(layer.params["b"])))
            layers.append(linear)
        elif isinstance(layer, ReLU):
            layers.append(nn.ReLU())
        elif isinstance(layer, MaxPool2D):
            layers.append(nn.MaxPool2d(layer.kernel_size, layer.stride))
        elif isinstance(layer, Flatten):
            layers.append(nn.Flatten())
        else:
            raise TypeError(f"no PyTorch counterpart for {layer!r}")
    return nn.Sequential(*layers)


def mnist_images(path: str, limit: int | None = None) -> tuple[np.ndarray, ...]:
    """``(x_train, y_train, x_test, y_test)``: float32 images (N, 1, 28, 28) in [0, 1]."""
    from numnet.data import load_mnist  # noqa: PLC0415 - after the thread pinning

    (x_tr, y_tr), (x_te, y_te) = load_mnist(path, scale=True, download=False)
    x_tr, x_te = x_tr[:limit, None], x_te[:, None]
    return (np.ascontiguousarray(x_tr), np.asarray(y_tr[:limit], dtype=np.int64),
            np.ascontiguousarray(x_te), np.asarray(y_te, dtype=np.int64))


def numnet_step(model: Sequential, x: np.ndarray, y: np.ndarray) -> Callable[[], None]:
    """One training step of ``model`` on ``(x, y)``: forward, loss, backward, Adam."""
    model.train()
    optimizer = Adam(lr=_common.LR, betas=_common.BETAS, eps=_common.EPS)

    def step() -> None:
        model.loss_and_grad(x, y)
        optimizer.step(model)

    return step


def torch_step(net: Any, x: np.ndarray, y: np.ndarray) -> Callable[[], None]:
    """PyTorch's step: ``zero_grad``, forward, loss, ``backward``, Adam, ``.item()``."""
    import torch  # noqa: PLC0415 - optional

    optimizer = torch.optim.Adam(net.parameters(), lr=_common.LR, betas=_common.BETAS,
                                 eps=_common.EPS)
    criterion = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(net(xt), yt)
        loss.backward()
        optimizer.step()
        loss.item()

    return step
