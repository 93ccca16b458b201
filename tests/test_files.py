"""numnet._files (issue 13, class 1): the one writer every file goes through, and the check
that no output is the same file as an input or another output."""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import numnet
from numnet import io, plot
from numnet._files import atomic_write, check_outputs, output_kind, same_file
from numnet.data import read_idx, write_idx

POSIX = pytest.mark.skipif(sys.platform == "win32", reason="devices and FIFOs are POSIX")

# Devices are reached through symbolic links in tmp_path: were the writer ever to replace its
# destination again, it would replace the link, not /dev/null (the suite may run as root).


def small_model() -> numnet.Sequential:
    return numnet.Sequential([numnet.Dense(3, 2)], loss="cross_entropy", seed=0)


# -- every writer, on every kind of destination ---------------------------------------------
def _writers(tmp_path: Path) -> dict:
    """Each public function that writes a file, as ``write(path)``."""
    model = small_model()
    writers = {
        "io.save": lambda p: io.save(model, p),
        "Sequential.save": lambda p: model.save(p),
        "save_architecture": lambda p: io.save_architecture(model, p),
        "write_idx": lambda p: write_idx(p, np.arange(6, dtype=np.uint8).reshape(2, 3)),
        "plot": lambda p: plot.plot_confusion_matrix(np.eye(2), path=p),
    }
    try:
        import onnx  # noqa: F401, PLC0415  (optional)
    except ImportError:
        pass
    else:
        writers["to_onnx"] = lambda p: io.to_onnx(model, p)
    return writers


WRITERS = ["io.save", "Sequential.save", "save_architecture", "write_idx", "plot", "to_onnx"]


def _writer(tmp_path: Path, name: str):
    writers = _writers(tmp_path)
    if name not in writers:
        pytest.skip(f"{name} needs an optional dependency")
    return writers[name]


@POSIX
@pytest.mark.parametrize("name", WRITERS)
def test_dev_null_is_written_into_never_replaced(tmp_path: Path, name: str) -> None:
    link = tmp_path / "null.png"
    link.symlink_to(os.devnull)  # a name with a suffix, for the writers that look at it
    before = os.stat(os.devnull)
    _writer(tmp_path, name)(link)
    after = os.stat(os.devnull)
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino
    assert link.is_symlink() and os.readlink(link) == os.devnull
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null.png"]  # no temporary file


@POSIX
@pytest.mark.parametrize("name", WRITERS)
def test_a_fifo_is_streamed_into(tmp_path: Path, name: str) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    _writer(tmp_path, name)(fifo)
    reader.join(timeout=30)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert received and len(received[0]) > 0


@pytest.mark.parametrize("name", WRITERS)
def test_a_directory_is_refused_naming_it(tmp_path: Path, name: str) -> None:
    target = tmp_path / "out.png"
    target.mkdir()
    with pytest.raises(IsADirectoryError) as info:
        _writer(tmp_path, name)(target)
    assert info.value.filename == str(target)
    assert ".tmp" not in str(info.value) and "is a directory" in str(info.value)
    assert list(tmp_path.iterdir()) == [target] and not any(target.iterdir())


@pytest.mark.parametrize("name", WRITERS)
def test_a_symbolic_link_is_followed(tmp_path: Path, name: str) -> None:
    real = tmp_path / "real.png"
    real.write_bytes(b"old")
    link = tmp_path / "link.png"
    link.symlink_to(real)
    _writer(tmp_path, name)(link)
    assert link.is_symlink() and real.read_bytes() != b"old"


