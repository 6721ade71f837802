"""The backward engine.

It walks the graph from the roots without recursion: a first pass counts, for every node,
how many edges point into it; a second pass runs a node once all of its consumers have
handed it their gradient, so each node runs exactly once with its summed incoming gradient.
Leaves accumulate into `.grad`; tensor hooks run on the gradient of their tensor before it
flows on. Saved tensors are released as each node finishes unless `retain_graph` is set.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._ieee import loud, quiet
from . import grad_mode
from . import node as _node
from .anomaly_mode import backward_checked
from .node import _FREED_MSG, AccumulateGrad, Node

Tensor = None  # bound by tensor.py (import cycle)


def _collect_dependencies(roots: list[Node]) -> dict[Node, int]:
    deps: dict[Node, int] = {}
    seen = set(roots)
    stack = list(roots)
    while stack:
        node = stack.pop()
        for edge in node.next_edges:
            if edge is None:
                continue
            child = edge[0]
            deps[child] = deps.get(child, 0) + 1
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return deps


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def run_backward(
    tensors: Sequence,
    grad_tensors: Sequence,
    retain_graph: bool,
    create_graph: bool,
    inputs: Sequence | None = None,
    allow_unused: bool = False,
) -> tuple | None:
    """Shared by `Tensor.backward` (inputs=None: accumulate into leaves) and
    `autograd.grad` (inputs given: return their gradients, leave `.grad` alone)."""
    token = quiet()  # backward formulas meet inf and nan silently, as in torch
    try:
        return _run_backward(
            tensors, grad_tensors, retain_graph, create_graph, inputs, allow_unused
        )
    finally:
        loud(token)


def _run_backward(tensors, grad_tensors, retain_graph, create_graph, inputs, allow_unused):
    capture: dict[tuple[Node, int], int] = {}
    if inputs is not None:
        for i, t in enumerate(inputs):
            if not t._requires_grad:
                raise RuntimeError("One of the differentiated Tensors does not require grad")
            capture[t._edge()] = i
    results: list = [None] * (len(inputs) if inputs is not None else 0)

    buffers: dict[Node, list] = {}
    roots: list[Node] = []
    for t, g in zip(tensors, grad_tensors):
        if not t._requires_grad:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn"
            )
        node, nr = t._edge()
        buf = buffers.get(node)
        if buf is None:
            buf = buffers[node] = [None] * node.n_outputs
            roots.append(node)
        buf[nr] = _add(buf[nr], g)

    # Arrays already handed out in this pass (root gradients, leaves' grads): a leaf never
    # keeps a `.grad` that aliases another tensor's memory, so in-place edits stay local.
    handed_out = {id(g._data) for g in grad_tensors}
    deps = _collect_dependencies(roots)
    ready = [n for n in roots if deps.get(n, 0) == 0]
    accumulate = inputs is None
    capture_nodes = {edge[0] for edge in capture}
    needed = _needed_nodes(roots, capture_nodes) if capture else None

    state = grad_mode.state
    prev_mode = state.enabled
    state.enabled = create_graph
    try:
        while ready:
            node = ready.pop()
            grads = buffers.pop(node)
            if node._pre_hooks:
                _run_pre_hooks(node, grads)
            is_leaf = type(node) is AccumulateGrad
            if is_leaf and node.variable_hooks and grads[0] is not None:
                grads[0] = _run_hooks(node.variable_hooks, grads[0])
            if capture:
                for nr in range(node.n_outputs):
                    slot = capture.get((node, nr))
                    if slot is not None:
                        results[slot] = grads[nr]
            if is_leaf:
                if accumulate:
                    _accumulate_leaf(node, grads[0], create_graph, handed_out)
                continue
            if needed is not None and node not in needed:
                continue  # autograd.grad: nothing below this node was asked for
            if node.n_outputs > 1:
                grads = _materialize_missing(node, grads)
            if node._released and node._had_saved:
                raise RuntimeError(_FREED_MSG)
            if node._recompute is not None:  # a checkpointed region: its values come back now
                node._recompute()
            if _node.anomaly_enabled:
                in_grads = backward_checked(node, grads)
            else:
                in_grads = node.backward(*grads)
            if type(in_grads) is not tuple:
                in_grads = (in_grads,)
            if not retain_graph:
                node.release()
            for edge, g in zip(node.next_edges, in_grads):
                if edge is None:
                    continue
                child, nr = edge
                if needed is not None and child not in needed and child not in capture_nodes:
                    continue
                if g is not None:
                    buf = buffers.get(child)
                    if buf is None:
                        buf = buffers[child] = [None] * child.n_outputs
                    buf[nr] = g if buf[nr] is None else buf[nr] + g
                left = deps[child] - 1
                deps[child] = left
                if left == 0:
                    if child in buffers:
                        ready.append(child)
                    else:  # nothing flowed in: skip its work, but its inputs' counters drop
                        _skip(child, deps, buffers, ready)
    finally:
        state.enabled = prev_mode

    if inputs is None:
        return None
    for i, r in enumerate(results):
        if r is None and not allow_unused:
            raise RuntimeError(
                "One of the differentiated Tensors appears to not have been used in the graph. "
                "Set allow_unused=True if this is the desired behavior."
            )
        if r is not None and not create_graph:
            results[i] = r.detach()
    return tuple(results)


def _skip(node: Node, deps: dict, buffers: dict, ready: list) -> None:
    """A node that received no gradient at all: its inputs' counters still drop."""
    stack = [node]
    while stack:
        n = stack.pop()
        for edge in n.next_edges:
            if edge is None:
                continue
            child = edge[0]
            deps[child] -= 1
            if deps[child] == 0:
                if child in buffers:
                    ready.append(child)
                else:
                    stack.append(child)


