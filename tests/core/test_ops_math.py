"""Elementwise, linalg, ordering and conversion ops against torch: values, dtypes and gradients
in float64 (rtol 1e-6), broadcasting, and the exceptions torch raises.

Each table row is one op written once as `fn(lib, *tensors)`, run with lib = shardgrad and
lib = torch on the same data.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import shardgrad as sg

RTOL, ATOL = 1e-6, 1e-9


def sample(domain: str, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """Float64 data inside an op's smooth domain (away from kinks and poles)."""
    return np.asarray(_sample(domain, shape, rng), dtype=np.float64)


def _sample(domain: str, shape: tuple, rng: np.random.Generator):
    if domain == "real":
        return rng.standard_normal(shape) * 1.5
    if domain == "pos":
        return rng.uniform(0.2, 3.0, shape)
    if domain == "unit":
        return rng.uniform(-0.9, 0.9, shape)
    if domain == "gt1":
        return rng.uniform(1.2, 3.0, shape)
    if domain == "nonzero":
        return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 2.0, shape)
    if domain == "offhalf":  # keeps rounding away from ties at .5
        return np.floor(rng.uniform(-4, 4, shape)) + rng.uniform(0.05, 0.45, shape) * rng.choice(
            [1, 1.9], shape
        )
    raise ValueError(domain)


def _np(x) -> np.ndarray:
    if isinstance(x, sg.Tensor):
        return np.asarray(x.detach().numpy())
    return x.detach().numpy()


