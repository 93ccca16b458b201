"""numnet's benchmark suite: numnet against PyTorch (CPU) and scikit-learn, and the GEMM floor.

    python bench/suite.py [--quick] [--tasks mlp,mlp_bn,inference,cnn] [--epochs N]
                          [--cnn-epochs N] [--repeats R] [--json PATH] [--data PATH]
                          [--frameworks numnet,torch,sklearn] [--threads 2]

Every run is a separate process (``bench/peers.py``, one framework, one task, one seed)
that prints JSON: peak memory is then per framework, and the runs are interleaved
(numnet, torch, sklearn, GEMM floor, numnet, torch, ...) so drift of the machine (other
load, heat, frequency) hits every framework alike. Repeat ``r`` uses seed ``seed + r`` in
every framework. The GEMM floor (``bench/gemm_floor.py``) is measured in the same rotation:
the MLP's with the first MLP task, the CNN's (its own products) with the cnn task, which
trains ``--cnn-epochs`` (default 3, the issue's) with ``bench/_cnn.py``'s recipe.

Prints a table per task (seconds per epoch: median, min and max over all epochs of all
repeats; ratios; test accuracy; memory; inference images/s), the GEMM floors, and PASS/MISS
for the issue's speed targets (reported, never asserted). Results are written as JSON to
``bench/results/latest.json`` (git-ignored) unless ``--json`` says otherwise.

``--quick`` is a smoke run of about a minute: 1 epoch, 1 repeat, the first 10,000
training images (all 10,000 test images); its numbers are labelled QUICK and are not
comparable with full runs. See ``bench/README.md`` for what each column means.
"""

from __future__ import annotations

import _common

THREADS = _common.pin_threads_from_argv()

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

PEERS = _common.BENCH / "peers.py"
FLOOR = _common.BENCH / "gemm_floor.py"
DEFAULT_JSON = _common.BENCH / "results" / "latest.json"
FRAMEWORKS = ("numnet", "torch", "sklearn")
TASKS = ("mlp", "mlp_bn", "inference", "cnn")
TRAINING_TASKS = ("mlp", "mlp_bn")
PEER_MODULES = {"torch": "torch", "sklearn": "sklearn"}
NOT_AVAILABLE = {("sklearn", "mlp_bn"): "n/a: scikit-learn's MLPClassifier has no "
                                        "batch normalisation or dropout",
                 ("sklearn", "cnn"): "n/a: scikit-learn has no convolutional network"}
#: each GEMM floor's reference figure: the MLP's 8 products, the CNN's 11 (gemm_floor.py)
MAIN_FLOOR = {"mlp": "floor_8", "cnn": "floor"}
CNN_ACCURACY = 0.99  # the accuracy target for the CNN ...
CNN_EPOCHS = 3       # ... within this many epochs
#: full batches the CNN's floor is timed on per repeat (scaled to the epoch)
CNN_FLOOR_BATCHES = 20
# the targets
FLOOR_TARGET = 1.3
ACCURACY_POINTS = 0.3
ACCURACY_EPOCHS = 10
QUICK_LIMIT = 10000


# ----------------------------------------------------------------------------------------
# Running the children
# ----------------------------------------------------------------------------------------


#: --numnet-path: the value of NUMNET_FAST in every child (numnet's kernel path)
NUMNET_PATHS = {"auto": "auto", "numpy": "0", "compiled": "1"}
_NUMNET_FAST = {"value": "auto"}  # set by main from --numnet-path


def child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for var in _common.THREAD_VARS:
        env[var] = str(threads)
    env["NUMNET_FAST"] = _NUMNET_FAST["value"]
    return env


