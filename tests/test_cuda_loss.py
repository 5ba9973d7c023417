"""The fused cross-entropy, the label check and mse_loss on device "cuda": forward
and backward match the cpu device for class and probability targets, class weights,
ignore_index, label smoothing and every reduction; out-of-range labels raise the cpu's
IndexError.  Runs in the CPU emulator (GENESIS_CUDA_EMULATE=1, set here unless the
environment says otherwise)."""
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

TOL = {"float32": 3e-5, "float64": 1e-10}


def _close(got, expected, dtype):
    assert_close(got, expected, TOL[dtype])


def _logits(shape, dtype, seed, strided=False, scale=3.0):
    """(cpu, cuda) logits that require grad; `strided`: the cuda tensor is a view with the
    class dim not unit-strided (a transpose of a contiguous array)."""
    a = np.random.default_rng(seed).standard_normal(shape) * scale
    cpu = G.tensor(a, dtype=DTYPES[dtype], requires_grad=True)
    if strided:
        base = G.tensor(np.ascontiguousarray(np.moveaxis(a, 1, -1)), dtype=DTYPES[dtype],
                        device="cuda")
        cuda = base.movedim(-1, 1).detach().requires_grad_()
        assert not cuda._data.flags.c_contiguous or min(shape) == 1
    else:
        cuda = G.tensor(a, dtype=DTYPES[dtype], device="cuda", requires_grad=True)
    return cpu, cuda


def _labels(shape, C, seed, ignore=None):
    t = np.random.default_rng(seed).integers(0, C, shape)
    if ignore is not None:
        t.reshape(-1)[::3] = ignore  # every third target ignored
    return G.tensor(t), G.tensor(t, device="cuda")


def _check(x, targets, dtype, seed=0, weight=(None, None), **kw):
    """cross_entropy forward and the logits' (and probability targets') gradients agree;
    x, targets and weight are (cpu, cuda) pairs."""
    a = F.cross_entropy(x[0], targets[0], weight=weight[0], **kw)
    b = F.cross_entropy(x[1], targets[1], weight=weight[1], **kw)
    _close(b, a, dtype)
    w = np.random.default_rng(seed).standard_normal(tuple(a.shape))
    (a * G.tensor(w, dtype=a.dtype)).sum().backward()
    (b * G.tensor(w, dtype=b.dtype, device="cuda")).sum().backward()
    _close(x[1].grad, x[0].grad, dtype)
    if targets[0].requires_grad:
        _close(targets[1].grad, targets[0].grad, dtype)


def _weight(C, dtype, seed):
    w = np.random.default_rng(seed).random(C) + 0.5
    return G.tensor(w, dtype=DTYPES[dtype]), G.tensor(w, dtype=DTYPES[dtype], device="cuda")


# (N, C, *d): primes, one class, rows wider than a block (300 classes > 256 threads),
# more rows than the grid's 4096 blocks is below (test_many_rows).
SHAPES = [(5, 7), (3, 1), (2, 300), (3, 5, 4), (2, 11, 3, 2)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_class_targets_match_cpu(shape, dtype, reduction):
    x = _logits(shape, dtype, 1, strided=len(shape) > 2)
    t = _labels((shape[0],) + shape[2:], shape[1], 2)
    _check(x, t, dtype, reduction=reduction)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(6, 7), (4, 5, 3)], ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2, 1.0])
def test_weights_ignore_index_and_smoothing_match_cpu(shape, dtype, reduction, smoothing):
    C = shape[1]
    t = _labels((shape[0],) + shape[2:], C, 4, ignore=-100)
    _check(_logits(shape, dtype, 3), t, dtype, reduction=reduction, label_smoothing=smoothing)
    t = _labels((shape[0],) + shape[2:], C, 4, ignore=2)
    _check(_logits(shape, dtype, 6), t, dtype, weight=_weight(C, dtype, 7), ignore_index=2,
           reduction=reduction, label_smoothing=smoothing)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 6), (3, 5, 2)], ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_probability_targets_match_cpu(shape, dtype, reduction):
    x = _logits(shape, dtype, 8, strided=len(shape) > 2)
    p = np.random.default_rng(9).random(shape)
    p /= p.sum(1, keepdims=True)
    t = (G.tensor(p, dtype=DTYPES[dtype], requires_grad=True),
         G.tensor(p, dtype=DTYPES[dtype], device="cuda", requires_grad=True))
    _check(x, t, dtype, weight=_weight(shape[1], dtype, 10), reduction=reduction,
           label_smoothing=0.1)  # also the probability target's gradient
    _check(_logits(shape, dtype, 11), (t[0].detach(), t[1].detach()), dtype,
           reduction=reduction)