def check(fn, arrays, *, grad: bool = True, seed: int = 0, rtol: float = RTOL, atol: float = ATOL):
    """Run fn on both libraries; compare outputs (values, dtype, shape) and input gradients
    for a random upstream gradient. Returns the shardgrad output."""
    sg_in = [sg.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    th_in = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    s_out, t_out = fn(sg, *sg_in), fn(torch, *th_in)
    s_outs = s_out if isinstance(s_out, tuple) else (s_out,)
    t_outs = t_out if isinstance(t_out, tuple) else (t_out,)
    assert len(s_outs) == len(t_outs)
    for s, t in zip(s_outs, t_outs):
        assert s.dtype.name == str(t.dtype).removeprefix("torch."), (s.dtype, t.dtype)
        assert tuple(s.shape) == tuple(t.shape)
        np.testing.assert_allclose(_np(s), _np(t), rtol=rtol, atol=atol)
    if not grad or not t_outs[0].requires_grad:
        return s_out
    rng = np.random.default_rng(seed + 1)
    go = rng.standard_normal(tuple(t_outs[0].shape))
    s_outs[0].backward(sg.tensor(go))
    t_outs[0].backward(torch.tensor(go))
    for s, t in zip(sg_in, th_in):
        if t.grad is None:
            assert s.grad is None or not np.any(_np(s.grad)), "unexpected gradient"
        else:
            assert s.grad is not None, "missing gradient"
            np.testing.assert_allclose(_np(s.grad), _np(t.grad), rtol=rtol, atol=atol)
    return s_out


# ---------------------------------------------------------------- unary ops
UNARY = {
    "neg": (lambda m, x: m.neg(x), "real"),
    "neg_op": (lambda m, x: -x, "real"),
    "exp": (lambda m, x: m.exp(x), "real"),
    "exp2": (lambda m, x: m.exp2(x), "real"),
    "expm1": (lambda m, x: m.expm1(x), "real"),
    "log": (lambda m, x: m.log(x), "pos"),
    "log2": (lambda m, x: m.log2(x), "pos"),
    "log10": (lambda m, x: m.log10(x), "pos"),
    "log1p": (lambda m, x: m.log1p(x), "pos"),
    "sqrt": (lambda m, x: m.sqrt(x), "pos"),
    "rsqrt": (lambda m, x: m.rsqrt(x), "pos"),
    "reciprocal": (lambda m, x: m.reciprocal(x), "nonzero"),
    "square": (lambda m, x: m.square(x), "real"),
    "abs": (lambda m, x: m.abs(x), "nonzero"),
    "abs_op": (lambda m, x: abs(x), "nonzero"),
    "sin": (lambda m, x: m.sin(x), "real"),
    "cos": (lambda m, x: m.cos(x), "real"),
    "tan": (lambda m, x: m.tan(x), "unit"),
    "sinh": (lambda m, x: m.sinh(x), "real"),
    "cosh": (lambda m, x: m.cosh(x), "real"),
    "tanh": (lambda m, x: m.tanh(x), "real"),
    "asin": (lambda m, x: m.asin(x), "unit"),
    "acos": (lambda m, x: m.acos(x), "unit"),
    "atan": (lambda m, x: m.atan(x), "real"),
    "asinh": (lambda m, x: m.asinh(x), "real"),
    "acosh": (lambda m, x: m.acosh(x), "gt1"),
    "atanh": (lambda m, x: m.atanh(x), "unit"),
    "sigmoid": (lambda m, x: m.sigmoid(x), "real"),
    "relu": (lambda m, x: m.relu(x), "nonzero"),
    "erf": (lambda m, x: m.erf(x), "real"),
    "erfc": (lambda m, x: m.erfc(x), "real"),
    "erfinv": (lambda m, x: m.erfinv(x), "unit"),
    "sign": (lambda m, x: m.sign(x), "nonzero"),
    "floor": (lambda m, x: m.floor(x), "offhalf"),
    "ceil": (lambda m, x: m.ceil(x), "offhalf"),
    "trunc": (lambda m, x: m.trunc(x), "offhalf"),
    "round": (lambda m, x: m.round(x), "offhalf"),
    "round_decimals": (lambda m, x: m.round(x, decimals=2), "real"),
    "frac": (lambda m, x: m.frac(x), "offhalf"),
    "clamp": (lambda m, x: m.clamp(x, -0.5, 0.7), "real"),
    "clamp_min": (lambda m, x: m.clamp(x, min=0.2), "real"),
    "clamp_max": (lambda m, x: m.clamp(x, max=0.2), "real"),
    "clamp_crossed": (lambda m, x: m.clamp(x, min=0.5, max=-0.5), "real"),
    "clip": (lambda m, x: m.clip(x, -1.0, 1.0), "real"),
    "nan_to_num": (lambda m, x: m.nan_to_num(m.log(x - 1.0), nan=2.0, neginf=-3.0), "pos"),
    "pow_scalar": (lambda m, x: x**3, "real"),
    "pow_half": (lambda m, x: m.pow(x, 0.5), "pos"),
    "pow_neg": (lambda m, x: x**-1.5, "pos"),
    "pow_zero": (lambda m, x: x**0, "real"),
    "rpow": (lambda m, x: 2.5**x, "real"),
    "rsub": (lambda m, x: 3 - x, "real"),
    "rdiv": (lambda m, x: 3 / x, "nonzero"),
    "method_exp": (lambda m, x: x.exp().log1p().sqrt(), "real"),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("shape", [(), (5,), (2, 3, 4)])
def test_unary(name, shape):
    fn, domain = UNARY[name]
    rng = np.random.default_rng(abs(hash((name, shape))) % 2**32)
    check(fn, [sample(domain, shape, rng)])


@pytest.mark.parametrize(
    "name", ["exp", "log", "sqrt", "sin", "tanh", "sigmoid", "erf", "atan", "log1p", "rsqrt"]
)
def test_unary_integer_input_promotes_to_default_float(name):
    fn, _ = UNARY[name]
    check(fn, [np.array([1, 2, 3], dtype=np.int64)], grad=False)


def test_unary_float32_stays_float32():
    x = np.linspace(-2, 2, 11).astype(np.float32)
    for name in ("exp", "erf", "sigmoid", "tanh", "erfc", "reciprocal"):
        check(UNARY[name][0], [x], grad=False, rtol=1e-6, atol=1e-7)


def test_erf_family_is_float64_accurate_over_wide_range():
    x = np.concatenate([np.linspace(-8, 8, 4001), [0.0, 1e-300, -1e-8, 0.46875, 4.0, 27.0]])
    for op in ("erf", "erfc"):
        s = getattr(sg, op)(sg.tensor(x)).numpy()
        t = getattr(torch, op)(torch.tensor(x)).numpy()
        np.testing.assert_allclose(s, t, rtol=2e-15, atol=1e-300)
    y = np.concatenate([np.linspace(-0.999999, 0.999999, 4001), 1 - np.logspace(-15, -2, 30)])
    s = sg.erfinv(sg.tensor(y)).numpy()
    np.testing.assert_allclose(s, torch.erfinv(torch.tensor(y)).numpy(), rtol=1e-13)
    special = np.array([np.nan, np.inf, -np.inf, 1.0, -1.0, 1.5])
    np.testing.assert_array_equal(
        sg.erfinv(sg.tensor(special)).numpy(), torch.erfinv(torch.tensor(special)).numpy()
    )
    np.testing.assert_allclose(
        sg.erf(sg.tensor(special)).numpy(), torch.erf(torch.tensor(special)).numpy(), rtol=4e-16
    )


def test_integer_rounding_is_identity_and_round_on_int_raises():
    x = np.array([-3, 0, 7])
    for name in ("floor", "ceil", "trunc", "round"):
        check(lambda m, t, name=name: getattr(m, name)(t), [x], grad=False)
    for lib in (sg, torch):
        with pytest.raises(NotImplementedError):
            lib.round(lib.tensor(x), decimals=1)


def test_nan_and_inf_semantics():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 2.0])
    for fn in (
        lambda m, t: m.relu(t),
        lambda m, t: m.sigmoid(t),
        lambda m, t: m.clamp(t, -1, 1),
        lambda m, t: m.nan_to_num(t),
        lambda m, t: m.nan_to_num(t, nan=1.0, posinf=5.0, neginf=-5.0),
        lambda m, t: m.sign(t),
        lambda m, t: m.maximum(t, m.zeros_like(t)),
        lambda m, t: m.fmax(t, m.zeros_like(t)),
        lambda m, t: m.isnan(t),
        lambda m, t: m.isinf(t),
        lambda m, t: m.isfinite(t),
        lambda m, t: m.isposinf(t),
        lambda m, t: m.isneginf(t),
        lambda m, t: m.signbit(t),
        lambda m, t: m.erf(t),
    ):
        s, t = fn(sg, sg.tensor(x)), fn(torch, torch.tensor(x))
        np.testing.assert_array_equal(_np(s), _np(t))


