"""Data-parallel training on MNIST: one process with 2 BLAS threads against two MPI
processes with 1 thread each (``fit(..., distributed=True)``).

Model and settings: the MLP 784-256-128-10 (ReLU), float32, Adam (lr 1e-3), global batch
128 (each of the two ranks trains on 64 rows of it), seed 0, ``--epochs`` epochs.

The driver runs the two configurations alternately, ``--repeats`` times each, every run in
fresh processes (``mpiexec -n 2`` for the distributed one), and prints per configuration:

* seconds per epoch (median over the epochs of every run; the slowest rank's wall time);
* the test accuracy after the last epoch;
* the bytes all-reduced per step (the flat gradient, plus the step's verdict and metrics);
* the seconds per epoch rank 0 spent inside collectives, per kind: transfer and waiting for
  the other rank (which also absorbs any imbalance between the ranks);
* the load: CPUs other processes kept busy just before each run, and the load average.

Usage (from the repository root)::

    NUMNET_MNIST_DIR=/path/to/mnist python bench/train_mnist_distributed.py \\
        [--epochs 3] [--repeats 3] [--json results.json]

Needs the ``mpi`` extra (mpi4py and the mpich wheel's ``mpiexec``). A worker run alone:
``[mpiexec -n 2] python bench/train_mnist_distributed.py --worker --threads 1
[--distributed]`` prints one JSON line.
"""

from __future__ import annotations

import _common

THREADS = _common.pin_threads_from_argv()  # before numpy is imported

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

KINDS = ("gradients", "the step's verdict", "metrics")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", default=os.environ.get("NUMNET_MNIST_DIR",
                                                         str(_common.DEFAULT_DATA)))
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--threads", type=int, default=_common.DEFAULT_THREADS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--distributed", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# -- one run (a worker process, or each rank of one) -------------------------------------------
def worker(args: argparse.Namespace) -> None:
    import numnet as nn
    from numnet import distributed
    from numnet.data import load_mnist

    (X, y), (X_test, y_test) = load_mnist(args.data, flatten=True, scale=True, download=False)
    model = nn.Sequential([nn.Dense(784, 256), nn.ReLU(), nn.Dense(256, 128), nn.ReLU(),
                           nn.Dense(128, 10)], loss="cross_entropy", seed=0)
    snapshots: list[dict[str, Any]] = []

    def snapshot(*_: Any) -> None:
        traffic = distributed.world().traffic if args.distributed else {}
        snapshots.append({kind: (t.calls, t.bytes, t.seconds) for kind, t in traffic.items()})

    timer = nn.LambdaCallback(on_epoch_begin=snapshot, on_epoch_end=snapshot)
    history = model.fit(X, y, epochs=args.epochs, batch_size=_common.BATCH_SIZE,
                        optimizer=nn.Adam(_common.LR), seed=0, verbose=0,
                        distributed=args.distributed, callbacks=[timer])
    accuracy = model.evaluate(X_test, y_test)["accuracy"]
    per_epoch = []  # per epoch and kind: calls, bytes, seconds spent in collectives
    for begin, end in zip(snapshots[::2], snapshots[1::2], strict=True):
        per_epoch.append({kind: [e - b for e, b in zip(end[kind], begin.get(kind, (0, 0, 0.0)),
                                                       strict=True)]
                          for kind in end})
    result = {"distributed": args.distributed, "threads": THREADS,
              "blas_threads": _blas_threads(), "epoch_seconds": history["seconds"],
              "test_accuracy": accuracy, "steps": history.params["steps"],
              "parameters": model.num_params, "dtype": model.dtype.name,
              "collectives": per_epoch}
    if args.distributed:
        ranks = distributed.world().allgather_object(result, "benchmark results")
        if not distributed.is_main():
            return
        result["ranks"] = len(ranks)
        result["collectives_other_ranks"] = [r["collectives"] for r in ranks[1:]]
    print(json.dumps(result), flush=True)


def _blas_threads() -> int | None:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    counts = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    return max(counts) if counts else None


# -- the driver --------------------------------------------------------------------------------
def run_one(args: argparse.Namespace, distributed: bool) -> dict[str, Any]:
    script = str(Path(__file__).resolve())
    threads = 1 if distributed else 2
    command = [sys.executable, script, "--worker", "--threads", str(threads), "--epochs",
               str(args.epochs), "--data", args.data]
    if distributed:
        mpiexec = Path(sys.executable).parent / "mpiexec"
        launcher = str(mpiexec) if mpiexec.exists() else shutil.which("mpiexec")
        if launcher is None:
            raise SystemExit("no mpiexec: pip install 'numnet[mpi]'")
        command = [launcher, "-n", "2", *command, "--distributed"]
    env = dict(os.environ, PYTHONPATH=str(_common.ROOT))
    busy = _common.busy_cores(1.0)
    load = _common.load_avg()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"run failed ({' '.join(command)}):\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(busy_before=busy, load_before=load,
                  wall=time.perf_counter() - started)
    return result


def report(runs: list[dict[str, Any]], label: str) -> dict[str, Any]:
    epochs = [s for run in runs for s in run["epoch_seconds"]]
    out: dict[str, Any] = {
        "config": label,
        "seconds_per_epoch": _common.summary(epochs),
        "test_accuracy": [run["test_accuracy"] for run in runs],
        "blas_threads": runs[0]["blas_threads"],
        "busy_cores_before": [run["busy_before"] for run in runs],
        "load_before": [run["load_before"] for run in runs],
    }
    if runs[0]["distributed"]:
        steps = runs[0]["steps"]
        per_epoch = [epoch for run in runs for epoch in run["collectives"]]
        out["bytes_per_step"] = {kind: per_epoch[0][kind][1] / per_epoch[0][kind][0]
                                 for kind in KINDS}
        out["collective_seconds_per_epoch_rank0"] = {
            kind: _common.summary([epoch[kind][2] for epoch in per_epoch]) for kind in KINDS}
        others = [epoch for run in runs for epoch in run["collectives_other_ranks"][0]]
        out["collective_seconds_per_epoch_rank1"] = {
            kind: _common.summary([epoch[kind][2] for epoch in others]) for kind in KINDS}
        out["steps_per_epoch"] = steps
    return out


def driver(args: argparse.Namespace) -> None:
    info = _common.machine_info()
    print(f"machine: {info}", flush=True)
    runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for repeat in range(args.repeats):
        order = (False, True) if repeat % 2 == 0 else (True, False)  # ABBA: fair to both
        for distributed in order:
            result = run_one(args, distributed)
            runs[distributed].append(result)
            label = "2 ranks x 1 thread " if distributed else "1 rank x 2 threads"
            print(f"repeat {repeat + 1}: {label} epochs "
                  f"{[round(s, 2) for s in result['epoch_seconds']]} s, test accuracy "
                  f"{result['test_accuracy']:.4f}, other load before {result['busy_before']}"
                  f" CPUs (load average {result['load_before']})", flush=True)
    results = [report(runs[False], "1 process, 2 BLAS threads"),
               report(runs[True], "2 MPI processes, 1 BLAS thread each")]
    for result in results:
        print(json.dumps(result, indent=1))
    one, two = (r["seconds_per_epoch"]["median"] for r in results)
    print(f"median s/epoch: 1x2 threads {one:.2f}, 2x1 thread {two:.2f} "
          f"(ratio {two / one:.2f})")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "results": results,
                                               "runs": runs}, indent=1))


if __name__ == "__main__":
    arguments = parse()
    if arguments.worker:
        worker(arguments)
    else:
        driver(arguments)
