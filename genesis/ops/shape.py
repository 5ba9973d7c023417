"""Shape operations.  Views share memory (and the version counter) with their
input wherever the strides allow; the rest copy through our copy kernel."""
import builtins

from .. import dtypes as _dt
from ..autograd.function import Function
from ..tensor import Tensor
from ._util import sum_to_shape, wrap_dim


class Reshape(Function):
    is_view = True

    def forward(ctx, x, shape):
        ctx.shape = x.shape
        out = ctx.backend.reshape(x, shape)
        if not ctx.backend.shares_memory(out, x):
            ctx.is_view = False
        return out

    def backward(ctx, g):
        return g.reshape(ctx.shape), None


class Permute(Function):
    is_view = True

    def forward(ctx, x, axes):
        ctx.axes = axes
        return ctx.backend.permute(x, axes)

    def backward(ctx, g):
        inverse = [0] * len(ctx.axes)
        for i, a in enumerate(ctx.axes):
            inverse[a] = i
        return g.permute(inverse), None


class Expand(Function):
    is_view = True

    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return ctx.backend.broadcast_to(x, shape)

    def backward(ctx, g):
        return sum_to_shape(g, ctx.shape), None


class Flip(Function):
    is_view = True

    def forward(ctx, x, dims):
        ctx.dims = dims
        return ctx.backend.flip(x, dims)

    def backward(ctx, g):
        return g.flip(ctx.dims), None


class Copy(Function):
    """A contiguous copy (clone / contiguous)."""

    def forward(ctx, x):
        return ctx.backend.copy(x)

    def backward(ctx, g):
        return g


class Cast(Function):
    def forward(ctx, x, dtype):
        ctx.source = x.dtype
        return ctx.backend.cast(x, dtype.np)

    def backward(ctx, g):
        if ctx.source.kind != "f":
            return None, None
        return g.to(_dt.from_numpy_dtype(ctx.source)), None


class ToDevice(Function):
    """Copy to another device; the gradient is copied back."""

    def forward(ctx, x, target):
        from ..backend import get
        ctx.source = ctx.device
        ctx.device = target  # the output lives on the target device
        return get(target).from_numpy(ctx.backend.to_numpy(x).copy())

    def backward(ctx, g):
        return to_device(g, ctx.source), None


class Cat(Function):
    def forward(ctx, dim, *xs):
        shape = list(xs[0].shape)
        shape[dim] = builtins.sum(x.shape[dim] for x in xs)
        out = ctx.backend.empty(tuple(shape), xs[0].dtype)
        ctx.dim, ctx.sizes = dim, [x.shape[dim] for x in xs]
        start = 0
        for x, size in zip(xs, ctx.sizes):
            key = (slice(None),) * dim + (slice(start, start + size),)
            ctx.backend.copy_into(ctx.backend.view_index(out, key), x, out.nbytes)
            start += size
        return out

    def backward(ctx, g):
        return (None,) + tuple(g.split(ctx.sizes, ctx.dim))


class ConstantPad(Function):
    def forward(ctx, x, pads, value):
        ctx.key = tuple(slice(lo, lo + s) for s, (lo, _) in zip(x.shape, pads))
        shape = tuple(s + lo + hi for s, (lo, hi) in zip(x.shape, pads))
        out = ctx.backend.full(shape, value, x.dtype)
        ctx.backend.copy_into(ctx.backend.view_index(out, ctx.key), x)
        return out

    def backward(ctx, g):
        return g[ctx.key], None, None


