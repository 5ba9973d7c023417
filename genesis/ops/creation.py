"""Creating tensors: from data, filled, ranges and random numbers."""
import numpy as np

from .. import dtypes as _dt
from ..backend import get as _backend_of
from ..device import device as _device
from ..tensor import Tensor


class Generator:
    """A random number stream to pass as `generator=` (PyTorch's `torch.Generator`).

    `Generator().manual_seed(0)` gives a stream that is independent of the global one,
    so e.g. a DataLoader's shuffling can be reproduced without touching model init.
    """

    __slots__ = ("device", "_seed", "_rng")

    def __init__(self, device="cpu"):
        self.device = _device(device)
        self.seed()

    def manual_seed(self, seed):
        """Restart the stream from `seed`; returns the generator."""
        self._seed = int(seed)
        self._rng = np.random.default_rng(self._seed)
        return self

    def seed(self):
        """Reseed from operating-system entropy; returns the new seed."""
        self.manual_seed(np.random.SeedSequence().entropy % 2 ** 63)
        return self._seed

    def initial_seed(self):
        """The seed the stream was last started from."""
        return self._seed


_default_generator = Generator()


def manual_seed(seed):
    """Seed the global random number generator (rand, randn, randint, init, dropout,
    shuffling); returns it."""
    return _default_generator.manual_seed(seed)


def default_generator():
    """The global Generator, used wherever no `generator=` is given."""
    return _default_generator


def _rng(generator):
    """The numpy stream behind a genesis Generator (the global one for None)."""
    if generator is None:
        return _default_generator._rng
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a genesis.Generator, got {type(generator).__name__}")
    return generator._rng


def _dev(device):
    return _device("cpu" if device is None else device)


def _finish(data, dev, requires_grad):
    t = Tensor._make(data, dev)
    if requires_grad:
        t.requires_grad = True
    return t


def _infer_dtype(data):
    """PyTorch's inference: Python floats -> default float, ints -> int64, bools -> bool;
    numpy arrays keep their dtype."""
    if isinstance(data, np.ndarray) or isinstance(data, np.generic):
        if data.dtype.kind in "iu" and data.dtype != np.int32:
            return _dt.int64
        if data.dtype == np.float16:
            return _dt.float32
        return _dt.from_numpy_dtype(data.dtype)
    arr = np.asarray(data)
    if arr.dtype.kind == "f":
        return _dt.get_default_dtype()
    if arr.dtype.kind in "iu":
        return _dt.int64
    if arr.dtype.kind == "b":
        return _dt.bool
    if arr.dtype == object and arr.size:
        raise TypeError("tensor(): could not infer dtype of the data (mixed or nested types)")
    return _dt.get_default_dtype()


def tensor(data, *, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of `data` (nested lists, scalars, arrays, tensors)."""
    dev = _dev(device)
    if isinstance(data, Tensor):
        src = data.detach()
        dt = _dt.to_dtype(dtype) if dtype is not None else src.dtype
        if src.device != dev:
            src = src.to(dev)
        out = src.to(dt)
        out = out.clone() if out._data is data._data else out
        return _finish(out._data, dev, requires_grad)
    if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in _flat(data)):
        data = _nested_to_numpy(data)
    dt = _dt.to_dtype(dtype) if dtype is not None else _infer_dtype(data)
    try:
        arr = np.array(data, dtype=dt.np)
    except (ValueError, TypeError) as e:
        raise TypeError(f"tensor(): cannot build a tensor from this data: {e}") from None
    return _finish(_backend_of(dev).from_numpy(arr), dev, requires_grad)


def _flat(data):
    for x in data:
        if isinstance(x, (list, tuple)):
            yield from _flat(x)
        else:
            yield x


def _nested_to_numpy(data):
    if isinstance(data, Tensor):
        return np.asarray(data.detach().cpu()._data)
    if isinstance(data, (list, tuple)):
        return [_nested_to_numpy(x) for x in data]
    return data


def as_tensor(data, dtype=None, device=None):
    """Like `tensor`, but shares memory with a numpy array or tensor when it can."""
    if isinstance(data, Tensor):
        out = data
        if dtype is not None:
            out = out.to(_dt.to_dtype(dtype))
        return out if device is None else out.to(device)
    if isinstance(data, np.ndarray) and _dev(device).type == "cpu":
        dt = _dt.to_dtype(dtype) if dtype is not None else _dt.from_numpy_dtype(data.dtype)
        if data.dtype == dt.np:
            return Tensor._make(data, _dev(device))
    return tensor(data, dtype=dtype, device=device)


def from_numpy(ndarray):
    """A CPU tensor sharing memory with `ndarray` (its dtype must be supported)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray (got {type(ndarray).__name__})")
    _dt.from_numpy_dtype(ndarray.dtype)
    return Tensor._make(ndarray, _dev("cpu"))


def _shape(size, op):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    try:
        shape = tuple(int(s) for s in size)
    except TypeError:
        raise TypeError(f"{op}: size must be a sequence of ints, got {size!r}") from None
    if any(s < 0 for s in shape):
        raise RuntimeError(f"{op}: negative dimension in size {list(shape)}")
    return shape


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False):
    """A tensor of shape `size` filled with `fill_value`."""
    if dtype is None:
        dtype = _dt.bool if isinstance(fill_value, bool) else \
            _dt.int64 if isinstance(fill_value, int) else _dt.get_default_dtype()
    dt, dev = _dt.to_dtype(dtype), _dev(device)
    data = _backend_of(dev).full(_shape((size,) if isinstance(size, int) else tuple(size), "full"),
                                 fill_value, dt.np)
    return _finish(data, dev, requires_grad)


