"""Training-step time of the issue's CNN, numnet and PyTorch in separate processes,
alternating, counting the steps that ran while the machine was otherwise quiet.

    python bench/steps_cnn.py [--rounds 6] [--steps 60] [--threads 2] [--quiet 0.2]

Each round starts one process per framework, numnet then PyTorch (same network and
initial weights as ``bench/_cnn.py``, one MNIST batch of 128, float32, Adam 1e-3), which
warms up and then times ``--steps`` training steps (forward, loss, backward, Adam step),
measuring for each step how many CPUs *other* processes used meanwhile (``/proc/stat``
minus the process's own CPU time). A step during which they used fewer than ``--quiet``
CPUs counts as quiet. Printed per round and overall: the median step time of all steps
and of the quiet ones, and the ratio numnet / PyTorch of the quiet medians.

A training epoch is 469 such steps plus the batch gathering and bookkeeping of ``fit``;
``bench/train_mnist_cnn.py`` times whole epochs, which on a busy machine rarely run quiet
from start to end. In separate processes neither framework's thread pool (OpenBLAS,
OpenMP) spins on a core while the other works.
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
from typing import Any  # noqa: E402

from _cnn import mnist_images, numnet_cnn, numnet_step, torch_cnn, torch_step  # noqa: E402


def worker(args: argparse.Namespace) -> dict[str, Any]:
    path = args.data or os.environ.get("NUMNET_MNIST_DIR") or str(_common.DEFAULT_DATA)
    x, y, _, _ = mnist_images(path, limit=_common.BATCH_SIZE)
    if args.worker == "numnet":
        step = numnet_step(numnet_cnn(args.seed), x, y)
    else:
        import torch  # noqa: PLC0415 - optional

        torch.set_num_threads(args.threads)
        step = torch_step(torch_cnn(numnet_cnn(args.seed)), x, y)
    for _ in range(5):
        step()
    times, others = [], []
    for _ in range(args.steps):
        load = _common.OtherLoad().start()
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
        others.append(load.stop())
    quiet = [t for t, o in zip(times, others, strict=True) if o is not None and o < args.quiet]
    return {"framework": args.worker, "median_ms": 1e3 * statistics.median(times),
            "quiet_median_ms": 1e3 * statistics.median(quiet) if quiet else None,
            "quiet_steps": len(quiet), "steps": len(times)}


def run_worker(name: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", name, "--steps", str(args.steps),
               "--threads", str(args.threads), "--seed", str(args.seed),
               "--quiet", str(args.quiet)]
    if args.data:
        command += ["--data", args.data]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--threads", type=int, default=_common.DEFAULT_THREADS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", type=float, default=0.2)
    parser.add_argument("--data", default=None)
    parser.add_argument("--worker", choices=["numnet", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    print(f"CPU: {_common.machine_info()['cpu']}, threads {args.threads}, {args.steps} steps "
          f"x {args.rounds} rounds, quiet = other processes < {args.quiet} CPUs, load "
          f"{_common.load_avg()}")
    quiet: dict[str, list[float]] = {"numnet": [], "torch": []}
    ratios = []
    for r in range(args.rounds):
        res = {name: run_worker(name, args) for name in ("numnet", "torch")}
        text = " | ".join(
            f"{n} all {v['median_ms']:.1f} ms, quiet {v['quiet_steps']}/{v['steps']}"
            + (f" {v['quiet_median_ms']:.1f} ms" if v["quiet_median_ms"] else "")
            for n, v in res.items())
        print(f"round {r + 1}: {text}", flush=True)
        for name, v in res.items():
            if v["quiet_median_ms"]:
                quiet[name].append(v["quiet_median_ms"])
        if res["numnet"]["quiet_median_ms"] and res["torch"]["quiet_median_ms"]:
            ratios.append(res["numnet"]["quiet_median_ms"] / res["torch"]["quiet_median_ms"])
    if ratios:
        print(f"quiet medians: numnet {statistics.median(quiet['numnet']):.1f} ms, torch "
              f"{statistics.median(quiet['torch']):.1f} ms; paired ratios numnet/torch "
              f"{', '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
