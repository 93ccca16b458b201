"""How many BLAS (and OpenMP) threads an estimator's work may use.

A search that runs ``n_jobs`` fits at once in worker processes, each of whose BLAS starts
as many threads as there are cores, asks the machine for ``n_jobs x cores`` threads: they
preempt each other and the search runs slower than it would serially. joblib's default
``loky`` workers are started with one thread each, but its ``multiprocessing`` backend,
``inner_max_num_threads`` and other process pools are not; so the estimators decide for
themselves, with threadpoolctl, around ``fit``, ``partial_fit`` and the predictions:

* ``n_threads=None`` (the default): one thread inside a worker process (a process started
  by :mod:`multiprocessing`: joblib's loky and multiprocessing workers, Dask's worker
  processes, ``concurrent.futures.ProcessPoolExecutor``...), and BLAS's own choice in a
  main process;
* ``n_threads=k``: at most ``k`` threads, anywhere.

The limit is process-wide while the call runs (threadpoolctl sets the libraries' global
thread counts and restores them after), so estimators running in several *threads* of one
process (joblib's ``threading`` backend) should leave ``n_threads=None`` there.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from threadpoolctl import ThreadpoolController


def thread_limit(n_threads: int | None) -> int | None:
    """The limit to apply: ``n_threads``, else 1 in a worker process, else None (none)."""
    if n_threads is not None:
        return n_threads
    return 1 if multiprocessing.parent_process() is not None else None


@lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    """The thread pools loaded in this process (NumPy's BLAS is loaded with numnet)."""
    return ThreadpoolController()


def blas_threads() -> int:
    """The largest thread count among the BLAS libraries loaded (1 when none reports)."""
    counts = [lib.num_threads for lib in _controller().select(user_api="blas").lib_controllers]
    return max(counts, default=1)


@contextmanager
def limited_threads(n_threads: int | None) -> Iterator[int | None]:
    """Run the block under :func:`thread_limit`'s limit (BLAS and OpenMP); yields it."""
    limit = thread_limit(n_threads)
    if limit is None:
        yield None
        return
    with _controller().limit(limits=limit):
        yield limit
