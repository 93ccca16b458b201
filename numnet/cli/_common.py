"""What every ``numnet`` command shares: the error type, the parser and its argument types,
error printing, and opening a model."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, NoReturn

import numpy as np

from numnet import io
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


def add_command(commands: Subparsers[Parser], name: str, help_text: str, epilog: str,
                run: Callable[[argparse.Namespace], int]) -> Parser:
    """A sub-command's parser: its help, its examples, ``--debug``, and ``run`` to call."""
    debug = Parser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback on errors")
    sub = commands.add_parser(name, help=help_text, description=help_text,
                              epilog="example:\n" + epilog, parents=[debug],
                              formatter_class=Formatter)
    sub.set_defaults(func=run)
    return sub


def add_data_options(sub: argparse.ArgumentParser, default: str | None) -> None:
    """``--data``, ``--label-column`` and ``--data-dir`` (train, evaluate, trace)."""
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


def column(text: str) -> int | str:
    """A CSV column: an index (negative counts from the end) or a header name."""
    try:
        return int(text)
    except ValueError:
        if not text.strip():
            raise argparse.ArgumentTypeError("expected a column index or name, got an empty "
                                             "string") from None
        return text


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
        return f"{exc.strerror}: {exc.filename}"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    if not isinstance(exc, (ValueError, OSError, ImportError, LookupError, TrainingDiverged,
                            DistributedError)):
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

    if not (target.parent if str(target.parent) else Path(".")).is_dir():
        raise CLIError(f"--plot {option}: the directory {target.parent} does not exist")
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
