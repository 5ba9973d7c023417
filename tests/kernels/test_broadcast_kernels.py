"""binary and where broadcast their inputs to the output's shape inside genesis._C."""
import numpy as np
import pytest

from genesis import _C

_B = _C.BINARY_OPS


@pytest.mark.parametrize("a_shape, b_shape", [
    ((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1)), ((5,), ()), ((), (2, 2)),
    ((1, 7, 1), (6, 1, 5)), ((0, 3), (3,)), ((4, 1), (4, 0))])
def test_binary_broadcasts_like_numpy(a_shape, b_shape):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32)
    want = a - b
    out = np.empty(want.shape, np.float32)
    _C.binary(_B["sub"], a, b, out)
    np.testing.assert_array_equal(out, want)


def test_binary_broadcasts_strided_inputs_in_place():
    a = np.arange(24, dtype=np.float64).reshape(4, 6)
    b = np.arange(12, dtype=np.float64)[::2]  # stride 2
    want = a * b
    _C.binary(_B["mul"], a, b, a)
    np.testing.assert_array_equal(a, want)


def test_where_broadcasts_all_three_inputs():
    cond = np.array([[True], [False], [True]])
    a = np.arange(4, dtype=np.float32)
    b = np.float32(-1.0) * np.ones((1, 4), np.float32)
    out = np.empty((3, 4), np.float32)
    _C.where(cond, a, b, out)
    np.testing.assert_array_equal(out, np.where(cond, a, b))


@pytest.mark.parametrize("a_shape, b_shape, out_shape", [
    ((3, 4), (3,), (3, 4)), ((2, 3), (2, 3), (3,)), ((2, 3), (2, 3), ()),
    ((4,), (4,), (2, 3))])
def test_shapes_that_do_not_broadcast_to_the_output_raise(a_shape, b_shape, out_shape):
    a, b = np.ones(a_shape, np.float32), np.ones(b_shape, np.float32)
    out = np.empty(out_shape, np.float32)
    with pytest.raises(ValueError, match="does not broadcast to the output's shape"):
        _C.binary(_B["add"], a, b, out)
    with pytest.raises(ValueError, match="where: an operand of shape"):
        _C.where(np.ones(a_shape, bool), a, b, out)
