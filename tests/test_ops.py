"""Catalog-driven op tests: forward vs numpy, gradcheck, gradgradcheck, strided inputs."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import genesis as G
from op_catalog import OPS

_NP = {"float32": np.float32, "float64": np.float64}
_G = {"float32": G.float32, "float64": G.float64}


def _tensors(arrays, dtype, requires_grad=False, strided=False):
    out = []
    for a in arrays:
        if a.dtype == np.bool_:
            out.append(G.tensor(a))
        elif a.dtype.kind in "iu":
            out.append(G.tensor(a, dtype=G.int64))
        else:
            if strided:  # the same values in a view with a non-unit stride
                base = G.zeros(*a.shape, 2, dtype=_G[dtype])
                base[..., 1] = G.tensor(a, dtype=_G[dtype])
                t = base[..., 1]
                assert not t._data.flags.c_contiguous or a.size <= 1
            else:
                t = G.tensor(a, dtype=_G[dtype])
            if requires_grad:
                t = t.detach().requires_grad_() if strided else t.requires_grad_()
            out.append(t)
    return out


def _cast(arrays, dtype):
    return [a.astype(_NP[dtype]) if a.dtype.kind == "f" else a for a in arrays]


def _check(got, expected, dtype, tol32):
    expected = np.asarray(expected)
    assert tuple(got.shape) == expected.shape, (tuple(got.shape), expected.shape)
    value = got.detach().numpy()
    if expected.dtype == np.bool_:
        assert got.dtype is G.bool
        np.testing.assert_array_equal(value, expected)
    elif dtype == "int64":
        np.testing.assert_array_equal(value, expected)
    elif got.dtype.is_floating_point:
        assert got.dtype.name == dtype, (got.dtype, dtype)
        rtol = tol32 if dtype == "float32" else 1e-10
        atol = 10 * tol32 if dtype == "float32" else 1e-10
        np.testing.assert_allclose(value, expected, rtol=rtol, atol=atol)
    else:  # integer results of float ops (argmax)
        np.testing.assert_array_equal(value, expected)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", OPS, ids=lambda o: o.name)
@given(data=st.data())
def test_forward_matches_numpy(op, dtype, data):
    arrays, kw = op.draw(data, False)
    arrays = _cast(arrays, dtype)
    before = [a.copy() for a in arrays]
    tensors = _tensors(arrays, dtype)
    got = op.fn(*tensors, **kw)
    expected = op.ref(*[a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays], **kw)
    _check(got, expected, dtype, op.tol32)
    for t, b in zip(tensors, before):  # inputs are never mutated
        np.testing.assert_array_equal(t.numpy(), b)


@pytest.mark.parametrize("op", [o for o in OPS if o.int_ok], ids=lambda o: o.name)
@given(data=st.data())
def test_forward_integers(op, data):
    arrays, kw = op.draw(data, False)
    arrays = [np.round(a * 3).astype(np.int64) if a.dtype.kind == "f" else a for a in arrays]
    got = op.fn(*[G.tensor(a) for a in arrays], **kw)
    expected = np.asarray(op.ref(*arrays, **kw))
    if expected.dtype.kind == "f":
        expected = expected.astype(np.int64)
    _check(got, expected, "int64", 0)


@pytest.mark.parametrize("op", [o for o in OPS if o.grad], ids=lambda o: o.name)
@given(data=st.data())
def test_gradcheck(op, data):
    arrays, kw = op.draw(data, True)
    tensors = _tensors(arrays, "float64", requires_grad=True)
    assert G.autograd.gradcheck(lambda *ts: op.fn(*ts, **kw), tensors)


@pytest.mark.parametrize("op", [o for o in OPS if o.grad and o.gradgrad], ids=lambda o: o.name)
@settings(max_examples=max(2, settings().max_examples // 4))
@given(data=st.data())
def test_gradgradcheck(op, data):
    arrays, kw = op.draw(data, True)
    tensors = _tensors(arrays, "float64", requires_grad=True)
    assert G.autograd.gradgradcheck(lambda *ts: op.fn(*ts, **kw), tensors)


@pytest.mark.parametrize("op", OPS, ids=lambda o: o.name)
@settings(max_examples=max(2, settings().max_examples // 2))
@given(data=st.data())
def test_strided_inputs_match_contiguous(op, data):
    arrays, kw = op.draw(data, False)
    dense = _tensors(arrays, "float64", requires_grad=op.grad)
    strided = _tensors(arrays, "float64", requires_grad=op.grad, strided=True)
    a, b = op.fn(*dense, **kw), op.fn(*strided, **kw)
    np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-12, atol=1e-12)
    if op.grad and a.requires_grad and a.numel():
        w = G.tensor(np.linspace(-1, 1, a.numel()).reshape(tuple(a.shape)), dtype=G.float64)
        (a * w).sum().backward()
        (b * w).sum().backward()
        for x, y in zip(dense, strided):
            if x.requires_grad and x.grad is not None:
                np.testing.assert_allclose(y.grad.numpy(), x.grad.numpy(), rtol=1e-12, atol=1e-12)


# Unary float32 ops with a 16-lane form: contiguous inputs take it, strided ones the
# element loop; both must give the same bits.  Lengths cover tails (not multiples of 16)
# and values the range checks of the vector exp (beyond +-87, infinities, NaN).
_VECTOR_FORMS = {
    "exp": G.exp,
    "sigmoid": G.sigmoid,
    "silu": G.nn.functional.silu,
    "gelu": G.nn.functional.gelu,
    "gelu_tanh": lambda t: G.nn.functional.gelu(t, approximate="tanh"),
    "tanh": G.tanh,
    "erf": G.erf,
}


@pytest.mark.parametrize("name", sorted(_VECTOR_FORMS))
@pytest.mark.parametrize("n", [1, 15, 16, 17, 47, 1003])
def test_float32_vector_forms_match_the_element_loop(name, n):
    rng = np.random.default_rng(n)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 88.5, -88.5, 150.0, -150.0,
                        1e-30, -1e-30, 3.0e-39], np.float32)
    x = (rng.standard_normal(n) * rng.choice([1, 5, 40, 120], n)).astype(np.float32)
    x[rng.random(n) < 0.1] = rng.choice(special)
    fn = _VECTOR_FORMS[name]
    dense = fn(G.tensor(x)).numpy()
    base = G.zeros(n, 2)
    base[:, 1] = G.tensor(x)
    strided = fn(base[:, 1]).numpy()
    np.testing.assert_array_equal(dense.view(np.int32), strided.view(np.int32))


@pytest.mark.parametrize("log", [False, True])
def test_softmax_along_dim_0_gives_the_same_bits_in_whole_and_partial_column_blocks(log):
    """softmax along a dim that is not the last goes 64 float columns at a time; whole
    blocks take the 16-lane exp, narrower ones the element loop.  Each column's result
    depends only on that column, so both must agree to the bit."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((300, 64)) * rng.choice([1, 10, 60], (300, 64))).astype(np.float32)
    x[5, 3], x[17, 30], x[200, 39] = -np.inf, np.inf, np.nan
    fn = G.nn.functional.log_softmax if log else G.nn.functional.softmax
    whole = fn(G.tensor(x), dim=0).numpy()
    partial = fn(G.tensor(np.ascontiguousarray(x[:, :40])), dim=0).numpy()
    np.testing.assert_array_equal(whole[:, :40].view(np.int32), partial.view(np.int32))


