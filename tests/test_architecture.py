"""The shape of the code: no import cycles between numnet's modules, and the training loop
calls only the unchecked inner paths of layers and losses (their data was checked once)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import numnet
from numnet.layers import BatchNorm1d, Dense, Dropout, Layer, ReLU
from numnet.losses import BinaryCrossEntropy, CrossEntropy, Loss, MeanSquaredError
from numnet.model import Sequential

PACKAGE = Path(numnet.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(tree: ast.Module, lines: list[str], modules: set[str]) -> set[str]:
    """numnet modules the module imports, at its top or inside a function (an import cycle
    held together by imports inside functions is still a cycle); ``if TYPE_CHECKING:``
    blocks and the imports marked as the optional-dependency exception aside."""
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for child in ast.walk(node):
            if not isinstance(child, (ast.Import, ast.ImportFrom)):
                continue
            if child is not node and "noqa: PLC0415" in lines[child.lineno - 1]:
                continue  # a module importing an optional dependency, loaded when used
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                found.add(child.module)
                found.update(f"{child.module}.{alias.name}" for alias in child.names)
    return {name for name in found if name in modules}


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(path): path.read_text(encoding="utf-8")
             for path in PACKAGE.rglob("*.py")}
    return {name: _runtime_imports(ast.parse(text), text.splitlines(), set(files))
            for name, text in files.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of imports, ignoring those of a package's ``__init__`` from its own modules
    (Python runs a package's ``__init__`` before any of its modules)."""
    def edges(name: str) -> set[str]:
        return {other for other in graph[name]
                if other != name and not name.startswith(other + ".")}

    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        stack.append(name)
        for other in sorted(edges(name)):
            if state.get(other) == 1:
                return stack[stack.index(other):] + [other]
            if other not in state and (found := visit(other)):
                return found
        stack.pop()
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state and (found := visit(name)):
            return found
    return None


def test_no_module_of_numnet_imports_itself_through_others():
    graph = import_graph()
    assert {"numnet.model", "numnet.io", "numnet.training.loop", "numnet.callbacks"} <= set(graph)
    assert "numnet.model" not in graph["numnet.io"]  # io builds models from its registry
    assert not any(name.startswith("numnet.io") or name == "numnet.model"
                   for name in graph["numnet.callbacks"])
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"p": {"p.m"}, "p.m": {"p"}}) is None  # a package and its module


@pytest.fixture
def checked_paths_forbidden(monkeypatch):
    """Make every checked entry point of layers and losses fail if it is called."""
    def forbidden(*args, **kwargs):
        raise AssertionError("a checked path ran inside the training or evaluation loop")

    for owner, name in [(Layer, "__call__"), (Layer, "checked_input"),
                        (Layer, "backward_checked"), (Layer, "_as_grad"), (Loss, "__call__"),
                        (Loss, "check_target"), (Loss, "_prediction"), (Loss, "_weights")]:
        monkeypatch.setattr(owner, name, forbidden)


@pytest.mark.parametrize("loss, target", [
    ("cross_entropy", lambda rng: rng.integers(0, 3, 60)),
    ("cross_entropy", lambda rng: np.eye(3)[rng.integers(0, 3, 60)]),
    ("binary_cross_entropy", lambda rng: rng.random((60, 3))),
    ("mse", lambda rng: rng.standard_normal((60, 3))),
])
def test_fit_evaluate_and_predict_check_their_data_once_then_run_the_maths(
        checked_paths_forbidden, loss, target):
    rng = np.random.default_rng(0)
    X, y, w = rng.standard_normal((60, 4)), target(rng), rng.random(60)
    model = Sequential([Dense(4, 8), BatchNorm1d(8), ReLU(), Dropout(0.2), Dense(8, 3)],
                       loss=loss, seed=0, l2=1e-3)
    history = model.fit(X, y, epochs=2, batch_size=16, sample_weight=w, verbose=0,
                        validation_split=0.2, clip_norm=1.0)
    assert len(history) == 2
    assert np.isfinite(model.evaluate(X, y, sample_weight=w)["loss"])
    assert model.predict(X).shape[0] == 60


def test_the_public_loss_still_checks_what_fit_checks():
    """The same bad targets are refused by fit (once) and by a direct call of the loss."""
    z = np.zeros((3, 3))
    for call in (lambda: CrossEntropy()(z, [0, 1, 3]),
                 lambda: Sequential([Dense(3, 3)], loss="cross_entropy").fit(
                     z, [0, 1, 3], verbose=0)):
        with pytest.raises(ValueError, match="out of range|expected a class index"):
            call()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        BinaryCrossEntropy()(z, np.full((3, 3), 2.0))
    with pytest.raises(ValueError, match="sample_weight must be >= 0"):
        MeanSquaredError()(z, z, sample_weight=[1.0, -1.0, 1.0])
