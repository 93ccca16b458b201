"""Do two threads pay for the element-wise kernels, next to OpenBLAS's own threads?

    python bench/thread_study.py [--rounds 7] [--calls 200] [--layers omp,workqueue,omp-passive]

On a 2-core machine the element-wise work of a training step (the Adam update above all)
could run on both cores, but OpenBLAS's worker thread spin-waits for a while after every
matrix product, and numba's OpenMP workers spin after every parallel region: each may take
the core the other needs. This measures, per numba threading layer (each in its own
process, processes alternated over the rounds):

* ``adam 1t`` / ``adam 2t``: the fused Adam update of the benchmark MLP's 235,146 float32
  parameters alone, on one thread or split over two (``prange``); ``adam numpy``: the
  NumPy kernel; ``adam numpy 2 py-threads``: the NumPy kernel on each half of the
  vectors, one half on a second Python thread (NumPy releases the GIL);
* ``step ...``: what a training step does - the 8 matrix products of one batch of 128
  (``bench/gemm_floor.py``'s products, OpenBLAS with 2 threads) followed by the update -
  with the update on 1 or 2 numba threads, or the NumPy reference update;
* ``step blas1 ...``: the same with OpenBLAS limited to 1 thread (threadpoolctl);
* ``gemm only``: the products alone.

Each figure is the median over the rounds of the mean time per call over ``--calls`` calls,
in microseconds. Paired: in every round each variant runs once, in turn.
"""

from __future__ import annotations

import _common

_common.pin_threads_from_argv()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

N_PARAMS = 235_146
LAYERS = {
    "omp": {"NUMBA_THREADING_LAYER": "omp"},
    "workqueue": {"NUMBA_THREADING_LAYER": "workqueue"},
    "omp-passive": {"NUMBA_THREADING_LAYER": "omp", "OMP_WAIT_POLICY": "PASSIVE"},
}


def gemm_batch(rng: np.random.Generator) -> Callable[[], None]:
    """The 8 products of one training batch of the MLP (preallocated, float32)."""
    d0, d1, d2, d3 = _common.SIZES
    b = _common.BATCH_SIZE

    def r(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    x, w1, w2, w3 = r(b, d0), r(d0, d1), r(d1, d2), r(d2, d3)
    h1, h2, z, g1, g2, g3 = r(b, d1), r(b, d2), r(b, d3), r(b, d1), r(b, d2), r(b, d3)
    dw1, dw2, dw3 = np.empty_like(w1), np.empty_like(w2), np.empty_like(w3)

    def run() -> None:
        np.matmul(x, w1, out=h1)
        np.matmul(h1, w2, out=h2)
        np.matmul(h2, w3, out=z)
        np.matmul(h2.T, g3, out=dw3)
        np.matmul(g3, w3.T, out=g2)
        np.matmul(h1.T, g2, out=dw2)
        np.matmul(g2, w2.T, out=g1)
        np.matmul(x.T, g1, out=dw1)

    return run


def child(calls: int, rounds: int) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    from numnet import _kernels as K
    from numnet._kernels import numba_kernels as NK

    rng = np.random.default_rng(0)
    p = rng.standard_normal(N_PARAMS).astype(np.float32)
    g = (rng.standard_normal(N_PARAMS) * 1e-3).astype(np.float32)
    m, v, backup = np.zeros_like(p), np.zeros_like(p), np.empty_like(p)
    work: list[np.ndarray] = []
    gemm = gemm_batch(rng)

    def adam(threads: int, path: str = "numba") -> Callable[[], None]:
        def run() -> None:
            K.set_fast_path(path == "numba")
            if path == "numba":
                NK.set_threads(threads)
            K.adam_step(p, g, m, v, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, step=10,
                        backup=backup, work=work)
        return run

    pool = ThreadPoolExecutor(max_workers=1)
    half = N_PARAMS // 2 // 16 * 16
    halves: list[tuple[slice, list[np.ndarray]]] = [(slice(0, half), []), (slice(half, None), [])]

    def numpy_two_threads() -> None:
        """The NumPy kernel on each half, one half on a worker thread (NumPy drops the GIL)."""
        K.set_fast_path(False)

        def part(entries: slice, scratch: list[np.ndarray]) -> bool:
            return K.adam_step(p[entries], g[entries], m[entries], v[entries], lr=1e-3,
                               betas=(0.9, 0.999), eps=1e-8, step=10,
                               backup=backup[entries], work=scratch)

        other = pool.submit(part, *halves[1])
        part(*halves[0])
        other.result()

    def then(*fns: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            for fn in fns:
                fn()
        return run

    variants: dict[str, tuple[Callable[[], None], int | None]] = {
        "adam 1t": (adam(1), None),
        "adam 2t": (adam(2), None),
        "adam numpy": (adam(1, "numpy"), None),
        "adam numpy 2 py-threads": (numpy_two_threads, None),
        "gemm only": (gemm, None),
        "step 1t": (then(gemm, adam(1)), None),
        "step 2t": (then(gemm, adam(2)), None),
        "step numpy": (then(gemm, adam(1, "numpy")), None),
        "step numpy 2 py-threads": (then(gemm, numpy_two_threads), None),
        "step blas1 1t": (then(gemm, adam(1)), 1),
        "step blas1 2t": (then(gemm, adam(2)), 1),
        "gemm blas1": (gemm, 1),
    }
    for fn, _ in variants.values():  # compile, warm up
        for _ in range(3):
            fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (fn, blas) in variants.items():
            with threadpool_limits(limits=blas, user_api="blas"):
                start = time.perf_counter()
                for _ in range(calls):
                    fn()
                times[name].append((time.perf_counter() - start) / calls * 1e6)
    import numba

    return {"layer": numba.threading_layer(), "times": times}  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--layers", default=",".join(LAYERS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--idle-wait", type=float, default=60.0,
                        help="seconds to wait, before each process, for other load to stop")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.calls, 1)))
        return
    layers = args.layers.split(",")
    results: dict[str, dict[str, list[float]]] = {name: {} for name in layers}
    for _ in range(args.rounds):
        for layer in layers:
            _common.wait_until_idle(args.idle_wait)
            env = {**os.environ, **LAYERS[layer]}
            out = subprocess.run([sys.executable, __file__, "--child", "--calls",
                                  str(args.calls), "--threads", str(args.threads)],
                                 capture_output=True, text=True, env=env, check=True)
            got = json.loads(out.stdout.strip().splitlines()[-1])
            for name, values in got["times"].items():
                results[layer].setdefault(name, []).extend(values)
    info = _common.machine_info()
    print(f"numnet kernels: numba; CPU: {info['cpu']} ({info['cpu_count']} CPUs); OpenBLAS threads "
          f"{args.threads}; {args.rounds} rounds x {args.calls} calls; us per call, median "
          f"(min)")
    names = list(next(iter(results.values())))
    header = ["variant"] + layers
    rows = [header] + [[name] + [f"{statistics.median(results[layer][name]):.0f} "
                                 f"({min(results[layer][name]):.0f})" for layer in layers]
                       for name in names]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))


if __name__ == "__main__":
    main()
