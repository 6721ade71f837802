"""Gradient compression: float32 gradients as float16 or bfloat16 on the wire.

Compression halves the bytes a worker sends; the coordinator widens what it receives back to
float32 before adding, so accumulation always happens in float32. numpy has no bfloat16, so
bfloat16 travels as uint16 holding the upper half of each float32, rounded to nearest even.
Overflow is reported, not hidden: a finite gradient element that becomes inf in float16 sets
the `overflow` flag the worker returns.

Note on determinism: the rounding happens on the aligned blocks a worker returns, so with
compression on the result depends on how micro-shards were grouped into blocks. The bitwise
promise across worker counts holds with compression off, which is the default.
"""

from __future__ import annotations

import numpy as np

from shardgrad.backend import xp_of

COMPRESSIONS = ("none", "fp16", "bf16")
WIRE_DTYPES = {"none": None, "fp16": "float16", "bf16": "bfloat16"}


def check_compression(name: str) -> str:
    if name not in COMPRESSIONS:
        raise ValueError(f"unknown gradient compression {name!r}; expected one of {COMPRESSIONS}")
    return name


def encode(grads, compression: str, out=None):
    """`grads` (float32/float64) in the wire dtype; returns (array, overflow).

    For "none" the array itself is returned. bfloat16 comes back as uint16.
    """
    check_compression(compression)
    if compression == "none":
        return grads, False
    xp = xp_of(grads)
    with np.errstate(over="ignore"):  # a float64 beyond float32's range: reported below
        src = grads if grads.dtype == np.float32 else grads.astype(np.float32)
    if compression == "fp16":
        if out is None:
            out = xp.empty(src.shape, dtype=np.float16)
        with np.errstate(over="ignore"):
            out[...] = src
    else:
        bits = src.view(np.uint32)
        # Round to nearest even on the 16 dropped bits; NaN is patched below, because the
        # rounding carry could turn a NaN's payload into an infinity or a sign flip.
        half = (bits >> np.uint32(16)) & np.uint32(1)
        rounded = (bits + np.uint32(0x7FFF) + half) >> np.uint32(16)
        if out is None:
            out = xp.empty(src.shape, dtype=np.uint16)
        out[...] = rounded
        nan = xp.isnan(src)
        if bool(nan.any()):
            out[nan] = (bits[nan] >> np.uint32(16)) | np.uint32(0x40)
    wide = decode(out, compression) if compression == "bf16" else out
    # Against `grads`, not `src`: a finite float64 beyond float32's range is already inf there.
    overflow = bool(xp.isinf(wide).any()) and bool((xp.isinf(wide) & xp.isfinite(grads)).any())
    return out, overflow


def decode(wire, compression: str, dtype="float32", out=None):
    """Wire values back to `dtype` (float32 by default), into `out` when given."""
    check_compression(compression)
    if compression == "bf16":
        wire = (wire.astype(np.uint32) << np.uint32(16)).view(np.float32)
    if out is None:
        return wire.astype(dtype, copy=wire.dtype != np.dtype(dtype))
    out[...] = wire
    return out


def numpy_wire_dtype(compression: str, param_dtype: str) -> np.dtype:
    """The numpy dtype gradients travel as (bfloat16 as uint16)."""
    name = wire_dtype(compression, param_dtype)
    return np.dtype(np.uint16 if name == "bfloat16" else name)


def wire_dtype(compression: str, param_dtype: str) -> str:
    """The name of the element type gradients travel in ("bfloat16" travels as uint16)."""
    check_compression(compression)
    return WIRE_DTYPES[compression] or param_dtype
