"""Writing files without losing any: numnet's one file writer, and the output checks.

Every file numnet writes (model and architecture files, IDX files and downloads, plots,
ONNX files, the CSV of ``numnet predict``) goes through :func:`atomic_write`, so the same
rules hold everywhere:

* **A regular file**, or a path that does not exist yet, is written to a temporary file
  ``.<name>.<random hex>.tmp`` in the same directory, flushed and fsynced, then renamed
  over the destination with :func:`os.replace`: an interrupted write (an exception,
  Ctrl-C, a full disk) leaves the previous file as it was and removes the temporary
  file; a process killed outright can leave it behind, never read and safe to delete. A
  symbolic link is followed: the file it points to is replaced and the link stays.
* **An existing path that is not a regular file** (a character device such as
  ``/dev/null`` or a terminal, a FIFO, a socket), and the names of the standard streams
  (``-`` or ``/dev/stdout`` for standard output, ``/dev/stderr``), are *streamed into*:
  renaming a file over them would replace the device itself (run as root, ``/dev/null``).
* **A directory** is refused (:class:`IsADirectoryError` naming it), as is a path whose
  directory does not exist (:class:`FileNotFoundError`).
* **A failed write** (disk full, quota, file-size limit, read-only file system, a closed
  pipe) raises an :class:`OSError` naming the destination, never the temporary file,
  with a plain explanation of the error number.

:func:`check_outputs` is the other half, for code that reads and writes files (the
command line declares what each command reads and writes): it refuses an output that is
the same file as an input or as another output, comparing resolved paths (symbolic
links, ``./x`` and ``x``) and device and inode (hard links).
"""

from __future__ import annotations

import errno
import io
import os
import secrets
import stat
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

PathLike = str | os.PathLike[str]

#: names of standard output and standard error, written into rather than replaced
STDOUT_NAMES = frozenset({"-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"})
STDERR_NAMES = frozenset({"/dev/stderr", "/dev/fd/2", "/proc/self/fd/2"})

#: plain explanations of the errors a write can meet
EXPLANATIONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is larger than the file system or the process's file-size "
                 "limit (ulimit -f) allows",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "the operation is not permitted",
    errno.EIO: "the device reported an input/output error",
    errno.EPIPE: "the program reading the output has stopped",
    errno.ENOENT: "the directory does not exist",
    errno.ENOTDIR: "a component of the path is not a directory",
    errno.ENAMETOOLONG: "the file name is too long",
}


def output_kind(path: PathLike) -> str:
    """How :func:`atomic_write` treats ``path``: ``"file"`` (replaced atomically; also a
    path that does not exist yet), ``"stream"`` (written into), ``"stdout"``,
    ``"stderr"`` or ``"directory"`` (refused)."""
    text = os.fspath(path)
    if text in STDOUT_NAMES:
        return "stdout"
    if text in STDERR_NAMES:
        return "stderr"
    try:
        mode = os.stat(text).st_mode
    except (OSError, ValueError):  # missing (or a dangling link): created as a file
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    return "file" if stat.S_ISREG(mode) else "stream"


def output_problem(path: PathLike) -> str | None:
    """Why ``path`` cannot be written (a directory, a missing directory), else None."""
    kind = output_kind(path)
    if kind == "directory":
        return "is a directory; give a file name"
    if kind == "file":
        parent = Path(os.path.realpath(path)).parent
        if parent.exists() and not parent.is_dir():
            return f"{Path(path).parent} is not a directory"
        if not parent.is_dir():
            return f"the directory {Path(path).parent} does not exist"
    return None


@contextmanager
def atomic_write(path: PathLike) -> Iterator[IO[bytes]]:
    """Open ``path`` for writing bytes, by the rules of the module docstring.

    Use as ``with atomic_write(path) as handle: handle.write(...)``: a regular file is
    replaced only when the block ends normally.

    Raises
    ------
    IsADirectoryError, FileNotFoundError
        ``path`` is a directory, or its directory does not exist (nothing is written).
    OSError
        Writing failed; the message names ``path`` and explains the error.
    """
    kind = output_kind(path)
    problem = output_problem(path)
    if problem is not None:
        number = (errno.EISDIR if kind == "directory" else
                  errno.ENOTDIR if "not a directory" in problem else errno.ENOENT)
        raise OSError(number, problem, os.fspath(path))
    if kind == "file":
        with _replace(path) as handle:
            yield handle
    else:
        with _stream(path, kind) as handle:
            yield handle


@contextmanager
def _replace(path: PathLike) -> Iterator[IO[bytes]]:
    """A temporary file next to the (link-resolved) destination, renamed over it."""
    target = Path(os.path.realpath(path))
    existed = target.exists()
    tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    try:
        # os.open with mode 0o666 lets the umask decide the permissions, as for any new
        # file (tempfile.mkstemp would make it private); O_EXCL never reuses a file.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o666)
    except OSError as exc:
        raise explained(exc, path, existed) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        # even Ctrl-C must not leave the temporary file behind
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise explained(exc, path, existed, tmp) from exc
        raise
    _fsync_directory(target.parent)


