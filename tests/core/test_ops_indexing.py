"""Indexing and the index ops against torch: reads and writes with every index form, gather /
scatter / index_select / index_add / masked_* / take / one_hot / nonzero, their gradients,
grad_fn names, error types and finite-difference checks, plus property tests of basic
indexing against numpy."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import shardgrad as sg
from tests.conftest import assert_close

RNG = np.random.default_rng(11)


def _arr(*shape):
    return RNG.standard_normal(shape)


def _both(value):
    """The same index (or other argument) for shardgrad and for torch."""
    if isinstance(value, np.ndarray):
        return sg.tensor(value), torch.tensor(value)
    if isinstance(value, tuple):
        pairs = [_both(v) for v in value]
        return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
    return value, value


def run_both(fn, *arrays, check_name=True):
    """`fn(module, *tensors)` in both libraries; compare values, names and gradients."""
    s_in = [sg.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    t_in = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    s_out, t_out = fn(sg, *s_in), fn(torch, *t_in)
    single = not isinstance(t_out, (tuple, list))
    s_outs = [s_out] if single else list(s_out)
    t_outs = [t_out] if single else list(t_out)
    for s, t in zip(s_outs, t_outs):
        assert_close(s, t)
        assert s.dtype.name == str(t.dtype).removeprefix("torch.")
        if check_name and t.grad_fn is not None:
            assert s.grad_fn.name() == type(t.grad_fn).__name__
    diff = [(s, t) for s, t in zip(s_outs, t_outs) if t.requires_grad]
    if diff:
        gouts = [RNG.standard_normal(tuple(t.shape)) for _, t in diff]
        sg.autograd.backward([s for s, _ in diff], [sg.tensor(g) for g in gouts])
        torch.autograd.backward([t for _, t in diff], [torch.tensor(g) for g in gouts])
        for s, t in zip(s_in, t_in):
            if t.grad is not None:
                assert_close(s.grad, t.grad)
    return s_out, t_out


# ---------------------------------------------------------------- x[idx]
IDX = {
    "int": 1,
    "neg_int": -1,
    "slice": slice(1, None),
    "full_slice": slice(None),
    "step": slice(None, None, 2),
    "tuple_int_slice": (0, slice(1, 3)),
    "slice_then_int": (slice(None), 1),
    "two_ints": (1, 2),
    "scalar_read": (1, 2, 3),
    "ellipsis": (Ellipsis, 1),
    "ellipsis_only": Ellipsis,
    "none": None,
    "none_mid": (slice(None), None, 0),
    "list": [0, 2, 0],
    "int_array": np.array([[0, 1], [2, 0]]),
    "int_array_neg": np.array([-1, 0]),
    "two_arrays": (np.array([0, 2]), np.array([1, 3])),
    "array_slice": (np.array([2, 0]), slice(1, 3)),
    "split_arrays": (np.array([0, 1]), slice(None), np.array([3, 1])),
    "array_broadcast": (np.array([[0], [2]]), 0, np.array([1, 2, 3])),
    "mask_full": np.arange(60).reshape(3, 4, 5) % 3 == 0,
    "mask_lead": np.array([True, False, True]),
    "mask_2d": np.arange(12).reshape(3, 4) % 2 == 0,
    "mask_then_slice": (np.array([False, True, True]), slice(0, 2)),
    "zero_d_int_tensor": np.array(1),
    "ellipsis_none_mask": (Ellipsis, None, np.arange(5) > 2),
    "bool_scalar": True,
}


@pytest.mark.parametrize("name", sorted(IDX))
def test_getitem_matches_torch(name):
    s_idx, t_idx = _both(IDX[name])
    s_out, _ = run_both(lambda m, x: x[s_idx if m is sg else t_idx], _arr(3, 4, 5))
    basic = all(
        i is None or i is Ellipsis or isinstance(i, (int, slice))
        for i in (IDX[name] if isinstance(IDX[name], tuple) else (IDX[name],))
    ) and not isinstance(IDX[name], bool)
    assert s_out._is_view() == (basic or name == "zero_d_int_tensor")


@pytest.mark.parametrize(
    "make",
    [
        lambda m: [[0, 1], [2, 2]],
        lambda m: [m.tensor([0, 2]), m.tensor([1, 1])],
        lambda m: [0, slice(1, 3)],
        lambda m: [m.tensor(1), None, 2],
    ],
)
def test_short_list_of_sequences_is_read_as_a_tuple(make):
    """torch's legacy rule (numpy's before 1.23), deprecated with a warning in both."""
    data = _arr(3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = torch.tensor(data)[make(torch)]
    with pytest.warns(UserWarning, match="non-tuple sequence"):
        out = sg.tensor(data)[make(sg)]
    assert_close(out, ref)


def test_getitem_repeated_indices_sum_gradients():
    run_both(lambda m, x: x[[0, 0, 2, 0]], _arr(3, 2))
    run_both(lambda m, x: x[m.tensor([1, 1]), 0], _arr(3, 2))


def test_getitem_of_0d_and_with_int32_and_uint8_indices():
    run_both(lambda m, x: x[None], np.array(2.5))
    run_both(lambda m, x: x[...], np.array(2.5))
    run_both(lambda m, x: x[m.tensor([0, 2], dtype=m.int32)], _arr(3, 2))
    x, t = sg.tensor(_arr(2, 3)), None
    t = torch.tensor(x.numpy())
    with pytest.warns(UserWarning):
        out = x[sg.tensor([1, 0], dtype=sg.uint8)]
    with pytest.warns(UserWarning):
        ref = t[torch.tensor([1, 0], dtype=torch.uint8)]
    assert_close(out, ref)


def test_basic_reads_are_views_that_track_writes():
    x = sg.tensor(np.arange(12.0).reshape(3, 4))
    row, col = x[1], x[:, 2]
    x.mul_(2.0)
    np.testing.assert_array_equal(row.numpy(), [8.0, 10.0, 12.0, 14.0])
    np.testing.assert_array_equal(col.numpy(), [4.0, 12.0, 20.0])
    picked = x[[0, 1]]
    x.zero_()
    assert picked.numpy().sum() > 0  # advanced indexing copies


@pytest.mark.parametrize(
    "idx",
    [slice(None, None, -1), (slice(None), slice(3, 0, -1)), (0, slice(None, None, -2))],
)
def test_negative_step_raises_value_error_like_torch(idx):
    x = sg.tensor(_arr(3, 4))
    with pytest.raises(ValueError, match="step must be greater than zero"):
        torch.tensor(x.numpy())[idx]
    with pytest.raises(ValueError, match="step must be greater than zero"):
        x[idx]
    with pytest.raises(ValueError, match="step must be greater than zero"):
        x[idx] = 0.0


GETITEM_ERRORS = {
    "int_oob": lambda m, x: x[3],
    "neg_oob": lambda m, x: x[-4],
    "array_oob": lambda m, x: x[m.tensor([3])],
    "float": lambda m, x: x[1.0],
    "float_tensor": lambda m, x: x[m.tensor([1.0])],
    "too_many": lambda m, x: x[0, 0, 0],
    "mask_shape": lambda m, x: x[m.tensor([True, False])],
    "zero_d": lambda m, x: x[0, 0][0],
    "step_zero": lambda m, x: x[::0],
}


@pytest.mark.parametrize("name", sorted(GETITEM_ERRORS))
def test_getitem_errors_match_torch(name):
    data = _arr(3, 4)
    with pytest.raises(Exception) as expected:
        GETITEM_ERRORS[name](torch, torch.tensor(data))
    with pytest.raises(expected.type):
        GETITEM_ERRORS[name](sg, sg.tensor(data))


# ---------------------------------------------------------------- x[idx] = value
SET = {
    "int_scalar": (1, 5.0),
    "slice_tensor": ((slice(None), slice(1, 3)), np.ones((3, 2))),
    "broadcast_row": (slice(0, 2), np.arange(4.0)),
    "mask_scalar": (np.arange(12).reshape(3, 4) % 3 == 0, -1.0),
    "mask_values": (np.arange(12).reshape(3, 4) > 7, np.arange(4.0)),
    "int_array": (np.array([2, 0]), np.full((2, 4), 3.0)),
    "arrays_pair": ((np.array([0, 2]), np.array([1, 3])), np.array([7.0, 8.0])),
    "ellipsis": ((Ellipsis, 0), 2.0),
    "leading_ones_value": ((0, slice(None)), np.ones((1, 4))),
}


@pytest.mark.parametrize("name", sorted(SET))
def test_setitem_without_grad_writes_in_place(name):
    idx, value = SET[name]
    s_idx, t_idx = _both(idx)
    s_val, t_val = _both(value)
    data = _arr(3, 4)
    x, t = sg.tensor(data), torch.tensor(data)
    alias = x.view(-1)
    x[s_idx] = s_val
    t[t_idx] = t_val
    assert_close(x, t)
    assert x._version == t._version == 1
    assert_close(alias, t.view(-1))  # written into the same memory


@pytest.mark.parametrize("name", sorted(SET))
def test_setitem_on_non_leaf_is_differentiable(name):
    idx, value = SET[name]
    s_idx, t_idx = _both(idx)
    data = _arr(3, 4)
    vdata = value if isinstance(value, np.ndarray) else np.array(value)

    def fn(m, x, v):
        y = x * 2.0
        y[s_idx if m is sg else t_idx] = v * 3.0 if vdata.ndim else (v * 3.0).reshape(())
        return y * y

    run_both(fn, data, np.asarray(vdata, dtype=np.float64))


def test_setitem_value_requires_grad_into_plain_buffer():
    def fn(m, w):
        buf = m.zeros(4, 3, dtype=m.float64)
        for i in range(4):
            buf[i] = w * (i + 1)
        return buf

    s, t = run_both(fn, _arr(3))
    assert type(t.grad_fn).__name__ == "CopySlices" == s.grad_fn.name()


def test_setitem_on_leaf_requiring_grad_refuses():
    x = sg.tensor(_arr(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x[0] = 1.0
    with sg.no_grad():
        x[0] = 1.0  # what optimizers and initialisers do
    assert x[0].item() == 1.0 and x.is_leaf and x.requires_grad


def test_setitem_errors_match_torch():
    for fn in (
        lambda m, x: x.__setitem__(5, 1.0),
        lambda m, x: x.__setitem__(0, m.ones(2)),
        lambda m, x: x.__setitem__((slice(None), 0), m.ones(4)),
    ):
        with pytest.raises(Exception) as expected:
            fn(torch, torch.zeros(3, 4))
        with pytest.raises(expected.type):
            fn(sg, sg.zeros(3, 4))


def test_setitem_casts_the_value_like_torch():
    x, t = sg.zeros(3, dtype=sg.int64), torch.zeros(3, dtype=torch.int64)
    x[0], t[0] = 2.7, 2.7
    x[1:], t[1:] = sg.tensor([1.9, -1.9]), torch.tensor([1.9, -1.9])
    np.testing.assert_array_equal(x.numpy(), t.numpy())


def test_augmented_assignment_through_a_slice():
    def fn(m, x):
        y = x * 1.0
        y[1:3] *= 2.0
        y[:, 0] += y[:, 1]
        return y

    run_both(fn, _arr(4, 3), check_name=False)


# ---------------------------------------------------------------- index ops
IDX2 = np.array([[0, 1, 0], [1, 0, 1]])
OPS = {
    "gather": (lambda m, x: x.gather(1, m.tensor(IDX2)), [(2, 3)]),
    "gather_dim0": (lambda m, x: m.gather(x, 0, m.tensor([[1, 0, 1]])), [(2, 3)]),
    "gather_small_index": (lambda m, x: x.gather(1, m.tensor([[2], [0]])), [(2, 3)]),
    "gather_neg_dim": (lambda m, x: x.gather(-1, m.tensor(IDX2)), [(2, 3)]),
    "scatter_src": (lambda m, x, s: x.scatter(1, m.tensor([[2, 0], [1, 2]]), s), [(2, 3), (2, 2)]),
    "scatter_value": (lambda m, x: x.scatter(1, m.tensor([[2], [0]]), 0.5), [(2, 3)]),
    "scatter_add": (lambda m, x, s: x.scatter_add(1, m.tensor(IDX2), s), [(2, 3), (2, 3)]),
    "scatter_add_fn": (
        lambda m, x, s: m.scatter_add(x, 0, m.tensor([[1, 1, 0]]), s),
        [(2, 3), (1, 3)],
    ),
    "index_select": (lambda m, x: x.index_select(0, m.tensor([2, 0, 2])), [(3, 4)]),
    "index_select_dim1": (lambda m, x: m.index_select(x, 1, m.tensor([3, 1])), [(3, 4)]),
    "index_select_0d": (lambda m, x: x.index_select(1, m.tensor(2)), [(3, 4)]),
    "index_add": (lambda m, x, s: x.index_add(0, m.tensor([2, 0, 2]), s), [(3, 4), (3, 4)]),
    "index_add_alpha": (
        lambda m, x, s: m.index_add(x, 1, m.tensor([1, 1]), s, alpha=-2.0),
        [(3, 4), (3, 2)],
    ),
    "masked_fill": (lambda m, x: x.masked_fill(x > 0, -1.0), [(3, 4)]),
    "masked_fill_bcast": (
        lambda m, x: x.masked_fill(m.tensor([True, False, False, True]), 0.0),
        [(3, 4)],
    ),
    "masked_fill_grows": (lambda m, x: x.masked_fill(m.ones(2, 3, 4, dtype=m.bool), 1.0), [(3, 4)]),
    "masked_fill_tensor_value": (lambda m, x, v: x.masked_fill(x > 0, v.sum() * 2), [(3, 4), (2,)]),
    "masked_select": (lambda m, x: x.masked_select(x > 0), [(3, 4)]),
    "masked_select_bcast": (
        lambda m, x: m.masked_select(x, m.tensor([[True], [False], [True]])),
        [(3, 4)],
    ),
    "masked_select_grow": (lambda m, x: x.masked_select(m.tensor([[[True]], [[False]]])), [(3, 4)]),
    "take": (lambda m, x: x.take(m.tensor([[0, 11], [-1, 5]])), [(3, 4)]),
    "take_noncontig": (lambda m, x: m.take(x.t(), m.tensor([1, 2, 1])), [(3, 4)]),
    "select": (lambda m, x: x.select(1, -1), [(3, 4)]),
    "select_fn": (lambda m, x: m.select(x, 0, 2), [(3, 4)]),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_index_ops_match_torch(name):
    fn, shapes = OPS[name]
    run_both(fn, *[_arr(*s) for s in shapes])


# torch's own backward rejects a src larger than the index; shardgrad pads the gradient with
# zeros, which the finite-difference check confirms.
OPS_GRADCHECK_ONLY = {
    "scatter_bigger_src": (
        lambda m, x, s: x.scatter(0, m.tensor([[1, 0, 1]]), s),
        [(2, 3), (2, 3)],
    ),
}

GRADCHECK = [
    "gather",
    "gather_small_index",
    "scatter_src",
    "scatter_bigger_src",
    "scatter_value",
    "scatter_add",
    "index_select",
    "index_add_alpha",
    "masked_fill",
    "masked_fill_tensor_value",
    "masked_select_bcast",
    "take",
    "select",
]


@pytest.mark.parametrize("name", GRADCHECK)
def test_gradcheck(name):
    fn, shapes = {**OPS, **OPS_GRADCHECK_ONLY}[name]
    inputs = tuple(sg.tensor(_arr(*s), requires_grad=True) for s in shapes)
    assert sg.autograd.gradcheck(lambda *xs: fn(sg, *xs), inputs)
    assert sg.autograd.gradgradcheck(lambda *xs: fn(sg, *xs), inputs)


@pytest.mark.parametrize(
    "idx",
    [
        1,
        (slice(None), slice(0, 3, 2)),
        [0, 2, 2],
        (np.array([0, 1]), np.array([3, 3])),
        np.arange(12).reshape(3, 4) > 4,
        (Ellipsis, None, 1),
    ],
)
def test_getitem_gradcheck(idx):
    s_idx = _both(idx)[0]
    x = sg.tensor(_arr(3, 4), requires_grad=True)
    assert sg.autograd.gradcheck(lambda t: t[s_idx], (x,))
    assert sg.autograd.gradgradcheck(lambda t: t[s_idx], (x,))


def test_setitem_gradcheck():
    x = sg.tensor(_arr(3, 4), requires_grad=True)
    v = sg.tensor(_arr(2), requires_grad=True)

    def fn(x, v):
        y = x * 1.0
        y[[0, 2], 1] = v
        y[1, 1:3] = v * v
        return y

    assert sg.autograd.gradcheck(fn, (x, v))
    assert sg.autograd.gradgradcheck(fn, (x, v))


@pytest.mark.parametrize(
    "method,args",
    [
        ("masked_fill_", lambda m: (m.tensor([True, False, True, False]), 9.0)),
        ("scatter_", lambda m: (1, m.tensor([[3], [0], [1]]), -5.0)),
        ("scatter_add_", lambda m: (0, m.tensor([[2, 0, 0, 1]]), m.ones(1, 4, dtype=m.float64))),
        ("index_add_", lambda m: (1, m.tensor([0, 0]), m.ones(3, 2, dtype=m.float64))),
    ],
)
def test_inplace_index_ops(method, args):
    data = _arr(3, 4)
    x, t = sg.tensor(data), torch.tensor(data)
    assert getattr(x, method)(*args(sg)) is x
    getattr(t, method)(*args(torch))
    assert_close(x, t)
    assert x._version == t._version

    def fn(m, a):
        y = a * 2.0
        getattr(y, method)(*args(m))
        return y

    run_both(fn, data)


def test_scatter_reduce_argument():
    data = _arr(2, 3)
    idx = np.array([[0, 0, 1]])
    for reduce in ("add", "multiply"):
        with pytest.warns(UserWarning, match="reduce argument"):
            s = sg.tensor(data).scatter(
                0, sg.tensor(idx), sg.full((1, 3), 2.0, dtype=sg.float64), reduce=reduce
            )
        with warnings.catch_warnings():  # torch warns once per process
            warnings.simplefilter("ignore")
            t = torch.tensor(data).scatter(
                0, torch.tensor(idx), torch.full((1, 3), 2.0, dtype=torch.float64), reduce=reduce
            )
        assert_close(s, t)
        s = sg.tensor(data).scatter(0, sg.tensor(idx), 3.0, reduce=reduce)
        t = torch.tensor(data).scatter(0, torch.tensor(idx), 3.0, reduce=reduce)
        assert_close(s, t)


@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.bool_])
@pytest.mark.parametrize("dim", [0, 1])
def test_scatter_multiply_with_repeated_indices(dim, dtype):
    """Every value aimed at one position is multiplied in, however many share it; a src
    larger than the index contributes its leading block only."""
    rng = np.random.default_rng(3 + dim)
    data = rng.integers(-3, 4, (4, 5)).astype(dtype)
    index = rng.integers(0, data.shape[dim], (6, 4) if dim == 0 else (3, 9))
    src = (rng.standard_normal((7, 5)) if dim == 0 else rng.standard_normal((4, 10))) * 2
    src = src.astype(dtype) if dtype != np.bool_ else src > -1
    outs = []
    # torch CUDA has no bool multiply-scatter kernel; torch CPU is the oracle for bool.
    oracle_device = torch.device("cpu") if dtype == np.bool_ else contextlib.nullcontext()
    for lib in (sg, torch):
        with warnings.catch_warnings(), oracle_device if lib is torch else contextlib.nullcontext():
            warnings.simplefilter("ignore")  # the reduce argument is deprecated for Tensor src
            outs.append(
                lib.tensor(data).scatter(dim, lib.tensor(index), lib.tensor(src), reduce="multiply")
            )
            outs.append(lib.tensor(data).scatter(dim, lib.tensor(index), 2, reduce="multiply"))
    for s, t in zip(outs[:2], outs[2:]):
        assert s.dtype.name == str(t.dtype).removeprefix("torch.")
        assert_close(s, t)


def test_one_hot_matches_torch():
    labels = np.array([[0, 3], [2, 1]])
    s = sg.one_hot(sg.tensor(labels))
    t = torch.nn.functional.one_hot(torch.tensor(labels))
    assert_close(s, t)
    assert s.dtype == sg.int64
    assert_close(
        sg.one_hot(sg.tensor(labels), 6), torch.nn.functional.one_hot(torch.tensor(labels), 6)
    )
    assert_close(sg.one_hot(sg.tensor(2), 3), torch.nn.functional.one_hot(torch.tensor(2), 3))


@pytest.mark.parametrize(
    "fn",
    [
        lambda m: m.arange(6).reshape(2, 3) % 2,
        lambda m: m.tensor(0.0),
        lambda m: m.tensor(3.0),
        lambda m: m.tensor([[True, False], [False, True]]),
        lambda m: m.zeros(2, 0),
    ],
)
def test_nonzero_and_argwhere(fn):
    s, t = fn(sg), fn(torch)
    assert_close(sg.nonzero(s), torch.nonzero(t))
    assert_close(s.argwhere(), t.argwhere())
    for a, b in zip(s.nonzero(as_tuple=True), t.nonzero(as_tuple=True)):
        assert_close(a, b)
    assert s.nonzero().dtype == sg.int64


ONE_HOT = torch.nn.functional.one_hot
OP_ERRORS = {
    "gather_oob": lambda m, x: x.gather(1, m.tensor([[4]])),
    "gather_neg": lambda m, x: x.gather(1, m.tensor([[-1]])),
    "gather_float_index": lambda m, x: x.gather(1, m.tensor([[0.0]])),
    "gather_ndim": lambda m, x: x.gather(1, m.tensor([0])),
    "gather_too_big": lambda m, x: x.gather(1, m.zeros(4, 1, dtype=m.int64)),
    "scatter_oob": lambda m, x: x.scatter(1, m.tensor([[5]]), 1.0),
    "scatter_small_src": lambda m, x: x.scatter(1, m.tensor([[0, 1], [1, 0]]), m.ones(1, 1)),
    "index_select_2d": lambda m, x: x.index_select(0, m.zeros(1, 1, dtype=m.int64)),
    "index_select_oob": lambda m, x: x.index_select(0, m.tensor([3])),
    "index_select_neg": lambda m, x: x.index_select(0, m.tensor([-1])),
    "index_select_float": lambda m, x: x.index_select(0, m.tensor([0.0])),
    "index_add_oob": lambda m, x: x.index_add(0, m.tensor([5]), m.ones(1, 4, dtype=x.dtype)),
    "index_add_shape": lambda m, x: x.index_add(0, m.tensor([1]), m.ones(1, 2, dtype=x.dtype)),
    "index_add_count": lambda m, x: x.index_add(0, m.tensor([0, 1]), m.ones(1, 4, dtype=x.dtype)),
    "masked_fill_float_mask": lambda m, x: x.masked_fill(m.ones(3, 4), 0.0),
    "masked_fill_1d_value": lambda m, x: x.masked_fill(x > 0, m.tensor([1.0])),
    "masked_fill_bad_bcast": lambda m, x: x.masked_fill(m.ones(3, dtype=m.bool), 0.0),
    "masked_fill__grows": lambda m, x: x.masked_fill_(m.ones(2, 3, 4, dtype=m.bool), 0.0),
    "masked_select_float": lambda m, x: x.masked_select(m.ones(3, 4)),
    "take_oob": lambda m, x: x.take(m.tensor([12])),
    "take_int32": lambda m, x: x.take(m.tensor([0], dtype=m.int32)),
    "select_oob": lambda m, x: x.select(0, 3),
    "select_0d": lambda m, x: x[0, 0].select(0, 0),
    "one_hot_negative": lambda m, x: (sg.one_hot if m is sg else ONE_HOT)(m.tensor([-1])),
    "one_hot_too_big": lambda m, x: (sg.one_hot if m is sg else ONE_HOT)(m.tensor([3]), 2),
    "one_hot_float": lambda m, x: (sg.one_hot if m is sg else ONE_HOT)(m.tensor([1.0])),
    "one_hot_empty": lambda m, x: (sg.one_hot if m is sg else ONE_HOT)(m.tensor([], dtype=m.int64)),
}


@pytest.mark.parametrize("name", sorted(OP_ERRORS))
def test_index_op_errors_match_torch(name):
    data = _arr(3, 4)
    with pytest.raises(Exception) as expected:
        OP_ERRORS[name](torch, torch.tensor(data))
    with pytest.raises(expected.type):
        OP_ERRORS[name](sg, sg.tensor(data))


# ---------------------------------------------------------------- property tests
def _no_negative_steps(idx) -> bool:
    items = idx if isinstance(idx, tuple) else (idx,)
    return all(not (isinstance(i, slice) and i.step is not None and i.step < 0) for i in items)


@st.composite
def basic_case(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5))
    idx = draw(
        hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True).filter(_no_negative_steps)
    )
    return shape, idx


@settings(max_examples=50, deadline=None)
@given(basic_case())
def test_basic_indexing_matches_numpy_and_is_a_view(case):
    shape, idx = case
    a = RNG.standard_normal(shape)
    x = sg.tensor(a, requires_grad=True)
    y = x[idx]
    expected = a[idx]
    np.testing.assert_array_equal(y.detach().numpy(), expected)
    assert y._is_view() and y._base is x
    g = RNG.standard_normal(np.shape(expected))
    y.backward(sg.tensor(g))
    ref = np.zeros(shape)
    ref[idx] += g
    np.testing.assert_array_equal(x.grad.numpy(), ref)


@settings(max_examples=50, deadline=None)
@given(
    hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5).flatmap(
        lambda s: st.tuples(
            st.just(s),
            hnp.arrays(np.int64, st.integers(1, 6), elements=st.integers(-s[0], s[0] - 1)),
        )
    )
)
def test_integer_array_indexing_round_trip(case):
    shape, rows = case
    a = RNG.standard_normal(shape)
    x = sg.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    y, ty = x[sg.tensor(rows)], t[torch.tensor(rows)]
    assert_close(y, ty)
    g = RNG.standard_normal(tuple(ty.shape))
    y.backward(sg.tensor(g))
    ty.backward(torch.tensor(g))
    assert_close(x.grad, t.grad)  # repeated rows accumulate
