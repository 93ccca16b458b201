"""One benchmark run of one framework on one task, in its own process; JSON on stdout.

    python bench/peers.py --framework {numnet,torch,sklearn} --task {mlp,mlp_bn,inference,cnn}
                          [--epochs N] [--seed S] [--threads 2] [--data PATH | --synthetic N]
                          [--limit N] [--infer-repeats R]

``bench/suite.py`` runs this once per (framework, task, repeat), interleaved, so every run
has a fresh process: its peak resident memory (``ru_maxrss``) is its own, and no run warms
caches or allocators for the next. The last line on stdout is one JSON object:

``status``
    ``"ok"``, ``"skipped"`` (with ``reason``: the framework is not installed, or has no such
    model, or a numnet layer the task needs is not importable) or ``"error"``.
``epoch_seconds``
    Wall time of each training epoch (shuffle, batches, forward, loss, backward, optimiser
    step; no evaluation).
``test_accuracy``
    On the test set after the last epoch, in evaluation mode.
``infer``
    Images per second predicting the test set's classes, in batches of 1000 and as one
    batch: ``{"batch_1000": {...}, "whole": {...}}`` with the median and best of the timed
    passes (after one untimed warm-up pass).
``peak_rss_mb``
    Peak resident memory of the whole process (``ru_maxrss``: imports, data loading,
    training, inference). Data loading has a peak of its own (decompression), so also:
``setup_rss_mb`` / ``run_peak_rss_mb`` / ``run_extra_rss_mb``
    The resident memory once imports and data are loaded, the peak from then on (model,
    training, inference; Linux ``VmHWM`` after resetting it), and their difference: the
    memory the framework itself needs on top of the data.
``other_cpus_during_run``
    How many CPUs other processes kept busy, on average, while this run trained and
    predicted (system busy time minus this process's CPU time, over the wall time): near
    0 on an idle machine; a run with 1 on a 2-core machine competed for its cores.

The same model in all three frameworks
--------------------------------------
* Architecture: ``mlp`` is Dense(784, 256)-ReLU-Dense(256, 128)-ReLU-Dense(128, 10) with
  softmax cross-entropy from the logits; ``mlp_bn`` puts BatchNorm1d (momentum 0.1, eps
  1e-5) and Dropout(0.2) after each hidden Dense: Dense-BN-ReLU-Dropout.
* Initial weights: numnet's own defaults for the seed (He-normal for a Dense followed by
  ReLU, Glorot-uniform otherwise; zero biases). The PyTorch model gets **a copy of the
  numnet model's initial weights**, so the two start identically. scikit-learn cannot be
  given initial weights before its first ``partial_fit``, so it uses its own
  Glorot-uniform init (``U(-a, a)``, ``a = sqrt(6 / (fan_in + fan_out))``, for biases too).
* Optimiser: Adam, lr 1e-3, betas (0.9, 0.999), eps 1e-8, no weight decay; batch 128,
  reshuffled every epoch, the last smaller batch used.
* numnet: ``model.fit(X, y, epochs=N, batch_size=128, optimizer=Adam(...), shuffle=True,
  verbose=0, seed=S)``; epoch times are ``History['seconds']``.
* PyTorch: a plain loop - ``torch.randperm`` indices, ``index_select`` batches from
  ``torch.from_numpy`` float32 tensors, ``CrossEntropyLoss``, ``torch.optim.Adam`` (its
  default CPU implementation), ``zero_grad(set_to_none=True)``; the running loss is read
  with ``.item()`` per batch, as numnet and scikit-learn also compute it.
* scikit-learn: ``MLPClassifier(hidden_layer_sizes=(256, 128), activation='relu',
  solver='adam', alpha=0, batch_size=128, learning_rate_init=1e-3, beta_1=0.9,
  beta_2=0.999, epsilon=1e-8, shuffle=True, tol=0, n_iter_no_change=10**9, max_iter=1,
  warm_start=True)``; one ``partial_fit`` call (which keeps the Adam state) is one epoch
  and is timed whole, input validation included. With float32 input it computes in
  float32 (``compute_dtype`` reports the dtype of its weights). Its Adam adds ``eps`` to
  the uncorrected ``sqrt(v)`` (a slightly different eps placement than PyTorch/numnet).

Thread counts (``--threads``, default 2) are set in ``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` before numpy or torch is imported, and with
``torch.set_num_threads``.

The ``cnn`` task
----------------
The issue's network (``bench/_cnn.py``), numnet's initial weights copied into PyTorch as
for the MLP, inputs ``(N, 1, 28, 28)``; Adam at 1e-3, batch 128, reshuffled every epoch,
and a moving average of the weights after every step, which the model ends with (numnet:
``fit(callbacks=[_cnn.averaging()])``; PyTorch: ``_cnn.TorchAverage``, the same formula,
inside the timed epoch). scikit-learn has no convolutional network: skipped as n/a.
"""