# ---------------------------------------------------------------- binary ops
BINARY = {
    "add": (lambda m, a, b: a + b, "real", "real"),
    "add_alpha": (lambda m, a, b: m.add(a, b, alpha=2.5), "real", "real"),
    "sub": (lambda m, a, b: a - b, "real", "real"),
    "sub_alpha": (lambda m, a, b: m.sub(a, b, alpha=-0.5), "real", "real"),
    "mul": (lambda m, a, b: a * b, "real", "real"),
    "div": (lambda m, a, b: a / b, "real", "nonzero"),
    "pow": (lambda m, a, b: a**b, "pos", "real"),
    "atan2": (lambda m, a, b: m.atan2(a, b), "real", "nonzero"),
    "maximum": (lambda m, a, b: m.maximum(a, b), "real", "real"),
    "minimum": (lambda m, a, b: m.minimum(a, b), "real", "real"),
    "fmax": (lambda m, a, b: m.fmax(a, b), "real", "real"),
    "fmin": (lambda m, a, b: m.fmin(a, b), "real", "real"),
    "max_binary": (lambda m, a, b: m.max(a, b), "real", "real"),
    "min_binary": (lambda m, a, b: a.min(b), "real", "real"),
    "remainder": (lambda m, a, b: m.remainder(a, b), "real", "nonzero"),
    "mod_op": (lambda m, a, b: a % b, "real", "nonzero"),
    "fmod": (lambda m, a, b: m.fmod(a, b), "real", "nonzero"),
    "div_floor": (lambda m, a, b: m.div(a, b, rounding_mode="floor"), "real", "nonzero"),
    "div_trunc": (lambda m, a, b: m.div(a, b, rounding_mode="trunc"), "real", "nonzero"),
    "lerp_scalar": (lambda m, a, b: m.lerp(a, b, 0.3), "real", "real"),
    "lerp_far": (lambda m, a, b: a.lerp(b, 0.8), "real", "real"),
    "addcmul": (lambda m, a, b: m.addcmul(a, b, b, value=0.5), "real", "real"),
    "addcdiv": (lambda m, a, b: m.addcdiv(a, a, b, value=-2), "real", "nonzero"),
    "float_power": (lambda m, a, b: m.float_power(a, b), "pos", "real"),
    "where": (lambda m, a, b: m.where(a > 0, a, b), "real", "real"),
    "where_scalar": (lambda m, a, b: m.where(b > 0, a, 0.5) * b, "real", "real"),
    "clamp_tensor": (lambda m, a, b: m.clamp(a, min=b), "real", "real"),
    "clamp_tensor_max": (lambda m, a, b: m.clamp(a, max=b), "real", "real"),
    "clamp_tensor_both": (lambda m, a, b: m.clamp(a, min=b - 0.5, max=b + 0.5), "real", "real"),
}

BROADCAST_SHAPES = [
    ((4,), (4,)),
    ((2, 3), (3,)),
    ((3, 1), (1, 4)),
    ((2, 1, 4), (3, 1)),
    ((), (2, 3)),
    ((2, 3), ()),
]


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", BROADCAST_SHAPES, ids=str)
def test_binary_broadcasting(name, shapes):
    fn, da, db = BINARY[name]
    rng = np.random.default_rng(abs(hash((name, shapes))) % 2**32)
    check(fn, [sample(da, shapes[0], rng), sample(db, shapes[1], rng)])


def test_lerp_tensor_weight_and_addcmul_three_way_broadcast():
    rng = np.random.default_rng(0)
    a, b, w = rng.standard_normal((2, 1, 3)), rng.standard_normal((4, 1)), rng.uniform(0, 1, (3,))
    check(lambda m, x, y, z: m.lerp(x, y.expand(2, 4, 3), z), [a, b, w])
    check(lambda m, x, y, z: m.addcmul(x, y, z, value=3), [a, b, w])
    check(lambda m, x, y, z: m.addcdiv(z, x, y + 3.0), [a, b, w])
    np.testing.assert_array_equal(  # lerp reaches both ends exactly
        sg.lerp(sg.tensor(a), sg.tensor(a + 1.0 / 3), 1.0).numpy(), a + 1.0 / 3
    )


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_minimum_split_gradient_on_ties(op):
    a = np.array([1.0, 2.0, 3.0, np.nan, 5.0])
    b = np.array([1.0, 0.0, 4.0, 1.0, np.nan])
    check(lambda m, x, y: getattr(m, op)(x, y), [a, b])


