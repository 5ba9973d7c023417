"""CUDA backend: the functions of `genesis.backend.cpu`, same names and signatures,
over device arrays (cupy on a GPU, emulated device memory with GENESIS_CUDA_EMULATE=1).

Every computation is one of our kernels in `kernels/*.cu`; the array library only
allocates, copies between host and device and makes views.  Strided operands reach
the kernels as (shape, strides) metadata, so broadcasts, transposes and slices cost
no copy.  Importing this module raises RuntimeError, saying what to install or set,
when neither a usable GPU with CuPy nor GENESIS_CUDA_EMULATE=1 is there.
"""
import functools

import numpy as np

from ._device import array_type, empty as _empty, launch as _launch
from ._device import launch_grid as _launch_grid, to_device as _to_device, to_host as _to_host
from ._device import xp as _xp
from ... import _C
from ..cpu import _BOOL_RESULT, _REDUCTIONS, _UPSAMPLE_MODES, _positions

name = "cuda"

# Op codes shared with the CPU kernels (the .cu enums follow csrc/elementwise.h).
_U = _C.UNARY_OPS
_B = _C.BINARY_OPS
_R = _C.REDUCE_OPS

_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64", np.dtype(np.int32): "i32",
           np.dtype(np.int64): "i64", np.dtype(np.bool_): "b8"}
_INT_CHECKED = frozenset(("div", "floordiv", "mod", "pow"))
_NUMERIC_UNARY = frozenset(("neg", "abs", "sign", "square", "relu", "clamp", "floor", "ceil",
                            "round", "trunc"))


def _sfx(dtype, op="op"):
    try:
        return _SUFFIX[np.dtype(dtype)]
    except KeyError:
        raise TypeError(f"{op}: genesis kernels do not support numpy dtype {dtype}") from None


# ------------------------------------------------------------------ strided metadata
def _meta(shape, arrays):
    """(ndim, device int64 metadata) describing `arrays` (all of `shape`) for a kernel."""
    return _meta_strides(shape, [_estrides(a) for a in arrays])


