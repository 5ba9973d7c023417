"""Recurrent layers: RNN, LSTM, GRU over whole sequences and their one-step cells.

Parameter names, shapes, gate order and initialization are PyTorch's, so state
dicts correspond: layer k has `weight_ih_l{k}` (gates * hidden_size, input size of
the layer), `weight_hh_l{k}` (gates * hidden_size, hidden_size), `bias_ih_l{k}` and
`bias_hh_l{k}`, with the suffix `_reverse` for the backward direction; every entry
starts uniform in +-1/sqrt(hidden_size).
"""
import math
import numbers
import warnings

from ...ops.creation import empty, zeros
from .. import functional as F
from .. import init
from ..functional.rnn import GATES, LAYER_NAMES, rnn_layers
from ..parameter import Parameter
from ..utils.rnn import PackedSequence
from .module import Module

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]


def _check_sizes(op, input_size, hidden_size):
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{op}: {name} should be of type int, got: {type(value).__name__}")
    if hidden_size <= 0:
        raise ValueError(f"{op}: hidden_size must be greater than zero, got {hidden_size}")
    if input_size < 0:
        raise ValueError(f"{op}: input_size must be non-negative, got {input_size}")


def _reset_uniform(module):
    """PyTorch's init: every weight and bias uniform in +-1/sqrt(hidden_size)."""
    stdv = 1.0 / math.sqrt(module.hidden_size)
    for weight in module.parameters():
        init.uniform_(weight, -stdv, stdv)


def _check_dtype(op, input, weight):
    if input.dtype is not weight.dtype:
        raise RuntimeError(f"{op}: input has dtype {input.dtype} but the parameters have dtype "
                           f"{weight.dtype}; convert one of them (module.double(), "
                           "input.float(), ...)")


