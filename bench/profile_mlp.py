"""Where one numnet training epoch of the MLP spends its time, operation by operation.

    python bench/profile_mlp.py [--task mlp|mlp_bn] [--epochs 2] [--warmup 1]
                                [--data PATH | --synthetic N] [--limit N] [--threads 2]
                                [--cprofile] [--json PATH]

The model and settings are the suite's (``bench/peers.py``: MLP 784-256-128-10, Adam 1e-3,
batch 128, float32, 2 threads). After ``--warmup`` untimed epochs, ``model.fit`` runs
``--epochs`` more epochs with every interesting call wrapped in a ``perf_counter``
accumulator (about 0.2 us per call, a few ms per epoch in all):

Each instrumented epoch is preceded by a GEMM-floor epoch in the same process, so the
floor and the epochs see the same drift of the machine's speed.

* the batch gather (``numnet.training.data.Batches``: the shuffle and one ``np.take`` per
  batch);
* each layer's ``forward`` and ``backward`` (a Dense layer followed by a ReLU runs the
  pair: its rows include the activation, and the ReLU has none);
* the loss's ``forward`` and ``backward``;
* the optimiser's ``step`` (in ``fit``, ``checked_step``: the update with the weight
  backup and the finiteness check);
* what is left of the guarded step (``numnet.training.guard.Guard.run`` around
  ``train_step``: finiteness checks, the weight backup, the model's input conversion) and
  of the epoch (the Python loop, callbacks, logs, the accuracy count).

Nothing in numnet is edited: the wrappers are set on the model's objects (and, for the
gather and the step, on ``Batches`` and ``Guard`` for the duration of the run).

Each Dense row also shows the GEMM floor of the matrix products it performs (from
``bench/gemm_floor.py``, measured in the same process between the epochs), so "non-GEMM" is the
time the operation spends outside BLAS. In training the first Dense layer runs
``backward_params`` (its weight and bias gradients only), so the input-gradient product
``g1 @ W1^T``, which nothing uses, is not performed.

``--cprofile`` also runs one epoch under cProfile and prints the top functions by own
time (cProfile's overhead distorts small calls: use it as a cross-check only).
"""

from __future__ import annotations

import _common

_common.pin_threads_from_argv()

import argparse  # noqa: E402
import cProfile  # noqa: E402
import functools  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import pstats  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gemm_floor  # noqa: E402
import peers  # noqa: E402


class Timers:
    """Named accumulators of seconds and call counts."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.order: list[str] = []

    def add(self, name: str, seconds: float) -> None:
        if name not in self.seconds:
            self.seconds[name] = 0.0
            self.calls[name] = 0
            self.order.append(name)
        self.seconds[name] += seconds
        self.calls[name] += 1

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        clock = time.perf_counter

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, clock() - start)

        return timed

    def wrap_generator(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Time each ``next()`` of the generator ``fn`` returns (work done between yields)."""
        clock = time.perf_counter

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            iterator = fn(*args, **kwargs)
            while True:
                start = clock()
                try:
                    item = next(iterator)
                except StopIteration:
                    self.add(name, clock() - start)
                    return
                self.add(name, clock() - start)
                yield item

        return timed


def layer_name(index: int, layer: Any) -> str:
    from numnet.layers import Dense

    if isinstance(layer, Dense):
        return f"L{index} Dense({layer.in_features}->{layer.out_features})"
    return f"L{index} {type(layer).__name__}"


def instrument(model: Any, optimizer: Any, timers: Timers) -> Callable[[], None]:
    """Wrap the model's, loss's and optimiser's methods; returns a function that undoes it."""
    from numnet.training.data import Batches
    from numnet.training.guard import Guard

    undo: list[Callable[[], None]] = []

    def patch(obj: Any, attr: str, wrapped: Any) -> None:
        had_own = attr in vars(obj)
        original = vars(obj).get(attr)
        setattr(obj, attr, wrapped)

        def restore() -> None:
            if had_own:
                setattr(obj, attr, original)
            else:
                delattr(obj, attr)

        undo.append(restore)

    first = model._first_trainable  # in training it runs backward_params, not backward
    for index, layer in enumerate(model.layers):
        name = layer_name(index, layer)
        patch(layer, "forward", timers.wrap(f"{name} forward", layer.forward))
        patch(layer, "backward", timers.wrap(f"{name} backward", layer.backward))
        if index == first:
            patch(layer, "backward_params", timers.wrap(f"{name} backward",
                                                        layer.backward_params))
        if hasattr(layer, "forward_activated"):  # a Dense run with the activation after it
            patch(layer, "forward_activated", timers.wrap(f"{name} forward",
                                                          layer.forward_activated))
            patch(layer, "backward_activated", timers.wrap(f"{name} backward",
                                                           layer.backward_activated))
    loss = type(model.loss).__name__
    patch(model.loss, "forward", timers.wrap(f"loss {loss} forward", model.loss.forward))
    patch(model.loss, "backward", timers.wrap(f"loss {loss} backward", model.loss.backward))
    patch(model, "loss_and_grad", timers.wrap("[loss_and_grad total]", model.loss_and_grad))
    patch(optimizer, "step", timers.wrap(f"optimizer {type(optimizer).__name__} step",
                                         optimizer.step))
    if hasattr(optimizer, "checked_step"):  # fit's step: the update with backup and check
        patch(optimizer, "checked_step", timers.wrap(
            f"optimizer {type(optimizer).__name__} step", optimizer.checked_step))
    patch(Batches, "__iter__", timers.wrap_generator("batch gather (shuffle + np.take)",
                                                     Batches.__iter__))
    patch(Guard, "run", timers.wrap("[trainer step total]", Guard.run))

    def restore_all() -> None:  # idempotent
        while undo:
            undo.pop()()

    return restore_all


