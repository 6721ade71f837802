"""Inverses, determinants, solves and decompositions: the LAPACK half of `shardgrad.linalg`.

Forwards call numpy's (or cupy's) linalg, which wrap the LAPACK routines torch calls, so the
factors come out with torch's sign conventions. Backwards are torch's formulas written with
Tensor ops, so create_graph differentiates them again.

A decomposition's backward reads its own outputs (Q and R, U, S and Vh, ...). Outside
create_graph they are used as constants; under create_graph the op is applied again to its
saved input, so that the next derivative sees how the factors depend on it.
"""

from __future__ import annotations

import numpy as np

from ..autograd import grad_mode
from ..autograd.node import Op
from ..backend import linalg_errors_raised, xp_of
from ..tensor import Tensor
from ._select import return_type
from ._util import reduce_grad
from .elementwise import _dtype_name as _tname
from .join import cat
from .shape import diag_embed

_slogdet_t = return_type("linalg_slogdet", ("sign", "logabsdet"))
_qr_t = return_type("linalg_qr", ("Q", "R"))
_eigh_t = return_type("linalg_eigh", ("eigenvalues", "eigenvectors"))
_svd_t = return_type("linalg_svd", ("U", "S", "Vh"))


class LinAlgError(RuntimeError):
    """torch.linalg.LinAlgError: the matrix is one the routine cannot handle (singular, not
    positive-definite). A RuntimeError, as in torch, so `except RuntimeError` still works."""


def _const(array) -> Tensor:
    return Tensor._make(array)


def _recording() -> bool:
    """True while backward must itself be differentiable (create_graph=True)."""
    return grad_mode.state.enabled


def _numpy_linalg_error(xp):
    return (np.linalg.LinAlgError, getattr(xp.linalg, "LinAlgError", np.linalg.LinAlgError))


def _lapack(fn: str, problem: str, call, a, *rest):
    """call(a, *rest), with numpy's LinAlgError told torch's way: which batch element, and
    what is wrong with it (`problem(matrix)` says, for one matrix)."""
    xp = xp_of(a)
    with linalg_errors_raised(xp):
        try:
            return call(a, *rest)
        except _numpy_linalg_error(xp):
            pass
        batch = a.shape[:-2]
        where = ""
        if batch:
            for i, index in enumerate(np.ndindex(*batch)):
                try:
                    call(a[index], *(r[index] if r.ndim > 2 else r for r in rest))
                except _numpy_linalg_error(xp):
                    where = f"(Batch element {i}): "
                    a = a[index]
                    break
        message = f"{fn}: {where}{problem(a)}"
    raise LinAlgError(message) from None


def check_matrix(fn: str, A: Tensor, square: bool = True) -> None:
    """torch's argument checks of a linalg function: a float tensor of (square) matrices."""
    if not isinstance(A, Tensor):
        raise TypeError(f"{fn}(): argument 'A' (position 1) must be Tensor, not {type(A).__name__}")
    if not A.is_floating_point():
        raise RuntimeError(
            f"{fn}: Expected a floating point or complex tensor as input. Got {_tname(A)}"
        )
    if A.ndim < 2:
        raise RuntimeError(f"{fn}: The input tensor A must have at least 2 dimensions.")
    if square and A.shape[-1] != A.shape[-2]:
        raise RuntimeError(
            f"{fn}: A must be batches of square matrices, but they are "
            f"{A.shape[-2]} by {A.shape[-1]} matrices"
        )


def _singular(_a) -> str:
    return "The input matrix is singular, the inversion could not be completed."


def _unsqueeze2(t: Tensor) -> Tensor:
    return t.unsqueeze(-1).unsqueeze(-1)


# ================================================================ inverse and determinants
class Inv(Op):
    """A^-1. d(A^-1) = -A^-1 dA A^-1, so the gradient is -A^-T g A^-T."""

    save_output = True

    def forward(self, a):
        return _lapack("linalg.inv", _singular, xp_of(a).linalg.inv, a)

    def backward(self, g):
        (y,) = self.saved
        yt = y.mT
        return -(yt @ g @ yt)


