"""The DataLoader: batches of a dataset's samples, in the sampler's order, collated into
tensors; and the collate functions.

Workers (num_workers > 0) are processes, as in torch (see `_workers`): they load and collate
the next batches while the caller trains, map-style datasets batch by batch in the sampler's
order, iterable ones each from its own copy of the dataset. pin_memory is accepted and has
nothing to do on the host.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ...factory import as_tensor, tensor
from ...ops.join import stack
from ...tensor import Tensor
from . import _workers
from .dataset import Dataset, IterableDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler

__all__ = ["DataLoader", "default_collate", "default_convert", "get_worker_info"]


# ================================================================ collation
def default_collate(batch: list):
    """Samples into a batch: tensors and arrays stacked, numbers into a tensor (float64 for
    floats, int64 for ints), and dicts, tuples and lists collated field by field."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(batch, 0)
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "OUS":
            raise TypeError(
                "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or "
                f"lists; found {elem.dtype}"
            )
        return stack([as_tensor(b) for b in batch], 0)
    if isinstance(elem, np.generic):
        return as_tensor(np.array(batch))
    if isinstance(elem, bool):
        return tensor(batch)
    if isinstance(elem, float):
        return tensor(batch, dtype="float64")
    if isinstance(elem, int):
        return tensor(batch)
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, Mapping):
        return {key: default_collate([d[key] for d in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a namedtuple
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, Sequence):
        if any(len(e) != len(elem) for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        return [default_collate(list(s)) for s in zip(*batch)]
    raise TypeError(
        "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        f"found {type(elem)}"
    )


def default_convert(data):
    """One sample as tensors, without batching (what batch_size=None collates with)."""
    if isinstance(data, np.ndarray) and data.dtype.kind not in "OUS":
        return as_tensor(data)
    if isinstance(data, np.generic):
        return as_tensor(data)
    if isinstance(data, Mapping):
        return {k: default_convert(v) for k, v in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, list):
        return [default_convert(d) for d in data]
    return data


# ================================================================ workers
WorkerInfo = _workers.WorkerInfo


def get_worker_info() -> WorkerInfo | None:
    """In a DataLoader worker process: which worker it is, of how many, its seed and its
    copy of the dataset. None in the main process."""
    return _workers.worker_info()


# ================================================================ the loader
class DataLoader:
    """torch.utils.data.DataLoader: iterate batches of `dataset`."""

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler=None,
        batch_sampler=None,
        num_workers: int = 0,
        collate_fn: Callable | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable | None = None,
        multiprocessing_context=None,
        generator=None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
    ) -> None:
        if num_workers < 0:
            raise ValueError(
                "num_workers option should be non-negative; use num_workers=0 to disable "
                "multiprocessing."
            )
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError(
                "prefetch_factor option could only be specified in multiprocessing.let "
                "num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to "
                "None."
            )
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = 2 if prefetch_factor is None and num_workers > 0 else prefetch_factor
        self.pin_memory, self.timeout, self.worker_init_fn = pin_memory, timeout, worker_init_fn
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        self.persistent_workers, self.generator = persistent_workers, generator
        if isinstance(multiprocessing_context, str):
            if multiprocessing_context not in multiprocessing.get_all_start_methods():
                raise ValueError(
                    "multiprocessing_context option should specify a valid start method in "
                    f"{multiprocessing.get_all_start_methods()!r}, but got "
                    f"multiprocessing_context={multiprocessing_context!r}"
                )
        self.multiprocessing_context = multiprocessing_context
        self._pool: _workers.WorkerPool | None = None
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            if shuffle not in (None, False):
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified shuffle option, but "
                    f"got shuffle={shuffle}"
                )
            if sampler is not None:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified sampler option, but "
                    f"got sampler={sampler}"
                )
            if batch_sampler is not None:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified batch_sampler "
                    f"option, but got batch_sampler={batch_sampler}"
                )
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler option is mutually exclusive with batch_size, shuffle, "
                    "sampler, and drop_last"
                )
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError(
                "batch_size=None option disables auto-batching and is mutually exclusive with "
                "drop_last"
            )
        if sampler is None and not self._iterable:
            sampler = (
                RandomSampler(dataset, generator=generator)
                if shuffle
                else SequentialSampler(dataset)
            )
        if batch_size is not None and batch_sampler is None and not self._iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size, self.drop_last = batch_size, drop_last
        self.sampler, self.batch_sampler = sampler, batch_sampler
        auto = batch_sampler is not None or (self._iterable and batch_size is not None)
        self.collate_fn = collate_fn or (default_collate if auto else default_convert)

    def __len__(self) -> int:
        if self._iterable:
            n = len(self.dataset)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)

    def __iter__(self):
        if self.num_workers > 0:
            return self._iter_workers()
        if self._iterable:
            return self._iter_stream()
        indices = self.batch_sampler if self.batch_sampler is not None else self.sampler
        return (self._fetch(i) for i in indices)

    def _fetch(self, index):
        if self.batch_sampler is not None:
            return self.collate_fn([self.dataset[i] for i in index])
        return self.collate_fn(self.dataset[index])

    def _iter_stream(self):
        if self.batch_size is None:
            for sample in self.dataset:
                yield self.collate_fn(sample)
            return
        batch = []
        for sample in self.dataset:
            batch.append(sample)
            if len(batch) == self.batch_size:
                yield self.collate_fn(batch)
                batch = []
        if batch and not self.drop_last:
            yield self.collate_fn(batch)

    def _next_from_stream(self, stream):
        """One batch (or sample) read from an iterator over an IterableDataset; raises
        StopIteration when it is done (a short last batch unless drop_last)."""
        if self.batch_size is None:
            return self.collate_fn(next(stream))
        batch = []
        for sample in stream:
            batch.append(sample)
            if len(batch) == self.batch_size:
                return self.collate_fn(batch)
        if batch and not self.drop_last:
            return self.collate_fn(batch)
        raise StopIteration

    def _iter_workers(self):
        """Batches from worker processes; persistent pools serve every epoch."""
        fetch = self._next_from_stream if self._iterable else self._fetch
        persistent = self.persistent_workers and not self._iterable
        pool = self._pool if persistent else None
        if pool is None:
            pool = _workers.WorkerPool(self, fetch, self._iterable)
            if persistent:
                self._pool = pool
        try:
            if self._iterable:
                yield from _workers.iterable_batches(pool, self.prefetch_factor)
            else:
                indices = self.batch_sampler if self.batch_sampler is not None else self.sampler
                yield from _workers.map_style_batches(pool, iter(indices), self.prefetch_factor)
        finally:
            if not persistent:
                pool.close()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_pool"] = None  # a worker's copy of the loader has no workers of its own
        return state
