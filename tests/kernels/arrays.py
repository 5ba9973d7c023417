"""Test inputs shared by the kernel tests: values of each dtype in each memory layout."""
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
