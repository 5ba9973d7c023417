"""Recurrent networks: fused LSTM, GRU and Elman cells, and whole layers over sequences.

A time step splits into matrix products, computed by our GEMM, and an elementwise
cell computed by one fused kernel per step (`backend.lstm_cell`, `gru_cell`,
`rnn_cell` and their backwards):

    input_gates  = x @ W_ih^T          one GEMM for all time steps of a layer
    hidden_gates = h_prev @ W_hh^T     one GEMM per step
    h, c         = cell(input_gates, hidden_gates, c_prev, b_ih, b_hh)

`lstm_cell`, `gru_cell`, `rnn_tanh_cell` and `rnn_relu_cell` (PyTorch's `torch.*_cell`
signatures) are one step; `_Recurrence` runs one direction of one layer over a whole
sequence in one backend call (`rnn_sequence`: the time loop runs in the kernels), whose
backward sums the weight gradient of every step in a single GEMM (dW_hh = dG^T @ H_prev
over all rows), so that only dh_prev = dG_t @ W_hh remains per step.  Sequences are
packed (PyTorch's `PackedSequence` layout): the rows of step t are the first
batch_sizes[t] sequences, batch_sizes non-increasing; a padded batch is the special case
of equal sizes.

The backward of every Function here is computed by the fused kernels and is not
itself differentiable: create_graph=True through them raises.
"""
from ...autograd.function import Function
from ...ops.linalg import matmul
from ...ops.shape import cat, stack
from ...tensor import Tensor
from .dropout import dropout as _dropout_op
from .normalization import _no_double_backward

__all__ = ["lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell"]

#: Gate blocks per mode: rows of W_ih / W_hh are gates * hidden_size.
GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}
_NONLINEARITY = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}
#: The layer class of each mode, as named in messages.
LAYER_NAMES = {"LSTM": "LSTM", "GRU": "GRU", "RNN_TANH": "RNN", "RNN_RELU": "RNN"}


def _wrap(array, device):
    return Tensor._make(array, device)


def _bias_grads(ctx, grad_in, grad_hidden, first):
    """Gradients of (input_bias, hidden_bias) at argument positions first, first + 1:
    the gate gradients summed over the batch rows (separate arrays, so the two
    .grad tensors never alias)."""
    be = ctx.backend
    need_i, need_h = ctx.needs_input_grad[first:first + 2]
    return (_wrap(be.reduce("sum", grad_in, (0,), False), ctx.device) if need_i else None,
            _wrap(be.reduce("sum", grad_hidden, (0,), False), ctx.device) if need_h else None)


# ---------------------------------------------------------------- one time step
class FusedLSTMCell(Function):
    """(hy, cy) of one LSTM step from its gate pre-activations (B, 4H)."""

    def forward(ctx, input_gates, hidden_gates, cx, input_bias, hidden_bias):
        hy, cy, workspace = ctx.backend.lstm_cell(input_gates, hidden_gates, cx, input_bias,
                                                  hidden_bias)
        ctx.save_for_backward(cx, cy, workspace)
        return hy, cy

    def backward(ctx, grad_hy, grad_cy):
        _no_double_backward("lstm_cell")
        cx, cy, workspace = (t._data for t in ctx.saved_tensors)
        gates, gcx = ctx.backend.lstm_cell_backward(grad_hy._data, grad_cy._data, cx, cy,
                                                    workspace)
        g = _wrap(gates, ctx.device)
        return (g, g, _wrap(gcx, ctx.device)) + _bias_grads(ctx, gates, gates, 3)


class FusedGRUCell(Function):
    """hy of one GRU step from its gate pre-activations (B, 3H)."""

    def forward(ctx, input_gates, hidden_gates, hx, input_bias, hidden_bias):
        hy, workspace = ctx.backend.gru_cell(input_gates, hidden_gates, hx, input_bias,
                                             hidden_bias)
        ctx.save_for_backward(hx, workspace)
        return hy

    def backward(ctx, grad_hy):
        _no_double_backward("gru_cell")
        hx, workspace = (t._data for t in ctx.saved_tensors)
        gi, gh, ghx = ctx.backend.gru_cell_backward(grad_hy._data, hx, workspace)
        return (_wrap(gi, ctx.device), _wrap(gh, ctx.device), _wrap(ghx, ctx.device)) + \
            _bias_grads(ctx, gi, gh, 3)


