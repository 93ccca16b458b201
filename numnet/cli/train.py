"""``numnet train``: train a classifier (an MLP preset or a JSON architecture) and save it."""

from __future__ import annotations

import argparse
import inspect
import re
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from numnet import callbacks, distributed, io, losses, optim, plot
from numnet._files import output_kind
from numnet.averaging import WeightAveraging
from numnet.cli import _cnn
from numnet.cli._common import (
    PROG,
    CLIError,
    Files,
    Parser,
    Subparsers,
    add_command,
    add_data_options,
    averaging_decay,
    check_output,
    check_plot_file,
    fit_input,
    fraction,
    fresh_line,
    have_matplotlib,
    positive_float,
    positive_int,
    seed,
)
from numnet.cli._data import data_inputs, data_kind, load_data
from numnet.cli._warnings import one_line_warnings
from numnet.layers import Conv2D, Dense, Dropout, Layer
from numnet.model import Sequential
from numnet.training import History

DEFAULT_MODEL_FILE = "numnet-model.npz"
DEFAULT_PLOT_FILE = "numnet-history.png"
DEFAULT_MLP = (128,)
DEFAULT_BATCH_SIZE = 32
OPTIMIZERS = tuple(optim.ALIASES)  # sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw
LR_SCHEDULES = ("auto", "constant", "cosine")

EXAMPLES = ("  numnet train\n  numnet train --data mnist --model mlp:256,128 --epochs 5\n"
            "  numnet train --data iris.csv --label-column -1 --model arch.json\n"
            "  mpiexec -n 2 numnet train --data mnist --distributed\n")


def activations() -> dict[str, type[Layer]]:
    """The ``--activation`` choices: every registered activation layer, by snake_case name.

    An activation is a layer class that declares the ``init_family`` it asks of the Dense
    layer before it, has no weights and is built without arguments: ``ReLU`` is ``relu``,
    ``LeakyReLU`` is ``leaky_relu``. The name comes from the class, so registry keys with a
    namespace (``numnet.ReLU``) or without one give the same choices.
    """
    found: dict[str, type[Layer]] = {}
    for cls in Layer.registry.values():
        if (cls.init_family is None or cls.decay_keys or cls.__name__.startswith("_")
                or not _builds_without_arguments(cls)):
            continue
        found.setdefault(snake_case(cls.__name__), cls)  # the first registered (numnet's) wins
    return found