def test_clamp_gradients_at_bounds_and_with_nan():
    x = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, np.nan])
    check(lambda m, t: m.clamp(t, -0.5, 0.5), [x])
    lo, hi = np.array([-0.5, -0.5, 0.5, 0.4, 2.0, 0.0]), np.array([0.5, 0.6, -0.5, 0.5, 1.0, 1.0])
    check(lambda m, t, a, b: m.clamp(t, a, b), [x, lo, hi])


def test_pow_gradient_special_points():
    base = np.array([0.0, 0.0, 0.0, 2.0, -2.0])
    expo = np.array([0.0, 2.0, 3.5, 0.0, 2.0])
    check(lambda m, a, b: a**b, [base, expo])
    check(lambda m, b: 0.0**b, [np.array([0.0, 1.0, 2.5])])
    check(lambda m, a: a**2, [base])


@pytest.mark.parametrize(
    "fn",
    [
        lambda m, a, b: a + b,
        lambda m, a, b: a * 2.5,
        lambda m, a, b: a / b,
        lambda m, a, b: a / 2,
        lambda m, a, b: a // b,
        lambda m, a, b: a % b,
        lambda m, a, b: m.fmod(a, b),
        lambda m, a, b: m.div(a, b, rounding_mode="trunc"),
        lambda m, a, b: a**2,
        lambda m, a, b: m.maximum(a, b),
        lambda m, a, b: a - 1.5,
        lambda m, a, b: m.where(a > b, a, 0.5),
        lambda m, a, b: m.clamp(a, min=0.5),
        lambda m, a, b: m.clamp(a, -2, 2),
        lambda m, a, b: m.atan2(a, b),
        lambda m, a, b: m.square(a),
    ],
)
def test_integer_and_mixed_dtype_results(fn):
    a, b = np.array([-7, -3, 0, 4, 9]), np.array([2, -3, 5, 3, -4])
    check(fn, [a, b], grad=False)
    check(fn, [a.astype(np.float32), b], grad=False)
    check(fn, [a, b.astype(np.float64)], grad=False)


