"""Scenarios that ``tests/test_distributed.py`` runs under ``mpiexec -n 2``.

Usage: ``mpiexec -n 2 python tests/distributed/worker.py SCENARIO OUTDIR``. Each rank
writes what it saw to ``OUTDIR/<scenario>-<rank>.npz`` / ``.json``; the test compares the
ranks with each other and with one process training on the same global batches.

The models and data come from :func:`build` (imported by the test too), so both sides
start from the same description.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import numnet as nn
from numnet import distributed
from numnet.errors import DistributedError, TrainingDiverged
from numnet.layers import Layer

# -- the cases, shared with the test ----------------------------------------------------------
#: name -> (model kind, fit arguments); every case trains twice (a second fit call resumes
#: with the same optimiser object) to cover the optimiser state's broadcast too
CASES: dict[str, dict[str, Any]] = {
    # n=22, batch 7: batches 7, 7, 7, 1 (parts 4/3 and a last batch of 1: rank 1 empty)
    "adam": {"model": "mlp", "n": 22, "batch_size": 7, "optimizer": ("adam", 1e-2),
             "sample_weight": True, "validation": 9},
    # shuffle off, SGD with Nesterov momentum, L2 in the loss and clipping of the global norm
    "sgd": {"model": "mlp", "n": 23, "batch_size": 5, "optimizer": ("sgd", 0.1),
            "shuffle": False, "l2": 1e-3, "clip_norm": 0.3, "validation": 0},
    # SyncBatchNorm: batch 9 (parts 5 and 4), last batch 4
    "bn_sync": {"model": "bn", "n": 40, "batch_size": 9, "optimizer": ("adam", 1e-2),
                "sync_batchnorm": True, "validation": 7},
    # a small CNN with SyncBatchNorm over (N, H, W) of image batches (BatchNorm2d):
    # batch 5 (parts 3 and 2), last batch 1 (rank 1's part empty: through Flatten too)
    "cnn_sync": {"model": "cnn", "n": 11, "batch_size": 5, "optimizer": ("adam", 1e-2),
                 "sync_batchnorm": True, "validation": 3},
    # a CNN whose Conv2D runs the ReLU after it as one pair (in place in both passes):
    # batch 5 (parts 3 and 2), last batch 1 (rank 1's part empty)
    "cnn_fused": {"model": "cnn_relu", "n": 11, "batch_size": 5, "optimizer": ("adam", 1e-2),
                  "validation": 3},
    # per-rank BatchNorm statistics (the default), compared with a two-replica simulation
    "bn_default": {"model": "bn", "n": 32, "batch_size": 8, "optimizer": ("sgd", 0.05),
                   "shuffle": False, "validation": 6},
    # the default dtype, sample weights, 2 validation rows (on 3 ranks: parts 1, 1 and 0)
    "float32": {"model": "mlp", "dtype": "float32", "n": 20, "batch_size": 4,
                "optimizer": ("adam", 1e-2), "sample_weight": True, "validation": 2},
}


def build(kind: str, seed: int | None = 1, dtype: str = "float64") -> nn.Sequential:
    """A small model without dropout (float64 unless told): an MLP, one with a BatchNorm
    layer, or a CNN with BatchNorm2d on 1 x 5 x 5 images (the same 25 features, reshaped)."""
    if kind == "mlp":
        layers: list[Layer] = [nn.Dense(5, 8), nn.ReLU(), nn.Dense(8, 3)]
    elif kind == "cnn_relu":
        layers = [nn.Reshape((1, 5, 5)), nn.Conv2D(1, 3, 3), nn.ReLU(),
                  nn.MaxPool2D(2, stride=1), nn.Flatten(), nn.Dense(12, 3)]
    elif kind == "cnn":
        layers = [nn.Reshape((1, 5, 5)), nn.Conv2D(1, 3, 3, bias=False), nn.BatchNorm2d(3),
                  nn.ReLU(), nn.MaxPool2D(2, stride=1), nn.Flatten(), nn.Dense(12, 3)]
    else:  # no bias before BatchNorm: its exact gradient is 0, so it would hold rounding
        # noise only (which Adam's normalised step turns into updates of ~1e-11)
        layers = [nn.Dense(5, 8, bias=False), nn.BatchNorm1d(8), nn.ReLU(), nn.Dense(8, 3)]
    model = nn.Sequential(layers, loss="cross_entropy", dtype=dtype, seed=seed, l2=0.0)
    return model


def data(case: dict[str, Any]) -> dict[str, Any]:
    """The training (and validation) data of a case: the same on every rank."""
    rng = np.random.default_rng(7)
    n, n_val = case["n"], case.get("validation", 0)
    images = case["model"].startswith("cnn")
    X = 2 * rng.standard_normal((n + n_val, 25 if images else 5)) + 0.5
    y = rng.integers(0, 3, n + n_val)
    out: dict[str, Any] = {"X": X[:n], "y": y[:n]}
    if case.get("sample_weight"):
        out["sample_weight"] = rng.uniform(0.2, 2.0, n)
    if n_val:
        out["validation_data"] = (X[n:], y[n:])
    return out


def optimizer(case: dict[str, Any]) -> nn.optim.Optimizer:
    name, lr = case["optimizer"]
    if name == "sgd":
        return nn.SGD(lr, momentum=0.9, nesterov=True)
    return nn.Adam(lr)


def fit_kwargs(case: dict[str, Any]) -> dict[str, Any]:
    keys = ("batch_size", "shuffle", "clip_norm")
    return {key: case[key] for key in keys if key in case}


def train_case(case: dict[str, Any], **extra: Any) -> tuple[nn.Sequential, list[Any]]:
    """Two fit calls (3 epochs, then 2 more resuming the optimiser); their histories."""
    model = build(case["model"], dtype=case.get("dtype", "float64"))
    model.l2 = case.get("l2", 0.0)
    opt = optimizer(case)
    d = data(case)
    histories = []
    for epochs in (3, 2):
        histories.append(model.fit(**d, epochs=epochs, optimizer=opt, seed=5, verbose=0,
                                   **fit_kwargs(case), **extra))
    return model, histories


# -- scenarios -------------------------------------------------------------------------------
def train_cases(cases: dict[str, dict[str, Any]]) -> tuple[dict[str, np.ndarray],
                                                             dict[str, Any]]:
    """Train ``cases``, distributed: the final weights and running statistics, the histories."""
    arrays: dict[str, np.ndarray] = {}
    report: dict[str, Any] = {}
    for name, case in cases.items():
        extra = {"distributed": True}
        if case.get("sync_batchnorm"):
            extra["sync_batchnorm"] = True
        model, histories = train_case(case, **extra)
        arrays[f"{name}.params"] = model.flat_params.copy()
        for key, value in model.state_dict().items():
            if key.split(".")[1].startswith("running"):
                arrays[f"{name}.{key}"] = value.copy()
        report[name] = [h.history for h in histories]
    return arrays, report


def scenario_train(out: Path, rank: int) -> None:
    """Every case of CASES, distributed; then the runs that must fail on every rank."""
    arrays, report = train_cases(CASES)
    # a model made without a seed differs on every rank before fit, not after
    model = nn.Sequential([nn.Dense(5, 4), nn.ReLU(), nn.Dense(4, 3)], loss="cross_entropy",
                          dtype="float64")
    model.fit(**data(CASES["adam"]), epochs=1, batch_size=6, verbose=0, distributed=True)
    arrays["unseeded.params"] = model.flat_params.copy()
    report["errors"] = failures(rank)
    np.savez(out / f"train-{rank}.npz", **arrays)
    (out / f"train-{rank}.json").write_text(json.dumps(report))


def scenario_train3(out: Path, rank: int) -> None:
    """On 3 ranks: parts of unequal sizes, two ranks with empty parts of a last batch of
    one row, SyncBatchNorm parts of one row, a validation set smaller than the ranks."""
    arrays, report = train_cases({name: CASES[name] for name in THREE_RANKS})
    np.savez(out / f"train3-{rank}.npz", **arrays)
    (out / f"train3-{rank}.json").write_text(json.dumps(report))


#: the cases the 3-rank scenario trains
THREE_RANKS = ("adam", "bn_sync", "cnn_sync", "float32")


def failures(rank: int) -> dict[str, str]:
    """Runs every rank must refuse alike: their error type and message, per run."""
    seen: dict[str, str] = {}
    case = CASES["adam"]
    d = data(case)
    runs = {
        # rank 1 holds other data
        "different data": lambda: build("mlp").fit(
            d["X"] + rank, d["y"], epochs=1, verbose=0, distributed=True),
        # per-rank BatchNorm statistics need 2 rows in every part: 3 rows on 2 ranks cannot
        "batch too small": lambda: build("bn").fit(
            d["X"], d["y"], epochs=1, batch_size=3, verbose=0, distributed=True),
    }
    for name, run in runs.items():
        try:
            run()
            seen[name] = "no error"
        except (DistributedError, ValueError) as exc:
            seen[name] = f"{type(exc).__name__}: {exc}"
    return seen


class Poison(Layer, register=False):
    """Identity, except that on rank ``bad_rank`` its ``at``-th training call returns NaN."""

    def __init__(self, bad_rank: int, at: int) -> None:
        super().__init__("float64")
        self.bad_rank, self.at, self.calls = bad_rank, at, 0

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if training:
            self.calls += 1
            if self.calls == self.at and distributed.rank() == self.bad_rank:
                return x * np.nan
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out

    def get_config(self) -> dict[str, Any]:
        return {}


def scenario_stops(out: Path, rank: int) -> None:
    """A NaN on rank 1 only, and a Ctrl-C on rank 1 only: both ranks stop alike."""
    case = CASES["adam"]
    d = data(case)
    report: dict[str, Any] = {}
    # NaN: the 6th training forward pass of rank 1 (epoch 2, batch 2)
    model = nn.Sequential([nn.Dense(5, 8), nn.ReLU(), Poison(1, 6), nn.Dense(8, 3)],
                          loss="cross_entropy", dtype="float64", seed=1)
    before: dict[str, np.ndarray] = {}
    keep = nn.LambdaCallback(on_batch_begin=lambda batch, logs: before.update(
        params=model.flat_params.copy()))
    try:
        model.fit(d["X"], d["y"], epochs=3, batch_size=7, verbose=0, distributed=True,
                  callbacks=[keep])
        report["nan"] = {"error": None}
    except TrainingDiverged as exc:
        report["nan"] = {"error": str(exc), "epoch": exc.epoch, "batch": exc.batch,
                         "kept": bool(np.array_equal(model.flat_params, before["params"])),
                         "params": model.flat_params.tolist()}
    # an update that overflows: found alike on every rank (the weights are the same)
    try:
        build("mlp").fit(d["X"] * 100, d["y"], epochs=1, batch_size=7, verbose=0,
                         optimizer=nn.SGD(1e307), distributed=True)
        report["overflow"] = {"error": None}
    except TrainingDiverged as exc:
        report["overflow"] = {"error": str(exc), "type": type(exc).__name__,
                              "every_rank": getattr(exc, "every_rank", False)}
    # a loss that explodes without NaN: judged on the global batch's loss, alike everywhere
    model = build("mlp")
    start = model.flat_params.copy()
    try:
        model.fit(d["X"], d["y"], epochs=3, batch_size=7, verbose=0, optimizer=nn.Adam(1e12),
                  distributed=True)
        report["explode"] = {"error": None}
    except TrainingDiverged as exc:
        report["explode"] = {"error": str(exc), "epoch": exc.epoch, "batch": exc.batch,
                             "every_rank": getattr(exc, "every_rank", False),
                             "kept": bool(np.array_equal(model.flat_params, start))}
    # Ctrl-C reaches rank 1 alone, in epoch 2, batch 2 (mpiexec passes Ctrl-C to every
    # rank, but each sees it at a different point of its work: the ranks must agree)
    batches: list[tuple[int, int]] = []
    epoch_now = [0]

    def press(batch: int, logs: Any) -> None:
        batches.append((epoch_now[0], batch))
        if rank == 1 and epoch_now[0] == 1 and batch == 1:
            os.kill(os.getpid(), signal.SIGINT)

    counter = nn.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: epoch_now.__setitem__(0, epoch),
        on_batch_end=press)
    model = build("mlp")
    history = model.fit(d["X"], d["y"], epochs=4, batch_size=5, verbose=0,
                        distributed=True, callbacks=[counter])
    report["ctrl_c"] = {"interrupted": history.interrupted, "epochs": len(history),
                        "batches": batches, "params": model.flat_params.tolist()}
    report["stop"] = stop_on_one_rank(rank, d)
    (out / f"stops-{rank}.json").write_text(json.dumps(report))


class StopOnRank1(nn.Callback):
    """Sets ``model.stop_training`` on rank 1 alone: after epoch 2's batch 2 (``when=
    "batch"``) or at epoch 1's end (``"epoch"``); records the batches this rank trained."""

    def __init__(self, rank: int, when: str) -> None:
        super().__init__()
        self.rank, self.when, self.epoch = rank, when, 0
        self.batches: list[tuple[int, int]] = []

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch

    def on_batch_end(self, batch: int, logs: Any = None) -> None:
        self.batches.append((self.epoch, batch))
        if self.rank == 1 and self.when == "batch" and (self.epoch, batch) == (1, 1):
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self.rank == 1 and self.when == "epoch" and epoch == 0:
            self.model.stop_training = True


