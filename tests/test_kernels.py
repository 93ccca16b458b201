"""The fused kernels: the compiled path equals the NumPy reference, both follow the rules of
numnet.reference, and the library (optimisers, Dense + ReLU, the loss, fit, predict) gives
the same results on either path.

Every test that takes the ``path`` fixture runs once per path (``numpy``, and ``numba`` when
numba is installed). Equality is asserted to a few units in the last place: the optimiser
updates repeat the NumPy order of operations (bit for bit on x86-64), while the loss sums
a row in another order. Sizes above ``2 * MIN_PARALLEL`` take the multi-threaded drivers.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import numnet
from numnet import _kernels as K
from numnet import reference
from numnet.gradcheck import check_model
from numnet.layers import Conv2D, Dense, Dropout, Flatten, LeakyReLU, MaxPool2D, ReLU, Tanh
from numnet.losses import CrossEntropy
from numnet.model import Sequential
from numnet.optim import SGD, Adam, AdamW, Optimizer, RMSProp

HAS_NUMBA = importlib.util.find_spec("numba") is not None
PATHS = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(
    not HAS_NUMBA, reason="numba is not installed (pip install 'numnet[fast]')"))]
# small, odd, and large enough for two kernel threads (2 * MIN_PARALLEL = 65,536)
SIZES = (1, 7, 1001, 70_001)
DTYPES = (np.float32, np.float64)


@pytest.fixture(params=PATHS)
def path(request: pytest.FixtureRequest) -> Iterator[str]:
    K.set_fast_path(request.param == "numba")
    assert K.fast_path() == request.param
    yield request.param
    K.set_fast_path(None)


def run_on(path_name: str, fn: Callable[[], Any]) -> Any:
    """``fn()`` with the kernels forced onto one path."""
    K.set_fast_path(path_name == "numba")
    try:
        return fn()
    finally:
        K.set_fast_path(None)


def assert_close(actual: np.ndarray, expected: np.ndarray, ulps: int = 4) -> None:
    """Equal to float rounding: within ``ulps`` units in the last place (NaN equals NaN)."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    np.testing.assert_array_max_ulp(actual, expected, maxulp=ulps)


class FlatModel:
    """What an optimiser sees of a model: flat parameters, gradients and the decay mask."""

    def __init__(self, params: np.ndarray, grads: np.ndarray, mask: np.ndarray) -> None:
        self.flat_params, self.flat_grads, self.decay_mask = params, grads, mask


def problem(size: int, dtype: type, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray],
                                                            np.ndarray]:
    """Parameters, three steps' gradients and a decay mask with both values."""
    rng = np.random.default_rng(seed)
    params: np.ndarray = rng.standard_normal(size).astype(dtype)
    grads = [rng.standard_normal(size).astype(dtype) * dtype(10.0 ** -k) for k in range(3)]
    mask = rng.random(size) < 0.8
    return params, grads, mask


# each case: the optimiser and the kernel call that must reproduce it
OPTIMISERS: dict[str, Callable[[], Optimizer]] = {
    "adam": lambda: Adam(1e-2),
    "adam_wd": lambda: Adam(1e-2, weight_decay=0.1),
    "adam_wd_all": lambda: Adam(1e-2, weight_decay=0.1, decay_all=True),
    "adamw": lambda: AdamW(1e-2, weight_decay=0.1),
    "adamw_all": lambda: AdamW(1e-2, betas=(0.8, 0.99), weight_decay=0.1, decay_all=True),
    "sgd": lambda: SGD(0.1),
    "sgd_wd": lambda: SGD(0.1, weight_decay=0.01),
    "momentum": lambda: SGD(0.1, momentum=0.9),
    "nesterov_wd": lambda: SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "rmsprop": lambda: RMSProp(1e-2),
    "rmsprop_centered": lambda: RMSProp(1e-2, centered=True, weight_decay=0.01),
    "rmsprop_momentum": lambda: RMSProp(1e-2, momentum=0.9, decay_all=True, weight_decay=0.1),
    "rmsprop_all": lambda: RMSProp(1e-2, alpha=0.9, eps=1e-6, momentum=0.5, centered=True),
}


def kernel_step(opt: Optimizer, model: FlatModel, state: dict[str, np.ndarray], step: int,
                backup: np.ndarray | None = None, work: list[np.ndarray] | None = None) -> bool:
    """One step of ``opt``'s rule through the kernels, with ``state`` as its moments."""
    p, g = model.flat_params, model.flat_grads
    decay = None if opt.decay_all or model.decay_mask.all() else \
        model.decay_mask.astype(p.dtype)
    common: dict[str, Any] = {"weight_decay": opt.weight_decay, "decay": decay, "backup": backup,
              "work": work}
    if isinstance(opt, Adam):
        return K.adam_step(p, g, state["exp_avg"], state["exp_avg_sq"], lr=opt.lr,
                           betas=opt.betas, eps=opt.eps, step=step,
                           decoupled=isinstance(opt, AdamW), **common)
    if isinstance(opt, SGD):
        return K.sgd_step(p, g, state.get("momentum_buffer"), lr=opt.lr,
                          momentum=opt.momentum, nesterov=opt.nesterov, first_step=step == 1,
                          **common)
    assert isinstance(opt, RMSProp)
    return K.rmsprop_step(p, g, state["square_avg"], state.get("grad_avg"),
                          state.get("momentum_buffer"), lr=opt.lr, alpha=opt.alpha,
                          eps=opt.eps, momentum=opt.momentum, **common)


