"""Sequential: construction checks, passes, flat buffers, inspection, description."""

from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numnet import SGD, gradcheck
from numnet.data import LabelEncoder
from numnet.errors import ShapeError
from numnet.layers import (
    BatchNorm1d,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from numnet.model import Sequential


def mlp(seed=0, dtype="float32", loss="cross_entropy"):
    return Sequential([Dense(4, 8), ReLU(), Dense(8, 3)], loss=loss, dtype=dtype, seed=seed)


def data(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)), rng.integers(0, 3, n)


def test_incompatible_layers_name_both_layers_and_sizes():
    with pytest.raises(ValueError) as info:
        Sequential([Dense(784, 128), ReLU(), Dense(64, 10)])
    message = str(info.value)
    assert "layer 2 Dense(in_features=64" in message
    assert "the output of layer 1 ReLU()" in message
    assert "(64,)" in message and "(128,)" in message


def test_input_shape_checked_against_first_layer():
    with pytest.raises(ValueError, match=r"expects input of size \(4,\), but the model input "
                                         r"has size \(5,\)"):
        Sequential([Dense(4, 2)], input_shape=(5,))
    model = Sequential([Flatten(), Dense(12, 2)], input_shape=(3, 4))
    assert model.output_shape() == (2,)
    with pytest.raises(ValueError, match=r"layer 1 Dense\(in_features=12.*expects input of size "
                                         r"\(12,\), but the output of layer 0 Flatten\(\) has "
                                         r"size \(15,\)"):
        Sequential([Flatten(), Dense(12, 2)], input_shape=(3, 5))
    with pytest.raises(ValueError, match=r"layer 0 Dense.*but the model input has size \(2, 4\)"):
        Sequential([Dense(4, 2)], input_shape=(2, 4))


def test_constructor_rejects_bad_arguments():
    with pytest.raises(ValueError, match="at least one layer"):
        Sequential([])
    with pytest.raises(TypeError, match="layer 1 is 'relu'"):
        Sequential([Dense(2, 2), "relu"])
    with pytest.raises(ValueError, match="unknown loss"):
        Sequential([Dense(2, 2)], loss="nope")
    with pytest.raises(ValueError, match="unsupported dtype"):
        Sequential([Dense(2, 2)], dtype="float16")


def test_same_seed_same_weights_and_outputs_bit_for_bit():
    x, _ = data()
    a, b, c = mlp(seed=7), mlp(seed=7), mlp(seed=8)
    np.testing.assert_array_equal(a.flat_params, b.flat_params)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    assert not np.array_equal(a.flat_params, c.flat_params)


def test_params_and_grads_are_views_of_flat_buffers():
    model = mlp()
    assert model.num_params == 4 * 8 + 8 + 8 * 3 + 3
    for _, _, param, grad in model.parameters():
        assert np.shares_memory(param, model.flat_params)
        assert np.shares_memory(grad, model.flat_grads)
    model.flat_params[0] = 42
    assert model.layers[0].params["W"][0, 0] == 42
    # weights are decayed, biases are not
    assert model.decay_mask.sum() == 4 * 8 + 8 * 3


def test_backward_fills_flat_grads_and_sgd_lowers_the_loss():
    x, y = data(32)
    model = mlp()
    opt = SGD(0.5)
    first = model.loss_and_grad(x, y)
    assert np.abs(model.flat_grads).sum() > 0
    for _ in range(30):
        model.loss_and_grad(x, y)
        opt.step(model)
    assert model.loss_and_grad(x, y) < first * 0.7
    model.zero_grad()
    assert not model.flat_grads.any()


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse", "bce"])
def test_whole_model_gradcheck(training, loss):
    x, y = data(5)
    targets = {"cross_entropy": y, "mse": np.random.default_rng(1).standard_normal((5, 3)),
               "bce": np.random.default_rng(1).random((5, 3))}[loss]
    model = Sequential([Dense(4, 6), Tanh(), Dense(6, 5), LeakyReLU(0.1), Dense(5, 3)],
                       loss=loss, seed=2)
    errors = gradcheck.check_model(model, x, targets, training=training)
    assert set(errors) == {"input", "0.W", "0.b", "2.W", "2.b", "4.W", "4.b"}
    assert max(errors.values()) < 1e-6


