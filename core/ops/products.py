"""Matrix products. `matmul` covers torch's shape cases (1-D·1-D, 1-D·2-D, 2-D·1-D, batched
with broadcasting); `linear` is the fused x @ W.T + b that nn.Linear uses, so a layer costs one
GEMM forward and two backward; `addmm`/`addmv`/`baddbmm` fuse the scaled add the same way;
`einsum` differentiates each operand with another einsum."""

from __future__ import annotations

import string
from collections import Counter

from ..autograd.node import Op
from ..backend import xp_of
from ..tensor import Tensor
from ._util import check_same_device, meta, reduce_grad, sum_to
from .elementwise import _dtype_name as _tname


def _matmul_grads(g: Tensor, a: Tensor, b: Tensor, a_shape: tuple, b_shape: tuple, needs: tuple):
    """Gradients of a @ b for every matmul shape case (with batch broadcasting)."""
    ga = gb = None
    a_nd, b_nd = len(a_shape), len(b_shape)
    if a_nd == 1 and b_nd == 1:  # dot
        return (g * b if needs[0] else None), (g * a if needs[1] else None)
    if a_nd == 1:  # (k) @ (..., k, n) -> (..., n)
        if needs[0]:
            ga = sum_to((g.unsqueeze(-2) @ b.mT).squeeze(-2), a_shape)
        if needs[1]:
            gb = sum_to(a.unsqueeze(-1) * g.unsqueeze(-2), b_shape)
        return ga, gb
    if b_nd == 1:  # (..., m, k) @ (k) -> (..., m)
        if needs[0]:
            ga = sum_to(g.unsqueeze(-1) * b, a_shape)
        if needs[1]:
            gb = sum_to((a.mT @ g.unsqueeze(-1)).squeeze(-1), b_shape)
        return ga, gb
    if needs[0]:
        ga = sum_to(g @ b.mT, a_shape)
    if needs[1]:
        if a_nd == 2 and b_nd == 2:
            gb = a.mT @ g
        elif b_nd == 2 and a.numel() and g.numel():  # a stack times one matrix: one product
            gb = a.reshape(-1, a.shape[-1]).mT @ g.reshape(-1, g.shape[-1])
        else:
            gb = sum_to(a.mT @ g, b_shape)
    return ga, gb


def _product(a, b):
    """a @ b on arrays, with a stack of matrices times one matrix done as one product:
    numpy would call BLAS once per matrix of the stack, ~3x slower for a (32, 32, 64) stack
    times (64, 192), where (1024, 64) times (64, 192) keeps BLAS busy."""
    if a.ndim > 2 and b.ndim == 2 and a.size and b.size:
        rows = a.reshape(-1, a.shape[-1])
        return (rows @ b).reshape(*a.shape[:-1], b.shape[-1])
    return a @ b


class Matmul(Op):
    save_inputs = (0, 1)

    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return _product(a, b)

    def backward(self, g):
        a, b = self.saved
        return _matmul_grads(g, a, b, self.a_shape, self.b_shape, self.needs_input_grad)


def _check_batch(a_batch: tuple, b_batch: tuple) -> None:
    for i in range(1, min(len(a_batch), len(b_batch)) + 1):
        sa, sb = a_batch[-i], b_batch[-i]
        if sa != sb and sa != 1 and sb != 1:
            nd = max(len(a_batch), len(b_batch))
            raise RuntimeError(
                f"The size of tensor a ({sa}) must match the size of tensor b ({sb}) at "
                f"non-singleton dimension {nd - i}"
            )


def _check_matmul(input: Tensor, other: Tensor) -> None:
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        bad = other if isinstance(input, Tensor) else input
        raise TypeError(f"matmul(): argument 'other' must be Tensor, not {type(bad).__name__}")
    check_same_device(input._data, other._data)
    sa, sb = input._data.shape, other._data.shape
    if not sa or not sb:
        raise RuntimeError(
            f"both arguments to matmul need to be at least 1D, but they are {len(sa)}D and {len(sb)}D"
        )
    if input._data.dtype != other._data.dtype:
        if len(sa) == 1 and len(sb) == 1:
            raise RuntimeError(
                "dot : expected both vectors to have same dtype, but found "
                f"{_tname(input)} and {_tname(other)}"
            )
        raise RuntimeError(
            "expected m1 and m2 to have the same dtype, but got: "
            f"{input.dtype.name} != {other.dtype.name}"
        )
    k_a = sa[-1]
    k_b = sb[-2] if len(sb) > 1 else sb[0]
    if k_a != k_b:
        if len(sa) == 1 and len(sb) == 1:
            raise RuntimeError(
                f"inconsistent tensor size, expected tensor [{k_a}] and src [{k_b}] to have the "
                f"same number of elements, but got {k_a} and {k_b} elements respectively"
            )
        if len(sb) <= 2:
            rows = input._data.size // k_a if k_a else 0
            b2 = sb if len(sb) == 2 else (k_b, 1)
            if len(sa) == 2 and len(sb) == 1:
                raise RuntimeError(
                    f"size mismatch, got input ({sa[0]}), mat ({sa[0]}x{k_a}), vec ({k_b})"
                )
            raise RuntimeError(
                f"mat1 and mat2 shapes cannot be multiplied ({rows}x{k_a} and {b2[0]}x{b2[1]})"
            )
        batch = sb[:-2] if len(sa) <= 2 else _broadcast(sa[:-2], sb[:-2])
        n_batch = 1
        for s in batch:
            n_batch *= s
        raise RuntimeError(
            "Expected size for first two dimensions of batch2 tensor to be: "
            f"[{n_batch}, {k_a}] but got: [{n_batch}, {k_b}]."
        )
    if len(sa) > 2 and len(sb) > 2:
        _check_batch(sa[:-2], sb[:-2])