class Det(Op):
    """det(A). Its gradient is the adjugate's transpose: det(A) A^-T where A is invertible;
    for a singular A (no inverse) it comes from the SVD, where it is still finite, as in
    torch."""

    save_inputs = (0,)
    save_output = True

    def forward(self, a):
        return xp_of(a).linalg.det(a)

    def backward(self, g):
        a, d = self.saved
        if _recording():
            return _unsqueeze2(g * d) * Inv.apply(a).mT
        ad = a._data
        xp = xp_of(ad)
        try:
            return _const(_unsqueeze_array(g._data * d._data) * xp.linalg.inv(ad).swapaxes(-1, -2))
        except _numpy_linalg_error(xp):
            return _const(_unsqueeze_array(g._data) * _adjugate_t(ad))


def _unsqueeze_array(x):
    return x[..., None, None]


def _adjugate_t(a):
    """adj(A)^T from A = U S Vh: det(U) det(Vh) U diag(prod of the other s) Vh."""
    xp = xp_of(a)
    u, s, vh = xp.linalg.svd(a)
    n = s.shape[-1]
    ones = xp.ones(s.shape[:-1] + (1,), dtype=s.dtype)
    left = xp.cumprod(xp.concatenate([ones, s[..., : n - 1]], axis=-1), axis=-1)
    right = xp.flip(
        xp.cumprod(xp.concatenate([ones, xp.flip(s, -1)[..., : n - 1]], axis=-1), axis=-1), -1
    )
    others = left * right  # prod over j != i of s_j
    sign = xp.linalg.det(u) * xp.linalg.det(vh)
    return _unsqueeze_array(sign) * (u * others[..., None, :]) @ vh


class Slogdet(Op):
    """(sign, log|det A|). Only log|det| has a gradient: A^-T."""

    save_inputs = (0,)

    def forward(self, a):
        sign, logabs = xp_of(a).linalg.slogdet(a)
        return sign, logabs

    def backward(self, g_sign, g_logabs):
        if g_logabs is None:
            return None
        (a,) = self.saved
        return _unsqueeze2(g_logabs) * Inv.apply(a).mT


# ================================================================ solving
class Solve(Op):
    """X with A X = B, batches broadcast; B is (*, n, k). The gradients: gB = A^-T gX, and
    gA = -gB X^T, summed back over broadcast batch dimensions."""

    save_inputs = (0,)
    save_output = True

    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        xp = xp_of(a)
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        a_b = xp.broadcast_to(a, batch + a.shape[-2:])
        b_b = xp.broadcast_to(b, batch + b.shape[-2:])
        return _lapack(
            "torch.linalg.solve",
            lambda _a: "The solver failed because the input matrix is singular.",
            xp.linalg.solve,
            a_b,
            b_b,
        )

    def backward(self, g):
        a, x = self.saved
        a_shape, b_shape = self.shapes
        gb = Solve.apply(a.mT, g)
        ga = None
        if self.needs_input_grad[0]:
            ga = reduce_grad(-(gb @ x.mT), a_shape, None)
        return ga, reduce_grad(gb, b_shape, None)


# ================================================================ factorizations
def _not_positive_definite(a) -> str:
    """Which leading minor fails, found by bisection (a minor's failure implies the larger
    ones')."""
    xp = xp_of(a)
    lo, hi = 1, a.shape[-1]  # the smallest failing order is in [lo, hi]
    while lo < hi:
        mid = (lo + hi) // 2
        try:
            xp.linalg.cholesky(a[:mid, :mid])
            lo = mid + 1
        except _numpy_linalg_error(xp):
            hi = mid
    return (
        "The factorization could not be completed because the input is not positive-definite "
        f"(the leading minor of order {lo} is not positive-definite)."
    )


def lower_symmetric(a):
    """The symmetric matrix that A's lower triangle describes: what torch's routines read."""
    xp = xp_of(a)
    return xp.tril(a) + xp.tril(a, -1).swapaxes(-1, -2)


class Cholesky(Op):
    """L with L L^T = A, from A's lower triangle. The gradient (Murray, 2016, as torch):
    with Phi the lower triangle at half diagonal, S = L^-T Phi(L^T gL) L^-1, gA = sym(S)."""

    save_output = True

    def forward(self, a):
        xp = xp_of(a)
        return _lapack(
            "linalg.cholesky", _not_positive_definite, xp.linalg.cholesky, lower_symmetric(a)
        )

    def backward(self, g):
        (low,) = self.saved
        phi = (low.mT @ g).tril()
        phi = phi - 0.5 * diag_embed(phi.diagonal(0, -2, -1))
        low_inv = Inv.apply(low)
        s = low_inv.mT @ phi @ low_inv
        return 0.5 * (s + s.mT)


