"""batch_norm, layer_norm, group_norm and normalize.

Forward against numpy (float32 and float64) on hypothesis-drawn shapes, running
statistics, eval mode, gradcheck in float64, the fused kernels against slow
references composed of genesis ops, strided inputs, 1 and 2 threads, every
instruction-set copy of the kernels, error messages, and parity with
torch.nn.functional when torch is installed.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import genesis as G
import genesis.nn.functional as F
from genesis import _C

_G = {"float32": G.float32, "float64": G.float64}
_NP = {"float32": np.float32, "float64": np.float64}
_TOL = {"float32": dict(rtol=2e-5, atol=2e-5), "float64": dict(rtol=1e-11, atol=1e-11)}
DTYPES = ["float32", "float64"]
FEW = settings(max_examples=max(2, settings().max_examples // 2))


def _t(a, dtype="float64", requires_grad=False):
    if a is None:
        return None
    return G.tensor(np.asarray(a), dtype=_G[dtype], requires_grad=requires_grad)


def _np(t):
    return t.detach().numpy()


# ---------------------------------------------------------------- drawing inputs
def _rng(data):
    return np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))


def _spread(rng, shape):
    """Distinct values (no two closer than ~0.3) so variances stay away from zero."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) - n / 2) * 0.37 + 0.05 * rng.standard_normal(shape)


def _nc_shape(data, small, min_values=2):
    """(N, C, *spatial) with at least `min_values` values per channel."""
    hi = 3 if small else 4
    n = data.draw(st.integers(1, hi), label="N")
    c = data.draw(st.integers(1, hi), label="C")
    spatial = data.draw(st.lists(st.integers(1, hi), max_size=2), label="spatial")
    if n * math.prod(spatial) < min_values:
        n = min_values
    return (n, c, *spatial)


def _affine(data, rng, shape):
    w = rng.uniform(0.5, 1.5, shape) if data.draw(st.booleans(), label="weight") else None
    b = rng.standard_normal(shape) if data.draw(st.booleans(), label="bias") else None
    return w, b


# ---------------------------------------------------------------- numpy references
def np_batch_norm(x, rm, rv, w, b, training, momentum, eps):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if training:
        mean, var = x.mean(axes), x.var(axes)
        n = x.size // x.shape[1]
        rm = (1 - momentum) * rm + momentum * mean
        rv = (1 - momentum) * rv + momentum * var * n / (n - 1)
    else:
        mean, var = rm, rv
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    if w is not None:
        y = y * w.reshape(shape)
    if b is not None:
        y = y + b.reshape(shape)
    return y, rm, rv


def np_layer_norm(x, k, w, b, eps):
    axes = tuple(range(x.ndim - k, x.ndim))
    y = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + eps)
    return y * (1 if w is None else w) + (0 if b is None else b)


def np_group_norm(x, groups, w, b, eps):
    xr = x.reshape(x.shape[0], groups, -1)
    y = ((xr - xr.mean(-1, keepdims=True)) / np.sqrt(xr.var(-1, keepdims=True) + eps))
    y = y.reshape(x.shape)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return y * (1 if w is None else w.reshape(shape)) + (0 if b is None else b.reshape(shape))


# ---------------------------------------------------------------- composed genesis references
def ref_batch_norm(x, rm, rv, w, b, training, eps):
    dims = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if training:
        mean, var = x.mean(dims, keepdim=True), G.var(x, dims, correction=0, keepdim=True)
    else:
        mean, var = rm.reshape(shape), rv.reshape(shape)
    y = (x - mean) / G.sqrt(var + eps)
    if w is not None:
        y = y * w.reshape(shape)
    return y if b is None else y + b.reshape(shape)


def ref_layer_norm(x, k, w, b, eps):
    dims = tuple(range(x.ndim - k, x.ndim))
    y = (x - x.mean(dims, keepdim=True)) / G.sqrt(G.var(x, dims, correction=0, keepdim=True)
                                                 + eps)
    if w is not None:
        y = y * w
    return y if b is None else y + b


