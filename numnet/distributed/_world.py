"""The processes of an MPI job, and the few collective operations numnet uses.

mpi4py is optional: it is imported (which starts MPI) the first time something here needs
MPI, never by ``import numnet``. :func:`rank`, :func:`size` and :func:`is_main` do not even
import it when the process was not started by an MPI launcher.

Every collective goes through :class:`World`, which

* counts the calls, bytes and seconds of each kind (:attr:`World.traffic`), for benchmarks;
* is watched by a timeout: a rank that waits longer than ``timeout`` seconds in one
  collective (another rank crashed, stopped, or hangs) aborts the whole job with a message,
  rather than waiting for ever (``NUMNET_MPI_TIMEOUT`` or :func:`set_timeout`; default 1800
  s, PyTorch's default for its process groups; 0 waits for ever);
* aborts the job when an exception escapes a block that every rank must finish together
  (:meth:`World.abort_on_error`), since the other ranks would wait for this one for ever;
  :meth:`World.main_first` runs a block on rank 0 first (a download), then on the others,
  and raises on every rank when it failed on any.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from numnet.errors import DistributedError, TrainingDiverged

#: set by MPI launchers in every process they start: MPICH's Hydra and Intel MPI (PMI_*),
#: Open MPI (OMPI_*), PMIx-based launchers such as Slurm's srun (PMIX_*), MVAPICH (MV2_*)
LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK",
                      "MV2_COMM_WORLD_SIZE")
TIMEOUT_VARIABLE = "NUMNET_MPI_TIMEOUT"
DEFAULT_TIMEOUT = 1800.0
#: seconds between printing why the job aborts and aborting it: without it the launcher
#: (MPICH's Hydra) may end the job before it has forwarded the message
ABORT_GRACE = 0.5
INSTALL_HINT = ("pip install 'numnet[mpi]' (mpi4py and the mpich wheel, which brings "
                "mpiexec), then run: mpiexec -n 2 python script.py")

_world: World | None = None
_timeout: float | None = None  # set_timeout's value; None reads the environment


def _mpi() -> Any:
    """mpi4py's ``MPI`` module (importing it starts MPI), or an error saying what to install."""
    try:
        # optional dependency (the 'mpi' extra); importing mpi4py.MPI initialises MPI
        from mpi4py import MPI  # noqa: PLC0415
    except ImportError as exc:
        raise ImportError(f"distributed training needs mpi4py and an MPI runtime: "
                          f"{INSTALL_HINT}") from exc
    except RuntimeError as exc:  # mpi4py is there but finds no MPI library
        raise ImportError(f"mpi4py cannot load an MPI library ({exc}): {INSTALL_HINT}") from exc
    return MPI


def launched() -> bool:
    """Whether this process runs under an MPI launcher (``mpiexec``, ``mpirun``, ``srun``)
    or has started MPI already."""
    if _world is not None or any(name in os.environ for name in LAUNCHER_VARIABLES):
        return True
    mpi = sys.modules.get("mpi4py.MPI")
    return mpi is not None and bool(mpi.Is_initialized()) and not mpi.Is_finalized()


def world() -> World:
    """The processes of this job (``MPI.COMM_WORLD``), starting MPI on first use.

    Outside an MPI launcher this is a job of one process (MPI's singleton start).

    Raises
    ------
    ImportError
        When mpi4py or an MPI runtime is not installed.
    """
    global _world
    if _world is None:
        MPI = _mpi()
        _world = World(MPI.COMM_WORLD, MPI)
    return _world


def rank() -> int:
    """This process's number in the job, from 0; 0 without MPI."""
    return world().rank if launched() else 0


def size() -> int:
    """The number of processes in the job; 1 without MPI."""
    return world().size if launched() else 1


def is_main() -> bool:
    """Whether this is rank 0, the process that prints and writes files; True without MPI."""
    return rank() == 0


def set_timeout(seconds: float | None) -> None:
    """How long a rank waits in one collective before it aborts the job (0: for ever).

    ``None`` goes back to ``$NUMNET_MPI_TIMEOUT``, or 1800 s when that is not set.
    """
    global _timeout
    if seconds is not None:
        seconds = _seconds(seconds, "set_timeout(seconds)")
    _timeout = seconds


def timeout() -> float:
    """The timeout in force, in seconds (0: none)."""
    if _timeout is not None:
        return _timeout
    text = os.environ.get(TIMEOUT_VARIABLE)
    return DEFAULT_TIMEOUT if text is None else _seconds(text, f"${TIMEOUT_VARIABLE}")