class RNNBase(Module):
    """The multi-layer recurrent network shared by RNN, LSTM and GRU.

    `mode` is "RNN_TANH", "RNN_RELU", "LSTM" or "GRU".  Inputs are (T, B, input_size)
    (B, T, ... with batch_first), unbatched (T, input_size), or a PackedSequence;
    `dropout` applies to the outputs of every layer but the last during training.
    """

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, proj_size=0,
                 device=None, dtype=None):
        super().__init__()
        op = LAYER_NAMES[mode]
        _check_sizes(op, input_size, hidden_size)
        if not isinstance(num_layers, int) or isinstance(num_layers, bool) or num_layers <= 0:
            raise ValueError(f"{op}: num_layers must be an int greater than zero, got "
                             f"{num_layers!r}")
        if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or \
                not 0 <= dropout <= 1:
            raise ValueError(f"{op}: dropout should be a number in range [0, 1] representing "
                             "the probability of an element being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                          "non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=2)
        if proj_size < 0:
            raise ValueError(f"{op}: proj_size should be a positive integer or zero to disable "
                             "projections")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if proj_size:
            raise ValueError("LSTM: projections (proj_size > 0) are not supported by genesis; "
                             "use proj_size=0 and, if needed, a Linear layer on the output")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        directions = 2 if bidirectional else 1
        gate_size = GATES[mode] * hidden_size
        self._flat_weights_names = []
        self._all_weights = []
        for layer in range(num_layers):
            for direction in range(directions):
                layer_input = input_size if layer == 0 else hidden_size * directions
                suffix = "_reverse" if direction == 1 else ""
                shapes = [("weight_ih", (gate_size, layer_input)),
                          ("weight_hh", (gate_size, hidden_size))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                names = []
                for kind, shape in shapes:
                    name = f"{kind}_l{layer}{suffix}"
                    setattr(self, name, Parameter(empty(*shape, dtype=dtype, device=device)))
                    names.append(name)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    def reset_parameters(self):
        """Every weight and bias uniform in +-1/sqrt(hidden_size) (PyTorch's init)."""
        _reset_uniform(self)

    def flatten_parameters(self):
        """PyTorch compacts weights for cuDNN here; genesis reads them where they are,
        so there is nothing to do."""

    @property
    def all_weights(self):
        """The parameters per layer and direction: [[w_ih, w_hh, b_ih, b_hh], ...]."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def _weights(self):
        return [tuple(group) if self.bias else tuple(group) + (None, None)
                for group in self.all_weights]

    def _check_hidden(self, h, expected, what, unbatched):
        op = LAYER_NAMES[self.mode]
        if unbatched:
            if h.ndim != 2:
                raise RuntimeError(f"{op}: for unbatched 2-D input, {what} should also be 2-D "
                                   f"but got {h.ndim}-D tensor")
            h = h.unsqueeze(1)
        if tuple(h.shape) != expected:
            raise RuntimeError(f"{op}: Expected {what} size {expected}, got {list(h.shape)}")
        return h

    def forward(self, input, hx=None):
        """(output, h_n) -- (output, (h_n, c_n)) for LSTM.  output holds the last layer's
        hidden states of every step (both directions concatenated), as a PackedSequence
        when the input is one; h_n (and c_n) the final states of every layer and
        direction, (num_layers * num_directions, B, hidden_size)."""
        op = LAYER_NAMES[self.mode]
        directions = 2 if self.bidirectional else 1
        packed = isinstance(input, PackedSequence)
        if packed:
            data = input.data
            batch_sizes = [int(n) for n in input.batch_sizes.tolist()]
            batch, unbatched = batch_sizes[0], False
            if data.ndim != 2:
                raise ValueError(f"{op}: packed input data must be 2-D (rows, input_size), got "
                                 f"shape {list(data.shape)}")
        else:
            if input.ndim not in (2, 3):
                raise ValueError(f"{op}: Expected input to be 2D or 3D, got {input.ndim}D "
                                 "tensor instead")
            unbatched = input.ndim == 2
            x = input.unsqueeze(1) if unbatched else input
            if self.batch_first and not unbatched:
                x = x.transpose(0, 1)
            steps, batch = x.shape[0], x.shape[1]
            if steps == 0:
                raise RuntimeError(f"{op}: Expected a sequence of at least one step, got input "
                                   f"of shape {list(input.shape)}")
            data = x.reshape(steps * batch, x.shape[2])
            batch_sizes = [batch] * steps
        if data.shape[-1] != self.input_size:
            raise RuntimeError(f"{op}: input.size(-1) must be equal to input_size. Expected "
                               f"{self.input_size}, got {data.shape[-1]}")
        w_ih = self.weight_ih_l0
        _check_dtype(op, data, w_ih)
        expected = (self.num_layers * directions, batch, self.hidden_size)
        h0 = c0 = None
        if hx is not None:
            if self.mode == "LSTM":
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise TypeError("LSTM: hx must be a tuple (h_0, c_0) of tensors")
                h0 = self._check_hidden(hx[0], expected, "hidden[0]", unbatched)
                c0 = self._check_hidden(hx[1], expected, "hidden[1]", unbatched)
            else:
                h0 = self._check_hidden(hx, expected, "hidden", unbatched)
            for h in (h0, c0):
                if h is not None:
                    _check_dtype(op, h, w_ih)
            if packed and input.sorted_indices is not None:
                h0 = h0.index_select(1, input.sorted_indices)
                c0 = None if c0 is None else c0.index_select(1, input.sorted_indices)
        out, h_n, c_n = rnn_layers(self.mode, data, batch_sizes, h0, c0, self._weights(),
                                   self.num_layers, self.bidirectional, self.dropout,
                                   self.training)
        if packed:
            output = PackedSequence(out, input.batch_sizes, input.sorted_indices,
                                    input.unsorted_indices)
            if input.unsorted_indices is not None:
                h_n = h_n.index_select(1, input.unsorted_indices)
                c_n = None if c_n is None else c_n.index_select(1, input.unsorted_indices)
        else:
            output = out.reshape(steps, batch, directions * self.hidden_size)
            if unbatched:
                output, h_n = output.squeeze(1), h_n.squeeze(1)
                c_n = None if c_n is None else c_n.squeeze(1)
            elif self.batch_first:
                output = output.transpose(0, 1)
        return (output, (h_n, c_n)) if self.mode == "LSTM" else (output, h_n)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s



class RNN(RNNBase):
    """Elman RNN: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) per layer
    (`nonlinearity="relu"` for max(0, .))."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None):
        modes = {"tanh": "RNN_TANH", "relu": "RNN_RELU"}
        if nonlinearity not in modes:
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                             "'relu'.")
        super().__init__(modes[nonlinearity], input_size, hidden_size, num_layers, bias,
                         batch_first, dropout, bidirectional, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory: per layer and step, gates (i, f, g, o) = (sigmoid,
    sigmoid, tanh, sigmoid)(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh),
    c_t = f c_{t-1} + i g and h_t = o tanh(c_t).  `hx` is a pair (h_0, c_0)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, device=device, dtype=dtype)