from __future__ import annotations

import _common

_common.pin_threads_from_argv()

import argparse  # noqa: E402
import hashlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import _cnn  # noqa: E402
import numpy as np  # noqa: E402

FRAMEWORKS = ("numnet", "torch", "sklearn")

#: task -> description. A task a framework cannot run is reported as skipped with a reason.
TASKS = {
    "mlp": "MLP 784-256-128-10, ReLU: train N epochs, test accuracy, inference",
    "mlp_bn": "the MLP with Dense-BatchNorm1d-ReLU-Dropout(0.2) blocks: train, accuracy, "
              "inference",
    "inference": "the untrained MLP (identical weights in all three): class predictions for "
                 "the 10,000 test images, batch 1000 and whole",
    "cnn": "the issue's CNN on MNIST images (N, 1, 28, 28): conv 1->32 3x3-ReLU-maxpool2-"
           "conv 32->64 3x3-ReLU-maxpool2-Dense 1600->128-ReLU-Dense 128->10, trained with "
           "bench/_cnn.py's recipe (a constant rate and the weights averaged over the steps); "
           "test accuracy, inference",
}


class Skip(Exception):
    """This framework cannot run this task; the message says why."""


# ----------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------


def build_numnet(task: str, seed: int) -> Any:
    """The numnet model for ``task`` (raises Skip when a needed layer is missing)."""
    import numnet

    if task == "cnn":
        return _cnn.numnet_cnn(seed)
    d0, d1, d2, d3 = _common.SIZES
    if task == "mlp_bn":
        try:
            from numnet.layers import BatchNorm1d, Dropout
        except ImportError as exc:
            raise Skip(f"numnet.layers.BatchNorm1d/Dropout not importable: {exc}") from exc
        p = _common.DROPOUT
        layers = [numnet.Dense(d0, d1), BatchNorm1d(d1), numnet.ReLU(), Dropout(p),
                  numnet.Dense(d1, d2), BatchNorm1d(d2), numnet.ReLU(), Dropout(p),
                  numnet.Dense(d2, d3)]
    else:
        layers = [numnet.Dense(d0, d1), numnet.ReLU(), numnet.Dense(d1, d2), numnet.ReLU(),
                  numnet.Dense(d2, d3)]
    return numnet.Sequential(layers, loss=numnet.CrossEntropy(), dtype="float32", seed=seed)