# Copies whose source is contiguous along another dim than the output's last (transposes
# and permutes) go through tiles of 16 rows x 256 columns, 4-byte elements through 8 x 8
# in-register transposes: sizes around and off those multiples, several dtypes.
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", ["float32", "int32", "float64", "bool"])
@pytest.mark.parametrize("shape, perm", [
    ((16, 16), (1, 0)), ((17, 33), (1, 0)), ((40, 300), (1, 0)), ((263, 31), (1, 0)),
    ((3, 24, 40), (0, 2, 1)), ((2, 20, 18, 5), (0, 2, 3, 1)), ((19, 2, 23), (2, 1, 0)),
])
def test_transposed_copies_match_numpy(shape, perm, dtype, threads):
    rng = np.random.default_rng(len(shape) * 100 + shape[-1])
    a = rng.integers(-1000, 1000, shape)
    a = a > 0 if dtype == "bool" else a.astype(dtype)
    before = G.get_num_threads()
    G.set_num_threads(threads)
    try:
        got = G.tensor(a).permute(*perm).contiguous().numpy()
    finally:
        G.set_num_threads(before)
    np.testing.assert_array_equal(got, np.ascontiguousarray(a.transpose(perm)))


@pytest.mark.parametrize("n", [1, 15, 16, 17, 47, 1003])
def test_gelu_backward_vector_form_matches_the_element_loop(n):
    """gelu's backward (the gelu_grad op) takes its 16-lane form on contiguous operands
    and the element loop on a strided input: the same bits."""
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * rng.choice([1, 5, 15, 120], n)).astype(np.float32)
    x[rng.random(n) < 0.1] = rng.choice(np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 13.0,
                                                  -13.0, 88.5, -88.5], np.float32))
    g = G.tensor(rng.standard_normal(n).astype(np.float32))
    dense = G.tensor(x, requires_grad=True)
    G.nn.functional.gelu(dense).backward(g)
    base = G.zeros(n, 2)
    base[:, 1] = G.tensor(x)
    strided = base[:, 1].detach().requires_grad_()
    G.nn.functional.gelu(strided).backward(g)
    np.testing.assert_array_equal(dense.grad.numpy().view(np.int32),
                                  strided.grad.numpy().view(np.int32))
