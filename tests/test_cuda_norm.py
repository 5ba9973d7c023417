"""Normalization, dropout and random numbers on device "cuda" (kernels/norm.cu and
kernels/random.cu): batch/layer/group norm forward and backward match the cpu device,
the Philox generator matches its reference and is uniform, normal and repeatable, and
dropout keeps its contract.  Runs in the CPU emulator (GENESIS_CUDA_EMULATE=1, set here
unless the environment says otherwise)."""
import os

os.environ.setdefault("GENESIS_CUDA_EMULATE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings, strategies as st  # noqa: E402

import genesis as G  # noqa: E402
from cuda_parity import DTYPES, assert_close, assert_same_error  # noqa: E402
import genesis.nn.functional as F  # noqa: E402
from genesis.autograd import gradcheck  # noqa: E402
from genesis.backend import cpu as cpu_backend  # noqa: E402
from genesis.backend.cuda import backend as cuda_backend  # noqa: E402
from genesis.backend.cuda import emulator  # noqa: E402
from genesis.backend.cuda._device import kernel  # noqa: E402

TOL = {"float32": 2e-5, "float64": 1e-10}


def _pair(a, dtype, requires_grad=True, strided=False):
    """The same values on the cpu and on cuda; `strided`: the cuda copy is a
    non-contiguous (transposed) view."""
    dt = DTYPES[dtype]
    cpu = G.tensor(a, dtype=dt, requires_grad=requires_grad)
    if strided:
        base = G.tensor(np.ascontiguousarray(np.swapaxes(a, 0, -1)), dtype=dt, device="cuda")
        cuda = base.transpose(0, a.ndim - 1).detach()
        assert not cuda._data.flags.c_contiguous
        cuda.requires_grad_(requires_grad)
    else:
        cuda = G.tensor(a, dtype=dt, device="cuda", requires_grad=requires_grad)
    return cpu, cuda


def _close(got, expected, dtype):
    assert_close(got, expected, TOL[dtype])


def _check_both(fn, inputs, dtype, seed=0):
    """fn on cpu and cuda inputs (pairs): outputs and every input's gradient agree."""
    cpu, cuda = [p[0] for p in inputs], [p[1] for p in inputs]
    a, b = fn(*cpu), fn(*cuda)
    _close(b, a, dtype)
    w = np.random.default_rng(seed).standard_normal(tuple(a.shape))
    (a * G.tensor(w, dtype=a.dtype)).sum().backward()
    (b * G.tensor(w, dtype=b.dtype, device="cuda")).sum().backward()
    for x, y in zip(cpu, cuda):
        assert (x.grad is None) == (y.grad is None)
        if x.grad is not None:
            _close(y.grad, x.grad, dtype)


def _data(shape, seed, shift=0.0):
    return np.random.default_rng(seed).standard_normal(shape) * 2.0 + shift


# ------------------------------------------------------------------ batch norm
# (N, C, *): primes, no spatial dims, and a channel of more than 256 values (several per
# thread); one block per channel, so every C > 1 means several blocks.
BN_SHAPES = [(3, 5), (2, 3, 7), (4, 2, 3, 5), (1, 3, 17, 19), (7, 13)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_matches_cpu(shape, dtype, affine):
    C = shape[1]
    x = _pair(_data(shape, 1, shift=50.0), dtype, strided=len(shape) > 2)
    params = [_pair(_data((C,), 2), dtype), _pair(_data((C,), 3), dtype)] if affine else []
    stats = {}
    for dev in ("cpu", "cuda"):
        stats[dev] = (G.tensor(_data((C,), 4), dtype=DTYPES[dtype], device=dev),
                      G.tensor(np.abs(_data((C,), 5)) + 0.5, dtype=DTYPES[dtype], device=dev))

    def fn(x, *wb):
        rm, rv = stats[x.device.type]
        return F.batch_norm(x, rm, rv, *wb, training=True, momentum=0.3, eps=1e-3)

    _check_both(fn, [x] + params, dtype)
    for got, expected in zip(stats["cuda"], stats["cpu"]):  # running statistics updated alike
        _close(got, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 5), (2, 4, 3, 3)], ids=str)