def run_kernel(name: str, size: int, dtype: type) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    params, grads, mask = problem(size, dtype)
    opt = OPTIMISERS[name]()
    model = FlatModel(params, np.empty_like(params), mask)
    state = {key: np.zeros_like(params) for key in opt.state_names}
    work: list[np.ndarray] = []
    for step, g in enumerate(grads, start=1):
        np.copyto(model.flat_grads, g)
        assert kernel_step(opt, model, state, step, work=work)
    return params, state


@pytest.mark.parametrize("name", sorted(OPTIMISERS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
def test_optimiser_class_equals_its_kernel(path: str, name: str, dtype: type,
                                           size: int) -> None:
    """The plumbing: the class passes its coefficients, masks and state to the kernel."""
    params, grads, mask = problem(size, dtype)
    opt = OPTIMISERS[name]()
    model = FlatModel(params.copy(), np.empty_like(params), mask)
    for g in grads:
        np.copyto(model.flat_grads, g)
        opt.step(model)
    got, state = run_kernel(name, size, dtype)
    assert_close(got, model.flat_params)
    for key, value in opt.state.items():
        assert_close(state[key], value)


@pytest.mark.skipif(not HAS_NUMBA, reason="numba is not installed")
@pytest.mark.parametrize("name", sorted(OPTIMISERS))
@pytest.mark.parametrize("size", (7, 70_001))
def test_compiled_update_is_bitwise_the_reference(name: str, size: int) -> None:
    ref = run_on("numpy", lambda: run_kernel(name, size, np.float32))
    fast = run_on("numba", lambda: run_kernel(name, size, np.float32))
    np.testing.assert_array_equal(fast[0], ref[0])


@pytest.mark.parametrize("name", ["adam", "adamw", "nesterov_wd", "rmsprop_all"])
@pytest.mark.parametrize("size", (5, 70_001))
def test_update_saves_backup_and_reports_non_finite(path: str, name: str, size: int) -> None:
    params, grads, mask = problem(size, np.float32)
    opt = OPTIMISERS[name]()
    before = params.copy()
    grad = grads[0].copy()
    grad[size // 2] = np.nan
    if size > 5:
        grad[-1] = np.inf
    model = FlatModel(params, grad, mask)
    state = {key: np.zeros_like(params) for key in opt.state_names}
    backup = np.full_like(params, -1.0)
    assert not kernel_step(opt, model, state, 1, backup=backup)
    np.testing.assert_array_equal(backup, before)
    assert np.isnan(params[size // 2])
    np.copyto(model.flat_grads, grads[0])  # a finite gradient passes the check
    np.copyto(params, before)
    state = {key: np.zeros_like(params) for key in opt.state_names}
    assert kernel_step(opt, model, state, 1, backup=backup)


def test_overflowing_update_is_reported(path: str) -> None:
    params = np.full(9, 3e38, dtype=np.float32)
    grads = np.full(9, -1.0, dtype=np.float32)
    model = FlatModel(params, grads, np.ones(9, dtype=bool))
    state = {"momentum_buffer": np.zeros(9, dtype=np.float32)}
    # 3e38 + 1e38 overflows float32
    assert not kernel_step(SGD(1e38), model, state, 1)
    assert np.isinf(params).all()


def test_unchecked_update_returns_true(path: str) -> None:
    p = np.array([1.0, np.nan], dtype=np.float32)
    assert K.sgd_step(p, np.ones(2, dtype=np.float32), None, lr=0.1, check=False)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(DTYPES))
def test_adam_paths_agree_on_any_values(data: st.DataObject, dtype: type) -> None:
    """Any finite parameters and gradients, including zeros, tiny and huge values."""
    size = data.draw(st.integers(1, 300))
    elements = st.floats(-1e6, 1e6, width=32 if dtype is np.float32 else 64)
    params: np.ndarray = data.draw(hnp.arrays(dtype, size, elements=elements))
    grads = data.draw(hnp.arrays(dtype, size, elements=elements))
    mask = data.draw(hnp.arrays(np.bool_, size))
    wd = data.draw(st.sampled_from([0.0, 0.01]))
    decoupled = data.draw(st.booleans())

    def run() -> tuple[np.ndarray, ...]:
        p, m, v = params.copy(), np.zeros_like(params), np.zeros_like(params)
        for step in (1, 2):
            K.adam_step(p, grads, m, v, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, step=step,
                        weight_decay=wd, decoupled=decoupled, decay=mask.astype(dtype))
        return p, m, v

    if not HAS_NUMBA:
        pytest.skip("numba is not installed")
    for fast, ref in zip(run_on("numba", run), run_on("numpy", run), strict=True):
        assert_close(fast, ref)


@pytest.fixture
def two_threads() -> Iterator[None]:
    if not HAS_NUMBA:
        pytest.skip("numba is not installed")
    K.set_fast_path(True)
    yield
    K.set_kernel_threads(None)
    K.set_fast_path(None)


def on_threads(threads: int, fn: Callable[[], Any]) -> Any:
    K.set_kernel_threads(threads)
    return fn()


@pytest.mark.parametrize("name", ["adamw", "nesterov_wd", "rmsprop_all"])
def test_parallel_updates_equal_serial(two_threads: None, name: str) -> None:
    """The ``prange`` drivers split the vectors, and nothing else (float32: each driver
    compiles once per dtype, and the loop bodies are the serial ones)."""
    serial = on_threads(1, lambda: run_kernel(name, 70_001, np.float32))
    split = on_threads(2, lambda: run_kernel(name, 70_001, np.float32))
    np.testing.assert_array_equal(split[0], serial[0])
    for key, value in serial[1].items():
        np.testing.assert_array_equal(split[1][key], value)


def test_parallel_layer_kernels_equal_serial(two_threads: None) -> None:
    rng = np.random.default_rng(6)
    y = rng.standard_normal((700, 200)).astype(np.float32)
    b = rng.standard_normal(200).astype(np.float32)
    g = rng.standard_normal((700, 200)).astype(np.float32)
    index = rng.permutation(700)[:500]

    def run() -> tuple[np.ndarray, ...]:
        act = K.bias_act(y.copy(), b, "leaky_relu", 0.1)
        col_sum = np.empty(200, dtype=np.float32)
        grad = K.relu_backward(g, act, 0.1, bias_grad=col_sum)
        rows = K.gather_rows(y, index, np.empty((500, 200), dtype=np.float32))
        bad = y.copy()
        bad[650, 3] = np.inf
        return act, grad, col_sum, rows, np.array([K.all_finite(y), K.all_finite(bad)])

    serial, split = on_threads(1, run), on_threads(2, run)
    for a, b_ in zip(split, serial, strict=True):
        np.testing.assert_allclose(a, b_, rtol=1e-5, atol=1e-4)
    assert list(split[-1]) == [True, False]


def test_kernel_threads_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(K.THREADS_ENV_VAR, "2")
    K.set_kernel_threads(None)
    assert K.kernel_threads() == 2
    K.set_kernel_threads(1)
    assert K.kernel_threads() == 1
    K.set_kernel_threads(None)
    monkeypatch.setenv(K.THREADS_ENV_VAR, "many")
    with pytest.raises(ValueError, match="NUMNET_KERNEL_THREADS='many'"):
        K.kernel_threads()
    monkeypatch.delenv(K.THREADS_ENV_VAR)
    K.set_kernel_threads(None)
    assert K.kernel_threads() == 1
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="integer >= 1"):
            K.set_kernel_threads(bad)  # type: ignore[arg-type]


# -- layers and loss ------------------------------------------------------------------------


@pytest.mark.parametrize("activation,alpha", [("linear", 0.0), ("relu", 0.0),
                                              ("leaky_relu", 0.1)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (129, 257), (600, 256)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_bias_act(path: str, activation: str, alpha: float, dtype: type,
                  shape: tuple[int, int], with_bias: bool) -> None:
    rng = np.random.default_rng(1)
    y: np.ndarray = rng.standard_normal(shape).astype(dtype)
    y.flat[::5] = 0
    y.flat[3::11] = np.nan
    bias: np.ndarray | None = rng.standard_normal(shape[1]).astype(dtype) if with_bias else None
    t = y + bias if with_bias else y.copy()
    expected = {"linear": t, "relu": np.maximum(t, 0),
                "leaky_relu": np.where(t > 0, t, t * dtype(alpha))}[activation]
    out = K.bias_act(y, bias, activation, alpha)
    assert out is y
    assert_close(y, expected, ulps=0)


@pytest.mark.parametrize("alpha", [0.0, 0.2])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
def test_relu_backward(path: str, alpha: float, dtype: type, size: int) -> None:
    rng = np.random.default_rng(2)
    x: np.ndarray = rng.standard_normal((size, 3)).astype(dtype)
    x[::4] = 0
    g: np.ndarray = rng.standard_normal((size, 3)).astype(dtype)
    expected = np.where(x > 0, g, g * dtype(alpha))
    assert_close(K.relu_backward(g, x, alpha), expected, ulps=0)
    in_place = g.copy()
    bias_grad: np.ndarray = np.full(3, np.nan, dtype=dtype)
    assert K.relu_backward(in_place, x, alpha, out=in_place, bias_grad=bias_grad) is in_place
    assert_close(in_place, expected, ulps=0)
    tol = 1e-5 if dtype is np.float32 else 1e-13
    np.testing.assert_allclose(bias_grad, expected.sum(axis=0), rtol=tol, atol=tol * size)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (128, 10), (33, 1000)])
@pytest.mark.parametrize("weighted", [False, True])
def test_softmax_cross_entropy_equals_the_loss(path: str, dtype: type, shape: tuple[int, int],
                                               weighted: bool) -> None:
    rng = np.random.default_rng(3)
    n, c = shape
    z: np.ndarray = (rng.standard_normal(shape) * 5).astype(dtype)
    z[0, 0] = 1e4  # log-sum-exp keeps it finite
    labels = rng.integers(0, c, n)
    w: np.ndarray | None = rng.random(n).astype(dtype) if weighted else None
    loss = CrossEntropy()
    z[-1, :] = z[-1, 0]  # a tie: the first of equal maxima counts, as np.argmax
    expected = loss.forward(z, labels, w)
    expected_grad = loss.backward()
    grad = np.full_like(z, np.nan)
    got, correct = K.softmax_cross_entropy(z, labels, w, grad)
    tol = 2e-6 if dtype is np.float32 else 1e-14
    assert got == pytest.approx(expected, rel=tol, abs=tol)
    np.testing.assert_allclose(grad, expected_grad, rtol=10 * tol, atol=tol / n)
    assert correct == np.count_nonzero(z.argmax(axis=1) == labels)
    assert K.softmax_cross_entropy(z, labels, w) == (got, correct)  # no gradient asked for


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_softmax_cross_entropy_of_non_finite_logits_is_not_finite(path: str,
                                                                 bad: float) -> None:
    z = np.zeros((4, 3), dtype=np.float32)
    z[2, 2] = bad  # the label of row 2: -inf there is an infinite loss
    grad = np.empty_like(z)
    loss, _ = K.softmax_cross_entropy(z, np.array([0, 1, 2, 0]), None, grad)
    assert not np.isfinite(loss)


@pytest.mark.parametrize("row_shape", [(5,), (784,), (1, 4, 4)])
@pytest.mark.parametrize("batch", [1, 7, 128, 700])
def test_gather_rows(path: str, row_shape: tuple[int, ...], batch: int) -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1000,) + row_shape).astype(np.float32)
    index = rng.permutation(1000)[:batch]
    out = np.full((batch + 3,) + row_shape, np.nan, dtype=np.float32)
    got = K.gather_rows(x, index, out)
    assert got.shape == (batch,) + row_shape and np.shares_memory(got, out)
    np.testing.assert_array_equal(got, x[index])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
def test_all_finite(path: str, dtype: type, size: int) -> None:
    x: np.ndarray = np.random.default_rng(5).standard_normal((size, 2)).astype(dtype)
    assert K.all_finite(x)
    x[-1, -1] = np.finfo(dtype).max  # its square overflows: still finite
    assert K.all_finite(x)
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[size // 2, 0] = bad
        assert not K.all_finite(y)


def test_strided_arrays(path: str) -> None:
    """Views that are not C-contiguous give the same results (the NumPy path takes them)."""
    rng = np.random.default_rng(7)
    base = rng.standard_normal((300, 400)).astype(np.float32)
    y = base[:, ::2]  # (300, 200), every other column
    bias = rng.standard_normal(200).astype(np.float32)
    expected = np.maximum(y + bias, 0)
    assert K.bias_act(y, bias, "relu") is y
    np.testing.assert_array_equal(y, expected)
    g = rng.standard_normal((200, 300)).astype(np.float32).T  # (300, 200), Fortran order
    np.testing.assert_array_equal(K.relu_backward(g, y), np.where(y > 0, g, 0))
    index = rng.permutation(300)[:100]
    np.testing.assert_array_equal(K.gather_rows(y, index, np.empty((100, 200), np.float32)),
                                  y[index])
    assert K.all_finite(y)
    base[5, 6] = np.nan
    assert not K.all_finite(base[:, ::2])


def channels_last(shape: tuple[int, int, int, int], dtype: type, seed: int) -> np.ndarray:
    """Normal values as ``(N, C, H, W)`` stored ``(N, H, W, C)``, as a Conv2D's output."""
    n, c, h, w = shape
    rng = np.random.default_rng(seed)
    x: np.ndarray = rng.standard_normal((n, h, w, c)).astype(dtype)
    x.flat[::5] = 0
    return x.transpose(0, 3, 1, 2)


def test_memory_order() -> None:
    x = channels_last((2, 3, 4, 5), np.float32, 0)
    views = K.memory_order(x, np.empty_like(x))
    assert views is not None
    assert all(v.flags.c_contiguous and v.shape == (2, 4, 5, 3) for v in views)
    assert np.shares_memory(views[0], x)
    plain = np.zeros((2, 3))
    assert K.memory_order(plain, plain)[0] is plain  # type: ignore[index]
    assert K.memory_order(x, np.ascontiguousarray(x)) is None  # two layouts
    assert K.memory_order(x[:, :, ::2]) is None  # not dense
    assert K.memory_order(plain, plain.T.copy()) is None  # two shapes
    ones = np.ones((4, 1, 3, 1), np.float32)[:, :, ::-1]  # a negative stride
    assert K.memory_order(ones) is None


@pytest.mark.parametrize("activation,alpha", [("linear", 0.0), ("relu", 0.0),
                                              ("leaky_relu", 0.1)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 5, 4, 7), (128, 32, 26, 26)])
def test_activate_keeps_the_layout(path: str, activation: str, alpha: float, dtype: type,
                                   shape: tuple[int, int, int, int]) -> None:
    x = channels_last(shape, dtype, 1)
    x.flat[3::11] = np.nan  # type: ignore[misc]
    expected = {"linear": x.copy(), "relu": np.maximum(x, 0),
                "leaky_relu": np.where(x > 0, x, x * dtype(alpha))}[activation]
    out = K.activate(x, activation, alpha)
    assert out.strides == x.strides  # channels-last, as the input
    assert_close(out, expected, ulps=0)
    strided = x[:, :, ::2]  # no dense layout: the NumPy path, same values
    assert_close(K.activate(strided, activation, alpha), expected[:, :, ::2], ulps=0)


@pytest.mark.parametrize("alpha", [0.0, 0.2])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 5, 4, 7), (128, 32, 26, 26)])
def test_relu_backward_keeps_the_layout(path: str, alpha: float, dtype: type,
                                        shape: tuple[int, int, int, int]) -> None:
    x, g = channels_last(shape, dtype, 2), channels_last(shape, dtype, 3)
    expected = np.where(x > 0, g, g * dtype(alpha))
    out = K.relu_backward(g, x, alpha)
    assert out.strides == g.strides
    assert_close(out, expected, ulps=0)
    mixed = np.ascontiguousarray(g)  # another layout than x: the NumPy path
    assert_close(K.relu_backward(mixed, x, alpha), expected, ulps=0)


