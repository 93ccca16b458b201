"""The tutorials' cells: read, run with solutions or skeletons, render as a docs page.

A tutorial (``docs/tutorials/NN_name.py``) is a jupytext *percent* script: ``# %%`` starts a
code cell, ``# %% [markdown]`` a markdown cell (its lines commented with ``# ``), and a cell
may carry tags, ``# %% tags=["exercise"]``:

* an **exercise** cell defines the functions (or classes) the learner writes, as skeletons
  that raise ``NotImplementedError`` or return a wrong placeholder;
* the **check** cell after it runs them inside ``numnet.exercises.check`` and fails until
  they are right.

The solutions live in ``docs/tutorials/solutions/NN_name.py``: the same functions, written
out, and nothing else. Running a tutorial ``--mode solutions`` executes its cells in order
and, after each exercise cell, the solution's definitions of the names that cell defined,
so every check must pass. ``--mode skeletons`` executes the learner's version: every check
must fail, and after it fails the solutions are put in so the cells that follow still run.
The run prints one JSON line with each check's outcome (and the figures ``plt.show()``
saved): ``python docs/tutorial_cells.py run docs/tutorials/01_chain_rule.py --mode
solutions --figures /tmp/figures``.

``python docs/tutorial_cells.py markdown FILE`` prints the page the docs site shows (see
``docs/hooks.py``): the markdown cells as text, code as Python blocks, each exercise with
its solution folded away under it.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CELL = re.compile(r"^# %%(?P<markdown> \[markdown\])?(?P<meta>.*)$")
TAGS = re.compile(r"tags=\[(?P<tags>[^\]]*)\]")


@dataclass
class Cell:
    """One cell: ``kind`` is ``"code"`` or ``"markdown"``; ``line`` is where it starts."""

    kind: str
    source: str
    tags: tuple[str, ...] = ()
    line: int = 1


@dataclass
class Outcome:
    """What running a tutorial gave."""

    checks: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    figures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def read_cells(path: Path) -> list[Cell]:
    """The cells of a percent script (text before the first marker is a code cell)."""
    cells: list[Cell] = []
    kind, start = "code", 1
    tags: tuple[str, ...] = ()
    lines: list[str] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        marker = CELL.match(line)
        if marker is None:
            lines.append(line)
            continue
        cells.append(Cell(kind, _body(kind, lines), tags, start))
        kind = "markdown" if marker.group("markdown") else "code"
        found = TAGS.search(marker.group("meta"))
        tags = tuple(t.strip().strip("\"'") for t in found.group("tags").split(",")) \
            if found else ()
        start, lines = number, []
    cells.append(Cell(kind, _body(kind, lines), tags, start))
    return [cell for cell in cells if cell.source.strip() or cell.tags]


def _body(kind: str, lines: list[str]) -> str:
    if kind == "markdown":
        lines = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines]
    return "\n".join(lines).strip("\n")


def defined_names(source: str) -> list[str]:
    """The functions and classes a cell defines at its top level."""
    return [node.name for node in ast.parse(source).body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef))]


def solution_sources(path: Path) -> dict[str, str]:
    """Each top-level function or class of a solution file, by name, with its source."""
    text = path.read_text()
    tree = ast.parse(text)
    return {node.name: ast.get_source_segment(text, node, padded=True) or ""
            for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def solution_path(tutorial: Path) -> Path:
    return tutorial.parent / "solutions" / tutorial.name


# -- running ------------------------------------------------------------------------------
def run(tutorial: Path, mode: str, figures: Path | None) -> Outcome:
    """Execute a tutorial's code cells in order, in one namespace (see the module docstring)."""
    start = time.perf_counter()
    outcome = Outcome()
    solutions = solution_sources(solution_path(tutorial))
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": str(tutorial)}
    _save_figures_on_show(figures, tutorial.stem, outcome)
    pending: list[str] = []  # names of the exercises since the last check
    for index, cell in enumerate(read_cells(tutorial)):
        if cell.kind != "code":
            continue
        code = compile(cell.source, f"{tutorial}:cell {index} (line {cell.line})", "exec")
        if "check" not in cell.tags:
            try:
                exec(code, namespace)
            except Exception:
                outcome.error = f"cell at line {cell.line}:\n{traceback.format_exc()}"
                break
            if "exercise" in cell.tags:
                names = defined_names(cell.source)
                missing = [name for name in names if name not in solutions]
                if missing:
                    outcome.error = (f"exercise cell at line {cell.line} defines {missing}, "
                                     f"which {solution_path(tutorial)} does not solve")
                    break
                pending += names
                if mode == "solutions":
                    _put_in(solutions, names, namespace, tutorial)
            continue
        outcome.checks.append(_run_check(code, cell, namespace, pending))
        if mode == "skeletons":  # the learner's version failed: go on with the solutions
            _put_in(solutions, pending, namespace, tutorial)
        pending = []
    outcome.seconds = time.perf_counter() - start
    return outcome


