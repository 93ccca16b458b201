"""Helpers shared by the benchmark scripts: thread pinning, data, memory, statistics.

Nothing here imports numpy at module level: BLAS and OpenMP libraries read their thread
counts once, when they are loaded, so :func:`pin_threads` must run before the first
``import numpy`` / ``import torch`` of a process. Every script in ``bench/`` therefore
starts with::

    import _common
    _common.pin_threads_from_argv()      # reads --threads N (default 2)
    import numpy as np                   # noqa: E402
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist"
if str(ROOT) not in sys.path:  # run from a checkout without installing numnet
    sys.path.insert(1, str(ROOT))
DEFAULT_THREADS = 2
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",  # numnet's compiled kernels (the optional numba fast path)
)

# the benchmark architecture and training settings (issue #7)
SIZES = (784, 256, 128, 10)
BATCH_SIZE = 128
LR = 1e-3
BETAS = (0.9, 0.999)
EPS = 1e-8
DROPOUT = 0.2
INFER_BATCH = 1000


def pin_threads(n: int) -> None:
    """Set every BLAS/OpenMP thread variable to ``n`` (before numpy/torch are imported)."""
    for var in THREAD_VARS:
        os.environ[var] = str(int(n))


def threads_from_argv(argv: Sequence[str] | None = None, default: int = DEFAULT_THREADS) -> int:
    """The value of ``--threads N`` / ``--threads=N`` in ``argv`` (``sys.argv``), else default."""
    argv = list(sys.argv if argv is None else argv)
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return default


def pin_threads_from_argv(argv: Sequence[str] | None = None) -> int:
    n = threads_from_argv(argv)
    pin_threads(n)
    return n


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (``ru_maxrss``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _proc_status_mb(key: str) -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_mb() -> float | None:
    """Current resident set size in MiB (Linux only; None elsewhere)."""
    return _proc_status_mb("VmRSS")


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``) to the current RSS (Linux >= 4.0).

    ``ru_maxrss`` cannot be reset, so the peak of a later phase alone (training, after the
    data is loaded) is read from ``VmHWM`` with :func:`phase_peak_rss_mb`.
    """
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


def phase_peak_rss_mb() -> float | None:
    """Peak RSS since the last :func:`reset_peak_rss` (``VmHWM``), in MiB."""
    return _proc_status_mb("VmHWM")


def _cpu_times() -> tuple[float, float] | None:
    """``(busy, total)`` jiffies over all CPUs from ``/proc/stat`` (Linux), else None."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


class OtherLoad:
    """How many CPUs other processes kept busy while this one ran (a contamination meter).

    ``start()`` then ``stop()``: system-wide busy time from ``/proc/stat`` minus this
    process's own CPU time (all threads, ``getrusage``), divided by the wall time.
    """

    def start(self) -> OtherLoad:
        self.wall = time.perf_counter()
        self.system = _cpu_times()
        self.own = _own_cpu()
        return self

    def stop(self) -> float | None:
        wall = time.perf_counter() - self.wall
        system = _cpu_times()
        if self.system is None or system is None or wall <= 0 or system[1] <= self.system[1]:
            return None
        ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        busy_s = (system[0] - self.system[0]) / ticks
        return max(0.0, (busy_s - (_own_cpu() - self.own)) / wall)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def busy_cores(interval: float = 1.0) -> float | None:
    """How many CPUs' worth of work other processes did during ``interval`` seconds."""
    first = _cpu_times()
    if first is None:
        return None
    time.sleep(interval)
    second = _cpu_times()
    if second is None or second[1] <= first[1]:
        return None
    return (second[0] - first[0]) / (second[1] - first[1]) * (os.cpu_count() or 1)


def wait_until_idle(max_wait: float, threshold: float = 0.3,
                    interval: float = 1.0) -> tuple[float, float | None]:
    """Wait (up to ``max_wait`` s) until other work uses < ``threshold`` CPUs.

    Returns ``(seconds waited, busy CPUs in the last sample)``.
    """
    start = time.perf_counter()
    busy = busy_cores(interval)
    while busy is not None and busy >= threshold and time.perf_counter() - start < max_wait:
        busy = busy_cores(interval)
    return time.perf_counter() - start, busy


