"""Sampling an image at arbitrary points: `affine_grid` and `grid_sample` (spatial
transformer networks, warping, deformable sampling).

grid_sample reads each output point's value from the input at the point's (x, y[, z])
coordinate in [-1, 1]: bilinear (trilinear on volumes) mixes the 2^d neighbouring pixels,
nearest takes the closest one, bicubic mixes 4 x 4 with Keys' cubic (A = -0.75), as torch
does. Points outside the image read zeros, the border, or the image reflected at its edges.

Everything is written with Tensor ops: the taps are gathers at integer positions and the
weights are functions of the grid, so autograd gives the gradients for the input and for
the grid (and their second derivatives) with torch's conventions: no gradient flows through
a clamped coordinate, and nearest sampling gives the grid none.
"""

from __future__ import annotations

import itertools
import warnings

from .. import _dtype
from ..factory import linspace
from ..ops import elementwise as _ew
from ..ops.join import stack
from ..tensor import Tensor

__all__ = ["affine_grid", "grid_sample"]

_ALIGN_WARNING = (
    "Default grid_sample and affine_grid behavior has changed to align_corners=False since "
    "1.3.0. Please specify align_corners=True if the old behavior is desired. See the "
    "documentation of grid_sample for details."
)
_CUBIC_A = -0.75


def _align(align_corners: bool | None) -> bool:
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, UserWarning, stacklevel=3)
        return False
    return bool(align_corners)


# ================================================================ affine_grid
def _base_coords(n: int, align_corners: bool, like: Tensor) -> Tensor:
    """The n pixel centres in [-1, 1] (or the n pixel corners with align_corners)."""
    if n <= 1:
        return like.new_zeros(max(n, 0))
    coords = linspace(-1.0, 1.0, n, dtype=like.dtype, device=like.device)
    return coords if align_corners else coords * ((n - 1) / n)


def affine_grid(theta: Tensor, size, align_corners: bool | None = None) -> Tensor:
    """The sampling grid of a batch of affine maps: theta (N, 2, 3) with size (N, C, H, W)
    gives (N, H, W, 2); theta (N, 3, 4) with size (N, C, D, H, W) gives (N, D, H, W, 3)."""
    align = _align(align_corners)
    if not theta.dtype.is_floating_point:
        raise ValueError(f"Expected theta to have floating point type, but got {theta.dtype.name}")
    size = [int(s) for s in size]
    if len(size) == 4:
        spatial, want = size[2:], (2, 3)
    elif len(size) == 5:
        spatial, want = size[2:], (3, 4)
    else:
        raise NotImplementedError(
            "affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, "
            f"respectively. Got size {size}."
        )
    if theta.ndim != 3 or tuple(theta.shape[1:]) != want:
        raise ValueError(
            f"Expected a batch of {len(spatial)}D affine matrices of shape Nx{want[0]}x{want[1]} "
            f"for size {size}. Got {list(theta.shape)}."
        )
    if theta.shape[0] != size[0]:
        raise ValueError(
            f"Expected one affine matrix for each of the {size[0]} items of size {size}. Got "
            f"{theta.shape[0]}."
        )
    if min(spatial) <= 0:
        raise ValueError(f"Expected non-zero, positive output size. Got {size}")
    # base points (x, y[, z], 1), x varying fastest as in torch
    axes = [_base_coords(n, align, theta) for n in reversed(spatial)]  # x, y, z
    k = len(spatial)
    parts = []
    for i, coords in enumerate(axes):
        shape = [1] * k
        shape[k - 1 - i] = coords.shape[0]
        parts.append(coords.reshape(shape).expand(*spatial))
    parts.append(theta.new_ones(spatial))
    base = stack(parts, -1).reshape(1, -1, k + 1)  # (1, points, k + 1)
    grid = base @ theta.transpose(1, 2)  # (N, points, k)
    return grid.reshape(size[0], *spatial, k)


# ================================================================ grid_sample
def _unnormalize(coord: Tensor, size: int, align_corners: bool) -> Tensor:
    """[-1, 1] to pixel units: -1 and 1 are the corner pixels' centres with align_corners,
    the image's outer edges without."""
    if align_corners:
        return (coord + 1) * ((size - 1) / 2)
    return ((coord + 1) * size - 1) / 2


def _reflect(coord: Tensor, twice_low: int, twice_high: int) -> Tensor:
    """Fold a coordinate back into [low, high] by reflecting at the ends, repeatedly."""
    if twice_low == twice_high:
        return coord * 0
    low = twice_low / 2
    span = (twice_high - twice_low) / 2
    coord = (coord - low).abs()
    extra = coord.fmod(span)
    flips = (coord.detach() / span).floor()
    return _ew.where(flips.fmod(2) == 0, extra + low, span - extra + low)


def _pad_coordinate(coord: Tensor, size: int, padding_mode: str, align_corners: bool) -> Tensor:
    if padding_mode == "border":
        return coord.clamp(0, size - 1)
    if padding_mode == "reflection":
        if align_corners:
            coord = _reflect(coord, 0, 2 * (size - 1))
        else:
            coord = _reflect(coord, -1, 2 * size - 1)
        return coord.clamp(0, size - 1)
    return coord


