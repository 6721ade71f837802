"""Reductions and scans against torch: values, dtypes, indices and gradients in float64 at
rtol 1e-6, over dims given as ints, negative ints and tuples, with and without keepdim;
ties, zeros, NaN, empty inputs and the exceptions torch raises."""

from __future__ import annotations

import re
import zlib

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import shardgrad as sg

RTOL, ATOL = 1e-6, 1e-9


def _np(x) -> np.ndarray:
    return np.asarray(x.detach().numpy())


def _outputs(out):
    return tuple(out) if isinstance(out, tuple) else (out,)


def check(fn, arrays, *, grad: bool = True, seed: int = 0, atol: float = ATOL):
    """fn(lib, *tensors) on shardgrad and torch: same values, dtypes, shapes, and the same
    input gradients for a random upstream gradient on the first output. Where torch has no
    derivative for the op (aminmax in torch 2.11) the gradient part is skipped."""
    arrays = [np.asarray(a) for a in arrays]
    sg_in = [sg.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    th_in = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    s_outs, t_outs = _outputs(fn(sg, *sg_in)), _outputs(fn(torch, *th_in))
    assert len(s_outs) == len(t_outs)
    for s, t in zip(s_outs, t_outs):
        assert s.dtype.name == str(t.dtype).removeprefix("torch."), (s.dtype, t.dtype)
        assert tuple(s.shape) == tuple(t.shape), (tuple(s.shape), tuple(t.shape))
        np.testing.assert_allclose(_np(s), _np(t), rtol=RTOL, atol=atol)
    if not grad or not t_outs[0].requires_grad:
        return s_outs
    go = np.random.default_rng(seed + 7).standard_normal(tuple(t_outs[0].shape))
    s_outs[0].backward(sg.tensor(go))
    try:
        t_outs[0].backward(torch.tensor(go))
    except RuntimeError as exc:
        if not re.search(r"derivative for .* is not implemented", str(exc)):
            raise
        pytest.skip(f"values match; torch {torch.__version__} gives no gradient to compare: {exc}")
    for s, t in zip(sg_in, th_in):
        if t.grad is not None:
            assert s.grad is not None
            np.testing.assert_allclose(_np(s.grad), _np(t.grad), rtol=RTOL, atol=ATOL)
    return s_outs


REDUCTIONS = {
    "sum": lambda m, x: x.sum(),
    "sum_dim": lambda m, x: m.sum(x, 1),
    "sum_neg_keepdim": lambda m, x: m.sum(x, -1, keepdim=True),
    "sum_tuple": lambda m, x: m.sum(x, (0, -1)),
    "sum_list_keepdim": lambda m, x: x.sum(dim=[2, 0], keepdim=True),
    "sum_empty_dims": lambda m, x: x.sum(dim=()),
    "sum_dtype": lambda m, x: m.sum(x, 1, dtype=m.float32).double(),
    "nansum": lambda m, x: m.nansum(m.where(x > 1.0, m.tensor(float("nan"), dtype=x.dtype), x), 0),
    "mean": lambda m, x: x.mean(),
    "mean_dim": lambda m, x: m.mean(x, -2),
    "mean_tuple_keepdim": lambda m, x: x.mean((1, 2), keepdim=True),
    "prod": lambda m, x: m.prod(x / 1.2),
    "prod_dim": lambda m, x: m.prod(x, 1),
    "prod_neg_keepdim": lambda m, x: x.prod(-1, keepdim=True),
    "var": lambda m, x: x.var(),
    "var_dim": lambda m, x: m.var(x, 1),
    "var_tuple_keepdim": lambda m, x: m.var(x, (0, 2), keepdim=True),
    "var_unbiased_false": lambda m, x: x.var(unbiased=False),
    "var_positional": lambda m, x: m.var(x, 0, False, True),
    "var_bool_only": lambda m, x: m.var(x, False),
    "var_correction": lambda m, x: m.var(x, -1, correction=2),
    "std": lambda m, x: x.std(),
    "std_dim": lambda m, x: m.std(x, 2, keepdim=True),
    "std_correction0": lambda m, x: x.std(dim=(0, 1), correction=0),
    "var_mean": lambda m, x: m.var_mean(x, 1),
    "std_mean": lambda m, x: m.std_mean(x, (0, 2), keepdim=True, correction=0),
    "var_mean_grad": lambda m, x: (lambda v, mu: v * 3 + mu)(*m.var_mean(x, -1)),
    "max_all": lambda m, x: x.max(),
    "min_all": lambda m, x: m.min(x),
    "max_dim": lambda m, x: m.max(x, 1),
    "max_dim_keepdim": lambda m, x: x.max(dim=-1, keepdim=True),
    "min_dim": lambda m, x: x.min(0),
    "min_dim_keepdim": lambda m, x: m.min(x, dim=-2, keepdim=True),
    "amax": lambda m, x: m.amax(x, 1),
    "amax_tuple": lambda m, x: x.amax((0, 2)),
    "amax_all": lambda m, x: m.amax(x),
    "amin_keepdim": lambda m, x: x.amin(-1, keepdim=True),
    "aminmax": lambda m, x: m.aminmax(x, dim=1),
    "argmax": lambda m, x: m.argmax(x),
    "argmax_dim": lambda m, x: x.argmax(1),
    "argmax_keepdim": lambda m, x: m.argmax(x, dim=-1, keepdim=True),
    "argmin": lambda m, x: x.argmin(),
    "argmin_dim": lambda m, x: m.argmin(x, 0, True),
    "argmax_all_keepdim": lambda m, x: m.argmax(x, keepdim=True),
    "median_all": lambda m, x: x.median(),
    "median_dim": lambda m, x: m.median(x, 1),
    "median_keepdim": lambda m, x: x.median(dim=-1, keepdim=True),
    "logsumexp": lambda m, x: m.logsumexp(x, 1),
    "logsumexp_tuple_keepdim": lambda m, x: x.logsumexp((0, 2), keepdim=True),
    "logsumexp_neg": lambda m, x: m.logsumexp(x, -1),
    "norm": lambda m, x: x.norm(),
    "norm_fro_dims": lambda m, x: m.norm(x, "fro", dim=(1, 2)),
    "norm_p1": lambda m, x: m.norm(x, 1, dim=1),
    "norm_inf": lambda m, x: x.norm(float("inf"), dim=-1, keepdim=True),
    "norm_ninf": lambda m, x: m.norm(x, float("-inf")),
    "norm_p3": lambda m, x: m.norm(x, 3, dim=0),
    "norm_p1_5": lambda m, x: m.norm(x, 1.5),
    "norm_p0_5": lambda m, x: m.norm(x, 0.5, dim=2),
    "norm_p0": lambda m, x: m.norm(x, 0, dim=1),
    "all": lambda m, x: (x > -2).all(),
    "all_dim": lambda m, x: m.all(x > -1, 1),
    "any_dim_keepdim": lambda m, x: (x > 1).any(-1, keepdim=True),
    "any_tuple": lambda m, x: m.any(x > 1.5, dim=(0, 1)),
    "all_float": lambda m, x: m.all(x),
    "count_nonzero": lambda m, x: m.count_nonzero(x > 0),
    "count_nonzero_dim": lambda m, x: (x > 0).count_nonzero(dim=(0, 2)),
    "cumsum": lambda m, x: m.cumsum(x, 1),
    "cumsum_neg": lambda m, x: x.cumsum(-1),
    "cumsum_dtype": lambda m, x: m.cumsum(x > 0, 0),
    "cumprod": lambda m, x: m.cumprod(x, 2),
    "cumprod_dim0": lambda m, x: x.cumprod(0),
}


# Reductions that accumulate in float32, with the dim they reduce. On the CPU
# shardgrad and torch add in the same order and agree to the bit; on a GPU each library's
# reduction tree adds in its own order, and two float32 sums of the same n terms may then
# differ by up to 2(n-1)u·sum|x| (u = 2**-24), far beyond rtol 1e-6 of the sum itself when
# the terms cancel. The absolute tolerance there is that bound, not a looser rtol.
FLOAT32_SUMS = {"sum_dtype": 1}


def _float32_sum_atol(name: str, x: np.ndarray) -> float:
    if name not in FLOAT32_SUMS or torch.get_default_device().type != "cuda":
        return ATOL
    dim = FLOAT32_SUMS[name]
    return 2 * (x.shape[dim] - 1) * 2.0**-24 * float(np.abs(x).sum(dim).max())


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reduction(name):
    rng = np.random.default_rng(zlib.crc32(name.encode()))  # stable across runs, unlike hash()
    x = rng.standard_normal((3, 4, 5))
    check(REDUCTIONS[name], [x], atol=_float32_sum_atol(name, x))


SCALAR_SAFE = [
    "sum", "sum_empty_dims", "mean", "prod", "max_all", "min_all", "amax_all", "argmax",
    "argmin", "median_all", "norm", "norm_ninf", "norm_p1_5", "all", "count_nonzero",
]  # fmt: skip


@pytest.mark.parametrize("name", SCALAR_SAFE)
@pytest.mark.parametrize("shape", [(), (6,)])
def test_reduction_on_0d_and_1d(name, shape):
    x = np.random.default_rng(1).standard_normal(shape)
    check(REDUCTIONS[name], [x])


@pytest.mark.parametrize(
    "fn",
    [
        lambda m, x: m.max(x, 0),
        lambda m, x: m.min(x, -1, keepdim=True),
        lambda m, x: m.sum(x, 0),
        lambda m, x: m.cumsum(x, 0),
        lambda m, x: m.cumprod(x, -1),
        lambda m, x: m.prod(x, 0, keepdim=True),
        lambda m, x: m.logsumexp(x, 0),
        lambda m, x: m.median(x, 0),
        lambda m, x: m.amax(x, 0),
        lambda m, x: m.argmax(x, 0),
        lambda m, x: m.var(x, 0, correction=0),
    ],
)
def test_dim_reductions_of_0d_tensors(fn):
    check(fn, [np.array(1.7)])


# ---------------------------------------------------------------- ties, zeros, NaN
@pytest.mark.parametrize(
    "fn",
    [
        lambda m, x: x.max(),
        lambda m, x: x.min(),
        lambda m, x: m.amax(x, 1),
        lambda m, x: m.amin(x, 0, keepdim=True),
        lambda m, x: m.amax(x),
        lambda m, x: m.max(x, 1),
        lambda m, x: m.min(x, 0),
        lambda m, x: m.argmax(x, 1),
        lambda m, x: m.argmin(x),
        lambda m, x: m.norm(x, float("inf"), dim=1),
        lambda m, x: x.median(),
    ],
)
def test_ties_follow_torch(fn):
    """Full max/min/median and amax/amin share the gradient among ties; max(dim) and argmax
    pick the first occurrence."""
    x = np.array([[1.0, 3.0, 3.0, -3.0], [2.0, 2.0, 2.0, 0.5], [-1.0, 4.0, 0.0, 4.0]])
    check(fn, [x])


@pytest.mark.parametrize(
    "x",
    [
        [[2.0, 0.0, 3.0], [1.5, -2.0, 0.5]],
        [[0.0, 0.0, 3.0], [1.5, 0.0, 0.5]],
        [[0.0, 2.0, 0.0], [0.0, 0.0, 0.0]],
    ],
)
@pytest.mark.parametrize(
    "fn",
    [
        lambda m, t: m.prod(t),
        lambda m, t: m.prod(t, 1),
        lambda m, t: m.prod(t, 0, keepdim=True),
        lambda m, t: m.cumprod(t, 1),
        lambda m, t: m.cumprod(t, 0),
    ],
)
def test_prod_and_cumprod_gradients_with_zeros(x, fn):
    check(fn, [np.array(x)])


@pytest.mark.parametrize(
    "fn",
    [
        lambda m, t: m.prod(t),
        lambda m, t: m.prod(t, 1),
        lambda m, t: m.cumprod(t, 1),
        lambda m, t: m.cumprod(t, 0),
    ],
)
@pytest.mark.parametrize(
    "x", [[[2.0, 0.0, 3.0], [1.5, -2.0, 0.5]], [[0.0, 0.0, 3.0], [1.5, 0.0, 0.5]]]
)
def test_prod_and_cumprod_second_derivatives_with_zeros(fn, x):
    """Through the zeros, the Hessian-vector product matches torch's."""
    arr = np.array(x)
    rng = np.random.default_rng(0)
    s, t = sg.tensor(arr, requires_grad=True), torch.tensor(arr, requires_grad=True)
    ys, yt = fn(sg, s), fn(torch, t)
    go = rng.standard_normal(tuple(yt.shape))
    v = rng.standard_normal(arr.shape)
    (gs,) = sg.autograd.grad(ys, s, sg.tensor(go), create_graph=True)
    (gt,) = torch.autograd.grad(yt, t, torch.tensor(go), create_graph=True)
    np.testing.assert_allclose(_np(gs), _np(gt), rtol=RTOL, atol=ATOL)
    (hs,) = sg.autograd.grad((gs * sg.tensor(v)).sum(), s)
    (ht,) = torch.autograd.grad((gt * torch.tensor(v)).sum(), t)
    np.testing.assert_allclose(_np(hs), _np(ht), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    "fn",
    [
        lambda m, x: x.max(),
        lambda m, x: m.max(x, 1),
        lambda m, x: m.min(x, 1, keepdim=True),
        lambda m, x: m.amax(x, 1),
        lambda m, x: m.argmax(x, 1),
        lambda m, x: m.argmin(x),
        lambda m, x: m.sum(x, 1),
        lambda m, x: m.logsumexp(x, 1),
        lambda m, x: m.cumsum(x, 1),
        lambda m, x: m.median(x, 1),
    ],
)
def test_nan_propagates_like_torch(fn):
    x = np.array([[1.0, np.nan, 3.0, 0.5], [2.0, 0.0, -1.0, 5.0]])
    s, t = _outputs(fn(sg, sg.tensor(x))), _outputs(fn(torch, torch.tensor(x)))
    for a, b in zip(s, t):
        np.testing.assert_allclose(_np(a), _np(b), rtol=RTOL)


def test_logsumexp_is_stable():
    x = np.array([[1000.0, 1000.0, -1000.0], [-np.inf, -np.inf, -np.inf], [np.inf, 1.0, 0.0]])
    s = sg.logsumexp(sg.tensor(x), 1)
    np.testing.assert_allclose(s.numpy(), torch.logsumexp(torch.tensor(x), 1).numpy())
    check(lambda m, t: m.logsumexp(t, 1), [np.array([[700.0, 701.0], [-800.0, -799.5]])])


def test_norm_gradient_is_zero_at_zero():
    for p in (2, 3, 1.5, "fro"):
        check(lambda m, t, p=p: m.norm(t, p, dim=1), [np.array([[0.0, 0.0], [3.0, -4.0]])])


def test_std_of_constant_slice_gives_nan_gradient_like_torch():
    x = np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]])
    s, t = sg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    sg.std(s, 1).sum().backward()
    torch.std(t, 1).sum().backward()
    np.testing.assert_allclose(_np(s.grad), _np(t.grad), rtol=RTOL)


