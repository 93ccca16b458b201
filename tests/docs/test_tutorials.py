"""The tutorials (docs/tutorials): each runs from a fresh interpreter; every exercise's
check passes with the solutions and fails with the learner's skeletons.

Each run is ``python docs/tutorial_cells.py run TUTORIAL --mode solutions|skeletons``
in a subprocess: plain Python executing the percent script's cells in order (no Jupyter
kernel to start, so a run costs an interpreter start and the tutorial's own work, and a
failure shows an ordinary traceback). ``NUMNET_TUTORIAL_QUICK=1`` makes the training
tutorials use subsets and fewer epochs; MNIST comes from ``$NUMNET_MNIST_DIR`` or
``../shared/data/mnist`` when present (the built-in digits otherwise); BLAS runs on one
thread, since these small matrices gain nothing from more and a busy machine loses a lot
to waking them.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import numnet

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("[0-9][0-9]_*.py"))
RUNNER = ROOT / "docs" / "tutorial_cells.py"
sys.path.insert(0, str(ROOT / "docs"))
import tutorial_cells  # noqa: E402  (docs/ is not a package)

NEEDS = {"12_mnist_cnn.py": "Conv2D"}  # tutorials written for layers still to land


def run_tutorial(path: Path, mode: str, workdir: Path, mnist: Path | None) -> dict:
    missing = NEEDS.get(path.name)
    if missing and not hasattr(numnet, missing):
        pytest.skip(f"{path.name} needs numnet.{missing}, which this numnet does not have")
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg", NUMNET_TUTORIAL_QUICK="1",
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if mnist is not None:
        env["NUMNET_MNIST_DIR"] = str(mnist)
    else:
        env.pop("NUMNET_MNIST_DIR", None)
    result = subprocess.run(
        [sys.executable, str(RUNNER), "run", str(path), "--mode", mode, "--figures",
         str(workdir / "figures")], cwd=workdir, env=env, capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["error"] is None, f"{path.name} ({mode}) failed:\n{outcome['error']}"
    assert outcome["checks"], f"{path.name} has no check cells"
    outcome["stdout"] = result.stdout
    return outcome


def test_the_learning_path_is_complete():
    names = [path.stem for path in TUTORIALS]
    assert [name[:2] for name in names] == [f"{i:02d}" for i in range(1, 13)], names


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_every_check_passes_with_the_solutions(path, tmp_path, mnist_dir_or_none):
    outcome = run_tutorial(path, "solutions", tmp_path, mnist_dir_or_none)
    failed = [check for check in outcome["checks"] if not check["passed"]]
    assert not failed, failed
    assert outcome["stdout"].count("right: ") == len(outcome["checks"])
    assert not list(tmp_path.glob("*.npz"))  # a tutorial writes nothing where it runs
    for figure in outcome["figures"]:
        assert Path(figure).read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_every_check_fails_with_the_skeletons(path, tmp_path, mnist_dir_or_none):
    outcome = run_tutorial(path, "skeletons", tmp_path, mnist_dir_or_none)
    passed = [check for check in outcome["checks"] if check["passed"]]
    assert not passed, f"these checks pass without the exercise done: {passed}"
    unclean = [check for check in outcome["checks"] if check.get("unclean")]
    assert not unclean, f"these checks fail outside numnet.exercises.check: {unclean}"
    assert all(check["exercises"] for check in outcome["checks"])


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_exercises_checks_and_solutions_match(path):
    """Each exercise cell is followed by a check before the next; its solution file
    solves exactly the exercises, and the script reads as a notebook."""
    cells = tutorial_cells.read_cells(path)
    exercises: list[str] = []
    waiting = False
    for cell in cells:
        if "exercise" in cell.tags:
            assert not waiting, f"line {cell.line}: two exercises without a check between"
            assert cell.kind == "code"
            names = tutorial_cells.defined_names(cell.source)
            assert names, f"line {cell.line}: an exercise cell defines no function or class"
            exercises += names
            waiting = True
        elif "check" in cell.tags:
            assert waiting, f"line {cell.line}: a check cell with no exercise before it"
            assert "with check(" in cell.source
            waiting = False
    assert not waiting, "the last exercise has no check"
    solution = tutorial_cells.solution_path(path)
    assert sorted(tutorial_cells.solution_sources(solution)) == sorted(exercises)
    ast.parse(path.read_text())  # a percent script is plain Python
    jupytext = pytest.importorskip("jupytext")
    notebook = jupytext.read(path)
    tags = [tuple(cell.metadata.get("tags", ())) for cell in notebook.cells]
    assert sum("exercise" in t for t in tags) == sum("check" in t for t in tags) >= 1


def test_the_runner_tells_a_passing_skeleton_and_a_broken_cell(tmp_path):
    """The harness itself: a check that passes without the exercise, and a cell that
    crashes, are both reported."""
    tutorials = tmp_path / "tutorials"
    (tutorials / "solutions").mkdir(parents=True)
    (tutorials / "solutions" / "01_x.py").write_text("def f():\n    return 2\n")
    (tutorials / "01_x.py").write_text(
        "from numnet.exercises import check\n\n"
        "# %% tags=[\"exercise\"]\ndef f():\n    return 1\n\n"
        "# %% tags=[\"check\"]\nwith check(\"f\"):\n    assert f() in (1, 2)\n\n"
        "# %%\nraise RuntimeError(\"boom\")\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, str(RUNNER), "run", str(tutorials / "01_x.py"),
                             "--mode", "skeletons"], capture_output=True, text=True, env=env,
                            timeout=60)
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["checks"][0]["passed"] is True
    assert "RuntimeError: boom" in outcome["error"]
