"""The transformer family against torch in float64: encoder and decoder layers (post- and
pre-norm, relu, gelu and a module as activation, masks, batch_first, no bias), their stacks
with a final norm, and nn.Transformer; outputs, input gradients and every parameter's
gradient, plus state-dict names, reprs, init and argument errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import shardgrad as sg

# torch's own note about its inference fast path, which these training-mode tests do not take
pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")

L, S, N, D = 5, 4, 3, 8
rng = np.random.default_rng(5)
CAUSAL = np.triu(np.ones((L, L), bool), 1)
PADDING = np.zeros((N, L), bool)
PADDING[0, -2:] = True


def _np(t) -> np.ndarray:
    return np.asarray(t.detach().numpy())


def _compare(build, inputs, call) -> None:
    """Build the module in both libraries with torch's weights; run `call(module, lib, *xs)`
    on the same inputs; compare the output and every gradient."""
    torch.manual_seed(0)
    theirs = build(torch).double()
    mine = build(sg).double()
    assert list(mine.state_dict()) == list(theirs.state_dict())
    ours, their_lines = repr(mine).splitlines(), repr(theirs).splitlines()
    if "bias=" not in repr(torch.nn.LayerNorm(1)):  # torch before 2.13 did not print it
        ours = [re.sub(r"(LayerNorm\(.*), bias=(True|False)\)$", r"\1)", line) for line in ours]
    differ = [(a, b) for a, b in zip(ours, their_lines) if a != b]
    assert ours == their_lines, f"first difference (ours, torch's): {differ[:1]}"
    mine.load_state_dict({k: sg.tensor(_np(v)) for k, v in theirs.state_dict().items()})
    results = []
    for lib, module in ((sg, mine), (torch, theirs)):
        xs = [lib.tensor(a, requires_grad=a.dtype.kind == "f" and a.ndim == 3) for a in inputs]
        out = call(module, lib, *xs)
        (out * out).sum().backward()
        grads = [_np(x.grad) for x in xs if x.requires_grad]
        grads += [_np(p.grad) for _, p in sorted(module.named_parameters())]
        results.append([_np(out), *grads])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def _sequence(length: int, batch_first: bool = False) -> np.ndarray:
    return rng.standard_normal((N, length, D) if batch_first else (length, N, D))


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"activation": "gelu", "norm_first": True}, {"bias": False, "batch_first": True}],
    ids=["post-norm", "pre-norm gelu", "no bias batch_first"],
)
def test_encoder_layer_matches_torch(kwargs):
    first = kwargs.get("batch_first", False)
    _compare(
        lambda lib: lib.nn.TransformerEncoderLayer(D, 2, 16, dropout=0.0, **kwargs),
        [_sequence(L, first), PADDING],
        lambda m, lib, x, padding: m(x, src_key_padding_mask=padding),
    )


def test_encoder_stack_with_norm_and_causal_mask_matches_torch():
    _compare(
        lambda lib: lib.nn.TransformerEncoder(
            lib.nn.TransformerEncoderLayer(D, 2, 16, dropout=0.0, activation=lib.nn.GELU()),
            2,
            norm=lib.nn.LayerNorm(D),
        ),
        [_sequence(L), CAUSAL],
        lambda m, lib, x, mask: m(x, mask=mask, is_causal=True),
    )


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_and_stack_match_torch(norm_first):
    _compare(
        lambda lib: lib.nn.TransformerDecoderLayer(D, 2, 16, dropout=0.0, norm_first=norm_first),
        [_sequence(L), _sequence(S), CAUSAL],
        lambda m, lib, tgt, memory, mask: m(tgt, memory, tgt_mask=mask),
    )
    _compare(
        lambda lib: lib.nn.TransformerDecoder(
            lib.nn.TransformerDecoderLayer(D, 2, 16, dropout=0.0, norm_first=norm_first), 2
        ),
        [_sequence(L), _sequence(S), PADDING],
        lambda m, lib, tgt, memory, padding: m(tgt, memory, tgt_key_padding_mask=padding),
    )


@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer_matches_torch(batch_first):
    def call(m, lib, src, tgt, padding):
        causal = lib.nn.Transformer.generate_square_subsequent_mask(L, dtype=src.dtype)
        return m(src, tgt, tgt_mask=causal, memory_key_padding_mask=padding[:, :S])

    _compare(
        lambda lib: lib.nn.Transformer(D, 2, 2, 1, 16, dropout=0.0, batch_first=batch_first),
        [_sequence(S, batch_first), _sequence(L, batch_first), PADDING],
        call,
    )


def test_causal_mask_and_init():
    mask = _np(sg.nn.Transformer.generate_square_subsequent_mask(3))
    np.testing.assert_array_equal(
        mask, _np(torch.nn.Transformer.generate_square_subsequent_mask(3))
    )
    model = sg.nn.Transformer(16, 2, 1, 1, 32)
    bound = np.sqrt(6.0 / (32 + 16))  # xavier_uniform_ of linear1 (32 x 16)
    w = _np(model.encoder.layers[0].linear1.weight)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    layers = model.encoder.layers
    assert layers[0].linear1.weight is not layers[0].linear2.weight
    stacked = sg.nn.TransformerEncoder(sg.nn.TransformerEncoderLayer(8, 2, 16), 2)
    first, second = stacked.layers
    assert first.linear1.weight is not second.linear1.weight  # copies, not one shared layer


def test_argument_errors():
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        sg.nn.TransformerEncoderLayer(8, 2, activation="tanh")
    with pytest.raises(TypeError, match="must be a Module"):
        sg.nn.TransformerEncoder(None, 2)
    with pytest.raises(TypeError, match="norm_first must be a number or a flag"):
        sg.nn.TransformerEncoderLayer(8, 2, norm_first=sg.nn.Linear(2, 2))
    model = sg.nn.Transformer(8, 2, 1, 1, 16)
    with pytest.raises(RuntimeError, match="batch number of src and tgt must be equal"):
        model(sg.randn(4, 2, 8), sg.randn(4, 3, 8))
    with pytest.raises(RuntimeError, match="equal to d_model"):
        model(sg.randn(4, 2, 6), sg.randn(4, 2, 6))
