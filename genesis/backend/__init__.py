"""Device backends.  Every backend module exposes the same functions over its own
array type (numpy arrays on the CPU); adding a device means adding one module."""
from ..device import device as _device
from . import cpu

_BACKENDS = {"cpu": cpu}


def get(dev):
    """The backend module that computes on device `dev`."""
    dev = _device(dev)
    backend = _BACKENDS.get(dev.type)
    if backend is None:
        raise RuntimeError(f"device '{dev}' is not available in this build of genesis")
    return backend


def register(device_type, module):
    """Install the backend module for a device type (used by the CUDA backend)."""
    _BACKENDS[device_type] = module
