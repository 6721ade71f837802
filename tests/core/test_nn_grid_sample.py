"""affine_grid and grid_sample against torch: every mode, padding mode and align_corners
setting on images and volumes, points inside and outside the image, the gradients of the
input and of the grid, second derivatives by finite differences, and torch's errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import shardgrad as sg
import shardgrad.nn.functional as F
from tests.conftest import assert_close, pair

MODES_2D = ["bilinear", "nearest", "bicubic"]
PADDINGS = ["zeros", "border", "reflection"]


def _sample_both(image, grid, **kwargs):
    si, ti = pair(image)
    sg_, tg = pair(grid)
    s, t = F.grid_sample(si, sg_, **kwargs), TF.grid_sample(ti, tg, **kwargs)
    assert_close(s, t)
    up = np.random.default_rng(1).standard_normal(tuple(t.shape))
    s.backward(sg.tensor(up))
    t.backward(torch.tensor(up))
    assert_close(si.grad, ti.grad)
    assert_close(sg_.grad, tg.grad)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("padding_mode", PADDINGS)
@pytest.mark.parametrize("mode", MODES_2D)
def test_grid_sample_2d_matches_torch(mode, padding_mode, align_corners):
    rng = np.random.default_rng(hash((mode, padding_mode, align_corners)) % 2**32)
    image = rng.standard_normal((2, 3, 5, 6))
    grid = rng.uniform(-1.6, 1.6, (2, 4, 7, 2))  # some points well outside the image
    _sample_both(image, grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("padding_mode", PADDINGS)
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_grid_sample_3d_matches_torch(mode, padding_mode, align_corners):
    rng = np.random.default_rng(hash((mode, padding_mode, align_corners, 3)) % 2**32)
    volume = rng.standard_normal((2, 2, 3, 4, 5))
    grid = rng.uniform(-1.4, 1.4, (2, 2, 3, 4, 3))
    _sample_both(volume, grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners)


@pytest.mark.parametrize("size", [(2, 3, 4, 5), (2, 1, 3, 4, 5), (1, 1, 1, 4)])
@pytest.mark.parametrize("align_corners", [False, True])
def test_affine_grid_matches_torch_with_gradient(size, align_corners):
    rng = np.random.default_rng(len(size))
    k = len(size) - 2
    s, t = pair(rng.standard_normal((size[0], k, k + 1)))
    gs = F.affine_grid(s, size, align_corners=align_corners)
    gt = TF.affine_grid(t, size, align_corners=align_corners)
    assert_close(gs, gt)
    up = rng.standard_normal(tuple(gt.shape))
    gs.backward(sg.tensor(up))
    gt.backward(torch.tensor(up))
    assert_close(s.grad, t.grad)


def test_identity_transform_reproduces_the_image():
    """The spatial-transformer round trip: the identity map samples every pixel centre."""
    image = sg.tensor(np.random.default_rng(0).standard_normal((1, 2, 4, 5)))
    theta = sg.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=sg.float64)
    grid = F.affine_grid(theta, (1, 2, 4, 5), align_corners=False)
    assert_close(F.grid_sample(image, grid, align_corners=False), image.numpy())


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("padding_mode", PADDINGS)
def test_second_derivatives(mode, padding_mode):
    rng = np.random.default_rng(2)
    image = sg.tensor(rng.standard_normal((1, 2, 3, 4)), requires_grad=True)
    grid = sg.tensor(rng.uniform(-1.3, 1.3, (1, 2, 3, 2)), requires_grad=True)

    def fn(a, g):
        return F.grid_sample(a, g, mode=mode, padding_mode=padding_mode, align_corners=False)

    assert sg.autograd.gradcheck(fn, (image, grid))
    assert sg.autograd.gradgradcheck(fn, (image, grid))


def test_affine_grid_wants_one_matrix_per_item():
    with pytest.raises(ValueError, match="one affine matrix for each of the 2 items"):
        F.affine_grid(sg.zeros(1, 2, 3), (2, 1, 2, 2), align_corners=False)


def test_default_align_corners_warns_as_torch_does():
    image, grid = sg.zeros(1, 1, 2, 2), sg.zeros(1, 1, 1, 2)
    with pytest.warns(UserWarning, match="align_corners=False since 1.3.0"):
        F.grid_sample(image, grid)
    with pytest.warns(UserWarning, match="align_corners=False since 1.3.0"):
        F.affine_grid(sg.zeros(1, 2, 3), (1, 1, 2, 2))


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda m: m.grid_sample(m.i, m.g, mode="area"), ValueError, "expected mode"),
        (lambda m: m.grid_sample(m.i, m.g, padding_mode="wrap"), ValueError, "padding_mode"),
        (lambda m: m.grid_sample(m.i, m.g[..., :1]), RuntimeError, "size 2 in last dimension"),
        (lambda m: m.grid_sample(m.i, m.g.expand(2, 1, 3, 2)), RuntimeError, "same batch size"),
        (lambda m: m.grid_sample(m.i[0], m.g[..., :1]), RuntimeError, "same number of dim"),
        (lambda m: m.affine_grid(m.t, (1, 1, 2)), NotImplementedError, "4D and 5D sizes"),
        (lambda m: m.affine_grid(m.t[:, :, :2], (1, 1, 2, 2)), ValueError, "affine matrices"),
    ],
)
def test_errors_match_torch(make, error, match):
    for lib, F_ in ((sg, F), (torch, TF)):

        class M:
            i = lib.zeros(1, 1, 3, 4)
            g = lib.zeros(1, 1, 3, 2)
            t = lib.zeros(1, 2, 3)
            grid_sample = staticmethod(F_.grid_sample)
            affine_grid = staticmethod(F_.affine_grid)

        with pytest.raises(error, match=match), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make(M)
