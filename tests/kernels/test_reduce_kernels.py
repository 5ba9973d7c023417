"""Reduction, scan and softmax kernels (csrc/reduce.cpp) against numpy.

reduce.cpp is compiled once per instruction set: every test runs on each copy
the processor supports, on 1 and 2 threads (conftest.py), with sizes that take
the row, column and split-reduction paths, vector tails and odd layouts.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from genesis import _C
from arrays import ends_at_guard_page, layout, values

LAYOUTS = ["contig", "fortran", "step", "neg"]
OPS = _C.REDUCE_OPS


pytestmark = pytest.mark.usefixtures("isa")


def reduce(op, x, dims, out_dtype=None):
    kept = [1 if d in dims else s for d, s in enumerate(x.shape)]
    out = np.empty(kept, out_dtype or x.dtype)
    _C.reduce(OPS[op], x, out)
    return out


NP = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min}


def check(op, x, dims, out_dtype=None):
    got = reduce(op, x, dims, out_dtype)
    ref_in = x.astype(np.float64) if x.dtype.kind == "f" else x.astype(np.int64) \
        if op in ("sum", "prod") else x
    want = NP[op](ref_in, axis=tuple(dims), keepdims=True)
    if x.dtype.kind == "f":
        rtol = 1e-5 if x.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.sqrt(x.size + 1))
    else:
        np.testing.assert_array_equal(got, want.astype(got.dtype))


# Shapes chosen for the paths: long rows (split across threads), many short
# rows, columns (inner dim kept), a few wide columns, prime sizes.
SHAPES_DIMS = [
    ((100003,), (0,)),
    ((37, 4099), (1,)),
    ((4099, 37), (0,)),
    ((65537, 3), (0,)),
    ((3, 65537), (0,)),
    ((7, 11, 13), (0, 2)),
    ((5, 2000, 17), (1,)),
    ((300, 301), (0, 1)),
    ((1, 1, 1), (0, 1, 2)),
    ((17,), ()),
]


@pytest.mark.parametrize("shape,dims", SHAPES_DIMS)
@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("op", ["sum", "max", "min"])
def test_reduce_matches_numpy(op, dtype, kind, shape, dims):
    x = layout(values(shape, dtype), kind)
    check(op, x, dims, np.int64 if op == "sum" and dtype == np.int32 else None)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("shape,dims", [((40000, 3), (0,)), ((3, 40000), (1,)), ((6, 7), (0, 1))])
def test_prod_matches_numpy(dtype, shape, dims):
    r = np.random.default_rng(1)
    x = (1 + 1e-5 * r.standard_normal(shape)).astype(dtype) if dtype != np.int64 else \
        r.choice(np.array([1, -1, 1, 1], np.int64), shape)
    check("prod", x, dims)


@given(data=st.data())
def test_reduce_random_shapes(data):
    shape = tuple(data.draw(st.lists(st.integers(0, 6), max_size=4)))
    dims = tuple(sorted(data.draw(st.sets(st.integers(0, max(len(shape) - 1, 0)),
                                          max_size=len(shape))))) if shape else ()
    kind = data.draw(st.sampled_from(LAYOUTS))
    x = layout(values(shape, np.float64), kind)
    check("sum", x, dims)
    if all(shape[d] for d in dims) and x.size:
        check("max", x, dims)


def test_bool_reductions_are_any_all_and_count():
    x = values((513, 7), np.bool_)
    np.testing.assert_array_equal(reduce("max", x, (0,)), x.any(0, keepdims=True))
    np.testing.assert_array_equal(reduce("min", x, (1,)), x.all(1, keepdims=True))
    np.testing.assert_array_equal(reduce("sum", x, (0, 1), np.int64), x.sum(keepdims=True))


def test_float32_sum_of_16m_elements_is_accurate():
    x = np.full(1 << 24, 0.1, np.float32)
    got = reduce("sum", x, (0,))[0]
    exact = (1 << 24) * np.float64(np.float32(0.1))
    assert abs(got - exact) < 1e-6 * exact  # a plain float32 loop is off by ~2 %


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_long_sums_read_as_four_streams_count_every_element_once(dtype):
    """Contiguous lines from 4 x 8192 elements (per thread) are summed as four parts read
    side by side, with a tail after the last part: lengths around that threshold and
    off the 16-lane width, ending where a page that may not be read begins."""
    item = np.dtype(dtype).itemsize
    rng = np.random.default_rng(3)
    for n in (32767, 32768, 32768 + 15, 65536 + 1, 5 * 32768 + 17, 131072 * 3 + 5):
        with ends_at_guard_page(n * item) as mem:
            x = mem.view(dtype)
            x[:] = rng.standard_normal(n) + 1.0
            x[rng.integers(0, n)] = 1e6  # one element that each part boundary must count
            got = reduce("sum", x, (0,))[0]
            want = np.sum(x.astype(np.float64))
            assert abs(got - want) <= 1e-6 * np.sum(np.abs(x.astype(np.float64))), n


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ["max", "min"])
def test_long_max_and_min_read_as_four_streams_see_every_element(op, dtype):
    """max and min of contiguous lines from 4 x 8192 elements (per thread) read four
    parts side by side and the tail after them: the extreme, or a NaN, placed in each
    part and in the tail is found, and nothing past the line's end is read."""
    item = np.dtype(dtype).itemsize
    rng = np.random.default_rng(5)
    big = 1e30 if op == "max" else -1e30
    for n in (32767, 32768, 32768 + 15, 65536 + 1, 5 * 32768 + 17):
        part = n // 4 // 16 * 16  # the parts a long line is read as
        for at in (0, part - 1, part, 3 * part + 1, n - 1):
            for special in (big, np.nan):
                with ends_at_guard_page(n * item) as mem:
                    x = mem.view(dtype)
                    x[:] = rng.standard_normal(n)
                    x[at] = special
                    got = reduce(op, x, (0,))[0]
                    if np.isnan(special):
                        assert np.isnan(got), (n, at)
                    else:
                        assert got == dtype(special), (n, at)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("row_len", [1, 15, 16, 1000, 4099, 32767])
