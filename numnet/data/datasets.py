"""Ready-made datasets: the built-in ``digits``, and MNIST and Fashion-MNIST on demand.

MNIST and Fashion-MNIST are looked for, in this order, in

1. the ``path`` argument, if given;
2. ``$NUMNET_DATA/<name>`` and then ``$NUMNET_DATA`` itself, if the variable is set
   (both datasets use the same file names, so files directly in ``$NUMNET_DATA`` are
   told apart by their test labels: Fashion-MNIST's are exactly balanced);
3. the per-user cache ``$XDG_CACHE_HOME/numnet/<name>`` (default ``~/.cache/numnet/<name>``).

A directory counts when it holds all four files (gzipped, or not). When none does and
``download=True``, the missing files are fetched from the first mirror that works (into
``path`` if given, else into the cache), each one verified against its published MD5
before it is moved into place, so an interrupted or corrupt download leaves nothing
behind. Files found already present are not MD5-checked (a recompressed copy is fine):
the IDX reader's structural checks validate them, and the number of images and labels
must be the dataset's (:data:`SAMPLE_COUNTS`), so a partial copy is an error, not a
silently smaller dataset.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from numnet._files import atomic_write
from numnet.data.idx import PathLike, data_error, read_idx
from numnet.errors import DataError

__all__ = [
    "CHECKSUMS",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_MIRRORS",
    "MNIST_MIRRORS",
    "SAMPLE_COUNTS",
    "DatasetInfo",
    "DownloadError",
    "cache_dir",
    "dataset_info",
    "list_datasets",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
]

#: Base URLs tried in order; each must serve the four ``.gz`` files by their names.
MNIST_MIRRORS: list[str] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]
FASHION_MNIST_MIRRORS: list[str] = [
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
]

#: Published MD5 of every downloadable ``.gz`` file, by dataset.
CHECKSUMS: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}

#: (train, test) number of samples of each downloadable dataset, checked on loading.
SAMPLE_COUNTS: dict[str, tuple[int, int]] = {
    "mnist": (60_000, 10_000),
    "fashion-mnist": (60_000, 10_000),
}

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

_FILES = (  # (images, labels) for (train, test); the same names for both datasets
    ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
)
_DESCRIPTIONS = {
    "digits": "1,797 8x8 handwritten digits, values 0..16 (UCI, via scikit-learn)",
    "mnist": "70,000 28x28 handwritten digits (60,000 train + 10,000 test)",
    "fashion-mnist": "70,000 28x28 Zalando clothing images (60,000 train + 10,000 test)",
}
_DIGITS_FILES = ("digits-images-idx3-ubyte.gz", "digits-labels-idx1-ubyte.gz")
_CLASSES = 10  # labels 0..9 in every dataset here
_TIMEOUT = 30.0  # seconds without data before a mirror counts as failed
_ENV_ROOT = "$NUMNET_DATA"

Split = tuple[np.ndarray, np.ndarray]


class DownloadError(OSError):
    """Every mirror failed for a dataset file; the message says how to install it by hand."""


# ----------------------------------------------------------------------------- loaders


def load_mnist(
    path: PathLike | None = None,
    flatten: bool = False,
    scale: bool = False,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
) -> tuple[Split, Split]:
    """The MNIST handwritten digits (LeCun, Cortes and Burges; CC BY-SA 3.0).

    Parameters
    ----------
    path : str or os.PathLike, optional
        Directory to look in first (and to download into, if given).
    flatten : bool, default False
        Return images as rows of 784 pixels instead of 28x28.
    scale : bool, default False
        Return float32 pixels in [0, 1] instead of uint8 in 0..255.
    download : bool, default True
        Download missing files; if False, a missing file is an error.
    mirrors : sequence of str, optional
        Base URLs to try in order instead of :data:`MNIST_MIRRORS`.

    Returns
    -------
    (X_train, y_train), (X_test, y_test)
        Images ``(60000, 28, 28)`` and ``(10000, 28, 28)`` uint8 (or as set by
        ``flatten``/``scale``) and int64 labels 0..9.

    Raises
    ------
    FileNotFoundError
        Files missing and ``download=False``; the message lists the file names and
        where to put them.
    DownloadError
        Every mirror failed (no network, bad checksum, interrupted transfer); the
        message says the same.
    DataError
        A file is present but is not the expected IDX data: wrong structure, or not
        60,000 training and 10,000 test samples (:data:`SAMPLE_COUNTS`), or images
        and labels that do not pair up. The message names the file.
    """
    return _load_idx_dataset("mnist", path, flatten, scale, download, mirrors)


def load_fashion_mnist(
    path: PathLike | None = None,
    flatten: bool = False,
    scale: bool = False,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
) -> tuple[Split, Split]:
    """Fashion-MNIST (Xiao, Rasul and Vollgraf, Zalando Research; MIT licence).

    Same layout and parameters as :func:`load_mnist` (``mirrors`` defaults to
    :data:`FASHION_MNIST_MIRRORS`); :data:`FASHION_MNIST_CLASSES` names the ten labels.

    Returns
    -------
    (X_train, y_train), (X_test, y_test)
    """
    return _load_idx_dataset("fashion-mnist", path, flatten, scale, download, mirrors)


def load_digits(flatten: bool = False, scale: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The built-in 8x8 digits: 1,797 images of the UCI "Optical Recognition of
    Handwritten Digits" test set (Alpaydin and Kaynak, 1998; CC BY 4.0), as scikit-learn
    ships it. Needs neither network nor scikit-learn.

    Parameters
    ----------
    flatten : bool, default False
        Return rows of 64 pixels instead of 8x8 images.
    scale : bool, default False
        Return float32 values in [0, 1] (divided by 16) instead of uint8 0..16.

    Returns
    -------
    X : numpy.ndarray
        ``(1797, 8, 8)`` uint8 (or as set by ``flatten``/``scale``).
    y : numpy.ndarray of int64, shape (1797,)
    """
    folder = resources.files("numnet.data").joinpath("_files")
    files = [folder.joinpath(name) for name in _DIGITS_FILES]
    arrays = []
    for traversable in files:
        with resources.as_file(traversable) as file:
            arrays.append(read_idx(file))
    X, y = _check_pair(arrays, files, "built-in digits", (8, 8), None)
    return _shape_images(X, flatten, 16 if scale else None), y


