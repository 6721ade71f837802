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


class PickyMLP(nn.Module):
    """Fails in training on a micro-shard of exactly `fail_rows` rows: a model whose forward
    fails on some of its data, as a user's can, past every check made at submit time."""

    def __init__(self, d_in: int = 8, hidden: int = 16, classes: int = 3, fail_rows: int = 2):
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        self.fc2 = nn.Linear(hidden, classes)
        self.fail_rows = fail_rows

    def forward(self, x):
        if self.training and x.shape[0] == self.fail_rows:
            raise ValueError(f"picky: will not train on {self.fail_rows} rows")
        return self.fc2(self.fc1(x).relu())
