"""The vectorizable float32 exp and tanh (csrc/elementwise_math.h) against float64 numpy,
over their whole range, on every instruction-set copy of the kernels."""
import numpy as np
import pytest

from genesis import _C

pytestmark = pytest.mark.usefixtures("isa")


def unary(op, x):
    out = np.empty_like(x)
    _C.unary(_C.UNARY_OPS[op], x, out, 0.0, 0.0)
    return out


def test_exp_is_accurate_from_underflow_to_overflow():
    x = np.linspace(-110, 95, 400_003).astype(np.float32)  # odd length: a vector tail
    got, want = unary("exp", x), np.exp(x.astype(np.float64))
    normal = (want > np.finfo(np.float32).tiny) & (want < np.finfo(np.float32).max)
    rel = np.abs(got[normal] - want[normal]) / want[normal]
    assert rel.max() < 3e-7  # about 2 ulp
    assert (got[want >= np.finfo(np.float32).max] == np.inf).all()
    assert (got[want < 1e-46] == 0).all()
    subnormal = (want > 1e-44) & (want < np.finfo(np.float32).tiny)
    np.testing.assert_allclose(got[subnormal], want[subnormal], rtol=0, atol=3e-45)  # 2 steps


def test_exp_special_values():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 88.72, -87.33], np.float32)
    got = unary("exp", x)
    assert np.isnan(got[0]) and got[1] == np.inf and got[2] == 0 and got[3] == got[4] == 1
    np.testing.assert_allclose(got[5:], np.exp(x[5:].astype(np.float64)), rtol=3e-7)


def test_tanh_is_accurate_near_zero_and_saturates():
    x = np.concatenate([np.linspace(-12, 12, 200_001), np.geomspace(1e-30, 0.7, 1001),
                        -np.geomspace(1e-30, 0.7, 1001)]).astype(np.float32)
    got, want = unary("tanh", x), np.tanh(x.astype(np.float64))
    rel = np.abs(got - want) / np.maximum(np.abs(want), 1e-38)
    assert rel.max() < 5e-7
    special = unary("tanh", np.array([np.nan, np.inf, -np.inf, -0.0], np.float32))
    assert np.isnan(special[0]) and special[1] == 1 and special[2] == -1
    assert special[3] == 0 and np.signbit(special[3])


def test_vector_exp_equals_the_scalar_exp_at_every_tail_length():
    """Contiguous floats go through the 16-lane exp (full vectors, then a partial one);
    a strided view through the scalar exp: the two agree to the bit."""
    rng = np.random.default_rng(0)
    for n in range(1, 50):
        x = (rng.standard_normal(n) * 40).astype(np.float32)
        x[rng.integers(0, n)] = [np.nan, np.inf, -np.inf, 1e30, -1e30, 88.9][n % 6]
        strided = np.empty(2 * n, np.float32)
        strided[::2] = x
        got, want = unary("exp", x), unary("exp", strided[::2])
        np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32), err_msg=f"n={n}")


def test_vector_exp_equals_the_scalar_exp_inside_and_at_the_edges_of_the_normal_range():
    """AVX2 takes a cheaper path when all 16 lanes lie in [-87, 87]: vectors wholly inside
    it, and vectors with one lane just outside it (or NaN) at each position, agree with
    the scalar exp to the bit."""
    rng = np.random.default_rng(1)
    inside = rng.uniform(-87, 87, 16 * 64 + 7).astype(np.float32)
    inside[:4] = [87.0, -87.0, np.nextafter(np.float32(87), np.float32(0)), 0.0]
    # NaNs with payload bits where the cheaper path's integer exponent add would reach
    nan_payload = np.array([0x7fc001ff, -0x3ffffedd], np.int32).view(np.float32)
    edges = [np.nextafter(np.float32(87), np.float32(100)),
             np.nextafter(np.float32(-87), np.float32(-100)), np.nan, *nan_payload, -np.inf,
             -88.0, 88.5]
    for edge in edges:
        for lane in range(16):
            x = inside.copy()
            x[16 + lane] = edge
            strided = np.empty(2 * x.size, np.float32)
            strided[::2] = x
            got, want = unary("exp", x), unary("exp", strided[::2])
            np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32),
                                          err_msg=f"edge={edge} lane={lane}")


def test_vector_exp_equals_the_scalar_exp_across_the_normal_range():
    """Every 997th float of [-87, 87], through the cheaper path, against the scalar exp."""
    magnitudes = np.arange(0, np.float32(87).view(np.int32) + 1, 997, dtype=np.int32)
    x = np.concatenate([magnitudes.view(np.float32), -magnitudes.view(np.float32)])
    strided = np.empty(2 * x.size, np.float32)
    strided[::2] = x
    got, want = unary("exp", x), unary("exp", strided[::2])
    np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))
