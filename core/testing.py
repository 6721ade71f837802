"""shardgrad.testing: torch.testing's `assert_close` and `make_tensor`, for users' own tests.

assert_close compares tensors (or numpy arrays, Python scalars, and lists, tuples and dicts
of them) with dtype-dependent default tolerances, |actual - expected| <= atol + rtol *
|expected|, and fails with torch's report: how many elements differ, and the greatest
absolute and relative differences with their index.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import _dtype
from .tensor import Tensor

__all__ = ["assert_close", "make_tensor"]

# (rtol, atol) by dtype, torch's defaults; exact for integers and booleans
_TOLERANCES = {
    np.dtype(np.float16): (1e-3, 1e-5),
    np.dtype(np.float32): (1.3e-6, 1e-5),
    np.dtype(np.float64): (1e-7, 1e-7),
}


class _Mismatch(AssertionError):
    pass


def _host(t: Tensor) -> np.ndarray:
    return np.asarray(t.detach().cpu().numpy())


def _where(path: list) -> str:
    if not path:
        return ""
    return "\n\nThe failure occurred for item " + "".join(f"[{p!r}]" for p in path)


def _fail(message: str, path: list, msg) -> None:
    if callable(msg):
        message = msg(message)
    elif msg is not None:
        message = msg
    raise AssertionError(message + ("" if msg is not None else _where(path)))


def _tolerances(dtype: np.dtype, rtol, atol) -> tuple[float, float]:
    if (rtol is None) != (atol is None):
        raise ValueError(
            f"Both 'rtol' and 'atol' must be either specified or omitted, but got no "
            f"{'rtol' if rtol is None else 'atol'}."
        )
    if rtol is not None:
        return float(rtol), float(atol)
    return _TOLERANCES.get(dtype, (0.0, 0.0))


def _close_mask(a: np.ndarray, e: np.ndarray, rtol: float, atol: float, equal_nan: bool):
    if a.dtype.kind in "biu" and e.dtype.kind in "biu" and rtol == 0 and atol == 0:
        return a == e
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        close = np.abs(a64 - e64) <= atol + rtol * np.abs(e64)
        close |= a64 == e64  # infinities of the same sign
    if equal_nan:
        close |= np.isnan(a64) & np.isnan(e64)
    return close


def _differences(a: np.ndarray, e: np.ndarray, dtype: np.dtype):
    """|a - e| in the inputs' type, and the relative difference in it (in float32 for
    integers and booleans, as torch divides in its default dtype)."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if dtype.kind == "f":
            diff = np.abs(a - e)
            return diff, diff / np.abs(e)
        diff = np.abs(a.astype(np.int64) - e.astype(np.int64))
        return diff, diff.astype(np.float32) / np.abs(e.astype(np.float32))


def _greatest(values: np.ndarray) -> tuple[Any, tuple]:
    flat = values.reshape(-1)
    nan = np.isnan(flat) if flat.dtype.kind == "f" else np.zeros(flat.shape, bool)
    i = int(np.argmax(nan)) if nan.any() else int(np.argmax(flat))
    return flat[i].item(), tuple(int(k) for k in np.unravel_index(i, values.shape))


def _compare_scalars(a, e, rtol, atol, equal_nan, path, msg) -> None:
    exact = isinstance(a, (bool, int)) and isinstance(e, (bool, int))
    if rtol is None and atol is None:
        rtol, atol = (0.0, 0.0) if exact else (1e-7, 1e-7)
    close = _close_mask(np.asarray(a), np.asarray(e), rtol, atol, equal_nan)
    if bool(close):
        return
    diff = abs(a - e)
    rel = diff / abs(e) if e != 0 else math.inf
    if exact and rtol == 0 and atol == 0:
        report = (
            f"Scalars are not equal!\n\nExpected {e} but got {a}.\nAbsolute difference: {diff}\n"
            f"Relative difference: {rel}"
        )
    else:
        report = (
            f"Scalars are not close!\n\nExpected {e} but got {a}.\nAbsolute difference: {diff} "
            f"(up to {atol} allowed)\nRelative difference: {rel} (up to {rtol} allowed)"
        )
    _fail(report, path, msg)


def _compare_tensors(actual, expected, opts: dict, path: list) -> None:
    msg = opts["msg"]
    a_t, e_t = actual, expected
    a = _host(a_t) if isinstance(a_t, Tensor) else np.asarray(a_t)
    e = _host(e_t) if isinstance(e_t, Tensor) else np.asarray(e_t)
    shape_of = (lambda x: x.shape) if isinstance(a_t, Tensor) else (lambda x: np.shape(x))
    if a.shape != e.shape:
        _fail(
            f"The values for attribute 'shape' do not match: {shape_of(a_t)} != {shape_of(e_t)}.",
            path,
            msg,
        )
    if isinstance(a_t, Tensor) and opts["check_device"] and a_t.device != e_t.device:
        _fail(
            f"The values for attribute 'device' do not match: {a_t.device} != {e_t.device}.",
            path,
            msg,
        )
    if a.dtype != e.dtype:
        if opts["check_dtype"]:
            shown = (a_t.dtype, e_t.dtype) if isinstance(a_t, Tensor) else (a.dtype, e.dtype)
            _fail(
                f"The values for attribute 'dtype' do not match: {shown[0]} != {shown[1]}.",
                path,
                msg,
            )
        common = np.result_type(a.dtype, e.dtype)
        a, e = a.astype(common), e.astype(common)
    rtol, atol = _tolerances(a.dtype, opts["rtol"], opts["atol"])
    if a.ndim == 0:
        _compare_scalars(a.item(), e.item(), rtol, atol, opts["equal_nan"], path, msg)
        return
    close = _close_mask(a, e, rtol, atol, opts["equal_nan"])
    if close.all():
        return
    bad = int((~close).sum())
    total = close.size
    diff, rel = _differences(a, e, a.dtype)
    diff = np.where(close, 0, diff)
    rel = np.where(close, 0, rel)
    (d, d_at), (r, r_at) = _greatest(diff), _greatest(rel)
    exact = rtol == 0 and atol == 0
    report = (
        f"Tensor-likes are not {'equal' if exact else 'close'}!\n\n"
        f"Mismatched elements: {bad} / {total} ({bad / total:.1%})\n"
        f"Greatest absolute difference: {d} at index {d_at}"
        + ("" if exact else f" (up to {atol} allowed)")
        + f"\nGreatest relative difference: {r} at index {r_at}"
        + ("" if exact else f" (up to {rtol} allowed)")
    )
    _fail(report, path, msg)


