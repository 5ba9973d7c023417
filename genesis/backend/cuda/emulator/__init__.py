"""Run CUDA C kernels on the CPU: the `.cu` files compiled with g++ (C++20) against
`cuda_emu.h`, launched with CuPy's call shape.

    mod = Module(path="kernels/elementwise.cu")       # like cupy.RawModule
    k = mod.get_function("fill_f32")
    k((blocks,), (256,), (out, np.int64(n), np.float64(1.5)), shared_mem=0)

Device memory is a shared arena (`empty`, `to_device`): numpy arrays whose bytes
are visible to the worker process that runs launches, so a kernel's memory error
kills the worker and surfaces as `KernelCrash` instead of ending the Python
process.  Every launch checks its arguments against the kernel's parameter types,
deduced by a generated thunk: arrays must be device arrays of the exact dtype and
scalars exact numpy types (np.int32, np.float32, np.int64, ...), as CuPy needs.

Threads of a block run as fibers that switch only at barriers and warp
collectives; `set_thread_order("forward" | "reverse" | "random", seed)` (or the
environment variable GENESIS_CUDA_EMULATE_ORDER=reverse / random:SEED) picks the
order in which threads and blocks run, to expose missing barriers.  Deadlocks and
barrier divergence raise `DeadlockError` / `BarrierDivergenceError`; a launch that
runs longer than GENESIS_CUDA_EMULATE_TIMEOUT seconds (default 600) raises
`KernelTimeout`.  Compiled modules are cached in GENESIS_CUDA_EMULATE_CACHE
(default ~/.cache/genesis/cuda-emulator), keyed by a hash of the sources, the
emulator and the compiler.
"""
import contextlib
import ctypes
import hashlib
import json
import os
import re
import select
import signal
import struct
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

__all__ = ["Module", "Kernel", "empty", "to_device", "is_device_array", "set_thread_order",
           "get_thread_order", "thread_order", "EmulatorError", "CompileError", "KernelError",
           "DeadlockError", "BarrierDivergenceError", "KernelCrash", "KernelTimeout"]

_HERE = Path(__file__).resolve().parent
_HEADER = _HERE / "cuda_emu.h"
_FLAGS = ("-std=c++20", "-O2", "-fPIC", "-shared", "-fno-strict-aliasing")


class EmulatorError(RuntimeError):
    """Base class of the emulator's errors."""


class CompileError(EmulatorError):
    """g++ rejected a kernel source; the message carries the compiler output."""


class KernelError(EmulatorError):
    """A launch failed inside the emulator (invalid launch, warp-mask misuse)."""


class DeadlockError(KernelError):
    """No thread of a block could make progress."""


class BarrierDivergenceError(KernelError):
    """Threads of a block exited, or waited at another barrier, while others waited."""


class KernelCrash(KernelError):
    """The kernel killed the worker process (invalid memory access, stack overflow)."""


class KernelTimeout(KernelError):
    """The launch did not finish in time (an endless loop or a spin-wait)."""


# ------------------------------------------------------------------ compiling
def _compiler():
    cxx = os.environ.get("CXX", "g++")
    try:
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True,
                                 check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise CompileError(f"the CUDA emulator needs a C++20 compiler: cannot run '{cxx}' "
                           f"({e}); install g++ or set CXX") from None
    return cxx, version


def _cache_dir():
    root = os.environ.get("GENESIS_CUDA_EMULATE_CACHE")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "genesis", "cuda-emulator")
    os.makedirs(root, exist_ok=True)
    return Path(root)


def _run(cmd, what):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise CompileError(f"{what} failed:\n{r.stderr or r.stdout}")
    return r.stdout


