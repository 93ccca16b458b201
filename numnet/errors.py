"""Exceptions raised by numnet.

All input errors derive from :class:`ValueError`, so ``except ValueError`` keeps working
for users who do not care about the finer kinds.
"""

from __future__ import annotations


class ShapeError(ValueError):
    """An array has the wrong rank or size for where it is used."""


class NonFiniteError(ValueError):
    """An array holds NaN or infinite values where finite ones are required."""


class DataError(ValueError):
    """A data file or dataset is malformed (bad header, ragged row, bad checksum, ...).

    ``path``, ``line`` and ``column`` (1-based) say where, when known; else None.
    """

    path: str | None = None
    line: int | None = None
    column: int | None = None


class AllocationError(ValueError, MemoryError):
    """An array numnet was asked to create would not fit in the memory available.

    Raised *before* allocating, naming the layer or array and the bytes it would need.
    It is a :class:`ValueError` (the size asked for is the problem) and a
    :class:`MemoryError` (so ``except MemoryError`` still catches it).
    """


class TrainingDiverged(RuntimeError):
    """Training was stopped because its numbers went bad: a loss, gradient or parameter
    became NaN or infinite, or the loss exploded far beyond its starting value (see
    :mod:`numnet.training.guard`).

    ``epoch`` and ``batch`` (from 0) say where; ``batch`` is None when the validation data
    after an epoch went bad.
    """

    def __init__(self, message: str, epoch: int | None = None,
                 batch: int | None = None) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch


class DistributedError(RuntimeError):
    """The processes of a distributed (MPI) run cannot go on together: another rank failed,
    or the ranks disagree on the data or the arguments. The message names the rank and what.

    Every rank raises it at the same point (``every_rank``), so a program printing errors
    may leave the copy to rank 0.
    """

    every_rank = True


class TrainingWarning(UserWarning):
    """Training looks unhealthy (dead units, a loss stuck at chance level, a rising loss,
    unscaled inputs...), before anything turns NaN.

    :class:`numnet.health.HealthCheck` issues these during ``fit`` (once per kind and run).
    Silence them with ``fit(..., health=False)`` or
    ``warnings.filterwarnings("ignore", category=numnet.errors.TrainingWarning)``.
    """
