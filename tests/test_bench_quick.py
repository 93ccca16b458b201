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
                "--infer-repeats", "1", "--json", str(out)])
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
    assert "convolution" in tasks["cnn"]["skipped"]["numnet"]
    bn = tasks["mlp_bn"]
    assert bn["summary"].get("numnet", {}).get("runs_ok") == 1 or "numnet" in bn["skipped"]


def test_targets_are_reported_not_asserted(quick_report: dict) -> None:
    targets = quick_report["targets"]
    assert len(targets) == 3
    assert all(t["status"] in {"PASS", "MISS", "n/a"} for t in targets)
    # no torch in this run, and 1 epoch: the peer targets cannot be judged
    assert targets[1]["status"] == "n/a" and targets[2]["status"] == "n/a"
    assert targets[0]["status"] in {"PASS", "MISS"}


def test_peers_reports_a_missing_layer_or_framework_as_skipped() -> None:
    proc = run([str(PEERS), "--framework", "sklearn", "--task", "mlp_bn", "--synthetic", "64"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["status"] == "skipped" and result["reason"]


@pytest.mark.parametrize("framework", ["torch", "sklearn"])
def test_peer_runs_when_installed(framework: str) -> None:
    if importlib.util.find_spec(framework) is None:  # no import: it is only checked for
        pytest.skip(f"{framework} is not installed (pip install -e '.[bench]')")
    proc = run([str(PEERS), "--framework", framework, "--task", "mlp", "--synthetic", "256",
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
