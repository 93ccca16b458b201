"""Data for numnet: file formats, datasets, preprocessing.

* Formats: :func:`read_idx` / :func:`write_idx` (the MNIST IDX format) and
  :func:`load_csv` (fast numeric CSV).
* Datasets: :func:`load_digits` (built in), :func:`load_mnist` and
  :func:`load_fashion_mnist` (cached, downloaded on first use), :func:`dataset_info`.
* Preprocessing: :func:`one_hot` / :func:`from_one_hot`, :class:`Standardizer`,
  :class:`MinMaxScaler`, :func:`train_dev_test_split` and :func:`minibatches`.
"""

from numnet.data.csv import load_csv
from numnet.data.datasets import (
    CHECKSUMS,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_MIRRORS,
    MNIST_MIRRORS,
    SAMPLE_COUNTS,
    DatasetInfo,
    DownloadError,
    cache_dir,
    dataset_info,
    list_datasets,
    load_digits,
    load_fashion_mnist,
    load_mnist,
)
from numnet.data.idx import read_idx, write_idx
from numnet.data.preprocessing import (
    MinMaxScaler,
    NotFittedError,
    Standardizer,
    from_one_hot,
    minibatches,
    one_hot,
    train_dev_test_split,
)
from numnet.errors import DataError

__all__ = [
    "CHECKSUMS",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_MIRRORS",
    "MNIST_MIRRORS",
    "SAMPLE_COUNTS",
    "DataError",
    "DatasetInfo",
    "DownloadError",
    "MinMaxScaler",
    "NotFittedError",
    "Standardizer",
    "cache_dir",
    "dataset_info",
    "from_one_hot",
    "list_datasets",
    "load_csv",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "minibatches",
    "one_hot",
    "read_idx",
    "train_dev_test_split",
    "write_idx",
]
