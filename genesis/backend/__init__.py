"""Device backends.  Every backend module exposes the same functions over its own
array type (numpy arrays on the CPU, device arrays for "cuda"); adding a device
means adding one module.  The CUDA backend is imported on first use, so importing
genesis never needs CuPy or a compiler."""
from ..device import device as _device
from . import cpu

_BACKENDS = {"cpu": cpu}
# Backend per device object, by identity: devices are interned and never freed, so an
# id here always means the same device.  This runs on every op.
_BY_DEVICE = {}


def get(dev):
    """The backend module that computes on device `dev` (a device or its name)."""
    backend = _BY_DEVICE.get(id(dev))
    if backend is None:
        backend = _lookup(dev)
        if isinstance(dev, _device):
            _BY_DEVICE[id(dev)] = backend
    return backend


def _lookup(dev):
    dev = _device(dev)
    backend = _BACKENDS.get(dev.type)
    if backend is None:
        if dev.type == "cuda":
            return _load_cuda(dev)
        raise RuntimeError(f"device '{dev}' is not available in this build of genesis")
    return backend


def _load_cuda(dev):
    try:
        from .cuda import backend as cuda
    except RuntimeError as e:  # no GPU/CuPy and no emulation: say what to install or set
        raise RuntimeError(str(e).replace("device 'cuda'", f"device '{dev}'", 1)) from None
    _BACKENDS["cuda"] = cuda
    return cuda


def is_available(device_type):
    """Whether tensors can be created on `device_type` ("cpu" or "cuda")."""
    try:
        get(device_type)
    except RuntimeError:
        return False
    return True


def register(device_type, module):
    """Install the backend module for a device type."""
    _BACKENDS[device_type] = module
