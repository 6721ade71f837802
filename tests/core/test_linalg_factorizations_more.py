"""LU and its family, the `_ex` variants, matrix_exp, lstsq, geqrf / householder_product and
the small compositions (vander, tensorinv, tensorsolve, cholesky_inverse), against torch:
values, the auxiliary results (pivots, info, rank, residuals), and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shardgrad as sg
from tests.conftest import assert_close, pair, to_numpy

RNG = np.random.default_rng(21)


def _grads_match(fn_s, fn_t, *arrays, rtol=1e-6):
    """fn(lib, *tensors) -> Tensor or tuple; compare values and input gradients."""
    pairs = [pair(a) for a in arrays]
    s_out, t_out = fn_s(*(p[0] for p in pairs)), fn_t(*(p[1] for p in pairs))
    s_outs = s_out if isinstance(s_out, (tuple, list)) else (s_out,)
    t_outs = t_out if isinstance(t_out, (tuple, list)) else (t_out,)
    s_total, t_total = 0, 0
    for k, (s, t) in enumerate(zip(s_outs, t_outs)):
        assert_close(s, t.detach(), rtol=rtol)
        if t.dtype.is_floating_point and t.requires_grad:
            up = np.random.default_rng(k).standard_normal(tuple(t.shape))
            s_total = s_total + (s * sg.tensor(up)).sum()
            t_total = t_total + (t * torch.tensor(up)).sum()
    s_total.backward()
    t_total.backward()
    for s_in, t_in in pairs:
        assert_close(s_in.grad, t_in.grad, rtol=rtol)


# ---------------------------------------------------------------- LU
@pytest.mark.parametrize("shape", [(4, 4), (3, 5, 5), (2, 1, 3, 3)])
def test_lu_factor_and_lu_match_torch_with_gradients(shape):
    a = RNG.standard_normal(shape)
    s, t = sg.linalg.lu_factor(sg.tensor(a)), torch.linalg.lu_factor(torch.tensor(a))
    assert s.pivots.tolist() == t.pivots.tolist() and s.pivots.dtype == sg.int32
    _grads_match(lambda x: sg.linalg.lu_factor(x).LU, lambda x: torch.linalg.lu_factor(x).LU, a)
    _grads_match(lambda x: tuple(sg.linalg.lu(x)), lambda x: tuple(torch.linalg.lu(x)), a)


@pytest.mark.parametrize("shape", [(3, 5), (5, 3)])
def test_rectangular_lu_matches_torch(shape):
    a = RNG.standard_normal(shape)
    for s, t in zip(sg.linalg.lu(sg.tensor(a)), torch.linalg.lu(torch.tensor(a))):
        assert_close(s, t)
    s, t = sg.linalg.lu_factor(sg.tensor(a)), torch.linalg.lu_factor(torch.tensor(a))
    assert_close(s.LU, t.LU)
    assert s.pivots.tolist() == t.pivots.tolist()


@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("adjoint", [False, True])
def test_lu_solve_matches_torch_with_gradients(left, adjoint):
    a = RNG.standard_normal((2, 4, 4))
    b = RNG.standard_normal((2, 4, 3) if left else (2, 3, 4))

    def run(lib):
        def fn(x, y):
            lu, piv = lib.linalg.lu_factor(x)
            return lib.linalg.lu_solve(lu, piv, y, left=left, adjoint=adjoint)

        return fn

    _grads_match(run(sg), run(torch), a, b)


def test_old_lu_spellings_match_torch():
    a, b = RNG.standard_normal((3, 3)), RNG.standard_normal((3, 2))
    s_lu, s_piv, s_info = sg.lu(sg.tensor(a), get_infos=True)
    t_lu, t_piv, t_info = torch.lu(torch.tensor(a), get_infos=True)
    assert_close(s_lu, t_lu)
    assert s_info.tolist() == t_info.tolist() == 0
    assert_close(
        sg.lu_solve(sg.tensor(b), s_lu, s_piv), torch.lu_solve(torch.tensor(b), t_lu, t_piv)
    )
    for s, t in zip(sg.lu_unpack(s_lu, s_piv), torch.lu_unpack(t_lu, t_piv)):
        assert_close(s, t)
    assert_close(sg.tensor(a).lu()[0], torch.tensor(a).lu()[0])


def test_singular_matrices_report_their_first_zero_pivot():
    a = RNG.standard_normal((3, 3, 3))
    a[1] = 0.0
    a[1, 0, 0] = 1.0  # pivot 2 is the first zero
    s = sg.linalg.lu_factor_ex(sg.tensor(a))
    t = torch.linalg.lu_factor_ex(torch.tensor(a))
    assert s.info.tolist() == t.info.tolist() == [0, 2, 0]
    with pytest.raises(sg.linalg.LinAlgError, match=r"Batch element 1.*U\[2,2\] is zero"):
        sg.linalg.lu_factor_ex(sg.tensor(a), check_errors=True)


# ---------------------------------------------------------------- _ex variants
def test_ex_variants_report_failures_in_info():
    a = RNG.standard_normal((3, 3, 3))
    spd = a @ a.transpose(0, 2, 1) + 3 * np.eye(3)
    singular = spd.copy()
    singular[1] = 0.0
    singular[1, 0, 0] = 1.0
    b = RNG.standard_normal((3, 3, 2))
    for name, args in (("inv_ex", ()), ("cholesky_ex", ()), ("solve_ex", (b,))):
        for m in (spd, singular):
            s = getattr(sg.linalg, name)(sg.tensor(m), *map(sg.tensor, args))
            t = getattr(torch.linalg, name)(torch.tensor(m), *map(torch.tensor, args))
            assert s.info.tolist() == t.info.tolist()
            ok = to_numpy(t.info) == 0
            assert_close(to_numpy(s[0])[ok], to_numpy(t[0])[ok])
            assert np.isnan(to_numpy(s[0])[~ok]).all()
        with pytest.raises(sg.linalg.LinAlgError):
            getattr(sg.linalg, name)(sg.tensor(singular), *map(sg.tensor, args), check_errors=True)


def test_ex_variant_of_good_matrices_is_differentiable():
    a = RNG.standard_normal((2, 3, 3)) + 3 * np.eye(3)
    _grads_match(lambda x: sg.linalg.inv_ex(x).inverse, lambda x: torch.linalg.inv_ex(x).inverse, a)


# ---------------------------------------------------------------- matrix_exp
@pytest.mark.parametrize("scale", [1e-3, 0.2, 1.0, 4.0, 40.0])
def test_matrix_exp_matches_torch_with_gradients(scale):
    a = RNG.standard_normal((2, 4, 4)) * scale
    _grads_match(sg.linalg.matrix_exp, torch.linalg.matrix_exp, a, rtol=1e-9)


def test_matrix_exp_of_commuting_and_special_matrices():
    d = np.diag([0.5, -1.0, 2.0])
    assert_close(sg.linalg.matrix_exp(sg.tensor(d)), np.diag(np.exp([0.5, -1.0, 2.0])))
    rot = np.array([[0.0, -np.pi / 2], [np.pi / 2, 0.0]])  # a quarter turn
    assert_close(sg.tensor(rot).matrix_exp(), np.array([[0.0, -1.0], [1.0, 0.0]]), atol=1e-12)
    assert_close(sg.matrix_exp(sg.tensor([[2.0]])), np.array([[np.exp(2.0)]]))
    x = sg.tensor(RNG.standard_normal((3, 3)), requires_grad=True)
    assert sg.autograd.gradgradcheck(sg.linalg.matrix_exp, (x,))


# ---------------------------------------------------------------- lstsq
CUDA_HAS_GELS_ONLY = pytest.mark.torch_cpu_oracle  # shardgrad's GPU runs every driver


@pytest.mark.parametrize(
    "driver",
    [
        None,
        "gels",
        *(pytest.param(d, marks=CUDA_HAS_GELS_ONLY) for d in ("gelsy", "gelsd", "gelss")),
    ],
)
@pytest.mark.parametrize("shape", [(2, 6, 3), (4, 5)])
def test_lstsq_matches_torch(driver, shape):
    a = RNG.standard_normal(shape)
    b = RNG.standard_normal(shape[:-1] + (2,))
    s = sg.linalg.lstsq(sg.tensor(a), sg.tensor(b), driver=driver)
    # the default is gels on a GPU, gelsy on the CPU (torch's may run on either)
    t_driver = driver or ("gels" if s.solution.device.type == "cuda" else "gelsy")
    t = torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), driver=t_driver)
    for name in ("solution", "residuals", "rank", "singular_values"):
        assert_close(getattr(s, name), getattr(t, name))
    _grads_match(
        lambda x, y: sg.linalg.lstsq(x, y, driver=driver).solution,
        lambda x, y: torch.linalg.lstsq(x, y, driver=t_driver).solution,
        a,
        b,
    )


def test_lstsq_rank_deficient_gives_the_minimum_norm_solution():
    a = RNG.standard_normal((6, 3))
    a[:, 2] = a[:, 1]
    b = RNG.standard_normal((6, 1))
    s = sg.linalg.lstsq(sg.tensor(a), sg.tensor(b), driver="gelsd")
    t = torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), driver="gelsd")
    assert_close(s.solution, t.solution)
    assert int(s.rank) == int(t.rank) == 2
    assert s.residuals.numel() == t.residuals.numel() == 0


# ---------------------------------------------------------------- QR pieces and compositions
def test_geqrf_and_householder_product_match_torch():
    a = RNG.standard_normal((2, 5, 3))
    s_h, s_tau = sg.geqrf(sg.tensor(a))
    t_h, t_tau = torch.geqrf(torch.tensor(a))
    assert_close(s_h, t_h)
    assert_close(s_tau, t_tau)
    _grads_match(
        sg.linalg.householder_product, torch.linalg.householder_product, t_h.numpy(), t_tau.numpy()
    )


def test_vander_tensorinv_tensorsolve_cholesky_inverse_match_torch():
    _grads_match(
        lambda x: sg.linalg.vander(x, N=4),
        lambda x: torch.linalg.vander(x, N=4),
        RNG.standard_normal((2, 3)),
    )
    _grads_match(
        lambda x: sg.linalg.tensorinv(x, ind=2),
        lambda x: torch.linalg.tensorinv(x, ind=2),
        RNG.standard_normal((4, 6, 8, 3)),
    )
    _grads_match(
        sg.linalg.tensorsolve,
        torch.linalg.tensorsolve,
        RNG.standard_normal((2, 3, 6)),
        RNG.standard_normal((2, 3)),
    )
    # cholesky_inverse reads one triangle of its factor. torch's backward also sends gradient
    # to the other triangle, which its forward never reads; here that part gets zero.
    low = np.linalg.cholesky(
        RNG.standard_normal((3, 3)) @ RNG.standard_normal((3, 3)).T + 3 * np.eye(3)
    )
    for upper in (False, True):
        factor = low.T if upper else low
        s, t = pair(factor)
        s_out, t_out = sg.cholesky_inverse(s, upper), torch.cholesky_inverse(t, upper)
        assert_close(s_out, t_out.detach())
        up = RNG.standard_normal((3, 3))
        (s_out * sg.tensor(up)).sum().backward()
        (t_out * torch.tensor(up)).sum().backward()
        read = np.triu(np.ones((3, 3))) if upper else np.tril(np.ones((3, 3)))
        assert_close(s.grad.numpy() * read, t.grad.numpy() * read)
        assert not (s.grad.numpy() * (1 - read)).any()