# ---------------------------------------------------------------- dtypes and empties
INTS = np.array([[3, -1, 2], [0, 5, 5]])


def _tie_order_free(m, result, x, dim: int, stable_order: np.ndarray):
    """(values, what the indices select) of a sort or topk with tied elements. torch leaves
    their order open (topk, sort without stable=True) and its CUDA kernels order them unlike
    its CPU ones, so torch's indices are compared only through what they select; shardgrad
    keeps tied elements in input order on every device, which is checked here."""
    assert result.indices.dtype == m.int64
    if m is sg:
        np.testing.assert_array_equal(_np(result.indices), stable_order)
    return result.values, m.gather(x, dim, result.indices)


@pytest.mark.parametrize(
    "fn",
    [
        lambda m, x: x.sum(),
        lambda m, x: (x > 0).sum(1),
        lambda m, x: x.prod(0),
        lambda m, x: (x > 0).prod(),
        lambda m, x: x.cumsum(1),
        lambda m, x: (x > 0).cumsum(0),
        lambda m, x: x.cumprod(1),
        lambda m, x: x.max(),
        lambda m, x: x.max(1),
        lambda m, x: x.amin(0),
        lambda m, x: x.argmax(),
        lambda m, x: x.median(1),
        lambda m, x: x.mean(dtype=m.float64),
        lambda m, x: x.sum(1, dtype=m.float64),
        lambda m, x: m.logsumexp(x, 1),
        lambda m, x: x.float().norm(dtype=m.float64),
        lambda m, x: (x > 0).all(),
        lambda m, x: x.to(m.uint8).any(1),
        lambda m, x: x.count_nonzero(),
        lambda m, x: _tie_order_free(m, x.sort(1), x, 1, np.argsort(INTS, 1, kind="stable")),
        lambda m, x: _tie_order_free(
            m, x.topk(2), x, -1, np.argsort(-INTS, 1, kind="stable")[:, :2]
        ),
        lambda m, x: x.float().var(1),
    ],
)
def test_integer_and_bool_inputs(fn):
    check(fn, [INTS], grad=False)


