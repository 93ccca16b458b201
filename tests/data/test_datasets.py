"""Datasets: built-in digits, the search path, downloads from a local HTTP server, and
(when present) the real MNIST files.

The download tests run a real HTTP server on 127.0.0.1 (port 0, a thread, shut down
after each test) serving small synthetic IDX files; the checksum table is patched to
their MD5s. Nothing here goes beyond 127.0.0.1.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import socket
import sys
import threading
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import numnet.data.datasets as datasets
from numnet.data import (
    DataError,
    DownloadError,
    cache_dir,
    dataset_info,
    list_datasets,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    write_idx,
)

FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache directory, no $NUMNET_DATA, short network timeouts."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NUMNET_DATA", raising=False)
    monkeypatch.setattr(datasets, "_TIMEOUT", 5.0)
    return tmp_path / "cache"


# --------------------------------------------------------------------- synthetic files


def synthetic(tmp_path: Path, seed: int = 0, n_train: int = 6, n_test: int = 4) -> dict[str, bytes]:
    """The four .gz files of a tiny MNIST-like dataset, as bytes."""
    rng = np.random.default_rng(seed)
    arrays = {
        FILES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        FILES[1]: rng.integers(0, 10, n_train).astype(np.uint8),
        FILES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        FILES[3]: rng.integers(0, 10, n_test).astype(np.uint8),
    }
    out = {}
    for name, array in arrays.items():
        write_idx(tmp_path / name, array)
        out[name] = (tmp_path / name).read_bytes()
        (tmp_path / name).unlink()
    return out


def md5s(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.md5(body).hexdigest() for name, body in files.items()}


def put(directory: Path, files: dict[str, bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (directory / name).write_bytes(body)
    return directory


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """Synthetic files whose MD5s and sizes (6 + 4 samples) are the published ones, as far
    as the loader knows."""
    made = synthetic(tmp_path)
    for name in ("mnist", "fashion-mnist"):
        monkeypatch.setitem(datasets.CHECKSUMS, name, md5s(made))
        monkeypatch.setitem(datasets.SAMPLE_COUNTS, name, (6, 4))
    return made


# ------------------------------------------------------------------------- HTTP server


class Server:
    """Routes: URL path -> (mode, body); mode "ok", or "truncate" (declares the full
    Content-Length, sends half, closes). Anything else is a 404."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[str, bytes]] = {}
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 5  # a stuck client cannot hold a handler thread for long

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                outer.requests.append(self.path)
                mode, body = outer.routes.get(self.path, ("404", b""))
                if mode == "404":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body if mode == "ok" else body[: len(body) // 2])
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def serve(self, prefix: str, files: dict[str, bytes], mode: str = "ok") -> str:
        for name, body in files.items():
            self.routes[f"/{prefix}/{name}"] = (mode, body)
        return f"{self.url}/{prefix}/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def refused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: the connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# ------------------------------------------------------------------------------ digits


def test_load_digits() -> None:
    X, y = load_digits()
    assert X.shape == (1797, 8, 8) and X.dtype == np.uint8
    assert X.min() == 0 and X.max() == 16
    assert y.dtype == np.int64 and y.shape == (1797,)
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_load_digits_flatten_and_scale() -> None:
    X, _ = load_digits(flatten=True)
    assert X.shape == (1797, 64) and X.dtype == np.uint8
    Xs, _ = load_digits(flatten=True, scale=True)
    assert Xs.dtype == np.float32 and Xs.min() == 0.0 and Xs.max() == 1.0
    np.testing.assert_array_equal(Xs * 16, X)


def test_load_digits_needs_neither_network_nor_sklearn(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("load_digits must not touch the network")

    monkeypatch.setattr(datasets.urllib.request, "urlopen", no_network)
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn would now fail
    X, y = load_digits()
    assert X.shape == (1797, 8, 8) and y.shape == (1797,)


# ---------------------------------------------------------------------- local lookup


def test_explicit_path(tmp_path: Path, files: dict[str, bytes]) -> None:
    (X, y), (Xt, yt) = load_mnist(path=put(tmp_path / "here", files), download=False)
    assert X.shape == (6, 28, 28) and X.dtype == np.uint8
    assert y.dtype == np.int64 and Xt.shape == (4, 28, 28) and yt.shape == (4,)


def test_flatten_and_scale(tmp_path: Path, files: dict[str, bytes]) -> None:
    where = put(tmp_path / "here", files)
    (X, _), _ = load_mnist(path=where)
    (Xf, _), (Xtf, _) = load_mnist(path=where, flatten=True, scale=True)
    assert Xf.shape == (6, 784) and Xtf.shape == (4, 784) and Xf.dtype == np.float32
    assert 0.0 <= Xf.min() and Xf.max() <= 1.0
    np.testing.assert_allclose(Xf * 255, X.reshape(6, -1), rtol=1e-6)


def test_uncompressed_files_are_found(tmp_path: Path, files: dict[str, bytes]) -> None:
    raw = {name.removesuffix(".gz"): gzip.decompress(body) for name, body in files.items()}
    (X, _), _ = load_mnist(path=put(tmp_path / "raw", raw), download=False)
    assert X.shape == (6, 28, 28)


@pytest.mark.parametrize("where", ["subdir", "root"])
def test_numnet_data_variable(tmp_path: Path, files: dict[str, bytes],
                              monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    root = tmp_path / "shared"
    put(root / "mnist" if where == "subdir" else root, files)
    monkeypatch.setenv("NUMNET_DATA", str(root))
    (X, _), _ = load_mnist(download=False)
    assert X.shape == (6, 28, 28)


def test_numnet_data_root_is_not_mistaken_for_the_other_dataset(
    tmp_path: Path, files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = put(tmp_path / "shared", files)  # MNIST-like: unbalanced test labels
    monkeypatch.setenv("NUMNET_DATA", str(root))
    load_mnist(download=False)
    with pytest.raises(FileNotFoundError):
        load_fashion_mnist(download=False)
    write_idx(root / FILES[3], np.arange(20, dtype=np.uint8) % 10)  # balanced: Fashion
    write_idx(root / FILES[2], np.zeros((20, 28, 28), np.uint8))
    monkeypatch.setitem(datasets.SAMPLE_COUNTS, "fashion-mnist", (6, 20))
    load_fashion_mnist(download=False)
    with pytest.raises(FileNotFoundError):
        load_mnist(download=False)


@pytest.mark.parametrize(
    "labels",
    [np.array([-1, 2, 3, 4], np.int8), np.array([1e18, 0, 1, 2]), np.array([np.nan, 0, 1, 2]),
     np.zeros((2, 2), np.uint8)],
    ids=["negative", "huge", "nan", "2-d"],
)
def test_broken_test_labels_in_numnet_data_root_are_named(
    tmp_path: Path, files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch,
    labels: np.ndarray,
) -> None:
    """Telling MNIST from Fashion-MNIST by their test labels must not choke on labels
    that are neither's (a negative bincount, a 10**18-bin one): the loader names the file."""
    root = put(tmp_path / "shared", files)
    write_idx(root / FILES[3], labels)
    monkeypatch.setenv("NUMNET_DATA", str(root))
    assert [info.status for info in dataset_info()][1:] == ["local", "local"]
    with pytest.raises(DataError, match=FILES[3]):
        load_mnist(download=False)


def test_search_order(tmp_path: Path, files: dict[str, bytes], isolated: Path,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    other = synthetic(tmp_path, seed=1)  # distinguishable: other pixels
    mine = load_mnist(path=put(tmp_path / "mine", files))[0][0]
    put(isolated / "numnet" / "mnist", other)
    (X, _), _ = load_mnist(download=False)
    assert not np.array_equal(X, mine)  # the cache
    monkeypatch.setenv("NUMNET_DATA", str(put(tmp_path / "env", files)))
    (X, _), _ = load_mnist(download=False)
    assert np.array_equal(X, mine)  # $NUMNET_DATA before the cache
    (X, _), _ = load_mnist(path=put(tmp_path / "explicit", other), download=False)
    assert not np.array_equal(X, mine)  # the path argument first
    (X, _), _ = load_mnist(path=tmp_path / "empty", download=False)
    assert np.array_equal(X, mine)  # falls through an explicit path without the files


def test_present_files_are_not_md5_checked(tmp_path: Path, files: dict[str, bytes],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(datasets.CHECKSUMS, "mnist", dict.fromkeys(FILES, "0" * 32))
    (X, _), _ = load_mnist(path=put(tmp_path / "here", files), download=False)
    assert X.shape == (6, 28, 28)


def test_missing_without_download_says_where(isolated: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(download=False)
    message = str(info.value)
    assert "download=False" in message
    for name in FILES:
        assert name in message
    assert str(isolated / "numnet" / "mnist") in message and "NUMNET_DATA" in message


def dataset_error(where: Path, names_file: int, **kwargs: object) -> str:
    """The DataError of load_mnist(path=where), checked to name FILES[names_file]."""
    with pytest.raises(DataError) as info:
        load_mnist(path=where, download=False, **kwargs)
    assert str(where / FILES[names_file]) in str(info.value)
    assert info.value.path == str(where / FILES[names_file])
    return str(info.value)


def test_structural_check_of_present_files(tmp_path: Path, files: dict[str, bytes]) -> None:
    where = put(tmp_path / "here", files)
    write_idx(where / FILES[0], np.zeros((6, 27, 27), np.uint8))
    assert "expected uint8 of shape (N, 28, 28)" in dataset_error(where, 0)
    write_idx(where / FILES[0], np.zeros((6, 28, 28), np.uint8))
    write_idx(where / FILES[1], np.zeros((6, 1), np.uint8))
    assert "expected uint8 of shape (N,)" in dataset_error(where, 1)
    write_idx(where / FILES[1], np.zeros(5, np.uint8))
    message = dataset_error(where, 1)
    assert "holds 5 labels" in message and "6 images" in message
    assert str(where / FILES[0]) in message and "expected uint8 of shape (6,)" in message
    write_idx(where / FILES[1], np.full(6, 10, np.uint8))
    assert "label 10 at index 0 is not in 0..9" in dataset_error(where, 1)


@pytest.fixture(scope="module")
def partial_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A full training set but only 100 test samples."""
    where = tmp_path_factory.mktemp("partial")
    rng = np.random.default_rng(0)
    write_idx(where / FILES[0], np.zeros((60000, 28, 28), np.uint8))
    write_idx(where / FILES[1], rng.integers(0, 10, 60000).astype(np.uint8))
    write_idx(where / FILES[2], np.zeros((100, 28, 28), np.uint8))
    write_idx(where / FILES[3], rng.integers(0, 10, 100).astype(np.uint8))
    return where


@pytest.mark.parametrize("loader", [load_mnist, load_fashion_mnist])
def test_partial_copy_is_an_error(partial_copy: Path, loader) -> None:
    """Real counts (no SAMPLE_COUNTS patch): 100 test images are not MNIST's 10,000."""
    where = partial_copy
    with pytest.raises(DataError) as info:
        loader(path=where, download=False)
    message = str(info.value)
    assert str(where / FILES[2]) in message and str(where / FILES[3]) in message
    assert "hold 100 samples; expected 10000" in message
    assert info.value.path == str(where / FILES[2])


def test_sample_counts_are_the_published_ones() -> None:
    assert datasets.SAMPLE_COUNTS == {"mnist": (60000, 10000), "fashion-mnist": (60000, 10000)}


def test_downloaded_files_with_wrong_counts(server: Server, files: dict[str, bytes],
                                            monkeypatch: pytest.MonkeyPatch,
                                            isolated: Path) -> None:
    monkeypatch.setitem(datasets.SAMPLE_COUNTS, "mnist", (7, 4))
    with pytest.raises(DataError, match="hold 6 samples; expected 7"):
        load_mnist(mirrors=[server.serve("m", files)])


# --------------------------------------------------------------------------- downloads


def test_download_with_mirror_failover(server: Server, files: dict[str, bytes],
                                       refused_url: str, isolated: Path) -> None:
    good = server.serve("good", files)
    mirrors = [refused_url, f"{server.url}/missing/", good]  # refused, then 404, then ok
    (X, y), (Xt, yt) = load_mnist(mirrors=mirrors)
    assert X.shape == (6, 28, 28) and Xt.shape == (4, 28, 28)
    assert leftovers(isolated / "numnet" / "mnist") == sorted(FILES)  # and no temp file
    assert server.requests.count("/missing/train-images-idx3-ubyte.gz") == 1
    # Second call: found in the cache, no new request.
    before = len(server.requests)
    load_mnist(mirrors=mirrors)
    assert len(server.requests) == before


def test_download_into_explicit_path_and_only_missing_files(
    tmp_path: Path, server: Server, files: dict[str, bytes]
) -> None:
    target = put(tmp_path / "mine", {FILES[0]: files[FILES[0]]})
    load_mnist(path=target, mirrors=[server.serve("m", files)])
    assert leftovers(target) == sorted(FILES)
    assert f"/m/{FILES[0]}" not in server.requests  # already there: not fetched


def test_bad_checksum_leaves_nothing(server: Server, files: dict[str, bytes],
                                     tmp_path: Path, isolated: Path) -> None:
    wrong = synthetic(tmp_path, seed=9)  # valid IDX files, but not the expected bytes
    with pytest.raises(DownloadError) as info:
        load_mnist(mirrors=[server.serve("bad", wrong)])
    assert "checksum mismatch" in str(info.value)
    assert files[FILES[0]] != wrong[FILES[0]]
    assert leftovers(isolated / "numnet" / "mnist") == []


def test_truncated_transfer_leaves_nothing(server: Server, files: dict[str, bytes],
                                           isolated: Path) -> None:
    with pytest.raises(DownloadError) as info:
        load_mnist(mirrors=[server.serve("cut", files, mode="truncate")])
    size = len(files[FILES[0]])
    assert f"interrupted transfer: received {size // 2} of {size} bytes" in str(info.value)
    assert leftovers(isolated / "numnet" / "mnist") == []


def test_bad_mirror_then_good_one(server: Server, files: dict[str, bytes], tmp_path: Path,
                                  isolated: Path) -> None:
    bad = server.serve("bad", synthetic(tmp_path, seed=9))
    load_mnist(mirrors=[bad, server.serve("good", files)])
    assert leftovers(isolated / "numnet" / "mnist") == sorted(FILES)


def test_no_network_message_says_where_to_put_files(refused_url: str, isolated: Path) -> None:
    with pytest.raises(DownloadError) as info:
        load_mnist(mirrors=[refused_url])
    message = str(info.value)
    assert "could not download train-images-idx3-ubyte.gz from any mirror" in message
    assert refused_url in message
    for name in FILES:
        assert name in message
    assert str(isolated / "numnet" / "mnist") in message
    assert "NUMNET_DATA" in message and "path=" in message
    assert isinstance(info.value, OSError)


def test_no_network_with_default_mirrors(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(datasets.urllib.request, "urlopen", offline)
    with pytest.raises(DownloadError) as info:
        load_fashion_mnist()
    message = str(info.value)
    for mirror in datasets.FASHION_MNIST_MIRRORS:
        assert mirror in message
    assert "fashion-mnist" in message and "load_fashion_mnist" in message


def test_fashion_mnist_download(server: Server, files: dict[str, bytes], isolated: Path) -> None:
    (X, _), _ = load_fashion_mnist(mirrors=[server.serve("fashion", files)])
    assert X.shape == (6, 28, 28)
    assert leftovers(isolated / "numnet" / "fashion-mnist") == sorted(FILES)
    assert leftovers(isolated / "numnet") == ["fashion-mnist"]


# ----------------------------------------------------------------------------- listing


def test_cache_dir_honours_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir("mnist") == tmp_path / "numnet" / "mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # ignored, as the spec says
    assert cache_dir() == Path.home() / ".cache" / "numnet"


def test_dataset_info(tmp_path: Path, files: dict[str, bytes], isolated: Path,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert list_datasets() == ["digits", "mnist", "fashion-mnist"]
    info = {entry.name: entry for entry in dataset_info()}
    assert list(info) == list_datasets()
    assert info["digits"].status == "built-in" and info["digits"].available
    assert (info["digits"].location / "digits-images-idx3-ubyte.gz").is_file()
    assert info["mnist"].status == "missing" and not info["mnist"].available
    assert info["mnist"].location == isolated / "numnet" / "mnist"
    put(isolated / "numnet" / "mnist", files)
    monkeypatch.setenv("NUMNET_DATA", str(tmp_path / "env"))
    put(tmp_path / "env" / "fashion-mnist", files)
    info = {entry.name: entry for entry in dataset_info()}
    assert info["mnist"].status == "cached"
    assert info["fashion-mnist"].status == "local"
    assert info["fashion-mnist"].location == tmp_path / "env" / "fashion-mnist"
    assert "fashion-mnist" in str(info["fashion-mnist"])


# --------------------------------------------------------------------------- real MNIST


@pytest.fixture(scope="module")
def real_mnist(mnist_dir: Path):
    return load_mnist(path=mnist_dir, download=False)


def test_real_mnist(real_mnist) -> None:
    (X, y), (Xt, yt) = real_mnist
    assert X.shape == (60000, 28, 28) and Xt.shape == (10000, 28, 28)
    assert X.dtype == np.uint8 and Xt.dtype == np.uint8
    assert y.dtype == np.int64 and yt.dtype == np.int64
    assert np.bincount(y).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(yt).tolist() == MNIST_TEST_COUNTS
    assert X.max() == 255 and X.min() == 0
