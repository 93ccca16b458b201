"""Train the MLP 784-256-128-10 (ReLU) on MNIST with ``Sequential.fit``.

Settings: Adam (lr 1e-3), batch 128, 10 epochs, seed 0. After every epoch it prints the
test accuracy, the seconds the epoch took (training plus the test evaluation) and the peak
memory of the process so far (``resource.getrusage(...).ru_maxrss``); the goal is to reach
at least 98.0% test accuracy within the 10 epochs.

Usage (from the repository root)::

    python bench/train_mnist.py [--path DIR] [--epochs 10] [--batch-size 128] [--verbose 0]

MNIST is read with ``numnet.data.load_mnist(path, flatten=True, scale=True)`` from
``../shared/data/mnist`` relative to the repository root unless ``--path`` is given. The
script prints the best and the final test accuracy and exits with status 1 when no epoch
reached ``--target``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from numnet import Dense, ReLU, Sequential  # noqa: E402
from numnet.callbacks import Callback  # noqa: E402
from numnet.data import load_mnist  # noqa: E402
from numnet.optim import Adam, CosineDecay  # noqa: E402

DEFAULT_PATH = ROOT.parent / "shared" / "data" / "mnist"


def peak_memory_mib() -> float:
    """Peak resident memory of this process in MiB (ru_maxrss is KiB on Linux, B on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class TestAccuracy(Callback):
    """Evaluate on the test set after each epoch and print one row of the table."""

    def __init__(self, X_test: Any, y_test: Any) -> None:
        super().__init__()
        self.X_test, self.y_test = X_test, y_test
        self.rows: list[tuple[int, float, float, float, float]] = []

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        accuracy = self.model.evaluate(self.X_test, self.y_test)["accuracy"]
        seconds = time.perf_counter() - self.start
        row = (epoch + 1, logs["loss"], accuracy, seconds, peak_memory_mib())
        self.rows.append(row)
        print(f"{row[0]:>5}  {row[1]:>10.4f}  {100 * row[2]:>8.2f}%  {row[3]:>8.2f}  "
              f"{row[4]:>8.0f}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH, help="MNIST directory")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=0.98,
                        help="test accuracy the last epoch must reach (default 0.98)")
    parser.add_argument("--cosine", action="store_true",
                        help="decay the rate along a half cosine over the epochs (off by "
                             "default: the reference recipe keeps Adam's rate fixed)")
    parser.add_argument("--verbose", type=int, default=0, choices=(0, 1, 2),
                        help="fit's progress output on stderr (default 0: the table only)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    (X_train, y_train), (X_test, y_test) = load_mnist(args.path, flatten=True, scale=True)
    print(f"MNIST: {X_train.shape[0]} training and {X_test.shape[0]} test images "
          f"({time.perf_counter() - start:.1f}s to load)")
    model = Sequential([Dense(784, 256), ReLU(), Dense(256, 128), ReLU(), Dense(128, 10)],
                       loss="cross_entropy", seed=args.seed)
    print(f"model 784-256-128-10 ReLU, {model.num_params:,} parameters, Adam(lr={args.lr})"
          f"{' with cosine decay' if args.cosine else ''}, batch {args.batch_size}, "
          f"{args.epochs} epochs, seed {args.seed}")
    print(f"{'epoch':>5}  {'train loss':>10}  {'test acc':>9}  {'seconds':>8}  {'peak MiB':>8}")
    table = TestAccuracy(X_test, y_test)
    total = time.perf_counter()
    schedule = CosineDecay(total_epochs=args.epochs) if args.cosine else None
    model.fit(X_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
              optimizer=Adam(args.lr), callbacks=[table], verbose=args.verbose, seed=args.seed,
              lr_schedule=schedule)
    final = table.rows[-1][2]
    best_epoch, _, best, _, _ = max(table.rows, key=lambda row: row[2])
    print(f"total {time.perf_counter() - total:.1f}s; test accuracy: final {100 * final:.2f}%, "
          f"best {100 * best:.2f}% (epoch {best_epoch}); target {100 * args.target:.1f}%")
    return 0 if best >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
