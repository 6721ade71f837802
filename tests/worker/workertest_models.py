"""User-defined modules the worker tests import by path (as a user's own code would be)."""

from __future__ import annotations

import time

from shardgrad import nn


class SlowMLP(nn.Module):
    """A small MLP whose forward sleeps, so a step takes long enough to cancel or drain."""

    def __init__(self, features: int = 4, classes: int = 3, delay: float = 0.2) -> None:
        super().__init__()
        self.fc = nn.Linear(features, classes)
        self.delay = delay

    def forward(self, x):
        time.sleep(self.delay)
        return self.fc(x)
