"""Where the CUDA backend's arrays live and how its kernels are launched.

Native mode: arrays are cupy arrays on the GPU and each kernel family
(`kernels/<family>.cu`) is compiled once by NVRTC through `cupy.RawModule`.
Emulated mode (GENESIS_CUDA_EMULATE=1): arrays are numpy arrays in the
emulator's device memory and the same `.cu` files are compiled for the CPU by
`genesis.backend.cuda.emulator`.  Either way the backend calls kernels with
CuPy's call shape and exact numpy scalar types.
"""
import os

import numpy as np

from . import KERNEL_DIR

INSTALL_HINT = ('install CuPy for your CUDA version (pip install "genesis-autograd[cuda]") on a '
                "machine with an NVIDIA GPU, or set GENESIS_CUDA_EMULATE=1 to run the CUDA "
                "kernels on the CPU")


def _emulate_requested():
    return os.environ.get("GENESIS_CUDA_EMULATE", "") not in ("", "0")


def _native_unavailable_reason():
    """None when cupy works with at least one GPU, else why not."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # the CUDA runtime reports a missing driver as its own error type
        return f"the CUDA runtime reports no usable GPU ({e})"
    return None if count > 0 else "no CUDA GPU is visible"


EMULATED = _emulate_requested()
if EMULATED:
    from . import emulator as _emu

    xp = np
    array_type = np.ndarray

    def empty(shape, dtype):
        return _emu.empty(shape, dtype)

    def to_device(a):
        return _emu.to_device(a)

    def to_host(x):
        return np.array(x)

    def _load(family):
        return _emu.Module(path=KERNEL_DIR / f"{family}.cu")
else:
    _reason = _native_unavailable_reason()
    if _reason is not None:
        raise RuntimeError(f"device 'cuda' is not available: {_reason}; {INSTALL_HINT}")
    import cupy

    xp = cupy
    array_type = cupy.ndarray

    def empty(shape, dtype):
        return cupy.empty(shape, dtype)

    def to_device(a):
        return cupy.asarray(a)

    def to_host(x):
        return cupy.asnumpy(x)

    def _load(family):
        src = (KERNEL_DIR / f"{family}.cu").read_text()
        return cupy.RawModule(code=src, options=("-std=c++17", f"-I{KERNEL_DIR}"))


_MODULES = {}


def kernel(family, name):
    """The kernel `name` of `kernels/<family>.cu`, compiled on first use."""
    mod = _MODULES.get(family)
    if mod is None:
        mod = _MODULES[family] = _load(family)
    return mod.get_function(name)


BLOCK = 256        # threads per block of 1-D launches (GENESIS_BLOCK in common.cuh)
MAX_BLOCKS = 4096  # grid-stride loops cover the rest


def launch(family, name, n, args, block=BLOCK):
    """A 1-D grid-stride launch over n elements (nothing to do when n == 0)."""
    if n <= 0:
        return
    grid = min((n + block - 1) // block, MAX_BLOCKS)
    kernel(family, name)((grid,), (block,), args)


def launch_grid(family, name, grid, block, args, shared_mem=0):
    """A launch with an explicit configuration."""
    kernel(family, name)(grid, block, args, shared_mem=shared_mem)
