"""Test inputs shared by the kernel tests: values of each dtype in each memory layout,
and memory that ends where a page that may not be read begins."""
import contextlib
import ctypes
import mmap

import numpy as np

rng = np.random.default_rng(0)


def values(shape, dtype, r=rng):
    if dtype == np.bool_:
        return r.random(shape) < 0.5
    if np.issubdtype(dtype, np.integer):
        return r.integers(-50, 50, shape).astype(dtype)
    return r.standard_normal(shape).astype(dtype)


def layout(a, kind):
    """An array equal to `a` whose memory layout is `kind`."""
    a = np.asarray(a)
    if kind == "contig" or a.ndim == 0:
        return np.array(a, order="C")
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "step":
        big = np.zeros([2 * s + 1 for s in a.shape], a.dtype)
        view = big[tuple(slice(1, None, 2) for _ in a.shape)]
        view[...] = a
        return view
    if kind == "neg":
        flip = tuple(slice(None, None, -1) for _ in a.shape)
        return np.ascontiguousarray(a[flip])[flip]
    raise ValueError(kind)


def assert_same(got, want):
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@contextlib.contextmanager
def ends_at_guard_page(nbytes):
    """A uint8 array of nbytes whose last byte is followed by a PROT_NONE page: a kernel
    that reads past the end of data placed there faults."""
    page = mmap.PAGESIZE
    pages = -(-nbytes // page)
    buf = mmap.mmap(-1, (pages + 1) * page)
    base = np.frombuffer(buf, np.uint8)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    guard = base.ctypes.data + pages * page
    assert libc.mprotect(guard, page, 0) == 0  # PROT_NONE
    try:
        yield base[pages * page - nbytes:pages * page]
    finally:
        libc.mprotect(guard, page, mmap.PROT_READ | mmap.PROT_WRITE)
