"""Conv2D's two column-matrix layouts, measured on the issue's CNN convolutions.

    python bench/conv_layouts.py [--threads 2] [--repeats 30] [--cpu-time]

For each convolution of the network (conv 1->32 on 28x28 images, input channels-first as
data comes; conv 32->64 on 13x13, input channels-last as the first conv's ReLU and
max-pool hand it on), at batch 128, float32, times a training forward and backward
(``backward_params`` for the first conv, whose input needs no gradient) with the column
matrix in each layout, interleaved, and prints the medians:

* ``rows``: ``col`` is ``(M, K)`` with ``k`` over ``(kh, kw, C)``; product ``col @ Wmat``;
* ``cols``: ``col`` is ``(K, M)`` with ``k`` over ``(C, kh, kw)``; product ``col.T @ Wmat``.

Both write the output as ``(M, C_out)`` (channels-last); they differ in how the column
matrix is copied from the input and in the shapes BLAS sees. ``Conv2D`` picks ``rows`` for
channels-last input and ``cols`` otherwise; this script is the measurement behind that.
With ``--cpu-time`` (needs ``--threads 1``) the thread's CPU time is used, which other
processes on a shared machine inflate less than wall time.
"""

from __future__ import annotations

import _common

_common.pin_threads_from_argv()

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from numnet.layers import Conv2D  # noqa: E402

CASES = [  # (name, C_in, C_out, size, channels-last input, first layer)
    ("conv1 1->32 28x28", 1, 32, 28, False, True),
    ("conv2 32->64 13x13", 32, 64, 13, True, False),
]


def images(n: int, c: int, size: int, last: bool, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).random((n, c, size, size), dtype=np.float32)
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2) if last else x


def step(layer: Conv2D, x: np.ndarray, g: np.ndarray, first: bool) -> Callable[[], None]:
    def run() -> None:
        layer.forward(x, training=True)
        if first:
            layer.backward_params(g)
        else:
            layer.backward(g)
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=_common.DEFAULT_THREADS)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--batch", type=int, default=_common.BATCH_SIZE)
    parser.add_argument("--cpu-time", action="store_true")
    args = parser.parse_args(argv)
    if args.cpu_time and args.threads != 1:
        raise SystemExit("--cpu-time needs --threads 1")
    clock = time.thread_time if args.cpu_time else time.perf_counter
    print(f"CPU: {_common.machine_info()['cpu']}, threads {args.threads}, batch {args.batch}, "
          f"{'CPU' if args.cpu_time else 'wall'} time, load {_common.load_avg()}")
    for name, c_in, c_out, size, last, first in CASES:
        x = images(args.batch, c_in, size, last, seed=0)
        runs = {}
        for layout in ("rows", "cols"):
            layer = Conv2D(c_in, c_out, 3, seed=0)
            layer._force_rows = layout == "rows"
            g = np.ones_like(layer.forward(x, training=True))
            runs[layout] = step(layer, x, g, first)
        samples: dict[str, list[float]] = {k: [] for k in runs}
        for run in runs.values():
            run()
        for _ in range(args.repeats):
            for layout, run in runs.items():
                start = clock()
                run()
                samples[layout].append(clock() - start)
        med = {k: 1e3 * statistics.median(v) for k, v in samples.items()}
        print(f"{name} (input {'channels-last' if last else 'channels-first'}): "
              f"rows {med['rows']:.2f} ms, cols {med['cols']:.2f} ms, "
              f"rows/cols {med['rows'] / med['cols']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
