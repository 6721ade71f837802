"""nn.init distributions and fan rules against torch's, default layer initialisation, and
nn.utils (gradient clipping, flat vectors) against torch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _nn_helpers import close

import shardgrad as sg

init = sg.nn.init


def _stats(t):
    a = t.detach().numpy().astype(np.float64).ravel()
    return a.mean(), a.std(), a.min(), a.max()


@pytest.mark.parametrize(
    "nonlin,param",
    [
        ("linear", None),
        ("conv2d", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
        ("selu", None),
    ],
)
def test_calculate_gain_matches_torch(nonlin, param):
    assert init.calculate_gain(nonlin, param) == pytest.approx(
        torch.nn.init.calculate_gain(nonlin, param)
    )


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="Fan in and fan out can not be computed"):
        init.xavier_uniform_(sg.empty(5))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(sg.empty(3, 4), mode="fan_avg")


@pytest.mark.parametrize("shape", [(64, 32), (32, 16, 3, 3)])
def test_fans_match_torch(shape):
    assert init._calculate_fan_in_and_fan_out(
        sg.empty(*shape)
    ) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))


# (name, call on (init module, tensor), expected mean, std and bounds as functions of fans)
SHAPE = (400, 300, 3)
FAN_IN, FAN_OUT = 300 * 3, 400 * 3
DISTS = [
    ("uniform", lambda I, t: I.uniform_(t, -2.0, 3.0), 0.5, 5 / math.sqrt(12), (-2.0, 3.0)),
    ("normal", lambda I, t: I.normal_(t, 1.5, 0.5), 1.5, 0.5, None),
    (
        "xavier_uniform",
        lambda I, t: I.xavier_uniform_(t, gain=2.0),
        0.0,
        2.0 * math.sqrt(2 / (FAN_IN + FAN_OUT)),
        (-2.0 * math.sqrt(6 / (FAN_IN + FAN_OUT)),) * 1
        + (2.0 * math.sqrt(6 / (FAN_IN + FAN_OUT)),),
    ),
    (
        "xavier_normal",
        lambda I, t: I.xavier_normal_(t),
        0.0,
        math.sqrt(2 / (FAN_IN + FAN_OUT)),
        None,
    ),
    (
        "kaiming_uniform",
        lambda I, t: I.kaiming_uniform_(t, a=math.sqrt(5)),
        0.0,
        math.sqrt(2 / 6) / math.sqrt(FAN_IN),
        (-math.sqrt(1 / FAN_IN), math.sqrt(1 / FAN_IN)),
    ),
    (
        "kaiming_normal_out",
        lambda I, t: I.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"),
        0.0,
        math.sqrt(2) / math.sqrt(FAN_OUT),
        None,
    ),
    (
        "trunc_normal",
        lambda I, t: I.trunc_normal_(t, mean=0.5, std=1.0, a=-1.0, b=1.5),
        None,
        None,
        (-1.0, 1.5),
    ),
    (
        "trunc_normal_narrow",
        lambda I, t: I.trunc_normal_(t, mean=0.0, std=1.0, a=2.0, b=2.5),
        None,
        None,
        (2.0, 2.5),
    ),
]


@pytest.mark.parametrize(
    "call,mean,std,bounds", [(c, m, s, b) for _, c, m, s, b in DISTS], ids=[d[0] for d in DISTS]
)
def test_init_distributions_match_torch(call, mean, std, bounds):
    sg.manual_seed(0)
    torch.manual_seed(0)
    ts, tt = sg.empty(*SHAPE), torch.empty(*SHAPE)
    assert call(init, ts) is ts
    call(torch.nn.init, tt)
    ms, ss, lo_s, hi_s = _stats(ts)
    mt, st, lo_t, hi_t = _stats(tt)
    n = ts.numel()
    sd = st if std is None else std
    # both samples agree with each other (and with the formula where there is one)
    assert abs(ms - mt) < 6 * sd / math.sqrt(n)
    assert abs(ss - st) < 0.01 * sd
    if mean is not None:
        assert abs(ms - mean) < 6 * sd / math.sqrt(n)
    if std is not None:
        assert abs(ss - std) < 0.01 * std
    if bounds is not None:
        assert bounds[0] - 1e-6 <= lo_s and hi_s <= bounds[1] + 1e-6
        assert lo_s - bounds[0] < 0.01 * (bounds[1] - bounds[0]) and bounds[1] - hi_s < 0.01 * (
            bounds[1] - bounds[0]
        )


def test_constant_zeros_ones_eye_dirac_orthogonal():
    t = sg.empty(3, 4)
    assert float(init.constant_(t, 0.5).sum()) == 6.0
    assert float(init.zeros_(t).abs().sum()) == 0.0
    assert float(init.ones_(t).sum()) == 12.0
    close(init.eye_(sg.empty(3, 4)), torch.nn.init.eye_(torch.empty(3, 4)))
    close(
        init.dirac_(sg.empty(4, 2, 3, 3), groups=2),
        torch.nn.init.dirac_(torch.empty(4, 2, 3, 3), groups=2),
    )
    for shape in ((6, 4), (4, 6), (3, 2, 2)):
        q = (
            init.orthogonal_(sg.empty(*shape), gain=2.0)
            .numpy()
            .reshape(shape[0], -1)
            .astype(np.float64)
        )
        gram = q @ q.T if shape[0] <= q.shape[1] else q.T @ q
        np.testing.assert_allclose(gram, 4.0 * np.eye(gram.shape[0]), atol=1e-5)


def test_init_writes_in_place_and_keeps_parameter():
    lin = sg.nn.Linear(3, 2)
    w = lin.weight
    v = w._version
    init.normal_(lin.weight)
    assert lin.weight is w and w._version > v and w.requires_grad


@pytest.mark.parametrize(
    "make",
    [
        lambda nn: nn.Linear(200, 300),
        lambda nn: nn.Conv2d(16, 64, 5),
        lambda nn: nn.Conv2d(8, 64, 3, groups=4),
    ],
)
def test_default_layer_init_matches_torch_distribution(make):
    """torch's default init draws weight and bias from U(-b, b), b = 1 / sqrt(fan_in). Both
    libraries' draws pass the same test of that: inside the bounds, reaching near both, with
    the uniform's standard deviation b / sqrt(3) within 5 standard errors (a bias has only
    as many values as output channels, so the tolerances follow the count)."""
    sg.manual_seed(0)
    torch.manual_seed(0)
    s, t = make(sg.nn), make(torch.nn)
    fan_in = t.weight[0].numel()
    b = 1 / np.sqrt(fan_in)
    for (name, ps), (_, pt) in zip(s.named_parameters(), t.named_parameters()):
        n = pt.numel()
        for p in (ps, pt):
            _, std, lo, hi = _stats(p)
            assert abs(std - b / np.sqrt(3)) < 5 * b / np.sqrt(3) * np.sqrt(0.2 / n), name
            assert -b <= lo and hi <= b, name
            reach = b * (1 - 20 / n)  # missed with probability about e^-10
            assert hi > reach and lo < -reach, name


def test_default_init_of_norms_and_embedding():
    bn, ln, emb = sg.nn.BatchNorm2d(3), sg.nn.LayerNorm(4), sg.nn.Embedding(1000, 16, padding_idx=3)
    assert bn.weight.tolist() == [1, 1, 1] and bn.bias.tolist() == [0, 0, 0]
    assert bn.running_var.numpy().tolist() == [1, 1, 1] and int(bn.num_batches_tracked) == 0
    assert ln.weight.tolist() == [1] * 4
    w = emb.weight.detach().numpy()
    assert abs(w.std() - 1.0) < 0.05 and not w[3].any()


def test_manual_seed_makes_init_repeatable():
    sg.manual_seed(5)
    a = sg.nn.Linear(4, 4).weight.detach().numpy().copy()
    sg.manual_seed(5)
    b = sg.nn.Linear(4, 4).weight.detach().numpy()
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- nn.utils
def _grads_pair(seed=0):
    r = np.random.default_rng(seed)
    shapes = [(3, 4), (5,), (2, 2, 2)]
    ps, pt = [], []
    for s in shapes:
        g = r.standard_normal(s) * 3
        a, b = (
            sg.nn.Parameter(sg.zeros(*s, dtype=sg.float64)),
            torch.nn.Parameter(torch.zeros(*s, dtype=torch.float64)),
        )
        a.grad, b.grad = sg.tensor(g), torch.tensor(g)
        ps.append(a)
        pt.append(b)
    return ps, pt


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    ps, pt = _grads_pair()
    ns = sg.nn.utils.clip_grad_norm_(ps, max_norm, norm_type)
    nt = torch.nn.utils.clip_grad_norm_(pt, max_norm, norm_type)
    close(ns, nt)
    for a, b in zip(ps, pt):
        close(a.grad, b.grad)


def test_clip_grad_norm_single_tensor_empty_and_nonfinite():
    ps, _ = _grads_pair()
    n = sg.nn.utils.clip_grad_norm_(ps[0], 1.0)
    assert n.ndim == 0
    assert float(sg.nn.utils.clip_grad_norm_([sg.nn.Parameter(sg.ones(2))], 1.0)) == 0.0
    ps[1].grad._data[0] = np.nan
    with pytest.raises(RuntimeError, match="is non-finite, so it cannot be clipped"):
        sg.nn.utils.clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)


def test_clip_grad_value_matches_torch():
    ps, pt = _grads_pair(1)
    sg.nn.utils.clip_grad_value_(ps, 0.7)
    torch.nn.utils.clip_grad_value_(pt, 0.7)
    for a, b in zip(ps, pt):
        close(a.grad, b.grad)


def test_parameters_vector_round_trip():
    s = sg.nn.Sequential(sg.nn.Linear(3, 4), sg.nn.Linear(4, 2))
    t = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    s.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    vs, vt = (
        sg.nn.utils.parameters_to_vector(s.parameters()),
        torch.nn.utils.parameters_to_vector(t.parameters()),
    )
    close(vs, vt)
    assert vs.requires_grad
    (vs * sg.arange(vs.numel())).sum().backward()
    assert np.allclose(s[0].weight.grad.numpy().ravel(), np.arange(12))
    new = sg.arange(vs.numel(), dtype=sg.float32) * 0.5
    sg.nn.utils.vector_to_parameters(new, s.parameters())
    close(sg.nn.utils.parameters_to_vector(s.parameters()), new.numpy())
    # parameters now view the vector's memory, as in torch
    new._data[0] = 42.0
    assert float(s[0].weight[0, 0]) == 42.0
    with pytest.raises(TypeError, match="expected torch.Tensor"):
        sg.nn.utils.vector_to_parameters([1.0], s.parameters())
