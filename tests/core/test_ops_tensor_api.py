"""The rest of torch's tensor API a torch user reaches for: running extremes and log-sum-exp,
rearrangements (kron, rot90, block_diag, Tensor.unfold, index_fill, ...), sample statistics
(cov, quantile, mode, histc, ...), small elementwise functions, in-place twins, properties and
the in-place random fills. Against torch in float64: values, dtypes, and gradients through
losses that weight every output entry differently."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shardgrad as sg

rng = np.random.default_rng(17)


def _np(t) -> np.ndarray:
    return np.asarray(t.detach().numpy())


def both(fn, *arrays, grad=True, rtol=1e-7, atol=1e-10):
    """fn(lib, *tensors) in both libraries: outputs (values and dtypes) and the float
    inputs' gradients agree."""
    results = []
    for lib in (sg, torch):
        xs = [lib.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
        out = fn(lib, *xs)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        floats = [o for o in outs if o.dtype.is_floating_point and o.requires_grad]
        if floats:
            w = np.random.default_rng(5)
            loss = sum(
                (o * lib.tensor(w.standard_normal(tuple(o.shape)))).nan_to_num().sum()
                for o in floats
            )
            loss.backward()
        results.append(
            (
                [(_np(o), str(o.dtype).split(".")[-1]) for o in outs],
                [_np(x.grad) if x.grad is not None else None for x in xs],
            )
        )
    (ours, our_grads), (theirs, their_grads) = results
    assert len(ours) == len(theirs)
    for (a, da), (b, db) in zip(ours, theirs):
        assert da == db, f"dtype {da} != {db}"
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
    for a, b in zip(our_grads, their_grads):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


M = rng.standard_normal((4, 5))
WITH_NAN = np.array([[1.0, 3, 3, 2, np.nan, 5, np.nan, 1], [2, 2, 1, 1, 0, 7, 7, 0]])


@pytest.mark.parametrize(
    "fn, arrays",
    [
        (lambda lib, a: lib.cummax(a, 1), (WITH_NAN,)),
        (lambda lib, a: a.cummin(0), (WITH_NAN,)),
        (lambda lib, a: lib.cummax(a, -1), (np.array([3, 1, 3, 5, 5, 2]),)),
        (lambda lib, a: lib.logcumsumexp(a * 40, 1), (M,)),
        (lambda lib, a: a.logcumsumexp(0), (M,)),
        (lambda lib, a: lib.logcumsumexp(a, 0), (np.array([-np.inf, 0.0, np.inf]),)),
    ],
    ids=["cummax nan ties", "cummin", "cummax integers", "logcumsumexp large", "method", "infs"],
)
def test_scans_match_torch(fn, arrays):
    both(fn, *arrays)


@pytest.mark.parametrize(
    "fn, arrays",
    [
        (lambda lib, a, b: lib.kron(a, b), (M[:2, :3], M[2:, :2])),
        (lambda lib, a, b: a.kron(b), (M[0], M[1:3, :2])),
        (lambda lib, a, b: lib.rot90(a), (M, M)),
        (lambda lib, a, b: lib.rot90(a, 2, [1, 0]), (M, M)),
        (lambda lib, a, b: a.rot90(-1, (0, 1)), (M, M)),
        (lambda lib, a, b: lib.rot90(a, 4), (M, M)),
        (lambda lib, a, b: lib.block_diag(a[:2], b[0], b[1, 1]), (M, M)),
        (lambda lib, a, b: lib.cartesian_prod(a[0], b[1, :3]), (M, M)),
        (lambda lib, a, b: lib.combinations(a[0], 3), (M, M)),
        (lambda lib, a, b: lib.combinations(a[0, :3], with_replacement=True), (M, M)),
        (lambda lib, a, b: lib.diagflat(a[:2, :2], -1), (M, M)),
        (lambda lib, a, b: lib.take_along_dim(a, a.argsort(1), 1), (M, M)),
        (lambda lib, a, b: lib.take_along_dim(a, a.argmax(0, keepdim=True), 0), (M, M)),
        (lambda lib, a, b: lib.take_along_dim(a, lib.tensor([7, 0, 19])), (M, M)),
        (lambda lib, a, b: lib.hsplit(a, [1, 3]), (M, M)),
        (lambda lib, a, b: lib.vsplit(a, 2), (M, M)),
        (lambda lib, a, b: a.reshape(2, 2, 5).dsplit([2]), (M, M)),
        (lambda lib, a, b: a.unfold(1, 2, 2), (M, M)),
        (lambda lib, a, b: a.unfold(0, 3, 1), (M, M)),
        (lambda lib, a, b: lib.index_fill(a, 1, lib.tensor([0, 3]), -2.0), (M, M)),
        (lambda lib, a, b: a.index_fill(0, lib.tensor([1]), b[0, 0]), (M, M)),
        (lambda lib, a, b: a.index_copy(0, lib.tensor([3, 0]), b[:2]), (M, M)),
        (lambda lib, a, b: lib.slice_scatter(a, b[:2], 0, 1, 4, 2), (M, M)),
        (lambda lib, a, b: lib.slice_scatter(a, b[:, :2], 1, start=3), (M, M)),
        (lambda lib, a, b: lib.select_scatter(a, b[0], 0, -1), (M, M)),
        (lambda lib, a, b: a.sum_to_size(1, 5), (M, M)),
        (lambda lib, a, b: a.sum_to_size((4, 1)), (M, M)),
    ],
    ids=[
        "kron", "kron broadcast ranks", "rot90", "rot90 2 reversed", "rot90 -1", "rot90 4",
        "block_diag", "cartesian_prod", "combinations", "combinations replacement",
        "diagflat", "take_along_dim sort",
        "take_along_dim broadcast", "take_along_dim flat", "hsplit", "vsplit", "dsplit",
        "unfold", "unfold overlapping", "index_fill", "index_fill tensor value", "index_copy",
        "slice_scatter", "slice_scatter cols", "select_scatter", "sum_to_size",
        "sum_to_size cols",
    ],
)  # fmt: skip
def test_arrangements_match_torch(fn, arrays):
    both(fn, *arrays)


def test_values_where_torch_has_no_gradient():
    """torch's own backward fails through vander (it edits a saved tensor) and is missing
    for heaviside; their values are compared here, and the gradients by gradcheck."""
    x = rng.standard_normal(4)
    for fn in (
        lambda lib, t: lib.vander(t, 4),
        lambda lib, t: lib.vander(t[:3], increasing=True),
        lambda lib, t: lib.heaviside(t.round(), t),
    ):
        np.testing.assert_allclose(_np(fn(sg, sg.tensor(x))), fn(torch, torch.tensor(x)).numpy())
        leaf = sg.tensor(x, requires_grad=True)
        assert sg.autograd.gradcheck(lambda t, fn=fn: fn(sg, t), (leaf,))


def test_triangle_indices_match_torch():
    for args in ((3, 4), (4, 3, 1), (5, 5, -2), (0, 3)):
        for name in ("tril_indices", "triu_indices"):
            ours, theirs = getattr(sg, name)(*args), getattr(torch, name)(*args)
            np.testing.assert_array_equal(_np(ours), theirs.numpy())
            assert ours.dtype == sg.int64


SAMPLES = rng.standard_normal((3, 6))
# Ties (WITH_NAN repeats values) go to a different element on torch's CUDA, whose sorts are
# not stable; shardgrad picks torch's CPU element on both devices.
TIES = pytest.mark.torch_cpu_oracle


@pytest.mark.parametrize(
    "fn, arrays",
    [
        (lambda lib, a: lib.cov(a), (SAMPLES,)),
        (lambda lib, a: lib.cov(a[0], correction=0), (SAMPLES,)),
        (
            lambda lib, a: lib.cov(
                a, fweights=lib.tensor([1, 2, 1, 3, 1, 1]), aweights=lib.tensor([0.5, 1, 2, 1, 1, 0.3])
            ),
            (SAMPLES,),
        ),
        (lambda lib, a: a.corrcoef(), (SAMPLES,)),
        (lambda lib, a: lib.quantile(a, 0.3), (SAMPLES,)),
        (
            lambda lib, a: lib.quantile(
                a, lib.tensor([0.0, 0.25, 1.0], dtype=lib.float64), dim=1, keepdim=True
            ),
            (SAMPLES,),
        ),
        (lambda lib, a: a.quantile(0.4, 0, interpolation="lower"), (SAMPLES,)),
        (lambda lib, a: a.quantile(0.4, 1, interpolation="higher"), (SAMPLES,)),
        (lambda lib, a: a.quantile(0.5, 1, interpolation="midpoint"), (SAMPLES,)),
        (lambda lib, a: a.quantile(0.7, 1, interpolation="nearest"), (SAMPLES,)),
        pytest.param(lambda lib, a: lib.quantile(a, 0.5, dim=1), (WITH_NAN,), marks=TIES),
        pytest.param(
            lambda lib, a: lib.nanquantile(a, lib.tensor([0.2, 0.9], dtype=lib.float64), dim=1),
            (WITH_NAN,),
            marks=TIES,
        ),
        pytest.param(lambda lib, a: lib.nanquantile(a, 0.5), (WITH_NAN,), marks=TIES),
        (lambda lib, a: lib.nanmedian(a), (WITH_NAN,)),
        pytest.param(lambda lib, a: a.nanmedian(1), (WITH_NAN,), marks=TIES),
        (lambda lib, a: lib.nanmedian(a, 0, keepdim=True), (np.array([[np.nan, 1.0], [np.nan, 2.0]]),)),
        pytest.param(
            lambda lib, a: lib.mode(a, 1),
            (np.array([[1.0, 2, 2, 3, 3], [5, 4, 4, 5, 1]]),),
            marks=TIES,  # two modes in each row: torch's CUDA answers the larger
        ),
        (lambda lib, a: a.mode(0, keepdim=True), (np.array([[1, 2], [1, 3], [2, 3]]),)),
        (lambda lib, a: lib.histc(a, bins=5, min=-1, max=1), (SAMPLES,)),
        (lambda lib, a: a.histc(7), (SAMPLES,)),
    ],
    ids=[
        "cov", "cov vector correction 0", "cov weights", "corrcoef", "quantile flat",
        "quantile q tensor keepdim", "quantile lower", "quantile higher", "quantile midpoint",
        "quantile nearest", "quantile nan", "nanquantile", "nanquantile flat", "nanmedian",
        "nanmedian dim", "nanmedian all nan", "mode", "mode integers keepdim", "histc",
        "histc data range",
    ],
)  # fmt: skip
def test_statistics_match_torch(fn, arrays):
    both(fn, *arrays)


@pytest.mark.parametrize(
    "fn, arrays",
    [
        (lambda lib, a, b: lib.copysign(a, b.detach()), (M, -M[::-1].copy())),
        (lambda lib, a, b: a.copysign(-0.0), (M, M)),
        (lambda lib, a, b: lib.logaddexp2(a * 500, b), (M, M)),
        (lambda lib, a, b: lib.renorm(a, 2, 0, 1.5), (M, M)),
        (lambda lib, a, b: a.renorm(1, 1, 2.0), (M, M)),
        (lambda lib, a, b: lib.addr(a[:2, :3], b[0, :2], b[1, :3], beta=0.5, alpha=2), (M, M)),
        (lambda lib, a, b: a[:2, :2].addbmm(b[:2, :2].reshape(2, 2, 1), b[2:, :2].reshape(2, 1, 2)), (M, M)),
        (lambda lib, a, b: lib.vdot(a[0], b[1]), (M, M)),
        (lambda lib, a, b: lib.trapezoid(a), (M, M)),
        (lambda lib, a, b: lib.trapezoid(a, b[0].cumsum(0)), (M, M)),
        (lambda lib, a, b: lib.trapezoid(a, dx=0.5, dim=0), (M, M)),
        (lambda lib, a, b: lib.positive(a), (M, M)),
        (lambda lib, a, b: a.conj().resolve_conj().resolve_neg().conj_physical() * 2, (M, M)),
        (lambda lib, a, b: (a.mH, a.adjoint(), a.H), (M, M)),
        (lambda lib, a, b: lib.isreal(a), (M, M)),
    ],
    ids=[
        "copysign", "copysign negative zero", "logaddexp2", "renorm",
        "renorm p1 dim1", "addr", "addbmm", "vdot", "trapezoid", "trapezoid x",
        "trapezoid dx", "positive", "conj family", "adjoints", "isreal",
    ],
)  # fmt: skip
def test_small_functions_match_torch(fn, arrays):
    both(fn, *arrays)


@pytest.mark.parametrize(
    "fn",
    [
        lambda lib, a: a.fill_diagonal_(5.0, wrap=True),
        lambda lib, a: a[:4, :4].fill_diagonal_(-1.0),
        lambda lib, a: a.index_fill_(1, lib.tensor([0, 2]), -1.0),
        lambda lib, a: a.index_copy_(0, lib.tensor([1]), lib.ones(1, 3, dtype=lib.float64)),
        lambda lib, a: a.cumsum_(0),
        lambda lib, a: a.cumprod_(1),
        lambda lib, a: a[:3, :3].addmm_(
            lib.ones(3, 2, dtype=lib.float64), lib.full((2, 3), 0.5, dtype=lib.float64), beta=0.5
        ),
        lambda lib, a: a[:3, :2].addr_(lib.ones(3, dtype=lib.float64), lib.arange(2.0)),
        lambda lib, a: a.copysign_(-1.0),
        lambda lib, a: a.renorm_(2, 0, 0.5),
        lambda lib, a: a.abs().logit_(),
        lambda lib, a: a.xlogy_(2.0),
        lambda lib, a: a.hypot_(lib.full((7, 3), 0.5, dtype=lib.float64)),
    ],
    ids=[
        "fill_diagonal_ wrap",
        "fill_diagonal_ view",
        "index_fill_",
        "index_copy_",
        "cumsum_",
        "cumprod_",
        "addmm_ view",
        "addr_",
        "copysign_",
        "renorm_",
        "logit_",
        "xlogy_",
        "hypot_",
    ],
)
def test_inplace_twins_match_torch(fn):
    """Written into the tensor itself (a view's base sees it), and differentiable when the
    tensor is part of a graph."""
    data = rng.standard_normal((7, 3))
    results = []
    for lib in (sg, torch):
        leaf = lib.tensor(data, requires_grad=True)
        base = leaf * 1
        out = fn(lib, base)
        (base * lib.tensor(np.arange(21.0).reshape(7, 3))).nan_to_num().sum().backward()
        results.append((_np(base), _np(out), _np(leaf.grad)))
        plain = lib.tensor(data)
        assert fn(lib, plain) is not None
        results.append((_np(plain),))
    for a, b in zip(results[0] + results[1], results[2] + results[3]):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10, equal_nan=True)


