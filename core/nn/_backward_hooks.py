"""Module backward hooks (`register_full_backward_hook`, `register_full_backward_pre_hook`):
the gradients with respect to a module's outputs and inputs, seen as the backward pass
crosses the module.

A call with such hooks threads the module's tensor inputs and its outputs through identity
ops. The outputs' identity receives grad_output: the pre-hooks run there (and may replace
it). The inputs' identity receives grad_input: the full hooks run there with both (and may
replace grad_input). When no input requires grad, the full hooks run at the outputs with
grad_input all None, as in torch.
"""

from __future__ import annotations

from ..autograd.node import Op
from ..tensor import Tensor


class _CallState:
    """What one module call's two identity ops share."""

    __slots__ = ("module", "n_inputs", "input_mask", "grad_outputs", "inputs_tracked")

    def __init__(self, module, n_inputs: int, input_mask: tuple) -> None:
        self.module, self.n_inputs, self.input_mask = module, n_inputs, input_mask
        self.grad_outputs: tuple | None = None
        self.inputs_tracked = False


def _replace(result, grads: tuple, what: str) -> tuple:
    if result is None:
        return grads
    result = result if isinstance(result, tuple) else (result,)
    if len(result) != len(grads):
        raise RuntimeError(
            f"Backward hook returned an invalid number of grad_{what}, got {len(result)}, but "
            f"expected {len(grads)}"
        )
    return result


class _Identity(Op):
    """The arrays unchanged, with the call's state for backward."""

    def forward(self, *arrays, state=None):
        self.state = state
        return tuple(arrays)


class _BackwardHookOutputs(_Identity):
    """Identity on a module's outputs; its backward runs the pre-hooks on grad_output."""

    def backward(self, *grads):
        state = self.state
        module = state.module
        for hook in list(module._backward_pre_hooks.values()):
            grads = _replace(hook(module, grads), grads, "output")
        state.grad_outputs = grads
        if not state.inputs_tracked:  # nothing below to report: the hooks run now
            grad_inputs = (None,) * state.n_inputs
            for hook in list(module._backward_hooks.values()):
                hook(module, grad_inputs, grads)
        return grads


class _BackwardHookInputs(_Identity):
    """Identity on a module's tensor inputs; its backward runs the full hooks."""

    def backward(self, *grads):
        state = self.state
        module = state.module
        # grad_input has a slot per tensor input: None for those that do not require grad
        full = list(grads)
        for hook in list(module._backward_hooks.values()):
            full = list(
                _replace(hook(module, tuple(full), state.grad_outputs), tuple(full), "input")
            )
        return tuple(g if tracked else None for g, tracked in zip(full, state.input_mask))


def wrap_inputs(module, args: tuple) -> tuple[tuple, _CallState]:
    """args with its tensors passed through the inputs' identity op."""
    positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
    tensors = [args[i] for i in positions]
    mask = tuple(t.requires_grad for t in tensors)
    state = _CallState(module, len(tensors), mask)
    if not any(mask):
        return args, state
    state.inputs_tracked = True
    wrapped = _BackwardHookInputs.apply(*tensors, state=state)
    out = list(args)
    for i, t in zip(positions, wrapped):
        out[i] = t
    return tuple(out), state


def wrap_outputs(result, state: _CallState):
    """The module's result with its tensors passed through the outputs' identity op (a
    tensor, or a tuple or list of them; other results are returned as they are)."""
    if isinstance(result, Tensor):
        if not result.requires_grad:
            return result
        return _BackwardHookOutputs.apply(result, state=state)[0]
    if isinstance(result, (tuple, list)) and all(isinstance(r, Tensor) for r in result):
        if not any(r.requires_grad for r in result):
            return result
        wrapped = _BackwardHookOutputs.apply(*result, state=state)
        return type(result)(wrapped)
    return result
