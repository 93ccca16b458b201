"""Gradient-check every registered numnet layer, graph node and loss, and a few models;
print the worst relative error per tensor, in training and evaluation mode.

The layers, nodes and losses come from numnet's registries, each checked on the small
examples it gives itself (``gradcheck_cases()`` / ``gradcheck_inputs()``), so a layer added
to numnet appears here without editing this file. Uses only numnet's public gradcheck API
(float64 central differences, default tolerance 1e-6). A failing tensor is reported with
its error, not raised; a registered class without examples is reported as failing.

    python bench/gradcheck_report.py
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from numnet import gradcheck  # noqa: E402
from numnet.layers import (  # noqa: E402
    BatchNorm1d,
    Dense,
    Dropout,
    LayerNorm,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from numnet.model import Sequential  # noqa: E402

TOL = gradcheck.DEFAULT_TOL
# (check, mode, tensor) -> [worst error, number of cases, failures]
RESULTS: dict[tuple[str, str, str], list[Any]] = defaultdict(lambda: [0.0, 0, 0])


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def run(name: str, mode: str, fn: Callable[..., dict[str, float]], **kwargs: Any) -> None:
    """Call a gradcheck function; on GradientCheckError keep the numbers it reports."""
    try:
        errors, failed = fn(**kwargs), set()
    except gradcheck.GradientCheckError as exc:
        failed_errs = {k: float(v) for k, v in
                       re.findall(r"([\w.]+): ([0-9.e+-]+|nan|inf)", str(exc).split(" in ", 1)[1])}
        errors = fn(**{**kwargs, "tol": np.inf})  # every tensor, single step
        errors.update(failed_errs)
        failed = set(failed_errs)
    for tensor, err in errors.items():
        row = RESULTS[(name, mode, tensor)]
        row[0] = max(row[0], err)
        row[1] += 1
        row[2] += tensor in failed


def row_name(cls: type[Any]) -> str:
    """``Dense`` for numnet's own classes, the full registered name for others."""
    if cls.__module__ == "numnet" or cls.__module__.startswith("numnet."):
        return cls.__name__
    return str(getattr(cls, "type_name", None) or cls.__name__)


def no_examples(name: str) -> None:
    RESULTS[(name, "n/a", "(no gradcheck cases)")] = [float("nan"), 0, 1]


def check_layers() -> None:
    for cls in gradcheck.registered_classes()["layer"]:
        name = row_name(cls)
        cases = cls.gradcheck_cases()
        if not cases:
            no_examples(name)
        for seed, case in enumerate(cases):
            for training in case.modes:
                run(name, "train" if training else "eval", gradcheck.check_layer,
                    layer=case.layer, x=case.x, training=training, seed=seed)


def check_nodes() -> None:
    for cls in gradcheck.registered_classes()["node"]:
        name = row_name(cls)
        pairs = cls.gradcheck_inputs()
        if not pairs:
            no_examples(name)
        for seed, (x, y) in enumerate(pairs):
            run(name, "n/a", gradcheck.check_node, node=cls(), x=x, y=y, seed=seed)


def check_losses() -> None:
    for cls in gradcheck.registered_classes()["loss"]:
        cases = cls.gradcheck_cases()
        if not cases:
            no_examples(row_name(cls))
        for case in cases:
            run(row_name(cls), "n/a", gradcheck.check_loss, loss=case.loss,
                prediction=case.prediction, target=case.target,
                sample_weight=case.sample_weight)


def small_model(loss: str, out: int) -> Sequential:
    return Sequential([Dense(5, 8, bias=False), BatchNorm1d(8), ReLU(), Dropout(0.3),
                       Dense(8, 6), LayerNorm(6), Tanh(), Dense(6, out)], loss=loss, seed=3)


def check_models() -> None:
    r = rng(11)
    x = r.standard_normal((6, 5))
    targets = {"cross_entropy": r.integers(0, 3, 6), "mse": r.standard_normal((6, 3)),
               "binary_cross_entropy": r.random((6, 3))}
    for loss, y in targets.items():
        for training in (True, False):
            run(f"model[{loss}]", "train" if training else "eval", gradcheck.check_model,
                model=small_model(loss, 3), x=x, y=y, training=training)
    for training in (True, False):
        run("model[LeakyReLU/Sigmoid/Softmax+mse]", "train" if training else "eval",
            gradcheck.check_model,
            model=Sequential([Dense(5, 7), LeakyReLU(0.2), Dense(7, 4), Sigmoid(), Dense(4, 3),
                              Softmax()], loss="mse", seed=5),
            x=x, y=np.eye(3)[targets["cross_entropy"]], training=training)
        run("model[batch of 1]", "train" if training else "eval", gradcheck.check_model,
            model=Sequential([Dense(5, 4), Tanh(), Dense(4, 3)], loss="cross_entropy", seed=1),
            x=x[:1], y=[2], training=training)
    # a Dense bias before BatchNorm has a gradient of exactly 0 in training
    run("model[Dense(bias)->BN]", "train", gradcheck.check_model,
        model=Sequential([Dense(5, 8), BatchNorm1d(8), ReLU(), Dense(8, 3)],
                         loss="cross_entropy", seed=0),
        x=x, y=targets["cross_entropy"], training=True)


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def _cell(key: tuple[str, str, str]) -> str:
    if key not in RESULTS:
        return "-"
    err, count, failed = RESULTS[key]
    return f"{err:.1e}" + (f" FAIL({failed}/{count})" if failed else "")


def main() -> None:
    check_layers()
    check_nodes()
    check_losses()
    check_models()
    # one row per (check, tensor); train / eval side by side (n/a: losses and graph nodes)
    seen = []
    for name, _, tensor in RESULTS:
        if (name, tensor) not in seen:
            seen.append((name, tensor))
    rows = [("check", "tensor", "train", "eval", "no mode")]
    rows += [(name, tensor, _cell((name, "train", tensor)), _cell((name, "eval", tensor)),
              _cell((name, "n/a", tensor))) for name, tensor in seen]
    _table(rows)
    failing = [k for k, v in RESULTS.items() if v[2]]
    passing = [v[0] for v in RESULTS.values() if not v[2]]
    print(f"\n{len(RESULTS)} (check, mode, tensor) entries; worst passing error "
          f"{max(passing):.2e} (tolerance {TOL:g}); failing: {failing or 'none'}")


if __name__ == "__main__":
    main()
