"""Smoke tests of the benchmark suite (bench/): its numnet-only path on tiny synthetic data.

These check that the suite runs and that its JSON has the documented shape; they never
look at speed (the issue's speed targets are reported by the suite, not asserted). They
need neither PyTorch nor scikit-learn; the one test that runs a peer skips when it is not
installed.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SUITE = BENCH / "suite.py"
PEERS = BENCH / "peers.py"

pytestmark = pytest.mark.skipif(not SUITE.is_file(), reason="bench/suite.py not present")


def run(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *cmd], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    proc = run([str(SUITE), "--quick", "--synthetic", "512", "--frameworks", "numnet",
                "--tasks", "mlp,mlp_bn,inference,cnn", "--floor-repeats", "1",
                "--cnn-floor-batches", "2", "--infer-repeats", "1", "--json", str(out)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Targets (reported, never asserted)" in proc.stdout
    return json.loads(out.read_text(encoding="utf-8"))


def test_report_top_level_shape(quick_report: dict) -> None:
    assert {"meta", "settings", "gemm_floor", "tasks", "targets", "notes",
            "table"} <= set(quick_report)
    settings = quick_report["settings"]
    assert settings["quick"] is True
    assert settings["epochs"] == 1 and settings["repeats"] == 1
    assert settings["frameworks"] == ["numnet"]
    assert settings["batch_size"] == 128 and settings["sizes"] == [784, 256, 128, 10]


def test_training_task_summary(quick_report: dict) -> None:
    mlp = quick_report["tasks"]["mlp"]
    (run_,) = mlp["runs"]["numnet"]
    assert run_["status"] == "ok", run_.get("error")
    assert run_["n_train"] == 512 and len(run_["epoch_seconds"]) == 1
    summary = mlp["summary"]["numnet"]
    assert summary["epoch_s"]["median"] > 0
    assert summary["epoch_s"]["min"] <= summary["epoch_s"]["median"] <= summary["epoch_s"]["max"]
    assert 0.0 <= summary["accuracy"]["mean"] <= 1.0
    assert summary["peak_rss_mb"]["median"] > 0
    assert summary["infer_batch_1000_ips"]["median"] > 0
    assert summary["infer_whole_ips"]["median"] > 0
    assert summary["compute_dtype"] == "float32"
    assert mlp["ratios"]["numnet"]["vs_floor_8"] > 0


def test_gemm_floor_shape(quick_report: dict) -> None:
    floor = quick_report["gemm_floor"]
    assert set(floor["floors"]) == {"floor_8", "floor_6", "with_dx_9"}
    f8, f6, f9 = (floor["floors"][k]["median"] for k in ("floor_8", "floor_6", "with_dx_9"))
    assert 0 < f6 < f8 < f9
    assert floor["settings"]["n"] == 512 and floor["settings"]["batches"] == 4
    assert len(floor["products_s"]) == 9


def test_other_tasks(quick_report: dict) -> None:
    tasks = quick_report["tasks"]
    inference = tasks["inference"]["summary"]["numnet"]
    assert inference["epoch_s"] is None and inference["infer_batch_1000_ips"]["median"] > 0
    bn = tasks["mlp_bn"]
    assert bn["summary"].get("numnet", {}).get("runs_ok") == 1 or "numnet" in bn["skipped"]


def test_cnn_task(quick_report: dict) -> None:
    cnn = quick_report["tasks"]["cnn"]
    (run_,) = cnn["runs"]["numnet"]
    assert run_["status"] == "ok", run_.get("error")
    assert run_["n_train"] == 512 and len(run_["epoch_seconds"]) == 1
    assert quick_report["settings"]["cnn_epochs"] == 1
    summary = cnn["summary"]["numnet"]
    assert 0.0 <= summary["accuracy"]["mean"] <= 1.0
    assert summary["infer_batch_1000_ips"]["median"] > 0 and summary["peak_rss_mb"]["median"] > 0
    floor = cnn["gemm_floor"]
    assert set(floor["floors"]) == {"floor", "floor_fwd_wgrad", "with_dx"}
    f8, f11, f12 = (floor["floors"][k]["median"] for k in ("floor_fwd_wgrad", "floor", "with_dx"))
    assert 0 < f8 < f11 < f12
    assert floor["settings"]["sample_batches"] == 2 and floor["settings"]["n"] == 512
    assert len(floor["products_s"]) == 16  # 2 convs x 2 layouts x 2, 2 col grads, 2 x 3 dense
    assert cnn["ratios"]["numnet"]["vs_floor"] > 0
    assert cnn["paired"]["numnet_vs_floor"]["n"] == 1
    assert "CNN GEMM floor" in quick_report["table"]


def test_targets_are_reported_not_asserted(quick_report: dict) -> None:
    targets = quick_report["targets"]
    assert len(targets) == 5  # three for the MLP, two for the CNN
    assert all(t["status"] in {"PASS", "MISS", "n/a"} for t in targets)
    # no torch in this run, and 1 epoch: the peer targets cannot be judged
    assert [t["status"] for t in targets[1:]] == ["n/a"] * 4
    assert targets[0]["status"] in {"PASS", "MISS"}


def test_peers_reports_a_missing_layer_or_framework_as_skipped() -> None:
    for task in ("mlp_bn", "cnn"):
        proc = run([str(PEERS), "--framework", "sklearn", "--task", task, "--synthetic", "64"])
        assert proc.returncode == 0, proc.stderr[-3000:]
        result = json.loads(proc.stdout.splitlines()[-1])
        assert result["status"] == "skipped" and result["reason"].startswith("n/a")


@pytest.mark.parametrize(("framework", "task"), [("torch", "mlp"), ("sklearn", "mlp"),
                                                 ("torch", "cnn")])
def test_peer_runs_when_installed(framework: str, task: str) -> None:
    if importlib.util.find_spec(framework) is None:  # no import: it is only checked for
        pytest.skip(f"{framework} is not installed (pip install -e '.[bench]')")
    proc = run([str(PEERS), "--framework", framework, "--task", task, "--synthetic", "256",
                "--infer-repeats", "1"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["status"] == "ok", result.get("error")
    assert len(result["epoch_seconds"]) == 1 and 0 <= result["test_accuracy"] <= 1


def test_gradcheck_report_checks_every_layer_and_finds_no_failure() -> None:
    proc = run([str(BENCH / "gradcheck_report.py")])
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("Dense", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "Identity",
                 "Flatten", "BatchNorm1d", "LayerNorm", "Dropout", "Add", "Mul",
                 "CrossEntropy", "BinaryCrossEntropy", "MeanSquaredError", "model["):
        assert f"\n{name}" in proc.stdout, name
    assert proc.stdout.rstrip().endswith("failing: none")