def stop_on_one_rank(rank: int, d: dict[str, Any]) -> dict[str, Any]:
    """A callback on one rank stops training: every rank stops alike."""
    seen: dict[str, Any] = {}
    for when in ("batch", "epoch"):
        model = build("mlp")
        stopper = StopOnRank1(rank, when)
        history = model.fit(d["X"], d["y"], epochs=4, batch_size=5, verbose=0,
                            distributed=True, callbacks=[stopper])
        seen[when] = {"epochs": len(history), "stopped_early": history.stopped_early,
                      "batches": stopper.batches, "params": model.flat_params.tolist()}
    return seen


def scenario_files(out: Path, rank: int) -> None:
    """Callbacks that write files, and the progress output, on rank 0 only."""
    case = CASES["adam"]
    d = data(case)
    model = build("mlp")
    checkpoint = nn.ModelCheckpoint(str(out / "ckpt-{epoch}.npz"))
    logger = nn.CSVLogger(out / "log.csv")
    stopper = nn.EarlyStopping(monitor="loss", patience=50, verbose=1)
    model.fit(d["X"], d["y"], epochs=3, batch_size=7, verbose=2, distributed=True,
              callbacks=[checkpoint, logger, stopper])
    report = {"saved": checkpoint.saved, "stopper_verbose": stopper.verbose,
              "params": model.flat_params.tolist()}
    (out / f"files-{rank}.json").write_text(json.dumps(report))


