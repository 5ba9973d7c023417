"""Reductions, scans and softmax."""
import collections

from .. import dtypes as _dt
from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ..tensor import Tensor
from ._util import as_float, scalar_tensor, wrap_dim, wrap_dims
from .elementwise import exp, log, sqrt, where

values_indices = collections.namedtuple("values_indices", ["values", "indices"])


def _kept_shape(shape, dims):
    return tuple(1 if d in dims else s for d, s in enumerate(shape))


class Sum(Function):
    def forward(ctx, x, dims, keepdim, dtype):
        ctx.shape, ctx.dims = x.shape, dims
        return ctx.backend.reduce("sum", x, dims, keepdim, dtype)

    def backward(ctx, g):
        return g.reshape(_kept_shape(ctx.shape, ctx.dims)).expand(ctx.shape), None, None, None


class Prod(Function):
    def forward(ctx, x, dims, keepdim):
        ctx.dims, ctx.keepdim = dims, keepdim
        out = ctx.backend.reduce("prod", x, dims, keepdim)
        ctx.save_for_backward(x, out)
        return out

    def backward(ctx, g):
        x, out = ctx.saved_tensors
        kept = _kept_shape(x.shape, ctx.dims)
        g, out = g.reshape(kept), out.reshape(kept)
        # Product of the other elements: out / x where x != 0; with exactly one
        # zero in the group, the product of the non-zeros at that zero; else 0.
        is_zero = x == 0
        zeros = sum(is_zero.to(x.dtype), ctx.dims, keepdim=True)
        nonzero_prod = prod(where(is_zero, 1.0, x), ctx.dims, keepdim=True)
        safe_x = where(is_zero, 1.0, x)
        others = where(zeros == 0, out / safe_x,
                       where((zeros == 1).logical_and(is_zero), nonzero_prod, 0.0))
        return g * others, None, None


class Extremum(Function):
    """amax/amin: the gradient is shared evenly among the tied extreme elements."""

    def forward(ctx, x, op, dims, keepdim):
        ctx.dims = dims
        out = ctx.backend.reduce(op, x, dims, keepdim)
        ctx.save_for_backward(x, out)
        return out

    def backward(ctx, g):
        x, out = ctx.saved_tensors
        kept = _kept_shape(x.shape, ctx.dims)
        mask = (x == out.reshape(kept)).to(x.dtype)
        count = sum(mask, ctx.dims, keepdim=True)
        return g.reshape(kept) * mask / count, None, None, None


class ArgExtremum(Function):
    """max/min along one dim returning (values, indices); the gradient goes to the index."""

    def forward(ctx, x, is_max, dim, keepdim):
        values, indices = ctx.backend.reduce_arg(is_max, x, dim, keepdim)
        ctx.mark_non_differentiable(indices)
        ctx.shape, ctx.dim, ctx.keepdim = x.shape, dim, keepdim
        ctx.save_for_backward(indices)
        return values, indices

    def backward(ctx, g, _):
        (indices,) = ctx.saved_tensors
        if not ctx.keepdim and len(ctx.shape):
            g, indices = g.unsqueeze(ctx.dim), indices.unsqueeze(ctx.dim)
        from .indexing import scatter_add
        zeros = Tensor._zeros(ctx.shape, g.dtype, g.device)
        return scatter_add(zeros, ctx.dim, indices, g), None, None, None


class Cumsum(Function):
    def forward(ctx, x, dim):
        ctx.dim = dim
        return ctx.backend.cumsum(x, dim)

    def backward(ctx, g):
        return cumsum(g.flip(ctx.dim), ctx.dim).flip(ctx.dim), None


class Softmax(Function):
    def forward(ctx, x, dim, log):
        y = ctx.backend.softmax(x, dim, log)
        ctx.dim, ctx.log = dim, log
        ctx.save_for_backward(y)
        return y

    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        if not is_grad_enabled():  # first-order only: one fused kernel
            out = ctx.backend.softmax_backward(y._data, g._data, ctx.dim, ctx.log)
            return Tensor._make(out, g.device), None, None
        if ctx.log:
            return g - exp(y) * sum(g, ctx.dim, keepdim=True), None, None
        return y * (g - sum(g * y, ctx.dim, keepdim=True)), None, None


# ---------------------------------------------------------------- public API
def _check(x, op):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")


