"""Train the issue's CNN on MNIST with ``Sequential.fit``; with ``--compare``, also in PyTorch
from the same initial weights, epoch by epoch interleaved, each in its own process.

    python bench/train_mnist_cnn.py [--epochs 3] [--seed 0] [--threads 2] [--compare]
                                    [--no-averaging] [--data PATH] [--limit N]
                                    [--json PATH]

The network (``bench/_cnn.py``): conv(1->32, 3x3)-ReLU-maxpool2-conv(32->64, 3x3)-ReLU-
maxpool2-Flatten-Dense(1600, 128)-ReLU-Dense(128, 10); Adam (lr 1e-3, betas 0.9/0.999,
eps 1e-8), batch 128 reshuffled every epoch, float32, and the recipe's moving average of
the weights after every step (``numnet.WeightAveraging``, ``_cnn.TorchAverage``), with
which test accuracy is measured (``--no-averaging``: the plain weights), the full MNIST
(60,000 / 10,000)
from ``--data``, ``$NUMNET_MNIST_DIR`` or ``../shared/data/mnist`` (never downloaded).

Each framework runs in a worker process of its own (so its peak memory is its own) that
loads the data, builds the model and then trains one epoch each time the parent says
so: numnet, PyTorch, numnet, PyTorch, ... so drift of a shared machine hits both alike.
After each epoch the worker measures test accuracy (not timed; the average's update after
each step is timed). numnet's epoch time is
``History['seconds']`` of ``model.fit`` (one call for all epochs: a callback waits for
the parent between epochs, outside the timed part); PyTorch's is its plain training loop
(``randperm``, ``index_select`` batches, ``CrossEntropyLoss``, ``Adam``, ``.item()`` per
batch), as in ``bench/peers.py``.

Printed per epoch: test accuracy, s/epoch of each, and their ratio (numnet / PyTorch);
at the end the medians, the median of the paired ratios, and each process's peak
resident memory (``ru_maxrss``) and how far its peak rose above its resident memory once
the data was loaded (``VmHWM`` reset after loading): the model, training and testing.
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
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import _cnn  # noqa: E402
import numpy as np  # noqa: E402
from _cnn import mnist_images, numnet_cnn, torch_cnn  # noqa: E402

from numnet.callbacks import Callback  # noqa: E402
from numnet.optim import Adam  # noqa: E402


def data_dir(args: argparse.Namespace) -> str:
    return args.data or os.environ.get("NUMNET_MNIST_DIR") or str(_common.DEFAULT_DATA)


def emit(record: dict[str, Any]) -> None:
    """One JSON line to the parent (or the terminal)."""
    print(json.dumps(record), flush=True)


def wait_for_go() -> bool:
    """Block until the parent says ``go`` (True) or ``quit`` (False); True when alone."""
    if sys.stdin.isatty():
        return True
    line = sys.stdin.readline().strip()
    return line == "go"


LOADED_RSS: list[float | None] = [None]


def mark_loaded() -> None:
    """After the data is loaded: remember the resident memory and restart the peak."""
    LOADED_RSS[0] = _common.rss_mb()
    _common.reset_peak_rss()


def memory() -> dict[str, float | None]:
    """Peak RSS of the process, and its peak above the memory once the data was loaded."""
    peak_after, loaded = _common.phase_peak_rss_mb(), LOADED_RSS[0]
    extra = None if peak_after is None or loaded is None else peak_after - loaded
    return {"peak_rss_mb": _common.peak_rss_mb(), "train_extra_rss_mb": extra}


class EpochReporter(Callback):
    """Reports each epoch (with test accuracy) and waits for the parent before the next."""

    def __init__(self, x_test: np.ndarray, y_test: np.ndarray, worker: bool) -> None:
        super().__init__()
        self.x_test, self.y_test, self.worker = x_test, y_test, worker

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self.worker:
            wait_for_go()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        # after a WeightAveraging earlier in the list, the model holds the averaged weights
        accuracy = float(np.mean(self.model.predict(self.x_test) == self.y_test))
        if self.worker:
            emit({"framework": "numnet", "epoch": epoch + 1, "seconds": logs["seconds"],
                  "loss": logs["loss"], "test_accuracy": accuracy, **memory()})
            if epoch + 1 < self.params["epochs"]:
                wait_for_go()
        else:
            print(f"epoch {epoch + 1}: loss {logs['loss']:.4f}, test accuracy "
                  f"{100 * accuracy:.2f}%, {logs['seconds']:.2f} s/epoch, peak RSS "
                  f"{_common.peak_rss_mb():.0f} MiB ({memory()['train_extra_rss_mb']:.0f} MiB "
                  "above the loaded data)", flush=True)


def run_numnet(args: argparse.Namespace, worker: bool) -> None:
    x_tr, y_tr, x_te, y_te = mnist_images(data_dir(args), args.limit)
    mark_loaded()
    model = numnet_cnn(args.seed)
    optimizer = Adam(lr=_common.LR, betas=_common.BETAS, eps=_common.EPS)
    if worker:
        emit({"framework": "numnet", "ready": True, "params": model.num_params})
    averaging = None if args.no_averaging else _cnn.averaging()
    callbacks = [EpochReporter(x_te, y_te, worker)]
    model.fit(x_tr, y_tr, epochs=args.epochs, batch_size=_common.BATCH_SIZE,
              optimizer=optimizer, shuffle=True, verbose=0, seed=args.seed,
              callbacks=callbacks if averaging is None else [averaging, *callbacks])


def run_torch(args: argparse.Namespace) -> None:
    import torch  # noqa: PLC0415 - optional: only --compare needs PyTorch
    from torch import nn  # noqa: PLC0415

    torch.set_num_threads(args.threads)
    x_tr, y_tr, x_te, y_te = mnist_images(data_dir(args), args.limit)
    mark_loaded()
    net = torch_cnn(numnet_cnn(args.seed))  # numnet's initial weights, copied
    optimizer = torch.optim.Adam(net.parameters(), lr=_common.LR, betas=_common.BETAS,
                                 eps=_common.EPS)
    criterion = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(args.seed)
    xt, yt, x_test = torch.from_numpy(x_tr), torch.from_numpy(y_tr), torch.from_numpy(x_te)
    emit({"framework": "torch", "ready": True, "threads": torch.get_num_threads()})
    average = None if args.no_averaging else _cnn.TorchAverage(net)
    for epoch in range(args.epochs):
        if not wait_for_go():
            return
        seconds, loss = _common.torch_epoch(net, optimizer, criterion, xt, yt, generator,
                                            None if average is None else average.update)
        net.eval()
        if average is not None:
            average.swap()
        with torch.inference_mode():
            pred = torch.cat([net(x_test[i:i + 1000]).argmax(dim=1)
                              for i in range(0, x_test.shape[0], 1000)]).numpy()
        if average is not None:
            average.swap()
        emit({"framework": "torch", "epoch": epoch + 1, "seconds": seconds,
              "loss": loss, "test_accuracy": float(np.mean(pred == y_te)), **memory()})


class Worker:
    """A child process running one framework, driven line by line."""

    def __init__(self, framework: str, args: argparse.Namespace) -> None:
        command = [sys.executable, __file__, "--worker", framework, "--epochs",
                   str(args.epochs), "--seed", str(args.seed), "--threads", str(args.threads),
                   "--data", data_dir(args)] + (["--no-averaging"] if args.no_averaging else [])
        if args.limit:
            command += ["--limit", str(args.limit)]
        self.framework = framework
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, bufsize=1)
        self.read()  # the "ready" line

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):
                return dict(json.loads(line))
        raise RuntimeError(f"the {self.framework} worker ended early "
                           f"(exit status {self.process.wait()})")

    def epoch(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait()


def compare(args: argparse.Namespace) -> dict[str, Any]:
    workers = {name: Worker(name, args) for name in ("numnet", "torch")}
    records: dict[str, list[dict[str, Any]]] = {name: [] for name in workers}
    try:
        for epoch in range(args.epochs):
            for name, worker in workers.items():
                records[name].append(worker.epoch())
            nn_rec, t_rec = records["numnet"][-1], records["torch"][-1]
            print(f"epoch {epoch + 1}: numnet {nn_rec['seconds']:6.2f} s, test acc "
                  f"{100 * nn_rec['test_accuracy']:.2f}% | torch {t_rec['seconds']:6.2f} s, "
                  f"test acc {100 * t_rec['test_accuracy']:.2f}% | ratio "
                  f"{nn_rec['seconds'] / t_rec['seconds']:.3f}", flush=True)
    finally:
        for worker in workers.values():
            worker.close()
    seconds = {name: [r["seconds"] for r in recs] for name, recs in records.items()}
    ratios = [a / b for a, b in zip(seconds["numnet"], seconds["torch"], strict=True)]
    summary = {"epochs": records, "median_seconds": {k: statistics.median(v)
                                                       for k, v in seconds.items()},
               "paired_ratios": ratios, "median_ratio": statistics.median(ratios)}
    for name, recs in records.items():
        print(f"{name:6s}: median {summary['median_seconds'][name]:.2f} s/epoch, final test "
              f"accuracy {100 * recs[-1]['test_accuracy']:.2f}%, peak RSS "
              f"{recs[-1]['peak_rss_mb']:.0f} MiB, of which {recs[-1]['train_extra_rss_mb']:.0f}"
              f" MiB above the process once the data was loaded (model, training, testing)")
    print(f"paired ratios numnet/torch: {', '.join(f'{r:.3f}' for r in ratios)} "
          f"(median {summary['median_ratio']:.3f})")
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=_common.DEFAULT_THREADS)
    parser.add_argument("--data", default=None, help="MNIST directory")
    parser.add_argument("--limit", type=int, default=None, help="first N training images")
    parser.add_argument("--no-averaging", action="store_true",
                        help="measure test accuracy with the plain weights, without the "
                             "recipe's weight average")
    parser.add_argument("--compare", action="store_true",
                        help="also train PyTorch from the same weights, interleaved")
    parser.add_argument("--worker", choices=["numnet", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker == "numnet":
        run_numnet(args, worker=True)
        return 0
    if args.worker == "torch":
        run_torch(args)
        return 0
    info = _common.machine_info()
    print(f"CPU: {info['cpu']} ({info['cpu_count']} CPUs), {args.threads} threads, "
          f"{args.epochs} epochs, seed {args.seed}, data {data_dir(args)}, load "
          f"{_common.load_avg()}", flush=True)
    if args.compare:
        result = compare(args)
    else:
        run_numnet(args, worker=False)
        result = {}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
