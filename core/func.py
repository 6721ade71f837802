"""shardgrad.func: torch.func's function transforms, built on the autograd engine.

`grad`, `grad_and_value`, `vjp`, `jvp`, `linearize`, `jacrev`, `jacfwd` and `hessian`
differentiate a function of tensors; they nest (grad(grad(f))) because each records its
derivative with create_graph. `functional_call` runs a module with parameters and buffers
given in a dict (the basis of per-sample gradients and meta-learning). `vmap` maps a function
over a batch dimension by calling it once per slice and stacking the results: torch's
semantics (in_dims, out_dims, nesting), not its batched kernels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import contextmanager

from .autograd import functional as _af
from .autograd import grad as _grad
from .autograd import grad_mode
from .ops.join import stack
from .tensor import Tensor

__all__ = [
    "functional_call", "grad", "grad_and_value", "hessian", "jacfwd", "jacrev", "jvp",
    "linearize", "vjp", "vmap",
]  # fmt: skip


# ================================================================ functional_call
@contextmanager
def _swapped(module, values: Mapping[str, Tensor], strict: bool):
    """The module with the named parameters and buffers replaced by `values`, restored on
    exit."""
    known = dict(module.named_parameters(remove_duplicate=False))
    known.update(dict(module.named_buffers(remove_duplicate=False)))
    if strict:
        missing = sorted(set(known) - set(values))
        unexpected = sorted(set(values) - set(known))
        if missing or unexpected:
            raise RuntimeError(
                "Error(s) in reparametrizing for "
                f"{type(module).__name__}:\n\tMissing key(s): {missing}.\n\tUnexpected "
                f"key(s): {unexpected}."
            )
    saved = []
    try:
        for name, value in values.items():
            owner_path, _, attr = name.rpartition(".")
            owner = module.get_submodule(owner_path)
            slot = "_parameters" if attr in owner._parameters else "_buffers"
            if attr not in owner._parameters and attr not in owner._buffers:
                raise AttributeError(
                    f"{type(owner).__name__} has no parameter or buffer named '{attr}'"
                )
            table = owner.__dict__[slot]
            saved.append((table, attr, table[attr]))
            table[attr] = value
        yield module
    finally:
        for table, attr, original in reversed(saved):
            table[attr] = original


def functional_call(
    module,
    parameter_and_buffer_dicts,
    args=None,
    kwargs=None,
    *,
    tie_weights: bool = True,
    strict: bool = False,
):
    """module(*args, **kwargs) with the given tensors standing in for its parameters and
    buffers (by their state-dict names); the module itself is left as it was."""
    if isinstance(parameter_and_buffer_dicts, (list, tuple)):
        merged: dict = {}
        for d in parameter_and_buffer_dicts:
            overlap = set(merged) & set(d)
            if overlap:
                raise ValueError(
                    f"{sorted(overlap)} appeared in multiple dictionaries; behavior of "
                    "functional call is ambiguous"
                )
            merged.update(d)
        parameter_and_buffer_dicts = merged
    args = () if args is None else args if isinstance(args, tuple) else (args,)
    with _swapped(module, parameter_and_buffer_dicts, strict):
        return module(*args, **(kwargs or {}))


# ================================================================ trees of tensors
def _flatten(tree) -> tuple[list, Callable]:
    """The tensors of a tensor, dict, list or tuple (nested), and the function that builds
    the same structure around new leaves."""
    if isinstance(tree, Tensor):
        return [tree], lambda leaves: leaves[0]
    if isinstance(tree, Mapping):
        keys = list(tree)
        parts = [_flatten(tree[k]) for k in keys]
    elif isinstance(tree, (list, tuple)):
        keys = None
        parts = [_flatten(v) for v in tree]
    else:
        return [], lambda leaves: tree
    counts = [len(p[0]) for p in parts]
    leaves = [leaf for p in parts for leaf in p[0]]

    def rebuild(new_leaves):
        values, start = [], 0
        for (_, build), count in zip(parts, counts):
            values.append(build(new_leaves[start : start + count]))
            start += count
        if keys is not None:
            return dict(zip(keys, values))
        return type(tree)(values)

    return leaves, rebuild


# ================================================================ derivatives
def _argnums(argnums) -> tuple[int, ...]:
    return (argnums,) if isinstance(argnums, int) else tuple(argnums)


def grad_and_value(func: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """A function returning (d func / d args[argnums], func(args)) for a scalar func."""

    def wrapper(*args, **kwargs):
        nums = _argnums(argnums)
        args = list(args)
        trees = []
        with grad_mode.enable_grad():
            for i in nums:  # each differentiated argument: fresh leaves in its structure
                leaves, rebuild = _flatten(args[i])
                # an input already in a graph (an outer transform's) stays connected to it
                leaves = [
                    leaf.view_as(leaf) if leaf.requires_grad else leaf.detach().requires_grad_()
                    for leaf in leaves
                ]
                args[i] = rebuild(leaves)
                trees.append((leaves, rebuild))
            out = func(*args, **kwargs)
            value, aux = out if has_aux else (out, None)
            if not isinstance(value, Tensor) or value.numel() != 1:
                raise RuntimeError(
                    "grad_and_value(f)(*args): Expected f(*args) to return a scalar Tensor, "
                    f"got tensor with {getattr(value, 'ndim', '?')} dims"
                )
            all_leaves = [leaf for leaves, _ in trees for leaf in leaves]
            found = _grad(value, all_leaves, create_graph=True, allow_unused=True)
        found = [g if g is not None else x.new_zeros(x.shape) for g, x in zip(found, all_leaves)]
        grads, start = [], 0
        for leaves, rebuild in trees:
            grads.append(rebuild(found[start : start + len(leaves)]))
            start += len(leaves)
        result = grads[0] if isinstance(argnums, int) else tuple(grads)
        return (result, (value, aux)) if has_aux else (result, value)

    return wrapper


def grad(func: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """A function returning d func / d args[argnums] for a scalar func (and aux)."""
    both = grad_and_value(func, argnums, has_aux)

    def wrapper(*args, **kwargs):
        g, value = both(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return wrapper


def vjp(func: Callable, *primals, has_aux: bool = False):
    """(func(*primals), vjp_fn): vjp_fn(cotangents) gives the gradients for each primal."""
    xs = [p.detach().requires_grad_() for p in primals]
    with grad_mode.enable_grad():
        out = func(*xs)
    value, aux = out if has_aux else (out, None)
    outputs = value if isinstance(value, tuple) else (value,)

    def vjp_fn(*cotangents):
        cts = (
            cotangents[0]
            if len(cotangents) == 1 and isinstance(cotangents[0], tuple)
            else cotangents
        )
        grads = _grad(list(outputs), xs, list(cts), retain_graph=True, allow_unused=True)
        return tuple(g if g is not None else x.new_zeros(x.shape) for g, x in zip(grads, xs))

    return (value, vjp_fn, aux) if has_aux else (value, vjp_fn)


def _check_jvp_args(primals, tangents) -> None:
    if not isinstance(primals, tuple):
        raise RuntimeError(
            "jvp(f, primals, tangents): Expected primals to be a tuple. E.g. it should be "
            "valid to call f(*primals)."
        )
    p_leaves, _ = _flatten(primals)
    t_leaves, _ = _flatten(tangents) if isinstance(tangents, tuple) else ([], None)
    if not isinstance(tangents, tuple) or len(p_leaves) != len(t_leaves):
        raise RuntimeError(
            "jvp(f, primals, tangents): Expected primals and tangents to have the same python "
            "structure. For example, if primals is a tuple of 3 tensors, tangents also must be."
        )
    for p, t in zip(p_leaves, t_leaves):
        if tuple(p.shape) != tuple(t.shape):
            raise RuntimeError(
                "jvp(f, primals, tangents): Expected primals and tangents to have the same "
                f"shape. Got primals shape {tuple(p.shape)} and tangents shape {tuple(t.shape)}"
            )


def _jvp_fn(func: Callable, primals: tuple, has_aux: bool):
    """func(*primals) and the function t -> J t, by differentiating the vjp with respect to
    its cotangent (the vjp is linear in it, so its derivative is J). Both derivatives are
    recorded, so jvp nests inside grad and itself."""
    with grad_mode.enable_grad():
        leaves, rebuild = _flatten(primals)
        connected = any(x.requires_grad for x in leaves)  # inside an outer transform
        leaves = [x.view_as(x) if x.requires_grad else x.detach().requires_grad_() for x in leaves]
        out = func(*rebuild(leaves))
        value, aux = out if has_aux else (out, None)
        outs, rebuild_out = _flatten(value)
        dummies = [o.detach().new_zeros(o.shape).requires_grad_() for o in outs]
        live = [i for i, o in enumerate(outs) if o.requires_grad]  # the others are constant
        vjps = [None] * len(leaves)
        if live:
            vjps = _grad(
                [outs[i] for i in live],
                leaves,
                [dummies[i] for i in live],
                create_graph=True,
                allow_unused=True,
            )
        pairs = [(g, d) for g, d in zip(vjps, leaves) if g is not None]

    def apply(*tangents):
        t_leaves, _ = _flatten(tangents)
        used = [t for g, t in zip(vjps, t_leaves) if g is not None]
        if not pairs:  # no output depends on a primal
            return rebuild_out([o.detach().new_zeros(o.shape) for o in outs])
        with grad_mode.enable_grad():
            jv = _grad([g for g, _ in pairs], dummies, used, create_graph=True, allow_unused=True)
        found = [j if j is not None else o.new_zeros(o.shape) for j, o in zip(jv, outs)]
        return rebuild_out(found if connected else [j.detach() for j in found])

    apply.depends = bool(pairs)
    if not connected:
        value = rebuild_out([o.detach() for o in outs])
    return value, apply, aux


def jvp(func: Callable, primals: tuple, tangents: tuple, *, strict: bool = False, has_aux=False):
    """(func(*primals), J(primals) tangents): the forward-mode derivative along `tangents`,
    with torch.func.jvp's arguments and results. Computed in reverse mode (twice), so it
    costs about two backward passes rather than one forward pass."""
    _check_jvp_args(primals, tangents)
    value, apply, aux = _jvp_fn(func, primals, has_aux)
    if strict and not apply.depends:
        raise RuntimeError(
            "jvp(f, primals, tangents, strict=True): the output of f does not depend on its inputs"
        )
    out = apply(*tangents)
    return (value, out, aux) if has_aux else (value, out)


def linearize(func: Callable, *primals):
    """(func(*primals), jvp_fn): jvp_fn(*tangents) is J(primals) tangents, for as many
    tangents as wanted, without calling func again."""
    value, apply, _ = _jvp_fn(func, primals, has_aux=False)

    def jvp_fn(*tangents):
        _check_jvp_args(primals, tangents)
        return apply(*tangents)

    return value, jvp_fn


def _jacobian_transform(strategy: str):
    def make(func: Callable, argnums=0) -> Callable:
        def wrapper(*args):
            nums = _argnums(argnums)

            def only(*chosen):
                full = list(args)
                for i, c in zip(nums, chosen):
                    full[i] = c
                return func(*full)

            chosen = tuple(args[i] for i in nums)
            jac = _af.jacobian(only, chosen, create_graph=True, strategy=strategy)
            if isinstance(argnums, int):
                return jac[0] if not isinstance(jac[0], tuple) else tuple(j[0] for j in jac)
            return jac

        return wrapper

    return make


jacrev = _jacobian_transform("reverse-mode")
jacfwd = _jacobian_transform("forward-mode")


def hessian(func: Callable, argnums=0) -> Callable:
    """The Hessian of a scalar func: jacobian of its gradient."""
    return jacfwd(jacrev(func, argnums), argnums)


# ================================================================ vmap
def vmap(func: Callable, in_dims=0, out_dims=0, randomness: str = "error", *, chunk_size=None):
    """func mapped over dimension in_dims of its inputs (None: not mapped), results stacked
    along out_dims. One call per slice: the semantics of torch's vmap, not its speed."""

    def wrapper(*args):
        dims = in_dims if isinstance(in_dims, (tuple, list)) else (in_dims,) * len(args)
        if len(dims) != len(args):
            raise ValueError(
                f"vmap(f, in_dims={in_dims}, ...)(<inputs>): in_dims is not compatible with the "
                f"structure of `inputs`. in_dims has structure with {len(dims)} entries but "
                f"inputs has {len(args)}."
            )
        sizes = {a.shape[d] for a, d in zip(args, dims) if d is not None}
        if not sizes:
            raise ValueError(
                "vmap(f, in_dims=..., ...)(<inputs>): at least one input must be mapped over "
                "(got in_dims with no dimension)"
            )
        if len(sizes) != 1:
            raise ValueError(
                "vmap: Expected all tensors to have the same size in the mapped dimension, got "
                f"sizes {sorted(sizes)} for the mapped dimension"
            )
        n = sizes.pop()
        results = []
        for i in range(n):
            sliced = [a.select(d, i) if d is not None else a for a, d in zip(args, dims)]
            results.append(func(*sliced))
        flat = [_flatten(r) for r in results]
        leaves_per_result = [f[0] for f in flat]
        count = len(leaves_per_result[0])
        dims_out = out_dims if isinstance(out_dims, (tuple, list)) else (out_dims,) * count
        stacked = [
            stack([leaves[k] for leaves in leaves_per_result], dims_out[k]) for k in range(count)
        ]
        return flat[0][1](stacked)

    return wrapper