def test_properties_match_torch():
    for make in (lambda lib: lib.zeros(3, 2), lambda lib: lib.tensor([1, 2], dtype=lib.uint8)):
        ours, theirs = make(sg), make(torch)
        for name in ("is_cpu", "is_cuda", "nbytes", "itemsize"):
            assert getattr(ours, name) == getattr(theirs, name), name
        for name in ("get_device", "is_complex", "is_signed", "is_inference"):
            assert getattr(ours, name)() == getattr(theirs, name)(), name
    assert sg.tensor([2.0]).is_nonzero() and not sg.tensor([0]).is_nonzero()
    with pytest.raises(RuntimeError, match="more than one value"):
        sg.zeros(2).is_nonzero()


@pytest.mark.parametrize(
    "call",
    [
        lambda lib: lib.rot90(lib.ones(2, 3), 1, [0, 0]),
        lambda lib: lib.rot90(lib.ones(2), 1),
        lambda lib: lib.ones(5).unfold(0, 6, 1),
        lambda lib: lib.vsplit(lib.ones(4), 2),
        lambda lib: lib.ones(3, 4).index_copy(0, lib.tensor([0, 2]), lib.zeros(3, 4)),
        lambda lib: lib.ones(2, 3).sum_to_size(3, 3),
        lambda lib: lib.quantile(lib.ones(3, 4), 1.3),
        lambda lib: lib.heaviside(lib.tensor([1.0, 0]), lib.tensor([5, 5])),
        lambda lib: lib.zeros(2, 3, 4).fill_diagonal_(5),
        lambda lib: lib.zeros(3).uniform_(2, 1),
    ],
    ids=[
        "rot90 dims",
        "rot90 1-D",
        "unfold size",
        "vsplit 1-D",
        "index_copy count",
        "sum_to_size",
        "quantile q",
        "heaviside dtypes",
        "fill_diagonal_ shape",
        "uniform_",
    ],
)
def test_errors_match_torch(call):
    messages = []
    for lib in (sg, torch):
        with pytest.raises((RuntimeError, IndexError, ValueError)) as info:
            call(lib)
        messages.append((type(info.value).__name__, str(info.value)))
    assert messages[0] == messages[1]


