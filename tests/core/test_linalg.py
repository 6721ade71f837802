"""shardgrad.linalg against torch.linalg in float64: values, gradients (through losses that
weight every output entry differently), second derivatives, and the errors.

Eigenvectors and singular vectors are defined only up to sign (and rotation within repeated
values), so their tests go through losses that do not depend on that choice: U diag(h) Vh,
projections U U^T, and V diag(f(w)) V^T.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shardgrad as sg

pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated.*:UserWarning")
rng = np.random.default_rng(7)


def _np(t) -> np.ndarray:
    return np.asarray(t.detach().numpy())


def _weights(outs, seed: int = 3):
    r = np.random.default_rng(seed)
    return [r.standard_normal(tuple(o.shape)) for o in outs]


def _run(lib, fn, arrays, create_graph=False):
    xs = [lib.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    out = fn(lib, *xs)
    outs = tuple(out) if isinstance(out, tuple) else (out,)
    ws = _weights(outs)
    loss = sum((o * lib.tensor(w)).sum() for o, w in zip(outs, ws) if o.dtype.is_floating_point)
    if not create_graph:
        loss.backward()
        return [_np(o) for o in outs], [_np(x.grad) for x in xs if x.grad is not None]
    grads = (
        sg.autograd.grad(loss, xs, create_graph=True)
        if lib is sg
        else torch.autograd.grad(loss, xs, create_graph=True)
    )
    second = sum((g * lib.tensor(w)).sum() for g, w in zip(grads, _weights(grads, 11)))
    second.backward()
    return [_np(g) for g in grads], [_np(x.grad) for x in xs]


def both(fn, *arrays, rtol=1e-7, atol=1e-9, create_graph=False):
    """fn(lib, *tensors) in shardgrad and torch: the outputs and the inputs' gradients (or,
    with create_graph, the gradients and the second derivatives) agree."""
    ours, theirs = (_run(lib, fn, arrays, create_graph) for lib in (sg, torch))
    for a, b in zip(ours[0] + ours[1], theirs[0] + theirs[1], strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def square(*shape, shift=3.0):
    """Well-conditioned square matrices."""
    n = shape[-1]
    return rng.standard_normal(shape) + shift * np.eye(n)


def spd(*shape):
    m = rng.standard_normal(shape)
    return m @ np.swapaxes(m, -1, -2) + shape[-1] * np.eye(shape[-1])


def symmetric(*shape):
    m = rng.standard_normal(shape)
    return m + np.swapaxes(m, -1, -2)


SQ, SQB = square(4, 4), square(2, 3, 3)


@pytest.mark.parametrize(
    "fn, arrays",
    [
        (lambda lib, a: lib.linalg.inv(a), (SQ,)),
        (lambda lib, a: lib.linalg.inv(a), (SQB,)),
        (lambda lib, a: lib.inverse(a), (SQ,)),
        (lambda lib, a: lib.linalg.det(a), (SQ,)),
        (lambda lib, a: a.det(), (SQB,)),
        (lambda lib, a: lib.linalg.slogdet(a), (SQB * np.array([1, -1])[:, None, None],)),
        (lambda lib, a: lib.slogdet(a)[1], (SQ,)),
        (lambda lib, a: lib.logdet(a), (spd(2, 3, 3),)),
        (lambda lib, a: lib.linalg.pinv(a), (rng.standard_normal((5, 3)),)),
        (lambda lib, a: lib.linalg.pinv(a), (rng.standard_normal((2, 3, 5)),)),
        (lambda lib, a: lib.linalg.pinv(a, hermitian=True), (symmetric(4, 4),)),
        (lambda lib, a: lib.pinverse(a), (rng.standard_normal((4, 4)),)),
        (lambda lib, a: lib.linalg.matrix_power(a, 3), (SQ / 3,)),
        (lambda lib, a: lib.linalg.matrix_power(a, -2), (SQB,)),
        (lambda lib, a: a.matrix_power(1), (SQ,)),
        (lambda lib, a: lib.linalg.matrix_power(a, 0), (SQB,)),
    ],
    ids=[
        "inv", "inv batched", "inverse", "det", "det batched", "slogdet", "torch.slogdet",
        "logdet", "pinv tall", "pinv wide batched", "pinv hermitian", "pinverse",
        "matrix_power 3", "matrix_power -2", "matrix_power 1", "matrix_power 0",
    ],
)  # fmt: skip
def test_inverses_and_determinants_match_torch(fn, arrays):
    both(fn, *arrays)


def test_det_gradient_of_a_singular_matrix_is_the_adjugate():
    a = rng.standard_normal((4, 2))
    singular = a @ rng.standard_normal((2, 4))  # rank 2: the adjugate is zero
    rank3 = rng.standard_normal((4, 3)) @ rng.standard_normal((3, 4))  # adjugate of rank 1
    both(lambda lib, a: lib.linalg.det(a), singular, atol=1e-8)
    both(lambda lib, a: lib.linalg.det(a), rank3, atol=1e-8)
    # An exact zero pivot: torch answers 0 here; the adjugate (what shardgrad gives) is
    # d det / d a_33 = 2 * 3.
    exact = sg.tensor(np.diag([2.0, 3.0, 0.0]), requires_grad=True)
    sg.linalg.det(exact).backward()
    np.testing.assert_allclose(_np(exact.grad), np.diag([0.0, 0.0, 6.0]), atol=1e-12)


def test_logdet_is_nan_for_a_negative_determinant():
    a = np.diag([1.0, -2.0, 3.0])
    assert np.isnan(_np(sg.logdet(sg.tensor(a))))
    assert _np(sg.logdet(sg.tensor(np.zeros((2, 2))))) == -np.inf


@pytest.mark.parametrize(
    "fn, arrays",
    [
        (lambda lib, a, b: lib.linalg.solve(a, b), (SQ, rng.standard_normal(4))),
        (lambda lib, a, b: lib.linalg.solve(a, b), (SQ, rng.standard_normal((4, 2)))),
        (lambda lib, a, b: lib.linalg.solve(a, b), (SQB, rng.standard_normal((3, 2)))),
        (lambda lib, a, b: lib.linalg.solve(a, b), (SQB, rng.standard_normal((2, 3)))),
        (lambda lib, a, b: lib.linalg.solve(a, b), (SQ, rng.standard_normal((3, 1, 4, 2)))),
        (lambda lib, a, b: lib.linalg.solve(a, b, left=False), (SQ, rng.standard_normal((2, 4)))),
        (
            lambda lib, a, b: lib.linalg.solve_triangular(a, b, upper=True),
            (SQ, rng.standard_normal((4, 3))),
        ),
        (
            lambda lib, a, b: lib.linalg.solve_triangular(a, b, upper=False, left=False),
            (SQB, rng.standard_normal((2, 3))),
        ),
        (
            lambda lib, a, b: lib.linalg.solve_triangular(a, b, upper=False, unitriangular=True),
            (SQB, rng.standard_normal((2, 3, 2))),
        ),
        (
            lambda lib, a, b: lib.cholesky_solve(b, lib.linalg.cholesky(a)),
            (spd(2, 3, 3), rng.standard_normal((3, 2))),
        ),
        (
            lambda lib, a, b: b.cholesky_solve(lib.linalg.cholesky(a, upper=True), upper=True),
            (spd(3, 3), rng.standard_normal((3, 2))),
        ),
    ],
    ids=[
        "vector", "matrix", "batch broadcast", "batch of vectors", "B batch broadcast",
        "right", "triangular upper", "triangular lower right", "triangular unit",
        "cholesky_solve", "cholesky_solve upper",
    ],
)  # fmt: skip
def test_solve_matches_torch(fn, arrays):
    both(fn, *arrays)


NONSYM = spd(4, 4) + np.triu(rng.standard_normal((4, 4)), 1)  # upper triangle is noise


@pytest.mark.parametrize(
    "fn, arrays",
    [
        (lambda lib, a: lib.linalg.cholesky(a), (spd(4, 4),)),
        (lambda lib, a: lib.linalg.cholesky(a), (spd(2, 3, 3),)),
        (lambda lib, a: lib.linalg.cholesky(a, upper=True), (spd(3, 3),)),
        (lambda lib, a: lib.linalg.cholesky(a), (NONSYM,)),
        (lambda lib, a: a.cholesky(upper=True), (spd(3, 3),)),
        (lambda lib, a: lib.linalg.qr(a), (rng.standard_normal((5, 3)),)),
        (lambda lib, a: lib.linalg.qr(a), (rng.standard_normal((3, 5)),)),
        (lambda lib, a: lib.linalg.qr(a), (rng.standard_normal((2, 4, 4)),)),
        (lambda lib, a: lib.linalg.qr(a, mode="complete"), (rng.standard_normal((3, 5)),)),
        (lambda lib, a: lib.linalg.qr(a)[1], (rng.standard_normal((5, 3)),)),
        (lambda lib, a: lib.linalg.qr(a)[0], (rng.standard_normal((3, 5)),)),
        (lambda lib, a: a.qr(some=False)[1], (rng.standard_normal((4, 4)),)),
    ],
    ids=[
        "cholesky", "cholesky batched", "cholesky upper", "cholesky reads the lower triangle",
        "Tensor.cholesky", "qr tall", "qr wide", "qr batched", "qr complete wide", "qr R only",
        "qr Q only wide", "Tensor.qr",
    ],
)  # fmt: skip
def test_factorizations_match_torch(fn, arrays):
    both(fn, *arrays)


def _eigh_loss(lib, a, uplo="L"):
    w, v = lib.linalg.eigh(a, UPLO=uplo)
    return w, (v * lib.sin(w).unsqueeze(-2)) @ v.mT, v @ v.mT


def _svd_loss(lib, a, full=False):
    u, s, vh = lib.linalg.svd(a, full_matrices=full)
    k = s.shape[-1]
    u, vh = u[..., :k], vh[..., :k, :]
    return s, (u * (s * s).unsqueeze(-2)) @ vh, u @ u.mT, vh.mT @ vh


@pytest.mark.parametrize(
    "fn, arrays",
    [
        (_eigh_loss, (symmetric(4, 4),)),
        (_eigh_loss, (symmetric(2, 3, 3),)),
        (lambda lib, a: _eigh_loss(lib, a, "U"), (rng.standard_normal((4, 4)),)),
        (lambda lib, a: _eigh_loss(lib, a), (rng.standard_normal((4, 4)),)),
        (lambda lib, a: lib.linalg.eigvalsh(a), (symmetric(5, 5),)),
        (_svd_loss, (rng.standard_normal((5, 3)),)),
        (_svd_loss, (rng.standard_normal((3, 5)),)),
        (_svd_loss, (rng.standard_normal((2, 4, 4)),)),
        (lambda lib, a: _svd_loss(lib, a, full=True), (rng.standard_normal((5, 3)),)),
        (lambda lib, a: _svd_loss(lib, a, full=True), (rng.standard_normal((3, 5)),)),
        (lambda lib, a: lib.linalg.svdvals(a), (rng.standard_normal((3, 5)),)),
        (lambda lib, a: lib.linalg.svd(a)[1], (rng.standard_normal((5, 3)),)),
    ],
    ids=[
        "eigh", "eigh batched", "eigh upper triangle", "eigh lower triangle of a general A",
        "eigvalsh", "svd tall", "svd wide", "svd batched", "svd full tall", "svd full wide",
        "svdvals", "svd S only",
    ],
)  # fmt: skip
def test_spectral_decompositions_match_torch(fn, arrays):
    both(fn, *arrays, rtol=1e-6)


def test_torch_svd_returns_v_and_zeros_without_uv():
    a = rng.standard_normal((5, 3))
    u, s, v = sg.svd(sg.tensor(a))
    np.testing.assert_allclose(_np(u) * _np(s) @ _np(v).T, a, atol=1e-12)
    assert tuple(v.shape) == (3, 3)
    u, s, v = sg.svd(sg.tensor(a), some=False, compute_uv=False)
    t = torch.svd(torch.tensor(a), some=False, compute_uv=False)
    assert tuple(u.shape) == tuple(t.U.shape) and not _np(u).any()
    assert tuple(v.shape) == tuple(t.V.shape)
    np.testing.assert_allclose(_np(s), t.S.numpy())


@pytest.mark.parametrize(
    "fn, arrays",
    [
        (lambda lib, a: lib.linalg.inv(a), (SQB,)),
        (lambda lib, a: lib.linalg.det(a), (SQ,)),
        (lambda lib, a: lib.linalg.slogdet(a)[1], (SQ,)),
        (lambda lib, a, b: lib.linalg.solve(a, b), (SQ, rng.standard_normal((4, 2)))),
        (lambda lib, a: lib.linalg.cholesky(a), (spd(3, 3),)),
        (lambda lib, a: lib.linalg.qr(a), (rng.standard_normal((4, 3)),)),
        (_eigh_loss, (symmetric(3, 3),)),
        (_svd_loss, (rng.standard_normal((4, 3)),)),
        (lambda lib, a: lib.linalg.pinv(a), (rng.standard_normal((3, 4)),)),
    ],
    ids=["inv", "det", "slogdet", "solve", "cholesky", "qr", "eigh", "svd", "pinv"],
)
def test_second_derivatives_match_torch(fn, arrays):
    both(fn, *arrays, rtol=1e-6, atol=1e-8, create_graph=True)


@pytest.mark.parametrize(
    "fn, arrays",
    [
        (lambda lib, a: lib.linalg.vector_norm(a), (rng.standard_normal((3, 4)),)),
        (lambda lib, a: lib.linalg.vector_norm(a, 1, dim=1, keepdim=True), (SQ,)),
        (lambda lib, a: lib.linalg.vector_norm(a, float("inf"), dim=(0, 1)), (SQB,)),
        (lambda lib, a: lib.linalg.matrix_norm(a), (SQB,)),
        (lambda lib, a: lib.linalg.matrix_norm(a, "nuc"), (SQB,)),
        (lambda lib, a: lib.linalg.matrix_norm(a, 2), (rng.standard_normal((3, 5)),)),
        (lambda lib, a: lib.linalg.matrix_norm(a, -2), (rng.standard_normal((5, 3)),)),
        (lambda lib, a: lib.linalg.matrix_norm(a, 1, keepdim=True), (SQB,)),
        (lambda lib, a: lib.linalg.matrix_norm(a, -1), (SQB,)),
        (lambda lib, a: lib.linalg.matrix_norm(a, float("inf"), dim=(0, 2)), (SQB,)),
        (lambda lib, a: lib.linalg.matrix_norm(a, -float("inf"), dim=(2, 0)), (SQB,)),
        (lambda lib, a: lib.linalg.norm(a), (SQB,)),
        (lambda lib, a: lib.linalg.norm(a, 3), (rng.standard_normal(5),)),
        (lambda lib, a: lib.linalg.norm(a, "nuc"), (SQ,)),
        (lambda lib, a: lib.linalg.norm(a, dim=(1, 2)), (SQB,)),
        (lambda lib, a: lib.linalg.norm(a, 2, dim=1), (SQB,)),
        (lambda lib, a: a.norm(p="nuc"), (SQ,)),
        (lambda lib, a: lib.norm(a, "nuc", dim=(0, 2), keepdim=True), (SQB,)),
        (lambda lib, a: lib.linalg.cond(a), (SQB,)),
        (lambda lib, a: lib.linalg.cond(a, -2), (rng.standard_normal((3, 5)),)),
    ],
    ids=[
        "vector_norm", "vector_norm 1 dim", "vector_norm inf dims", "matrix_norm fro",
        "matrix_norm nuc", "matrix_norm 2", "matrix_norm -2", "matrix_norm 1 keepdim",
        "matrix_norm -1", "matrix_norm inf dims", "matrix_norm -inf reversed dims", "norm",
        "norm vector ord", "norm nuc", "norm dims fro", "norm 2 dim", "Tensor.norm nuc",
        "torch.norm nuc dims", "cond", "cond -2",
    ],
)  # fmt: skip
def test_norms_match_torch(fn, arrays):
    both(fn, *arrays)


@pytest.mark.parametrize("p", ["fro", "nuc", 1, -1, float("inf"), -float("inf")])
def test_cond_by_matrix_norms_matches_torch(p):
    """Values only: torch's own backward through cond with these norms fails (it edits
    a saved inverse in place), so gradcheck is the oracle for the gradient."""
    a = square(2, 3, 3)
    ours = sg.linalg.cond(sg.tensor(a), p)
    np.testing.assert_allclose(_np(ours), torch.linalg.cond(torch.tensor(a), p).numpy(), rtol=1e-10)
    x = sg.tensor(a, requires_grad=True)
    assert sg.autograd.gradcheck(lambda t: sg.linalg.cond(t, p), (x,))


V3 = rng.standard_normal((2, 3))


@pytest.mark.parametrize(
    "fn, arrays",
    [
        (lambda lib, a, b: lib.linalg.multi_dot([a, b, a.mT]), (SQB[0], SQB[1])),
        (lambda lib, a, b: lib.linalg.multi_dot([a[0], b, a[1]]), (V3, SQB[0])),
        (lambda lib, a, b: lib.linalg.cross(a, b), (V3, V3[::-1] + 1)),
        (lambda lib, a, b: lib.cross(a, b), (V3.T.copy(), V3.T + 0.5)),
        (lambda lib, a, b: a.cross(b, dim=1), (V3, V3[:1])),
        (lambda lib, a, b: lib.linalg.vecdot(a, b), (V3, V3 * 2)),
        (lambda lib, a, b: lib.dist(a, b), (V3, V3[:1])),
        (lambda lib, a, b: a.dist(b, 1), (V3, V3[::-1].copy())),
        (lambda lib, a: lib.linalg.diagonal(a, offset=1), (SQB,)),
        (lambda lib, a, b: lib.linalg.matmul(a, b), (SQB, SQ[:3, :2])),
    ],
    ids=[
        "multi_dot", "multi_dot vectors", "cross", "torch.cross default dim", "cross broadcast",
        "vecdot", "dist", "dist p=1", "diagonal", "matmul",
    ],
)  # fmt: skip
def test_products_match_torch(fn, arrays):
    both(fn, *arrays)


def test_matrix_rank_matches_torch():
    low = rng.standard_normal((3, 5, 2)) @ rng.standard_normal((3, 2, 4))
    for kwargs in ({}, {"atol": 1.0}, {"rtol": 0.5}, {"hermitian": True}):
        a = low @ np.swapaxes(low, -1, -2) if kwargs.get("hermitian") else low
        ours = sg.linalg.matrix_rank(sg.tensor(a), **kwargs)
        theirs = torch.linalg.matrix_rank(torch.tensor(a), **kwargs)
        np.testing.assert_array_equal(_np(ours), theirs.numpy())
        assert ours.dtype == sg.int64


def test_float32_values_match_torch():
    a, pos = square(3, 3).astype(np.float32), spd(3, 3).astype(np.float32)
    for name in ("inv", "det", "cholesky", "svdvals", "eigvalsh"):
        arg = pos if name in ("cholesky", "eigvalsh") else a
        ours = getattr(sg.linalg, name)(sg.tensor(arg))
        theirs = getattr(torch.linalg, name)(torch.tensor(arg))
        assert ours.dtype == sg.float32
        np.testing.assert_allclose(_np(ours), theirs.numpy(), rtol=1e-5, atol=1e-5)


def _errors(fn, *arrays):
    """The exception type and message of fn in both libraries."""
    out = []
    for lib in (sg, torch):
        with pytest.raises(Exception) as info:
            fn(lib, *(lib.tensor(a) for a in arrays))
        out.append((info.value, str(info.value)))
    return out


@pytest.mark.parametrize(
    "fn, arrays",
    [
        (lambda lib, a: lib.linalg.inv(a), (np.ones((3, 2)),)),
        (lambda lib, a: lib.linalg.inv(a), (np.ones(3),)),
        (lambda lib, a: lib.linalg.inv(a), (np.ones((2, 2), dtype=np.int64),)),
        (lambda lib, a: lib.linalg.det(a), (np.ones((3, 2)),)),
        (lambda lib, a: lib.linalg.eigh(a), (np.ones((3, 2)),)),
        (lambda lib, a: lib.linalg.eigh(a, UPLO="X"), (np.eye(2),)),
        (lambda lib, a: lib.linalg.qr(a, mode="x"), (np.eye(2),)),
        (lambda lib, a: lib.linalg.svd(a), (np.ones(3),)),
        (lambda lib, a: lib.linalg.matrix_power(a, 2), (np.ones((3, 2)),)),
        (lambda lib, a: lib.linalg.multi_dot([a]), (np.ones((2, 2)),)),
        (lambda lib, a: lib.linalg.cross(a, a), (np.ones(2),)),
        (lambda lib, a: lib.linalg.matrix_norm(a), (np.ones(3),)),
        (lambda lib, a: lib.linalg.matrix_norm(a, 3), (np.ones((3, 3)),)),
        (lambda lib, a: lib.linalg.norm(a, "fro"), (np.ones((2, 2, 2)),)),
        (lambda lib, a, b: lib.linalg.solve(a, b), (np.eye(3), np.ones(4))),
        (lambda lib, a, b: lib.linalg.solve(a, b), (np.eye(3), np.ones((2, 3)))),
        (lambda lib, a: lib.linalg.cholesky(a), (-np.eye(3),)),
        (lambda lib, a: lib.linalg.cholesky(a), (np.diag([1.0, 2.0, -1.0, 4.0]),)),
        (lambda lib, a: lib.linalg.cholesky(a), (np.stack([np.eye(2), -np.eye(2)]),)),
    ],
    ids=[
        "inv not square", "inv 1-D", "inv integer", "det not square", "eigh not square",
        "eigh UPLO", "qr mode", "svd 1-D", "matrix_power not square", "multi_dot one",
        "cross length", "matrix_norm 1-D", "matrix_norm order", "norm 3-D with ord",
        "solve shapes", "solve matrix shapes", "cholesky not positive-definite",
        "cholesky leading minor", "cholesky batch element",
    ],
)  # fmt: skip
def test_errors_match_torch(fn, arrays):
    (ours, our_msg), (theirs, their_msg) = _errors(fn, *arrays)
    assert our_msg == their_msg
    assert isinstance(ours, RuntimeError) == isinstance(theirs, RuntimeError)
    assert isinstance(ours, sg.linalg.LinAlgError) == isinstance(theirs, torch.linalg.LinAlgError)


@pytest.mark.parametrize(
    "fn",
    [
        lambda lib, a: lib.linalg.inv(a),
        lambda lib, a: lib.linalg.solve(a, a[0]),
    ],
    ids=["inv", "solve"],
)
def test_singular_matrices_raise_linalg_error(fn):
    singular = np.array([[1.0, 2.0], [2.0, 4.0]])
    (ours, msg), (theirs, _) = _errors(fn, singular)
    assert isinstance(ours, sg.linalg.LinAlgError) and isinstance(ours, RuntimeError)
    assert isinstance(theirs, torch.linalg.LinAlgError)
    assert "singular" in msg


def test_singular_batch_element_is_named():
    batch = np.stack([np.eye(2), np.zeros((2, 2)), np.eye(2)])
    with pytest.raises(sg.linalg.LinAlgError, match=r"^linalg.inv: \(Batch element 1\): "):
        sg.linalg.inv(sg.tensor(batch))


@pytest.mark.parametrize(
    "mode, shape, message",
    [
        ("r", (4, 3), "not computed when mode='r'"),
        ("complete", (5, 3), "not differentiable when mode='complete' and nrows > ncols"),
    ],
)
def test_qr_backward_refusals_match_torch(mode, shape, message):
    a = rng.standard_normal(shape)
    for lib in (sg, torch):
        x = lib.tensor(a, requires_grad=True)
        q, r = lib.linalg.qr(x, mode=mode)
        with pytest.raises(RuntimeError, match=message):
            r.sum().backward()
    assert tuple(sg.linalg.qr(sg.tensor(a), mode="r").Q.shape) == (0,)


def test_results_are_named_tuples():
    a = sg.tensor(spd(3, 3))
    assert sg.linalg.eigh(a).eigenvalues.shape == (3,)
    assert sg.linalg.svd(a).Vh.shape == (3, 3)
    assert sg.linalg.qr(a).R.shape == (3, 3)
    assert sg.linalg.slogdet(a).logabsdet.ndim == 0
    assert sg.svd(a).V.shape == (3, 3)