def test_row_sums_read_side_by_side_match_each_row_alone(dtype, row_len):
    """Sums along the last dim take four rows at a time (read side by side), each summed
    in the order of a row alone: the same bits as the 1-d sum of that row, for rows
    grouped or not (10 rows: two groups and two left over on one thread; on two, each
    thread takes five whole rows, a group and one left over)."""
    rng = np.random.default_rng(row_len)
    x = (rng.standard_normal((10, row_len)) * 100 + 1).astype(dtype)
    got = reduce("sum", x, (1,))[:, 0]
    alone = np.array([reduce("sum", np.ascontiguousarray(r), (0,))[0] for r in x])
    np.testing.assert_array_equal(got, alone)
    check("sum", x, (1,))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("row_len", [1, 15, 16, 1000, 4099, 32767])
def test_row_extremes_read_side_by_side_match_each_row_alone(op, dtype, row_len):
    """max and min along the last dim take four rows at a time as sums do: the same bits
    (which zero) as the 1-d reduction of each row, a NaN in one row staying in it."""
    rng = np.random.default_rng(row_len)
    x = rng.standard_normal((10, row_len)).astype(dtype)
    x[3, :] = np.where(rng.random(row_len) < 0.5, -0.0, 0.0)  # only zeros of both signs
    x[6, row_len // 2] = np.nan
    got = reduce(op, x, (1,))[:, 0]
    alone = np.array([reduce(op, np.ascontiguousarray(r), (0,))[0] for r in x])
    np.testing.assert_array_equal(got.view(np.uint8), alone.view(np.uint8))
    assert np.isnan(got[6]) and np.isnan(got).sum() == 1
    check(op, np.delete(x, 6, axis=0), (1,))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
@pytest.mark.parametrize("shape", [(1, 5), (3, 7), (4, 33), (9, 2053), (4099, 4), (6, 4100)])
def test_column_reductions_combine_rows_four_at_a_time(shape, dtype):
    """Along a leading dim, rows are combined into the accumulators four at a time, then
    one by one: row counts below, at and past four, columns past one task's run of 2048;
    a NaN in the first row, inside a group of four and among the rows left over stays in
    its own column."""
    rng = np.random.default_rng(shape[0])
    x = values(shape, dtype, rng)
    for op in ("sum", "max", "min", "prod"):
        check(op, np.clip(x, -1.5, 1.5) if op == "prod" else x, (0,))
    if np.dtype(dtype).kind != "f":
        return
    rows, cols = shape
    at = {0: 0, 1: min(2, rows - 1), 2: rows - 1}  # column -> row of its NaN
    y = x.copy()
    for c, r in at.items():
        if c < cols:
            y[r, c] = np.nan
    for op in ("sum", "max", "min"):
        got = reduce(op, y, (0,))[0]
        nan_cols = [c for c in at if c < cols]
        assert np.isnan(got[nan_cols]).all() and not np.isnan(np.delete(got, nan_cols)).any()


def test_broadcast_input_counts_every_element():
    x = np.broadcast_to(np.arange(5.0), (1000, 5))
    np.testing.assert_allclose(reduce("sum", x, (0,)), 1000 * np.arange(5.0)[None])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("at", [0, 500, 999])
def test_nan_propagates_through_max_and_min(at, dtype):
    """A NaN first, in the vector loop's lanes or in its tail (1000 = 31 x 32 + 8)."""
    x = values((3, 1000), dtype)
    x[1, at] = np.nan
    for op in ("max", "min"):
        out = reduce(op, x, (1,))
        assert np.isnan(out[1, 0]) and not np.isnan(out[[0, 2], 0]).any()


def test_empty_reduction_gives_the_identity():
    x = np.empty((0, 4), np.float64)
    np.testing.assert_array_equal(reduce("sum", x, (0,)), np.zeros((1, 4)))
    np.testing.assert_array_equal(reduce("prod", x, (0,)), np.ones((1, 4)))
    b = np.empty((3, 0), np.bool_)  # all() of nothing is True, any() False
    np.testing.assert_array_equal(reduce("min", b, (1,)).view(np.uint8), np.ones((3, 1)))
    np.testing.assert_array_equal(reduce("max", b, (1,)).view(np.uint8), np.zeros((3, 1)))


def test_reduce_rejects_bad_outputs():
    x = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="keepdim shape"):
        _C.reduce(OPS["sum"], x, np.empty((3, 2), np.float32))
    with pytest.raises(TypeError, match="dtypes"):
        _C.reduce(OPS["sum"], x, np.empty((1, 4), np.float64))


