"""CPU backend: numpy arrays supply memory and views; genesis._C computes.

Each function takes and returns numpy arrays.  Nothing here does arithmetic with
numpy: outputs are allocated with `empty` and filled by a kernel.
"""
import math

import numpy as np

from .. import _C
from .._broadcast import broadcast_shape

name = "cpu"
array_type = np.ndarray

_U = _C.UNARY_OPS
_B = _C.BINARY_OPS
_R = _C.REDUCE_OPS
_BOOL_RESULT = frozenset(("eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
                          "logical_xor"))


# ------------------------------------------------------------------ memory
# From this many elements up, arrays come from genesis._C's host block cache
# (csrc/host_cache.h): memory kept mapped across steps, instead of fresh pages that
# fault on first touch.  Below it, malloc's heap already reuses memory.
_CACHED_FROM = 1 << 14


def empty(shape, dtype):
    """An uninitialized C-contiguous array of `shape` (a tuple or an int) and `dtype`."""
    if type(shape) is int:
        shape = (shape,)
    if math.prod(shape) >= _CACHED_FROM:
        return _C.empty(shape, dtype)
    return np.empty(shape, dtype)


def full(shape, value, dtype):
    out = empty(shape, dtype)
    _C.fill(out, float(value))
    return out


def from_data(data, dtype):
    """A new array holding Python/numpy data (nested lists, scalars, arrays)."""
    return np.array(data, dtype=dtype)


def to_numpy(x):
    return x


def from_numpy(a):
    return a


def copy(x):
    out = empty(x.shape, x.dtype)
    _C.copy(x, out)
    return out


def cast(x, dtype):
    if x.dtype == dtype:
        return x
    out = empty(x.shape, dtype)
    _C.copy(x, out)
    return out


def contiguous(x):
    return x if x.flags.c_contiguous else copy(x)


def copy_into(dst, src, whole_bytes=0):
    """dst[...] = src, src broadcast to dst's shape and converted to its dtype.

    whole_bytes: the size of the array dst is a piece of, when an op fills one piece by
    piece (cat): the copy streams its stores past the cache when that is large.
    """
    if src.shape != dst.shape:
        src = np.broadcast_to(src, dst.shape)
    _C.copy(src, dst, whole_bytes)


def fill_(dst, value):
    _C.fill(dst, float(value))


# ------------------------------------------------------------------ views
def reshape(x, shape):
    """A view when strides allow, otherwise a contiguous copy made by our kernel."""
    if x.flags.c_contiguous:
        return x.reshape(shape)  # always a view (and a C call, where np.reshape is Python)
    try:
        return np.reshape(x, shape, copy=False)
    except ValueError:
        return np.reshape(copy(x), shape)


def permute(x, axes):
    return x.transpose(axes)


def broadcast_to(x, shape):
    return np.broadcast_to(x, shape)


def view_index(x, key):
    """Basic indexing (ints, slices, None): always a view, never a numpy scalar."""
    out = x[key]
    return out if isinstance(out, np.ndarray) else x[tuple(key) + (Ellipsis,)]


def flip(x, dims):
    key = [slice(None)] * x.ndim
    for d in dims:
        key[d] = slice(None, None, -1)
    return x[tuple(key)]


def shares_memory(a, b):
    return np.may_share_memory(a, b)


# ------------------------------------------------------------------ elementwise
def unary(op, x, p0=0.0, p1=0.0):
    out = empty(x.shape, np.bool_ if op == "logical_not" else x.dtype)
    _C.unary(_U[op], x, out, p0, p1)
    return out


def unary_(op, x, p0=0.0, p1=0.0):
    """In place: x = op(x)."""
    _C.unary(_U[op], x, x, p0, p1)
    return x


# The binary and where kernels broadcast their inputs to the output's shape themselves.
def binary(op, a, b):
    shape = a.shape if a.shape == b.shape else broadcast_shape("binary", a.shape, b.shape)
    out = empty(shape, np.bool_ if op in _BOOL_RESULT else a.dtype)
    _C.binary(_B[op], a, b, out)
    return out


def binary_(op, a, b):
    """In place: a = op(a, b), b broadcast to a's shape."""
    _C.binary(_B[op], a, b, a)
    return a


def where(cond, a, b):
    shape = broadcast_shape("where", cond.shape, a.shape, b.shape)
    out = empty(shape, a.dtype)
    _C.where(cond, a, b, out)
    return out



