"""``bench/profile_mlp.py`` on the kernel prototype (bench/_fast_prototype.py).

    python bench/profile_fast.py [profile_mlp.py's options]

The model of the profile is fused (Dense + ReLU, the loss, inference), its Adam is the
prototype's fused Adam and the trainer uses the fused step and gather; then profile_mlp's
table is printed as usual, so the two tables compare operation by operation.
"""

from __future__ import annotations

import _common

_common.pin_threads_from_argv()

import _fast_prototype  # noqa: E402
import peers  # noqa: E402
import profile_mlp  # noqa: E402

import numnet.optim  # noqa: E402

_build = peers.build_numnet


def build_fused(task: str, seed: int) -> object:
    model = _build(task, seed)
    _fast_prototype.fuse_model(model)
    return model


if __name__ == "__main__":
    _fast_prototype.patch_trainer()
    peers.build_numnet = build_fused
    numnet.optim.Adam = _fast_prototype.FusedAdam  # type: ignore[misc]
    profile_mlp.main()
