"""The smaller torch.nn.functional corners against torch: in-place activations, pooling
`*_with_indices`, the deprecated upsample helpers, pdist and gumbel_softmax (statistically,
since the two libraries draw different noise), plus Tensor.hardshrink / prelu /
split_with_sizes, nn.Buffer and NLLLoss2d."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import shardgrad as sg
import shardgrad.nn.functional as F
from tests.conftest import assert_close, pair

RNG = np.random.default_rng(4)


@pytest.mark.parametrize(
    "name, args",
    [
        ("elu_", (0.7,)),
        ("celu_", (1.3,)),
        ("selu_", ()),
        ("leaky_relu_", (0.2,)),
        ("hardtanh_", (-0.5, 0.5)),
        ("threshold_", (0.1, -2.0)),
        ("rrelu_", (0.1, 0.3, False)),
    ],
)
def test_inplace_activations_match_torch(name, args):
    data = RNG.standard_normal((3, 4))
    x, t = sg.tensor(data), torch.tensor(data)
    assert getattr(F, name)(x, *args) is x
    getattr(TF, name)(t, *args)
    assert_close(x, t)
    # on a non-leaf inside a graph: the gradient flows through the rewritten tensor
    (sx, tx) = pair(data)
    ys, yt = sx * 1.5, tx * 1.5
    getattr(F, name)(ys, *args)
    getattr(TF, name)(yt, *args)
    (ys**2).sum().backward()
    (yt**2).sum().backward()
    assert_close(sx.grad, tx.grad)


@pytest.mark.parametrize(
    "name, shape, args",
    [
        ("max_pool1d_with_indices", (2, 3, 9), (3, 2, 1)),
        ("max_pool2d_with_indices", (2, 3, 7, 6), (3, 2, 1)),
        ("adaptive_max_pool1d_with_indices", (2, 3, 9), (4,)),
        ("adaptive_max_pool2d_with_indices", (2, 3, 7, 6), ((3, 2),)),
    ],
)
def test_pooling_with_indices_matches_torch(name, shape, args):
    sx, tx = pair(RNG.standard_normal(shape))
    (sv, si), (tv, ti) = getattr(F, name)(sx, *args), getattr(TF, name)(tx, *args)
    assert_close(sv, tv)
    assert si.tolist() == ti.tolist()
    sv.sum().backward()
    tv.sum().backward()
    assert_close(sx.grad, tx.grad)


@pytest.mark.parametrize("name", ["upsample_nearest", "upsample_bilinear"])
def test_deprecated_upsampling_matches_torch(name):
    sx, tx = pair(RNG.standard_normal((1, 2, 3, 4)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s, t = getattr(F, name)(sx, scale_factor=2), getattr(TF, name)(tx, scale_factor=2)
    assert_close(s, t)
    with pytest.warns(UserWarning, match="deprecated"):
        getattr(F, name)(sx, size=(5, 5))


@pytest.mark.parametrize("p", [0.0, 1.0, 2.0, 3.0, float("inf")])
def test_pdist_matches_torch(p):
    data = RNG.standard_normal((6, 3))
    data[4] = data[1]  # a zero distance: its gradient is 0, not nan
    sx, tx = pair(data)
    s, t = F.pdist(sx, p), TF.pdist(tx, p)
    assert_close(s, t)
    up = RNG.standard_normal(tuple(t.shape))
    s.backward(sg.tensor(up))
    t.backward(torch.tensor(up))
    assert_close(sx.grad, tx.grad)


def test_pdist_refuses_what_torch_refuses():
    with pytest.raises(RuntimeError, match="2D"):
        F.pdist(sg.ones(3))
    with pytest.raises(RuntimeError, match="non-negative"):
        F.pdist(sg.ones(3, 2), -1.0)


def test_gumbel_softmax_hard_is_one_hot_with_the_soft_gradient():
    logits = sg.tensor(RNG.standard_normal((5, 4)), requires_grad=True)
    weights = sg.tensor(RNG.standard_normal((5, 4)))
    sg.manual_seed(3)
    soft = F.gumbel_softmax(logits, tau=0.5)
    (soft * weights).sum().backward()
    soft_grad = logits.grad.clone()
    logits.grad = None
    sg.manual_seed(3)  # the same noise again
    hard = F.gumbel_softmax(logits, tau=0.5, hard=True)
    (hard * weights).sum().backward()
    assert_close(soft.sum(-1), np.ones(5))
    assert hard.tolist() == F.one_hot(soft.argmax(-1), 4).double().tolist()
    assert_close(logits.grad, soft_grad)


def test_gumbel_softmax_draws_classes_with_softmax_probabilities():
    """The Gumbel-max trick: the hard sample's class has probability softmax(logits)."""
    logits = sg.tensor([1.0, 0.0, -1.0, 2.0])
    sg.manual_seed(0)
    draws = F.gumbel_softmax(logits.expand(20000, 4), hard=True, dim=-1)
    freq = draws.mean(0).numpy()
    want = torch.softmax(torch.tensor([1.0, 0.0, -1.0, 2.0]), 0).numpy()
    assert np.abs(freq - want).max() < 0.015


