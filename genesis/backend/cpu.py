"""CPU backend: numpy arrays supply memory and views; genesis._C computes.

Each function takes and returns numpy arrays.  Nothing here does arithmetic with
numpy: outputs are allocated with np.empty and filled by a kernel.
"""
import numpy as np

from .. import _C

name = "cpu"
array_type = np.ndarray

_U = _C.UNARY_OPS
_B = _C.BINARY_OPS
_R = _C.REDUCE_OPS
_BOOL_RESULT = frozenset(("eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
                          "logical_xor"))


# ------------------------------------------------------------------ memory
def empty(shape, dtype):
    return np.empty(shape, dtype)


def full(shape, value, dtype):
    out = np.empty(shape, dtype)
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
    out = np.empty(x.shape, x.dtype)
    _C.copy(x, out)
    return out


def cast(x, dtype):
    if x.dtype == dtype:
        return x
    out = np.empty(x.shape, dtype)
    _C.copy(x, out)
    return out


def contiguous(x):
    return x if x.flags.c_contiguous else copy(x)


def copy_into(dst, src):
    """dst[...] = src, src broadcast to dst's shape and converted to its dtype."""
    if src.shape != dst.shape:
        src = np.broadcast_to(src, dst.shape)
    _C.copy(src, dst)


def fill_(dst, value):
    _C.fill(dst, float(value))


# ------------------------------------------------------------------ views
def reshape(x, shape):
    """A view when strides allow, otherwise a contiguous copy made by our kernel."""
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
    out = np.empty(x.shape, np.bool_ if op == "logical_not" else x.dtype)
    _C.unary(_U[op], x, out, p0, p1)
    return out


def unary_(op, x, p0=0.0, p1=0.0):
    """In place: x = op(x)."""
    _C.unary(_U[op], x, x, p0, p1)
    return x


def binary(op, a, b):
    shape = a.shape if a.shape == b.shape else np.broadcast_shapes(a.shape, b.shape)
    out = np.empty(shape, np.bool_ if op in _BOOL_RESULT else a.dtype)
    _C.binary(_B[op], _expand(a, shape), _expand(b, shape), out)
    return out


def binary_(op, a, b):
    """In place: a = op(a, b), b broadcast to a's shape."""
    _C.binary(_B[op], a, _expand(b, a.shape), a)
    return a


def where(cond, a, b):
    shape = np.broadcast_shapes(cond.shape, a.shape, b.shape)
    out = np.empty(shape, a.dtype)
    _C.where(_expand(cond, shape), _expand(a, shape), _expand(b, shape), out)
    return out


def _expand(x, shape):
    return x if x.shape == shape else np.broadcast_to(x, shape)


# ------------------------------------------------------------------ reductions
def reduce(op, x, dims, keepdim, dtype=None):
    kept = list(x.shape)
    for d in dims:
        kept[d] = 1
    out = np.empty(kept, dtype or x.dtype)
    _C.reduce(_R[op], x, out)
    if not keepdim:
        out = out.reshape([s for d, s in enumerate(x.shape) if d not in dims])
    return out


def reduce_arg(is_max, x, dim, keepdim):
    kept = list(x.shape)
    kept[dim] = 1
    values = np.empty(kept, x.dtype)
    indices = np.empty(kept, np.int64)
    _C.reduce_arg(is_max, x, dim, values, indices)
    if not keepdim:
        values, indices = np.squeeze(values, dim), np.squeeze(indices, dim)
    return values, indices


def cumsum(x, dim):
    out = np.empty(x.shape, x.dtype)
    _C.cumsum(x, dim, out)
    return out


def softmax(x, dim, log):
    out = np.empty(x.shape, x.dtype)
    _C.softmax(x, dim, log, out)
    return out


def softmax_backward(y, grad, dim, log):
    out = np.empty(y.shape, y.dtype)
    _C.softmax_backward(y, grad, dim, log, out)
    return out


# ------------------------------------------------------------------ linear algebra
def matmul(a, b):
    """a[..., M, K] @ b[..., K, N] with broadcast batch dims (both at least 2-D)."""
    batch = a.shape[:-2] if a.shape[:-2] == b.shape[:-2] else \
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    out = np.empty(batch + (a.shape[-2], b.shape[-1]), a.dtype)
    _C.matmul(_expand(a, batch + a.shape[-2:]), _expand(b, batch + b.shape[-2:]), out, False)
    return out


# ------------------------------------------------------------------ indexing
def gather(x, dim, index):
    out = np.empty(index.shape, x.dtype)
    _C.gather(x, dim, index, out)
    return out


def scatter_add_(out, dim, index, src):
    _C.scatter_add(out, dim, index, src)
    return out


def index_gather(x, indices):
    out = np.empty(indices[0].shape + x.shape[len(indices):], x.dtype)
    _C.index_gather(x, list(indices), out)
    return out


def index_put_(dst, indices, src, accumulate):
    _C.index_put(dst, list(indices), src, accumulate)
    return dst


def broadcast_arrays(*arrays):
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    return [_expand(a, shape) for a in arrays]


def nonzero(mask):
    out = np.empty((_C.count_nonzero(mask), mask.ndim), np.int64)
    _C.nonzero(mask, out)
    return out


def sort(x, dim, descending):
    values = np.empty(x.shape, x.dtype)
    indices = np.empty(x.shape, np.int64)
    _C.sort(x, dim, descending, values, indices)
    return values, indices


def topk(x, k, dim, largest):
    shape = list(x.shape)
    shape[dim] = k
    values = np.empty(shape, x.dtype)
    indices = np.empty(shape, np.int64)
    _C.topk(x, k, dim, largest, values, indices)
    return values, indices


def one_hot(index, num_classes, dtype):
    out = np.empty(index.shape + (num_classes,), dtype)
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


def cross_entropy(x, target, weight, ignore_index, label_smoothing, reduction):
    """Fused log-softmax + negative log-likelihood over dim 1 of x (N, C, *d).

    target is int64 class indices (N, *d) or probabilities shaped like x;
    weight (C,) or None.  Returns (loss, lse, total_weight): loss is (N, *d) for
    reduction 'none', else 0-d; lse (N, *d) is each row's log-sum-exp and
    total_weight (0-d float64) the divisor of the mean.  Labels are bounds-checked.
    """
    n, rows = x.shape[0], x.shape[2:]
    red = _REDUCTIONS[reduction]
    out = np.empty((n,) + rows if red == 0 else (), x.dtype)
    lse = np.empty((n,) + rows, x.dtype)
    total = np.empty((), np.float64)
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
    g2 = reshape(grad, rows2) if red == 0 else np.broadcast_to(grad, rows2)
    grad_input = np.empty(x.shape, x.dtype)
    gi3 = grad_input.reshape(x3.shape)
    lse2 = reshape(lse, rows2)
    if target.dtype.kind == "f":
        grad_target = np.empty(x.shape, x.dtype) if target_grad else None
        _C.cross_entropy_prob_backward(
            x3, _rows(target), weight, float(label_smoothing), red, lse2, total_weight, g2, gi3,
            None if grad_target is None else grad_target.reshape(x3.shape))
        return grad_input, grad_target
    _C.cross_entropy_backward(x3, reshape(target, rows2), weight, int(ignore_index),
                              float(label_smoothing), red, lse2, total_weight, g2, gi3)
    return grad_input, None
