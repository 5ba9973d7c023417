"""`genesis.cuda`: the state of the "cuda" device (PyTorch's `torch.cuda`).

Tensors go there with `device="cuda"`, `.to("cuda")` or `.cuda()`.  The device is a
GPU through CuPy (`pip install "genesis-autograd[cuda]"`) or, with the environment
variable GENESIS_CUDA_EMULATE=1, the same CUDA kernels emulated on the CPU."""
from .backend import is_available as _is_available

__all__ = ["is_available", "is_emulated", "device_count", "synchronize"]


def is_available():
    """Whether tensors can be created on device "cuda" (a GPU, or the emulator)."""
    return _is_available("cuda")


def is_emulated():
    """Whether device "cuda" runs its kernels in the CPU emulator."""
    if not is_available():
        return False
    from .backend.cuda import _device
    return _device.EMULATED


def device_count():
    """How many CUDA devices there are (the emulator is one)."""
    if not is_available():
        return 0
    from .backend.cuda import _device
    return 1 if _device.EMULATED else _device.xp.cuda.runtime.getDeviceCount()


def synchronize():
    """Wait until every kernel launched on device "cuda" has finished (kernels run
    asynchronously on a GPU; in the emulator each launch has already finished).
    Raises RuntimeError, saying why, when the device is not available."""
    from .backend.cuda import _device
    if not _device.EMULATED:
        _device.xp.cuda.runtime.deviceSynchronize()
