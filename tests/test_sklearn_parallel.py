"""numnet.sklearn in parallel searches: joblib worker processes and a local Dask cluster.

Each worker's BLAS gets one thread unless the estimator's ``n_threads`` says otherwise, so
``n_jobs`` fits do not oversubscribe the cores; the search gives the results of a serial
one. The Dask test starts a ``distributed.LocalCluster`` with two worker processes in a
subprocess of its own, bounded in time, and closes it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn is not installed (extra 'sklearn')")

from joblib import parallel_config  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_validate  # noqa: E402

from numnet.sklearn import NumnetClassifier  # noqa: E402
from numnet.sklearn._threads import blas_threads, limited_threads, thread_limit  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GRID = {"hidden_layer_sizes": [(8,), (16,)], "dropout": [0.0, 0.2]}


def blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    return rng.normal(0, 3, (3, 4))[y] + rng.normal(0, 1, (n, 4)), y


def estimator(**params):
    return NumnetClassifier(**{"epochs": 5, "lr": 0.02, "random_state": 0, **params})


def fitted_threads(n_jobs=2, **params):
    """The BLAS threads each fit of a 2-fold cross-validation ran with."""
    result = cross_validate(estimator(**params), *blobs(), cv=2, n_jobs=n_jobs,
                            return_estimator=True)
    return [fitted.n_threads_ for fitted in result["estimator"]]


def test_the_thread_rule():
    assert thread_limit(3) == 3
    assert thread_limit(None) is None  # the main process: BLAS's own choice
    with limited_threads(1) as limit:
        assert limit == 1 and blas_threads() == 1
    assert estimator(n_threads=1).fit(*blobs()).n_threads_ == 1
    assert estimator().fit(*blobs()).n_threads_ == blas_threads()


def test_grid_search_with_two_jobs_gives_the_serial_results():
    X, y = blobs()
    serial = GridSearchCV(estimator(), GRID, cv=3).fit(X, y)
    parallel = GridSearchCV(estimator(), GRID, cv=3, n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(parallel.cv_results_["mean_test_score"],
                                  serial.cv_results_["mean_test_score"])
    assert parallel.best_params_ == serial.best_params_


@pytest.mark.parametrize("backend, options", [
    ("multiprocessing", {}),                     # forked workers keep the parent's BLAS
    ("loky", {"inner_max_num_threads": 2}),      # loky told to give its workers two
])
def test_worker_processes_fit_with_one_blas_thread(backend, options):
    if blas_threads() < 2:
        pytest.skip("BLAS runs one thread here anyway: nothing to limit")
    with parallel_config(backend=backend, **options):
        assert fitted_threads() == [1, 1]
        assert fitted_threads(n_threads=2) == [2, 2]  # unless told otherwise


DASK_SEARCH = '''
import json
import sys

import joblib
import numpy as np
from distributed import Client, LocalCluster, get_task_stream
from sklearn.model_selection import GridSearchCV, cross_validate

from numnet.sklearn import NumnetClassifier

GRID = {"hidden_layer_sizes": [(8,), (16,)], "dropout": [0.0, 0.2]}


def main():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 120)
    X = rng.normal(0, 3, (3, 4))[y] + rng.normal(0, 1, (120, 4))
    model = NumnetClassifier(epochs=5, lr=0.02, random_state=0)
    serial = GridSearchCV(model, GRID, cv=3).fit(X, y)
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        with joblib.parallel_backend("dask"), get_task_stream(client) as tasks:
            search = GridSearchCV(model, GRID, cv=3).fit(X, y)
            fitted = cross_validate(model, X, y, cv=2, return_estimator=True)["estimator"]
        workers = sorted({task["worker"] for task in tasks.data})
    print(json.dumps({
        "same_scores": bool(np.array_equal(search.cv_results_["mean_test_score"],
                                           serial.cv_results_["mean_test_score"])),
        "best_params": search.best_params_ == serial.best_params_,
        "workers": len(workers), "tasks": len(tasks.data),
        "threads": [est.n_threads_ for est in fitted],
    }))


if __name__ == "__main__":
    main()
'''


def test_a_search_on_a_local_dask_cluster(tmp_path):
    pytest.importorskip("dask", reason="dask is not installed (extra 'dask')")
    pytest.importorskip("distributed", reason="distributed is not installed (extra 'dask')")
    script = tmp_path / "dask_search.py"
    script.write_text(textwrap.dedent(DASK_SEARCH))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # its own session, so that on a timeout the cluster's processes go with it
    process = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail("the search on the local Dask cluster took more than 240 s")
    assert process.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["same_scores"] and result["best_params"]
    assert result["tasks"] >= 1 and result["workers"] >= 1  # the fits ran on the cluster
    assert result["threads"] == [1, 1]
