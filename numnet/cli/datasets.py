"""``numnet datasets``: the built-in and cached datasets, and where they live."""

from __future__ import annotations

import argparse

from numnet import data
from numnet.cli._common import Parser, Subparsers, add_command, no_files

EXAMPLES = "  numnet datasets\n"


def add_parser(commands: Subparsers[Parser]) -> None:
    add_command(commands, "datasets", "List the built-in and cached datasets and where they "
                                      "are.", EXAMPLES, run, files=no_files)


def run(args: argparse.Namespace) -> int:
    """``numnet datasets``."""
    for entry in data.dataset_info():
        print(entry)
    return 0