def test_batch_norm_eval_matches_cpu(shape, dtype):
    C = shape[1]
    x = _pair(_data(shape, 6), dtype)
    w, b = _pair(_data((C,), 7), dtype), _pair(_data((C,), 8), dtype)
    rm = {d: G.tensor(_data((C,), 9), dtype=DTYPES[dtype], device=d) for d in ("cpu", "cuda")}
    rv = {d: G.tensor(np.abs(_data((C,), 10)) + 0.1, dtype=DTYPES[dtype], device=d)
          for d in ("cpu", "cuda")}
    before = rm["cuda"].cpu().numpy().copy()

    def fn(x, w, b):
        d = x.device.type
        return F.batch_norm(x, rm[d], rv[d], w, b, training=False)

    _check_both(fn, [x, w, b], dtype)
    np.testing.assert_array_equal(rm["cuda"].cpu().numpy(), before)  # eval: left alone


def test_batch_norm_module_and_strided_running_stats():
    """nn.BatchNorm2d in train then eval mode, and running statistics that are strided
    views (updated in place in the caller's memory)."""
    a = _data((3, 4, 5, 2), 11)
    G.manual_seed(0)
    cpu_m = G.nn.BatchNorm2d(4).double()
    cuda_m = G.nn.BatchNorm2d(4).double().to("cuda")
    for train in (True, False):
        cpu_m.train(train)
        cuda_m.train(train)
        _close(cuda_m(G.tensor(a, device="cuda")), cpu_m(G.tensor(a)), "float64")
    _close(cuda_m.running_var, cpu_m.running_var, "float64")
    store = {d: G.zeros(4, 2, dtype=G.float64, device=d) for d in ("cpu", "cuda")}
    for d in store:
        F.batch_norm(G.tensor(a, device=d), store[d][:, 1], None, training=True)
    _close(store["cuda"], store["cpu"], "float64")
    assert float(abs(store["cuda"][:, 0]).sum()) == 0.0


def test_batch_norm_output_mask():
    """Only the gradients asked for are computed: input only, weight only."""
    a = _data((4, 3, 5), 12)
    for needs in [(True, False, False), (False, True, False), (False, False, True)]:
        x = _pair(a, "float64", requires_grad=needs[0])
        w = _pair(_data((3,), 13), "float64", requires_grad=needs[1])
        b = _pair(_data((3,), 14), "float64", requires_grad=needs[2])
        _check_both(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                    [x, w, b], "float64")


# ------------------------------------------------------------------ layer norm
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,normalized", [
    ((5,), (5,)), ((3, 7), (7,)), ((2, 3, 11), (3, 11)), ((2, 301), (301,)),
    ((4, 2, 5), (2, 5)),
], ids=str)
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
def test_layer_norm_matches_cpu(shape, normalized, dtype, affine):
    x = _pair(_data(shape, 20, shift=-30.0), dtype, strided=len(shape) > 1)
    params = []
    if affine != "none":
        params.append(_pair(_data(normalized, 21), dtype))
    if affine == "both":
        params.append(_pair(_data(normalized, 22), dtype))
    _check_both(lambda x, *wb: F.layer_norm(x, normalized, *wb, eps=1e-4), [x] + params, dtype)


def test_more_statistics_than_blocks_and_layer_norm_module():
    """More rows (channels) than the grid's 4096 blocks: blocks loop over them."""
    x = _pair(_data((4099, 3), 23), "float64")
    _check_both(lambda x: F.layer_norm(x, (3,)), [x], "float64")
    x = _pair(_data((2, 4099), 25), "float64")
    _check_both(lambda x: F.batch_norm(x, None, None, training=True), [x], "float64")
    cpu_m, cuda_m = G.nn.LayerNorm(6).double(), G.nn.LayerNorm(6).double().to("cuda")
    a = _data((2, 3, 6), 24)
    _close(cuda_m(G.tensor(a, device="cuda")), cpu_m(G.tensor(a)), "float64")


# ------------------------------------------------------------------ group norm
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,groups", [
    ((2, 6), 3), ((3, 4, 5), 2), ((2, 6, 3, 3), 6), ((1, 3, 10, 11), 1), ((5, 9, 2), 3),
], ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_matches_cpu(shape, groups, dtype, affine):
    C = shape[1]
    x = _pair(_data(shape, 30, shift=10.0), dtype, strided=len(shape) > 2)
    params = [_pair(_data((C,), 31), dtype), _pair(_data((C,), 32), dtype)] if affine else []
    _check_both(lambda x, *wb: F.group_norm(x, groups, *wb), [x] + params, dtype)


