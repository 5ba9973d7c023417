"""Outputs at least `_C.stream_min_bytes()` large (the last-level cache) are written with
non-temporal stores: exp and the other vector-form unary ops, the cheap float32 unary and
binary ops (lane by lane through their scalar forms), same-dtype copies,
float32 softmax / log_softmax and float32 layer norm.  Here the threshold is lowered to 0 so that small arrays
take that path, at every length around the 64-byte lines and at every misalignment, and
the results must equal the cached path's to the bit."""
import numpy as np
import pytest

from genesis import _C

pytestmark = pytest.mark.usefixtures("isa")


def run_both(kernel):
    """kernel() with the normal threshold, then with every output streamed."""
    before = _C.stream_min_bytes()
    cached = kernel()
    _C.set_stream_min_bytes(0)
    try:
        streamed = kernel()
    finally:
        _C.set_stream_min_bytes(before)
    return cached, streamed


def shifted(a, offset):
    """A copy of a that starts `offset` elements past a 64-byte line."""
    buf = np.empty(a.size + 64 // a.itemsize + offset, a.dtype)
    start = (-buf.ctypes.data % 64) // a.itemsize + offset
    out = buf[start:start + a.size].reshape(a.shape)
    out[...] = a
    return out


SPECIALS = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 2.5, -2.5], np.float32)


@pytest.mark.parametrize("op, p0, p1", [("exp", 0, 0), ("relu", 0, 0), ("neg", 0, 0),
                                        ("abs", 0, 0), ("sqrt", 0, 0), ("rsqrt", 0, 0),
                                        ("reciprocal", 0, 0), ("square", 0, 0), ("sign", 0, 0),
                                        ("floor", 0, 0), ("ceil", 0, 0), ("round", 0, 0),
                                        ("trunc", 0, 0), ("clamp", -1.5, 2.0),
                                        ("leaky_relu", 0.01, 0)])
@pytest.mark.parametrize("offset", [0, 1, 7, 15])
def test_streamed_unary_equals_cached(offset, op, p0, p1):
    rng = np.random.default_rng(offset)
    for n in [1, 15, 16, 17, 31, 33, 64, 100, 1000]:
        x = (rng.standard_normal(n) * 30).astype(np.float32)
        x[:min(n, 8)] = SPECIALS[:min(n, 8)]

        def kernel():
            out = shifted(np.zeros(n, np.float32), offset)
            _C.unary(_C.UNARY_OPS[op], x, out, p0, p1)
            return out.copy()

        cached, streamed = run_both(kernel)
        np.testing.assert_array_equal(streamed.view(np.int32), cached.view(np.int32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32, np.bool_])
@pytest.mark.parametrize("offset", [0, 1, 3])
def test_streamed_copy_equals_source(dtype, offset):
    rng = np.random.default_rng(1)
    for n in [0, 1, 5, 16, 63, 64, 65, 257, 5000]:
        src = (rng.standard_normal(n) * 100).astype(dtype)

        def kernel():
            out = shifted(np.zeros(n, dtype), offset)
            _C.copy(src, out)
            return out.copy()

        cached, streamed = run_both(kernel)
        np.testing.assert_array_equal(cached, src)
        np.testing.assert_array_equal(streamed, src)
    strided = (np.arange(40) % 7).astype(dtype)[::3]  # a strided source row: lane by lane
    out = np.empty_like(strided)
    run_both(lambda: _C.copy(strided, out))
    np.testing.assert_array_equal(out, strided)


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("shape, dim", [((6, 1027), 1), ((3, 16), 1), ((5, 7), 1), ((33, 9), 0),
                                        ((1, 300), 1), ((41, 513), 1), ((2, 3, 260), 2)])