class Qr(Op):
    """A = Q R. mode "reduced" (Q m x k, R k x n), "complete" (Q m x m) or "r" (R only)."""

    save_inputs = (0,)

    def forward(self, a, mode="reduced"):
        self.mode = mode
        xp = xp_of(a)
        if mode == "r":
            r = xp.linalg.qr(a, mode="r")
            return xp.empty((0,), dtype=a.dtype), r
        q, r = xp.linalg.qr(a, mode=mode)
        self.extras = (q, r)
        return q, r

    def backward(self, gq, gr):
        (a,) = self.saved
        m, n = a.shape[-2], a.shape[-1]
        if self.mode == "r":
            raise RuntimeError(
                "The derivative of linalg.qr depends on Q, which is not computed when mode='r'. "
                "Please use linalg.qr(A, mode='reduced') if you are going to differentiate "
                "through linalg.qr."
            )
        if self.mode == "complete" and m > n:
            raise RuntimeError(
                "The QR decomposition is not differentiable when mode='complete' and nrows > ncols."
            )
        q, r = Qr.apply(a, mode=self.mode) if _recording() else map(_const, self.extras)
        if m >= n:
            return _qr_tall_grad(q, r, gq, gr)
        # A = [X | Y] with X = Q U square: differentiate X's factorization, then V = Q^T Y.
        y = a[..., :, m:]
        gu = gv = None
        if gr is not None:
            gu, gv = gr[..., :, :m], gr[..., :, m:]
        gq_x = gq
        if gv is not None:
            extra = y @ gv.mT
            gq_x = extra if gq_x is None else gq_x + extra
        gx = _qr_tall_grad(q, r[..., :, :m], gq_x, gu)
        gy = q @ gv if gv is not None else _const(xp_of(a._data).zeros(y.shape, a._data.dtype))
        return cat([gx, gy], -1)


def _qr_tall_grad(q: Tensor, r: Tensor, gq: Tensor | None, gr: Tensor | None) -> Tensor:
    """gA for A = Q R with R square: (gQ + Q copyltu(D)) R^-T, D = gR R^T - Q^T gQ, where
    copyltu mirrors D's upper triangle onto its lower one."""
    d = None
    if gr is not None:
        d = gr @ r.mT
    if gq is not None:
        qtg = q.mT @ gq
        d = -qtg if d is None else d - qtg
    e = d.triu() + d.triu(1).mT
    y = q @ e if gq is None else gq + q @ e
    return Solve.apply(r, y.mT).mT


class Eigh(Op):
    """Eigenvalues (ascending) and orthonormal eigenvectors of the symmetric matrix that one
    triangle of A describes. gA = V (diag(gw) + skew(V^T gV) / E) V^T, with E_ij = w_j - w_i
    and skew(X) = (X - X^T) / 2, as in torch."""

    save_inputs = (0,)

    def forward(self, a, uplo="L"):
        self.uplo = uplo
        w, v = xp_of(a).linalg.eigh(a, UPLO=uplo)
        self.extras = (w, v)
        return w, v

    def backward(self, gw, gv):
        (a,) = self.saved
        w, v = Eigh.apply(a, uplo=self.uplo) if _recording() else map(_const, self.extras)
        inner = None
        if gv is not None:
            # V^T gV projected onto the skew-symmetric matrices: the tangent directions of
            # the orthogonal group, where V can move.
            vtg = v.mT @ gv
            skew = 0.5 * (vtg - vtg.mT)
            diff = w.unsqueeze(-2) - w.unsqueeze(-1)
            diag = _eye_bool(diff)
            inner = (skew / diff.masked_fill(diag, 1.0)).masked_fill(diag, 0.0)
        if gw is not None:
            inner = diag_embed(gw) if inner is None else inner + diag_embed(gw)
        return v @ inner @ v.mT


def _eye_bool(t: Tensor) -> Tensor:
    xp = xp_of(t._data)
    n = t.shape[-1]
    return _const(xp.eye(n, dtype=bool))


