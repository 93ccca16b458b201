"""Per-operation micro-benchmarks of the fused kernels (numnet._kernels) against today's
code and PyTorch, at the sizes of the benchmark MLP.

    python bench/profile_kernels.py [--rounds 9] [--inner-rounds 3] [--ops optim,layers]
                                    [--threads 2] [--wait-idle S] [--json PATH]

The sizes are the suite's (784-256-128-10: 235,146 float32 parameters, batch 128; the
inference batch 1000). numnet and torch run in alternating processes (``--rounds`` pairs):
their thread pools spin after parallel work and would take the cores from each other's
timings. Within a process every variant below is timed in turn, ``--inner-rounds`` times
(interleaved, so drift hits all alike); a round times ``calls`` calls (about ``--budget``
seconds) and keeps the mean. The table shows the median and the minimum over all rounds,
in microseconds, and the minimum's ratio to torch's minimum: on a shared, busy machine
the minimum is the least disturbed estimate.

* ``today``: the unfused NumPy sequence numnet ran before the kernels were integrated:
  the optimiser's step on the NumPy path (``set_fast_path(False)``; the same passes as
  before) with the trainer's separate backup copy and finiteness check; ``y += b`` then
  ``ReLU.forward``; ``ReLU.backward``; the loss's NumPy path; ``np.take``; ``all_finite``;
* ``numpy``: the kernel's NumPy path (the reference), fused with backup and check;
* ``numba 1t`` / ``numba 2t``: the compiled path on one thread / split over two;
* ``torch``: the PyTorch equivalent (``torch.optim.Adam`` with ``foreach`` - its CPU
  default - and ``fused=True``; ``F.cross_entropy`` forward + backward; ``index_select``;
  ``torch.isfinite(x).all()``; ...). torch uses ``--threads`` intra-op threads.

Numba kernels are compiled (or loaded from the disk cache) before timing.
"""

from __future__ import annotations

import _common

THREADS = _common.pin_threads_from_argv()

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

Variant = Callable[[], Any]


class Flat:
    """A model as the optimiser sees it (flat vectors and the decay mask of the MLP)."""

    def __init__(self, rng: np.random.Generator) -> None:
        import numnet

        model = numnet.Sequential([numnet.Dense(784, 256), numnet.ReLU(),
                                   numnet.Dense(256, 128), numnet.ReLU(),
                                   numnet.Dense(128, 10)], loss="cross_entropy", seed=0)
        self.model = model
        self.flat_params = model.flat_params
        self.flat_grads = model.flat_grads
        self.flat_grads[:] = rng.standard_normal(self.flat_grads.size) * 1e-3
        self.decay_mask = model.decay_mask


def _numba_variants(fn: Callable[[], Any]) -> dict[str, Variant]:
    from numnet import _kernels as K
    from numnet._kernels import numba_kernels as NK

    def on(threads: int) -> Variant:
        def run() -> Any:
            NK.set_threads(threads)
            return fn()
        return run

    def numpy_path() -> Any:
        K.set_fast_path(False)
        try:
            return fn()
        finally:
            K.set_fast_path(True)

    K.set_fast_path(True)
    return {"numpy": numpy_path, "numba 1t": on(1), "numba 2t": on(THREADS)}


def torch_params(flat: Flat) -> list[Any]:
    import torch

    params = []
    for layer in flat.model.layers:
        for name, value in layer.params.items():
            t = torch.from_numpy(value.copy()).requires_grad_(True)
            t.grad = torch.from_numpy(layer.grads[name].copy())
            params.append(t)
    return params


