"""Indexing: `x[key]`, `x[key] = v`, gather/scatter, sort and friends.

Basic indexing (ints, slices, None, Ellipsis) gives a view.  Advanced indexing
(integer tensors or lists, bool masks) gathers: the indexed dims are moved to
the front and one kernel copies the selected slices.  Every backward is a
scatter-add, itself differentiable (its backward is the gather again).
"""
import collections

import numpy as np

from .. import dtypes as _dt
from ..autograd.function import Function
from ..autograd.grad_mode import STATE
from ..tensor import Tensor
from ._util import broadcast_shape, sum_to_shape, wrap_dim

sort_result = collections.namedtuple("sort_result", ["values", "indices"])
topk_result = collections.namedtuple("topk_result", ["values", "indices"])


class ViewIndex(Function):
    is_view = True

    def forward(ctx, x, key):
        ctx.shape, ctx.key = x.shape, key
        return ctx.backend.view_index(x, key)

    def backward(ctx, g):
        return SliceScatter.apply(g, ctx.shape, ctx.key), None


class SliceScatter(Function):
    """zeros(shape) with g written at `key` (backward of basic indexing)."""

    def forward(ctx, g, shape, key):
        ctx.key = key
        out = ctx.backend.full(shape, 0, g.dtype)
        ctx.backend.copy_into(ctx.backend.view_index(out, key), g)
        return out

    def backward(ctx, gg):
        return gg[ctx.key], None, None


class IndexGather(Function):
    """x[i0, ..., ik-1] for k pre-broadcast int64 index tensors on x's first dims."""

    def forward(ctx, x, *indices):
        ctx.shape = x.shape
        ctx.save_for_backward(*indices)
        return ctx.backend.index_gather(x, indices)

    def backward(ctx, g):
        idx = ctx.saved_tensors
        return (IndexScatterAdd.apply(g, ctx.shape, *idx),) + (None,) * len(idx)


class IndexScatterAdd(Function):
    """zeros(shape) with g added at the index tuples (repeats accumulate)."""

    def forward(ctx, g, shape, *indices):
        ctx.save_for_backward(*indices)
        out = ctx.backend.full(shape, 0, g.dtype)
        return ctx.backend.index_put_(out, indices, g, True)

    def backward(ctx, gg):
        idx = ctx.saved_tensors
        return (IndexGather.apply(gg, *idx), None) + (None,) * len(idx)


class SetItem(Function):
    """x[key] = value written in place; the node sees x's old graph as its input."""

    def forward(ctx, x, value, basic, adv, perm):
        ctx.key = (basic, adv, perm)
        ctx.value_shape = value.shape
        _write(ctx.backend, x, value, basic, [a._data for a in adv], perm, accumulate=False)
        return x

    def backward(ctx, g):
        basic, adv, perm = ctx.key
        gx = g.clone()
        zero = Tensor._zeros((), g.dtype, g.device)
        if STATE.enabled:  # double backward: record the zeroing too
            gx = SetItem.apply(gx, zero, basic, adv, perm)
        else:
            _write(gx._backend(), gx._data, zero._data, basic, [a._data for a in adv], perm, False)
        gv = None
        if ctx.needs_input_grad[1]:
            gv = sum_to_shape(_read(g, basic, adv, perm), ctx.value_shape)
        return gx, gv, None, None, None


class Gather(Function):
    def forward(ctx, x, dim, index):
        ctx.shape, ctx.dim = x.shape, dim
        ctx.save_for_backward(index)
        return ctx.backend.gather(x, dim, index)

    def backward(ctx, g):
        (index,) = ctx.saved_tensors
        zeros = Tensor._zeros(ctx.shape, g.dtype, g.device)
        return scatter_add(zeros, ctx.dim, index, g), None, None


class ScatterAdd(Function):
    def forward(ctx, x, dim, index, src):
        ctx.dim = dim
        ctx.save_for_backward(index)
        out = ctx.backend.copy(x)
        return ctx.backend.scatter_add_(out, dim, index, src)

    def backward(ctx, g):
        (index,) = ctx.saved_tensors
        gsrc = gather(g, ctx.dim, index) if ctx.needs_input_grad[3] else None
        return g, None, None, gsrc


