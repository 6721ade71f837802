"""Neural-network ops used by nn.functional: softmax family, conv, pooling, norms, losses
(to be filled)."""

from __future__ import annotations

TENSOR_METHODS: dict = {}

__all__: list[str] = []