# ---------------------------------------------------------------- in-place random fills
@pytest.mark.parametrize(
    "name, args, mean, std",
    [
        ("uniform_", (-2.0, 3.0), 0.5, 5 / np.sqrt(12)),
        ("normal_", (1.0, 2.0), 1.0, 2.0),
        ("bernoulli_", (0.3,), 0.3, np.sqrt(0.21)),
        ("random_", (2, 7), 4.0, np.sqrt((25 - 1) / 12)),
        ("exponential_", (2.0,), 0.5, 0.5),
        ("log_normal_", (0.0, 0.5), np.exp(0.125), np.sqrt((np.exp(0.25) - 1) * np.exp(0.25))),
        ("geometric_", (0.25,), 4.0, np.sqrt(0.75) / 0.25),
    ],
)
def test_random_fills_have_the_distributions_torch_draws(name, args, mean, std):
    sg.manual_seed(3)
    x = sg.empty(200_000, dtype=sg.float64)
    assert getattr(x, name)(*args) is x
    values = _np(x)
    assert abs(values.mean() - mean) < 5 * std / np.sqrt(values.size) + 1e-9
    assert abs(values.std() - std) < 0.02 * std
    t = getattr(torch.empty(200_000, dtype=torch.float64), name)(*args).cpu().numpy()
    assert values.min() >= t.min() - 6 * std and values.max() <= t.max() + 10 * std


