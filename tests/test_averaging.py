"""WeightAveraging: the moving average of the weights, validation with it, the end state."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from numnet import Callback, EarlyStopping, Sequential, WeightAveraging
from numnet.layers import Dense, ReLU
from numnet.optim import SGD


def small_problem(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((64, 5))
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1)
    return x[:48], y[:48], x[48:], y[48:]


def model(seed: int = 0) -> Sequential:
    return Sequential([Dense(5, 8), ReLU(), Dense(8, 3)], loss="cross_entropy",
                      dtype="float64", seed=seed)


class Recorder(Callback):
    """The model's weights after each step, as the optimiser leaves them."""

    def __init__(self) -> None:
        super().__init__()
        self.initial: np.ndarray | None = None
        self.batches: list[np.ndarray] = []

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.initial = self.model.flat_params.copy()

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.batches.append(self.model.flat_params.copy())


def fit(net: Sequential, callbacks: list[Callback], epochs: int = 3, validate: bool = True,
        lr: float = 0.5) -> Any:
    x, y, xv, yv = small_problem()
    return net.fit(x, y, epochs=epochs, batch_size=16, optimizer=SGD(lr=lr), seed=1,
                   verbose=0, callbacks=callbacks, health=False,
                   validation_data=(xv, yv) if validate else None)


def test_the_average_follows_its_formula() -> None:
    """A worked example: the average after each step, from the recorded weights."""
    recorder, averaging = Recorder(), WeightAveraging(decay=0.6)
    net = model()
    fit(net, [averaging, recorder])
    assert recorder.initial is not None
    expected = recorder.initial.copy()
    for t, weights in enumerate(recorder.batches, start=1):
        d = min(0.6, (1 + t) / (10 + t))
        expected = d * expected + (1 - d) * weights
    assert averaging.steps == len(recorder.batches) == 9
    assert [averaging.decay_at(t) for t in (1, 2, 5, 100)] == [2 / 11, 3 / 12, 0.4, 0.6]
    # training ends with the averaged weights in the model
    np.testing.assert_allclose(net.flat_params, expected, rtol=1e-12, atol=1e-14)
    assert not np.allclose(net.flat_params, recorder.batches[-1])


