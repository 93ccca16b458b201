"""Inference throughput of the MNIST MLP and CNN: ONNX Runtime next to numnet.

The models are the MLP 784-256-128-10 and the CNN of issue 11 (conv 32 3x3, ReLU, max pool
2, conv 64 3x3, ReLU, max pool 2, Dense 1600-128, ReLU, Dense 128-10; ``bench/_cnn.py``).
Each is exported with ``numnet.onnx_io.to_onnx`` and run by ONNX Runtime's CPU provider
with ``intra_op_num_threads = --threads`` (default 2); numnet's ``predict_logits`` runs
with the same number of BLAS threads. Both compute the logits of the 10,000 test images at
batch 1000 and as one batch; timings are interleaved (numnet and ONNX Runtime alternate,
the order flipping every repeat) and reported as medians with the paired ratio, with the
CPUs other processes kept busy meanwhile (the machine may be shared). The two outputs are
checked to agree first (same argmax, 1e-4 apart).

Usage (from the repository root)::

    python bench/onnx_throughput.py [--data DIR] [--threads 2] [--repeats 7]
                                    [--models mlp,cnn] [--fit-epochs 0]

``--fit-epochs 1`` trains one epoch first (throughput does not depend on the weights; the
accuracy printed then means something). ``--synthetic N`` uses random images instead of
MNIST (for the tests). MNIST is read from ``$NUMNET_MNIST_DIR`` or ``--data`` (default
``../shared/data/mnist``).
"""

from __future__ import annotations

import _common

THREADS = _common.pin_threads_from_argv()  # before numpy is imported

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import _cnn  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

import numnet  # noqa: E402
from numnet.onnx_io import to_onnx  # noqa: E402

#: the models measured, and how the tables name them
MODELS = {"mlp": "MLP 784-256-128-10", "cnn": "CNN conv32-conv64-128 (issue 11)"}

Predict = Callable[[np.ndarray, int], np.ndarray]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("NUMNET_MNIST_DIR"),
                        help="MNIST directory (default $NUMNET_MNIST_DIR, else "
                             "../shared/data/mnist)")
    parser.add_argument("--threads", type=int, default=_common.DEFAULT_THREADS,
                        help="threads for both (BLAS for numnet, intra-op for ONNX Runtime)")
    parser.add_argument("--repeats", type=int, default=7, help="timed passes of each (median)")
    parser.add_argument("--fit-epochs", type=int, default=0,
                        help="train this many epochs first (default 0: initial weights)")
    parser.add_argument("--models", default="mlp,cnn",
                        help=f"comma-separated, from {', '.join(MODELS)} (default: both)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                        help="(float64: the CNN at batch 1000 only)")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default: newest)")
    parser.add_argument("--synthetic", type=int, default=None, metavar="N",
                        help="N random training images instead of MNIST")
    parser.add_argument("--json", default=None, help="also write the results here")
    return parser.parse_args()


def build(name: str, args: argparse.Namespace, x_tr: np.ndarray, y_tr: np.ndarray
          ) -> numnet.Sequential:
    if name == "cnn":
        model = _cnn.numnet_cnn(seed=0, dtype=args.dtype)
    else:
        sizes = _common.SIZES
        layers: list[numnet.Layer] = []
        for n_in, n_out in zip(sizes[:-2], sizes[1:-1], strict=True):
            layers += [numnet.Dense(n_in, n_out), numnet.ReLU()]
        layers.append(numnet.Dense(sizes[-2], sizes[-1]))
        model = numnet.Sequential(layers, loss="cross_entropy", dtype=args.dtype, seed=0)
    if args.fit_epochs:
        model.fit(as_input(model, x_tr), y_tr, epochs=args.fit_epochs,
                  batch_size=_common.BATCH_SIZE, optimizer=numnet.Adam(lr=_common.LR),
                  verbose=0, seed=0)
    return model


def as_input(model: numnet.Sequential, rows: np.ndarray) -> np.ndarray:
    """MNIST rows of 784 pixels in the model's input shape and dtype: images for the CNN."""
    shape = model.input_shape or rows.shape[1:]
    return np.ascontiguousarray(rows.reshape(len(rows), *shape), dtype=model.dtype)