def ref_group_norm(x, groups, w, b, eps):
    xr = x.reshape(x.shape[0], groups, -1)
    y = (xr - xr.mean(-1, keepdim=True)) / G.sqrt(G.var(xr, -1, correction=0, keepdim=True)
                                                 + eps)
    y = y.reshape(tuple(x.shape))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if w is not None:
        y = y * w.reshape(shape)
    return y if b is None else y + b.reshape(shape)


# ---------------------------------------------------------------- forward vs numpy
@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_batch_norm_matches_numpy(dtype, data):
    rng = _rng(data)
    shape = _nc_shape(data, False)
    training = data.draw(st.booleans(), label="training")
    momentum = data.draw(st.sampled_from([0.1, 0.5, 1.0, 0.0]), label="momentum")
    x = (rng.standard_normal(shape) * 2 + 1).astype(_NP[dtype])
    rm = rng.standard_normal(shape[1]).astype(_NP[dtype])
    rv = rng.uniform(0.5, 2, shape[1]).astype(_NP[dtype])
    w, b = _affine(data, rng, shape[1])
    w, b = [None if a is None else a.astype(_NP[dtype]) for a in (w, b)]
    trm, trv, tx = _t(rm, dtype), _t(rv, dtype), _t(x, dtype)
    out = F.batch_norm(tx, trm, trv, _t(w, dtype), _t(b, dtype), training, momentum, 1e-5)
    f64 = [None if a is None else a.astype(np.float64) for a in (x, rm, rv, w, b)]
    want, want_rm, want_rv = np_batch_norm(*f64, training, momentum, 1e-5)
    assert out.dtype is _G[dtype] and tuple(out.shape) == shape
    np.testing.assert_allclose(_np(out), want, **_TOL[dtype])
    np.testing.assert_allclose(_np(trm), want_rm, **_TOL[dtype])
    np.testing.assert_allclose(_np(trv), want_rv, **_TOL[dtype])
    np.testing.assert_array_equal(_np(tx), x)  # the input is never modified


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_layer_norm_matches_numpy(dtype, data):
    rng = _rng(data)
    shape = tuple(data.draw(st.lists(st.integers(1, 5), min_size=1, max_size=4), label="shape"))
    k = data.draw(st.integers(1, len(shape)), label="k")
    x = (rng.standard_normal(shape) * 3 - 2).astype(_NP[dtype])
    w, b = _affine(data, rng, shape[len(shape) - k:])
    w, b = [None if a is None else a.astype(_NP[dtype]) for a in (w, b)]
    normalized = shape[len(shape) - k:]
    if k == 1 and data.draw(st.booleans(), label="int"):
        normalized = normalized[0]
    out = F.layer_norm(_t(x, dtype), normalized, _t(w, dtype), _t(b, dtype))
    want = np_layer_norm(x.astype(np.float64), k,
                         *[None if a is None else a.astype(np.float64) for a in (w, b)], 1e-5)
    assert out.dtype is _G[dtype]
    np.testing.assert_allclose(_np(out), want, **_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_group_norm_matches_numpy(dtype, data):
    rng = _rng(data)
    groups = data.draw(st.integers(1, 3), label="groups")
    per = data.draw(st.integers(1, 3), label="channels per group")
    n = data.draw(st.integers(1, 3), label="N")
    spatial = data.draw(st.lists(st.integers(1, 4), max_size=2), label="spatial")
    if n * per * math.prod(spatial) == 1:
        n = 2
    shape = (n, groups * per, *spatial)
    x = (rng.standard_normal(shape) + 0.5).astype(_NP[dtype])
    w, b = _affine(data, rng, shape[1])
    w, b = [None if a is None else a.astype(_NP[dtype]) for a in (w, b)]
    eps = data.draw(st.sampled_from([1e-5, 1e-3]), label="eps")
    out = F.group_norm(_t(x, dtype), groups, _t(w, dtype), _t(b, dtype), eps)
    want = np_group_norm(x.astype(np.float64), groups,
                         *[None if a is None else a.astype(np.float64) for a in (w, b)], eps)
    np.testing.assert_allclose(_np(out), want, **_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_normalize_matches_numpy(dtype, data):
    rng = _rng(data)
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3), label="shape"))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    p = data.draw(st.sampled_from([2.0, 1.0, 3.0, float("inf")]), label="p")
    x = rng.standard_normal(shape).astype(_NP[dtype])
    out = F.normalize(_t(x, dtype), p=p, dim=dim)
    norm = np.linalg.norm(x.astype(np.float64), ord=p, axis=dim, keepdims=True) if p != 2 else \
        np.sqrt((x.astype(np.float64) ** 2).sum(dim, keepdims=True))
    np.testing.assert_allclose(_np(out), x / np.maximum(norm, 1e-12), **_TOL[dtype])


