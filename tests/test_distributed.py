"""Data-parallel training with MPI (numnet.distributed, fit(distributed=True)).

The first tests need no MPI: the sharding arithmetic, and SyncBatchNorm's maths with the
ranks played by threads of this process. The others launch ``mpiexec -n 2`` on the scripts
of ``tests/distributed/worker.py`` and compare what both ranks saw with each other and with
one process training on the same global batches (float64, no dropout: equal to 1e-10).
They are skipped, with the reason, where mpi4py or an MPI runtime with ``mpiexec`` is
missing; every launch has a timeout, so a hang fails the test instead of the CI job.
"""

from __future__ import annotations

import copy
import csv
import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numnet as nn
from numnet.distributed import SyncBatchStats
from numnet.training.data import Batches, Data, batch_bounds
from numnet.training.parallel import DataParallel
from numnet.training.replica import Shards, shard_bounds

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "distributed" / "worker.py"
sys.path.insert(0, str(WORKER.parent))
import worker  # noqa: E402  (the scenarios and the cases they share with these tests)

LAUNCH_TIMEOUT = 180  # seconds: a launch that takes longer has hung


def assert_close(actual: np.ndarray, desired: np.ndarray) -> None:
    """Equal to 1e-10 relative, each entry (an entry near 0: to 1e-13 absolute)."""
    np.testing.assert_allclose(actual, desired, rtol=1e-10, atol=1e-13)


# -- without MPI: the sharding ---------------------------------------------------------------
@given(st.integers(0, 200), st.integers(1, 9))
def test_shard_bounds_cut_a_batch_into_contiguous_parts_of_nearly_equal_size(n, size):
    parts = [shard_bounds(n, rank, size) for rank in range(size)]
    assert parts[0][0] == 0 and parts[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:], strict=False))  # contiguous
    sizes = [hi - lo for lo, hi in parts]
    assert max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)  # the larger parts first
    assert sizes == [len(part) for part in np.array_split(np.arange(n), size)]


def test_shard_bounds_worked_examples():
    assert [shard_bounds(7, r, 2) for r in range(2)] == [(0, 4), (4, 7)]
    assert [shard_bounds(1, r, 2) for r in range(2)] == [(0, 1), (1, 1)]  # rank 1: empty
    assert [shard_bounds(10, r, 3) for r in range(3)] == [(0, 4), (4, 7), (7, 10)]


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("n, batch_size, size", [(22, 7, 2), (23, 5, 3), (5, 4, 4)])
def test_the_ranks_parts_make_up_the_batches_of_one_process(shuffle, n, batch_size, size):
    rng = np.random.default_rng(0)
    data = Data(rng.standard_normal((n, 3)), rng.integers(0, 4, n), rng.random(n))
    bounds = batch_bounds(n, batch_size, 1)
    whole = [tuple(a.copy() for a in batch)  # copies: shuffled batches reuse one buffer
             for batch in Batches(data, bounds, shuffle, np.random.default_rng(5))]
    ranks = [Shards(data, bounds, shuffle, np.random.default_rng(5), rank, size)
             for rank in range(size)]
    parts = []
    for shards in ranks:  # the weights of each batch's parts sum to one
        rows = []
        for batch in shards:
            rows.append((*(a.copy() for a in batch), shards.weight))
        parts.append(rows)
    for index, (xb, yb, wb) in enumerate(whole):
        assert np.array_equal(np.concatenate([p[index][0] for p in parts]), xb)
        assert np.array_equal(np.concatenate([p[index][1] for p in parts]), yb)
        assert np.array_equal(np.concatenate([p[index][2] for p in parts]), wb)
        assert sum(p[index][3] for p in parts) == pytest.approx(1.0)
        assert [p[index][0].shape[0] for p in parts] == [
            hi - lo for lo, hi in (shard_bounds(xb.shape[0], r, size) for r in range(size))]


@pytest.mark.parametrize("cls", sorted(
    (cls for name, cls in nn.layers.Layer.registry.items() if name.startswith("numnet.")),
    key=lambda cls: cls.__name__))
def test_every_layer_passes_an_empty_batch_forward_and_backward(cls):
    """A rank with no rows of a last batch smaller than the ranks still runs the step
    (``replica.join``) on an empty part. A layer keeping batch statistics meets one only
    with SyncBatchNorm (see the sync tests); here it runs in evaluation mode."""
    for case in cls.gradcheck_cases():
        layer, x = case.layer, case.x[:0]
        training = not layer.buffers
        out = layer.forward(x, training=training)
        assert out.shape == (0, *layer.output_shape(x.shape[1:]))
        assert layer.backward(np.zeros_like(out)).shape == x.shape


