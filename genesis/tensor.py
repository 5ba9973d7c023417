"""`Tensor`: an n-dimensional array on a device, with reverse-mode autograd.

A Tensor holds a backend array (`_data`: numpy on the CPU), its device, and its
place in the autograd graph (`grad_fn`, `requires_grad`, `grad`).  Every
operation is a `Function` in `genesis.ops`; methods and operators here are thin
wrappers that delegate to the same functions users call as `genesis.<op>`.
"""
import numpy as np

from . import autograd as _autograd
from . import dtypes as _dt
from .autograd import engine as _engine
from .autograd import function as _function
from .autograd.grad_mode import STATE as _GRAD
from .backend import get as _backend_of
from .device import device as _device

__all__ = ["Tensor"]


class _Version:
    """In-place modification counter, shared by a tensor and all its views."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


class Tensor:
    """A multi-dimensional array with autograd (PyTorch's `torch.Tensor`)."""

    __slots__ = ("_data", "_device", "_requires_grad", "grad", "grad_fn", "_output_nr",
                 "_version", "_base", "_accumulator", "_retains_grad", "__weakref__")

    __array_priority__ = 1000  # numpy defers `ndarray op Tensor` to Tensor's reflected ops

    def __init__(self, data=None, *, dtype=None, device=None, requires_grad=False):
        from .ops.creation import tensor as _tensor
        t = _tensor([] if data is None else data, dtype=dtype, device=device)
        _init_from(self, t._data, t._device)
        self.requires_grad = requires_grad

    @classmethod
    def _make(cls, data, device, grad_fn=None, output_nr=0):
        t = object.__new__(cls)
        _init_from(t, data, device, grad_fn, output_nr)
        return t

    @classmethod
    def _zeros(cls, shape, dtype, device):
        return cls._make(_backend_of(device).full(shape, 0, dtype.np), device)

    # ------------------------------------------------------------------ attributes
    @property
    def shape(self):
        return Size(self._data.shape)

    def size(self, dim=None):
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_wrap_dim(dim, self._data.ndim, "size")]

    @property
    def ndim(self):
        return self._data.ndim

    def dim(self):
        return self._data.ndim

    def numel(self):
        return int(self._data.size)

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    @property
    def dtype(self):
        return _dt.from_numpy_dtype(self._data.dtype)

    @property
    def device(self):
        return self._device

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        value = bool(value)
        if self.grad_fn is not None and not value:
            raise RuntimeError("you can only change requires_grad flags of leaf variables. "
                               "Use .detach() to get a tensor that does not require grad.")
        if value and self._data.dtype.kind != "f":
            raise RuntimeError("only Tensors of floating point dtype can require gradients, "
                               f"got {self.dtype}")
        self._requires_grad = value

    def requires_grad_(self, requires_grad=True):
        self.requires_grad = requires_grad
        return self

    @property
    def is_cuda(self):
        return self._device.type == "cuda"

    @property
    def _version_value(self):
        return self._version.value

    def _owns_memory(self):
        # A view's base is the array it views; memory from the host block cache has
        # a capsule as base (genesis.backend.cpu.empty).
        base = self._data.base
        return self._base is None and (base is None or type(base) is not type(self._data))

    # ------------------------------------------------------------------ conversion
    def numpy(self):
        """The data as a numpy array, sharing memory (CPU tensors only, as in PyTorch)."""
        if self._device.type != "cpu":
            raise TypeError(f"can't convert {self._device} device type tensor to numpy. Use "
                            "Tensor.cpu() to copy the tensor to host memory first.")
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. "
                               "Use tensor.detach().numpy() instead.")
        return _backend_of(self._device).to_numpy(self._data)

    def item(self):
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be "
                               "converted to Scalar")
        return _backend_of(self._device).to_numpy(self._data).reshape(()).item()

    def tolist(self):
        return _backend_of(self._device).to_numpy(self._data).tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.item())

    def __index__(self):
        if self._data.dtype.kind not in "iu" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted "
                            "to an index")
        return int(self.item())

    def __array__(self, dtype=None, copy=None):
        a = _backend_of(self._device).to_numpy(self._data)
        return a if dtype is None else a.astype(dtype)

    def __repr__(self):
        data = np.array2string(_backend_of(self._device).to_numpy(self._data), separator=", ",
                               prefix="tensor(", precision=4, threshold=1000)
        extra = [f"dtype={self.dtype}", f"device='{self._device}'"]
        if self.grad_fn is not None:
            extra.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        return f"tensor({data}, {', '.join(extra)})"

    __hash__ = object.__hash__  # by identity (== is elementwise), computed in C

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __getstate__(self):
        raise TypeError("genesis tensors are not picklable; use genesis.save")

    def __deepcopy__(self, memo):
        """A leaf copy with its own memory (a Parameter stays a Parameter), as in PyTorch;
        used by `copy.deepcopy` of modules (target networks, stacked layers)."""
        if not self.is_leaf:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) "
                               "support the deepcopy protocol")
        t = object.__new__(type(self))
        _init_from(t, _backend_of(self._device).copy(self._data), self._device)
        t.requires_grad = self.requires_grad
        memo[id(self)] = t
        if self.grad is not None:
            t.grad = self.grad.__deepcopy__(memo)
        return t

    @property
    def data(self):
        """This tensor's values, detached from the graph (sharing memory)."""
        return self.detach()

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(value).__name__}")
        if value._device != self._device:
            raise RuntimeError(f"data: cannot assign a tensor on {value._device} to a tensor "
                               f"on {self._device}")
        self._data = value._data
        self._version = value._version

    def is_floating_point(self):
        """True for float32 and float64 tensors."""
        return self.dtype.is_floating_point

    def is_contiguous(self):
        """True when the elements lie in memory in row-major order without gaps."""
        return bool(self._data.flags.c_contiguous)

    # ------------------------------------------------------------------ autograd
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into the `.grad` of every leaf of the graph."""
        _autograd.backward(self, gradient, retain_graph=retain_graph,
                           create_graph=create_graph, inputs=inputs)

    def detach(self):
        """A tensor sharing this one's data (and version counter), cut from the graph.
        It keeps no reference to this tensor, so it does not keep the graph alive."""
        t = Tensor._make(self._data, self._device)
        t._version = self._version
        return t

    def detach_(self):
        if self._base is not None and self._base.requires_grad:
            raise RuntimeError("detach_() is not allowed on a view of a tensor that requires grad")
        self.grad_fn = None
        self._requires_grad = False
        return self

    def register_hook(self, hook):
        """Call `hook(grad)` when the gradient for this tensor is computed; a returned
        tensor replaces the gradient.  Returns a handle with `.remove()`."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            return self.grad_fn.register_hook(self._output_nr, hook)
        edge = _function._edge(self)
        return edge[0].register_hook(0, hook)

    def retain_grad(self):
        """Keep `.grad` for this non-leaf tensor after backward."""
        if self.grad_fn is None or self._retains_grad:
            return
        self._retains_grad = True
        import weakref
        ref = weakref.ref(self)

        def keep(grad):
            t = ref()
            if t is not None:  # an own copy: the gradient may be a broadcast view
                g = grad._copy_detached()
                t.grad = g if t.grad is None else t.grad + g
        self.grad_fn.register_hook(self._output_nr, keep)

    def _clear_grad(self, set_to_none=True):
        """Drop `.grad` or zero it in place (what Module and Optimizer zero_grad do)."""
        if self.grad is None:
            return
        if set_to_none:
            self.grad = None
            return
        if self.grad.grad_fn is not None:
            self.grad.detach_()
        else:
            self.grad.requires_grad_(False)
        self.grad.zero_()

    def _copy_detached(self):
        return Tensor._make(_backend_of(self._device).copy(self._data), self._device)

    def _accumulate_(self, other):
        """self += other without autograd (gradient accumulation)."""
        _backend_of(self._device).binary_("add", self._data, other._data)
        self._version.value += 1

    def _bump_version(self):
        self._version.value += 1


def _init_from(t, data, device, grad_fn=None, output_nr=0):
    t._data = data
    t._device = device
    t._requires_grad = grad_fn is not None
    t.grad = None
    t.grad_fn = grad_fn
    t._output_nr = output_nr
    t._version = _Version()
    t._base = None
    t._accumulator = None
    t._retains_grad = False


class Size(tuple):
    """The shape of a tensor: a tuple of ints (PyTorch's `torch.Size`)."""

    __slots__ = ()

    def numel(self):
        n = 1
        for s in self:
            n *= s
        return n

    def __repr__(self):
        return f"genesis.Size({list(self)})"


def _wrap_dim(dim, ndim, op):
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{op}: dimension out of range (expected to be in range of "
                         f"[{-n}, {n - 1}], but got {dim})")
    return dim % n


_function._Tensor = Tensor
_engine._Tensor = Tensor
