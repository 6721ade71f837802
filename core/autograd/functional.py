"""`autograd.functional`: derivatives of a function of tensors, as torch computes them.

vjp is one reverse pass; jvp is the double-vjp trick (differentiate the vjp, which is linear
in its cotangent, with respect to that cotangent); jacobian runs one reverse pass per output
element (or one jvp per input element with strategy="forward-mode"); hessian is the jacobian
of the gradient, and hvp / vhp a vjp of it. Inputs are taken as a tensor or a tuple of
tensors, and results come back in the same shape (a tensor, a tuple, or a tuple of tuples).
Derivatives an output does not depend on are zeros, or an error with strict=True.
"""

from __future__ import annotations

from collections.abc import Callable

from ..tensor import Tensor
from . import grad as _grad
from . import grad_mode

__all__ = ["hessian", "hvp", "jacobian", "jvp", "vhp", "vjp"]


def _as_tuple(x, arg: str, fn: str) -> tuple[tuple, bool]:
    """(a tuple of tensors, whether x was a tuple)."""
    is_tuple = isinstance(x, tuple)
    items = x if is_tuple else (x,)
    for i, item in enumerate(items):
        if not isinstance(item, Tensor):
            what = f"The {arg} given to {fn} must be either a Tensor or a tuple of Tensors"
            raise TypeError(
                f"{what} but the value at index {i} has type {type(item)}."
                if is_tuple
                else f"{what} but the given {arg} has type {type(item)}."
            )
    return tuple(items), is_tuple


def _unpack(values: tuple, was_tuple: bool):
    return values if was_tuple else values[0]


def _prepare(inputs: tuple, create_graph: bool) -> tuple:
    """Inputs the function is differentiated at: fresh leaves, or (under create_graph)
    views that keep the caller's graph."""
    if create_graph:
        return tuple(
            i.view_as(i) if i.requires_grad else i.detach().requires_grad_() for i in inputs
        )
    return tuple(i.detach().requires_grad_() for i in inputs)


def _finish(values: tuple, create_graph: bool) -> tuple:
    return tuple(v if create_graph or v is None else v.detach() for v in values)


def _grads(outputs, inputs, grad_outputs, create_graph: bool, strict: bool, what: str) -> tuple:
    """d(outputs . grad_outputs)/d(inputs), zeros (or an error when strict) where unused."""
    live = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    if live:
        found = _grad(
            [o for o, _ in live], inputs, [g for _, g in live],
            retain_graph=True, create_graph=create_graph, allow_unused=True,
        )  # fmt: skip
    else:
        found = (None,) * len(inputs)
    result = []
    for i, (g, x) in enumerate(zip(found, inputs)):
        if g is None:
            if strict:
                raise RuntimeError(
                    f"The output of the user-provided function is independent of input {i}. "
                    f"This is not allowed in strict mode{what}."
                )
            g = x.detach().new_zeros(x.shape)
        result.append(g)
    return tuple(result)


def _call(func: Callable, inputs: tuple, fn: str) -> tuple[tuple, bool]:
    with grad_mode.enable_grad():
        out = func(*inputs)
    return _as_tuple(out, "outputs of the user-provided function", fn)


def _cotangents(v, outputs: tuple, fn: str) -> tuple:
    if v is None:
        if len(outputs) != 1 or outputs[0].numel() != 1:
            raise RuntimeError(
                "The vector v can only be None if the user-provided function returns a single "
                "Tensor with a single element."
            )
        return (outputs[0].detach().new_ones(outputs[0].shape),)
    vs, v_tuple = _as_tuple(v, "v", fn)
    if len(vs) != len(outputs):
        raise RuntimeError(
            f"v is a tuple of invalid length: should be {len(outputs)} but got {len(vs)}."
        )
    for i, (a, b) in enumerate(zip(vs, outputs)):
        if tuple(a.shape) != tuple(b.shape):
            where = f"Entry {i} in v" if v_tuple else "v"
            raise RuntimeError(f"{where} has invalid size: should be {b.shape} but got {a.shape}.")
    return vs


