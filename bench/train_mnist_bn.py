"""Train an MLP with batch normalisation and dropout on MNIST; optionally compare a plain MLP.

Model (BN before each ReLU, dropout after it)::

    Dense(784, 256) - BatchNorm1d - ReLU - Dropout(0.2)
    Dense(256, 128) - BatchNorm1d - ReLU - Dropout(0.2)
    Dense(128, 10)                                       + CrossEntropy (from logits)

trained with Adam (lr 1e-3), batch 128, 10 epochs; the test accuracy is measured after
every epoch (in evaluation mode: running statistics, no dropout). ``--compare`` also trains
the plain MLP 784-256-128-10 (ReLU) with the same settings and seed.

Usage (from the repository root)::

    python bench/train_mnist_bn.py [--path DIR] [--epochs 10] [--compare]

MNIST is read with ``numnet.data.load_mnist(path, flatten=True, scale=True)`` from
``../shared/data/mnist`` relative to the repository root unless ``--path`` is given.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from numnet import BatchNorm1d, CrossEntropy, Dense, Dropout, ReLU, Sequential  # noqa: E402
from numnet.optim import Adam  # noqa: E402

DEFAULT_PATH = ROOT.parent / "shared" / "data" / "mnist"


def build_bn_mlp(seed: int) -> Sequential:
    return Sequential([
        Dense(784, 256), BatchNorm1d(256), ReLU(), Dropout(0.2),
        Dense(256, 128), BatchNorm1d(128), ReLU(), Dropout(0.2),
        Dense(128, 10),
    ], loss=CrossEntropy(), seed=seed)


def build_plain_mlp(seed: int) -> Sequential:
    return Sequential([Dense(784, 256), ReLU(), Dense(256, 128), ReLU(), Dense(128, 10)],
                      loss=CrossEntropy(), seed=seed)


def load(path: Path, limit: int | None) -> tuple[np.ndarray, ...]:
    """``(x_train, y_train, x_test, y_test)``: float32 rows of 784 pixels in [0, 1]."""
    from numnet.data import load_mnist

    # download=False: a benchmark reads the local files, it never fetches
    (x_tr, y_tr), (x_te, y_te) = load_mnist(path, flatten=True, scale=True, download=False)
    if limit:  # a quick smoke run on a subset
        x_tr, y_tr, x_te, y_te = x_tr[:limit], y_tr[:limit], x_te[:limit], y_te[:limit]
    return x_tr.astype(np.float32, copy=False), y_tr, x_te.astype(np.float32, copy=False), y_te


def run(name: str, model: Sequential, data: tuple[np.ndarray, ...], args: argparse.Namespace
        ) -> dict[str, list[float]]:
    x_tr, y_tr, x_te, y_te = data
    optimizer = Adam(lr=args.lr)
    print(f"\n== {name}: {model.num_params:,} parameters, {len(x_tr):,} training images ==",
          flush=True)
    start = time.perf_counter()
    history = model.fit(x_tr, y_tr, epochs=args.epochs, batch_size=args.batch_size,
                        optimizer=optimizer, validation_data=(x_te, y_te), verbose=args.verbose,
                        seed=args.seed)
    total = time.perf_counter() - start
    accuracies = [float(a) for a in history.history["val_accuracy"]]
    # wall time per epoch, validation pass included, as fit records it
    seconds = [float(t) for t in history.history.get("seconds", [])]
    if len(seconds) != len(accuracies):
        seconds = [total / max(len(accuracies), 1)] * len(accuracies)
    print("epoch  test accuracy  seconds")
    for epoch, (acc, sec) in enumerate(zip(accuracies, seconds, strict=False), start=1):
        print(f"{epoch:>5}  {acc:13.4f}  {sec:7.2f}")
    final = float(np.mean(model.predict(x_te) == y_te))  # evaluation mode, independently
    print(f"final test accuracy (predict): {final:.4f}; {total:.1f} s in all, "
          f"{total / args.epochs:.2f} s per epoch", flush=True)
    return {"val_accuracy": accuracies, "seconds": seconds}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH,
                        help=f"directory holding the MNIST .gz files (default {DEFAULT_PATH})")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first LIMIT training and test images (smoke runs)")
    parser.add_argument("--verbose", type=int, default=0, help="passed to model.fit")
    parser.add_argument("--compare", action="store_true",
                        help="also train the plain MLP 784-256-128-10 with the same settings")
    args = parser.parse_args(argv)

    data = load(args.path, args.limit)
    results = {"BN + dropout MLP": run("BN + dropout MLP", build_bn_mlp(args.seed), data, args)}
    if args.compare:
        results["plain MLP"] = run("plain MLP", build_plain_mlp(args.seed), data, args)
        print("\nepoch  " + "  ".join(f"{name:>18}" for name in results))
        for epoch in range(args.epochs):
            cells = [f"{r['val_accuracy'][epoch]:.4f} {r['seconds'][epoch]:6.2f}s"
                     if epoch < len(r["val_accuracy"]) else "-" for r in results.values()]
            print(f"{epoch + 1:>5}  " + "  ".join(f"{c:>18}" for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
