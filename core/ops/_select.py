"""Value-selecting plumbing shared by the reductions and the ordering ops.

`max(dim)`, `median(dim)`, `sort`, `topk` and `kthvalue` all pick elements by index along one
dim. They compute the indices on arrays, then read the values through `TakeAlong`, whose
backward writes the gradient back to the picked positions (`PutAlong`); each is the other's
backward, so every order of derivative works. Indices never repeat within a slice here, so
the scatter is a plain assignment.
"""

from __future__ import annotations

from collections import namedtuple

from ..autograd.node import Op
from ..backend import xp_of


def along_index(xp, idx, dim: int) -> tuple:
    """The fancy index that addresses `idx` along `dim` and every position elsewhere."""
    nd = idx.ndim
    index = []
    for i, n in enumerate(idx.shape):
        if i == dim:
            index.append(idx)
        else:
            index.append(xp.arange(n).reshape((1,) * i + (n,) + (1,) * (nd - i - 1)))
    return tuple(index)


class TakeAlong(Op):
    """out = a.take_along(idx, dim); `idx` keeps `dim` (keepdim shape), `keepdim=False`
    squeezes it from the result."""

    def forward(self, a, idx, dim=0, keepdim=True, values=None):
        """`values`, when the caller already has them (max computes them faster than a
        gather), must equal the gather."""
        self.in_shape, self.dim, self.keepdim = a.shape, dim, keepdim
        self.extras = idx
        if values is not None:
            return values
        if a.ndim == 0:
            return a.copy()
        out = xp_of(a).take_along_axis(a, idx, axis=dim)
        return out if keepdim else out.squeeze(dim)

    def backward(self, g):
        if len(self.in_shape) == 0:
            return g
        if not self.keepdim:
            g = g.unsqueeze(self.dim)
        return PutAlong.apply(g, self.extras, dim=self.dim, shape=self.in_shape)


class PutAlong(Op):
    """zeros(shape) with `g` written at `idx` along `dim`: the backward of TakeAlong."""

    def forward(self, g, idx, dim=0, shape=()):
        self.dim = dim
        self.extras = idx
        xp = xp_of(g)
        out = xp.zeros(shape, dtype=g.dtype)
        out[along_index(xp, idx, dim)] = g
        return out

    def backward(self, gg):
        return TakeAlong.apply(gg, self.extras, dim=self.dim, keepdim=True)


def return_type(name: str, fields: tuple[str, ...] = ("values", "indices")):
    """torch.return_types.<name>: a named tuple of the results."""
    cls = namedtuple(name, fields)
    cls.__module__ = "shardgrad.return_types"
    return cls