@pytest.mark.parametrize("x", [np.array(-1.5, np.float32), np.array([[-1.0, 2.0]], ">f4"),
                               np.array([[-1.0, 2.0]], ">f8").T],
                         ids=["0-d", "big-endian", "big-endian-transposed"])
def test_activations_of_arrays_numba_cannot_view_as_rows(path: str, x: np.ndarray) -> None:
    """What the compiled kernels cannot take (no rows, foreign byte order) runs in NumPy,
    as ReLU's np.maximum did, on either path."""
    expected = np.where(x > 0, x, x * x.dtype.type(0.1))
    np.testing.assert_array_equal(K.activate(x, "leaky_relu", 0.1), expected)
    g = np.ones_like(x)
    np.testing.assert_array_equal(K.relu_backward(g, x, 0.1),
                                  np.where(x > 0, g, g * x.dtype.type(0.1)))


# -- the switch ------------------------------------------------------------------------------


@pytest.fixture
def fresh_switch(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    K.set_fast_path(None)
    yield monkeypatch
    monkeypatch.delenv(K.ENV_VAR, raising=False)
    K.set_fast_path(None)


@pytest.mark.parametrize("value", ["0", "off", "False", "numpy"])
def test_environment_turns_the_fast_path_off(fresh_switch: pytest.MonkeyPatch,
                                             value: str) -> None:
    fresh_switch.setenv(K.ENV_VAR, value)
    K.set_fast_path(None)
    assert K.fast_path() == "numpy"


def test_automatic_choice_follows_numba(fresh_switch: pytest.MonkeyPatch) -> None:
    fresh_switch.delenv(K.ENV_VAR, raising=False)
    K.set_fast_path(None)
    assert K.fast_path() == ("numba" if HAS_NUMBA else "numpy")


@pytest.mark.skipif(not HAS_NUMBA, reason="numba is not installed")
def test_automatic_mode_imports_numba_for_large_calls_only() -> None:
    """A small model never pays numba's start-up; the first large call does."""
    code = (
        "import sys, numpy as np\n"
        "from numnet import _kernels as K\n"
        "def step(n):\n"
        "    p = np.ones(n, np.float32)\n"
        "    K.adam_step(p, p.copy(), np.zeros_like(p), np.zeros_like(p), lr=1e-3,\n"
        "                betas=(0.9, 0.999), eps=1e-8, step=1)\n"
        "step(K.AUTO_MIN_SIZE - 1)\n"
        "print(K.fast_path(), 'numba' in sys.modules)\n"
        "step(K.AUTO_MIN_SIZE)\n"
        "print('numba' in sys.modules)\n"
        "from numnet._kernels import numba_kernels as NK\n"
        "calls = []\n"
        "NK.sgd = lambda *args: calls.append(args[0].size) or True\n"
        "with K.model_scope(K.AUTO_MIN_SIZE):\n"
        "    K.sgd_step(np.ones(5, np.float32), np.ones(5, np.float32), None, lr=0.1)\n"
        "K.sgd_step(np.ones(6, np.float32), np.ones(6, np.float32), None, lr=0.1)\n"
        "with K.model_scope(10):\n"
        "    big = np.ones(K.AUTO_MIN_SIZE, np.float32)\n"
        "    K.sgd_step(big, big.copy(), None, lr=0.1)\n"
        "print(calls)\n")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    env.pop(K.ENV_VAR, None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    # a small call of a large model runs compiled, the same call outside it does not, and
    # a large call of a small model does not either
    assert out.stdout.split() == ["numba", "False", "True", "[5]"]


def test_function_overrides_environment(fresh_switch: pytest.MonkeyPatch) -> None:
    fresh_switch.setenv(K.ENV_VAR, "1")
    K.set_fast_path(False)
    assert K.fast_path() == "numpy"


def test_unknown_environment_value_is_an_error(fresh_switch: pytest.MonkeyPatch) -> None:
    fresh_switch.setenv(K.ENV_VAR, "fastest")
    K.set_fast_path(None)
    with pytest.raises(ValueError, match=r"NUMNET_FAST='fastest'.*expected 0"):
        K.fast_path()


def test_missing_numba(fresh_switch: pytest.MonkeyPatch) -> None:
    """Without numba: auto falls back silently, ``1`` warns, ``set_fast_path(True)`` raises."""
    def no_numba() -> None:
        K._State.numba_error = "ModuleNotFoundError: No module named 'numba'"
        return None

    fresh_switch.setattr(K, "load_numba", no_numba)
    fresh_switch.setattr(K, "numba_installed", lambda: False)
    K.set_fast_path(None)
    assert K.fast_path() == "numpy"
    fresh_switch.setenv(K.ENV_VAR, "1")
    K.set_fast_path(None)
    with pytest.warns(RuntimeWarning, match="numba cannot be used"):
        assert K.fast_path() == "numpy"
    fresh_switch.delenv(K.ENV_VAR)
    with pytest.raises(ImportError, match=r"numnet\[fast\]"):
        K.set_fast_path(True)
    assert K.fast_path() == "numpy"


def test_broken_numba_falls_back_with_a_warning(fresh_switch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        K._State.numba_error = "ImportError: Numba needs NumPy 2.3 or less"
        return None

    fresh_switch.delenv(K.ENV_VAR, raising=False)
    fresh_switch.setattr(K, "load_numba", broken)
    fresh_switch.setattr(K, "numba_installed", lambda: True)
    fresh_switch.setattr(K._State, "compiled", None)
    K.set_fast_path(None)
    p = np.ones(K.AUTO_MIN_SIZE, dtype=np.float32)
    with pytest.warns(RuntimeWarning, match="Numba needs NumPy"):
        assert K.sgd_step(p, p.copy(), None, lr=0.5)
    assert K.fast_path() == "numpy"
    np.testing.assert_array_equal(p, 0.5)


def test_set_fast_path_rejects_other_values() -> None:
    with pytest.raises(TypeError, match="True, False or None"):
        K.set_fast_path("yes")  # type: ignore[arg-type]


def test_numba_is_not_imported_by_numnet() -> None:
    """``import numnet`` stays light: numba loads at the first kernel call only."""
    code = "import sys, numnet; print('numba' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    assert out.stdout.strip() == "False"


def test_switch_is_public() -> None:
    assert numnet.set_fast_path is K.set_fast_path and numnet.fast_path is K.fast_path


# -- the library on each path ---------------------------------------------------------------

REFERENCE_RULES: dict[str, Callable[..., np.ndarray]] = {
    "adam": reference.adam_step, "sgd": reference.sgd_step, "rmsprop": reference.rmsprop_step}


def reference_step(opt: Optimizer, p: np.ndarray, g: np.ndarray, state: dict[str, Any],
                   decay: np.ndarray) -> np.ndarray:
    """One step of ``opt``'s rule as numnet.reference writes it (float64, line by line)."""
    config = opt.get_config()
    name = "adam" if isinstance(opt, Adam) else config["name"]
    options = {key: value for key, value in config.items()
               if key not in ("name", "decay_all")}
    if isinstance(opt, Adam):
        options["betas"] = tuple(options["betas"])
        options["decoupled"] = isinstance(opt, AdamW)
    return REFERENCE_RULES[name](p, g, state, decay=1.0 if opt.decay_all else decay,
                                 **options)


@pytest.mark.parametrize("name", sorted(OPTIMISERS))
def test_optimiser_follows_the_reference_rule(path: str, name: str) -> None:
    """Every optimiser, on this path, takes the steps numnet.reference writes out."""
    params, grads, mask = problem(70_001, np.float64)
    opt = OPTIMISERS[name]()
    model = FlatModel(params.copy(), np.empty_like(params), mask)
    expected, state = params.copy(), dict[str, Any]()
    for g in grads:
        np.copyto(model.flat_grads, g)
        opt.step(model)
        expected = reference_step(opt, expected, g, state, mask.astype(np.float64))
    np.testing.assert_allclose(model.flat_params, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["adam", "adamw", "nesterov_wd", "rmsprop_all", "sgd"])
def test_checked_step_backs_up_and_reports(path: str, name: str) -> None:
    """Optimizer.checked_step: the weights before the step in ``backup``, and False for a
    NaN gradient; the parameters are those of a plain step."""
    params, grads, mask = problem(70_001, np.float32)
    opt, plain = OPTIMISERS[name](), OPTIMISERS[name]()
    model = FlatModel(params.copy(), grads[0].copy(), mask)
    twin = FlatModel(params.copy(), grads[0].copy(), mask)
    backup = np.empty_like(params)
    assert opt.checked_step(model, backup)
    plain.step(twin)
    np.testing.assert_array_equal(backup, params)
    np.testing.assert_array_equal(model.flat_params, twin.flat_params)
    model.flat_grads[123] = np.nan
    before = model.flat_params.copy()
    assert not opt.checked_step(model, backup)
    np.testing.assert_array_equal(backup, before)


def mlp(seed: int = 0, dtype: Any = "float32", hidden: int = 32) -> Sequential:
    """Every pair the fused path runs (Dense + ReLU, Dense + LeakyReLU) and the unfused
    layers around them."""
    return Sequential([Dense(12, hidden), ReLU(), Dropout(0.2), Dense(hidden, hidden),
                       LeakyReLU(0.1), Dense(hidden, 16), Tanh(), Dense(16, 4)],
                      loss="cross_entropy", seed=seed, dtype=dtype)


def data(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 12)).astype(np.float32)
    return X, (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int) + 2 * (X[:, 3] > 0.5)


def fit_on(path_name: str, **options: Any) -> tuple[Sequential, Any]:
    X, y = data()
    model = mlp()
    history = run_on(path_name, lambda: model.fit(
        X, y, epochs=3, batch_size=32, seed=1, verbose=0, health=False, **options))
    return model, history


@pytest.mark.skipif(not HAS_NUMBA, reason="numba is not installed")
@pytest.mark.parametrize("optimizer", ["adam", "adamw", "nesterov", "rmsprop"])
def test_fit_gives_the_same_model_on_both_paths(optimizer: str) -> None:
    """fit on the compiled path equals fit on the NumPy path to float rounding."""
    ref, ref_history = fit_on("numpy", optimizer=optimizer)
    fast, fast_history = fit_on("numba", optimizer=optimizer)
    np.testing.assert_allclose(fast.flat_params, ref.flat_params, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(fast_history["loss"], ref_history["loss"], rtol=1e-5)
    X, y = data(seed=3)
    np.testing.assert_allclose(run_on("numba", lambda: fast.predict_logits(X)),
                               run_on("numpy", lambda: ref.predict_logits(X)),
                               rtol=2e-4, atol=2e-4)


def assert_fused_equals_layers(model: Sequential, x: np.ndarray, g_out: np.ndarray,
                               training: bool) -> None:
    """A model's forward and backward (pairs run as one) give what its layers give called
    one after the other, and the caller's gradient is left alone."""
    out = model.forward(x, training=training)
    g_copy = g_out.copy()
    dx = model.backward(g_out)
    assert dx is not None
    fused_grads = model.flat_grads.copy()
    np.testing.assert_array_equal(g_out, g_copy)
    h = x
    for layer in model.layers:
        h = layer.forward(h, training=training)
    assert all(layer.activated is None for layer in model.layers)
    np.testing.assert_allclose(out, h, rtol=1e-13, atol=1e-13)
    grad = g_out
    for layer in reversed(model.layers):
        grad = layer.backward(grad)
    np.testing.assert_allclose(dx, grad, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(fused_grads, model.flat_grads, rtol=1e-12, atol=1e-13)


def test_fused_pairs_equal_the_layers_one_by_one(path: str) -> None:
    rng = np.random.default_rng(4)
    assert_fused_equals_layers(mlp(dtype="float64"), rng.standard_normal((9, 12)),
                               rng.standard_normal((9, 4)), training=False)


@pytest.mark.parametrize("training", [True, False])
def test_gradients_of_the_fused_model(path: str, training: bool) -> None:
    X, y = data(n=7)
    check_model(mlp(hidden=6), X, y, training=training)


def cnn(dtype: Any = "float64") -> Sequential:
    """The pairs a CNN runs as one (Conv2D + ReLU, Conv2D + LeakyReLU) between pools."""
    return Sequential([Conv2D(2, 3, 3, padding=1), ReLU(), MaxPool2D(2), Conv2D(3, 4, 2),
                       LeakyReLU(0.1), Flatten(), Dense(36, 5)], loss="cross_entropy",
                      seed=2, dtype=dtype, input_shape=(2, 8, 8))


@pytest.mark.parametrize("training", [True, False])
def test_fused_conv_pairs_equal_the_layers_one_by_one(path: str, training: bool) -> None:
    model = cnn()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 2, 8, 8))
    model.forward(x, training=training)
    assert all(model.layers[i].activated is not None for i in (0, 3))
    assert_fused_equals_layers(model, x, rng.standard_normal((3, 5)), training)


@pytest.mark.parametrize("training", [True, False])
def test_gradients_of_the_fused_cnn(path: str, training: bool) -> None:
    rng = np.random.default_rng(6)
    check_model(cnn(), rng.standard_normal((3, 2, 8, 8)), rng.integers(0, 5, 3),
                training=training)


def assert_first_layer_grads_without_input_grad(model: Sequential, x: np.ndarray) -> None:
    """fit's backward stops at the first layer with weights (fused with its activation):
    the gradients equal the full pass's."""
    ones = np.ones_like(model.forward(x, training=True))
    model.backward(ones, input_grad=False)
    partial = model.flat_grads.copy()
    model.forward(x, training=True)
    model.backward(ones)
    np.testing.assert_array_equal(partial, model.flat_grads)


def test_the_first_conv_fused_skips_the_input_gradient(path: str) -> None:
    assert_first_layer_grads_without_input_grad(
        cnn(), np.random.default_rng(7).standard_normal((4, 2, 8, 8)))


class DoubledConv2D(Conv2D):
    """A user's subclass with maths of its own: ``2 conv(x)``."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return 2 * super().forward(x, training)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return super().backward(2 * grad_out)


class DoubledDense(Dense):
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return 2 * super().forward(x, training)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return super().backward(2 * grad_out)


@pytest.mark.parametrize("layers, shape", [
    ([DoubledConv2D(1, 2, 3, seed=1), ReLU(), Flatten()], (2, 1, 5, 5)),
    ([DoubledDense(3, 4, seed=1), LeakyReLU(0.1)], (4, 3))], ids=["conv", "dense"])
def test_a_subclass_with_its_own_maths_is_not_fused(path: str, layers: list[Any],
                                                   shape: tuple[int, ...]) -> None:
    """The model runs the subclass's forward and backward, not its parent's fused pair."""
    model = Sequential(layers, dtype="float64")
    x = np.random.default_rng(8).standard_normal(shape)
    out = model.forward(x, training=True)
    dx = model.backward(np.ones_like(out))
    h = x
    for layer in model.layers:
        h = layer.forward(h, training=True)
    np.testing.assert_array_equal(out, h)
    grad = np.ones_like(h)
    for layer in reversed(model.layers):
        grad = layer.backward(grad)
    np.testing.assert_array_equal(dx, grad)


def test_the_first_layer_fused_skips_the_input_gradient(path: str) -> None:
    """fit's backward stops at the first Dense (fused with its ReLU): its weight and bias
    gradients equal the full pass's."""
    model = Sequential([Dense(5, 8), ReLU(), Dense(8, 3)], loss="cross_entropy", seed=0,
                       dtype="float64")
    assert_first_layer_grads_without_input_grad(
        model, np.random.default_rng(0).standard_normal((6, 5)))


def test_predict_copies_a_pass_through_model(path: str) -> None:
    """A single block of predictions never aliases the caller's input."""
    x = np.ones((3, 2, 2), dtype=np.float32)
    model = Sequential([Flatten()], loss="mse")
    out = model.predict_logits(x)
    out += 1
    np.testing.assert_array_equal(x, 1)


def test_cross_entropy_gradient_on_each_path(path: str) -> None:
    """The loss computes its gradient with its value: (softmax - onehot) * w / N."""
    rng = np.random.default_rng(5)
    z = rng.standard_normal((11, 4)) * 3
    labels, w = rng.integers(0, 4, 11), rng.random(11) + 0.5
    loss = CrossEntropy()
    value = loss(z, labels, w)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(value, np.mean(-np.log(p[np.arange(11), labels]) * w),
                               rtol=1e-12)
    p[np.arange(11), labels] -= 1
    np.testing.assert_allclose(loss.backward(), p * (w / 11)[:, None], rtol=1e-12,
                               atol=1e-15)


def test_a_diverging_fit_is_undone_on_each_path(path: str) -> None:
    """The guard's backup and check, folded into the update, still roll back a bad step."""
    X, y = data()
    model = mlp()
    model.fit(X, y, epochs=1, batch_size=32, seed=0, verbose=0, health=False)
    before = model.flat_params.copy()
    with pytest.raises(numnet.TrainingDiverged, match="optimiser's update|gradient"):
        model.fit(X, y, epochs=1, batch_size=32, optimizer=SGD(1e38), seed=0, verbose=0,
                  health=False)
    assert np.isfinite(model.flat_params).all()
    assert not np.array_equal(model.flat_params, before)  # the finite steps were kept


def test_an_empty_batch_passes_through_the_fused_pairs(path: str) -> None:
    """A distributed rank with no rows in a batch runs forward and backward on 0 rows: the
    bias gradients are 0."""
    model = mlp()
    out = model._forward_layers(np.empty((0, 12), np.float32), training=True)
    assert out.shape == (0, 4)
    model.flat_grads.fill(1)
    model.backward(np.zeros_like(out), input_grad=False)
    assert not model.layers[0].grads["b"].any() and not model.layers[3].grads["b"].any()