def test_gradcheck_leaves_the_model_alone():
    model = mlp()
    before = model.flat_params.copy()
    gradcheck.check_model(model, *data(3))
    np.testing.assert_array_equal(model.flat_params, before)
    assert model.dtype == np.float32


def test_deepcopy_keeps_views():
    model = mlp()
    clone = copy.deepcopy(model)
    clone.flat_params[:] = 0
    assert not clone.layers[0].params["W"].any()
    assert model.layers[0].params["W"].any()


def test_dtype_float64_on_request_and_float32_default():
    x, y = data()
    assert mlp().forward(x).dtype == np.float32
    model = mlp(dtype="float64")
    assert model.forward(x).dtype == np.float64
    model.loss_and_grad(x, y)
    assert model.flat_grads.dtype == np.float64


def test_predict_for_each_kind_of_loss():
    x, _ = data(10)
    model = mlp()
    logits = model.forward(x)
    np.testing.assert_array_equal(model.predict(x, batch_size=3), logits.argmax(axis=1))
    proba = model.predict_proba(x)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    binary = mlp(loss="bce")
    np.testing.assert_array_equal(binary.predict(x), binary.forward(x) > 0)
    regression = mlp(loss="mse")
    np.testing.assert_allclose(regression.predict(x), regression.forward(x))
    with pytest.raises(ValueError, match="predict_proba needs a classification loss"):
        regression.predict_proba(x)


def test_binary_model_with_one_sigmoid_output_predicts_n_labels():
    """Issue 14: a one-output sigmoid model predicted (n, 1), so (predict(X) == y).mean()
    compared every sample with every label (0.534 where the accuracy was 0.972)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    model = Sequential([Dense(2, 8), Tanh(), Dense(8, 1)], loss="bce", seed=0)
    model.fit(X, y, epochs=30, batch_size=20, verbose=0, optimizer=SGD(0.5))
    labels = model.predict(X)
    assert labels.shape == (200,) and labels.dtype == np.int64
    accuracy = (labels == y).mean()
    assert accuracy == model.evaluate(X, y)["accuracy"] > 0.9
    proba = model.predict_proba(X)  # documented: (N, 1), P(y = 1)
    assert proba.shape == (200, 1)
    np.testing.assert_array_equal(proba[:, 0] > 0.5, labels == 1)
    # several sigmoid outputs (multilabel): one 0/1 label per output
    multi = Sequential([Dense(2, 3)], loss="bce", seed=0)
    assert multi.predict(X).shape == (200, 3)


def test_regression_predict_has_the_shape_and_precision_of_the_targets():
    """Issue 14: a one-output regression predicted (n, 1) float32 for float64 input, so
    y - predict(X) broadcast to (n, n) and an RMSE computed that way was silently wrong."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3))
    y = X @ [1.0, 2.0, -1.0]
    model = Sequential([Dense(3, 1)], loss="mse", seed=0)
    assert model.target_shape is None and model.predict(X).shape == (50, 1)  # never fit
    model.fit(X, y, epochs=2, verbose=0)
    prediction = model.predict(X)
    assert prediction.shape == (50,) and prediction.dtype == np.float64
    assert (y - prediction).shape == (50,)
    np.testing.assert_array_equal(prediction, model.predict_logits(X)[:, 0].astype(np.float64))
    assert model.predict(X.astype(np.float32)).dtype == np.float32
    assert model.predict(X.astype(np.int64)).dtype == np.float32  # integers: the model's
    assert model.predict(X.tolist()).dtype == np.float64          # Python floats are float64
    model.fit(X, y.reshape(-1, 1), epochs=1, verbose=0)
    assert model.predict(X).shape == (50, 1)  # the targets' shape, whatever it was
    # the recorded shape travels with the description (and so with model files)
    model.fit(X, y, epochs=1, verbose=0)
    rebuilt = Sequential.from_config(json.loads(json.dumps(model.get_config())))
    assert rebuilt.target_shape == () and rebuilt.predict(X).shape == (50,)
    with pytest.raises(ValueError, match="target_shape must be null or a list"):
        Sequential.from_config({**model.get_config(), "target_shape": [0]})


