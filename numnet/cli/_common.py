"""What every ``numnet`` command shares: the error type, the parser and its argument types,
the files a command reads and writes, error printing, and opening a model.

**Files.** Every command declares what it reads and writes (:class:`Files`, from its
parsed arguments: ``add_command(..., files=...)``), and :func:`check_files` runs before
the command does any work: an output that is a directory, or whose directory does not
exist, or that is the same file as one of the command's inputs or another of its outputs
(the same path once resolved, or the same device and inode: hard and symbolic links) is
refused. Files are then written with :func:`numnet._files.atomic_write`, which writes
into devices, FIFOs and ``-`` (standard output) instead of replacing them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NoReturn

import numpy as np

from numnet import io
from numnet._files import check_outputs, output_kind, output_problem
from numnet.errors import DistributedError, TrainingDiverged
from numnet.model import Sequential

PROG = "numnet"


class CLIError(ValueError):
    """A user error: printed as ``numnet: error: <message>`` with exit status 2."""


# -- the parser -----------------------------------------------------------------------------
class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, ``numnet: error: ...``, exit status 2.

    ``commands`` maps each sub-command's name to its parser (set by ``build_parser``).
    """

    commands: dict[str, argparse.ArgumentParser]

    def error(self, message: str) -> NoReturn:
        hint = f" (see '{self.prog} --help')"
        self.exit(2, f"{PROG}: error: {message}{hint}\n")


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples in the epilogs as written."""


Subparsers = argparse._SubParsersAction  # the type of ``parser.add_subparsers()``


@dataclass
class Files:
    """What a command reads and writes: ``(name, path)`` pairs, the name as the user gave
    it (``"--out"``, ``"MODEL"``), for the messages."""

    inputs: list[tuple[str, str]] = field(default_factory=list)
    outputs: list[tuple[str, str]] = field(default_factory=list)

    def writes_to_stdout(self) -> bool:
        """Whether an output is standard output (messages must then go to stderr)."""
        return any(output_kind(path) == "stdout" for _, path in self.outputs)


def no_files(args: argparse.Namespace) -> Files:
    """The ``files`` of a command that reads and writes no file named on its command line."""
    return Files()


def check_files(files: Files) -> None:
    """Refuse, before any work, outputs that cannot be written or would destroy a file the
    command reads or writes (see the module docstring)."""
    for name, path in files.outputs:
        problem = output_problem(path)
        if problem is not None:
            joint = " " if output_kind(path) == "directory" else ": "
            raise CLIError(f"{name} {path}{joint}{problem}")
    try:
        check_outputs(files.outputs, files.inputs)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def add_command(commands: Subparsers[Parser], name: str, help_text: str, epilog: str,
                run: Callable[[argparse.Namespace], int], *,
                files: Callable[[argparse.Namespace], Files]) -> Parser:
    """A sub-command's parser: its help, its examples, ``--debug``, ``run`` to call, and
    ``files``, which lists the files the command reads and writes (:class:`Files`), checked
    by :func:`check_files` before ``run`` is called."""
    debug = Parser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback on errors")
    sub = commands.add_parser(name, help=help_text, description=help_text,
                              epilog="example:\n" + epilog, parents=[debug],
                              formatter_class=Formatter)
    sub.set_defaults(func=run, files=files)
    return sub


def add_data_options(sub: argparse.ArgumentParser, default: str | None) -> None:
    """``--data``, ``--label-column``, ``--data-dir`` and ``--delimiter`` (train, evaluate,
    trace)."""
    sub.add_argument("--data", default=default, metavar="DATA",
                     help="digits, mnist, fashion-mnist or a PATH.csv"
                          + ("" if default else " (default: the dataset the model was "
                                                "trained on)"))
    sub.add_argument("--label-column", type=column, default=None, metavar="COLUMN",
                     help="CSV column holding the labels: an index (default 0; negative "
                          "counts from the end) or a name from the header line")
    sub.add_argument("--data-dir", default=None, metavar="DIR",
                     help="directory of the MNIST / Fashion-MNIST files (default: "
                          "numnet's cache, downloading if needed)")
    sub.add_argument("--delimiter", type=delimiter, default=None, metavar="CHAR",
                     help="the CSV file's delimiter: one character, or tab (default: ','"
                          + ("" if default else ", or the one recorded for the model's own "
                                                "CSV") + ")")


# -- argument types -------------------------------------------------------------------------
def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def seed(text: str) -> int:
    """A random seed: an integer >= 0 (NumPy's seeds cannot be negative)."""
    value = integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def column(text: str) -> int | str:
    """A CSV column: an index (negative counts from the end) or a header name."""
    try:
        return int(text)
    except ValueError:
        if not text.strip():
            raise argparse.ArgumentTypeError("expected a column index or name, got an empty "
                                             "string") from None
        return text


def delimiter(text: str) -> str:
    """A CSV delimiter: one character; ``tab`` or ``\\t`` for a tab (hard to type in a shell)."""
    value = "\t" if text.lower() in ("tab", "\\t") else text
    if len(value) != 1:
        raise argparse.ArgumentTypeError(f"expected one character (or tab), got {text!r}")
    return value


def fraction(low_closed: bool) -> Callable[[str], float]:
    """A number in [0, 1) (``low_closed``) or (0, 1)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        ok = (0.0 <= value < 1.0) if low_closed else (0.0 < value < 1.0)
        if not ok:
            interval = "[0, 1)" if low_closed else "(0, 1)"
            raise argparse.ArgumentTypeError(f"expected a fraction in {interval}, got {text!r}")
        return value
    return parse


def averaging_decay(text: str) -> float:
    """``--weight-averaging``: a decay in (0, 1), or ``off`` / 0 (0.0: no averaging)."""
    if text.strip().lower() in ("off", "none", "no"):
        return 0.0
    return fraction(True)(text)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value > 0 and np.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def shape(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected sizes such as 64 or 8,8, got {text!r}")
    return sizes


# -- errors and standard error --------------------------------------------------------------
class LineTracker:
    """A text stream wrapper that remembers whether the last character written was a newline.

    Parameters
    ----------
    stream : text stream
        Where the writes go (standard error); every other attribute is the stream's.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self.at_line_start = True

    def write(self, text: str) -> int:
        if text:
            self.at_line_start = text.endswith("\n")
        return self._stream.write(text)

    def end_line(self) -> None:
        """Start a fresh line unless the output is already at the start of one."""
        if not self.at_line_start:
            self.write("\n")
            self.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def fresh_line() -> None:
    """Make the next message on standard error start on a line of its own."""
    end_line = getattr(sys.stderr, "end_line", None)
    if end_line is not None:
        end_line()


def describe(exc: BaseException) -> str:
    """One line for an exception: its message, and the file for OS errors."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    if isinstance(exc, MemoryError) and not isinstance(exc, ValueError):
        # numnet checks sizes before allocating; this is what slipped through
        text = f"not enough memory: {text}"
    elif not isinstance(exc, (ValueError, OSError, ImportError, LookupError,
                              TrainingDiverged, DistributedError)):
        text = f"unexpected {type(exc).__name__}: {text} (run with --debug for the traceback)"
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


# -- matplotlib (optional) ------------------------------------------------------------------
def have_matplotlib() -> bool:
    """Whether matplotlib can be imported (selecting the non-interactive Agg backend)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        import matplotlib  # noqa: F401, PLC0415  (optional: pip install 'numnet[plot]')
    except ImportError:
        return False
    return True


def check_plot_file(option: str, target: Path) -> None:
    """Fail before any work when matplotlib cannot write a plot to ``target``.

    The format comes from the suffix (none means PNG), as in :func:`numnet.plot._finish`.
    Call it after :func:`have_matplotlib` said yes.
    """
    # optional dependency, known to be installed here
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415

    fmt = target.suffix.lstrip(".").lower() or "png"
    supported = FigureCanvasAgg.get_supported_filetypes()
    if fmt not in supported:
        raise CLIError(f"--plot {option}: matplotlib cannot write {fmt!r} files; give a name "
                       f"ending in one of {', '.join('.' + f for f in sorted(supported))}")


# -- models ---------------------------------------------------------------------------------
def open_model(path: str, input_shape: tuple[int, ...] | None = None
               ) -> tuple[Sequential, dict[str, Any]]:
    """A model from a ``.npz`` model file or a ``.json`` architecture, with its metadata."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        model = io.load_architecture(p)
        metadata: dict[str, Any] = {}
    else:
        model = io.load(p)
        metadata = io.load_metadata(p)
    if input_shape is not None and model.input_shape is None:
        model.input_shape = tuple(input_shape)
    return model, metadata


def is_architecture(path: str) -> bool:
    """Whether ``path`` names a JSON architecture rather than a trained model file."""
    return Path(path).suffix.lower() == ".json"


def fit_input(X: np.ndarray, model: Sequential, what: str) -> np.ndarray:
    """``X`` in the model's per-sample input shape (reshaped when only the layout differs)."""
    expected = model.input_shape
    if expected is None or tuple(X.shape[1:]) == tuple(expected):
        return X
    if int(np.prod(X.shape[1:])) == int(np.prod(expected)):
        return X.reshape((X.shape[0],) + tuple(expected))
    got = int(np.prod(X.shape[1:]))
    raise CLIError(f"{what} has {got} features per sample (shape {tuple(X.shape[1:])}), the "
                   f"model expects input of shape {tuple(expected)} "
                   f"({int(np.prod(expected))} features)")


def check_output(model: Sequential, n_classes: int, what: str) -> None:
    """Fail when the model's last layer does not have one output per class."""
    try:
        out = model.output_shape()
    except ValueError:
        return
    if out != (n_classes,):
        raise CLIError(f"{what} outputs shape {tuple(out)}, but the data has {n_classes} "
                       f"classes: the last layer should have {n_classes} outputs")
