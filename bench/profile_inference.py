"""Where numnet's inference at batch 1000 spends its time, next to PyTorch's.

    python bench/profile_inference.py [--rounds 7] [--passes 5] [--threads 2]

The suite's inference task: class predictions for the 10,000 MNIST test images (here
random pixels of the same shape; the time does not depend on the values) with the
untrained MLP 784-256-128-10, in batches of 1000. numnet and torch run in alternating
processes (their thread pools would otherwise compete); within a process, variants are
interleaved. Figures are milliseconds per pass over the 10,000 images (median over the
rounds of the mean of ``--passes`` passes).

numnet, whole passes:

* ``predict``: ``model.predict(x, batch_size=1000)`` in automatic mode (compiled kernels:
  bias + ReLU in one pass after each product);
* ``predict numpy``: the same on the kernels' NumPy path (``set_fast_path(False)``).

numnet, the pieces of one pass (timed alone over the 10 batches): the input finiteness
check, the three products, the bias additions and ReLUs as separate NumPy passes (into a
new array, as before the fusion) and fused in place, the concatenation and the argmax.

torch: ``model(x)`` under ``inference_mode`` per batch with ``argmax`` and ``cat``, as in
bench/peers.py, and its pieces (``addmm`` = product with the bias, ``relu``).
"""

from __future__ import annotations

import _common

_common.pin_threads_from_argv()

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

N, BATCH = 10_000, _common.INFER_BATCH


def numnet_variants(x: np.ndarray) -> dict[str, Callable[[], Any]]:
    import peers

    from numnet import _kernels as K
    from numnet._checks import check_finite

    today = peers.build_numnet("mlp", 0)
    dense = [layer for layer in today.layers if hasattr(layer, "in_features")]
    (w1, b1), (w2, b2), (w3, b3) = [(d.params["W"], d.params["b"]) for d in dense]
    batches = [x[i:i + BATCH] for i in range(0, N, BATCH)]
    h1 = [b @ w1 for b in batches]
    a1 = [np.maximum(h, 0) for h in h1]
    h2 = [a @ w2 for a in a1]
    a2 = [np.maximum(h, 0) for h in h2]
    logits = [a @ w3 for a in a2]
    zero1, zero2 = np.zeros(256, np.float32), np.zeros(128, np.float32)
    out = np.empty((N, 10), np.float32)

    def numpy_path(fn: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            K.set_fast_path(False)
            try:
                return fn()
            finally:
                K.set_fast_path(None)
        return run

    return {
        "predict": lambda: today.predict(x, batch_size=BATCH),
        "predict numpy": numpy_path(lambda: today.predict(x, batch_size=BATCH)),
        "input check (check_finite: BLAS dot)": lambda: check_finite(x, "x"),
        "product 1 (x @ W1)": lambda: [np.matmul(b, w1, out=h) for b, h in zip(
            batches, h1, strict=True)],
        "product 2": lambda: [np.matmul(a, w2, out=h) for a, h in zip(a1, h2, strict=True)],
        "product 3": lambda: [np.matmul(a, w3, out=z) for a, z in zip(a2, logits,
                                                                    strict=True)],
        "bias 1+2+3 (+=)": lambda: _bias_today(h1, h2, logits, b1, b2, b3),
        "ReLU 1+2 unfused (new array)": lambda: [(np.maximum(h, zero1), np.maximum(g, zero2))
                                               for h, g in zip(h1, h2, strict=True)],
        "bias+ReLU 1+2 fused": lambda: [(K.bias_act(h, b1, "relu"), K.bias_act(g, b2, "relu"))
                                        for h, g in zip(h1, h2, strict=True)],
        "bias+ReLU 1+2 fused numpy": numpy_path(lambda: [
            (K.bias_act(h, b1, "relu"), K.bias_act(g, b2, "relu"))
            for h, g in zip(h1, h2, strict=True)]),
        "concatenate": lambda: np.concatenate(logits, axis=0),
        "last product into output": lambda: [np.matmul(a, w3, out=out[i * BATCH:(i + 1) *
                                                                     BATCH])
                                             for i, a in enumerate(a2)],
        "argmax": lambda: out.argmax(axis=1),
    }


def _bias_today(h1: list[np.ndarray], h2: list[np.ndarray], logits: list[np.ndarray],
                b1: np.ndarray, b2: np.ndarray, b3: np.ndarray) -> None:
    for h, g, z in zip(h1, h2, logits, strict=True):
        h += b1
        g += b2
        z += b3


def torch_variants(x: np.ndarray, threads: int) -> dict[str, Callable[[], Any]]:
    import peers
    import torch

    torch.set_num_threads(threads)
    model = peers.build_torch("mlp", 0).eval()
    xs = torch.from_numpy(x)
    lin1, _, lin2, _, lin3 = model
    h1 = torch.empty(BATCH, 256)
    batches = [xs[i:i + BATCH] for i in range(0, N, BATCH)]

    def predict() -> Any:
        with torch.inference_mode():
            return torch.cat([model(b).argmax(dim=1) for b in batches]).numpy()

    def addmm1() -> Any:
        with torch.inference_mode():
            return [torch.addmm(lin1.bias, b, lin1.weight.t(), out=h1) for b in batches]

    def mm1() -> Any:
        with torch.inference_mode():
            return [torch.mm(b, lin1.weight.t(), out=h1) for b in batches]

    def relu1() -> Any:
        with torch.inference_mode():
            return [torch.relu(h1) for _ in batches]

    return {"torch predict": predict, "torch addmm 1 (product + bias)": addmm1,
            "torch mm 1 (product alone)": mm1, "torch relu 1 (new tensor)": relu1}


def child(side: str, passes: int, threads: int) -> dict[str, float]:
    x = np.random.default_rng(0).random((N, 784), dtype=np.float32)
    variants = numnet_variants(x) if side == "numnet" else torch_variants(x, threads)
    for fn in variants.values():
        fn()
    times = {}
    for name, fn in variants.items():
        start = time.perf_counter()
        for _ in range(passes):
            fn()
        times[name] = (time.perf_counter() - start) / passes * 1000
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--threads", type=int, default=_common.DEFAULT_THREADS)
    parser.add_argument("--wait-idle", type=float, default=0.0)
    parser.add_argument("--side", choices=("numnet", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side:
        print(json.dumps(child(args.side, args.passes, args.threads)))
        return
    results: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for side in ("numnet", "torch"):
            if args.wait_idle:
                _common.wait_until_idle(args.wait_idle)
            out = subprocess.run([sys.executable, __file__, "--side", side, "--passes",
                                  str(args.passes), "--threads", str(args.threads)],
                                 capture_output=True, text=True, check=True)
            for name, value in json.loads(out.stdout.strip().splitlines()[-1]).items():
                results.setdefault(name, []).append(value)
    info = _common.machine_info()
    print(f"CPU: {info['cpu']} ({info['cpu_count']} CPUs); {args.threads} threads; "
          f"{args.rounds} rounds; ms per pass over {N:,} images at batch {BATCH} "
          f"(median, min); load {_common.load_avg()}")
    for name, values in results.items():
        med = statistics.median(values)
        rate = f"  {N / med:7.0f}k img/s" if "predict" in name else ""
        print(f"  {name:34s} {med:7.2f}  ({min(values):.2f}){rate}")


if __name__ == "__main__":
    main()
