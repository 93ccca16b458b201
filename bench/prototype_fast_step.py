"""Full MNIST epochs with the kernels patched in (bench/_fast_prototype.py), against today's
numnet and PyTorch: what the integration of numnet._kernels will give.

    python bench/prototype_fast_step.py [--tasks mlp,mlp_bn] [--epochs 5] [--repeats 3]
                                        [--variants today,fast,fast-numpy,torch]
                                        [--wait-idle 0] [--json PATH]

Variants, each run in its own process (one per task and repeat, interleaved in that order
so drift hits all alike), on the suite's model and settings (bench/peers.py: Adam 1e-3,
batch 128, float32, 2 threads, numnet's initial weights copied into torch):

* ``today``: numnet as it is;
* ``fast``: the prototype integration with the compiled kernels (numba);
* ``fast-numpy``: the same integration on the kernels' NumPy path (``NUMNET_FAST=0``),
  which must be no slower than today;
* ``torch``: ``bench/peers.py``'s PyTorch loop.

Reports per task the median seconds per epoch (all epochs of all repeats), the paired
ratio to torch (per repeat, median epoch / torch's median epoch; then the median over
repeats) and inference images/s at batch 1000.
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
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

VARIANTS = ("today", "fast", "fast-numpy", "torch")


def run_numnet(args: argparse.Namespace, data: tuple[np.ndarray, ...],
               result: dict[str, Any]) -> None:
    import peers

    from numnet import _kernels as K
    from numnet.optim import Adam

    x_tr, y_tr, x_te, y_te = data
    model = peers.build_numnet(args.task, args.seed)
    if args.child == "today":
        optimizer = Adam(lr=_common.LR, betas=_common.BETAS, eps=_common.EPS)
    else:
        import _fast_prototype

        optimizer = _fast_prototype.install(model)
    result["path"] = K.fast_path() if args.child != "today" else "today"
    if args.child != "today":  # numba's import and kernel loading, outside the timed epochs
        model.fit(x_tr[:256], y_tr[:256], epochs=1, batch_size=_common.BATCH_SIZE,
                  optimizer=type(optimizer)(), verbose=0)
        model = peers.build_numnet(args.task, args.seed)
        optimizer = _fast_prototype.install(model)
    start, cpu = time.perf_counter(), time.process_time()
    history = model.fit(x_tr, y_tr, epochs=args.epochs, batch_size=_common.BATCH_SIZE,
                        optimizer=optimizer, shuffle=True, verbose=0, seed=args.seed)
    result["fit_wall_s"] = time.perf_counter() - start
    result["fit_cpu_s"] = time.process_time() - cpu
    result["epoch_seconds"] = [float(s) for s in history.history["seconds"]]
    result["train_loss"] = [float(v) for v in history.history["loss"]]
    pred = model.predict(x_te, batch_size=_common.INFER_BATCH)
    result["test_accuracy"] = float(np.mean(pred == y_te))
    result["infer"] = peers.time_inference(lambda x, b: model.predict(x, batch_size=b), x_te,
                                           args.infer_repeats)


def child(args: argparse.Namespace) -> dict[str, Any]:
    import peers

    x_tr, y_tr, x_te, y_te, what = _common.load_data(args.data, None, args.limit)
    result: dict[str, Any] = {"variant": args.child, "task": args.task, "seed": args.seed}
    phase = _common.reset_peak_rss()
    if args.child == "torch":
        peers.run_torch(args, (x_tr, y_tr, x_te, y_te), result)
    else:
        run_numnet(args, (x_tr, y_tr, x_te, y_te), result)
    if phase:
        result["run_peak_rss_mb"] = _common.phase_peak_rss_mb()
    return result


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(runs: list[dict[str, Any]], tasks: list[str], variants: list[str]) -> str:
    lines = []
    info = _common.machine_info()
    paths = sorted({r.get("path", "") for r in runs if r["variant"] == "fast"})
    lines.append(f"CPU: {info['cpu']} ({info['cpu_count']} CPUs); 'fast' ran the "
                 f"{'/'.join(paths)} path; load {_common.load_avg()}")
    for task in tasks:
        lines.append(f"\n{task}: s/epoch median (min-max) | CPU s/epoch (numnet) | paired ratio "
                     "to torch | test acc | infer img/s b1000 | ratio | run peak RSS MB")
        by_variant = {v: [r for r in runs if r["task"] == task and r["variant"] == v]
                      for v in variants}
        torch_runs = {r["seed"]: r for r in by_variant.get("torch", [])}
        for variant, vruns in by_variant.items():
            epochs = [s for r in vruns for s in r.get("epoch_seconds", [])]
            if not epochs:
                lines.append(f"  {variant:11s} no result")
                continue
            ratios, infer_ratios = [], []
            for r in vruns:
                t = torch_runs.get(r["seed"])
                if t and t.get("epoch_seconds"):
                    ratios.append(_median(r["epoch_seconds"]) / _median(t["epoch_seconds"]))
                    infer_ratios.append(r["infer"]["batch_1000"]["images_per_s"]
                                        / t["infer"]["batch_1000"]["images_per_s"])
            infer = _median([r["infer"]["batch_1000"]["images_per_s"] for r in vruns])
            acc = _median([r["test_accuracy"] for r in vruns])
            rss = _median([r.get("run_peak_rss_mb") or float("nan") for r in vruns])
            cpu = _median([r["fit_cpu_s"] / len(r["epoch_seconds"]) for r in vruns
                           if "fit_cpu_s" in r])
            lines.append(
                f"  {variant:11s} {_median(epochs):.3f} ({min(epochs):.3f}-{max(epochs):.3f})"
                f" | cpu {cpu:.3f}"
                f" | {_median(ratios):.2f} ({', '.join(f'{x:.2f}' for x in ratios)})"
                f" | {100 * acc:.2f} | {infer / 1000:.0f}k | {_median(infer_ratios):.2f}"
                f" | {rss:.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="mlp,mlp_bn")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=_common.DEFAULT_THREADS)
    parser.add_argument("--data", default=os.environ.get("NUMNET_MNIST_DIR"))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--infer-repeats", type=int, default=5)
    parser.add_argument("--wait-idle", type=float, default=0.0)
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--task", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return
    tasks, variants = args.tasks.split(","), args.variants.split(",")
    runs = []
    for repeat in range(args.repeats):
        for task in tasks:
            for variant in variants:
                if args.wait_idle:
                    _common.wait_until_idle(args.wait_idle)
                cmd = [sys.executable, __file__, "--child", variant, "--task", task,
                       "--epochs", str(args.epochs), "--seed", str(args.seed + repeat),
                       "--threads", str(args.threads), "--infer-repeats",
                       str(args.infer_repeats)]
                if args.data:
                    cmd += ["--data", args.data]
                if args.limit:
                    cmd += ["--limit", str(args.limit)]
                env = {**os.environ, "NUMNET_FAST": "0" if variant == "fast-numpy" else "auto"}
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
                if proc.returncode != 0:
                    print(proc.stderr[-2000:], file=sys.stderr)
                    continue
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
                last = runs[-1]
                print(f"repeat {repeat} {task} {variant}: "
                      f"{', '.join(f'{s:.3f}' for s in last['epoch_seconds'])}", flush=True)
    print(report(runs, tasks, variants))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(runs, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
