"""Helpers shared by the op modules: operand coercion, dims, broadcasting."""
from .. import dtypes as _dt
from .._broadcast import broadcast_shape  # noqa: F401  (re-exported for the op modules)
from ..backend import get as _backend_of
from ..tensor import Tensor


def scalar_tensor(value, dtype, device):
    """A 0-d constant tensor (for Python scalars in binary ops)."""
    return Tensor._make(_backend_of(device).from_data(value, dtype.np), device)


def coerce_pair(a, b, op):
    """Both operands as tensors of one dtype (PyTorch promotion: a 0-d tensor with a
    dimensioned one counts only by its category, as a Python scalar does); scalars
    become 0-d tensors."""
    if isinstance(a, Tensor):
        if isinstance(b, Tensor):
            if a._data.dtype != b._data.dtype:
                dt = _dt.operands_result_type(a.dtype, a.ndim == 0, b.dtype, b.ndim == 0)
                a, b = a.to(dt), b.to(dt)
            return a, b
        if not isinstance(b, (int, float)):
            raise TypeError(f"{op}: unsupported operand type {type(b).__name__}")
        dt = _dt.scalar_result_type(a.dtype, b)
        return (a if dt is a.dtype else a.to(dt)), scalar_tensor(b, dt, a._device)
    if isinstance(b, Tensor):
        if not isinstance(a, (int, float)):
            raise TypeError(f"{op}: unsupported operand type {type(a).__name__}")
        dt = _dt.scalar_result_type(b.dtype, a)
        return scalar_tensor(a, dt, b._device), (b if dt is b.dtype else b.to(dt))
    raise TypeError(f"{op}: expected at least one Tensor operand")


def as_float(x, op):
    """Integer/bool inputs of float-only math are promoted to the default float dtype."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    return x if x._data.dtype.kind == "f" else x.to(_dt.get_default_dtype())


def wrap_dim(dim, ndim, op="op"):
    n = max(ndim, 1)
    if not isinstance(dim, int):
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
    if not -n <= dim < n:
        raise IndexError(f"{op}: dimension out of range (expected to be in range of "
                         f"[{-n}, {n - 1}], but got {dim})")
    return dim % n


def wrap_dims(dim, ndim, op="op"):
    """`dim` (None, int or tuple) as a sorted tuple of non-negative dims.
    None and an empty tuple mean every dim, as in PyTorch."""
    if dim is None or (not isinstance(dim, int) and len(tuple(dim)) == 0):
        return tuple(range(ndim))
    if isinstance(dim, int):
        dim = (dim,)
    dims = tuple(sorted({wrap_dim(d, ndim, op) for d in dim}))
    if len(dims) != len(tuple(dim)):
        raise RuntimeError(f"{op}: dim {tuple(dim)} appears multiple times in the list of dims")
    return dims if ndim else ()


def sum_to_shape(grad, shape):
    """Reduce a broadcast gradient back to an input's shape (differentiably)."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    dims = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape)
                                      if s == 1 and grad.shape[i + lead] != 1)
    if dims:
        grad = grad.sum(dim=dims, keepdim=True)
    if lead:
        grad = grad.reshape(shape)
    return grad