def load_avg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """``{median, min, max, mean, n}`` of ``values`` (None entries when empty)."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return {"median": None, "min": None, "max": None, "mean": None, "n": 0}
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "mean": statistics.fmean(values), "n": len(values)}


def torch_epoch(model: Any, optimizer: Any, criterion: Any, xt: Any, yt: Any,
                generator: Any, after_step: Any = None) -> tuple[float, float]:
    """One PyTorch training epoch as every peer comparison runs it: ``randperm`` order,
    ``index_select`` batches of :data:`BATCH_SIZE`, ``zero_grad`` / forward / loss /
    ``backward`` / ``step`` and ``.item()`` per batch, then ``after_step()`` if given (a
    weight average's update, inside the timed part). Returns ``(seconds, mean loss)``."""
    import torch

    start = time.perf_counter()
    model.train()
    n = xt.shape[0]
    order = torch.randperm(n, generator=generator)
    loss_sum = 0.0
    for i in range(0, n, BATCH_SIZE):
        index = order[i:i + BATCH_SIZE]
        xb, yb = xt.index_select(0, index), yt.index_select(0, index)
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(xb), yb)
        loss.backward()
        optimizer.step()
        if after_step is not None:
            after_step()
        loss_sum += loss.item() * index.shape[0]
    return time.perf_counter() - start, loss_sum / n


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpu": cpu, "cpu_count": os.cpu_count()}


def blas_threads() -> list[dict[str, Any]]:
    """What threadpoolctl sees (library, API, threads), when it is installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{"library": Path(i.get("filepath", "")).name, "api": i.get("internal_api"),
             "threads": i.get("num_threads"), "version": i.get("version")}
            for i in threadpool_info()]


def load_data(data: str | os.PathLike | None = None, synthetic: int | None = None,
              limit: int | None = None, test_limit: int | None = None, seed: int = 0
              ) -> tuple[Any, Any, Any, Any, str]:
    """``(x_train, y_train, x_test, y_test, description)``: float32 rows in [0, 1], int64.

    ``synthetic=N`` makes ``N`` training and ``min(N, 10000)`` test images of random pixels
    labelled by a fixed random linear "teacher" (learnable, so accuracy means something);
    otherwise MNIST is read with ``numnet.data.load_mnist(path, flatten=True, scale=True)``
    from ``data`` (default ``../shared/data/mnist``), never downloaded. ``limit`` keeps the
    first ``limit`` training images (a labelled subset for quick runs).
    """
    import numpy as np

    if synthetic:
        rng = np.random.default_rng(12345)
        n_test = min(int(synthetic), 10000)
        teacher = rng.standard_normal((SIZES[0], SIZES[-1])).astype(np.float32)
        x = rng.random((int(synthetic) + n_test, SIZES[0]), dtype=np.float32)
        y = ((x - 0.5) @ teacher).argmax(axis=1).astype(np.int64)
        x_tr, y_tr, x_te, y_te = x[:synthetic], y[:synthetic], x[synthetic:], y[synthetic:]
        what = f"synthetic ({synthetic:,} train / {n_test:,} test random images)"
    else:
        from numnet.data import load_mnist

        path = Path(data) if data else DEFAULT_DATA
        (x_tr, y_tr), (x_te, y_te) = load_mnist(path, flatten=True, scale=True,
                                                download=False)
        what = "MNIST"
    x_tr = np.ascontiguousarray(x_tr, dtype=np.float32)
    x_te = np.ascontiguousarray(x_te, dtype=np.float32)
    y_tr, y_te = np.asarray(y_tr, dtype=np.int64), np.asarray(y_te, dtype=np.int64)
    if limit and limit < len(x_tr):
        x_tr, y_tr = x_tr[:limit].copy(), y_tr[:limit].copy()
        what += f" (first {limit:,} training images only)"
    if test_limit and test_limit < len(x_te):
        x_te, y_te = x_te[:test_limit].copy(), y_te[:test_limit].copy()
    return x_tr, y_tr, x_te, y_te, what