def _broadcast(a: tuple, b: tuple) -> tuple:
    _check_batch(a, b)
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    return tuple(max(x, y) if min(x, y) else 0 for x, y in zip(a, b))


def matmul(input: Tensor, other: Tensor) -> Tensor:
    _check_matmul(input, other)
    return Matmul.apply(input, other)


class Linear(Op):
    save_inputs = (0, 1)

    def forward(self, x, w, b=None):
        self.x_shape, self.has_bias = x.shape, b is not None
        self.b_meta = (b.shape, b.dtype) if b is not None else None
        out = _product(x, w.T)
        if b is not None:
            out += b
        return out

    def backward(self, g):
        x, w = self.saved
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            gx = g @ w
        if self.needs_input_grad[1]:
            if g.ndim == 2:
                gw = g.mT @ x
            else:
                gw = g.reshape(-1, g.shape[-1]).mT @ x.reshape(-1, x.shape[-1])
        if self.has_bias and self.needs_input_grad[2]:
            gb = reduce_grad(g, *self.b_meta)
        return gx, gw, gb


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    if input.shape[-1] != weight.shape[-1]:
        a = "x".join(map(str, (input.numel() // max(input.shape[-1], 1), input.shape[-1])))
        raise RuntimeError(
            f"mat1 and mat2 shapes cannot be multiplied ({a} and {weight.shape[1]}x{weight.shape[0]})"
        )
    check_same_device(input._data, weight._data)
    if input._data.dtype != weight._data.dtype:
        raise RuntimeError(
            f"mat1 and mat2 must have the same dtype, but got {input.dtype.name.capitalize()} and "
            f"{weight.dtype.name.capitalize()}"
        )
    if bias is None:
        return Linear.apply(input, weight)
    return Linear.apply(input, weight, bias)


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    if input.ndim != 2:
        raise RuntimeError("self must be a matrix")
    if mat2.ndim != 2:
        raise RuntimeError("mat2 must be a matrix")
    return matmul(input, mat2)


def _check_bmm(input: Tensor, mat2: Tensor) -> None:
    if input.ndim != 3:
        raise RuntimeError("batch1 must be a 3D tensor")
    if mat2.ndim != 3:
        raise RuntimeError("batch2 must be a 3D tensor")
    (b, _, k), (b2, k2, _) = input._data.shape, mat2._data.shape
    if (b2, k2) != (b, k):
        raise RuntimeError(
            "Expected size for first two dimensions of batch2 tensor to be: "
            f"[{b}, {k}] but got: [{b2}, {k2}]."
        )


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    _check_bmm(input, mat2)
    return matmul(input, mat2)


def dot(input: Tensor, other: Tensor) -> Tensor:
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors")
    return matmul(input, other)


def _check_mv(input: Tensor, vec: Tensor) -> None:
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got 1, {input.ndim}, {vec.ndim}")


def mv(input: Tensor, vec: Tensor) -> Tensor:
    _check_mv(input, vec)
    return matmul(input, vec)


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    for name, t in (("self", input), ("vec2", vec2)):
        if t.ndim != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {name}, but got {t.ndim}-D")
    return input.unsqueeze(1) * vec2.unsqueeze(0)


ger = outer


class AddMatmul(Op):
    """beta * input + alpha * (m1 @ m2) in one pass: addmm, addmv, baddbmm."""

    save_inputs = (1, 2)

    def forward(self, c, a, b, beta=1, alpha=1):
        self.c, self.a_shape, self.b_shape = meta(c), a.shape, b.shape
        self.beta, self.alpha = beta, alpha
        out = a @ b
        if alpha != 1:
            out *= alpha
        if beta == 0:  # torch ignores input then: its NaNs do not propagate
            return out
        out += c if beta == 1 else beta * c
        return out

    def backward(self, g):
        a, b = self.saved
        gc = None
        if self.needs_input_grad[0]:
            gc = reduce_grad(g if self.beta == 1 else g * self.beta, *self.c)
        ga = gb = None
        if self.needs_input_grad[1] or self.needs_input_grad[2]:
            gs = g if self.alpha == 1 else g * self.alpha
            needs = self.needs_input_grad[1:]
            ga, gb = _matmul_grads(gs, a, b, self.a_shape, self.b_shape, needs)
        return gc, ga, gb


def _check_addend(input: Tensor, out_shape: tuple) -> None:
    shape = input._data.shape
    if len(shape) > len(out_shape) or any(
        s != 1 and s != o for s, o in zip(reversed(shape), reversed(out_shape))
    ):
        raise RuntimeError(
            f"The expanded size of the tensor ({out_shape[-1]}) must match the existing size "
            f"({shape[-1]}) at non-singleton dimension {len(out_shape) - 1}.  Target sizes: "
            f"{list(out_shape)}.  Tensor sizes: {list(shape)}"
        )


def _add_matmul(input, m1, m2, beta, alpha, out_shape):
    _check_addend(input, out_shape)
    if input._data.dtype != m1._data.dtype:
        input = input.to(m1.dtype)
    return AddMatmul.apply(input, m1, m2, beta=beta, alpha=alpha)


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:
    for name, t in (("mat1", mat1), ("mat2", mat2)):
        if t.ndim != 2:
            raise RuntimeError(f"{name} must be a matrix, got {t.ndim}-D tensor")
    _check_matmul(mat1, mat2)
    return _add_matmul(input, mat1, mat2, beta, alpha, (mat1.shape[0], mat2.shape[1]))


def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta=1, alpha=1) -> Tensor:
    _check_mv(mat, vec)
    _check_matmul(mat, vec)
    return _add_matmul(input, mat, vec, beta, alpha, (mat.shape[0],))


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    _check_bmm(batch1, batch2)
    _check_matmul(batch1, batch2)
    out_shape = (batch1.shape[0], batch1.shape[1], batch2.shape[2])
    return _add_matmul(input, batch1, batch2, beta, alpha, out_shape)


# ---------------------------------------------------------------- einsum
_LETTERS = string.ascii_uppercase + string.ascii_lowercase


def _parse_einsum(equation: str, shapes: list[tuple]) -> tuple[list[str], str]:
    """Explicit per-operand subscripts and output, with '...' spelled out in fresh letters
    (right-aligned, so ellipsis dims broadcast) and torch's implicit output rule."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) > len(shapes):
        raise RuntimeError("einsum(): fewer operands were provided than specified in the equation")
    if len(terms) < len(shapes):
        raise RuntimeError("einsum(): more operands were provided than specified in the equation")
    for ch in eq:
        if ch not in _LETTERS and ch not in ".,->":
            raise RuntimeError(
                f"einsum(): invalid subscript given at index {eq.index(ch)} in the equation string, subscripts must be in [a-zA-Z]"
            )
    spare = iter(c for c in _LETTERS if c not in eq)
    n_ell = max((len(s) - (len(t) - 3) for t, s in zip(terms, shapes) if "..." in t), default=0)
    ell = "".join(next(spare) for _ in range(n_ell))
    out_terms = []
    for i, (term, shape) in enumerate(zip(terms, shapes)):
        if "..." in term:
            k = len(shape) - (len(term) - 3)
            term = term.replace("...", ell[n_ell - k :] if k else "")
        elif len(term) != len(shape):
            raise RuntimeError(
                f"einsum(): the number of subscripts in the equation ({len(term)}) does not match "
                f"the number of dimensions ({len(shape)}) for operand {i} and no ellipsis was given"
            )
        out_terms.append(term)
    if arrow:
        out = rhs.replace("...", ell)
        seen = set("".join(out_terms))
        for ch in out:
            if ch not in seen:
                raise RuntimeError(
                    f"einsum(): output subscript {ch} does not appear in the equation for any input operand"
                )
    else:
        counts = Counter("".join(out_terms))
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    return out_terms, out


class Einsum(Op):
    def forward(self, *arrays, terms=(), out=""):
        self.terms, self.out = terms, out
        self.save_inputs = tuple(range(len(arrays)))  # every operand enters the backward
        spec = ",".join(terms) + "->" + out
        xp = xp_of(arrays[0])
        big = len(arrays) > 1 and max(a.size for a in arrays) > 4096
        try:
            return xp.einsum(spec, *arrays, optimize="greedy" if big else False)
        except ValueError as exc:
            raise RuntimeError(f"einsum(): {exc}") from None

    def backward(self, g):
        ops = self.saved
        return tuple(
            _einsum_operand_grad(g, ops, self.terms, self.out, i) if needed else None
            for i, needed in enumerate(self.needs_input_grad)
        )


def _einsum_operand_grad(g: Tensor, ops: list, terms: list, out: str, i: int) -> Tensor:
    """d/d(operand i): an einsum of the gradient with the other operands. Labels only operand
    i has become ones-vectors; a repeated label (a diagonal) is put back with identities."""
    target = terms[i]
    shape = ops[i]._data.shape
    xp = xp_of(g._data)
    dtype = g._data.dtype
    sizes = dict(zip(target, shape))
    uniq = "".join(dict.fromkeys(target))
    in_terms, in_ops = [out], [g]
    for j, (t, o) in enumerate(zip(terms, ops)):
        if j != i:
            in_terms.append(t)
            in_ops.append(o)
    present = set("".join(in_terms))
    for ch in uniq:
        if ch not in present:
            in_terms.append(ch)
            in_ops.append(Tensor._make(xp.ones(sizes[ch], dtype=dtype)))
    grad = _einsum_terms(in_terms, uniq, in_ops)
    if len(uniq) != len(target):  # scatter onto the diagonal of repeated labels
        spare = iter(c for c in _LETTERS if c not in "".join(terms) + out)
        renamed, eyes, eye_terms, seen = [], [], [], set()
        for ch in target:
            if ch in seen:
                new = next(spare)
                renamed.append(new)
                eye_terms.append(ch + new)
                eyes.append(Tensor._make(xp.eye(sizes[ch], dtype=dtype)))
            else:
                seen.add(ch)
                renamed.append(ch)
        grad = _einsum_terms([uniq, *eye_terms], "".join(renamed), [grad, *eyes])
    return reduce_grad(grad, shape, ops[i]._data.dtype)


def _einsum_terms(terms: list[str], out: str, operands: list) -> Tensor:
    return Einsum.apply(*operands, terms=list(terms), out=out)


def einsum(equation: str, *operands) -> Tensor:
    """torch.einsum(equation, *operands) or einsum(equation, [operands])."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    for t in operands:
        if not isinstance(t, Tensor):
            raise TypeError(
                f"einsum(): argument 'operands' must be tuple of Tensors, not {type(t).__name__}"
            )
    if not operands:
        raise RuntimeError("einsum(): must provide at least one operand")
    dt = operands[0]._data.dtype
    for t in operands[1:]:
        check_same_device(operands[0]._data, t._data)
        if t._data.dtype != dt:
            raise RuntimeError(f"expected scalar type {_tname(operands[0])} but found {_tname(t)}")
    terms, out = _parse_einsum(equation, [t._data.shape for t in operands])
    return _einsum_terms(terms, out, list(operands))


def tensordot(a: Tensor, b: Tensor, dims=2) -> Tensor:
    """Contract the last `dims` dims of a with the first of b, or the listed dim pairs."""
    if isinstance(dims, int):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        da = list(range(a.ndim - dims, a.ndim))
        db = list(range(dims))
    else:
        da, db = ([d] if isinstance(d, int) else list(d) for d in dims)
    if len(da) != len(db):
        raise RuntimeError("both dimension lists should have same length")
    la = list(_LETTERS[: a.ndim])
    lb = list(_LETTERS[a.ndim : a.ndim + b.ndim])
    for x, y in zip(da, db):
        lb[y % b.ndim] = la[x % a.ndim]
    contracted = {la[x % a.ndim] for x in da}
    out = "".join(c for c in la if c not in contracted) + "".join(
        c for c in lb if c not in contracted
    )
    return einsum(f"{''.join(la)},{''.join(lb)}->{out}", a, b)


def inner(input: Tensor, other: Tensor) -> Tensor:
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    return tensordot(input, other, dims=([-1], [-1]))


TENSOR_METHODS = {
    "__matmul__": matmul,
    "__rmatmul__": lambda self, other: matmul(other, self),
    "matmul": matmul,
    "mm": mm,
    "bmm": bmm,
    "dot": dot,
    "mv": mv,
    "outer": outer,
    "ger": outer,
    "inner": inner,
    "addmm": addmm,
    "addmv": addmv,
    "baddbmm": baddbmm,
}

__all__ = [
    "matmul", "mm", "bmm", "dot", "mv", "outer", "ger", "inner", "addmm", "addmv", "baddbmm",
    "einsum", "tensordot",
]  # fmt: skip
