"""The examples run as a user would run them, and say what they promise."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, timeout: float = 120) -> str:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=EXAMPLES.parent,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.fixture(scope="module")
def tutorial_output() -> str:
    return run_example("autograd_tutorial.py")


def test_autograd_tutorial_teaches_correct_numbers_and_learns_digits(tutorial_output):
    text = tutorial_output
    assert "dy/dx = [2.0, 4.0, 6.0]" in text
    assert "after one backward:  [6.0, -6.0]" in text
    assert "after two backwards: [12.0, -12.0]" in text
    assert "a third backward raises RuntimeError" in text
    assert "f(2) = 8.0, f'(2) = 12.0, f''(2) = 12.0" in text
    assert "same outputs: True" in text
    first = float(re.search(r"first loss: ([0-9.]+)", text).group(1))
    after = float(re.search(r"same batch after one step: ([0-9.]+)", text).group(1))
    assert after < first
    losses = [float(v) for v in re.findall(r"train loss ([0-9.]+)", text)]
    assert len(losses) >= 2 and losses[-1] < losses[0] / 5
    accuracy = float(re.search(r"test accuracy: ([0-9.]+)", text).group(1))
    assert accuracy >= 0.95, text


def test_autograd_tutorial_is_deterministic(tutorial_output):
    first, second = tutorial_output, run_example("autograd_tutorial.py")
    strip = re.compile(r"trained in [0-9.]+ s")
    assert strip.sub("", first) == strip.sub("", second)