# ---------------------------------------------------------------- along one dim
@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("shape,dim", [((50, 1001), 1), ((1001, 50), 0), ((4, 5, 6), 1),
                                       ((7,), 0)])
def test_reduce_arg_matches_numpy(shape, dim, dtype, kind):
    x = layout(values(shape, dtype), kind)
    kept = list(shape)
    kept[dim] = 1
    for is_max, fn, arg in ((True, np.max, np.argmax), (False, np.min, np.argmin)):
        v, i = np.empty(kept, dtype), np.empty(kept, np.int64)
        _C.reduce_arg(is_max, x, dim, v, i)
        np.testing.assert_array_equal(v, fn(x, axis=dim, keepdims=True))
        np.testing.assert_array_equal(i, arg(x, axis=dim, keepdims=True))


def test_reduce_arg_first_nan_wins():
    x = np.array([[1.0, np.nan, 3.0, np.nan]])
    v, i = np.empty((1, 1)), np.empty((1, 1), np.int64)
    _C.reduce_arg(True, x, 1, v, i)
    assert np.isnan(v[0, 0]) and i[0, 0] == 1


def arg_of_line(is_max, x):
    """(value, index) of reduce_arg over a 1-D line."""
    v, i = np.empty(1, x.dtype), np.empty(1, np.int64)
    _C.reduce_arg(is_max, x, 0, v, i)
    return v[0], int(i[0])


def check_arg_of_line(is_max, x):
    """A contiguous line (read in 16 KiB blocks by vector passes) against numpy's first
    index, and against the same values stepped, which the element-by-element loop reads:
    the same index and the same value, to the bit (which zero, which NaN)."""
    v, i = arg_of_line(is_max, x)
    assert i == (np.argmax if is_max else np.argmin)(x)
    stepped = layout(x, "step")
    assert arg_of_line(is_max, stepped)[1] == i
    assert np.array_equal(np.array([v]).view(np.uint8), x[i:i + 1].view(np.uint8))


BLOCK = {np.float32: 4096, np.float64: 2048, np.int32: 4096, np.int64: 2048, np.bool_: 16384}