def sum(input, dim=None, keepdim=False, *, dtype=None):  # noqa: A001
    """Sum over `dim` (int, tuple or None for all); ints and bools sum as int64."""
    _check(input, "sum")
    dims = wrap_dims(dim, input.ndim, "sum")
    if dtype is not None:
        input = input.to(_dt.to_dtype(dtype))
    out_dtype = None if input.dtype.is_floating_point else _dt.int64.np
    return Sum.apply(input, dims, keepdim, out_dtype)


def mean(input, dim=None, keepdim=False, *, dtype=None):
    """Arithmetic mean over `dim` (floating inputs only, as in PyTorch)."""
    _check(input, "mean")
    if dtype is not None:
        input = input.to(_dt.to_dtype(dtype))
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be either "
                           f"a floating point or complex dtype. Got: {input.dtype}")
    dims = wrap_dims(dim, input.ndim, "mean")
    n = 1
    for d in dims:
        n *= input.shape[d]
    return Sum.apply(input, dims, keepdim, None) * (1.0 / n if n else float("nan"))


def prod(input, dim=None, keepdim=False, *, dtype=None):
    """Product over `dim` (int, tuple or None)."""
    _check(input, "prod")
    if dtype is not None:
        input = input.to(_dt.to_dtype(dtype))
    if not input.dtype.is_floating_point:
        input = input.to(_dt.int64)
    return Prod.apply(input, wrap_dims(dim, input.ndim, "prod"), keepdim)


def _extremum(op, input, dim, keepdim):
    _check(input, op)
    dims = wrap_dims(dim, input.ndim, op)
    for d in dims:
        if input.shape[d] == 0:
            raise IndexError(f"{op}(): Expected reduction dim {d} to have non-zero size.")
    return Extremum.apply(input, "max" if op == "amax" else "min", dims, keepdim)


def amax(input, dim=None, keepdim=False):
    """Largest value over `dim` (int, tuple or None); ties share the gradient."""
    return _extremum("amax", input, dim, keepdim)


def amin(input, dim=None, keepdim=False):
    """Smallest value over `dim` (int, tuple or None); ties share the gradient."""
    return _extremum("amin", input, dim, keepdim)


def _arg_extremum(is_max, op, input, dim, keepdim):
    _check(input, op)
    if dim is None or input.ndim == 0:
        if input.numel() == 0:
            raise IndexError(f"{op}(): Expected reduction dim to be specified for "
                             "input.numel() == 0.")
        values, indices = ArgExtremum.apply(input.reshape(-1), is_max, 0, False)
        if input.ndim == 0 and dim is not None:
            wrap_dim(dim, 0, op)
        return values_indices(values, indices)
    d = wrap_dim(dim, input.ndim, op)
    if input.shape[d] == 0:
        raise IndexError(f"{op}(): Expected reduction dim {d} to have non-zero size.")
    return values_indices(*ArgExtremum.apply(input, is_max, d, keepdim))


def max(input, dim=None, keepdim=False):  # noqa: A001
    """Without dim: the largest element.  With dim: (values, indices) along it.
    With a Tensor second argument: elementwise maximum."""
    if isinstance(dim, Tensor):
        from .elementwise import maximum
        return maximum(input, dim)
    if dim is None:
        return amax(input)
    return _arg_extremum(True, "max", input, dim, keepdim)


def min(input, dim=None, keepdim=False):  # noqa: A001
    """Without dim: the smallest element.  With dim: (values, indices) along it.
    With a Tensor second argument: elementwise minimum."""
    if isinstance(dim, Tensor):
        from .elementwise import minimum
        return minimum(input, dim)
    if dim is None:
        return amin(input)
    return _arg_extremum(False, "min", input, dim, keepdim)


def _logical_reduce(op, input, dim, keepdim):
    _check(input, op)
    x = input if input.dtype is _dt.bool else input != 0
    # bool max is "any", bool min is "all"; no gradient flows through either
    return Extremum.apply(x, "max" if op == "any" else "min",
                          wrap_dims(dim, x.ndim, op), keepdim)


def all(input, dim=None, keepdim=False):  # noqa: A001
    """True where every element over `dim` is non-zero (a bool tensor)."""
    return _logical_reduce("all", input, dim, keepdim)


def any(input, dim=None, keepdim=False):  # noqa: A001
    """True where some element over `dim` is non-zero (a bool tensor)."""
    return _logical_reduce("any", input, dim, keepdim)


def argmax(input, dim=None, keepdim=False):
    """Index of the (first) largest element, over all elements or along `dim`."""
    if dim is None:
        return _arg_extremum(True, "argmax", input, None, False).indices
    return _arg_extremum(True, "argmax", input, dim, keepdim).indices


