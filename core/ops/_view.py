"""Views: tensors that share memory with a base, and in-place writes through them.

A view records `(parent, fn, arg, made_with_grad, version)` in `Tensor._view`, where
`fn(parent_array, arg)` rebuilds its array from the parent's. That is enough to map any view
back onto the first non-view tensor (its root): applying the chain of `fn`s to an array of
flat positions gives, for every element of the view, its position in the root.

An in-place op on a view with a graph to record follows torch: the new value is written
into the shared memory, the root gets a `CopySlices` node (the root's old value outside the
view, the new value inside it) and the view is re-derived from the root. Other views of the
same root notice the version bump and re-derive their history lazily (`refresh_view`).
"""

from __future__ import annotations

import numpy as np

from ..autograd import grad_mode
from ..autograd.node import Op
from ..backend import xp_of
from ..tensor import Tensor

NO_GRAD_VIEW_MSG = (
    "A view was created in no_grad mode and is being modified inplace with grad mode "
    "enabled. Given that this use case is ambiguous and error-prone, it is forbidden. You can "
    "clarify your code by moving both the view and the inplace either both inside the no_grad "
    "block (if you don't want the inplace to be tracked) or both outside (if you want the "
    "inplace to be tracked)."
)
LEAF_VIEW_MSG = (
    "a view of a leaf Variable that requires grad is being used in an in-place operation."
)


def mark_view(base: Tensor, out: Tensor, fn, arg) -> Tensor:
    """Record that `out` is `fn(base, arg)` sharing base's memory and version counter."""
    out._vbox = base._vbox
    out._view = (base, fn, arg, grad_mode.state.enabled, base._vbox[0])
    return out


def _fn_multi(a, arg):
    fn, inner, _, _ = arg
    return fn(a, inner)


def mark_multi_output_view(base: Tensor, out: Tensor, fn, arg, op_name: str, nr: int) -> Tensor:
    """A view that is one of several outputs of one node (split, chunk, unbind): torch
    refuses in-place changes to those when autograd is involved."""
    return mark_view(base, out, _fn_multi, (fn, arg, op_name, nr))


def root_and_chain(t: Tensor) -> tuple[Tensor, list, bool]:
    """The root of a view, the `(fn, arg)` steps from it, and whether every step was made
    with grad mode on."""
    chain = []
    with_grad = True
    while t._view is not None:
        parent, fn, arg, made_with_grad, _ = t._view
        chain.append((fn, arg))
        with_grad = with_grad and made_with_grad
        t = parent
    chain.reverse()
    return t, chain, with_grad


def _index_map(chain: list, shape: tuple, xp):
    """For each element of the view, its flat position in an array of the root's shape."""
    n = 1
    for s in shape:
        n *= s
    m = xp.arange(n).reshape(shape)
    for fn, arg in chain:
        m = fn(m, arg)
    return m


def _stamp(t: Tensor) -> None:
    parent, fn, arg, made_with_grad, _ = t._view
    t._view = (parent, fn, arg, made_with_grad, t._vbox[0])


def refresh_view(t: Tensor) -> None:
    """Re-derive a view's history from its root after the root was changed in place."""
    root, chain, _ = root_and_chain(t)
    if root._requires_grad and t._requires_grad:
        with grad_mode.enable_grad():
            node_out = AsStridedRead.apply(root, chain=chain, alias=t._data)
        t.grad_fn, t._output_nr = node_out.grad_fn, 0
    _stamp(t)


def check_view_inplace(t: Tensor, others_need_grad: bool) -> None:
    """torch's refusals for an in-place op on a view under grad mode."""
    root, chain, with_grad = root_and_chain(t)
    if not with_grad and (root._requires_grad or others_need_grad):
        raise RuntimeError(NO_GRAD_VIEW_MSG)
    if root._requires_grad or others_need_grad:
        for fn, arg in chain:
            if fn is _fn_multi:
                raise RuntimeError(
                    f"Output {arg[3]} of {arg[2]} is a view and is being modified inplace. This "
                    "view is the output of a function that returns multiple views. Such "
                    "functions do not allow the output views to be modified inplace. You should "
                    "replace the inplace operation by an out-of-place one."
                )
    if root.grad_fn is None and root._requires_grad:
        raise RuntimeError(LEAF_VIEW_MSG)


def rebase_view(t: Tensor, new_value: Tensor) -> None:
    """`new_value` is already written into `t`'s memory: give the root a CopySlices node and
    re-derive `t` from it."""
    root, chain, _ = root_and_chain(t)
    src = Tensor._make(root._data, root.grad_fn, root._output_nr)
    src._requires_grad = root._requires_grad
    src._accumulator = root._accumulator
    with grad_mode.enable_grad():
        out = CopySlices.apply(src, new_value, chain=chain)
        root.grad_fn, root._output_nr, root._requires_grad = out.grad_fn, 0, True
        t._bump_version()
        node_out = AsStridedRead.apply(root, chain=chain, alias=t._data)
    t.grad_fn, t._output_nr, t._requires_grad = node_out.grad_fn, 0, True
    _stamp(t)


class AsStridedRead(Op):
    """The view as a function of its root; `alias` is the view's array when it exists."""

    def forward(self, a, chain=None, alias=None):
        self.chain, self.in_shape = chain, a.shape
        if alias is not None:
            return alias
        return a.reshape(-1)[_index_map(chain, a.shape, xp_of(a))]

    def backward(self, g):
        return AsStridedScatter.apply(g, chain=self.chain, shape=self.in_shape)

    def name(self) -> str:
        return "AsStridedBackward0"


