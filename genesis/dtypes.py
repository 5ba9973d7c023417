"""Tensor element types and the promotion rules between them (PyTorch's)."""
import numpy as np

__all__ = ["dtype", "float32", "float64", "int32", "int64", "bool", "promote_types",
           "get_default_dtype", "set_default_dtype"]

_builtin_bool = bool


class dtype:
    """An element type: `genesis.float32`, `float64`, `int32`, `int64`, `bool`."""

    __slots__ = ("name", "np", "is_floating_point", "itemsize", "_rank")

    def __init__(self, name, np_type, is_floating_point, rank):
        self.name = name
        self.np = np.dtype(np_type)
        self.is_floating_point = is_floating_point
        self.itemsize = self.np.itemsize
        self._rank = rank  # position in the promotion lattice bool < ints < floats

    def __repr__(self):
        return f"genesis.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))


float32 = dtype("float32", np.float32, True, 3)
float64 = dtype("float64", np.float64, True, 4)
int32 = dtype("int32", np.int32, False, 1)
int64 = dtype("int64", np.int64, False, 2)
bool = dtype("bool", np.bool_, False, 0)  # noqa: A001 - PyTorch's name

_ALL = (float32, float64, int32, int64, bool)
_BY_NP = {d.np: d for d in _ALL}
_BY_NAME = {d.name: d for d in _ALL}
_default_float = float32


def _by_name(name):
    return _BY_NAME[name]


def from_numpy_dtype(np_dtype):
    """The genesis dtype of a numpy dtype; float16 and unsigned types are refused."""
    try:
        return _BY_NP[np.dtype(np_dtype)]
    except KeyError:
        raise TypeError(f"genesis does not support numpy dtype {np.dtype(np_dtype)}; "
                        "use float32, float64, int32, int64 or bool") from None


def to_dtype(value):
    """Accept a genesis dtype, a numpy dtype/type or a name such as 'float32'."""
    if isinstance(value, dtype):
        return value
    if isinstance(value, str) and value in _BY_NAME:
        return _BY_NAME[value]
    if value is float:
        return _default_float
    if value is int:
        return int64
    if value is _builtin_bool:
        return bool
    return from_numpy_dtype(value)


def get_default_dtype():
    return _default_float


def set_default_dtype(d):
    """Set the dtype of floating tensors created from Python floats (float32 or float64)."""
    global _default_float
    d = to_dtype(d)
    if not d.is_floating_point:
        raise TypeError(f"set_default_dtype: expected a floating dtype, got {d}")
    _default_float = d


def promote_types(a, b):
    """The higher of two dtypes (bool < int32 < int64 < float32 < float64); the dtype of
    an op between two tensors of the same kind (see `operands_result_type`)."""
    return a if a._rank >= b._rank else b


def _category(d):
    """0 for bool, 1 for the integers, 2 for the floats."""
    return 2 if d.is_floating_point else 0 if d is bool else 1


def operands_result_type(a, a_is_0d, b, b_is_0d):
    """The dtype of a binary op between tensors of dtypes `a` and `b` (PyTorch's rule).

    Operands of the same kind (both with dimensions or both 0-d) promote to the higher
    type.  A 0-d tensor with a dimensioned one counts only by its category, as a
    Python scalar does: float32 with a 0-d float64 or int64 stays float32, int32 with
    a 0-d int64 stays int32; only a higher category lifts the result, to the 0-d
    tensor's own dtype (int32 with a 0-d float64 gives float64, bool with a 0-d int32
    gives int32)."""
    if a_is_0d == b_is_0d:
        return promote_types(a, b)
    high, low = (b, a) if a_is_0d else (a, b)
    return promote_types(high, low) if _category(low) > _category(high) else high


def scalar_result_type(tensor_dtype, scalar):
    """The dtype of `tensor op scalar`: a Python scalar only lifts the category
    (bool -> int -> float), never the width, as in PyTorch."""
    if isinstance(scalar, _builtin_bool):
        return tensor_dtype
    if isinstance(scalar, int):
        return int64 if tensor_dtype is bool else tensor_dtype
    if isinstance(scalar, float):
        return tensor_dtype if tensor_dtype.is_floating_point else _default_float
    raise TypeError(f"unsupported scalar type {type(scalar).__name__}")