def test_group_norm_output_mask_and_module():
    a = _data((3, 4, 5), 33)
    x = _pair(a, "float64", requires_grad=False)
    w, b = _pair(_data((4,), 34), "float64"), _pair(_data((4,), 35), "float64", False)
    _check_both(lambda x, w, b: F.group_norm(x, 2, w, b), [x, w, b], "float64")
    cpu_m, cuda_m = G.nn.GroupNorm(2, 4).double(), G.nn.GroupNorm(2, 4).double().to("cuda")
    _close(cuda_m(G.tensor(a, device="cuda")), cpu_m(G.tensor(a)), "float64")


@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 3), groups=st.integers(1, 3), per=st.integers(1, 3),
       spatial=st.integers(1, 40), seed=st.integers(0, 1000))
def test_norms_match_cpu_on_drawn_shapes(n, groups, per, spatial, seed):
    shape = (n + 1, groups * per, spatial)
    C = shape[1]
    x = _pair(_data(shape, seed), "float64")
    w = _pair(_data((C,), seed + 1), "float64")
    _check_both(lambda x, w: F.group_norm(x, groups, w), [x, w], "float64", seed)
    _check_both(lambda x, w: F.batch_norm(x, None, None, w, training=True), [x, w],
                "float64", seed)
    _check_both(lambda x: F.layer_norm(x, (C, spatial)), [x], "float64", seed)


# ------------------------------------------------------------------ gradcheck, thread order
def _cuda(shape, seed):
    return G.tensor(_data(shape, seed), dtype=G.float64, device="cuda", requires_grad=True)


def test_gradcheck_on_device():
    x, w, b = _cuda((3, 4, 2), 40), _cuda((4,), 41), _cuda((4,), 42)
    assert gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), (x, w, b))
    assert gradcheck(lambda x, w, b: F.group_norm(x, 2, w, b), (x, w, b))
    lw, lb = _cuda((4, 2), 43), _cuda((4, 2), 44)
    assert gradcheck(lambda x, w, b: F.layer_norm(x, (4, 2), w, b), (x, lw, lb))


@pytest.mark.parametrize("order", ["reverse", "random"])
def test_results_do_not_depend_on_thread_order(order):
    """Block reductions with barriers and warp shuffles, run in other thread orders."""
    a = _data((3, 6, 37), 50)
    fns = [lambda x: F.batch_norm(x, None, None, training=True), lambda x: F.group_norm(x, 3),
           lambda x: F.layer_norm(x, (37,))]
    for fn in fns:
        x = _pair(a, "float64")
        with emulator.thread_order(order, seed=3):
            _check_both(fn, [x], "float64")


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("case", [
    ("int input", lambda b, a: b.layer_norm(a(np.ones((2, 3), np.int64)), (3,), None, None, 1e-5)),
    ("norm dims", lambda b, a: b.layer_norm(a(np.ones((2, 3))), (3, 2, 1), None, None, 1e-5)),
    ("groups", lambda b, a: b.group_norm(a(np.ones((2, 6, 2))), 4, None, None, 1e-5)),
    ("weight size", lambda b, a: b.layer_norm(a(np.ones((2, 3))), (3,), a(np.ones(4)), None,
                                              1e-5)),
    ("stats size", lambda b, a: b.layer_norm_backward(a(np.ones((2, 3))), a(np.ones((2, 3))), (3,),
                                                      a(np.ones(3)), a(np.ones(2)), None,
                                                      (True, False, False))),
    ("bias shape", lambda b, a: b.batch_norm(a(np.ones((2, 3))), None, a(np.ones(2)), None, None,
                                             True, 0.1, 1e-5)),
    ("weight dtype", lambda b, a: b.group_norm(a(np.ones((2, 4))), 2, a(np.ones(4, np.float32)),
                                               None, 1e-5)),
    ("eval stats", lambda b, a: b.batch_norm(a(np.ones((2, 3))), None, None, None, None, False,
                                             0.1, 1e-5)),
    ("one value", lambda b, a: b.batch_norm(a(np.ones((1, 3))), None, None, a(np.zeros(3)),
                                            a(np.ones(3)), True, 0.1, 1e-5)),
    ("dropout p", lambda b, a: b.dropout(a(np.ones(4)), a(np.ones(4)), 1.5)),
    ("dropout rows", lambda b, a: b.dropout(a(np.ones(6)), a(np.ones(4)), 0.5)),
    ("dropout dtype", lambda b, a: b.dropout(a(np.ones(4, np.int64)), a(np.ones(4)), 0.5)),
], ids=lambda c: c[0])
def test_bad_input_raises_as_on_cpu(case):
    assert_same_error(case[1])


