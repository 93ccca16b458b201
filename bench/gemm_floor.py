"""The GEMM floor: the matrix products alone of one training epoch of the MLP.

For the MLP 784-256-128-10 at batch 128 (``n // 128`` full batches and one smaller last
batch, as a training epoch), every batch needs these products (``x`` the input batch,
``h1, h2`` the hidden activations, ``g3, g2, g1`` the gradients at the three layers'
outputs)::

    forward            h1 = x  @ W1      (128x784 @ 784x256)
                       h2 = h1 @ W2      (128x256 @ 256x128)
                       z  = h2 @ W3      (128x128 @ 128x10)
    weight gradients   dW3 = h2^T g3     (128x128^T @ 128x10)
                       dW2 = h1^T g2
                       dW1 = x^T  g1     (128x784^T @ 128x256)
    input gradients    dh2 = g3 W3^T     (128x10 @ 10x128)
                       dh1 = g2 W2^T     (128x128 @ 128x256)
    (not needed)       dx  = g1 W1^T     (128x256 @ 256x784: the first layer's input
                                          gradient, which no one uses)

* **floor_8** - the 8 needed products (forward, weight gradients, input gradients): the
  time any implementation of this training step on this BLAS must spend; the issue's
  target is ``numnet epoch <= 1.3 x floor_8``.
* **floor_6** - forward + weight gradients only (a lower bound that ignores the input
  gradients).
* **with_dx_9** - floor_8 plus the unneeded ``dx`` product, i.e. what an implementation
  that always returns the first layer's input gradient computes.

Each product is ``np.matmul(a, b, out=preallocated)`` in float32 on fixed, preallocated
buffers (transposes are views, so BLAS gets transpose flags, never copies): the most
favourable case, with no batch gathering, bias, activation or optimiser work at all.

The CNN (``--task cnn``): the issue's network, conv(1->32, 3x3)-ReLU-maxpool2-conv(32->64,
3x3)-ReLU-maxpool2-Flatten-Dense(1600, 128)-ReLU-Dense(128, 10) at batch ``b``, with the
convolutions as matrix products over their column matrices (``M1 = b * 26 * 26`` and
``M2 = b * 11 * 11`` rows, ``K + 1`` columns with the bias, as numnet builds them)::

    forward            conv1  col1 @ W1      (M1 x 10  @ 10 x 32)
                       conv2  col2 @ W2      (M2 x 289 @ 289 x 64)
                       dense1 f @ W3         (b x 1600 @ 1600 x 128)
                       dense2 h @ W4         (b x 128  @ 128 x 10)
    weight gradients   the transposed products: col1^T g1, col2^T g2, f^T g3, h^T g4
    input gradients    g4 W4^T, g3 W3^T, and g2 W2^T (M2 x 64 @ 64 x 288: conv2's column
                       gradient, one product; numnet makes it one per kernel offset)
    (not needed)       g1 W1^T (M1 x 32 @ 32 x 9): the first conv's input gradient

* **floor** - the 11 needed products; **floor_fwd_wgrad** - forward and weight gradients
  (8); **with_dx** - the 12 with the unneeded one. Only the products: no im2col copies,
  col2im additions, pooling, activations or optimiser, so no implementation of this
  network built on these products can be faster on this BLAS. Each convolution's
  products are timed with its column matrix in both layouts, ``(M, K)`` and ``(K, M)``
  (OpenBLAS is ten times slower at ``col^T g`` for conv1's ``(M, 10)`` layout), and the
  faster counts. They are timed on ``--sample-batches`` full batches and scaled to the
  epoch (a product's time is linear in its rows), which keeps a floor run short.

Run on its own (``python bench/gemm_floor.py [--task mlp|cnn] [--n 60000] [--repeats 5]
[--threads 2] [--json]``) or import :func:`measure` / :func:`measure_cnn`.
"""

from __future__ import annotations

import _common

_common.pin_threads_from_argv()

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

