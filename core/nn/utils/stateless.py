"""nn.utils.stateless: the older home of functional_call (torch.func.functional_call now)."""

from __future__ import annotations

from ...func import functional_call

__all__ = ["functional_call"]