# ---------------------------------------------------------------- public API
def _sizes(args, op):
    """Accept f(2, 3) and f((2, 3)) like PyTorch."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    try:
        return tuple(int(a) for a in args)
    except TypeError:
        raise TypeError(f"{op}: sizes must be ints, got {args!r}") from None


def _infer_shape(shape, numel, op):
    unknown = [i for i, s in enumerate(shape) if s == -1]
    if len(unknown) > 1:
        raise RuntimeError(f"{op}: only one dimension can be inferred")
    known = 1
    for s in shape:
        if s != -1:
            if s < 0:
                raise RuntimeError(f"{op}: invalid shape dimension {s}")
            known *= s
    if unknown:
        if known == 0 or numel % known:
            raise RuntimeError(f"{op}: shape '{list(shape)}' is invalid for input of size {numel}")
        shape = list(shape)
        shape[unknown[0]] = numel // known
        return tuple(shape)
    if known != numel:
        raise RuntimeError(f"{op}: shape '{list(shape)}' is invalid for input of size {numel}")
    return shape


def reshape(input, *shape):
    """The same data with a new shape (a view when strides allow, else a copy)."""
    shape = _infer_shape(_sizes(shape, "reshape"), input.numel(), "reshape")
    if shape == input.shape:
        return input
    return Reshape.apply(input, shape)


def view(input, *shape):
    """Like reshape, but always a view: an error when the strides do not allow one."""
    out = reshape(input, *shape)
    if out is not input and out._base is None:
        raise RuntimeError("view size is not compatible with input tensor's size and stride "
                           "(at least one dimension spans across two contiguous subspaces). "
                           "Use .reshape(...) instead.")
    return out


def flatten(input, start_dim=0, end_dim=-1):
    """Merge dims start_dim..end_dim into one."""
    if input.ndim == 0:
        return input.reshape(1)
    s = wrap_dim(start_dim, input.ndim, "flatten")
    e = wrap_dim(end_dim, input.ndim, "flatten")
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    shape = input.shape
    merged = 1
    for d in range(s, e + 1):
        merged *= shape[d]
    return reshape(input, tuple(shape[:s]) + (merged,) + tuple(shape[e + 1:]))


def unflatten(input, dim, sizes):
    """Split dim `dim` into `sizes`."""
    d = wrap_dim(dim, input.ndim, "unflatten")
    sizes = _infer_shape(tuple(sizes), input.shape[d], "unflatten")
    return reshape(input, tuple(input.shape[:d]) + tuple(sizes) + tuple(input.shape[d + 1:]))


def squeeze(input, dim=None):
    """Remove size-1 dims (all, or those in `dim`)."""
    if dim is None:
        dims = [d for d, s in enumerate(input.shape) if s == 1]
    else:
        dims = [wrap_dim(d, input.ndim, "squeeze") for d in ((dim,) if isinstance(dim, int) else dim)]
        dims = [d for d in dims if input.shape[d] == 1]
    if not dims:
        return input
    return reshape(input, tuple(s for d, s in enumerate(input.shape) if d not in dims))


def unsqueeze(input, dim):
    """Insert a size-1 dim at `dim`."""
    d = wrap_dim(dim, input.ndim + 1, "unsqueeze")
    shape = tuple(input.shape)
    return reshape(input, shape[:d] + (1,) + shape[d:])


def permute(input, *dims):
    """Reorder the dims (a view)."""
    dims = _sizes(dims, "permute")
    if len(dims) != input.ndim:
        raise RuntimeError(f"permute: number of dims don't match: the tensor has {input.ndim} "
                           f"dims but {len(dims)} were given")
    axes = tuple(wrap_dim(d, input.ndim, "permute") for d in dims)
    if len(set(axes)) != len(axes):
        raise RuntimeError(f"permute: repeated dim in {dims}")
    if axes == tuple(range(input.ndim)):
        return input
    return Permute.apply(input, axes)


def transpose(input, dim0, dim1):
    """Swap two dims (a view)."""
    n = input.ndim
    if n < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return input
    a, b = wrap_dim(dim0, n, "transpose"), wrap_dim(dim1, n, "transpose")
    axes = list(range(n))
    axes[a], axes[b] = axes[b], axes[a]
    return permute(input, axes)


swapaxes = transpose


def t(input):
    """Transpose of a matrix (0-d and 1-d tensors are returned as is)."""
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return transpose(input, 0, 1) if input.ndim == 2 else input


def movedim(input, source, destination):
    """Move dim `source` to position `destination`."""
    s = wrap_dim(source, input.ndim, "movedim")
    d = wrap_dim(destination, input.ndim, "movedim")
    order = [i for i in range(input.ndim) if i != s]
    order.insert(d, s)
    return permute(input, order)


def expand(input, *sizes):
    """Broadcast to a larger shape without copying (-1 keeps a dim)."""
    sizes = _sizes(sizes, "expand")
    if len(sizes) < input.ndim:
        raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be greater "
                           f"or equal to the number of dimensions in the tensor ({input.ndim})")
    lead = len(sizes) - input.ndim
    shape = []
    for i, s in enumerate(sizes):
        cur = input.shape[i - lead] if i >= lead else None
        if s == -1:
            if cur is None:
                raise RuntimeError("expand: -1 is not allowed in a leading, non-existing dimension")
            s = cur
        elif cur is not None and cur != 1 and cur != s:
            raise RuntimeError(f"expand: the expanded size of the tensor ({s}) must match the "
                               f"existing size ({cur}) at non-singleton dimension {i}. "
                               f"Target sizes: {list(sizes)}. Tensor sizes: {list(input.shape)}")
        shape.append(s)
    shape = tuple(shape)
    if shape == input.shape:
        return input
    return Expand.apply(input, shape)


def broadcast_to(input, shape):
    """Broadcast to `shape` (numpy's rule; a view)."""
    return expand(input, tuple(shape))


def expand_as(input, other):
    return expand(input, tuple(other.shape))


def contiguous(input):
    """The tensor itself if it is C-contiguous, otherwise a contiguous copy."""
    return input if input._data.flags.c_contiguous else Copy.apply(input)


def clone(input):
    """A copy with its own memory (differentiable)."""
    return Copy.apply(input)


def flip(input, dims):
    """Reverse the order of elements along `dims` (a view)."""
    if isinstance(dims, int):
        dims = (dims,)
    dims = tuple(sorted({wrap_dim(d, input.ndim, "flip") for d in dims}))
    if not dims or input.ndim == 0:
        return input
    return Flip.apply(input, dims)


def to_dtype(input, dtype):
    dtype = _dt.to_dtype(dtype)
    if input._data.dtype == dtype.np:
        return input
    return Cast.apply(input, dtype)


def to_device(input, device):
    """The tensor on `device` (itself if it is already there)."""
    if input.device == device:
        return input
    return ToDevice.apply(input, device)


def cat(tensors, dim=0):
    """Concatenate tensors along an existing dim."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("cat(): expected a non-empty list of Tensors")
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"cat(): expected a list of Tensors, got {type(t).__name__}")
    dt = tensors[0].dtype
    for t in tensors[1:]:
        dt = _dt.promote_types(dt, t.dtype)
    tensors = [to_dtype(t, dt) for t in tensors]
    ref = tensors[0]
    d = wrap_dim(dim, ref.ndim, "cat")
    for i, t in enumerate(tensors):
        if t.ndim != ref.ndim or any(a != b for k, (a, b) in enumerate(zip(t.shape, ref.shape)) if k != d):
            raise RuntimeError(f"cat(): sizes of tensors must match except in dimension {d}. "
                               f"Expected {list(ref.shape)} (except dim {d}) but got "
                               f"{list(t.shape)} for tensor number {i} in the list")
    if ref.ndim == 0:
        raise RuntimeError("cat(): zero-dimensional tensor cannot be concatenated")
    return Cat.apply(d, *tensors)


concat = cat


def stack(tensors, dim=0):
    """Join tensors of equal shape along a new dim."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack(): expected a non-empty list of Tensors")
    shape = tensors[0].shape
    for i, t in enumerate(tensors):
        if t.shape != shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got "
                               f"{list(shape)} at entry 0 and {list(t.shape)} at entry {i}")
    d = wrap_dim(dim, len(shape) + 1, "stack")
    return cat([unsqueeze(t, d) for t in tensors], d)