def _run_check(code: Any, cell: Cell, namespace: dict[str, Any],
               exercises: list[str]) -> dict[str, Any]:
    from numnet.exercises import ExerciseFailed  # noqa: PLC0415 - the tutorial's numnet

    result: dict[str, Any] = {"line": cell.line, "exercises": list(exercises)}
    try:
        exec(code, namespace)
    except ExerciseFailed as exc:
        result.update(passed=False, message=str(exc))
    except Exception as exc:  # a check cell must report through numnet.exercises.check
        result.update(passed=False, message=f"not a clean check: {type(exc).__name__}: {exc}",
                      unclean=True)
    else:
        result.update(passed=True, message="")
    return result


def _put_in(solutions: dict[str, str], names: list[str], namespace: dict[str, Any],
            tutorial: Path) -> None:
    for name in names:
        exec(compile(solutions[name], f"{solution_path(tutorial)}:{name}", "exec"), namespace)


def _save_figures_on_show(figures: Path | None, stem: str, outcome: Outcome) -> None:
    """``plt.show()`` saves each open figure as a PNG (or just closes it without a folder)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        import matplotlib.pyplot as plt  # noqa: PLC0415 - optional, as in the tutorials
    except ImportError:
        return

    def show(*args: Any, **kwargs: Any) -> None:
        for number in plt.get_fignums():
            if figures is not None:
                figures.mkdir(parents=True, exist_ok=True)
                target = figures / f"{stem}-{len(outcome.figures) + 1}.png"
                plt.figure(number).savefig(target, dpi=80)
                outcome.figures.append(str(target))
            plt.close(number)

    plt.show = show


# -- rendering ----------------------------------------------------------------------------
def to_markdown(tutorial: Path, download: str | None = None) -> str:
    """The docs page of a tutorial: markdown cells as text, code cells as Python blocks,
    each exercise followed by its solution, folded."""
    solutions = solution_sources(solution_path(tutorial)) \
        if solution_path(tutorial).is_file() else {}
    parts = []
    for cell in read_cells(tutorial):
        if cell.kind == "markdown":
            parts.append(cell.source)
        elif "exercise" in cell.tags:
            parts.append('!!! question "Exercise: fill in the body"\n\n'
                         + _indent(_fence(cell.source)))
            answers = [solutions[n] for n in defined_names(cell.source) if n in solutions]
            if answers:
                parts.append('??? success "Solution"\n\n'
                             + _indent(_fence("\n\n\n".join(a.strip("\n") for a in answers))))
        elif "check" in cell.tags:
            parts.append('!!! check "Check: run it to see right or wrong"\n\n'
                         + _indent(_fence(cell.source)))
        else:
            parts.append(_fence(cell.source))
    if download:
        parts.insert(1, f'!!! tip "Run it yourself"\n\n    Download [{download}]({download}) '
                        f"and run it as a script (`python {download}`) or open it as a "
                        f"notebook: `jupytext --to notebook {download}`, then "
                        f"`jupyter lab {Path(download).stem}.ipynb`. The exercises' checks "
                        f"fail until you fill them in.")
    return "\n\n".join(parts) + "\n"


def _fence(source: str) -> str:
    return f"```python\n{source}\n```"


def _indent(text: str) -> str:
    return "\n".join(("    " + line) if line else "" for line in text.splitlines())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run a tutorial, print its checks as JSON")
    run_parser.add_argument("tutorial", type=Path)
    run_parser.add_argument("--mode", choices=("solutions", "skeletons"), required=True)
    run_parser.add_argument("--figures", type=Path, default=None)
    markdown = commands.add_parser("markdown", help="print a tutorial's docs page")
    markdown.add_argument("tutorial", type=Path)
    args = parser.parse_args(argv)
    if args.command == "markdown":
        print(to_markdown(args.tutorial, args.tutorial.name), end="")
        return 0
    outcome = run(args.tutorial, args.mode, args.figures)
    print("\n" + json.dumps({"checks": outcome.checks, "error": outcome.error,
                             "figures": outcome.figures, "seconds": outcome.seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