@pytest.mark.parametrize("dtype", list(BLOCK))
@pytest.mark.parametrize("is_max", [True, False])
def test_reduce_arg_finds_the_first_extreme_across_blocks(is_max, dtype):
    """The best value placed at a block's first and last element, across block ends, in
    the vector tails, and again later (a tie: the first occurrence wins)."""
    block = BLOCK[dtype]
    for n in (1, 31, 33, 65, block - 1, block + 1, 3 * block + 37):
        base = values(n, dtype)
        if dtype == np.bool_:
            base[:] = not is_max
            best = is_max
        else:
            base = np.clip(base, -40, 40)
            best = 99 if is_max else -99
        for at in sorted({0, n - 1, n // 2, min(block - 1, n - 1), min(block, n - 1),
                          min(block + 31, n - 1)}):
            x = base.copy()
            x[at] = best
            check_arg_of_line(is_max, x)
            x[at + 1 + (n - at) // 2:] = best  # ties after it
            check_arg_of_line(is_max, x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("is_max", [True, False])
def test_reduce_arg_first_nan_wins_across_blocks(is_max, dtype):
    n = 3 * BLOCK[dtype] + 5
    x = values(n, dtype)
    best = 99 if is_max else -99
    for nans, at in (([n - 1], 10), ([9000 % n, n - 2], 10), ([5, 6000 % n], n - 3),
                     ([BLOCK[dtype]], 0)):
        y = x.copy()
        y[at] = best
        y[nans] = np.nan
        v, i = arg_of_line(is_max, y)
        assert np.isnan(v) and i == min(nans) == (np.argmax if is_max else np.argmin)(y)
        check_arg_of_line(is_max, y)


@pytest.mark.parametrize("is_max", [True, False])
def test_reduce_arg_keeps_the_first_of_two_zeros(is_max):
    """-0 and +0 compare equal: the first one is the extreme, with its own sign."""
    n = 3 * BLOCK[np.float32] + 5
    sign = -1 if is_max else 1  # every other value below (above) zero
    for first, later, at in ((-0.0, 0.0, 4100), (0.0, -0.0, 4100), (-0.0, 0.0, 3),
                             (0.0, -0.0, n - 2)):
        x = sign * (1 + np.abs(values(n, np.float32)))
        x[at], x[-1] = first, later
        check_arg_of_line(is_max, x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("is_max", [True, False])
@pytest.mark.parametrize("row_len", [1, 7, 8, 9, 33, 1000])
def test_reduce_arg_of_rows_read_side_by_side_matches_each_row_alone(is_max, dtype, row_len):
    """Contiguous rows of one block are read four at a time, each lane keeping where it
    first saw its best value.  Per row: the best value at each lane and in the tail (past
    the last whole vector), ties after it, two zeros of either sign first and NaNs
    (floats); 11 rows make two groups and three left over (on two threads, a group and
    one or two left over each).  Each row gives the same index and value as alone."""
    rng = np.random.default_rng(row_len)
    best = 99 if is_max else -99
    floats = np.dtype(dtype).kind == "f"
    for at in sorted({0, 1, row_len // 2, row_len - 2, row_len - 1} & set(range(row_len))):
        x = np.clip(values((11, row_len), dtype, rng), -40, 40)
        x[0, at] = best
        x[1, at] = x[1, -1] = best  # a tie
        x[2, at:] = best
        x[4, rng.integers(0, row_len)] = best
        if floats:
            x[5, :] = (1 if is_max else -1) * -np.abs(x[5, :])
            x[5, at], x[5, -1] = -0.0, 0.0  # -0 first: it is the extreme
            x[6, at], x[6, -1] = np.nan, best
            x[7, -1] = np.nan
            x[8, at], x[8, 0] = best, np.nan
        kept = (11, 1)
        v, i = np.empty(kept, dtype), np.empty(kept, np.int64)
        _C.reduce_arg(is_max, x, 1, v, i)
        np.testing.assert_array_equal(i[:, 0], (np.argmax if is_max else np.argmin)(x, axis=1))
        for r in range(11):
            rv, ri = arg_of_line(is_max, layout(x[r], "step"))  # the element-by-element loop
            assert ri == i[r, 0], (r, at)
            assert np.array_equal(np.array([rv]).view(np.uint8), v[r].view(np.uint8)), (r, at)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("is_max", [True, False])
def test_reduce_arg_of_rows_side_by_side_finds_the_first_of_two_equal_bests(is_max, dtype):
    """Rows read side by side keep, per lane, the first block of registers that reached
    the lane's best, and search only the earliest such block: two equal bests at any two
    positions (the same block or not, the same lane or not, one in the tail past the last
    whole block) give the first of them."""
    row_len = 150  # blocks of 32 (4-byte types) or 16 (8-byte), then a tail
    best = 99 if is_max else -99
    rng = np.random.default_rng(5)
    positions = [0, 1, 7, 8, 15, 16, 31, 33, 40, 63, 64, 100, 127, 128, 140, 149]
    pairs = [(p, q) for p in positions for q in positions if p < q]
    for g in range(0, len(pairs), 4):
        group = pairs[g:g + 4]
        x = np.clip(values((4, row_len), dtype, rng), -40, 40)
        for r, (p, q) in enumerate(group):
            x[r, p] = x[r, q] = best
        kept = (4, 1)
        v, i = np.empty(kept, dtype), np.empty(kept, np.int64)
        _C.reduce_arg(is_max, x, 1, v, i)
        for r, (p, q) in enumerate(group):
            assert i[r, 0] == p and v[r, 0] == best, (p, q)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.bool_])
@pytest.mark.parametrize("is_max", [True, False])
@pytest.mark.parametrize("shape", [(2, 5, 2), (1, 300, 63), (3, 40, 64), (2, 17, 65), (1, 9, 130),
                                   (2, 300, 130)])
def test_reduce_arg_along_a_leading_dim_matches_each_line_alone(is_max, dtype, shape):
    """Along a dim with more after it, blocks of neighbouring lines (256 bytes) advance
    together, each lane keeping its line's best value and where it first saw it: widths
    around a block's, the best first, last and tied, two zeros of either sign (the first
    wins) and NaNs (the first wins).  Each line gives the index and value (to the bit) of
    the element-by-element loop over it alone."""
    rng = np.random.default_rng(shape[2])
    outer, n, inner = shape
    if dtype == np.bool_:
        x = values(shape, dtype, rng)
    else:
        x = np.clip(values(shape, dtype, rng), -40, 40)
        best = 99 if is_max else -99
        x[:, 0, 0] = best
        x[:, -1, 1 % inner] = best
        if inner > 3:
            x[:, n // 2, 2] = x[:, n - 1, 2] = best  # a tie
        if np.dtype(dtype).kind == "f" and inner > 6:
            x[:, :, 3] = (1 if is_max else -1) * -np.abs(x[:, :, 3])
            x[:, n // 3, 3], x[:, -1, 3] = -0.0, 0.0
            x[:, n // 2, 4], x[:, -1, 4] = np.nan, best
            x[:, 0, 5] = np.nan
            x[:, 1, 6], x[:, -2, 6] = np.nan, np.nan
            x[:, -1, inner - 1] = np.nan
    kept = (outer, 1, inner)
    v, i = np.empty(kept, dtype), np.empty(kept, np.int64)
    _C.reduce_arg(is_max, x, 1, v, i)
    np.testing.assert_array_equal(i[:, 0], (np.argmax if is_max else np.argmin)(x, axis=1))
    for a in range(outer):
        for c in range(inner):
            lv, li = arg_of_line(is_max, x[a, :, c])  # a strided line: the element loop
            assert li == i[a, 0, c], (a, c)
            assert np.array_equal(np.array([lv]).view(np.uint8), v[a, 0, c:c + 1].view(np.uint8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reduce_arg_reads_nothing_past_the_line(dtype):
    """A line that ends where a page that may not be read begins, its best value or NaN
    last: the block pass and the search for the index stop at the line's end."""
    item = np.dtype(dtype).itemsize
    for n in (1000, BLOCK[dtype] + 7, 3 * BLOCK[dtype] + 1):
        with ends_at_guard_page(n * item) as mem:
            x = mem.view(dtype)
            for last in (99.0, -99.0, np.nan):
                x[:] = values(n, dtype)
                x[-1] = last
                for is_max in (True, False):
                    v, i = arg_of_line(is_max, x)
                    assert i == (np.argmax if is_max else np.argmin)(x)


@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("shape,dim", [((30, 2001), 1), ((2001, 30), 0), ((3, 4, 5), 2),
                                       ((40, 3, 130), 0), ((5, 40, 67), 1)])
def test_cumsum_matches_numpy(shape, dim, dtype, kind):
    """Contiguous lines with more dims after them advance 256 bytes of neighbouring lines
    together; the others go four lines side by side (30 lines: groups of four and lines
    left over, on either thread).  Each line is summed in order, in double for floats:
    numpy's sequential float64 cumsum to the bit."""
    x = layout(values(shape, dtype), kind)
    out = np.empty(shape, dtype)
    _C.cumsum(x, dim, out)
    line_by_line = np.empty(shape, dtype)
    _C.cumsum(layout(x, "step"), dim, line_by_line)
    np.testing.assert_array_equal(out, line_by_line)
    want = np.cumsum(x.astype(np.float64) if dtype != np.int64 else x, axis=dim)
    np.testing.assert_array_equal(out, want.astype(dtype))


def np_softmax(x, dim, log):
    x = x.astype(np.float64)
    z = x - x.max(axis=dim, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=dim, keepdims=True))
    return z - lse if log else np.exp(z - lse)


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,dim", [((64, 1027), 1), ((1027, 33), 0), ((3, 17, 5), 1),
                                       ((1, 16), 1), ((9,), 0)])
def test_softmax_and_backward_match_numpy(shape, dim, dtype, kind, log):
    x = layout(4 * values(shape, dtype), kind)
    y = np.empty(shape, dtype)
    _C.softmax(x, dim, log, y)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, np_softmax(x, dim, log), rtol=tol, atol=tol)
    g = layout(values(shape, dtype), kind)
    out = np.empty(shape, dtype)
    _C.softmax_backward(y, g, dim, log, out)
    y64, g64 = y.astype(np.float64), g.astype(np.float64)
    want = (g64 - np.exp(y64) * g64.sum(dim, keepdims=True)) if log else \
        y64 * (g64 - (g64 * y64).sum(dim, keepdims=True))
    np.testing.assert_allclose(out, want, rtol=10 * tol, atol=10 * tol)


def test_softmax_is_stable_for_huge_logits():
    x = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]], np.float32)
    y = np.empty_like(x)
    _C.softmax(x, 1, False, y)
    np.testing.assert_allclose(y, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    _C.softmax(x, 1, True, y)
    np.testing.assert_allclose(y[0], [0, -1e4, -2e4], rtol=1e-6)
    assert np.isfinite(y).all()


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,dim", [((2048, 70), 0), ((5, 37, 130), 1), ((3, 300, 2, 2), 1),
                                       ((2, 3), 0)])