def optimiser_ops(rng: np.random.Generator, side: str) -> dict[str, dict[str, Variant]]:
    from numnet import _kernels as K
    from numnet._checks import all_finite
    from numnet.optim import SGD, Adam, AdamW, RMSProp

    ops: dict[str, dict[str, Variant]] = {}
    specs: dict[str, tuple[Any, str, dict[str, Any]]] = {
        "adam": (lambda: Adam(1e-3), "Adam", {"lr": 1e-3}),
        "adamw": (lambda: AdamW(1e-3), "AdamW", {"lr": 1e-3, "weight_decay": 0.01}),
        "sgd_momentum": (lambda: SGD(0.01, momentum=0.9), "SGD",
                         {"lr": 0.01, "momentum": 0.9}),
        "rmsprop": (lambda: RMSProp(1e-3), "RMSprop", {"lr": 1e-3}),
    }
    for name, (make, torch_name, torch_kwargs) in specs.items():
        flat = Flat(rng)
        opt = make()
        opt.step(flat)  # state and step count exist
        backup = np.empty_like(flat.flat_params)

        def today(flat: Flat = flat, opt: Any = opt, backup: np.ndarray = backup) -> bool:
            K.set_fast_path(False)
            np.copyto(backup, flat.flat_params)
            opt.step(flat)
            K.set_fast_path(None)
            return all_finite(flat.flat_params)

        state = {key: value.copy() for key, value in opt.state.items()}
        mask = flat.decay_mask.astype(np.float32)
        work: list[np.ndarray] = []
        p, g = flat.flat_params, flat.flat_grads

        def kernel(opt: Any = opt, state: dict[str, np.ndarray] = state, p: np.ndarray = p,
                   g: np.ndarray = g, mask: np.ndarray = mask, backup: np.ndarray = backup,
                   work: list[np.ndarray] = work) -> bool:
            common = {"weight_decay": opt.weight_decay, "decay": mask, "backup": backup,
                      "work": work}
            if isinstance(opt, Adam):
                return K.adam_step(p, g, state["exp_avg"], state["exp_avg_sq"], lr=opt.lr,
                                   betas=opt.betas, eps=opt.eps, step=10,
                                   decoupled=isinstance(opt, AdamW), **common)
            if isinstance(opt, SGD):
                return K.sgd_step(p, g, state["momentum_buffer"], lr=opt.lr,
                                  momentum=opt.momentum, **common)
            return K.rmsprop_step(p, g, state["square_avg"], None, None, lr=opt.lr,
                                  alpha=opt.alpha, eps=opt.eps, **common)

        variants: dict[str, Variant] = {}
        if side == "numnet":
            variants = {"today": today, **_numba_variants(kernel)}
        else:
            import torch

            for mode in ("foreach", "fused"):
                if mode == "fused" and name == "rmsprop":
                    continue  # no fused RMSprop on CPU
                topt = getattr(torch.optim, torch_name)(torch_params(flat), **torch_kwargs,
                                                        **{mode: True})
                topt.step()
                variants[f"torch {mode}"] = topt.step
        ops[f"{name} ({p.size:,} float32)"] = variants
    return ops


