"""The Tensor API around shape and storage: in-place view ops, resize_, storage_offset, the
legacy `new`, apply_/map_, nonzero_static, as_strided, the constant flags, the in-place aliases
(greater_, i0_, gcd_, ...), each against torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shardgrad as sg


@pytest.mark.parametrize(
    ("name", "args", "shape"),
    [
        ("unsqueeze_", (0,), (3, 4)),
        ("unsqueeze_", (-1,), (3, 4)),
        ("squeeze_", (), (1, 3, 1)),
        ("squeeze_", (0,), (1, 3, 1)),
        ("t_", (), (3, 4)),
        ("transpose_", (0, 2), (2, 3, 4)),
        ("swapaxes_", (1, 0), (3, 4)),
        ("swapdims_", (0, 1), (3, 4)),
    ],
)
def test_inplace_view_ops_match_torch(name, args, shape):
    x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    results = []
    for lib in (sg, torch):
        leaf = lib.tensor(x, requires_grad=True)
        y = leaf * 2
        out = getattr(y, name)(*args)
        assert out is y and y._version == 1
        (
            y * lib.tensor(np.arange(y.numel(), dtype=np.float64).reshape(tuple(y.shape)))
        ).sum().backward()
        results.append((tuple(y.shape), y.detach().numpy().copy(), leaf.grad.numpy()))
        with pytest.raises(RuntimeError, match="leaf Variable"):
            getattr(lib.tensor(x, requires_grad=True), name)(*args)
    (s_shape, s_val, s_grad), (t_shape, t_val, t_grad) = results
    assert s_shape == t_shape
    np.testing.assert_array_equal(s_val, t_val)
    np.testing.assert_array_equal(s_grad, t_grad)


def test_a_changed_shape_invalidates_saved_tensors():
    for lib in (sg, torch):
        b = lib.ones(3, requires_grad=True) * 2
        y = b * b  # saves b
        b.unsqueeze_(0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_storage_and_constructors_match_torch():
    for lib in (sg, torch):
        x = lib.arange(6.0)
        assert x[2:].storage_offset() == 2 and x.storage_offset() == 0
        assert tuple(x.new(2, 3).shape) == (2, 3) and x.new(2, 3).dtype == x.dtype
        assert x.new([1.5, 2.0]).tolist() == [1.5, 2.0]
        assert tuple(x.new_empty_strided((2, 2), (2, 1)).shape) == (2, 2)
        r = lib.arange(6.0).reshape(2, 3)
        assert r.resize_(4).tolist() == [0.0, 1.0, 2.0, 3.0]
        assert tuple(lib.ones(2).resize_as_(lib.ones(3, 3)).shape) == (3, 3)
        with pytest.raises(RuntimeError, match="resize"):
            lib.ones(2, requires_grad=True).resize_(3)
        t = lib.tensor([1.0, 2.0, 3.0])
        t.apply_(lambda v: v * 10)
        t.map_(lib.tensor([1.0, 0.0, 2.0]), lambda a, b: a + b)
        assert t.tolist() == [11.0, 20.0, 32.0]
        found = lib.tensor([0, 1, 0, 2]).nonzero_static(size=3).tolist()
        assert found == [[1], [3], [-1]]
        assert lib.tensor([0, 1, 0, 2, 5]).nonzero_static(size=1).tolist() == [[1]]


def test_constant_flags_match_torch():
    for lib in (sg, torch):
        x = lib.ones(3)
        assert not any((x.is_pinned(), x.is_shared(), x.is_conj(), x.is_neg()))
        assert not any((x.is_sparse, x.is_quantized, x.is_meta, x.is_nested, x.is_mkldnn))
        assert x.share_memory_() is x
        assert x.real.tolist() == [1.0, 1.0, 1.0]
        with pytest.raises(RuntimeError, match="non-complex"):
            _ = x.imag
    assert sg.ones(2).layout is sg.strided
    assert sg.ones(2).pin_memory().tolist() == [1.0, 1.0]  # (torch's needs an accelerator)


@pytest.mark.parametrize(
    ("name", "other"),
    [
        ("greater_", 1.5), ("greater_equal_", 2.0), ("less_", 2.0), ("less_equal_", 2.0),
        ("not_equal_", 2.0), ("i0_", None), ("igamma_", [2.0, 1.0, 0.5]),
        ("igammac_", [2.0, 1.0, 0.5]), ("ldexp_", [1, 2, 0]), ("nextafter_", [2.0, 1.0, 0.5]),
    ],
)  # fmt: skip
def test_inplace_aliases_match_torch(name, other):
    results = []
    for lib in (sg, torch):
        x = lib.tensor([1.0, 2.0, 3.0])
        args = () if other is None else (other if isinstance(other, float) else lib.tensor(other),)
        assert getattr(x, name)(*args) is x
        results.append(x.tolist())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)


@pytest.mark.parametrize("name", ["gcd_", "lcm_", "bitwise_left_shift_", "bitwise_right_shift_"])
def test_integer_inplace_aliases_match_torch(name):
    results = []
    for lib in (sg, torch):
        x = lib.tensor([12, 18, 7])
        getattr(x, name)(lib.tensor([8, 12, 1]))
        results.append(x.tolist())
    assert results[0] == results[1]


@pytest.mark.parametrize(
    "args",
    [((3, 4), (2, 1)), ((4, 3), (1, 2), 1), ((2, 2), (0, 1)), ((3,), (3,), 1), ((2, 3), (3, 1))],
)
def test_as_strided_matches_torch_with_overlapping_gradients(args):
    """Windows that overlap (a position read twice sums its gradients), zero strides, and
    offsets; also on a view that starts inside its base."""
    x = np.arange(10.0)
    results = []
    for lib in (sg, torch):
        t = lib.tensor(x, requires_grad=True)
        y = lib.as_strided(t, *args)
        weight = lib.tensor(np.arange(y.numel(), dtype=np.float64).reshape(tuple(y.shape)))
        (y * weight).sum().backward()
        view = lib.arange(10.0)[2:]
        results.append((y.detach().numpy(), t.grad.numpy(), view.as_strided((2, 2), (1, 1))))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    assert results[0][2].tolist() == results[1][2].tolist()
    with pytest.raises(RuntimeError, match="storage"):
        sg.ones(4).as_strided((3,), (2,))


def test_orgqr_dim_order_and_dense():
    a = np.random.default_rng(0).standard_normal((4, 3))
    for lib in (sg, torch):
        h, tau = lib.geqrf(lib.tensor(a))
        q = h.orgqr(tau)
        np.testing.assert_allclose(
            q.numpy(), torch.linalg.qr(torch.tensor(a)).Q.numpy(), atol=1e-12
        )
        assert lib.ones(2, 3).t().dim_order() == (1, 0) and lib.ones(2, 3).dim_order() == (0, 1)
        assert lib.ones(2).to_dense().tolist() == [1.0, 1.0]