@pytest.mark.parametrize(
    "fn",
    [
        lambda m, x: x.sum(),
        lambda m, x: x.sum(0),
        lambda m, x: x.prod(),
        lambda m, x: x.prod(1),
        lambda m, x: x.mean(),
        lambda m, x: x.max(1),
        lambda m, x: x.amax(1),
        lambda m, x: x.argmax(1),
        lambda m, x: x.norm(),
        lambda m, x: x.cumsum(0),
        lambda m, x: x.logsumexp(1),
        lambda m, x: x.all(),
        lambda m, x: x.any(0),
        lambda m, x: x.count_nonzero(),
        lambda m, x: x.median(),
    ],
)
def test_empty_inputs(fn):
    s, t = (
        _outputs(fn(sg, sg.tensor(np.zeros((0, 3))))),
        _outputs(fn(torch, torch.zeros(0, 3, dtype=torch.float64))),
    )
    for a, b in zip(s, t):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(_np(a), _np(b))


ERRORS = {
    "max_empty": lambda m: m.zeros(0).max(),
    "min_empty": lambda m: m.zeros(0, 2).min(),
    "max_dim_empty": lambda m: m.zeros(0, 3).max(0),
    "amax_dim_empty": lambda m: m.zeros(0, 3).amax(0),
    "argmax_empty": lambda m: m.zeros(0, 3).argmax(),
    "argmin_dim_empty": lambda m: m.zeros(0, 3).argmin(0),
    "sum_dim_range": lambda m: m.ones(2, 3).sum(2),
    "sum_dim_range_neg": lambda m: m.ones(2, 3).sum(-3),
    "sum_dims_repeat": lambda m: m.ones(2, 3).sum((0, 0)),
    "amax_dims_repeat": lambda m: m.ones(2, 3).amax((1, -1)),
    "mean_int": lambda m: m.tensor([1, 2]).mean(),
    "var_int": lambda m: m.tensor([1, 2]).var(),
    "std_int": lambda m: m.tensor([1, 2]).std(0),
    "var_both": lambda m: m.ones(2, 3).var(1, correction=0, unbiased=True),
    "logsumexp_no_dim": lambda m: m.logsumexp(m.ones(2)),
    "norm_int": lambda m: m.tensor([1, 2]).norm(),
    "norm_int_dtype": lambda m: m.tensor([1, 2]).norm(dtype=m.float64),
    "norm_narrowing": lambda m: m.ones(2, dtype=m.float64).norm(dtype=m.float32),
    "cumsum_dim": lambda m: m.ones(2, 3).cumsum(2),
    "cumprod_dim": lambda m: m.ones(2, 3).cumprod(-3),
    "max_dim_range": lambda m: m.ones(2, 3).max(5),
    "argmax_dim_range": lambda m: m.ones(2, 3).argmax(2),
    "prod_tuple": lambda m: m.ones(2, 3).prod((0, 1)),
    "median_dim_empty": lambda m: m.zeros(0, 3).median(0),
    "count_nonzero_dim": lambda m: m.ones(2).count_nonzero(dim=3),
    "maximum_shapes": lambda m: m.max(m.ones(2, 3), m.ones(4)),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_errors_match_torch(name):
    with pytest.raises(Exception) as t_exc:
        ERRORS[name](torch)
    with pytest.raises(Exception) as s_exc:
        ERRORS[name](sg)
    assert type(s_exc.value) is type(t_exc.value), (s_exc.value, t_exc.value)


def test_max_with_dim_returns_named_values_and_indices():
    x = sg.tensor([[1.0, 5.0], [7.0, 2.0]], requires_grad=True)
    out = x.max(dim=1)
    assert out.values.tolist() == [5.0, 7.0] and out.indices.tolist() == [1, 0]
    values, indices = sg.min(x, 0)
    assert values.tolist() == [1.0, 2.0] and indices.dtype == sg.int64
    assert not out.indices.requires_grad and out.values.requires_grad
    assert type(out).__name__ == "max" and out[0] is out.values


@settings(max_examples=40, deadline=None)
@given(
    shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4),
    data=st.data(),
    op=st.sampled_from(["sum", "mean", "amax", "amin", "var", "std", "logsumexp", "norm"]),
    keepdim=st.booleans(),
)
def test_reduction_dims_property(shape, data, op, keepdim):
    """Any set of dims, negative or not, in any order, with or without keepdim."""
    nd = len(shape)
    dims = data.draw(
        st.lists(st.integers(-nd, nd - 1), min_size=1, max_size=nd, unique_by=lambda d: d % nd)
    )
    dims = tuple(dims)
    assume(op not in ("var", "std") or int(np.prod([shape[d] for d in dims])) >= 2)
    x = np.random.default_rng(len(dims) + 10 * nd).standard_normal(shape)
    if op == "norm":
        check(lambda m, t: m.norm(t, 2, dim=dims, keepdim=keepdim), [x])
    else:
        check(lambda m, t: getattr(m, op)(t, dims, keepdim=keepdim), [x])
