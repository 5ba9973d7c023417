"""F.embedding against numpy: lookups, gradients (padding_idx, scale_grad_by_freq),
max_norm renormalization, bounds checks, threads, and parity with torch."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import genesis as G
import genesis.nn.functional as F

_G = {"float32": G.float32, "float64": G.float64}
FEW = settings(max_examples=max(3, settings().max_examples // 4))


@st.composite
def lookup(draw, small=False):
    v = draw(st.integers(1, 5 if small else 8), label="num_embeddings")
    d = draw(st.integers(1, 3 if small else 5), label="embedding_dim")
    shape = tuple(draw(st.lists(st.integers(0 if not small else 1, 3), max_size=2), label="ids"))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    ids = rng.integers(0, v, shape)
    weight = rng.standard_normal((v, d))
    padding_idx = draw(st.one_of(st.none(), st.integers(-v, v - 1)), label="padding_idx")
    freq = draw(st.booleans(), label="scale_grad_by_freq")
    return ids, weight, padding_idx, freq


def np_embedding_grad(ids, weight, g, padding_idx, freq):
    """d sum(out * g) / d weight."""
    flat, g2 = ids.reshape(-1), g.reshape(-1, weight.shape[1])
    out = np.zeros_like(weight)
    counts = np.bincount(flat, minlength=weight.shape[0])
    for i, row in zip(flat, g2):
        if padding_idx is not None and i == padding_idx % weight.shape[0]:
            continue
        out[i] += row / counts[i] if freq else row
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@given(case=lookup())
def test_embedding_forward_and_gradient_match_numpy(dtype, case):
    ids, weight, padding_idx, freq = case
    W = G.tensor(weight, dtype=_G[dtype], requires_grad=True)
    out = F.embedding(G.tensor(ids), W, padding_idx=padding_idx, scale_grad_by_freq=freq)
    assert out.dtype is _G[dtype]
    np.testing.assert_array_equal(out.detach().numpy(), weight.astype(dtype)[ids])
    g = np.linspace(-1, 1, out.numel()).reshape(tuple(out.shape))
    out.backward(G.tensor(g, dtype=_G[dtype]))
    np.testing.assert_allclose(W.grad.numpy(), np_embedding_grad(ids, weight, g, padding_idx, freq),
                               rtol=1e-6, atol=1e-6)


@given(case=lookup(small=True))
def test_embedding_gradcheck(case):
    """(padding_idx and scale_grad_by_freq change the gradient on purpose: the numpy test
    covers them.)"""
    ids, weight, _, _ = case
    f = lambda w: F.embedding(G.tensor(ids), w)  # noqa: E731
    assert G.autograd.gradcheck(f, [G.tensor(weight, requires_grad=True)])


@FEW
@given(case=lookup(small=True))
def test_embedding_gradgradcheck(case):
    """The backward (a scatter-add, with padding and frequency scaling) is differentiable."""
    ids, weight, padding_idx, freq = case
    f = lambda w: F.embedding(G.tensor(ids), w, padding_idx, scale_grad_by_freq=freq)  # noqa: E731
    w = G.tensor(weight, requires_grad=True)
    g = G.tensor(np.ones(ids.shape + weight.shape[1:]), requires_grad=True)
    first = lambda w, g: G.autograd.grad([f(w)], [w], [g], create_graph=True)[0]  # noqa: E731
    assert G.autograd.gradcheck(first, [w, g])


def test_embedding_zero_dim_and_int32_ids():
    weight = np.arange(12.0).reshape(4, 3)
    out = F.embedding(G.tensor(2), G.tensor(weight))
    np.testing.assert_array_equal(out.numpy(), weight[2])
    out = F.embedding(G.tensor(np.array([[3, 0]], np.int32), dtype=G.int32), G.tensor(weight))
    np.testing.assert_array_equal(out.numpy(), weight[[[3, 0]]])


@pytest.mark.parametrize("bad", [4, 100, -1, -5])
def test_embedding_out_of_range_ids_raise_index_error(bad):
    W = G.tensor(np.zeros((4, 2)))
    with pytest.raises(IndexError, match=rf"embedding: index {bad} is out of bounds for "
                                         r"num_embeddings 4"):
        F.embedding(G.tensor([[0, 1], [bad, 2]]), W)


def test_embedding_argument_errors():
    W = G.tensor(np.zeros((4, 2)))
    with pytest.raises(TypeError, match="integer ids"):
        F.embedding(G.tensor([0.0, 1.0]), W)
    with pytest.raises(ValueError, match="2-D floating tensor"):
        F.embedding(G.tensor([0]), G.tensor(np.zeros(4)))
    with pytest.raises(ValueError, match="padding_idx 4 must be within num_embeddings"):
        F.embedding(G.tensor([0]), W, padding_idx=4)
    with pytest.raises(ValueError, match="sparse gradients"):
        F.embedding(G.tensor([0]), W, sparse=True)


@pytest.mark.parametrize("norm_type", [2.0, 1.0])
def test_embedding_max_norm_renormalizes_rows_in_place(norm_type):
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((6, 4)) * 3
    weight[4] *= 0.01  # already inside the ball: unchanged
    W = G.tensor(weight, requires_grad=True)
    ids = np.array([[1, 4, 1], [0, 4, 3]])
    out = F.embedding(G.tensor(ids), W, max_norm=1.5, norm_type=norm_type)
    new = W.detach().numpy()
    norms = np.linalg.norm(weight, ord=norm_type, axis=1)
    for i in range(6):
        if i in ids and norms[i] > 1.5:
            np.testing.assert_allclose(new[i], weight[i] * 1.5 / (norms[i] + 1e-7), rtol=1e-12)
        else:
            np.testing.assert_array_equal(new[i], weight[i])
    np.testing.assert_array_equal(out.detach().numpy(), new[ids])
    out.sum().backward()
    np.testing.assert_array_equal(W.grad.numpy(), np_embedding_grad(ids, new, np.ones(out.shape),
                                                                    None, False))


@pytest.mark.parametrize("threads", [1, 2])
def test_embedding_large_batch_on_threads(threads):
    rng = np.random.default_rng(2)
    weight = rng.standard_normal((500, 64))
    ids = rng.integers(0, 500, (64, 40))
    W = G.tensor(weight, requires_grad=True)
    before = G.get_num_threads()
    G.set_num_threads(threads)
    try:
        out = F.embedding(G.tensor(ids), W, padding_idx=7)
        g = rng.standard_normal(out.shape)
        out.backward(G.tensor(g))
    finally:
        G.set_num_threads(before)
    np.testing.assert_array_equal(out.detach().numpy(), weight[ids])
    np.testing.assert_allclose(W.grad.numpy(), np_embedding_grad(ids, weight, g, 7, False),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("options", [
    {}, {"padding_idx": 2}, {"padding_idx": -1}, {"scale_grad_by_freq": True},
    {"max_norm": 1.0}, {"max_norm": 2.0, "norm_type": 1.0, "padding_idx": 0}])
def test_parity_with_torch(options):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    weight = rng.standard_normal((7, 3)) * 2
    ids = rng.integers(0, 7, (4, 5))
    g = rng.standard_normal((4, 5, 3))
    W, TW = G.tensor(weight.copy(), requires_grad=True), torch.tensor(weight.copy(),
                                                                      requires_grad=True)
    ours = F.embedding(G.tensor(ids), W, **options)
    theirs = torch.nn.functional.embedding(torch.tensor(ids), TW, **options)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(W.detach().numpy(), TW.detach().numpy(), rtol=1e-12)
    ours.backward(G.tensor(g))
    theirs.backward(torch.tensor(g))
    np.testing.assert_allclose(W.grad.numpy(), TW.grad.numpy(), rtol=1e-12, atol=1e-14)
