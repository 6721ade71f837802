"""Attention and RMSNorm against torch in float64: scaled_dot_product_attention (masks, causal,
scale, grouped-query heads, rows with nothing to attend to), MultiheadAttention (both of
torch's paths, every mask form, kdim/vdim, bias_k/v, zero attention, batch_first, unbatched
input) with values, attention weights and every parameter's gradient, and RMSNorm."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shardgrad as sg

L, S, N, E, HEADS = 4, 5, 3, 8, 2
rng = np.random.default_rng(11)


def _np(t) -> np.ndarray:
    return np.asarray(t.detach().numpy())


def _assert_close(a, b) -> None:
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9, equal_nan=True)


def _as(lib, value):
    return lib.tensor(value) if isinstance(value, np.ndarray) else value


# ------------------------------------------------------------------ scaled_dot_product_attention
Q = rng.standard_normal((2, 4, L, E))
K = rng.standard_normal((2, 2, S, E))  # two key/value heads: grouped-query attention
V = rng.standard_normal((2, 2, S, 3))
BOOL_MASK = rng.random((L, S)) > 0.3
BOOL_MASK[1] = False  # query row 1 may attend to nothing
FLOAT_MASK = rng.standard_normal((2, 1, L, S))
FLOAT_MASK[0, 0, 2] = -np.inf  # nor may row 2 of the first batch


def _sdpa(lib, **kwargs):
    q, k, v = (lib.tensor(a, requires_grad=True) for a in (Q, K, V))
    kwargs = {name: _as(lib, value) for name, value in kwargs.items()}
    out = lib.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True, **kwargs)
    (out * out).sum().backward()
    return [_np(t) for t in (out, q.grad, k.grad, v.grad)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"attn_mask": BOOL_MASK},
        {"attn_mask": FLOAT_MASK},
        {"is_causal": True},
        {"scale": 0.3},
    ],
    ids=["plain", "bool mask", "float mask", "causal", "scale"],
)
def test_sdpa_matches_torch(kwargs):
    for mine, theirs in zip(_sdpa(sg, **kwargs), _sdpa(torch, **kwargs)):
        _assert_close(mine, theirs)


def test_sdpa_rows_with_nothing_to_attend_to_are_zero_with_finite_gradients():
    out, q_grad, k_grad, v_grad = _sdpa(sg, attn_mask=BOOL_MASK)
    assert not out[:, :, 1].any()
    assert np.isfinite(q_grad).all() and np.isfinite(k_grad).all() and np.isfinite(v_grad).all()
    assert not q_grad[:, :, 1].any()


def test_sdpa_errors_and_full_dropout():
    q, k, v = (sg.tensor(a) for a in (Q, K, V))
    with pytest.raises(RuntimeError, match="Explicit attn_mask should not be set"):
        sg.nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=sg.tensor(BOOL_MASK), is_causal=True, enable_gqa=True
        )
    with pytest.raises(RuntimeError, match="not a multiple"):
        sg.nn.functional.scaled_dot_product_attention(q[:, :3], k, v, enable_gqa=True)
    dropped = sg.nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=1.0, enable_gqa=True)
    assert not _np(dropped).any()


def test_sdpa_second_order_gradients():
    q, k, v = (sg.tensor(a[:1, :2, :3, :4], requires_grad=True) for a in (Q, K, K))
    assert sg.autograd.gradgradcheck(
        lambda a, b, c: sg.nn.functional.scaled_dot_product_attention(a, b, c, is_causal=True),
        (q, k, v),
    )


# ------------------------------------------------------------------ MultiheadAttention
KEY_PADDING = np.zeros((N, S), bool)
KEY_PADDING[0, -1] = True
KEY_PADDING[1, :2] = True
PADDING_ADDED = np.where(KEY_PADDING, -np.inf, 0.0)  # the same padding as a float mask
CAUSAL = np.triu(np.ones((L, S), bool), 1)  # True: not attended (torch's MHA convention)
ADDED = rng.standard_normal((L, S))
PER_HEAD = rng.standard_normal((N * HEADS, L, S))


def _run_mha(module_kw, call_kw, self_attention=False, batched=True):
    torch.manual_seed(0)
    torch_module = torch.nn.MultiheadAttention(E, HEADS, **module_kw).double()
    mine = sg.nn.MultiheadAttention(E, HEADS, dtype=sg.float64, **module_kw)
    mine.load_state_dict({k: sg.tensor(_np(v)) for k, v in torch_module.state_dict().items()})
    assert list(mine.state_dict()) == list(torch_module.state_dict())
    kdim, vdim = module_kw.get("kdim") or E, module_kw.get("vdim") or E

    def shape(length, width):
        if not batched:
            return (length, width)
        return (N, length, width) if module_kw.get("batch_first") else (length, N, width)

    q = rng.standard_normal(shape(L, E))
    k, v = rng.standard_normal(shape(S, kdim)), rng.standard_normal(shape(S, vdim))
    results = []
    for lib, module in ((sg, mine), (torch, torch_module)):
        query = lib.tensor(q, requires_grad=True)
        key = query if self_attention else lib.tensor(k, requires_grad=True)
        value = query if self_attention else lib.tensor(v, requires_grad=True)
        out, weights = module(query, key, value, **{n: _as(lib, x) for n, x in call_kw.items()})
        loss = (out * out).sum() + (0.0 if weights is None else (weights * weights).sum())
        loss.backward()
        grads = [_np(p.grad) for _, p in sorted(module.named_parameters())]
        weights = None if weights is None else _np(weights)
        results.append([_np(out), weights, _np(query.grad), *grads])
    for mine_value, torch_value in zip(*results):
        if torch_value is None:
            assert mine_value is None
        else:
            _assert_close(mine_value, torch_value)


@pytest.mark.parametrize(
    "module_kw, call_kw",
    [
        ({}, {}),
        ({"batch_first": True}, {"key_padding_mask": KEY_PADDING}),
        ({}, {"attn_mask": CAUSAL, "key_padding_mask": KEY_PADDING}),
        ({}, {"attn_mask": ADDED, "average_attn_weights": False}),
        ({}, {"attn_mask": PER_HEAD}),
        ({}, {"attn_mask": CAUSAL, "need_weights": False}),
        ({}, {"attn_mask": PER_HEAD, "need_weights": False, "key_padding_mask": PADDING_ADDED}),
        ({"kdim": 3, "vdim": 6}, {}),
        ({"bias": False}, {"need_weights": False}),
        ({"add_bias_kv": True}, {"key_padding_mask": KEY_PADDING, "attn_mask": CAUSAL}),
        ({"add_zero_attn": True}, {"key_padding_mask": KEY_PADDING}),
        (
            {"add_zero_attn": True, "add_bias_kv": True, "batch_first": True},
            {"attn_mask": ADDED, "need_weights": False},
        ),
    ],
)
def test_multihead_attention_matches_torch(module_kw, call_kw):
    _run_mha(module_kw, call_kw)


def test_multihead_self_attention_and_unbatched_input_match_torch():
    _run_mha({}, {}, self_attention=True)
    _run_mha({}, {"attn_mask": CAUSAL}, batched=False)


def test_multihead_attention_module_surface():
    mine, theirs = sg.nn.MultiheadAttention(E, HEADS), torch.nn.MultiheadAttention(E, HEADS)
    assert repr(mine) == repr(theirs)
    assert [(n, tuple(p.shape)) for n, p in mine.named_parameters()] == [
        (n, tuple(p.shape)) for n, p in theirs.named_parameters()
    ]
    assert not _np(mine.in_proj_bias).any() and not _np(mine.out_proj.bias).any()
    with pytest.raises(AssertionError, match="divisible by num_heads"):
        sg.nn.MultiheadAttention(6, 4)
    x = sg.randn(L, N, E)
    with pytest.raises(RuntimeError, match="Need attn_mask"):
        mine(x, x, x, is_causal=True)
    with pytest.raises(AssertionError, match="expecting embedding dimension of 8"):
        mine(sg.randn(L, N, 4), x, x)


def test_multihead_attention_dropout_only_in_training():
    module = sg.nn.MultiheadAttention(E, HEADS, dropout=0.9)
    x = sg.randn(L, N, E)
    module.eval()
    first, second = module(x, x, x)[0], module(x, x, x)[0]
    _assert_close(_np(first), _np(second))
    module.train()
    sg.manual_seed(1)
    trained = module(x, x, x)[0]
    assert not np.allclose(_np(trained), _np(first))


# ------------------------------------------------------------------ RMSNorm
@pytest.mark.parametrize(
    "shape, kwargs",
    [((5,), {}), ((4, 5), {"eps": 1e-3}), ((5,), {"elementwise_affine": False})],
)
def test_rms_norm_matches_torch(shape, kwargs):
    x = rng.standard_normal((3, 4, 5))
    weight = rng.standard_normal(shape)
    results = []
    for lib in (sg, torch):
        module = lib.nn.RMSNorm(shape, **kwargs)
        if module.weight is not None:
            module.weight.data = lib.tensor(weight)
        module = module.double() if lib is torch else module
        inp = lib.tensor(x, requires_grad=True)
        out = module(inp)
        (out * out).sum().backward()
        grads = [] if module.weight is None else [_np(module.weight.grad)]
        results.append([_np(out), _np(inp.grad), *grads])
        assert repr(module).startswith("RMSNorm(")
    for mine, theirs in zip(*results):
        _assert_close(mine, theirs)
    assert repr(sg.nn.RMSNorm(4)) == repr(torch.nn.RMSNorm(4))


def test_rms_norm_default_eps_is_the_dtype_epsilon():
    x = rng.standard_normal((2, 6)).astype(np.float32) * 1e-4
    mine = sg.nn.functional.rms_norm(sg.tensor(x), (6,))
    theirs = torch.nn.functional.rms_norm(torch.tensor(x), (6,))
    np.testing.assert_allclose(_np(mine), _np(theirs), rtol=1e-5)