def _expand(x, shape):
    return x if x.shape == shape else np.broadcast_to(x, shape)


# ------------------------------------------------------------------ reductions
# Without keepdim, the kernels write through a keepdim-shaped view of the result, so
# that what is returned owns its memory (a gradient that does is not copied again when
# it becomes a leaf's .grad).
def reduce(op, x, dims, keepdim, dtype=None):
    kept = list(x.shape)
    for d in dims:
        kept[d] = 1
    if keepdim:
        out = empty(kept, dtype or x.dtype)
        _C.reduce(_R[op], x, out)
        return out
    out = empty([s for d, s in enumerate(x.shape) if d not in dims], dtype or x.dtype)
    _C.reduce(_R[op], x, out.reshape(kept))
    return out


def reduce_arg(is_max, x, dim, keepdim):
    kept = list(x.shape)
    kept[dim] = 1
    shape = kept if keepdim else kept[:dim] + kept[dim + 1:]
    values = empty(shape, x.dtype)
    indices = empty(shape, np.int64)
    _C.reduce_arg(is_max, x, dim, values.reshape(kept), indices.reshape(kept))
    return values, indices


def cumsum(x, dim):
    out = empty(x.shape, x.dtype)
    _C.cumsum(x, dim, out)
    return out


def softmax(x, dim, log):
    out = empty(x.shape, x.dtype)
    _C.softmax(x, dim, log, out)
    return out


def softmax_backward(y, grad, dim, log):
    out = empty(y.shape, y.dtype)
    _C.softmax_backward(y, grad, dim, log, out)
    return out


# ------------------------------------------------------------------ linear algebra
def matmul(a, b):
    """a[..., M, K] @ b[..., K, N] with broadcast batch dims (both at least 2-D)."""
    if a.ndim == 2 and b.ndim == 2:
        out = empty((a.shape[0], b.shape[1]), a.dtype)
        _C.matmul(a, b, out, False)
        return out
    batch = a.shape[:-2] if a.shape[:-2] == b.shape[:-2] else \
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    out = empty(batch + (a.shape[-2], b.shape[-1]), a.dtype)
    _C.matmul(_expand(a, batch + a.shape[-2:]), _expand(b, batch + b.shape[-2:]), out, False)
    return out


# ------------------------------------------------------------------ indexing
def gather(x, dim, index):
    out = empty(index.shape, x.dtype)
    _C.gather(x, dim, index, out)
    return out


def scatter_add_(out, dim, index, src):
    _C.scatter_add(out, dim, index, src)
    return out


def index_gather(x, indices):
    out = empty(indices[0].shape + x.shape[len(indices):], x.dtype)
    _C.index_gather(x, list(indices), out)
    return out


def index_put_(dst, indices, src, accumulate):
    _C.index_put(dst, list(indices), src, accumulate)
    return dst


def broadcast_arrays(*arrays):
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    return [_expand(a, shape) for a in arrays]


def nonzero(mask):
    out = empty((_C.count_nonzero(mask), mask.ndim), np.int64)
    _C.nonzero(mask, out)
    return out


def sort(x, dim, descending):
    values = empty(x.shape, x.dtype)
    indices = empty(x.shape, np.int64)
    _C.sort(x, dim, descending, values, indices)
    return values, indices


def topk(x, k, dim, largest):
    shape = list(x.shape)
    shape[dim] = k
    values = empty(shape, x.dtype)
    indices = empty(shape, np.int64)
    _C.topk(x, k, dim, largest, values, indices)
    return values, indices


def one_hot(index, num_classes, dtype):
    out = empty(index.shape + (num_classes,), dtype)
    _C.one_hot(index, out)
    return out


# ------------------------------------------------------------------ random numbers
def rand(shape, dtype, generator):
    return generator.random(shape, dtype=dtype)


def randn(shape, dtype, generator):
    return generator.standard_normal(shape, dtype=dtype)


def randint(low, high, shape, dtype, generator):
    return generator.integers(low, high, size=shape, dtype=dtype)


def permutation(n, generator):
    return generator.permutation(n).astype(np.int64, copy=False)