def ort_predictor(proto: Any, threads: int) -> Predict:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(proto.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def predict(x: np.ndarray, batch: int) -> np.ndarray:
        parts = [session.run(None, {name: x[i:i + batch]})[0]
                 for i in range(0, x.shape[0], batch)]
        return np.concatenate(parts)
    return predict


def timed(predict: Predict, x: np.ndarray, batch: int) -> float:
    start = time.perf_counter()
    predict(x, batch)
    return time.perf_counter() - start


def main() -> int:
    args = parse_args()
    names = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown or not names:
        print(f"--models: expected names from {', '.join(MODELS)}, got {args.models!r}")
        return 2
    x_tr, y_tr, x_te, y_te, what = _common.load_data(args.data, synthetic=args.synthetic)
    info = _common.machine_info()
    print(f"CPU: {info['cpu']} ({info['cpu_count']} logical CPUs, load average "
          f"{_common.load_avg()}); {args.threads} thread(s) each")
    print(f"numnet {numnet.__version__} (NumPy {np.__version__}), onnxruntime "
          f"{ort.__version__}, {args.dtype}; data: {what}")
    results: dict[str, Any] = {"meta": info, "threads": args.threads, "dtype": args.dtype,
                               "images": int(x_te.shape[0]), "rows": []}
    for name in names:
        rows = measure(name, args, x_tr, y_tr, x_te, y_te)
        if rows is None:
            return 1
        results["rows"] += rows
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
    return 0


def measure(name: str, args: argparse.Namespace, x_tr: np.ndarray, y_tr: np.ndarray,
            x_rows: np.ndarray, y_te: np.ndarray) -> list[dict[str, Any]] | None:
    """Check, time and print one model; its table rows (None if the outputs differ)."""
    model = build(name, args, x_tr, y_tr)
    x_te = as_input(model, x_rows)
    proto = to_onnx(model, opset=args.opset)
    runners: dict[str, Predict] = {
        "numnet": lambda x, b: model.predict_logits(x, batch_size=b)}
    runners["onnxruntime"] = ort_predictor(proto, args.threads)

    reference = runners["numnet"](x_te, _common.INFER_BATCH)
    got = runners["onnxruntime"](x_te, _common.INFER_BATCH)
    diff = float(np.abs(got - reference).max())
    agree = float(np.mean(got.argmax(1) == reference.argmax(1)))
    print(f"\n{MODELS[name]}, ONNX opset {proto.opset_import[0].version}: ", end="")
    if diff > 1e-4 or agree < 1:
        print(f"outputs differ: max |diff| {diff:.3g}, argmax agreement {agree:.4%}")
        return None
    print(f"test accuracy {np.mean(reference.argmax(1) == y_te):.2%} ({args.fit_epochs} "
          f"training epoch(s)); outputs agree (max |diff| {diff:.2g})")

    batches = {"batch 1000": _common.INFER_BATCH, "whole set": x_te.shape[0]}
    if name == "cnn" and args.dtype == "float64":
        # ONNX Runtime runs a float64 convolution as Gather + Einsum (it has no float64
        # Conv): about 1 GB per 1000 images, so 10,000 at once would not fit in memory
        del batches["whole set"]
        print("(float64 CNN: the whole set in one batch is skipped, it needs tens of GB in "
              "ONNX Runtime)")
    seconds: dict[tuple[str, str], list[float]] = {
        (runner, key): [] for runner in runners for key in batches}
    load = _common.OtherLoad().start()
    for repeat in range(args.repeats + 1):  # the first pass is a warm-up
        order = list(runners) if repeat % 2 == 0 else list(reversed(runners))
        for key, batch in batches.items():
            for runner in order:
                elapsed = timed(runners[runner], x_te, batch)
                if repeat:
                    seconds[(runner, key)].append(elapsed)
    other = load.stop()

    n = x_te.shape[0]
    rows = []
    print(f"{'batch':<11} {'numnet img/s':>13} {'ORT img/s':>11} {'ORT/numnet':>11}")
    for key, batch in batches.items():
        ours, theirs = seconds[("numnet", key)], seconds[("onnxruntime", key)]
        ratio = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
        row = {"model": name, "batch": batch,
               "numnet_images_per_s": n / statistics.median(ours),
               "onnxruntime_images_per_s": n / statistics.median(theirs),
               "onnxruntime_over_numnet": ratio, "other_busy_cpus": other}
        rows.append(row)
        print(f"{key:<11} {row['numnet_images_per_s']:>13,.0f} "
              f"{row['onnxruntime_images_per_s']:>11,.0f} {ratio:>10.2f}x")
    print(f"(medians of {args.repeats} interleaved passes; ratio: median of the paired "
          f"ratios; other processes kept {other if other is not None else float('nan'):.1f} "
          "CPUs busy meanwhile)")
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