def _gather_taps(flat: Tensor, positions: list[Tensor], sizes: list[int]) -> Tensor:
    """flat (N, C, P) read at integer positions (one (N, Q) tensor per axis, x first),
    zero where a position falls outside the image: (N, C, Q)."""
    inside = None
    index = None
    stride = 1
    for pos, size in zip(positions, sizes):  # x has stride 1, then y, then z
        ok = (pos >= 0) & (pos <= size - 1)
        inside = ok if inside is None else inside & ok
        term = pos.clamp(0, size - 1) * stride
        index = term if index is None else index + term
        stride *= size
    n, c = flat.shape[:2]
    index = index.long()
    values = flat.gather(2, index.unsqueeze(1).expand(n, c, index.shape[1]))
    return values * inside.unsqueeze(1).to(flat.dtype)


def _cubic_weights(t: Tensor) -> list[Tensor]:
    """Keys' cubic convolution weights of the taps at -1, 0, 1, 2 for a fraction t."""
    a = _CUBIC_A

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def grid_sample(
    input: Tensor,
    grid: Tensor,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    align_corners: bool | None = None,
) -> Tensor:
    """input (N, C, H, W) sampled at grid (N, Ho, Wo, 2) gives (N, C, Ho, Wo); volumes
    (N, C, D, H, W) with grid (N, Do, Ho, Wo, 3) likewise. grid[..., 0] is x (width)."""
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(
            "nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or "
            f"'bicubic', but got: '{mode}'"
        )
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(
            "nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
            f"'reflection', but got: '{padding_mode}'"
        )
    align = _align(align_corners)
    k = input.ndim - 2
    if grid.ndim == 0 or grid.shape[-1] != k:
        raise RuntimeError(
            f"grid_sampler(): expected grid to have size {k} in last dimension, but got grid "
            f"with sizes {list(grid.shape)}"
        )
    if input.ndim not in (4, 5) or grid.ndim != input.ndim:
        raise RuntimeError(
            "grid_sampler(): expected 4D or 5D input and grid with same number of dimensions, "
            f"but got input with sizes {list(input.shape)} and grid with sizes "
            f"{list(grid.shape)}"
        )
    if input.shape[0] != grid.shape[0]:
        raise RuntimeError(
            "grid_sampler(): expected grid and input to have same batch size, but got input "
            f"with sizes {list(input.shape)} and grid with sizes {list(grid.shape)}"
        )
    if input.dtype != grid.dtype:
        raise RuntimeError(
            "grid_sampler(): expected input and grid to have same dtype, but input has "
            f"{input.dtype.name} and grid has {grid.dtype.name}"
        )
    if mode == "bicubic" and k != 2:
        raise RuntimeError("grid_sampler(): bicubic interpolation only supports 4D input")
    n, c = input.shape[:2]
    sizes = list(reversed(input.shape[2:]))  # x, y[, z]
    out_spatial = tuple(grid.shape[1:-1])
    flat = input.reshape(n, c, -1)
    coords = grid.reshape(n, -1, k)
    coords = [_unnormalize(coords[..., i], sizes[i], align) for i in range(k)]

    if mode == "bicubic":
        out = _bicubic(flat, coords, sizes, padding_mode, align)
    else:
        coords = [_pad_coordinate(x, s, padding_mode, align) for x, s in zip(coords, sizes)]
        if mode == "nearest":
            out = _gather_taps(flat, [x.detach().round() for x in coords], sizes)
            # the grid gets a zero gradient, as in torch, rather than none
            nowhere = coords[0].new_zeros(coords[0].shape, dtype=_dtype.bool_)
            out = out + _ew.where(nowhere, coords[0], 0.0).unsqueeze(1)
        else:
            out = _linear(flat, coords, sizes)
    return out.reshape(n, c, *out_spatial)


def _linear(flat: Tensor, coords: list[Tensor], sizes: list[int]) -> Tensor:
    """Bilinear / trilinear: the 2^k corners around each point, each weighted by the
    opposite sub-box's volume."""
    low = [x.detach().floor() for x in coords]
    frac = [x - x0 for x, x0 in zip(coords, low)]  # the gradient flows through these
    out = None
    for corner in itertools.product((0, 1), repeat=len(coords)):
        weight = None
        for f, bit in zip(frac, corner):
            w = f if bit else 1 - f
            weight = w if weight is None else weight * w
        taps = _gather_taps(flat, [x0 + bit for x0, bit in zip(low, corner)], sizes)
        term = taps * weight.unsqueeze(1)
        out = term if out is None else out + term
    return out


def _bicubic(flat, coords, sizes, padding_mode, align):
    """4 x 4 taps around each point; padding applies to each tap's integer position."""
    (x, y), (w, h) = coords, sizes
    x0, y0 = x.detach().floor(), y.detach().floor()
    wx, wy = _cubic_weights(x - x0), _cubic_weights(y - y0)
    out = None
    for j in range(4):
        ty = _pad_coordinate(y0 + (j - 1), h, padding_mode, align)
        for i in range(4):
            tx = _pad_coordinate(x0 + (i - 1), w, padding_mode, align)
            taps = _gather_taps(flat, [tx.detach(), ty.detach()], sizes)
            term = taps * (wx[i] * wy[j]).unsqueeze(1)
            out = term if out is None else out + term
    return out