class FusedRNNCell(Function):
    """hy = tanh or relu of the summed pre-activations (B, H) of one Elman RNN step."""

    def forward(ctx, input_gates, hidden_gates, input_bias, hidden_bias, nonlinearity):
        hy = ctx.backend.rnn_cell(input_gates, hidden_gates, input_bias, hidden_bias,
                                  nonlinearity)
        ctx.nonlinearity = nonlinearity
        ctx.save_for_backward(hy)
        return hy

    def backward(ctx, grad_hy):
        _no_double_backward(f"rnn_{ctx.nonlinearity}_cell")
        (hy,) = ctx.saved_tensors
        gates = ctx.backend.rnn_cell_backward(grad_hy._data, hy._data, ctx.nonlinearity)
        g = _wrap(gates, ctx.device)
        return (g, g) + _bias_grads(ctx, gates, gates, 2) + (None,)


# ---------------------------------------------------------------- one layer, all steps
class _Recurrence(Function):
    """One direction of one layer over a packed sequence: one backend call
    (`rnn_sequence`, every time step) forward and one backward.

    input_gates (N, G*H) = x @ W_ih^T for every row of the sequence (no bias),
    w_hh (G*H, H), biases (G*H,) or None, h0 / c0 (B, H) or None (zeros; c0 only for
    LSTM).  Returns (output (N, H), h_n (B, H)) and, for LSTM, c_n (B, H): the state
    after each sequence's last step (its first step when `reverse`).
    """

    def forward(ctx, input_gates, w_hh, b_ih, b_hh, h0, c0, mode, batch_sizes, reverse):
        out, h_n, c_n, saved = ctx.backend.rnn_sequence(mode, input_gates, w_hh, b_ih, b_hh,
                                                        h0, c0, batch_sizes, reverse)
        ctx.mode, ctx.batch_sizes, ctx.reverse = mode, batch_sizes, reverse
        # The Elman RNN's backward reads its output; the other modes keep theirs in saved.
        ctx.save_for_backward(w_hh, out if mode in _NONLINEARITY else None, *saved)
        return (out, h_n, c_n) if mode == "LSTM" else (out, h_n)

    def backward(ctx, grad_out, grad_hn, grad_cn=None):
        _no_double_backward(LAYER_NAMES[ctx.mode])
        w_hh, out, *saved = [None if s is None else s._data for s in ctx.saved_tensors]
        need = ctx.needs_input_grad
        grads = ctx.backend.rnn_sequence_backward(
            ctx.mode, grad_out._data, grad_hn._data, None if grad_cn is None else grad_cn._data,
            w_hh, out, tuple(saved), ctx.batch_sizes, ctx.reverse, *need[1:4])
        # One gradient per argument (input_gates, w_hh, b_ih, b_hh, h0, c0), then none for
        # mode, batch_sizes and reverse.
        return tuple(_wrap(g, ctx.device) if g is not None and needed else None
                     for g, needed in zip(grads, need)) + (None, None, None)


def rnn_layers(mode, data, batch_sizes, hx, cx, weights, num_layers, bidirectional,
               dropout, training):
    """A stack of recurrent layers over the packed rows `data` (N, input_size).

    weights: per layer and direction (w_ih, w_hh, b_ih, b_hh), biases possibly None;
    hx / cx: (num_layers * num_directions, B, H) or None.  Returns (output (N,
    num_directions * H), h_n, c_n) with c_n None unless mode is "LSTM".  `dropout` is
    applied to the output of every layer but the last when training.
    """
    directions = 2 if bidirectional else 1
    h_n, c_n = [], []
    layer_input = data
    for layer in range(num_layers):
        outputs = []
        for direction in range(directions):
            index = layer * directions + direction
            w_ih, w_hh, b_ih, b_hh = weights[index]
            gates = matmul(layer_input, w_ih.t())
            result = _Recurrence.apply(gates, w_hh, b_ih, b_hh,
                                       None if hx is None else hx[index],
                                       None if cx is None else cx[index],
                                       mode, batch_sizes, direction == 1)
            outputs.append(result[0])
            h_n.append(result[1])
            if mode == "LSTM":
                c_n.append(result[2])
        layer_input = outputs[0] if directions == 1 else cat(outputs, 1)
        if dropout and training and layer < num_layers - 1:
            layer_input = _dropout_op(layer_input, dropout, True)
    return layer_input, stack(h_n), stack(c_n) if c_n else None


