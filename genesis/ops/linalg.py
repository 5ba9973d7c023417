"""Matrix products, all through our GEMM kernel."""
from .. import dtypes as _dt
from ..autograd.function import Function, backend_of
from ..tensor import Tensor
from ._util import as_float, broadcast_shape, sum_to_shape


class Matmul(Function):
    """a[..., M, K] @ b[..., K, N] with broadcast batch dims (both at least 2-D)."""

    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        need_a, need_b = ctx.needs_input_grad
        ctx.save_for_backward(a if need_b else None, b if need_a else None)
        return ctx.backend.matmul(a, b)

    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = sum_to_shape(matmul(g, b.mT), ctx.shapes[0]) if b is not None else None
        gb = sum_to_shape(matmul(a.mT, g), ctx.shapes[1]) if a is not None else None
        return ga, gb


def _shape_str(s):
    return "x".join(str(d) for d in s) if s else "scalar"


def matmul(input, other):
    """Matrix product with numpy's rules: 1-D operands are promoted to a row/column
    and the extra dim removed afterwards; batch dims broadcast."""
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise TypeError("matmul: both operands must be Tensors")
    a, b = input._data, other._data
    if (a.ndim == 2 and b.ndim == 2 and a.shape[1] == b.shape[0] and a.dtype == b.dtype
            and a.dtype.kind == "f"):  # the common case, without the checks below
        if input._requires_grad or other._requires_grad or input._device is not other._device:
            return Matmul.apply(input, other)
        # Nothing to differentiate: no graph node (what apply would do, minus its cost).
        return Tensor._make(backend_of(input._device).matmul(a, b), input._device)
    if input.ndim == 0 or other.ndim == 0:
        raise RuntimeError("matmul: both arguments to matmul need to be at least 1D, but they "
                           f"are {input.ndim}D and {other.ndim}D")
    if input.dtype is not other.dtype:
        dt = _dt.promote_types(input.dtype, other.dtype)
        input, other = input.to(dt), other.to(dt)
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"matmul: genesis multiplies floating point matrices only, got {input.dtype}")
    a = input.unsqueeze(0) if input.ndim == 1 else input
    b = other.unsqueeze(-1) if other.ndim == 1 else other
    if a.shape[-1] != b.shape[-2]:
        raise RuntimeError(f"matmul: mat1 and mat2 shapes cannot be multiplied "
                           f"({_shape_str(input.shape)} and {_shape_str(other.shape)}): inner "
                           f"dimensions {a.shape[-1]} and {b.shape[-2]} differ")
    broadcast_shape("matmul", a.shape[:-2], b.shape[:-2])
    out = Matmul.apply(a, b)
    if input.ndim == 1 or other.ndim == 1:
        shape = list(out.shape)
        if other.ndim == 1:
            del shape[-1]
        if input.ndim == 1:
            del shape[-1 if other.ndim == 1 else -2]
        out = out.reshape(tuple(shape))
    return out


def mm(input, mat2):
    """Product of two matrices (2-D only)."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(f"mm: expected 2-D tensors, got {input.ndim}-D and {mat2.ndim}-D")
    return matmul(input, mat2)


def bmm(input, mat2):
    """Batched product of 3-D tensors with equal batch size."""
    if input.ndim != 3 or mat2.ndim != 3:
        raise RuntimeError(f"bmm: expected 3-D tensors, got {input.ndim}-D and {mat2.ndim}-D")
    if input.shape[0] != mat2.shape[0]:
        raise RuntimeError(f"bmm: batch sizes differ ({input.shape[0]} and {mat2.shape[0]})")
    return matmul(input, mat2)


def dot(input, other):
    """Inner product of two 1-D tensors of equal length."""
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"dot: 1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors")
    if input.shape[0] != other.shape[0]:
        raise RuntimeError(f"dot: inconsistent tensor size, expected tensor [{input.shape[0]}] "
                           f"and src [{other.shape[0]}] to have the same number of elements")
    return matmul(input, other)


def outer(input, vec2):
    """Outer product of two 1-D tensors."""
    if input.ndim != 1 or vec2.ndim != 1:
        raise RuntimeError(f"outer: 1D tensors expected, got {input.ndim}D and {vec2.ndim}D")
    return matmul(as_float(input, "outer").unsqueeze(1), as_float(vec2, "outer").unsqueeze(0))
