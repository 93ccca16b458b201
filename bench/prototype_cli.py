"""``numnet ...`` with the kernel prototype patched in (bench/_fast_prototype.py).

    python bench/prototype_cli.py train --out /tmp/m.npz --plot off

Every ``Sequential.fit`` first fuses the model (Dense + ReLU, the loss, inference) and
turns an Adam optimiser into the prototype's fused Adam with the same hyper-parameters;
then the command runs as ``python -m numnet`` would. Used to time the README's main
command with and without the compiled path, cold and warm (bench/compile_cost.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import _fast_prototype  # noqa: E402

from numnet import cli  # noqa: E402
from numnet.model import Sequential  # noqa: E402
from numnet.optim import Adam  # noqa: E402

_fit = Sequential.fit


def fit(self: Sequential, *args: Any, **kwargs: Any) -> Any:
    if not getattr(self, "_fused", False):
        _fast_prototype.fuse_model(self)
        self._fused = True  # type: ignore[attr-defined]
    opt = kwargs.get("optimizer")
    if type(opt) is Adam:
        fused = _fast_prototype.FusedAdam(lr=opt.lr, betas=opt.betas, eps=opt.eps,
                                          weight_decay=opt.weight_decay,
                                          decay_all=opt.decay_all)
        kwargs["optimizer"] = fused
    return _fit(self, *args, **kwargs)


if __name__ == "__main__":
    _fast_prototype.patch_trainer()
    Sequential.fit = fit  # type: ignore[method-assign]
    sys.exit(cli.main(sys.argv[1:]))
