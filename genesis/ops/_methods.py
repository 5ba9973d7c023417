"""Tensor methods and operators, each delegating to the functional op of the same name."""
from .. import dtypes as _dt
from ..autograd.grad_mode import STATE
from ..device import device as _device
from ..tensor import Tensor
from . import creation, elementwise as E, indexing as I, linalg as L, reduction as R, shape as S
from ._util import coerce_pair
from .indexing import _alias, _check_inplace_allowed


_PLAIN = {
    # elementwise
    "add": E.add, "sub": E.sub, "mul": E.mul, "div": E.div, "true_divide": E.div,
    "floor_divide": E.floor_divide, "remainder": E.remainder, "pow": E.pow,
    "maximum": E.maximum, "minimum": E.minimum, "neg": E.neg, "exp": E.exp, "log": E.log,
    "log1p": E.log1p, "expm1": E.expm1, "sqrt": E.sqrt, "rsqrt": E.rsqrt, "abs": E.abs,
    "sign": E.sign, "reciprocal": E.reciprocal, "sin": E.sin, "cos": E.cos, "tanh": E.tanh,
    "sigmoid": E.sigmoid, "relu": E.relu, "erf": E.erf, "square": E.square,
    "clamp": E.clamp, "clip": E.clamp, "floor": E.floor, "ceil": E.ceil, "round": E.round,
    "trunc": E.trunc, "eq": E.eq, "ne": E.ne, "lt": E.lt, "le": E.le, "gt": E.gt, "ge": E.ge,
    "logical_and": E.logical_and, "logical_or": E.logical_or, "logical_xor": E.logical_xor,
    "logical_not": E.logical_not, "silu": E.silu,
    # reductions
    "sum": R.sum, "mean": R.mean, "prod": R.prod, "max": R.max, "min": R.min,
    "amax": R.amax, "amin": R.amin, "argmax": R.argmax, "argmin": R.argmin, "var": R.var,
    "std": R.std, "logsumexp": R.logsumexp, "norm": R.norm, "cumsum": R.cumsum,
    "softmax": R.softmax, "log_softmax": R.log_softmax, "all": R.all, "any": R.any,
    # shape
    "reshape": S.reshape, "view": S.view, "flatten": S.flatten, "unflatten": S.unflatten,
    "squeeze": S.squeeze, "unsqueeze": S.unsqueeze, "permute": S.permute,
    "transpose": S.transpose, "swapaxes": S.transpose, "t": S.t, "movedim": S.movedim,
    "expand": S.expand, "expand_as": S.expand_as, "broadcast_to": S.broadcast_to,
    "contiguous": S.contiguous, "clone": S.clone, "flip": S.flip, "split": S.split,
    "chunk": S.chunk, "unbind": S.unbind, "repeat": S.repeat,
    # indexing
    "gather": I.gather, "scatter_add": I.scatter_add, "index_select": I.index_select,
    "masked_fill": I.masked_fill, "sort": I.sort, "argsort": I.argsort, "topk": I.topk,
    "nonzero": I.nonzero,
    # linear algebra
    "matmul": L.matmul, "mm": L.mm, "bmm": L.bmm, "dot": L.dot, "outer": L.outer,
}
# Plain functions, so each becomes a method by itself (self is the op's first argument),
# without a wrapper's extra call on every use.
for _name, _fn in _PLAIN.items():
    setattr(Tensor, _name, _fn)


def _reflect(fn):
    def r(self, other):
        return fn(other, self)
    return r


