"""Array-level machinery shared by the update kernels: scratch space, a blocked launcher and
two building blocks of torch's updates (the effective gradient and `lerp_`).

A kernel is a function `kernel(xp, s0, s1, param, grad, *state_arrays, **hyper)` made only of
elementwise ufuncs writing with `out=`; `s0` and `s1` are scratch arrays shaped like `param`.
Because every operation is elementwise, running a kernel block by block over flat views gives
bit-for-bit the whole-array result while keeping the temporaries in cache, which is what makes
the host update of a large flat parameter buffer fast.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import backend
from .._ieee import loud, quiet
from . import _cuda

# Elements per block on the host: about 1 MB per float32 array keeps a kernel's working set
# (parameter, gradient, state and two scratch blocks) within the CPU caches.
BLOCK_BYTES = 1 << 20

# Use the fused CUDA kernels of `_cuda` for GPU parameters (off: the ufunc kernels run there
# too, which is how the two are checked against each other).
FUSED = True


class Workspace:
    """Scratch arrays reused across steps.

    Two flat buffers (slots 0 and 1) per (dtype, device), grown to the largest request; each
    request gets views of them, cached by shape so a step pays one dict lookup. Kernels run
    one after another, so all parameters share the buffers; the two slots never alias.
    """

    __slots__ = ("_bufs", "_views")

    def __init__(self) -> None:
        self._bufs: dict = {}
        self._views: dict = {}

    def pair(self, like, n: int | None = None) -> tuple:
        """Two scratch arrays shaped like `like` (or flat with `n` elements), same dtype and
        device as `like`."""
        dev = None if type(like) is np.ndarray else backend.device_of(like)
        key = (like.shape if n is None else n, like.dtype, dev)
        views = self._views.get(key)
        if views is None:
            size = like.size if n is None else n
            shape = like.shape if n is None else (n,)
            views = tuple(
                self._buffer(slot, like, size, dev)[:size].reshape(shape) for slot in (0, 1)
            )
            self._views[key] = views
        return views

    def _buffer(self, slot: int, like, size: int, dev):
        key = (slot, like.dtype, dev)
        buf = self._bufs.get(key)
        if buf is None or buf.size < size:
            if dev is None:
                buf = np.empty(size, dtype=like.dtype)
            else:
                with like.device:
                    buf = backend.xp_of(like).empty(size, dtype=like.dtype)
            self._bufs[key] = buf
            # views of the smaller buffer stay valid but would keep it alive: drop them
            self._views = {k: v for k, v in self._views.items() if (k[1], k[2]) != key[1:]}
        return buf

    def clear(self) -> None:
        self._bufs.clear()
        self._views.clear()


def launch(
    kernel: Callable, ws: Workspace, arrays: tuple, fused: Callable | None = None, **hyper
) -> None:
    """Run `kernel` over `arrays` (param first; None for absent state).

    On the host it runs in cache-sized blocks when every array is a C-contiguous numpy array
    of the parameter's shape. On the GPU, `fused` (one CUDA kernel doing the whole update)
    runs instead where the arrays allow it and `FUSED` is on.
    """
    token = quiet()  # an inf or nan gradient updates silently, as in torch
    try:
        _launch(kernel, ws, arrays, fused, hyper)
    finally:
        loud(token)


def _launch(kernel: Callable, ws: Workspace, arrays: tuple, fused, hyper: dict) -> None:
    p = arrays[0]
    if type(p) is not np.ndarray:
        if fused is not None and FUSED and _cuda.usable(arrays):
            fused(*arrays, **hyper)
        else:
            kernel(backend.xp_of(p), *ws.pair(p), *arrays, **hyper)
        return
    n = p.size
    block = max(BLOCK_BYTES // p.itemsize, 1)
    if n <= block or not _flat_ok(arrays, p.shape):
        kernel(np, *ws.pair(p), *arrays, **hyper)
        return
    flat = [None if a is None else a.reshape(-1) for a in arrays]
    s0, s1 = ws.pair(p, block)
    for i in range(0, n, block):
        j = min(i + block, n)
        blocks = [None if a is None else a[i:j] for a in flat]
        kernel(np, s0[: j - i], s1[: j - i], *blocks, **hyper)


def state_like(a, fill: float | None = 0.0):
    """A new array shaped like `a` on `a`'s device (cupy's `*_like` use the current one),
    filled with `fill`, or uninitialised for None."""
    if type(a) is np.ndarray:
        return np.empty_like(a) if fill is None else np.full_like(a, fill)
    with a.device:
        xp = backend.xp_of(a)
        return xp.empty_like(a) if fill is None else xp.full_like(a, fill)


def copy_array(a):
    """A copy of `a` on `a`'s device."""
    if type(a) is np.ndarray:
        return a.copy()
    with a.device:
        return a.copy()


def _flat_ok(arrays: tuple, shape: tuple) -> bool:
    for a in arrays:
        if a is None:
            continue
        if type(a) is not np.ndarray or a.shape != shape or not a.flags.c_contiguous:
            return False
    return True


def effective_grad(xp, p, g, weight_decay: float, maximize: bool, out):
    """torch's `grad = -grad if maximize` then `grad = grad.add(param, alpha=weight_decay)`,
    written into `out` when anything changes so that `p.grad` is left untouched."""
    if weight_decay == 0:
        if not maximize:
            return g
        xp.negative(g, out=out)
        return out
    xp.multiply(p, weight_decay, out=out)
    if maximize:
        xp.subtract(out, g, out=out)  # -g + wd*p, bit for bit
    else:
        xp.add(out, g, out=out)
    return out


def decayed_grad(xp, p, g, weight_decay: float, decay, maximize: bool, out):
    """The Adam family's gradient: with `decay` (decoupled weight decay, AdamW's
    `param.mul_(1 - lr * weight_decay)`) the parameter shrinks first and the gradient is only
    negated under `maximize`; without it the decay goes into the gradient (`effective_grad`)."""
    if decay is None:
        return effective_grad(xp, p, g, weight_decay, maximize, out)
    if weight_decay != 0:
        xp.multiply(p, decay, out=p)
    return effective_grad(xp, p, g, 0, maximize, out)


def second_moment_(xp, exp_avg_sq, g, beta2: float, tmp) -> None:
    """`exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)`, in torch's order."""
    xp.multiply(g, 1 - beta2, out=tmp)
    xp.multiply(tmp, g, out=tmp)
    xp.multiply(exp_avg_sq, beta2, out=exp_avg_sq)
    xp.add(exp_avg_sq, tmp, out=exp_avg_sq)


def lerp_(xp, start, end, weight: float, tmp) -> None:
    """`start.lerp_(end, weight)` with torch's two formulas (chosen by |weight| < 0.5)."""
    xp.subtract(end, start, out=tmp)
    if abs(weight) < 0.5:
        xp.multiply(tmp, weight, out=tmp)
        xp.add(start, tmp, out=start)
    else:
        xp.multiply(tmp, weight - 1, out=tmp)
        xp.add(end, tmp, out=start)