# ------------------------------------------------------------------ normalization and dropout
# The kernels need contiguous inputs; per-channel vectors may be strided (running
# statistics are updated in place in the caller's memory).  `output_mask` says which
# of (grad_input, grad_weight, grad_bias) to compute; the others come back as None.
def _grads_for(output_mask, x, param_shape):
    return (empty(x.shape, x.dtype) if output_mask[0] else None,
            empty(param_shape, x.dtype) if output_mask[1] else None,
            empty(param_shape, x.dtype) if output_mask[2] else None)


def batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps):
    """Batch norm of x (N, C, *) -> (out, save_mean, save_invstd), each statistic (C,).
    In training, given running statistics are updated in place."""
    x = contiguous(x)
    out = empty(x.shape, x.dtype)
    mean, invstd = empty(x.shape[1], x.dtype), empty(x.shape[1], x.dtype)
    _C.batch_norm(x, weight, bias, running_mean, running_var, bool(training), float(momentum),
                  float(eps), out, mean, invstd)
    return out, mean, invstd


def batch_norm_backward(grad, x, weight, save_mean, save_invstd, training, output_mask):
    """(grad_input, grad_weight, grad_bias) of batch_norm."""
    grad, x = contiguous(grad), contiguous(x)
    gi, gw, gb = _grads_for(output_mask, x, x.shape[1])
    _C.batch_norm_backward(grad, x, weight, save_mean, save_invstd, bool(training), gi, gw, gb)
    return gi, gw, gb


def layer_norm(x, normalized_shape, weight, bias, eps):
    """Layer norm over the trailing `normalized_shape` dims -> (out, mean, rstd), the
    statistics shaped x.shape[:-k] + (1,) * k."""
    x = contiguous(x)
    k = len(normalized_shape)
    stat_shape = x.shape[:x.ndim - k] + (1,) * k
    out = empty(x.shape, x.dtype)
    mean, rstd = empty(stat_shape, x.dtype), empty(stat_shape, x.dtype)
    _C.layer_norm(x, k, None if weight is None else contiguous(weight),
                  None if bias is None else contiguous(bias), float(eps), out, mean, rstd)
    return out, mean, rstd


def layer_norm_backward(grad, x, normalized_shape, mean, rstd, weight, output_mask):
    """(grad_input, grad_weight, grad_bias) of layer_norm."""
    grad, x = contiguous(grad), contiguous(x)
    gi, gw, gb = _grads_for(output_mask, x, tuple(normalized_shape))
    _C.layer_norm_backward(grad, x, len(normalized_shape), mean, rstd,
                           None if weight is None else contiguous(weight), gi, gw, gb)
    return gi, gw, gb


def group_norm(x, num_groups, weight, bias, eps):
    """Group norm of x (N, C, *) -> (out, mean, rstd), the statistics (N, num_groups)."""
    x = contiguous(x)
    out = empty(x.shape, x.dtype)
    mean = empty((x.shape[0], num_groups), x.dtype)
    rstd = empty((x.shape[0], num_groups), x.dtype)
    _C.group_norm(x, int(num_groups), weight, bias, float(eps), out, mean, rstd)
    return out, mean, rstd


def group_norm_backward(grad, x, num_groups, mean, rstd, weight, output_mask):
    """(grad_input, grad_weight, grad_bias) of group_norm."""
    grad, x = contiguous(grad), contiguous(x)
    gi, gw, gb = _grads_for(output_mask, x, x.shape[1])
    _C.group_norm_backward(grad, x, int(num_groups), mean, rstd, weight, gi, gw, gb)
    return gi, gw, gb


def dropout(x, u, p):
    """Dropout with uniform random numbers u -> (out, mask).  u's shape is x's leading
    dims followed by 1s (x's shape for dropout, (N, C, 1, ...) for dropout2d);
    mask = (u >= p) / (1 - p) has u's shape and out = x * mask."""
    x = contiguous(x)
    out = empty(x.shape, x.dtype)
    mask = empty(u.shape, x.dtype)
    _C.dropout(x, contiguous(u), float(p), out, mask)
    return out, mask
# ---- convolution and pooling
# NCHW arrays.  The caller computes every output size; `padding` of the conv
# functions is (top, bottom, left, right), the rest are (height, width) pairs.
def conv2d(x, weight, bias, out_hw, stride, padding, dilation, groups):
    out = empty((x.shape[0], weight.shape[0]) + tuple(out_hw), x.dtype)
    _C.conv2d(x, weight, bias, out, stride, padding, dilation, groups)
    return out


