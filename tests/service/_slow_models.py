"""A user model the server tests import by path: its forward sleeps, so a job lasts long
enough to kill, restart or scale things while it runs."""

from __future__ import annotations

import time

from shardgrad import nn


class SlowMLP(nn.Module):
    def __init__(self, d_in: int = 8, hidden: int = 16, classes: int = 3, delay: float = 0.02):
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden, classes)
        self.delay = delay

    def forward(self, x):
        time.sleep(self.delay)
        return self.fc2(self.act(self.fc1(x)))