class SelectAlong(Function):
    """sort/topk: values with the indices they came from; the gradient returns there."""

    def forward(ctx, x, kind, dim, arg0, arg1):
        if kind == "sort":
            values, indices = ctx.backend.sort(x, dim, arg0)
        else:
            values, indices = ctx.backend.topk(x, arg0, dim, arg1)
        ctx.mark_non_differentiable(indices)
        ctx.shape, ctx.dim = x.shape, dim
        ctx.save_for_backward(indices)
        return values, indices

    def backward(ctx, g, _):
        (indices,) = ctx.saved_tensors
        zeros = Tensor._zeros(ctx.shape, g.dtype, g.device)
        return scatter_add(zeros, ctx.dim, indices, g), None, None, None, None


# ---------------------------------------------------------------- key parsing
def _index_tensor(obj, device):
    """An index given as a list, numpy array or Tensor, as an int64 or bool Tensor."""
    if isinstance(obj, Tensor):
        t = obj if obj.device == device else obj.to(device)  # CPU indices work on any device
    else:
        from .creation import tensor
        t = tensor(obj, device=device)
        if t.numel() == 0:
            t = t.to(_dt.int64)
    if t.dtype is _dt.bool:
        return t
    if t.dtype.is_floating_point:
        raise IndexError("tensors used as indices must be long, int or bool tensors, "
                         f"got {t.dtype}")
    return t.to(_dt.int64)


def _parse(x, key):
    """Split `key` into a basic key (a view) and advanced index tensors on that view.

    Returns (basic, adv, perm): `basic` indexes x's data to a view V; `adv` are
    broadcast int64 index tensors for dims `adv_dims` of V; `perm` (or None) is
    how to order V's dims so the indexed ones come first, plus where the result's
    broadcast dims go back.
    """
    if not isinstance(key, tuple):
        key = (key,)
    items = []
    for k in key:
        if k is None or k is Ellipsis or isinstance(k, slice):
            items.append(k)
        elif isinstance(k, (bool, np.bool_)):
            raise IndexError("genesis does not support indexing with a Python bool")
        elif isinstance(k, (int, np.integer)):
            items.append(int(k))
        elif isinstance(k, Tensor) and k.ndim == 0 and k.dtype in (_dt.int64, _dt.int32):
            items.append(int(k.item()))
        elif isinstance(k, (Tensor, list, tuple, np.ndarray)):
            items.append(_index_tensor(k, x.device))
        else:
            raise IndexError(f"invalid index of type {type(k).__name__}: only integers, slices, "
                             "None, Ellipsis, and integer or bool tensors are valid indices")
    consumed = sum(k.ndim if isinstance(k, Tensor) and k.dtype is _dt.bool else
                   (0 if k is None or k is Ellipsis else 1) for k in items)
    if consumed > x.ndim:
        raise IndexError(f"too many indices for tensor of dimension {x.ndim}")
    ellipses = [i for i, k in enumerate(items) if k is Ellipsis]
    if len(ellipses) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if ellipses:
        i = ellipses[0]
        items[i:i + 1] = [slice(None)] * (x.ndim - consumed)
    else:
        items += [slice(None)] * (x.ndim - consumed)

    advanced = any(isinstance(k, Tensor) for k in items)
    basic, adv, adv_dims = [], [], []
    src_dim = view_dim = 0
    for k in items:
        if k is None:
            basic.append(None)
            view_dim += 1
        elif isinstance(k, slice):
            basic.append(k)
            src_dim += 1
            view_dim += 1
        elif isinstance(k, int):
            size = x.shape[src_dim]
            if not -size <= k < size:
                raise IndexError(f"index {k} is out of bounds for dimension {src_dim} "
                                 f"with size {size}")
            if advanced:
                from .creation import tensor
                adv.append(tensor(k, device=x.device))
                adv_dims.append(view_dim)
                basic.append(slice(None))
                view_dim += 1
            else:
                basic.append(k)
            src_dim += 1
        elif k.dtype is _dt.bool:
            mask_shape = tuple(x.shape[src_dim:src_dim + k.ndim])
            if tuple(k.shape) != mask_shape:
                raise IndexError(f"The shape of the mask {list(k.shape)} at index {src_dim} "
                                 f"does not match the shape of the indexed tensor "
                                 f"{list(mask_shape)}")
            coords = Tensor._make(x._backend().nonzero(k._data), x.device)
            for j in range(k.ndim):
                adv.append(coords[:, j] if k.ndim > 1 else coords.reshape(-1))
                adv_dims.append(view_dim)
                basic.append(slice(None))
                view_dim += 1
            src_dim += k.ndim
        else:
            adv.append(k)
            adv_dims.append(view_dim)
            basic.append(slice(None))
            view_dim += 1
            src_dim += 1
    basic = tuple(basic)
    if not adv:
        return basic, (), None
    shape = broadcast_shape("index", *(a.shape for a in adv))
    adv = tuple(a.expand(shape) if tuple(a.shape) != shape else a for a in adv)
    others = [d for d in range(view_dim) if d not in adv_dims]
    order = tuple(adv_dims) + tuple(others)
    adjacent = adv_dims == list(range(adv_dims[0], adv_dims[0] + len(adv_dims)))
    # numpy's rule: adjacent advanced indices keep their place, others go first
    insert_at = sum(1 for d in others if d < adv_dims[0]) if adjacent else 0
    return basic, adv, (order, len(shape), insert_at)