@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 4), C=st.integers(1, 40), d=st.integers(1, 3),
       reduction=st.sampled_from(["mean", "sum", "none"]),
       smoothing=st.sampled_from([0.0, 0.05, 0.5]), weighted=st.booleans(),
       ignore=st.sampled_from([-100, 0]), seed=st.integers(0, 1000))
def test_cross_entropy_matches_cpu_on_drawn_cases(n, C, d, reduction, smoothing, weighted,
                                                  ignore, seed):
    x = _logits((n, C, d), "float64", seed, strided=bool(seed % 2))
    t = _labels((n, d), C, seed + 1, ignore=ignore if seed % 3 else None)
    _check(x, t, "float64", seed, weight=_weight(C, "float64", seed + 2) if weighted else
           (None, None), reduction=reduction, label_smoothing=smoothing, ignore_index=ignore)


def test_modules_nll_loss_and_extreme_logits():
    x = _logits((4, 6), "float64", 12, scale=1e4)  # large logits: max-subtracted rows
    t = _labels((4,), 6, 13)
    _check(x, t, "float64")
    w = _weight(6, "float64", 14)
    cpu_m = G.nn.CrossEntropyLoss(weight=w[0], label_smoothing=0.1)
    cuda_m = G.nn.CrossEntropyLoss(weight=w[1], label_smoothing=0.1)
    y = _logits((4, 6), "float64", 15)
    _close(cuda_m(y[1], t[1]), cpu_m(y[0], t[0]), "float64")
    one = _logits((5,), "float64", 16)  # a (C,) input and a 0-d target
    _close(F.cross_entropy(one[1], G.tensor(3, device="cuda")),
           F.cross_entropy(one[0], G.tensor(3)), "float64")
    _close(F.nll_loss(F.log_softmax(y[1], 1), t[1]), F.nll_loss(F.log_softmax(y[0], 1), t[0]),
           "float64")


def test_all_targets_ignored_gives_nan_mean_and_zero_gradient():
    x = _logits((3, 4), "float64", 17)
    t = (G.tensor([-100] * 3), G.tensor([-100] * 3, device="cuda"))
    a, b = F.cross_entropy(x[0], t[0]), F.cross_entropy(x[1], t[1])
    assert np.isnan(a.item()) and np.isnan(b.item())
    b.backward()
    assert not np.asarray(x[1].grad.cpu().numpy()).any()


def test_many_rows():
    """More rows than the grid's blocks (4096): blocks loop over rows, and the reduced
    loss sums more rows than the finishing block has threads."""
    x = _logits((4100, 3), "float64", 18)
    t = _labels((4100,), 3, 19, ignore=-100)
    _check(x, t, "float64", label_smoothing=0.1)


def test_gradcheck_on_device():
    x = G.tensor(np.random.default_rng(20).standard_normal((3, 5, 2)), dtype=G.float64,
                 device="cuda", requires_grad=True)
    t = G.tensor([[0, 4], [2, -100], [1, 1]], device="cuda")
    w = G.tensor([0.5, 1.0, 2.0, 1.5, 0.7], dtype=G.float64, device="cuda")
    assert gradcheck(lambda x: F.cross_entropy(x, t, weight=w, label_smoothing=0.2), (x,))
    p = G.tensor(np.random.default_rng(21).random((3, 5, 2)), dtype=G.float64, device="cuda",
                 requires_grad=True)
    assert gradcheck(lambda x, p: F.cross_entropy(x, p, reduction="sum", label_smoothing=0.1),
                     (x, p))


@pytest.mark.parametrize("order", ["reverse", "random"])
def test_results_do_not_depend_on_thread_order(order):
    x = _logits((5, 70, 3), "float64", 22)
    t = _labels((5, 3), 70, 23, ignore=-100)
    with emulator.thread_order(order, seed=5):
        _check(x, t, "float64", label_smoothing=0.3)
        bad = G.tensor([[1, 70, 2], [3, -1, 0]], device="cuda")
        with pytest.raises(IndexError, match="target 70 is out of bounds"):  # the first one
            F.cross_entropy(x[1][:2].detach(), bad)


# ------------------------------------------------------------------ labels
def _message(fn, *devices):
    """The IndexError messages of fn(device) on each device."""
    out = []
    for dev in devices:
        with pytest.raises(IndexError) as e:
            fn(dev)
        out.append(str(e.value))
    return out


