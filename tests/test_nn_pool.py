"""Pooling (genesis.nn.functional max/avg/adaptive pools) against slow numpy
references written with explicit loops, finite-difference gradients of every
order, strided inputs, thread counts, errors and, when torch is installed,
parity with torch.nn.functional."""
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import genesis as G
import genesis.nn.functional as F
from genesis import _C

_G = {np.float32: G.float32, np.float64: G.float64}


# ------------------------------------------------------------------ references
def out_size(size, k, s, p, d, ceil_mode):
    span = d * (k - 1) + 1
    out = (math.ceil if ceil_mode else math.floor)((size + 2 * p - span) / s) + 1
    if ceil_mode and (out - 1) * s >= size + p:  # the last window must start inside
        out -= 1
    return out


def ref_max_pool2d(x, k, s, p, d, ceil_mode):
    """(values, indices h * W + w of the first maximum, -1 where a window is empty)."""
    n_, c_, h_, w_ = x.shape
    oh_ = out_size(h_, k[0], s[0], p[0], d[0], ceil_mode)
    ow_ = out_size(w_, k[1], s[1], p[1], d[1], ceil_mode)
    out = np.full((n_, c_, oh_, ow_), -np.inf)
    idx = np.full((n_, c_, oh_, ow_), -1, np.int64)
    for n in range(n_):
        for c in range(c_):
            for i in range(oh_):
                for j in range(ow_):
                    for a in range(k[0]):
                        h = i * s[0] - p[0] + a * d[0]
                        for b in range(k[1]):
                            w = j * s[1] - p[1] + b * d[1]
                            if 0 <= h < h_ and 0 <= w < w_ and (
                                    idx[n, c, i, j] < 0 or x[n, c, h, w] > out[n, c, i, j]):
                                out[n, c, i, j] = x[n, c, h, w]
                                idx[n, c, i, j] = h * w_ + w
    return out, idx


def ref_avg_pool2d(x, k, s, p, ceil_mode, count_include_pad, divisor_override):
    n_, c_, h_, w_ = x.shape
    oh_ = out_size(h_, k[0], s[0], p[0], 1, ceil_mode)
    ow_ = out_size(w_, k[1], s[1], p[1], 1, ceil_mode)
    out = np.zeros((n_, c_, oh_, ow_))
    for i in range(oh_):
        for j in range(ow_):
            h0, w0 = i * s[0] - p[0], j * s[1] - p[1]
            # the window, clipped to the padded input, then to the input
            h1, w1 = min(h0 + k[0], h_ + p[0]), min(w0 + k[1], w_ + p[1])
            padded = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, h_), min(w1, w_)
            if h0 >= h1 or w0 >= w1:
                continue
            div = divisor_override or (padded if count_include_pad else (h1 - h0) * (w1 - w0))
            for n in range(n_):
                for c in range(c_):
                    out[n, c, i, j] = x[n, c, h0:h1, w0:w1].sum() / div
    return out


def ref_adaptive_avg_pool2d(x, size):
    n_, c_, h_, w_ = x.shape
    out = np.zeros((n_, c_) + tuple(size))
    for i in range(size[0]):
        h0, h1 = (i * h_) // size[0], -(-((i + 1) * h_) // size[0])
        for j in range(size[1]):
            w0, w1 = (j * w_) // size[1], -(-((j + 1) * w_) // size[1])
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean((2, 3))
    return out


