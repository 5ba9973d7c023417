"""Losses of genesis.nn.functional against numpy references, the fused cross-entropy
kernel against its composed reference, gradients against finite differences, and
(when torch is importable) parity with torch.nn.functional."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import genesis as G
import genesis.nn.functional as F
from genesis import _C
from genesis.nn.functional.loss import _cross_entropy_reference

_G = {"float32": G.float32, "float64": G.float64}
_ALL_ISAS = ["generic", "avx2", "avx512"]
ISAS = _ALL_ISAS[:_ALL_ISAS.index(_C.best_isa()) + 1]
REDUCTIONS = ["none", "mean", "sum"]
FEW = settings(max_examples=max(3, settings().max_examples // 4))


# ------------------------------------------------------------------ numpy references
def np_log_softmax(x, axis=1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _class_view(w, ndim):
    return w.reshape((1, -1) + (1,) * (ndim - 2))


def _np_reduce(per, reduction, denom=None):
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return per.sum() / (per.size if denom is None else denom)


def np_cross_entropy(x, t, w=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    C = x.shape[1]
    logp = np_log_softmax(x)
    w = np.ones(C) if w is None else w
    wc = _class_view(w, x.ndim)
    ls = label_smoothing
    if t.dtype.kind == "f":
        q = t * (1 - ls) + ls / C
        return _np_reduce(-(logp * q * wc).sum(1), reduction)
    valid = t != ignore_index
    safe = np.where(valid, t, 0)
    nll = -np.take_along_axis(logp, safe[:, None], 1)[:, 0] * w[safe]
    smooth = -(logp * wc).sum(1)
    per = np.where(valid, (1 - ls) * nll + (ls / C) * smooth, 0.0)
    return _np_reduce(per, reduction, np.where(valid, w[safe], 0.0).sum())


def np_nll_loss(x, t, w=None, ignore_index=-100, reduction="mean"):
    w = np.ones(x.shape[1]) if w is None else w
    valid = t != ignore_index
    safe = np.where(valid, t, 0)
    wy = np.where(valid, w[safe], 0.0)
    per = np.where(valid, -np.take_along_axis(x, safe[:, None], 1)[:, 0] * wy, 0.0)
    return _np_reduce(per, reduction, wy.sum())


def np_bce(x, t, w=None):
    with np.errstate(divide="ignore"):
        loss = -(t * np.maximum(np.log(x), -100) + (1 - t) * np.maximum(np.log1p(-x), -100))
    return loss if w is None else loss * w


def np_bce_logits(x, t, w=None, pw=None):
    pw = 1.0 if pw is None else pw
    # -log sigmoid(x) = logaddexp(0, -x); -log(1 - sigmoid(x)) = logaddexp(0, x)
    loss = pw * t * np.logaddexp(0, -x) + (1 - t) * np.logaddexp(0, x)
    return loss if w is None else loss * w


def np_smooth_l1(d, beta):
    a = np.abs(d)
    return a if beta == 0 else np.where(a < beta, 0.5 * d * d / beta, a - 0.5 * beta)


def np_huber(d, delta):
    a = np.abs(d)
    return np.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta))


def np_kl(x, t, log_target):
    if log_target:
        return np.exp(t) * (t - x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(t == 0, 0.0, t * np.log(np.where(t == 0, 1.0, t))) - t * x


# ------------------------------------------------------------------ helpers
def _t(a, dtype="float64", requires_grad=False):
    if a is None:
        return None
    if a.dtype.kind in "iu":
        return G.tensor(a, dtype=G.int64)
    return G.tensor(a, dtype=_G[dtype], requires_grad=requires_grad)


def _close(got, expected, dtype, scale=1.0):
    got = got.detach().numpy() if isinstance(got, G.Tensor) else got
    expected = np.asarray(expected)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    tol = 2e-5 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * scale, equal_nan=True)


@st.composite
def ce_case(draw, small=False, prob=None):
    """(x, target, weight, ignore_index, reduction, label_smoothing) as numpy arrays."""
    hi = 3 if small else 4
    n = draw(st.integers(0 if not small else 1, hi), label="N")
    c = draw(st.integers(1, hi + 1), label="C")
    d = tuple(draw(st.lists(st.integers(1, 3 if small else 4), max_size=2), label="d"))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    x = rng.standard_normal((n, c) + d) * draw(st.sampled_from([1.0, 3.0]), label="scale")
    if prob is None:
        prob = draw(st.booleans(), label="prob")
    ignore_index = draw(st.sampled_from([-100, -1] if c == 1 else [-100, -1, 0, c - 1]),
                        label="ignore")
    if prob:
        t = rng.dirichlet(np.ones(c), (n,) + d)
        t = np.moveaxis(t, -1, 1) if t.ndim > 1 else t
    else:
        t = rng.integers(0, c, (n,) + d)
        t[rng.random(t.shape) < 0.3] = ignore_index
        if t.size:  # one valid target, so the mean is defined (all-ignored has its own test)
            t.flat[0] = (ignore_index + 1) % c if 0 <= ignore_index < c else 0
    w = rng.uniform(0.2, 2.0, c) if draw(st.booleans(), label="weighted") else None
    reduction = draw(st.sampled_from(REDUCTIONS), label="reduction")
    ls = draw(st.sampled_from([0.0, 0.1, 0.35, 1.0]), label="label_smoothing")
    return x, t, w, ignore_index, reduction, ls


# ------------------------------------------------------------------ cross-entropy
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@given(case=ce_case())
def test_cross_entropy_matches_numpy_and_reference(dtype, case):
    x, t, w, ignore, reduction, ls = case
    kw = dict(ignore_index=ignore, reduction=reduction, label_smoothing=ls)
    X, Xr = _t(x, dtype, True), _t(x, dtype, True)
    T = _t(t, dtype)
    W = _t(w, dtype)
    got = F.cross_entropy(X, T, W, **kw)
    ref = _cross_entropy_reference(Xr, T, W, **kw)
    assert got.dtype is _G[dtype]
    _close(got, np_cross_entropy(x, t, w, **kw), dtype, scale=5)
    _close(got, ref.detach().numpy(), dtype, scale=5)
    if x.size and np.isfinite(ref.detach().numpy()).all():
        seed = G.tensor(np.linspace(-1, 1, max(got.numel(), 1)).reshape(tuple(got.shape)),
                        dtype=_G[dtype])
        (got * seed).sum().backward()
        (ref * seed).sum().backward()
        _close(X.grad, Xr.grad.numpy(), dtype)


@given(case=ce_case(small=True))
def test_cross_entropy_gradcheck(case):
    x, t, w, ignore, reduction, ls = case
    kw = dict(ignore_index=ignore, reduction=reduction, label_smoothing=ls)
    X = _t(x, requires_grad=True)
    T = _t(t, requires_grad=t.dtype.kind == "f")
    inputs = [X, T] if T.requires_grad else [X]
    W = _t(w)
    assert G.autograd.gradcheck(lambda x, t=T: F.cross_entropy(x, t, W, **kw), inputs)


@FEW
@given(case=ce_case(small=True))
def test_cross_entropy_gradgradcheck(case):
    """Under create_graph the fused op's backward is recorded as Tensor ops."""
    x, t, w, ignore, reduction, ls = case
    kw = dict(ignore_index=ignore, reduction=reduction, label_smoothing=ls)
    X = _t(x, requires_grad=True)
    T = _t(t, requires_grad=t.dtype.kind == "f")
    W = _t(w)
    inputs = [X, T] if T.requires_grad else [X]
    assert G.autograd.gradgradcheck(lambda x, t=T: F.cross_entropy(x, t, W, **kw), inputs)
    assert G.autograd.gradgradcheck(lambda x, t=T: _cross_entropy_reference(x, t, W, **kw),
                                    inputs)


