"""Convolutions (genesis.nn.functional.conv1d/conv2d/conv_transpose2d) against slow
numpy references written with explicit loops, finite-difference gradients of
every order, strided inputs, thread counts, instruction sets, errors and, when
torch is installed, parity with torch.nn.functional."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import genesis as G
import genesis.nn.functional as F
from genesis import _C

_G = {np.float32: G.float32, np.float64: G.float64}


# ------------------------------------------------------------------ references
def ref_conv2d(x, w, b=None, stride=(1, 1), pads=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """Cross-correlation, one output element at a time, in float64."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    n_, c_, h_, w_ = x.shape
    oc_, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple(pads))
    span_h, span_w = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    oh_ = (xp.shape[2] - span_h) // stride[0] + 1
    ow_ = (xp.shape[3] - span_w) // stride[1] + 1
    ocg = oc_ // groups
    out = np.zeros((n_, oc_, oh_, ow_))
    for n in range(n_):
        for oc in range(oc_):
            g = oc // ocg
            for i in range(oh_):
                for j in range(ow_):
                    h0, w0 = i * stride[0], j * stride[1]
                    win = xp[n, g * cg:(g + 1) * cg, h0:h0 + span_h:dilation[0],
                             w0:w0 + span_w:dilation[1]]
                    out[n, oc, i, j] = (win * w[oc]).sum() + (0 if b is None else b[oc])
    return out