def _result_order(nb, nrest, insert_at):
    """Dim order taking gather's (B..., rest...) to the numpy result layout."""
    b = list(range(nb))
    rest = list(range(nb, nb + nrest))
    return rest[:insert_at] + b + rest[insert_at:]


def _read(x, basic, adv, perm):
    v = x if basic == (slice(None),) * x.ndim else ViewIndex.apply(x, basic)
    if not adv:
        return v
    order, nb, insert_at = perm
    p = v.permute(order)
    r = IndexGather.apply(p, *adv)
    final = _result_order(nb, r.ndim - nb, insert_at)
    return r.permute(final) if final != list(range(r.ndim)) else r


def _write(backend, data, value, basic, adv, perm, accumulate):
    """Write `value` (broadcast to the result shape of x[key]) into data at key."""
    view = backend.view_index(data, basic)
    if not adv:
        backend.copy_into(view, _fit_value(backend, value, tuple(view.shape)))
        return
    order, nb, insert_at = perm
    p = backend.permute(view, order)
    result_shape = tuple(adv[0].shape) + tuple(p.shape[len(adv):])
    final = _result_order(nb, len(p.shape) - len(adv), insert_at)
    laid_out = tuple(result_shape[i] for i in final)
    value = _fit_value(backend, value, laid_out)
    inverse = [0] * len(final)
    for i, f in enumerate(final):
        inverse[f] = i
    backend.index_put_(p, adv, backend.permute(value, inverse), accumulate)


def _fit_value(backend, value, target):
    """value broadcast to the indexing result's shape (leading 1s may be dropped)."""
    shape = tuple(value.shape)
    lead = len(shape) - len(target)
    if lead > 0 and all(s == 1 for s in shape[:lead]):
        shape = shape[lead:]
        value = backend.reshape(value, shape)
    ok = len(shape) <= len(target) and all(
        v in (1, t) for v, t in zip(shape[::-1], target[::-1]))
    if not ok:
        raise RuntimeError(f"shape mismatch: value tensor of shape {list(value.shape)} cannot be "
                           f"broadcast to indexing result of shape {list(target)}")
    return backend.broadcast_to(value, target)


# ---------------------------------------------------------------- public API
def getitem(x, key):
    """x[key] with PyTorch/numpy semantics (differentiable)."""
    basic, adv, perm = _parse(x, key)
    return _read(x, basic, adv, perm)


def setitem(x, key, value):
    """x[key] = value, in place (bumps x's version counter)."""
    basic, adv, perm = _parse(x, key)
    if isinstance(value, Tensor):
        if value.device != x.device:
            raise RuntimeError(f"setitem: value is on {value.device} but the tensor is on {x.device}")
        value = value.to(x.dtype)
    else:
        from .creation import tensor
        value = tensor(value, dtype=x.dtype, device=x.device)
    if STATE.enabled and (x.requires_grad or value.requires_grad):
        _check_inplace_allowed(x, "setitem")
        alias = _alias(x)
        out = SetItem.apply(alias, value, basic, adv, perm)
        x.grad_fn, x._output_nr, x._requires_grad = out.grad_fn, 0, True
    else:
        _write(x._backend(), x._data, value._data, basic, [a._data for a in adv], perm, False)
    x._version.value += 1


def _alias(x):
    """A second Tensor over x's data that carries x's current place in the graph."""
    a = Tensor._make(x._data, x.device, grad_fn=x.grad_fn, output_nr=x._output_nr)
    a._requires_grad = x.requires_grad
    a._version = x._version
    a._accumulator = x._accumulator
    return a