#: product name -> (group, description); the groups decide which floor a product counts in
PRODUCTS = {
    "fwd1 x@W1": ("forward", "x @ W1"),
    "fwd2 h1@W2": ("forward", "h1 @ W2"),
    "fwd3 h2@W3": ("forward", "h2 @ W3"),
    "dW3 h2T@g3": ("weight_grad", "h2^T @ g3"),
    "dh2 g3@W3T": ("input_grad", "g3 @ W3^T"),
    "dW2 h1T@g2": ("weight_grad", "h1^T @ g2"),
    "dh1 g2@W2T": ("input_grad", "g2 @ W2^T"),
    "dW1 xT@g1": ("weight_grad", "x^T @ g1"),
    "dx g1@W1T": ("unneeded", "g1 @ W1^T (first layer's input gradient: not needed)"),
}
FLOORS = {
    "floor_8": ("forward", "weight_grad", "input_grad"),
    "floor_6": ("forward", "weight_grad"),
    "with_dx_9": ("forward", "weight_grad", "input_grad", "unneeded"),
}
FLOOR_LABELS = {
    "floor_8": "8 products: forward + weight gradients + needed input gradients",
    "floor_6": "6 products: forward + weight gradients only",
    "with_dx_9": "9 products: the 8 plus the unneeded first-layer input gradient",
}


def batch_sizes(n: int, batch: int) -> list[int]:
    return [min(batch, n - start) for start in range(0, n, batch)]


def _epoch(bufs: dict[str, np.ndarray], sizes: list[int], acc: dict[str, float]) -> float:
    """One epoch of products; adds each product's time to ``acc``; returns the total."""
    x, w1, w2, w3 = bufs["x"], bufs["W1"], bufs["W2"], bufs["W3"]
    h1, h2, z = bufs["h1"], bufs["h2"], bufs["z"]
    g1, g2, g3 = bufs["g1"], bufs["g2"], bufs["g3"]
    dw1, dw2, dw3 = bufs["dW1"], bufs["dW2"], bufs["dW3"]
    dh1, dh2, dx = bufs["dh1"], bufs["dh2"], bufs["dx"]
    clock = time.perf_counter
    names = list(PRODUCTS)
    sums = [0.0] * len(names)
    start = clock()
    for m in sizes:
        t0 = clock()
        np.matmul(x[:m], w1, out=h1[:m])
        t1 = clock()
        np.matmul(h1[:m], w2, out=h2[:m])
        t2 = clock()
        np.matmul(h2[:m], w3, out=z[:m])
        t3 = clock()
        np.matmul(h2[:m].T, g3[:m], out=dw3)
        t4 = clock()
        np.matmul(g3[:m], w3.T, out=dh2[:m])
        t5 = clock()
        np.matmul(h1[:m].T, g2[:m], out=dw2)
        t6 = clock()
        np.matmul(g2[:m], w2.T, out=dh1[:m])
        t7 = clock()
        np.matmul(x[:m].T, g1[:m], out=dw1)
        t8 = clock()
        np.matmul(g1[:m], w1.T, out=dx[:m])
        t9 = clock()
        for i, (a, b) in enumerate(((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5),
                                    (t5, t6), (t6, t7), (t7, t8), (t8, t9))):
            sums[i] += b - a
    total = clock() - start
    for name, value in zip(names, sums, strict=True):
        acc[name] = acc.get(name, 0.0) + value
    return total


def measure(n: int = 60000, batch: int = 128, sizes: tuple[int, ...] = _common.SIZES,
            repeats: int = 5, warmup: int = 1, seed: int = 0) -> dict[str, Any]:
    """Time ``repeats`` epochs of the products (after ``warmup`` untimed ones).

    Returns a JSON-ready dict: per floor ``{median, min, max, mean, n}`` in seconds per
    epoch, the per-product seconds per epoch (medians), and the settings.
    """
    d0, d1, d2, d3 = sizes
    rng = np.random.default_rng(seed)
    f32 = np.float32

    def rand(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=f32)

    bufs = {
        "x": rng.random((batch, d0), dtype=f32), "W1": rand(d0, d1), "W2": rand(d1, d2),
        "W3": rand(d2, d3), "h1": rand(batch, d1), "h2": rand(batch, d2), "z": rand(batch, d3),
        "g1": rand(batch, d1), "g2": rand(batch, d2), "g3": rand(batch, d3),
        "dW1": rand(d0, d1), "dW2": rand(d1, d2), "dW3": rand(d2, d3),
        "dh1": rand(batch, d1), "dh2": rand(batch, d2), "dx": rand(batch, d0),
    }
    plan = batch_sizes(n, batch)
    for _ in range(warmup):
        _epoch(bufs, plan, {})
    per_epoch: list[dict[str, float]] = []
    totals = []
    for _ in range(repeats):
        acc: dict[str, float] = {}
        totals.append(_epoch(bufs, plan, acc))
        per_epoch.append(acc)
    floors = {}
    for floor, groups in FLOORS.items():
        names = [p for p, (group, _) in PRODUCTS.items() if group in groups]
        values = [sum(e[p] for p in names) for e in per_epoch]
        floors[floor] = _common.summary(values)
        floors[floor].update(values=values, label=FLOOR_LABELS[floor])
    products = {p: _common.summary([e[p] for e in per_epoch])["median"] for p in PRODUCTS}
    macs = _macs(plan, sizes)
    return {
        "floors": floors,
        "products_s": products,
        "products_group": {p: group for p, (group, _) in PRODUCTS.items()},
        "loop_total_s": _common.summary(totals),  # 9 products plus timer overhead
        "gflops_floor_8": 2 * macs["floor_8"] / floors["floor_8"]["median"] / 1e9,
        "settings": {"n": n, "batch": batch, "batches": len(plan), "sizes": list(sizes),
                     "repeats": repeats, "warmup": warmup, "dtype": "float32",
                     "threads": _common.threads_from_argv(), "library": "numpy.matmul"},
    }


