"""WeightAveraging: the moving average of the weights, validation with it, the end state."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from numnet import Callback, Sequential, WeightAveraging
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
    """The model's weights at the end of each batch and each epoch (as the optimiser
    leaves them, when it runs before a WeightAveraging that swaps at epoch ends)."""

    def __init__(self) -> None:
        super().__init__()
        self.initial: np.ndarray | None = None
        self.batches: list[np.ndarray] = []
        self.epochs: list[np.ndarray] = []

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.initial = self.model.flat_params.copy()

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.batches.append(self.model.flat_params.copy())

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epochs.append(self.model.flat_params.copy())


def fit(net: Sequential, callbacks: list[Callback], **kwargs: Any) -> Any:
    x, y, xv, yv = small_problem()
    return net.fit(x, y, epochs=3, batch_size=16, optimizer=SGD(lr=0.5), seed=1, verbose=0,
                   callbacks=callbacks, validation_data=(xv, yv), health=False, **kwargs)


def test_the_average_follows_its_formula() -> None:
    """A worked example: the average after each step, from the recorded weights."""
    recorder, averaging = Recorder(), WeightAveraging(decay=0.6)
    net = model()
    fit(net, [recorder, averaging])
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


def test_validation_scores_the_average_and_training_goes_on_from_its_own_weights() -> None:
    plain = Recorder()
    history_plain = fit(model(), [plain])
    recorder, averaging = Recorder(), WeightAveraging(decay=0.9)
    net = model()
    history = fit(net, [recorder, averaging])
    # the optimiser's weights are those of a run without averaging, epoch after epoch
    for mine, theirs in zip(recorder.epochs, plain.epochs, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert history.history["loss"] == history_plain.history["loss"]
    # the last validation scored the weights the model ends with: the average
    _, _, xv, yv = small_problem()
    val_loss = net.evaluate(xv, yv)["loss"]
    assert history.history["val_loss"][-1] == pytest.approx(val_loss, rel=1e-12)
    assert history.history["val_loss"][-1] != pytest.approx(history_plain.history["val_loss"][-1])


def test_applied_swaps_the_average_in_and_out() -> None:
    seen: list[np.ndarray] = []
    averaging = WeightAveraging(decay=0.9)

    class Probe(Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            before = self.model.flat_params.copy()
            with averaging.applied():
                assert averaging.average is not None
                np.testing.assert_array_equal(averaging.average, before)  # held aside
                seen.append(self.model.flat_params.copy())
            np.testing.assert_array_equal(self.model.flat_params, before)

    net = model()
    fit(net, [averaging, Probe()])
    np.testing.assert_array_equal(net.flat_params, seen[-1])


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


def test_diverged_training_keeps_the_rolled_back_weights() -> None:
    averaging = WeightAveraging(decay=0.5)
    net = model()
    averaging.set_context(net, SGD(lr=0.1), {})
    averaging.on_train_begin({})
    net.flat_params[...] += 1.0
    averaging.on_batch_end(0, {})
    weights = net.flat_params.copy()
    averaging.on_train_end({"diverged": True})
    np.testing.assert_array_equal(net.flat_params, weights)


@pytest.mark.parametrize("decay", [0, 1, 1.5, -0.1, float("nan"), "0.9", True])
def test_bad_decay_is_refused(decay: Any) -> None:
    with pytest.raises(ValueError, match="WeightAveraging decay"):
        WeightAveraging(decay=decay)


def test_use_outside_fit_is_explained() -> None:
    with pytest.raises(RuntimeError, match="starts when fit starts training"):
        with WeightAveraging().applied():
            pass
