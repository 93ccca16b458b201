"""Callbacks: code that ``fit`` runs at fixed points of training.

A callback subclasses :class:`Callback` and overrides any of its hooks::

    on_train_begin(logs)            on_train_end(logs)
    on_epoch_begin(epoch, logs)     on_epoch_end(epoch, logs)
    on_batch_begin(batch, logs)     on_batch_end(batch, logs)
    on_test_begin(logs)             on_test_end(logs)

``epoch`` and ``batch`` count from 0. Before training starts ``fit`` sets three attributes:
``model`` (the :class:`~numnet.model.Sequential`), ``optimizer`` and ``params`` (a dict with
``epochs``, ``batch_size``, ``steps`` (batches per epoch), ``samples``, ``verbose`` and
``metrics``, the keys the epoch logs will have). Setting ``self.model.stop_training = True``
ends training after the current batch.

The logs of ``on_epoch_end`` hold that epoch's ``loss``, ``accuracy`` (classifiers),
``val_loss``/``val_accuracy`` (with validation data), ``lr`` and ``seconds``; the logs of
``on_batch_end`` hold ``batch``, ``size`` and the epoch's running mean ``loss`` (and
``accuracy``) so far. ``on_test_begin`` and ``on_test_end`` surround the scoring of the
validation data at each epoch's end, as in Keras (their logs are empty, then the scores).

In a distributed run (``fit(..., distributed=True)`` under MPI) every process runs the
callbacks with the same logs, so they decide alike (early stopping, learning-rate
schedules); those that write files or to the terminal (``main_only = True``: the progress
bar, :class:`ModelCheckpoint`, :class:`CSVLogger`) run on rank 0 only, and the others run
with ``verbose`` set to 0 on the other ranks. ``model.stop_training`` set on any rank stops
every rank: at an epoch's end after that epoch, inside an epoch one batch later (the next
step's all-reduce tells the other ranks).
"""

from __future__ import annotations

import csv
import inspect
import math
import os
import string
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from numnet._checks import real_number
from numnet.optim import (
    CosineDecay,
    LRSchedule,
    Optimizer,
    ReduceLROnPlateau,
    is_improvement,
    non_negative_int,
    resolve_mode,
)

if TYPE_CHECKING:
    from numnet.model import Sequential

#: the keys fit itself writes into the epoch logs (some only for classifiers / validation)
STANDARD_LOGS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")


class Callback:
    """Base class: every hook does nothing. See the module docstring."""

    # set by fit before on_train_begin (set_context): a callback runs inside fit only
    model: Sequential
    optimizer: Optimizer
    #: run on rank 0 only in a distributed run: the callback writes files or to the terminal
    main_only: bool = False

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def set_context(self, model: Sequential, optimizer: Optimizer,
                    params: dict[str, Any]) -> None:
        """Called by ``fit`` before ``on_train_begin``."""
        self.model, self.optimizer, self.params = model, optimizer, params

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        pass

    # -- shared by the monitoring callbacks ---------------------------------------------
    def _require_metric(self, monitor: str) -> None:
        """Fail at the start of training, not after an epoch, when ``monitor`` won't exist.

        A name ``fit`` never writes may still come from another callback (a custom metric),
        so only ``fit``'s own names and ``val_*`` without validation data fail here.
        """
        available = self.params.get("metrics")
        if available is None or monitor in available:
            return
        no_validation = monitor.startswith("val_") and "val_loss" not in available
        if monitor in STANDARD_LOGS or no_validation:
            hint = " (pass validation_data or validation_split to fit)" if no_validation else ""
            raise ValueError(f"{type(self).__name__} monitors {monitor!r}, but the epoch logs "
                             f"will only have {list(available)}{hint}")

    def _monitored(self, monitor: str, logs: dict[str, Any] | None) -> float:
        if not logs or monitor not in logs:
            raise ValueError(f"{type(self).__name__} monitors {monitor!r}, but the epoch logs "
                             f"have only {list(logs or {})}")
        return float(logs[monitor])