def test_random_fills_respect_autograd_and_views():
    w = sg.zeros(3, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w.normal_()
    with sg.no_grad():
        w[0].uniform_(5, 6)  # a view writes into its base
    assert (_np(w)[0] >= 5).all() and (_np(w)[1:] == 0).all()
    y = w * 2
    y.normal_()
    y.sum().backward()
    np.testing.assert_array_equal(_np(w.grad), np.zeros((3, 4)))  # the draw depends on nothing
    ints = sg.zeros(1000, dtype=sg.int64).random_(3)
    assert set(np.unique(_np(ints))) == {0, 1, 2}
    cauchy = sg.empty(10_001, dtype=sg.float64).cauchy_(2.0, 0.5)
    assert abs(np.median(_np(cauchy)) - 2.0) < 0.05


# ---------------------------------------------------------------- scattering and bits
INTS_A, INTS_B = np.array([12, -18, 0, 7]), np.array([8, 12, 5, 3])


@pytest.mark.parametrize(
    "fn, arrays",
    [
        (lambda lib, a, b: lib.index_put(a, (lib.tensor([0, 2, 0]), lib.tensor([1, 1, 1])), b[:3]), (M[:3, :3], M[0])),
        (
            lambda lib, a, b: lib.index_put(a, (lib.tensor([0, 2, 0]),), b, accumulate=True),
            (M, M[1]),
        ),
        (lambda lib, a, b: a.index_put((a > 0,), b[0, 0]), (M, M)),
        (lambda lib, a, b: a.masked_scatter(a < 0, b), (M, M * 3)),
        (lambda lib, a, b: lib.diagonal_scatter(a, b[0, :4], 1), (M, M)),
        (lambda lib, a, b: lib.diagonal_scatter(a, b[0, :3], -1), (M, M)),
        (lambda lib, a, b: a.put(lib.tensor([0, 19, -1]), b[0, :3], accumulate=True), (M, M)),
        # float exponents: torch's own ldexp gradient is 0 for negative integer ones
        (lambda lib, a, b: lib.ldexp(a, lib.tensor([[1.0, -2.0, 0.0, 3.0, 1.0]])), (M, M)),
    ],
    ids=[
        "index_put", "index_put accumulate duplicates", "index_put mask", "masked_scatter",
        "diagonal_scatter", "diagonal_scatter below", "put accumulate", "ldexp",
    ],
)  # fmt: skip
def test_scattering_matches_torch(fn, arrays):
    both(fn, *arrays)


@pytest.mark.parametrize(
    "fn",
    [
        lambda lib, a, b: lib.gcd(a, b),
        lambda lib, a, b: lib.lcm(a, b),
        lambda lib, a, b: a.abs() << (b % 4),
        lambda lib, a, b: (a.abs() * 16) >> 2,
        lambda lib, a, b: lib.bitwise_left_shift(a, 1),
        lambda lib, a, b: lib.frexp(a.double() * 0.37),
        lambda lib, a, b: lib.nextafter(a.double(), b.double()),
    ],
    ids=["gcd", "lcm", "lshift", "rshift", "bitwise_left_shift", "frexp", "nextafter"],
)
def test_integer_and_float_bits_match_torch(fn):
    both(fn, INTS_A, INTS_B, grad=False)


def test_inplace_scatters_match_torch():
    for lib in (sg, torch):
        x = lib.zeros(3, 3)
        x.index_put_(
            (lib.tensor([0, 0]), lib.tensor([1, 1])), lib.tensor([2.0, 3.0]), accumulate=True
        )
        x.masked_scatter_(x == 0, lib.arange(1.0, 9.0))
        x.put_(lib.tensor([8]), lib.tensor([-1.0]))
        if lib is sg:
            ours = x.tolist()
        else:
            assert ours == x.tolist()
    with pytest.raises(NotImplementedError, match="gcd_cpu"):
        sg.gcd(sg.tensor([1.0]), sg.tensor([2.0]))