def dense_products(model: Any) -> dict[str, list[str]]:
    """Row name -> the GEMM-floor products it performs."""
    from numnet.layers import Dense

    dense = [(i, layer) for i, layer in enumerate(model.layers) if isinstance(layer, Dense)]
    products = list(gemm_floor.PRODUCTS)
    out = {}
    for k, (i, layer) in enumerate(dense):
        name = layer_name(i, layer)
        fwd = next(p for p in products if p.startswith(f"fwd{k + 1} "))
        dw = next(p for p in products if p.startswith(f"dW{k + 1} "))
        if k == 0:  # training skips the input gradient g1 @ W1^T (backward_params)
            out[f"{name} backward"] = [dw]
        else:
            dh = next(p for p in products if p.startswith(f"dh{k} "))
            out[f"{name} backward"] = [dw, dh]
        out[f"{name} forward"] = [fwd]
    return out


def profile(args: argparse.Namespace) -> dict[str, Any]:
    from numnet.optim import Adam

    x_tr, y_tr, x_te, y_te, what = _common.load_data(args.data, args.synthetic, args.limit)
    model = peers.build_numnet(args.task, args.seed)
    optimizer = Adam(lr=_common.LR, betas=_common.BETAS, eps=_common.EPS)
    fit = functools.partial(model.fit, x_tr, y_tr, batch_size=_common.BATCH_SIZE,
                            optimizer=optimizer, shuffle=True, verbose=0)
    warm = fit(epochs=args.warmup, seed=args.seed) if args.warmup else None
    timers = Timers()
    floors: list[dict[str, Any]] = []
    epoch_seconds: list[float] = []
    restore = instrument(model, optimizer, timers)
    try:
        # the machine's speed drifts: alternate floor and epoch, so both see the same drift
        for epoch in range(args.epochs):
            restore()
            floors.append(gemm_floor.measure(n=x_tr.shape[0], batch=_common.BATCH_SIZE,
                                             repeats=args.floor_repeats,
                                             warmup=0 if epoch else 1))
            restore = instrument(model, optimizer, timers)
            history = fit(epochs=1, seed=args.seed + 1 + epoch)
            epoch_seconds += [float(s) for s in history.history["seconds"]]
    finally:
        restore()
    cprofile_text = run_cprofile(fit, args.seed + 2) if args.cprofile else None
    floor = combine_floors(floors)
    return {"data": what, "n_train": int(x_tr.shape[0]), "task": args.task,
            "epochs": args.epochs, "warmup_epoch_seconds": None if warm is None else
            [float(s) for s in warm.history["seconds"]], "epoch_seconds": epoch_seconds,
            "seconds": timers.seconds, "calls": timers.calls, "order": timers.order,
            "products": dense_products(model), "floor": floor, "threads": args.threads,
            "cprofile": cprofile_text, "accuracy": float((model.predict(x_te) == y_te).mean())}


