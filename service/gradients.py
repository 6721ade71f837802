"""The loop's gradient arithmetic, in buffers it owns: the workers' blocks added in the fixed
tree order (shardgrad.worker.reduction) and divided by the batch size.

Why buffers of its own: a fresh array per addition and per division is a new allocation of
the whole gradient (2.7 MB for the W1 MLP) every step, and the kernel hands it out as fresh
pages that fault in as they are written, while the workers wait for the loop. Reusing a few
buffers costs nothing in results: `np.add(a, b, out=c)` and `a + b` are the same addition, so
the bytes are the ones every worker count and every failure produce.

The workers' blocks (views of their shared-memory segments, or arrays received from the wire)
are only read, never written. The buffers (one for two blocks; at most the tree's depth plus
one) stay allocated for the job's life: the peak is what the plain sum's temporaries took,
held instead of freed and faulted in again every step.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from shardgrad.worker import reduction


class GradientMean:
    """The mean gradient of a step, from its blocks; the result is valid until the next call.

    None when an addition overflowed (or met inf and -inf): the step's gradient is then not
    finite, which the loop must know even when every block it added was finite."""

    def __init__(self, numel: int, dtype) -> None:
        self._numel = numel
        self._dtype = np.dtype(dtype)
        self._buffers: list[np.ndarray] = []  # at most the tree's depth plus one, reused

    def __call__(
        self, blocks: Mapping[tuple[int, int], np.ndarray], num_shards: int, batch_size: int
    ) -> np.ndarray | None:
        """sum(blocks, in tree order) / batch_size, or None (see the class). Raises ValueError
        when the blocks do not partition the micro-shards (see reduction.tree_sum)."""
        free = list(reversed(self._buffers))
        partial: dict[int, np.ndarray] = {}  # id -> one of our buffers holding a partial sum

        def take() -> np.ndarray:
            if free:
                return free.pop()
            buf = np.empty(self._numel, dtype=self._dtype)
            self._buffers.append(buf)
            return buf

        def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            out = partial.get(id(a))
            if out is None:
                out = take()
                partial[id(out)] = out
            np.add(a, b, out=out)
            done = partial.pop(id(b), None)  # b's partial sum is now part of out
            if done is not None:
                free.append(done)
            return out

        try:
            with np.errstate(over="raise", invalid="raise"):
                total = reduction.tree_sum(blocks, num_shards, add)
        except FloatingPointError:
            return None
        out = partial.get(id(total))
        if out is None:  # one block: the worker's own array, which is not ours to write
            out = take()
        np.divide(total, self._dtype.type(batch_size), out=out)
        return out
