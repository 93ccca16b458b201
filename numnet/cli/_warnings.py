"""Training warnings on the command line: one line each, ``numnet: warning: ...``."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from numnet.cli._common import PROG, fresh_line
from numnet.errors import TrainingWarning


@contextmanager
def one_line_warnings() -> Iterator[None]:
    """Print each :class:`~numnet.errors.TrainingWarning` as one line on standard error,
    ``numnet: warning: ...``, on a line of its own (a progress bar may be mid-line)."""
    previous = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:
        if not issubclass(category, TrainingWarning):
            previous(message, category, filename, lineno, file, line)
            return
        fresh_line()
        text = " ".join(str(message).split())
        print(f"{PROG}: warning: {text}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always", TrainingWarning)
        warnings.showwarning = show
        yield
