"""Gradient-check every numnet layer, graph node, loss and a few models; print the worst
relative error per tensor, in training and evaluation mode.

Uses only numnet's public gradcheck API: ``check_layer`` / ``check_node`` / ``check_loss`` /
``check_model`` (float64 central differences, default tolerance 1e-6), on several shapes
each (batch of 1 included). A failing tensor is reported with its error, not raised.

    python bench/gradcheck_report.py
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from numnet import gradcheck  # noqa: E402
from numnet.layers import (  # noqa: E402
    Add,
    BatchNorm1d,
    Dense,
    Dropout,
    Flatten,
    Identity,
    LayerNorm,
    LeakyReLU,
    Mul,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from numnet.losses import BinaryCrossEntropy, CrossEntropy, MeanSquaredError  # noqa: E402
from numnet.model import Sequential  # noqa: E402

TOL = gradcheck.DEFAULT_TOL
# (check, mode, tensor) -> [worst error, number of cases, failures]
RESULTS: dict[tuple[str, str, str], list] = defaultdict(lambda: [0.0, 0, 0])


def rng(seed):
    return np.random.default_rng(seed)


def run(name: str, mode: str, fn, **kwargs) -> None:
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


def layer_cases():
    """(name, factory, list of input shapes) for layers with a per-sample input."""
    return [
        ("Dense", lambda s: Dense(s[-1], 3, seed=s[0]), [(1, 5), (4, 5), (7, 2)]),
        ("Dense(bias=False)", lambda s: Dense(s[-1], 4, bias=False, seed=1), [(1, 3), (5, 3)]),
        ("ReLU", lambda s: ReLU(), [(1, 4), (6, 3), (2, 3, 5)]),
        ("LeakyReLU(0.1)", lambda s: LeakyReLU(0.1), [(1, 4), (6, 3), (2, 3, 5)]),
        ("Sigmoid", lambda s: Sigmoid(), [(1, 4), (6, 3), (2, 3, 5)]),
        ("Tanh", lambda s: Tanh(), [(1, 4), (6, 3), (2, 3, 5)]),
        ("Softmax", lambda s: Softmax(), [(1, 4), (6, 3), (2, 3, 5)]),
        ("Identity", lambda s: Identity(), [(1, 4), (6, 3)]),
        ("Flatten", lambda s: Flatten(), [(1, 4), (3, 2, 5), (2, 3, 2, 2)]),
        ("BatchNorm1d", bn, [(2, 3), (5, 4), (9, 1)]),
        ("LayerNorm", ln, [(1, 5), (4, 3), (3, 2, 6)]),
        ("Dropout(0.5)", lambda s: Dropout(0.5), [(1, 6), (5, 4), (2, 3, 4)]),
    ]


def bn(shape):
    """BatchNorm1d with non-trivial gamma, beta and running statistics (so eval is non-trivial)."""
    c = shape[-1]
    layer = BatchNorm1d(c)
    r = rng(c)
    layer.params["gamma"][...] = r.uniform(0.5, 2.0, c) * r.choice([-1, 1], c)
    layer.params["beta"][...] = r.standard_normal(c)
    layer.buffers["running_mean"][...] = r.standard_normal(c)
    layer.buffers["running_var"][...] = r.uniform(0.2, 3.0, c)
    return layer


def ln(shape):
    d = shape[-1]
    layer = LayerNorm(d)
    layer.params["gamma"][...] = rng(d).uniform(-2, 2, d)
    layer.params["beta"][...] = rng(d + 1).standard_normal(d)
    return layer


def check_layers():
    for name, make, shapes in layer_cases():
        for training in (True, False):
            mode = "train" if training else "eval"
            for seed, shape in enumerate(shapes):
                x = rng(100 + seed).standard_normal(shape) * 2 + 0.3  # not the probe's seed
                run(name, mode, gradcheck.check_layer, layer=make(shape), x=x,
                    training=training, seed=seed)


def check_nodes():
    shapes = [((), ()), ((1,), (1,)), ((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 3), (1, 5, 1)),
              ((), (2, 2))]
    for name, make in (("Add", Add), ("Mul", Mul)):
        for seed, (sx, sy) in enumerate(shapes):
            r = rng(seed)
            run(name, "n/a", gradcheck.check_node, node=make(), x=r.standard_normal(sx),
                y=r.standard_normal(sy), seed=seed)
    # the apple example through check_node: d(price)/d(apple price), d(price)/d(count)
    run("Mul", "n/a", gradcheck.check_node, node=Mul(), x=100.0, y=2.0)


def check_losses():
    for n in (1, 4, 7):
        r = rng(n)
        z = r.standard_normal((n, 5)) * 2
        labels = r.integers(0, 5, n)
        probs = r.random((n, 5)) + 0.05
        probs /= probs.sum(axis=1, keepdims=True)
        w = r.random(n) + 0.5
        cases = [
            ("CrossEntropy[int labels]", CrossEntropy(), labels, None),
            ("CrossEntropy[int labels, weighted]", CrossEntropy(), labels, w),
            ("CrossEntropy[one-hot rows]", CrossEntropy(), np.eye(5)[labels], None),
            ("CrossEntropy[prob rows]", CrossEntropy(), probs, None),
            ("CrossEntropy[prob rows, weighted]", CrossEntropy(), probs, w),
            ("BinaryCrossEntropy[soft targets]", BinaryCrossEntropy(), r.random((n, 5)), None),
            ("BinaryCrossEntropy[0/1, weighted]", BinaryCrossEntropy(),
             (r.random((n, 5)) > 0.5).astype(float), w),
            ("MeanSquaredError", MeanSquaredError(), r.standard_normal((n, 5)), None),
            ("MeanSquaredError[weighted]", MeanSquaredError(), r.standard_normal((n, 5)), w),
        ]
        for name, loss, target, weight in cases:
            run(name, "n/a", gradcheck.check_loss, loss=loss, prediction=z, target=target,
                sample_weight=weight)
    # large logits (the losses' stability claims), still checkable in float64
    z = np.array([[30.0, -20.0, 5.0], [-40.0, 10.0, 12.0]])
    run("CrossEntropy[logits ~40]", "n/a", gradcheck.check_loss, loss=CrossEntropy(),
        prediction=z, target=[2, 0])
    run("BinaryCrossEntropy[logits ~40]", "n/a", gradcheck.check_loss,
        loss=BinaryCrossEntropy(), prediction=z, target=rng(0).random(z.shape))


def small_model(loss, out):
    return Sequential([Dense(5, 8, bias=False), BatchNorm1d(8), ReLU(), Dropout(0.3),
                       Dense(8, 6), LayerNorm(6), Tanh(), Dense(6, out)], loss=loss, seed=3)


def check_models():
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


def _table(rows):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def _cell(key):
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