def test_normalize_zero_vector_stays_zero_with_finite_gradient():
    x = G.zeros(2, 3, dtype=G.float64, requires_grad=True)
    out = F.normalize(x)
    out.sum().backward()
    np.testing.assert_array_equal(_np(out), 0)
    np.testing.assert_allclose(x.grad.numpy(), 1e12)  # d(x / eps)/dx, as in PyTorch


def test_float32_statistics_accumulate_in_double():
    # A large common offset: float32 sums of squares would lose the variance.
    rng = np.random.default_rng(0)
    x = (1e4 + rng.standard_normal((64, 3, 40))).astype(np.float32)
    want, _, want_rv = np_batch_norm(x.astype(np.float64), np.zeros(3), np.ones(3), None, None,
                                     True, 1.0, 1e-5)
    rv = G.ones(3)
    out = F.batch_norm(G.tensor(x), G.zeros(3), rv, training=True, momentum=1.0)
    np.testing.assert_allclose(_np(out), want, atol=2e-3)
    np.testing.assert_allclose(_np(rv), want_rv, rtol=1e-5)
    ln = F.layer_norm(G.tensor(x), (3, 40))
    np.testing.assert_allclose(_np(ln), np_layer_norm(x.astype(np.float64), 2, None, None, 1e-5),
                               atol=2e-3)


# ---------------------------------------------------------------- running statistics, eval mode
def test_running_statistics_follow_pytorch_update_rule():
    rng = np.random.default_rng(1)
    rm, rv = G.zeros(4, dtype=G.float64), G.ones(4, dtype=G.float64)
    want_rm, want_rv = np.zeros(4), np.ones(4)
    for step in range(3):
        x = rng.standard_normal((5, 4, 3)) * (step + 1) + step
        F.batch_norm(_t(x), rm, rv, training=True, momentum=0.3)
        _, want_rm, want_rv = np_batch_norm(x, want_rm, want_rv, None, None, True, 0.3, 1e-5)
    np.testing.assert_allclose(rm.numpy(), want_rm, rtol=1e-12)
    np.testing.assert_allclose(rv.numpy(), want_rv, rtol=1e-12)


def test_eval_mode_uses_and_keeps_running_statistics():
    x = _t(np.random.default_rng(2).standard_normal((3, 2, 4)))
    rm, rv = _t([0.5, -1.0]), _t([2.0, 0.25])
    version = rm._version_value
    out = F.batch_norm(x, rm, rv, training=False)
    np.testing.assert_array_equal(rm.numpy(), [0.5, -1.0])
    np.testing.assert_array_equal(rv.numpy(), [2.0, 0.25])
    assert rm._version_value == version
    want, _, _ = np_batch_norm(x.numpy(), rm.numpy(), rv.numpy(), None, None, False, 0.1, 1e-5)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-12)