def test_cross_entropy_one_dim_input():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(5)
    for red in REDUCTIONS:
        got = F.cross_entropy(_t(x), G.tensor(3), reduction=red, label_smoothing=0.2)
        assert tuple(got.shape) == ()
        _close(got, np_cross_entropy(x[None], np.array([3]), reduction="sum",
                                     label_smoothing=0.2), "float64")
    p = rng.dirichlet(np.ones(5))
    got = F.cross_entropy(_t(x), _t(p), reduction="none")
    _close(got, np_cross_entropy(x[None], p[None], reduction="sum"), "float64")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("prob", [False, True])
def test_cross_entropy_stable_for_huge_logits(dtype, prob):
    rng = np.random.default_rng(2)
    x = rng.uniform(-1e4, 1e4, (6, 9))
    x[0] = 1e4  # ties at the max
    t = rng.dirichlet(np.ones(9), 6) if prob else rng.integers(0, 9, 6)
    w = rng.uniform(0.5, 2, 9)
    X = _t(x, dtype, True)
    loss = F.cross_entropy(X, _t(t, dtype), _t(w, dtype), label_smoothing=0.1, reduction="none")
    expected = np_cross_entropy(x, t, w, reduction="none", label_smoothing=0.1)
    np.testing.assert_allclose(loss.detach().numpy(), expected, rtol=1e-5)
    loss.sum().backward()
    g = X.grad.numpy()
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g.sum(axis=1), 0, atol=1e-4)  # softmax minus a distribution


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropy_masked_logits(dtype):
    """-inf logits (masked classes) have probability 0 and an exactly zero gradient."""
    x = np.array([[0.5, -np.inf, 2.0], [-np.inf, -np.inf, 1.0]])
    X = _t(x, dtype, True)
    loss = F.cross_entropy(X, G.tensor([0, 2]), reduction="none")
    _close(loss, [np.log1p(np.exp(1.5)), 0.0], dtype)
    loss.sum().backward()
    assert X.grad.numpy()[0, 1] == 0 and X.grad.numpy()[1, 0] == 0 and X.grad.numpy()[1, 2] == 0


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("layout", ["rows", "classes_strided", "spatial", "channels_last"])
@pytest.mark.parametrize("prob", [False, True])
def test_cross_entropy_kernel_isas_threads_layouts(isa, threads, layout, prob):
    """Every instruction-set copy, 1 and 2 threads, unit and strided class dims; sizes
    large enough for the threaded path and vector tails."""
    rng = np.random.default_rng(3)
    shape = (300, 37) if layout in ("rows", "classes_strided") else (7, 13, 5, 9)
    x = rng.standard_normal(shape) * 4
    t = np.moveaxis(rng.dirichlet(np.ones(shape[1]), (shape[0],) + shape[2:]), -1, 1) if prob \
        else rng.integers(0, shape[1], (shape[0],) + shape[2:])
    if not prob:
        t.reshape(-1)[::7] = -100
    w = rng.uniform(0.5, 2, shape[1])
    if layout == "classes_strided":
        X = G.tensor(np.ascontiguousarray(x.T)).t()
    elif layout == "channels_last":
        X = G.tensor(np.ascontiguousarray(np.moveaxis(x, 1, -1))).movedim(-1, 1)
    else:
        X = G.tensor(x)
    X.requires_grad_()
    before = G.get_num_threads()
    _C.set_isa(isa)
    G.set_num_threads(threads)
    try:
        results = {}
        for red in REDUCTIONS:
            X.grad = None
            loss = F.cross_entropy(X, _t(t), _t(w), reduction=red, label_smoothing=0.2)
            loss.sum().backward()
            results[red] = (loss.detach().numpy(), X.grad.numpy().copy())
    finally:
        _C.set_isa("best")
        G.set_num_threads(before)
    for red, (loss, grad) in results.items():
        _close(loss, np_cross_entropy(x, t, w, reduction=red, label_smoothing=0.2), "float64",
               scale=10)
        Xr = G.tensor(x, requires_grad=True)
        _cross_entropy_reference(Xr, _t(t), _t(w), reduction=red, label_smoothing=0.2).sum() \
            .backward()
        _close(grad, Xr.grad.numpy(), "float64")