def _run_hooks(hooks: list, grad):
    """Tensor hooks of a leaf: each may replace the gradient before it is used."""
    for hook in hooks:
        new = hook(grad)
        if new is not None:
            grad = new
    return grad


def _needed_nodes(roots: list[Node], targets: set) -> set:
    """The nodes whose backward must run for `autograd.grad`: those with an input asked
    for somewhere below them. Post-order, iterative (graphs can be very deep)."""
    needed: set = set()
    visited: set = set()
    stack = [(r, False) for r in roots]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            for edge in node.next_edges:
                if edge is not None and (edge[0] in needed or edge[0] in targets):
                    needed.add(node)
                    break
            continue
        if node in visited:
            continue
        visited.add(node)
        stack.append((node, True))
        for edge in node.next_edges:
            if edge is not None and edge[0] not in visited:
                stack.append((edge[0], False))
    return needed


def _run_pre_hooks(node: Node, grads: list) -> None:
    """Tensor hooks of non-leaf outputs: each may replace the gradient it is given."""
    for nr, hooks in node._pre_hooks.items():
        for hook in hooks:
            if grads[nr] is None:
                continue
            new = hook(grads[nr])
            if new is not None:
                grads[nr] = new


def _materialize_missing(node: Node, grads: list) -> list:
    """Multi-output nodes get zeros for outputs that received no gradient, as in torch."""
    metas = getattr(node, "_out_meta", None)
    out = list(grads)
    for i, g in enumerate(out):
        if g is None and metas is not None:
            shape, dtype, dev = metas[i]
            from .. import factory  # noqa: PLC0415

            out[i] = factory.zeros(shape, dtype=dtype, device=dev)
    return out


def _accumulate_leaf(node: AccumulateGrad, grad, create_graph: bool, handed_out: set) -> None:
    leaf = node._leaf()
    if leaf is None or grad is None:
        return
    if leaf.grad is None:
        if create_graph:
            leaf.grad = grad
        else:
            data = grad._data
            if (
                id(data) in handed_out
                or data.base is not None
                or not getattr(data.flags, "writeable", True)  # cupy arrays have no such flag
            ):
                data = data.copy()
            handed_out.add(id(data))
            leaf.grad = Tensor._make(data)
    elif create_graph:
        leaf.grad = leaf.grad + grad
    else:
        leaf.grad._data = leaf.grad._data + grad._data
    for hook in getattr(leaf, "_post_accumulate_hooks", ()) or ():
        hook(leaf)
