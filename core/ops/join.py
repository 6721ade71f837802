"""Joining and splitting: cat, stack, split, chunk, unbind (to be filled)."""

from __future__ import annotations

TENSOR_METHODS: dict = {}

__all__: list[str] = []