def run_child(cmd: list[str], threads: int, timeout: float) -> dict[str, Any]:
    """Run one child; its last stdout line is JSON. Errors become ``{"status": "error"}``."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env(threads),
                              timeout=timeout, cwd=_common.ROOT, check=False)
    except subprocess.TimeoutExpired:
        return {"status": "error", "error": f"timed out after {timeout:.0f} s",
                "command": cmd}
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (proc.stderr or proc.stdout)[-2000:]
        result = {"status": "error", "error": f"exit code {proc.returncode}, no JSON "
                  f"result; output ends with:\n{tail}"}
    result["wall_s"] = time.perf_counter() - start
    result["command"] = " ".join(Path(c).name if c == sys.executable else str(c) for c in cmd)
    return result


def peer_command(args: argparse.Namespace, framework: str, task: str, seed: int) -> list[str]:
    epochs = args.cnn_epochs if task == "cnn" else args.epochs
    cmd = [sys.executable, str(PEERS), "--framework", framework, "--task", task,
           "--epochs", str(epochs), "--seed", str(seed), "--threads", str(args.threads),
           "--infer-repeats", str(args.infer_repeats)]
    if args.synthetic:
        cmd += ["--synthetic", str(args.synthetic)]
    elif args.data:
        cmd += ["--data", str(args.data)]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    return cmd


def floor_command(args: argparse.Namespace, n: int, task: str = "mlp") -> list[str]:
    cmd = [sys.executable, str(FLOOR), "--json", "--n", str(n), "--repeats",
           str(args.floor_repeats), "--threads", str(args.threads)]
    if task == "cnn":  # the CNN's products, timed on a sample of batches (see gemm_floor.py)
        cmd += ["--task", "cnn", "--sample-batches", str(args.cnn_floor_batches)]
    return cmd


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def describe(result: dict[str, Any]) -> str:
    if result.get("status") == "skipped":
        return f"skipped: {result.get('reason')}"
    if result.get("status") == "error":
        return "ERROR: " + str(result.get("error", "")).splitlines()[0]
    if "floors" in result:
        name = MAIN_FLOOR[result.get("task", "mlp")]
        return f"{name} {result['floors'][name]['median']:.3f} s/epoch"
    parts = []
    if result.get("epoch_seconds"):
        parts.append(f"{_common.summary(result['epoch_seconds'])['median']:.3f} s/epoch")
    if result.get("test_accuracy") is not None:
        parts.append(f"acc {100 * result['test_accuracy']:.2f}%")
    infer = result.get("infer", {}).get("batch_1000")
    if infer:
        parts.append(f"{infer['images_per_s']:,.0f} img/s")
    return ", ".join(parts)


def run_all(args: argparse.Namespace, tasks: list[str], frameworks: list[str],
            n_train: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run every (task, repeat, framework) interleaved; returns (per task, the MLP's floor
    runs). The cnn task's own floor runs go to ``results["cnn"]["floor_runs"]``."""
    results: dict[str, Any] = {}
    floor_runs: list[dict[str, Any]] = []
    floor_task = next((t for t in tasks if t in TRAINING_TASKS), None)
    plan: list[tuple[str, int, str]] = []
    for task in tasks:
        results[task] = {"runs": {fw: [] for fw in frameworks}, "skipped": {}}
        if task == "cnn":
            results[task]["floor_runs"] = []
        for repeat in range(args.repeats):
            plan += [(task, repeat, fw) for fw in frameworks]
            if args.floor and task in (floor_task, "cnn"):
                plan.append((task, repeat, "floor"))
    if args.floor and floor_task is None and tasks:
        plan.append((tasks[0], 0, "floor"))
    for step, (task, repeat, who) in enumerate(plan, 1):
        label = f"[{step}/{len(plan)}] {task:9s} {who:8s} repeat {repeat + 1}/{args.repeats}"
        if who == "floor":
            log(f"{label} ...")
            idle = settle(args)
            result = run_child(floor_command(args, n_train, task), args.threads, args.timeout)
            result.update(idle, repeat=repeat)
            (results[task]["floor_runs"] if task == "cnn" else floor_runs).append(result)
            log(f"{label} {describe(result)}")
            continue
        entry = results[task]
        if who in entry["skipped"]:
            continue
        reason = skip_reason(who, task)
        if reason:
            entry["skipped"][who] = reason
            log(f"{label} skipped: {reason}")
            continue
        log(f"{label} ...")
        idle = settle(args)
        result = run_child(peer_command(args, who, task, args.seed + repeat), args.threads,
                           args.timeout)
        result.update(idle, repeat=repeat)
        if result.get("status") == "skipped":
            entry["skipped"][who] = result.get("reason", "skipped")
        else:
            entry["runs"][who].append(result)
        log(f"{label} {describe(result)} (load avg {result.get('load_avg_start')})")
    return results, floor_runs


def settle(args: argparse.Namespace) -> dict[str, Any]:
    """With ``--wait-idle S``: wait up to S seconds for other work on the machine to stop."""
    if not args.wait_idle:
        return {}
    waited, busy = _common.wait_until_idle(args.wait_idle)
    if busy is not None and busy >= 0.3:
        log(f"    (other work still uses {busy:.1f} CPUs after waiting {waited:.0f} s)")
    return {"idle_wait_s": waited, "other_busy_cpus": busy}


def skip_reason(framework: str, task: str) -> str | None:
    if (framework, task) in NOT_AVAILABLE:
        return NOT_AVAILABLE[(framework, task)]
    module = PEER_MODULES.get(framework)
    if module and importlib.util.find_spec(module) is None:
        return f"{module} not installed (pip install -e '.[bench]')"
    return None


# ----------------------------------------------------------------------------------------
# Summaries
# ----------------------------------------------------------------------------------------


