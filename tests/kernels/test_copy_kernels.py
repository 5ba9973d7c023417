"""copy (csrc/elementwise.cpp) from transposed and permuted sources, which it copies in
tiles (kTileI output rows by kTileJ columns): sizes below, at and past the tile edges,
rows a power of two apart, every element size, outer dims, strided and reversed views."""
import itertools

import numpy as np
import pytest

from arrays import values

pytestmark = pytest.mark.usefixtures("isa")


def copied(src, out=None):
    from genesis import _C
    out = np.empty(src.shape, src.dtype) if out is None else out
    _C.copy(src, out)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.bool_])
@pytest.mark.parametrize("rows, cols", [(7, 9), (8, 8), (9, 300), (300, 257), (256, 1024),
                                        (1, 40), (40, 1), (1024, 9)])
def test_transpose_copies_exactly(rows, cols, dtype):
    x = values((rows, cols), dtype)
    np.testing.assert_array_equal(copied(x.T), x.T)


@pytest.mark.parametrize("perm", list(itertools.permutations(range(4))))
def test_every_permutation_of_four_dims(perm):
    x = values((3, 5, 17, 260), np.float32)
    np.testing.assert_array_equal(copied(x.transpose(perm)), x.transpose(perm))


def test_strided_reversed_sources_and_strided_outputs():
    x = values((70, 600), np.float32)
    src = x[::-1, ::2].T  # source contiguous along neither axis: the plain loop
    np.testing.assert_array_equal(copied(src), src)
    src = x[::-1].T  # rows reversed: contiguous along the output's first axis
    np.testing.assert_array_equal(copied(src), src)
    big = np.zeros((600, 2 * 70 + 1), np.float32)
    out = big[:, 1::2]  # output rows 141 floats apart, columns 2 apart
    copied(x.T, out)
    np.testing.assert_array_equal(out, x.T)
    assert (big[:, ::2] == 0).all()
