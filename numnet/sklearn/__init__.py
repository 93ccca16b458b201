"""scikit-learn estimators built on numnet networks (the optional extra ``sklearn``).

:class:`NumnetClassifier` and :class:`NumnetRegressor` follow scikit-learn's rules (they
pass its ``check_estimator``), so they drop into a ``Pipeline``, ``cross_val_score`` or
``GridSearchCV``, and bring what scikit-learn's ``MLPClassifier`` lacks: dropout, batch
normalisation, any numnet network (convolutional ones included) through ``model``, the
divergence guard, and a pickle-free model file (``save``/``load``)::

    from sklearn.model_selection import GridSearchCV
    from numnet.sklearn import NumnetClassifier

    search = GridSearchCV(NumnetClassifier(epochs=30, random_state=0),
                          {"hidden_layer_sizes": [(32,), (64,)], "dropout": [0.0, 0.2]},
                          n_jobs=2)
    search.fit(X, y)

Each worker of such a search gives BLAS one thread (``n_threads``), so ``n_jobs`` fits do
not fight over the cores; ``with joblib.parallel_backend("dask"):`` runs the same search
on a Dask cluster (see the README).

This package imports scikit-learn (and threadpoolctl, which it requires): ``import
numnet`` does not import it.
"""

from numnet.sklearn._base import NumnetEstimator
from numnet.sklearn._classifier import NumnetClassifier
from numnet.sklearn._regressor import NumnetRegressor

__all__ = ["NumnetClassifier", "NumnetEstimator", "NumnetRegressor"]
