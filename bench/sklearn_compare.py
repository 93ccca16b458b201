"""NumnetClassifier against scikit-learn's MLPClassifier, and one search three ways.

1. 5-fold cross-validated accuracy on the built-in digits (1,797 8x8 images, scaled to
   [0, 1], float32) of ``NumnetClassifier`` and ``MLPClassifier`` with the same hidden
   sizes, activation, optimiser (Adam, betas 0.9/0.999, eps 1e-8), learning rate, batch
   size and epochs (MLPClassifier: ``max_iter=epochs``, no L2, no early stopping, ``tol``
   tiny and ``n_iter_no_change > epochs`` so that it runs every epoch), and both fit times.
   The two fit the same folds one after the other, the order alternating, in this process
   (the same BLAS, ``--threads`` threads). Repeated ``--repeats`` times with other seeds.
2. The wall time of one small grid search (4 candidates x 3 folds of NumnetClassifier):
   serially, with ``n_jobs=2`` (joblib's loky workers) and on a local Dask cluster of two
   worker processes with one thread each (``joblib.parallel_backend("dask")``). Each way
   runs once untimed first (worker start-up, imports), then ``--repeats`` times, the ways
   interleaved; medians are reported, and the cold first run separately.

The machine may be shared: the load average before and after, and how many CPUs other
processes kept busy (during each fit of part 1; in the half second before each search of
part 2, whose own workers are other processes) are printed with the results.

    python bench/sklearn_compare.py                 # about two minutes on 2 idle cores
    python bench/sklearn_compare.py --repeats 5 --json sklearn.json
"""

from __future__ import annotations

import _common

THREADS = _common.pin_threads_from_argv()

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402

from numnet.data import load_digits  # noqa: E402
from numnet.sklearn import NumnetClassifier  # noqa: E402

GRID = {"hidden_layer_sizes": [(32,), (64,)], "dropout": [0.0, 0.2]}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[64], help="hidden sizes")
    parser.add_argument("--activation", default="relu")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--search-epochs", type=int, default=20)
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask cluster")
    parser.add_argument("--threads", type=int, default=THREADS,
                        help="BLAS threads of this process (set before NumPy is loaded)")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to this long for other processes to go quiet")
    parser.add_argument("--json", default=None, help="also write the results here")
    return parser.parse_args()