def _compare(actual, expected, opts: dict, path: list) -> None:
    tensor_like = (Tensor, np.ndarray, np.generic)
    if isinstance(actual, tensor_like) or isinstance(expected, tensor_like):
        if type(actual) is not type(expected) and not (
            opts["allow_subclasses"] and isinstance(actual, Tensor) and isinstance(expected, Tensor)
        ):
            _fail(
                f"Except for Python scalars, input and other must have the same type, but got "
                f"{type(actual).__name__} and {type(expected).__name__}.",
                path,
                opts["msg"],
            )
        _compare_tensors(actual, expected, opts, path)
        return
    if isinstance(actual, Mapping) and isinstance(expected, Mapping):
        if set(actual) != set(expected):
            _fail(
                f"The keys of the mappings do not match:\nMissing keys in the actual mapping: "
                f"{sorted(set(expected) - set(actual), key=repr)}\nAdditional keys in the actual "
                f"mapping: {sorted(set(actual) - set(expected), key=repr)}",
                path,
                opts["msg"],
            )
        for key in expected:
            _compare(actual[key], expected[key], opts, [*path, key])
        return
    if isinstance(actual, Sequence) and not isinstance(actual, str):
        if not isinstance(expected, Sequence) or isinstance(expected, str):
            _fail("Cannot compare a sequence with a non-sequence", path, opts["msg"])
        if len(actual) != len(expected):
            _fail(
                f"The length of the sequences mismatch: {len(actual)} != {len(expected)}",
                path,
                opts["msg"],
            )
        for i, (a, e) in enumerate(zip(actual, expected)):
            _compare(a, e, opts, [*path, i])
        return
    if isinstance(actual, (bool, int, float)) and isinstance(expected, (bool, int, float)):
        if opts["check_dtype"] and type(actual) is not type(expected):
            _fail(
                f"The values for attribute 'dtype' do not match: {type(actual)} != "
                f"{type(expected)}.",
                path,
                opts["msg"],
            )
        _compare_scalars(
            actual, expected, opts["rtol"], opts["atol"], opts["equal_nan"], path, opts["msg"]
        )
        return
    raise TypeError(
        f"No comparison pair was able to handle inputs of type {type(actual)} and {type(expected)}."
    )


def assert_close(
    actual: Any,
    expected: Any,
    *,
    allow_subclasses: bool = True,
    rtol: float | None = None,
    atol: float | None = None,
    equal_nan: bool = False,
    check_device: bool = True,
    check_dtype: bool = True,
    check_layout: bool = True,
    check_stride: bool = False,
    msg: str | Callable[[str], str] | None = None,
) -> None:
    """Raise AssertionError with a report unless `actual` and `expected` are close."""
    _tolerances(np.dtype(np.float64), rtol, atol)  # both or neither
    opts = dict(
        allow_subclasses=allow_subclasses,
        rtol=rtol,
        atol=atol,
        equal_nan=equal_nan,
        check_device=check_device,
        check_dtype=check_dtype,
        msg=msg,
    )
    _compare(actual, expected, opts, [])


def make_tensor(
    *shape,
    dtype,
    device=None,
    low: float | None = None,
    high: float | None = None,
    requires_grad: bool = False,
    noncontiguous: bool = False,
    exclude_zero: bool = False,
) -> Tensor:
    """A tensor of the shape filled with random values in [low, high): [-9, 9) for floats,
    [-9, 10) for signed integers, [0, 10) for unsigned, {False, True} for booleans."""
    from . import random as _random  # noqa: PLC0415
    from .factory import tensor as _tensor  # noqa: PLC0415

    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        shape = tuple(shape[0])
    np_dtype = _dtype.as_dtype(dtype).np
    gen = _random.generator(None)
    size = tuple(int(s) for s in shape)
    if np_dtype == np.bool_:
        values = gen.integers(0, 2, size=size).astype(np.bool_)
    elif np_dtype.kind in "iu":
        lo = int(low if low is not None else (0 if np_dtype.kind == "u" else -9))
        hi = int(high if high is not None else 10)
        values = gen.integers(lo, hi, size=size).astype(np_dtype)
    else:
        lo = -9.0 if low is None else float(low)
        hi = 9.0 if high is None else float(high)
        if lo > hi:
            raise ValueError(f"low must be less than or equal to high, but got {lo} > {hi}")
        values = (lo + (hi - lo) * gen.random(size)).astype(np_dtype)
    if exclude_zero:
        tiny = np.finfo(np_dtype).tiny if np_dtype.kind == "f" else 1
        values = np.where(values == 0, np_dtype.type(tiny), values).astype(np_dtype)
    if noncontiguous and values.size > 1:  # the values every other element of a buffer
        out = _tensor(np.repeat(values[..., None], 2, axis=-1), device=device)[..., 0]
    else:
        out = _tensor(values, device=device)
    if requires_grad:
        out.requires_grad_(True)
    return out
