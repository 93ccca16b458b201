"""Benchmark numnet's data loading.

(a) Seconds to load MNIST from its four ``.gz`` IDX files (``numnet.data.load_mnist``).
(b) ``numnet.data.load_csv`` throughput in MB/s on generated ~100 MB numeric CSV files,
    written to a temporary directory and deleted afterwards: an MNIST-style integer file
    (label + 784 pixels per row, mostly zeros; the real MNIST test images when available)
    and a file of 6-significant-digit floats. Also the peak memory the load allocates
    beyond its result (NumPy reports its allocations to tracemalloc), to show that the
    values are held once.

Usage::

    python bench/bench_data.py [--path DIR] [--csv-mb 100] [--repeat 3] [--loadtxt]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from numnet.data import load_csv, load_mnist  # noqa: E402

MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def best_time(func: Callable[[], object], repeat: int) -> float:
    """Smallest wall time of ``repeat`` calls (the least disturbed by other processes)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def default_mnist_dir() -> Path:
    env = os.environ.get("NUMNET_MNIST_DIR")
    return Path(env) if env else ROOT.parent / "shared" / "data" / "mnist"


def bench_mnist(path: Path, repeat: int) -> float | None:
    if not all((path / name).is_file() for name in MNIST_FILES):
        print(f"(a) MNIST .gz load: skipped, the four files are not in {path}")
        return None
    seconds = best_time(lambda: load_mnist(path=path, download=False), repeat)
    (X, _), (Xt, _) = load_mnist(path=path, download=False)
    print(f"(a) MNIST .gz load: {seconds:.3f} s (best of {repeat}) for "
          f"{len(X):,} + {len(Xt):,} images from {path}")
    return seconds


def mnist_rows(mnist_dir: Path) -> np.ndarray:
    """1,000 rows of label + 784 pixels: real MNIST test images when available."""
    if all((mnist_dir / name).is_file() for name in MNIST_FILES):
        _, (X, y) = load_mnist(path=mnist_dir, flatten=True, download=False)
        return np.column_stack([y[:1000], X[:1000]])
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(1000, 784))
    pixels[rng.random(pixels.shape) < 0.8] = 0  # MNIST is about 80% background
    return np.column_stack([rng.integers(0, 10, 1000), pixels])


def write_csv(path: Path, header: str, block: str, target_mb: float) -> int:
    """Write ``header`` then ``block`` repeated until about ``target_mb`` MB."""
    raw = block.encode()
    repeats = max(1, round(target_mb * 1e6 / len(raw)))
    with open(path, "wb") as handle:
        handle.write(header.encode())
        for _ in range(repeats):
            handle.write(raw)
    return path.stat().st_size


def peak_extra_mb(path: Path) -> float:
    """Peak memory allocated while loading, minus the size of the result, in MB."""
    tracemalloc.start()
    try:
        X, y = load_csv(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return (peak - X.nbytes - (0 if y is None else y.nbytes)) / 1e6


def bench_csv_file(name: str, path: Path, repeat: int, loadtxt: bool) -> float:
    size_mb = path.stat().st_size / 1e6
    seconds = best_time(lambda: load_csv(path), repeat)
    X, y = load_csv(path)
    rate = size_mb / seconds
    print(f"(b) load_csv, {name}: {size_mb:.1f} MB, {X.shape[0]:,} rows x {X.shape[1] + 1} "
          f"columns in {seconds:.3f} s (best of {repeat}) = {rate:.0f} MB/s; X {X.dtype}, "
          f"y {y.dtype}")
    print(f"    peak memory beyond the {(X.nbytes + y.nbytes) / 1e6:.0f} MB result: "
          f"{peak_extra_mb(path):.1f} MB")
    if loadtxt:
        start = time.perf_counter()
        np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32)
        other = time.perf_counter() - start
        print(f"    for comparison, np.loadtxt: {other:.2f} s = {size_mb / other:.0f} MB/s")
    return rate


def bench_csv(target_mb: float, repeat: int, mnist_dir: Path, loadtxt: bool) -> dict[str, float]:
    rates = {}
    with tempfile.TemporaryDirectory(prefix="numnet-bench-") as tmp:
        ints = mnist_rows(mnist_dir)
        header = "label," + ",".join(f"pixel{i}" for i in range(784)) + "\n"
        block = "\n".join(",".join(map(str, row)) for row in ints.tolist()) + "\n"
        path = Path(tmp) / "mnist-style.csv"
        write_csv(path, header, block, target_mb)
        rates["ints"] = bench_csv_file("MNIST-style integers", path, repeat, loadtxt)
        path.unlink()

        rng = np.random.default_rng(1)
        floats = rng.standard_normal((2000, 32))
        header = "target," + ",".join(f"x{i}" for i in range(31)) + "\n"
        block = "\n".join(",".join(f"{v:.6g}" for v in row) for row in floats.tolist()) + "\n"
        path = Path(tmp) / "floats.csv"
        write_csv(path, header, block, target_mb)
        rates["floats"] = bench_csv_file("floats (%.6g)", path, repeat, loadtxt)
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", type=Path, default=default_mnist_dir(),
                        help="directory of the MNIST .gz files (default: ../shared/data/mnist)")
    parser.add_argument("--csv-mb", type=float, default=100.0,
                        help="size of each generated CSV file in MB (default: 100)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed runs of each measurement; the best is shown (default: 3)")
    parser.add_argument("--loadtxt", action="store_true",
                        help="also time np.loadtxt on the same CSV files")
    args = parser.parse_args(argv)
    print(f"numpy {np.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    bench_mnist(args.path, args.repeat)
    bench_csv(args.csv_mb, args.repeat, args.path, args.loadtxt)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
