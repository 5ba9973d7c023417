"""Indexing kernels (csrc/index.cpp) against numpy references.

index.cpp is compiled once (not per instruction set), so these tests do not
parametrize over _C.set_isa; they do run with 1 and 2 threads, and several
cases are large enough to take the multi-threaded paths.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from genesis import _C
from arrays import assert_same, layout, rng, values

DTYPES = [np.float32, np.float64, np.int32, np.int64, np.bool_]
NUMERIC = [np.float32, np.float64, np.int32, np.int64]
LAYOUTS = ["contig", "fortran", "step", "neg"]


# ---------------------------------------------------------------- gather
def gather_ref(x, dim, index):
    crop = tuple(slice(None) if d == dim else slice(0, index.shape[d]) for d in range(x.ndim))
    return np.take_along_axis(x[crop], index, axis=dim)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", LAYOUTS)
def test_gather(dtype, kind):
    x = layout(values((4, 5, 6), dtype), kind)
    for dim in range(-3, 3):
        ishape = [3, 4, 5]
        ishape[dim] = 7  # longer than x along dim: indices repeat
        index = layout(rng.integers(0, x.shape[dim], ishape), kind)
        out = np.empty(ishape, dtype)
        _C.gather(x, dim, index, out)
        assert_same(out, gather_ref(x, dim % 3, index))


def test_gather_int32_index_broadcast_and_large():
    x = values((300, 257), np.float32)
    index = rng.integers(0, 257, (300, 130)).astype(np.int32)
    out = np.empty(index.shape, np.float32)
    _C.gather(x, 1, index, out)
    assert_same(out, gather_ref(x, 1, index))
    # 0-stride index and input
    xb = np.broadcast_to(values((1, 9), np.int64), (5, 9))
    ib = np.broadcast_to(np.array([[8], [0], [3]]), (3, 4))
    out = np.empty((3, 4), np.int64)
    _C.gather(xb, 1, ib, out)
    assert_same(out, gather_ref(np.ascontiguousarray(xb), 1, np.ascontiguousarray(ib)))


def test_gather_empty_and_scalar():
    x = values((3, 0), np.float64)
    out = np.empty((2, 0))
    _C.gather(x, 0, np.zeros((2, 0), np.int64), out)
    out = np.empty(())
    _C.gather(np.array(2.5), 0, np.array(0), out)
    assert out == 2.5


def test_gather_errors():
    x = values((4, 5), np.float32)
    out = np.empty((2, 2), np.float32)
    with pytest.raises(IndexError, match="gather: index 5 is out of bounds for dimension 1 with size 5"):
        _C.gather(x, 1, np.array([[0, 5], [1, 1]]), out)
    with pytest.raises(IndexError, match="gather: index -1 is out of bounds for dimension 0"):
        _C.gather(x, 0, np.array([[0, -1], [1, 1]]), out)
    with pytest.raises(ValueError, match="gather: index"):
        _C.gather(x, 0, np.zeros((2, 2, 1), np.int64), out)
    with pytest.raises(ValueError, match="gather: index"):
        _C.gather(x, 0, np.zeros((2, 6), np.int64), np.empty((2, 6), np.float32))
    with pytest.raises(ValueError, match="gather: index"):
        _C.gather(x, 0, np.zeros((2, 3), np.int64), out)
    with pytest.raises(TypeError, match="gather: out dtype float64"):
        _C.gather(x, 0, np.zeros((2, 2), np.int64), np.empty((2, 2)))
    with pytest.raises(TypeError, match="gather: indices must be int64 or int32, got float32"):
        _C.gather(x, 0, np.zeros((2, 2), np.float32), out)
    with pytest.raises(IndexError, match="gather: dim 2 out of range"):
        _C.gather(x, 2, np.zeros((2, 2), np.int64), out)


def test_gather_error_parallel_reports_first():
    x = values((1000, 100), np.float32)
    index = rng.integers(0, 100, (1000, 100))
    index[600, 3] = 100
    index[900, 1] = -4
    with pytest.raises(IndexError, match="index 100 is out"):
        _C.gather(x, 1, index, np.empty(index.shape, np.float32))


# ---------------------------------------------------------------- scatter_add
def scatter_add_ref(out, dim, index, src):
    coords = list(np.indices(index.shape, sparse=False))
    coords[dim] = index
    np.add.at(out, tuple(coords), src[tuple(slice(0, s) for s in index.shape)])


@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize("kind", LAYOUTS)
def test_scatter_add(dtype, kind):
    for dim in range(3):
        oshape = [4, 5, 6]
        ishape = [3, 4, 5]
        ishape[dim] = 9  # more than out's size along dim: collisions
        index = layout(rng.integers(0, oshape[dim], ishape), kind)
        src = layout(values([s + 1 for s in ishape], dtype), kind)
        base = values(oshape, dtype)
        out = layout(base, kind)
        want = base.copy()
        scatter_add_ref(want, dim, index, src)
        _C.scatter_add(out, dim, index, src)
        assert_same(np.ascontiguousarray(out), want)


def test_scatter_add_into_slice_and_large():
    big = np.zeros((6, 400), np.float64)
    view = big[1:5, ::-2]  # strided, negative-stride output
    index = rng.integers(0, 200, (4, 3000)).astype(np.int32)
    src = values((4, 3000), np.float64)
    want = np.zeros((4, 200))
    scatter_add_ref(want, 1, index, src)
    _C.scatter_add(view, 1, index, src)
    np.testing.assert_allclose(view, want, rtol=1e-12, atol=1e-12)
    assert not big[0].any() and not big[5].any() and not big[1:5, -2::-2].any()
    # dim 0 with many collisions, parallel over columns
    out = np.zeros((3, 20000), np.int64)
    index = rng.integers(0, 3, (50, 20000))
    src = values((50, 20000), np.int64)
    want = out.copy()
    scatter_add_ref(want, 0, index, src)
    _C.scatter_add(out, 0, index, src)
    assert_same(out, want)


def test_scatter_add_1d_repeated_and_empty():
    out = np.zeros(3, np.float32)
    _C.scatter_add(out, 0, np.array([2, 2, 2, 0]), np.ones(4, np.float32))
    assert_same(out, np.array([1, 0, 3], np.float32))
    _C.scatter_add(out, 0, np.zeros(0, np.int64), np.ones(0, np.float32))
    assert_same(out, np.array([1, 0, 3], np.float32))


def test_scatter_add_errors():
    out = np.zeros((3, 4), np.float32)
    src = np.ones((3, 4), np.float32)
    with pytest.raises(IndexError, match="scatter_add: index 3 is out of bounds for dimension 0 with size 3"):
        _C.scatter_add(out, 0, np.array([[0, 3]]), src)
    with pytest.raises(IndexError, match="scatter_add: index -1 is out of bounds"):
        _C.scatter_add(out, 1, np.array([[0, -1]]), src)
    assert not out.any()  # validated before writing
    with pytest.raises(ValueError, match="scatter_add: index"):
        _C.scatter_add(out, 0, np.zeros((4, 5), np.int64), np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match="scatter_add: index"):
        _C.scatter_add(out, 0, np.zeros((3,), np.int64), src)
    with pytest.raises(TypeError, match="scatter_add: src dtype float64"):
        _C.scatter_add(out, 0, np.zeros((1, 1), np.int64), np.ones((3, 4)))
    with pytest.raises(TypeError, match="int64 or int32"):
        _C.scatter_add(out, 0, np.zeros((1, 1), np.float32), src)


# ---------------------------------------------------------------- index_gather
def as_index(a, kind="contig", dtype=np.int64):
    return layout(np.asarray(a, dtype), kind)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", LAYOUTS)
def test_index_gather(dtype, kind):
    x = layout(values((5, 6, 7, 3), dtype), kind)
    for k in range(1, 5):
        idx = [as_index(rng.integers(-x.shape[j], x.shape[j], (4, 3)), kind) for j in range(k)]
        out_shape = (4, 3) + x.shape[k:]
        out = np.empty(out_shape, dtype)
        _C.index_gather(x, idx, out)
        assert_same(out, x[tuple(idx)])


def test_index_gather_variants():
    x = values((50, 40, 30), np.float32)
    # large: split over index tuples, then over the trailing slice
    idx = [rng.integers(-50, 50, 3000)]
    out = np.empty((3000, 40, 30), np.float32)
    _C.index_gather(x, idx, out)
    assert_same(out, x[idx[0]])
    idx = [np.array([3, -1])]
    out = np.empty((2, 40, 30), np.float32)
    _C.index_gather(x[:, ::-1], idx, out)
    assert_same(out, x[:, ::-1][idx[0]])
    # broadcast (0-stride) indices, int32 and mixed index dtypes, strided out
    i0 = np.broadcast_to(np.array([[1], [4]]), (2, 5))
    i1 = np.broadcast_to(np.arange(5, dtype=np.int32), (2, 5))
    big = np.empty((4, 10, 30), np.float32)
    out = big[::2, ::2]
    _C.index_gather(x, [i0, i1], out)
    assert_same(np.ascontiguousarray(out), x[i0, i1])
    # 0-d index, empty index, size-0 trailing dims, no indices
    out = np.empty((40, 30), np.float32)
    _C.index_gather(x, [np.array(-2)], out)
    assert_same(out, x[-2])
    out = np.empty((0, 40, 30), np.float32)
    _C.index_gather(x, [np.zeros(0, np.int64)], out)
    z = np.zeros((4, 0), np.float64)
    out = np.empty((3, 0))
    _C.index_gather(z, [np.array([0, 3, -4])], out)
    out = np.empty(x.shape, np.float32)
    _C.index_gather(x, [], out)
    assert_same(out, x)
    # 1-d elementwise gather
    v = values(1000, np.int64)
    i = rng.integers(-1000, 1000, 50000)
    out = np.empty(50000, np.int64)
    _C.index_gather(v[::-1], [i], out)
    assert_same(out, v[::-1][i])


def test_index_gather_errors():
    x = values((5, 4), np.float64)
    with pytest.raises(IndexError, match="index_gather: index 5 is out of bounds for dimension 0 with size 5"):
        _C.index_gather(x, [np.array([0, 5])], np.empty((2, 4)))
    with pytest.raises(IndexError, match="index_gather: index -5 is out of bounds for dimension 1 with size 4"):
        _C.index_gather(x, [np.array([0]), np.array([-5])], np.empty(1))
    with pytest.raises(IndexError, match="index 7 is out of bounds for dimension 0 with size 0"):
        _C.index_gather(np.zeros((0, 3)), [np.array([7])], np.empty((1, 3)))
    with pytest.raises(IndexError, match="index 9 is out of bounds"):  # checked even with empty slices
        _C.index_gather(np.zeros((4, 0)), [np.array([9])], np.empty((1, 0)))
    with pytest.raises(IndexError, match="too many indices"):
        _C.index_gather(x, [np.array(0)] * 3, np.empty(()))
    with pytest.raises(ValueError, match="index_gather: out \\(2, 3\\) must have shape \\(2, 4\\)"):
        _C.index_gather(x, [np.array([0, 1])], np.empty((2, 3)))
    with pytest.raises(ValueError, match="one shape"):
        _C.index_gather(x, [np.array([0, 1]), np.array([0])], np.empty(2))
    with pytest.raises(TypeError, match="index_gather: out dtype float32"):
        _C.index_gather(x, [np.array([0, 1])], np.empty((2, 4), np.float32))
    with pytest.raises(TypeError, match="int64 or int32, got bool"):
        _C.index_gather(x, [np.array([True, False])], np.empty((2, 4)))
    big = np.zeros((200, 300), np.float32)
    i = np.zeros(20000, np.int64)
    i[12345] = 200
    with pytest.raises(IndexError, match="index 200 is out"):
        _C.index_gather(big, [i], np.empty((20000, 300), np.float32))


# ---------------------------------------------------------------- index_put
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", LAYOUTS)
def test_index_put_unique(dtype, kind):
    base = values((5, 6, 4), dtype)
    flat = rng.permutation(30)[:7]  # distinct (i, j) pairs
    i0, i1 = np.unravel_index(flat, (5, 6))
    i0 = i0 - 5 * (rng.random(7) < 0.5)  # some negative
    src = values((7, 4), dtype)
    for accumulate in (False, True):
        if accumulate and dtype == np.bool_:
            want = base.copy()
            want[i0, i1] |= src
        else:
            want = base.copy()
            if accumulate:
                want[i0, i1] += src
            else:
                want[i0, i1] = src
        dst = layout(base, kind)
        _C.index_put(dst, [as_index(i0, kind), as_index(i1, kind, np.int32)], layout(src, kind), accumulate)
        assert_same(np.ascontiguousarray(dst), want)


@pytest.mark.parametrize("dtype", NUMERIC)
def test_index_put_repeated(dtype):
    dst = np.zeros((4, 3), dtype)
    idx = np.array([1, 1, -3, 2, 1])
    src = values((5, 3), dtype)
    _C.index_put(dst, [idx], src, True)
    want = np.zeros((4, 3), dtype)
    np.add.at(want, idx, src)
    assert_same(dst, want)
    # without accumulate the last write wins
    dst = np.zeros((4, 3), dtype)
    _C.index_put(dst, [idx], src, False)
    assert_same(dst[1], src[4])
    assert_same(dst[2], src[3])
    assert not dst[[0, 3]].any()


def test_index_put_broadcast_src_slices_and_large():
    big = np.zeros((10, 8, 6), np.float32)
    dst = big[1::2, ::-1]  # strided destination view
    i = np.array([[0, 4], [2, 2]])
    src = values((1, 6), np.float32)  # broadcast to (2, 2, 8, 6)
    _C.index_put(dst, [i], src, True)
    want = np.zeros((5, 8, 6), np.float32)
    np.add.at(want, i, np.broadcast_to(src, (2, 2, 8, 6)))
    assert_same(np.ascontiguousarray(dst), want)
    assert not big[::2].any()
    # scalar src, 0-stride index
    dst = np.zeros((3, 4), np.int64)
    _C.index_put(dst, [np.broadcast_to(np.array([2]), (5,)), np.arange(-5, 0) % 4], np.array(7), True)
    want = np.zeros((3, 4), np.int64)
    np.add.at(want, (np.full(5, 2), np.arange(-5, 0) % 4), 7)
    assert_same(dst, want)
    # large trailing slice (threads split it), accumulate with repeats
    dst = np.zeros((6, 5000), np.float64)
    i = rng.integers(-6, 6, 40)
    src = values((40, 5000), np.float64)
    _C.index_put(dst, [i], src, True)
    want = np.zeros((6, 5000))
    np.add.at(want, i, src)
    np.testing.assert_allclose(dst, want, rtol=1e-12, atol=1e-12)
    # large 1-d scatter (serial path), and empty indices
    dst = np.zeros(100, np.int32)
    i = rng.integers(0, 100, 60000)
    _C.index_put(dst, [i], np.ones(60000, np.int32), True)
    assert_same(dst, np.bincount(i, minlength=100).astype(np.int32))
    _C.index_put(dst, [np.zeros(0, np.int64)], np.ones(0, np.int32), True)
    _C.index_put(dst, [np.zeros(0, np.int64)], np.array(5, np.int32), False)
    assert_same(dst, np.bincount(i, minlength=100).astype(np.int32))


def test_index_put_errors():
    dst = np.zeros((5, 4), np.float32)
    with pytest.raises(IndexError, match="index_put: index 5 is out of bounds for dimension 0 with size 5"):
        _C.index_put(dst, [np.array([1, 5])], np.ones(4, np.float32), False)
    with pytest.raises(IndexError, match="index_put: index -6 is out of bounds for dimension 0"):
        _C.index_put(dst, [np.array([1, -6])], np.ones(4, np.float32), True)
    assert not dst.any()  # nothing written before the error
    with pytest.raises(ValueError, match="index_put: src \\(3,\\) cannot be broadcast to \\(2, 4\\)"):
        _C.index_put(dst, [np.array([1, 2])], np.ones(3, np.float32), False)
    with pytest.raises(ValueError, match="cannot be broadcast"):
        _C.index_put(dst, [np.array([1, 2])], np.ones((1, 2, 4), np.float32), False)
    with pytest.raises(TypeError, match="index_put: src dtype float64"):
        _C.index_put(dst, [np.array([1])], np.ones(4), False)
    with pytest.raises(TypeError, match="int64 or int32"):
        _C.index_put(dst, [np.array([1.0])], np.ones(4, np.float32), False)
    with pytest.raises(IndexError, match="too many indices"):
        _C.index_put(dst, [np.array(0)] * 3, np.ones((), np.float32), False)
    with pytest.raises(ValueError, match="read-only"):
        _C.index_put(np.broadcast_to(dst, (2, 5, 4)), [np.array([0])], np.ones((5, 4), np.float32), False)


# ---------------------------------------------------------------- nonzero
def run_nonzero(mask):
    n = _C.count_nonzero(mask)
    out = np.empty((n, mask.ndim), np.int64)
    _C.nonzero(mask, out)
    return out


@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("shape", [(), (0,), (1,), (7,), (3, 0, 2), (5, 7, 3), (70, 600)])
def test_nonzero(kind, shape):
    for p in (0.0, 0.3, 1.0):
        mask = layout(rng.random(shape) < p, kind)
        assert _C.count_nonzero(mask) == np.count_nonzero(mask)
        assert_same(run_nonzero(mask), np.argwhere(mask))


def test_nonzero_other_dtypes_broadcast_and_errors():
    for dtype in NUMERIC:
        m = values((6, 5), dtype) * (rng.random((6, 5)) < 0.5)
        assert_same(run_nonzero(m), np.argwhere(m))
    m = np.array([0.0, np.nan, -0.0, 1.0])
    assert_same(run_nonzero(m), np.argwhere(m))
    b = np.broadcast_to(rng.random((1, 9)) < 0.5, (4, 9))
    assert_same(run_nonzero(b), np.argwhere(b))
    mask = np.array([[True, False], [True, True]])
    with pytest.raises(ValueError, match="nonzero: out has 2 rows but the mask has 3"):
        _C.nonzero(mask, np.empty((2, 2), np.int64))
    with pytest.raises(ValueError, match="nonzero: out \\(3, 1\\) must have shape \\(count, 2\\)"):
        _C.nonzero(mask, np.empty((3, 1), np.int64))
    with pytest.raises(TypeError, match="nonzero: out must be int64, got int32"):
        _C.nonzero(mask, np.empty((3, 2), np.int32))


# ---------------------------------------------------------------- sort / topk
def sort_ref(x, dim, descending):
    """Stable sort with NaN largest, via lexsort on (position, value, isnan)."""
    x = np.moveaxis(np.asarray(x), dim, -1)
    v = x.astype(np.float64) if x.dtype == np.bool_ else x
    nan = np.isnan(v) if v.dtype.kind == "f" else np.zeros(v.shape, bool)
    key = np.where(nan, 0, v)
    pos = np.broadcast_to(np.arange(x.shape[-1]), x.shape)
    order = np.lexsort((pos, -key, ~nan) if descending else (pos, key, nan), axis=-1)
    vals = np.take_along_axis(x, order, -1)
    return np.moveaxis(vals, -1, dim), np.moveaxis(order, -1, dim)


def sort_input(shape, dtype, kind):
    if dtype == np.bool_ or np.issubdtype(dtype, np.integer):
        x = rng.integers(-3, 3, shape).astype(dtype)  # many ties
    else:
        x = rng.integers(-3, 3, shape).astype(dtype)
        x[rng.random(shape) < 0.2] = np.nan
        x[rng.random(shape) < 0.1] = rng.standard_normal() * 1e30
    return layout(x, kind)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", LAYOUTS)
def test_sort(dtype, kind):
    x = sort_input((4, 9, 5), dtype, kind)
    for dim in range(3):
        for descending in (False, True):
            vals = np.empty(x.shape, dtype)
            idx = np.empty(x.shape, np.int64)
            _C.sort(x, dim, descending, vals, idx)
            want_v, want_i = sort_ref(x, dim, descending)
            assert_same(vals, want_v)
            assert_same(idx, want_i)


def test_sort_large_scalar_empty_and_strided_outputs():
    x = sort_input((300, 257), np.float32, "contig")
    for dim, descending in ((1, False), (0, True)):
        vals = np.empty(x.shape, np.float32)
        idx = np.empty(x.shape, np.int64)
        _C.sort(x, dim, descending, vals, idx)
        want_v, want_i = sort_ref(x, dim, descending)
        assert_same(vals, want_v)
        assert_same(idx, want_i)
    x = np.full((), 3.0)
    vals, idx = np.empty(()), np.empty((), np.int64)
    _C.sort(x, 0, False, vals, idx)
    assert vals == 3.0 and idx == 0
    _C.sort(np.zeros((3, 0)), 1, False, np.empty((3, 0)), np.empty((3, 0), np.int64))
    x = np.broadcast_to(np.array([2, 1, 2, 0], np.int64), (3, 4))
    vals = np.empty((3, 8), np.int64)[:, ::2]
    idx = np.empty((4, 3), np.int64).T
    _C.sort(x, 1, True, vals, idx)
    assert_same(np.ascontiguousarray(vals), np.broadcast_to([2, 2, 1, 0], (3, 4)))
    assert_same(np.ascontiguousarray(idx), np.broadcast_to([0, 2, 1, 3], (3, 4)))


@pytest.mark.parametrize("kind", ["contig", "step"])
@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize("n", [255, 256, 257, 2049])
def test_sort_of_long_lines_by_radix_matches_the_stable_order(n, dtype, kind):
    """Lines of 256 or more 4- and 8-byte values are radix sorted, a byte at a time: the
    stable order of sort_ref for values spread over every byte of the key, many ties,
    negative and positive values, zeros of both signs (equal: their order is kept),
    infinities and NaNs of either sign (the largest), on contiguous and strided lines
    along either dim; topk of more than a sixteenth of the line takes the same path."""
    r = np.random.default_rng(n)
    if np.dtype(dtype).kind == "f":
        x = (r.standard_normal((3, n)) * 10.0 ** r.integers(-30, 30, (3, n))).astype(dtype)
        x[:, ::7] = r.integers(-2, 3, x[:, ::7].shape)  # ties
        x[:, 1::11] = np.where(r.random(x[:, 1::11].shape) < 0.5, -0.0, 0.0)
        x[:, 2::13] = r.choice([np.inf, -np.inf, np.nan, -np.nan], x[:, 2::13].shape)
        x[1, :] = np.round(x[1, :])  # a line of few bytes in use
    else:
        big = np.iinfo(dtype).max // 2
        x = r.integers(-big, big, (3, n)).astype(dtype)
        x[:, ::5] = r.integers(-3, 3, x[:, ::5].shape)
        x[1, :] = r.integers(0, 200, n)  # one byte in use
    for dim, a in ((1, x), (0, np.ascontiguousarray(x.T))):
        a = layout(a, kind)
        for descending in (False, True):
            vals, idx = np.empty(a.shape, dtype), np.empty(a.shape, np.int64)
            _C.sort(a, dim, descending, vals, idx)
            want_v, want_i = sort_ref(a, dim, descending)
            assert_same(idx, want_i)
            assert np.array_equal(vals.view(np.uint8), np.ascontiguousarray(want_v).view(np.uint8))
            k = n // 4
            oshape = list(a.shape)
            oshape[dim] = k
            tv, ti = np.empty(oshape, dtype), np.empty(oshape, np.int64)
            _C.topk(a, k, dim, descending, tv, ti)
            take = tuple(slice(0, k) if d == dim else slice(None) for d in range(2))
            assert_same(ti, want_i[take])


@pytest.mark.parametrize("dtype", NUMERIC)
def test_topk(dtype):
    x = sort_input((5, 11, 4), dtype, "neg")
    for dim in range(3):
        n = x.shape[dim]
        for k in sorted({0, 1, 3, n}):
            for largest in (False, True):
                oshape = list(x.shape)
                oshape[dim] = k
                vals = np.empty(oshape, dtype)
                idx = np.empty(oshape, np.int64)
                _C.topk(x, k, dim, largest, vals, idx)
                want_v, want_i = sort_ref(x, dim, largest)
                take = tuple(slice(0, k) if d == dim else slice(None) for d in range(3))
                assert_same(vals, want_v[take])
                assert_same(idx, want_i[take])


@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("dtype", NUMERIC)
def test_topk_of_long_lines_selects_in_one_pass(dtype, kind):
    """k at most 1/16 of the line: one pass that keeps the best k, checking 16 contiguous
    elements at a time against the worst kept (strided lines one by one).  Many ties,
    many NaNs (more and fewer than k), huge values; lines of 700 and 701 (a tail of 13)."""
    for shape, dim in (((3, 700), 1), ((701, 4), 0)):
        x = sort_input(shape, dtype, kind)
        if dtype in (np.float32, np.float64):  # one line without NaNs
            lines = np.moveaxis(x, dim, -1)  # a view
            lines[1] = np.where(np.isnan(lines[1]), 1.0, lines[1])
        for k in (1, 3, 43):
            for largest in (False, True):
                oshape = list(shape)
                oshape[dim] = k
                vals, idx = np.empty(oshape, dtype), np.empty(oshape, np.int64)
                _C.topk(x, k, dim, largest, vals, idx)
                want_v, want_i = sort_ref(x, dim, largest)
                take = tuple(slice(0, k) if d == dim else slice(None) for d in range(2))
                assert_same(vals, want_v[take])
                assert_same(idx, want_i[take])


def test_topk_large():
    x = rng.standard_normal((40, 5000)).astype(np.float32)
    vals = np.empty((40, 7), np.float32)
    idx = np.empty((40, 7), np.int64)
    _C.topk(x, 7, 1, True, vals, idx)
    want = np.argsort(-x, axis=1, kind="stable")[:, :7]
    assert_same(idx, want)
    assert_same(vals, np.take_along_axis(x, want, 1))


def test_sort_topk_errors():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="topk: k \\(5\\) is larger than dimension size \\(3\\)"):
        _C.topk(x, 5, 1, True, np.empty((2, 5), np.float32), np.empty((2, 5), np.int64))
    with pytest.raises(ValueError, match="topk: k \\(-1\\) must be >= 0"):
        _C.topk(x, -1, 1, True, np.empty((2, 0), np.float32), np.empty((2, 0), np.int64))
    with pytest.raises(ValueError, match="topk: values \\(2, 3\\)"):
        _C.topk(x, 2, 1, True, np.empty((2, 3), np.float32), np.empty((2, 3), np.int64))
    with pytest.raises(ValueError, match="sort: values \\(3, 2\\)"):
        _C.sort(x, 1, False, np.empty((3, 2), np.float32), np.empty((3, 2), np.int64))
    with pytest.raises(TypeError, match="sort: values dtype float64"):
        _C.sort(x, 1, False, np.empty((2, 3)), np.empty((2, 3), np.int64))
    with pytest.raises(TypeError, match="sort: indices must be int64, got int32"):
        _C.sort(x, 1, False, np.empty((2, 3), np.float32), np.empty((2, 3), np.int32))
    with pytest.raises(IndexError, match="sort: dim -3 out of range"):
        _C.sort(x, -3, False, np.empty((2, 3), np.float32), np.empty((2, 3), np.int64))


# ---------------------------------------------------------------- one_hot
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", LAYOUTS)
def test_one_hot(dtype, kind):
    for shape in [(), (0,), (7,), (3, 4)]:
        index = layout(rng.integers(0, 5, shape), kind)
        out = np.empty(shape + (5,), dtype)
        _C.one_hot(index, out)
        assert_same(out, (index[..., None] == np.arange(5)).astype(dtype))


def test_one_hot_large_strided_out_and_errors():
    index = rng.integers(0, 10, 5000).astype(np.int32)
    big = np.full((5000, 20), 9.0, np.float32)
    out = big[:, ::-2]
    _C.one_hot(index, out)
    assert_same(np.ascontiguousarray(out), (index[:, None] == np.arange(10)).astype(np.float32))
    assert (big[:, ::2] == 9).all()
    with pytest.raises(IndexError, match="one_hot: class index -1 out of range \\[0, 10\\)"):
        _C.one_hot(np.array([3, -1]), np.empty((2, 10)))
    with pytest.raises(IndexError, match="one_hot: class index 10 out of range \\[0, 10\\)"):
        _C.one_hot(np.array([10]), np.empty((1, 10), np.int64))
    with pytest.raises(IndexError, match="class index 0 out of range \\[0, 0\\)"):
        _C.one_hot(np.array([0]), np.empty((1, 0)))
    with pytest.raises(ValueError, match="one_hot: out \\(2, 10\\) must be index shape \\(3,\\)"):
        _C.one_hot(np.array([0, 1, 2]), np.empty((2, 10)))
    with pytest.raises(TypeError, match="one_hot: indices must be int64 or int32, got float64"):
        _C.one_hot(np.array([0.0]), np.empty((1, 10)))


# ---------------------------------------------------------------- properties
shapes = st.lists(st.integers(0, 5), min_size=1, max_size=4)


@given(shape=shapes, data=st.data())
def test_prop_gather_matches_take_along_axis(shape, data):
    dim = data.draw(st.integers(0, len(shape) - 1))
    kind = data.draw(st.sampled_from(LAYOUTS))
    x = layout(values(shape, np.float64), kind)
    ishape = [data.draw(st.integers(0, s)) for s in shape]
    ishape[dim] = data.draw(st.integers(0, 6)) if shape[dim] else 0
    index = layout(rng.integers(0, max(shape[dim], 1), ishape), kind)
    out = np.empty(ishape)
    _C.gather(x, dim, index, out)
    assert_same(out, gather_ref(x, dim, index))


@given(shape=shapes, data=st.data())
def test_prop_index_gather_and_put(shape, data):
    k = data.draw(st.integers(1, len(shape)))
    kind = data.draw(st.sampled_from(LAYOUTS))
    bshape = tuple(data.draw(st.lists(st.integers(0, 4), max_size=2)))
    x = layout(values(shape, np.int64), kind)
    if any(shape[j] == 0 for j in range(k)) and np.prod(bshape) > 0:
        return
    idx = [layout(rng.integers(-shape[j], max(shape[j], 1), bshape), kind) for j in range(k)]
    want = x[tuple(idx)]
    out = np.empty(want.shape, np.int64)
    _C.index_gather(x, idx, out)
    assert_same(out, want)
    src = values(want.shape, np.int64)
    ref = np.array(x)
    np.add.at(ref, tuple(idx), src)
    _C.index_put(x, idx, layout(src, kind), True)
    assert_same(np.ascontiguousarray(x), ref)


@given(shape=shapes, data=st.data())
def test_prop_sort(shape, data):
    dim = data.draw(st.integers(0, len(shape) - 1))
    descending = data.draw(st.booleans())
    x = sort_input(tuple(shape), np.float32, data.draw(st.sampled_from(LAYOUTS)))
    vals = np.empty(x.shape, np.float32)
    idx = np.empty(x.shape, np.int64)
    _C.sort(x, dim, descending, vals, idx)
    want_v, want_i = sort_ref(x, dim, descending)
    assert_same(vals, want_v)
    assert_same(idx, want_i)