class Svd(Op):
    """A = U diag(S) Vh. The gradient is torch's svd_backward; with full_matrices the
    columns of U and rows of Vh beyond min(m, n) are arbitrary and their gradients ignored."""

    save_inputs = (0,)

    def forward(self, a, full_matrices=True):
        self.full = full_matrices
        u, s, vh = xp_of(a).linalg.svd(a, full_matrices=full_matrices)
        self.extras = (u, s, vh)
        return u, s, vh

    def backward(self, gu, gs, gvh):
        (a,) = self.saved
        u, s, vh = (
            Svd.apply(a, full_matrices=self.full) if _recording() else map(_const, self.extras)
        )
        m, n = a.shape[-2], a.shape[-1]
        k = min(m, n)
        if self.full and m != n:
            u, vh = u[..., :, :k], vh[..., :k, :]
            gu = gu[..., :, :k] if gu is not None else None
            gvh = gvh[..., :k, :] if gvh is not None else None
        return svd_grad(u, s, vh, gu, gs, gvh, m, n)


def svd_grad(u, s, vh, gu, gs, gvh, m: int, n: int) -> Tensor:
    """torch's svd_backward for real matrices (reduced factors)."""
    if gu is None and gvh is None:
        if gs is None:
            return None
        return u @ (gs.unsqueeze(-1) * vh) if m >= n else (u * gs.unsqueeze(-2)) @ vh
    v = vh.mT
    gv = gvh.mT if gvh is not None else None
    s2 = s * s
    e = s2.unsqueeze(-2) - s2.unsqueeze(-1)
    eye = _eye_bool(e)
    e = e.masked_fill(eye, 1.0)
    ga = None
    if gu is not None:
        uhgu = u.mT @ gu
        ga = (uhgu - uhgu.mT) * s.unsqueeze(-2)
    if gv is not None:
        vhgv = v.mT @ gv
        term = s.unsqueeze(-1) * (vhgv - vhgv.mT)
        ga = term if ga is None else ga + term
    ga = ga / e
    if gs is not None:
        ga = ga + diag_embed(gs)
    if m > n and gu is not None:
        ga = u @ ga
        gu_sinv = gu / s.unsqueeze(-2)
        ga = ga + gu_sinv - u @ (u.mT @ gu_sinv)
        return ga @ vh
    if m < n and gv is not None:
        ga = ga @ vh
        gv_sinv = gv / s.unsqueeze(-2)
        ga = ga + (gv_sinv - v @ (v.mT @ gv_sinv)).mT
        return u @ ga
    return u @ (ga @ vh) if m >= n else (u @ ga) @ vh


class Pinv(Op):
    """The Moore-Penrose pseudo-inverse, through the SVD: singular values at or below
    max(atol, rtol * largest) count as zero. The gradient is torch's pinv_backward."""

    save_inputs = (0,)
    save_output = True

    def forward(self, a, atol=0.0, rtol=0.0, hermitian=False):
        xp = xp_of(a)
        if hermitian:
            w, v = xp.linalg.eigh(a)
            s = xp.abs(w)
            u, vh = v * xp.sign(w)[..., None, :], v.swapaxes(-1, -2)
        else:
            u, s, vh = xp.linalg.svd(a, full_matrices=False)
        if s.shape[-1] == 0:
            return xp.zeros(a.shape[:-2] + (a.shape[-1], a.shape[-2]), dtype=a.dtype)
        largest = s.max(axis=-1, keepdims=True)
        tol = xp.maximum(xp.asarray(atol, dtype=s.dtype), rtol * largest)
        keep = s > tol
        s_inv = xp.where(keep, 1.0 / xp.where(keep, s, 1.0), 0.0).astype(a.dtype, copy=False)
        return (vh.swapaxes(-1, -2) * s_inv[..., None, :]) @ u.swapaxes(-1, -2)

    def backward(self, g):
        a, p = self.saved
        m, n = a.shape[-2], a.shape[-1]
        ph, gh = p.mT, g.mT
        if m <= n:
            k = gh @ p
            kph = k @ ph
            return -(p @ k).mT + kph - (a @ p) @ kph + (ph @ p) @ (gh - k @ a)
        k = p @ gh
        phk = ph @ k
        return -(k @ p).mT + (gh - a @ k) @ p @ ph + phk - phk @ p @ a


__all__: list[str] = []
