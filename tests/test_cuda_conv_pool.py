"""Convolution, pooling and upsampling on device "cuda" (conv.cu, pool.cu, upsample.cu):
forward results and gradients match the cpu device through the public API, float32 and
float64, odd and multi-block shapes, strided inputs, other thread orders, gradcheck on
the device, and the same errors for bad input.

The kernels run in the CPU emulator (GENESIS_CUDA_EMULATE=1, set here unless the
environment says otherwise), so shapes stay small."""
import os

os.environ.setdefault("GENESIS_CUDA_EMULATE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import assume, given, settings, strategies as st  # noqa: E402

import genesis as G  # noqa: E402
import genesis.nn as nn  # noqa: E402
import genesis.nn.functional as F  # noqa: E402
from genesis.backend import cpu as cpu_backend  # noqa: E402
from genesis.backend.cuda import backend as cuda_backend  # noqa: E402

_DT = {"float32": G.float32, "float64": G.float64}
_TOL = {"float32": 1e-5, "float64": 1e-10}
DTYPES = list(_DT)


def _tensor(a, dtype, device, strided=False):
    if strided:  # the same values in a view with non-unit strides
        base = G.zeros(*a.shape, 2, dtype=_DT[dtype], device=device)
        base[..., 1] = G.tensor(a, dtype=_DT[dtype], device=device)
        t = base[..., 1].detach()
    else:
        t = G.tensor(a, dtype=_DT[dtype], device=device)
    return t.requires_grad_()


def _close(got, expected, dtype):
    assert got.device.type == "cuda" and got.dtype == expected.dtype
    assert tuple(got.shape) == tuple(expected.shape)
    tol = _TOL[dtype]
    np.testing.assert_allclose(got.detach().cpu().numpy(), expected.detach().numpy(),
                               rtol=tol, atol=10 * tol)


def check(fn, arrays, dtype="float64", strided=False):
    """fn's output and the gradients of a weighted sum of it agree on both devices."""
    cpu = [_tensor(a, dtype, "cpu") for a in arrays]
    cuda = [_tensor(a, dtype, "cuda", strided) for a in arrays]
    want, got = fn(*cpu), fn(*cuda)
    _close(got, want, dtype)
    w = np.linspace(-1, 1, want.numel()).reshape(tuple(want.shape))
    (want * G.tensor(w, dtype=_DT[dtype])).sum().backward()
    (got * G.tensor(w, dtype=_DT[dtype], device="cuda")).sum().backward()
    for a, b in zip(cpu, cuda):
        _close(b.grad, a.grad, dtype)
    return got


_rng = np.random.default_rng(3)


def _randn(*shape):
    return _rng.standard_normal(shape)


# ------------------------------------------------------------------ convolution
CONV_CASES = [
    # x shape, w shape, keyword arguments
    ((1, 1, 5, 5), (1, 1, 3, 3), {}),
    ((2, 3, 7, 5), (4, 3, 2, 3), dict(stride=2, padding=1)),
    ((2, 4, 6, 7), (6, 2, 3, 3), dict(groups=2, dilation=(2, 1), padding=(2, 1))),
    ((1, 3, 5, 6), (3, 1, 3, 3), dict(groups=3, padding="same")),
    ((2, 2, 4, 5), (3, 2, 2, 2), dict(padding="same", dilation=(1, 2))),  # uneven padding
    ((3, 2, 5, 3), (5, 2, 1, 1), {}),
    ((1, 3, 13, 11), (5, 3, 3, 3), dict(padding=1, stride=(1, 2))),  # several GEMM tiles
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: str(c[0]) + str(c[2]))
def test_conv2d_matches_cpu(case, dtype):
    xs, ws, kw = case
    arrays = [_randn(*xs), _randn(*ws), _randn(ws[0])]
    check(lambda x, w, b: F.conv2d(x, w, b, **kw), arrays, dtype, strided=dtype == "float64")
    check(lambda x, w: F.conv2d(x, w, **kw), arrays[:2], dtype)


TRANSPOSE_CASES = [
    ((1, 2, 3, 4), (2, 3, 3, 3), {}),
    ((2, 4, 3, 3), (4, 1, 2, 3), dict(stride=2, padding=1, output_padding=1, groups=2)),
    ((1, 3, 4, 2), (3, 2, 2, 2), dict(stride=(1, 3), dilation=2)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=lambda c: str(c[0]) + str(c[2]))
def test_conv_transpose2d_matches_cpu(case, dtype):
    xs, ws, kw = case
    arrays = [_randn(*xs), _randn(*ws), _randn(ws[1] * kw.get("groups", 1))]
    check(lambda x, w, b: F.conv_transpose2d(x, w, b, **kw), arrays, dtype, strided=True)


def test_conv1d_and_unbatched_conv2d_match_cpu():
    check(lambda x, w: F.conv1d(x, w, stride=2, padding=1), [_randn(2, 3, 11), _randn(4, 3, 3)])
    check(lambda x, w: F.conv2d(x, w, padding=1), [_randn(2, 5, 4), _randn(3, 2, 3, 3)])


@settings(max_examples=6, deadline=None)
@given(n=st.integers(1, 2), c=st.sampled_from([1, 2, 3]), groups=st.sampled_from([1, 2]),
       hw=st.tuples(st.integers(3, 7), st.integers(3, 7)), k=st.tuples(st.integers(1, 3),
                                                                      st.integers(1, 3)),
       stride=st.integers(1, 3), padding=st.integers(0, 2), dilation=st.integers(1, 2))
def test_conv2d_random_geometry_matches_cpu(n, c, groups, hw, k, stride, padding, dilation):
    assume(all(s + 2 * padding >= dilation * (kk - 1) + 1 for s, kk in zip(hw, k)))  # fits
    x, w = _randn(n, c * groups, *hw), _randn(2 * groups, c, *k)
    check(lambda x, w: F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation,
                                groups=groups), [x, w])


def test_conv_double_backward_matches_cpu():
    """The backward's own derivatives run through the same three kernels."""
    def second(x, w):
        y = F.conv2d(x, w, stride=2, padding=1)
        (gx,) = G.autograd.grad((y * y).sum(), (x,), create_graph=True)
        return gx
    check(second, [_randn(1, 2, 5, 5), _randn(3, 2, 3, 3)])


# ------------------------------------------------------------------ pooling
MAX_CASES = [
    ((1, 1, 5, 5), dict(kernel_size=2)),
    ((2, 3, 7, 6), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((1, 2, 6, 7), dict(kernel_size=(2, 3), stride=1, padding=(1, 1), dilation=(2, 1))),
    ((1, 2, 3, 2), dict(kernel_size=2, stride=1, padding=1, dilation=3)),  # empty windows
    ((2, 2, 17, 13), dict(kernel_size=3, stride=1, padding=1)),  # overlapping, many blocks
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", MAX_CASES, ids=lambda c: str(c[0]) + str(c[1]))
def test_max_pool2d_matches_cpu(case, dtype):
    shape, kw = case
    # few distinct values, so ties decide the argmax and its gradient
    x = _rng.integers(-3, 3, shape).astype(np.float64)
    got = check(lambda x: F.max_pool2d(x, **kw), [x], dtype, strided=True)
    _, i_cpu = F.max_pool2d(G.tensor(x, dtype=_DT[dtype]), return_indices=True, **kw)
    _, i_cuda = F.max_pool2d(_tensor(x, dtype, "cuda", True), return_indices=True, **kw)
    assert i_cuda.dtype == G.int64 and i_cuda.device.type == "cuda"
    np.testing.assert_array_equal(i_cuda.cpu().numpy(), i_cpu.numpy())
    assert got.shape == i_cpu.shape


def test_max_pool_nan_and_empty_windows_match_cpu():
    x = np.arange(24, dtype=np.float64).reshape(1, 2, 3, 4)
    x[0, 0, 1, 2] = np.nan
    for shape, kw in (((1, 2, 3, 4), dict(kernel_size=2, stride=1, padding=1)),
                      ((1, 2, 3, 2), dict(kernel_size=2, stride=1, padding=1, dilation=3))):
        t = G.tensor(x[..., :shape[3]])
        (v0, i0), (v1, i1) = (F.max_pool2d(u, return_indices=True, **kw) for u in (t, t.cuda()))
        np.testing.assert_array_equal(v1.cpu().numpy(), v0.numpy())  # NaN and -inf in place
        np.testing.assert_array_equal(i1.cpu().numpy(), i0.numpy())
        assert np.isnan(v0.numpy()).any() or (i0.numpy() == -1).all()
    check(lambda x: F.max_pool1d(x, 3, 2, padding=1), [_randn(2, 3, 10)])


AVG_CASES = [
    ((1, 1, 4, 4), dict(kernel_size=2)),
    ((2, 3, 7, 6), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((1, 2, 7, 5), dict(kernel_size=(3, 2), stride=(2, 1), padding=1, count_include_pad=False)),
    ((1, 2, 5, 5), dict(kernel_size=3, stride=1, padding=1, divisor_override=4)),
    ((2, 2, 19, 11), dict(kernel_size=4, stride=3, padding=2, ceil_mode=True)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", AVG_CASES, ids=lambda c: str(c[0]) + str(c[1]))
def test_avg_pool2d_matches_cpu(case, dtype):
    shape, kw = case
    check(lambda x: F.avg_pool2d(x, **kw), [_randn(*shape)], dtype, strided=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [((1, 1, 5, 5), (1, 1)), ((2, 3, 7, 5), (3, 4)),
                                  ((1, 2, 3, 5), (7, 2)), ((2, 2, 13, 11), (5, None))],
                         ids=str)
def test_adaptive_avg_pool2d_matches_cpu(case, dtype):
    shape, out = case
    check(lambda x: F.adaptive_avg_pool2d(x, out), [_randn(*shape)], dtype, strided=True)


# ------------------------------------------------------------------ upsampling
UPSAMPLE_CASES = [
    ((1, 1, 3, 3), dict(scale_factor=2, mode="nearest")),
    ((2, 3, 4, 5), dict(size=(7, 3), mode="nearest")),
    ((1, 2, 5, 3), dict(scale_factor=(1.5, 2.7), mode="nearest-exact")),
    ((2, 2, 4, 5), dict(scale_factor=1.7, mode="bilinear")),
    ((1, 3, 3, 4), dict(size=(7, 9), mode="bilinear", align_corners=True)),
    ((1, 2, 6, 5), dict(size=(3, 5), mode="bilinear")),  # downsampling, one axis unchanged
    ((1, 2, 5, 7), dict(size=(1, 3), mode="bilinear", align_corners=True)),
    ((2, 2, 5, 4), dict(scale_factor=2.5, mode="bilinear", recompute_scale_factor=True)),
    ((1, 2, 9, 7), dict(size=(20, 17), mode="bilinear")),  # many blocks
    ((2, 3, 7, 5), dict(size=(3, 2), mode="area")),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", UPSAMPLE_CASES, ids=lambda c: str(c[0]) + str(c[1]))
def test_interpolate_matches_cpu(case, dtype):
    shape, kw = case
    check(lambda x: F.interpolate(x, **kw), [_randn(*shape)], dtype, strided=True)


def test_linear_interpolate_matches_cpu():
    check(lambda x: F.interpolate(x, scale_factor=2.5, mode="linear"), [_randn(2, 3, 5)])
    check(lambda x: F.interpolate(x, size=4, mode="linear", align_corners=True),
          [_randn(1, 2, 7)])


def test_empty_batch_matches_cpu():
    """No samples: empty outputs, and zero weight and bias gradients."""
    check(lambda x, w, b: F.conv2d(x, w, b, groups=2),
          [np.zeros((0, 4, 5, 5)), _randn(2, 2, 3, 3), _randn(2)])
    check(lambda x, w: F.conv_transpose2d(x, w, stride=2), [np.zeros((0, 2, 3, 3)),
                                                            _randn(2, 3, 2, 2)])
    check(lambda x: F.max_pool2d(x, 2), [np.zeros((0, 2, 4, 4))])
    check(lambda x: F.avg_pool2d(x, 2), [np.zeros((0, 2, 4, 4))])
    check(lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), [np.zeros((0, 2, 3, 3))])


# ------------------------------------------------------------------ layers
def test_small_cnn_layers_match_cpu():
    """nn layers moved with .cuda(): outputs and parameter gradients agree."""
    def net():
        G.manual_seed(0)
        return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.ConvTranspose2d(4, 3, 2, stride=2), nn.AvgPool2d(3, 1, 1),
                             nn.Upsample(scale_factor=1.5, mode="bilinear"),
                             nn.AdaptiveAvgPool2d((2, 3))).double()
    a, b = net(), net().cuda()
    x = _randn(2, 2, 6, 6)
    ya, yb = a(G.tensor(x)), b(G.tensor(x, device="cuda"))
    _close(yb, ya, "float64")
    ya.sum().backward()
    yb.sum().backward()
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert q.grad is not None and q.grad.device.type == "cuda", name
        _close(q.grad, p.grad, "float64")


# ------------------------------------------------------------------ on-device gradcheck
@pytest.mark.parametrize("fn, shapes", [
    (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2),
     [(1, 2, 4, 3), (2, 1, 2, 2), (2,)]),
    (lambda x, w: F.conv_transpose2d(x, w, stride=2, output_padding=1),
     [(1, 2, 2, 2), (2, 1, 2, 2)]),
    (lambda x: F.max_pool2d(x, 2, 1, padding=1), [(1, 2, 3, 3)]),
    (lambda x: F.avg_pool2d(x, 3, 2, padding=1, count_include_pad=False), [(1, 1, 5, 4)]),
    (lambda x: F.adaptive_avg_pool2d(x, (2, 3)), [(1, 2, 3, 4)]),
    (lambda x: F.interpolate(x, scale_factor=1.5, mode="bilinear"), [(1, 1, 3, 3)]),
    (lambda x: F.interpolate(x, size=(5, 2), mode="nearest"), [(1, 1, 3, 3)]),
], ids=["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive", "bilinear",
        "nearest"])
def test_gradcheck_on_device(fn, shapes):
    # distinct values: the max pool's argmax stays put under the finite differences
    inputs = [G.tensor(_rng.permutation(np.prod(s)).reshape(s) / np.prod(s), dtype=G.float64,
                       device="cuda", requires_grad=True) for s in shapes]
    assert G.autograd.gradcheck(fn, inputs)


# ------------------------------------------------------------------ thread orders
@pytest.mark.parametrize("order", ["reverse", "random"])
@pytest.mark.parametrize("fn, shape", [
    (lambda x: F.conv2d(x, x[:2, :, :3, :3], padding=1), (3, 2, 9, 7)),
    (lambda x: F.max_pool2d(x, 3, 1, padding=1), (2, 2, 9, 8)),
    (lambda x: F.avg_pool2d(x, 3, 2, padding=1), (2, 2, 9, 8)),
    (lambda x: F.interpolate(x, scale_factor=2.5, mode="bilinear"), (2, 2, 5, 4)),
    (lambda x: F.interpolate(x, scale_factor=3, mode="nearest"), (2, 2, 5, 4)),
], ids=["conv2d", "max_pool2d", "avg_pool2d", "bilinear", "nearest"])
def test_results_do_not_depend_on_thread_order(fn, shape, order):
    from genesis.backend.cuda import emulator
    if not G.cuda.is_emulated():
        pytest.skip("thread orders are an emulator feature")
    x = np.round(_randn(*shape), 1)  # ties in the max pool's windows
    with emulator.thread_order(order, seed=5):
        check(fn, [x])


# ------------------------------------------------------------------ errors
def _error(fn):
    """(builtin exception class, message) of what fn raises (the CPU kernels raise
    subclasses such as KernelTypeError of TypeError)."""
    with pytest.raises(Exception) as info:
        fn()
    cls = next(c for c in type(info.value).__mro__ if c.__module__ == "builtins")
    return cls, str(info.value)


@pytest.mark.parametrize("call", [
    lambda d: F.conv2d(G.ones(1, 3, 4, 4, device=d), G.ones(2, 2, 3, 3, device=d)),
    lambda d: F.conv2d(G.ones(1, 2, 2, 2, device=d), G.ones(2, 2, 3, 3, device=d)),
    lambda d: F.conv2d(G.ones(1, 2, 4, 4, device=d), G.ones(2, 2, 3, 3, device=d),
                       G.ones(3, device=d)),
    lambda d: F.conv_transpose2d(G.ones(1, 2, 4, 4, device=d), G.ones(2, 2, 3, 3, device=d),
                                 stride=2, output_padding=2),
    lambda d: F.max_pool2d(G.ones(1, 1, 4, 4, device=d), 2, padding=2),
    lambda d: F.max_pool2d(G.ones(1, 1, 4, 4, dtype=G.int64, device=d), 2),
    lambda d: F.avg_pool2d(G.ones(1, 1, 2, 2, device=d), 3),
    lambda d: F.adaptive_avg_pool2d(G.ones(1, 1, 4, 4, device=d), (0, 2)),
    lambda d: F.interpolate(G.ones(1, 1, 4, 4, device=d), scale_factor=2, mode="bicubic"),
    lambda d: F.interpolate(G.ones(1, 1, 4, 4, device=d), size=(0, 3)),
], ids=["channels", "kernel_too_big", "bias", "output_padding", "pool_padding", "int_pool",
        "pool_too_small", "adaptive_zero", "mode", "zero_size"])
def test_public_api_errors_match_cpu(call):
    assert _error(lambda: call("cuda")) == _error(lambda: call("cpu"))


def _backend_calls(b, to):
    """Bad calls straight into a backend (the checks that guard its kernels)."""
    f32, f64 = (to(np.ones((1, 2, 4, 4), t)) for t in (np.float32, np.float64))
    w = to(np.ones((2, 2, 3, 3), np.float64))
    bad_index = to(np.array([[[[0, 16], [3, 2]]]], np.int64))
    return [
        lambda: b.conv2d(f32, w, None, (2, 2), (1, 1), (0, 0, 0, 0), (1, 1), 1),
        lambda: b.conv2d(f64, w, None, (3, 2), (1, 1), (0, 0, 0, 0), (1, 1), 1),
        lambda: b.conv2d(f64, w, None, (2, 2), (1, 1), (0, 0, 0, 0), (1, 1), 2),
        lambda: b.conv2d_weight_grad(f64, to(np.ones((1, 2, 2, 3))), (2, 2, 3, 3), (1, 1),
                                     (0, 0, 0, 0), (1, 1), 1),
        lambda: b.max_pool2d(f64, (2, 2), (2, 2), (2, 2), (2, 2), (1, 1)),
        lambda: b.max_pool2d(f64, (3, 2), (2, 2), (2, 2), (0, 0), (1, 1)),
        lambda: b.max_pool2d_backward(to(np.ones((1, 1, 2, 2))), bad_index, (1, 1, 4, 4)),
        lambda: b.avg_pool2d(to(np.ones((1, 2, 4, 4), np.int32)), (2, 2), (2, 2), (2, 2),
                             (0, 0), True, 0),
        lambda: b.adaptive_avg_pool2d_backward(to(np.ones((1, 3, 2, 2))), (1, 2, 4, 4)),
        lambda: b.upsample2d(to(np.ones((4, 4))), (8, 8), "nearest", False, (None, None)),
    ]


def test_backend_errors_match_cpu():
    cuda_calls = _backend_calls(cuda_backend, cuda_backend.from_numpy)
    for i, (c, d) in enumerate(zip(_backend_calls(cpu_backend, np.asarray), cuda_calls)):
        assert _error(d) == _error(c), i


def test_max_pool2d_backward_bad_index_names_it():
    g = cuda_backend.from_numpy(np.ones((1, 1, 2, 2)))
    idx = cuda_backend.from_numpy(np.array([[[[0, 16], [3, 2]]]], np.int64))
    with pytest.raises(IndexError, match="index 16 is out of range for a plane of 16 elements"):
        cuda_backend.max_pool2d_backward(g, idx, (1, 1, 4, 4))
