"""The diagnosing trace: dead units, saturation, gradient flow, update sizes, inputs."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from numnet import SGD, Adam, Dense, Identity, ReLU, Sequential, Sigmoid, Tanh, diagnosis
from numnet.data import load_digits
from numnet.init import normal


@pytest.fixture(scope="module")
def digits():
    return load_digits(flatten=True, scale=True)


def sigmoid_net(std: float | None, depth: int = 10) -> Sequential:
    """The issue's deep sigmoid network: ``depth`` Dense layers, 64 wide."""
    init = None if std is None else normal(std)
    layers = []
    for _ in range(depth - 1):
        layers += [Dense(64, 64, init=init), Sigmoid()]
    return Sequential([*layers, Dense(64, 10, init=init)], loss="cross_entropy", seed=0)


def kinds(trace) -> list[str]:
    return [finding.kind for finding in trace.findings]


def test_a_dead_relu_layer_is_named(digits):
    """The issue: SGD with lr 10 kills the first ReLU; the trace says so and why."""
    X, y = digits
    model = Sequential([Dense(64, 128), ReLU(), Dense(128, 10)], loss="cross_entropy", seed=0)
    model.fit(X, y, epochs=2, optimizer=SGD(10), verbose=0, health=False, seed=0)
    trace = model.trace(X[:32], y[:32])
    dead = next(f for f in trace.findings if f.kind == "dead")
    assert dead.layer == 1
    assert dead.message.startswith("layer 1 ReLU: 100% of units dead for this batch (0 for "
                                   "all 32 samples)")
    assert "learning rate" in dead.message
    nothing = next(f for f in trace.findings if f.kind == "no-gradient")
    assert nothing.layer == 0
    assert "no gradient reaches layer 0 Dense: the gradient is exactly 0 below layer 1 ReLU " \
           "(its units are dead)" in nothing.message
    assert trace.forward_rows[2][7] == 1.0  # the dead column of the ReLU row
    text = str(trace)
    assert "dead" in text.splitlines()[0] and "100%" in text
    assert "findings:\n- layer 1 ReLU: 100% of units dead" in text


def test_vanishing_gradients_in_a_deep_sigmoid_net(digits):
    X, y = digits
    trace = sigmoid_net(0.01).trace(X[:64], y[:64])
    vanishing = [f for f in trace.findings if f.kind == "vanishing"]
    assert len(vanishing) == 1 and vanishing[0].layer == 0
    message = vanishing[0].message
    assert message.startswith("the gradient shrinks ")
    assert "x from layer 18 Dense to layer 0 Dense: vanishing gradients" in message
    assert float(message.split()[3].rstrip("x")) > 1e12  # 0.25 * 0.08 per layer, 9 times
    assert "ReLU" in message and "He" in message
    assert "saturated" not in kinds(trace)  # small weights: every sigmoid sits at 0.5


def test_saturated_sigmoids(digits):
    X, y = digits
    trace = sigmoid_net(1.0).trace(X[:64], y[:64])
    saturated = [f for f in trace.findings if f.kind == "saturated"]
    assert len(saturated) >= 5
    assert all(f.message.startswith(f"layer {f.layer} Sigmoid: ") for f in saturated)
    first = saturated[0].message
    assert "of outputs saturated (within 0.01 of 0 or 1" in first and "Glorot" in first
    assert "Glorot" not in saturated[1].message  # explained once
    assert 0.25 <= trace.forward_rows[saturated[0].layer + 1][8] <= 1


def test_a_healthy_network_has_no_findings(digits):
    X, y = digits
    model = Sequential([Dense(64, 128), ReLU(), Dense(128, 10)], loss="cross_entropy", seed=0)
    assert model.trace(X[:32], y[:32]).findings == []
    model.fit(X, y, epochs=5, verbose=0, seed=0)
    trace = model.trace(X[:32], y[:32])
    assert trace.findings == []
    assert str(trace).endswith("findings: none")
    glorot = sigmoid_net(None, depth=3)
    assert glorot.trace(X[:32], y[:32]).findings == []


def test_exploding_gradients():
    x = np.random.default_rng(0).standard_normal((16, 64))
    layers = []
    for _ in range(8):
        layers += [Dense(64, 64, init=normal(0.5)), Identity()]
    model = Sequential([*layers, Dense(64, 3)], loss="cross_entropy", seed=0)
    trace = model.trace(x, np.zeros(16, dtype=int))
    exploding = next(f for f in trace.findings if f.kind == "exploding")
    assert "the gradient grows" in exploding.message
    assert "from layer 16 Dense to layer 0 Dense: exploding gradients" in exploding.message
    # the advice works from Python and from the command line alike
    assert "clip_norm=1.0" in exploding.message and "--clip-norm 1" in exploding.message


