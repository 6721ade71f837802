"""AdaptiveLogSoftmaxWithLoss (Grave et al., "Efficient softmax approximation for GPUs"):
a softmax over a large vocabulary that spends its compute on the frequent classes.

The classes are split by `cutoffs` into a shortlist (the most frequent, scored by the head
layer together with one entry per tail cluster) and clusters of rarer classes, each scored
by a smaller projection (in_features / div_value^(i+1) hidden units). A class's log
probability is the head's log probability of its cluster plus its log probability inside
the cluster; forward computes the tail only for the rows whose targets fall in it.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..backend import xp_of
from ..tensor import Tensor
from . import functional as F
from .container import ModuleList, Sequential
from .linear import Linear
from .module import Module

__all__ = ["AdaptiveLogSoftmaxWithLoss"]

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])


class AdaptiveLogSoftmaxWithLoss(Module):
    def __init__(
        self,
        in_features: int,
        n_classes: int,
        cutoffs,
        div_value: float = 4.0,
        head_bias: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("cutoffs should be a sequence of length larger than 0")
        if (
            cutoffs != sorted(cutoffs)
            or min(cutoffs) <= 0
            or max(cutoffs) > n_classes - 1
            or len(set(cutoffs)) != len(cutoffs)
            or any(int(c) != c for c in cutoffs)
        ):
            raise ValueError(
                "cutoffs should be a sequence of unique, positive integers sorted in an "
                "increasing order, where each value is between 1 and n_classes-1"
            )
        self.in_features, self.n_classes = in_features, n_classes
        self.cutoffs = cutoffs + [n_classes]
        self.div_value, self.head_bias = div_value, head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        kw = dict(device=device, dtype=dtype)
        self.head = Linear(in_features, self.head_size, bias=head_bias, **kw)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hidden = int(in_features // (div_value ** (i + 1)))
            size = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(
                Sequential(
                    Linear(in_features, hidden, bias=False, **kw),
                    Linear(hidden, size, bias=False, **kw),
                )
            )

    def reset_parameters(self) -> None:
        self.head.reset_parameters()
        for i2h, h2o in self.tail:
            i2h.reset_parameters()
            h2o.reset_parameters()

    def forward(self, input_: Tensor, target_: Tensor) -> _ASMoutput:
        if target_.ndim == 1:
            if input_.shape[0] != target_.shape[0]:
                raise RuntimeError(
                    "Input and target should have the same size in the batch dimension."
                )
            if input_.ndim != 2:
                raise RuntimeError(
                    "1D target tensor expects 2D input tensors, but found inputs with size "
                    f"{list(input_.shape)}"
                )
        elif target_.ndim == 0:
            if input_.ndim != 1:
                raise RuntimeError(
                    "0D target tensor expects 1D input tensors, but found inputs with size "
                    f"{list(input_.shape)}"
                )
        else:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        batched = target_.ndim > 0
        x = input_ if batched else input_.unsqueeze(0)
        target = target_ if batched else target_.unsqueeze(0)
        labels = np.asarray(_host(target._data)).astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= self.n_classes):
            raise RuntimeError(
                f"Target values should be in [0, {self.n_classes - 1}], but values in range "
                f"[{int(labels.min())}, {int(labels.max())}] were found. "
            )
        xp = xp_of(x._data)
        output = x.new_zeros((len(labels),))
        head_column = labels.copy()  # the head entry each row is scored by
        bounds = [0] + self.cutoffs
        for i in range(1, len(bounds) - 1):
            low, high = bounds[i], bounds[i + 1]
            rows = np.nonzero((labels >= low) & (labels < high))[0]
            if rows.size == 0:
                continue
            rows_t = Tensor._make(xp.asarray(rows))
            local = Tensor._make(xp.asarray(labels[rows] - low)).unsqueeze(1)
            cluster = F.log_softmax(self.tail[i - 1](x.index_select(0, rows_t)), 1)
            output = output.index_add(0, rows_t, cluster.gather(1, local).squeeze(1))
            head_column[rows] = self.shortlist_size + i - 1
        head = F.log_softmax(self.head(x), 1)
        chosen = Tensor._make(xp.asarray(head_column)).unsqueeze(1)
        output = output + head.gather(1, chosen).squeeze(1)
        loss = (-output).mean()
        return _ASMoutput(output if batched else output.squeeze(0), loss)

    def _full_log_prob(self, x: Tensor, head_output: Tensor) -> Tensor:
        head = F.log_softmax(head_output, 1)
        parts = [head[:, : self.shortlist_size]]
        for i in range(self.n_clusters):
            cluster = F.log_softmax(self.tail[i](x), 1)
            parts.append(cluster + head[:, self.shortlist_size + i].unsqueeze(1))
        return _cat(parts, 1)

    def log_prob(self, input: Tensor) -> Tensor:
        """Log probabilities of every class, (N, n_classes)."""
        batched = input.ndim > 1
        x = input if batched else input.unsqueeze(0)
        out = self._full_log_prob(x, self.head(x))
        return out if batched else out.squeeze(0)

    def predict(self, input: Tensor) -> Tensor:
        """The most likely class: from the head alone when it picks a shortlist class."""
        batched = input.ndim > 1
        x = input if batched else input.unsqueeze(0)
        head_output = self.head(x)
        choice = head_output.argmax(1)
        outside = choice._data >= self.shortlist_size
        if bool(outside.any()):
            full = self._full_log_prob(x, head_output).argmax(1)
            choice = Tensor._make(xp_of(full._data).where(outside, full._data, choice._data))
        return choice if batched else choice.squeeze(0)


def _host(a):
    return a.get() if hasattr(a, "get") else a


def _cat(parts: list, dim: int) -> Tensor:
    from ..ops.join import cat  # noqa: PLC0415

    return cat(parts, dim)