def estimators(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    hidden = tuple(args.hidden)
    mlp_activation = "logistic" if args.activation == "sigmoid" else args.activation
    return {
        "numnet": NumnetClassifier(hidden, activation=args.activation, optimizer="adam",
                                   lr=args.lr, batch_size=args.batch_size, epochs=args.epochs,
                                   random_state=seed),
        "sklearn": MLPClassifier(hidden, activation=mlp_activation, solver="adam",
                                 learning_rate_init=args.lr, batch_size=args.batch_size,
                                 max_iter=args.epochs, alpha=0.0, early_stopping=False,
                                 tol=1e-300, n_iter_no_change=args.epochs + 1,
                                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, random_state=seed),
    }


def compare(args: argparse.Namespace, X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Cross-validated accuracy and fit time of both, fold by fold, the order alternating."""
    runs: dict[str, dict[str, list[float]]] = {
        name: {"accuracy": [], "fit_s": [], "epochs": []} for name in ("numnet", "sklearn")}
    cv_means: dict[str, list[float]] = {"numnet": [], "sklearn": []}
    others = []
    for repeat in range(args.repeats):
        folds = StratifiedKFold(args.folds, shuffle=True, random_state=repeat)
        fold_scores: dict[str, list[float]] = {"numnet": [], "sklearn": []}
        for index, (train, test) in enumerate(folds.split(X, y)):
            models = estimators(args, seed=repeat)
            order = ["numnet", "sklearn"] if index % 2 == 0 else ["sklearn", "numnet"]
            for name in order:
                model = models[name]
                load = _common.OtherLoad().start()
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    model.fit(X[train], y[train])
                runs[name]["fit_s"].append(time.perf_counter() - start)
                others.append(load.stop())
                score = float(model.score(X[test], y[test]))
                runs[name]["accuracy"].append(score)
                runs[name]["epochs"].append(int(model.n_iter_))
                fold_scores[name].append(score)
        for name, scores in fold_scores.items():
            cv_means[name].append(statistics.fmean(scores))
    ratios = [s / n for n, s in zip(runs["numnet"]["fit_s"], runs["sklearn"]["fit_s"],
                                    strict=True)]
    return {
        "cv_accuracy": {name: {"per_repeat": values, "median": statistics.median(values)}
                        for name, values in cv_means.items()},
        "fold_accuracy": {name: _common.summary(r["accuracy"]) for name, r in runs.items()},
        "fit_seconds": {name: _common.summary(r["fit_s"]) for name, r in runs.items()},
        "epochs_run": {name: sorted(set(r["epochs"])) for name, r in runs.items()},
        "sklearn_over_numnet_fit_time": _common.summary(ratios),
        "other_cpus_busy": _common.summary([o for o in others if o is not None]),
    }


def search(X: np.ndarray, y: np.ndarray, epochs: int, n_jobs: int | None) -> tuple[float,
                                                                                    Any]:
    model = NumnetClassifier(epochs=epochs, lr=1e-3, random_state=0)
    start = time.perf_counter()
    fitted = GridSearchCV(model, GRID, cv=3, n_jobs=n_jobs).fit(X, y)
    return time.perf_counter() - start, fitted


def searches(args: argparse.Namespace, X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """The same search serially, with n_jobs=2 and on a local Dask cluster, interleaved."""
    import joblib

    ways: dict[str, Any] = {"serial": None, "n_jobs=2": 2}
    stack = []
    cluster_start = None
    if not args.no_dask:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            print("distributed is not installed: no Dask run", file=sys.stderr)
        else:
            begin = time.perf_counter()
            cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                   host="127.0.0.1", dashboard_address=None)
            client = Client(cluster)
            cluster_start = time.perf_counter() - begin
            stack = [client, cluster]
            ways["dask"] = "dask"
    results: dict[str, dict[str, Any]] = {way: {"seconds": [], "other": []} for way in ways}
    best: dict[str, Any] = {}

    def run(way: str) -> float:
        # other processes' load, sampled just before (during the run the search's own
        # worker processes would count as "other")
        results[way]["other"].append(_common.busy_cores(0.5))
        if ways[way] == "dask":
            with joblib.parallel_backend("dask"):
                seconds, fitted = search(X, y, args.search_epochs, None)
        else:
            seconds, fitted = search(X, y, args.search_epochs, ways[way])
        best[way] = (fitted.best_params_, float(fitted.best_score_))
        return seconds

    try:
        for way in ways:  # cold: worker start-up and imports
            results[way]["cold"] = run(way)
            results[way]["other"].clear()
        for repeat in range(args.repeats):
            order = list(ways)[repeat % len(ways):] + list(ways)[:repeat % len(ways)]
            for way in order:
                results[way]["seconds"].append(run(way))
    finally:
        for closable in stack:
            closable.close()
    return {
        "grid": {k: [list(v) if isinstance(v, tuple) else v for v in values]
                 for k, values in GRID.items()},
        "candidates_x_folds": "4 x 3", "epochs": args.search_epochs,
        "dask_cluster_start_s": cluster_start,
        "ways": {way: {"median_s": statistics.median(r["seconds"]), "cold_s": r["cold"],
                       "seconds": r["seconds"],
                       "other_cpus_busy": _common.summary([o for o in r["other"]
                                                           if o is not None])}
                 for way, r in results.items()},
        "same_best": len({json.dumps(b, default=str) for b in best.values()}) == 1,
        "best": {way: {"params": {k: list(v) if isinstance(v, tuple) else v
                                  for k, v in b[0].items()}, "score": b[1]}
                 for way, b in best.items()},
    }


def main() -> int:
    args = parse_args()
    if args.wait_idle:
        waited, busy = _common.wait_until_idle(args.wait_idle)
        print(f"waited {waited:.0f} s for the machine to go quiet (others busy: {busy})")
    X, y = load_digits(flatten=True, scale=True)
    report: dict[str, Any] = {"machine": _common.machine_info(), "threads": args.threads,
                              "blas": _common.blas_threads(), "load_before": _common.load_avg(),
                              "settings": {k: v for k, v in vars(args).items() if k != "json"}}
    print(f"CPU: {report['machine']['cpu']} ({report['machine']['cpu_count']} CPUs), "
          f"{args.threads} BLAS thread(s); load average {report['load_before']}")
    report["compare"] = compare(args, X, y)
    report["search"] = searches(args, X, y)
    report["load_after"] = _common.load_avg()
    show(report)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    return 0


def show(report: dict[str, Any]) -> None:
    c, s, settings = report["compare"], report["search"], report["settings"]
    print(f"\n{settings['folds']}-fold CV on the built-in digits, hidden {settings['hidden']}, "
          f"{settings['activation']}, Adam lr {settings['lr']}, batch {settings['batch_size']}, "
          f"{settings['epochs']} epochs, {settings['repeats']} repeats (medians)")
    print(f"{'':>10}  {'CV accuracy':>11}  {'fit s (median)':>14}  epochs run")
    for name in ("numnet", "sklearn"):
        print(f"{name:>10}  {c['cv_accuracy'][name]['median']:>11.4f}  "
              f"{c['fit_seconds'][name]['median']:>14.3f}  {c['epochs_run'][name]}")
    print(f"MLPClassifier fit time / NumnetClassifier fit time, paired per fold: median "
          f"{c['sklearn_over_numnet_fit_time']['median']:.2f} "
          f"(min {c['sklearn_over_numnet_fit_time']['min']:.2f}, "
          f"max {c['sklearn_over_numnet_fit_time']['max']:.2f}); other processes kept "
          f"{c['other_cpus_busy']['median']:.2f} CPUs busy (median)")
    print(f"\nGrid search, NumnetClassifier, {s['candidates_x_folds']} fits of "
          f"{s['epochs']} epochs (+ refit)")
    for way, r in s["ways"].items():
        print(f"{way:>10}  median {r['median_s']:6.2f} s  (cold {r['cold_s']:6.2f} s; others "
              f"busy just before: {r['other_cpus_busy']['median'] or 0:.2f} CPUs)")
    if s["dask_cluster_start_s"] is not None:
        print(f"(starting the local Dask cluster took {s['dask_cluster_start_s']:.2f} s)")
    print(f"same best candidate every way: {s['same_best']}")
    print(f"load average before {report['load_before']}, after {report['load_after']}")


if __name__ == "__main__":
    sys.exit(main())