@pytest.mark.parametrize("validate", [True, False])
def test_epochs_end_with_the_average_and_training_goes_on_from_its_own_weights(
        validate: bool) -> None:
    plain = Recorder()
    history_plain = fit(model(), [plain], validate=validate)
    recorder, averaging = Recorder(), WeightAveraging(decay=0.9)
    seen: list[np.ndarray] = []

    class Probe(Callback):  # after the averaging: sees what the epoch ends with
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            seen.append(self.model.flat_params.copy())
            assert averaging.average is not None
            np.testing.assert_array_equal(self.model.flat_params, averaging.average)
            assert not np.array_equal(self.model.flat_params, recorder.batches[-1])

    net = model()
    history = fit(net, [averaging, recorder, Probe()], validate=validate)
    # the optimiser's steps are those of a run without averaging
    for mine, theirs in zip(recorder.batches, plain.batches, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert history.history["loss"] == history_plain.history["loss"]
    np.testing.assert_array_equal(net.flat_params, seen[-1])
    if validate:  # each validation scored the weights the epoch ended with
        _, _, xv, yv = small_problem()
        assert history.history["val_loss"][-1] == pytest.approx(
            net.evaluate(xv, yv)["loss"], rel=1e-12)
        assert history.history["val_loss"][-1] != pytest.approx(
            history_plain.history["val_loss"][-1])


class EndsReversed(Callback):
    """Runs its callbacks' hooks in list order, but on_train_end in reverse order."""

    def __init__(self, *callbacks: Callback) -> None:
        super().__init__()
        self.callbacks = callbacks

    def set_context(self, *args: Any) -> None:
        for callback in self.callbacks:
            callback.set_context(*args)

    def _all(self, hook: str, *args: Any, reverse: bool = False) -> None:
        for callback in reversed(self.callbacks) if reverse else self.callbacks:
            getattr(callback, hook)(*args)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._all("on_train_begin", logs)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._all("on_epoch_begin", epoch, logs)

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._all("on_batch_end", batch, logs)

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._all("on_test_begin", logs)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._all("on_epoch_end", epoch, logs)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._all("on_train_end", logs, reverse=True)


@pytest.mark.parametrize("reverse_end", [False, True])
def test_early_stopping_restores_the_best_validated_weights(reverse_end: bool) -> None:
    """Early stopping after the averaging sees the validated weights: the ones it restores
    score the best val_loss it recorded, whichever on_train_end runs first."""
    averaging = WeightAveraging(decay=0.9)
    stopping = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    callbacks: list[Callback] = [averaging, stopping]
    net = model(seed=3)
    history = fit(net, [EndsReversed(*callbacks)] if reverse_end else callbacks, epochs=8,
                  lr=2.0)
    val_loss = history.history["val_loss"]
    assert val_loss.index(min(val_loss)) < len(val_loss) - 1  # the best was not the last
    _, _, xv, yv = small_problem()
    assert net.evaluate(xv, yv)["loss"] == pytest.approx(min(val_loss), rel=1e-12)


def test_applied_swaps_the_average_in_and_out_during_an_epoch() -> None:
    averaging = WeightAveraging(decay=0.9)
    checked: list[int] = []

    class Probe(Callback):
        def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            before = self.model.flat_params.copy()
            assert averaging.average is not None
            expected = averaging.average.copy()
            with averaging.applied():
                np.testing.assert_array_equal(self.model.flat_params, expected)
            np.testing.assert_array_equal(self.model.flat_params, before)
            checked.append(batch)

    fit(model(), [averaging, Probe()])
    assert len(checked) == 9


def test_ctrl_c_keeps_what_early_stopping_restored_in_either_order() -> None:
    """On Ctrl-C early stopping restores its best weights; the averaging, whichever of the
    two ends first, does not undo that (it only takes back its own swap)."""
    results = []
    for first_stopping in (True, False):
        averaging = WeightAveraging(decay=0.9)
        stopping = EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True)

        class CtrlC(Callback):
            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                if epoch == 3:
                    raise KeyboardInterrupt

        net = model(seed=3)
        order: list[Callback] = [stopping, averaging] if first_stopping \
            else [averaging, stopping]
        fit(net, [*order, CtrlC()], epochs=8, lr=2.0)
        results.append(net.flat_params.copy())
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("how", ["interrupted", "diverged"])
def test_a_stopped_run_keeps_the_weights_fit_names(how: str) -> None:
    """After Ctrl-C or a divergence the model keeps its own weights (those fit's message
    names), not the average, even when the average was swapped in at the time."""
    averaging = WeightAveraging(decay=0.5)
    net = model()
    averaging.set_context(net, SGD(lr=0.1), {})
    averaging.on_train_begin({})
    net.flat_params[...] += 1.0
    averaging.on_batch_end(0, {})
    weights = net.flat_params.copy()
    averaging.on_test_begin({})
    assert not np.array_equal(net.flat_params, weights)
    averaging.on_train_end({how: True})
    np.testing.assert_array_equal(net.flat_params, weights)


def test_a_stop_inside_an_epoch_ends_with_the_average() -> None:
    averaging = WeightAveraging(decay=0.5)
    net = model()
    averaging.set_context(net, SGD(lr=0.1), {})
    averaging.on_train_begin({})
    start = net.flat_params.copy()
    net.flat_params[...] += 1.0
    averaging.on_batch_end(0, {})
    averaging.on_train_end({})
    np.testing.assert_allclose(net.flat_params, start + 1.0 * (1 - 2 / 11))


def test_no_steps_leave_the_weights_alone_and_a_new_fit_starts_afresh() -> None:
    averaging = WeightAveraging()
    net = model()
    before = net.flat_params.copy()
    averaging.set_context(net, SGD(lr=0.1), {})
    averaging.on_train_begin({})
    averaging.on_train_end({})
    np.testing.assert_array_equal(net.flat_params, before)
    fit(net, [averaging])
    assert averaging.steps == 9
    fit(net, [averaging])
    assert averaging.steps == 9


@pytest.mark.parametrize("decay", [0, 1, 1.5, -0.1, float("nan"), "0.9", True])
def test_bad_decay_is_refused(decay: Any) -> None:
    with pytest.raises(ValueError, match="WeightAveraging decay"):
        WeightAveraging(decay=decay)


def test_use_outside_fit_is_explained() -> None:
    with pytest.raises(RuntimeError, match="starts when fit starts training"):
        with WeightAveraging().applied():
            pass