def test_cross_entropy_reduction_does_not_depend_on_threads():
    rng = np.random.default_rng(4)
    X = G.tensor(rng.standard_normal((1000, 50)), dtype=G.float32)
    T = G.tensor(rng.integers(0, 50, 1000))
    before = G.get_num_threads()
    try:
        out = []
        for n in (1, 2):
            G.set_num_threads(n)
            out.append(F.cross_entropy(X, T, label_smoothing=0.1).item())
    finally:
        G.set_num_threads(before)
    assert out[0] == out[1]


def test_cross_entropy_all_ignored_mean_is_nan():
    X = G.tensor(np.zeros((3, 4)), requires_grad=True)
    loss = F.cross_entropy(X, G.tensor([-100, -100, -100]))
    assert np.isnan(loss.item())
    assert F.cross_entropy(X, G.tensor([-100, -100, -100]), reduction="sum").item() == 0
    F.cross_entropy(X, G.tensor([-100, -100, -100]), reduction="sum").backward()
    assert (X.grad.numpy() == 0).all()


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("fn", [F.cross_entropy, F.nll_loss])
def test_out_of_range_labels_raise_index_error(fn):
    x = G.tensor(np.zeros((3, 5)))
    for bad in (5, -1, 100):
        with pytest.raises(IndexError, match=rf"target {bad} is out of bounds for 5 classes"):
            fn(x, G.tensor([0, bad, 1]))
    with pytest.raises(IndexError, match="target 7"):
        fn(G.tensor(np.zeros((2, 5, 3))), G.tensor([[0, 1, 2], [3, 7, -100]]))
    fn(x, G.tensor([0, -7, 1]), ignore_index=-7)  # the ignore_index itself is fine


