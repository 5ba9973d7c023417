"""dropout and dropout2d.

Forward against numpy given the same random numbers, the statistics of the mask,
determinism under manual_seed, gradients (mask * scale, gradcheck and
gradgradcheck with a fixed generator), the identity cases and p = 1 as in
PyTorch, in place, strided inputs, 1 and 2 threads, every instruction-set copy,
and error messages.
"""
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

import genesis as G
import genesis.nn.functional as F
from genesis import _C

_G = {"float32": G.float32, "float64": G.float64}
_NP = {"float32": np.float32, "float64": np.float64}
DTYPES = ["float32", "float64"]


def _reference(x, p, seed, per_channel=False):
    """What dropout must return when genesis's generator is seeded with `seed`."""
    shape = x.shape[:2] + (1,) * (x.ndim - 2) if per_channel else x.shape
    u = np.random.default_rng(seed).random(shape, dtype=x.dtype)
    mask = (u >= p) * (1.0 / (1.0 - p))
    return x.astype(np.float64) * mask, mask


# ---------------------------------------------------------------- forward
@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_dropout_matches_numpy(dtype, data):
    shape = tuple(data.draw(st.lists(st.integers(1, 6), max_size=3), label="shape"))
    p = data.draw(st.sampled_from([0.1, 0.5, 0.7, 0.999]), label="p")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    x = np.random.default_rng(seed + 1).standard_normal(shape).astype(_NP[dtype])
    G.manual_seed(seed)
    out = F.dropout(G.tensor(x), p)
    want, _ = _reference(x, p, seed)
    assert out.dtype is _G[dtype] and tuple(out.shape) == shape
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-6 if dtype == "float32" else 1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_dropout2d_matches_numpy(dtype, data):
    shape = tuple(data.draw(st.lists(st.integers(1, 5), min_size=4, max_size=4), label="shape"))
    p = data.draw(st.sampled_from([0.2, 0.5, 0.9]), label="p")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    x = np.random.default_rng(seed + 1).standard_normal(shape).astype(_NP[dtype])
    G.manual_seed(seed)
    out = F.dropout2d(G.tensor(x), p)
    want, _ = _reference(x, p, seed, per_channel=True)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-6 if dtype == "float32" else 1e-15)


@pytest.mark.parametrize("per_channel", [False, True], ids=["dropout", "dropout2d"])
def test_fused_kernel_matches_composed_reference(per_channel):
    x = G.randn(6, 5, 4, 3, dtype=G.float64, requires_grad=True)
    G.manual_seed(12)
    out = (F.dropout2d if per_channel else F.dropout)(x, 0.3)
    # the same uniform numbers, drawn by genesis.rand, and the mask built from genesis ops
    G.manual_seed(12)
    u = G.rand(*((6, 5, 1, 1) if per_channel else (6, 5, 4, 3)), dtype=G.float64)
    ref = x * (u >= 0.3).to(G.float64) / (1 - 0.3)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-15, atol=0)
    g = G.randn(6, 5, 4, 3, dtype=G.float64)
    (ga,) = G.autograd.grad(out, x, g)
    (gb,) = G.autograd.grad(ref, x, g)
    np.testing.assert_allclose(ga.numpy(), gb.numpy(), rtol=1e-15, atol=0)


def test_explicit_generator_leaves_the_default_one_alone():
    x = np.ones((3, 5))
    G.manual_seed(0)
    expected_next = G.rand(4).numpy()
    G.manual_seed(0)
    out = F.dropout(G.tensor(x), 0.4, generator=G.Generator().manual_seed(11))
    np.testing.assert_array_equal(out.numpy(), _reference(x, 0.4, 11)[0])
    np.testing.assert_array_equal(G.rand(4).numpy(), expected_next)


def test_determinism_under_manual_seed():
    x = G.randn(50, 40)
    G.manual_seed(5)
    a = F.dropout(x, 0.5)
    G.manual_seed(5)
    b = F.dropout(x, 0.5)
    c = F.dropout(x, 0.5)  # the generator moved on
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(b.numpy(), c.numpy())


