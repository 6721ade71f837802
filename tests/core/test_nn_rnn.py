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
    with pytest.raises(RuntimeError, match="Expected hidden\\[0\\] size"):
        lstm(sg.randn(5, 2, 3), (sg.zeros(1, 3, 4), sg.zeros(1, 2, 4)))
    with pytest.raises(RuntimeError, match="Expected hidden size"):
        sg.nn.GRU(3, 4)(sg.randn(5, 2, 3), sg.zeros(1, 3, 4))
    for kwargs, message in (
        ({"proj_size": 4}, "proj_size has to be smaller than hidden_size"),
        ({"proj_size": -1}, "proj_size should be a positive integer or zero"),
    ):
        for lib in (sg, torch):
            with pytest.raises(ValueError, match=message):
                lib.nn.LSTM(3, 4, **kwargs)
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        sg.nn.RNN(3, 4, nonlinearity="gelu")


# ---------------------------------------------------------------- projections, packed input
def _pair_modules(cls: str, kwargs: dict):
    torch.manual_seed(0)
    theirs = getattr(torch.nn, cls)(**kwargs).double()
    mine = getattr(sg.nn, cls)(**kwargs, dtype=sg.float64)
    assert list(mine.state_dict()) == list(theirs.state_dict())
    assert repr(mine) == repr(theirs)
    mine.load_state_dict({k: sg.tensor(_np(v)) for k, v in theirs.state_dict().items()})
    return mine, theirs


def _grads(module, *tensors) -> list:
    return [_np(t.grad) for t in tensors] + [
        _np(p.grad) for _, p in sorted(module.named_parameters())
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input_size": 3, "hidden_size": 5, "proj_size": 2},
        {"input_size": 3, "hidden_size": 5, "proj_size": 3, "num_layers": 2,
         "bidirectional": True, "bias": False},
    ],
    ids=["one layer", "two layers bidirectional no bias"],
)  # fmt: skip
def test_lstm_projection_matches_torch(kwargs):
    mine, theirs = _pair_modules("LSTM", kwargs)
    layers = kwargs.get("num_layers", 1) * (2 if kwargs.get("bidirectional") else 1)
    x = rng.standard_normal((6, 2, 3))
    h0 = rng.standard_normal((layers, 2, kwargs["proj_size"]))
    c0 = rng.standard_normal((layers, 2, kwargs["hidden_size"]))
    results = []
    for lib, module in ((sg, mine), (torch, theirs)):
        inp, h, c = (lib.tensor(a, requires_grad=True) for a in (x, h0, c0))
        out, (h_n, c_n) = module(inp, (h, c))
        ((out**2).sum() + (h_n**3).sum() + c_n.sum()).backward()
        results.append([_np(out), _np(h_n), _np(c_n)] + _grads(module, inp, h, c))
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    "cls, kwargs, enforce_sorted, given_state",
    [
        ("RNN", {"input_size": 3, "hidden_size": 4}, True, False),
        ("GRU", {"input_size": 3, "hidden_size": 4, "bidirectional": True}, False, True),
        ("LSTM", {"input_size": 3, "hidden_size": 4, "num_layers": 2}, False, True),
        ("LSTM", {"input_size": 3, "hidden_size": 5, "proj_size": 2, "bidirectional": True,
                  "num_layers": 2, "batch_first": True}, False, False),
    ],
    ids=["rnn sorted", "gru bidirectional h0", "lstm 2 layers h0", "lstm proj bidirectional"],
)  # fmt: skip
def test_packed_sequences_match_torch(cls, kwargs, enforce_sorted, given_state):
    """A batch of different lengths, packed: the packed output, each sequence's final
    state (in the caller's batch order), and the gradients of the padded input, the
    initial state and every parameter."""
    mine, theirs = _pair_modules(cls, kwargs)
    lengths = [6, 4, 4, 1] if enforce_sorted else [3, 6, 1, 4]
    batch_first = kwargs.get("batch_first", False)
    x = rng.standard_normal((4, 6, 3) if batch_first else (6, 4, 3))
    layers = kwargs.get("num_layers", 1) * (2 if kwargs.get("bidirectional") else 1)
    h0 = rng.standard_normal((layers, 4, kwargs.get("proj_size") or kwargs["hidden_size"]))
    c0 = rng.standard_normal((layers, 4, kwargs["hidden_size"]))
    results = []
    for lib, module in ((sg, mine), (torch, theirs)):
        rnn_utils = lib.nn.utils.rnn
        inp = lib.tensor(x, requires_grad=True)
        packed = rnn_utils.pack_padded_sequence(  # lengths on the CPU, as torch requires
            inp,
            lib.tensor(lengths, device="cpu"),
            batch_first=batch_first,
            enforce_sorted=enforce_sorted,
        )
        tensors = [inp]
        state = None
        if given_state:
            h, c = lib.tensor(h0, requires_grad=True), lib.tensor(c0, requires_grad=True)
            state = (h, c) if cls == "LSTM" else h
            tensors += [h, c] if cls == "LSTM" else [h]
        out, hidden = module(packed, state)
        assert isinstance(out, rnn_utils.PackedSequence)
        padded, out_lengths = rnn_utils.pad_packed_sequence(out, batch_first=batch_first)
        finals = list(hidden) if cls == "LSTM" else [hidden]
        loss = (padded * lib.tensor(np.arange(padded.numel()).reshape(padded.shape) % 5)).sum()
        (loss + sum((f**2).sum() for f in finals)).backward()
        assert out_lengths.tolist() == lengths and out_lengths.device.type == "cpu"
        results.append(
            [_np(out.data), _np(padded)] + [_np(f) for f in finals] + _grads(module, *tensors)
        )
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    "fn",
    [
        lambda lib, a, b, c: lib.nn.utils.rnn.pad_sequence([a, b, c]),
        lambda lib, a, b, c: lib.nn.utils.rnn.pad_sequence([a, b, c], True, -1.0),
        lambda lib, a, b, c: lib.nn.utils.rnn.pad_sequence([a, b], padding_side="left"),
        lambda lib, a, b, c: lib.nn.utils.rnn.pack_sequence([b, a, c]),
        lambda lib, a, b, c: lib.nn.utils.rnn.pack_sequence([a, b, c], enforce_sorted=False),
        lambda lib, a, b, c: lib.nn.utils.rnn.pad_packed_sequence(
            lib.nn.utils.rnn.pack_sequence([a, b, c], enforce_sorted=False),
            batch_first=True, padding_value=2.0, total_length=7,
        ),
        lambda lib, a, b, c: tuple(
            lib.nn.utils.rnn.unpack_sequence(
                lib.nn.utils.rnn.pack_sequence([a, b, c], enforce_sorted=False)
            )
        ),
        lambda lib, a, b, c: tuple(
            lib.nn.utils.rnn.unpad_sequence(
                lib.nn.utils.rnn.pad_sequence([a, c]), lib.tensor([3, 1])
            )
        ),
    ],
    ids=[
        "pad_sequence", "pad_sequence batch_first value", "pad_sequence left",
        "pack_sequence sorted", "pack_sequence unsorted", "pad_packed total_length",
        "unpack_sequence", "unpad_sequence",
    ],
)  # fmt: skip
def test_sequence_utilities_match_torch(fn):
    arrays = [rng.standard_normal((n, 2)) for n in (3, 5, 1)]
    results = []
    for lib in (sg, torch):
        tensors = [lib.tensor(a, requires_grad=True) for a in arrays]
        out = fn(lib, *tensors)
        parts = [p for p in (out if isinstance(out, tuple) else (out,)) if p is not None]
        floats = [p for p in parts if p.dtype.is_floating_point]
        sum(((p * (i + 1)) ** 2).sum() for i, p in enumerate(floats)).backward()
        grads = [_np(t.grad) if t.grad is not None else None for t in tensors]
        results.append(([_np(p) for p in parts], grads))
    for a, b in zip(results[0][0], results[1][0], strict=True):
        np.testing.assert_allclose(a, b)
    for a, b in zip(results[0][1], results[1][1], strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b)


