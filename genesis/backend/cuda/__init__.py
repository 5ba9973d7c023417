"""The "cuda" device: CUDA C kernels (`kernels/*.cu`, one file per family, mirroring
csrc/), the backend module over device arrays (`backend`), and the CPU emulator that
runs the same kernels without a GPU (`emulator`, selected by GENESIS_CUDA_EMULATE=1).

Importing this package needs neither CuPy nor a compiler; importing `backend` picks
native or emulated mode and raises RuntimeError when neither is possible."""
from pathlib import Path as _Path

#: The CUDA C sources, one file per kernel family.
KERNEL_DIR = _Path(__file__).resolve().parent / "kernels"
FAMILIES = tuple(sorted(p.stem for p in KERNEL_DIR.glob("*.cu")))