# ---------------------------------------------------------------- statistics
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("dtype", DTYPES)
def test_mask_fraction_and_scale(p, dtype):
    n = 400_000
    G.manual_seed(1)
    out = F.dropout(G.ones(n, dtype=_G[dtype]), p).numpy()
    zeros = np.count_nonzero(out == 0)
    assert abs(zeros / n - p) < 5 * np.sqrt(p * (1 - p) / n)  # five standard deviations
    kept = out[out != 0]
    np.testing.assert_array_equal(kept, _NP[dtype](1.0 / (1.0 - p)))
    assert abs(out.mean() - 1.0) < 5 * np.sqrt(p / (1 - p) / n)  # unbiased


def test_dropout2d_drops_whole_channels():
    G.manual_seed(2)
    out = F.dropout2d(G.ones(40, 50, 3, 4), 0.3).numpy()
    per_channel = out.reshape(40, 50, -1)
    assert np.all(per_channel.min(-1) == per_channel.max(-1))  # each channel all kept or all zero
    frac = np.mean(per_channel[..., 0] == 0)
    assert abs(frac - 0.3) < 5 * np.sqrt(0.3 * 0.7 / 2000)
    np.testing.assert_allclose(per_channel.max(), 1 / 0.7, rtol=1e-6)


def test_dropout2d_dimension_rules():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = F.dropout2d(G.ones(20, 30, 5), 0.5).numpy()  # taken as (N, C, L)
        F.dropout2d(G.ones(2, 3, 4, 4), 0.5)
    assert np.all(rows.min(-1) == rows.max(-1)) and 0 < np.count_nonzero(rows) < rows.size
    with pytest.warns(UserWarning, match="received a 2-D input"):
        F.dropout2d(G.ones(4, 6), 0.5)
    with pytest.warns(UserWarning, match="received a 1-D input"):
        with pytest.raises(RuntimeError, match=r"dropout2d: Feature dropout requires at least "
                                               r"2 dimensions in the input, got input of shape "
                                               r"\[3\]"):
            F.dropout2d(G.ones(3), 0.5)


# ---------------------------------------------------------------- gradients
def test_gradient_is_the_mask_times_scale():
    x = np.random.default_rng(3).uniform(1, 2, (30, 20))
    w = np.random.default_rng(4).standard_normal((30, 20))
    G.manual_seed(9)
    tx = G.tensor(x, requires_grad=True)
    (F.dropout(tx, 0.35) * G.tensor(w)).sum().backward()
    _, mask = _reference(x, 0.35, 9)
    np.testing.assert_array_equal(tx.grad.numpy(), w * mask)


@pytest.mark.parametrize("fn", [F.dropout, F.dropout2d], ids=["dropout", "dropout2d"])
def test_gradcheck_and_gradgradcheck(fn):
    x = G.tensor(np.random.default_rng(5).standard_normal((3, 4, 2, 2)), requires_grad=True)
    # a fresh generator per call, so every evaluation draws the same mask
    f = lambda t: fn(t, 0.4, generator=G.Generator().manual_seed(0))  # noqa: E731
    assert G.autograd.gradcheck(f, [x])
    assert G.autograd.gradgradcheck(f, [x])


# ---------------------------------------------------------------- edge cases (as in PyTorch)
def test_identity_cases_return_the_input():
    x = G.randn(3, 4, requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    y = G.ones(2, 2, 2, 2)
    assert F.dropout2d(y, 0.7, training=False) is y
    assert F.dropout(y, 0.0, inplace=True) is y
    empty = G.ones(0, 3)
    assert F.dropout(empty, 0.5) is empty
    ints = G.tensor([1, 2, 3])
    assert F.dropout(ints, 0.5, training=False) is ints


def test_p_one_multiplies_by_zero():
    x = G.tensor([float("inf"), float("nan"), 1.0, -2.0], requires_grad=True)
    out = F.dropout(x, 1.0)
    np.testing.assert_array_equal(out.detach().numpy(), [np.nan, np.nan, 0.0, -0.0])
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0)
    y = G.ones(2, 3, 4)
    assert F.dropout2d(y, 1.0, inplace=True) is y
    np.testing.assert_array_equal(y.numpy(), 0)


def test_nan_and_inf_stay_nan_when_dropped():
    G.manual_seed(0)
    out = F.dropout(G.full((1000,), float("inf")), 0.5).numpy()
    assert np.all(np.isnan(out) | np.isinf(out)) and np.any(np.isnan(out))