def summarise_framework(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if r.get("status") == "ok"]
    out: dict[str, Any] = {"runs_ok": len(ok), "runs_failed": len(runs) - len(ok)}
    if len(ok) < len(runs):
        out["errors"] = [r.get("error") for r in runs if r.get("status") != "ok"]
    if not ok:
        return out
    epochs = [s for r in ok for s in r.get("epoch_seconds", [])]
    out["epoch_s"] = _common.summary(epochs) if epochs else None
    out["accuracy"] = _common.summary([r["test_accuracy"] for r in ok])
    out["final_train_loss"] = _common.summary([r["train_loss"][-1] for r in ok
                                               if r.get("train_loss")])
    out["peak_rss_mb"] = _common.summary([r["peak_rss_mb"] for r in ok])
    out["run_extra_rss_mb"] = _common.summary([r.get("run_extra_rss_mb") for r in ok])
    for key in ("batch_1000", "whole"):
        out[f"infer_{key}_ips"] = _common.summary([r["infer"][key]["images_per_s"]
                                                    for r in ok if r.get("infer")])
    for key in ("version", "compute_dtype", "init", "data", "n_train", "n_test"):
        out[key] = ok[0].get(key)
    out["pred_digests"] = sorted({r.get("pred_digest") for r in ok})
    out["load_avg"] = _common.summary([r.get("load_avg_start") for r in ok])
    out["other_cpus"] = _common.summary([r.get("other_cpus_during_run") for r in ok])
    return out


