"""inf, nan, signed zeros and overflow, against torch.

The values torch gives (forward and gradient) are the oracle, and they arrive silently, as in
torch: no numpy RuntimeWarning from an op's forward, a backward pass, an in-place op or an
optimizer step, and a caller's own numpy error state is left as it was.

Left out on purpose, where torch answers differently depending on how its CPU kernels vectorise
(a nan at a position its SIMD loop covers gets one answer, in the scalar tail another): the
gradients of hardtanh, relu6 and elu at nan, and float32 gelu at +inf (nan in torch, inf here).
cumprod's gradient where zeros meet infinities in one slice is not matched either.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import shardgrad as sg

# zero, a negative, the infinities, nan, values whose exp, square or product overflows, and one
# whose square underflows to zero
SPECIAL = np.array([0.0, -1.0, 2.0, np.inf, -np.inf, np.nan, 1e38, -1e38, 1e-30], np.float32)

UNARY = {
    "reciprocal": lambda lib, x: x.reciprocal(),
    "log": lambda lib, x: x.log(),
    "log2": lambda lib, x: x.log2(),
    "log1p": lambda lib, x: x.log1p(),
    "sqrt": lambda lib, x: x.sqrt(),
    "rsqrt": lambda lib, x: x.rsqrt(),
    "exp": lambda lib, x: x.exp(),
    "square": lambda lib, x: x * x,
    "div by zero": lambda lib, x: x / 0.0,
    "zero over x": lambda lib, x: lib.zeros_like(x) / x,
    "pow -1.5": lambda lib, x: x**-1.5,
    "acos": lambda lib, x: x.acos(),
    "tanh": lambda lib, x: x.tanh(),
    "sigmoid": lambda lib, x: x.sigmoid(),
    "softplus": lambda lib, x: lib.nn.functional.softplus(x),
    "log_softmax": lambda lib, x: lib.nn.functional.log_softmax(x, dim=0),
}


def _values(t) -> np.ndarray:
    return np.asarray(t.detach().numpy(), dtype=np.float64)


@pytest.fixture
def warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.usefixtures("warnings_are_errors")
@pytest.mark.parametrize("name", sorted(UNARY))
def test_special_values_pass_silently_forward_and_backward(name):
    fn = UNARY[name]
    x_sg = sg.tensor(SPECIAL, requires_grad=True)
    x_th = torch.tensor(SPECIAL, requires_grad=True)
    y_sg, y_th = fn(sg, x_sg), fn(torch, x_th)
    np.testing.assert_allclose(_values(y_sg), _values(y_th), rtol=1e-5, equal_nan=True)
    y_sg.sum().backward()
    y_th.sum().backward()
    np.testing.assert_allclose(_values(x_sg.grad), _values(x_th.grad), rtol=1e-5, equal_nan=True)


@pytest.mark.usefixtures("warnings_are_errors")
def test_second_order_gradients_through_special_values_are_silent():
    x_sg = sg.tensor(SPECIAL, requires_grad=True)
    x_th = torch.tensor(SPECIAL, requires_grad=True)
    (g_sg,) = sg.autograd.grad(x_sg.reciprocal().sum(), x_sg, create_graph=True)
    (g_th,) = torch.autograd.grad(x_th.reciprocal().sum(), x_th, create_graph=True)
    (h_sg,) = sg.autograd.grad(g_sg.sum(), x_sg)
    (h_th,) = torch.autograd.grad(g_th.sum(), x_th)
    np.testing.assert_allclose(_values(h_sg), _values(h_th), rtol=1e-5, equal_nan=True)


@pytest.mark.usefixtures("warnings_are_errors")
@pytest.mark.parametrize(
    "op",
    [
        lambda t: t.div_(0.0),
        lambda t: t.mul_(1e38).mul_(1e38),
        lambda t: t.pow_(-2),
        lambda t: t.log_(),
    ],
    ids=["div_", "mul_ overflow", "pow_", "log_"],
)
def test_in_place_ops_are_silent(op):
    a_sg, a_th = sg.tensor(SPECIAL.copy()), torch.tensor(SPECIAL.copy())
    op(a_sg)
    op(a_th)
    np.testing.assert_allclose(_values(a_sg), _values(a_th), rtol=1e-5, equal_nan=True)


@pytest.mark.usefixtures("warnings_are_errors")
@pytest.mark.parametrize("opt_name", ["SGD", "Adam", "RMSprop", "Adagrad"])
def test_an_optimizer_step_with_inf_and_nan_gradients_is_silent(opt_name):
    kwargs = {"lr": 0.1, "momentum": 0.9} if opt_name == "SGD" else {"lr": 0.1}
    grad = np.array([np.inf, -np.inf, np.nan, 1e38, 0.0], np.float32)
    results = []
    for lib in (sg, torch):
        p = lib.nn.Parameter(lib.ones(5))
        opt = getattr(lib.optim, opt_name)([p], **kwargs)
        for _ in range(2):
            p.grad = lib.tensor(grad.copy())
            opt.step()
        results.append(_values(p))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, equal_nan=True)


def test_a_callers_numpy_error_state_is_restored_after_each_op():
    zero = sg.zeros(3, requires_grad=True)
    with np.errstate(divide="raise"):
        y = zero.log()  # torch's answer, -inf, not numpy's FloatingPointError
        y.sum().backward()
        zero.detach().div_(0.0)
        with pytest.raises(FloatingPointError):
            np.log(np.zeros(3))  # the caller's own numpy code still raises
    assert np.isneginf(_values(y)).all()
    assert np.geterr()["divide"] == "warn"


# Two rows of special values per operand, paired against each other in every combination
A = np.stack([SPECIAL, SPECIAL[::-1], np.roll(SPECIAL, 3)]).astype(np.float64)
B = np.stack([np.roll(SPECIAL, 5), SPECIAL, SPECIAL[::-1]]).astype(np.float64)


def _f(lib):
    return lib.nn.functional


BINARY = {
    "add": lambda lib, a, b: a + b,
    "mul": lambda lib, a, b: a * b,
    "div": lambda lib, a, b: a / b,
    "pow": lambda lib, a, b: a**b,
    "maximum": lambda lib, a, b: lib.maximum(a, b),
    "atan2": lambda lib, a, b: lib.atan2(a, b),
    "where": lambda lib, a, b: lib.where(a > b, a, b),
    "matmul": lambda lib, a, b: a @ b.T,
    "sum": lambda lib, a, b: a.sum(1),
    "max": lambda lib, a, b: a.max(1)[0],
    "amin": lambda lib, a, b: a.amin(0),
    "prod over a dim": lambda lib, a, b: a.prod(1),
    "prod of all": lambda lib, a, b: a.prod(),
    "norm p=1": lambda lib, a, b: a.norm(p=1, dim=1),
    "norm p=2": lambda lib, a, b: a.norm(dim=1),
    "logsumexp": lambda lib, a, b: lib.logsumexp(a, 1),
    "std": lambda lib, a, b: a.std(1),
    "cumsum": lambda lib, a, b: a.cumsum(1),
    "sort": lambda lib, a, b: a.sort(1)[0],
    "relu": lambda lib, a, b: lib.relu(a),
    "F.relu": lambda lib, a, b: _f(lib).relu(a),
    "softmax": lambda lib, a, b: _f(lib).softmax(a, 1),
    "log_softmax": lambda lib, a, b: _f(lib).log_softmax(a, 1),
    "silu": lambda lib, a, b: _f(lib).silu(a),
    "leaky_relu": lambda lib, a, b: _f(lib).leaky_relu(a, 0.1),
    "layer_norm": lambda lib, a, b: _f(lib).layer_norm(a, (a.shape[1],)),
    "normalize": lambda lib, a, b: _f(lib).normalize(a, dim=1),
    "mse_loss": lambda lib, a, b: _f(lib).mse_loss(a, b),
    "l1_loss": lambda lib, a, b: _f(lib).l1_loss(a, b),
    "smooth_l1_loss": lambda lib, a, b: _f(lib).smooth_l1_loss(a, b, beta=0.5),
    "huber_loss": lambda lib, a, b: _f(lib).huber_loss(a, b, delta=0.5),
    "bce_with_logits": lambda lib, a, b: _f(lib).binary_cross_entropy_with_logits(
        a, (b > 0).to(a.dtype)
    ),
    "cross_entropy": lambda lib, a, b: _f(lib).cross_entropy(a, lib.tensor([0, 5, 8])),
}


@pytest.mark.usefixtures("warnings_are_errors")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(BINARY))
def test_special_values_in_binary_ops_reductions_and_losses_match_torch(name, dtype):
    if name == "atan2" and dtype == np.float32:
        # a*a + b*b underflows to 0 at 1e-30 in float32; torch and shardgrad then disagree on
        # which of 0, inf and nan to report, and neither is the true 1e30
        pytest.skip("float32 atan2 gradient at an underflowing a*a + b*b")
    fn = BINARY[name]
    s_in = [sg.tensor(v.astype(dtype), requires_grad=True) for v in (A, B)]
    t_in = [torch.tensor(v.astype(dtype), requires_grad=True) for v in (A, B)]
    y_sg, y_th = fn(sg, *s_in), fn(torch, *t_in)
    np.testing.assert_allclose(_values(y_sg), _values(y_th), rtol=1e-5, equal_nan=True)
    y_sg.sum().backward()
    y_th.sum().backward()
    for s, t in zip(s_in, t_in):
        if t.grad is None:  # torch's unused input: shardgrad's is None or all zeros
            assert s.grad is None or not _values(s.grad).any()
            continue
        np.testing.assert_allclose(_values(s.grad), _values(t.grad), rtol=1e-5, equal_nan=True)