def test_training_without_running_statistics_and_version_bump():
    x = _t(np.random.default_rng(3).standard_normal((4, 3)))
    out = F.batch_norm(x, None, None, training=True)
    np.testing.assert_allclose(out.numpy(), np_batch_norm(x.numpy(), np.zeros(3), np.ones(3),
                                                          None, None, True, 0.1, 1e-5)[0])
    rm, rv = G.zeros(3, dtype=G.float64), G.ones(3, dtype=G.float64)
    before = rm._version_value, rv._version_value
    F.batch_norm(x, rm, rv, training=True)
    assert (rm._version_value, rv._version_value) == (before[0] + 1, before[1] + 1)


def test_empty_batch_leaves_running_statistics_alone():
    rm, rv = G.zeros(3), G.ones(3)
    out = F.batch_norm(G.zeros(0, 3, 2), rm, rv, training=True)
    assert tuple(out.shape) == (0, 3, 2)
    np.testing.assert_array_equal(rm.numpy(), 0)
    np.testing.assert_array_equal(rv.numpy(), 1)


def test_saved_input_modified_in_place_is_detected():
    x = _t(np.random.default_rng(4).standard_normal((3, 2)), requires_grad=True)
    y = x * 1.0
    out = F.layer_norm(y, (2,))
    y.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


# ---------------------------------------------------------------- gradients
def _batch_norm_case(data):
    rng = _rng(data)
    shape = _nc_shape(data, True)
    training = data.draw(st.booleans(), label="training")
    x = _t(_spread(rng, shape), requires_grad=True)
    w, b = _affine(data, rng, shape[1])
    stats = _t(rng.standard_normal(shape[1])), _t(rng.uniform(0.5, 2, shape[1]))
    return x, _t(w, requires_grad=True), _t(b, requires_grad=True), stats, training


@FEW
@given(data=st.data())
def test_batch_norm_gradcheck(data):
    x, w, b, (rm, rv), training = _batch_norm_case(data)
    inputs = [t for t in (x, w, b) if t is not None]

    def fn(*ts):
        it = iter(ts)
        args = [next(it) if t is not None else None for t in (x, w, b)]
        # fresh copies: the running statistics must not drift between evaluations
        return F.batch_norm(args[0], rm.clone(), rv.clone(), args[1], args[2], training)
    assert G.autograd.gradcheck(fn, inputs)


@FEW
@given(data=st.data())
def test_layer_norm_gradcheck(data):
    rng = _rng(data)
    shape = tuple(data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3), label="shape"))
    k = data.draw(st.integers(1, len(shape)), label="k")
    w, b = _affine(data, rng, shape[len(shape) - k:])
    x = _t(_spread(rng, shape), requires_grad=True)
    w, b = _t(w, requires_grad=True), _t(b, requires_grad=True)
    inputs = [t for t in (x, w, b) if t is not None]

    def fn(*ts):
        it = iter(ts)
        args = [next(it) if t is not None else None for t in (x, w, b)]
        return F.layer_norm(args[0], shape[len(shape) - k:], args[1], args[2])
    assert G.autograd.gradcheck(fn, inputs)


@FEW
@given(data=st.data())
def test_group_norm_gradcheck(data):
    rng = _rng(data)
    groups = data.draw(st.integers(1, 2), label="groups")
    per = data.draw(st.integers(1, 2), label="per")
    spatial = data.draw(st.lists(st.integers(1, 3), max_size=2), label="spatial")
    n = data.draw(st.integers(1, 2), label="N")
    shape = (max(n, 2) if per * math.prod(spatial) == 1 else n, groups * per, *spatial)
    w, b = _affine(data, rng, shape[1])
    x = _t(_spread(rng, shape), requires_grad=True)
    w, b = _t(w, requires_grad=True), _t(b, requires_grad=True)
    inputs = [t for t in (x, w, b) if t is not None]

    def fn(*ts):
        it = iter(ts)
        args = [next(it) if t is not None else None for t in (x, w, b)]
        return F.group_norm(args[0], groups, args[1], args[2])
    assert G.autograd.gradcheck(fn, inputs)