def summarise_floor(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    ok = [r for r in runs if r.get("status", "ok") == "ok" and "floors" in r]
    if not ok:
        return None
    floors = {}
    for name in ok[0]["floors"]:
        values = [v for r in ok for v in r["floors"][name]["values"]]
        floors[name] = _common.summary(values)
        floors[name]["label"] = ok[0]["floors"][name]["label"]
    products = {p: _common.summary([r["products_s"][p] for r in ok])["median"]
                for p in ok[0]["products_s"]}
    return {"floors": floors, "products_s": products, "settings": ok[0]["settings"],
            "peak_rss_mb": ok[0].get("peak_rss_mb"), "runs": len(ok)}


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def median_of(summary: dict[str, Any], key: str) -> float | None:
    value = summary.get(key)
    return value.get("median") if isinstance(value, dict) else None


def paired_ratios(entry: dict[str, Any], floor_runs: list[dict[str, Any]],
                  floor_name: str = "floor_8") -> dict[str, dict[str, Any]]:
    """numnet / X per repeat (runs of one repeat ran back to back), summarised over repeats.

    The machine's speed drifts; the ratio of two runs made a minute apart drifts less than
    either, so these are the numbers to trust when the per-framework spreads are wide.
    """
    def per_repeat(runs: list[dict[str, Any]], key: Any) -> dict[int, float]:
        out = {}
        for r in runs:
            value = key(r)
            if value:
                out[r.get("repeat", 0)] = value
        return out

    def epoch_median(r: dict[str, Any]) -> float | None:
        if r.get("status") != "ok" or not r.get("epoch_seconds"):
            return None
        return _common.summary(r["epoch_seconds"])["median"]

    mine = per_repeat(entry["runs"].get("numnet", []), epoch_median)
    others = {fw: per_repeat(runs, epoch_median) for fw, runs in entry["runs"].items()
              if fw != "numnet"}
    others[floor_name] = per_repeat(floor_runs, lambda r: r.get("floors", {})
                                    .get(floor_name, {}).get("median"))
    out = {}
    for name, theirs in others.items():
        values = [mine[k] / theirs[k] for k in mine if k in theirs]
        if values:
            out[f"numnet_vs_{name}"] = _common.summary(values)
    return out


def summarise(results: dict[str, Any], floor: dict[str, Any] | None,
              floor_runs: list[dict[str, Any]] = ()) -> None:
    """Add ``summary``, ``ratios`` and ``paired`` to every task (in place)."""
    floor_task = next((t for t in results if t in TRAINING_TASKS), None)
    for task, entry in results.items():
        if task == "cnn":
            entry["gemm_floor"] = summarise_floor(entry.get("floor_runs", []))
            entry["paired"] = paired_ratios(entry, entry.get("floor_runs", []), "floor")
        else:
            entry["paired"] = paired_ratios(entry, list(floor_runs) if task == floor_task
                                            else [])
        summary = {fw: summarise_framework(runs) for fw, runs in entry["runs"].items() if runs}
        entry["summary"] = summary
        ratios: dict[str, dict[str, float | None]] = {}
        for fw, s in summary.items():
            t = (s.get("epoch_s") or {}).get("median")
            ratios[fw] = {f"vs_{peer}": ratio(t, (p.get("epoch_s") or {}).get("median"))
                          for peer, p in summary.items() if peer != fw}
            if task == "cnn" and entry["gemm_floor"]:
                for name in ("floor", "floor_fwd_wgrad"):
                    ratios[fw][f"vs_{name}"] = ratio(
                        t, entry["gemm_floor"]["floors"][name]["median"])
            elif task != "cnn" and floor:
                for name in ("floor_8", "floor_6"):
                    ratios[fw][f"vs_{name}"] = ratio(t, floor["floors"][name]["median"])
        entry["ratios"] = ratios


def targets(results: dict[str, Any], floor: dict[str, Any] | None,
            epochs: int, cnn_epochs: int = CNN_EPOCHS) -> list[dict[str, Any]]:
    """The issue's three targets, each PASS, MISS or n/a (with why)."""
    out = []
    mlp = results.get("mlp", {}).get("summary", {})
    numnet = mlp.get("numnet", {})
    t_numnet = (numnet.get("epoch_s") or {}).get("median")
    target = {"name": f"MLP epoch time <= {FLOOR_TARGET}x the GEMM floor (8 products)",
              "threshold": FLOOR_TARGET}
    if t_numnet and floor:
        value = t_numnet / floor["floors"]["floor_8"]["median"]
        paired = results["mlp"].get("paired", {}).get("numnet_vs_floor_8")
        target.update(value=value, status="PASS" if value <= FLOOR_TARGET else "MISS",
                      detail=f"numnet {t_numnet:.3f} s / floor "
                             f"{floor['floors']['floor_8']['median']:.3f} s = {value:.2f}x"
                             + (f" (paired per repeat: {paired['median']:.2f}x)"
                                if paired else ""))
    else:
        target.update(status="n/a", detail="needs the mlp task for numnet and the floor")
    out.append(target)

    source = "inference" if "inference" in results else "mlp"
    inf = results.get(source, {}).get("summary", {})
    ips_n = median_of(inf.get("numnet", {}), "infer_batch_1000_ips")
    ips_t = median_of(inf.get("torch", {}), "infer_batch_1000_ips")
    target = {"name": "inference at least as fast as PyTorch (images/s, batch 1000, "
                      f"{source} task)", "threshold": 1.0}
    if ips_n and ips_t:
        value = ips_n / ips_t
        target.update(value=value, status="PASS" if value >= 1.0 else "MISS",
                      detail=f"numnet {ips_n:,.0f} vs torch {ips_t:,.0f} images/s = "
                             f"{value:.2f}x")
    else:
        target.update(status="n/a", detail="needs numnet and torch inference results")
    out.append(target)

    acc_n = (numnet.get("accuracy") or {}).get("mean")
    acc_t = (mlp.get("torch", {}).get("accuracy") or {}).get("mean")
    target = {"name": f"MLP test accuracy within {ACCURACY_POINTS} points of PyTorch after "
                      f"{ACCURACY_EPOCHS} epochs", "threshold": ACCURACY_POINTS}
    if acc_n is not None and acc_t is not None:
        value = 100 * (acc_n - acc_t)
        detail = (f"numnet {100 * acc_n:.2f}% vs torch {100 * acc_t:.2f}% (mean over "
                  f"repeats): {value:+.2f} points")
        if epochs != ACCURACY_EPOCHS:
            target.update(value=value, status="n/a",
                          detail=detail + f" after {epochs} epoch(s); the target is defined "
                                          f"at {ACCURACY_EPOCHS}")
        else:
            target.update(value=value, detail=detail,
                          status="PASS" if abs(value) <= ACCURACY_POINTS else "MISS")
    else:
        target.update(status="n/a", detail="needs numnet and torch mlp results")
    out.append(target)
    return out + cnn_targets(results.get("cnn"), cnn_epochs)


def cnn_targets(entry: dict[str, Any] | None, epochs: int) -> list[dict[str, Any]]:
    """The issue's CNN targets: an epoch no slower than PyTorch's, >= 99.0% in 3 epochs."""
    if entry is None:
        return []
    summary = entry.get("summary", {})
    out = []
    speed = {"name": "CNN epoch no slower than PyTorch's (paired, same suite run)",
             "threshold": 1.0}
    paired = entry.get("paired", {}).get("numnet_vs_torch")
    if paired:
        speed.update(value=paired["median"],
                     status="PASS" if paired["median"] <= 1.0 else "MISS",
                     detail=f"numnet / torch s/epoch = {paired['median']:.2f} (median of "
                            f"{paired['n']} paired repeat(s))")
    else:
        speed.update(status="n/a", detail="needs numnet and torch cnn results")
    out.append(speed)
    accuracy = {"name": f"CNN test accuracy >= {100 * CNN_ACCURACY:.1f}% within "
                        f"{CNN_EPOCHS} epochs", "threshold": CNN_ACCURACY}
    acc = (summary.get("numnet", {}).get("accuracy") or {})
    if acc.get("mean") is None:
        accuracy.update(status="n/a", detail="needs numnet cnn results")
    elif epochs != CNN_EPOCHS:
        accuracy.update(value=acc["min"], status="n/a",
                        detail=f"numnet {100 * acc['mean']:.2f}% after {epochs} epoch(s); the "
                               f"target is defined at {CNN_EPOCHS} (--cnn-epochs "
                               f"{CNN_EPOCHS})")
    else:
        accuracy.update(value=acc["min"], status="PASS" if acc["min"] >= CNN_ACCURACY
                        else "MISS", detail=f"numnet {100 * acc['min']:.2f}% (lowest of "
                                            f"{acc['n']} repeat(s), seeds from --seed)")
    out.append(accuracy)
    return out


# ----------------------------------------------------------------------------------------
# The table
# ----------------------------------------------------------------------------------------


def fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else format(value, spec) + suffix


def table(rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = [cell.rjust(w) if i in right else cell.ljust(w)
                 for i, (cell, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def accuracy_cell(acc: dict[str, Any] | None) -> str:
    if not acc or acc.get("mean") is None:
        return "-"
    if acc["n"] > 1:
        return f"{100 * acc['mean']:.2f} ({100 * acc['min']:.2f}-{100 * acc['max']:.2f})"
    return f"{100 * acc['mean']:.2f}"


def render(report: dict[str, Any]) -> str:
    s = report["settings"]
    floor = report.get("gemm_floor")
    lines = []
    title = "numnet benchmark suite"
    if s["quick"]:
        title += "  [QUICK smoke run: not comparable with full runs]"
    lines += [title, "=" * len(title)]
    lines.append(f"data: {s['data']}; batch {s['batch_size']}; Adam(lr {s['lr']}, betas "
                 f"{s['betas'][0]}/{s['betas'][1]}, eps {s['eps']}); float32; {s['threads']} "
                 f"threads; {s['epochs']} epoch(s) (cnn: {s.get('cnn_epochs', s['epochs'])}) x "
                 f"{s['repeats']} repeat(s), interleaved")
    machine = report["meta"]["machine"]
    lines.append(f"machine: {machine['cpu']} ({machine['cpu_count']} CPUs); "
                 f"{report['meta']['started']}")
    paths = sorted({r.get("kernel_path", "unknown") for e in report["tasks"].values()
                    for r in e.get("runs", {}).get("numnet", []) if r.get("status") == "ok"})
    lines.append(f"numnet's element-wise path: {', '.join(paths) or 'not run'} "
                 f"(--numnet-path {s.get('numnet_path', 'auto')}; NUMNET_FAST="
                 f"{NUMNET_PATHS[s.get('numnet_path', 'auto')]})")
    header = ["task", "framework", "s/epoch med", "min", "max", "vs numnet", "vs torch",
              "vs sklearn", "vs floor", "test acc %", "peak RSS MB", "+run MB",
              "infer img/s b1000", "whole", "other CPUs"]
    rows = [header]
    for task, entry in report["tasks"].items():
        summary, ratios = entry.get("summary", {}), entry.get("ratios", {})
        for fw in s["frameworks"]:
            if fw in entry.get("skipped", {}):
                reason = entry["skipped"][fw]
                rows.append([task, fw, "n/a" if reason.startswith("n/a") else "skipped"]
                            + [""] * (len(header) - 3))
                continue
            sm = summary.get(fw)
            if not sm:
                continue
            if not sm.get("runs_ok"):
                rows.append([task, fw, "ERROR"] + [""] * (len(header) - 3))
                continue
            ep = sm.get("epoch_s") or {}
            r = ratios.get(fw, {})
            rows.append([
                task, fw, fmt(ep.get("median"), ".3f"), fmt(ep.get("min"), ".3f"),
                fmt(ep.get("max"), ".3f"),
                "1.00" if fw == "numnet" and ep else fmt(r.get("vs_numnet"), ".2f"),
                "1.00" if fw == "torch" and ep else fmt(r.get("vs_torch"), ".2f"),
                "1.00" if fw == "sklearn" and ep else fmt(r.get("vs_sklearn"), ".2f"),
                fmt(r.get("vs_floor" if task == "cnn" else "vs_floor_8"), ".2f"),
                accuracy_cell(sm.get("accuracy")),
                fmt(median_of(sm, "peak_rss_mb"), ".0f"),
                fmt(median_of(sm, "run_extra_rss_mb"), "+.0f"),
                fmt(median_of(sm, "infer_batch_1000_ips"), ",.0f"),
                fmt(median_of(sm, "infer_whole_ips"), ",.0f"),
                fmt((sm.get("other_cpus") or {}).get("max"), ".2f"),
            ])
    lines += [""] + table(rows, right=set(range(2, len(header))))

    lines.append("")
    if floor:
        fs = floor["settings"]
        lines.append(f"GEMM floor (numpy.matmul float32, {fs['threads']} threads, {fs['batches']} "
                     f"batches of <= {fs['batch']} = {fs['n']:,} samples; {floor['runs']} run(s) "
                     f"x {fs['repeats']} epochs, interleaved with the runs above):")
        for name, f in floor["floors"].items():
            lines.append(f"  {name:9s} median {f['median']:.3f} s/epoch (min {f['min']:.3f}, "
                         f"max {f['max']:.3f})  {f['label']}")
        mlp = report["tasks"].get("mlp", {}).get("ratios", {}).get("numnet", {})
        if mlp.get("vs_floor_8"):
            lines.append(f"  numnet mlp epoch = {mlp['vs_floor_8']:.2f}x floor_8 = "
                         f"{mlp['vs_floor_6']:.2f}x floor_6")
        bn = report["tasks"].get("mlp_bn", {}).get("ratios", {}).get("numnet", {})
        if bn.get("vs_floor_8"):
            lines.append(f"  numnet mlp_bn epoch = {bn['vs_floor_8']:.2f}x floor_8 (BN adds no "
                         "matrix products, so the floor is the same)")
        top = sorted(floor["products_s"].items(), key=lambda kv: -kv[1])
        lines.append("  per product, s/epoch: " + ", ".join(f"{k} {v:.3f}" for k, v in top))
    else:
        lines.append("GEMM floor: not measured")
    lines += cnn_floor_lines(report)
    paired = [(task, name, p) for task, e in report["tasks"].items()
              for name, p in e.get("paired", {}).items() if p.get("n")]
    if paired:
        lines += ["", "Paired ratios (numnet's median epoch / the other's, within each repeat; "
                  "median (min-max) over repeats; robust to drift of the machine):"]
        for task, name, p in paired:
            lines.append(f"  {task:7s} {name.replace('_vs_', ' / '):18s} {p['median']:.2f} "
                         f"({p['min']:.2f}-{p['max']:.2f}, {p['n']} repeat(s))")

    lines += ["", "Notes:"]
    for note in report["notes"]:
        lines.append(f"  - {note}")
    lines += ["", "Targets (reported, never asserted):"]
    for t in report["targets"]:
        lines.append(f"  [{t['status']:4s}] {t['name']}: {t['detail']}")
    return "\n".join(lines)


def cnn_floor_lines(report: dict[str, Any]) -> list[str]:
    """The CNN's GEMM floor, when the cnn task ran with it."""
    entry = report["tasks"].get("cnn")
    floor = (entry or {}).get("gemm_floor")
    if not floor:
        return []
    fs = floor["settings"]
    lines = ["", f"CNN GEMM floor (numpy.matmul float32, {fs['threads']} threads, "
                 f"{fs['sample_batches']} batches of {fs['batch']} timed, scaled to "
                 f"{fs['n']:,} samples; {floor['runs']} run(s) x {fs['repeats']} repeats, "
                 "interleaved with the cnn runs):"]
    for name, f in floor["floors"].items():
        lines.append(f"  {name:15s} median {f['median']:.3f} s/epoch (min {f['min']:.3f}, "
                     f"max {f['max']:.3f})  {f['label']}")
    mine = entry.get("ratios", {}).get("numnet", {})
    if mine.get("vs_floor"):
        lines.append(f"  numnet cnn epoch = {mine['vs_floor']:.2f}x floor")
    top = sorted(floor["products_s"].items(), key=lambda kv: -kv[1])[:8]
    lines.append("  largest products, s/epoch: " + ", ".join(f"{k} {v:.3f}" for k, v in top))
    return lines


def notes(report: dict[str, Any]) -> list[str]:
    s = report["settings"]
    out = []
    if s["quick"]:
        out.append(f"QUICK: {s['epochs']} epoch, {s['repeats']} repeat, {s['data']}; a smoke "
                   "test of the suite, not a measurement")
    out.append("s/epoch: wall time of one training epoch (shuffle, batch gather, forward, loss, "
               "backward, optimiser step; no evaluation), median/min/max over every epoch of "
               "every repeat. 'vs X' = this row's median / X's median (< 1 is faster than X); "
               "vs floor = / the task's GEMM floor: the MLP's 8 products (floor_8), the "
               "CNN's 11 (see bench/gemm_floor.py)")
    out.append("init: numnet defaults (He-normal before ReLU, else Glorot-uniform, zero "
               "biases); torch gets a copy of numnet's initial weights; scikit-learn uses its "
               "own Glorot-uniform init (biases too) in training, and numnet's weights for "
               "the inference task")
    for task, entry in report["tasks"].items():
        sk = entry.get("summary", {}).get("sklearn")
        if sk and sk.get("compute_dtype"):
            out.append(f"scikit-learn {sk.get('version')} computes in {sk['compute_dtype']} "
                       f"({task}); one partial_fit call = one epoch, input checks included")
            break
    out.append("test acc %: after the last epoch, mean over repeats (min-max); peak RSS: "
               "ru_maxrss of the run's process (imports, data loading, training, inference); "
               "+run MB: peak from the loaded data on (framework import, model, training, "
               "inference)")
    out.append("infer img/s: class predictions for the test images (eval mode), batches of "
               "1000 and one whole batch; median over timed passes, median over repeats")
    inf = report["tasks"].get("inference", {}).get("summary", {})
    digests = {fw: tuple(s_.get("pred_digests", [])) for fw, s_ in inf.items()}
    if len(digests) > 1:
        same = len(set(digests.values())) == 1
        out.append("inference task: identical weights in every framework; predictions "
                   + ("identical" if same else "differ between frameworks (float rounding "
                      "at near-ties): " + ", ".join(f"{k} {v}" for k, v in digests.items())))
    runs = [r for e in report["tasks"].values() for rs in e.get("runs", {}).values()
            for r in rs]
    during = [r["other_cpus_during_run"] for r in runs
              if r.get("other_cpus_during_run") is not None]
    if during:
        out.append(f"other CPUs: how many CPUs other processes kept busy during a run (max "
                   f"over repeats); here {min(during):.2f}-{max(during):.2f}. Anything well "
                   "above 0 on this "
                   f"{report['meta']['machine']['cpu_count']}-CPU machine means that run "
                   "competed for its cores and its times are inflated")
    busy = [r["other_busy_cpus"] for r in runs if r.get("other_busy_cpus") is not None]
    if busy:
        out.append(f"--wait-idle: other processes used {min(busy):.2f}-{max(busy):.2f} CPUs "
                   "in the second before each run started")
    loads = [r.get("load_avg_start") for r in runs if r.get("load_avg_start")]
    if loads:
        busy = max(loads) > s["threads"] + 1
        out.append(f"1-minute load average at run starts: min {min(loads):.1f}, max "
                   f"{max(loads):.1f} (the benchmark itself adds about {s['threads']})"
                   + ("; the machine was busy with other work, so timings are inflated and "
                      "noisy" if busy else ""))
    for task, entry in report["tasks"].items():
        for fw, reason in entry.get("skipped", {}).items():
            out.append(f"{task}/{fw}: {reason}")
        for fw, sm in entry.get("summary", {}).items():
            for error in sm.get("errors", []) or []:
                out.append(f"{task}/{fw} run failed: {str(error).splitlines()[0]}")
    return out


# ----------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="numnet vs PyTorch vs scikit-learn, and the GEMM floor.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: 1 epoch, 1 repeat, first {QUICK_LIMIT:,} training "
                             "images (labelled QUICK)")
    parser.add_argument("--tasks", default="mlp,mlp_bn,inference,cnn",
                        help=f"comma-separated, from {','.join(TASKS)}")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                        help="comma-separated, from numnet,torch,sklearn")
    parser.add_argument("--epochs", type=int, default=None, help="default 10 (quick: 1)")
    parser.add_argument("--cnn-epochs", type=int, default=None,
                        help=f"epochs of the cnn task, whose target is defined at "
                             f"{CNN_EPOCHS}: default {CNN_EPOCHS} (quick: 1)")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (quick: 1)")
    parser.add_argument("--json", default=str(DEFAULT_JSON), help="where to write results")
    parser.add_argument("--data", default=None,
                        help="MNIST directory (default ../shared/data/mnist)")
    parser.add_argument("--synthetic", type=int, default=None, metavar="N",
                        help="N random training images instead of MNIST (tests)")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="first N training images only (quick: 10000)")
    parser.add_argument("--threads", type=int, default=_common.DEFAULT_THREADS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--floor-repeats", type=int, default=None,
                        help="timed GEMM-floor epochs per run (default 5, quick: 3)")
    parser.add_argument("--infer-repeats", type=int, default=None,
                        help="timed inference passes per run (default 5, quick: 3)")
    parser.add_argument("--no-floor", dest="floor", action="store_false",
                        help="skip the GEMM floor")
    parser.add_argument("--cnn-floor-batches", type=int, default=CNN_FLOOR_BATCHES,
                        metavar="B", help="full batches the CNN's GEMM floor times per "
                                          "repeat, scaled to the epoch")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="S",
                        help="before each run, wait up to S seconds until other processes "
                             "use < 0.3 CPUs (for shared machines; 0 = don't wait)")
    parser.add_argument("--numnet-path", choices=sorted(NUMNET_PATHS), default="auto",
                        help="numnet's kernel path: auto (compiled when numba is installed "
                             "and the model is large), numpy (NUMNET_FAST=0) or compiled "
                             "(NUMNET_FAST=1)")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds before a single run is abandoned")
    args = parser.parse_args(argv)
    quick = args.quick
    args.epochs = args.epochs or (1 if quick else 10)
    args.cnn_epochs = args.cnn_epochs or (1 if quick else CNN_EPOCHS)
    args.repeats = args.repeats or (1 if quick else 3)
    args.floor_repeats = args.floor_repeats or (3 if quick else 5)
    args.infer_repeats = args.infer_repeats or (3 if quick else 5)
    if quick and args.limit is None and not args.synthetic:
        args.limit = QUICK_LIMIT
    args.task_list = [t.strip() for t in args.tasks.split(",") if t.strip()]
    args.framework_list = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    for t in args.task_list:
        if t not in TASKS:
            parser.error(f"unknown task {t!r}; choose from {', '.join(TASKS)}")
    for f in args.framework_list:
        if f not in FRAMEWORKS:
            parser.error(f"unknown framework {f!r}; choose from {', '.join(FRAMEWORKS)}")
    if min(args.epochs, args.cnn_epochs, args.repeats, args.floor_repeats, args.infer_repeats,
           args.cnn_floor_batches) < 1:
        parser.error("--epochs, --cnn-epochs, --repeats, --floor-repeats, --infer-repeats and "
                     "--cnn-floor-batches must be >= 1")
    return args