def test_public_api_errors_match_cpu():
    for dev in ("cpu", "cuda"):
        x = G.ones(2, 6, 3, device=dev)
        with pytest.raises(RuntimeError, match="divisible by num_groups"):
            F.group_norm(x, 4)
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            F.batch_norm(G.ones(1, 3, device=dev), None, None, training=True)
        with pytest.raises(TypeError, match="floating point"):
            F.dropout(G.ones(3, dtype=G.int64, device=dev), 0.5)


# ------------------------------------------------------------------ random numbers
_M0, _M1, _W0, _W1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85
_MASK = 0xFFFFFFFF


def _philox_reference(counter, key):
    """Philox4x32-10 in plain Python integers (the Random123 definition)."""
    x = list(counter)
    k0, k1 = key & _MASK, key >> 32
    for _ in range(10):
        p0, p1 = _M0 * x[0], _M1 * x[2]
        x = [(p1 >> 32) ^ x[1] ^ k0, p1 & _MASK, (p0 >> 32) ^ x[3] ^ k1, p0 & _MASK]
        k0, k1 = (k0 + _W0) & _MASK, (k1 + _W1) & _MASK
    return x


def _fill(dtype, n, key, normal=False):
    out = cuda_backend.empty((n,), dtype)
    kernel("random", f"fill_random_{'f32' if dtype == np.float32 else 'f64'}")(
        (2,), (32,), (out, np.int64(n), np.uint64(key), np.int32(normal)))
    return cuda_backend.to_numpy(out)


