"""A user's own Module class, importable by name like a user's package."""

from __future__ import annotations

from shardgrad import nn


class TinyNet(nn.Module):
    def __init__(self, d_in: int = 8, classes: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d_in, 12), nn.Tanh(), nn.Linear(12, classes))

    def forward(self, x):
        return self.body(x)


class SlowNet(nn.Module):
    """A small MLP whose forward pauses, so that a job stays running for a while."""

    def __init__(self, delay: float = 0.01) -> None:
        super().__init__()
        self.delay = delay
        self.body = nn.Sequential(nn.Linear(8, 12), nn.ReLU(), nn.Linear(12, 3))

    def forward(self, x):
        import time

        time.sleep(self.delay)
        return self.body(x)
