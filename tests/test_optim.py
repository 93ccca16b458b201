"""Optimisers, schedules, gradient clipping and L2 regularisation.

The reference trajectories below were recorded once with PyTorch 2.13.0 (``torch.optim``
SGD, RMSprop, Adam and AdamW in float64, weights in a param group with the weight decay and
biases in one without, or everything decayed for ``*_decay_all``) on the gradients of
``grad(p, k)``; torch is not needed to run these tests.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from numnet import optim
from numnet.layers import Dense, ReLU
from numnet.model import Sequential
from numnet.optim import (
    SGD,
    Adam,
    AdamW,
    CosineDecay,
    ExponentialDecay,
    ReduceLROnPlateau,
    RMSProp,
    StepDecay,
    clip_grad_norm,
    from_config,
    get_optimizer,
)

P0 = np.array([0.5, -1.25, 2.0, 0.75, -0.3])
MASK = np.array([True, True, True, False, False])  # three "weights", two "biases"
A = np.array([1.0, 0.5, 2.0, 1.5, 0.25])


def grad(p, k):
    """The gradient of a quadratic bowl plus a step-dependent push."""
    return A * p + np.sin(k + np.arange(5)) * 0.3


class FlatModel:
    """The three attributes an optimiser uses, without layers."""

    def __init__(self, params=P0, mask=MASK, dtype=np.float64):
        self.flat_params = np.array(params, dtype=dtype)
        self.flat_grads = np.zeros_like(self.flat_params)
        self.decay_mask = np.array(mask, dtype=bool)


def trajectory(opt, steps=6, model=None):
    model = model or FlatModel()
    out = []
    for k in range(steps):
        model.flat_grads[:] = grad(model.flat_params.astype(np.float64), k)
        opt.step(model)
        out.append(model.flat_params.copy())
    return np.array(out)


TORCH = {
    "sgd": [
        [0.45, -1.212744129544237, 1.5727210771952296,
         0.633266399758204, -0.2697959251407621],
        [0.37975587045576314, -1.1793858458717956, 1.2539432615143877,
         0.5609805146537112, -0.2342832987723489],
        [0.3145013606054164, -1.1246501538200018, 1.025858684070748,
         0.5056011656955487, -0.2200437513570724],
        [0.2788176243030787, -1.0457135712697638, 0.8494546754964926,
         0.43814345578718417, -0.23425225553470927],
        [0.2736399367320087, -0.9646601644663815, 0.6879462053431619,
         0.3527123394575429, -0.258076696545043],
        [0.275043671298702, -0.9080446912970946, 0.5306473663129658,
         0.27012474114021, -0.26398833368866964],
    ],
    "sgd_momentum_wd": [
        [0.4475, -1.2064941295442368, 1.5627210771952296,
         0.633266399758204, -0.2697959251407621],
        [0.3280183704557631, -1.1282605918138875, 0.8445786256041181,
         0.4559202744360948, -0.20709963139903484],
        [0.15876405216332432, -1.0000296755486053, 0.04781587578251138,
         0.2566884487206764, -0.13711301130053666],
        [-0.014468660018815676, -0.8069161438954402, -0.6503051253524553,
         0.047259003214666195, -0.09040682589093854],
        [-0.14615481682152817, -0.5599658492534482, -1.1369190107307043,
         -0.16802594618450664, -0.07579183577372822],
        [-0.2205583739378148, -0.2985299974207479, -1.3615127083328977,
         -0.36625925611478766, -0.07310710333114843],
    ],
    "sgd_nesterov": [
        [0.4505, -1.2052197165898133, 1.5974489694757066,
         0.6449397597823836, -0.2728163326266859],
        [0.3655807834101868, -1.1487670038724125, 1.148591618729655,
         0.5409518075077011, -0.23112170577172464],
        [0.2668215338741291, -1.0633953597832453, 0.7287347430989007,
         0.4402386627335681, -0.19925680207874533],
        [0.1845856857660841, -0.9431179957065218, 0.36840939759410574,
         0.32873016305110536, -0.19268444227910178],
        [0.13439027934929995, -0.8046798958395791, 0.06777059062070473,
         0.20046748691345564, -0.20391255598310043],
        [0.10586041220620922, -0.6770744063122308, -0.17569433133121878,
         0.07168921157887984, -0.20948875900151745],
    ],
    "rmsprop": [
        [0.400000019999996, -1.1500000268414003, 1.9000000023403916,
         0.6500000085665131, -0.2000000331081046],
        [0.320480105251445, -1.0868118779651976, 1.8329484364464752,
         0.5958581690167686, -0.12529968239172448],
        [0.2616920396855111, -1.0143016417711757, 1.7813020019044545,
         0.5555115304246241, -0.1004980725409306],
        [0.23271286776396505, -0.9413114715606532, 1.7369882792291627,
         0.5106907058420906, -0.13538589124680062],
        [0.2321695002541001, -0.8809194065387289, 1.6951198141443942,
         0.46058962051381575, -0.18263827781140957],
        [0.2375061081336265, -0.8422249588120148, 1.654443089457987,
         0.4147080724841188, -0.1965830510400053],
    ],
    "rmsprop_all": [
        [0.43333373737128866, -1.1833337799554735, 1.9333333830164383,
         0.6833335236997635, -0.23333406906111454],
        [0.34298025428804385, -1.102271486928748, 1.8511664299327397,
         0.6090851354706984, -0.1459069015224134],
        [0.25292293902724217, -1.009206308302218, 1.7696009137092066,
         0.5401050314014417, -0.08257265271613821],
        [0.18485466634559117, -0.9080601914074429, 1.6918064669894546,
         0.4694404683758262, -0.07657841788017235],
        [0.15256556612982652, -0.8091121027735221, 1.6158275861152323,
         0.3916243786773401, -0.10784125655776833],
        [0.14523987667016416, -0.7259943027209419, 1.5396043558210006,
         0.3119918098835876, -0.13577713066772773],
    ],
    "adam": [
        [0.450000001, -1.2000000013420704, 1.9500000001170197,
         0.7000000004283257, -0.2500000016554057],
        [0.40026107336415695, -1.1502732373200069, 1.9001451705070518,
         0.6511766370552554, -0.19994376934474611],
        [0.35029887720103886, -1.1007068596165115, 1.8505854289904327,
         0.603301997805207, -0.153893063640488],
        [0.30195864089206365, -1.0517506285857197, 1.8012758592378635,
         0.5551133250916477, -0.1271724641532928],
        [0.2594280726154819, -1.0023127274899564, 1.7520030176099293,
         0.5062022258612403, -0.11981720175276427],
        [0.22341726316994848, -0.9528153814467875, 1.702611896896493,
         0.45677841097025956, -0.11778816847775751],
    ],
    "adam_wd": [
        [0.4500000909089256, -1.2000001004904528, 1.9500000111787044,
         0.7000000428325324, -0.2500001655400296],
        [0.39977097120691424, -1.150353436586421, 1.9002444820036763,
         0.6516385072630162, -0.1997455642064472],
        [0.34937557781695067, -1.099941315877837, 1.8509732228028806,
         0.6046693780873682, -0.15490549121857833],
        [0.3015602020880496, -1.0488206996741782, 1.8021200832842732,
         0.5572058468985749, -0.13295566485539262],
        [0.2612501560878163, -0.9969131553659867, 1.7533211639768325,
         0.5083097140896407, -0.13305197193173182],
        [0.22898818797241813, -0.945710454259097, 1.7042825701763284,
         0.4584437477689733, -0.13833790735622267],
    ],
    "adamw": [
        [0.445000001, -1.1875000013420705, 1.9300000001170197,
         0.7000000004283257, -0.2500000016554057],
        [0.39079199992418395, -1.1259562270098717, 1.860869256459908,
         0.6511766370552554, -0.19994376934474611],
        [0.33691762094829414, -1.0651152447541947, 1.7927730261341646,
         0.603301997805207, -0.153893063640488],
        [0.28531884664465457, -1.0054655798569019, 1.7256689381674306,
         0.5551133250916477, -0.1271724641532928],
        [0.24036989102007253, -0.945930010384254, 1.6593264812302304,
         0.5062022258612403, -0.11981720175276427],
        [0.20279017103007885, -0.8870068942147241, 1.593572449001877,
         0.45677841097025956, -0.11778816847775751],
    ],
    "adamw_decay_all": [
        [0.445000001, -1.1875000013420705, 1.9300000001170197,
         0.6925000004283256, -0.24700000165540573],
        [0.39079199992418395, -1.1259562270098717, 1.860869256459908,
         0.6368244137614271, -0.19447265152008603],
        [0.33691762094829414, -1.0651152447541947, 1.7927730261341646,
         0.5827656027347644, -0.1465244732977503],
        [0.28531884664465457, -1.0054655798569019, 1.7256689381674306,
         0.5289771971507646, -0.11853433711114274],
        [0.24036989102007253, -0.945930010384254, 1.6593264812302304,
         0.4749792032171747, -0.11026420503888451],
        [0.20279017103007885, -0.8870068942147241, 1.593572449001877,
         0.4210030195235859, -0.107465771852041],
    ],
    "sgd_momentum_wd_decay_all": [
        [0.4475, -1.2064941295442368, 1.5627210771952296,
         0.629516399758204, -0.2682959251407621],
        [0.3280183704557631, -1.1282605918138875, 0.8445786256041181,
         0.44621019243730375, -0.20294565177333102],
        [0.15876405216332432, -1.0000296755486053, 0.04781587578251138,
         0.2408397542606056, -0.12965957124347532],
        [-0.014468660018815676, -0.8069161438954402, -0.6503051253524553,
         0.0270586629371512, -0.07952190959086461],
        [-0.14615481682152817, -0.5599658492534482, -1.1369190107307043,
         -0.1892480099707799, -0.06169310421449048],
        [-0.2205583739378148, -0.2985299974207479, -1.3615127083328977,
         -0.38427132144114845, -0.056159940806571745],
    ],
}

CASES = {
    "sgd": lambda: SGD(0.1),
    "sgd_momentum_wd": lambda: SGD(0.1, momentum=0.9, weight_decay=0.05),
    "sgd_nesterov": lambda: SGD(0.05, momentum=0.8, nesterov=True, weight_decay=0.1),
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
        assert config["name"] in {"sgd", "rmsprop", "adam", "adamw"}
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
    assert get_optimizer("sgd", lr=0.3).lr == 0.3
    opt = Adam()
    assert get_optimizer(opt) is opt


def test_get_optimizer_and_from_config_errors():
    with pytest.raises(ValueError, match=r"unknown optimizer 'adagrad'; known: \['adam', "
                                         r"'adamw', 'momentum', 'nesterov', 'rmsprop', 'sgd'\]"):
        get_optimizer("adagrad")
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
])
def test_hyperparameters_are_checked(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


# -- gradient clipping ------------------------------------------------------------------
def test_clip_grad_norm_scales_all_gradients_together():
    model = FlatModel()
    model.flat_grads[:] = [3.0, 4.0, 0.0, 0.0, 12.0]  # norm 13
    total = clip_grad_norm(model, 6.5)
    assert total == 13.0
    np.testing.assert_allclose(model.flat_grads, np.array([3, 4, 0, 0, 12]) * 6.5 / 13,
                               rtol=1e-6)
    assert clip_grad_norm(model, 100.0) == pytest.approx(6.5, rel=1e-6)  # below: untouched
    np.testing.assert_allclose(model.flat_grads, np.array([3, 4, 0, 0, 12]) * 0.5, rtol=1e-6)


def test_clip_grad_norm_survives_float32_overflow_and_reports_nan():
    model = FlatModel(dtype=np.float32)
    model.flat_grads[:] = 1e20  # the float32 sum of squares overflows; the norm does not
    assert clip_grad_norm(model, 1.0) == pytest.approx(math.sqrt(5) * 1e20, rel=1e-6)
    assert np.linalg.norm(model.flat_grads.astype(np.float64)) == pytest.approx(1.0, rel=1e-5)
    model.flat_grads[1] = np.nan
    assert math.isnan(clip_grad_norm(model, 1.0))
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(model, 0)


# -- schedules --------------------------------------------------------------------------
def test_step_and_exponential_decay():
    step = StepDecay(step_size=2, gamma=0.5, initial_lr=0.1)
    assert [step(e) for e in range(5)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    exp = ExponentialDecay(0.9, initial_lr=1.0)
    assert [exp(e) for e in range(3)] == pytest.approx([1.0, 0.9, 0.81])


def test_cosine_decay_with_warmup():
    cosine = CosineDecay(total_epochs=6, warmup_epochs=2, min_lr=0.0, initial_lr=0.3)
    # warm-up 0.1, 0.2; then cos over 4 epochs: 0.3, 0.3(1+cos(pi/4))/2, 0.15, ...
    expected = [0.1, 0.2, 0.3, 0.15 * (1 + math.cos(math.pi / 4)), 0.15,
                0.15 * (1 + math.cos(3 * math.pi / 4)), 0.0, 0.0]
    assert [cosine(e) for e in range(8)] == pytest.approx(expected, abs=1e-15)
    assert CosineDecay(4, min_lr=0.01, initial_lr=0.1)(0) == 0.1


def test_schedule_errors():
    with pytest.raises(ValueError, match="has no initial_lr"):
        StepDecay(2)(0)
    with pytest.raises(ValueError, match="epoch must be an integer >= 0"):
        StepDecay(2, initial_lr=0.1)(-1)
    with pytest.raises(ValueError, match="step_size must be a positive integer"):
        StepDecay(0)
    with pytest.raises(ValueError, match="warmup_epochs must be an integer in"):
        CosineDecay(3, warmup_epochs=3)
    with pytest.raises(ValueError, match="gamma must be in"):
        ExponentialDecay(0)
    with pytest.raises(ValueError, match="factor must be in"):
        ReduceLROnPlateau(factor=1.0)
    with pytest.raises(ValueError, match="mode must be"):
        ReduceLROnPlateau(mode="lowest")
    with pytest.raises(ValueError, match="patience must be an integer >= 0"):
        ReduceLROnPlateau(patience=-1)


def test_reduce_on_plateau_patience_cooldown_and_floor():
    plateau = ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_lr=0.02, min_delta=0)
    lr, seen = 0.1, []
    for value in [1.0, 0.9, 0.9, 0.95, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]:
        lr = plateau.step(value, lr)
        seen.append(lr)
    # two bad epochs -> 0.05, one cooldown epoch, two bad -> 0.025, cooldown, two -> floor
    assert seen == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025,
                                  0.02, 0.02])
    assert ReduceLROnPlateau(monitor="val_accuracy").mode == "max"
    maximise = ReduceLROnPlateau(monitor="val_accuracy", patience=1, factor=0.1)
    assert maximise.step(0.5, 1.0) == 1.0 and maximise.step(0.6, 1.0) == 1.0
    assert maximise.step(0.55, 1.0) == pytest.approx(0.1)


# -- L2 regularisation in the loss -----------------------------------------------------
def l2_model(l2):
    return Sequential([Dense(3, 4), ReLU(), Dense(4, 2)], loss="cross_entropy",
                      dtype="float64", seed=3, l2=l2)


def test_l2_adds_half_lambda_sum_of_squared_weights_and_lambda_w_to_gradients():
    x = np.random.default_rng(0).standard_normal((6, 3))
    y = np.array([0, 1, 1, 0, 1, 0])
    plain, regular = l2_model(0.0), l2_model(0.3)
    base = plain.loss_and_grad(x, y)
    value = regular.loss_and_grad(x, y)
    weights = [regular.layers[i].params["W"] for i in (0, 2)]
    assert value == pytest.approx(base + 0.15 * sum(float((w ** 2).sum()) for w in weights),
                                  rel=1e-12)
    for i in (0, 2):
        np.testing.assert_allclose(regular.layers[i].grads["W"],
                                   plain.layers[i].grads["W"] + 0.3 * weights[i // 2],
                                   rtol=1e-12)
        np.testing.assert_array_equal(regular.layers[i].grads["b"], plain.layers[i].grads["b"])
    assert regular.l2_penalty() == pytest.approx(value - base, rel=1e-12)


def test_l2_gradient_matches_finite_differences():
    model = l2_model(0.7)
    x = np.random.default_rng(1).standard_normal((5, 3))
    y = np.array([1, 0, 1, 1, 0])
    model.loss_and_grad(x, y)
    analytic = model.flat_grads.copy()
    numeric = np.zeros_like(analytic)
    for i in range(model.flat_params.size):
        old = model.flat_params[i]
        values = []
        for shift in (1e-6, -1e-6):
            model.flat_params[i] = old + shift
            values.append(model.loss_and_grad(x, y))
        model.flat_params[i] = old
        numeric[i] = (values[0] - values[1]) / 2e-6
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_l2_is_part_of_the_model_config():
    model = l2_model(0.25)
    config = json.loads(json.dumps(model.get_config()))
    assert config["l2"] == 0.25
    assert Sequential.from_config(config).l2 == 0.25
    del config["l2"]  # descriptions written before l2 existed still load
    assert Sequential.from_config(config).l2 == 0.0
    with pytest.raises(ValueError, match="l2 must be in"):
        l2_model(-0.1)


def test_module_exports():
    for name in ("SGD", "RMSProp", "Adam", "AdamW", "get_optimizer", "from_config",
                 "clip_grad_norm", "StepDecay", "ExponentialDecay", "CosineDecay",
                 "ReduceLROnPlateau"):
        assert hasattr(optim, name)
