"""Epoch by epoch, in one process: numnet on its compiled path, on its NumPy path, and
PyTorch, in turn.

    python bench/interleaved_epochs.py [--task mlp|mlp_bn] [--rounds 8] [--threads 2]
                                       [--variants compiled,numpy,torch]

The suite runs each framework in its own process; on a shared machine whose load changes
from minute to minute, those runs see different machines. Here one
process trains all variants one epoch at a time, round after round, so the epochs compared
in a round are seconds apart: the paired ratio of each round (variant epoch / torch epoch
of the same round) cancels most of the drift, and the median over rounds is reported. A
round during which other processes kept more than ``--max-other`` CPUs busy (measured from
/proc/stat, bench/_common.OtherLoad) is discarded, and ``--wait-idle`` waits for quiet
before each round.

The models and settings are the suite's (bench/peers.py; torch starts from numnet's
initial weights). ``compiled`` is numnet in automatic mode (the MLP is large enough for
the compiled kernels, loaded before the first timed epoch); ``numpy`` the same model with
``set_fast_path(False)``. torch's OpenMP workers and numba never run at the same time
(numba kernels use one thread).
"""

from __future__ import annotations

import _common

_common.pin_threads_from_argv()

import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402


def numnet_epoch(task: str, x: np.ndarray, y: np.ndarray, variant: str,
                 seed: int) -> Callable[[int], float]:
    import peers

    from numnet import _kernels as K
    from numnet.optim import Adam

    model = peers.build_numnet(task, seed)
    optimizer: Any = Adam(lr=_common.LR, betas=_common.BETAS, eps=_common.EPS)
    fast = {"compiled": None, "numpy": False}[variant]

    def epoch(round_: int) -> float:
        K.set_fast_path(fast)
        history = model.fit(x, y, epochs=1, batch_size=_common.BATCH_SIZE,
                            optimizer=optimizer, shuffle=True, verbose=0,
                            seed=seed + round_)
        K.set_fast_path(None)
        return float(history.history["seconds"][0])

    return epoch


def torch_epoch(task: str, x: np.ndarray, y: np.ndarray, seed: int,
                threads: int) -> Callable[[int], float]:
    import peers
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = peers.build_torch(task, seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=_common.LR, betas=_common.BETAS,
                                 eps=_common.EPS)
    criterion = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    generator = torch.Generator().manual_seed(seed)

    def epoch(round_: int) -> float:
        return _common.torch_epoch(model, optimizer, criterion, xt, yt, generator)[0]

    return epoch


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=("mlp", "mlp_bn"), default="mlp")
    parser.add_argument("--rounds", type=int, default=8, help="clean rounds to collect")
    parser.add_argument("--max-attempts", type=int, default=40)
    parser.add_argument("--max-other", type=float, default=0.25,
                        help="discard a round in which other processes kept more than this "
                             "many CPUs busy on average")
    parser.add_argument("--wait-idle", type=float, default=0.0,
                        help="before each round, wait up to this many seconds for quiet")
    parser.add_argument("--variants", default="compiled,numpy,torch")
    parser.add_argument("--threads", type=int, default=_common.DEFAULT_THREADS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=os.environ.get("NUMNET_MNIST_DIR"))
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    from numnet import _kernels as K

    x, y, _, _, what = _common.load_data(args.data, None, args.limit)
    variants = args.variants.split(",")
    epochs = {v: torch_epoch(args.task, x, y, args.seed, args.threads) if v == "torch"
              else numnet_epoch(args.task, x, y, v, args.seed) for v in variants}
    for v in variants:  # warm-up epoch on a slice: numba loaded, caches warm
        if v != "torch":
            numnet_epoch(args.task, x[:512], y[:512], v, args.seed)(0)
    times: dict[str, list[float]] = {v: [] for v in variants}
    every: dict[str, list[float]] = {v: [] for v in variants}  # discarded rounds too
    round_ = 0
    for attempt in range(args.max_attempts):
        if len(times[variants[0]]) >= args.rounds:
            break
        if args.wait_idle:
            _common.wait_until_idle(args.wait_idle)
        meter = _common.OtherLoad().start()
        got = {v: epochs[v](attempt) for v in variants}
        other = meter.stop()
        clean = other is None or other <= args.max_other
        for v, t in got.items():
            every[v].append(t)
        print(f"attempt {attempt}: " + ", ".join(f"{v} {t:.3f}" for v, t in got.items())
              + f"; other CPUs busy {other if other is None else round(other, 2)}"
              + ("" if clean else " - discarded"), flush=True)
        if clean:
            round_ += 1
            for v, t in got.items():
                times[v].append(t)
    if not times[variants[0]]:
        print("no round ran on a quiet enough machine: the figures below use every round, "
              "disturbed ones included (raise --max-attempts or --max-other)")
        times, round_ = every, len(every[variants[0]])
    info = _common.machine_info()
    K.set_fast_path(None)
    print(f"\n{args.task} on {what}: CPU {info['cpu']} ({info['cpu_count']} CPUs), "
          f"{args.threads} threads, kernels '{K.fast_path()}' (1 kernel thread), load "
          f"{_common.load_avg()}; s/epoch median (min) over {round_} clean rounds, and the "
          f"median of the per-round ratios")
    ref = times.get("torch")
    for v in variants:
        line = f"  {v:11s} {statistics.median(times[v]):.3f} ({min(times[v]):.3f})"
        if ref and v != "torch":
            ratios = [a / b for a, b in zip(times[v], ref, strict=True)]
            line += f"  /torch {statistics.median(ratios):.2f}"
        if "numpy" in times and v != "numpy":
            ratios = [a / b for a, b in zip(times[v], times["numpy"], strict=True)]
            line += f"  /numpy {statistics.median(ratios):.2f}"
        print(line)


if __name__ == "__main__":
    main()