def numnet_dense_weights(model: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(W (in, out), b), ...]`` of every Dense layer, in order (copies)."""
    from numnet.layers import Dense

    return [(layer.params["W"].copy(), layer.params["b"].copy())
            for layer in model.layers if isinstance(layer, Dense)]


def build_torch(task: str, seed: int) -> Any:
    """The PyTorch model, initialised with a copy of numnet's initial weights for ``seed``."""
    import torch
    from torch import nn

    if task == "cnn":
        return _cnn.torch_cnn(build_numnet(task, seed))
    d0, d1, d2, d3 = _common.SIZES
    if task == "mlp_bn":
        p = _common.DROPOUT
        model = nn.Sequential(
            nn.Linear(d0, d1), nn.BatchNorm1d(d1, eps=1e-5, momentum=0.1), nn.ReLU(),
            nn.Dropout(p),
            nn.Linear(d1, d2), nn.BatchNorm1d(d2, eps=1e-5, momentum=0.1), nn.ReLU(),
            nn.Dropout(p),
            nn.Linear(d2, d3))
    else:
        model = nn.Sequential(nn.Linear(d0, d1), nn.ReLU(), nn.Linear(d1, d2), nn.ReLU(),
                              nn.Linear(d2, d3))
    linears = [m for m in model if isinstance(m, nn.Linear)]
    weights = numnet_dense_weights(build_numnet(task, seed))
    with torch.no_grad():
        for linear, (w, b) in zip(linears, weights, strict=True):
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
            linear.bias.copy_(torch.from_numpy(b))
    return model


def build_sklearn(seed: int) -> Any:
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(
        hidden_layer_sizes=_common.SIZES[1:-1], activation="relu", solver="adam", alpha=0.0,
        batch_size=_common.BATCH_SIZE, learning_rate_init=_common.LR,
        beta_1=_common.BETAS[0], beta_2=_common.BETAS[1], epsilon=_common.EPS,
        shuffle=True, random_state=seed, tol=0.0, n_iter_no_change=10**9, max_iter=1,
        warm_start=True, early_stopping=False)


# ----------------------------------------------------------------------------------------
# Timing helpers
# ----------------------------------------------------------------------------------------


def time_inference(predict: Callable[[np.ndarray, int], np.ndarray], x: np.ndarray,
                   repeats: int) -> dict[str, Any]:
    """Images/s of ``predict(x, batch)`` for batch 1000 and the whole set (one warm-up each)."""
    out: dict[str, Any] = {}
    n = x.shape[0]
    for key, batch in (("batch_1000", _common.INFER_BATCH), ("whole", n)):
        predict(x, batch)  # warm-up (allocations, lazy initialisation)
        times = []
        for _ in range(max(1, repeats)):
            start = time.perf_counter()
            predict(x, batch)
            times.append(time.perf_counter() - start)
        stats = _common.summary(times)
        out[key] = {"batch": batch, "images": n, "seconds": stats,
                    "images_per_s": n / stats["median"], "best_images_per_s": n / stats["min"]}
    return out


def digest(pred: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(pred, dtype=np.int64).tobytes()).hexdigest()[:12]


def batched(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray, int], np.ndarray]:
    """``predict(x, batch)`` from a one-batch ``fn(x_chunk)`` (concatenating the chunks)."""
    def predict(x: np.ndarray, batch: int) -> np.ndarray:
        return np.concatenate([fn(x[i:i + batch]) for i in range(0, x.shape[0], batch)])
    return predict


# ----------------------------------------------------------------------------------------
# Runners: each returns the framework-specific part of the result
# ----------------------------------------------------------------------------------------


def run_numnet(args: argparse.Namespace, data: tuple, result: dict[str, Any]) -> None:
    import numnet
    from numnet.optim import Adam

    x_tr, y_tr, x_te, y_te = data
    result["version"] = numnet.__version__
    model = build_numnet(args.task, args.seed)
    result["compute_dtype"] = str(model.dtype)
    result["init"] = "numnet defaults: He-normal before ReLU, Glorot-uniform otherwise"
    predict = model.predict  # predict(x, batch_size): eval mode, argmax of the logits
    if args.task != "inference":
        optimizer = Adam(lr=_common.LR, betas=_common.BETAS, eps=_common.EPS)
        callbacks = [_cnn.averaging()] if args.task == "cnn" else []
        start = time.perf_counter()
        history = model.fit(x_tr, y_tr, epochs=args.epochs, batch_size=_common.BATCH_SIZE,
                            optimizer=optimizer, shuffle=True, verbose=0, seed=args.seed,
                            callbacks=callbacks)
        result["fit_wall_s"] = time.perf_counter() - start
        result["epoch_seconds"] = [float(s) for s in history.history["seconds"]]
        result["train_loss"] = [float(v) for v in history.history["loss"]]
    pred = predict(x_te, batch_size=_common.INFER_BATCH)
    result["test_accuracy"] = float(np.mean(pred == y_te))
    result["pred_digest"] = digest(pred)
    result["infer"] = time_inference(lambda x, b: predict(x, batch_size=b), x_te,
                                     args.infer_repeats)
    result["kernel_path"] = kernel_path()