# -------------------------------------------------------------------------- discovery


def cache_dir(name: str | None = None) -> Path:
    """numnet's per-user cache: ``$XDG_CACHE_HOME/numnet`` (default ``~/.cache/numnet``).

    Parameters
    ----------
    name : str, optional
        A dataset name, for its subdirectory.

    Returns
    -------
    pathlib.Path
        The directory (not created).
    """
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    root = base / "numnet"
    return root / name if name else root


def _search_dirs(name: str, path: PathLike | None) -> list[tuple[Path, str]]:
    """Directories to look in, in order, each with a label saying where it comes from."""
    dirs = []
    if path is not None:
        dirs.append((Path(path), "path argument"))
    env = os.environ.get("NUMNET_DATA")
    if env:
        dirs += [(Path(env) / name, f"$NUMNET_DATA/{name}"), (Path(env), _ENV_ROOT)]
    dirs.append((cache_dir(name), "cache"))
    return dirs


def _find(name: str, directory: Path, origin: str) -> list[Path] | None:
    """The dataset's four files in ``directory``, if they are there and are ``name``'s."""
    found = _complete(directory)
    if found and origin == _ENV_ROOT and not _is_dataset(name, found[3]):
        return None
    return found


def _is_dataset(name: str, test_labels: Path) -> bool:
    """Tell MNIST from Fashion-MNIST, whose files have the same names.

    Only needed for files directly in ``$NUMNET_DATA``, which could be either: the
    Fashion-MNIST test set has exactly 1,000 images of each class, MNIST's does not.
    """
    try:
        labels = read_idx(test_labels)
    except DataError:
        return True  # let the loader report the broken file
    if labels.dtype != np.uint8 or labels.ndim != 1:
        return True  # not labels of either dataset: the loader names the problem
    counts = np.bincount(labels, minlength=_CLASSES)
    balanced = bool(counts.size == _CLASSES and (counts == counts[0]).all())
    return balanced == (name == "fashion-mnist")