def test_standard_output_is_written_into(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    print("before", flush=True)
    with atomic_write("-") as handle:
        handle.write(b"model bytes")
    assert capfdbinary.readouterr().out == b"before\nmodel bytes"


def test_save_to_standard_output_is_a_loadable_model(tmp_path: Path,
                                                      capfdbinary: pytest.CaptureFixture[bytes]
                                                      ) -> None:
    model = small_model()
    io.save(model, "-")
    path = tmp_path / "copy.npz"
    path.write_bytes(capfdbinary.readouterr().out)
    np.testing.assert_array_equal(io.load(path).flat_params, model.flat_params)


def test_output_kinds(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    assert output_kind(tmp_path / "f") == "file"
    assert output_kind(tmp_path / "missing") == "file"
    assert output_kind(tmp_path) == "directory"
    assert output_kind("-") == "stdout" and output_kind("/dev/stdout") == "stdout"
    assert output_kind("/dev/stderr") == "stderr"
    if sys.platform != "win32":
        assert output_kind(os.devnull) == "stream"


# -- failed writes name the destination -------------------------------------------------------
def test_disk_full_names_the_file_and_keeps_the_old_one(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.npz"
    io.save(small_model(), path)
    before = path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    with pytest.raises(OSError) as info:
        io.save(small_model(), path)
    error = info.value
    assert error.errno == errno.ENOSPC and error.filename == str(path)
    assert "No space left on device (the disk is full)" in error.strerror
    assert "the previous file is unchanged" in error.strerror and ".tmp" not in str(error)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


@pytest.mark.parametrize(("number", "plain"), [
    (errno.EFBIG, "ulimit -f"), (errno.EDQUOT, "quota"), (errno.EROFS, "read-only")])
def test_other_write_errors_are_explained(tmp_path: Path, number: int, plain: str) -> None:
    path = tmp_path / "x.idx"
    with pytest.raises(OSError) as info, atomic_write(path) as handle:
        handle.write(b"partial")
        raise OSError(number, os.strerror(number))  # as a failing write() raises it
    assert info.value.filename == str(path) and plain in info.value.strerror
    assert "nothing was written" in info.value.strerror and not path.exists()


def test_errors_that_are_not_about_writing_pass_unchanged(tmp_path: Path) -> None:
    error = ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
    with pytest.raises(ConnectionResetError) as info, atomic_write(tmp_path / "d.gz"):
        raise error
    assert info.value is error


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_device_names_itself(tmp_path: Path) -> None:
    full = tmp_path / "full.npz"
    full.symlink_to("/dev/full")
    with pytest.raises(OSError) as info:
        io.save(small_model(), full)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(full)
    assert "the disk is full" in info.value.strerror
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist") as info:
        io.save_architecture(small_model(), tmp_path / "no" / "a.json")
    assert info.value.filename == str(tmp_path / "no" / "a.json")


# -- same file ----------------------------------------------------------------------------
def test_same_file_sees_through_names_and_links(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("a.csv").write_text("1\n")
    os.link("a.csv", "hard.csv")
    Path("soft.csv").symlink_to(tmp_path / "a.csv")
    Path("b.csv").write_text("1\n")
    for other in ("a.csv", "./a.csv", str(tmp_path / "a.csv"), "hard.csv", "soft.csv",
                  "sub/../a.csv"):
        assert same_file("a.csv", other), other
    assert not same_file("a.csv", "b.csv")
    assert same_file("new.csv", "./new.csv") and not same_file("new.csv", "new2.csv")


def test_check_outputs_names_both_files(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("1,2\n")
    os.link(data, tmp_path / "h.csv")
    with pytest.raises(ValueError, match=r"--out .*h.csv is the same file as --data .*d.csv "
                                         r"\(a hard link to it\)"):
        check_outputs([("--out", tmp_path / "h.csv")], [("--data", data)])
    with pytest.raises(ValueError, match="--out .*m.png and --plot .*m.png are the same file"):
        check_outputs([("--out", tmp_path / "m.png"), ("--plot", tmp_path / "./m.png")], [])
    check_outputs([("--out", tmp_path / "m.npz"), ("--plot", tmp_path / "m.png")],
                  [("--data", data)])


@POSIX
def test_devices_may_take_several_outputs() -> None:
    check_outputs([("--out", os.devnull), ("--plot", os.devnull)], [])
    check_outputs([("--out", "-"), ("--plot", "/dev/stdout")], [])


def test_every_writer_goes_through_the_one_helper() -> None:
    """No module but numnet._files renames files over others or makes temporary files."""
    package = Path(numnet.__file__).parent
    for path in package.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if path.name == "_files.py":
            continue
        for needle in ("os.replace(", "os.rename(", ".tmp\"", "mkstemp", "token_hex"):
            assert needle not in text, (path, needle)


def test_the_writers_results_are_readable(tmp_path: Path) -> None:
    write_idx(tmp_path / "a.idx", np.arange(4, dtype=np.uint8))
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), np.arange(4))
    io.save_architecture(small_model(), tmp_path / "a.json")
    assert json.loads((tmp_path / "a.json").read_text())["layers"]