def test_tensor_methods_match_torch():
    data = RNG.standard_normal((3, 5))
    s, t = sg.tensor(data), torch.tensor(data)
    assert_close(s.hardshrink(0.4), t.hardshrink(0.4))
    w = RNG.uniform(0, 0.5, 5)  # one per channel (dim 1)
    assert_close(s.prelu(sg.tensor(w)), t.prelu(torch.tensor(w)))
    one = np.array([0.2])
    assert_close(sg.prelu(s, sg.tensor(one)), torch.prelu(t, torch.tensor(one)))
    for a, b in zip(s.split_with_sizes([2, 0, 3], 1), t.split_with_sizes([2, 0, 3], 1)):
        assert_close(a, b)
    with pytest.raises(RuntimeError, match="sum exactly to 5"):
        s.split_with_sizes([2, 2], 1)


def test_buffer_assignment_registers_a_buffer():
    class Counter(sg.nn.Module):
        def __init__(self):
            super().__init__()
            self.total = sg.nn.Buffer(sg.zeros(2))
            self.scratch = sg.nn.Buffer(sg.ones(3), persistent=False)

    m = Counter()
    assert [n for n, _ in m.named_buffers()] == ["total", "scratch"]
    assert list(m.state_dict()) == ["total"]
    assert list(m.parameters()) == []
    m.total.add_(1.0)
    m.load_state_dict({"total": sg.tensor([5.0, 6.0])})
    assert m.total.tolist() == [5.0, 6.0]
    with pytest.raises(TypeError, match="must be a Tensor"):
        sg.nn.Buffer([1.0, 2.0])


@pytest.mark.filterwarnings("ignore:`NLLLoss2d` has been deprecated")
def test_nllloss2d_is_nllloss_on_images():
    logp = RNG.standard_normal((2, 3, 4, 4))
    target = RNG.integers(0, 3, (2, 4, 4))
    with pytest.warns(FutureWarning, match="deprecated"):
        loss = sg.nn.NLLLoss2d()
    s = loss(sg.tensor(logp), sg.tensor(target))
    t = torch.nn.NLLLoss2d()(torch.tensor(logp), torch.tensor(target))
    assert_close(s, t)


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("silu", {}),
        ("mish", {}),
        ("hardsigmoid", {}),
        ("hardswish", {}),
        ("relu6", {}),
        ("elu", {"alpha": 0.5}),
        ("celu", {"alpha": 0.5}),
        ("threshold", {"threshold": 0.2, "value": 1.0}),
        ("alpha_dropout", {"p": 0.3, "training": False}),
    ],
)
def test_inplace_keyword_matches_torch_through_the_graph(name, kwargs):
    """inplace=True rewrites the tensor and keeps the gradient right, even though the
    activation's backward reads the value the write replaced."""
    data = RNG.standard_normal((4, 3))
    sx, tx = pair(data)
    ys, yt = sx * 2.0, tx * 2.0
    assert getattr(F, name)(ys, inplace=True, **kwargs) is ys
    getattr(TF, name)(yt, inplace=True, **kwargs)
    assert_close(ys, yt)
    (ys * ys).sum().backward()
    (yt * yt).sum().backward()
    assert_close(sx.grad, tx.grad)
    assert ys._version == 1


def test_inplace_activation_on_a_leaf_that_requires_grad_is_refused():
    x = sg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        F.elu(x, inplace=True)