class AsStridedScatter(Op):
    """zeros(root shape) with the view's positions receiving (summing) `g`."""

    def forward(self, g, chain=None, shape=None):
        self.chain = chain
        xp = xp_of(g)
        m = _index_map(chain, shape, xp)
        out = xp.zeros(_numel(shape), dtype=g.dtype)
        if any(st == 0 and n > 1 for st, n in zip(m.strides, m.shape)):
            add_at(out, m.reshape(-1), xp.broadcast_to(g, m.shape).reshape(-1))  # expanded
        else:
            out[m] = g  # every position appears once
        return out.reshape(shape)

    def backward(self, gg):
        return AsStridedRead.apply(gg, chain=self.chain)


class ZeroRegion(Op):
    """`g` with the view's positions set to zero: the root's old value is overwritten there."""

    def forward(self, g, chain=None):
        self.chain = chain
        out = g.copy()
        out.reshape(-1)[_index_map(self.chain, g.shape, xp_of(g))] = 0
        return out

    def backward(self, gg):
        return ZeroRegion.apply(gg, chain=self.chain)


class CopySlices(Op):
    """The root after an in-place write through one of its views (already in memory)."""

    def forward(self, base, value, chain=None):
        self.chain = chain
        return base

    def backward(self, g):
        g_base = ZeroRegion.apply(g, chain=self.chain) if self.needs_input_grad[0] else None
        g_value = AsStridedRead.apply(g, chain=self.chain) if self.needs_input_grad[1] else None
        return g_base, g_value

    def name(self) -> str:
        return "CopySlices"


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def add_at(out, idx, values) -> None:
    """`out[idx] += values` with repeated indices summed (numpy's `add.at`).

    On the GPU, cupy sums with atomic additions, whose order (and so the rounding of a float
    sum) changes from run to run. Under `use_deterministic_algorithms(True)` the sum is
    formed by `_reduce_at` instead: a fixed order, the same bits every run.
    """
    xp = xp_of(out)
    if xp is np:
        np.add.at(out, idx, values)
        return
    from .. import determinism  # noqa: PLC0415

    if determinism.are_deterministic_algorithms_enabled():
        _reduce_at(out, idx, values, xp.add)
        return
    if hasattr(xp.add, "at"):
        xp.add.at(out, idx, values)
        return
    import cupyx  # noqa: PLC0415 - older cupy without ufunc.at

    items = idx if isinstance(idx, tuple) else (idx,)
    flat = []
    for i in items:  # scatter_add takes integer arrays, not masks
        if getattr(i, "dtype", None) == np.bool_:
            flat.extend(xp.nonzero(i))
        else:
            flat.append(i)
    cupyx.scatter_add(out, tuple(flat), values)


def multiply_at(out, idx, values) -> None:
    """`out[idx] *= values` with repeated indices multiplied in turn (numpy's `multiply.at`).
    cupy's `ufunc.at` covers add, subtract, maximum, minimum and the bitwise ops only, so on
    the GPU the product is formed by `_reduce_at`."""
    xp = xp_of(out)
    if xp is np:
        np.multiply.at(out, idx, values)
        return
    _reduce_at(out, idx, values, xp.multiply)


def extreme_at(out, idx, values, larger: bool) -> None:
    """`out[idx] = maximum(out[idx], values)` (or minimum) with repeated indices combined
    (numpy's `maximum.at`). cupy's own `maximum.at` does not return float64 values exactly
    as they came in, so on the GPU the extremes are formed by `_reduce_at`."""
    xp = xp_of(out)
    combine = xp.maximum if larger else xp.minimum
    if xp is np:
        combine.at(out, idx, values)
        return
    _reduce_at(out, idx, values, combine)


def _reduce_at(out, idx, values, combine) -> None:
    """`out[idx] = combine(out[idx], values)` with repeated indices combined, on any array
    module, without atomics and in a fixed order.

    Each value's target is read off an array of flat positions indexed like `out` (so any
    index numpy accepts works); the values are grouped by target with a stable sort; a
    segmented Hillis-Steele scan leaves each group's total on its last element; and every
    position of `out` finds its group's end by binary search. Each step is one whole-array
    operation with no host round trip. Integers are exact; floats are exact up to the
    association order, which is the same on every run.
    """
    xp = xp_of(out)
    target = xp.arange(out.size, dtype=np.int64).reshape(out.shape)[idx]
    vals = xp.broadcast_to(xp.asarray(values, dtype=out.dtype), target.shape)
    target, vals = target.reshape(-1), vals.reshape(-1)
    if target.size == 0:
        return
    order = xp.argsort(target, kind="stable")  # stable: each group keeps its values' order
    target, acc = target[order], vals[order].copy()
    step = 1
    while step < acc.size:  # acc[i] becomes the total of its group up to i
        same = target[step:] == target[:-step]
        acc[step:] = xp.where(same, combine(acc[:-step], acc[step:]), acc[step:])
        step *= 2
    flat = out.reshape(-1) if out.flags.c_contiguous else xp.ascontiguousarray(out).reshape(-1)
    positions = xp.arange(flat.size, dtype=np.int64)
    end = xp.searchsorted(target, positions, side="right") - 1  # last value aimed at each
    end = xp.maximum(end, 0)
    hit = target[end] == positions
    flat[...] = xp.where(hit, combine(flat, acc[end]), flat)
    if not out.flags.c_contiguous:
        out[...] = flat.reshape(out.shape)