def test_int_division_by_zero_raises_like_torch():
    for fn in (lambda m, a: a // 0, lambda m, a: a % 0, lambda m, a: m.fmod(a, 0)):
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            fn(sg, sg.tensor([1, 2]))
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            fn(torch, torch.tensor([1, 2]))
    check(lambda m, a: a / 0, [np.array([1, -1, 0])], grad=False)


# ---------------------------------------------------------------- predicates and logic
def test_comparisons_logical_and_bitwise():
    rng = np.random.default_rng(3)
    a = rng.integers(-2, 3, (3, 4)).astype(np.float64)
    b = rng.integers(-2, 3, (4,)).astype(np.float64)
    for fn in (
        lambda m, x, y: x == y, lambda m, x, y: x != y, lambda m, x, y: x < y,
        lambda m, x, y: x <= y, lambda m, x, y: x > y, lambda m, x, y: x >= y,
        lambda m, x, y: m.eq(x, 1), lambda m, x, y: m.gt(x, y), lambda m, x, y: x.le(0.5),
        lambda m, x, y: m.logical_and(x, y), lambda m, x, y: m.logical_or(x, y),
        lambda m, x, y: m.logical_xor(x, y), lambda m, x, y: m.logical_not(x),
        lambda m, x, y: (x > 0) & (y > 0), lambda m, x, y: (x > 0) | (y > 0),
        lambda m, x, y: (x > 0) ^ (y > 0), lambda m, x, y: ~(x > 0),
        lambda m, x, y: x.long() & 3, lambda m, x, y: 6 | y.long(), lambda m, x, y: ~x.long(),
        lambda m, x, y: x.long() ^ y.long(), lambda m, x, y: (x > 0) & y.long(),
        lambda m, x, y: m.bitwise_and(x.long(), y.long()), lambda m, x, y: (x > 0) ^ True,
        lambda m, x, y: m.isclose(x, y), lambda m, x, y: m.isclose(x, y + 1e-3, atol=1e-2),
        lambda m, x, y: m.isclose(x.long(), y.long()),
    ):  # fmt: skip
        check(fn, [a, b], grad=False)


def test_isclose_allclose_equal():
    a = np.array([1.0, np.nan, np.inf, 2.0])
    b = np.array([1.0 + 1e-9, np.nan, np.inf, 2.1])
    for kw in ({}, {"equal_nan": True}, {"rtol": 0.1}, {"atol": 0.2, "equal_nan": True}):
        s = sg.isclose(sg.tensor(a), sg.tensor(b), **kw)
        np.testing.assert_array_equal(
            s.numpy(), torch.isclose(torch.tensor(a), torch.tensor(b), **kw).numpy()
        )
        assert sg.allclose(sg.tensor(a), sg.tensor(b), **kw) == torch.allclose(
            torch.tensor(a), torch.tensor(b), **kw
        )
    assert sg.allclose(sg.tensor([1.0, 1.0]), sg.tensor([1.0]))  # broadcasts, as torch
    cases = [
        ([1.0, 2.0], [1.0, 2.0]),
        ([1.0, 2.0], [1.0]),
        ([1.0, 2.0], [1, 2]),
        ([np.nan], [np.nan]),
    ]
    for x, y in cases:
        assert sg.equal(sg.tensor(x), sg.tensor(y)) == torch.equal(torch.tensor(x), torch.tensor(y))
    assert sg.tensor([1.0, 2.0]).equal(sg.tensor([1.0, 2.0]))


# ---------------------------------------------------------------- errors: same exception type
ERRORS = {
    "bitwise_on_float": lambda m: m.tensor([1.0]) & m.tensor([1.0]),
    "or_float_scalar": lambda m: m.tensor([1]) | 1.5,
    "invert_float": lambda m: ~m.tensor([1.0]),
    "neg_bool": lambda m: -m.tensor([True]),
    "sub_bool": lambda m: m.tensor([True]) - m.tensor([False]),
    "abs_bool": lambda m: m.abs(m.tensor([True])),
    "frac_int": lambda m: m.frac(m.tensor([1])),
    "round_int_decimals": lambda m: m.round(m.tensor([1]), decimals=1),
    "round_bool": lambda m: m.round(m.tensor([True])),
    "floor_bool": lambda m: m.floor(m.tensor([True])),
    "clamp_no_bounds": lambda m: m.clamp(m.tensor([1.0])),
    "maximum_scalar": lambda m: m.maximum(m.tensor([1.0]), 1.0),
    "logical_and_scalar": lambda m: m.logical_and(m.tensor([True]), 1),
    "lerp_dtype": lambda m: m.lerp(m.tensor([1.0]), m.tensor([1.0], dtype=m.float64), 0.5),
    "lerp_int": lambda m: m.lerp(m.tensor([1]), m.tensor([1]), 0.5),
    "isclose_dtype": lambda m: m.isclose(m.tensor([1.0]), m.tensor([1.0], dtype=m.float64)),
    "allclose_dtype": lambda m: m.allclose(m.tensor([1.0]), m.tensor([1.0], dtype=m.float64)),
    "equal_scalar": lambda m: m.equal(m.tensor([1.0]), 1.0),
    "exp_scalar": lambda m: m.exp(2.0),
    "int_neg_pow": lambda m: m.tensor([2]) ** -1,
    "where_int_cond": lambda m: m.where(m.tensor([1, 0]), 1.0, 0.0),
    "div_bad_mode": lambda m: m.div(m.tensor([1.0]), 2, rounding_mode="round"),
    "addcdiv_int": lambda m: m.addcdiv(m.tensor([1]), m.tensor([1]), m.tensor([2])),
    "broadcast_mismatch": lambda m: m.ones(2, 3) + m.ones(4),
    "broadcast_mismatch_max": lambda m: m.maximum(m.ones(2, 3), m.ones(2)),
    "matmul_0d": lambda m: m.matmul(m.ones(()), m.ones(3)),
    "matmul_inner": lambda m: m.matmul(m.ones(2, 3), m.ones(4, 2)),
    "matmul_batch": lambda m: m.matmul(m.ones(2, 3, 4), m.ones(5, 4, 6)),
    "matmul_batch_inner": lambda m: m.matmul(m.ones(5, 2, 3), m.ones(5, 4, 2)),
    "matmul_dtype": lambda m: m.matmul(m.ones(2, 3), m.ones(3, 2, dtype=m.float64)),
    "matmul_vec_mat": lambda m: m.matmul(m.ones(2, 3), m.ones(4)),
    "dot_dtype": lambda m: m.dot(m.ones(2), m.ones(2, dtype=m.float64)),
    "dot_size": lambda m: m.dot(m.ones(3), m.ones(4)),
    "dot_2d": lambda m: m.dot(m.ones(3, 1), m.ones(3, 1)),
    "mm_1d": lambda m: m.mm(m.ones(3), m.ones(3, 1)),
    "mm_vec": lambda m: m.mm(m.ones(3, 3), m.ones(3)),
    "bmm_2d": lambda m: m.bmm(m.ones(3, 3), m.ones(3, 3, 3)),
    "bmm_batch": lambda m: m.bmm(m.ones(2, 3, 4), m.ones(1, 4, 6)),
    "mv_dims": lambda m: m.mv(m.ones(2, 3, 3), m.ones(3)),
    "mv_size": lambda m: m.mv(m.ones(2, 3), m.ones(4)),
    "outer_2d": lambda m: m.outer(m.ones(3, 2), m.ones(3)),
    "addmm_shape": lambda m: m.addmm(m.ones(4), m.ones(2, 3), m.ones(3, 3)),
    "addmm_1d": lambda m: m.addmm(m.ones(3), m.ones(3), m.ones(3, 3)),
    "einsum_size": lambda m: m.einsum("ij,jk->ik", m.ones(2, 3), m.ones(4, 4)),
    "einsum_few": lambda m: m.einsum("ij,jk", m.ones(2, 3)),
    "einsum_many": lambda m: m.einsum("ij", m.ones(2, 3), m.ones(2)),
    "einsum_ndim": lambda m: m.einsum("ijk", m.ones(2, 3)),
    "einsum_out": lambda m: m.einsum("ij->k", m.ones(2, 3)),
    "einsum_dtype": lambda m: m.einsum("ij,jk", m.ones(2, 3), m.ones(3, 4, dtype=m.float64)),
    "sort_dim": lambda m: m.sort(m.ones(2, 3), dim=2),
    "argsort_dim": lambda m: m.argsort(m.ones(2, 3), dim=-3),
    "topk_k": lambda m: m.topk(m.ones(2, 3), 4),
    "topk_neg": lambda m: m.topk(m.ones(2, 3), -1),
    "kthvalue_k": lambda m: m.kthvalue(m.ones(2, 3), 0),
    "kthvalue_big": lambda m: m.kthvalue(m.ones(2, 3), 4),
    "requires_grad_int": lambda m: m.tensor([1, 2]).requires_grad_(),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_errors_match_torch(name):
    fn = ERRORS[name]
    with pytest.raises(Exception) as t_exc:
        fn(torch)
    with pytest.raises(Exception) as s_exc:
        fn(sg)
    assert type(s_exc.value) is type(t_exc.value), (s_exc.value, t_exc.value)


# ---------------------------------------------------------------- property: broadcasting
@settings(max_examples=40, deadline=None)
@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=3),
    op=st.sampled_from(["add", "sub", "mul", "div", "maximum", "minimum", "atan2", "pow"]),
    seed=st.integers(0, 2**16),
)
def test_binary_broadcasting_property(shapes, op, seed):
    fn, da, db = BINARY[op]
    rng = np.random.default_rng(seed)
    a, b = sample(da, shapes.input_shapes[0], rng), sample(db, shapes.input_shapes[1], rng)
    out = check(fn, [a, b], seed=seed)
    assert tuple(out.shape) == shapes.result_shape


