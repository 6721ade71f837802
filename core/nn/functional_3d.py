"""Volumetric (3-D) convolution and pooling, composed from the 2-D ops.

conv3d sums one 2-D convolution per kernel depth: the input's depth slices that kernel
depth meets, folded into the batch, convolved with that depth of the weight. Max and
average pooling are separable: pool each depth slice in 2-D, then along the depth. Each
result equals the 3-D definition (a max over a box is a max of maxima; with a fixed box,
an average of averages), and the first maximum in (depth, row, column) order keeps the
gradient, as in torch. Gradients come from the 2-D ops.
"""

from __future__ import annotations

from ..tensor import Tensor
from . import functional as F

__all__ = [
    "adaptive_avg_pool3d", "adaptive_max_pool3d", "avg_pool3d", "conv3d", "conv_transpose3d",
    "lp_pool3d", "max_pool3d", "max_unpool3d",
]  # fmt: skip


def _triple(value, name: str) -> tuple[int, int, int]:
    return F._ntuple(value, 3, name)


def _as_volume_batch(input: Tensor, name: str) -> tuple[Tensor, bool]:
    if input.ndim not in (4, 5):
        raise RuntimeError(
            f"Expected 4D (unbatched) or 5D (batched) input to {name}, but got input of size: "
            f"{list(input.shape)}"
        )
    return (input.unsqueeze(0), True) if input.ndim == 4 else (input, False)


def _depth_slices(x: Tensor, start: int, count: int, step: int) -> Tensor:
    """x[:, :, start::step][:count] with the depth folded into the batch: (N*count, C, H, W)."""
    n, c = x.shape[:2]
    picked = x[:, :, start : start + step * (count - 1) + 1 : step]
    return picked.transpose(1, 2).reshape(n * count, c, *x.shape[3:])


def _unfold_depth(y: Tensor, n: int, count: int) -> Tensor:
    """(N*count, C, H, W) back to (N, C, count, H, W)."""
    return y.reshape(n, count, *y.shape[1:]).transpose(1, 2)


def conv3d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
) -> Tensor:
    """A 3-D convolution over (N, C, D, H, W), weight (O, C / groups, kD, kH, kW)."""
    x, unbatched = _as_volume_batch(input, "conv3d")
    if weight.ndim != 5:
        raise RuntimeError(
            f"Expected 5-dimensional weight for 5-dimensional input {list(x.shape)}, but got "
            f"{weight.ndim}-dimensional weight of size {list(weight.shape)} instead"
        )
    sd, sh, sw = _triple(stride, "stride")
    dd, dh, dw = _triple(dilation, "dilation")
    kd, kh, kw = weight.shape[2:]
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0, 0, 0)
        elif padding == "same":
            if (sd, sh, sw) != (1, 1, 1):
                raise RuntimeError("padding='same' is not supported for strided convolutions")
            totals = [d * (k - 1) for d, k in zip((dd, dh, dw), (kd, kh, kw))]
            flat = []
            for total in reversed(totals):
                flat += [total // 2, total - total // 2]
            x = F.pad(x, flat)
            pads = (0, 0, 0)
        else:
            raise RuntimeError(f"Invalid padding string: '{padding}'")
    else:
        pads = _triple(padding, "padding")
    pd, ph, pw = pads
    if pd:
        x = F.pad(x, (0, 0, 0, 0, pd, pd))
    n, depth = x.shape[0], x.shape[2]
    out_depth = (depth - dd * (kd - 1) - 1) // sd + 1
    if out_depth <= 0:
        raise RuntimeError(f"Calculated output size: ({out_depth}, ...). Output size is too small")
    total = None
    for k in range(kd):
        part = F.conv2d(
            _depth_slices(x, k * dd, out_depth, sd), weight[:, :, k], None, (sh, sw),
            (ph, pw), (dh, dw), groups,
        )  # fmt: skip
        total = part if total is None else total + part
    out = _unfold_depth(total, n, out_depth)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1, 1)
    return out.squeeze(0) if unbatched else out


def _pool3d_args(kernel_size, stride, padding, dilation=1):
    k = _triple(kernel_size, "kernel_size")
    s = k if stride is None or stride == () or stride == [] else _triple(stride, "stride")
    return k, s, _triple(padding, "padding"), _triple(dilation, "dilation")