def test_update_to_weight_ratio(digits):
    X, y = digits
    model = Sequential([Dense(64, 32), ReLU(), Dense(32, 10)], loss="cross_entropy", seed=0)
    adam = model.trace(X[:32], y[:32])
    weights = [row for row in adam.backward_rows if row[0].endswith("d/dW")]
    assert all(1e-4 < row[4] < 1e-1 for row in weights)  # Adam(1e-3): about 1e-3 to 1e-2
    assert "update/weight" in str(adam)
    large = model.trace(X[:32], y[:32], optimizer=SGD(100))
    assert any(f.kind == "update-large" and "one step of SGD(lr=100) changes W by" in f.message
               for f in large.findings)
    small = model.trace(X[:32], y[:32], optimizer="sgd")
    assert "update-small" not in kinds(small)
    tiny = model.trace(X[:32], y[:32], optimizer=SGD(1e-9))
    lost = next(f for f in tiny.findings if f.kind == "update-small")
    assert "floating-point resolution" in lost.message  # float32 weights do not move at all
    # the ratio is ||lr * g|| / ||W|| for plain SGD
    model.astype("float64")
    tiny = model.trace(X[:32], y[:32], optimizer=SGD(1e-7))
    assert "update-small" in kinds(tiny)
    grad_norm = next(row[2] for row in tiny.backward_rows if row[0] == "2 Dense d/dW")
    ratio = next(row[4] for row in tiny.backward_rows if row[0] == "2 Dense d/dW")
    w_norm = float(np.linalg.norm(model.layers[2].params["W"]))
    assert ratio == pytest.approx(1e-7 * grad_norm / w_norm, rel=1e-6)


def test_the_optimiser_and_the_model_are_left_untouched(digits):
    X, y = digits
    model = Sequential([Dense(64, 32), ReLU(), Dense(32, 10)], loss="cross_entropy", seed=0)
    opt = Adam(1e-2)
    model.fit(X[:64], y[:64], epochs=1, optimizer=opt, verbose=0, health=False)
    state = copy.deepcopy(opt.state_dict())
    params = model.flat_params.copy()
    model.trace(X[:32], y[:32], optimizer=opt)
    assert opt.steps == int(state["step"])
    for key, value in opt.state_dict().items():
        np.testing.assert_array_equal(value, state[key])
    np.testing.assert_array_equal(model.flat_params, params)


def test_unscaled_inputs_are_a_finding(digits):
    X, y = digits
    model = Sequential([Dense(64, 10)], loss="cross_entropy", seed=0)
    trace = model.trace(X[:32] * 255, y[:32])
    inputs = next(f for f in trace.findings if f.kind == "inputs")
    assert inputs.layer is None
    assert "the inputs are far from standardised" in inputs.message
    assert "pixels / 255" in inputs.message
    assert diagnosis.input_findings(X) == []
    assert "all 0" in diagnosis.input_findings(np.zeros((5, 3)))[0].message
    assert "tiny" in diagnosis.input_findings(X / 255 / 255)[0].message


def test_dead_fraction_counts_units_and_channels():
    out = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    assert diagnosis.dead_fraction(out) == pytest.approx(2 / 3)
    images = np.zeros((2, 4, 3, 3))
    images[1, 0, 2, 2] = 0.5  # channel 0 is alive in one pixel of one sample
    assert diagnosis.dead_fraction(images) == pytest.approx(3 / 4)
    assert diagnosis.dead_fraction(np.ones((3, 2))) == 0.0


def test_saturation_thresholds():
    y = np.array([0.005, 0.011, 0.5, 0.989, 0.995])
    assert diagnosis.saturated_fraction(y, 0.0, 1.0) == pytest.approx(2 / 5)
    t = np.array([-0.985, -0.975, 0.0, 0.979, 0.99])
    assert diagnosis.saturated_fraction(t, -1.0, 1.0) == pytest.approx(2 / 5)
    assert Sigmoid.saturation == (0.0, 1.0) and Tanh.saturation == (-1.0, 1.0)
    assert ReLU.can_die and not Sigmoid.can_die


def test_trace_without_targets_reports_forward_findings_only(digits):
    X, _ = digits
    trace = sigmoid_net(1.0).trace(X[:32])
    assert trace.backward_rows == [] and trace.loss is None
    assert {f.kind for f in trace.findings} == {"saturated"}
    assert "backward" not in str(trace)


def test_a_gradient_lost_in_dead_units_is_blamed_on_them():
    """Most ReLU units dead (not all): the gradient reaching the first layer is tiny, and the
    cause is the dead units, not the initialisation or the activation the net already uses."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4))
    model = Sequential([Dense(4, 8), ReLU(), Dense(8, 3)], loss="cross_entropy", seed=0)
    first, last = model.layers[0], model.layers[2]
    first.params["b"][:7] = -100.0  # seven units below 0 for every sample: dead
    last.params["W"][7] *= 1e-4     # the one live unit passes little gradient down
    trace = model.trace(x, rng.integers(0, 3, 64))
    assert kinds(trace)[:2] == ["dead", "vanishing"]
    vanishing = trace.findings[1].message
    assert "from layer 2 Dense to layer 0 Dense" in vanishing
    assert "layer 1 ReLU" in vanishing and "dead" in vanishing
    assert "He initialisation" not in vanishing