def ref_conv_transpose2d(x, w, b=None, stride=(1, 1), padding=(0, 0), output_padding=(0, 0),
                         groups=1, dilation=(1, 1)):
    """Each input element scatters x * w[c] into the output, then padding is cropped."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    n_, c_, h_, w_ = x.shape
    _, ocg, kh, kw = w.shape
    cg = c_ // groups
    full_h = (h_ - 1) * stride[0] + dilation[0] * (kh - 1) + 1 + output_padding[0]
    full_w = (w_ - 1) * stride[1] + dilation[1] * (kw - 1) + 1 + output_padding[1]
    out = np.zeros((n_, ocg * groups, full_h, full_w))
    for n in range(n_):
        for c in range(c_):
            g = c // cg
            for i in range(h_):
                for j in range(w_):
                    h0, w0 = i * stride[0], j * stride[1]
                    out[n, g * ocg:(g + 1) * ocg,
                        h0:h0 + dilation[0] * (kh - 1) + 1:dilation[0],
                        w0:w0 + dilation[1] * (kw - 1) + 1:dilation[1]] += x[n, c, i, j] * w[c]
    out = out[:, :, padding[0]:full_h - padding[0], padding[1]:full_w - padding[1]]
    if b is not None:
        out = out + b.astype(np.float64)[None, :, None, None]
    return out


# ------------------------------------------------------------------ strategies
@st.composite
def conv_cases(draw, small=False, transposed=False, nd=2, tiny=False):
    """Arrays and keyword arguments of one convolution (small/tiny: for gradient checks)."""
    small = small or tiny
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    groups = draw(st.sampled_from([1, 2] if small else [1, 1, 2, 3]), label="groups")
    cg = draw(st.integers(1, 1 if tiny else 2), label="cg")
    ocg = draw(st.integers(1, 2 if small else 3), label="ocg")
    n = draw(st.integers(1, 1 if tiny else 2), label="n")
    kernel = tuple(draw(st.integers(1, 3), label="k") for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3), label="stride") for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2), label="dilation") for _ in range(nd))
    padding = tuple(draw(st.integers(0, 2), label="padding") for _ in range(nd))
    kw = {"stride": stride, "dilation": dilation, "groups": groups}
    if transposed:
        size = tuple(draw(st.integers(1, 3 if small else 4), label="size") for _ in range(nd))
        padding = tuple(min(p, (d * (k - 1)) // 2) for p, k, d in zip(padding, kernel, dilation))
        out_pad = tuple(draw(st.integers(0, max(s, d) - 1), label="output_padding")
                        for s, d in zip(stride, dilation))
        kw.update(padding=padding, output_padding=out_pad)
        x = rng.uniform(-1, 1, (n, groups * cg) + size)
        w = rng.uniform(-1, 1, (groups * cg, ocg) + kernel)
        b = rng.uniform(-1, 1, groups * ocg) if draw(st.booleans(), label="bias") else None
        return x, w, b, kw
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    size = tuple(max(1, s - 2 * p + draw(st.integers(0, 1 if tiny else 2 if small else 5),
                                         label="extra"))
                 for s, p in zip(span, padding))
    if draw(st.integers(0, 4), label="pad_kind") == 0:
        kw["padding"] = "same" if all(s == 1 for s in stride) else "valid"
        if kw["padding"] == "valid":
            size = tuple(max(s, sp) for s, sp in zip(size, span))
    else:
        kw["padding"] = padding
    x = rng.uniform(-1, 1, (n, groups * cg) + size)
    w = rng.uniform(-1, 1, (groups * ocg, cg) + kernel)
    b = rng.uniform(-1, 1, groups * ocg) if draw(st.booleans(), label="bias") else None
    return x, w, b, kw


def _ref_pads(kw, w):
    """Per-side padding of a conv2d call (how 'same' splits an odd total: extra after)."""
    p = kw["padding"]
    if p == "valid":
        return ((0, 0), (0, 0))
    if p == "same":
        totals = [d * (k - 1) for d, k in zip(kw["dilation"], w.shape[2:])]
        return tuple((t // 2, t - t // 2) for t in totals)
    return tuple((q, q) for q in p)


def _tensors(dtype, *arrays, requires_grad=False):
    return [None if a is None else
            G.tensor(a.astype(dtype), dtype=_G[dtype], requires_grad=requires_grad)
            for a in arrays]


def _tol(dtype):
    return dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-11)


# ------------------------------------------------------------------ forward
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(case=conv_cases())
def test_conv2d_matches_reference(dtype, case):
    x, w, b, kw = case
    before = x.astype(dtype).copy()
    tx, tw, tb = _tensors(dtype, x, w, b)
    out = F.conv2d(tx, tw, tb, **kw)
    assert out.dtype is _G[dtype]
    expected = ref_conv2d(x.astype(dtype), w.astype(dtype), None if b is None else b.astype(dtype),
                          kw["stride"], _ref_pads(kw, w), kw["dilation"], kw["groups"])
    np.testing.assert_allclose(out.numpy(), expected, **_tol(dtype))
    np.testing.assert_array_equal(tx.numpy(), before)  # input untouched


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(case=conv_cases(transposed=True))
def test_conv_transpose2d_matches_reference(dtype, case):
    x, w, b, kw = case
    tx, tw, tb = _tensors(dtype, x, w, b)
    out = F.conv_transpose2d(tx, tw, tb, **kw)
    expected = ref_conv_transpose2d(x.astype(dtype), w.astype(dtype),
                                    None if b is None else b.astype(dtype), **kw)
    np.testing.assert_allclose(out.numpy(), expected, **_tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(case=conv_cases(nd=1))
def test_conv1d_matches_reference(dtype, case):
    x, w, b, kw = case
    tx, tw, tb = _tensors(dtype, x, w, b)
    out = F.conv1d(tx, tw, tb, **kw)
    pads = ((0, 0),) + _ref_pads(kw, w)[:1]
    expected = ref_conv2d(x[:, :, None].astype(dtype), w[:, :, None].astype(dtype),
                          None if b is None else b.astype(dtype), (1,) + kw["stride"], pads,
                          (1,) + kw["dilation"], kw["groups"])[:, :, 0]
    np.testing.assert_allclose(out.numpy(), expected, **_tol(dtype))


def test_same_padding_of_even_kernels_puts_the_extra_at_the_end():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((1, 2, 5, 6)), rng.standard_normal((3, 2, 2, 4))
    out = F.conv2d(G.tensor(x), G.tensor(w), padding="same", dilation=(1, 1))
    assert tuple(out.shape) == (1, 3, 5, 6)
    np.testing.assert_allclose(out.numpy(), ref_conv2d(x, w, pads=((0, 1), (1, 2))), rtol=1e-12)
    out = F.conv1d(G.tensor(x[:, :, 0]), G.tensor(w[:, :, 0]), padding="same", dilation=2)
    np.testing.assert_allclose(out.numpy(), ref_conv2d(x[:, :, :1], w[:, :, :1],
                                                       pads=((0, 0), (3, 3)),
                                                       dilation=(1, 2))[:, :, 0], rtol=1e-12)


def test_unbatched_inputs():
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((2, 5, 5)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    out = F.conv2d(G.tensor(x), G.tensor(w), G.tensor(b), padding=1)
    assert tuple(out.shape) == (3, 5, 5)
    np.testing.assert_allclose(out.numpy(), ref_conv2d(x[None], w, b, pads=((1, 1), (1, 1)))[0],
                               rtol=1e-12)
    out = F.conv1d(G.tensor(x[:, 0]), G.tensor(w[:, :, 0]))
    assert tuple(out.shape) == (3, 3)
    wt = rng.standard_normal((2, 4, 3, 3))
    out = F.conv_transpose2d(G.tensor(x), G.tensor(wt), stride=2)
    np.testing.assert_allclose(out.numpy(), ref_conv_transpose2d(x[None], wt, stride=(2, 2))[0],
                               rtol=1e-12)


def test_empty_batch():
    x = G.zeros(0, 2, 5, 5, requires_grad=True)
    w = G.ones(3, 2, 3, 3, requires_grad=True)
    b = G.ones(3, requires_grad=True)
    out = F.conv2d(x, w, b)
    assert tuple(out.shape) == (0, 3, 3, 3)
    out.sum().backward()
    assert tuple(x.grad.shape) == (0, 2, 5, 5)
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros((3, 2, 3, 3)))
    np.testing.assert_array_equal(b.grad.numpy(), np.zeros(3))


# ------------------------------------------------------------------ gradients
@given(case=conv_cases(small=True))
def test_conv2d_gradcheck(case):
    x, w, b, kw = case
    ts = [t for t in _tensors(np.float64, x, w, b, requires_grad=True) if t is not None]
    assert G.autograd.gradcheck(lambda *a: F.conv2d(*a, **kw), ts)


@given(case=conv_cases(small=True, transposed=True))
def test_conv_transpose2d_gradcheck(case):
    x, w, b, kw = case
    ts = [t for t in _tensors(np.float64, x, w, b, requires_grad=True) if t is not None]
    assert G.autograd.gradcheck(lambda *a: F.conv_transpose2d(*a, **kw), ts)


@given(case=conv_cases(small=True, nd=1))
def test_conv1d_gradcheck(case):
    x, w, b, kw = case
    ts = [t for t in _tensors(np.float64, x, w, b, requires_grad=True) if t is not None]
    assert G.autograd.gradcheck(lambda *a: F.conv1d(*a, **kw), ts)


@settings(max_examples=max(2, settings().max_examples // 5))
@given(case=conv_cases(tiny=True))
def test_conv2d_gradgradcheck(case):
    x, w, b, kw = case
    ts = [t for t in _tensors(np.float64, x, w, b, requires_grad=True) if t is not None]
    assert G.autograd.gradgradcheck(lambda *a: F.conv2d(*a, **kw), ts)


@settings(max_examples=max(2, settings().max_examples // 5))
@given(case=conv_cases(tiny=True, transposed=True))
def test_conv_transpose2d_gradgradcheck(case):
    x, w, b, kw = case
    ts = [t for t in _tensors(np.float64, x, w, b, requires_grad=True) if t is not None]
    assert G.autograd.gradgradcheck(lambda *a: F.conv_transpose2d(*a, **kw), ts)


def test_third_order_gradient_of_the_weight_gradient():
    """The weight-gradient Function is itself differentiable in both arguments."""
    rng = np.random.default_rng(3)
    x = G.tensor(rng.standard_normal((2, 2, 4, 4)), requires_grad=True)
    w = G.tensor(rng.standard_normal((2, 2, 2, 2)), requires_grad=True)
    g = G.tensor(rng.standard_normal((2, 2, 3, 3)), requires_grad=True)

    def weight_grad(x, g):
        (gw,) = G.autograd.grad([F.conv2d(x, w, stride=1, padding=0)], [w], [g],
                                create_graph=True)
        return gw

    assert G.autograd.gradgradcheck(weight_grad, [x, g])


# ------------------------------------------------------------------ layouts, threads, ISAs
def _layouts(a):
    """The same values as a transposed copy seen through .permute and as a stepped slice."""
    t = G.tensor(np.ascontiguousarray(a.transpose(3, 2, 1, 0))).permute(3, 2, 1, 0)
    base = np.zeros(a.shape[:-1] + (2 * a.shape[-1],))
    base[..., ::2] = a
    return t, G.tensor(base)[..., ::2]


@pytest.mark.parametrize("fn", ["conv2d", "conv_transpose2d"])
@settings(max_examples=max(2, settings().max_examples // 2))
@given(data=st.data())
def test_strided_inputs_match_contiguous(fn, data):
    x, w, b, kw = data.draw(conv_cases(small=True, transposed=fn == "conv_transpose2d"))
    op = getattr(F, fn)
    dense = _tensors(np.float64, x, w, requires_grad=True)
    y = op(*dense, **kw)
    weights = G.tensor(np.linspace(-1, 1, y.numel()).reshape(tuple(y.shape)))
    (y * weights).sum().backward()
    for xs, ws in zip(_layouts(x), _layouts(w)[::-1]):
        xs, ws = xs.requires_grad_(), ws.requires_grad_()
        ys = op(xs, ws, **kw)
        np.testing.assert_allclose(ys.detach().numpy(), y.detach().numpy(), rtol=1e-12, atol=1e-12)
        (ys * weights).sum().backward()
        np.testing.assert_allclose(xs.grad.numpy(), dense[0].grad.numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(ws.grad.numpy(), dense[1].grad.numpy(), rtol=1e-12, atol=1e-12)


def test_broadcast_output_gradient():
    """Gradients that arrive with zero strides (from sum/expand) are read in place."""
    rng = np.random.default_rng(4)
    x = G.tensor(rng.standard_normal((2, 3, 6, 6)), requires_grad=True)
    w = G.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    F.conv2d(x, w, stride=2, padding=1).sum().backward()
    ones = np.ones((2, 4, 3, 3))
    x2 = G.tensor(x.detach().numpy(), requires_grad=True)
    w2 = G.tensor(w.detach().numpy(), requires_grad=True)
    F.conv2d(x2, w2, stride=2, padding=1).backward(G.tensor(ones))
    np.testing.assert_allclose(x.grad.numpy(), x2.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), w2.grad.numpy(), rtol=1e-12)


def ref_conv2d_weight_grad(x, gy, w_shape, stride, pads, groups):
    """d sum(conv2d(x, w) * gy) / dw, one kernel tap at a time."""
    oc_, cg, kh, kw = w_shape
    ocg = oc_ // groups
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0)) + tuple(pads))
    oh_, ow_ = gy.shape[2:]
    gw = np.zeros(w_shape)
    for o in range(oc_):
        g = o // ocg
        for i in range(kh):
            for j in range(kw):
                win = xp[:, g * cg:(g + 1) * cg, i:i + (oh_ - 1) * stride[0] + 1:stride[0],
                         j:j + (ow_ - 1) * stride[1] + 1:stride[1]]
                gw[o, :, i, j] = (win * gy[:, o:o + 1]).sum((0, 2, 3))
    return gw


def _assert_conv_results(y, tx, tw, tb, expected, gx, gw, gy, tol):
    """conv2d's output and its input, weight and bias gradients against references."""
    np.testing.assert_allclose(y.detach().numpy(), expected, **tol)
    np.testing.assert_allclose(tx.grad.numpy(), gx, **tol)
    np.testing.assert_allclose(tw.grad.numpy(), gw, **tol)
    np.testing.assert_allclose(tb.grad.numpy(), gy.sum((0, 2, 3)), **tol)


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("config", [(3, 1, 1, 1), (3, 2, 0, 2), (1, 1, 0, 1)],
                         ids=["3x3", "strided_groups", "pointwise"])