def snake_case(name: str) -> str:
    """``LeakyReLU`` -> ``leaky_relu``: a word starts at a capital followed by a small letter."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z][a-z])", "_", name).lower()


def _builds_without_arguments(cls: type[Layer]) -> bool:
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in parameters)


def add_parser(commands: Subparsers[Parser]) -> None:
    sub = add_command(commands, "train", "Train a classifier and save it.", EXAMPLES, run,
                      files=files)
    add_data_options(sub, "digits")
    sub.add_argument("--model", default="mlp", metavar="SPEC",
                     help="'mlp' (one hidden layer of 128), 'mlp:256,128' (hidden sizes), "
                          f"'mlp:' (no hidden layer), {_cnn.HELP}, or a JSON architecture "
                          "file")
    sub.add_argument("--activation", default="relu", choices=sorted(activations()),
                     help="hidden activation of the mlp and cnn presets (default: relu)")
    sub.add_argument("--dropout", type=fraction(True), default=0.0, metavar="P",
                     help="dropout probability after each hidden layer of the mlp preset, "
                          "after the hidden Dense layer of the cnn preset (default: 0, no "
                          "dropout)")
    sub.add_argument("--optimizer", default="adam", type=str.lower, choices=OPTIMIZERS,
                     help="(default: adam)")
    sub.add_argument("--lr", type=positive_float, default=None,
                     help="learning rate (default: the optimizer's)")
    sub.add_argument("--clip-norm", type=positive_float, default=None, metavar="MAX",
                     help="clip the global gradient norm to MAX before each step (e.g. 1.0; "
                          "default: no clipping)")
    sub.add_argument("--epochs", type=positive_int, default=20, help="(default: 20)")
    sub.add_argument("--batch-size", type=positive_int, default=None,
                     help=f"(default: 32; {_cnn.BATCH_SIZE} for the cnn preset)")
    sub.add_argument("--lr-schedule", default="auto", choices=LR_SCHEDULES,
                     help="the learning rate over the run: 'constant', or 'cosine' (from "
                          "--lr down a half cosine to 0, set before every batch: "
                          "lr * (1 + cos(pi * t / epochs)) / 2 at t = epoch + batch / "
                          "batches); 'auto' is constant (default: auto)")
    sub.add_argument("--weight-averaging", type=averaging_decay, default=None,
                     metavar="DECAY|off",
                     help="keep an exponential moving average of the weights with this "
                          "decay per step (e.g. 0.999), validate with it and save it "
                          "(numnet.WeightAveraging); default: "
                          f"{_cnn.WEIGHT_AVERAGING} for the cnn preset, off otherwise")
    sub.add_argument("--seed", type=seed, default=None,
                     help="seed of the data split, the initial weights and the shuffling "
                          "(default: 0; the initial weights of an architecture file use its "
                          "own \"seed\" unless --seed is given)")
    sub.add_argument("--val-split", type=fraction(True), default=0.1, metavar="F",
                     help="fraction of the data held out for validation (default: 0.1)")
    sub.add_argument("--test-split", type=fraction(False), default=0.2, metavar="F",
                     help="fraction held out for testing, for datasets without a test set "
                          "(default: 0.2)")
    sub.add_argument("--early-stopping", type=positive_int, default=None, metavar="PATIENCE",
                     help="stop after PATIENCE epochs without improvement of the validation "
                          "loss and keep the best weights")
    sub.add_argument("--dtype", default=None, choices=("float32", "float64"),
                     help="(default: float32, or an architecture file's own \"dtype\")")
    sub.add_argument("--out", default=DEFAULT_MODEL_FILE, metavar="PATH",
                     help=f"where to write the model file (default: {DEFAULT_MODEL_FILE}; "
                          "'-' is standard output, and the messages then go to standard "
                          "error)")
    sub.add_argument("--plot", default="auto", metavar="PATH|on|off",
                     help=f"training-curve PNG: 'auto' writes {DEFAULT_PLOT_FILE} next to "
                          "the model when matplotlib is installed, 'on' requires it, 'off' "
                          "skips it, or a path (default: auto); a model with convolutions "
                          "also gets the first one's filters beside it, in "
                          "<plot name>-filters.png")
    sub.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    sub.add_argument("--distributed", action="store_true",
                     help="data-parallel training over the processes of an MPI job: run "
                          "'mpiexec -n P numnet train ... --distributed' (pip install "
                          "'numnet[mpi]'); every rank loads the same data, rank 0 prints "
                          "and writes the files")
    sub.add_argument("--sync-batchnorm", action="store_true",
                     help="with --distributed: BatchNorm statistics over the global batch "
                          "rather than each rank's part")


def files(args: argparse.Namespace) -> Files:
    """Reads --data and an architecture --model; writes --out and the --plot file."""
    inputs = data_inputs(args)
    if _architecture_path(args.model) is not None:
        inputs.append(("--model", args.model))
    outputs = [("--out", args.out)]
    plot_path = plot_target(args.plot, args.out)
    if plot_path is not None:
        outputs.append(("--plot", str(plot_path)))
    return Files(inputs, outputs)


def run(args: argparse.Namespace) -> int:
    """``numnet train``."""
    out = Path(args.out)
    ranks = _ranks(args)  # the MPI job under --distributed, else None
    main = ranks is None or ranks.is_main  # the process that prints and writes
    # when the model file or the plot goes to standard output, the messages go to stderr
    stream = sys.stderr if files(args).writes_to_stdout() else sys.stdout

    def show(*values: Any) -> None:
        print(*values, file=stream)

    with _rank0_first(ranks):
        plot_path = plot_target(args.plot, args.out) if main else None
        if plot_path is not None:
            _check_plotting(args.plot, plot_path)
        _check_splits(args)
        prepared = load_data(args.data, label_column=args.label_column,
                             data_dir=args.data_dir, seed=0 if args.seed is None else args.seed,
                             val_split=args.val_split, test_split=args.test_split,
                             delimiter=args.delimiter)
    X_train, y_train = prepared.split("train")
    X_val, y_val = prepared.split("val")
    X_test, y_test = prepared.split("test")
    n_features = int(np.prod(X_train.shape[1:]))
    model = build_model(args.model, n_features, prepared.num_classes,
                        activation=args.activation, dropout=args.dropout, dtype=args.dtype,
                        seed=args.seed, image_shape=prepared.image_shape)
    check_output(model, prepared.num_classes, f"--model {args.model}")
    filters_path = _filters_target(model, plot_path, args.plot, out, args.data)
    X_train = fit_input(X_train, model, f"--data {args.data}")
    X_val = fit_input(X_val, model, f"--data {args.data}")
    X_test = fit_input(X_test, model, f"--data {args.data}")
    say: Callable[..., None] = (lambda *a: None) if args.quiet or not main else show
    say(f"data: {prepared.name}: {len(y_train)} train, {len(y_val)} validation, "
        f"{len(y_test)} test samples; {n_features} features, {prepared.num_classes} classes")
    say(model.summary())
    opt_kwargs = {} if args.lr is None else {"lr": args.lr}
    optimizer = optim.get_optimizer(args.optimizer, **opt_kwargs)
    batch_size, schedule, decay = _cnn_recipe(args)
    clipping = "" if args.clip_norm is None else f", gradients clipped to norm {args.clip_norm:g}"
    averaging = "" if decay is None else f", weights averaged (decay {decay:g})"
    say(f"optimizer: {optimizer!r}; {args.epochs} epochs, batch size {batch_size}"
        + (f", {schedule!r}" if schedule is not None else "") + clipping + averaging)
    started = time.perf_counter()
    with one_line_warnings():
        history = model.fit(X_train, y_train, epochs=args.epochs, batch_size=batch_size,
                            optimizer=optimizer, lr_schedule=schedule, clip_norm=args.clip_norm,
                            validation_data=(X_val, y_val) if len(y_val) else None,
                            callbacks=_train_callbacks(args, len(y_val) > 0, decay),
                            verbose=0 if args.quiet else 1, distributed=args.distributed,
                            sync_batchnorm=args.sync_batchnorm)
    if not main:  # rank 0 evaluates, saves and plots the model every rank holds
        return 130 if history.interrupted else 0
    trained = time.perf_counter() - started
    note = (" (interrupted)" if history.interrupted else
            " (stopped early, keeping the best weights)" if history.stopped_early else "")
    say(f"trained {len(history.epoch)} epoch(s) in {trained:.1f} s{note}")
    metadata = {
        "source": prepared.source,
        "preprocessing": prepared.preprocessing,
        "classes": prepared.classes,
        "image_shape": prepared.image_shape,
        "epochs": len(history.epoch),
        "command": "numnet " + " ".join(shlex.quote(a) for a in args.argv),
    }
    if history.interrupted:
        return _save_interrupted(model, out, optimizer, metadata)
    if schedule is not None:
        # a finished decay leaves the rate near 0: the model file keeps the run's --lr, so
        # `numnet trace` measures updates at the rate training used and further training
        # with the saved optimiser does not stand still
        optimizer.lr = optimizer.initial_lr
    # a model that diverged raised TrainingDiverged above, and one whose test loss is not
    # finite raises here: neither replaces an existing --out (io.save also refuses NaN
    # weights)
    scores = model.evaluate(X_test, y_test)
    metadata["test"] = {"loss": float(scores["loss"]), "accuracy": float(scores["accuracy"])}
    show(f"test accuracy: {scores['accuracy']:.2%} (loss {scores['loss']:.4f}, "
         f"{len(y_test)} samples)")
    io.save(model, out, optimizer=optimizer, metadata=metadata)
    show(f"saved model to {'standard output' if output_kind(args.out) == 'stdout' else out}")
    if plot_path is not None and len(history.epoch) == 0:
        show("no epoch finished: no training-curve plot")
    elif plot_path is not None:
        _write_history_plot(history, plot_path, show)
        if filters_path is not None and have_matplotlib():
            plot.filters(_first_conv(model), path=filters_path)
            show(f"saved the first convolution's filters to {filters_path}")
    return 0


def build_model(spec: str, n_features: int, n_classes: int, *, activation: str = "relu",
                dropout: float = 0.0, dtype: str | None = None, seed: int | None = None,
                image_shape: Sequence[int] | None = None) -> Sequential:
    """A model from ``--model``: an ``mlp`` or ``cnn`` preset or a JSON architecture file.

    ``dtype`` and ``seed`` given as ``None`` mean float32 and 0 for the presets, and the
    file's own ``"dtype"`` and ``"seed"`` for an architecture file. ``image_shape``
    (height, width) is the dataset's, for the cnn preset (see :mod:`numnet.cli._cnn`).
    """
    text = spec.strip()
    head, colon, rest = text.partition(":")
    if _cnn.is_cnn(text):
        shape = _cnn.image_input(spec, n_features, image_shape)
        return Sequential(_cnn.layers(text, shape, n_classes, activations()[activation],
                                      dropout),
                          loss="cross_entropy", input_shape=shape, dtype=dtype or "float32",
                          seed=0 if seed is None else seed)
    if head.lower() == "mlp":
        hidden = _hidden_sizes(spec, rest) if colon else DEFAULT_MLP
        layers: list[Layer] = []
        width = n_features
        act = activations()[activation]
        for size in hidden:
            layers += [Dense(width, size), act()]
            if dropout > 0:
                layers.append(Dropout(dropout))
            width = size
        layers.append(Dense(width, n_classes))
        return Sequential(layers, loss="cross_entropy", dtype=dtype or "float32",
                          seed=0 if seed is None else seed)
    path = _architecture_path(text)
    if path is not None:
        if dropout > 0:
            raise CLIError("--dropout applies to the presets; put Dropout layers in the "
                           "architecture file instead")
        model = io.load_architecture(path, seed=seed, dtype=dtype)
        if model.loss is None:
            model.loss = losses.get_loss("cross_entropy")
        return model
    raise CLIError(f"unknown --model {spec!r}: expected mlp, mlp:SIZES (e.g. mlp:256,128), "
                   "cnn, or a JSON architecture file")


def _architecture_path(spec: str) -> Path | None:
    """The architecture file ``--model`` names, or None for a preset."""
    text = spec.strip()
    if text.partition(":")[0].lower() in ("mlp", "cnn"):
        return None
    path = Path(text)
    return path if path.suffix.lower() == ".json" or path.exists() else None


def _hidden_sizes(spec: str, sizes: str) -> tuple[int, ...]:
    """The hidden sizes of ``mlp:256,128`` (none for ``mlp:``)."""
    try:
        hidden = tuple(int(part) for part in sizes.split(",") if part.strip())
    except ValueError:
        hidden = (0,)
    if any(h < 1 for h in hidden):
        raise CLIError(f"--model {spec!r}: hidden sizes must be positive integers, "
                       "e.g. mlp:256,128")
    return hidden


def _ranks(args: argparse.Namespace) -> distributed.World | None:
    """The processes of the MPI job under ``--distributed`` (starting MPI), else None."""
    if args.sync_batchnorm and not args.distributed:
        raise CLIError("--sync-batchnorm synchronises BatchNorm across the processes of an MPI "
                       "job: it needs --distributed")
    return distributed.world() if args.distributed else None


def _rank0_first(ranks: distributed.World | None) -> AbstractContextManager[None]:
    """Under ``--distributed``: rank 0 checks its outputs and loads the data first (so a
    download happens once), then the other ranks load it; an error on any rank stops all."""
    if ranks is None:
        return nullcontext()
    return ranks.main_first("checking the arguments and loading the data")


def _check_splits(args: argparse.Namespace) -> None:
    """Fail before loading when ``--val-split`` and ``--test-split`` leave no training data."""
    if data_kind(args.data) in ("mnist", "fashion-mnist"):
        return  # these have their own test set: --test-split is not used
    if args.val_split + args.test_split >= 1.0:
        raise CLIError(f"--val-split {args.val_split:g} and --test-split {args.test_split:g} "
                       f"hold out {args.val_split + args.test_split:g} of the data and leave "
                       "none for training: together they must be below 1")


def _train_callbacks(args: argparse.Namespace, has_val: bool,
                     decay: float | None) -> list[callbacks.Callback]:
    """The callbacks ``numnet train`` adds to ``fit``: weight averaging and early stopping,
    when asked."""
    chosen: list[callbacks.Callback] = []
    if decay is not None:
        chosen.append(WeightAveraging(decay))
    if args.early_stopping is not None:
        chosen.append(callbacks.EarlyStopping(
            monitor="val_loss" if has_val else "loss", patience=args.early_stopping,
            restore_best_weights=True, verbose=0 if args.quiet else 1))
    return chosen


def _save_interrupted(model: Sequential, out: Path, optimizer: optim.Optimizer,
                      metadata: dict[str, Any]) -> int:
    """After Ctrl-C: save the weights of the last finished batch, say so, return 130."""
    io.save(model, out, optimizer=optimizer, metadata={**metadata, "interrupted": True})
    fresh_line()
    print(f"{PROG}: interrupted: saved the weights after the last finished batch to {out} "
          f"({metadata['epochs']} full epoch(s); not evaluated, no plot)", file=sys.stderr)
    return 130


def plot_target(option: str, out: str) -> Path | None:
    """The training-curve file ``--plot`` asks for: next to the model file by default (in
    the current directory when the model goes to a device or standard output)."""
    key = option.lower()
    if key in ("off", "none", "no", "false", "0"):
        return None
    if key not in ("auto", "on", "yes", "true", "1"):
        return Path(option)
    directory = Path(out).parent if output_kind(out) == "file" else Path(".")
    return directory / DEFAULT_PLOT_FILE


def _check_plotting(option: str, target: Path) -> None:
    """Fail before training when a plot that was asked for cannot be written."""
    if option.lower() == "auto":
        return  # written only when matplotlib is installed
    if not have_matplotlib():
        raise CLIError(f"--plot {option}: writing the training curves needs matplotlib "
                       "(pip install 'numnet[plot]'), or pass --plot off")
    check_plot_file(option, target)


def _cnn_recipe(args: argparse.Namespace) -> tuple[int, optim.CosineDecay | None,
                                                  float | None]:
    """The batch size, learning-rate schedule and weight-averaging decay: the options, or
    the cnn preset's recipe (batch 128, weights averaged) where they are left to their
    defaults."""
    cnn = _cnn.is_cnn(args.model)
    batch_size = args.batch_size or (_cnn.BATCH_SIZE if cnn else DEFAULT_BATCH_SIZE)
    schedule = (optim.CosineDecay(total_epochs=args.epochs, per_batch=True)
                if args.lr_schedule == "cosine" else None)
    decay = args.weight_averaging
    if decay is None:
        decay = _cnn.WEIGHT_AVERAGING if cnn else 0.0
    return batch_size, schedule, decay or None


def _first_conv(model: Sequential) -> Conv2D | None:
    return next((layer for layer in model.layers if isinstance(layer, Conv2D)), None)


def _filters_target(model: Sequential, plot_path: Path | None, option: str, out: Path,
                    data: str) -> Path | None:
    """Where the filter grid of a CNN goes: ``<plot stem>-filters<suffix>`` beside the
    training curves (None without a plot or a convolution). It is never the model file,
    the training-curve plot (its name differs) or the data: that is an error before
    training."""
    if plot_path is None or _first_conv(model) is None:
        return None
    target = plot_path.with_name(f"{plot_path.stem}-filters{plot_path.suffix or '.png'}")
    for name, other in (("--out", out), ("--data", Path(data))):
        if target.resolve() == other.resolve():
            raise CLIError(f"--plot {option}: the filter grid would be written to "
                           f"{target}, which is the {name} file; choose another --plot "
                           "name")
    return target


def _write_history_plot(history: History, path: Path, show: Callable[..., None]) -> None:
    if not have_matplotlib():
        show("matplotlib is not installed: no training-curve plot (pip install "
             "'numnet[plot]' to get one)")
        return
    plot.plot_history(history, path=path)
    show(f"saved training curves to {path}")