def _key(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()[:24]


_EXTERN_SHARED = re.compile(
    r"extern\s+__genesis_shared__\s+(?:alignas\s*\(\s*\d+\s*\)\s*)?([A-Za-z_][\w:\s]*?)\s*"
    r"(?:__restrict\s+)?([A-Za-z_]\w*)\s*\[\s*\]\s*;")
_KERNEL = re.compile(r'extern\s+"C"\s+__genesis_global__\s+void\s+([A-Za-z_]\w*)\s*\(')


def _translate(preprocessed):
    """Dynamic shared arrays become pointers to the launch's buffer, and each kernel
    gets a thunk (which unpacks an argument array into its parameter types) and a
    signature function (those types, for the launcher's checks)."""
    text = _EXTERN_SHARED.sub(
        lambda m: f"{m.group(1)}* {m.group(2)} = "
                  f"reinterpret_cast<{m.group(1)}*>(::genesis_emu::dynamic_smem);", preprocessed)
    if "extern __genesis_shared__" in re.sub(r"\s+", " ", text):
        raise CompileError("an `extern __shared__` declaration the emulator cannot translate "
                           "(expected `extern __shared__ [__align__(n)] T name[];`)")
    kernels = _KERNEL.findall(text)
    text = text.replace("__genesis_shared__", "static thread_local")
    text = text.replace("__genesis_global__", "")
    thunks = "".join(
        f'extern "C" const char* genesis_sig_{k}() {{ return ::genesis_emu::signature(&{k}); }}\n'
        f'extern "C" void genesis_thunk_{k}(void** a) {{ ::genesis_emu::invoke(&{k}, a); }}\n'
        for k in kernels)
    return text + "\n" + thunks, kernels


def _build(source, filename, include_dirs):
    """Compile a .cu source into a shared library; returns (path, kernel names)."""
    cxx, version = _compiler()
    includes = sorted({p for d in include_dirs for p in Path(d).glob("*.cuh")})
    key = _key(source, _HEADER.read_text(), *(p.read_text() for p in includes), cxx, version,
               " ".join(_FLAGS))
    cache = _cache_dir()
    so, meta = cache / f"{Path(filename).stem}-{key}.so", cache / f"{Path(filename).stem}-{key}.json"
    if so.exists() and meta.exists():
        return so, json.loads(meta.read_text())["kernels"]
    inc = [f"-I{d}" for d in include_dirs]
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        tmp = Path(tmp)
        src = tmp / Path(filename).name
        src.write_text(source)
        wrapper = tmp / "wrapper.cpp"
        wrapper.write_text(f'#include "{_HEADER}"\n#include "{src}"\n')
        pre = _run([cxx, "-std=c++20", "-E", "-DGENESIS_EMU_SCAN", *inc, str(wrapper)],
                   f"preprocessing {filename}")
        text, kernels = _translate(pre)
        unit = tmp / "unit.cpp"
        unit.write_text(text)
        out = tmp / so.name
        _run([cxx, *_FLAGS, "-o", str(out), str(unit)], f"compiling {filename} for the emulator")
        os.replace(out, so)
        meta.write_text(json.dumps({"kernels": kernels}))
    return so, kernels


# ------------------------------------------------------------------ runtime
class _Runtime:
    """The worker library, the device-memory arena and the worker process."""

    def __init__(self):
        src = (_HERE / "worker.cpp").read_text()
        cxx, version = _compiler()
        path = _cache_dir() / f"worker-{_key(src, cxx, version, ' '.join(_FLAGS))}.so"
        if not path.exists():
            with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
                out = Path(tmp) / path.name
                _run([cxx, *_FLAGS, "-o", str(out), str(_HERE / "worker.cpp")],
                     "compiling the emulator worker")
                os.replace(out, path)
        lib = ctypes.CDLL(str(path))
        lib.genesis_emu_arena.restype = ctypes.c_void_p
        lib.genesis_emu_arena.argtypes = [ctypes.c_ulonglong]
        lib.genesis_emu_release.argtypes = [ctypes.c_void_p, ctypes.c_ulonglong]
        lib.genesis_emu_spawn.argtypes = [ctypes.c_int] * 4
        self.lib = lib
        self.capacity = int(os.environ.get("GENESIS_CUDA_EMULATE_MEMORY", 64 << 30))
        self.base = lib.genesis_emu_arena(self.capacity)
        if not self.base:
            raise EmulatorError(f"cannot reserve {self.capacity} bytes of emulated device memory")
        self.top = 0
        self.free = {}
        self.pid = None
        self.lock = threading.Lock()  # one request on the pipes at a time
        self.generation = 0      # bumped when a module is loaded
        self.worker_generation = -1

    # device memory: power-of-two size classes, freed blocks reused
    def alloc(self, nbytes):
        size = max(256, 1 << max(0, int(nbytes) - 1).bit_length())
        bucket = self.free.get(size)
        if bucket:
            return bucket.pop(), size
        off = self.top
        if off + size > self.capacity:
            raise MemoryError(f"CUDA emulator: out of device memory allocating {nbytes} bytes "
                              f"({self.top} of {self.capacity} in use; set "
                              "GENESIS_CUDA_EMULATE_MEMORY)")
        self.top += size
        return off, size

    def release(self, off, size):
        if size >= 1 << 20:
            self.lib.genesis_emu_release(self.base + off, size)
        self.free.setdefault(size, []).append(off)

    # worker process
    def _spawn(self):
        self._stop()
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        pid = self.lib.genesis_emu_spawn(req_r, resp_w, req_w, resp_r)
        os.close(req_r)
        os.close(resp_w)
        if pid < 0:
            os.close(req_w)
            os.close(resp_r)
            raise EmulatorError("cannot fork the CUDA emulator worker")
        self.pid, self.req, self.resp = pid, req_w, resp_r
        self.worker_generation = self.generation

    def _stop(self):
        if self.pid is None:
            return
        with contextlib.suppress(OSError):
            os.close(self.req)
        with contextlib.suppress(OSError):
            os.close(self.resp)
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.waitpid(self.pid, 0)
        self.pid = None

    def _died(self):
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        os.close(self.req)
        os.close(self.resp)
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            return f"signal {signal.Signals(sig).name}" + (
                " (an invalid memory access or a stack overflow)" if sig in (signal.SIGSEGV,
                                                                             signal.SIGBUS) else "")
        return f"exit status {os.WEXITSTATUS(status)}"

    def launch(self, name, request, timeout):
        with self.lock:
            return self._launch(name, request, timeout)

    def _launch(self, name, request, timeout):
        if self.pid is None or self.worker_generation != self.generation:
            self._spawn()
        os.write(self.req, request)
        ready, _, _ = select.select([self.resp], [], [], timeout)
        if not ready:
            self._stop()
            raise KernelTimeout(f"kernel {name} did not finish within {timeout:g} s (an endless "
                                "loop, or a spin-wait on a thread that is not running)")
        head = _read(self.resp, 8)
        if len(head) < 8:
            raise KernelCrash(f"kernel {name} crashed the emulator worker: {self._died()}")
        status, length = struct.unpack("<ii", head)
        return status, _read(self.resp, length).decode(errors="replace")


def _read(fd, n):
    out = b""
    while len(out) < n:
        chunk = os.read(fd, n - len(out))
        if not chunk:
            break
        out += chunk
    return out


_RT = None


def _runtime():
    global _RT
    if _RT is None:
        _RT = _Runtime()
    return _RT


# ------------------------------------------------------------------ device memory
class _Block:
    """Owner of one arena block; the numpy arrays viewing it keep it alive."""

    __slots__ = ("__array_interface__", "off", "size")

    def __del__(self):
        if _RT is not None:
            _RT.release(self.off, self.size)


def empty(shape, dtype):
    """An uninitialized array in emulated device memory."""
    rt = _runtime()
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    n = dtype.itemsize
    for s in shape:
        n *= s
    b = _Block()
    b.off, b.size = rt.alloc(n)
    b.__array_interface__ = {"shape": shape, "typestr": dtype.str, "data": (rt.base + b.off, False),
                             "version": 3}
    return np.asarray(b)


def to_device(a):
    """A copy of array-like `a` in emulated device memory."""
    a = np.asarray(a)
    out = empty(a.shape, a.dtype)
    np.copyto(out, a)
    return out


def is_device_array(a):
    """Whether numpy array `a` lies in emulated device memory."""
    if _RT is None or not isinstance(a, np.ndarray):
        return False
    lo, hi = _extent(a)
    return _RT.base <= lo and hi <= _RT.base + _RT.top


def _extent(a):
    addr = a.__array_interface__["data"][0]
    lo = hi = addr
    for n, s in zip(a.shape, a.strides):
        if n == 0:
            return addr, addr
        if s < 0:
            lo += (n - 1) * s
        else:
            hi += (n - 1) * s
    return lo, hi + a.itemsize


# ------------------------------------------------------------------ thread order
_ORDERS = {"forward": 0, "reverse": 1, "random": 2}


def _order_from_env():
    spec = os.environ.get("GENESIS_CUDA_EMULATE_ORDER", "forward")
    name, _, seed = spec.partition(":")
    if name not in _ORDERS:
        raise ValueError(f"GENESIS_CUDA_EMULATE_ORDER={spec!r}: expected forward, reverse or "
                         "random[:seed]")
    return name, int(seed or 0)


_order = _order_from_env()


def set_thread_order(order, seed=0):
    """Run the threads (and blocks) of later launches in `order`: "forward",
    "reverse" or "random" (seeded by `seed`)."""
    global _order
    if order not in _ORDERS:
        raise ValueError(f"set_thread_order: expected forward, reverse or random, got {order!r}")
    _order = (order, int(seed))


def get_thread_order():
    """The current (order, seed)."""
    return _order


@contextlib.contextmanager
def thread_order(order, seed=0):
    """Context manager form of `set_thread_order`."""
    saved = _order
    set_thread_order(order, seed)
    try:
        yield
    finally:
        set_thread_order(*saved)


# ------------------------------------------------------------------ modules and kernels
_SCALARS = {"f4": np.float32, "f8": np.float64, "i4": np.int32, "i8": np.int64,
            "u4": np.uint32, "u8": np.uint64, "b1": np.bool_}
_CNAMES = {"f4": "float", "f8": "double", "i4": "int", "i8": "long long", "u4": "unsigned int",
           "u8": "unsigned long long", "b1": "bool/unsigned char"}


class Module:
    """A .cu source compiled for the CPU (the emulator's `cupy.RawModule`).

    `path` names a .cu file (its directory is on the include path) or `code` is the
    source itself; `include_dirs` adds directories searched for `#include "x.cuh"`.
    """

    def __init__(self, path=None, code=None, include_dirs=(), name=None):
        if (path is None) == (code is None):
            raise TypeError("Module: give exactly one of path= or code=")
        if path is not None:
            path = Path(path)
            code = path.read_text()
            include_dirs = (path.parent, *include_dirs)
            name = name or path.name
        self.name = name or "module.cu"
        so, kernels = _build(code, self.name, [str(Path(d).resolve()) for d in include_dirs])
        rt = _runtime()
        self._lib = ctypes.CDLL(str(so))
        rt.generation += 1  # the running worker was forked before this library existed
        self._launch = ctypes.cast(self._lib.genesis_emu_launch, ctypes.c_void_p).value
        self._kernels = {}
        for k in kernels:
            sig_fn = getattr(self._lib, f"genesis_sig_{k}")
            sig_fn.restype = ctypes.c_char_p
            sig = sig_fn().decode()
            thunk = ctypes.cast(getattr(self._lib, f"genesis_thunk_{k}"), ctypes.c_void_p).value
            self._kernels[k] = Kernel(self, k, tuple(sig.split(",")) if sig else (), thunk)

    def get_function(self, name):
        """The kernel `name` (an `extern "C" __global__` function of the module)."""
        try:
            return self._kernels[name]
        except KeyError:
            raise KeyError(f"module {self.name} has no kernel {name!r}; it has "
                           f"{sorted(self._kernels)}") from None

    @property
    def kernels(self):
        return tuple(self._kernels)


def _dim3(v, what, name):
    t = (v,) if isinstance(v, (int, np.integer)) else tuple(v)
    if not 1 <= len(t) <= 3 or any(not isinstance(x, (int, np.integer)) for x in t):
        raise TypeError(f"kernel {name}: {what} must be an int or a tuple of 1-3 ints, got {v!r}")
    return tuple(int(x) for x in t) + (1,) * (3 - len(t))


class Kernel:
    """One kernel; call it as `kernel(grid, block, args, shared_mem=0)`."""

    __slots__ = ("module", "name", "signature", "_thunk")

    def __init__(self, module, name, signature, thunk):
        self.module, self.name, self.signature, self._thunk = module, name, signature, thunk

    def _pack(self, args):
        sig = self.signature
        if len(args) != len(sig):
            raise TypeError(f"kernel {self.name} takes {len(sig)} arguments "
                            f"({', '.join(_decl(c) for c in sig)}), got {len(args)}")
        rt = _runtime()
        slots = []
        for i, (a, c) in enumerate(zip(args, sig)):
            if c.startswith("p:"):
                want = np.dtype(_SCALARS[c[2:]])
                if not isinstance(a, np.ndarray):
                    raise TypeError(f"kernel {self.name}: argument {i} ({_decl(c)}) must be a "
                                    f"device array, got {type(a).__name__}")
                if a.dtype != want:
                    raise TypeError(f"kernel {self.name}: argument {i} ({_decl(c)}) must be a "
                                    f"{want} array, got {a.dtype}")
                if not is_device_array(a):
                    raise TypeError(f"kernel {self.name}: argument {i} ({_decl(c)}) is not in "
                                    "device memory (allocate it with emulator.empty/to_device)")
                slots.append(a.__array_interface__["data"][0])
            else:
                want = _SCALARS[c]
                if type(a) is not want:
                    raise TypeError(f"kernel {self.name}: argument {i} ({_decl(c)}) must be "
                                    f"np.{want.__name__}, got {type(a).__name__} (pass exact "
                                    "numpy scalar types)")
                slots.append(int.from_bytes(a.tobytes().ljust(8, b"\0"), "little"))
        return rt, slots

    def __call__(self, grid, block, args, shared_mem=0, *, timeout=None):
        grid = _dim3(grid, "grid", self.name)
        block = _dim3(block, "block", self.name)
        rt, slots = self._pack(tuple(args))
        order, seed = _order
        request = struct.pack("<QQ6IQiiQ", self.module._launch, self._thunk, *grid, *block,
                              int(shared_mem), _ORDERS[order], len(slots), seed & (2**64 - 1))
        request += struct.pack(f"<{len(slots)}Q", *slots)
        if timeout is None:
            timeout = float(os.environ.get("GENESIS_CUDA_EMULATE_TIMEOUT", 600))
        status, msg = rt.launch(self.name, request, timeout)
        if status:
            cls = (DeadlockError if msg.startswith("deadlock") else
                   BarrierDivergenceError if msg.startswith("barrier divergence") else KernelError)
            raise cls(f"kernel {self.name}: {msg}")

    def __repr__(self):
        return f"<emulated kernel {self.name}({', '.join(_decl(c) for c in self.signature)})>"


def _decl(code):
    return _CNAMES[code[2:]] + "*" if code.startswith("p:") else _CNAMES[code]