def split(input, split_size_or_sections, dim=0):
    """Views of consecutive pieces along `dim`: equal pieces of a size, or a list of sizes."""
    d = wrap_dim(dim, input.ndim, "split")
    n = input.shape[d]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0:
            raise RuntimeError(f"split: split_size must be positive, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
        if not sizes:
            sizes = [0]
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} "
                               f"(input tensor's size at dimension {d}), but got split_sizes={sizes}")
    out, start = [], 0
    for s in sizes:
        out.append(input[(slice(None),) * d + (slice(start, start + s),)])
        start += s
    return tuple(out)


def chunk(input, chunks, dim=0):
    """Split into `chunks` pieces of ceil(n / chunks) along `dim`."""
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    n = input.shape[wrap_dim(dim, input.ndim, "chunk")]
    size = -(-n // chunks) if n else 1
    return split(input, size, dim)


def unbind(input, dim=0):
    """The slices along `dim`, with that dim removed."""
    d = wrap_dim(dim, input.ndim, "unbind")
    return tuple(input[(slice(None),) * d + (i,)] for i in range(input.shape[d]))


def repeat(input, *sizes):
    """Tile the tensor `sizes[i]` times along each dim (leading dims added)."""
    sizes = _sizes(sizes, "repeat")
    if len(sizes) < input.ndim:
        raise RuntimeError("repeat: number of repeat dims can not be smaller than number of "
                           "dimensions of tensor")
    x = reshape(input, (1,) * (len(sizes) - input.ndim) + tuple(input.shape))
    # (s0, s1, ...) -> (1, s0, 1, s1, ...) -> expand (r0, s0, r1, s1, ...) -> merge pairs
    inter = []
    for s in x.shape:
        inter += [1, s]
    big = []
    for r, s in zip(sizes, x.shape):
        big += [r, s]
    out = expand(reshape(x, tuple(inter)), tuple(big))
    return reshape(out, tuple(r * s for r, s in zip(sizes, x.shape)))


def pad(input, pad, mode="constant", value=0.0):
    """Constant padding; `pad` lists (before, after) pairs from the last dim backwards."""
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported by genesis.pad, got {mode!r}")
    pad = list(pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise RuntimeError(f"pad: padding length must be even and at most 2 * ndim "
                           f"({2 * input.ndim}), got {len(pad)}")
    if builtins.any(p < 0 for p in pad):
        raise RuntimeError(f"pad: negative padding is not supported, got {pad}")
    pairs = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        pairs[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return ConstantPad.apply(input, tuple(pairs), float(value))
