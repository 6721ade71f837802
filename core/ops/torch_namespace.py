"""torch's top-level names that code written against torch reaches for, beyond the ops
themselves: the nn.functional ops torch also exposes as `torch.conv1d`, `torch.embedding`,
... (with torch's own argument orders where they differ from the functional form, and the
losses' integer `reduction` codes), dtype introspection (`result_type`, `promote_types`,
`can_cast`, `is_floating_point`, ...), thread and precision settings, DLPack and buffers,
and the identities of a real-only library (`conj`, `real`, `resolve_neg`)."""

from __future__ import annotations

import os

import numpy as np

from .. import _dtype
from ..tensor import Tensor


def _f():
    from ..nn import functional  # noqa: PLC0415 - nn imports ops

    return functional


# ---------------------------------------------------------------- nn.functional at the top
_SAME_SIGNATURE = (
    "conv1d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "pdist", "alpha_dropout",
    "feature_alpha_dropout", "celu", "selu", "rrelu", "threshold", "hardshrink", "max_pool1d",
    "max_pool3d", "max_pool1d_with_indices", "avg_pool1d", "adaptive_avg_pool1d", "bilinear",
    "group_norm", "rms_norm",
)  # fmt: skip
_INPLACE = ("alpha_dropout", "feature_alpha_dropout", "celu", "selu", "rrelu", "threshold")


def _functional(name: str):
    def run(*args, **kwargs):
        return getattr(_f(), name)(*args, **kwargs)

    run.__name__ = name
    run.__doc__ = f"torch.{name}: nn.functional.{name}."
    return run


def _functional_inplace(name: str):
    def run(input: Tensor, *args, **kwargs):
        return getattr(_f(), name)(input, *args, inplace=True, **kwargs)

    run.__name__ = name + "_"
    run.__doc__ = f"torch.{name}_: nn.functional.{name}(..., inplace=True)."
    return run


def native_channel_shuffle(input: Tensor, groups: int) -> Tensor:
    return _f().channel_shuffle(input, groups)


def feature_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """Whole channels zeroed (torch.feature_dropout is dropout2d's kernel)."""
    return _f().dropout2d(input, p, train) if input.ndim >= 3 else _f().dropout(input, p, train)


def feature_dropout_(input: Tensor, p: float, train: bool) -> Tensor:
    return input.copy_(feature_dropout(input, p, train))


def dropout_(input: Tensor, p: float, train: bool) -> Tensor:
    return _f().dropout(input, p, train, inplace=True)


def adaptive_max_pool1d(input: Tensor, output_size) -> tuple:
    """torch.adaptive_max_pool1d returns the indices too."""
    return _f().adaptive_max_pool1d(input, output_size, return_indices=True)


def batch_norm(
    input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled=True
):
    """torch.batch_norm: weight and bias before the running statistics."""
    return _f().batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def instance_norm(
    input,
    weight,
    bias,
    running_mean,
    running_var,
    use_input_stats,
    momentum,
    eps,
    cudnn_enabled=True,
):
    return _f().instance_norm(
        input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps
    )


def embedding(
    weight: Tensor,
    indices: Tensor,
    padding_idx: int = -1,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """torch.embedding: the weight first, and -1 for no padding index."""
    pad = None if padding_idx == -1 else padding_idx
    return _f().embedding(indices, weight, pad, scale_grad_by_freq=scale_grad_by_freq)


def constant_pad_nd(input: Tensor, pad, value: float = 0.0) -> Tensor:
    return _f().pad(input, tuple(pad), mode="constant", value=value)


def affine_grid_generator(theta: Tensor, size, align_corners: bool) -> Tensor:
    return _f().affine_grid(theta, list(size), align_corners=align_corners)


# the losses, with torch's ATen reduction codes
_REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}


def _reduction(code) -> str:
    return _REDUCTIONS[code] if isinstance(code, int) else code


def kl_div(input, target, reduction=1, *, log_target: bool = False):
    return _f().kl_div(input, target, reduction=_reduction(reduction), log_target=log_target)


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction=1):
    return _f().binary_cross_entropy_with_logits(
        input, target, weight, reduction=_reduction(reduction), pos_weight=pos_weight
    )


def poisson_nll_loss(input, target, log_input, full, eps, reduction):
    return _f().poisson_nll_loss(
        input, target, log_input=log_input, full=full, eps=eps, reduction=_reduction(reduction)
    )


def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction=1):
    return _f().cosine_embedding_loss(
        input1, input2, target, margin=margin, reduction=_reduction(reduction)
    )


def hinge_embedding_loss(input, target, margin=1.0, reduction=1):
    return _f().hinge_embedding_loss(input, target, margin=margin, reduction=_reduction(reduction))


def margin_ranking_loss(input1, input2, target, margin=0.0, reduction=1):
    return _f().margin_ranking_loss(
        input1, input2, target, margin=margin, reduction=_reduction(reduction)
    )


def triplet_margin_loss(
    anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False, reduction=1
):
    return _f().triplet_margin_loss(
        anchor, positive, negative, margin=margin, p=p, eps=eps, swap=swap,
        reduction=_reduction(reduction),
    )  # fmt: skip