# ---------------------------------------------------------------- linalg
MATMUL_SHAPES = [
    ((4,), (4,)),
    ((4,), (4, 3)),
    ((2, 4), (4,)),
    ((2, 4), (4, 3)),
    ((5, 2, 4), (4, 3)),
    ((2, 4), (5, 4, 3)),
    ((4,), (5, 4, 3)),
    ((5, 2, 4), (4,)),
    ((5, 2, 4), (5, 4, 3)),
    ((1, 2, 4), (5, 4, 3)),
    ((3, 1, 2, 4), (5, 4, 3)),
    ((2, 1, 2, 4), (1, 3, 4, 2)),
    ((0, 4), (4, 2)),
]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul_shape_cases(shapes):
    rng = np.random.default_rng(len(str(shapes)))
    arrays = [rng.standard_normal(s) for s in shapes]
    check(lambda m, a, b: m.matmul(a, b), arrays)
    check(lambda m, a, b: a @ b, arrays, seed=1)


LINALG = {
    "mm": (lambda m, a, b: m.mm(a, b), [(3, 4), (4, 2)]),
    "bmm": (lambda m, a, b: m.bmm(a, b), [(2, 3, 4), (2, 4, 5)]),
    "dot": (lambda m, a, b: m.dot(a, b), [(5,), (5,)]),
    "mv": (lambda m, a, b: m.mv(a, b), [(3, 5), (5,)]),
    "outer": (lambda m, a, b: m.outer(a, b), [(3,), (4,)]),
    "ger": (lambda m, a, b: a.ger(b), [(3,), (4,)]),
    "inner": (lambda m, a, b: m.inner(a, b), [(2, 4), (3, 4)]),
    "addmm": (lambda m, c, a, b: m.addmm(c, a, b), [(3,), (2, 4), (4, 3)]),
    "addmm_scaled": (
        lambda m, c, a, b: m.addmm(c, a, b, beta=0.5, alpha=-2),
        [(2, 3), (2, 4), (4, 3)],
    ),
    "addmm_beta0": (lambda m, c, a, b: m.addmm(c, a, b, beta=0), [(2, 1), (2, 4), (4, 3)]),
    "addmv": (lambda m, c, a, b: m.addmv(c, a, b, alpha=3), [(2,), (2, 4), (4,)]),
    "baddbmm": (lambda m, c, a, b: m.baddbmm(c, a, b, beta=2), [(1, 3), (2, 1, 4), (2, 4, 3)]),
    "tensordot": (lambda m, a, b: m.tensordot(a, b), [(3, 4, 5), (4, 5, 2)]),
    "tensordot_pairs": (
        lambda m, a, b: m.tensordot(a, b, dims=([0, 2], [2, 0])),
        [(3, 4, 5), (5, 2, 3)],
    ),
    "tensordot_0": (lambda m, a, b: m.tensordot(a, b, dims=0), [(2, 3), (4,)]),
}


@pytest.mark.parametrize("name", sorted(LINALG))
def test_linalg_ops(name):
    fn, shapes = LINALG[name]
    rng = np.random.default_rng(len(name))
    check(fn, [rng.standard_normal(s) for s in shapes])


def test_addmm_beta0_ignores_nan_input():
    c = np.full((2, 3), np.nan)
    rng = np.random.default_rng(0)
    check(
        lambda m, x, a, b: m.addmm(x, a, b, beta=0),
        [c, rng.standard_normal((2, 4)), rng.standard_normal((4, 3))],
    )