# ---------------------------------------------------------------- public cell API
def _check_cell(op, input, hx, w_ih, w_hh, gates):
    for name, t in (("input", input), ("hx", hx), ("w_ih", w_ih), ("w_hh", w_hh)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    if input.ndim != 2 or hx.ndim != 2:
        raise RuntimeError(f"{op}: expected 2-D input (batch, input_size) and hx (batch, "
                           f"hidden_size), got input of shape {list(input.shape)} and hx of "
                           f"shape {list(hx.shape)}")
    hidden = hx.shape[1]
    if tuple(w_ih.shape) != (gates * hidden, input.shape[1]) or \
            tuple(w_hh.shape) != (gates * hidden, hidden):
        raise RuntimeError(f"{op}: expected w_ih of shape {[gates * hidden, input.shape[1]]} "
                           f"and w_hh of shape {[gates * hidden, hidden]} for input of shape "
                           f"{list(input.shape)} and hx of shape {list(hx.shape)}, got "
                           f"{list(w_ih.shape)} and {list(w_hh.shape)}")
    if input.shape[0] != hx.shape[0]:
        raise RuntimeError(f"{op}: input batch size {input.shape[0]} doesn't match hx batch "
                           f"size {hx.shape[0]}")


def _check_dtypes(op, input, *tensors):
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: expected a floating point input, got {input.dtype}")
    for t in tensors:
        if t is not None and t.dtype is not input.dtype:
            raise TypeError(f"{op}: all tensors must have the input's dtype {input.dtype}, "
                            f"got one of {t.dtype}")


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step (PyTorch's `torch.lstm_cell`): `input` (B, input_size), `hx` a pair
    (h, c) of (B, hidden_size) tensors, weights (4 hidden_size, input_size / hidden_size)
    with the gates in the order (i, f, g, o).  Returns (h', c')."""
    if not isinstance(hx, (tuple, list)) or len(hx) != 2:
        raise TypeError("lstm_cell: hx must be a pair (h, c) of tensors")
    h, c = hx
    _check_cell("lstm_cell", input, h, w_ih, w_hh, 4)
    if not isinstance(c, Tensor) or tuple(c.shape) != tuple(h.shape):
        raise RuntimeError(f"lstm_cell: expected c of h's shape {list(h.shape)}, got "
                           f"{list(c.shape) if isinstance(c, Tensor) else type(c).__name__}")
    _check_dtypes("lstm_cell", input, h, c, w_ih, w_hh, b_ih, b_hh)
    return FusedLSTMCell.apply(matmul(input, w_ih.t()), matmul(h, w_hh.t()), c, b_ih, b_hh)


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step (PyTorch's `torch.gru_cell`): gates (r, z, n),
    h' = (1 - z) n + z h with n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn))."""
    _check_cell("gru_cell", input, hx, w_ih, w_hh, 3)
    _check_dtypes("gru_cell", input, hx, w_ih, w_hh, b_ih, b_hh)
    return FusedGRUCell.apply(matmul(input, w_ih.t()), matmul(hx, w_hh.t()), hx, b_ih, b_hh)


def _rnn_cell(op, nonlinearity, input, hx, w_ih, w_hh, b_ih, b_hh):
    _check_cell(op, input, hx, w_ih, w_hh, 1)
    _check_dtypes(op, input, hx, w_ih, w_hh, b_ih, b_hh)
    return FusedRNNCell.apply(matmul(input, w_ih.t()), matmul(hx, w_hh.t()), b_ih, b_hh,
                              nonlinearity)


def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One Elman RNN step: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)."""
    return _rnn_cell("rnn_tanh_cell", "tanh", input, hx, w_ih, w_hh, b_ih, b_hh)


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One Elman RNN step with ReLU: h' = relu(x W_ih^T + b_ih + h W_hh^T + b_hh)."""
    return _rnn_cell("rnn_relu_cell", "relu", input, hx, w_ih, w_hh, b_ih, b_hh)
