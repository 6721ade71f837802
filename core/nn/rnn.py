"""RNN, LSTM and GRU (and their single-step cells) with torch's parameters, names, gate order
and initial state handling.

Each layer and direction owns `weight_ih_l{k}`, `weight_hh_l{k}`, `bias_ih_l{k}` and
`bias_hh_l{k}` (with a `_reverse` suffix for the backward direction), gates stacked in torch's
order: LSTM (input, forget, cell, output), GRU (reset, update, new); an LSTM with `proj_size`
also projects its hidden state through `weight_hr_l{k}`. The input projections of a whole
sequence are one product per layer; the recurrence then runs step by step with Tensor ops, so
gradients flow through time by the ordinary backward pass. A PackedSequence input runs each
step on the sequences still running only, so each keeps its own last state.
"""

from __future__ import annotations

import math

from .. import factory
from ..ops.join import cat, stack
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter
from .utils.rnn import PackedSequence

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _step(mode: str, gi: Tensor, h: Tensor, c: Tensor | None, w_hh: Tensor, b_hh, w_hr=None):
    """One time step from the input's projection `gi`: (h', c')."""
    gh = F.linear(h, w_hh, b_hh)
    if mode == "LSTM":
        i, f, g, o = (gi + gh).chunk(4, -1)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        h = o.sigmoid() * c.tanh()
        return (h if w_hr is None else F.linear(h, w_hr)), c
    if mode == "GRU":
        i_r, i_z, i_n = gi.chunk(3, -1)
        h_r, h_z, h_n = gh.chunk(3, -1)
        r, z = (i_r + h_r).sigmoid(), (i_z + h_z).sigmoid()
        n = (i_n + r * h_n).tanh()
        return (1 - z) * n + z * h, None
    pre = gi + gh
    return (pre.tanh() if mode == "RNN_TANH" else pre.relu()), None


def _suffix(layer: int, direction: int) -> str:
    """The name suffix of a layer's parameters in one direction: `_l1`, `_l1_reverse`."""
    return f"_l{layer}" + ("_reverse" if direction else "")


def _uniform_init(module: Module) -> None:
    """torch's init for recurrent weights and biases alike: uniform(+-1/sqrt(hidden))."""
    bound = 1.0 / math.sqrt(module.hidden_size)
    for weight in module.parameters():
        init.uniform_(weight, -bound, bound)


