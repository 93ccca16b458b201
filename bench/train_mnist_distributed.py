"""Data-parallel training on MNIST: one process with 2 BLAS threads against two MPI
processes with 1 thread each (``fit(..., distributed=True)``), and one process with 1
thread as a control.

Model and settings: the MLP 784-256-128-10 (ReLU), float32, Adam (lr 1e-3), global batch
128 (each of the two ranks trains on 64 rows of it), seed 0, ``--epochs`` epochs.

The driver runs the configurations in turn, ``--repeats`` times each (the order rotating
from one repeat to the next), every run in fresh processes (``mpiexec -n 2`` for the
distributed one), and prints per configuration:

* seconds per epoch (median over the epochs of every run; the slowest rank's wall time);
* the test accuracy after the last epoch;
* the bytes all-reduced per step (the flat gradient, and the loss, accuracy counts, NaN
  verdict and Ctrl-C flags that travel with it);
* the seconds per epoch each rank spent inside collectives: transfer, and waiting for the
  other rank (which absorbs any imbalance between the ranks, and the time the other rank
  was not scheduled on a busy machine);
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

#: (ranks, BLAS threads per rank)
CONFIGS = ((1, 2), (2, 1), (1, 1))


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
def label(ranks: int, threads: int) -> str:
    return f"{ranks} process{'es' if ranks > 1 else ''} x {threads} BLAS thread" \
        + ("s" if threads > 1 else "")


def run_one(args: argparse.Namespace, ranks: int, threads: int) -> dict[str, Any]:
    script = str(Path(__file__).resolve())
    command = [sys.executable, script, "--worker", "--threads", str(threads), "--epochs",
               str(args.epochs), "--data", args.data]
    if ranks > 1:
        mpiexec = Path(sys.executable).parent / "mpiexec"
        launcher = str(mpiexec) if mpiexec.exists() else shutil.which("mpiexec")
        if launcher is None:
            raise SystemExit("no mpiexec: pip install 'numnet[mpi]'")
        command = [launcher, "-n", str(ranks), *command, "--distributed"]
    env = dict(os.environ, PYTHONPATH=str(_common.ROOT))
    busy = _common.busy_cores(1.0)
    load = _common.load_avg()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"run failed ({' '.join(command)}):\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(busy_before=busy, load_before=load, wall=time.perf_counter() - started)
    return result


def _in_collectives(epochs: list[dict[str, list[float]]]) -> dict[str, Any]:
    """Per kind of collective met in every epoch: median seconds per epoch, bytes per call."""
    kinds = set.intersection(*(set(epoch) for epoch in epochs))
    return {kind: {"seconds_per_epoch": _common.summary([e[kind][2] for e in epochs]),
                   "calls_per_epoch": epochs[0][kind][0],
                   "bytes_per_call": epochs[0][kind][1] / max(1, epochs[0][kind][0])}
            for kind in sorted(kinds)}


def report(runs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "config": name,
        "seconds_per_epoch": _common.summary([s for run in runs for s in run["epoch_seconds"]]),
        "test_accuracy": [run["test_accuracy"] for run in runs],
        "blas_threads": runs[0]["blas_threads"],
        "busy_cores_before": [run["busy_before"] for run in runs],
        "load_before": [run["load_before"] for run in runs],
    }
    if runs[0]["distributed"]:
        out["steps_per_epoch"] = runs[0]["steps"]
        out["collectives_rank0"] = _in_collectives(
            [epoch for run in runs for epoch in run["collectives"]])
        out["collectives_rank1"] = _in_collectives(
            [epoch for run in runs for epoch in run["collectives_other_ranks"][0]])
    return out


def driver(args: argparse.Namespace) -> None:
    info = _common.machine_info()
    print(f"machine: {info}", flush=True)
    runs: dict[tuple[int, int], list[dict[str, Any]]] = {config: [] for config in CONFIGS}
    for repeat in range(args.repeats):
        shift = repeat % len(CONFIGS)  # rotate the order: no configuration always runs first
        for ranks, threads in CONFIGS[shift:] + CONFIGS[:shift]:
            result = run_one(args, ranks, threads)
            runs[ranks, threads].append(result)
            print(f"repeat {repeat + 1}: {label(ranks, threads)}: epochs "
                  f"{[round(s, 2) for s in result['epoch_seconds']]} s, test accuracy "
                  f"{result['test_accuracy']:.4f}; other processes kept "
                  f"{result['busy_before']} CPUs busy before (load average "
                  f"{result['load_before']})", flush=True)
    results = [report(runs[config], label(*config)) for config in CONFIGS]
    for result in results:
        print(json.dumps(result, indent=1))
    for result in results:
        median = result["seconds_per_epoch"]["median"]
        print(f"{result['config']}: median {median:.2f} s/epoch, test accuracy "
              f"{result['test_accuracy']}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"machine": info, "results": results,
             "runs": {label(*config): found for config, found in runs.items()}}, indent=1))


if __name__ == "__main__":
    arguments = parse()
    if arguments.worker:
        worker(arguments)
    else:
        driver(arguments)
