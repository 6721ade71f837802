"""Tensors print as torch's do: the same text for fixed, scientific and integral floats,
integers, booleans, nan and inf, scalars, empty tensors, nested and summarised tensors,
suffixes, and under every set_printoptions setting."""

from __future__ import annotations

import pytest
import torch

import shardgrad as sg

CASES = {
    "mixed magnitudes": lambda m: m.tensor([[1.123456789, 2e-5], [300000.0, 4.0]], dtype=m.float64),
    "long vector": lambda m: m.arange(2000.0),
    "fixed": lambda m: m.tensor([1.5, 2.0]),
    "integral floats": lambda m: m.tensor([1.0, 2.0]),
    "tiny": lambda m: m.tensor([1e-8, 1.0]),
    "nonfinite": lambda m: m.tensor([float("nan"), float("inf"), -1.0, 0.0]),
    "bool": lambda m: m.tensor([[True, False]]),
    "int": lambda m: m.tensor([1, -20, 300]),
    "scalar": lambda m: m.tensor(3.25),
    "empty float64": lambda m: m.tensor([], dtype=m.float64),
    "empty matrix": lambda m: m.zeros(0, 3),
    "int32": lambda m: m.tensor([1, 2], dtype=m.int32),
    "3-d": lambda m: m.arange(60.0).reshape(3, 4, 5) / 7,
    "summarised matrix": lambda m: m.arange(3000).reshape(30, 100),
    "grad_fn": lambda m: m.ones(2, 3, requires_grad=True) * 2,
    "requires_grad": lambda m: m.ones(2, requires_grad=True),
    "huge": lambda m: m.tensor([-1.5e10, 2.0]),
    "big integral": lambda m: m.tensor([123456789.0, 1.0]),
    "zeros": lambda m: m.zeros(2, 2),
    "wide rows": lambda m: m.arange(40.0).reshape(2, 20) * 1.01,
}


def _same(make) -> None:
    ours = repr(make(sg)).replace("shardgrad.", "torch.")
    assert ours == repr(make(torch))


@pytest.mark.parametrize("name", list(CASES))
def test_repr_matches_torch(name):
    _same(CASES[name])


@pytest.mark.parametrize(
    "options",
    [
        dict(precision=2),
        dict(sci_mode=True),
        dict(sci_mode=False),
        dict(threshold=5, edgeitems=2),
        dict(linewidth=40),
        dict(profile="short"),
        dict(profile="full"),
        dict(edgeitems=0, threshold=3),
    ],
)
def test_print_options_match_torch(options):
    try:
        sg.set_printoptions(**options)
        torch.set_printoptions(**options)
        for make in CASES.values():
            _same(make)
        assert sg.get_printoptions()["linewidth"] == options.get("linewidth", 80)
    finally:
        sg.set_printoptions(profile="default")
        torch.set_printoptions(profile="default")


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="profile"):
        sg.set_printoptions(profile="tiny")
