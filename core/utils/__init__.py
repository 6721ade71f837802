"""shardgrad.utils: `data` (datasets, samplers and the DataLoader), as torch.utils."""

from . import data

__all__ = ["data"]
