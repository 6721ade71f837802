"""RNN, LSTM, GRU and their cells against torch in float64: outputs, final states, the input's
and initial state's gradients and every parameter's gradient, across layers, directions,
batch_first, no bias, unbatched input and given initial states; plus names, reprs, dropout
between layers, and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shardgrad as sg

rng = np.random.default_rng(8)


def _np(t) -> np.ndarray:
    return np.asarray(t.detach().numpy())


def _flatten(out) -> list:
    if isinstance(out, tuple):
        return [x for item in out for x in _flatten(item)]
    return [] if out is None else [out]


def _state_shape(kwargs: dict, shape: tuple, cell: bool) -> tuple:
    hidden = kwargs["hidden_size"]
    if cell:
        return (shape[0], hidden) if len(shape) == 2 else (hidden,)
    layers = kwargs.get("num_layers", 1) * (2 if kwargs.get("bidirectional") else 1)
    if len(shape) == 2:
        return (layers, hidden)
    return (layers, shape[0] if kwargs.get("batch_first") else shape[1], hidden)


def _compare(cls: str, kwargs: dict, shape: tuple, given_state: bool = False) -> None:
    cell = cls.endswith("Cell")
    torch.manual_seed(0)
    theirs = getattr(torch.nn, cls)(**kwargs).double()
    mine = getattr(sg.nn, cls)(**kwargs, dtype=sg.float64)
    assert list(mine.state_dict()) == list(theirs.state_dict())
    assert repr(mine) == repr(theirs)
    mine.load_state_dict({k: sg.tensor(_np(v)) for k, v in theirs.state_dict().items()})
    x = rng.standard_normal(shape)
    state = np.cos(np.arange(int(np.prod(_state_shape(kwargs, shape, cell))))).reshape(
        _state_shape(kwargs, shape, cell)
    )
    results = []
    for lib, module in ((sg, mine), (torch, theirs)):
        inp = lib.tensor(x, requires_grad=True)
        args = [inp]
        h0 = None
        if given_state:
            h0 = lib.tensor(state, requires_grad=True)
            args.append((h0, h0 * 0.5) if cls.startswith("LSTM") else h0)
        outs = _flatten(module(*args))
        sum((o * o).sum() * (i + 1) for i, o in enumerate(outs)).backward()
        grads = [_np(inp.grad)] + ([_np(h0.grad)] if h0 is not None else [])
        grads += [_np(p.grad) for _, p in sorted(module.named_parameters())]
        results.append([_np(o) for o in outs] + grads)
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    "cls, kwargs, shape, given_state",
    [
        ("LSTM", {"input_size": 3, "hidden_size": 4}, (5, 2, 3), False),
        (
            "LSTM",
            {"input_size": 3, "hidden_size": 4, "num_layers": 2, "bidirectional": True,
             "batch_first": True},
            (2, 5, 3),
            True,
        ),
        ("GRU", {"input_size": 3, "hidden_size": 4, "num_layers": 2, "bias": False}, (5, 2, 3), True),
        ("GRU", {"input_size": 3, "hidden_size": 4, "bidirectional": True}, (5, 3), False),
        ("RNN", {"input_size": 3, "hidden_size": 4, "nonlinearity": "relu", "num_layers": 3},
         (5, 2, 3), False),
        ("RNN", {"input_size": 3, "hidden_size": 4}, (5, 3), True),
        ("LSTMCell", {"input_size": 3, "hidden_size": 4}, (2, 3), True),
        ("GRUCell", {"input_size": 3, "hidden_size": 4, "bias": False}, (3,), True),
        ("RNNCell", {"input_size": 3, "hidden_size": 4, "nonlinearity": "relu"}, (2, 3), False),
    ],
    ids=[
        "lstm", "lstm 2 layers bidirectional batch_first h0", "gru 2 layers no bias h0",
        "gru bidirectional unbatched", "rnn relu 3 layers", "rnn unbatched h0", "lstm cell",
        "gru cell unbatched", "rnn cell relu",
    ],
)  # fmt: skip
def test_recurrent_layers_match_torch(cls, kwargs, shape, given_state):
    _compare(cls, kwargs, shape, given_state)


def test_dropout_between_layers_only_in_training():
    lstm = sg.nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    x = sg.randn(6, 2, 3)
    lstm.eval()
    first, second = lstm(x)[0], lstm(x)[0]
    np.testing.assert_array_equal(_np(first), _np(second))
    lstm.train()
    sg.manual_seed(1)
    assert not np.allclose(_np(lstm(x)[0]), _np(first))


def test_errors():
    lstm = sg.nn.LSTM(3, 4)
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size"):
        lstm(sg.randn(5, 2, 2))
    with pytest.raises(RuntimeError, match="Expected hidden size"):
        lstm(sg.randn(5, 2, 3), (sg.zeros(1, 3, 4), sg.zeros(1, 2, 4)))
    with pytest.raises(NotImplementedError, match="proj_size"):
        sg.nn.LSTM(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        sg.nn.RNN(3, 4, nonlinearity="gelu")