def data_description(args: argparse.Namespace) -> tuple[str, int]:
    if args.synthetic:
        n = min(args.synthetic, args.limit or args.synthetic)
        return f"synthetic random images ({n:,} train)", n
    n = min(60000, args.limit or 60000)
    what = "MNIST 60,000 train / 10,000 test"
    if n < 60000:
        what = f"MNIST first {n:,} of 60,000 train / 10,000 test"
    return what, n


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _NUMNET_FAST["value"] = NUMNET_PATHS[args.numnet_path]
    what, n_train = data_description(args)
    started = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    load = _common.load_avg()
    if load is not None and load > 1.0:
        log(f"warning: 1-minute load average is {load:.1f} before starting; other work on "
            "this machine will inflate and scatter the timings")
    log(f"numnet benchmark suite: tasks {','.join(args.task_list)}; frameworks "
        f"{','.join(args.framework_list)}; {args.epochs} epoch(s) x {args.repeats} repeat(s); "
        f"{what}; {args.threads} threads")
    start = time.perf_counter()
    results, floor_runs = run_all(args, args.task_list, args.framework_list, n_train)
    floor = summarise_floor(floor_runs)
    summarise(results, floor, floor_runs)
    report: dict[str, Any] = {
        "meta": {"started": started, "suite_seconds": time.perf_counter() - start,
                 "machine": _common.machine_info(), "load_avg_before": load,
                 "command": " ".join(["python", "bench/suite.py"] + (argv or sys.argv[1:]))},
        "settings": {"quick": args.quick, "tasks": args.task_list,
                     "frameworks": args.framework_list, "epochs": args.epochs,
                     "cnn_epochs": args.cnn_epochs,
                     "repeats": args.repeats, "threads": args.threads, "seed": args.seed,
                     "batch_size": _common.BATCH_SIZE, "lr": _common.LR,
                     "betas": list(_common.BETAS), "eps": _common.EPS, "data": what,
                     "n_train": n_train, "limit": args.limit, "synthetic": args.synthetic,
                     "sizes": list(_common.SIZES), "dropout": _common.DROPOUT,
                     "floor_repeats": args.floor_repeats, "infer_repeats": args.infer_repeats,
                     "numnet_path": args.numnet_path},
        "gemm_floor": floor,
        "gemm_floor_runs": floor_runs,
        "tasks": results,
    }
    report["targets"] = targets(results, floor, args.epochs, args.cnn_epochs)
    report["notes"] = notes(report)
    text = render(report)
    report["table"] = text
    print(text, flush=True)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    log(f"\nresults written to {path} ({report['meta']['suite_seconds']:.0f} s)")
    failed = [fw for e in results.values() for fw, sm in e.get("summary", {}).items()
              if sm.get("runs_failed")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