def combine_floors(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One floor result from several :func:`gemm_floor.measure` runs (medians of all)."""
    floors = {}
    for name, first in runs[0]["floors"].items():
        values = [v for r in runs for v in r["floors"][name]["values"]]
        floors[name] = {**_common.summary(values), "values": values, "label": first["label"]}
    products = {p: _common.summary([r["products_s"][p] for r in runs])["median"]
                for p in runs[0]["products_s"]}
    return {**runs[0], "floors": floors, "products_s": products, "runs": len(runs)}


def run_cprofile(fit: Callable[..., Any], seed: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    fit(epochs=1, seed=seed)
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(20)
    return stream.getvalue()


def rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The table's rows, per epoch, in execution order, with the residual rows."""
    epochs = result["epochs"]
    sec = {k: v / epochs for k, v in result["seconds"].items()}
    calls = {k: v / epochs for k, v in result["calls"].items()}
    total = sum(result["epoch_seconds"]) / epochs
    floor = result["floor"]["products_s"]
    names = [n for n in result["order"] if not n.startswith("[")]
    forward = [n for n in names if n.endswith(" forward") and n.startswith("L")]
    backward = [n for n in names if n.endswith(" backward") and n.startswith("L")]
    ordered = ([n for n in names if n.startswith("batch")] + sorted(forward, key=_layer_index)
               + [n for n in names if n.startswith("loss ")]
               + sorted(backward, key=_layer_index, reverse=True)
               + [n for n in names if n.startswith("optimizer")])
    out = []
    for name in ordered:
        row = {"operation": name, "seconds": sec[name], "calls": calls[name]}
        done = result["products"].get(name, [])
        if done:
            row["gemm_s"] = sum(floor[p] for p in done)
            row["products"] = done
        out.append(row)
    layers_and_loss = sum(sec[n] for n in names if n.startswith(("L", "loss ")))
    if "[loss_and_grad total]" in sec:
        out.append({"operation": "loss_and_grad glue (input check, calls)",
                    "seconds": sec["[loss_and_grad total]"] - layers_and_loss,
                    "calls": calls["[loss_and_grad total]"]})
    if "[trainer step total]" in sec:
        # fit runs train_step, whose layers and loss are timed one by one
        inner = sec.get("[loss_and_grad total]", layers_and_loss) + sum(
            sec[n] for n in names if n.startswith("optimizer"))
        out.append({"operation": "fit step checks (finite checks, backup, glue)",
                    "seconds": sec["[trainer step total]"] - inner,
                    "calls": calls["[trainer step total]"]})
        accounted = sec["[trainer step total]"] + sum(
            sec[n] for n in names if n.startswith("batch"))
        out.append({"operation": "fit loop rest (Python loop, callbacks, logs)",
                    "seconds": total - accounted, "calls": None})
    for row in out:
        row["percent"] = 100 * row["seconds"] / total
    return out


def _layer_index(name: str) -> int:
    return int(name.split()[0][1:])


def render(result: dict[str, Any]) -> str:
    table_rows = rows(result)
    total = sum(result["epoch_seconds"]) / result["epochs"]
    floor = result["floor"]["floors"]
    warmup = len(result["warmup_epoch_seconds"] or [])
    lines = [f"numnet training-epoch profile: {result['task']}, {result['data']}, batch "
             f"{_common.BATCH_SIZE}, Adam, float32, {result['threads']} threads; "
             f"{result['epochs']} instrumented epoch(s) after {warmup} warm-up", ""]
    header = ["operation", "ms/epoch", "% total", "calls/epoch", "us/call", "GEMM floor ms",
              "non-GEMM ms"]
    body = [header]
    gemm_total = 0.0
    for row in table_rows:
        ms = 1000 * row["seconds"]
        calls = row["calls"]
        gemm = row.get("gemm_s")
        cells = [row["operation"], f"{ms:.1f}", f"{row['percent']:.1f}",
                 "-" if calls is None else f"{calls:.0f}",
                 "-" if not calls else f"{1e6 * row['seconds'] / calls:.1f}",
                 "-" if gemm is None else f"{1000 * gemm:.1f}",
                 "-" if gemm is None else f"{ms - 1000 * gemm:.1f}"]
        if gemm is not None:
            gemm_total += gemm
        body.append(cells)
    body.append(["total epoch (History seconds)", f"{1000 * total:.1f}", "100.0", "-", "-",
                 f"{1000 * gemm_total:.1f}", f"{1000 * (total - gemm_total):.1f}"])
    widths = [max(len(r[i]) for r in body) for i in range(len(header))]
    for index, r in enumerate(body):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))))
        if index == 0 or index == len(body) - 2:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    for name in ("floor_8", "floor_6", "with_dx_9"):
        f = floor[name]
        lines.append(f"GEMM {name:9s} {1000 * f['median']:8.1f} ms/epoch -> numnet epoch = "
                     f"{total / f['median']:.2f}x   ({f['label']})")
    lines.append("first-layer input gradient (dx = g1 @ W1^T): not computed in training "
                 "(Sequential.backward(input_grad=False) calls Dense.backward_params)")
    timed = ", ".join(f"{s:.3f}" for s in result["epoch_seconds"])
    warm = ", ".join(f"{s:.3f}" for s in result["warmup_epoch_seconds"] or [])
    lines.append(f"epoch seconds: instrumented {timed}" + (f"; warm-up {warm}" if warm else ""))
    lines.append("GEMM floor ms: the same products timed alone (bench/gemm_floor.py); "
                 "non-GEMM = the operation's time minus that (bias, reductions, element-wise "
                 "work, allocation, Python)")
    if result.get("cprofile"):
        lines += ["", "cProfile cross-check (one epoch, top 20 by own time):",
                  result["cprofile"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Per-operation profile of numnet's "
                                                 "training epoch on the benchmark MLP.")
    parser.add_argument("--task", choices=("mlp", "mlp_bn"), default="mlp")
    parser.add_argument("--epochs", type=int, default=3, help="instrumented epochs")
    parser.add_argument("--warmup", type=int, default=1, help="untimed epochs first")
    parser.add_argument("--data", default=None)
    parser.add_argument("--synthetic", type=int, default=None, metavar="N")
    parser.add_argument("--limit", type=int, default=None, metavar="N")
    parser.add_argument("--threads", type=int, default=_common.DEFAULT_THREADS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--floor-repeats", type=int, default=1,
                        help="floor epochs timed before each instrumented epoch")
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--json", default=None, help="also write the raw numbers here")
    args = parser.parse_args(argv)
    result = profile(args)
    print(render(result), flush=True)
    if args.json:
        result["rows"] = rows(result)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
