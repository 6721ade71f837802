"""torch's top-level names that code reaches for: finfo/iinfo, the signal windows, isin,
unravel_index, the in-place and *_copy function forms, and the small conveniences, against
torch."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import shardgrad as sg
from tests.conftest import assert_close


@pytest.mark.parametrize("name", ["float16", "float32", "float64"])
def test_finfo_matches_torch(name):
    ours, theirs = sg.finfo(getattr(sg, name)), torch.finfo(getattr(torch, name))
    for attr in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
        assert getattr(ours, attr) == getattr(theirs, attr)
    assert repr(ours) == repr(theirs)


def test_iinfo_and_default_finfo_match_torch():
    for name in ("int8", "uint8", "int16", "int32", "int64"):
        ours, theirs = sg.iinfo(getattr(sg, name)), torch.iinfo(getattr(torch, name))
        assert (ours.bits, ours.min, ours.max) == (theirs.bits, theirs.min, theirs.max)
    assert repr(sg.iinfo(sg.int32)) == repr(torch.iinfo(torch.int32))
    assert repr(sg.finfo()) == repr(torch.finfo())
    with pytest.raises(TypeError, match="floating point"):
        sg.finfo(sg.int32)


@pytest.mark.parametrize("name", ["hann", "hamming", "blackman", "bartlett", "kaiser"])
@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("length", [0, 1, 2, 7, 16])
def test_windows_match_torch(name, periodic, length):
    ours = getattr(sg, f"{name}_window")(length, periodic, dtype=sg.float64)
    theirs = getattr(torch, f"{name}_window")(length, periodic, dtype=torch.float64)
    assert_close(ours, theirs, rtol=1e-12, atol=1e-15)


def test_isin_and_unravel_index_match_torch():
    a, b = np.array([[1, 2, 3], [4, 5, 2]]), np.array([2, 5, 9])
    for invert in (False, True):
        assert (
            sg.isin(sg.tensor(a), sg.tensor(b), invert=invert).tolist()
            == torch.isin(torch.tensor(a), torch.tensor(b), invert=invert).tolist()
        )
    assert sg.isin(sg.tensor(a), 2).tolist() == torch.isin(torch.tensor(a), 2).tolist()
    flat = np.array([5, 7, -1, 0])
    ours = sg.unravel_index(sg.tensor(flat), (2, 4))
    theirs = torch.unravel_index(torch.tensor(flat), (2, 4))
    assert [o.tolist() for o in ours] == [t.tolist() for t in theirs]


@pytest.mark.parametrize(
    "name, args", [("relu_", ()), ("sigmoid_", ()), ("clamp_", (-0.5, 0.5)), ("exp_", ())]
)
def test_inplace_function_forms_match_torch(name, args):
    data = np.random.default_rng(0).standard_normal(5)
    s, t = sg.tensor(data), torch.tensor(data)
    assert getattr(sg, name)(s, *args) is s
    getattr(torch, name)(t, *args)
    assert_close(s, t)


def test_copy_forms_are_copies():
    base = sg.arange(6.0)
    view = sg.view_copy(base, (2, 3))
    view.fill_(0.0)
    assert base.tolist() == list(range(6))
    parts = sg.split_copy(base, 2)
    assert [p.tolist() for p in parts] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    assert sg.transpose_copy(sg.ones(2, 3), 0, 1).shape == (3, 2)


def test_small_conveniences_match_torch():
    x = np.array([1.0, 2.0, 4.0])
    assert_close(sg.rsub(sg.tensor(x), 3, alpha=2), torch.rsub(torch.tensor(x), 3, alpha=2))
    assert sg.scalar_tensor(3.5).tolist() == 3.5 and sg.scalar_tensor(3.5).dtype == sg.float32
    draws = sg.randint_like(sg.zeros(200, dtype=sg.int64), 3, 7)
    assert draws.dtype == sg.int64 and 3 <= int(draws.min()) and int(draws.max()) < 7
    t = sg.tensor(x)
    assert sg.asarray(t) is t and sg.asarray(t, copy=True) is not t
    assert tuple(sg.empty_strided((2, 3), (3, 1)).shape) == (2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_close(sg.range(0, 2, 0.5), torch.range(0, 2, 0.5))
    assert_close(sg.trapz(sg.tensor(x)), torch.trapz(torch.tensor(x)))
    m = np.random.default_rng(1).standard_normal((3, 4))
    assert_close(sg.frobenius_norm(sg.tensor(m)), torch.linalg.matrix_norm(torch.tensor(m)))
    assert_close(sg.nuclear_norm(sg.tensor(m)), torch.nuclear_norm(torch.tensor(m)))
    assert_close(
        sg.igamma(sg.tensor(x), sg.tensor(x)), torch.igamma(torch.tensor(x), torch.tensor(x))
    )
    assert_close(sg.adjoint(sg.tensor(m)), torch.adjoint(torch.tensor(m)))


def test_poisson_and_binomial_draws():
    sg.manual_seed(0)
    rates = sg.tensor([0.5, 4.0, 20.0]).expand(20000, 3)
    means = sg.poisson(rates).mean(0).numpy()
    assert np.abs(means - [0.5, 4.0, 20.0]).max() < 0.15
    counts = sg.binomial(sg.full((20000, 2), 10.0), sg.tensor([0.2, 0.9]).expand(20000, 2))
    assert np.abs(counts.mean(0).numpy() - [2.0, 9.0]).max() < 0.05
    with pytest.raises(RuntimeError, match="non-negative"):
        sg.poisson(sg.tensor([-1.0]))
