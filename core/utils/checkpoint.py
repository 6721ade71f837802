"""Activation checkpointing: trade compute for memory by recomputing a region's
intermediate values during backward instead of keeping them from the forward pass.

`checkpoint(fn, *args)` runs `fn` with the graph recorded as usual, then drops what the
region's nodes saved for their backward (activations, im2col patches, masks). The first
backward that reaches one of those nodes runs `fn` again on the same inputs, with the same
random draws, and hands the recomputed values to the original nodes. This is what torch
calls the non-reentrant checkpoint: the graph is the ordinary one, so `autograd.grad`,
parameters used inside `fn`, several outputs and second derivatives all work. Both values of
`use_reentrant` run it.

A checkpoint opened inside another one's region simply runs its function: the outer
region's recomputation covers it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from .. import random as _random
from ..autograd import grad_mode
from ..autograd import node as _node
from ..tensor import Tensor

__all__ = ["CheckpointError", "checkpoint", "checkpoint_sequential"]


class CheckpointError(RuntimeError):
    """The recomputed forward did not repeat the original one."""


def noop_context_fn() -> tuple[contextlib.AbstractContextManager, ...]:
    return contextlib.nullcontext(), contextlib.nullcontext()


class _Region:
    """One checkpointed call: its nodes, how to run it again, and what it must match."""

    def __init__(self, fn, args, kwargs, rng, recompute_context, check: bool) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.rng = rng
        self.recompute_context = recompute_context
        self.check = check
        self.input_versions = [(a, a._vbox[0]) for a in args if isinstance(a, Tensor)]
        self.nodes: list = []
        self.shapes: list = []

    def drop_saved(self) -> None:
        """Free what the nodes saved, remembering its shapes for the determinism check."""
        for n in self.nodes:
            self.shapes.append(_saved_shapes(n))
            n._saved, n._versions = (), ()
            if getattr(n, "extras", None) is not None:
                n.extras = None
            if getattr(n, "_out_data", None) is not None:
                n._out_data = None
            n._out_packed = None
            n._recompute = self

    def __call__(self) -> None:
        for t, version in self.input_versions:
            if t._vbox[0] != version:
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by "
                    f"an inplace operation: an input of a checkpointed function is at version "
                    f"{t._vbox[0]}; expected version {version} instead."
                )
        fresh: list = []
        _node.open_region(fresh)
        try:
            draws = _random.replay(self.rng) if self.rng is not None else contextlib.nullcontext()
            with grad_mode.enable_grad(), draws, self.recompute_context:
                self.fn(*self.args, **self.kwargs)
        finally:
            _node.close_region()
        self._transplant(fresh)

    def _transplant(self, fresh: list) -> None:
        if len(fresh) != len(self.nodes):
            raise CheckpointError(
                "torch.utils.checkpoint: the recomputed forward recorded "
                f"{len(fresh)} operations, the original {len(self.nodes)}: the checkpointed "
                "function must run the same operations each time it is called"
            )
        for i, (old, new) in enumerate(zip(self.nodes, fresh)):
            if type(old) is not type(new) or (self.check and _saved_shapes(new) != self.shapes[i]):
                raise CheckpointError(
                    f"torch.utils.checkpoint: operation {i} of the recomputed forward "
                    f"({new.name()}, saving {_saved_shapes(new)}) differs from the original "
                    f"({old.name()}, saving {self.shapes[i]})"
                )
            old._saved, old._versions = new._saved, new._versions
            old._packed, old._out_packed = new._packed, new._out_packed
            if hasattr(new, "extras"):
                old.extras = new.extras
            if getattr(new, "_out_data", None) is not None:
                old._out_data, old._out_vbox = new._out_data, new._out_vbox
                old._out_version = new._out_version
            old._recompute = None
        self.nodes = []  # the recomputed values live in the nodes now


def _saved_shapes(n) -> tuple:
    """The shapes of what a node saved (a tensor that went through saved-tensor hooks
    counts by its kind: its shape went into the pack hook)."""
    return tuple(tuple(t.shape) if hasattr(t, "shape") else type(t).__name__ for t in n._saved)


def _devices(args: Iterable) -> set:
    return {a.device for a in args if isinstance(a, Tensor) and a.device.type != "cpu"}


def checkpoint(
    function: Callable,
    *args: Any,
    use_reentrant: bool | None = None,
    context_fn: Callable = noop_context_fn,
    determinism_check: str = "default",
    debug: bool = False,
    preserve_rng_state: bool = True,
    **kwargs: Any,
) -> Any:
    """`function(*args, **kwargs)`, keeping none of its intermediate values for backward:
    they are recomputed when backward needs them."""
    if determinism_check not in ("default", "none"):
        raise ValueError(
            f"determinism_check should be one of ['default', 'none'], but got {determinism_check}"
        )
    if _node.in_region() or not grad_mode.state.enabled:
        # nested in another region (which recomputes this call too), or no graph to thin
        return function(*args, **kwargs)
    forward_context, recompute_context = context_fn()
    rng = _random.fork_state(_devices(args)) if preserve_rng_state else None
    check = determinism_check == "default"
    region = _Region(function, args, kwargs, rng, recompute_context, check)
    _node.open_region(region.nodes)
    try:
        with forward_context:
            out = function(*args, **kwargs)
    finally:
        _node.close_region()
    region.drop_saved()
    return out


def checkpoint_sequential(
    functions, segments: int, input: Tensor, use_reentrant: bool | None = None, **kwargs: Any
) -> Tensor:
    """Run a Sequential (or a list of modules) in `segments` pieces, checkpointing all but
    the last: only each piece's input is kept from the forward pass."""
    if hasattr(functions, "children") and not isinstance(functions, (list, tuple)):
        functions = list(functions.children())
    functions = list(functions)
    if segments < 1:
        raise ValueError(f"checkpoint_sequential: segments must be at least 1, got {segments}")
    size = len(functions) // segments
    end = -1

    def run(start: int, stop: int):
        def forward(x):
            for j in range(start, stop + 1):
                x = functions[j](x)
            return x

        return forward

    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        input = checkpoint(run(start, end), input, use_reentrant=use_reentrant, **kwargs)
    return run(end + 1, len(functions) - 1)(input)