def layer_ops(rng: np.random.Generator, side: str) -> dict[str, dict[str, Variant]]:
    import numnet
    from numnet import _kernels as K

    torch: Any = None
    if side == "torch":
        import torch
    ours = side == "numnet"
    ops: dict[str, dict[str, Variant]] = {}
    for batch in (_common.BATCH_SIZE, _common.INFER_BATCH):
        y0 = rng.standard_normal((batch, 256)).astype(np.float32)
        b = rng.standard_normal(256).astype(np.float32)
        y = y0.copy()
        relu = numnet.ReLU()

        def today(y0: np.ndarray = y0, y: np.ndarray = y, b: np.ndarray = b,
                  relu: Any = relu) -> Any:
            np.copyto(y, y0)  # the product's fresh output
            y += b
            return relu.forward(y)

        def kernel(y0: np.ndarray = y0, y: np.ndarray = y, b: np.ndarray = b) -> Any:
            np.copyto(y, y0)
            return K.bias_act(y, b, "relu")

        def copy_only(y0: np.ndarray = y0, y: np.ndarray = y) -> Any:
            return np.copyto(y, y0)

        name = f"bias + ReLU ({batch}x256, incl. a copy)"
        if ours:
            ops[name] = {"today": today, **_numba_variants(kernel), "copy alone": copy_only}
        else:
            ty0, ty, tb = torch.from_numpy(y0), torch.from_numpy(y.copy()), torch.from_numpy(b)

            def torch_bias_relu(ty0: Any = ty0, ty: Any = ty, tb: Any = tb) -> Any:
                ty.copy_(ty0)
                return torch.relu_(ty.add_(tb))

            ops[name] = {"torch": torch_bias_relu}

    g = rng.standard_normal((_common.BATCH_SIZE, 256)).astype(np.float32)
    x = rng.standard_normal((_common.BATCH_SIZE, 256)).astype(np.float32)
    name = "ReLU backward (128x256)"
    if ours:
        relu = numnet.ReLU()
        relu.forward(x)
        out = np.empty_like(g)
        ops[name] = {"today": lambda: relu.backward(g),
                     **_numba_variants(lambda: K.relu_backward(g, x, 0.0, out))}
    else:
        tg, tx = torch.from_numpy(g), torch.from_numpy(np.maximum(x, 0))
        ops[name] = {"torch": lambda: torch.ops.aten.threshold_backward(tg, tx, 0)}

    z = rng.standard_normal((_common.BATCH_SIZE, 10)).astype(np.float32)
    labels = rng.integers(0, 10, _common.BATCH_SIZE)
    name = "softmax cross-entropy fwd+bwd (128x10)"
    if ours:
        loss = numnet.CrossEntropy()
        grad = np.empty_like(z)

        def today_loss() -> Any:
            K.set_fast_path(False)
            value = loss.forward(z, labels)
            K.set_fast_path(None)
            return value, loss.backward()

        ops[name] = {"today": today_loss,
                     **_numba_variants(lambda: K.softmax_cross_entropy(z, labels, None, grad))}
    else:
        tz = torch.from_numpy(z).requires_grad_(True)
        tl = torch.from_numpy(labels)

        def torch_loss() -> Any:
            value = torch.nn.functional.cross_entropy(tz, tl)
            (dz,) = torch.autograd.grad(value, tz)
            return value.item(), dz

        ops[name] = {"torch": torch_loss}

    data = rng.random((60000, 784), dtype=np.float32)
    order = rng.permutation(60000)[:_common.BATCH_SIZE]
    name = "batch gather (128 of 60000x784)"
    if ours:
        buf = np.empty((_common.BATCH_SIZE, 784), dtype=np.float32)
        gather, _ = compiled_candidates()
        ops[name] = {"today": lambda: np.take(data, order, axis=0, out=buf, mode="clip"),
                     "numba 1t": lambda: gather(data, order, buf)}
    else:
        tdata, torder = torch.from_numpy(data), torch.from_numpy(order)
        ops[name] = {"torch": lambda: tdata.index_select(0, torder)}

    for rows in (_common.BATCH_SIZE, _common.INFER_BATCH, 10000):
        ops[f"finite check ({rows}x784)"] = finite_checks(data[:rows], ours, torch)
    return ops


def finite_checks(xs: np.ndarray, ours: bool, torch: Any) -> dict[str, Variant]:
    from numnet._checks import all_finite

    if not ours:
        txs = torch.from_numpy(xs)
        return {"torch": lambda: bool(torch.isfinite(txs).all())}
    _, count_nonfinite = compiled_candidates()
    flat = xs.reshape(-1)
    return {"today": lambda: all_finite(flat),
            "fit's sum": lambda: bool(np.isfinite(xs.sum(dtype=np.float64))),
            "numba 1t": lambda: count_nonfinite(flat) == 0}


@functools.cache
def compiled_candidates() -> tuple[Any, Any]:
    """A compiled row gather and finiteness count, which numnet._kernels does not ship
    because they did not beat ``np.take`` and the BLAS dot; kept here as the evidence."""
    from numba import njit

    @njit(cache=True, nogil=True, error_model="numpy")
    def gather(x: Any, index: Any, out: Any) -> Any:
        for i in range(index.shape[0]):
            src, dst = x[index[i]], out[i]
            for j in range(dst.shape[0]):
                dst[j] = src[j]
        return out

    @njit(cache=True, nogil=True, error_model="numpy")
    def count_nonfinite(x: Any) -> Any:
        zero = x.dtype.type(0)
        bad = 0
        for i in range(x.shape[0]):
            bad += (x[i] - x[i]) != zero  # x - x is 0 exactly when x is finite
        return bad

    return gather, count_nonfinite