def test_kernel_bounds_checks_its_own_labels():
    """Called directly, the kernels still refuse out-of-range labels before reading."""
    x = np.zeros((2, 3, 1))
    args = (np.zeros((2, 1)), np.zeros((2, 1)), np.zeros((), np.float64))
    with pytest.raises(IndexError, match="target 3 is out of bounds for 3 classes"):
        _C.cross_entropy(x, np.array([[0], [3]]), None, -100, 0.0, 0, *args)
    with pytest.raises(IndexError, match="target -5"):
        _C.cross_entropy_backward(x, np.array([[0], [-5]]), None, -100, 0.0, 2, np.zeros((2, 1)),
                                  np.ones((), np.float64), np.ones((2, 1)), np.empty((2, 3, 1)))


LOSSES = {
    "cross_entropy": lambda x, t, **kw: F.cross_entropy(x, t.argmax(1), **kw),
    "nll_loss": lambda x, t, **kw: F.nll_loss(x, t.argmax(1), **kw),
    "mse_loss": F.mse_loss,
    "l1_loss": F.l1_loss,
    "smooth_l1_loss": F.smooth_l1_loss,
    "huber_loss": F.huber_loss,
    "binary_cross_entropy": lambda x, t, **kw: F.binary_cross_entropy(x.sigmoid(), t, **kw),
    "binary_cross_entropy_with_logits": F.binary_cross_entropy_with_logits,
    "kl_div": F.kl_div,
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_bad_reduction_is_a_clear_error(name):
    x, t = G.tensor(np.full((2, 3), 0.3)), G.tensor(np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match=rf"{name}: 'avg' is not a valid value for reduction"):
        LOSSES[name](x, t, reduction="avg")


def test_shape_and_type_errors():
    x = G.tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"class-index target must have shape \(2,\), got \(3,\)"):
        F.cross_entropy(x, G.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="probability targets must have the input's shape"):
        F.cross_entropy(x, G.tensor(np.zeros((2, 4))))
    with pytest.raises(ValueError, match="weight must be a 1-D tensor of 3 class weights"):
        F.cross_entropy(x, G.tensor([0, 1]), weight=G.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="label_smoothing must be between 0.0 and 1.0"):
        F.cross_entropy(x, G.tensor([0, 1]), label_smoothing=1.5)
    with pytest.raises(TypeError, match="must be a floating point tensor"):
        F.cross_entropy(G.tensor([[1, 2]]), G.tensor([0]))
    with pytest.raises(TypeError, match="target must hold class indices"):
        F.nll_loss(x, G.tensor(np.zeros((2, 3))))
    with pytest.raises(ValueError, match="target size .* must be the same as the input size"):
        F.binary_cross_entropy(G.tensor(np.full((2, 3), 0.5)), G.tensor(np.full((3,), 0.5)))
    with pytest.raises(ValueError, match="target size"):
        F.binary_cross_entropy_with_logits(x, G.tensor(np.zeros((2, 1))))
    with pytest.raises(RuntimeError, match="should be between 0 and 1"):
        F.binary_cross_entropy(G.tensor([0.5, 1.5]), G.tensor([0.0, 1.0]))
    with pytest.raises(RuntimeError, match="mse_loss: shapes .* cannot be broadcast"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            F.mse_loss(x, G.tensor(np.zeros((4,))))
    with pytest.raises(ValueError, match="weight of shape .* must have the input's shape"):
        F.mse_loss(x, x, weight=G.tensor([1.0]))
    with pytest.raises(ValueError, match="does not broadcast to the input shape"):
        F.binary_cross_entropy_with_logits(x, x, pos_weight=G.tensor(np.ones((1, 2, 3))))
    with pytest.raises(ValueError, match="beta must be non-negative"):
        F.smooth_l1_loss(x, x, beta=-1.0)
    with pytest.raises(ValueError, match="delta must be positive"):
        F.huber_loss(x, x, delta=0.0)


def test_weight_gradient_is_refused():
    x = G.tensor(np.zeros((2, 3)), requires_grad=True)
    w = G.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = F.cross_entropy(x, G.tensor([0, 2]), weight=w)
    with pytest.raises(RuntimeError, match="derivative for 'weight' is not implemented"):
        loss.backward()


def test_deprecated_size_average_and_reduce():
    rng = np.random.default_rng(5)
    x, t = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    with pytest.warns(UserWarning, match="size_average and reduce"):
        got = F.mse_loss(_t(x), _t(t), size_average=False)
    _close(got, ((x - t) ** 2).sum(), "float64")
    with pytest.warns(UserWarning, match="size_average and reduce"):
        got = F.l1_loss(_t(x), _t(t), reduce=False)
    _close(got, np.abs(x - t), "float64")


# ------------------------------------------------------------------ nll_loss
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@given(case=ce_case(prob=False))
def test_nll_loss_matches_numpy(dtype, case):
    x, t, w, ignore, reduction, _ = case
    logp = np_log_softmax(x) if x.size else x
    got = F.nll_loss(_t(logp, dtype), _t(t), _t(w, dtype), ignore_index=ignore,
                     reduction=reduction)
    _close(got, np_nll_loss(logp, t, w, ignore, reduction), dtype, scale=5)


@FEW
@given(case=ce_case(small=True, prob=False))
def test_nll_loss_gradients(case):
    x, t, w, ignore, reduction, _ = case
    def fn(x):
        return F.nll_loss(x, _t(t), _t(w), ignore_index=ignore, reduction=reduction)
    assert G.autograd.gradcheck(fn, [_t(x, requires_grad=True)])
    assert G.autograd.gradgradcheck(fn, [_t(x, requires_grad=True)])


# ------------------------------------------------------------------ pointwise losses
@st.composite
def pair_case(draw, lo=-2.0, hi=2.0, small=False):
    shape = tuple(draw(st.lists(st.integers(1, 3 if small else 4), max_size=3), label="shape"))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    x = rng.uniform(lo, hi, shape)
    t = rng.uniform(lo, hi, shape)
    w = rng.uniform(0.2, 2.0, shape) if draw(st.booleans(), label="weighted") else None
    reduction = draw(st.sampled_from(REDUCTIONS), label="reduction")
    return x, t, w, reduction


def _keep_off(d, kinks, margin=0.05):
    """Move differences away from the losses' kinks (finite differences straddle them)."""
    for k in kinks:
        for s in (k, -k):
            near = np.abs(d - s) < margin
            d = np.where(near, s + 2 * margin * np.where(d >= s, 1, -1), d)
    return d


POINTWISE = {
    # name: (genesis(x, t, w, reduction), numpy elementwise(x, t), weighted-mean rule, kinks)
    "mse_loss": (lambda x, t, w, r: F.mse_loss(x, t, reduction=r, weight=w),
                 lambda x, t: (x - t) ** 2, "sum_w", ()),
    "l1_loss": (lambda x, t, w, r: F.l1_loss(x, t, reduction=r, weight=w),
                lambda x, t: np.abs(x - t), "sum_w", (0.0,)),
    "smooth_l1_loss": (lambda x, t, w, r: F.smooth_l1_loss(x, t, reduction=r, beta=0.7),
                       lambda x, t: np_smooth_l1(x - t, 0.7), None, (0.0, 0.7)),
    "smooth_l1_loss_beta0": (lambda x, t, w, r: F.smooth_l1_loss(x, t, reduction=r, beta=0.0),
                             lambda x, t: np.abs(x - t), None, (0.0,)),
    "huber_loss": (lambda x, t, w, r: F.huber_loss(x, t, reduction=r, delta=0.6, weight=w),
                   lambda x, t: np_huber(x - t, 0.6), "mean", (0.0, 0.6)),
}


def _np_weighted(elem, w, reduction, rule):
    if w is None or rule is None:
        return _np_reduce(elem, reduction)
    loss = elem * w
    if reduction == "mean" and rule == "sum_w":
        return loss.sum() / w.sum()
    return _np_reduce(loss, reduction)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(POINTWISE))
