"""Ordering ops: sort, argsort, topk, argmax/argmin helpers (to be filled)."""

from __future__ import annotations

TENSOR_METHODS: dict = {}

__all__: list[str] = []
