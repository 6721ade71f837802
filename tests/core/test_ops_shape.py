"""Shape ops against torch: values, gradients, grad_fn names, view semantics, error types,
finite-difference checks (first and second order) and property tests against numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import shardgrad as sg
from tests.conftest import assert_close

RNG = np.random.default_rng(7)


def _arr(*shape):
    return RNG.standard_normal(shape)


def run_both(fn, *arrays, check_name=True):
    """Run `fn(module, *tensors)` in shardgrad and torch on the same float64 data; compare the
    outputs, the grad_fn names and the gradients for a random upstream gradient."""
    s_in = [sg.tensor(a, requires_grad=True) for a in arrays]
    t_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    s_out, t_out = fn(sg, *s_in), fn(torch, *t_in)
    single = not isinstance(t_out, (tuple, list))
    s_outs = [s_out] if single else list(s_out)
    t_outs = [t_out] if single else list(t_out)
    assert len(s_outs) == len(t_outs)
    for s, t in zip(s_outs, t_outs):
        assert_close(s, t)
        assert s.dtype.name == str(t.dtype).removeprefix("torch.")
        if check_name and t.grad_fn is not None:
            assert s.grad_fn is not None and s.grad_fn.name() == t.grad_fn.name()
    gouts = [RNG.standard_normal(tuple(t.shape)) for t in t_outs]
    sg.autograd.backward(s_outs, [sg.tensor(g) for g in gouts])
    torch.autograd.backward(t_outs, [torch.tensor(g) for g in gouts])
    for s, t in zip(s_in, t_in):
        if t.grad is None:
            assert s.grad is None or not np.any(s.grad.numpy())
        else:
            assert_close(s.grad, t.grad)
    return s_out, t_out


CASES = {
    "reshape": (lambda m, x: x.reshape(3, 4), [(2, 6)]),
    "reshape_infer": (lambda m, x: m.reshape(x, (-1, 2)), [(2, 3, 2)]),
    "reshape_noncontig": (lambda m, x: x.t().reshape(-1), [(3, 4)]),
    "view": (lambda m, x: x.view(4, 3), [(2, 6)]),
    "view_tuple": (lambda m, x: x.view((2, 2, 3)), [(12,)]),
    "view_as": (lambda m, x, y: x.view_as(y), [(2, 6), (3, 4)]),
    "reshape_as": (lambda m, x, y: x.reshape_as(y), [(2, 6), (4, 3)]),
    "flatten": (lambda m, x: x.flatten(), [(2, 3, 4)]),
    "flatten_mid": (lambda m, x: m.flatten(x, 1, 2), [(2, 3, 4, 2)]),
    "ravel": (lambda m, x: x.ravel(), [(2, 3)]),
    "unflatten": (lambda m, x: x.unflatten(1, (2, -1)), [(3, 6)]),
    "transpose": (lambda m, x: x.transpose(0, 2), [(2, 3, 4)]),
    "swapdims": (lambda m, x: m.swapdims(x, -1, 0), [(2, 3)]),
    "swapaxes": (lambda m, x: x.swapaxes(0, 1), [(2, 3)]),
    "permute": (lambda m, x: x.permute(2, 0, 1), [(2, 3, 4)]),
    "permute_tuple": (lambda m, x: m.permute(x, (1, -1, 0)), [(2, 3, 4)]),
    "t": (lambda m, x: x.t(), [(2, 3)]),
    "T": (lambda m, x: x.T, [(2, 3)]),
    "mT": (lambda m, x: x.mT, [(4, 2, 3)]),
    "unsqueeze": (lambda m, x: x.unsqueeze(1), [(2, 3)]),
    "unsqueeze_neg": (lambda m, x: m.unsqueeze(x, -1), [(2, 3)]),
    "squeeze": (lambda m, x: x.squeeze(), [(2, 1, 3, 1)]),
    "squeeze_dim": (lambda m, x: x.squeeze(1), [(2, 1, 3)]),
    "squeeze_dims": (lambda m, x: x.squeeze((0, 2)), [(1, 3, 1)]),
    "squeeze_noop": (lambda m, x: x.squeeze(0), [(2, 3)]),
    "expand": (lambda m, x: x.expand(4, 2, 3), [(2, 1)]),
    "expand_neg1": (lambda m, x: x.expand(-1, 5), [(3, 1)]),
    "expand_as": (lambda m, x, y: x.expand_as(y), [(1, 3), (2, 3)]),
    "broadcast_to": (lambda m, x: m.broadcast_to(x, (2, 3, 3)), [(3,)]),
    "contiguous": (lambda m, x: x.t().contiguous(), [(2, 3)]),
    "repeat": (lambda m, x: x.repeat(2, 3), [(2, 3)]),
    "repeat_lead": (lambda m, x: x.repeat(2, 1, 2), [(2, 3)]),
    "tile": (lambda m, x: m.tile(x, (2,)), [(2, 3)]),
    "tile_more": (lambda m, x: x.tile((2, 1, 2)), [(3,)]),
    "flip": (lambda m, x: m.flip(x, (0, 2)), [(2, 3, 4)]),
    "flip_method": (lambda m, x: x.flip(-1), [(2, 3)]),
    "fliplr": (lambda m, x: m.fliplr(x), [(2, 3)]),
    "flipud": (lambda m, x: m.flipud(x), [(2, 3)]),
    "roll_flat": (lambda m, x: m.roll(x, 2), [(2, 3)]),
    "roll_dims": (lambda m, x: x.roll((1, -1), (0, 1)), [(3, 4)]),
    "roll_one_dim": (lambda m, x: x.roll(-2, 1), [(3, 4)]),
    "narrow": (lambda m, x: x.narrow(1, 1, 2), [(3, 4)]),
    "narrow_neg": (lambda m, x: m.narrow(x, 0, -2, 2), [(3, 4)]),
    "movedim": (lambda m, x: m.movedim(x, 0, -1), [(2, 3, 4)]),
    "movedim_multi": (lambda m, x: x.movedim((0, 1), (2, 0)), [(2, 3, 4)]),
    "moveaxis": (lambda m, x: m.moveaxis(x, -1, 0), [(2, 3, 4)]),
    "diagonal": (lambda m, x: x.diagonal(), [(3, 4)]),
    "diagonal_offset": (lambda m, x: m.diagonal(x, 1), [(3, 4)]),
    "diagonal_neg_offset": (lambda m, x: x.diagonal(-1), [(4, 3)]),
    "diagonal_dims": (lambda m, x: x.diagonal(0, 0, 2), [(3, 2, 3)]),
    "diagonal_batched": (lambda m, x: m.diagonal(x, 1, -2, -1), [(2, 3, 4)]),
    "diag_vec": (lambda m, x: m.diag(x), [(3,)]),
    "diag_vec_offset": (lambda m, x: m.diag(x, -2), [(3,)]),
    "diag_mat": (lambda m, x: m.diag(x), [(3, 4)]),
    "diag_mat_offset": (lambda m, x: x.diag(1), [(3, 4)]),
    "diag_embed": (lambda m, x: m.diag_embed(x), [(2, 3)]),
    "triu": (lambda m, x: m.triu(x), [(3, 4)]),
    "triu_offset": (lambda m, x: x.triu(1), [(2, 3, 3)]),
    "tril": (lambda m, x: m.tril(x), [(4, 3)]),
    "tril_offset": (lambda m, x: x.tril(-1), [(2, 3, 3)]),
    "broadcast_tensors": (lambda m, x, y: m.broadcast_tensors(x, y), [(3, 1), (1, 4)]),
    "atleast_2d": (lambda m, x: m.atleast_2d(x), [(3,)]),
    "atleast_3d": (lambda m, x: m.atleast_3d(x), [(2, 3)]),
    "chain": (lambda m, x: x.t().unsqueeze(0).expand(2, 3, 2).flatten(1).flip(0), [(2, 3)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(name):
    fn, shapes = CASES[name]
    run_both(fn, *[_arr(*s) for s in shapes])


# Differentiable ops for the finite-difference checks: small inputs keep them quick.
GRADCHECK = [
    "reshape_noncontig",
    "view",
    "flatten_mid",
    "unflatten",
    "permute",
    "mT",
    "squeeze_dims",
    "expand",
    "broadcast_to",
    "contiguous",
    "repeat_lead",
    "tile",
    "flip",
    "roll_flat",
    "roll_dims",
    "narrow",
    "movedim_multi",
    "diagonal_offset",
    "diagonal_dims",
    "diag_vec",
    "diag_mat_offset",
    "diag_embed",
    "triu_offset",
    "tril",
    "chain",
]


@pytest.mark.parametrize("name", GRADCHECK)
def test_gradcheck(name):
    fn, shapes = CASES[name]
    inputs = tuple(sg.tensor(_arr(*s), requires_grad=True) for s in shapes)
    assert sg.autograd.gradcheck(lambda *xs: fn(sg, *xs), inputs)
    assert sg.autograd.gradgradcheck(lambda *xs: fn(sg, *xs), inputs)


def test_gradcheck_catches_a_wrong_backward():
    """The finite-difference check itself must be able to fail."""

    class Wrong(sg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.flip(0)

        @staticmethod
        def backward(ctx, g):
            return g

    x = sg.tensor(_arr(3), requires_grad=True)
    assert not sg.autograd.gradcheck(Wrong.apply, (x,), raise_exception=False)


# ---------------------------------------------------------------- views
VIEWS = {
    "reshape": lambda x: x.reshape(4, 3),
    "view": lambda x: x.view(-1),
    "flatten": lambda x: x.flatten(),
    "transpose": lambda x: x.transpose(0, 1),
    "permute": lambda x: x.permute(1, 0),
    "t": lambda x: x.t(),
    "unsqueeze": lambda x: x.unsqueeze(0),
    "squeeze": lambda x: x.unsqueeze(1).squeeze(1),
    "expand": lambda x: x.unsqueeze(0).expand(2, 3, 4),
    "narrow": lambda x: x.narrow(1, 1, 2),
    "diagonal": lambda x: x.diagonal(),
    "movedim": lambda x: x.movedim(0, 1),
    "unflatten": lambda x: x.unflatten(1, (2, 2)),
    "view_as": lambda x: x.view_as(sg.zeros(2, 6)),
}


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_views_share_memory_and_version(name):
    base = sg.tensor(np.arange(12.0).reshape(3, 4))
    v = VIEWS[name](base)
    assert v._is_view() and v._base is base
    before = v._version
    base.add_(100.0)
    assert v._version == base._version == before + 1
    assert np.all(v.numpy() >= 100.0)  # the view sees the write into its base
    np.testing.assert_array_equal(v.numpy(), VIEWS[name](sg.tensor(base.numpy().copy())).numpy())


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x.flip(0),
        lambda x: x.roll(1),
        lambda x: x.repeat(1, 1),
        lambda x: x.triu(),
        lambda x: sg.diag(x),
        lambda x: x.t().reshape(-1),
        lambda x: x.t().contiguous(),
    ],
)
def test_copies_do_not_alias(make):
    base = sg.tensor(np.arange(12.0).reshape(3, 4))
    out = make(base)
    assert not out._is_view()
    snapshot = out.numpy().copy()
    base.add_(1.0)
    np.testing.assert_array_equal(out.numpy(), snapshot)


def test_writes_through_views_reach_the_base():
    x = sg.zeros(3, 3)
    x.diagonal().fill_(1.0)
    x.t()[0].add_(2.0)  # column 0 of x
    x.view(9)[8] = 5.0
    t = torch.zeros(3, 3)
    t.diagonal().fill_(1.0)
    t.t()[0].add_(2.0)
    t.view(9)[8] = 5.0
    assert_close(x, t)


def test_view_of_non_contiguous_refuses_like_torch():
    x = sg.tensor(_arr(3, 4)).t()
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        x.view(12)
    assert x.reshape(12).shape == (12,)
    assert x.view(4, 3).shape == (4, 3)  # same shape: still a view
    assert x.unsqueeze(0).view(4, 3).shape == (4, 3)


def test_view_dtype_reinterprets_bits():
    x = sg.tensor([1.0, 2.0], dtype=sg.float32)
    t = torch.tensor([1.0, 2.0], dtype=torch.float32)
    np.testing.assert_array_equal(x.view(sg.int32).numpy(), t.view(torch.int32).numpy())


def test_contiguous_and_expand_return_self_when_nothing_changes():
    x = sg.tensor(_arr(2, 3), requires_grad=True)
    assert x.contiguous() is x
    assert x.flatten(1, 1) is x
    assert not x.t().is_contiguous() and x.t().contiguous().is_contiguous()


def test_diag_of_vector_and_matrix_round_trip():
    v = sg.tensor(_arr(4))
    assert_close(sg.diag(sg.diag(v)), v)
    assert_close(sg.diag(v, 2), torch.diag(torch.tensor(v.numpy()), 2))


def test_broadcast_shapes():
    assert sg.broadcast_shapes((3, 1), (1, 4), (4,)) == torch.broadcast_shapes((3, 1), (1, 4), (4,))
    with pytest.raises(RuntimeError):
        sg.broadcast_shapes((2,), (3,))


# ---------------------------------------------------------------- errors
ERRORS = {
    "reshape_bad": lambda m, x: x.reshape(5),
    "view_two_infer": lambda m, x: x.view(-1, -1),
    "view_bad": lambda m, x: x.view(7),
    "expand_bad": lambda m, x: x.expand(3, 3),
    "expand_fewer": lambda m, x: x.expand(3),
    "expand_lead_neg": lambda m, x: x.expand(-1, 2, 3),
    "permute_len": lambda m, x: x.permute(0),
    "permute_dup": lambda m, x: x.permute(0, 0),
    "transpose_oob": lambda m, x: x.transpose(0, 2),
    "squeeze_oob": lambda m, x: x.squeeze(2),
    "unsqueeze_oob": lambda m, x: x.unsqueeze(3),
    "flatten_order": lambda m, x: x.flatten(1, 0),
    "unflatten_bad": lambda m, x: x.unflatten(1, (2, 2)),
    "t_3d": lambda m, x: x.unsqueeze(0).t(),
    "mT_1d": lambda m, x: x[0].mT,
    "repeat_few": lambda m, x: x.repeat(2),
    "repeat_negative": lambda m, x: x.repeat(-1, 1),
    "flip_dup": lambda m, x: x.flip(0, 0),
    "flip_oob": lambda m, x: x.flip(2),
    "roll_mismatch": lambda m, x: x.roll((1, 2), (0,)),
    "roll_no_dims_two_shifts": lambda m, x: x.roll((1, 2)),
    "narrow_past_end": lambda m, x: x.narrow(1, 2, 2),
    "narrow_start_oob": lambda m, x: x.narrow(1, 4, 0),
    "narrow_0d": lambda m, x: x[0, 0].narrow(0, 0, 1),
    "movedim_dup": lambda m, x: x.movedim((0, 1), (0, 0)),
    "movedim_len": lambda m, x: x.movedim((0, 1), (0,)),
    "diagonal_same_dims": lambda m, x: x.diagonal(0, 1, 1),
    "diag_3d": lambda m, x: m.diag(x.unsqueeze(0)),
    "triu_1d": lambda m, x: m.triu(x[0]),
    "tril_1d": lambda m, x: m.tril(x[0]),
    "broadcast_bad": lambda m, x: m.broadcast_tensors(x, x[:, :2]),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_errors_match_torch(name):
    fn = ERRORS[name]
    data = _arr(2, 3)
    with pytest.raises(Exception) as expected:
        fn(torch, torch.tensor(data))
    with pytest.raises(expected.type):
        fn(sg, sg.tensor(data))


# ---------------------------------------------------------------- property tests
@st.composite
def shape_and_factorisation(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
    n = int(np.prod(shape))
    factors, rest = [], n
    for _ in range(draw(st.integers(0, 3))):
        divisors = [d for d in range(1, rest + 1) if rest % d == 0]
        d = draw(st.sampled_from(divisors))
        factors.append(d)
        rest //= d
    factors.append(rest)
    if draw(st.booleans()):
        factors[draw(st.integers(0, len(factors) - 1))] = -1
    return shape, tuple(factors)


@settings(max_examples=40, deadline=None)
@given(shape_and_factorisation(), st.booleans())
def test_reshape_round_trip(case, transpose_first):
    shape, target = case
    a = np.arange(float(np.prod(shape))).reshape(shape)
    x = sg.tensor(a, requires_grad=True)
    src = x.mT if transpose_first and len(shape) >= 2 else x
    ref = a.swapaxes(-1, -2) if transpose_first and len(shape) >= 2 else a
    y = src.reshape(target)
    np.testing.assert_array_equal(y.detach().numpy(), ref.reshape(target))
    back = y.reshape(src.shape)
    np.testing.assert_array_equal(back.detach().numpy(), ref)
    back.backward(sg.ones(*src.shape))
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(shape))


@settings(max_examples=40, deadline=None)
@given(
    hnp.array_shapes(min_dims=1, max_dims=5, max_side=3).flatmap(
        lambda s: st.tuples(st.just(s), st.permutations(range(len(s))))
    )
)
def test_permute_matches_numpy_and_inverts(case):
    shape, perm = case
    a = RNG.standard_normal(shape)
    x = sg.tensor(a, requires_grad=True)
    y = x.permute(*perm)
    np.testing.assert_array_equal(y.detach().numpy(), a.transpose(perm))
    inverse = tuple(int(i) for i in np.argsort(perm))
    np.testing.assert_array_equal(y.permute(inverse).detach().numpy(), a)
    g = RNG.standard_normal(y.shape)
    y.backward(sg.tensor(g))
    t = torch.tensor(a, requires_grad=True)
    t.permute(*perm).backward(torch.tensor(g))
    assert_close(x.grad, t.grad)


@st.composite
def expandable(draw):
    target = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=3))
    k = draw(st.integers(0, len(target)))
    src = tuple(1 if draw(st.booleans()) else s for s in target[k:])
    return src, target


@settings(max_examples=40, deadline=None)
@given(expandable())
def test_expand_matches_numpy_broadcast_and_sums_back(case):
    src, target = case
    a = RNG.standard_normal(src)
    x = sg.tensor(a, requires_grad=True)
    y = x.expand(*target)
    np.testing.assert_array_equal(y.detach().numpy(), np.broadcast_to(a, target))
    g = RNG.standard_normal(target)
    y.backward(sg.tensor(g))
    t = torch.tensor(a, requires_grad=True)
    t.expand(*target).backward(torch.tensor(g))
    assert_close(x.grad, t.grad)


# ---------------------------------------------------------------- join and split
JOIN = {
    "cat": (lambda m, x, y: m.cat([x, y]), [(2, 3), (1, 3)]),
    "cat_dim1": (lambda m, x, y, z: m.cat((x, y, z), 1), [(2, 1), (2, 3), (2, 2)]),
    "cat_neg_dim": (lambda m, x, y: m.cat([x, y], dim=-1), [(2, 2, 1), (2, 2, 3)]),
    "cat_legacy_empty": (lambda m, x, y: m.cat([x, y, x]), [(2, 3), (0,)]),
    "concat": (lambda m, x, y: m.concat([x, y], 0), [(1, 2), (3, 2)]),
    "concatenate": (lambda m, x, y: m.concatenate([x, y], 1), [(2, 1), (2, 2)]),
    "stack": (lambda m, x, y: m.stack([x, y]), [(2, 3), (2, 3)]),
    "stack_mid": (lambda m, x, y, z: m.stack((x, y, z), 1), [(2, 3), (2, 3), (2, 3)]),
    "stack_last": (lambda m, x, y: m.stack([x, y], -1), [(3,), (3,)]),
    "hstack_1d": (lambda m, x, y: m.hstack([x, y]), [(2,), (3,)]),
    "hstack_2d": (lambda m, x, y: m.hstack([x, y]), [(2, 1), (2, 3)]),
    "vstack_1d": (lambda m, x, y: m.vstack([x, y]), [(3,), (3,)]),
    "vstack_2d": (lambda m, x, y: m.vstack((x, y)), [(1, 3), (2, 3)]),
    "row_stack": (lambda m, x, y: m.row_stack((x, y)), [(3,), (2, 3)]),
    "dstack": (lambda m, x, y: m.dstack([x, y]), [(2, 3), (2, 3)]),
    "column_stack": (lambda m, x, y: m.column_stack([x, y]), [(3,), (3, 2)]),
    "split_int": (lambda m, x: x.split(2), [(5, 2)]),
    "split_fn": (lambda m, x: m.split(x, 2, dim=1), [(2, 5)]),
    "split_sizes": (lambda m, x: x.split([1, 3, 0, 1]), [(5, 2)]),
    "chunk": (lambda m, x: x.chunk(3, 1), [(2, 7)]),
    "chunk_fewer": (lambda m, x: m.chunk(x, 4), [(6,)]),
    "unbind": (lambda m, x: x.unbind(1), [(2, 3)]),
    "unbind_fn": (lambda m, x: m.unbind(x), [(3, 2)]),
    "tensor_split_n": (lambda m, x: m.tensor_split(x, 3), [(7, 2)]),
    "tensor_split_idx": (lambda m, x: x.tensor_split([1, 4], 1), [(2, 6)]),
    "split_then_join": (lambda m, x: m.cat(x.chunk(2)[::-1]) * m.stack(x.unbind(0)), [(2, 3)]),
}


@pytest.mark.parametrize("name", sorted(JOIN))
def test_join_matches_torch(name):
    fn, shapes = JOIN[name]
    run_both(fn, *[_arr(*s) for s in shapes])


@pytest.mark.parametrize(
    "name",
    [
        "cat_dim1",
        "stack_mid",
        "hstack_1d",
        "dstack",
        "split_sizes",
        "chunk",
        "unbind",
        "tensor_split_idx",
        "split_then_join",
    ],
)
def test_join_gradcheck(name):
    fn, shapes = JOIN[name]
    inputs = tuple(sg.tensor(_arr(*s), requires_grad=True) for s in shapes)
    assert sg.autograd.gradcheck(lambda *xs: fn(sg, *xs), inputs)
    assert sg.autograd.gradgradcheck(lambda *xs: fn(sg, *xs), inputs)


@pytest.mark.parametrize(
    "maker", [lambda x: x.split(2), lambda x: x.unbind(), lambda x: x.chunk(3)]
)
def test_using_some_pieces_of_a_split(maker):
    data = _arr(6)
    x, t = sg.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    (maker(x)[1] * 3.0).sum().backward()
    (maker(t)[1] * 3.0).sum().backward()
    assert_close(x.grad, t.grad)
    pieces = maker(sg.tensor(data))
    assert all(p._is_view() for p in pieces)


def test_cat_and_stack_promote_dtypes_like_torch():
    for fn in (lambda m, a, b: m.cat([a, b]), lambda m, a, b: m.stack([a, b])):
        for da, db in (
            (torch.float32, torch.float64),
            (torch.int64, torch.float32),
            (torch.bool, torch.int64),
        ):
            a, b = torch.ones(2, dtype=da), torch.ones(2, dtype=db)
            sa = sg.ones(2, dtype=getattr(sg, str(da).removeprefix("torch.")))
            sb = sg.ones(2, dtype=getattr(sg, str(db).removeprefix("torch.")))
            assert fn(sg, sa, sb).dtype.name == str(fn(torch, a, b).dtype).removeprefix("torch.")


def test_cat_gradient_keeps_each_input_dtype():
    a = sg.ones(2, dtype=sg.float32, requires_grad=True)
    b = sg.ones(2, dtype=sg.float64, requires_grad=True)
    sg.cat([a, b]).sum().backward()
    assert a.grad.dtype == sg.float32 and b.grad.dtype == sg.float64


JOIN_ERRORS = {
    "cat_empty": lambda m, x: m.cat([]),
    "cat_sizes": lambda m, x: m.cat([x, x[:, :2]]),
    "cat_ndim": lambda m, x: m.cat([x, x[0]]),
    "cat_0d": lambda m, x: m.cat([x[0, 0], x[0, 1]]),
    "cat_dim_oob": lambda m, x: m.cat([x, x], 2),
    "cat_tensor_arg": lambda m, x: m.cat(x),
    "stack_sizes": lambda m, x: m.stack([x, x[:, :2]]),
    "stack_empty": lambda m, x: m.stack([]),
    "stack_dim_oob": lambda m, x: m.stack([x, x], 3),
    "split_bad_sizes": lambda m, x: x.split([1, 2]),
    "split_zero": lambda m, x: x.split(0),
    "chunk_zero": lambda m, x: x.chunk(0),
    "unbind_0d": lambda m, x: x[0, 0].unbind(),
    "split_dim_oob": lambda m, x: x.split(1, 2),
}


@pytest.mark.parametrize("name", sorted(JOIN_ERRORS))
def test_join_errors_match_torch(name):
    fn = JOIN_ERRORS[name]
    data = _arr(2, 3)
    with pytest.raises(Exception) as expected:
        fn(torch, torch.tensor(data))
    with pytest.raises(expected.type):
        fn(sg, sg.tensor(data))