def kernel_path() -> str:
    """Which path numnet's element-wise kernels ran: compiled (numba) once any kernel has
    run compiled in this process, else NumPy."""
    from numnet import _kernels

    compiled = _kernels._State.compiled
    if compiled is None:
        return "NumPy"
    import numba

    return f"compiled (numba {numba.__version__})"


def run_torch(args: argparse.Namespace, data: tuple, result: dict[str, Any]) -> None:
    if importlib.util.find_spec("torch") is None:
        raise Skip("PyTorch is not installed (pip install -e '.[bench]' gives torch==2.13.0)")
    import torch
    from torch import nn

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # dropout masks
    x_tr, y_tr, x_te, y_te = data
    result["version"] = torch.__version__
    result["torch_threads"] = torch.get_num_threads()
    model = build_torch(args.task, args.seed)
    result["compute_dtype"] = str(next(model.parameters()).dtype).replace("torch.", "")
    result["init"] = "copy of numnet's initial weights"
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    x_test = torch.from_numpy(x_te)

    def predict(x: np.ndarray, batch: int) -> np.ndarray:
        model.eval()
        with torch.inference_mode():
            xs = torch.from_numpy(x)
            return torch.cat([model(xs[i:i + batch]).argmax(dim=1)
                              for i in range(0, xs.shape[0], batch)]).numpy()

    if args.task != "inference":
        optimizer = torch.optim.Adam(model.parameters(), lr=_common.LR, betas=_common.BETAS,
                                     eps=_common.EPS, weight_decay=0.0)
        result["optimizer"] = {k: v for k, v in optimizer.defaults.items()
                               if isinstance(v, (int, float, bool, str, type(None), tuple))}
        criterion = nn.CrossEntropyLoss()
        generator = torch.Generator().manual_seed(args.seed)
        epoch_seconds, losses = [], []
        average = _cnn.TorchAverage(model) if args.task == "cnn" else None
        for _ in range(args.epochs):
            seconds, loss = _common.torch_epoch(model, optimizer, criterion, xt, yt, generator,
                                                None if average is None else average.update)
            epoch_seconds.append(seconds)
            losses.append(loss)
        if average is not None:  # the model ends with the average, as numnet's fit does
            average.swap()
        result["epoch_seconds"], result["train_loss"] = epoch_seconds, losses
    pred = predict(x_test.numpy(), _common.INFER_BATCH)
    result["test_accuracy"] = float(np.mean(pred == y_te))
    result["pred_digest"] = digest(pred)
    result["infer"] = time_inference(predict, x_te, args.infer_repeats)