@pytest.mark.parametrize("case", [
    ("cross_entropy", lambda d: F.cross_entropy(G.zeros(3, 4, device=d),
                                                G.tensor([0, 4, 1], device=d))),
    ("negative", lambda d: F.cross_entropy(G.zeros(2, 4, 3, device=d),
                                           G.tensor([[0, 1, 2], [3, -5, 0]], device=d))),
    ("ignore_index", lambda d: F.cross_entropy(G.zeros(2, 4, device=d),
                                               G.tensor([-100, 9], device=d))),
    ("nll_loss", lambda d: F.nll_loss(G.zeros(3, 4, device=d), G.tensor([0, 1, 7], device=d))),
    ("int32", lambda d: F.cross_entropy(G.zeros(2, 3, device=d),
                                        G.tensor([1, 3], dtype=G.int32, device=d))),
    ("embedding", lambda d: G.nn.Embedding(5, 2).to(d)(G.tensor([[1, 2], [5, 0]], device=d))),
], ids=lambda c: c[0])
def test_out_of_range_labels_raise_as_on_cpu(case):
    cpu, cuda = _message(case[1], "cpu", "cuda")
    assert cuda == cpu
    assert "is out of bounds" in cuda


@pytest.mark.parametrize("labels", [np.array([[0, 3], [7, 1]]), np.array([1, 2, 9], np.int32),
                                    np.array(11), np.array([[4, 0, 2]]).T])
def test_check_labels_matches_cpu(labels):
    """The backend function itself: int64 and int32, 0-d and strided labels, with and
    without an exempt ignore_index."""
    dev = cuda_backend.from_numpy(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        dev = cuda_backend.from_numpy(np.ascontiguousarray(labels.T)).T  # a strided view
    for ignore in (None, 7, 11):
        args = (5, ignore, "check: label", "for 5 classes")
        try:
            cpu_backend.check_labels(labels, *args)
        except IndexError as e:
            with pytest.raises(IndexError) as got:
                cuda_backend.check_labels(dev, *args)
            assert str(got.value) == str(e)
        else:
            cuda_backend.check_labels(dev, *args)
    with pytest.raises(TypeError, match="labels must be int64 or int32, got float64"):
        cuda_backend.check_labels(cuda_backend.from_numpy(np.ones(2)), 3, None, "check", "")


def test_bad_arguments_raise_as_on_cpu():
    x = np.zeros((2, 3))
    t = np.array([0, 1])
    cases = [
        lambda b, a: b.cross_entropy(a(x.astype(np.int64)), a(t), None, -100, 0.0, "mean"),
        lambda b, a: b.cross_entropy(a(x), a(t), None, -100, 1.5, "mean"),
        lambda b, a: b.cross_entropy(a(x), a(t.astype(np.int32)), None, -100, 0.0, "mean"),
        lambda b, a: b.cross_entropy(a(x), a(t), a(np.ones(3, np.float32)), -100, 0.0, "mean"),
        lambda b, a: b.cross_entropy(a(x), a(t), a(np.ones(4)), -100, 0.0, "mean"),
        lambda b, a: b.cross_entropy(a(x), a(np.ones((2, 3), np.float32)), None, -100, 0.0,
                                     "mean"),
    ]
    for call in cases:
        assert_same_error(call)


@pytest.mark.parametrize("dtype", sorted(TOL))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_cpu(reduction, dtype):
    """mse_loss's one-pass mean and sum (squared_error_sum) and its gradients for both
    operands agree with the cpu device."""
    rng = np.random.default_rng(5)
    x, t = rng.standard_normal((37, 5)), rng.standard_normal((37, 5))
    pairs = [(G.tensor(a, dtype=DTYPES[dtype], requires_grad=True),
              G.tensor(a, dtype=DTYPES[dtype], device="cuda", requires_grad=True)) for a in (x, t)]
    got = [F.mse_loss(pairs[0][k], pairs[1][k], reduction=reduction) for k in (0, 1)]
    _close(got[1], got[0], dtype)
    w = rng.standard_normal(tuple(got[0].shape))
    (got[0] * G.tensor(w, dtype=got[0].dtype)).sum().backward()
    (got[1] * G.tensor(w, dtype=got[1].dtype, device="cuda")).sum().backward()
    for cpu, cuda in pairs:
        _close(cuda.grad, cpu.grad, dtype)