class RNNBase(Module):
    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError("num_layers must be greater than or equal to 1")
        if not 0 <= float(dropout) <= 1:
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the probability of an "
                "element being zeroed"
            )
        if isinstance(proj_size, bool) or not isinstance(proj_size, int) or proj_size < 0:
            raise ValueError(
                "proj_size should be a positive integer or zero to disable projections"
            )
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        self.proj_size = proj_size
        directions = 2 if bidirectional else 1
        gate_size = _GATES[mode] * hidden_size
        state_size = proj_size or hidden_size  # what h carries between steps and layers
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else state_size * directions
            for direction in range(directions):
                suffix = _suffix(layer, direction)
                shapes = [
                    ("weight_ih", (gate_size, layer_input)),
                    ("weight_hh", (gate_size, state_size)),
                ]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if proj_size:
                    shapes.append(("weight_hr", (proj_size, hidden_size)))
                for name, shape in shapes:
                    setattr(
                        self,
                        name + suffix,
                        Parameter(factory.empty(*shape, device=device, dtype=dtype)),
                    )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _uniform_init(self)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    def forward(self, input: Tensor | PackedSequence, hx=None):
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        if not isinstance(input, Tensor):
            raise TypeError(
                f"input must be a Tensor or a PackedSequence, not {type(input).__name__}"
            )
        batched = input.ndim == 3
        if input.ndim not in (2, 3):
            raise ValueError(
                f"{type(self).__name__}: Expected input to be 2D or 3D, got {input.ndim}D instead"
            )
        if not batched:
            input = input.unsqueeze(1)
        elif self.batch_first:
            input = input.transpose(0, 1)
        if input.shape[-1] != self.input_size:
            raise RuntimeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got "
                f"{input.shape[-1]}"
            )
        directions = 2 if self.bidirectional else 1
        batch = input.shape[1]
        h0, c0 = self._initial_state(hx, batched, batch, directions, input)
        output, hidden, cell = self._layers(input, h0, c0, self._run)
        if not batched:
            output, hidden = output.squeeze(1), hidden.squeeze(1)
            cell = cell.squeeze(1) if cell is not None else None
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, ((hidden, cell) if self.mode == "LSTM" else hidden)

    def _forward_packed(self, packed: PackedSequence, hx):
        """forward over a PackedSequence: each step runs the sequences still running, and
        the states come back in the caller's batch order."""
        data, sizes = packed.data, [int(b) for b in packed.batch_sizes.tolist()]
        if data.shape[-1] != self.input_size:
            raise RuntimeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got "
                f"{data.shape[-1]}"
            )
        if hx is not None and packed.sorted_indices is not None:  # into the sorted order
            order = packed.sorted_indices
            hx = (
                tuple(t.index_select(1, order) for t in hx)
                if self.mode == "LSTM"
                else (hx.index_select(1, order))
            )
        directions = 2 if self.bidirectional else 1
        h0, c0 = self._initial_state(hx, True, sizes[0] if sizes else 0, directions, data)

        def run(layer, direction, x, h, c):
            return self._run_packed(layer, direction, x, sizes, h, c)

        data_out, hidden, cell = self._layers(data, h0, c0, run)
        output = PackedSequence(
            data_out, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices
        )
        if packed.unsorted_indices is not None:  # back to the caller's order
            hidden = hidden.index_select(1, packed.unsorted_indices)
            cell = cell.index_select(1, packed.unsorted_indices) if cell is not None else None
        return output, ((hidden, cell) if self.mode == "LSTM" else hidden)

    def _layers(self, x: Tensor, h0: Tensor, c0, run) -> tuple:
        """The stacked layers over x (padded or packed steps: `run` does one layer in one
        direction), dropout between them in training: (output, h_n, c_n or None)."""
        directions = 2 if self.bidirectional else 1
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                index = layer * directions + direction
                out, h, c = run(layer, direction, x, h0[index], None if c0 is None else c0[index])
                outputs.append(out)
                h_n.append(h)
                c_n.append(c)
            x = outputs[0] if directions == 1 else cat(outputs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout)
        return x, stack(h_n), (stack(c_n) if self.mode == "LSTM" else None)

    def _initial_state(self, hx, batched: bool, batch: int, directions: int, like: Tensor):
        layers = self.num_layers * directions
        shape = (layers, batch, self.proj_size or self.hidden_size)
        cell_shape = (layers, batch, self.hidden_size)
        if hx is None:
            zeros = factory.zeros(*shape, dtype=like.dtype, device=like.device)
            if self.mode != "LSTM":
                return zeros, None
            return zeros, factory.zeros(*cell_shape, dtype=like.dtype, device=like.device)
        states = hx if self.mode == "LSTM" else (hx, None)
        if self.mode == "LSTM" and (not isinstance(hx, tuple) or len(hx) != 2):
            raise RuntimeError("LSTM expects hx as a tuple (h_0, c_0)")
        h0, c0 = states
        if not batched:
            h0 = h0.unsqueeze(1)
            c0 = c0.unsqueeze(1) if c0 is not None else None
        hidden_name = "hidden[0]" if self.mode == "LSTM" else "hidden"
        for what, t, expected in ((hidden_name, h0, shape), ("hidden[1]", c0, cell_shape)):
            if t is not None and tuple(t.shape) != expected:
                raise RuntimeError(f"Expected {what} size {expected}, got {list(t.shape)}")
        return h0, c0

    def _weights(self, layer: int, direction: int) -> tuple:
        """(w_ih, w_hh, b_ih, b_hh, w_hr) of one layer and direction (None where absent)."""
        suffix = _suffix(layer, direction)
        w_ih, w_hh = getattr(self, "weight_ih" + suffix), getattr(self, "weight_hh" + suffix)
        b_ih = getattr(self, "bias_ih" + suffix) if self.bias else None
        b_hh = getattr(self, "bias_hh" + suffix) if self.bias else None
        w_hr = getattr(self, "weight_hr" + suffix) if self.proj_size else None
        return w_ih, w_hh, b_ih, b_hh, w_hr

    def _run_packed(self, layer: int, direction: int, x: Tensor, sizes: list, h: Tensor, c):
        """One layer in one direction over packed steps: the first sizes[t] rows of the
        state run at step t; the others keep their state (a finished sequence going
        forward, one not yet started going backward)."""
        w_ih, w_hh, b_ih, b_hh, w_hr = self._weights(layer, direction)
        projected = F.linear(x, w_ih, b_ih)
        starts = [0]
        for size in sizes[:-1]:
            starts.append(starts[-1] + size)
        outputs = [None] * len(sizes)
        steps = range(len(sizes) - 1, -1, -1) if direction else range(len(sizes))
        for t in steps:
            size = sizes[t]
            gi = projected[starts[t] : starts[t] + size]
            h_new, c_new = _step(
                self.mode, gi, h[:size], None if c is None else c[:size], w_hh, b_hh, w_hr
            )
            outputs[t] = h_new
            h = h_new if size == h.shape[0] else cat([h_new, h[size:]], 0)
            if c is not None:
                c = c_new if size == c.shape[0] else cat([c_new, c[size:]], 0)
        return cat(outputs, 0), h, c

    def _run(self, layer: int, direction: int, x: Tensor, h: Tensor, c):
        """One layer in one direction over the whole sequence: (outputs (L, N, H), h, c)."""
        w_ih, w_hh, b_ih, b_hh, w_hr = self._weights(layer, direction)
        projected = F.linear(x, w_ih, b_ih)  # every time step's input projection at once
        steps = range(x.shape[0] - 1, -1, -1) if direction else range(x.shape[0])
        outputs = [None] * x.shape[0]
        for t in steps:
            h, c = _step(self.mode, projected[t], h, c, w_hh, b_hh, w_hr)
            outputs[t] = h
        return stack(outputs), h, c