def _present(directory: Path, file: str) -> Path | None:
    """The file, gzipped or not, if it is in ``directory``."""
    for candidate in (directory / file, directory / file.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _complete(directory: Path) -> list[Path] | None:
    """The four files in ``directory`` (train images, labels, test images, labels)."""
    found = [_present(directory, f) for pair in _FILES for f in pair]
    return None if None in found else found  # type: ignore[return-value]


@dataclass(frozen=True)
class DatasetInfo:
    """Where a dataset is.

    Attributes
    ----------
    name : str
        ``"digits"``, ``"mnist"`` or ``"fashion-mnist"``.
    status : str
        ``"built-in"`` (shipped with numnet), ``"cached"`` (in the per-user cache),
        ``"local"`` (found under ``$NUMNET_DATA``) or ``"missing"`` (to be downloaded
        on first use).
    location : pathlib.Path
        The directory holding the files, or where a download would put them.
    description : str
    """

    name: str
    status: str
    location: Path
    description: str

    @property
    def available(self) -> bool:
        """True when no download is needed."""
        return self.status != "missing"

    def __str__(self) -> str:
        where = str(self.location)
        if not self.available:
            where = f"(not downloaded yet; it will go to {where})"
        return f"{self.name:<14} {self.status:<9} {where}\n{'':<25}{self.description}"


def list_datasets() -> list[str]:
    """Names accepted by :func:`dataset_info`: ``["digits", "mnist", "fashion-mnist"]``."""
    return ["digits", "mnist", "fashion-mnist"]


def dataset_info() -> list[DatasetInfo]:
    """Whether each dataset is built in, cached, found locally or missing, and where.

    Returns
    -------
    list of DatasetInfo
        One entry per name of :func:`list_datasets`, in that order. Looks only at the
        file system; never downloads.
    """
    digits = resources.files("numnet.data").joinpath("_files")
    infos = [DatasetInfo("digits", "built-in", Path(str(digits)), _DESCRIPTIONS["digits"])]
    for name in ("mnist", "fashion-mnist"):
        status, location = "missing", cache_dir(name)
        for directory, origin in _search_dirs(name, None):
            if _find(name, directory, origin):
                status = "cached" if origin == "cache" else "local"
                location = directory
                break
        infos.append(DatasetInfo(name, status, location, _DESCRIPTIONS[name]))
    return infos


# --------------------------------------------------------------------------- download


def _load_idx_dataset(
    name: str,
    path: PathLike | None,
    flatten: bool,
    scale: bool,
    download: bool,
    mirrors: Sequence[str] | None,
) -> tuple[Split, Split]:
    files = _locate_or_download(name, path, download, mirrors)
    n_train, n_test = SAMPLE_COUNTS[name]
    train = _check_pair([read_idx(f) for f in files[:2]], files[:2], name, (28, 28), n_train)
    test = _check_pair([read_idx(f) for f in files[2:]], files[2:], name, (28, 28), n_test)
    divisor = 255 if scale else None
    return (
        (_shape_images(train[0], flatten, divisor), train[1]),
        (_shape_images(test[0], flatten, divisor), test[1]),
    )


def _locate_or_download(
    name: str, path: PathLike | None, download: bool, mirrors: Sequence[str] | None
) -> list[Path]:
    dirs = _search_dirs(name, path)
    for directory, origin in dirs:
        found = _find(name, directory, origin)
        if found:
            return found
    if not download:
        raise FileNotFoundError(
            f"{name}: the dataset files are not present and download=False.\n"
            + _manual_instructions(name, dirs)
        )
    dest = Path(path) if path is not None else cache_dir(name)
    dest.mkdir(parents=True, exist_ok=True)
    if mirrors is None:
        mirrors = MNIST_MIRRORS if name == "mnist" else FASHION_MNIST_MIRRORS
    for pair in _FILES:
        for file in pair:
            if _present(dest, file) is None:
                _download(name, file, dest, list(mirrors), dirs)
    return _complete(dest)  # type: ignore[return-value]


def _download(
    name: str, file: str, dest: Path, mirrors: list[str], dirs: list[tuple[Path, str]]
) -> None:
    """Fetch one file from the first mirror that delivers it intact."""
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + file
        print(f"numnet: downloading {name} {file} from {url}", file=sys.stderr)
        try:
            _fetch(url, dest / file, CHECKSUMS[name][file])
            return
        except (OSError, http.client.HTTPException, DataError) as err:
            failures.append(f"  {url}: {err}")
    raise DownloadError(
        f"{name}: could not download {file} from any mirror:\n"
        + "\n".join(failures or ["  (no mirrors given)"])
        + "\n"
        + _manual_instructions(name, dirs)
    )


def _fetch(url: str, dest: Path, md5: str) -> None:
    """Download ``url`` to ``dest`` through a temporary file, checking length and MD5."""
    request = urllib.request.Request(url, headers={"User-Agent": "numnet"})
    # atomic_write deletes the temporary file on any error: nothing half-written stays.
    with atomic_write(dest) as out, urllib.request.urlopen(request, timeout=_TIMEOUT) as resp:
        declared = resp.headers.get("Content-Length")
        digest = hashlib.md5(usedforsecurity=False)
        received = 0
        while chunk := resp.read(1 << 20):
            out.write(chunk)
            digest.update(chunk)
            received += len(chunk)
        # http.client returns short data without an error when the connection drops.
        if declared is not None and received != int(declared):
            raise data_error(
                f"interrupted transfer: received {received} of {declared} bytes", dest
            )
        if digest.hexdigest() != md5:
            raise data_error(
                f"checksum mismatch: MD5 {digest.hexdigest()}, expected {md5}", dest
            )


def _manual_instructions(name: str, dirs: list[tuple[Path, str]]) -> str:
    files = ", ".join(f for pair in _FILES for f in pair)
    where = "\n".join(f"  {d}  ({origin})" for d, origin in dirs)
    loader = "load_mnist" if name == "mnist" else "load_fashion_mnist"
    return (
        f"To install {name} by hand, download these four files:\n  {files}\n"
        f"(from e.g. {(MNIST_MIRRORS if name == 'mnist' else FASHION_MNIST_MIRRORS)[0]}) "
        f"and put all four in one of these directories:\n{where}\n"
        f"(or set NUMNET_DATA to a directory holding a '{name}' subdirectory with them, "
        f"or pass path= to {loader}())."
    )


# ---------------------------------------------------------------------------- helpers


def _check_pair(
    arrays: Sequence[np.ndarray],
    files: Sequence[object],
    name: str,
    shape: tuple[int, int],
    count: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Check an (images, labels) pair read from ``files``; return it, labels as int64.

    ``files`` are paths (or package resources) whose ``str()`` names them in errors.

    Images must be uint8 ``(count, *shape)`` (any N when ``count`` is None), labels
    uint8 ``(N,)`` with one per image and values 0..9. Errors name the file(s).
    """
    images, labels = arrays
    image_file, label_file = (str(f) for f in files)
    if images.dtype != np.uint8 or images.shape[1:] != shape or images.ndim != 3:
        raise data_error(
            f"{name}: {image_file} holds {images.dtype} of shape {images.shape}; "
            f"expected uint8 of shape (N, {shape[0]}, {shape[1]})",
            image_file,
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise data_error(
            f"{name}: {label_file} holds {labels.dtype} of shape {labels.shape}; "
            "expected uint8 of shape (N,)",
            label_file,
        )
    _check_counts(images.shape[0], labels.shape[0], image_file, label_file, name, count)
    if labels.size and labels.max() >= _CLASSES:
        i = int(np.argmax(labels >= _CLASSES))
        raise data_error(
            f"{name}: {label_file}: label {labels[i]} at index {i} is not in 0..{_CLASSES - 1}",
            label_file,
        )
    return images, labels.astype(np.int64)


def _check_counts(
    n_images: int, n_labels: int, image_file: str, label_file: str, name: str, count: int | None
) -> None:
    """One label per image, and as many images as the dataset has (when ``count`` is set)."""
    if n_labels != n_images:
        raise data_error(
            f"{name}: {label_file} holds {n_labels} labels but {image_file} holds "
            f"{n_images} images; expected uint8 of shape ({n_images},): one label per image",
            label_file,
        )
    if count is not None and n_images != count:
        raise data_error(
            f"{name}: {image_file} and {label_file} hold {n_images} samples; expected "
            f"{count} (the full {name} set: is the copy partial, or of another dataset?)",
            image_file,
        )


def _shape_images(images: np.ndarray, flatten: bool, divisor: int | None) -> np.ndarray:
    if flatten:
        images = images.reshape(images.shape[0], -1)
    if divisor is not None:
        images = np.divide(images, np.float32(divisor), dtype=np.float32)
    return images
