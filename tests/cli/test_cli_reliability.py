"""Issue 13 on the command line: no command destroys a file it reads, exploding training
exits 1 and keeps the old model, sizes nobody can allocate, hostile model files and
images, and messages that blame the right thing. Every error is one line, exit 2
(exit 1 for divergence), no traceback.

Most cases run ``numnet.cli.main`` in this process (fast); those that need a real
standard output or a FIFO run ``python -m numnet``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import ARCH, assert_error, digits_raw, ok, run

import numnet
from numnet import io
from numnet.cli import main
from numnet.cli import predict as predict_command

POSIX = pytest.mark.skipif(sys.platform == "win32", reason="devices and FIFOs are POSIX")

# Devices are reached through symbolic links in tmp_path: were a command ever to replace its
# output again, it would replace the link, not /dev/null (the suite may run as root).


class Result:
    """What ``main`` did: ``returncode``, ``stdout``, ``stderr`` (as subprocess gives)."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """``cli(*args)``: run ``numnet ARGS`` in this process, in ``tmp_path``."""
    monkeypatch.chdir(tmp_path)

    def call(*args: str | os.PathLike) -> Result:
        capsys.readouterr()
        try:
            status = main([str(a) for a in args])
        except SystemExit as exc:  # argparse's errors
            status = int(exc.code or 0)
        out, err = capsys.readouterr()
        return Result(status, out, err)
    return call


@pytest.fixture
def work(trained: dict, tmp_path: Path) -> dict:
    """A copy of the trained digits model, a CSV of inputs and of labelled data, an
    architecture, in ``tmp_path``."""
    model = tmp_path / "m.npz"
    shutil.copy(trained["model"], model)
    X, y = digits_raw(40)
    inputs = tmp_path / "in.csv"
    np.savetxt(inputs, X[:5], delimiter=",", fmt="%d")
    data = tmp_path / "D.csv"
    np.savetxt(data, np.c_[y, X], delimiter=",", fmt="%d")
    arch = tmp_path / "A.json"
    shutil.copy(ARCH, arch)
    return {"model": model, "inputs": inputs, "data": data, "arch": arch}


def snapshot(*paths: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in paths}


# -- class 1: no output destroys an input ---------------------------------------------------
@pytest.mark.parametrize(("args", "patterns"), [
    (["predict", "m.npz", "in.csv", "--out", "m.npz"],
     ["--out m.npz is the same file as MODEL m.npz"]),
    (["predict", "m.npz", "in.csv", "--out", "in.csv"],
     ["--out in.csv is the same file as INPUT in.csv"]),
    (["predict", "m.npz", "in.csv", "--out", "./in.csv"],
     ["--out ./in.csv is the same file as INPUT in.csv"]),
    (["train", "--data", "D.csv", "--out", "D.csv"],
     ["--out D.csv is the same file as --data D.csv"]),
    (["train", "--data", "D.csv", "--plot", "D.csv"],
     ["--plot D.csv is the same file as --data D.csv"]),
    (["train", "--model", "A.json", "--out", "A.json"],
     ["--out A.json is the same file as --model A.json"]),
    (["train", "--out", "m.png", "--plot", "m.png"],
     ["--out m.png and --plot m.png are the same file"]),
    (["train", "--out", "numnet-history.png"],  # the default plot goes next to --out
     ["--out numnet-history.png and --plot numnet-history.png are the same file"]),
    (["evaluate", "m.npz", "--plot", "m.npz"], ["--plot m.npz is the same file as MODEL"]),
    (["evaluate", "m.npz", "--data", "D.csv", "--plot", "./D.csv"],
     ["--plot ./D.csv is the same file as --data D.csv"]),
    (["export", "m.npz", "m.npz"], ["OUT m.npz is the same file as MODEL m.npz"]),
    (["export", "m.npz", "./m.npz"], ["OUT ./m.npz is the same file as MODEL m.npz"]),
])
def test_an_output_that_is_an_input_is_refused_before_any_work(cli, work: dict, args, patterns
                                                                ) -> None:
    before = snapshot(work["model"], work["inputs"], work["data"], work["arch"])
    result = cli(*args)
    assert_error(result, *patterns, "choose another" if "and --plot" not in patterns[0]
                 else "different names")
    assert result.stdout == ""  # refused before any work
    assert snapshot(*before) == before
    assert not any(p.name.endswith(".tmp") for p in work["model"].parent.iterdir())


def test_the_files_of_data_dir_are_inputs(cli, tmp_path: Path) -> None:
    (tmp_path / "mnist").mkdir()
    images = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    images.write_bytes(b"not read: refused before")
    assert_error(cli("train", "--data", "mnist", "--data-dir", "mnist", "--out", images),
                 "is the same file as --data-dir mnist")
    assert images.read_bytes() == b"not read: refused before"


def test_the_files_of_a_built_in_dataset_are_inputs(cli, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --data-dir, the files numnet would read: its cache, the shipped digits."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NUMNET_DATA", raising=False)
    cache = tmp_path / "cache" / "numnet" / "mnist"
    cache.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (cache / name).write_bytes(b"not read: refused before")
    labels = cache / "t10k-labels-idx1-ubyte.gz"
    assert_error(cli("train", "--data", "mnist", "--out", labels),
                 "is the same file as --data mnist (cached)")
    assert labels.read_bytes() == b"not read: refused before"
    shipped = next(i for i in numnet.data.dataset_info() if i.name == "digits").location
    images = shipped / "digits-images-idx3-ubyte.gz"
    before = images.read_bytes()
    assert_error(cli("train", "--out", images, "--plot", "off"),
                 "is the same file as --data digits (built-in)")
    assert images.read_bytes() == before


def test_links_are_seen_through(cli, work: dict, tmp_path: Path) -> None:
    os.link(work["inputs"], tmp_path / "hard.csv")
    (tmp_path / "soft.npz").symlink_to(work["model"])
    before = snapshot(work["model"], work["inputs"])
    assert_error(cli("predict", "m.npz", "in.csv", "--out", "hard.csv"),
                 "--out hard.csv is the same file as INPUT in.csv (a hard link to it)")
    assert_error(cli("predict", "m.npz", "in.csv", "--out", "soft.npz"),
                 "--out soft.npz is the same file as MODEL m.npz (through a symbolic link)")
    assert_error(cli("predict", "m.npz", "in.csv", "--out", tmp_path / "in.csv"),
                 "is the same file as INPUT in.csv")
    assert snapshot(*before) == before


def test_the_recorded_dataset_is_protected_too(cli, csv_data: dict, tmp_path: Path) -> None:
    """evaluate without --data reads the CSV the model was trained on."""
    data = csv_data["path"]
    before = data.read_bytes()
    (tmp_path / "plot.png").symlink_to(data)
    assert_error(cli("evaluate", csv_data["model"], "--plot", "plot.png"),
                 f"--plot plot.png is the same file as the dataset recorded in the model "
                 f"{data} (through a symbolic link)")
    assert data.read_bytes() == before


def test_a_recorded_built_in_dataset_is_protected_too(cli, work: dict) -> None:
    """The model was trained on the shipped digits: evaluate reads them again."""
    shipped = next(i for i in numnet.data.dataset_info() if i.name == "digits").location
    images = shipped / "digits-images-idx3-ubyte.gz"
    before = images.read_bytes()
    assert_error(cli("evaluate", "m.npz", "--plot", images),
                 "is the same file as the dataset recorded in the model")
    assert images.read_bytes() == before


@POSIX
def test_dev_null_is_written_into_never_replaced(cli, work: dict, tmp_path: Path) -> None:
    names = ("null.csv", "null.npz", "null.png", "null.onnx")
    for name in names:
        (tmp_path / name).symlink_to(os.devnull)
    before = os.stat(os.devnull)
    assert cli("predict", "m.npz", "in.csv", "--out", "null.csv").returncode == 0
    result = cli("train", "--epochs", "1", "--out", "null.npz", "--plot", "null.png", "-q")
    assert result.returncode == 0, result.stderr
    result = cli("export", "m.npz", "null.onnx")
    assert result.returncode == 0, result.stderr
    after = os.stat(os.devnull)
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino
    assert all((tmp_path / name).is_symlink() for name in names)
    assert not (tmp_path / "numnet-history.png").exists()


def test_predict_to_standard_output(work: dict, tmp_path: Path) -> None:
    (tmp_path / "stdout.csv").symlink_to("/dev/stdout")
    for target in ("stdout.csv", "-"):
        result = run("predict", "m.npz", "in.csv", "--out", target, cwd=tmp_path)
        assert ok(result).splitlines()[0] == "index,label", target
        assert f"wrote 5 predictions to {target}" in result.stderr


def test_export_to_standard_output(work: dict, tmp_path: Path) -> None:
    """``numnet export MODEL -``: the graph on standard output, the message on stderr."""
    onnx = pytest.importorskip("onnx", reason="numnet export needs the optional onnx package")
    with open(tmp_path / "graph.onnx", "wb") as out:
        result = run("export", "m.npz", "-", cwd=tmp_path, stdout=out)
    assert result.returncode == 0, result.stderr
    assert "exported m.npz to -" in result.stderr
    onnx.checker.check_model(onnx.load(tmp_path / "graph.onnx"))


def test_train_to_standard_output_sends_messages_to_stderr(tmp_path: Path) -> None:
    with open(tmp_path / "model.npz", "wb") as out:
        result = run("train", "--epochs", "1", "--out", "-", "--plot", "off", cwd=tmp_path,
                     stdout=out)
    assert result.returncode == 0, result.stderr
    assert "test accuracy" in result.stderr and "saved model to standard output" in result.stderr
    assert isinstance(io.load(tmp_path / "model.npz"), numnet.Sequential)


@POSIX
def test_a_fifo_is_streamed_into(work: dict, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    ok(run("predict", "m.npz", "in.csv", "--out", fifo, cwd=tmp_path))
    reader.join(timeout=30)
    assert received[0].startswith("index,label\n") and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_directory_output_says_so(cli, work: dict, tmp_path: Path) -> None:
    (tmp_path / "outdir").mkdir()
    for args in (["predict", "m.npz", "in.csv", "--out", "outdir"],
                 ["train", "--out", "outdir"], ["evaluate", "m.npz", "--plot", "outdir"],
                 ["export", "m.npz", "outdir"]):
        err = assert_error(cli(*args), "outdir is a directory; give a file name")
        assert ".tmp" not in err
    assert not any((tmp_path / "outdir").iterdir())


# -- class 2: exploding training --------------------------------------------------------------
@pytest.mark.parametrize("options", [["--optimizer", "adam", "--lr", "1e12"],
                                     ["--optimizer", "sgd", "--lr", "1e3"]])
def test_exploding_training_exits_1_and_keeps_the_old_model(cli, work: dict,
                                                             options: list[str]) -> None:
    before = snapshot(work["model"])
    result = cli("train", "--epochs", "3", "--out", "m.npz", "--plot", "off", "-q", *options)
    assert_error(result, "training diverged in epoch 1/3, batch ",
                 "the loss exploded without becoming NaN", "lower the learning rate", status=1)
    assert "test accuracy" not in result.stdout and "saved model" not in result.stdout
    assert snapshot(*before) == before


# -- class 3: sizes nobody can allocate ---------------------------------------------------
def test_sizes_nobody_can_allocate(cli, work: dict, tmp_path: Path) -> None:
    assert_error(cli("train", "--model", "mlp:100000000000"),
                 "Dense(in_features=64, out_features=100000000000", "parameter W",
                 "25.6 TB", "memory available")
    config = json.loads(ARCH.read_text())
    config["layers"][0]["config"]["out_features"] = 10**9
    (tmp_path / "big.json").write_text(json.dumps(config))
    for command in ("train", "summary", "gradcheck"):
        args = ["--model", "big.json"] if command == "train" else ["big.json"]
        assert_error(cli(command, *args), "big.json", "layer 0", "256 GB")
    assert_error(cli("gradcheck", ARCH, "--batch-size", "1000000000000"),
                 "--batch-size 1000000000000", "PB", "memory available")


def _with_array(path: Path, name: str, header_shape: tuple[int, ...]) -> None:
    """Replace array ``name`` of a model file by a .npy header declaring ``header_shape``
    (and no data), as a hostile file would."""
    import zipfile  # noqa: PLC0415  (a test helper)

    from numpy.lib import format as npformat  # noqa: PLC0415

    entries = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            entries[info.filename] = archive.read(info)
    with zipfile.ZipFile(path, "w") as archive:
        for filename, data in entries.items():
            if filename == name + ".npy":
                with archive.open(filename, "w") as member:
                    npformat.write_array_header_1_0(
                        member, {"descr": "<f4", "fortran_order": False, "shape": header_shape})
                    member.write(b"\0" * 16)
            else:
                archive.writestr(filename, data)


def test_a_model_file_declaring_a_huge_array(cli, work: dict) -> None:
    _with_array(work["model"], "model/0.W", (10**6, 10**6))
    for args in (["predict", "m.npz", "in.csv"], ["evaluate", "m.npz"], ["summary", "m.npz"]):
        assert_error(cli(*args), "m.npz", "array model/0.W", "4 TB", "16 bytes")


# -- class 4: valid structure, invalid content ----------------------------------------------
def _edit_metadata(path: Path, **fields: object) -> None:
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(arrays["__numnet__"].tobytes())
    header["metadata"].update(fields)
    arrays["__numnet__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize(("fields", "pattern"), [
    ({"classes": 5}, "metadata field classes is an integer (5)"),
    ({"classes": [0, 1, 2]}, "metadata field classes lists 3 classes, but the model has 10"),
    ({"preprocessing": [1, 2]}, "metadata field preprocessing is a list"),
    ({"preprocessing": {"type": "scale"}}, "metadata field preprocessing does not describe"),
    ({"source": "digits"}, "metadata field source is a string ('digits')"),
    ({"test": {"loss": 0.1}}, "metadata field test.accuracy is null"),
])
def test_invalid_metadata_is_one_line_naming_the_field(cli, work: dict, fields: dict,
                                                       pattern: str) -> None:
    _edit_metadata(work["model"], **fields)
    for args in (["predict", "m.npz", "in.csv"], ["evaluate", "m.npz"], ["summary", "m.npz"],
                 ["trace", "m.npz"]):
        err = assert_error(cli(*args), "model file m.npz", pattern)
        assert "unexpected" not in err


def test_nan_weights_are_refused_naming_the_array(cli, work: dict) -> None:
    with np.load(work["model"], allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["model/2.W"] = arrays["model/2.W"].copy()
    arrays["model/2.W"][5, 7] = np.nan
    with open(work["model"], "wb") as f:
        np.savez(f, **arrays)
    for args in (["predict", "m.npz", "in.csv", "--proba"], ["evaluate", "m.npz"]):
        result = cli(*args)
        assert_error(result, "array model/2.W (parameter W of layer 2, numnet.Dense)",
                     "NaN or infinite")
        assert "nan" not in result.stdout


def test_deeply_nested_json(cli, work: dict, tmp_path: Path) -> None:
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    assert_error(cli("summary", "deep.json"), "deep.json", "nests JSON too deeply")
    assert_error(cli("train", "--model", "deep.json"), "deep.json", "nests JSON")


def _png_header(path: Path, width: int, height: int) -> None:
    """A PNG whose header declares ``width`` x ``height`` grey pixels (and holds few)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data).to_bytes(4, "big")
        return len(data).to_bytes(4, "big") + kind + data + crc

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    idat = zlib.compress(b"\0" * 1000)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [30000, 12000])  # Pillow's error, and its warning
def test_an_image_declaring_a_huge_size(cli, work: dict, tmp_path: Path, side: int) -> None:
    _png_header(tmp_path / "bomb.png", side, side)
    assert_error(cli("predict", "m.npz", "bomb.png"), "bomb.png",
                 "refused before decoding", "decompression bomb")