def test_streamed_softmax_equals_cached(shape, dim, log):
    """Contiguous rows stream out one row behind the exps of the next (pipelined); the
    shapes give one row, rows over several blocks of the pass, and a row of -inf."""
    x = (np.random.default_rng(2).standard_normal(shape) * 5).astype(np.float32)
    x.reshape(-1, shape[-1])[0, 0] = np.nan
    if x.shape[0] > 2:
        x[2] = -np.inf

    def kernel():
        out = shifted(np.zeros(shape, np.float32), 1)
        _C.softmax(x, dim, log, out)
        return out.copy()

    cached, streamed = run_both(kernel)
    np.testing.assert_array_equal(streamed.view(np.int32), cached.view(np.int32))


def test_stream_threshold_rejects_negative_sizes():
    with pytest.raises(ValueError, match="bytes must be >= 0"):
        _C.set_stream_min_bytes(-1)


NUMPY_BINARY = {"sub": "subtract", "mul": "multiply", "div": "divide"}


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum"])
@pytest.mark.parametrize("offset", [0, 5])
@pytest.mark.parametrize("b_shape", [(37, 41), (41,), ()])
def test_streamed_binary_equals_cached(op, offset, b_shape):
    """Both operands contiguous, or one a broadcast scalar / row (a row of length 41
    repeats: each output row is its own contiguous run); NaNs, infinities and zeros of
    both signs among them."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((37, 41)).astype(np.float32)
    a[0, :8] = SPECIALS
    b = rng.standard_normal(b_shape).astype(np.float32)
    if b.ndim:
        b.reshape(-1)[8:16] = SPECIALS[::-1]
    for x, y in [(a, b), (b, a)]:
        def kernel():
            out = shifted(np.zeros((37, 41), np.float32), offset)
            _C.binary(_C.BINARY_OPS[op], x, y, out)
            return out.copy()

        cached, streamed = run_both(kernel)
        np.testing.assert_array_equal(streamed.view(np.int32), cached.view(np.int32))
        with np.errstate(divide="ignore", invalid="ignore"):
            np.testing.assert_array_equal(streamed, getattr(np, NUMPY_BINARY.get(op, op))(x, y))


def test_in_place_ops_with_streaming_threshold_stay_correct():
    x = np.linspace(-3, 3, 1001).astype(np.float32)
    want_exp, want_add = np.exp(x.astype(np.float64)), x * 2
    a, b = x.copy(), x.copy()
    before = _C.stream_min_bytes()
    _C.set_stream_min_bytes(0)
    try:
        _C.unary(_C.UNARY_OPS["exp"], a, a, 0.0, 0.0)
        _C.binary(_C.BINARY_OPS["add"], b, x, b)
    finally:
        _C.set_stream_min_bytes(before)
    np.testing.assert_allclose(a, want_exp, rtol=3e-7)
    np.testing.assert_array_equal(b, want_add)


@pytest.mark.parametrize("affine", ["none", "weight", "both"])
@pytest.mark.parametrize("offset", [0, 3])
def test_streamed_layer_norm_equals_cached(offset, affine):
    rng = np.random.default_rng(offset)
    for rows, k in [(3, 1), (5, 15), (4, 17), (7, 33), (3, 100), (2, 1000)]:
        x = (rng.standard_normal((rows, k)) * 3 + 1).astype(np.float32)
        w = rng.standard_normal(k).astype(np.float32) if affine != "none" else None
        b = rng.standard_normal(k).astype(np.float32) if affine == "both" else None

        def kernel():
            out = shifted(np.zeros((rows, k), np.float32), offset)
            mean, rstd = np.empty((rows, 1), np.float32), np.empty((rows, 1), np.float32)
            _C.layer_norm(x, 1, w, b, 1e-5, out, mean, rstd)
            return out.copy()

        cached, streamed = run_both(kernel)
        np.testing.assert_array_equal(streamed.view(np.int32), cached.view(np.int32))
        z = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)
        want = z * (1 if w is None else w) + (0 if b is None else b)
        np.testing.assert_allclose(cached, want, rtol=1e-4, atol=1e-4)