@given(case=pair_case())
def test_pointwise_losses_match_numpy(name, dtype, case):
    fn, ref, rule, _ = POINTWISE[name]
    x, t, w, reduction = case
    w = w if rule else None
    got = fn(_t(x, dtype), _t(t, dtype), _t(w, dtype), reduction)
    _close(got, _np_weighted(ref(x, t), w, reduction, rule), dtype, scale=5)


@pytest.mark.parametrize("name", sorted(POINTWISE))
@FEW
@given(case=pair_case(small=True))
def test_pointwise_losses_gradients(name, case):
    fn, _, rule, kinks = POINTWISE[name]
    x, t, w, reduction = case
    x = t + _keep_off(x - t, kinks)
    W = _t(w if rule else None)
    f = lambda x, t: fn(x, t, W, reduction)  # noqa: E731
    inputs = [_t(x, requires_grad=True), _t(t, requires_grad=True)]
    assert G.autograd.gradcheck(f, inputs)
    assert G.autograd.gradgradcheck(f, inputs)


def test_pointwise_broadcasting_warns_like_pytorch():
    x, t = np.arange(6.0).reshape(2, 3), np.array([1.0, 0.0, 2.0])
    with pytest.warns(UserWarning, match="different to the input size"):
        got = F.mse_loss(_t(x), _t(t), reduction="none")
    _close(got, (x - t) ** 2, "float64")


