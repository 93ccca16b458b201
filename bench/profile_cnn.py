"""Where a training step of the issue's CNN spends its time: numnet next to PyTorch, layer
by layer, with the GEMM floor of each layer and the peak memory of a step.

    python bench/profile_cnn.py [--batch 128] [--repeats 30] [--threads 2] [--seed 0]
                                [--data PATH] [--parts] [--json PATH]

The network is ``bench/_cnn.py``'s (conv 1->32 3x3, ReLU, maxpool 2, conv 32->64 3x3, ReLU,
maxpool 2, Flatten, Dense 1600->128, ReLU, Dense 128->10), float32, both frameworks from
the same weights, on one batch of MNIST images (random pixels when MNIST is absent).

* **Per layer.** One training forward and backward pass records every layer's input and
  the gradient reaching its output. Then, ``--repeats`` times, each layer runs its
  forward (``training=True``) and its backward alone, numnet then PyTorch, interleaved
  (so drift of a shared machine hits both); the table gives the medians. numnet's first
  conv runs ``backward_params`` (no input gradient), as in training; PyTorch's first conv
  gets an input that needs no gradient, likewise. PyTorch's backward of a layer is
  ``torch.autograd.grad`` through that layer alone.
* **GEMM floor.** The matrix products each numnet layer performs, alone, on its own work
  arrays (``np.matmul(..., out=...)``): for a conv the forward product over the column
  matrix, the weight-gradient product and (not for the first) the ``kh * kw``
  input-gradient products; for a Dense layer its two or three products.
* **Whole step.** ``loss_and_grad`` + Adam's ``step`` against PyTorch's ``zero_grad``,
  forward, loss, ``backward``, ``step``, ``.item()``, interleaved in pairs. In one
  process each framework's idle thread pool (OpenBLAS, OpenMP) may spin on a core while
  the other works, which biases the comparison: ``--only numnet`` / ``--only torch`` time
  one framework alone, and ``bench/steps_cnn.py`` compares whole steps in separate
  processes (the reference figure). On a shared
  machine ``--quiet-pairs N`` keeps timing pairs (up to ``--quiet-seconds``) until N of
  them ran while other processes used under 0.2 CPUs (``/proc/stat``), and reports those
  apart: the nearest to an idle machine a busy one gives.
* **Clock.** Wall time (``perf_counter``); with ``--threads 1 --cpu-time`` the thread's
  CPU time instead, which other processes on a busy machine do not inflate (a single-
  thread comparison of the work each framework does).
* **Parts** (``--parts``). numnet's step cut into its pieces, each timed alone, interleaved:
  per convolution its im2col, forward product, weight-gradient product, and (not for the
  first) the ``kh * kw`` input-gradient products and those products with col2im; per
  other layer its forward and backward; the loss; Adam's update.
* **Memory.** ``tracemalloc`` peak of two training steps of a fresh numnet model, above
  its weights and the batch (work arrays, cached activations, gradients, Adam's state),
  next to the largest column matrix of the batch.

Threads: ``OMP/OPENBLAS/MKL_NUM_THREADS`` and ``torch.set_num_threads`` = ``--threads``.
"""

from __future__ import annotations

import _common

_common.pin_threads_from_argv()

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from _cnn import mnist_images, numnet_cnn, numnet_step, torch_cnn, torch_step  # noqa: E402

from numnet.layers import Conv2D, Dense  # noqa: E402
from numnet.optim import Adam  # noqa: E402


def median_ms(samples: list[float]) -> float:
    return 1e3 * statistics.median(samples)


CLOCK = time.perf_counter
#: a pair of steps counts as quiet when other processes used fewer CPUs than this meanwhile
QUIET = 0.2


def timed(fn: Callable[[], Any]) -> float:
    start = CLOCK()
    fn()
    return CLOCK() - start


def batch(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, str]:
    path = args.data or os.environ.get("NUMNET_MNIST_DIR") or str(_common.DEFAULT_DATA)
    try:
        x, y, _, _ = mnist_images(path, limit=args.batch)
        return x, y, f"MNIST ({path})"
    except (FileNotFoundError, OSError):
        rng = np.random.default_rng(args.seed)
        return (rng.random((args.batch, 1, 28, 28), dtype=np.float32),
                rng.integers(0, 10, args.batch), "random pixels (MNIST not found)")