def argmin(input, dim=None, keepdim=False):
    """Index of the (first) smallest element, over all elements or along `dim`."""
    if dim is None:
        return _arg_extremum(False, "argmin", input, None, False).indices
    return _arg_extremum(False, "argmin", input, dim, keepdim).indices


def var(input, dim=None, *, correction=1, keepdim=False, unbiased=None):
    """Variance over `dim` with Bessel's `correction` (unbiased=False means 0)."""
    _check(input, "var")
    if unbiased is not None:
        correction = 1 if unbiased else 0
    x = as_float(input, "var")
    dims = wrap_dims(dim, x.ndim, "var")
    n = 1
    for d in dims:
        n *= x.shape[d]
    centered = x - mean(x, dims, keepdim=True)
    denom = n - correction
    total = sum(centered * centered, dims, keepdim=keepdim)
    return total / denom if denom > 0 else total * float("nan")


def std(input, dim=None, *, correction=1, keepdim=False, unbiased=None):
    """Standard deviation: sqrt of `var` with the same arguments."""
    return sqrt(var(input, dim, correction=correction, keepdim=keepdim, unbiased=unbiased))


def logsumexp(input, dim, keepdim=False):
    """log(sum(exp(input))) over `dim`, computed stably (max subtracted)."""
    x = as_float(input, "logsumexp")
    dims = wrap_dims(dim, x.ndim, "logsumexp")
    m = amax(x.detach(), dims, keepdim=True)
    m = where(m.abs() == float("inf"), 0.0, m)  # all -inf groups (or inf) stay exact
    out = log(sum(exp(x - m), dims, keepdim=True)) + m
    return out if keepdim else out.squeeze(dims) if dims else out


def _zero_at_zero(root, s):
    """root(s) for s >= 0 whose gradient is 0 where s == 0, where the root's derivative
    is infinite (and times the zero gradient of what s was computed from, NaN): the
    subgradient PyTorch takes for a norm at the zero vector.  Without a graph to
    record, just root(s)."""
    if not (is_grad_enabled() and s.requires_grad):
        return root(s)
    zero = s == 0
    return where(zero, 0.0, root(where(zero, 1.0, s)))


def norm(input, p="fro", dim=None, keepdim=False):
    """Vector p-norm over `dim` (p = 2/'fro', 1, inf, -inf or any positive number).

    At a zero vector (and, for p < 1, at a zero element) the gradient is 0, as in
    PyTorch, not the NaN of the chain rule through the root."""
    x = as_float(input, "norm")
    if p in ("fro", 2, 2.0):
        return _zero_at_zero(sqrt, sum(x * x, dim, keepdim))
    if p in (1, 1.0):
        return sum(x.abs(), dim, keepdim)
    if p == float("inf"):
        return amax(x.abs(), dim, keepdim)
    if p == float("-inf"):
        return amin(x.abs(), dim, keepdim)
    if isinstance(p, (int, float)) and p > 0:
        powers = x.abs() ** p if p > 1 else _zero_at_zero(lambda a: a ** p, x.abs())
        return _zero_at_zero(lambda s: s ** (1.0 / p), sum(powers, dim, keepdim))
    raise ValueError(f"norm: unsupported p={p!r}")


def cumsum(input, dim, *, dtype=None):
    """Inclusive cumulative sum along `dim`."""
    _check(input, "cumsum")
    if dtype is not None:
        input = input.to(_dt.to_dtype(dtype))
    elif not input.dtype.is_floating_point:
        input = input.to(_dt.int64)
    if input.ndim == 0:
        return Cumsum.apply(input.reshape(1), 0).reshape(())
    return Cumsum.apply(input, wrap_dim(dim, input.ndim, "cumsum"))


def _softmax(input, dim, dtype, log):
    op = "log_softmax" if log else "softmax"
    _check(input, op)
    x = input.to(_dt.to_dtype(dtype)) if dtype is not None else as_float(input, op)
    if dim is None:
        raise TypeError(f"{op}: dim must be given")
    if x.ndim == 0:
        return Softmax.apply(x.reshape(1), 0, log).reshape(())
    return Softmax.apply(x, wrap_dim(dim, x.ndim, op), log)


def softmax(input, dim, dtype=None):
    """exp(x) / sum(exp(x)) along `dim`, stable for logits of any magnitude."""
    return _softmax(input, dim, dtype, False)


def log_softmax(input, dim, dtype=None):
    """x - logsumexp(x) along `dim`, stable for logits of any magnitude."""
    return _softmax(input, dim, dtype, True)