class FakeWorld:
    """Stands in for numnet.distributed.World: ``size`` ranks of which we are ``rank``."""

    def __init__(self, rank: int = 0, size: int = 2) -> None:
        self.rank, self.size, self.is_main = rank, size, rank == 0


def _bn_model() -> nn.Sequential:
    return worker.build("bn")


def test_per_rank_batchnorm_needs_its_rows_in_every_part():
    replicas = DataParallel(comm=FakeWorld(size=2))
    model = _bn_model()
    assert replicas.min_batch(model, 40, 4) == 4  # a last batch below 4 joins the one before
    with pytest.raises(ValueError, match=r"batch_size=3 split over 2 ranks.*"
                                         r"batch_size >= 4, or fit\(\.\.\., sync_batch"):
        replicas.min_batch(model, 40, 3)
    with pytest.raises(ValueError, match="the training set has 3 samples"):
        replicas.min_batch(model, 3, 8)
    synced = DataParallel(sync_batchnorm=True, comm=FakeWorld(size=2))
    assert synced.min_batch(model, 40, 3) == 2  # the global batch: one process's rule
    mlp = DataParallel(comm=FakeWorld(size=3))  # no batch statistics: empty parts are fine
    assert mlp.min_batch(worker.build("mlp"), 40, 1) == 1


def test_sync_batchnorm_needs_distributed():
    X, y = np.zeros((4, 5)), np.zeros(4, dtype=int)
    with pytest.raises(ValueError, match="sync_batchnorm=True .* needs distributed=True"):
        _bn_model().fit(X, y, verbose=0, sync_batchnorm=True)
    with pytest.raises(TypeError, match="distributed must be True or False"):
        _bn_model().fit(X, y, verbose=0, distributed="yes")


class ThreadWorld(FakeWorld):
    """Ranks played by threads: ``allreduce`` sums every thread's buffer, in rank order."""

    def __init__(self, rank: int, size: int, shared: dict) -> None:
        super().__init__(rank, size)
        self.shared = shared

    def allreduce(self, buffer: np.ndarray, what: str) -> np.ndarray:
        slots, barrier = self.shared["slots"], self.shared["barrier"]
        slots[self.rank] = buffer.copy()
        barrier.wait()
        total = slots[0].copy()
        for other in slots[1:]:
            total += other
        barrier.wait()
        buffer[...] = total
        return buffer


class Share:
    def __init__(self, weight: float) -> None:
        self.weight = weight