def conv2d_input_grad(grad, weight, bias, input_hw, stride, padding, dilation, groups):
    """conv2d's input gradient (+ bias per channel): conv_transpose2d's forward."""
    out = empty((grad.shape[0], weight.shape[1] * groups) + tuple(input_hw), grad.dtype)
    _C.conv2d_input_grad(grad, weight, bias, out, stride, padding, dilation, groups)
    return out


def conv2d_weight_grad(x, grad, weight_shape, stride, padding, dilation, groups):
    out = empty(tuple(weight_shape), x.dtype)
    _C.conv2d_weight_grad(x, grad, out, stride, padding, dilation, groups)
    return out


def max_pool2d(x, out_hw, kernel_size, stride, padding, dilation):
    """(values, int64 indices of the maxima within each H*W plane)."""
    shape = x.shape[:2] + tuple(out_hw)
    out, indices = empty(shape, x.dtype), empty(shape, np.int64)
    _C.max_pool2d(x, out, indices, kernel_size, stride, padding, dilation)
    return out, indices


def max_pool2d_backward(grad, indices, input_shape):
    out = empty(tuple(input_shape), grad.dtype)
    _C.max_pool2d_backward(grad, indices, out)
    return out


def avg_pool2d(x, out_hw, kernel_size, stride, padding, count_include_pad, divisor_override):
    """divisor_override 0 means none."""
    out = empty(x.shape[:2] + tuple(out_hw), x.dtype)
    _C.avg_pool2d(x, out, kernel_size, stride, padding, count_include_pad, divisor_override)
    return out


def avg_pool2d_backward(grad, input_shape, kernel_size, stride, padding, count_include_pad,
                        divisor_override):
    out = empty(tuple(input_shape), grad.dtype)
    _C.avg_pool2d_backward(grad, out, kernel_size, stride, padding, count_include_pad,
                           divisor_override)
    return out


def adaptive_avg_pool2d(x, out_hw):
    out = empty(x.shape[:2] + tuple(out_hw), x.dtype)
    _C.adaptive_avg_pool2d(x, out)
    return out


def adaptive_avg_pool2d_backward(grad, input_shape):
    out = empty(tuple(input_shape), grad.dtype)
    _C.adaptive_avg_pool2d_backward(grad, out)
    return out
# ---- optimizer updates
# Fused, in place, one pass over each parameter (csrc/optim.cpp).  State buffers
# are contiguous arrays of the parameter's shape and dtype; `step` is a 0-d
# float32 array in host memory that the update increments before using it.
# A buffer the variant does not use is None.
def _update_(kernel, param, grad, *args):
    """Run `kernel` on a contiguous parameter, writing back when it is strided."""
    work = param if param.flags.c_contiguous else copy(param)
    kernel(work, contiguous(grad), *args)
    if work is not param:
        _C.copy(work, param)


def sgd_update_(param, grad, momentum_buffer, lr, momentum, dampening, weight_decay,
                nesterov, maximize, init_buffer):
    """SGD; with `init_buffer` the momentum buffer (uninitialized) becomes the gradient."""
    _update_(_C.sgd_update, param, grad, momentum_buffer, lr, momentum, dampening,
             weight_decay, nesterov, maximize, init_buffer)


def adam_update_(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2,
                 eps, weight_decay, decoupled_weight_decay, maximize):
    """Adam (AdamW with `decoupled_weight_decay`); AMSGrad when max_exp_avg_sq is given."""
    _update_(_C.adam_update, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr,
             beta1, beta2, eps, weight_decay, decoupled_weight_decay, maximize)


def rmsprop_update_(param, grad, square_avg, grad_avg, momentum_buffer, step, lr, alpha, eps,
                    weight_decay, momentum, maximize):
    """RMSprop; centered when grad_avg is given, momentum buffer exactly when momentum > 0."""
    _update_(_C.rmsprop_update, param, grad, square_avg, grad_avg, momentum_buffer, step, lr,
             alpha, eps, weight_decay, momentum, maximize)


def adagrad_update_(param, grad, state_sum, step, lr, lr_decay, weight_decay, eps, maximize):
    """Adagrad."""
    _update_(_C.adagrad_update, param, grad, state_sum, step, lr, lr_decay, weight_decay, eps,
             maximize)


# ---- losses
_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}


def check_labels(labels, n, ignore_index, what, bound):
    """Raise IndexError for the first label outside [0, n) that is not ignore_index
    (None: no label is exempt); the message is "<what> <label> is out of bounds <bound>"."""
    _C.check_labels(labels, int(n), ignore_index, what, bound)


