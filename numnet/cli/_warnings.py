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
    ``numnet: warning: ...``, on a line of its own (a progress bar may be mid-line); none
    when Python's warning filters ignore them (``PYTHONWARNINGS=ignore``)."""
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
        if not _ignored():
            # every warning, not once per line of code (the filter Python uses by default)
            warnings.simplefilter("always", TrainingWarning)
        warnings.showwarning = show
        yield


def _ignored() -> bool:
    """The user's filters (``python -W ignore``, ``PYTHONWARNINGS=ignore``) ignore training
    warnings: the first filter that applies to them says ``ignore``."""
    for action, message, category, module, _ in warnings.filters:
        if issubclass(TrainingWarning, category) and (message is None or message.match("")) \
                and (module is None or module.match("numnet")):
            return bool(action == "ignore")
    return False
