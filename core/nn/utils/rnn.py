"""`shardgrad.nn.utils.rnn`: batches of sequences of different lengths, padded or packed.

A PackedSequence stores a batch time step by time step, each step holding only the
sequences still running (`batch_sizes[t]` of them, longest first), so a recurrent layer
does no work on padding and each sequence's final state is its own last step's. Packing and
padding are indexing and joins of Tensor ops, so gradients flow through them.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence

import numpy as np

from ... import factory
from ...ops.join import cat, stack
from ...tensor import Tensor

__all__ = [
    "PackedSequence",
    "pack_padded_sequence",
    "pack_sequence",
    "pad_packed_sequence",
    "pad_sequence",
    "unpack_sequence",
    "unpad_sequence",
]


class PackedSequence(
    namedtuple("PackedSequence", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])
):
    """(data, batch_sizes, sorted_indices, unsorted_indices), as torch's: `data` is the
    steps' rows one after another, `batch_sizes` (int64, on the CPU) how many rows each
    step has, and the indices map between the caller's batch order and the sorted one
    (None when the batch came sorted)."""

    __slots__ = ()

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if unsorted_indices is None and sorted_indices is not None:
            unsorted_indices = _invert(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs) -> PackedSequence:
        """The same sequence with its data moved or cast (the index tensors follow the
        device, batch_sizes stays on the CPU)."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        move = (lambda t: t.to(data.device)) if self.sorted_indices is not None else None
        return type(self)(
            data,
            self.batch_sizes,
            move(self.sorted_indices) if move else None,
            move(self.unsorted_indices) if move else None,
        )

    @property
    def is_cuda(self) -> bool:
        return self.data.device.type == "cuda"


def _invert(permutation: Tensor) -> Tensor:
    order = _lengths(permutation)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return factory.tensor(inverse, device=permutation.device)


def _lengths(lengths) -> np.ndarray:
    if isinstance(lengths, Tensor):
        if lengths.ndim != 1:
            raise RuntimeError(
                f"lengths should be a 1D CPU int64 tensor, but got {lengths.ndim}D tensor"
            )
        return np.asarray(lengths.cpu().numpy(), dtype=np.int64)
    return np.asarray(list(lengths), dtype=np.int64)


def pack_padded_sequence(
    input: Tensor, lengths, batch_first: bool = False, enforce_sorted: bool = True
) -> PackedSequence:
    """Pack a padded (T, B, *) batch (B, T, * with batch_first) whose sequences have the
    given lengths."""
    lengths = _lengths(lengths)
    if batch_first:
        input = input.transpose(0, 1)
    if lengths.shape[0] != input.shape[1]:
        raise RuntimeError(
            f"Expected `len(lengths)` to be equal to batch_size, but got {lengths.shape[0]} "
            f"(batch_size={input.shape[1]})"
        )
    sorted_indices = None
    if enforce_sorted:
        if np.any(lengths[1:] > lengths[:-1]):
            raise RuntimeError(
                "`lengths` array must be sorted in decreasing order when `enforce_sorted` is "
                "True. You can pass `enforce_sorted=False` to pack_padded_sequence and/or "
                "pack_sequence to sidestep this requirement if you do not need ONNX "
                "exportability."
            )
    else:
        order = np.argsort(-lengths, kind="stable")
        lengths = lengths[order]
        sorted_indices = factory.tensor(order, device=input.device)
        input = input.index_select(1, sorted_indices)
    if lengths.size and lengths[-1] <= 0:
        raise RuntimeError(
            "Length of all samples has to be greater than 0, but found an element in 'lengths' "
            "that is <= 0"
        )
    if lengths.size and lengths[0] > input.shape[0]:
        raise RuntimeError(
            f"Expected the longest length ({lengths[0]}) to be at most the sequence length "
            f"({input.shape[0]})"
        )
    steps = int(lengths[0]) if lengths.size else 0
    batch_sizes = np.array([(lengths > t).sum() for t in range(steps)], dtype=np.int64)
    data = cat([input[t, : int(b)] for t, b in enumerate(batch_sizes)], 0)
    return PackedSequence(data, factory.tensor(batch_sizes, device="cpu"), sorted_indices, None)


def pad_packed_sequence(
    sequence: PackedSequence,
    batch_first: bool = False,
    padding_value: float = 0.0,
    total_length: int | None = None,
) -> tuple[Tensor, Tensor]:
    """The padded batch and the lengths (int64), in the caller's original batch order."""
    data, batch_sizes = sequence.data, _lengths(sequence.batch_sizes)
    steps = len(batch_sizes)
    if total_length is not None:
        if total_length < steps:
            raise ValueError(
                "Expected total_length to be at least the length of the longest sequence in "
                f"input, but got total_length={total_length} and max sequence length being "
                f"{steps}"
            )
    length = steps if total_length is None else int(total_length)
    batch = int(batch_sizes[0]) if steps else 0
    rest = tuple(data.shape[1:])
    rows, start = [], 0
    for b in batch_sizes:
        step = data[start : start + int(b)]
        start += int(b)
        if b < batch:
            step = cat([step, _filled(data, (batch - int(b), *rest), padding_value)], 0)
        rows.append(step)
    rows += [_filled(data, (batch, *rest), padding_value)] * (length - steps)
    padded = stack(rows, 0) if rows else _filled(data, (0, batch, *rest), padding_value)
    lengths = np.array([(batch_sizes > i).sum() for i in range(batch)], dtype=np.int64)
    if sequence.unsorted_indices is not None:
        padded = padded.index_select(1, sequence.unsorted_indices)
        lengths = lengths[_lengths(sequence.unsorted_indices)]
    if batch_first:
        padded = padded.transpose(0, 1)
    return padded, factory.tensor(lengths, device="cpu")


def _filled(like: Tensor, shape: tuple, value: float) -> Tensor:
    return factory.full(shape, value, dtype=like.dtype, device=like.device)


def pad_sequence(
    sequences: Sequence[Tensor],
    batch_first: bool = False,
    padding_value: float = 0.0,
    padding_side: str = "right",
) -> Tensor:
    """Stack sequences of shape (L_i, *) into (T, B, *) (B, T, * with batch_first), padded
    on the right (or the left) to the longest."""
    if padding_side not in ("left", "right"):
        raise ValueError(
            f"Expected padding_side to be one of left or right, but got {padding_side}."
        )
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    longest = max(s.shape[0] for s in sequences)
    padded = []
    for s in sequences:
        missing = longest - s.shape[0]
        if missing:
            fill = _filled(s, (missing, *s.shape[1:]), padding_value)
            s = cat([s, fill] if padding_side == "right" else [fill, s], 0)
        padded.append(s)
    return stack(padded, 0 if batch_first else 1)


def pack_sequence(sequences: Sequence[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False) -> list:
    """The sequences of a padded batch, each cut to its length."""
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    return [seq[: int(n)] for seq, n in zip(padded_sequences, _lengths(lengths))]


def unpack_sequence(packed_sequences: PackedSequence) -> list:
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