# ------------------------------------------------------------------ binary cross-entropy
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@given(case=pair_case(0.02, 0.98))
def test_binary_cross_entropy_matches_numpy(dtype, case):
    x, t, w, reduction = case
    got = F.binary_cross_entropy(_t(x, dtype), _t(t, dtype), _t(w, dtype), reduction=reduction)
    _close(got, _np_reduce(np_bce(x, t, w), reduction), dtype, scale=5)


def test_binary_cross_entropy_clamps_at_0_and_1():
    x = np.array([0.0, 1.0, 0.0, 1.0, 0.5])
    t = np.array([0.0, 1.0, 1.0, 0.0, 0.3])
    X = _t(x, requires_grad=True)
    loss = F.binary_cross_entropy(X, _t(t), reduction="none")
    _close(loss, [0.0, 0.0, 100.0, 100.0, np_bce(0.5, 0.3)], "float64")
    loss.sum().backward()
    g = X.grad.numpy()
    assert np.isfinite(g).all()
    _close(g, [0.0, 0.0, -1e12, 1e12, (0.5 - 0.3) / 0.25], "float64")


@FEW
@given(case=pair_case(0.1, 0.9, small=True))
def test_binary_cross_entropy_gradients(case):
    x, t, w, reduction = case
    W = _t(w)
    f = lambda x, t: F.binary_cross_entropy(x, t, W, reduction=reduction)  # noqa: E731
    inputs = [_t(x, requires_grad=True), _t(t, requires_grad=True)]
    assert G.autograd.gradcheck(f, inputs)
    assert G.autograd.gradgradcheck(f, inputs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@given(case=pair_case(-4.0, 4.0), pos=st.booleans())
def test_bce_with_logits_matches_numpy(dtype, case, pos):
    x, t, w, reduction = case
    t = (t + 4) / 8
    pw = np.linspace(0.5, 2.0, x.shape[-1]) if pos and x.ndim else None
    got = F.binary_cross_entropy_with_logits(_t(x, dtype), _t(t, dtype), _t(w, dtype),
                                             reduction=reduction, pos_weight=_t(pw, dtype))
    _close(got, _np_reduce(np_bce_logits(x, t, w, pw), reduction), dtype, scale=5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bce_with_logits_stable_at_100(dtype):
    x = np.array([100.0, -100.0, 100.0, -100.0, 30.0, -30.0, 0.0])
    t = np.array([1.0, 0.0, 0.0, 1.0, 0.25, 0.75, 0.5])
    X = _t(x, dtype, True)
    loss = F.binary_cross_entropy_with_logits(X, _t(t, dtype), reduction="none",
                                              pos_weight=_t(np.array(3.0), dtype))
    np.testing.assert_allclose(loss.detach().numpy(), np_bce_logits(x, t, pw=3.0), rtol=1e-6,
                               atol=1e-30)
    loss.sum().backward()
    sig = 1 / (1 + np.exp(-x))
    expected = (1 - t) * sig - 3.0 * t * (1 - sig)  # d/dx, written without log
    np.testing.assert_allclose(X.grad.numpy(), expected, rtol=1e-5, atol=1e-7)


@FEW
@given(case=pair_case(-3.0, 3.0, small=True))
def test_bce_with_logits_gradients(case):
    x, t, w, reduction = case
    t = (t + 3) / 6
    W = _t(w)
    pw = _t(np.full(x.shape[-1:], 1.7)) if x.ndim else None
    f = lambda x, t: F.binary_cross_entropy_with_logits(  # noqa: E731
        x, t, W, reduction=reduction, pos_weight=pw)
    inputs = [_t(x, requires_grad=True), _t(t, requires_grad=True)]
    assert G.autograd.gradcheck(f, inputs)
    assert G.autograd.gradgradcheck(f, inputs)


# ------------------------------------------------------------------ kl_div
@st.composite
def kl_case(draw, small=False):
    n = draw(st.integers(1, 3 if small else 4), label="N")
    c = draw(st.integers(1, 3 if small else 5), label="C")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    x = np_log_softmax(rng.standard_normal((n, c)))
    t = rng.dirichlet(np.ones(c), n)
    log_target = draw(st.booleans(), label="log_target")
    if log_target:
        t = np.log(t)
    elif not small and c > 1:
        t[0, 0] = 0.0  # zero-probability targets contribute 0
    reduction = draw(st.sampled_from(REDUCTIONS + ["batchmean"]), label="reduction")
    return x, t, log_target, reduction


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@given(case=kl_case())
def test_kl_div_matches_numpy(dtype, case):
    x, t, log_target, reduction = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = F.kl_div(_t(x, dtype), _t(t, dtype), reduction=reduction, log_target=log_target)
    elem = np_kl(x, t, log_target)
    expected = elem.sum() / x.shape[0] if reduction == "batchmean" else \
        _np_reduce(elem, reduction)
    _close(got, expected, dtype, scale=5)


def test_kl_div_mean_warns():
    x = _t(np_log_softmax(np.zeros((2, 3))))
    with pytest.warns(UserWarning, match="batchmean"):
        F.kl_div(x, x.exp())


@FEW
@given(case=kl_case(small=True))
def test_kl_div_gradients(case):
    x, t, log_target, reduction = case
    reduction = "sum" if reduction == "mean" else reduction
    f = lambda x, t: F.kl_div(x, t, reduction=reduction, log_target=log_target)  # noqa: E731
    inputs = [_t(x, requires_grad=True), _t(t, requires_grad=True)]
    assert G.autograd.gradcheck(f, inputs)
    assert G.autograd.gradgradcheck(f, inputs)


# ------------------------------------------------------------------ parity with PyTorch
def _torch_case(name, rng, reduction):
    """name -> f(module, D, K): D wraps arrays whose gradient is compared, K constants."""
    x = rng.standard_normal((4, 5))
    t = rng.uniform(0.05, 0.95, (4, 5))
    w = rng.uniform(0.5, 2.0, (4, 5))
    labels = rng.integers(0, 5, 4)
    labels[1] = -100
    cw = rng.uniform(0.5, 2.0, 5)
    probs = rng.dirichlet(np.ones(5), 4)
    pw = rng.uniform(0.5, 2.0, 5)
    k = dict(reduction=reduction)
    return {
        "cross_entropy": lambda m, D, K: m.cross_entropy(D(x), K(labels), K(cw),
                                                         label_smoothing=0.2, **k),
        "cross_entropy_prob": lambda m, D, K: m.cross_entropy(D(x), D(probs), K(cw),
                                                              label_smoothing=0.1, **k),
        "cross_entropy_spatial": lambda m, D, K: m.cross_entropy(
            D(x.reshape(2, 5, 2)), K(labels.reshape(2, 2)), **k),
        "nll_loss": lambda m, D, K: m.nll_loss(D(np_log_softmax(x)), K(labels), K(cw), **k),
        "mse_loss": lambda m, D, K: m.mse_loss(D(x), D(t), weight=K(w), **k),
        "l1_loss": lambda m, D, K: m.l1_loss(D(x), D(t), weight=K(w), **k),
        "smooth_l1_loss": lambda m, D, K: m.smooth_l1_loss(D(x), D(t), beta=0.5, **k),
        "huber_loss": lambda m, D, K: m.huber_loss(D(x), D(t), delta=0.5, weight=K(w), **k),
        "binary_cross_entropy": lambda m, D, K: m.binary_cross_entropy(D(t), D(w / 2.5), K(w),
                                                                       **k),
        "binary_cross_entropy_with_logits": lambda m, D, K: m.binary_cross_entropy_with_logits(
            D(x), D(t), K(w), pos_weight=K(pw), **k),
        "kl_div": lambda m, D, K: m.kl_div(D(np_log_softmax(x)), D(probs), **k),
        "kl_div_log_target": lambda m, D, K: m.kl_div(D(np_log_softmax(x)), D(np.log(probs)),
                                                      log_target=True, **k),
    }[name]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", [
    "cross_entropy", "cross_entropy_prob", "cross_entropy_spatial", "nll_loss", "mse_loss",
    "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "kl_div", "kl_div_log_target"])
def test_parity_with_torch(name, reduction):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as TF
    case = _torch_case(name, np.random.default_rng(6), reduction)
    ours_in, theirs_in = [], []

    def wrap(make, store, grad):
        def f(a):
            t = make(a, grad)
            if grad:
                store.append(t)
            return t
        return f

    g_make = lambda a, grad: G.tensor(a, requires_grad=grad)  # noqa: E731
    t_make = lambda a, grad: torch.tensor(a, requires_grad=grad)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = case(F, wrap(g_make, ours_in, True), wrap(g_make, ours_in, False))
        theirs = case(TF, wrap(t_make, theirs_in, True), wrap(t_make, theirs_in, False))
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    seed = np.linspace(0.5, 1.5, max(theirs.numel(), 1)).reshape(tuple(theirs.shape))
    ours.backward(G.tensor(seed))
    theirs.backward(torch.tensor(seed))
    for a, b in zip(ours_in, theirs_in):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("C", [1, 5, 16, 37, 300, 1031])
def test_cross_entropy_float32_rows_every_isa(isa, C):
    """float32 rows of contiguous classes (the vector-exp path of the kernel, with the
    next row prefetched): loss and gradient against float64 numpy, class counts around
    the 16-lane vectors and the prefetch blocks."""
    rng = np.random.default_rng(C)
    x = (rng.standard_normal((70, C)) * 4).astype(np.float32)
    t = rng.integers(0, C, 70)
    _C.set_isa(isa)
    try:
        X = G.tensor(x, requires_grad=True)
        loss = F.cross_entropy(X, _t(t, "int64"), reduction="none")
        loss.sum().backward()
        got, grad = loss.detach().numpy(), X.grad.numpy()
    finally:
        _C.set_isa("best")
    np.testing.assert_allclose(got, np_cross_entropy(x.astype(np.float64), t, reduction="none"),
                               rtol=2e-6, atol=2e-6)
    p = np.exp(np_log_softmax(x.astype(np.float64)))
    p[np.arange(70), t] -= 1
    np.testing.assert_allclose(grad, p, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [1, 15, 17, 4095, 4097, 70001])
def test_mse_loss_one_pass_sum_across_tails_blocks_and_threads(n, dtype):
    """mse_loss's mean and sum run one kernel over input and target (16-lane vectors,
    blocks of 4096 summed in double, in order): tails, several blocks, and the same bits
    on one and two threads."""
    rng = np.random.default_rng(n)
    x, t = rng.standard_normal(n) * 3, rng.standard_normal(n)
    results = []
    before = G.get_num_threads()
    try:
        for threads in (1, 2):
            G.set_num_threads(threads)
            results.append([F.mse_loss(_t(x, dtype), _t(t, dtype), reduction=r).item()
                            for r in ("sum", "mean")])
    finally:
        G.set_num_threads(before)
    assert results[0] == results[1]
    xd, td = x.astype(dtype).astype(np.float64), t.astype(dtype).astype(np.float64)
    want = ((xd - td) ** 2).sum()
    rtol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(results[0], [want, want / n], rtol=rtol)