def _on_threads(size: int, work) -> list:
    """Run ``work(rank, world)`` on ``size`` threads; their results in rank order."""
    shared = {"slots": [None] * size, "barrier": threading.Barrier(size, timeout=10)}
    results: list = [None] * size

    def run(rank: int) -> None:
        results[rank] = work(rank, ThreadWorld(rank, size, shared))

    threads = [threading.Thread(target=run, args=(rank,)) for rank in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.parametrize("image", [False, True], ids=["BatchNorm1d", "BatchNorm2d"])
@pytest.mark.parametrize("n, size", [(7, 2), (9, 3), (3, 4)])
def test_sync_batchnorm_over_ranks_equals_one_batchnorm_on_the_global_batch(n, size, image):
    """Forward, backward (in each rank's loss scale, see numnet.distributed.batchnorm) and
    running statistics, with a part that may be empty; images in channels-last memory."""
    rng = np.random.default_rng(n)
    layer = (nn.BatchNorm2d if image else nn.BatchNorm1d)(3, dtype="float64")
    layer.params["gamma"][...] = rng.uniform(0.5, 2, 3)
    layer.params["beta"][...] = rng.standard_normal(3)
    layer.buffers["running_mean"][...] = rng.standard_normal(3)  # the shift of the sums
    shape = (n, 3, 2, 4) if image else (n, 3)
    X = 3 * rng.standard_normal(shape) + 5
    if image:  # as a Conv2D leaves them: channels last in memory
        X = np.ascontiguousarray(X.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    G = rng.standard_normal(shape)  # dL/dy of the global batch's loss
    reference = copy.deepcopy(layer)
    y = reference.forward(X, training=True)
    dX = reference.backward(G)

    def work(rank, world):
        lo, hi = shard_bounds(n, rank, size)
        weight = (hi - lo) / n
        replica = copy.deepcopy(layer)
        replica.sync = SyncBatchStats(world, Share(weight))
        out = replica.forward(X[lo:hi], training=True)
        g = G[lo:hi] / weight if weight else G[lo:hi]  # the gradient of this rank's loss
        dx = replica.backward(g)
        return lo, hi, weight, out, dx, replica

    for lo, hi, weight, out, dx, replica in _on_threads(size, work):
        np.testing.assert_allclose(out, y[lo:hi], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dx * weight, dX[lo:hi], rtol=1e-10, atol=1e-12)
        for key in ("running_mean", "running_var"):
            np.testing.assert_allclose(replica.buffers[key], reference.buffers[key],
                                       rtol=1e-12)
    results = _on_threads(size, work)
    for key in ("gamma", "beta"):  # the step's all-reduce weights the local sums
        summed = sum(weight * replica.grads[key] for _, _, weight, _, _, replica in results)
        np.testing.assert_allclose(summed, reference.grads[key], rtol=1e-10)


def test_sync_statistics_are_taken_per_channel_over_every_axis_but_the_channels():
    """BatchNorm2d's layout (N, C, H, W) takes the same path; the shift keeps the one-pass
    variance accurate far from zero."""
    rng = np.random.default_rng(1)
    X = 1e4 + rng.standard_normal((5, 3, 4, 2))
    shift = np.full(3, 1e4)

    def work(rank, world):
        lo, hi = shard_bounds(5, rank, 2)
        return SyncBatchStats(world, Share(0.5)).moments(X[lo:hi], shift)

    for mean, var, count in _on_threads(2, work):
        assert count == 5 * 4 * 2
        np.testing.assert_allclose(mean, X.mean(axis=(0, 2, 3)), rtol=1e-14)
        np.testing.assert_allclose(var, X.var(axis=(0, 2, 3)), rtol=1e-10)


def test_rank_size_and_is_main_without_mpi_and_import_numnet_leaves_mpi4py_alone():
    code = ("import sys, numnet, numnet.distributed as d; "
            "assert 'mpi4py' not in sys.modules; "
            "print(d.rank(), d.size(), d.is_main(), d.launched(), 'mpi4py' in sys.modules)")
    env = {key: value for key, value in os.environ.items()
           if key not in nn.distributed._world.LAUNCHER_VARIABLES}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "1", "True", "False", "False"]


def test_cli_sync_batchnorm_needs_distributed(tmp_path):
    result = subprocess.run([sys.executable, "-m", "numnet", "train", "--sync-batchnorm"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 2
    assert result.stderr.startswith("numnet: error: --sync-batchnorm synchronises BatchNorm")
    assert "it needs --distributed" in result.stderr


def test_timeout_setting_is_checked():
    with pytest.raises(ValueError, match="seconds >= 0"):
        nn.distributed.set_timeout(-1)
    nn.distributed.set_timeout(5)
    try:
        assert nn.distributed.timeout() == 5
    finally:
        nn.distributed.set_timeout(None)


# -- with MPI: launches of mpiexec -n 2 --------------------------------------------------------
def _mpiexec() -> str | None:
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def _environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg",
               NUMNET_MPI_TIMEOUT="60")
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def mpiexec() -> str:
    """``mpiexec``, once it has run two processes that meet in a collective."""
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed (pip install 'numnet[mpi]')")
    launcher = _mpiexec()
    if launcher is None:
        pytest.skip("no mpiexec on PATH: install an MPI runtime (pip install mpich)")
    probe = "from mpi4py import MPI; MPI.COMM_WORLD.Barrier()"
    try:
        result = subprocess.run([launcher, "-n", "2", sys.executable, "-c", probe],
                                capture_output=True, text=True, timeout=60,
                                env=_environment())
    except subprocess.TimeoutExpired:
        pytest.skip("mpiexec -n 2 could not start two connected processes within 60 s")
    if result.returncode != 0:
        pytest.skip(f"mpiexec -n 2 fails on this machine: {result.stderr.strip()[-300:]}")
    return launcher


def launch(mpiexec: str, *args: str, cwd: Path, timeout: float = LAUNCH_TIMEOUT,
           ranks: int = 2, **env: str) -> subprocess.CompletedProcess:
    """``mpiexec -n RANKS -prepend-rank ARGS``: every output line starts with ``[rank]``."""
    command = [mpiexec, "-n", str(ranks)]
    if "hydra" in subprocess.run([mpiexec, "--version"], capture_output=True,
                                 text=True).stdout.lower():
        command.append("-prepend-rank")  # MPICH's launcher
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env=_environment(**env))


def scenario(mpiexec: str, name: str, out: Path, ranks: int = 2
             ) -> subprocess.CompletedProcess:
    result = launch(mpiexec, sys.executable, str(WORKER), name, str(out), cwd=out,
                    ranks=ranks)
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result


@pytest.fixture(scope="module")
def trained(mpiexec, tmp_path_factory):
    """The ``train`` scenario: every case of worker.CASES on 2 ranks, per rank."""
    out = tmp_path_factory.mktemp("train")
    scenario(mpiexec, "train", out)
    return [(dict(np.load(out / f"train-{rank}.npz")),
             json.loads((out / f"train-{rank}.json").read_text())) for rank in (0, 1)]


def assert_trained_as_one_process(arrays: dict, report: dict, name: str) -> None:
    """Case ``name`` of a distributed run equals one process's: to 1e-10 in float64, to
    float32's rounding (amplified over 5 epochs of Adam) in float32."""
    case = worker.CASES[name]
    model, histories = worker.train_case(case)
    close = assert_close if model.dtype == np.float64 else functools.partial(
        np.testing.assert_allclose, rtol=1e-4, atol=1e-6)
    close(arrays[f"{name}.params"], model.flat_params)
    for key, value in model.state_dict().items():
        if key.split(".")[1].startswith("running"):
            close(arrays[f"{name}.{key}"], value)
    for mine, theirs in zip(report[name], histories, strict=True):
        assert set(mine) == set(theirs.history)
        for key in theirs.history.keys() - {"seconds"}:
            close(mine[key], theirs.history[key])


@pytest.mark.parametrize("name", ["adam", "sgd", "bn_sync", "cnn_sync", "cnn_fused",
                                  "float32"])
def test_two_ranks_train_as_one_process_on_the_same_global_batches(trained, name):
    """Adam; SGD with L2 and clipping; SyncBatchNorm (BatchNorm1d, and BatchNorm2d in a
    CNN); a CNN whose Conv2D + ReLU run as one: odd batch sizes, a last batch of one row
    (rank 1's part empty), sample weights, a second fit resuming the optimiser; float32,
    the default."""
    (arrays, report), _ = trained
    assert_trained_as_one_process(arrays, report, name)


@pytest.fixture(scope="module")
def trained3(mpiexec, tmp_path_factory):
    """The ``train3`` scenario: the cases of worker.THREE_RANKS on 3 ranks, per rank."""
    out = tmp_path_factory.mktemp("train3")
    scenario(mpiexec, "train3", out, ranks=3)
    return [(dict(np.load(out / f"train3-{rank}.npz")),
             json.loads((out / f"train3-{rank}.json").read_text())) for rank in range(3)]


@pytest.mark.parametrize("name", worker.THREE_RANKS)
def test_three_ranks_train_as_one_process_and_alike(trained3, name):
    """Where the split over 3 ranks matters: parts of unequal sizes, a last batch of one row
    (two empty parts), SyncBatchNorm parts of one row, 2 validation rows over 3 ranks."""
    (arrays, report), *others = trained3
    assert_trained_as_one_process(arrays, report, name)
    for other_arrays, other_report in others:
        assert other_report[name] == report[name]
        for key in arrays:
            assert np.array_equal(other_arrays[key], arrays[key]), key


def test_every_rank_ends_with_the_same_model_and_history(trained):
    (arrays0, report0), (arrays1, report1) = trained
    assert arrays0.keys() == arrays1.keys()
    for key in arrays0:  # bit for bit, the unseeded model (rank 0's start) included
        assert np.array_equal(arrays0[key], arrays1[key]), key
    for name in worker.CASES:
        assert report0[name] == report1[name]  # 'seconds' too: the slowest rank's


def test_per_rank_batchnorm_statistics_as_documented(trained):
    """Default mode: each rank normalises its part with its own batch statistics, the
    gradients are averaged, and the running statistics are averaged at each epoch's end;
    simulated here with two replicas in one process."""
    case = worker.CASES["bn_default"]
    d = worker.data(case)
    X, y = d["X"], d["y"]
    replicas = [worker.build("bn") for _ in range(2)]
    optimizers = [worker.optimizer(case) for _ in range(2)]
    bounds = batch_bounds(case["n"], case["batch_size"], 2)
    for _ in range(5):  # 3 epochs, then 2 resumed
        for start, end in bounds:
            total = 0.0
            for rank, model in enumerate(replicas):
                lo, hi = shard_bounds(end - start, rank, 2)
                model.loss_and_grad(X[start + lo:start + hi], y[start + lo:start + hi])
                total = total + (hi - lo) / (end - start) * model.flat_grads
            for model, optimizer in zip(replicas, optimizers, strict=True):
                model.flat_grads[...] = total
                optimizer.step(model)
        for key, value in replicas[0].state_dict().items():
            if key.split(".")[1].startswith("running"):
                value[...] = (value + replicas[1].state_dict()[key]) / 2
                replicas[1].state_dict()[key][...] = value
    (arrays, _), _ = trained
    assert_close(arrays["bn_default.params"], replicas[0].flat_params)
    for key, value in replicas[0].state_dict().items():
        if key.split(".")[1].startswith("running"):
            assert_close(arrays[f"bn_default.{key}"], value)
    # and it is not the single-process result (the statistics of a half batch differ)
    single, _ = worker.train_case(case)
    assert not np.allclose(arrays["bn_default.params"], single.flat_params, rtol=1e-6)


def test_every_rank_refuses_alike(trained):
    (_, report0), (_, report1) = trained
    assert report0["errors"] == report1["errors"]
    errors = report0["errors"]
    assert errors["different data"].startswith("DistributedError: fit(distributed=True): "
                                               "the ranks disagree on a checksum of the "
                                               "training data (rank 0: ")
    assert "batch_size >= 4, or fit(..., sync_batchnorm=True)" in errors["batch too small"]


@pytest.fixture(scope="module")
def stops(mpiexec, tmp_path_factory):
    out = tmp_path_factory.mktemp("stops")
    scenario(mpiexec, "stops", out)
    return [json.loads((out / f"stops-{rank}.json").read_text()) for rank in (0, 1)]


def test_a_nan_on_one_rank_stops_every_rank_with_the_same_message(stops):
    first, second = (report["nan"] for report in stops)
    assert first == second  # message, epoch, batch and the weights kept
    assert first["error"].startswith("training diverged in epoch 2/3, batch 2/4 (on rank 1 "
                                     "of 2, in its part of the global batch): ")
    assert (first["epoch"], first["batch"]) == (1, 1)
    assert first["kept"]  # the weights from before the bad batch


def test_an_overflowing_update_stops_every_rank_alike(stops):
    first, second = (report["overflow"] for report in stops)
    assert first == second and first["every_rank"]
    assert first["error"].startswith("training diverged in epoch 1/1, batch 1/4: the "
                                     "optimiser's update made parameter 'W' of layer 0")


def test_an_exploding_loss_stops_every_rank_at_the_same_batch(stops):
    first, second = (report["explode"] for report in stops)
    assert first == second and first["every_rank"] and first["kept"]
    assert "the loss exploded without becoming NaN" in first["error"]
    assert "from before training" in first["error"]


def test_ctrl_c_on_one_rank_stops_every_rank_after_the_same_batch(stops):
    first, second = (report["ctrl_c"] for report in stops)
    assert first == second
    assert first["interrupted"] and first["epochs"] == 1
    # pressed on rank 1 at the end of epoch 2's batch 2: agreed after the next step
    assert first["batches"][-1] == [1, 2]


def test_a_stop_asked_on_one_rank_stops_every_rank(stops):
    """``model.stop_training`` set by a callback on rank 1 alone: inside an epoch every rank
    stops one batch later (the next step's all-reduce carries it), at an epoch's end after
    that epoch; without the agreement rank 0 would wait for rank 1 until the timeout."""
    first, second = (report["stop"] for report in stops)
    assert first == second
    inside, at_end = first["batch"], first["epoch"]
    assert inside["epochs"] == 1 and inside["stopped_early"]  # epoch 2 is not recorded
    assert inside["batches"][-1] == [1, 2]  # asked after batch 2, agreed by batch 3's step
    assert at_end["epochs"] == 1 and at_end["stopped_early"]
    assert at_end["batches"][-1] == [0, 4]  # 22 rows in batches of 5: 5 batches


def test_rank_0_alone_writes_files_and_progress(mpiexec, tmp_path):
    result = scenario(mpiexec, "files", tmp_path)
    reports = [json.loads((tmp_path / f"files-{rank}.json").read_text()) for rank in (0, 1)]
    assert reports[0]["saved"] == [str(tmp_path / f"ckpt-{epoch}.npz") for epoch in (1, 2, 3)]
    assert reports[1]["saved"] == []
    assert reports[0]["params"] == reports[1]["params"]
    assert reports[1]["stopper_verbose"] == 1  # silenced during fit only
    with open(tmp_path / "log.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert [row[0] for row in rows] == ["epoch", "0", "1", "2"]  # one writer
    progress = [line for line in result.stderr.splitlines() if " - loss: " in line]
    assert len(progress) == 3 and all(line.startswith("[0]") for line in progress), progress


def test_an_exception_on_one_rank_aborts_the_job(mpiexec, tmp_path):
    start = time.perf_counter()
    result = launch(mpiexec, sys.executable, str(WORKER), "crash", str(tmp_path),
                    cwd=tmp_path)
    assert result.returncode != 0
    assert ("numnet: rank 1 of 2: RuntimeError while training: boom on rank 1; aborting "
            "the MPI job") in result.stderr
    assert "Traceback" in result.stderr  # the rank's own traceback comes first
    assert time.perf_counter() - start < 60


def test_a_killed_rank_ends_the_job(mpiexec, tmp_path):
    """The launcher sees a process die and ends the others (MPICH's Hydra, Open MPI)."""
    start = time.perf_counter()
    result = launch(mpiexec, sys.executable, str(WORKER), "killed", str(tmp_path),
                    cwd=tmp_path)
    assert result.returncode != 0
    assert time.perf_counter() - start < 45  # well before NUMNET_MPI_TIMEOUT's 60 s


def test_a_stalled_rank_makes_the_others_abort_after_the_timeout(mpiexec, tmp_path):
    start = time.perf_counter()
    result = launch(mpiexec, sys.executable, str(WORKER), "stall", str(tmp_path),
                    cwd=tmp_path, NUMNET_MPI_TIMEOUT="2")
    assert result.returncode != 0
    assert ("numnet: rank 0 of 2: waited more than 2 s for the other ranks in a collective "
            "operation") in result.stderr
    assert time.perf_counter() - start < 45  # rank 1 would sleep 60 s


def test_cli_train_distributed(mpiexec, tmp_path):
    result = launch(mpiexec, sys.executable, "-m", "numnet", "train", "--distributed",
                    "--epochs", "2", "--batch-size", "33", "--out", "model.npz",
                    "--plot", "off", cwd=tmp_path)
    assert result.returncode == 0, (result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    assert all(line.startswith("[0]") for line in lines), lines  # rank 1 prints nothing
    assert sum("test accuracy:" in line for line in lines) == 1
    assert sum("saved model to model.npz" in line for line in lines) == 1
    assert [path.name for path in tmp_path.iterdir()] == ["model.npz"]
    model = nn.Sequential.load(tmp_path / "model.npz")
    assert nn.io.load_metadata(tmp_path / "model.npz")["epochs"] == 2
    assert model.predict(np.zeros((1, 64))).shape == (1,)
    # errors every rank meets are printed once, by rank 0, as one line
    bad = launch(mpiexec, sys.executable, "-m", "numnet", "train", "--distributed",
                 "--sync-batchnorm", "--data", str(tmp_path / "missing.csv"), cwd=tmp_path)
    assert bad.returncode == 2
    errors = [line for line in bad.stderr.splitlines() if "numnet: error:" in line]
    assert len(errors) == 1 and errors[0].startswith("[0]"), bad.stderr


def test_readme_distributed_example_runs_as_written(mpiexec, tmp_path):
    text = (ROOT / "README.md").read_text()
    code = re.search(r"with `train.py` \(every rank runs all of it\):\n\n```python\n(.*?)```",
                     text, re.S).group(1)
    (tmp_path / "train.py").write_text(code)
    result = launch(mpiexec, sys.executable, "train.py", cwd=tmp_path)
    assert result.returncode == 0, (result.stdout, result.stderr)
    printed = [line for line in result.stdout.splitlines() if "validation accuracy" in line]
    assert len(printed) == 1 and printed[0].startswith("[0]"), result.stdout
    assert float(re.search(r"validation accuracy ([0-9.]+)", printed[0]).group(1)) > 0.9
    assert sorted(path.name for path in tmp_path.iterdir()) == ["digits.npz", "train.py"]