class CallbackList:
    """Calls one hook on every callback in order (used by ``fit``)."""

    def __init__(self, callbacks: list[Callback]) -> None:
        self.callbacks = callbacks

    def set_context(self, model: Sequential, optimizer: Optimizer,
                    params: dict[str, Any]) -> None:
        for callback in self.callbacks:
            callback.set_context(model, optimizer, params)

    def call(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(*args)


class EarlyStopping(Callback):
    """Stop training when a monitored metric has stopped improving.

    A value *improves* on the best so far when it is lower by more than ``min_delta``
    (``mode='min'``) or higher by more than ``min_delta`` (``'max'``); ``'auto'`` chooses
    ``'max'`` for accuracy-like names and ``'min'`` otherwise. Training stops after
    ``patience`` epochs in a row without improvement (``patience=0`` behaves as 1: stop at
    the first epoch that does not improve).

    With ``restore_best_weights=True`` the parameters and buffers of the best epoch are put
    back when training ends, whether it stopped early or ran all its epochs.

    Attributes
    ----------
    best, best_epoch : float, int
        The best value seen and its epoch (from 0).
    stopped_epoch : int or None
        The epoch after which training was stopped, if it was.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = False,
                 verbose: int = 0) -> None:
        super().__init__()
        self.monitor = str(monitor)
        self.patience = non_negative_int(patience, "EarlyStopping patience")
        self.min_delta = real_number(min_delta, "EarlyStopping min_delta", low=0.0)
        self.mode = resolve_mode(mode, self.monitor)
        self.restore_best_weights = bool(restore_best_weights)
        self.verbose = verbose
        self._reset()

    def _reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.best_state: dict[str, np.ndarray] | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._require_metric(self.monitor)
        self._reset()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = self._monitored(self.monitor, logs)
        if is_improvement(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_state = {k: v.copy() for k, v in self.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= max(self.patience, 1):
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if (logs or {}).get("diverged"):
            return  # fit restored the weights from before the bad batch, and says so
        if self.restore_best_weights and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        if self.verbose and self.stopped_epoch is not None:
            restored = (f"; restored the weights of epoch {self.best_epoch + 1}"
                        if self.best_state is not None and self.best_epoch is not None
                        else "")
            print(f"early stopping after epoch {self.stopped_epoch + 1}: {self.monitor} did "
                  f"not improve on {self.best:.6g}{restored}", file=sys.stderr)


def _format_fields(path: str) -> list[str]:
    """The names of the ``{field}`` placeholders in ``path``."""
    try:
        parsed = list(string.Formatter().parse(path))
    except ValueError as exc:
        raise ValueError(f"ModelCheckpoint path {path!r} is not a valid format string: "
                         f"{exc}") from exc
    fields = [name.split(".")[0].split("[")[0] for _, name, _, _ in parsed if name is not None]
    positional = [name for name in fields if not name or name.isdigit()]
    if positional:
        raise ValueError(f"ModelCheckpoint path {path!r} has a positional field "
                         f"{{{positional[0]}}}: name the field, e.g. {{epoch}} or {{val_loss}}")
    return fields


class ModelCheckpoint(Callback):
    """Save the model with its :meth:`~numnet.model.Sequential.save` at the end of epochs.

    ``path`` may hold format fields filled from the epoch (from 1) and the logs, e.g.
    ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``. With ``save_best_only=True`` the model is
    saved only when ``monitor`` improves (see :class:`EarlyStopping` for ``mode``); with
    ``save_optimizer=True`` the optimiser's configuration and state are saved too, so
    training can resume exactly.

    Attributes
    ----------
    saved : list of str
        Every path written, in order.
    """

    main_only = True

    def __init__(self, path: str | os.PathLike[str], monitor: str = "val_loss",
                 save_best_only: bool = False, mode: str = "auto",
                 save_optimizer: bool = False) -> None:
        super().__init__()
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"ModelCheckpoint path must be a string or path, got {path!r}")
        self.path = os.fspath(path)
        self.monitor = str(monitor)
        self.save_best_only = bool(save_best_only)
        self.mode = resolve_mode(mode, self.monitor)
        self.save_optimizer = bool(save_optimizer)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.saved: list[str] = []

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self.save_best_only:
            self._require_metric(self.monitor)
        for field in _format_fields(self.path):
            if field != "epoch":
                self._require_metric(field)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        if self.save_best_only:
            value = self._monitored(self.monitor, logs)
            if not is_improvement(value, self.best, self.mode, 0.0):
                return
            self.best = value
        try:
            path = self.path.format(epoch=epoch + 1, **logs) if "{" in self.path else self.path
        except KeyError as exc:
            raise ValueError(f"ModelCheckpoint path {self.path!r} names {exc}, which the epoch "
                             f"logs do not have (they have epoch and {sorted(logs)})") from exc
        self.model.save(path, optimizer=self.optimizer if self.save_optimizer else None)
        self.saved.append(path)


class LearningRateScheduler(Callback):
    """Set the optimiser's learning rate from a schedule.

    ``schedule`` is one of

    * an :class:`numnet.optim.LRSchedule` (``StepDecay``, ``ExponentialDecay``,
      ``CosineDecay``): ``lr = schedule(epoch)`` at the start of each epoch; a schedule
      without ``initial_lr`` starts from ``optimizer.initial_lr``, the rate the optimiser
      was made with (restored with its state, so a resumed run continues the schedule);
      a schedule with ``per_batch=True`` (``CosineDecay``) is evaluated before every
      batch instead, at ``epoch + batch / steps``;
    * a function ``f(epoch) -> lr`` or ``f(epoch, lr) -> lr`` (as in Keras), called at the
      start of each epoch;
    * a :class:`numnet.optim.ReduceLROnPlateau`, stepped at the end of each epoch with
      ``logs[schedule.monitor]``.
    """

    def __init__(self, schedule: Any, verbose: int = 0) -> None:
        super().__init__()
        if not callable(schedule) and not isinstance(schedule, ReduceLROnPlateau):
            raise TypeError("LearningRateScheduler needs an LRSchedule, a ReduceLROnPlateau or "
                            f"a function epoch -> lr, got {schedule!r}")
        self.schedule = schedule
        self.verbose = verbose
        self._takes_lr = _takes_two_arguments(schedule)
        self._epoch = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if isinstance(self.schedule, ReduceLROnPlateau):
            self._require_metric(self.schedule.monitor)
            self.schedule.reset()
        elif isinstance(self.schedule, LRSchedule):
            self._base_lr = self.schedule.initial_lr or float(self.optimizer.initial_lr)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch
        if isinstance(self.schedule, ReduceLROnPlateau):
            return
        if isinstance(self.schedule, LRSchedule):
            lr = self.schedule.lr_at(epoch, self._base_lr)
        elif self._takes_lr:
            lr = self.schedule(epoch, self.optimizer.lr)
        else:
            lr = self.schedule(epoch)
        self._set(real_number(lr, f"learning rate from the schedule at epoch {epoch}",
                              low=0.0), epoch)

    def on_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if isinstance(self.schedule, CosineDecay) and self.schedule.per_batch:
            # the verbose message stays per epoch: the rate changes at every batch
            steps = max(int(self.params.get("steps", 1)), 1)
            self.optimizer.lr = self.schedule.lr_at(self._epoch + batch / steps, self._base_lr)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if isinstance(self.schedule, ReduceLROnPlateau):
            value = self._monitored(self.schedule.monitor, logs)
            self._set(self.schedule.step(value, self.optimizer.lr), epoch)

    def _set(self, lr: float, epoch: int) -> None:
        if self.verbose and lr != self.optimizer.lr:
            print(f"epoch {epoch + 1}: learning rate {self.optimizer.lr:.4g} -> {lr:.4g}",
                  file=sys.stderr)
        self.optimizer.lr = lr


def _takes_two_arguments(schedule: Any) -> bool:
    """Whether a plain function schedule has the Keras form ``f(epoch, lr)``."""
    if isinstance(schedule, (LRSchedule, ReduceLROnPlateau)):
        return False
    try:
        parameters = inspect.signature(schedule).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in parameters)


class CSVLogger(Callback):
    """Write one CSV row per epoch: ``epoch`` (from 0) and every log value.

    The file is opened, appended to and closed at each epoch end, so every finished epoch
    is on disk at once (readable while training runs, kept if training dies). It is
    emptied when training starts unless ``append=True``; the header is the first epoch's
    keys.
    """

    main_only = True

    def __init__(self, path: str | os.PathLike[str], separator: str = ",",
                 append: bool = False) -> None:
        super().__init__()
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"CSVLogger path must be a string or path, got {path!r}")
        self.path = Path(path)
        self.separator = separator
        self.append = bool(append)
        self.keys: list[str] | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.keys = None
        if self.append and self.path.is_file() and self.path.stat().st_size > 0:
            with self.path.open(newline="") as handle:
                self.keys = next(csv.reader(handle, delimiter=self.separator))
        else:
            self.path.write_text("")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        row = {"epoch": epoch, **(logs or {})}
        with self.path.open("a", newline="") as handle:
            writer = csv.writer(handle, delimiter=self.separator)
            if self.keys is None:
                self.keys = list(row)
                writer.writerow(self.keys)
            writer.writerow([row.get(key, "") for key in self.keys])


class LambdaCallback(Callback):
    """A callback from plain functions, one per hook, each taking that hook's arguments.

    Examples
    --------
    >>> losses = []
    >>> record = LambdaCallback(on_epoch_end=lambda epoch, logs: losses.append(logs["loss"]))
    """

    HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
             "on_batch_begin", "on_batch_end", "on_test_begin", "on_test_end")

    def __init__(self, **hooks: Callable[..., Any] | None) -> None:
        super().__init__()
        unknown = sorted(set(hooks) - set(self.HOOKS))
        if unknown:
            raise TypeError(f"LambdaCallback: unknown hook(s) {unknown}; known: "
                            f"{list(self.HOOKS)}")
        for name, function in hooks.items():
            if function is None:
                continue
            if not callable(function):
                raise TypeError(f"LambdaCallback {name} must be callable, got {function!r}")
            setattr(self, name, function)


class ProgressBar(Callback):
    """Report progress on standard error.

    ``verbose=1``: a tqdm bar per epoch with the running loss and accuracy, samples per
    second and the time left (a line per epoch when tqdm is not installed); ``verbose=2``:
    one line per epoch. ``fit(verbose=...)`` adds one of these itself.
    """

    main_only = True

    def __init__(self, verbose: int = 1) -> None:
        super().__init__()
        self.verbose = verbose
        self._bar: Any = None
        self._tqdm: Any = None
        self._start = 0.0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._tqdm = None
        if self.verbose == 1:
            self._tqdm = _tqdm()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()
        if self._tqdm is not None:
            self._bar = self._tqdm(total=self.params.get("samples"), unit="sample",
                                   unit_scale=True, file=sys.stderr, leave=True,
                                   desc=f"epoch {epoch + 1}/{self.params.get('epochs')}")

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self._bar is not None and logs:
            self._bar.update(logs.get("size", 0))
            self._bar.set_postfix_str(_format_logs(logs, ("loss", "accuracy")), refresh=False)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        if self._bar is not None:
            shown = ("loss", "accuracy", "val_loss", "val_accuracy")
            self._bar.set_postfix_str(_format_logs(logs, shown), refresh=True)
            self._bar.close()
            self._bar = None
            return
        seconds = logs.get("seconds", time.perf_counter() - self._start)
        keys = ("loss", "accuracy", "val_loss", "val_accuracy", "lr")
        print(f"epoch {epoch + 1}/{self.params.get('epochs')} - {seconds:.2f}s - "
              f"{_format_logs(logs, keys, sep=' - ')}", file=sys.stderr, flush=True)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._bar is not None:  # an interrupted epoch
            self._bar.close()
            self._bar = None


def _tqdm() -> Any:
    """tqdm's bar, or None when the optional 'progress' extra is not installed."""
    try:
        from tqdm.auto import tqdm  # noqa: PLC0415 - optional dependency, imported when used
    except ImportError:
        return None
    return tqdm


def _format_logs(logs: dict[str, Any], keys: tuple[str, ...], sep: str = " ") -> str:
    parts = []
    for key in keys:
        if key in logs:
            spec = ".3g" if key == "lr" else ".4f"
            parts.append(f"{key}={logs[key]:{spec}}" if sep == " " else
                         f"{key}: {logs[key]:{spec}}")
    return sep.join(parts)

