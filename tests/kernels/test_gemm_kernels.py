"""The packed GEMM (csrc/gemm.cpp) against a float64 numpy product.

gemm.cpp is compiled once per instruction set; every case runs on each copy the
processor supports and on 1 and 2 threads (conftest.py).  The sizes straddle the
micro-tile (MR rows x NR columns: 14 x 32 floats with AVX-512, 6 x 16 with AVX2),
the blocks of the vectorized packing (16 deep with AVX-512, 8 with AVX2) and the
KC = 256 depth block, and the operands come in every memory layout the packing reads
(row-major, transposed, stepped, negative strides, broadcast batches).
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from genesis import _C
from arrays import ends_at_guard_page, layout

pytestmark = pytest.mark.usefixtures("isa")
LAYOUTS = ["contig", "fortran", "step", "neg"]
rng = np.random.default_rng(3)


def check(a, b, accumulate=False):
    out = rng.standard_normal(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) +
                              (a.shape[-2], b.shape[-1])).astype(a.dtype)
    want = np.matmul(a.astype(np.float64), b.astype(np.float64))
    if accumulate:
        want = want + out
    _C.matmul(a, b, out, accumulate)
    # float32: each dot product rounds K times; scale the tolerance with K and magnitudes.
    k = a.shape[-1]
    tol = (3e-6 if a.dtype == np.float32 else 1e-14) * np.sqrt(max(k, 1)) * 4
    np.testing.assert_allclose(out, want, rtol=tol, atol=tol * np.sqrt(max(k, 1)))


def operand(shape, dtype, kind):
    return layout(rng.standard_normal(shape).astype(dtype), kind)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("m,k,n", [
    (1, 1, 1), (2, 3, 5), (13, 17, 31), (14, 16, 32), (15, 33, 33), (29, 7, 65),
    (64, 128, 512), (70, 255, 47), (28, 256, 64), (31, 257, 97), (97, 513, 10),
    (128, 256, 10), (10, 300, 128), (337, 40, 70),
    # several blocks of B's columns (512 or 4096 per block, by the L2's size), of A's
    # rows (MC = 336) and of depth (KC = 256) at once
    (340, 300, 1037), (3, 5, 4100), (17, 260, 4133),
], ids=lambda v: str(v))
def test_shapes_against_numpy(dtype, m, k, n):
    check(operand((m, k), dtype, "contig"), operand((k, n), dtype, "contig"))


@pytest.mark.parametrize("m,k,n", [(40, 300, 1037), (40, 300, 4133)], ids=lambda v: str(v))
def test_threads_packing_their_own_panels_again_and_again(m, k, n):
    """Threads split over columns pack their own panels of B and do not wait for each
    other between depth slices (a shorter last one here) or before a narrower last block
    of columns; a panel written where another thread still reads would show in a few
    of these repeats."""
    a, b = operand((m, k), np.float64, "contig"), operand((k, n), np.float64, "contig")
    for _ in range(30):
        check(a, b)


@pytest.mark.parametrize("kind_a", LAYOUTS)
@pytest.mark.parametrize("kind_b", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_every_operand_layout(kind_a, kind_b, dtype):
    check(operand((45, 271), dtype, kind_a), operand((271, 37), dtype, kind_b))


@pytest.mark.parametrize("n", range(1, 34))
def test_transposed_b_every_panel_width(n):
    """A transposed B is packed through register transposes, rows in blocks of 8 or 16:
    every count of columns (and of rows of A) left in a panel, with a depth that leaves a
    tail of each block."""
    check(operand((7, 43), np.float32, "contig"), operand((n, 43), np.float32, "contig").T)
    check(operand((n, 43), np.float32, "contig"), operand((43, 5), np.float32, "contig"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("n", [10, 64, 129, 300, 600], ids=lambda v: f"n{v}")
def test_row_major_a_with_gaps_every_row_tail(dtype, n):
    """With few panels of B per thread (n up to 256, or 512 on two threads) a row-major A
    is read in place, rows lda apart, and every height of the last panel of rows is
    computed by a kernel of that height straight into C; n = 600 (and 300 on one thread)
    packs A instead.  Rows here lie further apart than they are long, and k = 300 crosses
    a depth block."""
    for m in range(1, 30):
        for k in (7, 300):
            a = operand((m, k + 5), dtype, "contig")[:, 2:k + 2]
            check(a, operand((k, n), dtype, "contig"))


@pytest.mark.parametrize("kind_a", LAYOUTS)
@pytest.mark.parametrize("n", [48, 600], ids=lambda v: f"n{v}")
def test_deep_blocks_end_in_two_shorter_panels(kind_a, n):
    """With a depth of 64 or more, a block of rows that would end in a panel of 1-3 rows
    ends in two shorter ones instead (MR + 2 rows as 4 + 4): every such height, with AVX2's
    MR = 6 and AVX-512's 14, alone and after a whole block of rows (MC = 144 or 336), in
    every layout of A that packing reads (n = 600; a row-major A is read in place with
    n = 48)."""
    for m in (7, 8, 9, 15, 16, 17, 152, 351):
        check(operand((m, 70), np.float32, kind_a), operand((70, n), np.float32, "contig"))
    check(operand((8, 300), np.float64, kind_a), operand((300, n), np.float64, "contig"))


def test_a_read_in_place_stays_inside_its_rows():
    """A ends where a page that may not be read begins: a kernel that read a row past a
    short last panel (5 or 13 rows; 8 and 16 rows deep enough to end in 4 + 4) would
    fault here."""
    for m, k in ((5, 40), (13, 24), (8, 64), (16, 64)):
        with ends_at_guard_page(m * k * 4) as mem:
            a = mem.view(np.float32).reshape(m, k)
            a[...] = operand((m, k), np.float32, "contig")
            check(a, operand((k, 48), np.float32, "contig"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_transposed_operands_of_a_linear_layer(dtype):
    """X·Wᵀ, dY·W and dYᵀ·X: the layouts a Linear layer's forward and backward use."""
    x, w, dy = (operand(s, dtype, "contig") for s in ((67, 300), (45, 300), (67, 45)))
    check(x, w.T)
    check(dy, w)
    check(dy.T, x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_accumulate_adds_to_out(dtype):
    check(operand((33, 300), dtype, "contig"), operand((300, 50), dtype, "fortran"), True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_batches_with_broadcast_operand(dtype):
    a = operand((5, 19, 40), dtype, "contig")
    b = np.broadcast_to(operand((40, 23), dtype, "contig"), (5, 40, 23))
    check(a, b)
    check(operand((3, 2, 30, 20), dtype, "step"), operand((3, 2, 20, 50), dtype, "neg"))


def test_zero_depth_writes_zeros_or_keeps_out():
    a, b = np.zeros((4, 0), np.float32), np.zeros((0, 6), np.float32)
    out = np.full((4, 6), 7, np.float32)
    _C.matmul(a, b, out, True)
    assert (out == 7).all()
    _C.matmul(a, b, out, False)
    assert (out == 0).all()


@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 80), k=st.integers(1, 300), n=st.integers(1, 80),
       kinds=st.tuples(st.sampled_from(LAYOUTS), st.sampled_from(LAYOUTS)))
def test_random_shapes_and_layouts(m, k, n, kinds):
    check(operand((m, k), np.float32, kinds[0]), operand((k, n), np.float32, kinds[1]))