def record_pass(model: Any, x: np.ndarray, y: np.ndarray
                ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every layer's input and the gradient reaching its output, for one training step."""
    inputs: list[np.ndarray] = []
    grads: list[np.ndarray] = [x] * len(model.layers)
    out = x
    for layer in model.layers:
        inputs.append(out)
        out = layer.forward(out, training=True)
    model.loss.forward(out, y)
    grad = model.loss.backward()
    for index in reversed(range(len(model.layers))):
        grads[index] = grad
        if index:
            grad = model.layers[index].backward(grad)
    return inputs, grads


def gemm_floor(layer: Any, inp: np.ndarray, first: bool, repeats: int) -> float | None:
    """ms of the matrix products ``layer`` performs in a training step, alone."""
    if isinstance(layer, Dense):
        w = layer.params["W"]
        g = np.ones((inp.shape[0], layer.out_features), dtype=w.dtype)
        out, dw = np.empty_like(g), np.empty_like(w)
        dx = np.empty_like(inp)
        products: list[Callable[[], Any]] = [lambda: np.matmul(inp, w, out=out),
                                             lambda: np.matmul(inp.T, g, out=dw)]
        if not first:
            products.append(lambda: np.matmul(g, w.T, out=dx))
    elif isinstance(layer, Conv2D):
        layer.forward(inp, training=True)  # builds the column matrix in its layout
        col, wmat = layer._col, layer._weight_matrix()
        assert col is not None
        a = col if layer._rows else col.T  # (M, K+1)
        g = np.ones((a.shape[0], layer.out_channels), dtype=a.dtype)
        out, dw = np.empty_like(g), np.empty_like(wmat)
        kh, kw = layer.kernel_size
        w_offsets = np.ones((kh * kw, layer.out_channels, layer.in_channels), a.dtype)
        dcol = np.empty((a.shape[0], layer.in_channels), a.dtype)
        products = [lambda: np.matmul(a, wmat, out=out), lambda: np.matmul(a.T, g, out=dw)]
        if not first:  # the input gradient: one (M, C_in) product per kernel offset
            products += [functools.partial(np.matmul, g, w, out=dcol) for w in w_offsets]
    else:
        return None
    for product in products:
        product()
    return median_ms([sum(timed(p) for p in products) for _ in range(repeats)])


def conv_parts(name: str, layer: Conv2D, inp: np.ndarray, grad: np.ndarray, first: bool
               ) -> dict[str, Callable[[], Any]]:
    """The pieces of a convolution's training step, each callable alone."""
    layer.forward(inp, training=True)
    col, wmat = layer._col, layer._weight_matrix()
    assert col is not None
    g = np.ascontiguousarray(layer._grad_rows(grad))
    out = np.empty((g.shape[0], layer.out_channels), dtype=g.dtype)
    kh, kw = layer.kernel_size
    w_offsets = np.ones((kh * kw, layer.out_channels, layer.in_channels), g.dtype)
    dcol = np.empty((g.shape[0], layer.in_channels), g.dtype)
    parts: dict[str, Callable[[], Any]] = {
        f"{name} im2col": functools.partial(layer._columns, inp),
        f"{name} forward GEMM": functools.partial(layer._product, col, wmat, out),
        f"{name} dW GEMM (+ copies)": functools.partial(layer._param_grads, g),
    }
    if not first:
        parts[f"{name} dx GEMMs (kh*kw)"] = lambda: [np.matmul(g, w, out=dcol)
                                                     for w in w_offsets]
        parts[f"{name} dx GEMMs + col2im"] = functools.partial(layer._input_grad, g)
    return parts


def profile_parts(args: argparse.Namespace, model: Any, x: np.ndarray, y: np.ndarray
                  ) -> list[tuple[str, float]]:
    """ms of each piece of numnet's training step (medians, pieces interleaved): for a
    convolution its im2col, its products and col2im; for the other layers forward and
    backward; then the loss and Adam's update."""
    inputs, grads = record_pass(model, x, y)
    parts: dict[str, Callable[[], Any]] = {}
    for index, layer in enumerate(model.layers):
        name = f"{index} {type(layer).__name__}"
        if isinstance(layer, Conv2D):
            parts.update(conv_parts(name, layer, inputs[index], grads[index], index == 0))
            continue
        parts[f"{name} forward"] = functools.partial(layer.forward, inputs[index], True)
        parts[f"{name} backward"] = functools.partial(layer.backward, grads[index])
    logits = model.forward(x, training=True)
    parts["loss forward + backward"] = lambda: (model.loss.forward(logits, y),
                                                model.loss.backward())
    optimizer = Adam(lr=_common.LR)
    model.loss_and_grad(x, y)
    parts["Adam step"] = functools.partial(optimizer.step, model)
    samples: dict[str, list[float]] = {key: [] for key in parts}
    for part in parts.values():
        part()
    for _ in range(args.repeats):
        for key, part in parts.items():
            samples[key].append(timed(part))
    return [(key, median_ms(v)) for key, v in samples.items()]


def print_parts(parts: list[tuple[str, float]], step_ms: float | None) -> None:
    print(f"{'part of numnet step':34s} {'ms':>7s}")
    for key, ms in parts:
        print(f"{key:34s} {ms:7.2f}")
    # the dx products are counted within "dx GEMMs + col2im"
    total = sum(ms for key, ms in parts if "dx GEMMs (" not in key)
    print(f"{'sum of the parts':34s} {total:7.2f}" + (
        f"   (whole step {step_ms:.2f} ms)" if step_ms else ""))


def torch_layer_timers(module: Any, inp: np.ndarray, grad: np.ndarray, first: bool
                       ) -> tuple[Callable[[], Any], Callable[[], Any]]:
    import torch  # noqa: PLC0415 - optional

    x = torch.from_numpy(np.ascontiguousarray(inp)).requires_grad_(not first)
    g = torch.from_numpy(np.ascontiguousarray(grad))
    wrt = ([] if first else [x]) + list(module.parameters())
    state: dict[str, Any] = {}

    def forward() -> None:
        state["y"] = module(x)

    def backward() -> None:
        if wrt:
            torch.autograd.grad(state["y"], wrt, g)

    return forward, backward


def profile_layers(args: argparse.Namespace, model: Any, net: Any, x: np.ndarray,
                   y: np.ndarray) -> list[dict[str, Any]]:
    inputs, grads = record_pass(model, x, y)
    rows = []
    timers = []
    for index, layer in enumerate(model.layers):
        first = index == 0

        def nn_forward(layer: Any = layer, inp: np.ndarray = inputs[index]) -> None:
            layer.forward(inp, training=True)

        def nn_backward(layer: Any = layer, g: Any = grads[index], first: bool = first
                        ) -> None:
            (layer.backward_params if first else layer.backward)(g)

        pair = torch_layer_timers(net[index], inputs[index], grads[index], first) \
            if net is not None else None
        timers.append((nn_forward, nn_backward, pair))
    samples: list[dict[str, list[float]]] = [
        {"nn_f": [], "nn_b": [], "t_f": [], "t_b": []} for _ in timers]
    for _ in range(args.repeats):
        for (nn_f, nn_b, pair), sample in zip(timers, samples, strict=True):
            if args.only != "torch":
                sample["nn_f"].append(timed(nn_f))
                sample["nn_b"].append(timed(nn_b))
            if pair is not None:
                sample["t_f"].append(timed(pair[0]))
                sample["t_b"].append(timed(pair[1]))
    for index, (layer, sample) in enumerate(zip(model.layers, samples, strict=True)):
        row = {"layer": f"{index} {type(layer).__name__}",
               "numnet_fwd_ms": median_ms(sample["nn_f"]) if sample["nn_f"] else 0.0,
               "numnet_bwd_ms": median_ms(sample["nn_b"]) if sample["nn_b"] else 0.0,
               "gemm_floor_ms": gemm_floor(layer, inputs[index], index == 0, args.repeats)
               if args.only != "torch" else None}
        if sample["t_f"]:
            row["torch_fwd_ms"] = median_ms(sample["t_f"])
            row["torch_bwd_ms"] = median_ms(sample["t_b"])
        rows.append(row)
    return rows


def profile_steps(args: argparse.Namespace, model: Any, net: Any, x: np.ndarray,
                  y: np.ndarray) -> dict[str, float]:
    steps = {} if args.only == "torch" else {"numnet": numnet_step(model, x, y)}
    if net is not None:
        steps["torch"] = torch_step(net, x, y)
    for step in steps.values():
        for _ in range(3):
            step()
    samples: dict[str, list[float]] = {name: [] for name in steps}
    quiet: dict[str, list[float]] = {name: [] for name in steps}
    deadline = time.perf_counter() + args.quiet_seconds
    done = 0
    first = next(iter(steps))
    # pairs of steps; a pair during which other processes used under QUIET CPUs counts
    # as quiet too. On a busy machine, keep going (up to --quiet-seconds) for --quiet-pairs
    while done < args.repeats or (len(quiet[first]) < args.quiet_pairs
                                  and time.perf_counter() < deadline):
        load = _common.OtherLoad().start()
        pair = {name: timed(step) for name, step in steps.items()}
        other = load.stop()
        if done < args.repeats:
            for name, value in pair.items():
                samples[name].append(value)
        if other is not None and other < QUIET:
            for name, value in pair.items():
                quiet[name].append(value)
        done += 1
    result = {f"{name}_step_ms": median_ms(v) for name, v in samples.items()}
    result["quiet_pairs"] = len(quiet[first])
    if quiet[first]:
        result.update({f"{name}_quiet_step_ms": median_ms(v) for name, v in quiet.items()})
    if len(steps) == 2:
        ratios = [a / b for a, b in zip(samples["numnet"], samples["torch"], strict=True)]
        result["paired_ratio_median"] = statistics.median(ratios)
        if quiet["numnet"]:
            result["quiet_paired_ratio_median"] = statistics.median(
                a / b for a, b in zip(quiet["numnet"], quiet["torch"], strict=True))
    return result


def step_memory(args: argparse.Namespace, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Peak memory of training steps above a fresh model (its weights) and the batch.

    ``tracemalloc`` (NumPy reports its allocations to it) from just before the first step
    of a new model: the work arrays, cached activations, gradients and Adam's state that
    two training steps allocate, at their peak.
    """
    model = numnet_cnn(args.seed)
    optimizer = Adam(lr=_common.LR)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for _ in range(2):
        model.loss_and_grad(x, y)
        optimizer.step(model)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    col = max(layer._col.nbytes for layer in model.layers
              if isinstance(layer, Conv2D) and layer._col is not None)
    return {"step_peak_extra_mb": peak / 2**20, "largest_im2col_mb": col / 2**20,
            "ratio": peak / col}


def print_table(rows: list[dict[str, Any]], steps: dict[str, float]) -> None:
    head = f"{'layer':14s} {'numnet f':>9s} {'b':>7s} {'torch f':>8s} {'b':>7s} " \
           f"{'nn/torch':>8s} {'GEMM':>7s} {'nn-GEMM':>8s}"
    print(head)
    print("-" * len(head))
    totals = {"nn": 0.0, "torch": 0.0, "gemm": 0.0}
    for row in rows:
        nn_total = row["numnet_fwd_ms"] + row["numnet_bwd_ms"]
        torch_total = row.get("torch_fwd_ms", 0.0) + row.get("torch_bwd_ms", 0.0)
        gemm = row["gemm_floor_ms"] or 0.0
        totals["nn"] += nn_total
        totals["torch"] += torch_total
        totals["gemm"] += gemm
        ratio_text = f"{nn_total / torch_total:8.2f}" if torch_total else f"{'':8s}"
        gemm_text = f"{gemm:7.2f} {nn_total - gemm:8.2f}" if row["gemm_floor_ms"] else ""
        print(f"{row['layer']:14s} {row['numnet_fwd_ms']:9.2f} {row['numnet_bwd_ms']:7.2f} "
              f"{row.get('torch_fwd_ms', float('nan')):8.2f} "
              f"{row.get('torch_bwd_ms', float('nan')):7.2f} {ratio_text} {gemm_text}")
    ratio = totals["nn"] / totals["torch"] if totals["torch"] else float("nan")
    print(f"{'layers total':14s} {totals['nn']:17.2f} {totals['torch']:16.2f} {ratio:8.2f} "
          f"{totals['gemm']:7.2f} {totals['nn'] - totals['gemm']:8.2f}")
    names = [n for n in ("numnet", "torch") if f"{n}_step_ms" in steps]
    line = "whole step: " + ", ".join(f"{n} {steps[f'{n}_step_ms']:.2f} ms" for n in names)
    if "paired_ratio_median" in steps:
        line += f", paired ratio numnet/torch {steps['paired_ratio_median']:.3f}"
    print(line)
    if steps.get("quiet_pairs"):
        line = f"quiet steps ({steps['quiet_pairs']}, other processes < {QUIET} CPUs): " + \
            ", ".join(f"{n} {steps[f'{n}_quiet_step_ms']:.2f} ms" for n in names)
        if "quiet_paired_ratio_median" in steps:
            line += f", paired ratio {steps['quiet_paired_ratio_median']:.3f}"
        print(line)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=_common.BATCH_SIZE)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=_common.DEFAULT_THREADS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=None, help="MNIST directory")
    parser.add_argument("--no-torch", action="store_true", help="numnet only")
    parser.add_argument("--only", choices=["numnet", "torch"], default=None,
                        help="time one framework only (the other's thread pool then never "
                             "spins on a core while this one works)")
    parser.add_argument("--quiet-pairs", type=int, default=0,
                        help="keep timing step pairs until this many ran while other "
                             "processes were (nearly) idle, or --quiet-seconds passed")
    parser.add_argument("--quiet-seconds", type=float, default=600.0)
    parser.add_argument("--cpu-time", action="store_true",
                        help="time with the thread's CPU clock (time.thread_time), which "
                             "other processes do not inflate; needs --threads 1")
    parser.add_argument("--parts", action="store_true",
                        help="also time each piece of numnet's step (im2col, GEMMs, col2im, "
                             "pools, ReLU, loss, Adam)")
    parser.add_argument("--json", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.cpu_time:
        if args.threads != 1:
            raise SystemExit("--cpu-time needs --threads 1 (a thread's clock misses the others)")
        global CLOCK
        CLOCK = time.thread_time
    x, y, source = batch(args)
    model = numnet_cnn(args.seed)
    net = None
    if not args.no_torch and args.only != "numnet":
        try:
            import torch  # noqa: PLC0415 - optional
        except ImportError:
            print("PyTorch not installed: numnet only")
        else:
            torch.set_num_threads(args.threads)
            net = torch_cnn(model)
    info = _common.machine_info()
    print(f"CPU: {info['cpu']} ({info['cpu_count']} CPUs), threads {args.threads}, "
          f"batch {args.batch}, data: {source}, repeats {args.repeats}, load "
          f"{_common.load_avg()}")
    load = _common.OtherLoad().start()
    rows = profile_layers(args, model, net, x, y)
    steps = profile_steps(args, model, net, x, y)
    memory = step_memory(args, x, y)
    parts = profile_parts(args, model, x, y) if args.parts and args.only != "torch" else []
    other = load.stop()
    print_table(rows, steps)
    if parts:
        print_parts(parts, steps.get("numnet_step_ms"))
    print(f"memory: peak extra of a training step {memory['step_peak_extra_mb']:.1f} MiB = "
          f"{memory['ratio']:.2f} x the largest im2col matrix "
          f"({memory['largest_im2col_mb']:.1f} MiB)")
    print(f"other processes kept {other if other is None else round(other, 2)} CPUs busy")
    if args.json:
        args.json.write_text(json.dumps({"layers": rows, "steps": steps, "memory": memory,
                                         "parts": dict(parts), "machine": info,
                                         "other_cpus": other}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