def test_inplace():
    x = np.random.default_rng(6).uniform(1, 2, (20, 10)).astype(np.float32)
    t = G.tensor(x)
    version = t._version_value
    G.manual_seed(3)
    assert F.dropout(t, 0.5, inplace=True) is t
    assert t._version_value > version
    np.testing.assert_allclose(t.numpy(), _reference(x, 0.5, 3)[0], rtol=1e-6)

    # under autograd: the result is written back and the gradient flows through
    leaf = G.tensor(x, dtype=G.float64, requires_grad=True)
    h = leaf * 1.0
    G.manual_seed(3)
    assert F.dropout(h, 0.5, inplace=True) is h
    h.sum().backward()
    np.testing.assert_array_equal(leaf.grad.numpy(), _reference(x.astype(np.float64), 0.5, 3)[1])
    with pytest.raises(RuntimeError, match="dropout_: a leaf Variable that requires grad"):
        F.dropout(leaf, 0.5, inplace=True)


def test_non_contiguous_input_matches_contiguous():
    x = np.random.default_rng(7).standard_normal((6, 8))
    G.manual_seed(4)
    a = F.dropout(G.tensor(x.T.copy()), 0.3)
    G.manual_seed(4)
    b = F.dropout(G.tensor(x).T, 0.3)
    np.testing.assert_array_equal(b.numpy(), a.numpy())


def test_results_do_not_depend_on_thread_count_or_instruction_set():
    x = G.randn(300, 257)
    y = G.randn(64, 32, 9, 7)

    def run():
        G.manual_seed(8)
        return F.dropout(x, 0.3).numpy(), F.dropout2d(y, 0.6).numpy()

    before = G.get_num_threads()
    want = run()
    try:
        for threads in (1, 2):
            G.set_num_threads(threads)
            for isa in ("generic", "avx2", "avx512"):
                if ("generic", "avx2", "avx512").index(isa) > \
                        ("generic", "avx2", "avx512").index(_C.best_isa()):
                    continue
                _C.set_isa(isa)
                for a, b in zip(run(), want):
                    np.testing.assert_array_equal(a, b)
    finally:
        G.set_num_threads(before)
        _C.set_isa("best")


# ---------------------------------------------------------------- errors
def test_errors():
    for fn, name in ((F.dropout, "dropout"), (F.dropout2d, "dropout2d")):
        for p in (-0.1, 1.5):
            with pytest.raises(ValueError, match=f"{name}: dropout probability has to be between "
                                                 f"0 and 1, but got {p}"):
                fn(G.ones(2, 3, 4), p)
    with pytest.raises(TypeError, match="dropout: expected a floating point input, got .*int64"):
        F.dropout(G.tensor([1, 2, 3]), 0.5)
    with pytest.raises(TypeError, match="generator must be a genesis.Generator"):
        F.dropout(G.ones(3), 0.5, generator=np.random.default_rng(0))
    with pytest.raises(TypeError, match="dropout: expected a Tensor input, got list"):
        F.dropout([1.0, 2.0], 0.5)
    with pytest.raises(ValueError, match="dropout: probability has to be between 0 and 1"):
        x = np.ones(3, np.float32)
        _C.dropout(x, x, 2.0, np.empty_like(x), np.empty_like(x))
    with pytest.raises(ValueError, match="do not divide the input"):
        x = np.ones(6, np.float32)
        _C.dropout(x, np.ones(4, np.float32), 0.5, np.empty_like(x), np.empty(4, np.float32))


def test_parity_with_torch_semantics():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    vals = [float("inf"), float("nan"), 1.0, -2.0]
    np.testing.assert_array_equal(F.dropout(G.tensor(vals), 1.0).numpy(),
                                  tf.dropout(torch.tensor(vals), 1.0).numpy())
    ones = tf.dropout(torch.ones(10000), 0.25).numpy()
    ours = F.dropout(G.ones(10000), 0.25).numpy()
    assert set(np.unique(ours)) == set(np.unique(ones))  # {0, 1 / (1 - p)}
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        tf.dropout(torch.ones(3), 1.5)