def ctc_loss(
    log_probs, targets, input_lengths, target_lengths, blank=0, reduction=1, zero_infinity=False
):
    return _f().ctc_loss(
        log_probs, targets, input_lengths, target_lengths, blank=blank,
        reduction=_reduction(reduction), zero_infinity=zero_infinity,
    )  # fmt: skip


# ---------------------------------------------------------------- dtypes
def _operand_dtype(x):
    if isinstance(x, Tensor):
        return x
    if isinstance(x, bool):
        return True
    if isinstance(x, (int, np.integer)):
        return int(x)
    return float(x)


def result_type(tensor1, tensor2) -> _dtype.dtype:
    """The dtype torch's promotion gives an op on these two (tensors or Python numbers)."""
    from ._util import prepare_binary  # noqa: PLC0415

    a, b = _operand_dtype(tensor1), _operand_dtype(tensor2)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        if isinstance(a, float) or isinstance(b, float):
            return _dtype.get_default_dtype()
        return _dtype.bool_ if isinstance(a, bool) and isinstance(b, bool) else _dtype.int64
    a, b = prepare_binary(a, b)
    return (a if isinstance(a, Tensor) else b).dtype


def promote_types(type1, type2) -> _dtype.dtype:
    from ._util import result_dtype  # noqa: PLC0415

    return _dtype.from_numpy_dtype(result_dtype(_dtype.to_np(type1), _dtype.to_np(type2)))


def can_cast(from_, to) -> bool:
    """Whether torch's in-place ops may write `from_` into `to` (no change of kind
    downwards: float into int, int into bool)."""
    order = {"b": 0, "u": 1, "i": 1, "f": 2}
    return order[_dtype.to_np(from_).kind] <= order[_dtype.to_np(to).kind]


def is_floating_point(input: Tensor) -> bool:
    return input.is_floating_point()


def is_complex(input: Tensor) -> bool:
    return False


def is_signed(input: Tensor) -> bool:
    return input._data.dtype.kind in "if"


def is_nonzero(input: Tensor) -> bool:
    if input.numel() != 1:
        raise RuntimeError(
            "Boolean value of Tensor with more than one value is ambiguous"
            if input.numel() > 1
            else "Boolean value of Tensor with no values is ambiguous"
        )
    return bool(input.item())


def is_same_size(input: Tensor, other: Tensor) -> bool:
    return tuple(input.shape) == tuple(other.shape)


# ---------------------------------------------------------------- a real-only library
def conj(input: Tensor) -> Tensor:
    return input


conj_physical = resolve_conj = resolve_neg = real = conj


def conj_physical_(input: Tensor) -> Tensor:
    return input


def imag(input: Tensor):
    raise RuntimeError("imag is not implemented for tensors with non-complex dtypes.")


def is_conj(input: Tensor) -> bool:
    return False


is_neg = is_conj


# ---------------------------------------------------------------- threads, buffers, DLPack
_threads: dict = {"intra": None, "inter": None}


def set_num_threads(n: int) -> None:
    """The threads BLAS may use (through threadpoolctl where it is installed; numpy's own
    elementwise loops are single-threaded)."""
    if int(n) < 1:
        raise RuntimeError("set_num_threads expects a positive integer")
    _threads["intra"] = int(n)
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415 - optional
    except ImportError:
        return
    threadpool_limits(int(n))


def get_num_threads() -> int:
    return _threads["intra"] or os.cpu_count() or 1


def set_num_interop_threads(n: int) -> None:
    _threads["inter"] = int(n)


def get_num_interop_threads() -> int:
    return _threads["inter"] or os.cpu_count() or 1


def frombuffer(
    buffer, *, dtype, count: int = -1, offset: int = 0, requires_grad: bool = False
) -> Tensor:
    """A 1-D tensor sharing the memory of a Python buffer (bytes, bytearray, memoryview)."""
    array = np.frombuffer(buffer, dtype=_dtype.to_np(dtype), count=count, offset=offset)
    out = Tensor._make(array)
    return out.requires_grad_() if requires_grad else out


def from_dlpack(ext_tensor) -> Tensor:
    """A tensor sharing the memory of any DLPack producer (a numpy array, a torch or cupy
    tensor, ...): on the GPU through cupy."""
    device = getattr(ext_tensor, "__dlpack_device__", lambda: (1, 0))()[0]
    if device == 2:  # kDLCUDA
        from ..backend import cupy  # noqa: PLC0415

        return Tensor._make(cupy().from_dlpack(ext_tensor))
    return Tensor._make(np.from_dlpack(ext_tensor))


def to_dlpack(tensor: Tensor):
    return tensor._data.__dlpack__()


# ---------------------------------------------------------------- settings and small forms
_settings: dict = {"matmul_precision": "highest", "warn_always": False}


def set_float32_matmul_precision(precision: str) -> None:
    """Recorded for code that sets it; numpy's float32 products are always full precision."""
    if precision not in ("highest", "high", "medium"):
        raise RuntimeError(f"Invalid precision {precision!r}: highest, high or medium")
    _settings["matmul_precision"] = precision