# ------------------------------------------------------------------ strategies
def _distinct(rng, shape):
    """Values at least 0.1 apart: argmax is unambiguous under finite differences."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) * 0.1 - 0.05 * n).astype(np.float64)


@st.composite
def pool_cases(draw, kind="max", nd=2, small=False):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    k = tuple(draw(st.integers(1, 3), label="k") for _ in range(nd))
    d = tuple(draw(st.integers(1, 2), label="d") for _ in range(nd)) if kind == "max" else (1,) * nd
    p = tuple(draw(st.integers(0, ki // 2), label="p") for ki in k)
    stride = draw(st.one_of(st.none(), st.tuples(*[st.integers(1, 3)] * nd)), label="stride")
    ceil_mode = draw(st.booleans(), label="ceil_mode")
    span = tuple(di * (ki - 1) + 1 for ki, di in zip(k, d))
    size = tuple(max(1, sp - 2 * pi + draw(st.integers(0, 3 if small else 5), label="extra"))
                 for sp, pi in zip(span, p))
    shape = (draw(st.integers(1, 2), label="n"), draw(st.integers(1, 2 if small else 3))) + size
    kw = {"kernel_size": k, "stride": stride, "padding": p, "ceil_mode": ceil_mode}
    if kind == "max":
        kw["dilation"] = d
    else:
        kw["count_include_pad"] = draw(st.booleans(), label="count_include_pad")
        if nd == 2 and draw(st.integers(0, 3), label="use_divisor") == 0:
            kw["divisor_override"] = draw(st.sampled_from([-3, 2, 5]), label="divisor")
    return _distinct(rng, shape), kw


def _ref(kind, x, kw, nd=2):
    """Reference of one pool call (1-D ones through the 2-D reference with H = 1)."""
    lift = (lambda v: (1,) + tuple(v)) if nd == 1 else tuple
    lift0 = (lambda v: (0,) + tuple(v)) if nd == 1 else tuple
    x2 = x[:, :, None] if nd == 1 else x
    k = lift(kw["kernel_size"])
    s = k if kw["stride"] is None else lift(kw["stride"])
    if kind == "max":
        out, idx = ref_max_pool2d(x2, k, s, lift0(kw["padding"]), lift(kw["dilation"]),
                                  kw["ceil_mode"])
    else:
        out = ref_avg_pool2d(x2, k, s, lift0(kw["padding"]), kw["ceil_mode"],
                             kw["count_include_pad"], kw.get("divisor_override"))
        idx = None
    if nd == 1:
        out, idx = out[:, :, 0], None if idx is None else idx[:, :, 0]
    return out, idx


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ forward
@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_max_pool_matches_reference(nd, dtype, data):
    x, kw = data.draw(pool_cases("max", nd))
    fn = F.max_pool2d if nd == 2 else F.max_pool1d
    t = G.tensor(x.astype(dtype))
    out, idx = fn(t, return_indices=True, **kw)
    ref, ref_idx = _ref("max", x.astype(dtype).astype(np.float64), kw, nd)
    assert out.dtype is _G[dtype] and idx.dtype is G.int64
    np.testing.assert_allclose(out.numpy(), ref, **_tol(dtype))
    np.testing.assert_array_equal(idx.numpy(), ref_idx)
    np.testing.assert_array_equal(fn(t, **kw).numpy(), out.numpy())
    np.testing.assert_array_equal(t.numpy(), x.astype(dtype))  # input untouched


@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_avg_pool_matches_reference(nd, dtype, data):
    x, kw = data.draw(pool_cases("avg", nd))
    fn = F.avg_pool2d if nd == 2 else F.avg_pool1d
    out = fn(G.tensor(x.astype(dtype)), **kw)
    ref, _ = _ref("avg", x.astype(dtype).astype(np.float64), kw, nd)
    np.testing.assert_allclose(out.numpy(), ref, **_tol(dtype))


_ADAPTIVE = st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 7), st.integers(1, 7),
                      st.one_of(st.integers(1, 5), st.tuples(st.one_of(st.none(), st.integers(1, 5)),
                                                             st.integers(1, 5))))


def _adaptive_size(x, size):
    if isinstance(size, int):
        return (size, size)
    return tuple(x.shape[2 + i] if s is None else s for i, s in enumerate(size))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(case=_ADAPTIVE, seed=st.integers(0, 2**32 - 1))
def test_adaptive_avg_pool2d_matches_reference(dtype, case, seed):
    *shape, size = case
    x = np.random.default_rng(seed).uniform(-1, 1, shape).astype(dtype)
    out = F.adaptive_avg_pool2d(G.tensor(x), size)
    ref = ref_adaptive_avg_pool2d(x.astype(np.float64), _adaptive_size(x, size))
    np.testing.assert_allclose(out.numpy(), ref, **_tol(dtype))


def test_unbatched_inputs_and_defaults():
    x = _distinct(np.random.default_rng(0), (3, 6, 7))
    out = F.max_pool2d(G.tensor(x), 2)
    assert tuple(out.shape) == (3, 3, 3)
    np.testing.assert_array_equal(out.numpy(), ref_max_pool2d(x[None], (2, 2), (2, 2), (0, 0),
                                                              (1, 1), False)[0][0])
    out = F.avg_pool2d(G.tensor(x), 3, stride=2, padding=1)
    np.testing.assert_allclose(out.numpy(), ref_avg_pool2d(x[None], (3, 3), (2, 2), (1, 1), False,
                                                           True, None)[0], rtol=1e-12)
    out = F.adaptive_avg_pool2d(G.tensor(x), 1)
    np.testing.assert_allclose(out.numpy(), x.mean((1, 2))[:, None, None], rtol=1e-12)
    out, idx = F.max_pool1d(G.tensor(x[0]), 3, return_indices=True)
    assert tuple(out.shape) == (6, 2) and tuple(idx.shape) == (6, 2)
    assert tuple(F.avg_pool1d(G.tensor(x[0]), 2).shape) == (6, 3)


def test_nan_propagates_through_max_pool():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 1, 0] = np.nan
    out, idx = F.max_pool2d(G.tensor(x), 2, return_indices=True)
    assert np.isnan(out.numpy()[0, 0, 0, 0]) and idx.numpy()[0, 0, 0, 0] == 4
    assert out.numpy()[0, 0, 1, 1] == 15


def test_max_pool_window_without_input_elements():
    """Dilation can make a window skip the whole input: -inf, index -1, no gradient."""
    x = G.tensor(np.arange(4.0).reshape(1, 1, 2, 2), requires_grad=True)
    kw = dict(kernel_size=2, stride=1, padding=1, dilation=3)  # taps at -1 and 2 on each axis
    out, idx = F.max_pool2d(x, return_indices=True, **kw)
    assert out.detach().numpy().ravel().tolist() == [-np.inf]
    assert idx.numpy().ravel().tolist() == [-1]
    (g,) = G.autograd.grad([out], [x], [G.ones(1, 1, 1, 1)])
    np.testing.assert_array_equal(g.numpy(), np.zeros((1, 1, 2, 2)))
    assert G.autograd.gradgradcheck(lambda t: F.max_pool2d(t, **kw), [x])
    out = F.max_pool1d(G.tensor([[0.5, 2.0]]), **kw)
    assert out.numpy().ravel().tolist() == [-np.inf]


# ------------------------------------------------------------------ gradients
@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("kind", ["max", "avg"])
@given(data=st.data())
def test_gradcheck(kind, nd, data):
    x, kw = data.draw(pool_cases(kind, nd, small=True))
    fn = getattr(F, f"{kind}_pool{nd}d")
    t = G.tensor(x, requires_grad=True)
    assume(np.isfinite(fn(t, **kw).detach().numpy()).all())  # no window without input
    assert G.autograd.gradcheck(lambda a: fn(a, **kw), [t])


@pytest.mark.parametrize("kind", ["max", "avg"])
@settings(max_examples=max(2, settings().max_examples // 4))
@given(data=st.data())
def test_gradgradcheck(kind, data):
    x, kw = data.draw(pool_cases(kind, 2, small=True))
    fn = getattr(F, f"{kind}_pool2d")
    t = G.tensor(x, requires_grad=True)
    assume(np.isfinite(fn(t, **kw).detach().numpy()).all())
    assert G.autograd.gradgradcheck(lambda a: fn(a, **kw), [t])


@given(case=_ADAPTIVE, seed=st.integers(0, 2**32 - 1))
def test_adaptive_gradcheck(case, seed):
    *shape, size = case
    shape[2], shape[3] = min(shape[2], 5), min(shape[3], 5)
    t = G.tensor(np.random.default_rng(seed).uniform(-1, 1, shape), requires_grad=True)
    assert G.autograd.gradcheck(lambda a: F.adaptive_avg_pool2d(a, size), [t])


@settings(max_examples=max(2, settings().max_examples // 4))
@given(case=_ADAPTIVE, seed=st.integers(0, 2**32 - 1))
def test_adaptive_gradgradcheck(case, seed):
    *shape, size = case
    shape[2], shape[3] = min(shape[2], 4), min(shape[3], 4)
    t = G.tensor(np.random.default_rng(seed).uniform(-1, 1, shape), requires_grad=True)
    assert G.autograd.gradgradcheck(lambda a: F.adaptive_avg_pool2d(a, size), [t])


# ------------------------------------------------------------------ layouts and threads
def _views(a):
    """The same values through a permuted view and through a stepped slice."""
    t = G.tensor(np.ascontiguousarray(a.transpose(3, 2, 1, 0))).permute(3, 2, 1, 0)
    base = np.zeros(a.shape[:-1] + (2 * a.shape[-1],))
    base[..., 1::2] = a
    return t, G.tensor(base)[..., 1::2]


@pytest.mark.parametrize("kind", ["max", "avg", "adaptive"])
@settings(max_examples=max(2, settings().max_examples // 2))
@given(data=st.data())
def test_strided_inputs_match_contiguous(kind, data):
    if kind == "adaptive":
        x, kw = _distinct(np.random.default_rng(0), (2, 3, 5, 6)), {"output_size": (2, 4)}
        fn = F.adaptive_avg_pool2d
    else:
        x, kw = data.draw(pool_cases(kind, 2))
        fn = getattr(F, f"{kind}_pool2d")
    dense = G.tensor(x, requires_grad=True)
    y = fn(dense, **kw)
    w = G.tensor(np.linspace(-1, 1, y.numel()).reshape(tuple(y.shape)))
    (y * w).sum().backward()
    for v in _views(x):
        v.requires_grad_()
        yv = fn(v, **kw)
        np.testing.assert_array_equal(yv.detach().numpy(), y.detach().numpy())
        (yv * w).sum().backward()
        np.testing.assert_allclose(v.grad.numpy(), dense.grad.numpy(), rtol=1e-14, atol=1e-14)


def test_one_and_two_threads_agree():
    """Enough planes and elements for the kernels to split planes across threads."""
    x = _distinct(np.random.default_rng(1), (4, 8, 24, 20))
    g = np.random.default_rng(2).standard_normal((4, 8, 12, 10))
    _, ref_idx = ref_max_pool2d(x, (3, 3), (2, 2), (1, 1), (1, 1), False)
    max_grad = np.zeros((32, 24 * 20))
    np.add.at(max_grad, (np.arange(32)[:, None], ref_idx.reshape(32, -1)), g.reshape(32, -1))
    pools = [(lambda t: F.max_pool2d(t, 3, 2, 1),
              ref_max_pool2d(x, (3, 3), (2, 2), (1, 1), (1, 1), False)[0]),
             (lambda t: F.avg_pool2d(t, 3, 2, 1, count_include_pad=False),
              ref_avg_pool2d(x, (3, 3), (2, 2), (1, 1), False, False, None)),
             (lambda t: F.adaptive_avg_pool2d(t, (12, 10)), ref_adaptive_avg_pool2d(x, (12, 10)))]
    saved = G.get_num_threads()
    grads = {}
    try:
        for threads in (1, 2):
            G.set_num_threads(threads)
            for i, (fn, ref) in enumerate(pools):
                t = G.tensor(x, requires_grad=True)
                y = fn(t)
                np.testing.assert_allclose(y.detach().numpy(), ref, rtol=1e-12)
                y.backward(G.tensor(g))
                grads.setdefault(i, []).append(t.grad.numpy())
    finally:
        G.set_num_threads(saved)
    np.testing.assert_allclose(grads[0][0], max_grad.reshape(x.shape), rtol=1e-14)
    for one, two in grads.values():
        np.testing.assert_array_equal(one, two)


# ------------------------------------------------------------------ errors
def _raises(fn, *needles, exc=RuntimeError):
    with pytest.raises(exc) as e:
        fn()
    for n in needles:
        assert n in str(e.value), str(e.value)


def test_errors_name_the_op_and_shapes():
    x = G.ones(1, 2, 5, 5)
    _raises(lambda: F.max_pool2d(G.ones(5, 5), 2), "max_pool2d", "[5, 5]")
    _raises(lambda: F.max_pool2d(G.ones(1, 0, 5, 5), 2), "max_pool2d", "[1, 0, 5, 5]")
    _raises(lambda: F.max_pool2d(x, 3, padding=2), "pad", "pad=2", "kernel_size=3")
    _raises(lambda: F.max_pool2d(x, 0), "kernel_size")
    _raises(lambda: F.max_pool2d(x, 2, stride=0), "stride")
    _raises(lambda: F.max_pool2d(x, 2, dilation=0), "dilation")
    _raises(lambda: F.max_pool2d(x, 2, padding=-1), "pad")
    _raises(lambda: F.max_pool2d(G.ones(1, 2, 1, 1), 3, padding=1, dilation=2),
            "Output size is too small", "(2x1x1)")
    _raises(lambda: F.max_pool2d(x, (1, 2, 3)), "kernel_size", "[1, 2, 3]")
    _raises(lambda: F.max_pool2d(G.ones(1, 2, 5, 5, dtype=G.int64), 2), "floating", "int64")
    _raises(lambda: F.max_pool1d(x, 2), "max_pool1d", "[1, 2, 5, 5]")
    _raises(lambda: F.avg_pool2d(x, 3, divisor_override=0), "divisor_override")
    _raises(lambda: F.avg_pool2d(G.ones(1, 2, 2, 2), 3), "avg_pool2d", "Output size is too small")
    _raises(lambda: F.avg_pool1d(G.ones(2, 4), 3, padding=2), "avg_pool1d", "pad=2")
    _raises(lambda: F.adaptive_avg_pool2d(G.ones(1, 2, 0, 5), 2), "adaptive_avg_pool2d",
            "[1, 2, 0, 5]")
    _raises(lambda: F.adaptive_avg_pool2d(x, (2, 0)), "output_size")
    _raises(lambda: F.adaptive_avg_pool2d(x, (2, 2, 2)), "output_size")
    _raises(lambda: F.max_pool2d(x.numpy(), 2), "Tensor", exc=TypeError)


def test_kernels_validate_their_arguments():
    x = np.ones((1, 2, 5, 5))
    out, idx = np.empty((1, 2, 2, 2)), np.empty((1, 2, 2, 2), np.int64)
    _C.max_pool2d(x, out, idx, (2, 2), (2, 2), (0, 0), (1, 1))
    with pytest.raises(ValueError, match="does not match"):
        _C.max_pool2d(x, np.empty((1, 2, 4, 2)), np.empty((1, 2, 4, 2), np.int64), (2, 2),
                      (2, 2), (0, 0), (1, 1))
    with pytest.raises(ValueError, match="half"):
        _C.max_pool2d(x, out, idx, (2, 2), (2, 2), (2, 0), (1, 1))
    with pytest.raises(ValueError, match="indices"):
        _C.max_pool2d(x, out, idx.astype(np.int32), (2, 2), (2, 2), (0, 0), (1, 1))
    with pytest.raises(TypeError, match="float32 or float64"):
        _C.avg_pool2d(x, out.astype(np.float32), (2, 2), (2, 2), (0, 0), True, 0)
    with pytest.raises(ValueError, match="batch and channel"):
        _C.adaptive_avg_pool2d(x, np.empty((1, 3, 2, 2)))
    idx[0, 0, 0, 0] = 25
    with pytest.raises(IndexError, match="25"):
        _C.max_pool2d_backward(np.ones((1, 2, 2, 2)), idx, np.empty((1, 2, 5, 5)))


# ------------------------------------------------------------------ parity with torch
@settings(max_examples=max(4, settings().max_examples // 2))
@given(data=st.data())
def test_parity_with_torch(data):
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional

    def check(name, x, *args, **kw):
        t, xt = G.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        ours, theirs = getattr(F, name)(t, *args, **kw), getattr(tF, name)(xt, *args, **kw)
        if kw.get("return_indices"):  # torch's index of a window without input is off-plane
            (ours, idx), (theirs, tidx) = ours, theirs
            found = idx.numpy() >= 0
            np.testing.assert_array_equal(idx.numpy()[found], tidx.numpy()[found])
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)
        if np.isfinite(ours.detach().numpy()).all():
            g = np.random.default_rng(1).standard_normal(tuple(ours.shape))
            ours.backward(G.tensor(g))
            theirs.backward(torch.tensor(g))
            np.testing.assert_allclose(t.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-14)

    for kind, nd in (("max", 2), ("max", 1), ("avg", 2), ("avg", 1)):
        x, kw = data.draw(pool_cases(kind, nd))
        if kind == "max":
            kw["return_indices"] = True
        check(f"{kind}_pool{nd}d", x, **kw)
    *shape, size = data.draw(_ADAPTIVE)
    check("adaptive_avg_pool2d", np.random.default_rng(0).uniform(-1, 1, shape), size)