def test_philox_matches_reference():
    # Random123's known-answer vectors (key words (k0, k1) as k1 << 32 | k0)
    assert _philox_reference([0, 0, 0, 0], 0) == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    assert _philox_reference([_MASK] * 4, 2 ** 64 - 1) == [0x408F276D, 0x41C83B0E, 0xA20BC7C6,
                                                          0x6D5451FD]
    assert _philox_reference([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
                             0x299F31D0 << 32 | 0xA4093822) == [0xD16CFE09, 0x94FDCCEB,
                                                                0x5001E420, 0x24126EA1]
    key = 0x0123456789ABCDEF
    f32, f64 = _fill(np.float32, 4 * 70 + 3, key), _fill(np.float64, 2 * 70 + 1, key)
    for i in range(70):  # more blocks than the grid's threads: a grid-stride loop
        bits = _philox_reference([i, 0, 0, 0], key)
        np.testing.assert_array_equal(f32[4 * i:4 * i + 4],
                                      np.array([b >> 8 for b in bits], np.float32) / 2 ** 24)
        for k in range(2):
            expected = ((bits[2 * k] >> 5) * 2 ** 26 + (bits[2 * k + 1] >> 6)) / 2 ** 53
            assert f64[2 * i + k] == expected
    # a length that is not a multiple of the block: the tail is the next block's start
    np.testing.assert_array_equal(_fill(np.float32, 3, key), f32[:3])


@pytest.mark.parametrize("dtype", [G.float32, G.float64], ids=str)
def test_rand_is_uniform(dtype):
    G.manual_seed(1)
    u = G.rand(40000, dtype=dtype, device="cuda")
    assert u.device == G.device("cuda") and u.dtype == dtype
    a = u.cpu().numpy().astype(np.float64)
    assert a.min() >= 0.0 and a.max() < 1.0
    assert abs(a.mean() - 0.5) < 0.01 and abs(a.var() - 1 / 12) < 0.005
    counts = np.histogram(a, bins=20, range=(0, 1))[0]
    chi2 = ((counts - 2000) ** 2 / 2000).sum()
    assert chi2 < 60  # 19 degrees of freedom: p < 1e-5 above 50
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 0.02  # neighbours are independent


@pytest.mark.parametrize("dtype", [G.float32, G.float64], ids=str)
def test_randn_is_standard_normal(dtype):
    G.manual_seed(2)
    a = G.randn(200, 200, dtype=dtype, device="cuda").cpu().numpy().astype(np.float64).ravel()
    assert np.isfinite(a).all()
    z = (a - a.mean()) / a.std()
    assert abs(a.mean()) < 0.02 and abs(a.var() - 1) < 0.03
    assert abs((z ** 3).mean()) < 0.05 and abs((z ** 4).mean() - 3) < 0.1
    assert abs((np.abs(a) < 1).mean() - 0.6827) < 0.01


def test_random_numbers_are_repeatable():
    G.manual_seed(7)
    first = [G.rand(5, 3, device="cuda"), G.randn(9, device="cuda", dtype=G.float64)]
    G.manual_seed(7)
    again = [G.rand(5, 3, device="cuda"), G.randn(9, device="cuda", dtype=G.float64)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.cpu().numpy(), b.cpu().numpy())
    G.manual_seed(8)
    other = G.rand(5, 3, device="cuda").cpu().numpy()
    assert not np.array_equal(other, first[0].cpu().numpy())
    assert not np.array_equal(G.rand(5, 3, device="cuda").cpu().numpy(), other)  # next call
    gen = G.Generator().manual_seed(7)
    np.testing.assert_array_equal(G.rand(5, 3, device="cuda", generator=gen).cpu().numpy(),
                                  first[0].cpu().numpy())
    assert tuple(G.rand(0, 4, device="cuda").shape) == (0, 4)


# ------------------------------------------------------------------ dropout
@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_kernel_matches_cpu_for_the_same_uniforms(dtype):
    """Given the same random numbers, the device kernel computes what the cpu's does."""
    rng = np.random.default_rng(60)
    nd = np.float32 if dtype == "float32" else np.float64
    x = rng.standard_normal((3, 5, 7)).astype(nd)
    for u_shape, p in [((3, 5, 7), 0.3), ((3, 5, 1), 0.5), ((3, 5, 7), 0.0), ((3, 1, 1), 1.0)]:
        u = rng.random(u_shape).astype(nd)
        out, mask = cpu_backend.dropout(x, u, p)
        got = cuda_backend.dropout(cuda_backend.from_numpy(x), cuda_backend.from_numpy(u), p)
        np.testing.assert_array_equal(cuda_backend.to_numpy(got[0]), out)
        np.testing.assert_array_equal(cuda_backend.to_numpy(got[1]), mask)


@pytest.mark.parametrize("dtype", [G.float32, G.float64], ids=str)
def test_dropout_on_device(dtype):
    G.manual_seed(3)
    a = _data((50, 41), 61)
    x = G.tensor(a, dtype=dtype, device="cuda").transpose(0, 1).requires_grad_()  # strided
    y = F.dropout(x, 0.3)
    y.sum().backward()
    out, grad = y.detach().cpu().numpy(), x.grad.cpu().numpy()
    kept = grad != 0
    assert set(np.unique(grad)) <= {0.0, np.float32(1 / 0.7) if dtype == G.float32 else 1 / 0.7}
    assert abs((~kept).mean() - 0.3) < 0.04
    tol = TOL["float32" if dtype == G.float32 else "float64"]
    np.testing.assert_allclose(out, a.T * grad, rtol=tol)
    G.manual_seed(3)
    again = G.tensor(a, dtype=dtype, device="cuda").transpose(0, 1)
    assert F.dropout(again, 0.3, inplace=True) is again
    np.testing.assert_array_equal(again.cpu().numpy(), out)


def test_dropout2d_drops_whole_channels():
    G.manual_seed(4)
    x = G.ones(6, 40, 3, 2, device="cuda", dtype=G.float64)
    y = F.dropout2d(x, 0.5).cpu().numpy()
    per_channel = y.reshape(6, 40, -1)
    assert (per_channel.min(-1) == per_channel.max(-1)).all()
    assert set(np.unique(per_channel)) == {0.0, 2.0}
    m = G.nn.Dropout(0.4).to("cuda")
    m.eval()
    assert m(x) is x