@FEW
@given(data=st.data())
def test_normalize_gradcheck_and_gradgradcheck(data):
    rng = _rng(data)
    shape = tuple(data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3), label="shape"))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    p = data.draw(st.sampled_from([2.0, 3.0]), label="p")
    x = _t(rng.uniform(0.5, 2, shape) * rng.choice([-1, 1], shape), requires_grad=True)
    fn = lambda t: F.normalize(t, p=p, dim=dim)  # noqa: E731
    assert G.autograd.gradcheck(fn, [x])
    assert G.autograd.gradgradcheck(fn, [x])


def test_only_requested_gradients_are_computed():
    x = np.random.default_rng(5).standard_normal((3, 4))
    w = _t(np.ones(4), requires_grad=True)
    b = _t(np.zeros(4))
    tx = _t(x)
    F.layer_norm(tx, (4,), w, b).sum().backward()
    assert w.grad is not None and tx.grad is None and b.grad is None
    np.testing.assert_allclose(w.grad.numpy(), np_layer_norm(x, 1, None, None, 1e-5).sum(0),
                               rtol=1e-12)


@pytest.mark.parametrize("op", ["batch_norm", "layer_norm", "group_norm"])
def test_double_backward_is_refused_clearly(op):
    x = _t(np.random.default_rng(6).standard_normal((3, 4)), requires_grad=True)
    fns = {"batch_norm": lambda t: F.batch_norm(t, None, None, training=True),
           "layer_norm": lambda t: F.layer_norm(t, (4,)),
           "group_norm": lambda t: F.group_norm(t, 2)}
    y = fns[op](x)
    with pytest.raises(RuntimeError, match=f"{op}: double backward is not supported"):
        G.autograd.grad((y * y).sum(), x, create_graph=True)
    (g,) = G.autograd.grad((y * y).sum(), x)  # first order is fine
    assert tuple(g.shape) == (3, 4)


# ---------------------------------------------------------------- fused vs composed reference
def _check_against_reference(fused, reference, inputs, seed):
    """Outputs and gradients (for a random upstream gradient) agree."""
    a, b = fused(*inputs), reference(*inputs)
    np.testing.assert_allclose(_np(a), _np(b), rtol=1e-10, atol=1e-10)
    grad = _t(np.random.default_rng(seed).standard_normal(tuple(a.shape)))
    ga = G.autograd.grad(a, inputs, grad)
    gb = G.autograd.grad(b, inputs, grad)
    for x, y in zip(ga, gb):
        np.testing.assert_allclose(_np(x), _np(y), rtol=1e-9, atol=1e-9)


@FEW
@given(data=st.data())
def test_batch_norm_matches_composed_reference(data):
    x, w, b, (rm, rv), training = _batch_norm_case(data)
    w = w if w is not None else _t(np.ones(x.shape[1]), requires_grad=True)
    b = b if b is not None else _t(np.zeros(x.shape[1]), requires_grad=True)
    _check_against_reference(
        lambda x, w, b: F.batch_norm(x, rm.clone(), rv.clone(), w, b, training),
        lambda x, w, b: ref_batch_norm(x, rm, rv, w, b, training, 1e-5), [x, w, b], 0)


@FEW
@given(data=st.data())
def test_layer_norm_matches_composed_reference(data):
    rng = _rng(data)
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3), label="shape"))
    k = data.draw(st.integers(1, len(shape)), label="k")
    x = _t(_spread(rng, shape), requires_grad=True)
    w = _t(rng.uniform(0.5, 1.5, shape[len(shape) - k:]), requires_grad=True)
    b = _t(rng.standard_normal(shape[len(shape) - k:]), requires_grad=True)
    _check_against_reference(lambda x, w, b: F.layer_norm(x, shape[len(shape) - k:], w, b),
                             lambda x, w, b: ref_layer_norm(x, k, w, b, 1e-5), [x, w, b], 1)