def test_packing_errors_match_torch():
    x = np.zeros((4, 3, 2))
    cases = [
        lambda lib: lib.nn.utils.rnn.pack_padded_sequence(lib.tensor(x), [1, 3, 2]),
        lambda lib: lib.nn.utils.rnn.pack_padded_sequence(lib.tensor(x), [3, 2]),
        lambda lib: lib.nn.utils.rnn.pack_padded_sequence(lib.tensor(x), [3, 2, 0]),
        lambda lib: lib.nn.utils.rnn.pad_packed_sequence(
            lib.nn.utils.rnn.pack_padded_sequence(lib.tensor(x), [3, 2, 1]), total_length=2
        ),
    ]
    for case in cases:
        messages = []
        for lib in (sg, torch):
            with pytest.raises((RuntimeError, ValueError)) as info:
                case(lib)
            messages.append((type(info.value), str(info.value)))
        assert messages[0] == messages[1]


def test_packed_sequence_to_casts_data_and_keeps_its_bookkeeping():
    seqs = [sg.randn(3, 2, dtype=sg.float64), sg.randn(1, 2, dtype=sg.float64)]
    packed = sg.nn.utils.rnn.pack_sequence(seqs[::-1], enforce_sorted=False)
    cast = packed.to(sg.float32)
    assert cast.data.dtype == sg.float32 and not cast.is_cuda
    assert cast.batch_sizes.tolist() == packed.batch_sizes.tolist() == [2, 1, 1]
    assert cast.sorted_indices.tolist() == packed.sorted_indices.tolist() == [1, 0]
    assert cast.unsorted_indices.tolist() == [1, 0]
    assert packed.to(sg.float64) is packed