Tensor.__add__ = Tensor.__radd__ = E.add
Tensor.__sub__ = E.sub
Tensor.__rsub__ = _reflect(E.sub)
Tensor.__mul__ = Tensor.__rmul__ = E.mul
Tensor.__truediv__ = E.div
Tensor.__rtruediv__ = _reflect(E.div)
Tensor.__floordiv__ = E.floor_divide
Tensor.__rfloordiv__ = _reflect(E.floor_divide)
Tensor.__mod__ = E.remainder
Tensor.__rmod__ = _reflect(E.remainder)
Tensor.__pow__ = E.pow
Tensor.__rpow__ = _reflect(E.pow)
Tensor.__matmul__ = L.matmul
Tensor.__rmatmul__ = _reflect(L.matmul)
Tensor.__neg__ = E.neg
Tensor.__pos__ = lambda a: a
Tensor.__abs__ = E.abs
Tensor.__invert__ = E.logical_not
Tensor.__and__ = Tensor.__rand__ = E.logical_and
Tensor.__or__ = Tensor.__ror__ = E.logical_or
Tensor.__xor__ = Tensor.__rxor__ = E.logical_xor
Tensor.__eq__ = E.eq
Tensor.__ne__ = E.ne
Tensor.__lt__ = E.lt
Tensor.__le__ = E.le
Tensor.__gt__ = E.gt
Tensor.__ge__ = E.ge
Tensor.__getitem__ = I.getitem
Tensor.__setitem__ = I.setitem
Tensor.T = property(lambda self: S.permute(self, tuple(range(self.ndim - 1, -1, -1))),
                    doc="All dims reversed.")
Tensor.mT = property(lambda self: S.transpose(self, -2, -1), doc="The last two dims swapped.")


# ------------------------------------------------------------------ conversion
def _to(self, *args, dtype=None, device=None, copy=False):
    """`.to(dtype)`, `.to(device)`, `.to(device, dtype)` or `.to(other_tensor)`."""
    for a in args:
        if isinstance(a, Tensor):
            dtype, device = a.dtype, a.device
        elif isinstance(a, _dt.dtype):
            dtype = a
        elif isinstance(a, (str, _device)):
            device = a
        else:
            dtype = _dt.to_dtype(a)
    out = self
    if device is not None and _device(device) != self.device:
        out = S.to_device(out, _device(device))
    if dtype is not None:
        out = S.to_dtype(out, dtype)
    if copy and out is self:
        out = S.clone(self)
    return out


Tensor.to = _to
Tensor.float = lambda self: S.to_dtype(self, _dt.float32)
Tensor.double = lambda self: S.to_dtype(self, _dt.float64)
Tensor.long = lambda self: S.to_dtype(self, _dt.int64)
Tensor.int = lambda self: S.to_dtype(self, _dt.int32)
Tensor.bool = lambda self: S.to_dtype(self, _dt.bool)
Tensor.cpu = lambda self: _to(self, device="cpu")
Tensor.cuda = lambda self, device=None: _to(self, device="cuda" if device is None else device)
Tensor.type_as = lambda self, other: S.to_dtype(self, other.dtype)
Tensor.new_zeros = lambda self, *size, dtype=None: creation.zeros(
    *size, dtype=dtype or self.dtype, device=self.device)
Tensor.new_ones = lambda self, *size, dtype=None: creation.ones(
    *size, dtype=dtype or self.dtype, device=self.device)
Tensor.new_full = lambda self, size, value, dtype=None: creation.full(
    size, value, dtype=dtype or self.dtype, device=self.device)
Tensor.new_tensor = lambda self, data, dtype=None: creation.tensor(
    data, dtype=dtype or self.dtype, device=self.device)
Tensor._backend = lambda self: _backend_of_tensor(self)


def _backend_of_tensor(t):
    from ..backend import get
    return get(t._device)


# ------------------------------------------------------------------ in place
def _inplace(self, op_name, compute, other=None):
    """Run `compute(self_alias)` out of place under autograd, or the kernel in place.

    Under autograd the result is written back into self's memory and self takes
    the new node as its grad_fn; the shared version counter then makes any node
    that saved the old value refuse to backpropagate through it.
    """
    other_grad = isinstance(other, Tensor) and other.requires_grad
    if STATE.enabled and (self.requires_grad or other_grad):
        _check_inplace_allowed(self, op_name)
        result = compute(_alias(self))
        if tuple(result.shape) != tuple(self.shape):
            raise RuntimeError(f"{op_name}: output with shape {list(self.shape)} doesn't match "
                               f"the broadcast shape {list(result.shape)}")
        self._backend().copy_into(self._data, result._data)
        self.grad_fn, self._output_nr = result.grad_fn, result._output_nr
        self._requires_grad = result.requires_grad
        self._version.value += 1
        return self
    return None