def run_sklearn(args: argparse.Namespace, data: tuple, result: dict[str, Any]) -> None:
    if importlib.util.find_spec("sklearn") is None:
        raise Skip("scikit-learn is not installed (pip install -e '.[bench]')")
    if args.task == "mlp_bn":
        raise Skip("n/a: scikit-learn's MLPClassifier has no batch normalisation or dropout")
    if args.task == "cnn":
        raise Skip("n/a: scikit-learn has no convolutional network")
    import sklearn
    from sklearn.exceptions import ConvergenceWarning

    warnings.simplefilter("ignore", ConvergenceWarning)
    x_tr, y_tr, x_te, y_te = data
    result["version"] = sklearn.__version__
    clf = build_sklearn(args.seed)
    classes = np.arange(_common.SIZES[-1])
    if args.task == "inference":
        # initialise sklearn's internals on one batch, then load numnet's initial weights so
        # all three frameworks predict with identical parameters
        clf.partial_fit(x_tr[:_common.BATCH_SIZE], y_tr[:_common.BATCH_SIZE], classes=classes)
        weights = numnet_dense_weights(build_numnet("mlp", args.seed))
        clf.coefs_ = [w.astype(np.float32) for w, _ in weights]
        clf.intercepts_ = [b.astype(np.float32) for _, b in weights]
        result["init"] = "copy of numnet's initial weights (inference only)"
    else:
        result["init"] = "scikit-learn's own Glorot-uniform (weights and biases)"
        epoch_seconds, losses = [], []
        for _ in range(args.epochs):
            start = time.perf_counter()
            clf.partial_fit(x_tr, y_tr, classes=classes)
            epoch_seconds.append(time.perf_counter() - start)
            losses.append(float(clf.loss_))
        result["epoch_seconds"], result["train_loss"] = epoch_seconds, losses
    result["compute_dtype"] = str(clf.coefs_[0].dtype)
    predict = batched(clf.predict)
    pred = predict(x_te, _common.INFER_BATCH)
    result["test_accuracy"] = float(np.mean(pred == y_te))
    result["pred_digest"] = digest(pred)
    result["infer"] = time_inference(predict, x_te, args.infer_repeats)


RUNNERS = {"numnet": run_numnet, "torch": run_torch, "sklearn": run_sklearn}


# ----------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="One benchmark run; prints one JSON line.")
    parser.add_argument("--framework", required=True, choices=FRAMEWORKS)
    parser.add_argument("--task", required=True, choices=tuple(TASKS))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=_common.DEFAULT_THREADS)
    parser.add_argument("--data", default=None, help="MNIST directory "
                        "(default ../shared/data/mnist from the repository root)")
    parser.add_argument("--synthetic", type=int, default=None, metavar="N",
                        help="use N random training images instead of MNIST (for tests)")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="train on the first N training images only")
    parser.add_argument("--infer-repeats", type=int, default=5,
                        help="timed inference passes per batch size (after one warm-up)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"status": "ok", "framework": args.framework, "task": args.task,
                              "epochs": 0 if args.task == "inference" else args.epochs,
                              "seed": args.seed, "threads": args.threads,
                              "load_avg_start": _common.load_avg()}
    try:
        x_tr, y_tr, x_te, y_te, what = _common.load_data(args.data, args.synthetic,
                                                         args.limit)
        if args.task == "cnn":  # images (N, 1, 28, 28): views of the rows
            x_tr, x_te = x_tr.reshape(-1, 1, 28, 28), x_te.reshape(-1, 1, 28, 28)
        result.update(data=what, n_train=int(x_tr.shape[0]), n_test=int(x_te.shape[0]))
        result["setup_rss_mb"] = _common.rss_mb()  # imports and data, after loading
        result["setup_peak_rss_mb"] = _common.peak_rss_mb()  # loading's own peak included
        phase = _common.reset_peak_rss()
        meter = _common.OtherLoad().start()
        RUNNERS[args.framework](args, (x_tr, y_tr, x_te, y_te), result)
        result["other_cpus_during_run"] = meter.stop()
        if phase:  # peak while building, training and predicting, above the loaded state
            result["run_peak_rss_mb"] = _common.phase_peak_rss_mb()
            result["run_extra_rss_mb"] = result["run_peak_rss_mb"] - result["setup_rss_mb"]
    except Skip as exc:
        result.update(status="skipped", reason=str(exc))
    except Exception as exc:  # reported in the JSON; the suite shows it and goes on
        result.update(status="error", error=f"{type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc())
    # resetting VmHWM resets ru_maxrss too: the process peak is the larger of the two phases
    result["peak_rss_mb"] = max(_common.peak_rss_mb(), result.get("setup_peak_rss_mb", 0.0))
    result["load_avg_end"] = _common.load_avg()
    result["blas"] = _common.blas_threads()
    return result


def main(argv: list[str] | None = None) -> int:
    result = run(parse_args(argv))
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 1 if result["status"] == "error" else 0


if __name__ == "__main__":
    sys.exit(main())
