"""Finite-difference checks of every differentiable math op: `gradcheck` (first derivatives)
and `gradgradcheck` (the backward formulas are differentiable again), on small float64
inputs away from kinks, poles and ties."""

from __future__ import annotations

import numpy as np
import pytest

import shardgrad as sg
from shardgrad.autograd import gradcheck, gradgradcheck


def sample(domain: str, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    if domain == "real":
        out = rng.standard_normal(shape)
    elif domain == "pos":
        out = rng.uniform(0.3, 2.0, shape)
    elif domain == "unit":
        out = rng.uniform(-0.8, 0.8, shape)
    elif domain == "gt1":
        out = rng.uniform(1.3, 3.0, shape)
    elif domain == "nonzero":  # |x| >= 0.3: clear of kinks at 0
        out = rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 1.5, shape)
    elif domain == "offint":  # clear of integers: rounding ops are flat here
        out = rng.integers(-3, 3, shape) + rng.uniform(0.1, 0.9, shape)
    elif domain == "distinct":  # values at least 0.1 apart: no ties in max/sort
        n = int(np.prod(shape))
        out = (rng.permutation(n) * 0.3 - n * 0.1).reshape(shape) + rng.uniform(0, 0.1, shape)
    elif domain == "withzero":  # exact zeros, for prod/cumprod's zero paths
        out = rng.uniform(0.5, 1.5, shape)
        out.reshape(-1)[:: max(1, out.size // 2)] = 0.0
    else:
        raise ValueError(domain)
    return np.asarray(out, dtype=np.float64)


def t(domain: str, *shape: int):
    return (domain, shape)


# name -> (fn on shardgrad tensors, input specs)
OPS = {
    # unary
    "neg": (lambda x: -x, [t("real", 2, 3)]),
    "exp": (sg.exp, [t("real", 2, 3)]),
    "exp2": (sg.exp2, [t("real", 4)]),
    "expm1": (sg.expm1, [t("real", 4)]),
    "log": (sg.log, [t("pos", 2, 3)]),
    "log2": (sg.log2, [t("pos", 4)]),
    "log10": (sg.log10, [t("pos", 4)]),
    "log1p": (sg.log1p, [t("pos", 4)]),
    "sqrt": (sg.sqrt, [t("pos", 2, 3)]),
    "rsqrt": (sg.rsqrt, [t("pos", 4)]),
    "reciprocal": (sg.reciprocal, [t("nonzero", 4)]),
    "square": (sg.square, [t("real", 4)]),
    "abs": (sg.abs, [t("nonzero", 2, 3)]),
    "sin": (sg.sin, [t("real", 4)]),
    "cos": (sg.cos, [t("real", 4)]),
    "tan": (sg.tan, [t("unit", 4)]),
    "sinh": (sg.sinh, [t("real", 4)]),
    "cosh": (sg.cosh, [t("real", 4)]),
    "tanh": (sg.tanh, [t("real", 2, 3)]),
    "asin": (sg.asin, [t("unit", 4)]),
    "acos": (sg.acos, [t("unit", 4)]),
    "atan": (sg.atan, [t("real", 4)]),
    "asinh": (sg.asinh, [t("real", 4)]),
    "acosh": (sg.acosh, [t("gt1", 4)]),
    "atanh": (sg.atanh, [t("unit", 4)]),
    "sigmoid": (sg.sigmoid, [t("real", 2, 3)]),
    "relu": (sg.relu, [t("nonzero", 2, 3)]),
    "erf": (sg.erf, [t("real", 2, 3)]),
    "erfc": (sg.erfc, [t("real", 4)]),
    "erfinv": (sg.erfinv, [t("unit", 4)]),
    "sign": (sg.sign, [t("nonzero", 4)]),
    "floor": (sg.floor, [t("offint", 4)]),
    "ceil": (sg.ceil, [t("offint", 4)]),
    "trunc": (sg.trunc, [t("offint", 4)]),
    "round": (sg.round, [t("offint", 4)]),
    "frac": (sg.frac, [t("offint", 4)]),
    "clamp": (lambda x: sg.clamp(x, -0.25, 0.25), [t("nonzero", 2, 3)]),
    "clamp_min": (lambda x: x.clamp(min=0.1), [t("nonzero", 2, 3)]),
    "nan_to_num": (sg.nan_to_num, [t("real", 4)]),
    "pow_scalar": (lambda x: x**3, [t("real", 4)]),
    "pow_frac": (lambda x: x**-0.7, [t("pos", 4)]),
    "rpow": (lambda x: 1.7**x, [t("real", 4)]),
    # binary (with broadcasting)
    "add_alpha": (lambda a, b: sg.add(a, b, alpha=-1.5), [t("real", 2, 3), t("real", 3)]),
    "sub_alpha": (lambda a, b: sg.sub(a, b, alpha=2), [t("real", 2, 1), t("real", 3)]),
    "mul": (lambda a, b: a * b, [t("real", 2, 3), t("real", 2, 1)]),
    "div": (lambda a, b: a / b, [t("real", 2, 3), t("nonzero", 3)]),
    "pow": (lambda a, b: a**b, [t("pos", 2, 3), t("real", 3)]),
    "float_power": (sg.float_power, [t("pos", 3), t("real", 3)]),
    "atan2": (sg.atan2, [t("real", 2, 3), t("nonzero", 2, 3)]),
    "maximum": (sg.maximum, [t("distinct", 2, 3), t("distinct", 3)]),
    "minimum": (sg.minimum, [t("distinct", 2, 3), t("distinct", 2, 1)]),
    "fmax": (sg.fmax, [t("distinct", 2, 3), t("distinct", 3)]),
    "fmin": (sg.fmin, [t("distinct", 3), t("distinct", 2, 3)]),
    "remainder": (lambda a, b: sg.remainder(a, b), [t("offint", 2, 3), t("gt1", 3)]),
    "fmod": (lambda a, b: sg.fmod(a, b * 4.0), [t("offint", 2, 3), t("gt1", 3)]),
    "div_floor": (lambda a, b: sg.div(a, b, rounding_mode="floor"), [t("offint", 3), t("gt1", 3)]),
    "lerp": (sg.lerp, [t("real", 2, 3), t("real", 3), t("unit", 2, 1)]),
    "lerp_scalar": (lambda a, b: sg.lerp(a, b, 0.7), [t("real", 2, 3), t("real", 3)]),
    "addcmul": (
        lambda a, b, c: sg.addcmul(a, b, c, value=0.5),
        [t("real", 3), t("real", 2, 3), t("real", 2, 1)],
    ),
    "addcdiv": (
        lambda a, b, c: sg.addcdiv(a, b, c, value=2),
        [t("real", 3), t("real", 2, 3), t("nonzero", 3)],
    ),
    "where": (lambda a, b: sg.where(a > 0, a, b), [t("nonzero", 2, 3), t("real", 3)]),
    "clamp_tensor": (
        lambda a, lo, hi: sg.clamp(a, lo, hi + 1.0),
        [t("distinct", 2, 3), t("distinct", 3), t("distinct", 3)],
    ),
    # reductions
    "sum_dim": (lambda x: x.sum((0, 2)), [t("real", 2, 3, 2)]),
    "sum_keepdim": (lambda x: x.sum(-1, keepdim=True), [t("real", 2, 3)]),
    "mean": (lambda x: x.mean(1), [t("real", 2, 3)]),
    "prod": (lambda x: x.prod(), [t("pos", 2, 3)]),
    "prod_dim": (lambda x: x.prod(1, keepdim=True), [t("real", 2, 3)]),
    "prod_zero": (lambda x: x.prod(), [t("withzero", 2, 2)]),
    "prod_dim_zero": (lambda x: x.prod(0), [t("withzero", 3, 2)]),
    "var": (lambda x: x.var(1), [t("real", 2, 3)]),
    "var_all": (lambda x: x.var(correction=0), [t("real", 2, 3)]),
    "std": (lambda x: x.std(0, keepdim=True), [t("real", 3, 2)]),
    "var_mean": (lambda x: sg.var_mean(x, 1), [t("real", 2, 3)]),
    "max_all": (lambda x: x.max(), [t("distinct", 2, 3)]),
    "min_dim": (lambda x: x.min(1).values, [t("distinct", 2, 3)]),
    "max_dim_keepdim": (lambda x: sg.max(x, 0, keepdim=True)[0], [t("distinct", 2, 3)]),
    "amax": (lambda x: x.amax(1), [t("distinct", 2, 3)]),
    "amin_tuple": (lambda x: x.amin((0, 1)), [t("distinct", 2, 3)]),
    "median": (lambda x: x.median(), [t("distinct", 2, 3)]),
    "median_dim": (lambda x: x.median(1).values, [t("distinct", 2, 3)]),
    "logsumexp": (lambda x: sg.logsumexp(x, 1), [t("real", 2, 3)]),
    "norm": (lambda x: x.norm(), [t("real", 2, 3)]),
    "norm_p1": (lambda x: x.norm(1, dim=1), [t("nonzero", 2, 3)]),
    "norm_inf": (lambda x: x.norm(float("inf"), dim=0), [t("distinct", 2, 3)]),
    "norm_p3": (lambda x: x.norm(3, dim=1), [t("nonzero", 2, 3)]),
    "norm_p1_5": (lambda x: x.norm(1.5), [t("nonzero", 2, 3)]),
    "norm_p0_5": (lambda x: x.norm(0.5, dim=1), [t("nonzero", 2, 3)]),
    "cumsum": (lambda x: x.cumsum(1), [t("real", 2, 3)]),
    "cumprod": (lambda x: x.cumprod(1), [t("real", 2, 3)]),
    "cumprod_zero": (lambda x: x.cumprod(0), [t("withzero", 4, 2)]),
    # linalg
    "matmul_vec_vec": (sg.matmul, [t("real", 3), t("real", 3)]),
    "matmul_vec_mat": (sg.matmul, [t("real", 3), t("real", 2, 3, 2)]),
    "matmul_mat_vec": (sg.matmul, [t("real", 2, 2, 3), t("real", 3)]),
    "matmul_batched": (sg.matmul, [t("real", 2, 1, 2, 3), t("real", 2, 3, 2)]),
    "mm": (sg.mm, [t("real", 2, 3), t("real", 3, 2)]),
    "bmm": (sg.bmm, [t("real", 2, 2, 3), t("real", 2, 3, 2)]),
    "mv": (sg.mv, [t("real", 2, 3), t("real", 3)]),
    "dot": (sg.dot, [t("real", 4), t("real", 4)]),
    "outer": (sg.outer, [t("real", 3), t("real", 2)]),
    "inner": (sg.inner, [t("real", 2, 3), t("real", 3)]),
    "addmm": (
        lambda c, a, b: sg.addmm(c, a, b, beta=0.5, alpha=2),
        [t("real", 2), t("real", 3, 2), t("real", 2, 2)],
    ),
    "addmv": (
        lambda c, a, b: sg.addmv(c, a, b, beta=-1),
        [t("real", 2), t("real", 2, 3), t("real", 3)],
    ),
    "baddbmm": (
        lambda c, a, b: sg.baddbmm(c, a, b),
        [t("real", 2, 1), t("real", 2, 2, 3), t("real", 2, 3, 1)],
    ),
    "einsum_mm": (lambda a, b: sg.einsum("ij,jk->ik", a, b), [t("real", 2, 3), t("real", 3, 2)]),
    "einsum_diag": (lambda a: sg.einsum("ii->i", a), [t("real", 3, 3)]),
    "einsum_trace_ellipsis": (
        lambda a, b: sg.einsum("...ii,...->...", a, b),
        [t("real", 2, 2, 2), t("real", 2)],
    ),
    "einsum_sum_out": (lambda a, b: sg.einsum("ij,k->", a, b), [t("real", 2, 2), t("real", 3)]),
    "einsum_three": (
        lambda a, b, c: sg.einsum("i,ij,j->", a, b, c),
        [t("real", 2), t("real", 2, 3), t("real", 3)],
    ),
    "tensordot": (
        lambda a, b: sg.tensordot(a, b, dims=([1], [0])),
        [t("real", 2, 3), t("real", 3, 2)],
    ),
    # ordering and conversion
    "sort": (lambda x: x.sort(1, descending=True).values, [t("distinct", 2, 3)]),
    "topk": (lambda x: x.topk(2).values, [t("distinct", 2, 4)]),
    "kthvalue": (lambda x: sg.kthvalue(x, 2, 0).values, [t("distinct", 3, 2)]),
    "clone": (lambda x: x.clone() * x, [t("real", 3)]),
    "to_copy": (lambda x: x.to(sg.float64, copy=True) * 2, [t("real", 3)]),
}


def _inputs(name: str):
    _, specs = OPS[name]
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    return [sg.tensor(sample(d, s, rng), requires_grad=True) for d, s in specs]


@pytest.mark.parametrize("name", sorted(OPS))
def test_gradcheck(name):
    assert gradcheck(OPS[name][0], _inputs(name), eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(OPS))
def test_gradgradcheck(name):
    assert gradgradcheck(OPS[name][0], _inputs(name), eps=1e-6, atol=1e-5, rtol=1e-3)


def test_gradcheck_catches_a_wrong_backward():
    """The harness itself can fail: a deliberately wrong derivative is reported."""

    class Wrong(sg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x  # should be 2 * g * x

    x = sg.tensor([0.5, 1.5], dtype=sg.float64, requires_grad=True)
    assert not gradcheck(Wrong.apply, (x,), raise_exception=False)
