"""Which samples each step trains on, as a pure function of (seed, step).

Epoch e visits the training rows in the order `permutation(seed, e)`, drawn from a numpy
Generator seeded from (seed, e); step s is batch i = s mod steps_per_epoch of epoch
e = s div steps_per_epoch, and batch i is rows [i*B, (i+1)*B) of that order (the last one
shorter when B does not divide the training set). Because nothing here carries hidden state, a
job resumed at step s sees exactly the batches an uninterrupted run would, and the "RNG state"
a checkpoint needs is just the step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Distinguishes the generators derived from a job's seed, so data order and the eval split
# never share a stream.
_STREAM_ORDER = 0
_STREAM_SPLIT = 1


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([_STREAM_ORDER, seed, epoch]).permutation(n)


def train_eval_split(seed: int, n: int, eval_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the training and held-out evaluation sets, both sorted."""
    n_eval = int(n * eval_fraction)
    if n_eval == 0:
        return np.arange(n, dtype=np.int64), np.empty(0, dtype=np.int64)
    order = np.random.default_rng([_STREAM_SPLIT, seed]).permutation(n)
    return np.sort(order[n_eval:]).astype(np.int64), np.sort(order[:n_eval]).astype(np.int64)


def cut_micro_shards(batch: np.ndarray, k: int) -> list[np.ndarray]:
    """Cut a batch into K contiguous micro-shards whose sizes differ by at most one.

    The cut depends only on |b| and K, never on the workers, which is what lets the reduction
    tree over micro-shards give the same bytes for any worker count.
    """
    return [np.ascontiguousarray(s, dtype=np.int64) for s in np.array_split(batch, k)]


@dataclass
class BatchSampler:
    """The batches of one job: `batch(step)` gives dataset row indices for that step."""

    train_rows: np.ndarray
    batch_size: int
    seed: int

    def __post_init__(self) -> None:
        self._epoch = -1
        self._perm: np.ndarray | None = None

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.train_rows) // self.batch_size)

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, batch index within the epoch) of `step`."""
        return divmod(step, self.steps_per_epoch)

    def batch(self, step: int) -> np.ndarray:
        epoch, i = self.position(step)
        if epoch != self._epoch:
            self._perm = epoch_permutation(self.seed, epoch, len(self.train_rows))
            self._epoch = epoch
        sel = self._perm[i * self.batch_size : (i + 1) * self.batch_size]
        return self.train_rows[sel]

    def state(self, step: int) -> dict:
        epoch, i = self.position(step)
        return {
            "step": step,
            "epoch": epoch,
            "batch_in_epoch": i,
            "steps_per_epoch": self.steps_per_epoch,
            "num_train": len(self.train_rows),
            "batch_size": self.batch_size,
            "seed": self.seed,
        }