def max_pool3d(
    input: Tensor,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor:
    x, unbatched = _as_volume_batch(input, "max_pool3d")
    k, s, p, d = _pool3d_args(kernel_size, stride, padding, dilation)
    n, c, depth = x.shape[:3]
    planes = x.transpose(1, 2).reshape(n * depth, c, *x.shape[3:])
    pooled = F.max_pool2d(planes, k[1:], s[1:], p[1:], d[1:], ceil_mode, return_indices)
    if return_indices:
        pooled, plane_index = pooled
    h, w = pooled.shape[2:]
    columns = pooled.reshape(n, depth, c, h * w).transpose(1, 2)  # (N, C, D, H*W)
    out = F.max_pool2d(
        columns, (k[0], 1), (s[0], 1), (p[0], 0), (d[0], 1), ceil_mode, return_indices
    )
    if not return_indices:
        out = out.reshape(n, c, out.shape[2], h, w)
        return out.squeeze(0) if unbatched else out
    out, column_index = out
    index = _volume_index(column_index, plane_index, n, c, depth, h * w, x.shape[3] * x.shape[4])
    out = out.reshape(n, c, out.shape[2], h, w)
    index = index.reshape(n, c, out.shape[2], h, w)
    return (out.squeeze(0), index.squeeze(0)) if unbatched else (out, index)


def avg_pool3d(
    input: Tensor,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override=None,
) -> Tensor:
    x, unbatched = _as_volume_batch(input, "avg_pool3d")
    k, s, p, _ = _pool3d_args(kernel_size, stride, padding)
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    # with divisor_override, both stages sum (divisor 1) and the sum is divided at the end
    override = 1 if divisor_override else None
    n, c, depth = x.shape[:3]
    planes = x.transpose(1, 2).reshape(n * depth, c, *x.shape[3:])
    pooled = F.avg_pool2d(planes, k[1:], s[1:], p[1:], ceil_mode, count_include_pad, override)
    h, w = pooled.shape[2:]
    columns = pooled.reshape(n, depth, c, h * w).transpose(1, 2)
    out = F.avg_pool2d(
        columns, (k[0], 1), (s[0], 1), (p[0], 0), ceil_mode, count_include_pad, override
    )
    out = out.reshape(n, c, out.shape[2], h, w)
    if divisor_override:
        out = out / divisor_override
    return out.squeeze(0) if unbatched else out


def _adaptive3d(input: Tensor, output_size, pool2d, name: str):
    x, unbatched = _as_volume_batch(input, name)
    size = (output_size,) * 3 if isinstance(output_size, int) else tuple(output_size)
    size = tuple(x.shape[2 + i] if v is None else int(v) for i, v in enumerate(size))
    n, c, depth = x.shape[:3]
    planes = x.transpose(1, 2).reshape(n * depth, c, *x.shape[3:])
    pooled = pool2d(planes, size[1:])
    h, w = pooled.shape[2:]
    columns = pooled.reshape(n, depth, c, h * w).transpose(1, 2)
    out = pool2d(columns, (size[0], h * w)).reshape(n, c, size[0], h, w)
    return out.squeeze(0) if unbatched else out


def adaptive_avg_pool3d(input: Tensor, output_size) -> Tensor:
    return _adaptive3d(input, output_size, F.adaptive_avg_pool2d, "adaptive_avg_pool3d")


def adaptive_max_pool3d(input: Tensor, output_size, return_indices: bool = False) -> Tensor:
    if not return_indices:
        return _adaptive3d(input, output_size, F.adaptive_max_pool2d, "adaptive_max_pool3d")
    x, unbatched = _as_volume_batch(input, "adaptive_max_pool3d")
    size = (output_size,) * 3 if isinstance(output_size, int) else tuple(output_size)
    size = tuple(x.shape[2 + i] if v is None else int(v) for i, v in enumerate(size))
    n, c, depth = x.shape[:3]
    planes = x.transpose(1, 2).reshape(n * depth, c, *x.shape[3:])
    pooled, plane_index = F.adaptive_max_pool2d(planes, size[1:], True)
    h, w = pooled.shape[2:]
    columns = pooled.reshape(n, depth, c, h * w).transpose(1, 2)
    out, column_index = F.adaptive_max_pool2d(columns, (size[0], h * w), True)
    index = _volume_index(column_index, plane_index, n, c, depth, h * w, x.shape[3] * x.shape[4])
    out, index = out.reshape(n, c, size[0], h, w), index.reshape(n, c, size[0], h, w)
    return (out.squeeze(0), index.squeeze(0)) if unbatched else (out, index)


def _volume_index(column_index, plane_index, n, c, depth, plane_out, plane_in) -> Tensor:
    """Each maximum's position in its input volume, d * H * W + (h * W + w), from the depth
    pooling's choice of plane and that plane's 2-D pooling index."""
    winner_depth = column_index // plane_out
    in_plane = plane_index.reshape(n, depth, c, plane_out).transpose(1, 2).gather(2, winner_depth)
    return winner_depth * plane_in + in_plane


def lp_pool3d(
    input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False
) -> Tensor:
    """(sum over the box of x^p)^(1/p), as torch computes it: an average times the box's
    volume, negative averages clamped to zero."""
    kd, kh, kw = _triple(kernel_size, "kernel_size")
    out = avg_pool3d(input.pow(norm_type), (kd, kh, kw), stride, 0, ceil_mode)
    return (out.sign() * F.relu(out.abs())).mul(kd * kh * kw).pow(1.0 / norm_type)


def max_unpool3d(
    input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None
) -> Tensor:
    """The inverse of max_pool3d with return_indices: each value back at its index in its
    volume, zeros elsewhere."""
    k = _triple(kernel_size, "kernel_size")
    s = k if stride is None else _triple(stride, "stride")
    p = _triple(padding, "padding")
    x, unbatched = _as_volume_batch(input, "max_unpool3d")
    idx = indices.unsqueeze(0) if unbatched else indices
    n, c = x.shape[:2]
    if output_size is None:
        size = tuple((x.shape[2 + i] - 1) * s[i] - 2 * p[i] + k[i] for i in range(3))
    else:
        size = tuple(output_size)[-3:]
    volume = size[0] * size[1] * size[2]
    flat_idx = idx.reshape(n, c, -1)
    if flat_idx.numel() and (int(flat_idx.max()) >= volume or int(flat_idx.min()) < 0):
        raise RuntimeError(
            f"Found an invalid max index: {int(flat_idx.max())} (output volumes are of size "
            f"{size[0]}x{size[1]}x{size[2]})"
        )
    zeros = x.new_zeros((n, c, volume))
    out = zeros.scatter(2, flat_idx, x.reshape(n, c, -1)).reshape(n, c, *size)
    return out.squeeze(0) if unbatched else out


def conv_transpose3d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
) -> Tensor:
    """The transposed 3-D convolution, weight (in, out / groups, kD, kH, kW): for each kernel
    depth k, a 2-D transposed convolution of every input depth slice, added at output depth
    t * stride + k * dilation, then the depth padding cropped."""
    x, unbatched = _as_volume_batch(input, "conv_transpose3d")
    if weight.ndim != 5:
        raise RuntimeError(f"weight should have five dimensions, got {list(weight.shape)}")
    sd, sh, sw = _triple(stride, "stride")
    pd, ph, pw = _triple(padding, "padding")
    od, oh, ow = _triple(output_padding, "output_padding")
    dd, dh, dw = _triple(dilation, "dilation")
    if od < 0 or (od >= sd and od >= dd):
        raise RuntimeError(
            "output padding must be smaller than either stride or dilation, but got "
            f"output_padding_depth: {od} stride_depth: {sd} dilation_depth: {dd}"
        )
    n, _, depth = x.shape[:3]
    kd = weight.shape[2]
    full_depth = (depth - 1) * sd + dd * (kd - 1) + 1 + od
    out_depth = full_depth - 2 * pd
    if out_depth <= 0:
        raise RuntimeError(f"Given input depth {depth}, the output depth {out_depth} is too small")
    slices = x.transpose(1, 2).reshape(n * depth, x.shape[1], *x.shape[3:])
    total = None
    for k in range(kd):
        part = F.conv_transpose2d(
            slices, weight[:, :, k], None, (sh, sw), (ph, pw), (oh, ow), groups, (dh, dw)
        )
        part = _unfold_depth(part, n, depth)  # (N, C_out, D_in, H', W')
        at = [t * sd + k * dd for t in range(depth)]
        placed = part.new_zeros((n, part.shape[1], full_depth, *part.shape[3:])).index_add(
            2, _as_index(at, part), part
        )
        total = placed if total is None else total + placed
    out = total[:, :, pd : pd + out_depth]
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1, 1)
    return out.squeeze(0) if unbatched else out


def _as_index(positions: list[int], like: Tensor) -> Tensor:
    from ..factory import tensor  # noqa: PLC0415

    return tensor(positions, dtype="int64", device=like.device)