def _macs(plan: list[int], sizes: tuple[int, ...]) -> dict[str, int]:
    d0, d1, d2, d3 = sizes
    per_row = {"forward": d0 * d1 + d1 * d2 + d2 * d3, "weight_grad": d0 * d1 + d1 * d2 + d2 * d3,
               "input_grad": d1 * d2 + d2 * d3, "unneeded": d0 * d1}
    rows = sum(plan)
    return {floor: rows * sum(per_row[g] for g in groups) for floor, groups in FLOORS.items()}


#: the CNN's convolutions as products: (name, rows per sample M/b, K + 1, C_out, first)
CNN_CONVS = (("conv1", 26 * 26, 10, 32, True), ("conv2", 11 * 11, 289, 64, False))
#: the CNN's Dense layers: (name, in, out, first)
CNN_DENSES = (("dense1", 1600, 128, False), ("dense2", 128, 10, False))
CNN_FLOORS = {
    "floor": ("forward", "weight_grad", "input_grad"),
    "floor_fwd_wgrad": ("forward", "weight_grad"),
    "with_dx": ("forward", "weight_grad", "input_grad", "unneeded"),
}
CNN_FLOOR_LABELS = {
    "floor": "11 products: forward + weight gradients + needed input gradients",
    "floor_fwd_wgrad": "8 products: forward + weight gradients only",
    "with_dx": "12 products: the 11 plus the first conv's unneeded input gradient",
}
Product = tuple[str, str, Any]  # (name, group, a call computing it)


def _cnn_products(b: int, rng: np.random.Generator) -> dict[str, list[Product]]:
    """The products of one full batch of ``b``, per variant: each convolution in both
    column layouts, ``rows`` (M, K) and ``cols`` (K, M), and the Dense layers."""
    def rand(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)

    variants: dict[str, list[Product]] = {}
    for name, per_sample, k, o, first in CNN_CONVS:
        m = b * per_sample
        w, g = rand(k, o), rand(m, o)
        y, dw, dcol, w_in = np.empty((m, o), np.float32), rand(k, o), rand(m, k - 1), rand(
            k - 1, o)
        for layout, col in (("rows", rand(m, k)), ("cols", rand(k, m))):
            a = col if layout == "rows" else col.T  # (M, K) either way, as a view
            variants[f"{name} {layout}"] = [
                (f"fwd {name} col@W ({layout})", "forward",
                 functools.partial(np.matmul, a, w, out=y)),
                (f"dW {name} colT@g ({layout})", "weight_grad",
                 functools.partial(np.matmul, a.T, g, out=dw))]
        variants[f"{name} input"] = [  # the column gradient: no column matrix involved
            (f"dcol {name} g@WT", "unneeded" if first else "input_grad",
             functools.partial(np.matmul, g, w_in.T, out=dcol))]
    dense: list[Product] = []
    for name, n_in, n_out, _ in CNN_DENSES:
        x, w, g = rand(b, n_in), rand(n_in, n_out), rand(b, n_out)
        dense += [(f"fwd {name} x@W", "forward",
                   functools.partial(np.matmul, x, w, out=np.empty((b, n_out), np.float32))),
                  (f"dW {name} xT@g", "weight_grad",
                   functools.partial(np.matmul, x.T, g, out=np.empty_like(w))),
                  (f"dx {name} g@WT", "input_grad",
                   functools.partial(np.matmul, g, w.T, out=np.empty_like(x)))]
    variants["dense"] = dense
    return variants


