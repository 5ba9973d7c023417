"""The vectorizable float32 exp, log, log1p, tanh, erf and gelu (csrc/elementwise_math.h) against
float64 references, over their whole range, on every instruction-set copy of the kernels."""
import math

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


def test_exp_is_within_one_ulp():
    rng = np.random.default_rng(1)
    x = np.concatenate([np.linspace(-87, 88, 1_000_003),
                        rng.uniform(-87, 88, 1_000_000)]).astype(np.float32)
    got, want = unary("exp", x), np.exp(x.astype(np.float64))
    ulps = np.abs(got - want) / np.spacing(want.astype(np.float32))
    assert ulps.max() <= 1.0, x[np.argmax(ulps)]


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


_erfc64 = np.vectorize(math.erfc, otypes=[np.float64])
_erf64 = np.vectorize(math.erf, otypes=[np.float64])


def assert_within_ulps(got, want, ulps):
    """|got - want| at most `ulps` steps of float32 at want (denormal steps below tiny)."""
    step = np.spacing(np.abs(want.astype(np.float32)))
    err = np.abs(got.astype(np.float64) - want) / step
    assert err.max() <= ulps, f"{err.max():.1f} ulp at x index {err.argmax()}"


def test_erf_is_accurate_near_zero_and_saturates():
    x = np.concatenate([np.linspace(-6, 6, 300_001), np.geomspace(1e-30, 0.6, 2001),
                        -np.geomspace(1e-30, 0.6, 2001)]).astype(np.float32)
    assert_within_ulps(unary("erf", x), _erf64(x.astype(np.float64)), 3)
    special = unary("erf", np.array([np.nan, np.inf, -np.inf, -0.0, 0.5, -0.5], np.float32))
    assert np.isnan(special[0]) and special[1] == 1 and special[2] == -1
    assert special[3] == 0 and np.signbit(special[3])
    np.testing.assert_allclose(special[4:], [math.erf(0.5), -math.erf(0.5)], rtol=2e-7)


def test_gelu_is_accurate_into_the_far_negative_tail():
    """gelu(x) = x/2 erfc(-x/sqrt2) down to where it underflows (x = -14.5).  The reference
    takes the same float32 z = -x/sqrt2 (its rounding alone moves erfc by up to 2 z^2
    float32 steps, 190 ulp at x = -12.6), so what is measured is the erfc and the products:
    the exponent of e^-z^2 is carried in two parts, or this tail would be off by 1e-5."""
    x = np.linspace(-15, 8, 600_001).astype(np.float32)
    z = (-x * np.float32(1 / math.sqrt(2))).astype(np.float64)
    erfc = _erfc64(z)
    want = 0.5 * x.astype(np.float64) * erfc
    got = unary("gelu", x)
    normal = erfc >= np.finfo(np.float32).tiny  # below it erfc has fewer bits, then x/2 times
    assert_within_ulps(got[normal], want[normal], 8)
    np.testing.assert_allclose(got[~normal], want[~normal], rtol=1e-6, atol=3e-44)
    special = unary("gelu", np.array([np.nan, np.inf, -30.0, -0.0, 30.0], np.float32))
    assert np.isnan(special[0]) and special[1] == np.inf and special[2] == 0
    assert special[3] == 0 and np.signbit(special[3]) and special[4] == 30


def test_vector_gelu_equals_the_scalar_gelu():
    """Contiguous floats go 16 at a time through gelu16 (its exponential by exp16), a
    strided view through the scalar gelu: the same bits, tails and specials included."""
    rng = np.random.default_rng(2)
    for n in (1, 15, 16, 17, 100, 4099):
        x = (rng.standard_normal(n) * 6).astype(np.float32)
        x[rng.integers(0, n)] = [np.nan, np.inf, -np.inf, -13.5, -30.0, 1e30][n % 6]
        strided = np.empty(2 * n, np.float32)
        strided[::2] = x
        got, want = unary("gelu", x), unary("gelu", strided[::2])
        np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32), err_msg=f"n={n}")


def test_log_is_accurate_over_every_positive_float():
    """Every 997th positive float bit pattern, subnormals included, and the specials."""
    x = np.arange(1, 0x7f800000, 997, dtype=np.int32).view(np.float32)
    assert_within_ulps(unary("log", x), np.log(x.astype(np.float64)), 1)
    special = unary("log", np.array([0.0, -0.0, -1.0, np.inf, -np.inf, np.nan, 1.0],
                                    np.float32))
    assert special[0] == special[1] == -np.inf and np.isnan(special[[2, 4, 5]]).all()
    assert special[3] == np.inf and special[6] == 0


def test_log1p_is_accurate_near_zero_and_far_from_it():
    tiny = np.geomspace(1e-38, 0.5, 20_001)
    x = np.concatenate([np.linspace(-0.999, 10, 300_001), tiny, -tiny,
                        np.geomspace(10, 3e38, 2001)]).astype(np.float32)
    assert_within_ulps(unary("log1p", x), np.log1p(x.astype(np.float64)), 3)
    special = unary("log1p", np.array([-1.0, -2.0, np.inf, np.nan, -0.0], np.float32))
    assert special[0] == -np.inf and np.isnan(special[[1, 3]]).all() and special[2] == np.inf
    assert special[4] == 0 and np.signbit(special[4])