def _binary_inplace(op_name, kernel, public):
    def method(self, other, **kwargs):
        if _inplace(self, op_name, lambda a: public(a, other, **kwargs), other) is not None:
            return self
        if kwargs.get("alpha", 1) != 1:
            other = E.mul(other, kwargs["alpha"])
        a, b = coerce_pair(self, other, op_name)
        if a is not self:
            raise RuntimeError(f"{op_name}: result type {a.dtype} can't be cast to the desired "
                               f"output type {self.dtype}")
        if tuple(b.shape) != tuple(self.shape):
            from ._util import broadcast_shape
            if broadcast_shape(op_name, self.shape, b.shape) != tuple(self.shape):
                raise RuntimeError(f"{op_name}: output with shape {list(self.shape)} doesn't "
                                   f"match the broadcast shape "
                                   f"{list(broadcast_shape(op_name, self.shape, b.shape))}")
        self._backend().binary_(kernel, self._data, b._data)
        self._version.value += 1
        return self
    method.__name__ = op_name
    method.__doc__ = f"In-place {op_name.rstrip('_')}: self is modified and returned."
    return method


Tensor.add_ = _binary_inplace("add_", "add", E.add)
Tensor.sub_ = _binary_inplace("sub_", "sub", E.sub)
Tensor.mul_ = _binary_inplace("mul_", "mul", E.mul)
Tensor.div_ = _binary_inplace("div_", "div", E.div)
Tensor.__iadd__ = Tensor.add_
Tensor.__isub__ = Tensor.sub_
Tensor.__imul__ = Tensor.mul_
Tensor.__itruediv__ = Tensor.div_


def _fill_(self, value):
    """Set every element to `value`."""
    if isinstance(value, Tensor):
        value = value.item()
    if _inplace(self, "fill_", lambda a: creation.full_like(a, value)) is not None:
        return self
    self._backend().fill_(self._data, value)
    self._version.value += 1
    return self


def _zero_(self):
    """Set every element to zero."""
    return _fill_(self, 0)


def _clamp_(self, min=None, max=None):  # noqa: A002
    """Clamp in place."""
    if _inplace(self, "clamp_", lambda a: E.clamp(a, min, max)) is not None:
        return self
    out = E.clamp(self.detach(), min, max)
    self._backend().copy_into(self._data, out._data)
    self._version.value += 1
    return self


def _copy_(self, src):
    """Copy `src` (broadcast, converted) into self."""
    if not isinstance(src, Tensor):
        src = creation.tensor(src, dtype=self.dtype, device=self.device)
    if _inplace(self, "copy_", lambda a: S.expand(src.to(self.dtype), tuple(self.shape)).clone(),
                src) is not None:
        return self
    if src.device != self.device:
        src = src.to(self.device)
    from ._util import broadcast_shape
    if broadcast_shape("copy_", self.shape, src.shape) != tuple(self.shape):
        raise RuntimeError(f"copy_: source of shape {list(src.shape)} cannot be broadcast to "
                           f"{list(self.shape)}")
    self._backend().copy_into(self._data, src._data)
    self._version.value += 1
    return self


Tensor.fill_ = _fill_
Tensor.zero_ = _zero_
Tensor.clamp_ = _clamp_
Tensor.copy_ = _copy_


def _masked_fill_(self, mask, value):
    """Fill with `value` where `mask` is true, in place."""
    if _inplace(self, "masked_fill_", lambda a: I.masked_fill(a, mask, value)) is not None:
        return self
    out = I.masked_fill(self.detach(), mask, value)
    self._backend().copy_into(self._data, out._data)
    self._version.value += 1
    return self


Tensor.masked_fill_ = _masked_fill_