def test_softmax_along_a_leading_dim_agrees_with_the_line_by_line_loop(shape, dim, dtype, log):
    """A contiguous softmax along a dim with more after it goes by blocks of neighbouring
    lines (64 floats or 32 doubles wide, then a narrower last block); a stepped copy of
    the same values goes line by line.  Lines hold a NaN, only -inf, and huge values; the
    two differ only by the order of the sum."""
    x = 4 * values(shape, dtype)
    lines = np.moveaxis(x, dim, 0)  # a view: lines[:, k] is one softmax line
    rest = lines.shape[1:]
    line = [(slice(None),) + np.unravel_index(k, rest) for k in range(3)]
    lines[line[0]][1] = np.nan
    lines[line[1]] = -np.inf
    lines[line[2]] *= 1e4
    y, want = np.empty(shape, dtype), np.empty(shape, dtype)
    _C.softmax(x, dim, log, y)
    _C.softmax(layout(x, "step"), dim, log, want)
    tol = 1e-5 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(y, want, rtol=tol, atol=tol)
    y_lines = np.moveaxis(y, dim, 0)
    assert np.isnan(y_lines[line[0]]).all() and np.isnan(y_lines[line[1]]).all()
    with np.errstate(invalid="ignore"):  # the NaN and -inf lines
        np.testing.assert_allclose(y, np_softmax(x, dim, log), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("shape", [(0, 5, 7), (3, 5, 0)])
def test_empty_arrays_along_a_leading_dim(shape):
    x = np.zeros(shape, np.float32)
    for run in (lambda y: _C.softmax(x, 1, False, y), lambda y: _C.cumsum(x, 1, y)):
        y = np.empty(shape, np.float32)
        run(y)
        assert y.shape == shape


def test_softmax_rejects_integers_and_mismatched_outputs():
    with pytest.raises(TypeError, match="float32 or float64"):
        _C.softmax(np.ones((2, 3), np.int64), 1, False, np.empty((2, 3), np.int64))
    with pytest.raises(ValueError, match="does not match"):
        _C.softmax(np.ones((2, 3)), 1, False, np.empty((3, 2)))
    with pytest.raises(IndexError, match="dim 2 out of range"):
        _C.softmax(np.ones((2, 3)), 2, False, np.empty((2, 3)))
