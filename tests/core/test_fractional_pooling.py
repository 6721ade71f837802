"""Fractional max pooling against torch with the same random samples: outputs, indices and
gradients for images and volumes, output sizes or ratios, unbatched input, the modules, and
the checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import shardgrad as sg
import shardgrad.nn.functional as F
from tests.conftest import assert_close

RNG = np.random.default_rng(61)


@pytest.mark.parametrize(
    "shape, dims, kwargs",
    [
        ((2, 3, 9, 11), 2, {"kernel_size": 2, "output_size": (4, 5)}),
        ((2, 3, 9, 11), 2, {"kernel_size": (3, 2), "output_ratio": (0.5, 0.7)}),
        ((3, 8, 8), 2, {"kernel_size": 3, "output_size": 3}),  # unbatched
        ((2, 2, 7, 6, 8), 3, {"kernel_size": (2, 3, 2), "output_size": (3, 3, 5)}),
        ((2, 2, 7, 6, 8), 3, {"kernel_size": 2, "output_ratio": 0.5}),
    ],
)
def test_fractional_max_pool_matches_torch(shape, dims, kwargs):
    data = np.round(RNG.standard_normal(shape), 1)  # ties: the first maximum wins
    n = shape[0] if len(shape) == dims + 2 else 1
    samples = RNG.random((n, shape[-dims - 1], dims))
    fn_s = F.fractional_max_pool2d if dims == 2 else F.fractional_max_pool3d
    fn_t = TF.fractional_max_pool2d if dims == 2 else TF.fractional_max_pool3d
    s_in, t_in = sg.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    s_out, s_idx = fn_s(s_in, return_indices=True, _random_samples=sg.tensor(samples), **kwargs)
    t_out, t_idx = fn_t(t_in, return_indices=True, _random_samples=torch.tensor(samples), **kwargs)
    assert_close(s_out, t_out.detach())
    assert s_idx.tolist() == t_idx.tolist()
    up = RNG.standard_normal(tuple(t_out.shape))
    (s_out * sg.tensor(up)).sum().backward()
    (t_out * torch.tensor(up)).sum().backward()
    assert_close(s_in.grad, t_in.grad)


def test_modules_draw_their_own_samples_reproducibly():
    pool = sg.nn.FractionalMaxPool2d(3, output_ratio=0.5)
    x = sg.tensor(RNG.standard_normal((2, 3, 10, 10)))
    sg.manual_seed(4)
    first = pool(x)
    sg.manual_seed(4)
    assert pool(x).tolist() == first.tolist() and tuple(first.shape) == (2, 3, 5, 5)
    fixed = sg.nn.FractionalMaxPool3d(
        2, output_size=(2, 2, 2), return_indices=True, _random_samples=sg.zeros(1, 1, 3)
    )
    values, indices = fixed(sg.tensor(RNG.standard_normal((1, 1, 4, 4, 4))))
    assert tuple(values.shape) == tuple(indices.shape) == (1, 1, 2, 2, 2)


def test_checks_match_torch():
    x = sg.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="either an output size, or a pooling ratio"):
        sg.nn.FractionalMaxPool2d(2)
    with pytest.raises(ValueError, match="only one of output_size and output_ratio"):
        sg.nn.FractionalMaxPool2d(2, output_size=2, output_ratio=0.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        sg.nn.FractionalMaxPool2d(2, output_ratio=1.5)
    with pytest.raises(RuntimeError, match="too large"):
        F.fractional_max_pool2d(x, 3, output_size=3)
    with pytest.raises(RuntimeError, match="_random_samples of shape"):
        F.fractional_max_pool2d(x, 2, output_size=2, _random_samples=sg.zeros(1, 1, 3))
