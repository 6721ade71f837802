"""Fixtures for the dashboard tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the helper modules beside this file
    sys.path.insert(0, str(HERE))

from dashtest_helpers import close_coordinator, start_coordinator  # noqa: E402


@pytest.fixture
def coordinator(tmp_path):
    c = start_coordinator(tmp_path)
    try:
        yield c
    finally:
        close_coordinator(c)