def measure(variants: dict[str, Variant], rounds: int, budget: float) -> dict[str, list[float]]:
    for fn in variants.values():  # compile, warm up, and size the number of calls
        fn()
    start = time.perf_counter()
    for fn in variants.values():
        fn()
    calls = max(5, int(budget / max(time.perf_counter() - start, 1e-7)))
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - start) / calls * 1e6)
    return times


def render(results: dict[str, dict[str, list[float]]]) -> str:
    names: list[str] = []
    for times in results.values():
        names += [n for n in times if n not in names]
    header = ["operation (us per call: median / min)"] + names
    rows = [header]
    for op, times in results.items():
        ref = times.get("torch") or times.get("torch foreach")
        cells = [op]
        for name in names:
            if name not in times:
                cells.append("-")
                continue
            med, best = statistics.median(times[name]), min(times[name])
            ratio = "" if ref is None or name.startswith("torch") else \
                f" ({best / min(ref):.2f}x)"
            cells.append(f"{med:.1f} / {best:.1f}{ratio}")
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One process of one side: every operation once (``args.rounds`` rounds of it)."""
    rng = np.random.default_rng(0)
    info: dict[str, Any] = {}
    if args.side == "torch":
        import torch

        torch.set_num_threads(args.threads)
        info = {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    else:
        import numba

        from numnet import _kernels as K

        K.set_fast_path(None)
        info = {"path": K.fast_path(), "numba": numba.__version__}
    groups = args.ops.split(",")
    ops: dict[str, dict[str, Variant]] = {}
    if "optim" in groups:
        ops.update(optimiser_ops(rng, args.side))
    if "layers" in groups:
        ops.update(layer_ops(rng, args.side))
    results = {op: measure(variants, args.rounds, args.budget) for op, variants in ops.items()}
    if args.side == "numnet":
        import numba

        info["threading_layer"] = numba.threading_layer()  # type: ignore[attr-defined]
    return {"info": info, "results": results}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9,
                        help="process pairs (numnet, torch), each timing every operation")
    parser.add_argument("--budget", type=float, default=0.05,
                        help="seconds per variant per round (sets the number of calls)")
    parser.add_argument("--ops", default="optim,layers", help="optim, layers or both")
    parser.add_argument("--threads", type=int, default=_common.DEFAULT_THREADS)
    parser.add_argument("--wait-idle", type=float, default=0.0,
                        help="before each process, wait up to this many seconds for quiet")
    parser.add_argument("--inner-rounds", type=int, default=3,
                        help="rounds within each process")
    parser.add_argument("--json", default=None)
    parser.add_argument("--side", choices=("numnet", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side:
        args.rounds = args.inner_rounds
        print(json.dumps(child(args)))
        return
    # each side in its own process: torch's OpenMP workers and numba's spin after their
    # parallel regions, and would take the cores from each other's timings
    results: dict[str, dict[str, list[float]]] = {}
    infos: dict[str, Any] = {}
    for _ in range(args.rounds):
        for side in ("numnet", "torch"):
            if args.wait_idle:
                _common.wait_until_idle(args.wait_idle)
            cmd = [sys.executable, __file__, "--side", side, "--ops", args.ops, "--budget",
                   str(args.budget), "--threads", str(args.threads), "--inner-rounds",
                   str(args.inner_rounds)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            got = json.loads(out.stdout.strip().splitlines()[-1])
            infos.update(got["info"])
            for op, times in got["results"].items():
                for name, values in times.items():
                    results.setdefault(op, {}).setdefault(name, []).extend(values)
    info = _common.machine_info()
    print(f"CPU: {info['cpu']} ({info['cpu_count']} CPUs); numnet path when automatic: "
          f"{infos.get('path')}; numba {infos.get('numba')} ({infos.get('threading_layer')} "
          f"layer); torch {infos.get('torch')} ({infos.get('torch_threads')} threads); BLAS "
          f"threads {args.threads}; load {_common.load_avg()}")
    print(f"{args.rounds} x {args.inner_rounds} rounds, numnet and torch in alternating "
          "processes; in brackets: min / torch's min (foreach for the optimisers)\n")
    print(render(results))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"machine": info, "info": infos,
                                               "results": results}, indent=1) + "\n",
                                   encoding="utf-8")


if __name__ == "__main__":
    main()