def test_image_sizes_are_checked_before_decoding(work: dict, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Pillow, matplotlib reads PNGs: their header is checked first."""
    _png_header(tmp_path / "big.png", 3000, 2000)
    size = predict_command.Size([8, 8], 64)
    monkeypatch.setattr(predict_command.importlib.util, "find_spec", lambda name: None)

    def never(path):
        raise AssertionError("the image was decoded")

    import matplotlib.image  # noqa: PLC0415  (optional, installed with the test extras)
    monkeypatch.setattr(matplotlib.image, "imread", never)
    with pytest.raises(numnet.cli.CLIError, match="big.png is 3000x2000 pixels, but the "
                                                  "model was trained on 8x8 images"):
        predict_command._read_gray(tmp_path / "big.png", size)


# -- class 5: messages that blame the right thing -----------------------------------------
def test_messages_blame_the_right_thing(cli, work: dict, tmp_path: Path) -> None:
    assert_error(cli("train", "--seed", "-1"), "argument --seed", "integer >= 0")
    for command in ("gradcheck", "trace"):
        assert_error(cli(command, ARCH, "--seed", "-1"), "argument --seed")
    (tmp_path / "datadir").mkdir()
    assert_error(cli("train", "--data", "datadir"), "--data datadir is a directory",
                 "--data mnist --data-dir datadir")
    assert_error(cli("evaluate", "m.npz", "--data", "datadir"), "is a directory")


def test_another_delimiter_is_named_and_can_be_given(cli, work: dict, tmp_path: Path) -> None:
    """A semicolon-separated CSV: the error names the delimiter and the option to give it;
    with ``--delimiter ';'`` it trains, evaluate reads the model's own CSV the same way
    again, and predict takes the option too."""
    semi = tmp_path / "semi.csv"
    semi.write_text(work["data"].read_text().replace(",", ";"))
    assert_error(cli("train", "--data", "semi.csv", "--epochs", "1"), "semi.csv: one column "
                 "found with delimiter ','; is the delimiter ';'?", "--delimiter ';'")
    result = cli("train", "--data", "semi.csv", "--delimiter", ";", "--epochs", "1", "-q",
                 "--out", "semi.npz", "--plot", "off")
    assert result.returncode == 0, result.stderr
    assert io.load_metadata(tmp_path / "semi.npz")["source"]["delimiter"] == ";"
    assert "(test split, 8 samples" in ok(cli("evaluate", "semi.npz"))
    tabs = tmp_path / "in.tsv"
    tabs.write_text(work["inputs"].read_text().replace(",", "\t"))
    assert ok(cli("predict", "semi.npz", "in.tsv", "--delimiter", "tab")).startswith(
        "index,label\n")
    assert_error(cli("predict", "semi.npz", "in.tsv", "--delimiter", ";;"),
                 "argument --delimiter: expected one character (or tab), got ';;'")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_device(cli, work: dict, tmp_path: Path) -> None:
    (tmp_path / "full.csv").symlink_to("/dev/full")
    assert_error(cli("predict", "m.npz", "in.csv", "--out", "full.csv"),
                 "full.csv: cannot write: No space left on device (the disk is full)")


def test_disk_full_names_the_file(cli, work: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    before = snapshot(work["model"])
    err = assert_error(cli("train", "--epochs", "1", "--out", "m.npz", "--plot", "off", "-q"),
                       "m.npz: cannot write: No space left on device (the disk is full); the "
                       "previous file is unchanged")
    assert ".tmp" not in err and "Errno" not in err
    assert snapshot(*before) == before


def test_a_memory_error_that_slips_through_is_one_line(cli, work: dict,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def exhausted(*args, **kwargs):
        raise MemoryError("Unable to allocate 3.64 TiB for an array with shape (10**12,)")

    monkeypatch.setattr(numnet.Sequential, "predict", exhausted)
    err = assert_error(cli("predict", "m.npz", "in.csv"),
                       "not enough memory: Unable to allocate 3.64 TiB")
    assert "unexpected" not in err