def test_predict_proba_is_as_precise_as_its_input():
    x, _ = data(5)
    model = mlp()
    assert model.predict_proba(x).dtype == np.float64
    assert model.predict_proba(x.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(model.predict_proba(x).sum(axis=1), 1, rtol=1e-12)


@pytest.mark.parametrize("labels, words", [
    (np.array(["cat", "dog", "cat"]), "y must be numeric, got dtype <U3: encode class "
                                      "labels with numnet.data.LabelEncoder"),
])
def test_text_labels_are_refused_with_a_pointer_to_the_label_encoder(labels, words):
    """Issue 14: load_csv(label_column=...) returns text labels, which fit refused without
    saying what to do."""
    model = Sequential([Dense(2, 2)], loss="cross_entropy", seed=0)
    with pytest.raises(TypeError) as info:
        model.fit(np.zeros((3, 2)), labels, verbose=0)
    assert words in str(info.value) and "NumnetClassifier" in str(info.value)
    with pytest.raises(ValueError, match=r"label -1 at index 0 .*LabelEncoder maps labels"):
        model.fit(np.zeros((3, 2)), [-1, 1, 1], verbose=0)


def test_the_label_encoder_path_for_text_labels():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 2))
    names = np.where(X[:, 0] > 0, "right", "left")
    encoder = LabelEncoder()
    model = Sequential([Dense(2, 2)], loss="cross_entropy", seed=0)
    model.fit(X, encoder.fit_transform(names), epochs=20, verbose=0, optimizer=SGD(0.5))
    assert (encoder.inverse_transform(model.predict(X)) == names).mean() > 0.9


def test_a_model_pickles_and_keeps_its_flat_buffers():
    model = Sequential([Dense(4, 8), BatchNorm1d(8), ReLU(), Dense(8, 3)],
                       loss="cross_entropy", seed=0)
    x, y = data(8)
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.predict_logits(x), model.predict_logits(x))
    assert all(np.shares_memory(p, clone.flat_params) for _, _, p, _ in clone.parameters())
    assert clone.target_shape == () and clone.layers[0].owner() is clone
    clone.fit(x, y, epochs=1, verbose=0)  # trains on its own buffers
    assert not np.array_equal(clone.flat_params, model.flat_params)
    shallow = copy.copy(model)  # shares the layers, so it shares their buffers too
    assert shallow.flat_params is model.flat_params
    assert all(np.shares_memory(p, model.flat_params) for _, _, p, _ in model.parameters())


def test_a_convolutional_model_pickles_too():
    model = Sequential([Conv2D(1, 4, 3), ReLU(), MaxPool2D(2), Flatten(), Dense(4 * 3 * 3, 2)],
                       loss="cross_entropy", seed=0)
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8))
    model.fit(x, [0, 1, 0, 1, 1], epochs=1, verbose=0)  # work arrays in the layers
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.predict_logits(x), model.predict_logits(x))
    assert all(layer.owner() is clone for layer in clone.layers)


def test_predict_rejects_bad_input():
    model = mlp()
    with pytest.raises(ShapeError, match=r"expects input of shape \(N, 4\), got \(3, 5\)"):
        model.predict(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="non-finite"):
        model.predict(np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match="no loss"):
        Sequential([Dense(2, 2)]).loss_and_grad(np.zeros((1, 2)), [0])


def test_train_and_eval_modes():
    model = mlp()
    assert model.training is False
    assert model.train() is model and model.training
    assert model.eval().training is False


def test_summary_table():
    text = mlp().summary()
    assert "Dense(in_features=4, out_features=8" in text
    assert "(N, 8)" in text and "(N, 3)" in text
    assert "total parameters: 67" in text
    with pytest.raises(ValueError, match="input shape"):
        Sequential([Flatten(), Dense(4, 2)]).summary()