def get_float32_matmul_precision() -> str:
    return _settings["matmul_precision"]


def set_warn_always(b: bool) -> None:
    _settings["warn_always"] = bool(b)


def is_warn_always_enabled() -> bool:
    return _settings["warn_always"]


def set_deterministic_debug_mode(debug_mode) -> None:
    """0 / "default": off, 1 / "warn": warn, 2 / "error": on (use_deterministic_algorithms)."""
    from ..determinism import use_deterministic_algorithms  # noqa: PLC0415

    modes = {"default": 0, "warn": 1, "error": 2}
    level = modes[debug_mode] if isinstance(debug_mode, str) else int(debug_mode)
    if level not in (0, 1, 2):
        raise RuntimeError(f"invalid value of debug_mode, expected 0, 1, or 2, but got {level}")
    use_deterministic_algorithms(level > 0, warn_only=level == 1)


def get_deterministic_debug_mode() -> int:
    from ..determinism import (  # noqa: PLC0415
        are_deterministic_algorithms_enabled,
        is_deterministic_algorithms_warn_only_enabled,
    )

    if not are_deterministic_algorithms_enabled():
        return 0
    return 1 if is_deterministic_algorithms_warn_only_enabled() else 2


def get_device(input: Tensor) -> int:
    return input.get_device()


def typename(obj) -> str:
    """torch.typename: "shardgrad.FloatTensor" for a float32 tensor, the qualified class
    name for anything else."""
    if isinstance(obj, Tensor):
        return obj.type()
    cls = obj if isinstance(obj, type) else type(obj)
    module = cls.__module__
    return cls.__qualname__ if module in ("builtins", None) else f"{module}.{cls.__qualname__}"


def vmap(func, in_dims=0, out_dims=0, randomness: str = "error", *, chunk_size=None):
    from ..func import vmap as _vmap  # noqa: PLC0415

    return _vmap(func, in_dims, out_dims, randomness, chunk_size=chunk_size)


def matrix_rank(input: Tensor, tol=None, symmetric: bool = False):
    """Removed from torch (since 1.9); it says where to go, as torch does."""
    raise RuntimeError(
        "This function was deprecated since version 1.9 and is now removed.\nPlease use the "
        "`torch.linalg.matrix_rank` function instead. The parameter 'symmetric' was renamed "
        "in `torch.linalg.matrix_rank()` to 'hermitian'."
    )


def histogramdd(input: Tensor, bins=10, *, range=None, weight=None, density: bool = False):  # noqa: A002
    """The D-dimensional histogram of the rows of `input` (N, D): (hist, bin_edges), as
    torch.histogramdd (no gradient; on the host)."""
    data = input.detach().cpu().numpy()
    w = None if weight is None else weight.detach().cpu().numpy()
    if isinstance(bins, Tensor):
        bins = bins.tolist()
    elif isinstance(bins, (list, tuple)) and bins and isinstance(bins[0], Tensor):
        bins = [b.detach().cpu().numpy() for b in bins]
    ranges = None if range is None else list(zip(range[0::2], range[1::2]))
    hist, edges = np.histogramdd(data, bins=bins, range=ranges, weights=w, density=density)
    dtype = input._data.dtype
    return Tensor._make(hist.astype(dtype)), [Tensor._make(e.astype(dtype)) for e in edges]


def nonzero_static(input: Tensor, *, size: int, fill_value: int = -1) -> Tensor:
    return input.nonzero_static(size=size, fill_value=fill_value)


def orgqr(input: Tensor, tau: Tensor) -> Tensor:
    return input.orgqr(tau)


def resize_as_(input: Tensor, the_template: Tensor) -> Tensor:
    return input.resize_as_(the_template)


_generated = {name: _functional(name) for name in _SAME_SIGNATURE}
_generated.update({name + "_": _functional_inplace(name) for name in _INPLACE})
globals().update(_generated)

TENSOR_METHODS: dict = {}

__all__ = [
    *_generated, "native_channel_shuffle", "feature_dropout", "feature_dropout_", "dropout_",
    "adaptive_max_pool1d", "batch_norm", "instance_norm", "embedding", "constant_pad_nd",
    "affine_grid_generator", "kl_div", "binary_cross_entropy_with_logits", "poisson_nll_loss",
    "cosine_embedding_loss", "hinge_embedding_loss", "margin_ranking_loss",
    "triplet_margin_loss", "ctc_loss", "result_type", "promote_types", "can_cast",
    "is_floating_point", "is_complex", "is_signed", "is_nonzero", "is_same_size", "conj",
    "conj_physical", "conj_physical_", "resolve_conj", "resolve_neg", "real", "imag",
    "is_conj", "is_neg", "set_num_threads", "get_num_threads", "set_num_interop_threads",
    "get_num_interop_threads", "frombuffer", "from_dlpack", "to_dlpack",
    "set_float32_matmul_precision", "get_float32_matmul_precision", "set_warn_always",
    "is_warn_always_enabled", "set_deterministic_debug_mode", "get_deterministic_debug_mode",
    "get_device", "typename", "vmap", "matrix_rank", "histogramdd", "nonzero_static", "orgqr",
    "resize_as_",
]  # fmt: skip
