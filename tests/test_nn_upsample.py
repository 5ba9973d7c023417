"""Upsampling (F.interpolate, nn.Upsample) against a numpy reference built from
interpolation matrices (out = A_h @ x @ A_w^T), finite-difference gradients of
every order, strided inputs, thread counts, errors and, when torch is
installed, parity with torch.nn.functional.interpolate."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import genesis as G
import genesis.nn as nn
import genesis.nn.functional as F
from genesis import _C
from genesis.autograd import gradcheck, gradgradcheck


# ------------------------------------------------------------------ reference
def taps_matrix(n_in, n_out, mode, align_corners, scale, dtype):
    """(n_out, n_in) matrix of interpolation weights along one axis, with PyTorch's
    coordinate rules (source coordinates of the nearest modes in float32)."""
    a = np.zeros((n_out, n_in))
    if mode in ("nearest", "nearest-exact"):
        s = np.float32(1.0 / scale) if scale else np.float32(n_in) / np.float32(n_out)
        for o in range(n_out):
            if mode == "nearest-exact":
                i = math.floor(np.float32((o + 0.5) * np.float64(s)))
            elif n_out == n_in:
                i = o
            elif n_out == 2 * n_in:
                i = o // 2
            else:
                i = math.floor(np.float32(o) * s)
            a[o, min(i, n_in - 1)] = 1.0
        return a
    ct = np.float32 if dtype == np.float32 else np.float64
    if align_corners:
        ratio = ct(n_in - 1) / ct(n_out - 1) if n_out > 1 else ct(0)
    else:
        ratio = ct(1.0 / scale) if scale else ct(n_in) / ct(n_out)
    for o in range(n_out):
        if n_in == n_out:
            a[o, o] = 1.0
            continue
        real = ratio * ct(o) if align_corners else ratio * (ct(o) + ct(0.5)) - ct(0.5)
        real = max(real, ct(0))
        i0 = min(math.floor(real), n_in - 1)
        lam = min(max(float(real) - i0, 0.0), 1.0)
        i1 = i0 + (1 if i0 < n_in - 1 else 0)
        a[o, i0] += 1.0 - lam
        a[o, i1] += lam
    return a


def ref_interpolate(x, out_hw, mode, align_corners, scales):
    ah = taps_matrix(x.shape[2], out_hw[0], mode, align_corners, scales[0], x.dtype)
    aw = taps_matrix(x.shape[3], out_hw[1], mode, align_corners, scales[1], x.dtype)
    return np.einsum("oh,nchw,pw->ncop", ah, x.astype(np.float64), aw), ah, aw


_SCALES = [0.5, 0.7, 1.0, 1.3, 1.5, 2.0, 2.5, 3.0]


@st.composite
def cases(draw):
    """(x shape, interpolate kwargs, output (H, W), kernel scales per axis)."""
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 6)),
             draw(st.integers(1, 6)))
    mode = draw(st.sampled_from(["nearest", "nearest-exact", "bilinear"]))
    kw = {"mode": mode}
    if mode == "bilinear":
        kw["align_corners"] = draw(st.booleans())
    if draw(st.booleans()):
        out = (draw(st.integers(1, 10)), draw(st.integers(1, 10)))
        kw["size"] = out
        scales = (None, None)
    else:
        sf = tuple(draw(st.sampled_from(_SCALES).filter(lambda s, n=n: math.floor(n * s) >= 1))
                   for n in shape[2:])
        kw["scale_factor"] = sf
        out = tuple(math.floor(n * s) for n, s in zip(shape[2:], sf))
        recompute = draw(st.booleans())
        if recompute:
            kw["recompute_scale_factor"] = True
        scales = (None, None) if recompute else sf
    return shape, kw, out, scales


# ------------------------------------------------------------------ forward and backward
@given(case=cases(), dtype=st.sampled_from([np.float32, np.float64]))
def test_matches_reference(case, dtype):
    shape, kw, out_hw, scales = case
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    t = G.tensor(x, requires_grad=True)
    y = F.interpolate(t, **kw)
    ref, ah, aw = ref_interpolate(x, out_hw, kw["mode"], kw.get("align_corners"), scales)
    assert tuple(y.shape) == shape[:2] + out_hw and y.dtype is G.tensor(x).dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y.detach().numpy(), ref, rtol=tol, atol=tol)
    g = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    y.backward(G.tensor(g))
    np.testing.assert_allclose(t.grad.numpy(), np.einsum("oh,ncop,pw->nchw", ah, g, aw),
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("kw", [
    dict(scale_factor=2, mode="nearest"),
    dict(size=(3, 5), mode="nearest-exact"),
    dict(scale_factor=1.5, mode="bilinear"),
    dict(size=(4, 3), mode="bilinear", align_corners=True),
    dict(scale_factor=(0.6, 1.7), mode="bilinear"),
])
def test_gradcheck(kw):
    x = G.tensor(np.random.default_rng(2).standard_normal((1, 2, 3, 2)), requires_grad=True)
    assert gradcheck(lambda t: F.interpolate(t, **kw), (x,))
    assert gradgradcheck(lambda t: F.interpolate(t, **kw), (x,))


@pytest.mark.parametrize("mode, align_corners", [("nearest", None), ("nearest-exact", None),
                                                 ("linear", False), ("linear", True),
                                                 ("area", None)])
def test_three_d_inputs(mode, align_corners):
    x = np.random.default_rng(3).standard_normal((2, 3, 5))
    t = G.tensor(x, requires_grad=True)
    y = F.interpolate(t, size=8 if mode != "area" else 3, mode=mode, align_corners=align_corners)
    four = F.interpolate(G.tensor(x[:, :, None, :]), size=(1, y.shape[-1]),
                         mode="bilinear" if mode == "linear" else mode,
                         align_corners=align_corners)
    np.testing.assert_allclose(y.detach().numpy(), four.numpy()[:, :, 0], rtol=1e-12)
    assert gradcheck(lambda a: F.interpolate(a, scale_factor=1.5, mode=mode,
                                             align_corners=align_corners), (t,))


def test_area_is_adaptive_average_pooling():
    x = G.tensor(np.random.default_rng(4).standard_normal((1, 2, 6, 5)))
    np.testing.assert_allclose(F.interpolate(x, scale_factor=0.5, mode="area").numpy(),
                               F.adaptive_avg_pool2d(x, (3, 2)).numpy(), rtol=1e-12)


def test_strided_inputs():
    x = np.random.default_rng(5).standard_normal((2, 3, 7, 6))
    view = G.tensor(x).transpose(2, 3)[:, ::2]  # (2, 2, 6, 7), strided in every dim
    for kw in (dict(scale_factor=2.5), dict(size=(4, 9), mode="bilinear")):
        ours = F.interpolate(view, **kw).numpy()
        dense = F.interpolate(G.tensor(np.ascontiguousarray(view.numpy())), **kw).numpy()
        np.testing.assert_array_equal(ours, dense)


def test_one_and_two_threads_agree():
    """Enough planes and elements for the kernels to split planes across threads."""
    x = np.random.default_rng(6).standard_normal((4, 8, 20, 24))
    g = np.random.default_rng(7).standard_normal((4, 8, 50, 60))
    saved = G.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            G.set_num_threads(threads)
            for kw in (dict(mode="nearest"), dict(mode="bilinear", align_corners=True)):
                t = G.tensor(x, requires_grad=True)
                y = F.interpolate(t, scale_factor=2.5, **kw)
                y.backward(G.tensor(g))
                results.append((y.detach().numpy(), t.grad.numpy()))
    finally:
        G.set_num_threads(saved)
    for one, two in zip(results[:2], results[2:]):
        np.testing.assert_array_equal(one[0], two[0])
        np.testing.assert_array_equal(one[1], two[1])


# ------------------------------------------------------------------ modules
def test_upsample_modules():
    x = G.tensor(np.random.default_rng(8).standard_normal((1, 2, 3, 4)))
    up = nn.Upsample(scale_factor=2, mode="bilinear")
    assert repr(up) == "Upsample(scale_factor=2.0, mode='bilinear')"
    np.testing.assert_array_equal(up(x).numpy(),
                                  F.interpolate(x, scale_factor=2.0, mode="bilinear").numpy())
    assert repr(nn.Upsample(size=(5, 6))) == "Upsample(size=(5, 6), mode='nearest')"
    np.testing.assert_array_equal(nn.UpsamplingNearest2d(size=(5, 6))(x).numpy(),
                                  F.interpolate(x, size=(5, 6)).numpy())
    np.testing.assert_array_equal(
        nn.UpsamplingBilinear2d(scale_factor=3)(x).numpy(),
        F.interpolate(x, scale_factor=3, mode="bilinear", align_corners=True).numpy())
    assert list(up.parameters()) == []


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("kw, exc, needle", [
    (dict(scale_factor=2, align_corners=True), ValueError, "align_corners option"),
    (dict(size=4, scale_factor=2), ValueError, "only one of size or scale_factor"),
    (dict(), ValueError, "either size or scale_factor"),
    (dict(size=(2, 3, 4)), ValueError, "same number of spatial dimensions"),
    (dict(scale_factor=(2, 3, 4)), ValueError, "same number of spatial dimensions"),
    (dict(size=4, mode="linear"), ValueError, "Got 4D input, but linear mode needs 3D input"),
    (dict(size=4, mode="bicubic"), ValueError, "mode must be one of"),
    (dict(size=4, mode="bilinear", antialias=True), ValueError, "antialias"),
    (dict(size=(0, 4)), ValueError, "greater than 0"),
    (dict(scale_factor=0.1), ValueError, "greater than 0"),
    (dict(scale_factor=-2), ValueError, "positive"),
    (dict(size=2.5), TypeError, "size must be an int"),
    (dict(size=4, recompute_scale_factor=True), ValueError, "not meaningful"),
])
def test_errors(kw, exc, needle):
    x = G.zeros(1, 1, 3, 3)
    with pytest.raises(exc, match=needle):
        F.interpolate(x, **kw)


def test_input_errors():
    with pytest.raises(ValueError, match="Got 3D input, but bilinear mode needs 4D input"):
        F.interpolate(G.zeros(1, 1, 3), size=4, mode="bilinear")
    with pytest.raises(ValueError, match="3-D .* or 4-D"):
        F.interpolate(G.zeros(3, 3), size=4)
    with pytest.raises(TypeError, match="floating point"):
        F.interpolate(G.zeros(1, 1, 3, 3, dtype=G.int64), size=4)
    with pytest.raises(TypeError, match="Tensor"):
        F.interpolate(np.zeros((1, 1, 3, 3)), size=4)


def test_kernel_checks():
    x = np.zeros((1, 2, 3, 3))
    with pytest.raises(ValueError, match="4-D"):
        _C.upsample2d(np.zeros((2, 3, 3)), np.empty((2, 6, 6)), 0, False, [0.0, 0.0])
    with pytest.raises(TypeError, match="float32 or float64"):
        _C.upsample2d(x, np.empty((1, 2, 6, 6), np.float32), 0, False, [0.0, 0.0])
    with pytest.raises(ValueError, match="batch and channel"):
        _C.upsample2d(x, np.empty((1, 3, 6, 6)), 0, False, [0.0, 0.0])
    with pytest.raises(ValueError, match="C-contiguous"):
        _C.upsample2d(x, np.empty((1, 2, 6, 6)).transpose(0, 1, 3, 2), 2, False, [0.0, 0.0])
    with pytest.raises(ValueError, match="unknown mode"):
        _C.upsample2d(x, np.empty((1, 2, 6, 6)), 7, False, [0.0, 0.0])


# ------------------------------------------------------------------ parity with torch
@settings(max_examples=max(4, settings().max_examples // 2))
@given(case=cases())
def test_parity_with_torch(case):
    torch = pytest.importorskip("torch")
    shape, kw, _, _ = case
    for dtype, tol in ((np.float32, 1e-6), (np.float64, 1e-12)):
        x = np.random.default_rng(9).standard_normal(shape).astype(dtype)
        t, xt = G.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        ours, theirs = F.interpolate(t, **kw), torch.nn.functional.interpolate(xt, **kw)
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=tol,
                                   atol=tol)
        g = np.random.default_rng(10).standard_normal(tuple(ours.shape)).astype(dtype)
        ours.backward(G.tensor(g))
        theirs.backward(torch.tensor(g))
        np.testing.assert_allclose(t.grad.numpy(), xt.grad.numpy(), rtol=tol * 10, atol=tol * 10)
