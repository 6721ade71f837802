"""The flat parameter layout: where each parameter lives inside one contiguous buffer.

The coordinator keeps a model's parameters as one flat array (its optimizer steps over the
whole buffer at once) and every worker keeps the same flat array with the model's parameters
as views into it, so a step's parameters arrive as one block of bytes and leave as one block
of gradients. The layout is sent once per job; per-step messages only name its fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

FLOAT_DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class ParamSlot:
    """One parameter: its name, shape and [offset, offset + numel) in elements."""

    name: str
    shape: tuple[int, ...]
    offset: int
    numel: int


@dataclass(frozen=True)
class ParamLayout:
    """All parameters of a model, in named_parameters() order, packed back to back."""

    dtype: str
    params: tuple[ParamSlot, ...]

    def __post_init__(self) -> None:
        if self.dtype not in FLOAT_DTYPES:
            raise ValueError(f"parameter dtype must be one of {FLOAT_DTYPES}, got {self.dtype!r}")
        offset = 0
        names = set()
        for p in self.params:
            if p.name in names:
                raise ValueError(f"parameter {p.name!r} appears twice in the layout")
            names.add(p.name)
            if any(s < 0 for s in p.shape) or p.numel != math.prod(p.shape):
                raise ValueError(f"parameter {p.name!r}: numel {p.numel} != prod{p.shape}")
            if p.offset != offset:
                raise ValueError(
                    f"parameter {p.name!r} starts at {p.offset}, expected {offset} (no gaps)"
                )
            offset += p.numel

    @classmethod
    def from_shapes(cls, items: Iterable[tuple[str, tuple[int, ...]]], dtype: str) -> ParamLayout:
        slots, offset = [], 0
        for name, shape in items:
            shape = tuple(int(s) for s in shape)
            n = math.prod(shape)
            slots.append(ParamSlot(name, shape, offset, n))
            offset += n
        return cls(str(np.dtype(dtype)), tuple(slots))

    @classmethod
    def from_module(cls, module) -> ParamLayout:
        """The layout of a shardgrad Module's parameters (all of one floating dtype)."""
        named = list(module.named_parameters())
        dtypes = {str(np.dtype(p._data.dtype)) for _, p in named}
        if len(dtypes) > 1:
            raise ValueError(f"all parameters must share one dtype, found {sorted(dtypes)}")
        dtype = dtypes.pop() if dtypes else "float32"
        return cls.from_shapes(((n, tuple(p.shape)) for n, p in named), dtype)

    @property
    def numel(self) -> int:
        return self.params[-1].offset + self.params[-1].numel if self.params else 0

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize

    def canonical(self) -> str:
        """The JSON the fingerprint hashes: dtype, little-endian, and every slot in order."""
        body = {
            "dtype": self.dtype,
            "byte_order": "little",
            "params": [[p.name, list(p.shape), p.offset, p.numel] for p in self.params],
        }
        return json.dumps(body, separators=(",", ":"), sort_keys=True)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()

    def views(self, flat) -> dict[str, object]:
        """Each parameter as a view into `flat` (numpy or cupy, 1-d, this layout's size)."""
        if flat.ndim != 1 or flat.shape[0] != self.numel:
            raise ValueError(f"flat buffer has shape {flat.shape}, layout needs ({self.numel},)")
        return {p.name: flat[p.offset : p.offset + p.numel].reshape(p.shape) for p in self.params}

    def flatten(self, arrays: dict, out=None):
        """Copy named arrays into one flat buffer (a fresh numpy array unless `out` is given)."""
        if out is None:
            out = np.empty(self.numel, dtype=self.dtype)
        for p in self.params:
            out[p.offset : p.offset + p.numel] = arrays[p.name].reshape(-1)
        return out
