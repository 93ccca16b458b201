"""Benchmark numnet's data loading.

(a) Seconds to load MNIST from its four ``.gz`` IDX files (``numnet.data.load_mnist``).
(b) ``numnet.data.load_csv`` throughput in MB/s on generated ~100 MB numeric CSV files,
    written to a temporary directory and deleted afterwards: an MNIST-style integer file
    (label + 784 pixels per row, mostly zeros; the real MNIST test images when available)
    and a file of 6-significant-digit floats (``%.6g``), each read by every candidate:

    * ``pyarrow``, ``numpy``: ``load_csv(engine=...)``, the two parsers numnet uses;
    * ``compare``: ``load_csv`` of another checkout given with ``--compare ROOT`` (e.g.
      the main branch, to measure a change before and after);
    * ``loadtxt``, ``pandas``, ``arrow-table``: the bare libraries reading the whole file
      (``np.loadtxt``; ``pandas.read_csv`` with its C engine; ``pyarrow.csv.read_csv``
      then a C-ordered float32 matrix), for reference.

    Every measurement runs in a fresh process, and the candidates take turns round after
    round, so that other work on a shared machine hits them alike; the table shows the
    median (and range) over rounds. Memory is the peak resident set size during the load
    (Linux ``VmHWM``, reset before the load) minus the RSS before it and minus the size
    of the result: what the load needs beyond the arrays it returns, whatever allocator
    (NumPy's, pyarrow's) made it.

Usage::

    python bench/bench_data.py [--path DIR] [--csv-mb 100] [--rounds 5]
        [--candidates pyarrow,numpy,loadtxt] [--compare ../main] [--files ints,floats]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import _common  # noqa: E402

MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
CANDIDATES = ("pyarrow", "numpy", "compare", "loadtxt", "pandas", "arrow-table")


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
    from numnet.data import load_mnist  # noqa: PLC0415  (see loader(): numnet comes late)

    if not all((path / name).is_file() for name in MNIST_FILES):
        print(f"(a) MNIST .gz load: skipped, the four files are not in {path}")
        return None
    seconds = best_time(lambda: load_mnist(path=path, download=False), repeat)
    (X, _), (Xt, _) = load_mnist(path=path, download=False)
    print(f"(a) MNIST .gz load: {seconds:.3f} s (best of {repeat}) for "
          f"{len(X):,} + {len(Xt):,} images from {path}")
    return seconds


# ----------------------------------------------------------------------- the CSV files


def mnist_rows(mnist_dir: Path) -> np.ndarray:
    """1,000 rows of label + 784 pixels: real MNIST test images when available."""
    from numnet.data import load_mnist  # noqa: PLC0415  (see loader(): numnet comes late)

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


def make_files(directory: Path, target_mb: float, mnist_dir: Path, which: list[str]
               ) -> dict[str, Path]:
    files = {}
    if "ints" in which:
        ints = mnist_rows(mnist_dir)
        header = "label," + ",".join(f"pixel{i}" for i in range(784)) + "\n"
        block = "\n".join(",".join(map(str, row)) for row in ints.tolist()) + "\n"
        files["ints"] = directory / "mnist-style.csv"
        write_csv(files["ints"], header, block, target_mb)
    if "floats" in which:
        rng = np.random.default_rng(1)
        floats = rng.standard_normal((2000, 32))
        header = "target," + ",".join(f"x{i}" for i in range(31)) + "\n"
        block = "\n".join(",".join(f"{v:.6g}" for v in row) for row in floats.tolist()) + "\n"
        files["floats"] = directory / "floats.csv"
        write_csv(files["floats"], header, block, target_mb)
    return files


# ------------------------------------------------------------------ one measurement


def loader(candidate: str, compare: str | None) -> Callable[[Path], tuple[Any, Any]]:
    """The function that reads a CSV file for ``candidate``.

    Imports happen here, in the worker process, on purpose: ``compare`` must import
    numnet from another checkout (so no numnet at the top of this file), and pandas and
    pyarrow are optional.
    """
    if candidate == "compare":
        assert compare is not None
        sys.path.insert(0, compare)  # that checkout's numnet, not this one
    else:
        sys.path.insert(0, str(ROOT))
    from numnet.data import load_csv  # noqa: PLC0415  (from ROOT or from --compare)

    if candidate in ("pyarrow", "numpy"):
        return lambda path: load_csv(path, engine=candidate)
    if candidate == "compare":
        return lambda path: load_csv(path)  # an older numnet may not have engine=
    if candidate == "loadtxt":
        return lambda path: (np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32),
                             None)
    if candidate == "pandas":
        import pandas as pd  # noqa: PLC0415  (optional)

        return lambda path: (pd.read_csv(path, dtype=np.float32, engine="c").to_numpy(), None)
    if candidate == "arrow-table":
        import pyarrow.csv as pa_csv  # noqa: PLC0415  (optional)

        def read(path: Path) -> tuple[Any, Any]:
            table = pa_csv.read_csv(path)
            return np.ascontiguousarray(table.to_pandas().to_numpy(np.float32)), None

        return read
    raise ValueError(f"unknown candidate {candidate!r}")


def worker(candidate: str, path: Path, compare: str | None) -> dict[str, Any]:
    """Load ``path`` once in this (fresh) process: seconds, and memory beyond the result."""
    load = loader(candidate, compare)
    warm = path.parent / f"warm-{os.getpid()}.csv"
    warm.write_text("a,b\n1,2\n")
    load(warm)  # imports, thread pools and parser set-up are not part of the load
    warm.unlink()
    before = _common.rss_mb()
    _common.reset_peak_rss()
    load_meter = _common.OtherLoad().start()
    start = time.perf_counter()
    X, y = load(path)
    seconds = time.perf_counter() - start
    other = load_meter.stop()
    peak = _common.phase_peak_rss_mb()
    result = (X.nbytes + (0 if y is None else y.nbytes)) / 2**20
    extra = None if peak is None or before is None else peak - before - result
    return {"seconds": seconds, "extra_mb": extra, "result_mb": result,
            "shape": list(X.shape), "other_load": other}


def measure(candidate: str, path: Path, compare: str | None) -> dict[str, Any] | str:
    """Run :func:`worker` in a fresh process; its JSON result, or why it failed."""
    cmd = [sys.executable, __file__, "--worker", candidate, str(path)]
    if compare:
        cmd += ["--compare", compare]
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if run.returncode:
        return (run.stderr.strip().splitlines() or ["failed"])[-1]
    return json.loads(run.stdout)


# ----------------------------------------------------------------------------- report


def bench_csv(files: dict[str, Path], candidates: list[str], rounds: int,
              compare: str | None) -> dict[str, dict[str, list[dict[str, Any]]]]:
    results: dict[str, dict[str, list[dict[str, Any]]]] = {
        name: {c: [] for c in candidates} for name in files}
    for r in range(rounds):
        for name, path in files.items():
            # Rotate the order every round: no candidate always runs first.
            for c in candidates[r % len(candidates):] + candidates[:r % len(candidates)]:
                got = measure(c, path, compare)
                if isinstance(got, str):
                    print(f"    {c} on {name}: failed: {got}")
                    continue
                results[name][c].append(got)
        print(f"  round {r + 1}/{rounds} done", flush=True)
    for name, path in files.items():
        size_mb = path.stat().st_size / 1e6
        print(f"\n(b) {name}: {path.name}, {size_mb:.0f} MB; median over {rounds} rounds "
              "(min..max)")
        print(f"    {'candidate':<12} {'MB/s':>6} {'range':>11}  {'extra MB':>8}  "
              f"{'x result':>8}  {'other load':>10}")
        for c in candidates:
            runs = results[name][c]
            if not runs:
                continue
            rates = [size_mb / run["seconds"] for run in runs]
            extras = [run["extra_mb"] for run in runs if run["extra_mb"] is not None]
            extra = statistics.median(extras) if extras else float("nan")
            others = [run["other_load"] for run in runs if run["other_load"] is not None]
            other = statistics.median(others) if others else float("nan")
            rate = statistics.median(rates)
            print(f"    {c:<12} {rate:6.0f} {min(rates):5.0f}..{max(rates):<5.0f}  {extra:8.1f}"
                  f"  {extra / runs[0]['result_mb']:8.2f}  {other:10.2f}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", type=Path, default=default_mnist_dir(),
                        help="directory of the MNIST .gz files (default: ../shared/data/mnist)")
    parser.add_argument("--csv-mb", type=float, default=100.0,
                        help="size of each generated CSV file in MB (default: 100)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds of CSV measurements, every candidate once per round "
                             "(default: 5)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed MNIST loads; the best is shown (default: 3)")
    parser.add_argument("--candidates", default="pyarrow,numpy",
                        help=f"comma-separated, from {', '.join(CANDIDATES)} (default: "
                             "pyarrow,numpy; compare is added by --compare)")
    parser.add_argument("--compare", default=None, metavar="ROOT",
                        help="also time load_csv from the numnet checkout at ROOT")
    parser.add_argument("--files", default="ints,floats", help="ints, floats or both")
    parser.add_argument("--no-mnist", action="store_true", help="skip (a)")
    parser.add_argument("--worker", nargs=2, metavar=("CANDIDATE", "FILE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        candidate, path = args.worker
        print(json.dumps(worker(candidate, Path(path), args.compare)))
        return 0
    sys.path.insert(0, str(ROOT))
    candidates = [c for c in args.candidates.split(",") if c]
    if args.compare:
        args.compare = str(Path(args.compare).resolve())
        candidates.append("compare")
    unknown = set(candidates) - set(CANDIDATES)
    if unknown:
        parser.error(f"unknown candidates {sorted(unknown)}; expected {', '.join(CANDIDATES)}")
    info = _common.machine_info()
    print(f"numpy {np.__version__}, python {sys.version.split()[0]}, {info['cpu']}, "
          f"{info['cpu_count']} CPUs")
    if not args.no_mnist:
        bench_mnist(args.path, args.repeat)
    with tempfile.TemporaryDirectory(prefix="numnet-bench-") as tmp:
        files = make_files(Path(tmp), args.csv_mb, args.path, args.files.split(","))
        bench_csv(files, candidates, args.rounds, args.compare)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