def _estrides(a):
    return [s // a.itemsize for s in a.strides]


def _meta_strides(shape, strides):
    """(ndim, device metadata): shape, then each operand's element strides (one list
    per operand), with size-1 dims dropped and dims contiguous in every operand merged."""
    dims = []
    for d, n in enumerate(shape):
        if n == 1:
            continue
        st = [s[d] for s in strides]
        if dims and all(p == c * n for p, c in zip(dims[-1][1], st)):
            dims[-1] = (dims[-1][0] * n, st)
        else:
            dims.append((n, st))
    if not dims:
        dims = [(1, [0] * len(strides))]
    flat = tuple(n for n, _ in dims) + tuple(st[k] for k in range(len(strides)) for _, st in dims)
    return np.int32(len(dims)), _device_meta(flat)


@functools.lru_cache(maxsize=4096)
def _device_meta(flat):
    """Metadata arrays are read-only for kernels, so one copy per layout is shared."""
    return _to_device(np.array(flat, np.int64))


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


# ------------------------------------------------------------------ memory
def empty(shape, dtype):
    return _empty(tuple(shape), dtype)


def full(shape, value, dtype):
    out = _empty(tuple(shape), dtype)
    fill_(out, value)
    return out


def from_data(data, dtype):
    """A new device array holding Python/numpy data (nested lists, scalars, arrays)."""
    return _to_device(np.array(data, dtype=dtype))


def to_numpy(x):
    """A host (numpy) copy of device array x."""
    return _to_host(x)


def from_numpy(a):
    """A device copy of numpy array a."""
    return _to_device(a)


def copy(x):
    out = _empty(x.shape, x.dtype)
    copy_into(out, x)
    return out


def cast(x, dtype):
    if x.dtype == dtype:
        return x
    out = _empty(x.shape, dtype)
    copy_into(out, x)
    return out


def contiguous(x):
    return x if x.flags.c_contiguous else copy(x)


def copy_into(dst, src, whole_bytes=0):
    """dst[...] = src, src broadcast to dst's shape and converted to its dtype.

    whole_bytes (the size of the array dst is a piece of) steers the CPU's streaming
    stores; GPU stores need no such hint.
    """
    if src.shape != dst.shape:
        src = _xp.broadcast_to(src, dst.shape)
    n = _numel(dst.shape)
    if n == 0:
        return
    ndim, meta = _meta(dst.shape, (dst, src))
    _launch("elementwise", f"copy_{_sfx(dst.dtype, 'copy')}_{_sfx(src.dtype, 'copy')}", n,
            (src, dst, np.int64(n), ndim, meta))


def fill_(dst, value):
    n = _numel(dst.shape)
    if n == 0:
        return
    ndim, meta = _meta(dst.shape, (dst,))
    _launch("elementwise", f"fill_{_sfx(dst.dtype, 'fill')}", n,
            (dst, np.int64(n), ndim, meta, np.float64(value)))


# ------------------------------------------------------------------ views
def _view_strides(shape, strides, new_shape):
    """Strides that give `new_shape` over the same elements as (shape, strides) in
    row-major order, or None when only a copy can (numpy's no-copy reshape rule)."""
    old = [(n, s) for n, s in zip(shape, strides) if n != 1]
    new_strides = []
    i = 0
    size = _numel(new_shape)
    if size == 0:
        return [0] * len(new_shape)
    for n in new_shape:
        if n == 1:
            new_strides.append(0)
            continue
        # take old dims until their product reaches n; they must be contiguous among themselves
        prod, group = 1, []
        while prod < n and i < len(old):
            prod *= old[i][0]
            group.append(old[i])
            i += 1
        if prod != n:
            return None
        for (n0, s0), (n1, s1) in zip(group, group[1:]):
            if s0 != n1 * s1:
                return None
        new_strides.append(group[-1][1])
    return new_strides


def reshape(x, shape):
    """A view when strides allow, otherwise a contiguous copy made by our kernel."""
    shape = tuple(shape)
    if -1 in shape:
        known = _numel(s for s in shape if s != -1)
        shape = tuple((x.size // known if known else 0) if s == -1 else s for s in shape)
    if _numel(shape) != x.size:
        raise ValueError(f"cannot reshape array of size {x.size} into shape {shape}")
    st = _view_strides(x.shape, x.strides, shape)
    if st is None:
        return copy(x).reshape(shape)
    return _xp.lib.stride_tricks.as_strided(x, shape, st)


def permute(x, axes):
    return x.transpose(axes)


def broadcast_to(x, shape):
    return _xp.broadcast_to(x, shape)


def view_index(x, key):
    """Basic indexing (ints, slices, None): always a view, never a scalar."""
    out = x[key]
    return out if isinstance(out, array_type) else x[tuple(key) + (Ellipsis,)]


def flip(x, dims):
    key = [slice(None)] * x.ndim
    for d in dims:
        key[d] = slice(None, None, -1)
    return x[tuple(key)]


def shares_memory(a, b):
    return _xp.may_share_memory(a, b)


# ------------------------------------------------------------------ elementwise
def _check_unary(op, dtype):
    kind = np.dtype(dtype).kind
    if kind == "b" or (kind != "f" and op not in _NUMERIC_UNARY):
        expected = "a float or integer dtype" if op in _NUMERIC_UNARY else "float32 or float64"
        raise TypeError(f"{op}: input has dtype {np.dtype(dtype).name}, expected {expected}")


def _unary(op, x, out, p0, p1):
    n = _numel(x.shape)
    if n == 0:
        return out
    ndim, meta = _meta(x.shape, (out, x))
    s = _sfx(x.dtype, op)
    if op == "logical_not":
        _launch("elementwise", f"logical_not_{s}", n, (x, out, np.int64(n), ndim, meta))
    else:
        _check_unary(op, x.dtype)
        _launch("elementwise", f"unary_{s}", n, (x, out, np.int64(n), ndim, meta, np.float64(p0),
                                                 np.float64(p1), np.int32(_U[op])))
    return out


def unary(op, x, p0=0.0, p1=0.0):
    return _unary(op, x, _empty(x.shape, np.bool_ if op == "logical_not" else x.dtype), p0, p1)


def unary_(op, x, p0=0.0, p1=0.0):
    """In place: x = op(x)."""
    return _unary(op, x, x, p0, p1)


_ERR = None  # a persistent int32 error word for integer division and powers


def _binary(op, a, b, out):
    if a.dtype != b.dtype:
        raise TypeError(f"{op}: inputs have different dtypes {a.dtype} and {b.dtype}")
    n = _numel(out.shape)
    if n == 0:
        return out
    s = _sfx(a.dtype, op)
    ndim, meta = _meta(out.shape, (out, a, b))
    code = np.int32(_B[op])
    if op in _BOOL_RESULT:
        _launch("elementwise", f"compare_{s}", n, (a, b, out, np.int64(n), ndim, meta, code))
        return out
    kind = a.dtype.kind
    if (kind == "b" and op not in ("add", "mul", "maximum", "minimum")) or \
            (kind != "f" and op in ("atan2", "relu_grad", "gelu_grad")):
        raise TypeError(f"{op}: input has dtype {a.dtype}, expected a numeric dtype")
    global _ERR
    if _ERR is None:
        _ERR = full((1,), 0, np.int32)
    _launch("elementwise", f"binary_{s}", n, (a, b, out, np.int64(n), ndim, meta, code, _ERR))
    if kind in "iu" and op in _INT_CHECKED:
        err = int(_to_host(_ERR)[0])
        if err:
            fill_(_ERR, 0)
            if err == 1:
                raise ValueError(f"{op}: integer division by zero")
            raise ValueError(f"{op}: integers to negative integer powers are not allowed")
    return out


def binary(op, a, b):
    shape = a.shape if a.shape == b.shape else np.broadcast_shapes(a.shape, b.shape)
    out = _empty(shape, np.bool_ if op in _BOOL_RESULT else a.dtype)
    return _binary(op, _expand(a, shape), _expand(b, shape), out)


def binary_(op, a, b):
    """In place: a = op(a, b), b broadcast to a's shape."""
    return _binary(op, a, _expand(b, a.shape), a)


def where(cond, a, b):
    shape = np.broadcast_shapes(cond.shape, a.shape, b.shape)
    if a.dtype != b.dtype:
        raise TypeError(f"where: second input has dtype {b.dtype}, expected {a.dtype}")
    if cond.dtype != np.bool_:
        raise TypeError(f"where: condition has dtype {cond.dtype}, expected bool")
    out = _empty(shape, a.dtype)
    n = _numel(shape)
    if n:
        args = (out, _expand(cond, shape), _expand(a, shape), _expand(b, shape))
        ndim, meta = _meta(shape, args)
        _launch("elementwise", f"where_{_sfx(a.dtype, 'where')}", n,
                (*args[1:], out, np.int64(n), ndim, meta))
    return out


def _expand(x, shape):
    return x if x.shape == shape else _xp.broadcast_to(x, shape)


def broadcast_arrays(*arrays):
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    return [_expand(a, shape) for a in arrays]


# ------------------------------------------------------------------ reductions
_SMALL_REDUCTION = 8     # at most this many elements per output ...
_MANY_OUTPUTS = 1024     # ... and at least this many outputs: one thread per output
_MAX_LINES = 4096        # blocks of the one-block-per-line kernels; they loop over the rest


def _line_block(n):
    """Threads per block for a reduction of n elements: a multiple of 32, at most 256."""
    b = 32
    while b < n and b < 256:
        b *= 2
    return b


def reduce(op, x, dims, keepdim, dtype=None):
    kept = list(x.shape)
    for d in dims:
        kept[d] = 1
    out = _empty(tuple(kept), dtype or x.dtype)
    name = f"reduce_{_sfx(x.dtype, op)}_{_sfx(out.dtype, op)}"
    others = [d for d in range(x.ndim) if d not in dims]
    xs, os_ = _estrides(x), _estrides(out)
    nout = _numel(kept)
    nred = _numel(x.shape[d] for d in dims)
    if nout:
        nk, kmeta = _meta_strides([x.shape[d] for d in others],
                                  [[xs[d] for d in others], [os_[d] for d in others]])
        nr, rmeta = _meta_strides([x.shape[d] for d in dims], [[xs[d] for d in dims]])
        args = (x, out, np.int64(nout), np.int64(nred), nk, kmeta, nr, rmeta, np.int32(_R[op]))
        if nred <= _SMALL_REDUCTION and nout >= _MANY_OUTPUTS:
            _launch("reduce", name, nout, args + (np.int32(1),))
        else:
            _launch_grid("reduce", name, (min(nout, _MAX_LINES),), (_line_block(nred),),
                         args + (np.int32(0),))
    if not keepdim:
        out = reshape(out, [s for d, s in enumerate(x.shape) if d not in dims])
    return out


def _lines(x, dim, outs):
    """(nlines, nk, kmeta) for the lines of x along dim, over x and `outs` (same ndim)."""
    others = [d for d in range(x.ndim) if d != dim]
    strides = [[_estrides(a)[d] for d in others] for a in (x, *outs)]
    nk, kmeta = _meta_strides([x.shape[d] for d in others], strides)
    return _numel(x.shape[d] for d in others), nk, kmeta


def _along(x, dim):
    """x as at least 1-D (a 0-d tensor is one line of one element) and the dim."""
    return (x.reshape(1), 0) if x.ndim == 0 else (x, dim)


def _estride(a, dim):
    return np.int64(a.strides[dim] // a.itemsize)


def reduce_arg(is_max, x, dim, keepdim):
    kept = list(x.shape)
    if x.ndim:
        kept[dim] = 1
    values = _empty(tuple(kept), x.dtype)
    indices = _empty(tuple(kept), np.int64)
    xa, d = _along(x, dim)
    va, ia = _along(values, dim)[0], _along(indices, dim)[0]
    n = xa.shape[d]
    if n == 0:
        raise ValueError(f"{'max' if is_max else 'min'}: cannot reduce over an empty dimension")
    nlines, nk, kmeta = _lines(xa, d, (va, ia))
    if nlines:
        _launch_grid("reduce", f"reduce_arg_{_sfx(x.dtype, 'max')}", (min(nlines, _MAX_LINES),),
                     (_line_block(n),), (xa, va, ia, np.int64(nlines), np.int64(n),
                                         _estride(xa, d), nk, kmeta, np.int32(bool(is_max))))
    if not keepdim and x.ndim:
        values, indices = _xp.squeeze(values, dim), _xp.squeeze(indices, dim)
    return values, indices


def cumsum(x, dim):
    out = _empty(x.shape, x.dtype)
    xa, d = _along(x, dim)
    oa = _along(out, dim)[0]
    n = xa.shape[d]
    nlines, nk, kmeta = _lines(xa, d, (oa,))
    if nlines and n:
        _launch_grid("reduce", f"cumsum_{_sfx(x.dtype, 'cumsum')}", (min(nlines, _MAX_LINES),),
                     (_line_block(n),), (xa, oa, np.int64(nlines), np.int64(n), _estride(xa, d),
                                         _estride(oa, d), nk, kmeta))
    return out


def _check_float(op, dtype):
    if np.dtype(dtype).kind != "f":
        raise TypeError(f"{op}: expected a float32 or float64 tensor, got {np.dtype(dtype).name}")


def softmax(x, dim, log):
    op = "log_softmax" if log else "softmax"
    _check_float(op, x.dtype)
    out = _empty(x.shape, x.dtype)
    xa, d = _along(x, dim)
    oa = _along(out, dim)[0]
    n = xa.shape[d]
    nlines, nk, kmeta = _lines(xa, d, (oa,))
    if nlines and n:
        _launch_grid("reduce", f"softmax_{_sfx(x.dtype)}", (min(nlines, _MAX_LINES),),
                     (_line_block(n),), (xa, oa, np.int64(nlines), np.int64(n), _estride(xa, d),
                                         _estride(oa, d), nk, kmeta, np.int32(bool(log))))
    return out


def softmax_backward(y, grad, dim, log):
    op = "log_softmax_backward" if log else "softmax_backward"
    _check_float(op, y.dtype)
    if grad.dtype != y.dtype or grad.shape != y.shape:
        raise ValueError(f"{op}: grad {grad.shape} {grad.dtype} does not match output "
                         f"{y.shape} {y.dtype}")
    out = _empty(y.shape, y.dtype)
    ya, d = _along(y, dim)
    ga, oa = _along(grad, dim)[0], _along(out, dim)[0]
    n = ya.shape[d]
    nlines, nk, kmeta = _lines(ya, d, (ga, oa))
    if nlines and n:
        _launch_grid("reduce", f"softmax_backward_{_sfx(y.dtype)}", (min(nlines, _MAX_LINES),),
                     (_line_block(n),), (ya, ga, oa, np.int64(nlines), np.int64(n),
                                         _estride(ya, d), _estride(ga, d), _estride(oa, d), nk,
                                         kmeta, np.int32(bool(log))))
    return out


# ------------------------------------------------------------------ linear algebra
_TILE = 64  # the C tile of one block (TM, TN in gemm.cu)


def matmul(a, b):
    """a[..., M, K] @ b[..., K, N] with broadcast batch dims (both at least 2-D)."""
    if a.dtype != b.dtype or a.dtype.kind != "f":
        raise TypeError(f"matmul: expected two float32 or two float64 operands, got {a.dtype} "
                        f"and {b.dtype}")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align "
                         f"({a.shape[-1]} != {b.shape[-2]})")
    batch = a.shape[:-2] if a.shape[:-2] == b.shape[:-2] else \
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    (M, K), N = a.shape[-2:], b.shape[-1]
    out = _empty(batch + (M, N), a.dtype)
    nbatch = _numel(batch)
    if nbatch == 0 or M == 0 or N == 0:
        return out
    a, b = _expand(a, batch + a.shape[-2:]), _expand(b, batch + b.shape[-2:])
    sa, sb, so = _estrides(a), _estrides(b), _estrides(out)
    nb, bmeta = _meta_strides(batch, [sa[:-2], sb[:-2], so[:-2]])
    grid = ((N + _TILE - 1) // _TILE, (M + _TILE - 1) // _TILE, min(nbatch, 65535))
    i64 = np.int64
    _launch_grid("gemm", f"matmul_{_sfx(a.dtype)}", grid, (256,),
                 (a, b, out, i64(M), i64(N), i64(K), i64(sa[-2]), i64(sa[-1]), i64(sb[-2]),
                  i64(sb[-1]), i64(so[-2]), i64(so[-1]), i64(nbatch), nb, bmeta))
    return out


# ------------------------------------------------------------------ convolution
# The checks of csrc/conv.cpp, pool.cpp and upsample.cpp, with their messages, run
# before any kernel.  Geometry reaches the kernels as small int64 arrays (ConvGeo,
# PoolGeo in the .cu files), shared per layout like the strided metadata.
def _shape_str(shape):
    return "[" + ", ".join(map(str, shape)) + "]"


def _strides_meta(a):
    """a's element strides as a device array (kernels that index 4-D operands directly)."""
    return _device_meta(tuple(_estrides(a)))


def _conv_geometry(op, x_shape, w_shape, y_shape, dtypes, bias, stride, padding, dilation,
                   groups, bias_channels):
    """ConvGeo of a convolution with input x, weight w and output y (one of them
    is the array being computed, of the shape its caller derived)."""
    shapes = (f" (input {_shape_str(x_shape)}, weight {_shape_str(w_shape)}, output "
              f"{_shape_str(y_shape)})")
    if len(x_shape) != 4 or len(w_shape) != 4 or len(y_shape) != 4:
        raise ValueError(f"{op}: expected 4-D input, weight and output{shapes}")
    if any(d != dtypes[0] for d in dtypes):
        raise TypeError(f"{op}: input, weight, output and bias must have one dtype, got "
                        + ", ".join(d.name for d in dtypes))
    if dtypes[0].kind != "f":
        raise TypeError(f"{op}: expected float32 or float64, got {dtypes[0].name}")
    if min(stride) < 1 or min(dilation) < 1:
        raise ValueError(f"{op}: stride and dilation must be positive")
    if padding[0] < 0 or padding[2] < 0:
        raise ValueError(f"{op}: top/left padding must be non-negative")
    (N, C, H, W), (OC, Cg, KH, KW) = x_shape, w_shape
    if groups < 1 or C % groups or OC % groups or Cg * groups != C:
        raise ValueError(f"{op}: groups={groups} must divide the channels, with "
                         f"weight.shape[1] * groups == input channels{shapes}")
    if tuple(y_shape[:2]) != (N, OC):
        raise ValueError(f"{op}: output must be [N, weight.shape[0], OH, OW]{shapes}")
    if KH < 1 or KW < 1:
        raise ValueError(f"{op}: empty kernel{shapes}")
    for i, (n, k) in enumerate(((H, KH), (W, KW))):
        extent = n + padding[2 * i] + padding[2 * i + 1]
        span = dilation[i] * (k - 1) + 1
        if extent < span or y_shape[2 + i] != (extent - span) // stride[i] + 1:
            raise ValueError(f"{op}: output size does not match the input size, kernel, "
                             f"stride, padding and dilation{shapes}")
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != bias_channels):
        raise ValueError(f"{op}: bias must have shape [{bias_channels}], got "
                         f"{_shape_str(bias.shape)}")
    return _device_meta((C, H, W, groups, KH, KW, y_shape[2], y_shape[3], stride[0], stride[1],
                         padding[0], padding[2], dilation[0], dilation[1]))


def _add_channel_bias(out, bias):
    if bias is not None:
        binary_("add", out, bias.reshape(1, bias.shape[0], 1, 1))
    return out


def _im2col(x, geo, col_shape, col_strides):
    """x's column matrix, laid out by `col_strides` over (n, g, k, p)."""
    col = _empty(col_shape, x.dtype)
    _launch("conv", f"im2col_{_sfx(x.dtype)}", col.size,
            (x, col, np.int64(col.size), geo, _strides_meta(x), _device_meta(tuple(col_strides))))
    return col


def conv2d(x, weight, bias, out_hw, stride, padding, dilation, groups):
    """out[N, OC, OH, OW] = conv(x, weight) + bias: im2col, then one GEMM per
    (sample, group)."""
    N, G = x.shape[0], groups
    out_shape = (N, weight.shape[0]) + tuple(out_hw)
    dtypes = [x.dtype, weight.dtype, x.dtype] + ([bias.dtype] if bias is not None else [])
    geo = _conv_geometry("conv2d", x.shape, weight.shape, out_shape, dtypes, bias, stride,
                         padding, dilation, groups, weight.shape[0])
    K, P = _numel(weight.shape[1:]), _numel(out_hw)
    col = _im2col(x, geo, (N, G, K, P), (G * K * P, K * P, P, 1))
    w = reshape(weight, (1, G, weight.shape[0] // G, K))
    return _add_channel_bias(reshape(matmul(w, col), out_shape), bias)


def conv2d_input_grad(grad, weight, bias, input_hw, stride, padding, dilation, groups):
    """conv2d's input gradient (+ bias per channel): conv_transpose2d's forward.
    One GEMM w[g]^T @ grad[n, g] per (sample, group) gives the columns; col2im
    gathers them into the input gradient."""
    N, G, (OC, Cg) = grad.shape[0], groups, weight.shape[:2]
    out = _empty((N, Cg * G) + tuple(input_hw), grad.dtype)
    dtypes = [out.dtype, weight.dtype, grad.dtype] + ([bias.dtype] if bias is not None else [])
    geo = _conv_geometry("conv2d_input_grad", out.shape, weight.shape, grad.shape, dtypes, bias,
                         stride, padding, dilation, groups, Cg * G)
    K = _numel(weight.shape[1:])
    w = reshape(weight, (1, G, OC // G, K)).transpose(0, 1, 3, 2)
    col = matmul(w, reshape(grad, (N, G, OC // G, _numel(grad.shape[2:]))))
    _launch("conv", f"col2im_{_sfx(out.dtype)}", out.size, (col, out, np.int64(out.size), geo))
    return _add_channel_bias(out, bias)


def conv2d_weight_grad(x, grad, weight_shape, stride, padding, dilation, groups):
    """gw[g] = grad[:, g] @ col(x[:, g])^T: one GEMM per group, with the batch
    folded into the columns of the column matrix."""
    N, G, OC = x.shape[0], groups, weight_shape[0]
    geo = _conv_geometry("conv2d_weight_grad", x.shape, weight_shape, grad.shape,
                         [x.dtype, x.dtype, grad.dtype], None, stride, padding, dilation,
                         groups, 0)
    K, P = _numel(weight_shape[1:]), _numel(grad.shape[2:])
    col = _im2col(x, geo, (G, K, N * P), (P, K * N * P, N * P, 1))
    g = reshape(reshape(grad, (N, G, OC // G, P)).transpose(1, 2, 0, 3), (G, OC // G, N * P))
    return reshape(matmul(g, col.transpose(0, 2, 1)), weight_shape)


# ------------------------------------------------------------------ pooling
def _check_planes(op, x_shape, y_shape, dtype):
    """csrc/pool.cpp's check_planes: x [N, C, H, W] input side, y [N, C, OH, OW], both of
    `dtype` (the array computed has the dtype of the one given)."""
    if len(x_shape) != 4 or len(y_shape) != 4:
        raise ValueError(f"{op}: expected 4-D [N, C, H, W] arrays, got {_shape_str(x_shape)} "
                         f"and {_shape_str(y_shape)}")
    if dtype.kind != "f":
        raise TypeError(f"{op}: expected float32 or float64 arrays of one dtype, got "
                        f"{dtype.name} and {dtype.name}")
    if tuple(x_shape[:2]) != tuple(y_shape[:2]):
        raise ValueError(f"{op}: batch and channel sizes differ: {_shape_str(x_shape)} and "
                         f"{_shape_str(y_shape)}")


def _pool_out(n, k, s, p, d, ceil_mode):
    o = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    return o - 1 if ceil_mode and (o - 1) * s >= n + p else o


def _pool_geometry(op, x_shape, y_shape, kernel_size, stride, padding, dilation):
    """PoolGeo, after csrc/pool.cpp's check_window."""
    for i in range(2):
        k, s, p, d = kernel_size[i], stride[i], padding[i], dilation[i]
        if k < 1 or s < 1 or d < 1 or p < 0:
            raise ValueError(f"{op}: kernel size, stride and dilation must be positive and "
                             "padding non-negative")
        if p > k // 2:
            raise ValueError(f"{op}: padding {p} must be at most half of the kernel size {k}")
        n, o = x_shape[2 + i], y_shape[2 + i]
        if o < 1 or o not in (_pool_out(n, k, s, p, d, False), _pool_out(n, k, s, p, d, True)):
            raise ValueError(f"{op}: output {_shape_str(y_shape)} does not match input "
                             f"{_shape_str(x_shape)} for this kernel, stride, padding and "
                             "dilation")
    return _device_meta((x_shape[1],) + tuple(x_shape[2:]) + tuple(y_shape[2:])
                        + tuple(kernel_size) + tuple(stride) + tuple(padding) + tuple(dilation))


def _plane_geometry(op, x_shape, y_shape):
    """(C, H, W, OH, OW) after the check that both planes are non-empty."""
    if min(x_shape[2:]) < 1 or min(y_shape[2:]) < 1:
        raise ValueError(f"{op}: input {_shape_str(x_shape)} and output {_shape_str(y_shape)} "
                         "must have non-empty spatial dims")
    return _device_meta((x_shape[1],) + tuple(x_shape[2:]) + tuple(y_shape[2:]))


def max_pool2d(x, out_hw, kernel_size, stride, padding, dilation):
    """(values, int64 indices of the maxima within each H*W plane)."""
    shape = x.shape[:2] + tuple(out_hw)
    _check_planes("max_pool2d", x.shape, shape, x.dtype)
    geo = _pool_geometry("max_pool2d", x.shape, shape, kernel_size, stride, padding, dilation)
    out, indices = _empty(shape, x.dtype), _empty(shape, np.int64)
    _launch("pool", f"max_pool_{_sfx(x.dtype)}", out.size,
            (x, out, indices, np.int64(out.size), geo, _strides_meta(x)))
    return out, indices


def max_pool2d_backward(grad, indices, input_shape):
    """Each output gradient added at its window's argmax; IndexError for an index
    outside its plane."""
    op = "max_pool2d_backward"
    _check_planes(op, input_shape, grad.shape, grad.dtype)
    if indices.dtype != np.int64 or indices.shape != grad.shape:
        raise ValueError(f"{op}: indices must be int64 of shape {_shape_str(grad.shape)}, got "
                         f"{_shape_str(indices.shape)}")
    out = full(tuple(input_shape), 0, grad.dtype)
    if out.size == 0 or grad.size == 0:
        return out
    hw = _numel(input_shape[2:])
    err = _error_word()
    _launch("pool", f"max_pool_backward_{_sfx(grad.dtype)}", grad.size,
            (grad, indices, out, np.int64(grad.size), _plane_geometry(op, input_shape, grad.shape),
             _strides_meta(grad), _strides_meta(indices), err))
    pos = _flagged(err)
    if pos is not None:
        k = int(_to_host(indices).reshape(-1)[pos])
        raise IndexError(f"{op}: index {k} is out of range for a plane of {hw} elements")
    return out


def avg_pool2d(x, out_hw, kernel_size, stride, padding, count_include_pad, divisor_override):
    """divisor_override 0 means none."""
    shape = x.shape[:2] + tuple(out_hw)
    _check_planes("avg_pool2d", x.shape, shape, x.dtype)
    geo = _pool_geometry("avg_pool2d", x.shape, shape, kernel_size, stride, padding, (1, 1))
    out = _empty(shape, x.dtype)
    _launch("pool", f"avg_pool_{_sfx(x.dtype)}", out.size,
            (x, out, np.int64(out.size), geo, _strides_meta(x), np.int32(bool(count_include_pad)),
             np.int64(divisor_override)))
    return out


def avg_pool2d_backward(grad, input_shape, kernel_size, stride, padding, count_include_pad,
                        divisor_override):
    """Each input element gathers grad / divisor of the windows that hold it."""
    op = "avg_pool2d_backward"
    _check_planes(op, input_shape, grad.shape, grad.dtype)
    geo = _pool_geometry(op, input_shape, grad.shape, kernel_size, stride, padding, (1, 1))
    out = _empty(tuple(input_shape), grad.dtype)
    _launch("pool", f"avg_pool_backward_{_sfx(grad.dtype)}", out.size,
            (grad, out, np.int64(out.size), geo, _strides_meta(grad),
             np.int32(bool(count_include_pad)), np.int64(divisor_override)))
    return out


def adaptive_avg_pool2d(x, out_hw):
    shape = x.shape[:2] + tuple(out_hw)
    _check_planes("adaptive_avg_pool2d", x.shape, shape, x.dtype)
    geo = _plane_geometry("adaptive_avg_pool2d", x.shape, shape)
    out = _empty(shape, x.dtype)
    _launch("pool", f"adaptive_avg_pool_{_sfx(x.dtype)}", out.size,
            (x, out, np.int64(out.size), geo, _strides_meta(x)))
    return out


def adaptive_avg_pool2d_backward(grad, input_shape):
    op = "adaptive_avg_pool2d_backward"
    _check_planes(op, input_shape, grad.shape, grad.dtype)
    geo = _plane_geometry(op, input_shape, grad.shape)
    out = _empty(tuple(input_shape), grad.dtype)
    _launch("pool", f"adaptive_avg_pool_backward_{_sfx(grad.dtype)}", out.size,
            (grad, out, np.int64(out.size), geo, _strides_meta(grad)))
    return out


# ------------------------------------------------------------------ upsampling
def _upsample_args(op, x_shape, y_shape, dtype, mode, align_corners, scale):
    _check_planes(op, x_shape, y_shape, dtype)
    geo = _plane_geometry(op, x_shape, y_shape)
    sh, sw = (np.float64(0.0 if s is None else s) for s in scale)
    return geo, np.int32(_UPSAMPLE_MODES[mode]), np.int32(bool(align_corners)), sh, sw


def upsample2d(x, out_hw, mode, align_corners, scale):
    """x resized to out_hw: "nearest", "nearest-exact" or "bilinear"; `scale` holds
    the user's (height, width) scale factors, None for an axis whose size was given."""
    shape = x.shape[:2] + tuple(out_hw)
    geo, *params = _upsample_args("upsample2d", x.shape, shape, x.dtype, mode, align_corners, scale)
    out = _empty(shape, x.dtype)
    _launch("upsample", f"upsample_{_sfx(x.dtype)}", out.size,
            (x, out, np.int64(out.size), geo, _strides_meta(x), *params))
    return out


def upsample2d_backward(grad, input_shape, mode, align_corners, scale):
    """The adjoint of upsample2d applied to grad."""
    op = "upsample2d_backward"
    geo, *params = _upsample_args(op, input_shape, grad.shape, grad.dtype, mode, align_corners,
                                  scale)
    out = full(tuple(input_shape), 0, grad.dtype)
    _launch("upsample", f"upsample_backward_{_sfx(grad.dtype)}", grad.size,
            (grad, out, np.int64(grad.size), geo, _strides_meta(grad), *params))
    return out


# ------------------------------------------------------------------ indexing
_NO_ERROR = np.iinfo(np.int64).max  # err[0] until a kernel flags a bad position


def _error_word():
    return _to_device(np.array([_NO_ERROR], np.int64))  # exact: fill_ goes through a double


def _flagged(err):
    """The position a kernel flagged in err, or None."""
    pos = int(_to_host(err)[0])
    return None if pos == _NO_ERROR else pos


def _bad_index(op, index, pos, dim, size):
    value = int(_to_host(index).reshape(-1)[pos])
    return IndexError(f"{op}: index {value} is out of bounds for dimension {dim} with size {size}")


def _as_index(idx, op):
    if idx.dtype == np.int64:
        return idx
    if idx.dtype != np.int32:
        raise TypeError(f"{op}: indices must be int64 or int32, got {idx.dtype}")
    return cast(idx, np.int64)


def _check_indices(op, stacked, sizes, dims, wrap):
    """Validate k stacked index arrays (k, *B), indexing `dims` of the given sizes,
    before anything is written."""
    n = _numel(stacked.shape)
    if n == 0:
        return
    per = n // len(sizes)
    err = _error_word()
    ndim, meta = _meta(stacked.shape, (stacked,))
    _launch("index", "check_index", n, (stacked, np.int64(n), ndim, meta,
                                        _to_device(np.array(sizes, np.int64)), np.int64(per),
                                        np.int32(bool(wrap)), err))
    pos = _flagged(err)
    if pos is not None:
        raise _bad_index(op, stacked, pos, dims[pos // per], sizes[pos // per])


def _as_1d(a):
    return a.reshape(1) if a.ndim == 0 else a


def _dim_meta(index, other, target, dim):
    """Metadata over index's shape: strides of index, `other` and `target` with the
    indexed dim's stride zeroed (its offset comes from the index value)."""
    ts = _estrides(target)
    ts[dim] = 0
    return _meta_strides(index.shape, [_estrides(index), _estrides(other), ts])


def gather(x, dim, index):
    out = _empty(index.shape, x.dtype)
    xa, ia, oa = _as_1d(x), _as_1d(_as_index(index, "gather")), _as_1d(out)
    if ia.ndim != xa.ndim or any(i > s for d, (i, s) in enumerate(zip(ia.shape, xa.shape))
                                 if d != dim):
        raise ValueError(f"gather: index {index.shape} does not fit input {x.shape} "
                         f"along dims other than {dim}")
    n = _numel(ia.shape)
    if n:
        err = _error_word()
        ndim, meta = _dim_meta(ia, oa, xa, dim)
        _launch("index", f"gather_{_sfx(x.dtype, 'gather')}", n,
                (xa, ia, oa, np.int64(n), ndim, meta, np.int64(xa.shape[dim]),
                 _estride(xa, dim), err))
        pos = _flagged(err)
        if pos is not None:
            raise _bad_index("gather", ia, pos, dim, xa.shape[dim])
    return out


def scatter_add_(out, dim, index, src):
    if out.dtype != src.dtype:
        raise TypeError(f"scatter_add: src dtype {src.dtype} does not match out dtype {out.dtype}")
    if out.dtype == np.bool_:
        raise TypeError("scatter_add: bool tensors are not supported on cuda")
    oa, ia, sa = _as_1d(out), _as_1d(_as_index(index, "scatter_add")), _as_1d(src)
    n = _numel(ia.shape)
    if n == 0:
        return out
    _check_indices("scatter_add", ia, [oa.shape[dim]], [dim], False)
    ndim, meta = _dim_meta(ia, sa, oa, dim)
    _launch("index", f"scatter_add_{_sfx(out.dtype)}", n,
            (oa, ia, sa, np.int64(n), ndim, meta, _estride(oa, dim)))
    return out


def _stack(indices, op):
    """The k index arrays (one shape B) as one contiguous int64 (k, *B) array."""
    shape = indices[0].shape
    stacked = _empty((len(indices),) + shape, np.int64)
    for j, idx in enumerate(indices):
        if idx.shape != shape:
            raise ValueError(f"{op}: index arrays have different shapes {shape} and {idx.shape}")
        copy_into(stacked[j], _as_index(idx, op))
    return stacked


def _advanced(op, t, indices, other, other_b, other_t):
    """Shared launch setup of index_gather/index_put: t is the indexed tensor, `other`
    the operand laid out as B + t.shape[k:] (strides other_b over B, other_t over T)."""
    k = len(indices)
    if k > t.ndim:
        raise IndexError(f"{op}: too many indices ({k}) for a tensor of {t.ndim} dimensions")
    stacked = _stack(indices, op)
    B, T = stacked.shape[1:], t.shape[k:]
    nB, tn = _numel(B), _numel(T)
    if nB == 0:
        return None
    _check_indices(op, stacked, list(t.shape[:k]), list(range(k)), True)
    if tn == 0:
        return None
    ts = _estrides(t)
    ks = _to_device(np.array(list(t.shape[:k]) + ts[:k], np.int64))
    nbd, bmeta = _meta_strides(B, [other_b])
    ntd, tmeta = _meta_strides(T, [ts[k:], other_t])
    return (stacked, np.int64(nB), np.int64(tn), np.int32(k), ks, nbd, bmeta, ntd, tmeta), nB * tn


def index_gather(x, indices):
    out = _empty(indices[0].shape + x.shape[len(indices):], x.dtype)
    nb = len(indices[0].shape)
    os_ = _estrides(out)
    plan = _advanced("index_gather", x, indices, out, os_[:nb], os_[nb:])
    if plan is not None:
        (stacked, *rest), n = plan
        _launch("index", f"index_gather_{_sfx(x.dtype, 'index_gather')}", n,
                (x, stacked, out, *rest))
    return out


def index_put_(dst, indices, src, accumulate):
    if dst.dtype != src.dtype:
        raise TypeError(f"index_put: src dtype {src.dtype} does not match dst dtype {dst.dtype}")
    if accumulate and dst.dtype == np.bool_:
        raise TypeError("index_put: accumulating into bool tensors is not supported on cuda")
    B = indices[0].shape if indices else ()
    full_shape = tuple(B) + dst.shape[len(indices):]
    try:
        src = _expand(src, full_shape)
    except ValueError:
        raise ValueError(f"index_put: src {src.shape} cannot be broadcast to {full_shape}") from None
    ss = _estrides(src)
    plan = _advanced("index_put", dst, indices, src, ss[:len(B)], ss[len(B):])
    if plan is not None:
        (stacked, *rest), n = plan
        _launch("index", f"index_put_{_sfx(dst.dtype, 'index_put')}", n,
                (dst, stacked, src, *rest, np.int32(bool(accumulate))))
    return dst


def nonzero(mask):
    n = _numel(mask.shape)
    flags = cast(cast(mask, np.bool_), np.int64).reshape(-1) if n else None
    if n:
        csum = cumsum(flags, 0)
        count = int(_to_host(csum[-1:])[0])
    else:
        count = 0
    out = _empty((count, mask.ndim), np.int64)
    if count and mask.ndim:
        _launch("index", "nonzero_write", n, (flags, csum, out, np.int64(n), np.int32(mask.ndim),
                                              _to_device(np.array(mask.shape, np.int64))))
    return out


def _sorted_along(op, x, dim, k, descending):
    shape = list(x.shape)
    if x.ndim:
        shape[dim] = k
    values = _empty(tuple(shape), x.dtype)
    indices = _empty(tuple(shape), np.int64)
    xa, d = _along(x, dim)
    va, ia = _along(values, dim)[0], _along(indices, dim)[0]
    n = xa.shape[d]
    nlines, nk, kmeta = _lines(xa, d, (va, ia))
    if nlines == 0 or k == 0:
        return values, indices
    P = 1
    while P < n:
        P *= 2
    blocks = min(nlines, _MAX_LINES)
    sv, si = _empty((blocks, P), x.dtype), _empty((blocks, P), np.int64)
    i64 = np.int64
    _launch_grid("index", f"sort_{_sfx(x.dtype, op)}", (blocks,), (_line_block(P // 2),),
                 (xa, va, ia, sv, si, i64(nlines), i64(n), i64(P), i64(k), _estride(xa, d),
                  _estride(va, d), _estride(ia, d), nk, kmeta, np.int32(bool(descending))))
    return values, indices


def sort(x, dim, descending):
    return _sorted_along("sort", x, dim, x.shape[dim] if x.ndim else 1, descending)


def topk(x, k, dim, largest):
    n = x.shape[dim] if x.ndim else 1
    if k < 0:
        raise ValueError(f"topk: k ({k}) must be >= 0")
    if k > n:
        raise ValueError(f"topk: k ({k}) is larger than dimension size ({n})")
    return _sorted_along("topk", x, dim, k, largest)


def one_hot(index, num_classes, dtype):
    out = _empty(index.shape + (num_classes,), dtype)
    index = _as_index(index, "one_hot")
    n = _numel(index.shape)
    if n:
        err = _error_word()
        os_ = _estrides(out)
        ndim, meta = _meta_strides(index.shape, [_estrides(index), os_[:-1]])
        _launch("index", f"one_hot_{_sfx(dtype, 'one_hot')}", n,
                (index, out, np.int64(n), ndim, meta, np.int64(num_classes), np.int64(os_[-1]),
                 err))
        pos = _flagged(err)
        if pos is not None:
            c = int(_to_host(index).reshape(-1)[pos])
            raise IndexError(f"one_hot: class index {c} out of range [0, {num_classes})")
    return out


# ------------------------------------------------------------------ random numbers
# rand and randn fill on the device with Philox4x32-10 (kernels/random.cu), keyed by
# one 64-bit draw from the host generator, so genesis.manual_seed makes them
# repeatable; randint and permutation draw on the host and are copied over.
def _fill_random(op, shape, dtype, generator, normal):
    _check_float(op, dtype)
    out = _empty(tuple(shape), dtype)
    key = np.uint64(generator.integers(0, 2 ** 64, dtype=np.uint64))
    n = _numel(out.shape)
    _launch("random", f"fill_random_{_sfx(dtype)}", n, (out, np.int64(n), key, np.int32(normal)))
    return out


def rand(shape, dtype, generator):
    """Uniform numbers in [0, 1)."""
    return _fill_random("rand", shape, dtype, generator, False)


def randn(shape, dtype, generator):
    """Standard normal numbers."""
    return _fill_random("randn", shape, dtype, generator, True)


def randint(low, high, shape, dtype, generator):
    return from_numpy(generator.integers(low, high, size=shape, dtype=dtype))


def permutation(n, generator):
    return from_numpy(generator.permutation(n).astype(np.int64, copy=False))


# ------------------------------------------------------------------ optimizer updates
# Fused, in place, one kernel per parameter (kernels/optim.cu), with the cpu backend's
# contract: state buffers are contiguous device arrays of the parameter's shape and
# dtype, a buffer the variant does not use is None, and `step` is a 0-d float32 array
# in host memory that the update increments before deriving its scalars from it.
def _check_param(op, param):
    if param.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op}: param has dtype {param.dtype.name}, expected float32 or float64")


def _check_like(op, name, v, param):
    if v.shape != param.shape:
        raise ValueError(f"{op}: {name} has shape {v.shape} but param has shape {param.shape}")
    if v.dtype != param.dtype:
        raise TypeError(f"{op}: {name} has dtype {v.dtype.name} but param has dtype "
                        f"{param.dtype.name}")
    if not v.flags.c_contiguous:
        raise ValueError(f"{op}: {name} must be contiguous")


def _check_buffer(op, name, wanted, why, buf):
    if wanted != (buf is not None):
        raise ValueError(f"{op}: {name} {'is required' if wanted else 'must be omitted'} {why}")


def _next_step(op, step):
    """Increment the host step counter (in float32, as the cpu kernel) and return it."""
    if step.dtype != np.float32 or step.size != 1:
        raise TypeError(f"{op}: step must be a float32 tensor with one element, got "
                        f"{step.dtype.name} of shape {step.shape}")
    flat = step.reshape(-1)
    flat[0] = flat[0] + np.float32(1)
    return float(flat[0])


def _update_(op, param, grad, buffers, scalars):
    """Check the operands, then run kernel `op` over a contiguous parameter
    (written back when param is strided).  `buffers` are (name, array or None, rule)
    in kernel order, rule None or (wanted, why): the buffer must be given exactly when
    `wanted`.  `scalars(T)` gives the kernel's scalar arguments in dtype T once the
    checks passed (it may advance the step counter)."""
    work = param if param.flags.c_contiguous else copy(param)
    grad = contiguous(grad)
    _check_param(op, work)
    _check_like(op, "grad", grad, work)
    for name, buf, rule in buffers:
        if rule is not None:
            _check_buffer(op, name, *rule, buf)
        if buf is not None:
            _check_like(op, name, buf, work)
    args = scalars(work.dtype.type)
    n = work.size
    # a buffer the variant does not use is never touched: pass the parameter instead
    arrays = [work if buf is None else buf for _, buf, _ in buffers]
    _launch("optim", f"{op}_{_sfx(work.dtype)}", n, (work, grad, *arrays, np.int64(n), *args))
    if work is not param:
        copy_into(param, work)


def _flags(*flags):
    return tuple(np.int32(bool(f)) for f in flags)


def _lerp_weights(T, w):
    """(w, 1 - w, |w| < 0.5) in dtype T: torch.lerp's two forms (see optim.cu)."""
    w = T(w)
    return w, T(1) - w, abs(w) < T(0.5)


def sgd_update_(param, grad, momentum_buffer, lr, momentum, dampening, weight_decay,
                nesterov, maximize, init_buffer):
    """SGD; with `init_buffer` the momentum buffer (uninitialized) becomes the gradient."""
    def scalars(T):
        return (T(weight_decay), T(momentum), T(1 - dampening), T(-lr)) + _flags(
            maximize, weight_decay != 0, momentum_buffer is not None, init_buffer, nesterov)
    _update_("sgd_update", param, grad,
             [("momentum_buffer", momentum_buffer, (momentum != 0, "exactly when momentum != 0"))],
             scalars)


def adam_update_(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2,
                 eps, weight_decay, decoupled_weight_decay, maximize):
    """Adam (AdamW with `decoupled_weight_decay`); AMSGrad when max_exp_avg_sq is given."""
    def scalars(T):
        t = _next_step("adam_update", step)
        w1, one_minus_w1, small = _lerp_weights(T, 1 - beta1)
        # AdamW shrinks the parameter first; without it the factor is exactly 1
        shrink = T(1 - lr * weight_decay if decoupled_weight_decay else 1.0)
        bias_correction1, bias_correction2 = 1 - beta1 ** t, 1 - beta2 ** t
        return (shrink, T(weight_decay), w1, one_minus_w1, T(beta2), T(1 - beta2),
                T(-(lr / bias_correction1)), T(bias_correction2 ** 0.5), T(eps)) + _flags(
            maximize, weight_decay != 0 and not decoupled_weight_decay, small,
            max_exp_avg_sq is not None)
    _update_("adam_update", param, grad, [("exp_avg", exp_avg, None),
                                          ("exp_avg_sq", exp_avg_sq, None),
                                          ("max_exp_avg_sq", max_exp_avg_sq, None)], scalars)


def rmsprop_update_(param, grad, square_avg, grad_avg, momentum_buffer, step, lr, alpha, eps,
                    weight_decay, momentum, maximize):
    """RMSprop; centered when grad_avg is given, momentum buffer exactly when momentum > 0."""
    def scalars(T):
        _next_step("rmsprop_update", step)
        w, one_minus_w, small = _lerp_weights(T, 1 - alpha)
        return (T(weight_decay), T(alpha), w, one_minus_w, T(eps), T(momentum), T(-lr)) + \
            _flags(maximize, weight_decay != 0, small, grad_avg is not None,
                   momentum_buffer is not None)
    _update_("rmsprop_update", param, grad, [
        ("square_avg", square_avg, None), ("grad_avg", grad_avg, None),
        ("momentum_buffer", momentum_buffer, (momentum > 0, "exactly when momentum > 0"))],
        scalars)


def adagrad_update_(param, grad, state_sum, step, lr, lr_decay, weight_decay, eps, maximize):
    """Adagrad."""
    def scalars(T):
        t = _next_step("adagrad_update", step)
        return (T(weight_decay), T(eps), T(-(lr / (1 + (t - 1) * lr_decay)))) + _flags(
            maximize, weight_decay != 0)
    _update_("adagrad_update", param, grad, [("state_sum", state_sum, None)], scalars)


# ------------------------------------------------------------------ recurrent cells
# One time step of an LSTM, GRU or Elman RNN from its gate pre-activations, all gates
# in one kernel (kernels/rnn.cu), with the cpu backend's contract, checks and workspace
# layouts: 2-D operands need unit stride within rows (others are made so), biases may
# be None, gate order is PyTorch's.
class _CellCheck:
    """The checks of one cell call against its batch size B and hidden size H."""

    def __init__(self, op, hy, dtype):
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"{op}: operands have dtype {np.dtype(dtype).name}, expected "
                            "float32 or float64")
        if hy.ndim != 2:
            raise ValueError(f"{op}: expected 2-D (batch, hidden) states, got shape {hy.shape}")
        self.op, self.dtype, (self.batch, self.hidden) = op, dtype, hy.shape

    def type(self, what, v):
        if v.dtype != self.dtype:
            raise TypeError(f"{self.op}: {what} has dtype {v.dtype.name}, expected "
                            f"{np.dtype(self.dtype).name}")

    def rows(self, what, v, gates=1):
        """v is (B, gates * H) with contiguous rows; returns (v, its row stride)."""
        self.type(what, v)
        cols = gates * self.hidden
        if v.shape != (self.batch, cols):
            raise ValueError(f"{self.op}: {what} has shape {v.shape}, expected "
                             f"({self.batch}, {cols})")
        if cols > 1 and self.batch > 0 and v.strides[1] != v.itemsize:
            raise ValueError(f"{self.op}: the elements of each row of {what} must be contiguous")
        return v, np.int64(v.strides[0] // v.itemsize if cols else 0)

    def vector(self, what, v, gates):
        """A checked bias (gates * H,), or zeros for None."""
        n = gates * self.hidden
        if v is None:
            return _zeros(n, self.dtype)
        self.type(what, v)
        if v.shape != (n,):
            raise ValueError(f"{self.op}: {what} has shape {v.shape}, expected ({n},)")
        if n > 1 and v.strides[0] != v.itemsize:
            raise ValueError(f"{self.op}: {what} must be contiguous")
        return v

    def zero_rows(self):
        """An absent (B, H) gradient: a zero row read B times."""
        return _zeros(self.hidden, self.dtype), np.int64(0)

    def launch(self, kernel, *args):
        B, H = self.batch, self.hidden
        _launch("rnn", f"{kernel}_{_sfx(self.dtype)}", B * H, (*args, np.int64(B), np.int64(H)))


@functools.lru_cache(maxsize=64)
def _zeros(n, dtype):
    """A zero vector that kernels only read, shared by every call of its size."""
    return full((max(n, 1),), 0, dtype)


def _unit_rows(x):
    return x if x.ndim != 2 or x.strides[1] == x.itemsize or x.shape[1] <= 1 else copy(x)


def _cell_bias(b):
    return None if b is None else contiguous(b)


def _flat(pairs):
    return tuple(a for pair in pairs for a in pair)


def lstm_cell(input_gates, hidden_gates, cx, input_bias, hidden_bias):
    """-> (hy, cy, workspace): the new hidden and cell states (B, H) and the activated
    gates (B, 4H) that lstm_cell_backward needs."""
    cx = _unit_rows(cx)
    hy, cy = _empty(cx.shape, cx.dtype), _empty(cx.shape, cx.dtype)
    workspace = _empty((cx.shape[0], 4 * cx.shape[1]), cx.dtype)
    c = _CellCheck("lstm_cell", hy, input_gates.dtype)
    ig = c.rows("input_gates", _unit_rows(input_gates), 4)
    hg = c.rows("hidden_gates", _unit_rows(hidden_gates), 4)
    c0 = c.rows("cx", cx)
    bi = c.vector("input_bias", _cell_bias(input_bias), 4)
    bh = c.vector("hidden_bias", _cell_bias(hidden_bias), 4)
    c.launch("lstm_cell", *_flat((ig, hg, c0)), bi, bh,
             *_flat((c.rows("hy", hy), c.rows("cy", cy), c.rows("workspace", workspace, 4))))
    return hy, cy, workspace


def lstm_cell_backward(grad_hy, grad_cy, cx, cy, workspace):
    """-> (grad_gates (B, 4H) of the pre-activations, grad_cx (B, H)); grad_hy or grad_cy
    may be None (zero)."""
    grad_gates = _empty(workspace.shape, workspace.dtype)
    grad_cx = _empty(cy.shape, cy.dtype)
    c = _CellCheck("lstm_cell_backward", cy, cy.dtype)
    dh = c.zero_rows() if grad_hy is None else c.rows("grad_hy", _unit_rows(grad_hy))
    dc = c.zero_rows() if grad_cy is None else c.rows("grad_cy", _unit_rows(grad_cy))
    c.launch("lstm_cell_backward", *_flat((
        dh, dc, c.rows("cx", _unit_rows(cx)), c.rows("cy", _unit_rows(cy)),
        c.rows("workspace", workspace, 4), c.rows("grad_gates", grad_gates, 4),
        c.rows("grad_cx", grad_cx))))
    return grad_gates, grad_cx


def gru_cell(input_gates, hidden_gates, hx, input_bias, hidden_bias):
    """-> (hy (B, H), workspace (B, 4H): r, z, n and the hidden n pre-activation)."""
    hx = _unit_rows(hx)
    hy = _empty(hx.shape, hx.dtype)
    workspace = _empty((hx.shape[0], 4 * hx.shape[1]), hx.dtype)
    c = _CellCheck("gru_cell", hy, input_gates.dtype)
    ig = c.rows("input_gates", _unit_rows(input_gates), 3)
    hg = c.rows("hidden_gates", _unit_rows(hidden_gates), 3)
    h0 = c.rows("hx", hx)
    bi = c.vector("input_bias", _cell_bias(input_bias), 3)
    bh = c.vector("hidden_bias", _cell_bias(hidden_bias), 3)
    c.launch("gru_cell", *_flat((ig, hg, h0)), bi, bh,
             *_flat((c.rows("hy", hy), c.rows("workspace", workspace, 4))))
    return hy, workspace


def gru_cell_backward(grad_hy, hx, workspace):
    """-> (grad_input_gates, grad_hidden_gates (B, 3H), grad_hx (B, H)); grad_hx is only
    the direct part grad_hy * z (add grad_hidden_gates @ W_hh)."""
    b, h = hx.shape
    grad_input_gates = _empty((b, 3 * h), hx.dtype)
    grad_hidden_gates = _empty((b, 3 * h), hx.dtype)
    grad_hx = _empty((b, h), hx.dtype)
    grad_hy = _unit_rows(grad_hy)
    c = _CellCheck("gru_cell_backward", grad_hy, grad_hy.dtype)
    c.launch("gru_cell_backward", *_flat((
        c.rows("grad_hy", grad_hy), c.rows("hx", _unit_rows(hx)),
        c.rows("workspace", workspace, 4), c.rows("grad_input_gates", grad_input_gates, 3),
        c.rows("grad_hidden_gates", grad_hidden_gates, 3), c.rows("grad_hx", grad_hx))))
    return grad_input_gates, grad_hidden_gates, grad_hx


def rnn_cell(input_gates, hidden_gates, input_bias, hidden_bias, nonlinearity):
    """hy = tanh or relu (`nonlinearity`) of the summed pre-activations."""
    relu = nonlinearity == "relu"
    input_gates = _unit_rows(input_gates)
    hy = _empty(input_gates.shape, input_gates.dtype)
    c = _CellCheck("rnn_relu_cell" if relu else "rnn_tanh_cell", hy, input_gates.dtype)
    ig = c.rows("input_gates", input_gates)
    hg = c.rows("hidden_gates", _unit_rows(hidden_gates))
    bi = c.vector("input_bias", _cell_bias(input_bias), 1)
    bh = c.vector("hidden_bias", _cell_bias(hidden_bias), 1)
    c.launch("rnn_cell", *_flat((ig, hg)), bi, bh, *c.rows("hy", hy), np.int32(relu))
    return hy


def rnn_cell_backward(grad_hy, hy, nonlinearity):
    """Gradient of rnn_cell's pre-activations, from its output hy."""
    relu = nonlinearity == "relu"
    grad_gates = _empty(hy.shape, hy.dtype)
    c = _CellCheck("rnn_relu_cell_backward" if relu else "rnn_tanh_cell_backward", hy, hy.dtype)
    c.launch("rnn_cell_backward", *_flat((c.rows("grad_hy", _unit_rows(grad_hy)),
                                          c.rows("hy", _unit_rows(hy)),
                                          c.rows("grad_gates", grad_gates))),
             np.int32(relu))
    return grad_gates


# ------------------------------------------------------------------ whole recurrent layers
# The cpu backend's rnn_sequence and its backward, same arrays: here a loop over the time
# steps, a matmul and a cell kernel per step.
_NONLINEARITY = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}


def _rnn_plan(batch_sizes, reverse):
    """(first row, rows, rows carried from the step run before) per time step, in the
    order the steps run.  Carried rows continue sequences of that step; the others start
    from the initial state (all rows at the first step; for the reverse direction also the
    longer sequences joining as the batch grows)."""
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


def _head(x, start, stop):
    return view_index(x, (slice(start, stop),))


def _enter_state(dst, prev, initial, carried):
    """dst (n, H) = the state entering a step: rows < carried of the step run before
    (`prev`), the rest from `initial` (zeros when None)."""
    n = dst.shape[0]
    if carried:
        copy_into(_head(dst, 0, carried), _head(prev, 0, carried))
    if carried < n:
        if initial is None:
            fill_(_head(dst, carried, n), 0)
        else:
            copy_into(_head(dst, carried, n), _head(initial, carried, n))


def _route_state_grad(grad, prev, initial, carried):
    """A step's state gradient (n, H): rows < carried to the step run before (`prev`),
    the rest to the initial state's gradient."""
    n = grad.shape[0]
    if carried:
        copy_into(_head(prev, 0, carried), _head(grad, 0, carried))
    if carried < n:
        copy_into(_head(initial, carried, n), _head(grad, carried, n))


def rnn_sequence(mode, input_gates, w_hh, input_bias, hidden_bias, h0, c0, batch_sizes, reverse):
    """See the cpu backend: -> (out, h_n, c_n or None, saved (h_prev, c_prev, cell,
    workspace))."""
    lstm = mode == "LSTM"
    n, hidden = input_gates.shape[0], w_hh.shape[-1]
    dtype, batch = input_gates.dtype, batch_sizes[0]
    out, h_n = _empty((n, hidden), dtype), _empty((batch, hidden), dtype)
    c_n = _empty((batch, hidden), dtype) if lstm else None
    h_prevs = _empty((n, hidden), dtype)
    c_prevs, cells = (_empty((n, hidden), dtype), _empty((n, hidden), dtype)) if lstm else \
        (None, None)
    workspaces = _empty((n, 4 * hidden), dtype) if lstm or mode == "GRU" else None
    w_t = contiguous(permute(w_hh, (1, 0)))
    plan = _rnn_plan(batch_sizes, reverse)
    prev = (0, 0)
    for k, (first, size, carried) in enumerate(plan):
        rows = (first, first + size)
        h_prev = _head(h_prevs, *rows)
        _enter_state(h_prev, _head(out, *prev), h0, carried)
        gates, hidden_gates = _head(input_gates, *rows), matmul(h_prev, w_t)
        if lstm:
            c_prev = _head(c_prevs, *rows)
            _enter_state(c_prev, _head(cells, *prev), c0, carried)
            h, c, ws = lstm_cell(gates, hidden_gates, c_prev, input_bias, hidden_bias)
            copy_into(_head(cells, *rows), c)
        elif mode == "GRU":
            h, ws = gru_cell(gates, hidden_gates, h_prev, input_bias, hidden_bias)
        else:
            h = rnn_cell(gates, hidden_gates, input_bias, hidden_bias, _NONLINEARITY[mode])
        if workspaces is not None:
            copy_into(_head(workspaces, *rows), ws)
        copy_into(_head(out, *rows), h)
        # rows whose sequence ends here (the next step runs fewer rows)
        ends = min(plan[k + 1][1], size) if k + 1 < len(plan) else 0
        if ends < size:
            copy_into(_head(h_n, ends, size), _head(h, ends, size))
            if lstm:
                copy_into(_head(c_n, ends, size), _head(c, ends, size))
        prev = rows
    return out, h_n, c_n, (h_prevs, c_prevs, cells, workspaces)


def rnn_sequence_backward(mode, grad_out, grad_h_n, grad_c_n, w_hh, out, saved, batch_sizes,
                          reverse, need_w_hh, need_input_bias, need_hidden_bias):
    """See the cpu backend: -> (grad_input_gates, grad_w_hh, grad_input_bias,
    grad_hidden_bias, grad_h0, grad_c0), None where not asked for or not LSTM."""
    h_prevs, c_prevs, cells, workspaces = saved
    lstm, gru = mode == "LSTM", mode == "GRU"
    n, width = grad_out.shape[0], w_hh.shape[0]
    dtype = grad_out.dtype
    d_gates = _empty((n, width), dtype)
    d_hidden = _empty((n, width), dtype) if gru else d_gates
    dh_state = copy(grad_h_n)
    dc_state = copy(grad_c_n) if lstm else None
    dh0 = _empty(dh_state.shape, dtype)
    dc0 = _empty(dh_state.shape, dtype) if lstm else None
    plan = _rnn_plan(batch_sizes, reverse)
    for first, size, carried in reversed(plan):
        rows = (first, first + size)
        dh = binary("add", _head(grad_out, *rows), _head(dh_state, 0, size))
        if lstm:
            dg, dc_prev = lstm_cell_backward(dh, _head(dc_state, 0, size), _head(c_prevs, *rows),
                                             _head(cells, *rows), _head(workspaces, *rows))
            _route_state_grad(dc_prev, dc_state, dc0, carried)
            dgh = dg
        elif gru:
            dg, dgh, dh_direct = gru_cell_backward(dh, _head(h_prevs, *rows),
                                                   _head(workspaces, *rows))
            copy_into(_head(d_hidden, *rows), dgh)
        else:
            dg = dgh = rnn_cell_backward(dh, _head(out, *rows), _NONLINEARITY[mode])
        copy_into(_head(d_gates, *rows), dg)
        dh_prev = matmul(dgh, w_hh)
        if gru:
            binary_("add", dh_prev, dh_direct)
        _route_state_grad(dh_prev, dh_state, dh0, carried)
    grad_w_hh = matmul(permute(d_hidden, (1, 0)), h_prevs) if need_w_hh else None
    grad_bi = reduce("sum", d_gates, (0,), False) if need_input_bias else None
    grad_bh = reduce("sum", d_hidden, (0,), False) if need_hidden_bias else None
    return d_gates, grad_w_hh, grad_bi, grad_bh, dh0, dc0


# ------------------------------------------------------------------ normalization and dropout
# The counterparts of the cpu backend's functions (kernels/norm.cu, kernels/random.cu):
# inputs are made contiguous, per-channel vectors may be strided, statistics are
# accumulated in double.  `output_mask` says which of (grad_input, grad_weight,
# grad_bias) to compute; the others come back as None.
@functools.lru_cache(maxsize=None)
def _constant(value, dtype):
    """A shared one-element device array: read with stride 0, it stands for an absent
    weight (ones) or bias (zeros), so kernels need no flag for them."""
    return full((1,), value, dtype)


def _vector(v, absent, dtype):
    """(array, element stride) of an optional 1-D operand; None reads as `absent`."""
    if v is None:
        return _constant(absent, np.dtype(dtype)), np.int64(0)
    return v, _estride(v, 0)


# The norm and loss kernels of csrc/ print shapes as Python tuples.
def _tuple_str(shape):
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _check_norm(op, x, vectors, n, spatial=True):
    """The cpu kernels' checks: a float input ((N, C, *) when `spatial`) and 1-D
    vectors (name -> array or None) of n elements in its dtype."""
    if spatial and x.ndim < 2:
        raise ValueError(f"{op}: expected input of shape (N, C, *), got {_tuple_str(x.shape)}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input has dtype {x.dtype}, expected float32 or float64")
    for what, v in vectors.items():
        if v is None:
            continue
        if v.dtype != x.dtype:
            raise TypeError(f"{op}: {what} has dtype {v.dtype}, expected the input's dtype "
                            f"{x.dtype}")
        if _numel(v.shape) != n or (spatial and v.ndim != 1):
            got = _tuple_str(v.shape) + ("" if spatial else f" ({_numel(v.shape)} elements)")
            expected = f"({n},)" if spatial else f"{n} elements"
            raise ValueError(f"{op}: {what} has shape {got}, expected {expected}")


def _check_grad(op, grad, x):
    if grad.dtype != x.dtype or grad.shape != x.shape:
        raise ValueError(f"{op}: grad has shape {_tuple_str(grad.shape)} and dtype "
                         f"{grad.dtype}, expected the input's {_tuple_str(x.shape)} {x.dtype}")


def _grads_for(output_mask, x, param_shape):
    """Outputs of a norm backward and the kernels' bit mask of the wanted ones."""
    gi = _empty(x.shape, x.dtype) if output_mask[0] else None
    gw = _empty(tuple(param_shape), x.dtype) if output_mask[1] else None
    gb = _empty(tuple(param_shape), x.dtype) if output_mask[2] else None
    bits = sum(1 << k for k, want in enumerate(output_mask[:3]) if want)
    return (gi, gw, gb), np.int32(bits)


def _out(a, x):
    """An optional output for a kernel that is told (by a flag) whether to write it:
    a one-element scratch array stands in when it is absent."""
    return _empty((1,), x.dtype) if a is None else a


def batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps):
    """Batch norm of x (N, C, *) -> (out, save_mean, save_invstd), each statistic (C,).
    In training, given running statistics are updated in place."""
    op = "batch_norm"
    x = contiguous(x)
    _check_norm(op, x, {"weight": weight, "bias": bias, "running_mean": running_mean,
                        "running_var": running_var}, x.shape[1] if x.ndim > 1 else 0)
    N, C = x.shape[:2]
    S = _numel(x.shape[2:])
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm: running_mean and running_var are required in "
                         "evaluation mode")
    if training and running_var is not None and N * S == 1:
        raise ValueError("batch_norm: expected more than 1 value per channel when training, "
                         f"got input of shape {_tuple_str(x.shape)}")
    out = _empty(x.shape, x.dtype)
    mean, invstd = _empty((C,), x.dtype), _empty((C,), x.dtype)
    if C:
        w, sw = _vector(weight, 1.0, x.dtype)
        b, sb = _vector(bias, 0.0, x.dtype)
        rm, srm = _vector(running_mean, 0.0, x.dtype)
        rv, srv = _vector(running_var, 1.0, x.dtype)
        _launch_grid("norm", f"batch_norm_{_sfx(x.dtype)}", (min(C, _MAX_LINES),),
                     (_line_block(N * S),),
                     (x, w, sw, b, sb, rm, srm, np.int32(running_mean is not None), rv, srv,
                      np.int32(running_var is not None), np.int32(bool(training)),
                      np.float64(momentum), np.float64(eps), out, mean, invstd, np.int64(N),
                      np.int64(C), np.int64(S)))
    return out, mean, invstd


def batch_norm_backward(grad, x, weight, save_mean, save_invstd, training, output_mask):
    """(grad_input, grad_weight, grad_bias) of batch_norm."""
    op = "batch_norm_backward"
    grad, x = contiguous(grad), contiguous(x)
    C = x.shape[1] if x.ndim > 1 else 0
    _check_norm(op, x, {"weight": weight, "save_mean": save_mean,
                        "save_invstd": save_invstd}, C)
    _check_grad(op, grad, x)
    (gi, gw, gb), bits = _grads_for(output_mask, x, (C,))
    N, S = x.shape[0], _numel(x.shape[2:])
    if C:
        w, sw = _vector(weight, 1.0, x.dtype)
        _launch_grid("norm", f"batch_norm_backward_{_sfx(x.dtype)}", (min(C, _MAX_LINES),),
                     (_line_block(N * S),),
                     (grad, x, w, sw, contiguous(save_mean), contiguous(save_invstd),
                      np.int32(bool(training)), _out(gi, x), _out(gw, x), _out(gb, x), bits,
                      np.int64(N), np.int64(C), np.int64(S)))
    return gi, gw, gb


def _layer_rows(op, x, normalized_shape):
    k = len(normalized_shape)
    if k < 1 or k > x.ndim:
        raise ValueError(f"{op}: cannot normalize the last {k} dims of an input of shape "
                         f"{_tuple_str(x.shape)}")
    K = _numel(x.shape[x.ndim - k:])
    return _numel(x.shape[:x.ndim - k]), K


def layer_norm(x, normalized_shape, weight, bias, eps):
    """Layer norm over the trailing `normalized_shape` dims -> (out, mean, rstd), the
    statistics shaped x.shape[:-k] + (1,) * k."""
    op = "layer_norm"
    x = contiguous(x)
    M, K = _layer_rows(op, x, normalized_shape)
    _check_norm(op, x, {"weight": weight, "bias": bias}, K, spatial=False)
    k = len(normalized_shape)
    stat_shape = x.shape[:x.ndim - k] + (1,) * k
    out = _empty(x.shape, x.dtype)
    mean, rstd = _empty(stat_shape, x.dtype), _empty(stat_shape, x.dtype)
    if M:
        w, sw = _vector(None if weight is None else contiguous(weight).reshape(-1), 1.0, x.dtype)
        b, sb = _vector(None if bias is None else contiguous(bias).reshape(-1), 0.0, x.dtype)
        _launch_grid("norm", f"layer_norm_{_sfx(x.dtype)}", (min(M, _MAX_LINES),),
                     (_line_block(K),), (x, w, sw, b, sb, np.float64(eps), out, mean, rstd,
                                         np.int64(M), np.int64(K)))
    return out, mean, rstd


def layer_norm_backward(grad, x, normalized_shape, mean, rstd, weight, output_mask):
    """(grad_input, grad_weight, grad_bias) of layer_norm."""
    op = "layer_norm_backward"
    grad, x = contiguous(grad), contiguous(x)
    M, K = _layer_rows(op, x, normalized_shape)
    _check_norm(op, x, {"weight": weight}, K, spatial=False)
    _check_norm(op, x, {"mean": mean, "rstd": rstd}, M, spatial=False)
    _check_grad(op, grad, x)
    (gi, gw, gb), bits = _grads_for(output_mask, x, tuple(normalized_shape))
    mean, rstd = contiguous(mean), contiguous(rstd)
    s = _sfx(x.dtype)
    if gi is not None and M:
        w, sw = _vector(None if weight is None else contiguous(weight).reshape(-1), 1.0, x.dtype)
        _launch_grid("norm", f"layer_norm_backward_{s}", (min(M, _MAX_LINES),),
                     (_line_block(K),), (grad, x, mean, rstd, w, sw, gi, np.int64(M),
                                         np.int64(K)))
    if bits & 6:
        _launch("norm", f"layer_norm_params_{s}", K,
                (grad, x, mean, rstd, _out(gw, x), _out(gb, x), bits, np.int64(M), np.int64(K)))
    return gi, gw, gb


def _groups(op, x, num_groups):
    if x.ndim < 2:
        raise ValueError(f"{op}: expected input of shape (N, C, *), got {_tuple_str(x.shape)}")
    C = x.shape[1]
    if num_groups < 1 or C % num_groups:
        raise ValueError(f"{op}: num_groups {num_groups} does not divide the {C} channels of "
                         f"an input of shape {_tuple_str(x.shape)}")
    return x.shape[0], C, int(num_groups), C // num_groups, _numel(x.shape[2:])


def group_norm(x, num_groups, weight, bias, eps):
    """Group norm of x (N, C, *) -> (out, mean, rstd), the statistics (N, num_groups)."""
    op = "group_norm"
    x = contiguous(x)
    N, C, G, D, S = _groups(op, x, num_groups)
    _check_norm(op, x, {"weight": weight, "bias": bias}, C)
    out = _empty(x.shape, x.dtype)
    mean, rstd = _empty((N, G), x.dtype), _empty((N, G), x.dtype)
    if N:
        w, sw = _vector(weight, 1.0, x.dtype)
        b, sb = _vector(bias, 0.0, x.dtype)
        _launch_grid("norm", f"group_norm_{_sfx(x.dtype)}", (min(N * G, _MAX_LINES),),
                     (_line_block(D * S),), (x, w, sw, b, sb, np.float64(eps), out, mean, rstd,
                                             np.int64(N), np.int64(G), np.int64(D),
                                             np.int64(S)))
    return out, mean, rstd


def group_norm_backward(grad, x, num_groups, mean, rstd, weight, output_mask):
    """(grad_input, grad_weight, grad_bias) of group_norm."""
    op = "group_norm_backward"
    grad, x = contiguous(grad), contiguous(x)
    N, C, G, D, S = _groups(op, x, num_groups)
    _check_norm(op, x, {"weight": weight}, C)
    _check_norm(op, x, {"mean": mean, "rstd": rstd}, N * G, spatial=False)
    _check_grad(op, grad, x)
    (gi, gw, gb), bits = _grads_for(output_mask, x, (C,))
    mean, rstd = contiguous(mean), contiguous(rstd)
    # per (sample, channel) sums of g * (x - mean) and of g
    ds, db = _empty((N, C), np.float64), _empty((N, C), np.float64)
    s = _sfx(x.dtype)
    if N:
        w, sw = _vector(weight, 1.0, x.dtype)
        _launch_grid("norm", f"group_norm_backward_{s}", (min(N * G, _MAX_LINES),),
                     (_line_block(D * S),),
                     (grad, x, mean, rstd, w, sw, _out(gi, x), np.int32(gi is not None), ds, db,
                      np.int64(N), np.int64(G), np.int64(D), np.int64(S)))
    if bits & 6:
        _launch("norm", f"group_norm_params_{s}", C,
                (ds, db, rstd, _out(gw, x), _out(gb, x), bits, np.int64(N), np.int64(G),
                 np.int64(D)))
    return gi, gw, gb


def dropout(x, u, p):
    """Dropout with uniform random numbers u -> (out, mask).  u's shape is x's leading
    dims followed by 1s (x's shape for dropout, (N, C, 1, ...) for dropout2d);
    mask = (u >= p) / (1 - p) has u's shape and out = x * mask."""
    x = contiguous(x)
    if x.dtype.kind != "f":
        raise TypeError(f"dropout: input has dtype {x.dtype}, expected float32 or float64")
    if u.dtype != x.dtype:
        raise TypeError("dropout: random numbers, output and mask must have the input's dtype "
                        f"{x.dtype}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p:f}")
    out, mask = _empty(x.shape, x.dtype), _empty(u.shape, x.dtype)
    n, rows = _numel(x.shape), _numel(u.shape)
    if n == 0:
        return out, mask
    if rows == 0 or n % rows:
        raise ValueError(f"dropout: random numbers ({rows} elements) do not divide the input "
                         f"({n} elements) into rows")
    _launch("random", f"dropout_{_sfx(x.dtype)}", n,
            (x, contiguous(u), np.float64(p), out, mask, np.int64(n), np.int64(n // rows)))
    return out, mask


# ------------------------------------------------------------------ losses
# The counterparts of the cpu backend's fused cross-entropy (kernels/loss.cu):
# x is seen as (N, C, S), one row per (n, s); see genesis.backend.cpu for the contract.
def check_labels(labels, n, ignore_index, what, bound):
    """Raise IndexError for the first label outside [0, n) that is not ignore_index
    (None: no label is exempt); the message is "<what> <label> is out of bounds <bound>"."""
    if labels.dtype not in (np.int64, np.int32):
        raise TypeError(f"{what}: labels must be int64 or int32, got {labels.dtype}")
    count = _numel(labels.shape)
    if count == 0:
        return
    err = _error_word()
    ndim, meta = _meta(labels.shape, (labels,))
    _launch("loss", f"check_labels_{_sfx(labels.dtype)}", count,
            (labels, np.int64(count), ndim, meta, np.int64(n), np.int32(ignore_index is not None),
             np.int64(0 if ignore_index is None else ignore_index), err))
    pos = _flagged(err)
    if pos is not None:
        value = int(_to_host(labels).reshape(-1)[pos])
        raise IndexError(f"{what} {value} is out of bounds {bound}")


def _ce_setup(x, target, weight, ignore_index, label_smoothing):
    """Checks of the cpu kernels, then x (N, C, S), target as (N, S) labels or
    (N, C, S) probabilities, and (weights, stride) for the kernels."""
    if x.dtype.kind != "f":
        raise TypeError(f"cross_entropy: input must be float32 or float64, got {x.dtype}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got "
                         f"{label_smoothing:f}")
    N, C, S = x.shape[0], x.shape[1], _positions(x.shape)
    x3 = reshape(x, (N, C, S))
    if target.dtype.kind == "f":
        if target.dtype != x.dtype:
            raise TypeError(f"cross_entropy: target must be {x.dtype}, got {target.dtype}")
        t = reshape(target, (N, C, S))
    else:
        if target.dtype != np.int64:
            raise TypeError(f"cross_entropy: target must be int64, got {target.dtype}")
        t = reshape(target, (N, S))
        check_labels(t, C, int(ignore_index), "cross_entropy: target",
                     f"for {C} classes (expected a class index in [0, {C}) or ignore_index "
                     f"{ignore_index})")
    if weight is not None:
        if weight.dtype != x.dtype:
            raise TypeError(f"cross_entropy: weight must be {x.dtype}, got {weight.dtype}")
        if weight.shape != (C,):
            raise ValueError(f"cross_entropy: weight has shape {_tuple_str(weight.shape)}, "
                             f"expected ({C},)")
    w, sw = _vector(weight, 1.0, x.dtype)
    i64 = np.int64
    return x3, t, (w, sw, i64(N), i64(C), i64(S)), N * S


def _strides(a):
    return tuple(np.int64(s) for s in _estrides(a))


def squared_error_sum(a, b, scale=1.0):
    """scale * sum((a - b)^2) as a 0-d array of a's dtype (a and b: one shape and float
    dtype), from the elementwise and reduction kernels."""
    d = binary("sub", a, b)
    total = reduce("sum", binary("mul", d, d), tuple(range(d.ndim)), False)
    return binary("mul", total, full((), scale, a.dtype))


def cross_entropy(x, target, weight, ignore_index, label_smoothing, reduction):
    """Fused log-softmax + negative log-likelihood over dim 1 of x (N, C, *d).

    target is int64 class indices (N, *d) or probabilities shaped like x;
    weight (C,) or None.  Returns (loss, lse, total_weight): loss is (N, *d) for
    reduction 'none', else 0-d; lse (N, *d) is each row's log-sum-exp and
    total_weight (0-d float64) the divisor of the mean.  Labels are bounds-checked.
    """
    red = _REDUCTIONS[reduction]
    x3, t, wargs, rows = _ce_setup(x, target, weight, ignore_index, label_smoothing)
    n, d = x.shape[0], x.shape[2:]
    out = _empty((n,) + d if red == 0 else (), x.dtype)
    lse = _empty((n,) + d, x.dtype)
    total = _empty((), np.float64)
    row_loss = out if red == 0 else _empty((rows,), x.dtype)
    row_weight = _empty((rows,), np.float64)
    s, eps = _sfx(x.dtype), np.float64(label_smoothing)
    if rows:
        grid, block = (min(rows, _MAX_LINES),), (_line_block(x3.shape[1]),)
        if t.dtype.kind == "f":
            _launch_grid("loss", f"cross_entropy_prob_{s}", grid, block,
                         (x3, *_strides(x3), t, *_strides(t), *wargs, eps, row_loss, row_weight,
                          lse))
        else:
            _launch_grid("loss", f"cross_entropy_{s}", grid, block,
                         (x3, *_strides(x3), t, *_strides(t), *wargs, np.int64(ignore_index), eps,
                          row_loss, row_weight, lse))
    _launch_grid("loss", f"cross_entropy_finish_{s}", (1,), (_line_block(rows),),
                 (row_loss, row_weight, np.int64(rows), np.int32(red), out, total))
    return out, lse, total


def cross_entropy_backward(grad, x, target, weight, lse, total_weight, ignore_index,
                           label_smoothing, reduction, target_grad=False):
    """Gradients of cross_entropy: (grad_input, grad_target or None).

    grad is the loss's gradient ((N, *d) or 0-d); grad_target is computed only for
    probability targets with target_grad=True.
    """
    red = _REDUCTIONS[reduction]
    x3, t, wargs, rows = _ce_setup(x, target, weight, ignore_index, label_smoothing)
    N, S = x3.shape[0], x3.shape[2]
    if grad.dtype != x.dtype:
        raise TypeError(f"cross_entropy: grad must be {x.dtype}, got {grad.dtype}")
    g2 = reshape(grad, (N, S)) if red == 0 else _xp.broadcast_to(grad, (N, S))
    lse2 = reshape(lse, (N, S))
    grad_input = _empty(x.shape, x.dtype)
    prob = t.dtype.kind == "f"
    grad_target = _empty(x.shape, x.dtype) if prob and target_grad else None
    s, eps = _sfx(x.dtype), np.float64(label_smoothing)
    if rows and x3.shape[1]:
        grid, block = (min(rows, _MAX_LINES),), (_line_block(x3.shape[1]),)
        tail = (np.int32(red), lse2, *_strides(lse2), total_weight, g2, *_strides(g2),
                grad_input)
        if prob:
            _launch_grid("loss", f"cross_entropy_prob_backward_{s}", grid, block,
                         (x3, *_strides(x3), t, *_strides(t), *wargs, eps, *tail,
                          _out(grad_target, x), np.int32(grad_target is not None)))
        else:
            _launch_grid("loss", f"cross_entropy_backward_{s}", grid, block,
                         (x3, *_strides(x3), t, *_strides(t), *wargs, np.int64(ignore_index), eps,
                          *tail))
    return grad_input, grad_target