def measure_cnn(n: int = 60000, batch: int = 128, repeats: int = 5, warmup: int = 1,
                seed: int = 0, sample: int = 20) -> dict[str, Any]:
    """Time the CNN's products (see the module docstring) on ``sample`` full batches per
    repeat, scaled to an epoch of ``n`` samples (a product's time is linear in its rows).

    Each convolution is measured in both column layouts and counts in its faster one
    (numnet picks its layout from the input's memory order). Returns the layout of
    :func:`measure`'s result.
    """
    rng = np.random.default_rng(seed)
    variants = _cnn_products(batch, rng)
    scale = n / (batch * sample)  # full batches measured -> the epoch's samples
    for _ in range(warmup):
        for products in variants.values():
            for _, _, call in products:
                call()
    per_epoch: list[dict[str, float]] = []
    groups: dict[str, str] = {}
    for _ in range(repeats):
        acc: dict[str, float] = {}
        for _ in range(sample):
            for products in variants.values():
                for name, group, call in products:
                    start = time.perf_counter()
                    call()
                    acc[name] = acc.get(name, 0.0) + time.perf_counter() - start
                    groups[name] = group
        per_epoch.append({name: t * scale for name, t in acc.items()})
    floors = {}
    layouts: dict[str, list[str]] = {}
    for floor, wanted in CNN_FLOORS.items():
        values = []
        for times in per_epoch:
            total = sum(times[name] for key, products in variants.items()
                        if not key.endswith(("rows", "cols"))
                        for name, group, _ in products if group in wanted)
            for conv, *_ in CNN_CONVS:
                sums = {layout: sum(times[name] for name, group, _ in
                                    variants[f"{conv} {layout}"] if group in wanted)
                        for layout in ("rows", "cols")}
                best = min(sums, key=lambda key: sums[key])
                layouts.setdefault(f"{floor} {conv}", []).append(best)
                total += sums[best]
            values.append(total)
        floors[floor] = _common.summary(values)
        floors[floor].update(values=values, label=CNN_FLOOR_LABELS[floor])
    return {
        "task": "cnn",
        "floors": floors,
        "products_s": {p: _common.summary([e[p] for e in per_epoch])["median"]
                       for p in groups},
        "products_group": groups,
        "faster_layout": {key: max(set(v), key=v.count) for key, v in layouts.items()
                          if key.startswith("floor ")},
        "settings": {"n": n, "batch": batch, "batches": math.ceil(n / batch),
                     "sample_batches": sample, "repeats": repeats, "warmup": warmup,
                     "dtype": "float32", "threads": _common.threads_from_argv(),
                     "library": "numpy.matmul"},
    }


def format_report(result: dict[str, Any]) -> str:
    s = result["settings"]
    lines = [f"GEMM floor (numpy.matmul, float32, {s['threads']} threads, {s['batches']} batches "
             f"of <= {s['batch']} = {s['n']:,} samples, {s['repeats']} timed epochs):"]
    for floor, stats in result["floors"].items():
        lines.append(f"  {floor:10s} {stats['median']:.3f} s/epoch (min {stats['min']:.3f}, max "
                     f"{stats['max']:.3f})  {stats['label']}")
    lines.append("  per product, s/epoch: " + ", ".join(
        f"{name} {sec:.3f}" for name, sec in result["products_s"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=60000, help="samples per epoch (60000)")
    parser.add_argument("--batch-size", type=int, default=_common.BATCH_SIZE)
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs (5)")
    parser.add_argument("--threads", type=int, default=_common.DEFAULT_THREADS,
                        help="BLAS threads (set before numpy is imported)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--task", choices=("mlp", "cnn"), default="mlp",
                        help="whose products: the MLP's (default) or the CNN's")
    parser.add_argument("--sample-batches", type=int, default=20,
                        help="cnn: full batches timed per repeat, scaled to the epoch (20)")
    args = parser.parse_args(argv)
    if args.task == "cnn":
        result = measure_cnn(n=args.n, batch=args.batch_size, repeats=args.repeats,
                             sample=args.sample_batches)
    else:
        result = measure(n=args.n, batch=args.batch_size, repeats=args.repeats)
    result["peak_rss_mb"] = _common.peak_rss_mb()
    result["blas"] = _common.blas_threads()
    print(json.dumps(result) if args.json else format_report(result), flush=True)


if __name__ == "__main__":
    main()