def _check_inplace_allowed(x, op):
    if x.requires_grad and x.grad_fn is None:
        raise RuntimeError(f"{op}: a leaf Variable that requires grad is being used in an "
                           "in-place operation.")
    if x._base is not None and (x._base.requires_grad or x.requires_grad):
        raise RuntimeError(f"{op}: in-place modification of a view of a tensor that requires "
                           "grad is not supported by genesis; use an out-of-place operation")


def gather(input, dim, index):
    """out[i][j] = input[i][index[i][j]] (dim=1), PyTorch's torch.gather."""
    _check_index(index, "gather")
    if index.ndim != input.ndim:
        raise RuntimeError(f"gather: index tensor must have the same number of dimensions as "
                           f"input tensor ({index.ndim} vs {input.ndim})")
    return Gather.apply(input, wrap_dim(dim, input.ndim, "gather"), index.to(_dt.int64))


def scatter_add(input, dim, index, src):
    """A copy of input with src added at `index` along `dim` (torch.scatter_add)."""
    _check_index(index, "scatter_add")
    if not (index.ndim == input.ndim == src.ndim):
        raise RuntimeError("scatter_add: index, input and src must have the same number of "
                           f"dimensions, got {index.ndim}, {input.ndim} and {src.ndim}")
    return ScatterAdd.apply(input, wrap_dim(dim, input.ndim, "scatter_add"),
                            index.to(_dt.int64), src.to(input.dtype))


def index_select(input, dim, index):
    """The entries of `input` at the 1-D `index` along `dim`."""
    _check_index(index, "index_select")
    if index.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    d = wrap_dim(dim, input.ndim, "index_select")
    return getitem(input, (slice(None),) * d + (index.reshape(-1),))


def masked_fill(input, mask, value):
    """`value` where the bool `mask` is true, `input` elsewhere (mask broadcasts)."""
    from .elementwise import where
    if not isinstance(mask, Tensor) or mask.dtype is not _dt.bool:
        raise TypeError("masked_fill: mask must be a bool Tensor")
    if isinstance(value, Tensor):
        value = value.to(input.dtype)
    return where(mask, value, input)


def one_hot(tensor, num_classes=-1):
    """int64 one-hot encoding with a trailing dim of num_classes (max + 1 if -1)."""
    _check_index(tensor, "one_hot")
    if num_classes == -1:
        if tensor.numel() == 0:
            raise RuntimeError("one_hot: can not infer total number of classes from empty tensor")
        num_classes = int(tensor.max().item()) + 1
    out = tensor._backend().one_hot(tensor.to(_dt.int64)._data, int(num_classes), np.int64)
    return Tensor._make(out, tensor.device)


def sort(input, dim=-1, descending=False, stable=True):
    """(values, indices) sorted along `dim` (stable; NaN sorts last); values differentiable."""
    d = wrap_dim(dim, input.ndim, "sort")
    if input.ndim == 0:
        return sort_result(input, Tensor._make(input._backend().full((), 0, np.int64), input.device))
    return sort_result(*SelectAlong.apply(input, "sort", d, bool(descending), None))


def argsort(input, dim=-1, descending=False, stable=True):
    """Indices that sort `input` along `dim`."""
    return sort(input, dim, descending).indices


def topk(input, k, dim=-1, largest=True, sorted=True):  # noqa: A002
    """The k largest (or smallest) entries along `dim`, as (values, indices)."""
    d = wrap_dim(dim, input.ndim, "topk")
    size = input.shape[d] if input.ndim else 1
    if not 0 <= k <= size:
        raise RuntimeError(f"topk: k ({k}) is out of range for dimension {d} of size {size}")
    if input.ndim == 0:
        return topk_result(input, Tensor._make(input._backend().full((), 0, np.int64), input.device))
    return topk_result(*SelectAlong.apply(input, "topk", d, int(k), bool(largest)))


def nonzero(input, *, as_tuple=False):
    """Coordinates of the non-zero elements: an (n, ndim) int64 tensor, or a tuple of columns."""
    mask = input if input.dtype is _dt.bool else input != 0
    coords = Tensor._make(input._backend().nonzero(mask._data), input.device)
    if as_tuple:
        return tuple(coords[:, j] for j in range(max(input.ndim, 1)))
    return coords


def _check_index(index, op):
    if not isinstance(index, Tensor):
        raise TypeError(f"{op}: index must be a Tensor, got {type(index).__name__}")
    if index.dtype not in (_dt.int64, _dt.int32):
        raise RuntimeError(f"{op}(): Expected dtype int64 for index, got {index.dtype}")