def _positions(shape):
    """S = prod(shape[2:]): the positions per sample of an (N, C, *d) tensor."""
    s = 1
    for d in shape[2:]:
        s *= d
    return s


def _rows(x):
    """x (N, C, *d) viewed as (N, C, S)."""
    return reshape(x, (x.shape[0], x.shape[1], _positions(x.shape)))


def squared_error_sum(a, b, scale=1.0):
    """scale * sum((a - b)^2) as a 0-d array of a's dtype (a and b: one shape and float
    dtype), in one pass over both."""
    out = empty((), a.dtype)
    _C.squared_error_sum(contiguous(a), contiguous(b), float(scale), out)
    return out


def cross_entropy(x, target, weight, ignore_index, label_smoothing, reduction):
    """Fused log-softmax + negative log-likelihood over dim 1 of x (N, C, *d).

    target is int64 class indices (N, *d) or probabilities shaped like x;
    weight (C,) or None.  Returns (loss, lse, total_weight): loss is (N, *d) for
    reduction 'none', else 0-d; lse (N, *d) is each row's log-sum-exp and
    total_weight (0-d float64) the divisor of the mean.  Labels are bounds-checked.
    """
    n, rows = x.shape[0], x.shape[2:]
    red = _REDUCTIONS[reduction]
    out = empty((n,) + rows if red == 0 else (), x.dtype)
    lse = empty((n,) + rows, x.dtype)
    total = empty((), np.float64)
    x3 = _rows(x)
    rows2 = (n, x3.shape[2])
    out2 = out.reshape(rows2) if red == 0 else out
    if target.dtype.kind == "f":
        _C.cross_entropy_prob(x3, _rows(target), weight, float(label_smoothing), red, out2,
                              lse.reshape(rows2), total)
    else:
        _C.cross_entropy(x3, reshape(target, rows2), weight, int(ignore_index),
                         float(label_smoothing), red, out2, lse.reshape(rows2), total)
    return out, lse, total


def cross_entropy_backward(grad, x, target, weight, lse, total_weight, ignore_index,
                           label_smoothing, reduction, target_grad=False):
    """Gradients of cross_entropy: (grad_input, grad_target or None).

    grad is the loss's gradient ((N, *d) or 0-d); grad_target is computed only for
    probability targets with target_grad=True.
    """
    n = x.shape[0]
    red = _REDUCTIONS[reduction]
    x3 = _rows(x)
    rows2 = (n, x3.shape[2])
    # A reduced loss's 0-d gradient is read as (n, S) through zero strides, made directly:
    # np.broadcast_to runs about 3 us of Python per call.
    g2 = reshape(grad, rows2) if red == 0 else np.ndarray(rows2, grad.dtype, grad, 0, (0, 0))
    grad_input = empty(x.shape, x.dtype)
    gi3 = grad_input.reshape(x3.shape)
    lse2 = reshape(lse, rows2)
    if target.dtype.kind == "f":
        grad_target = empty(x.shape, x.dtype) if target_grad else None
        _C.cross_entropy_prob_backward(
            x3, _rows(target), weight, float(label_smoothing), red, lse2, total_weight, g2, gi3,
            None if grad_target is None else grad_target.reshape(x3.shape))
        return grad_input, grad_target
    _C.cross_entropy_backward(x3, reshape(target, rows2), weight, int(ignore_index),
                              float(label_smoothing), red, lse2, total_weight, g2, gi3)
    return grad_input, None


# ---- recurrent cells
# One time step of an LSTM, GRU or Elman RNN from its gate pre-activations
# (input_gates = x @ W_ih^T, hidden_gates = h @ W_hh^T, computed by matmul);
# biases may be None.  Gate operands need unit stride within rows (a block of
# rows of a larger matrix is fine); others are made so.  Gate order is
# PyTorch's: LSTM (i, f, g, o), GRU (r, z, n).
def _unit_rows(x):
    return x if x.ndim != 2 or x.strides[1] == x.itemsize or x.shape[1] <= 1 else copy(x)


def _cell_bias(b):
    return None if b is None else contiguous(b)