@FEW
@given(data=st.data())
def test_group_norm_matches_composed_reference(data):
    rng = _rng(data)
    groups = data.draw(st.integers(1, 3), label="groups")
    shape = (data.draw(st.integers(2, 3), label="N"), groups * data.draw(st.integers(1, 3)),
             *data.draw(st.lists(st.integers(1, 4), max_size=2), label="spatial"))
    x = _t(_spread(rng, shape), requires_grad=True)
    w = _t(rng.uniform(0.5, 1.5, shape[1]), requires_grad=True)
    b = _t(rng.standard_normal(shape[1]), requires_grad=True)
    _check_against_reference(lambda x, w, b: F.group_norm(x, groups, w, b),
                             lambda x, w, b: ref_group_norm(x, groups, w, b, 1e-5), [x, w, b], 2)


# ---------------------------------------------------------------- layouts, threads, ISAs
def _strided(a):
    """The same values as `a` in a transposed, step-2 view (not contiguous)."""
    big = np.zeros(a.shape[::-1] + (2,), a.dtype)
    big[..., 1] = a.T
    t = G.tensor(big, dtype=G.float64)[..., 1].permute(*reversed(range(a.ndim)))
    assert not t._data.flags.c_contiguous
    return t


def test_non_contiguous_inputs_match_contiguous():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 6, 3, 2))
    w, b = rng.uniform(0.5, 1.5, 6), rng.standard_normal(6)
    cases = [
        lambda x, w, b, rm, rv: F.batch_norm(x, rm, rv, w, b, training=True),
        lambda x, w, b, rm, rv: F.batch_norm(x, rm, rv, w, b, training=False),
        lambda x, w, b, rm, rv: F.group_norm(x, 3, w, b),
        lambda x, w, b, rm, rv: F.layer_norm(x, (2,), w[:2], b[:2]),
    ]
    for fn in cases:
        # dense operands, and strided views of the same values (running stats too)
        rm_d, rv_d = _t(np.zeros(6)), _t(np.ones(6) * 2)
        rm_s, rv_s = _strided(np.zeros(6)), _strided(np.ones(6) * 2)
        xd, xs = _t(x, requires_grad=True), _strided(x).requires_grad_()
        wd, ws = _t(w, requires_grad=True), _strided(w).requires_grad_()
        bd, bs = _t(b, requires_grad=True), _strided(b).requires_grad_()
        out_d, out_s = fn(xd, wd, bd, rm_d, rv_d), fn(xs, ws, bs, rm_s, rv_s)
        np.testing.assert_allclose(_np(out_s), _np(out_d), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(_np(rm_s), _np(rm_d), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(_np(rv_s), _np(rv_d), rtol=1e-12)
        grad = _strided(rng.standard_normal(x.shape))  # a non-contiguous upstream gradient
        for t in (xd, xs, wd, ws, bd, bs):
            t.grad = None
        out_d.backward(grad.contiguous())
        out_s.backward(grad)
        for d, s in ((xd, xs), (wd, ws), (bd, bs)):
            np.testing.assert_allclose(s.grad.numpy(), d.grad.numpy(), rtol=1e-12, atol=1e-12)


def _run_all(dtype):
    """Every kernel (forward and backward) on inputs big enough for several threads."""
    rng = np.random.default_rng(8)
    x = _t((rng.standard_normal((16, 8, 32, 17)) * 3 + 1).astype(_NP[dtype]), dtype,
           requires_grad=True)
    w = _t(rng.uniform(0.5, 1.5, 8), dtype, requires_grad=True)
    b = _t(rng.standard_normal(8), dtype, requires_grad=True)
    lw = _t(rng.uniform(0.5, 1.5, (32, 17)), dtype, requires_grad=True)
    g = _t(rng.standard_normal(tuple(x.shape)), dtype)
    results = []
    for training in (True, False):
        rm, rv = _t(np.zeros(8), dtype), _t(np.ones(8), dtype)
        outs = [F.batch_norm(x, rm, rv, w, b, training), F.layer_norm(x, (32, 17), lw, None),
                F.layer_norm(x, (17,)), F.group_norm(x, 4, w, b)]
        for out in outs:
            grads = G.autograd.grad(out, [x, w, b, lw], g, allow_unused=True)
            results += [_np(out)] + [_np(t) for t in grads if t is not None]
        results += [_np(rm), _np(rv)]
    return results


@pytest.mark.parametrize("dtype", DTYPES)
def test_results_do_not_depend_on_thread_count(dtype):
    before = G.get_num_threads()
    try:
        G.set_num_threads(1)
        one = _run_all(dtype)
        G.set_num_threads(2)
        two = _run_all(dtype)
    finally:
        G.set_num_threads(before)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def _isas():
    best = _C.best_isa()
    return [i for i in ("generic", "avx2", "avx512")
            if ("generic", "avx2", "avx512").index(i) <= ("generic", "avx2", "avx512").index(best)]


@pytest.mark.parametrize("isa", _isas())
def test_every_instruction_set_copy_agrees(isa):
    want = _run_all("float64")
    try:
        _C.set_isa(isa)
        got = _run_all("float64")
    finally:
        _C.set_isa("best")
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11)


# ---------------------------------------------------------------- errors
def test_batch_norm_errors():
    x = G.ones(2, 3, 4)
    with pytest.raises(RuntimeError, match=r"batch_norm: expected running_mean to be a vector "
                                           r"of 3 elements.*\[4\].*\[2, 3, 4\]"):
        F.batch_norm(x, G.zeros(4), G.ones(3))
    with pytest.raises(RuntimeError, match=r"batch_norm: expected weight .*\[2\]"):
        F.batch_norm(x, G.zeros(3), G.ones(3), weight=G.ones(2))
    with pytest.raises(ValueError, match=r"batch_norm: Expected more than 1 value per channel "
                                         r"when training, got input size \[1, 3\]"):
        F.batch_norm(G.ones(1, 3), G.zeros(3), G.ones(3), training=True)
    with pytest.raises(RuntimeError, match="batch_norm: running_mean and running_var must be "
                                           "given in evaluation mode"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(RuntimeError, match=r"batch_norm: .*at least 2 dimensions.*\[5\]"):
        F.batch_norm(G.ones(5), G.zeros(5), G.ones(5))
    with pytest.raises(TypeError, match=r"batch_norm: running_var has dtype .*float64 but "
                                        r"the input has dtype .*float32"):
        F.batch_norm(x, G.zeros(3), G.ones(3, dtype=G.float64))
    with pytest.raises(TypeError, match="batch_norm: expected a floating point input, got .*int64"):
        F.batch_norm(G.tensor([[1, 2], [3, 4]]), None, None, training=True)


def test_layer_norm_errors():
    x = G.ones(2, 3, 4)
    with pytest.raises(RuntimeError, match=r"layer_norm: Given normalized_shape=\[3\], expected "
                                           r"input with shape \[\*, 3\], but got input of size "
                                           r"\[2, 3, 4\]"):
        F.layer_norm(x, (3,))
    with pytest.raises(RuntimeError, match=r"layer_norm: Given normalized_shape"):
        F.layer_norm(G.ones(4), (3, 4))
    with pytest.raises(RuntimeError, match=r"layer_norm: expected weight to be of same shape as "
                                           r"normalized_shape = \[3, 4\].*\[4\]"):
        F.layer_norm(x, (3, 4), weight=G.ones(4))
    with pytest.raises(RuntimeError, match="at least 1-dimensional"):
        F.layer_norm(x, ())


def test_group_norm_errors():
    x = G.ones(2, 6, 3)
    with pytest.raises(RuntimeError, match=r"group_norm: Expected number of channels in input to "
                                           r"be divisible by num_groups, but got input of shape "
                                           r"\[2, 6, 3\] and num_groups=4"):
        F.group_norm(x, 4)
    with pytest.raises(RuntimeError, match="divisible"):
        F.group_norm(x, 0)
    with pytest.raises(RuntimeError, match=r"group_norm: expected weight to be a vector of size "
                                           r"equal to the number of channels in input \(6\)"):
        F.group_norm(x, 3, weight=G.ones(5))
    with pytest.raises(RuntimeError, match="group_norm: .*at least 2 dimensions"):
        F.group_norm(G.ones(3), 1)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        F.group_norm(G.ones(1, 3), 3)
    with pytest.raises(TypeError, match="num_groups must be an int"):
        F.group_norm(x, 2.0)


def test_kernels_check_their_operands():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="batch_norm: input must be contiguous"):
        _C.batch_norm(x.T, None, None, None, None, True, 0.1, 1e-5, np.empty((3, 2), np.float32),
                      np.empty(2, np.float32), np.empty(2, np.float32))
    with pytest.raises(ValueError, match=r"layer_norm: mean has shape \(3,\)"):
        _C.layer_norm(x, 1, None, None, 1e-5, np.empty_like(x), np.empty(3, np.float32),
                      np.empty(2, np.float32))
    with pytest.raises(TypeError, match="group_norm: weight has dtype float64"):
        _C.group_norm(x, 1, np.ones(3), None, 1e-5, np.empty_like(x), np.empty(2, np.float32),
                      np.empty(2, np.float32))
    with pytest.raises(ValueError, match="group_norm: num_groups 2 does not divide the 3 "
                                         "channels"):
        _C.group_norm(x, 2, None, None, 1e-5, np.empty_like(x), np.empty(4, np.float32),
                      np.empty(4, np.float32))
    with pytest.raises(TypeError, match="layer_norm: input has dtype int64"):
        _C.layer_norm(np.ones(3, np.int64), 1, None, None, 1e-5, np.empty(3, np.int64),
                      np.empty(1, np.int64), np.empty(1, np.int64))


# ---------------------------------------------------------------- parity with PyTorch
def test_parity_with_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4, 6, 5, 3)) * 2 + 0.5
    w, b = rng.uniform(0.5, 1.5, 6), rng.standard_normal(6)
    lw, lb = rng.uniform(0.5, 1.5, (5, 3)), rng.standard_normal((5, 3))
    g = rng.standard_normal(x.shape)

    def run(lib, f, mk):
        xs, ws, bs, lws, lbs = (mk(a) for a in (x, w, b, lw, lb))
        rm, rv = mk(np.zeros(6), False), mk(np.ones(6), False)
        outs = [f.batch_norm(xs, rm, rv, ws, bs, True, 0.2, 1e-4),
                f.batch_norm(xs, rm, rv, ws, bs, False, 0.2, 1e-4),
                f.layer_norm(xs, (5, 3), lws, lbs), f.group_norm(xs, 3, ws, bs, 1e-3),
                f.normalize(xs, 2.0, 1), f.normalize(xs, 1.0, -1)]
        gt = mk(g, False)
        res = [rm, rv]
        for out in outs:
            res += [out] + list(lib.autograd.grad(out, [xs, ws, bs, lws, lbs], gt,
                                                  allow_unused=True))
        return [None if r is None else np.array(r.detach().numpy()) for r in res]

    ours = run(G, F, lambda a, rg=True: G.tensor(a, dtype=G.float64, requires_grad=rg))
    theirs = run(torch, tf, lambda a, rg=True: torch.tensor(a, dtype=torch.float64,
                                                             requires_grad=rg))
    for a, t in zip(ours, theirs):
        if t is None:
            assert a is None or not np.any(a)
        else:
            np.testing.assert_allclose(a, t, rtol=1e-10, atol=1e-10)