def vjp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), v^T J): the vector-Jacobian product."""
    xs, in_tuple = _as_tuple(inputs, "inputs", "vjp")
    xs = _prepare(xs, create_graph)
    outs, out_tuple = _call(func, xs, "vjp")
    vs = _cotangents(v, outs, "vjp")
    grads = _grads(outs, xs, vs, create_graph, strict, "")
    return _unpack(_finish(outs, create_graph), out_tuple), _unpack(
        _finish(grads, create_graph), in_tuple
    )


def jvp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), J v): the Jacobian-vector product, by differentiating the vjp with
    respect to its (dummy) cotangent."""
    xs, in_tuple = _as_tuple(inputs, "inputs", "jvp")
    if v is None:
        if len(xs) != 1 or xs[0].numel() != 1:
            raise RuntimeError(
                "The vector v can only be None if the input to the user-provided function is a "
                "single Tensor with a single element."
            )
        vs = (xs[0].detach().new_ones(xs[0].shape),)
    else:
        vs, _ = _as_tuple(v, "v", "jvp")
    xs = _prepare(xs, True)
    outs, out_tuple = _call(func, xs, "jvp")
    dummies = tuple(o.detach().new_zeros(o.shape).requires_grad_() for o in outs)
    grads = _grads(outs, xs, dummies, True, strict, "")
    jv = _grads(grads, dummies, vs, create_graph, strict, " (double backward)")
    return _unpack(_finish(outs, create_graph), out_tuple), _unpack(
        _finish(jv, create_graph), out_tuple
    )


def jacobian(
    func: Callable,
    inputs,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    strategy: str = "reverse-mode",
):
    """d func(inputs) / d inputs, shaped output.shape + input.shape for each pair."""
    if strategy not in ("forward-mode", "reverse-mode"):
        raise ValueError(
            'Expected strategy to be either "forward-mode" or "reverse-mode". Hint: If your '
            'function has more outputs than inputs, "forward-mode" tends to be more '
            'performant. Otherwise, prefer to use "reverse-mode".'
        )
    xs, in_tuple = _as_tuple(inputs, "inputs", "jacobian")
    xs = _prepare(xs, create_graph)
    outs, out_tuple = _call(func, xs, "jacobian")
    from ..ops.join import stack  # noqa: PLC0415

    blocks = []  # blocks[i][j]: d out_i / d in_j
    for out in outs:
        rows: list[list] = [[] for _ in xs]
        flat = out.reshape(-1)
        for k in range(flat.numel()):
            basis = flat.detach().new_zeros(flat.shape)
            basis[k] = 1
            grads = _grads((flat,), xs, (basis,), create_graph, strict, "")
            for j, g in enumerate(grads):
                rows[j].append(g)
        per_input = []
        for j, x in enumerate(xs):
            if rows[j]:
                block = stack(rows[j], 0).reshape(*out.shape, *x.shape)
            else:
                block = x.detach().new_zeros((*out.shape, *x.shape))
            per_input.append(block if create_graph else block.detach())
        blocks.append(tuple(per_input))
    if not out_tuple:
        return _unpack(blocks[0], in_tuple)
    return tuple(_unpack(b, in_tuple) for b in blocks)


def _scalar_check(outs: tuple, fn: str) -> None:
    if len(outs) != 1 or outs[0].numel() != 1:
        raise RuntimeError(
            f"The Tensor returned by the function given to {fn} should contain a single element"
        )


def hessian(
    func: Callable,
    inputs,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    outer_jacobian_strategy: str = "reverse-mode",
):
    """The second derivatives of a scalar function: input.shape + input.shape per pair."""
    xs, in_tuple = _as_tuple(inputs, "inputs", "hessian")

    def gradient(*args):
        outs, _ = _call(func, args, "hessian")
        _scalar_check(outs, "hessian")
        return _grads(outs, args, (outs[0].detach().new_ones(outs[0].shape),), True, strict, "")

    blocks = jacobian(gradient, xs, create_graph, strict, vectorize, outer_jacobian_strategy)
    if in_tuple:
        return blocks
    return blocks[0][0]


def _second_order_vector(func, inputs, v, create_graph, strict, fn):
    xs, in_tuple = _as_tuple(inputs, "inputs", fn)
    vs, _ = _as_tuple(v, "v", fn) if v is not None else (None, False)
    if vs is None:
        if len(xs) != 1 or xs[0].numel() != 1:
            raise RuntimeError(
                "The vector v can only be None if the input to the user-provided function is a "
                "single Tensor with a single element."
            )
        vs = (xs[0].detach().new_ones(xs[0].shape),)
    xs = _prepare(xs, True)
    outs, _ = _call(func, xs, fn)
    _scalar_check(outs, fn)
    first = _grads(outs, xs, (outs[0].detach().new_ones(outs[0].shape),), True, strict, "")
    second = _grads(first, xs, vs, create_graph, strict, " (double backward)")
    return _finish(outs, create_graph)[0], _unpack(_finish(second, create_graph), in_tuple)


def vhp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), v^T H) for a scalar function."""
    return _second_order_vector(func, inputs, v, create_graph, strict, "vhp")


def hvp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), H v) for a scalar function: v^T H transposed, as the Hessian of a
    twice continuously differentiable function is symmetric."""
    return _second_order_vector(func, inputs, v, create_graph, strict, "hvp")