class RNN(RNNBase):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None, dtype=None) -> None:  # fmt: skip
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'."
            )
        self.nonlinearity = nonlinearity
        super().__init__(
            "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size,
            num_layers, bias, batch_first, dropout, bidirectional, 0, device, dtype,
        )  # fmt: skip


class LSTM(RNNBase):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None) -> None:  # fmt: skip
        super().__init__(
            "LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
            bidirectional, proj_size, device, dtype,
        )  # fmt: skip


class GRU(RNNBase):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None) -> None:  # fmt: skip
        super().__init__(
            "GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
            bidirectional, 0, device, dtype,
        )  # fmt: skip


class RNNCellBase(Module):
    """One time step: `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh` as in torch's cells."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool, device, dtype):
        super().__init__()
        self.mode, self.input_size, self.hidden_size, self.bias = (
            mode,
            input_size,
            hidden_size,
            bias,
        )
        gate_size = _GATES[mode] * hidden_size
        where = {"device": device, "dtype": dtype}
        self.weight_ih = Parameter(factory.empty(gate_size, input_size, **where))
        self.weight_hh = Parameter(factory.empty(gate_size, hidden_size, **where))
        if bias:
            self.bias_ih = Parameter(factory.empty(gate_size, **where))
            self.bias_hh = Parameter(factory.empty(gate_size, **where))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        _uniform_init(self)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def forward(self, input: Tensor, hx=None):
        if input.ndim not in (1, 2):
            raise ValueError(
                f"{type(self).__name__}: Expected input to be 1D or 2D, got {input.ndim}D instead"
            )
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        zeros = factory.zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
        if self.mode == "LSTM":
            h, c = (zeros, zeros) if hx is None else hx
            h, c = (h, c) if batched else (h.unsqueeze(0), c.unsqueeze(0))
        else:
            h = zeros if hx is None else (hx if batched else hx.unsqueeze(0))
            c = None
        gi = F.linear(x, self.weight_ih, self.bias_ih)
        h, c = _step(self.mode, gi, h, c, self.weight_hh, self.bias_hh)
        if not batched:
            h = h.squeeze(0)
            c = c.squeeze(0) if c is not None else None
        return (h, c) if self.mode == "LSTM" else h


class RNNCell(RNNCellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None) -> None:  # fmt: skip
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        self.nonlinearity = nonlinearity
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(mode, input_size, hidden_size, bias, device, dtype)


class LSTMCell(RNNCellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device=None, dtype=None) -> None:  # fmt: skip
        super().__init__("LSTM", input_size, hidden_size, bias, device, dtype)


class GRUCell(RNNCellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device=None, dtype=None) -> None:  # fmt: skip
        super().__init__("GRU", input_size, hidden_size, bias, device, dtype)
