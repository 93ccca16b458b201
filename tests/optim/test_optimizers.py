"""The optimisers: update rules against PyTorch, weight decay, configuration and state."""

from __future__ import annotations

import json

import numpy as np
import pytest
from optim_helpers import MASK, P0, TORCH, FlatModel, grad, torch_trajectory, trajectory

from numnet import optim
from numnet.layers import Dense, ReLU
from numnet.model import Sequential
from numnet.optim import SGD, AdaGrad, Adam, AdamW, RMSProp, from_config, get_optimizer

CASES = {
    "sgd": lambda: SGD(0.1),
    "sgd_momentum_wd": lambda: SGD(0.1, momentum=0.9, weight_decay=0.05),
    "sgd_nesterov": lambda: SGD(0.05, momentum=0.8, nesterov=True, weight_decay=0.1),
    "adagrad": lambda: AdaGrad(0.1),
    "adagrad_all": lambda: AdaGrad(0.05, lr_decay=0.1, weight_decay=0.1,
                                   initial_accumulator_value=0.5, eps=1e-6),
    "rmsprop": lambda: RMSProp(0.01),
    "rmsprop_all": lambda: RMSProp(0.02, alpha=0.9, eps=1e-6, momentum=0.5, centered=True,
                                   weight_decay=0.1),
    "adam": lambda: Adam(0.05),
    "adam_wd": lambda: Adam(0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
    "adamw": lambda: AdamW(0.05, weight_decay=0.2),
    "adamw_decay_all": lambda: AdamW(0.05, weight_decay=0.2, decay_all=True),
    "sgd_momentum_wd_decay_all": lambda: SGD(0.1, momentum=0.9, weight_decay=0.05,
                                             decay_all=True),
}


# -- the update rules -------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(CASES))
def test_trajectories_match_torch_to_float64_rounding(case):
    ours = trajectory(CASES[case]())
    np.testing.assert_allclose(ours, np.array(TORCH[case]), rtol=1e-13, atol=1e-15)


ADAGRAD_TORCH = {  # the torch.optim.Adagrad arguments of the AdaGrad cases
    "adagrad": ({"lr": 0.1}, 0.0),
    "adagrad_all": ({"lr": 0.05, "lr_decay": 0.1, "initial_accumulator_value": 0.5,
                     "eps": 1e-6}, 0.1),
}


@pytest.mark.parametrize("case", sorted(ADAGRAD_TORCH))
def test_adagrad_matches_torch_live(case):
    """The recorded AdaGrad trajectories, checked again against the installed torch."""
    torch = pytest.importorskip("torch")
    kwargs, wd = ADAGRAD_TORCH[case]
    theirs = torch_trajectory(lambda groups: torch.optim.Adagrad(groups, **kwargs), wd=wd)
    np.testing.assert_allclose(theirs, np.array(TORCH[case]), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(trajectory(CASES[case]()), theirs, rtol=1e-13, atol=1e-15)


def test_adagrad_by_hand():
    # g = 2 each step: s = 4, 8; steps 0.1 * 2 / 2 and 0.1 * 2 / sqrt(8); lr_decay halves the
    # second step's rate; the accumulator starts at initial_accumulator_value
    model = FlatModel([1.0], [True])
    opt = AdaGrad(0.1, eps=0.0)
    for expected in (0.9, 0.9 - 0.2 / 8 ** 0.5):
        model.flat_grads[:] = 2.0
        opt.step(model)
        assert model.flat_params[0] == pytest.approx(expected, rel=1e-15)
    model = FlatModel([1.0], [True])
    opt = AdaGrad(0.1, lr_decay=1.0, initial_accumulator_value=5.0, eps=0.0)
    for expected in (1 - 0.2 / 3, 1 - 0.2 / 3 - 0.05 * 2 / 13 ** 0.5):
        model.flat_grads[:] = 2.0
        opt.step(model)
        assert model.flat_params[0] == pytest.approx(expected, rel=1e-14)
    assert opt.state["sum"][0] == 13.0
    opt.zero_state()
    model.flat_grads[:] = 0.0
    opt.step(model)  # the accumulator starts again from its initial value
    assert opt.state["sum"][0] == 5.0


def test_sgd_momentum_and_nesterov_by_hand():
    # p0 = 1, constant g = 0.5, lr = 0.1, mu = 0.9
    heavy, nesterov = FlatModel([1.0], [True]), FlatModel([1.0], [True])
    plain_opt, nesterov_opt = SGD(0.1, momentum=0.9), SGD(0.1, momentum=0.9, nesterov=True)
    expected_heavy = [0.95, 0.855]  # buf = 0.5, then 0.9 * 0.5 + 0.5 = 0.95
    expected_nesterov = [0.905, 0.7695]  # d = 0.5 + 0.9 * 0.5 = 0.95, then 0.5 + 0.9 * 0.95
    for step in range(2):
        heavy.flat_grads[:] = nesterov.flat_grads[:] = 0.5
        plain_opt.step(heavy)
        nesterov_opt.step(nesterov)
        assert heavy.flat_params[0] == pytest.approx(expected_heavy[step], abs=1e-15)
        assert nesterov.flat_params[0] == pytest.approx(expected_nesterov[step], abs=1e-15)


def test_first_adam_and_rmsprop_steps_by_hand():
    # Adam's bias correction makes the first step lr * g / (|g| + eps)
    model = FlatModel([1.0, 1.0], [True, True])
    model.flat_grads[:] = [2.0, -0.5]
    Adam(0.01).step(model)
    np.testing.assert_allclose(model.flat_params, [1 - 0.01 * 2 / (2 + 1e-8),
                                                   1 + 0.01 * 0.5 / (0.5 + 1e-8)], rtol=1e-15)
    # RMSProp: v = (1 - alpha) g^2, so the first step is lr * g / (sqrt(0.01) |g| + eps)
    model = FlatModel([1.0], [True])
    model.flat_grads[:] = 2.0
    RMSProp(0.01).step(model)
    assert model.flat_params[0] == pytest.approx(1 - 0.01 * 2 / (0.1 * 2 + 1e-8), rel=1e-15)


def test_adamw_decay_is_decoupled_and_skips_biases():
    # with a zero gradient the Adam part does nothing: only p * (1 - lr * wd) remains
    model = FlatModel()
    AdamW(0.1, weight_decay=0.5).step(model)
    np.testing.assert_array_equal(model.flat_params, np.where(MASK, P0 * (1 - 0.1 * 0.5), P0))
    model = FlatModel()
    AdamW(0.1, weight_decay=0.5, decay_all=True).step(model)
    np.testing.assert_array_equal(model.flat_params, P0 * (1 - 0.1 * 0.5))


@pytest.mark.parametrize("make", [lambda: SGD(0.1, weight_decay=0.5),
                                  lambda: RMSProp(0.1, weight_decay=0.5),
                                  lambda: Adam(0.1, weight_decay=0.5)])
def test_coupled_weight_decay_only_where_the_mask_says(make):
    model = FlatModel()  # zero gradients: only the decay term moves anything
    make().step(model)
    assert np.all(model.flat_params[MASK] != P0[MASK])
    np.testing.assert_array_equal(model.flat_params[~MASK], P0[~MASK])
    assert np.all(np.abs(model.flat_params[MASK]) < np.abs(P0[MASK]))


def test_optimisers_leave_the_gradient_untouched():
    for make in CASES.values():
        model = FlatModel()
        model.flat_grads[:] = grad(P0, 0)
        before = model.flat_grads.copy()
        for _ in range(2):
            make().step(model)
        np.testing.assert_array_equal(model.flat_grads, before)


@pytest.mark.parametrize("case", sorted(CASES))
def test_float32_models_keep_float32_state_and_track_float64(case):
    model = FlatModel(dtype=np.float32)
    opt = CASES[case]()
    ours = trajectory(opt, model=model)
    assert model.flat_params.dtype == np.float32
    assert all(v.dtype == np.float32 for v in opt.state.values())
    np.testing.assert_allclose(ours, np.array(TORCH[case]), rtol=1e-5, atol=1e-6)


def test_step_updates_the_layers_of_a_real_model_in_place():
    model = Sequential([Dense(3, 4), ReLU(), Dense(4, 2)], loss="cross_entropy", seed=0)
    weight = model.layers[0].params["W"]
    before = weight.copy()
    model.loss_and_grad(np.ones((5, 3)), np.array([0, 1, 0, 1, 1]))
    Adam(0.1).step(model)
    assert model.layers[0].params["W"] is weight and not np.array_equal(weight, before)


# -- configuration and state ------------------------------------------------------------
def small_model(seed=0):
    return Sequential([Dense(3, 5), ReLU(), Dense(5, 2)], loss="cross_entropy", seed=seed)


def train_steps(model, opt, start, stop):
    rng = np.random.default_rng(123)
    batches = [(rng.standard_normal((8, 3)), rng.integers(0, 2, 8)) for _ in range(stop)]
    for x, y in batches[start:stop]:
        model.loss_and_grad(x, y)
        opt.step(model)


@pytest.mark.parametrize("case", sorted(CASES))
def test_resuming_from_config_and_state_continues_bit_for_bit(case):
    straight, resumed = small_model(), small_model()
    opt = CASES[case]()
    train_steps(straight, opt, 0, 6)
    first = CASES[case]()
    train_steps(resumed, first, 0, 3)
    config = json.loads(json.dumps(first.get_config()))
    state = {k: np.array(v) for k, v in first.state_dict().items()}
    second = from_config(config)
    second.load_state_dict(state)
    train_steps(resumed, second, 3, 6)
    np.testing.assert_array_equal(resumed.flat_params, straight.flat_params)
    assert type(second) is type(opt) and second.get_config() == opt.get_config()


def test_state_dict_holds_copies_and_a_step_count():
    opt = Adam(0.01)
    assert list(opt.state_dict()) == ["step", "initial_lr"]
    model = FlatModel()
    trajectory(opt, steps=2, model=model)
    state = opt.state_dict()
    assert set(state) == {"step", "initial_lr", "exp_avg", "exp_avg_sq"}
    assert state["initial_lr"] == 0.01
    assert state["step"].shape == () and state["step"] == 2 and state["step"].dtype == np.int64
    state["exp_avg"][:] = 99
    assert not np.any(opt.state["exp_avg"] == 99)
    # a state loaded before the first step is reported back unchanged
    fresh = Adam()
    fresh.load_state_dict(opt.state_dict())
    np.testing.assert_array_equal(fresh.state_dict()["exp_avg_sq"], opt.state["exp_avg_sq"])


def test_load_state_dict_rejects_what_does_not_fit():
    opt = SGD(0.1, momentum=0.9)
    with pytest.raises(ValueError, match="'step' entry"):
        opt.load_state_dict({"momentum_buffer": np.zeros(5)})
    with pytest.raises(ValueError, match=r"missing \['momentum_buffer'\]"):
        opt.load_state_dict({"step": np.array(3)})
    with pytest.raises(ValueError, match=r"unexpected \['exp_avg'\]"):
        opt.load_state_dict({"step": np.array(3), "momentum_buffer": np.zeros(5),
                             "exp_avg": np.zeros(5)})
    with pytest.raises(ValueError, match="flat vectors"):
        opt.load_state_dict({"step": np.array(3), "momentum_buffer": np.zeros((5, 1))})
    opt.load_state_dict({"step": np.array(3), "momentum_buffer": np.zeros(4)})
    with pytest.raises(ValueError, match="has 4 entries but the model has 5 parameters"):
        opt.step(FlatModel())


def test_one_optimiser_cannot_silently_switch_models():
    opt = Adam()
    opt.step(FlatModel())
    with pytest.raises(ValueError, match="state for 5 parameters, but this model has 2"):
        opt.step(FlatModel([1.0, 2.0], [True, False]))


def test_zero_state_starts_afresh():
    opt = SGD(0.1, momentum=0.9)
    first = trajectory(opt, steps=2)
    opt.zero_state()
    np.testing.assert_array_equal(trajectory(opt, steps=2), first)


def test_get_config_is_json_and_names_the_optimiser():
    for make in CASES.values():
        opt = make()
        config = opt.get_config()
        assert json.loads(json.dumps(config)) == config
        assert config["name"] in {"sgd", "adagrad", "rmsprop", "adam", "adamw"}
        assert from_config(config).get_config() == config
        assert type(opt).__name__ in repr(opt)


def test_get_optimizer_by_name():
    assert isinstance(get_optimizer("adam"), Adam) and not isinstance(get_optimizer("adam"),
                                                                      AdamW)
    assert get_optimizer("AdamW", lr=0.1).lr == 0.1
    assert get_optimizer("momentum").momentum == 0.9
    assert get_optimizer("momentum", momentum=0.5).momentum == 0.5
    assert get_optimizer("nesterov").nesterov
    assert isinstance(get_optimizer("rmsprop"), RMSProp)
    assert isinstance(get_optimizer("AdaGrad", lr_decay=0.1), AdaGrad)
    assert get_optimizer("sgd", lr=0.3).lr == 0.3
    opt = Adam()
    assert get_optimizer(opt) is opt


def test_get_optimizer_and_from_config_errors():
    with pytest.raises(ValueError, match=r"unknown optimizer 'lion'; known: \['adagrad', "
                                         r"'adam', 'adamw', 'momentum', 'nesterov', 'rmsprop', "
                                         r"'sgd'\]"):
        get_optimizer("lion")
    with pytest.raises(TypeError, match="Optimizer or a name"):
        get_optimizer(3)
    with pytest.raises(ValueError, match="keyword arguments"):
        get_optimizer(Adam(), lr=0.1)
    with pytest.raises(ValueError, match="'name'"):
        from_config({"lr": 0.1})
    with pytest.raises(ValueError, match="unknown optimizer 'lion'"):
        from_config({"name": "lion"})
    with pytest.raises(ValueError, match="bad arguments"):
        from_config({"name": "adam", "momentum": 0.9})


@pytest.mark.parametrize("make, message", [
    (lambda: SGD(0), r"SGD lr must be in \(0"),
    (lambda: Adam(-1e-3), r"Adam lr must be in \(0"),
    (lambda: SGD(0.1, momentum=1.0), "SGD momentum must be in"),
    (lambda: SGD(0.1, nesterov=True), "nesterov=True needs momentum > 0"),
    (lambda: SGD(0.1, weight_decay=-1), "weight_decay must be in"),
    (lambda: SGD(0.1, decay_all="yes"), "decay_all must be True or False"),
    (lambda: Adam(betas=(0.9,)), "betas must be a pair"),
    (lambda: Adam(betas=(0.9, 1.0)), "Adam beta2 must be in"),
    (lambda: AdamW(eps=-1), "AdamW eps must be in"),
    (lambda: RMSProp(alpha=1.5), "RMSProp alpha must be in"),
    (lambda: RMSProp(momentum=-0.1), "RMSProp momentum must be in"),
    (lambda: AdaGrad(lr_decay=-1), "AdaGrad lr_decay must be in"),
    (lambda: AdaGrad(initial_accumulator_value=-0.1),
     "AdaGrad initial_accumulator_value must be in"),
    (lambda: AdaGrad(eps=float("nan")), "AdaGrad eps"),
])
def test_hyperparameters_are_checked(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_module_exports():
    """Every name imported from ``numnet.optim`` (by numnet, the tests, bench and examples)
    still comes from the package, whichever module of it defines the name."""
    for name in ("SGD", "AdaGrad", "RMSProp", "Adam", "AdamW", "Optimizer", "ALIASES",
                 "get_optimizer", "from_config", "clip_grad_norm", "global_grad_norm", "LRSchedule",
                 "StepDecay", "ExponentialDecay", "CosineDecay", "ReduceLROnPlateau",
                 "ScheduleLike", "non_negative_int", "resolve_mode", "is_improvement"):
        assert hasattr(optim, name), name
    assert sorted(optim.__all__) == sorted(name for name in optim.__all__
                                           if hasattr(optim, name))
    assert optim.Optimizer.registry == {"sgd": SGD, "adagrad": AdaGrad, "rmsprop": RMSProp,
                                        "adam": Adam, "adamw": AdamW}