def _filled(value, size, dtype, device, requires_grad, op):
    dt = _dt.to_dtype(dtype) if dtype is not None else _dt.get_default_dtype()
    dev = _dev(device)
    return _finish(_backend_of(dev).full(_shape(size, op), value, dt.np), dev, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of zeros."""
    return _filled(0, size, dtype, device, requires_grad, "zeros")


def ones(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of ones."""
    return _filled(1, size, dtype, device, requires_grad, "ones")


def empty(*size, dtype=None, device=None, requires_grad=False):
    """An uninitialized tensor."""
    dt = _dt.to_dtype(dtype) if dtype is not None else _dt.get_default_dtype()
    dev = _dev(device)
    return _finish(_backend_of(dev).empty(_shape(size, "empty"), dt.np), dev, requires_grad)


def _like(fn, input, dtype, device, requires_grad, *args):
    return fn(*args, tuple(input.shape), dtype=dtype or input.dtype,
              device=device or input.device, requires_grad=requires_grad)


def zeros_like(input, *, dtype=None, device=None, requires_grad=False):
    return _like(zeros, input, dtype, device, requires_grad)


def ones_like(input, *, dtype=None, device=None, requires_grad=False):
    return _like(ones, input, dtype, device, requires_grad)


def empty_like(input, *, dtype=None, device=None, requires_grad=False):
    return _like(empty, input, dtype, device, requires_grad)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False):
    return full(tuple(input.shape), fill_value, dtype=dtype or input.dtype,
                device=device or input.device, requires_grad=requires_grad)


def rand_like(input, *, dtype=None, device=None, requires_grad=False):
    return _like(rand, input, dtype, device, requires_grad)


def randn_like(input, *, dtype=None, device=None, requires_grad=False):
    return _like(randn, input, dtype, device, requires_grad)


def randint_like(input, low=0, high=None, *, dtype=None, device=None):
    if high is None:
        low, high = 0, low
    return randint(low, high, tuple(input.shape), dtype=dtype or input.dtype,
                   device=device or input.device)


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False):
    """Values from start (inclusive) to end (exclusive) by step."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if dtype is None:
        is_float = any(isinstance(v, float) for v in (start, end, step))
        dtype = _dt.get_default_dtype() if is_float else _dt.int64
    dt, dev = _dt.to_dtype(dtype), _dev(device)
    n = max(0, int(np.ceil((end - start) / step)))
    # start + i * step, computed by our kernels
    idx = _backend_of(dev).from_numpy(np.arange(n, dtype=np.int64))
    t = Tensor._make(idx, dev).to(_dt.float64 if dt.is_floating_point or isinstance(step, float)
                                   or isinstance(start, float) else _dt.int64)
    t = (t * step + start).to(dt)
    return _finish(t._data, dev, requires_grad)


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False):
    """`steps` evenly spaced values from start to end inclusive."""
    if steps < 0:
        raise RuntimeError("linspace: number of steps must be non-negative")
    dt = _dt.to_dtype(dtype) if dtype is not None else _dt.get_default_dtype()
    dev = _dev(device)
    if steps == 1:
        return full((1,), start, dtype=dt, device=dev, requires_grad=requires_grad)
    step = (end - start) / (steps - 1) if steps > 1 else 0.0
    t = arange(steps, dtype=_dt.float64, device=dev) * step + start
    return _finish(t.to(dt)._data, dev, requires_grad)


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False):
    """The identity matrix (n x m)."""
    m = n if m is None else m
    t = zeros(n, m, dtype=dtype, device=device)
    k = min(n, m)
    if k:
        i = arange(k, device=device)
        t[i, i] = 1
    if requires_grad:
        t.requires_grad = True
    return t


def _float_dtype(dtype, op):
    dt = _dt.to_dtype(dtype) if dtype is not None else _dt.get_default_dtype()
    if not dt.is_floating_point:
        raise TypeError(f"{op}: expected a floating point dtype, got {dt}")
    return dt


def rand(*size, dtype=None, device=None, requires_grad=False, generator=None):
    """Uniform random numbers in [0, 1)."""
    dt, dev = _float_dtype(dtype, "rand"), _dev(device)
    data = _backend_of(dev).rand(_shape(size, "rand"), dt.np, _rng(generator))
    return _finish(data, dev, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False, generator=None):
    """Standard normal random numbers."""
    dt, dev = _float_dtype(dtype, "randn"), _dev(device)
    data = _backend_of(dev).randn(_shape(size, "randn"), dt.np, _rng(generator))
    return _finish(data, dev, requires_grad)


def randint(low=0, high=None, size=None, *, dtype=None, device=None, generator=None):
    """Uniform random integers in [low, high)."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint: size must be given")
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if high <= low:
        raise RuntimeError(f"randint: expected low < high, got low={low}, high={high}")
    dt = _dt.to_dtype(dtype) if dtype is not None else _dt.int64
    dev = _dev(device)
    data = _backend_of(dev).randint(low, high, _shape(tuple(size), "randint"), np.int64,
                                    _rng(generator))
    return Tensor._make(data, dev).to(dt)


def randperm(n, *, dtype=None, device=None, generator=None):
    """A random permutation of 0..n-1."""
    dev = _dev(device)
    t = Tensor._make(_backend_of(dev).permutation(int(n), _rng(generator)), dev)
    return t.to(_dt.to_dtype(dtype)) if dtype is not None else t