def lstm_cell(input_gates, hidden_gates, cx, input_bias, hidden_bias):
    """-> (hy, cy, workspace): the new hidden and cell states (B, H) and the activated
    gates (B, 4H) that lstm_cell_backward needs."""
    cx = _unit_rows(cx)
    hy, cy = empty(cx.shape, cx.dtype), empty(cx.shape, cx.dtype)
    workspace = empty((cx.shape[0], 4 * cx.shape[1]), cx.dtype)
    _C.lstm_cell(_unit_rows(input_gates), _unit_rows(hidden_gates), cx, _cell_bias(input_bias),
                 _cell_bias(hidden_bias), hy, cy, workspace)
    return hy, cy, workspace


def lstm_cell_backward(grad_hy, grad_cy, cx, cy, workspace):
    """-> (grad_gates (B, 4H) of the pre-activations, grad_cx (B, H)); grad_hy or grad_cy
    may be None (zero)."""
    grad_gates = empty(workspace.shape, workspace.dtype)
    grad_cx = empty(cy.shape, cy.dtype)
    _C.lstm_cell_backward(None if grad_hy is None else _unit_rows(grad_hy),
                          None if grad_cy is None else _unit_rows(grad_cy), _unit_rows(cx), cy,
                          workspace, grad_gates, grad_cx)
    return grad_gates, grad_cx


def gru_cell(input_gates, hidden_gates, hx, input_bias, hidden_bias):
    """-> (hy (B, H), workspace (B, 4H): r, z, n and the hidden n pre-activation)."""
    hx = _unit_rows(hx)
    hy = empty(hx.shape, hx.dtype)
    workspace = empty((hx.shape[0], 4 * hx.shape[1]), hx.dtype)
    _C.gru_cell(_unit_rows(input_gates), _unit_rows(hidden_gates), hx, _cell_bias(input_bias),
                _cell_bias(hidden_bias), hy, workspace)
    return hy, workspace


def gru_cell_backward(grad_hy, hx, workspace):
    """-> (grad_input_gates, grad_hidden_gates (B, 3H), grad_hx (B, H)); grad_hx is only
    the direct part grad_hy * z (add grad_hidden_gates @ W_hh)."""
    b, h = hx.shape
    grad_input_gates = empty((b, 3 * h), hx.dtype)
    grad_hidden_gates = empty((b, 3 * h), hx.dtype)
    grad_hx = empty((b, h), hx.dtype)
    _C.gru_cell_backward(_unit_rows(grad_hy), _unit_rows(hx), workspace, grad_input_gates,
                         grad_hidden_gates, grad_hx)
    return grad_input_gates, grad_hidden_gates, grad_hx


def rnn_cell(input_gates, hidden_gates, input_bias, hidden_bias, nonlinearity):
    """hy = tanh or relu (`nonlinearity`) of the summed pre-activations."""
    input_gates = _unit_rows(input_gates)
    hy = empty(input_gates.shape, input_gates.dtype)
    _C.rnn_cell(input_gates, _unit_rows(hidden_gates), _cell_bias(input_bias),
                _cell_bias(hidden_bias), nonlinearity == "relu", hy)
    return hy


def rnn_cell_backward(grad_hy, hy, nonlinearity):
    """Gradient of rnn_cell's pre-activations, from its output hy."""
    grad_gates = empty(hy.shape, hy.dtype)
    _C.rnn_cell_backward(_unit_rows(grad_hy), hy, nonlinearity == "relu", grad_gates)
    return grad_gates


# ---- whole recurrent layers
def _rnn_mode(mode):
    try:
        return _C.RNN_MODES[mode]
    except KeyError:
        raise ValueError(f"rnn_sequence: unknown mode {mode!r} (expected one of "
                         f"{', '.join(_C.RNN_MODES)})") from None


