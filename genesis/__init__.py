"""genesis: a deep-learning framework written from scratch.

Tensors with broadcasting and reverse-mode autograd over native C++ kernels,
with a PyTorch-shaped API: port a script by changing its imports.
"""
from . import _C
from .dtypes import (bool, dtype, float32, float64, get_default_dtype, int32, int64,
                     promote_types, set_default_dtype)
from .device import device
from .tensor import Size, Tensor
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .ops import *  # noqa: F401,F403
from . import autograd, ops
from .ops.creation import Generator
from .serialization import load, save
from . import cpu, cuda, data, nn, optim

long, double = int64, float64

__version__ = "0.1.0"


def set_num_threads(n):
    """Number of threads genesis kernels use (OpenMP)."""
    _C.set_num_threads(int(n))


def get_num_threads():
    """Number of threads genesis kernels use."""
    return _C.get_num_threads()


def is_tensor(obj):
    return isinstance(obj, Tensor)