def test_trace_shows_forward_statistics_and_backward_norms():
    x, y = data(8)
    model = Sequential([Dense(4, 8), ReLU(), Dense(8, 3), Softmax()], loss="mse", seed=0)
    trace = model.trace(x, np.eye(3)[y])
    names = [row[0] for row in trace.forward_rows]
    assert names == ["input", "0 Dense", "1 ReLU", "2 Dense", "3 Softmax"]
    relu_row = trace.forward_rows[2]
    assert relu_row[1] == (8, 8) and relu_row[4] == 0.0 and 0 < relu_row[6] < 1
    backward = {row[0]: row for row in trace.backward_rows}
    assert backward["0 Dense d/dW"][1] == (4, 8)
    assert all(row[2] > 0 for row in trace.backward_rows)
    text = str(trace)
    assert "zeros" in text and "norm" in text and "loss:" in text
    assert "backward" not in str(model.trace(x))


def test_config_round_trip_is_json():
    model = Sequential([Dense(4, 8, init="he_uniform"), LeakyReLU(0.2), Dense(8, 1),
                        Sigmoid()], loss="mse", dtype="float64", seed=3)
    config = json.loads(json.dumps(model.get_config()))
    clone = Sequential.from_config(config)
    assert repr(clone) == repr(model)
    assert clone.dtype == np.float64
    np.testing.assert_array_equal(clone.flat_params, model.flat_params)  # same seed


def test_from_config_errors():
    with pytest.raises(ValueError, match="unknown layer type 'Conv9d'"):
        Sequential.from_config({"layers": [{"type": "Conv9d", "config": {}}]})
    with pytest.raises(ValueError, match="format 99"):
        Sequential.from_config({"format": 99, "layers": []})
    with pytest.raises(ValueError, match=r"layer 0 \(Dense\): bad arguments"):
        Sequential.from_config({"layers": [{"type": "Dense", "config": {"units": 3}}]})
    with pytest.raises(ValueError, match="'layers' list"):
        Sequential.from_config([])


def test_state_dict_round_trip_and_errors():
    a, b = mlp(seed=1), mlp(seed=2)
    b.load_state_dict({k: v.copy() for k, v in a.state_dict().items()})
    np.testing.assert_array_equal(a.flat_params, b.flat_params)
    assert np.shares_memory(b.layers[0].params["W"], b.flat_params)  # written in place
    with pytest.raises(ValueError, match=r"missing \['2.b'\]"):
        b.load_state_dict({k: v for k, v in a.state_dict().items() if k != "2.b"})
    bad = dict(a.state_dict())
    bad["0.W"] = np.zeros((3, 3))
    with pytest.raises(ShapeError, match=r"'0.W' has shape \(3, 3\)"):
        b.load_state_dict(bad)


def test_training_backward_skips_the_unneeded_input_gradient():
    """``backward(input_grad=False)`` fills the same parameter gradients and stops at the
    first layer with parameters, which never computes ``dL/dx``."""
    x, y = data(seed=3)
    model = Sequential([Flatten(), Dense(4, 8), ReLU(), Dense(8, 3)], loss="cross_entropy",
                       input_shape=(2, 2), dtype="float64", seed=1)
    x = x.reshape(-1, 2, 2)
    model.loss(model.forward(x, training=True), y)
    grad_out = model.loss.backward()
    full = model.backward(grad_out)
    assert full.shape == x.shape
    expected = model.flat_grads.copy()
    model.zero_grad()
    calls = []
    model.layers[0].backward = lambda g: calls.append("flatten") or g  # must not run
    model.layers[1].backward = lambda g: calls.append("dense dx")  # must not run either
    assert model.backward(grad_out, input_grad=False) is None
    assert calls == []
    np.testing.assert_array_equal(model.flat_grads, expected)


def test_loss_and_grad_matches_an_explicit_forward_and_backward():
    model = mlp(seed=4, dtype="float64")
    x, y = data(seed=4)
    value = model.loss_and_grad(x, y)
    via_loss_and_grad = model.flat_grads.copy()
    model.zero_grad()
    assert model.loss.forward(model.forward(x, training=True), y) == value
    model.backward(model.loss.backward())
    np.testing.assert_array_equal(model.flat_grads, via_loss_and_grad)


