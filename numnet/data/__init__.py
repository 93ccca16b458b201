"""Data for numnet: file formats, datasets, preprocessing.

* Formats: :func:`read_idx` / :func:`write_idx` (the MNIST IDX format) and
  :func:`load_csv` (fast numeric CSV).
* Datasets: :func:`load_digits` (built in), :func:`load_mnist` and
  :func:`load_fashion_mnist` (cached, downloaded on first use), :func:`dataset_info`.
* Labels: :class:`LabelEncoder` (labels of any kind to ``0..K-1`` and back, serialisable),
  :func:`one_hot` / :func:`from_one_hot`.
* Scaling: :class:`Standardizer`, :class:`MinMaxScaler` and :class:`Rescale`, each
  described by a JSON ``get_config()`` that :func:`preprocessing_from_config` turns back
  into the same scaling (what ``numnet train`` stores in a model file).
* Splits and batches: :func:`train_dev_test_split` and :func:`minibatches`.
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
from numnet.data.labels import LabelEncoder, UnknownLabelError, from_one_hot, one_hot
from numnet.data.preprocessing import (
    Preprocessor,
    minibatches,
    preprocessing_from_config,
    train_dev_test_split,
)
from numnet.data.scaling import MinMaxScaler, NotFittedError, Rescale, Standardizer
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
    "LabelEncoder",
    "MinMaxScaler",
    "NotFittedError",
    "Preprocessor",
    "Rescale",
    "Standardizer",
    "UnknownLabelError",
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
    "preprocessing_from_config",
    "read_idx",
    "train_dev_test_split",
    "write_idx",
]