def misbehave(rank: int, act: Any) -> None:
    """Train a small model; on rank 1 only, ``act()`` at the end of batch 2 of epoch 1."""
    def on_batch_end(batch: int, logs: Any) -> None:
        if rank == 1 and batch == 1:
            act()

    d = data(CASES["adam"])
    build("mlp").fit(d["X"], d["y"], epochs=2, batch_size=5, verbose=0, distributed=True,
                     callbacks=[nn.LambdaCallback(on_batch_end=on_batch_end)])


def boom() -> None:
    raise RuntimeError("boom on rank 1")


def scenario_crash(out: Path, rank: int) -> None:
    """An exception on rank 1 only, inside fit: the job must abort, not hang."""
    misbehave(rank, boom)


def scenario_stall(out: Path, rank: int) -> None:
    """Rank 1 stalls inside fit: rank 0 must give up after $NUMNET_MPI_TIMEOUT seconds."""
    misbehave(rank, lambda: time.sleep(60))


def scenario_killed(out: Path, rank: int) -> None:
    """Rank 1 dies inside fit without a word (as by the kernel's out-of-memory killer)."""
    misbehave(rank, lambda: os.kill(os.getpid(), signal.SIGKILL))


SCENARIOS = {"train": scenario_train, "train3": scenario_train3, "stops": scenario_stops,
             "files": scenario_files, "crash": scenario_crash, "stall": scenario_stall,
             "killed": scenario_killed}

if __name__ == "__main__":
    SCENARIOS[sys.argv[1]](Path(sys.argv[2]), distributed.rank())
