"""Recurrent networks: fused LSTM, GRU and Elman cells, and whole layers over sequences.

A time step splits into matrix products, computed by our GEMM, and an elementwise
cell computed by one fused kernel per step (`backend.lstm_cell`, `gru_cell`,
`rnn_cell` and their backwards):

    input_gates  = x @ W_ih^T          one GEMM for all time steps of a layer
    hidden_gates = h_prev @ W_hh^T     one GEMM per step
    h, c         = cell(input_gates, hidden_gates, c_prev, b_ih, b_hh)

`lstm_cell`, `gru_cell`, `rnn_tanh_cell` and `rnn_relu_cell` (PyTorch's `torch.*_cell`
signatures) are one step; `_Recurrence` runs one direction of one layer over a whole
sequence, so that its backward sums the weight gradient of every step in a single
GEMM (dW_hh = dG^T @ H_prev over all rows) and only dh_prev = dG_t @ W_hh remains per
step.  Sequences are packed (PyTorch's `PackedSequence` layout): the rows of step t
are the first batch_sizes[t] sequences, batch_sizes non-increasing; a padded batch is
the special case of equal sizes.

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
def _steps(batch_sizes, reverse):
    """(first row, rows, rows carried from the previously processed step) per time
    step, in the order the steps run.  Carried rows continue sequences of that step; the others
    start from the initial state (all rows at the first step; for the reverse
    direction also the longer sequences joining as the batch grows)."""
    offsets, start = [], 0
    for n in batch_sizes:
        offsets.append(start)
        start += n
    order = range(len(batch_sizes) - 1, -1, -1) if reverse else range(len(batch_sizes))
    plan, prev = [], 0
    for t in order:
        n = batch_sizes[t]
        plan.append((offsets[t], n, min(n, prev)))
        prev = n
    return plan


class _Recurrence(Function):
    """One direction of one layer over a packed sequence.

    input_gates (N, G*H) = x @ W_ih^T for every row of the sequence (no bias),
    w_hh (G*H, H), biases (G*H,) or None, h0 / c0 (B, H) or None (zeros; c0 only for
    LSTM).  Returns (output (N, H), h_n (B, H)) and, for LSTM, c_n (B, H): the state
    after each sequence's last step (its first step when `reverse`).
    """

    def forward(ctx, input_gates, w_hh, b_ih, b_hh, h0, c0, mode, batch_sizes, reverse):
        be = ctx.backend
        batch, hidden = batch_sizes[0], w_hh.shape[1]
        dtype = input_gates.dtype
        lstm = mode == "LSTM"
        if h0 is None:
            h0 = be.full((batch, hidden), 0, dtype)
        if lstm and c0 is None:
            c0 = be.full((batch, hidden), 0, dtype)
        w_t = be.contiguous(be.permute(w_hh, (1, 0)))  # packed faster by every step's GEMM
        plan = _steps(batch_sizes, reverse)
        out = be.empty((input_gates.shape[0], hidden), dtype)
        h_n = be.empty((batch, hidden), dtype)
        c_n = be.empty((batch, hidden), dtype) if lstm else None
        h_prevs, c_prevs, hs, cs, workspaces = [], [], [], [], []
        h = c = None
        for k, (first, n, carried) in enumerate(plan):
            rows = (slice(first, first + n),)
            h_prev = _state(be, h, h0, n, carried)
            gates = be.view_index(input_gates, rows)
            hidden_gates = be.matmul(h_prev, w_t)
            if lstm:
                c_prev = _state(be, c, c0, n, carried)
                h, c, ws = be.lstm_cell(gates, hidden_gates, c_prev, b_ih, b_hh)
                c_prevs.append(c_prev)
                cs.append(c)
                workspaces.append(ws)
            elif mode == "GRU":
                h, ws = be.gru_cell(gates, hidden_gates, h_prev, b_ih, b_hh)
                workspaces.append(ws)
            else:
                h = be.rnn_cell(gates, hidden_gates, b_ih, b_hh, _NONLINEARITY[mode])
                hs.append(h)
            be.copy_into(be.view_index(out, rows), h)
            # rows whose sequence ends here (the next step runs fewer rows)
            ends = min(plan[k + 1][1], n) if k + 1 < len(plan) else 0
            if ends < n:
                be.copy_into(be.view_index(h_n, (slice(ends, n),)),
                             be.view_index(h, (slice(ends, n),)))
                if lstm:
                    be.copy_into(be.view_index(c_n, (slice(ends, n),)),
                                 be.view_index(c, (slice(ends, n),)))
            h_prevs.append(h_prev)
        ctx.mode, ctx.plan = mode, plan
        # One array per step in each list, in the order the steps ran.
        per_step = {"LSTM": (h_prevs, c_prevs, cs, workspaces),
                    "GRU": (h_prevs, workspaces)}.get(mode, (h_prevs, hs))
        ctx.save_for_backward(w_hh, *(a for arrays in per_step for a in arrays))
        return (out, h_n, c_n) if lstm else (out, h_n)

    def backward(ctx, grad_out, grad_hn, grad_cn=None):
        _no_double_backward(LAYER_NAMES[ctx.mode])
        be, device, mode, plan = ctx.backend, ctx.device, ctx.mode, ctx.plan
        saved = [s._data for s in ctx.saved_tensors]
        w_hh, n = saved[0], len(plan)
        per_step = [saved[i:i + n] for i in range(1, len(saved), n)]
        lstm = mode == "LSTM"
        if lstm:
            h_prevs, c_prevs, cs, workspaces = per_step
        elif mode == "GRU":
            h_prevs, workspaces = per_step
        else:
            h_prevs, hs = per_step
        need_w = ctx.needs_input_grad[1]
        grad_out = grad_out._data
        rows_total, width = grad_out.shape[0], w_hh.shape[0]
        dtype = grad_out.dtype
        d_gates = be.empty((rows_total, width), dtype)
        # GRU's hidden-gate gradient differs from the input-gate one in the n block.
        d_hidden = be.empty((rows_total, width), dtype) if mode == "GRU" else d_gates
        h_prev_all = be.empty((rows_total, w_hh.shape[1]), dtype) if need_w else None
        dh_state = be.copy(grad_hn._data)
        dc_state = be.copy(grad_cn._data) if lstm else None
        dh0 = be.full(dh_state.shape, 0, dtype)
        dc0 = be.full(dh_state.shape, 0, dtype) if lstm else None
        for k in range(n - 1, -1, -1):
            first, size, carried = plan[k]
            rows, head = (slice(first, first + size),), (slice(0, size),)
            dh = be.binary("add", be.view_index(grad_out, rows), be.view_index(dh_state, head))
            if lstm:
                dg, dc_prev = be.lstm_cell_backward(dh, be.view_index(dc_state, head),
                                                    c_prevs[k], cs[k], workspaces[k])
                dh_prev = be.matmul(dg, w_hh)
                be.copy_into(be.view_index(d_gates, rows), dg)
                _carry(be, dc_state, dc0, dc_prev, carried, size)
            elif mode == "GRU":
                dg, dgh, dh_direct = be.gru_cell_backward(dh, h_prevs[k], workspaces[k])
                dh_prev = be.binary_("add", be.matmul(dgh, w_hh), dh_direct)
                be.copy_into(be.view_index(d_gates, rows), dg)
                be.copy_into(be.view_index(d_hidden, rows), dgh)
            else:
                dg = be.rnn_cell_backward(dh, hs[k], _NONLINEARITY[mode])
                dh_prev = be.matmul(dg, w_hh)
                be.copy_into(be.view_index(d_gates, rows), dg)
            _carry(be, dh_state, dh0, dh_prev, carried, size)
            if need_w:
                be.copy_into(be.view_index(h_prev_all, rows), h_prevs[k])
        grads = [_wrap(d_gates, device) if ctx.needs_input_grad[0] else None,
                 _wrap(be.matmul(be.permute(d_hidden, (1, 0)), h_prev_all), device)
                 if need_w else None]
        grads += _bias_grads(ctx, d_gates, d_hidden, 2)
        grads += [_wrap(dh0, device) if ctx.needs_input_grad[4] else None,
                  _wrap(dc0, device) if lstm and ctx.needs_input_grad[5] else None]
        return tuple(grads) + (None, None, None)


def _state(be, prev, initial, n, carried):
    """The (n, H) state entering a step: the previous step's first `carried` rows,
    then rows carried..n of the initial state."""
    if carried == n:
        return prev if prev.shape[0] == n else be.view_index(prev, (slice(0, n),))
    if carried == 0:
        return initial if initial.shape[0] == n else be.view_index(initial, (slice(0, n),))
    state = be.empty((n, initial.shape[1]), initial.dtype)
    be.copy_into(be.view_index(state, (slice(0, carried),)),
                 be.view_index(prev, (slice(0, carried),)))
    be.copy_into(be.view_index(state, (slice(carried, n),)),
                 be.view_index(initial, (slice(carried, n),)))
    return state


def _carry(be, state, initial_grad, grad, carried, n):
    """Route a step's state gradient (n, H): rows < carried to the previous step,
    the rest to the initial state."""
    if carried:
        be.copy_into(be.view_index(state, (slice(0, carried),)),
                     be.view_index(grad, (slice(0, carried),)))
    if carried < n:
        be.copy_into(be.view_index(initial_grad, (slice(carried, n),)),
                     be.view_index(grad, (slice(carried, n),)))


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