EINSUM = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("i,i->", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij->ji", [(2, 3)]),
    ("ij->", [(2, 3)]),
    ("ij->j", [(2, 3)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("iji->j", [(3, 2, 3)]),
    ("ij,ij->i", [(3, 4), (3, 4)]),
    ("i,jk->ijk", [(2,), (3, 4)]),
    ("ijk,k->ij", [(2, 3, 4), (4,)]),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (4, 5)]),
    ("b...,...->b...", [(2, 3, 4), (1, 4)]),
    ("...i->...", [(2, 3, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("i,i,i->i", [(4,), (4,), (4,)]),
    ("ab,cd->", [(2, 3), (4, 5)]),
    ("Ba,aB", [(2, 3), (3, 2)]),
    (" i j , j k -> i k ", [(2, 3), (3, 4)]),
]


@pytest.mark.parametrize("eq,shapes", EINSUM, ids=[e for e, _ in EINSUM])
def test_einsum(eq, shapes):
    rng = np.random.default_rng(len(eq))
    check(lambda m, *ops: m.einsum(eq, *ops), [rng.standard_normal(s) for s in shapes])


def test_einsum_list_operands_and_large_path():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((8, 40, 30)), rng.standard_normal((8, 30, 20))
    check(lambda m, x, y: m.einsum("bij,bjk->bik", [x, y]), [a, b])


# ---------------------------------------------------------------- ordering
def _distinct(shape, rng):
    n = int(np.prod(shape))
    return rng.permutation(n).reshape(shape) * 0.37 - n * 0.1


SORTING = {
    "sort": lambda m, x: m.sort(x),
    "sort_dim0": lambda m, x: m.sort(x, dim=0),
    "sort_desc": lambda m, x: m.sort(x, dim=-2, descending=True),
    "sort_method": lambda m, x: x.sort(1, True),
    "argsort": lambda m, x: x * m.argsort(x, dim=1).double(),
    "argsort_desc": lambda m, x: m.argsort(x, descending=True, dim=0),
    "msort": lambda m, x: m.msort(x),
    "topk": lambda m, x: m.topk(x, 2),
    "topk_smallest": lambda m, x: m.topk(x, 2, dim=0, largest=False),
    "topk_all": lambda m, x: x.topk(4, dim=-1),
    "topk_method": lambda m, x: x.topk(k=1, dim=1),
    "kthvalue": lambda m, x: m.kthvalue(x, 2),
    "kthvalue_keepdim": lambda m, x: m.kthvalue(x, 3, dim=0, keepdim=True),
}


@pytest.mark.parametrize("name", sorted(SORTING))
def test_ordering_values_indices_and_gradients(name):
    rng = np.random.default_rng(len(name))
    check(SORTING[name], [_distinct((3, 4), rng)])


def test_sort_is_stable_both_directions_and_nan_is_largest():
    x = np.array([[1.0, 0.0, 1.0, np.nan, 0.0, 1.0, np.nan], [2.0, 2.0, -1.0, 2.0, -1.0, 0.0, 0.0]])
    for desc in (False, True):
        check(lambda m, t, desc=desc: m.sort(t, descending=desc, stable=True), [x])
        check(lambda m, t, desc=desc: m.argsort(t, descending=desc, stable=True), [x], grad=False)
    x = np.array([3, 1, 2, 1, 3])
    _check_sort_with_open_tie_order(x, False, np.argsort(x, kind="stable"))
    b = np.array([True, False, True])
    _check_sort_with_open_tie_order(b, True, np.array([0, 2, 1]))


def _check_sort_with_open_tie_order(x: np.ndarray, descending: bool, stable_order) -> None:
    """sort without stable=True, where torch leaves the order of ties open (its CUDA kernel
    returns tied elements in another order than its CPU one): the values and what torch's
    indices select must agree with torch; shardgrad's order is the stable one on every
    device."""
    s = sg.sort(sg.tensor(x), descending=descending)
    t = torch.sort(torch.tensor(x), descending=descending)
    assert s.values.dtype.name == str(t.values.dtype).removeprefix("torch.")
    assert s.indices.dtype == sg.int64
    np.testing.assert_array_equal(_np(s.values), _np(t.values))
    np.testing.assert_array_equal(x[_np(t.indices)], _np(t.values))
    np.testing.assert_array_equal(_np(s.indices), stable_order)


def test_ordering_on_scalars():
    x = np.array(2.5)
    for fn in (lambda m, t: m.sort(t), lambda m, t: m.topk(t, 1), lambda m, t: m.kthvalue(t, 1)):
        check(fn, [x])


# ---------------------------------------------------------------- conversion
def test_casts_are_differentiable_and_return_self_when_nothing_changes():
    check(lambda m, x: (x.float() * 2).double(), [np.array([1.5, -2.0])], rtol=1e-6)
    check(lambda m, x: x.to(m.float32).to(m.float64) * x, [np.array([1.25, 3.0])])
    check(lambda m, x: x.to(dtype=m.float32, copy=True), [np.array([0.5])])
    check(lambda m, x: x.clone() * 3, [np.array([[1.0, 2.0]])])
    check(lambda m, x: x.type(m.float32), [np.array([1.0, 2.0])])
    s = sg.tensor([1.0], requires_grad=True)
    assert s.double().dtype == sg.float64 and s.to(sg.float32) is s and s.float() is s
    assert s.cpu() is s and s.to("cpu") is s
    assert s.to(sg.float32, copy=True) is not s
    assert s.type() == "torch.FloatTensor" and s.type("torch.DoubleTensor").dtype == sg.float64
    assert s.to(sg.tensor([1], dtype=sg.int32)).dtype == sg.int32


def test_casts_to_integer_drop_history_and_round_toward_zero():
    for fn in (lambda m, x: x.long(), lambda m, x: x.int(), lambda m, x: x.to(m.int16),
               lambda m, x: x.bool(), lambda m, x: x.byte(), lambda m, x: x.short()):  # fmt: skip
        out = check(fn, [np.array([-1.7, 0.0, 2.9])])
        assert not out.requires_grad and out.grad_fn is None


def test_clone_is_a_copy():
    x = sg.tensor([1.0, 2.0])
    y = x.clone()
    y[0] = 5.0
    assert x[0].item() == 1.0
    assert math.isclose(sg.tensor([3.0]).double().item(), 3.0)


_DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]
_SCALARS = {"python int": 2, "python float": 2.5, "python bool": True}


def _operand(lib, name):
    if name in _SCALARS:
        return _SCALARS[name]
    values = [True, False, True] if name == "bool" else [1, 2, 3]
    return lib.tensor(values, dtype=getattr(lib, name))


def _outcome(lib, op, a, b):
    try:
        out = getattr(lib, op)(_operand(lib, a), _operand(lib, b))
    except TypeError:  # (a Python number where a Tensor must be; torch words it its way)
        return "TypeError", ""
    except (RuntimeError, NotImplementedError) as exc:
        return type(exc).__name__, str(exc)
    return str(out.dtype).split(".")[-1], np.asarray(out.tolist(), dtype=float)


@pytest.mark.parametrize(
    "op",
    ["add", "sub", "mul", "div", "floor_divide", "remainder", "fmod", "pow", "atan2", "xlogy",
     "copysign", "logaddexp", "maximum", "fmax", "eq", "bitwise_and"],
)  # fmt: skip
def test_binary_ops_promote_and_refuse_like_torch(op):
    """Every pair of dtypes and Python scalars: the same result dtype and values, or the
    same refusal (sub with a bool, floor division and pow of two bools)."""
    for a in _DTYPES:
        for b in [*_DTYPES, *_SCALARS]:
            ours, theirs = _outcome(sg, op, a, b), _outcome(torch, op, a, b)
            if theirs[0] in ("TypeError", "RuntimeError", "NotImplementedError"):
                if op == "logaddexp" and ours[0] not in (
                    "TypeError",
                    "RuntimeError",
                    "NotImplementedError",
                ):
                    continue  # shardgrad computes these for integers too, in float32
                assert ours == theirs, (op, a, b)
                continue
            assert ours[0] == theirs[0], (op, a, b, ours[0], theirs[0])
            np.testing.assert_allclose(ours[1], theirs[1], rtol=2e-3, err_msg=f"{op} {a} {b}")


@pytest.mark.parametrize(
    "op",
    ["erf", "erfc", "sinc", "logit", "angle", "exp", "log1p", "sigmoid", "lgamma", "digamma",
     "i0", "erfinv", "deg2rad", "sign", "frac", "reciprocal", "rsqrt", "nan_to_num"],
)  # fmt: skip
def test_unary_ops_on_every_dtype_like_torch(op):
    """Integer and bool inputs become the default float dtype (logit of a uint8 must not
    wrap around in 1 - p), and float16 keeps its dtype with values computed as wide as
    torch's (erf's rational approximation overflows in half precision)."""
    for name in _DTYPES:
        x = [True, False, True, True] if name == "bool" else [1, 0, 3, 2]
        results = []
        for lib in (sg, torch):
            try:
                out = getattr(lib, op)(lib.tensor(x, dtype=getattr(lib, name)))
                results.append((str(out.dtype).split(".")[-1], out.tolist()))
            except (RuntimeError, NotImplementedError, TypeError) as exc:
                results.append((type(exc).__name__, None))
        (ours, our_values), (theirs, their_values) = results
        assert ours == theirs, (op, name)
        if our_values is not None:
            np.testing.assert_allclose(our_values, their_values, rtol=2e-3, err_msg=f"{op} {name}")


def test_diff_of_bools_is_whether_they_changed():
    x = [[True, False, False, True], [False, False, True, True]]
    for n in (1, 2):
        ours, theirs = sg.diff(sg.tensor(x), n=n, dim=1), torch.diff(torch.tensor(x), n=n, dim=1)
        assert ours.dtype == sg.bool and ours.tolist() == theirs.tolist()
