"""Finite-difference checks of the fused nn ops: first derivatives (gradcheck) and the
derivatives of their backward formulas (gradgradcheck), in float64."""

from __future__ import annotations

import numpy as np
import pytest

import shardgrad as sg
from shardgrad.autograd import gradcheck, gradgradcheck

F = sg.nn.functional
rng = np.random.default_rng(11)


def _t(shape, lo=None, hi=None):
    a = rng.uniform(lo, hi, shape) if lo is not None else rng.standard_normal(shape)
    return sg.tensor(a, requires_grad=True)


def _away_from_zero(shape):
    a = rng.standard_normal(shape)
    return sg.tensor(a + 0.2 * np.sign(a), requires_grad=True)


TARGET = sg.tensor(rng.integers(0, 4, 5))
PROBS = sg.tensor(rng.dirichlet(np.ones(4), 5))
CLASS_W = sg.tensor(rng.random(4) + 0.5)
POS_W = sg.tensor(rng.random(4) + 0.5)
CASES = [
    ("softmax", lambda x: F.softmax(x, 1), [(5, 4)]),
    ("log_softmax", lambda x: F.log_softmax(x, 0), [(5, 4)]),
    ("gelu", lambda x: F.gelu(x), [(3, 4)]),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), [(3, 4)]),
    ("silu", lambda x: F.silu(x), [(3, 4)]),
    ("logsigmoid", lambda x: F.logsigmoid(x), [(3, 4)]),
    ("softplus", lambda x: F.softplus(x, beta=1.5), [(3, 4)]),
    ("cross_entropy", lambda x: F.cross_entropy(x, TARGET), [(5, 4)]),
    (
        "cross_entropy_smooth_w",
        lambda x: F.cross_entropy(x, TARGET, weight=CLASS_W, label_smoothing=0.1),
        [(5, 4)],
    ),
    ("cross_entropy_probs", lambda x: F.cross_entropy(x, PROBS), [(5, 4)]),
    ("nll", lambda x: F.nll_loss(x, TARGET, reduction="sum"), [(5, 4)]),
    ("mse", lambda x, y: F.mse_loss(x, y), [(3, 4), (3, 4)]),
    ("smooth_l1", lambda x, y: F.smooth_l1_loss(x, y, beta=0.7), [(3, 4), (3, 4)]),
    ("huber", lambda x, y: F.huber_loss(x, y, delta=0.7), [(3, 4), (3, 4)]),
    ("normalize", lambda x: F.normalize(x, p=3.0, dim=1), [(3, 4)]),
    (
        "bce_with_logits",
        lambda x, y: F.binary_cross_entropy_with_logits(x, y, pos_weight=POS_W),
        [(3, 4), (3, 4)],
    ),
    ("layer_norm", lambda x, w, b: F.layer_norm(x, (4,), w, b), [(3, 4), (4,), (4,)]),
    ("group_norm", lambda x: F.group_norm(x, 2), [(2, 4, 3)]),
    (
        "batch_norm_train",
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        [(4, 3, 2), (3,), (3,)],
    ),
    (
        "conv2d",
        lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
        [(2, 2, 5, 5), (3, 2, 3, 3), (3,)],
    ),
    (
        "conv_transpose2d",
        lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
        [(2, 2, 3, 3), (2, 3, 3, 3), (3,)],
    ),
    (
        "conv2d_groups_dilation",
        lambda x, w: F.conv2d(x, w, padding="same", dilation=2, groups=2),
        [(1, 4, 5, 5), (2, 2, 2, 3)],
    ),
    (
        "avg_pool2d",
        lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
        [(1, 2, 6, 5)],
    ),
    ("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, (3, 2)), [(1, 2, 5, 5)]),
    ("pad_reflect", lambda x: F.pad(x, (1, 2), mode="reflect"), [(2, 4)]),
    ("pad_constant", lambda x: F.pad(x, (1, -1, 2, 0), value=0.3), [(2, 4)]),
]