@contextmanager
def _stream(path: PathLike, kind: str) -> Iterator[IO[bytes]]:
    """Write straight into a device, a FIFO or a standard stream (no rename, no fsync)."""
    try:
        handle = _standard_stream(kind) if kind in ("stdout", "stderr") else _Stream(
            os.fdopen(os.open(path, os.O_WRONLY | getattr(os, "O_BINARY", 0)), "wb"))
    except OSError as exc:
        raise explained(exc, path, False) from exc
    try:
        with handle:
            yield handle  # type: ignore[misc]
            handle.flush()
    except OSError as exc:
        raise explained(exc, path, False) from exc


def _standard_stream(kind: str) -> _Stream:
    """A handle on standard output or error; closing it leaves the stream open."""
    text = sys.stdout if kind == "stdout" else sys.stderr
    text.flush()  # what was printed before comes first
    try:
        return _Stream(os.fdopen(os.dup(text.fileno()), "wb"))
    except (AttributeError, ValueError, OSError):  # replaced by a stream without a descriptor
        buffer: IO[bytes] | None = getattr(text, "buffer", None)
        if buffer is None:
            raise OSError(errno.EBADF, f"standard {kind[3:]} does not take bytes") from None
        return _Stream(buffer, close=False)


class _Stream:
    """A destination written front to back, that cannot seek (even ``/dev/null``, which
    pretends to): writers such as :mod:`zipfile` then write as to a pipe instead of
    seeking back to patch what they wrote. ``tell`` counts the bytes written."""

    def __init__(self, handle: IO[bytes], close: bool = True) -> None:
        self._handle, self._close, self._written = handle, close, 0

    def write(self, data: bytes) -> int:
        count = self._handle.write(data)
        self._written += len(data) if count is None else count
        return len(data) if count is None else count

    def tell(self) -> int:
        return self._written

    def seekable(self) -> bool:
        return False

    def seek(self, offset: int, whence: int = 0) -> int:
        raise io.UnsupportedOperation("a stream written front to back cannot seek")

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:  # file-like to NumPy's savez, which asks
        raise io.UnsupportedOperation("an output stream cannot be read")

    def flush(self) -> None:
        self._handle.flush()

    def fileno(self) -> int:
        return self._handle.fileno()

    @property
    def closed(self) -> bool:
        return self._handle.closed

    def close(self) -> None:
        self._handle.flush()
        if self._close:
            self._handle.close()

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def explained(exc: OSError, path: PathLike, existed: bool,
              tmp: Path | None = None) -> OSError:
    """``exc`` again, naming ``path`` (not a temporary file) and saying what it means.

    Errors that are not about writing (a download's network error, raised inside the
    ``with`` block) are returned unchanged.
    """
    filename = exc.filename
    if isinstance(filename, (str, os.PathLike)):
        filename = os.fspath(filename)
    about_tmp = tmp is not None and filename == os.fspath(tmp)
    if exc.errno not in EXPLANATIONS and not about_tmp:
        return exc
    if filename is not None and not about_tmp and filename != os.fspath(path):
        return exc  # about another file
    reason = exc.strerror or os.strerror(exc.errno or 0)
    plain = EXPLANATIONS.get(exc.errno or 0)
    if plain is not None and plain.lower() != reason.lower():
        reason = f"{reason} ({plain})"
    if output_kind(path) == "file":
        reason += ("; the previous file is unchanged" if existed
                   else "; nothing was written")
    return OSError(exc.errno, f"cannot write: {reason}", os.fspath(path))


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable where the platform allows (POSIX); best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- outputs that would destroy inputs ----------------------------------------------------
def _identity(path: PathLike) -> tuple[str, tuple[int, int] | None]:
    """The resolved path, and (device, inode) when the file exists."""
    resolved = os.path.normcase(os.path.realpath(path))
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return resolved, None
    return resolved, (info.st_dev, info.st_ino)


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether ``a`` and ``b`` name one file: the same resolved path, or the same device
    and inode (a hard link)."""
    path_a, inode_a = _identity(a)
    path_b, inode_b = _identity(b)
    return path_a == path_b or (inode_a is not None and inode_a == inode_b)


def _how(a: PathLike, b: PathLike) -> str:
    """Why two different names are one file, for the message."""
    if os.path.abspath(a) == os.path.abspath(b):
        return ""
    if os.path.realpath(a) == os.path.realpath(b):
        return " (through a symbolic link)"
    return " (a hard link to it)"


def check_outputs(outputs: Sequence[tuple[str, PathLike]],
                  inputs: Sequence[tuple[str, PathLike]]) -> None:
    """Refuse an output that is the same file as an input or another output.

    Parameters
    ----------
    outputs, inputs : sequence of (name, path)
        Each file with the name to call it by in the message (an option such as
        ``"--out"``).

    Raises
    ------
    ValueError
        Naming both files. Standard streams and devices (``/dev/null``) may be given
        as several outputs; they are written into, not replaced.
    """
    for index, (name, out) in enumerate(outputs):
        kind = output_kind(out)
        if kind in ("stdout", "stderr"):
            continue
        for input_name, source in inputs:
            if same_file(out, source):
                raise ValueError(f"{name} {os.fspath(out)} is the same file as {input_name} "
                                 f"{os.fspath(source)}{_how(out, source)}: writing it would "
                                 f"destroy what is read; choose another {name}")
        if kind == "stream":
            continue
        for other_name, other in outputs[:index]:
            if same_file(out, other):
                raise ValueError(f"{other_name} {os.fspath(other)} and {name} "
                                 f"{os.fspath(out)} are the same file{_how(out, other)}: "
                                 f"one would overwrite the other; give them different names")
