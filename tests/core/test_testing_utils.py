"""shardgrad.testing against torch.testing: assert_close passes and fails on the same inputs
with the same report, and make_tensor draws what it promises."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.testing

import shardgrad as sg
from shardgrad.testing import assert_close, make_tensor

CASES = {
    "close float32": (lambda m: m.tensor([1.0, 2.0]), lambda m: m.tensor([1.0, 2.0 + 1e-7])),
    "far float32": (lambda m: m.tensor([1.0, 2.0, 3.0]), lambda m: m.tensor([1.0, 2.5, 3.0])),
    "far float64": (
        lambda m: m.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=m.float64),
        lambda m: m.tensor([[1.0, 2.0], [3.0, 4.001]], dtype=m.float64),
    ),
    "shape": (lambda m: m.tensor([1.0, 2.0]), lambda m: m.tensor([1.0, 2.0, 3.0])),
    "dtype": (lambda m: m.tensor([1.0, 2.0]), lambda m: m.tensor([1.0, 2.0], dtype=m.float64)),
    "nan": (lambda m: m.tensor([[1.0, float("nan")]]), lambda m: m.tensor([[1.0, float("nan")]])),
    "inf": (lambda m: m.tensor([float("inf")]), lambda m: m.tensor([float("inf")])),
    "ints": (lambda m: m.tensor([1, 2, 3]), lambda m: m.tensor([1, 3, 3])),
    "bools": (lambda m: m.tensor([True, False]), lambda m: m.tensor([True, True])),
    "0-d": (lambda m: m.tensor(1.0), lambda m: m.tensor(1.5)),
    "scalars": (lambda m: 1.0, lambda m: 1.5),
    "int scalars": (lambda m: 2, lambda m: 3),
    "list": (lambda m: [m.tensor(1.0)], lambda m: [m.tensor(2.0)]),
    "dict": (lambda m: {"a": m.tensor([1, 2])}, lambda m: {"a": m.tensor([1, 3])}),
    "keys": (lambda m: {"a": 1}, lambda m: {"b": 1}),
    "lengths": (lambda m: [1, 2], lambda m: [1, 2, 3]),
}


def _outcome(lib, name, **kwargs):
    make_actual, make_expected = CASES[name]
    check = sg.testing.assert_close if lib is sg else torch.testing.assert_close
    try:
        check(make_actual(lib), make_expected(lib), **kwargs)
    except AssertionError as exc:
        return str(exc).replace("shardgrad.", "torch.")
    return None


@pytest.mark.parametrize("name", list(CASES))
def test_reports_match_torch(name):
    assert _outcome(sg, name) == _outcome(torch, name)


@pytest.mark.parametrize("name", ["far float32", "nan", "ints", "0-d"])
def test_options_match_torch(name):
    for kwargs in (
        dict(rtol=0.5, atol=0.0),
        dict(equal_nan=True),
        dict(check_dtype=False),
        dict(msg="custom"),
    ):
        assert _outcome(sg, name, **kwargs) == _outcome(torch, name, **kwargs)


def test_tolerances_come_in_pairs_and_msg_can_be_a_function():
    with pytest.raises(ValueError, match="Both 'rtol' and 'atol'"):
        assert_close(sg.ones(1), sg.ones(1), rtol=1e-3)
    with pytest.raises(AssertionError, match="^wrapped: Tensor-likes"):
        assert_close(sg.ones(2), sg.zeros(2), msg=lambda text: "wrapped: " + text)


def test_numpy_arrays_compare_too():
    assert_close(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    with pytest.raises(AssertionError, match="same type"):
        assert_close(sg.ones(2), np.ones(2, dtype=np.float32))


@pytest.mark.parametrize("dtype", [sg.float32, sg.float64, sg.int64, sg.uint8, sg.bool])
def test_make_tensor_draws_in_range(dtype):
    t = make_tensor(50, 4, dtype=dtype)
    assert t.shape == (50, 4) and t.dtype == dtype
    values = t.numpy()
    if dtype == sg.bool:
        assert set(np.unique(values)) <= {False, True}
    elif dtype == sg.uint8:
        assert values.min() >= 0 and values.max() < 10
    elif dtype == sg.int64:
        assert values.min() >= -9 and values.max() < 10
    else:
        assert values.min() >= -9 and values.max() < 9
    bounded = make_tensor((3, 3), dtype=sg.float64, low=0.5, high=0.75, exclude_zero=True)
    assert (bounded.numpy() >= 0.5).all() and (bounded.numpy() < 0.75).all()


def test_make_tensor_noncontiguous_leaf():
    t = make_tensor(3, 4, dtype=sg.float32, noncontiguous=True, requires_grad=True)
    assert not t.is_contiguous() and t.requires_grad and t.is_leaf
    (t * 2).sum().backward()
    assert (t.grad.numpy() == 2).all()