@pytest.mark.parametrize("fn,shapes", [(f, s) for _, f, s in CASES], ids=[c[0] for c in CASES])
def test_gradcheck_and_gradgradcheck(fn, shapes):
    inputs = [_t(s) for s in shapes]
    assert gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)
    assert gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_bce_gradgradcheck():
    x, y = _t((3, 4), 0.1, 0.9), _t((3, 4), 0.0, 1.0)
    fn = lambda a, b: F.binary_cross_entropy(a, b)  # noqa: E731
    assert gradcheck(fn, [x, y], eps=1e-6, atol=1e-5, rtol=1e-4)
    assert gradgradcheck(fn, [x, y], eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)]
)
def test_max_pool_gradcheck(kw):
    # distinct values keep every window's maximum unique, so finite differences are exact
    x = sg.tensor(rng.permutation(72).reshape(1, 2, 6, 6) / 7.0, requires_grad=True)
    fn = lambda a: F.max_pool2d(a, **kw)  # noqa: E731
    assert gradcheck(fn, [x], eps=1e-6, atol=1e-5, rtol=1e-4)
    assert gradgradcheck(fn, [x], eps=1e-6, atol=1e-5, rtol=1e-4)


def test_activation_kinks_gradcheck():
    x = _away_from_zero((3, 4))
    for fn in (
        F.relu,
        lambda a: F.leaky_relu(a, 0.2),
        lambda a: F.elu(a, 0.5),
        lambda a: F.hardtanh(a, -0.5, 0.5),
    ):
        assert gradcheck(fn, [x], eps=1e-6, atol=1e-5, rtol=1e-4)
        assert gradgradcheck(fn, [x], eps=1e-6, atol=1e-5, rtol=1e-4)


def test_embedding_gradgradcheck():
    # (padding_idx and scale_grad_by_freq change the gradient on purpose; torch tests those)
    idx = sg.tensor([[0, 2, 2], [1, 0, 3]])
    w = _t((4, 3))
    fn = lambda weight: F.embedding(idx, weight) ** 2  # noqa: E731
    assert gradcheck(fn, [w], eps=1e-6, atol=1e-5, rtol=1e-4)
    assert gradgradcheck(fn, [w], eps=1e-6, atol=1e-5, rtol=1e-4)


def test_dropout_mask_is_fixed_for_gradcheck():
    sg.manual_seed(3)
    x = _t((4, 5))
    y = F.dropout(x, 0.4)
    g = sg.tensor(rng.standard_normal((4, 5)))
    (gx,) = sg.autograd.grad(y, x, g, create_graph=True)
    mask = y.detach().numpy() / x.detach().numpy()
    np.testing.assert_allclose(gx.detach().numpy(), g.numpy() * mask, rtol=1e-12)


def test_double_backward_through_conv_net_matches_torch():
    """Gradient-penalty style: d/dparams of ||d loss / d x||^2 through conv, pool and norm."""
    import torch

    def net(nn):
        return nn.Sequential(
            nn.Conv2d(2, 3, 3, padding=1),
            nn.Tanh(),
            nn.AvgPool2d(2),
            nn.Flatten(),
            nn.Linear(12, 2),
        )

    s, t = net(sg.nn).double(), net(torch.nn).double()
    s.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    x = rng.standard_normal((2, 2, 4, 4))
    xs, xt = sg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (gs,) = sg.autograd.grad(s(xs).pow(2).sum(), xs, create_graph=True)
    (gt,) = torch.autograd.grad(t(xt).pow(2).sum(), xt, create_graph=True)
    (gs * gs).sum().backward()
    (gt * gt).sum().backward()
    for ps, pt in zip(s.parameters(), t.parameters()):
        np.testing.assert_allclose(ps.grad.numpy(), pt.grad.numpy(), rtol=1e-6, atol=1e-9)