class GRU(RNNBase):
    """Gated recurrent unit: gates r, z = sigmoid(x_t W_i^T + b_i + h_{t-1} W_h^T + b_h),
    n = tanh(x_t W_in^T + b_in + r (h_{t-1} W_hn^T + b_hn)), h_t = (1 - z) n + z h_{t-1}."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, device=device, dtype=dtype)


# ---------------------------------------------------------------- cells
class RNNCellBase(Module):
    """One time step: `weight_ih` (num_chunks * hidden_size, input_size), `weight_hh`
    (num_chunks * hidden_size, hidden_size), `bias_ih` and `bias_hh`."""

    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        _check_sizes(type(self).__name__, input_size, hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        gate_size = num_chunks * hidden_size
        self.weight_ih = Parameter(empty(gate_size, input_size, dtype=dtype, device=device))
        self.weight_hh = Parameter(empty(gate_size, hidden_size, dtype=dtype, device=device))
        if bias:
            self.bias_ih = Parameter(empty(gate_size, dtype=dtype, device=device))
            self.bias_hh = Parameter(empty(gate_size, dtype=dtype, device=device))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        """Every weight and bias uniform in +-1/sqrt(hidden_size) (PyTorch's init)."""
        _reset_uniform(self)

    def _prepare(self, input, states):
        """(input as (B, input_size), states as (B, hidden_size) tensors (zeros when
        `states` is None), whether the input was unbatched)."""
        op = type(self).__name__
        if input.ndim not in (1, 2):
            raise ValueError(f"{op}: Expected input to be 1D or 2D, got {input.ndim}D instead")
        unbatched = input.ndim == 1
        if unbatched:
            input = input.unsqueeze(0)
        if input.shape[1] != self.input_size:
            raise RuntimeError(f"{op}: input has inconsistent input_size: got "
                               f"{input.shape[1]}, expected {self.input_size}")
        _check_dtype(op, input, self.weight_ih)
        out = []
        for i, h in enumerate(states):
            if h is None:
                h = zeros(input.shape[0], self.hidden_size, dtype=input.dtype,
                          device=input.device)
            else:
                if h.ndim != (1 if unbatched else 2):
                    raise RuntimeError(f"{op}: Expected hidden{i} to be "
                                       f"{'1D' if unbatched else '2D'} for "
                                       f"{'1D' if unbatched else '2D'} input, got {h.ndim}D")
                if unbatched:
                    h = h.unsqueeze(0)
                if h.shape[1] != self.hidden_size:
                    raise RuntimeError(f"{op}: hidden{i} has inconsistent hidden_size: got "
                                       f"{h.shape[1]}, expected {self.hidden_size}")
                if h.shape[0] != input.shape[0]:
                    raise RuntimeError(f"{op}: Input batch size {input.shape[0]} doesn't match "
                                       f"hidden{i} batch size {h.shape[0]}")
                _check_dtype(op, h, self.weight_ih)
            out.append(h)
        return input, out, unbatched

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        return s


class RNNCell(RNNCellBase):
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu); `hx` defaults to zeros."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None,
                 dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}. Select from 'tanh' or "
                             "'relu'.")
        super().__init__(input_size, hidden_size, bias, 1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        input, (h,), unbatched = self._prepare(input, [hx])
        step = F.rnn_tanh_cell if self.nonlinearity == "tanh" else F.rnn_relu_cell
        out = step(input, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return out.squeeze(0) if unbatched else out


class LSTMCell(RNNCellBase):
    """One LSTM step: returns (h', c') from `input` and `hx` = (h, c) (zeros by default)."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError("LSTMCell: hx must be a tuple (h, c) of tensors")
        input, (h, c), unbatched = self._prepare(input, [None, None] if hx is None else hx)
        h, c = F.lstm_cell(input, (h, c), self.weight_ih, self.weight_hh, self.bias_ih,
                           self.bias_hh)
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)


class GRUCell(RNNCellBase):
    """One GRU step: h' from `input` and `hx` (zeros by default)."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        input, (h,), unbatched = self._prepare(input, [hx])
        out = F.gru_cell(input, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return out.squeeze(0) if unbatched else out