def _seconds(value: Any, what: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not seconds >= 0 or math.isinf(seconds):
        raise ValueError(f"{what} must be a number of seconds >= 0 (0: no timeout), "
                         f"got {value!r}")
    return seconds


@dataclass
class Traffic:
    """What one kind of collective cost so far: calls, bytes sent per rank, wall seconds."""

    calls: int = 0
    bytes: int = 0
    seconds: float = 0.0


class World:
    """``MPI.COMM_WORLD`` with the collectives numnet uses, counted and watched.

    Attributes
    ----------
    rank, size : int
        This process's number and the number of processes.
    traffic : dict of str to Traffic
        Per kind of collective (``"gradients"``, ``"metrics"``, ...): calls, bytes, seconds.
    """

    def __init__(self, comm: Any, mpi: Any) -> None:
        self.comm, self.mpi = comm, mpi
        self.rank: int = comm.Get_rank()
        self.size: int = comm.Get_size()
        self.traffic: dict[str, Traffic] = {}
        self._watchdog: _Watchdog | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- collectives --------------------------------------------------------------------
    def allreduce(self, buffer: np.ndarray, what: str) -> np.ndarray:
        """Sum ``buffer`` over the ranks, in place (every rank gets the sum); returns it."""
        with self._collective(what, buffer.nbytes):
            self.comm.Allreduce(self.mpi.IN_PLACE, buffer, op=self.mpi.SUM)
        return buffer

    def maximum(self, value: float, what: str) -> float:
        """The largest ``value`` over the ranks."""
        with self._collective(what, 8):
            return float(self.comm.allreduce(float(value), op=self.mpi.MAX))

    def broadcast(self, buffer: np.ndarray, what: str, root: int = 0) -> np.ndarray:
        """Overwrite ``buffer`` with rank ``root``'s, on every rank; returns it."""
        with self._collective(what, buffer.nbytes):
            self.comm.Bcast(buffer, root=root)
        return buffer

    def broadcast_object(self, value: Any, what: str, root: int = 0) -> Any:
        """Rank ``root``'s ``value`` (any picklable object), on every rank."""
        with self._collective(what, 0):
            return self.comm.bcast(value, root=root)

    def allgather_object(self, value: Any, what: str) -> list[Any]:
        """Every rank's ``value``, in rank order, on every rank."""
        with self._collective(what, 0):
            return list(self.comm.allgather(value))

    @contextmanager
    def _collective(self, what: str, nbytes: int) -> Iterator[None]:
        watchdog = self._watch()
        if watchdog is not None:
            watchdog.enter(what)
        start = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - start
            if watchdog is not None:
                watchdog.leave()
            traffic = self.traffic.setdefault(what, Traffic())
            traffic.calls += 1
            traffic.bytes += nbytes
            traffic.seconds += seconds

    def _watch(self) -> _Watchdog | None:
        """The watchdog thread, started on the first collective with a timeout in force.

        It aborts the job from its own thread while the main thread is blocked in MPI,
        which MPI allows at thread level ``MPI_THREAD_MULTIPLE`` (mpi4py's default) only.
        """
        if self.size == 1 or timeout() == 0:
            return None
        if self._watchdog is None:
            if self.mpi.Query_thread() < self.mpi.THREAD_MULTIPLE:
                return None
            self._watchdog = _Watchdog(self)
            self._watchdog.start()
        return self._watchdog

    # -- failures -----------------------------------------------------------------------
    def abort(self, message: str, code: int = 1) -> NoReturn:
        """Print ``message`` and end every process of the job (``MPI_Abort``)."""
        sys.stderr.write(f"numnet: rank {self.rank} of {self.size}: {message}; aborting the "
                         f"MPI job\n")
        sys.stderr.flush()
        sys.stdout.flush()
        time.sleep(ABORT_GRACE)  # the launcher forwards our output before it ends the job
        self.comm.Abort(code)
        os._exit(code)  # Abort does not return; this only satisfies the type checker

    @contextmanager
    def abort_on_error(self, what: str) -> Iterator[None]:
        """Abort the job when an exception escapes the block on this rank.

        The other ranks would wait for this one in their next collective for ever.
        :class:`TrainingDiverged` and :class:`DistributedError` pass: the code raising them
        has made every rank raise them at the same point. In a job of one process
        everything passes.
        """
        try:
            yield
        except (TrainingDiverged, DistributedError):
            raise
        except BaseException as exc:
            if self.size == 1:
                raise
            if not isinstance(exc, KeyboardInterrupt):
                traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
            name = "Ctrl-C" if isinstance(exc, KeyboardInterrupt) else type(exc).__name__
            self.abort(f"{name} while {what}: {exc}".rstrip(": "),
                       130 if isinstance(exc, KeyboardInterrupt) else 1)

    @contextmanager
    def main_first(self, what: str) -> Iterator[None]:
        """Run a block on rank 0, then on the other ranks (a download or a cache is then
        made once); when it fails on any rank, it fails on every rank.

        A rank whose block raised re-raises its own exception; the others raise
        :class:`DistributedError` naming the first rank that failed and its message.
        """
        if self.size == 1:
            yield
            return
        if not self.is_main:
            failed = self.broadcast_object(None, what)
            if failed is not None:
                raise DistributedError(f"rank 0 of {self.size} failed while {what}: {failed}")
        error: Exception | None = None
        try:
            yield
        except Exception as exc:
            error = exc
        message = None if error is None else _describe(error)
        if self.is_main:
            self.broadcast_object(message, what)
            if error is not None:
                raise error
        messages = self.allgather_object(message, what)
        if error is not None:
            raise error
        self._raise_first(messages, what)

    def _raise_first(self, messages: list[str | None], what: str) -> None:
        for index, message in enumerate(messages):
            if message is not None:
                raise DistributedError(f"rank {index} of {self.size} failed while {what}: "
                                       f"{message}")


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Watchdog(threading.Thread):
    """Aborts the job when the main thread waits in one collective longer than the timeout."""

    def __init__(self, world: World) -> None:
        super().__init__(name="numnet-mpi-watchdog", daemon=True)
        self.world = world
        self.since: float | None = None
        self.what = ""

    def enter(self, what: str) -> None:
        self.what = what
        self.since = time.monotonic()

    def leave(self) -> None:
        self.since = None

    def run(self) -> None:
        while True:
            limit = timeout()
            time.sleep(min(1.0, limit / 10) if limit else 1.0)
            since = self.since
            if limit and since is not None and time.monotonic() - since > limit:
                self.world.abort(
                    f"waited more than {limit:g} s for the other ranks in a collective "
                    f"operation ({self.what}): one of them stopped, crashed or hangs "
                    f"(${TIMEOUT_VARIABLE} sets the timeout)")