def test_threads_and_instruction_sets(isa, threads, config):
    """Large enough for the threaded paths (items split across threads, partial
    weight gradients summed); every compiled instruction set gives the same result."""
    order = ["generic", "avx2", "avx512"]
    if order.index(isa) > order.index(_C.best_isa()):
        pytest.skip(f"this processor does not run {isa}")
    kernel, stride, padding, groups = config
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 8, 12, 12))
    w = rng.standard_normal((8, 8 // groups, kernel, kernel))
    b = rng.standard_normal(8)
    s2, p2 = (stride, stride), ((padding, padding),) * 2
    expected = ref_conv2d(x, w, b, s2, p2, (1, 1), groups)
    gy = rng.standard_normal(expected.shape)
    gx = ref_conv_transpose2d(gy, w, stride=s2, padding=(padding, padding), groups=groups)
    gx = np.pad(gx, ((0, 0), (0, 0), (0, x.shape[2] - gx.shape[2]), (0, x.shape[3] - gx.shape[3])))
    gw = ref_conv2d_weight_grad(x, gy, w.shape, s2, p2, groups)
    saved = G.get_num_threads()
    try:
        _C.set_isa(isa)
        G.set_num_threads(threads)
        for dtype in (np.float32, np.float64):
            tx, tw, tb = _tensors(dtype, x, w, b, requires_grad=True)
            y = F.conv2d(tx, tw, tb, stride=stride, padding=padding, groups=groups)
            y.backward(G.tensor(gy.astype(dtype)))
            _assert_conv_results(y, tx, tw, tb, expected, gx, gw, gy, _tol(dtype))
    finally:
        _C.set_isa("best")
        G.set_num_threads(saved)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("batch", [1, 7, 13])
def test_blocks_of_small_images(threads, batch):
    """Images with few output pixels are convolved in blocks of several images (the last
    block partial); strided inputs and output gradients are gathered into the block."""
    rng = np.random.default_rng(batch)
    x_base = rng.standard_normal((batch, 6, 5, 7))  # viewed as (batch, 3, 6, 7), strided

    def strided_x(dtype):
        return x_base.astype(dtype).transpose(0, 2, 1, 3)[:, ::2]

    x = strided_x(np.float64)
    w = rng.standard_normal((4, 3, 2, 3))
    b = rng.standard_normal(4)
    s2, p2 = (1, 2), ((1, 1), (0, 0))
    expected = ref_conv2d(x, w, b, s2, p2, (1, 1), 1)
    gy_base = rng.standard_normal((expected.shape[0], expected.shape[1] + 2) + expected.shape[2:])
    gy = gy_base[:, 1:-1]
    gx = ref_conv_transpose2d(gy, w, stride=s2, padding=(1, 0))
    gx = np.pad(gx, ((0, 0), (0, 0), (0, x.shape[2] - gx.shape[2]), (0, x.shape[3] - gx.shape[3])))
    gw = ref_conv2d_weight_grad(x, gy, w.shape, s2, p2, 1)
    saved = G.get_num_threads()
    try:
        G.set_num_threads(threads)
        for dtype in (np.float32, np.float64):
            tx = G.from_numpy(strided_x(dtype)).requires_grad_()
            assert not tx.is_contiguous()
            tw, tb = _tensors(dtype, w, b, requires_grad=True)
            y = F.conv2d(tx, tw, tb, stride=s2, padding=(1, 0))
            y.backward(G.from_numpy(gy_base.astype(dtype)[:, 1:-1]))
            _assert_conv_results(y, tx, tw, tb, expected, gx, gw, gy, _tol(dtype))
    finally:
        G.set_num_threads(saved)


# ------------------------------------------------------------------ errors
def _raises(fn, *needles, exc=RuntimeError):
    with pytest.raises(exc) as e:
        fn()
    for n in needles:
        assert n in str(e.value), str(e.value)


def test_errors_name_the_op_and_shapes():
    x, w = G.ones(1, 4, 5, 5), G.ones(6, 3, 3, 3)
    _raises(lambda: F.conv2d(G.ones(4, 5), w), "conv2d", "[4, 5]", "4D")
    _raises(lambda: F.conv2d(x, G.ones(6, 4, 3)), "conv2d", "[6, 4, 3]")
    _raises(lambda: F.conv2d(x, w), "conv2d", "[6, 3, 3, 3]", "[1, 4, 5, 5]", "3 channels")
    _raises(lambda: F.conv2d(x, G.ones(6, 1, 3, 3), groups=4), "groups=4", "[6, 1, 3, 3]")
    _raises(lambda: F.conv2d(x, G.ones(8, 2, 3, 3), groups=3), "groups=3")
    _raises(lambda: F.conv2d(G.ones(1, 4, 2, 2), G.ones(6, 4, 3, 3)), "conv2d",
            "padded input size", "(2 x 2)", "(3 x 3)")
    _raises(lambda: F.conv2d(x, G.ones(6, 4, 2, 2), dilation=5), "(6 x 6)")
    _raises(lambda: F.conv2d(x, G.ones(6, 4, 3, 3), stride=0), "non-positive stride")
    _raises(lambda: F.conv2d(x, G.ones(6, 4, 3, 3), stride=(1, -1)), "non-positive stride")
    _raises(lambda: F.conv2d(x, G.ones(6, 4, 3, 3), dilation=0), "dilation")
    _raises(lambda: F.conv2d(x, G.ones(6, 4, 3, 3), padding=-1), "negative padding")
    _raises(lambda: F.conv2d(x, G.ones(6, 4, 3, 3), groups=0), "groups")
    _raises(lambda: F.conv2d(x, G.ones(6, 4, 3, 3), stride=(1, 2, 3)), "stride", "[1, 2, 3]")
    _raises(lambda: F.conv2d(x, G.ones(6, 4, 3, 3), stride=2, padding="same"),
            "padding='same'", "strided")
    _raises(lambda: F.conv2d(x, G.ones(6, 4, 3, 3), padding="full"), "'full'", exc=ValueError)
    _raises(lambda: F.conv2d(x, G.ones(6, 4, 3, 3, dtype=G.float64)), "float32", "float64")
    _raises(lambda: F.conv2d(x, G.ones(6, 4, 3, 3), G.ones(6, dtype=G.float64)), "bias")
    _raises(lambda: F.conv2d(x, G.ones(6, 4, 3, 3), G.ones(5)), "bias", "6 elements", "[5]")
    _raises(lambda: F.conv2d(G.ones(1, 4, 5, 5, dtype=G.int64), G.ones(6, 4, 3, 3)),
            "floating point", "int64")
    _raises(lambda: F.conv2d(x.numpy(), G.ones(6, 4, 3, 3)), "input", exc=TypeError)
    _raises(lambda: F.conv1d(G.ones(2, 3, 4, 5), G.ones(6, 3, 3)), "conv1d", "3D")
    _raises(lambda: F.conv1d(G.ones(1, 3, 2), G.ones(6, 3, 3)), "conv1d", "(2)", "(3)")


def test_conv_transpose2d_errors():
    x = G.ones(1, 4, 5, 5)
    _raises(lambda: F.conv_transpose2d(x, G.ones(4, 2, 3, 3), output_padding=1),
            "output padding must be smaller than either stride or dilation")
    _raises(lambda: F.conv_transpose2d(x, G.ones(3, 2, 3, 3)), "transposed", "[3, 2, 3, 3]",
            "4 channels")
    _raises(lambda: F.conv_transpose2d(G.ones(1, 4, 1, 1), G.ones(4, 2, 3, 3), padding=2),
            "Output size is too small", "(-1 x -1)")
    _raises(lambda: F.conv_transpose2d(x, G.ones(4, 2, 3, 3), G.ones(3)), "bias", "2 elements")
    _raises(lambda: F.conv_transpose2d(x, G.ones(4, 2, 3, 3), groups=3), "groups=3")
    _raises(lambda: F.conv_transpose2d(x, G.ones(4, 2, 3, 3), stride=0), "stride")


def test_kernels_validate_their_arguments():
    """The C++ kernels refuse inconsistent arrays themselves (never read out of bounds)."""
    x = np.ones((1, 2, 5, 5), np.float32)
    w = np.ones((3, 2, 3, 3), np.float32)
    out = np.empty((1, 3, 3, 3), np.float32)
    geo = ((1, 1), (0, 0, 0, 0), (1, 1), 1)
    _C.conv2d(x, w, None, out, *geo)
    np.testing.assert_allclose(out, 18.0)
    with pytest.raises(ValueError, match="output size"):
        _C.conv2d(x, w, None, np.empty((1, 3, 4, 3), np.float32), *geo)
    with pytest.raises(ValueError, match="groups"):
        _C.conv2d(x, w, None, out, (1, 1), (0, 0, 0, 0), (1, 1), 2)
    with pytest.raises(ValueError, match="stride"):
        _C.conv2d(x, w, None, out, (0, 1), (0, 0, 0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="padding"):
        _C.conv2d(x, w, None, out, (1, 1), (-1, 1, 0, 0), (1, 1), 1)
    with pytest.raises(TypeError, match="dtype"):
        _C.conv2d(x, w.astype(np.float64), None, out, *geo)
    with pytest.raises(ValueError, match="bias"):
        _C.conv2d(x, w, np.ones(2, np.float32), out, *geo)
    with pytest.raises(ValueError, match="contiguous"):
        _C.conv2d(x, w, None, np.empty((1, 3, 3, 6), np.float32)[..., ::2], *geo)
    with pytest.raises(ValueError, match="4-D"):
        _C.conv2d(x[0], w, None, out, *geo)
    with pytest.raises(ValueError, match="output size"):
        _C.conv2d_input_grad(out, w, None, np.empty((1, 2, 6, 6), np.float32), *geo)
    with pytest.raises(ValueError, match=r"output must be"):
        _C.conv2d_weight_grad(x, np.ones((2, 3, 3, 3), np.float32), np.empty_like(w), *geo)


# ------------------------------------------------------------------ parity with torch
@settings(max_examples=max(4, settings().max_examples // 2))
@given(case=conv_cases(), transposed_case=conv_cases(transposed=True),
       case1d=conv_cases(nd=1))
def test_parity_with_torch(case, transposed_case, case1d):
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional

    def check(ours, theirs, x, w, b, kw):
        gx = [G.tensor(a, requires_grad=True) if a is not None else None for a in (x, w, b)]
        tx = [torch.tensor(a, requires_grad=True) if a is not None else None for a in (x, w, b)]
        y, ty = ours(*gx, **kw), theirs(*tx, **kw)
        np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10,
                                   atol=1e-12)
        seed = np.random.default_rng(0).standard_normal(tuple(y.shape))
        y.backward(G.tensor(seed))
        ty.backward(torch.tensor(seed))
        for a, t in zip(gx, tx):
            if a is not None:
                np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-10,
                                           atol=1e-12)

    check(F.conv2d, tF.conv2d, *case)
    check(F.conv_transpose2d, tF.conv_transpose2d, *transposed_case)
    check(F.conv1d, tF.conv1d, *case1d)