def rnn_sequence(mode, input_gates, w_hh, input_bias, hidden_bias, h0, c0, batch_sizes, reverse):
    """One direction of one recurrent layer over a packed sequence, every step in one call.

    mode "LSTM", "GRU", "RNN_TANH" or "RNN_RELU" (G = 4, 3, 1, 1 gate blocks);
    input_gates (N, G*H) = x @ W_ih^T for every packed row; w_hh (G*H, H); biases (G*H,)
    or None; h0 / c0 (B, H) or None (zeros; c0 LSTM only), B = batch_sizes[0]; the rows
    of step t are the first batch_sizes[t] sequences (non-increasing), the last step runs
    first when `reverse`.  -> (out (N, H), h_n (B, H), c_n (B, H) or None unless LSTM,
    saved): h_n / c_n hold each sequence's state after its last step, and saved is what
    rnn_sequence_backward reads: (h_prev, c_prev, cell, workspace), per-row arrays in
    packed order: h_prev (N, H) the hidden state entering the row's step; for LSTM c_prev
    and cell (N, H) the cell state entering and leaving it; for LSTM and GRU workspace
    (N, 4H) the cell kernel's; None where the mode has none.
    """
    lstm = mode == "LSTM"
    n, hidden = input_gates.shape[0], w_hh.shape[-1]
    dtype, batch = input_gates.dtype, batch_sizes[0] if len(batch_sizes) else 0
    rows = lambda width=hidden: empty((n, width), dtype)  # noqa: E731
    out, h_n = rows(), empty((batch, hidden), dtype)
    c_n = empty((batch, hidden), dtype) if lstm else None
    saved = (rows(), rows() if lstm else None, rows() if lstm else None,
             rows(4 * hidden) if lstm or mode == "GRU" else None)
    _C.rnn_sequence_forward(_rnn_mode(mode), _unit_rows(input_gates), w_hh,
                            _cell_bias(input_bias), _cell_bias(hidden_bias),
                            None if h0 is None else _unit_rows(h0),
                            None if c0 is None else _unit_rows(c0), list(batch_sizes),
                            bool(reverse), out, h_n, c_n, *saved)
    return out, h_n, c_n, saved


def rnn_sequence_backward(mode, grad_out, grad_h_n, grad_c_n, w_hh, out, saved, batch_sizes,
                          reverse, need_w_hh, need_input_bias, need_hidden_bias):
    """Gradients of rnn_sequence from those of out (N, H), h_n and c_n (B, H; grad_c_n
    None unless LSTM; any strides), given its out and saved.  -> (grad_input_gates
    (N, G*H), grad_w_hh (G*H, H), grad_input_bias, grad_hidden_bias (G*H,), grad_h0
    (B, H), grad_c0 (B, H)), in the order of rnn_sequence's arguments; grad_w_hh and the
    bias gradients are None unless asked for, grad_c0 unless LSTM."""
    n, width, hidden = grad_out.shape[0], w_hh.shape[0], w_hh.shape[-1]
    state = (batch_sizes[0] if len(batch_sizes) else 0, hidden)
    dtype = grad_out.dtype
    grad_gates = empty((n, width), dtype)
    # GRU's hidden-gate gradient differs from the input-gate one in the n block.
    grad_hidden = empty((n, width), dtype) if mode == "GRU" else None
    grad_h0 = empty(state, dtype)
    grad_c0 = empty(state, dtype) if mode == "LSTM" else None
    grad_w_hh = empty(w_hh.shape, dtype) if need_w_hh else None
    grad_bi = empty(width, dtype) if need_input_bias else None
    grad_bh = empty(width, dtype) if need_hidden_bias else None
    _C.rnn_sequence_backward(_rnn_mode(mode), w_hh, list(batch_sizes), bool(reverse),
                             grad_out, grad_h_n, grad_c_n,
                             out if mode in ("RNN_TANH", "RNN_RELU") else None, *saved,
                             grad_gates, grad_hidden, grad_h0, grad_c0, grad_w_hh, grad_bi,
                             grad_bh)
    return grad_gates, grad_w_hh, grad_bi, grad_bh, grad_h0, grad_c0


# ---- upsampling
# NCHW.  `mode` is "nearest", "nearest-exact" or "bilinear"; `scale` holds the
# user's (height, width) scale factors, None for an axis whose size was given.
_UPSAMPLE_MODES = {"nearest": 0, "nearest-exact": 1, "bilinear": 2}


def _upsample_scale(scale):
    return [0.0 if s is None else float(s) for s in scale]


def upsample2d(x, out_hw, mode, align_corners, scale):
    out = empty(x.shape[:2] + tuple(out_hw), x.dtype)
    _C.upsample2d(x, out, _UPSAMPLE_MODES[mode], bool(align_corners), _upsample_scale(scale))
    return out


def upsample2d_backward(grad, input_shape, mode, align_corners, scale):
    out = empty(tuple(input_shape), grad.dtype)
    _C.upsample2d_backward(grad, out, _UPSAMPLE_MODES[mode], bool(align_corners),
                           _upsample_scale(scale))
    return out
