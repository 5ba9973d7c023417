"""F.linear: the one-node x @ wᵀ + b against numpy, by gradcheck and gradgradcheck."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import genesis as G
import genesis.nn.functional as F


def _draw(data, lead_dims):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    lead = tuple(data.draw(st.lists(st.integers(0, 3), min_size=lead_dims, max_size=lead_dims),
                           label="lead"))
    n_in, n_out = data.draw(st.integers(1, 4), label="in"), data.draw(st.integers(1, 4), label="out")
    return rng.standard_normal(lead + (n_in,)), rng.standard_normal((n_out, n_in)), \
        rng.standard_normal(n_out)


@pytest.mark.parametrize("dtype", [G.float32, G.float64])
@pytest.mark.parametrize("lead_dims", [1, 2])
@given(data=st.data())
def test_linear_matches_numpy(lead_dims, dtype, data):
    x, w, b = _draw(data, lead_dims)
    for bias in (b, None):
        got = F.linear(G.tensor(x, dtype=dtype), G.tensor(w, dtype=dtype),
                       None if bias is None else G.tensor(bias, dtype=dtype))
        want = x @ w.T + (0 if bias is None else bias)
        assert got.dtype is dtype and tuple(got.shape) == want.shape
        tol = 1e-5 if dtype is G.float32 else 1e-12
        np.testing.assert_allclose(got.numpy(), want, rtol=tol, atol=tol)


@pytest.mark.parametrize("lead_dims", [1, 2])
@given(data=st.data())
def test_linear_gradients(lead_dims, data):
    x, w, b = (G.tensor(a, requires_grad=True) for a in _draw(data, lead_dims))
    assert G.autograd.gradcheck(F.linear, (x, w, b))
    assert G.autograd.gradgradcheck(F.linear, (x, w, b))
    assert G.autograd.gradcheck(lambda x, w: F.linear(x, w), (x, w))


def test_linear_weight_gradient_is_an_own_contiguous_array():
    x = G.randn(5, 3)
    w = G.randn(4, 3, requires_grad=True)
    F.linear(x, w).sum().backward()
    assert w.grad._data.flags.c_contiguous and w.grad._owns_memory()
    np.testing.assert_allclose(w.grad.numpy(), np.ones((5, 4)).T @ x.numpy(), rtol=1e-6)


def test_linear_shape_errors():
    with pytest.raises(RuntimeError, match="does not match weight"):
        F.linear(G.randn(2, 3), G.randn(4, 5))