def test_backward_params_of_a_model_without_parameters_runs_the_plain_backward():
    model = Sequential([ReLU(), Tanh()], loss="mse", input_shape=(3,))
    assert model._first_trainable == 0
    x = np.array([[1.0, -2.0, 3.0]])
    model.forward(x, training=True)
    assert model.backward(np.ones((1, 3)), input_grad=False) is None


def test_a_layer_object_cannot_stand_twice_in_a_model():
    relu = ReLU()
    with pytest.raises(ValueError, match=r"layer 3 ReLU\(\) is the same object as an earlier "
                                         r"layer"):
        Sequential([Dense(4, 8), relu, Dense(8, 8), relu, Dense(8, 3)])
    dense = Dense(8, 8)
    with pytest.raises(ValueError, match="layer 2 Dense.*same object"):
        Sequential([Dense(4, 8), dense, dense])


def test_a_layer_of_a_live_model_is_not_taken_over_by_another():
    first = mlp()
    with pytest.raises(ValueError, match=r"layer 0 Dense.*already belongs to another model.*"
                                         r"copy\.deepcopy"):
        Sequential([first.layers[0], ReLU(), Dense(8, 2)])
    assert np.shares_memory(first.layers[0].params["W"], first.flat_params)
    second = Sequential([copy.deepcopy(first.layers[0]), ReLU(), Dense(8, 2)])
    assert not np.shares_memory(second.layers[0].params["W"], first.flat_params)
    assert copy.deepcopy(first).num_params == first.num_params  # a copied model is its own


def test_trace_leaves_the_model_untouched():
    model = Sequential([Dense(4, 8), BatchNorm1d(8), ReLU(), Dropout(0.5), Dense(8, 3)],
                       loss="cross_entropy", seed=0).train()
    x, y = data()
    state = {k: v.copy() for k, v in model.state_dict().items()}
    grads, draw = model.flat_grads.copy(), copy.deepcopy(model.layers[3].rng).random()
    text = str(model.trace(x, y))
    assert "1 BatchNorm1d" in text and "d/dW" in text
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, state[key])
    np.testing.assert_array_equal(model.flat_grads, grads)
    assert model.layers[3].rng.random() == draw


def test_input_shape_may_be_a_single_int():
    assert Sequential([Dense(4, 2)], input_shape=4).input_shape == (4,)


@settings(max_examples=15, deadline=None)
@given(widths=st.lists(st.integers(1, 6), min_size=1, max_size=3), n=st.integers(1, 5),
       act=st.sampled_from([ReLU, Tanh, Sigmoid, lambda: LeakyReLU(0.2)]),
       training=st.booleans(), seed=st.integers(0, 2**16))
def test_whole_models_gradcheck_on_random_architectures(widths, n, act, training, seed):
    sizes = [3, *widths, 4]
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [Dense(fan_in, fan_out), act()]
    model = Sequential(layers[:-1], loss="cross_entropy", dtype="float64", seed=seed)
    rng = np.random.default_rng(seed)
    # non-zero biases: with zero ones, a dead ReLU unit feeds the next one exactly its kink
    for layer in model.layers[::2]:
        layer.params["b"][...] = rng.uniform(0.1, 0.5, layer.params["b"].shape)
    errors = gradcheck.check_model(model, rng.standard_normal((n, 3)), rng.integers(0, 4, n),
                                   training=training)
    assert max(errors.values()) < 1e-6


class RowCounter(Identity):
    """Identity that records the largest batch it was given."""

    def __init__(self, dtype=None):
        super().__init__(dtype)
        self.most_rows = 0

    def forward(self, x, training=False):
        self.most_rows = max(self.most_rows, np.shape(x)[0])
        return super().forward(x, training)


@pytest.mark.parametrize("call", ["predict", "predict_proba", "predict_logits", "evaluate"])
def test_inference_never_holds_more_than_a_batch_of_activations(call):
    counter = RowCounter()
    model = Sequential([Dense(4, 8), counter, Dense(8, 3)], loss="cross_entropy", seed=0)
    x = np.zeros((5000, 4), dtype=np.float32)
    if call == "evaluate":
        model.evaluate(x, np.zeros(5000, dtype=np.int64), batch_size=700)
    else:
        getattr(model, call)(x, batch_size=700)
    assert counter.most_rows == 700
