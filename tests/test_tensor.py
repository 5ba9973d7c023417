"""The Tensor object: creation, dtypes, conversions, attributes, repr, operators,
type promotion, in-place ops and version counters, __setitem__."""
import math

import numpy as np
import pytest

import genesis as G


def npy(t):
    return t.detach().numpy()


def assert_tensor(t, expected, dtype=None):
    expected = np.asarray(expected)
    assert isinstance(t, G.Tensor)
    assert tuple(t.shape) == expected.shape, (tuple(t.shape), expected.shape)
    if dtype is not None:
        assert t.dtype is dtype, (t.dtype, dtype)
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(npy(t), expected, rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(npy(t), expected)


# ----------------------------------------------------------------- creation
def test_tensor_from_nested_lists_and_scalars():
    assert_tensor(G.tensor([[1.0, 2.0], [3.0, 4.0]]), [[1, 2], [3, 4.0]], G.float32)
    assert_tensor(G.tensor(3.5), np.array(3.5), G.float32)
    assert G.tensor(3.5).ndim == 0
    assert_tensor(G.tensor([1, 2, 3]), [1, 2, 3], G.int64)
    assert_tensor(G.tensor([True, False]), [True, False], G.bool)
    assert_tensor(G.tensor([1, 2], dtype=G.float64), [1.0, 2.0], G.float64)
    assert_tensor(G.tensor([1.7, -2.2], dtype=G.int32), [1, -2], G.int32)
    t = G.tensor([1.0, 2.0], requires_grad=True)
    assert t.requires_grad and t.is_leaf


def test_tensor_copies_its_data():
    a = np.array([1.0, 2.0], dtype=np.float32)
    t = G.tensor(a)
    a[0] = 100.0
    assert npy(t)[0] == 1.0
    src = G.tensor([1.0, 2.0])
    t2 = G.tensor(src)
    src.add_(1.0)
    assert_tensor(t2, [1.0, 2.0])


def test_dtype_inference():
    assert G.tensor(1.0).dtype is G.float32
    assert G.tensor(1).dtype is G.int64
    assert G.tensor(True).dtype is G.bool
    assert G.tensor([1, 2.5]).dtype is G.float32
    assert G.tensor(np.array([1.0, 2.0], dtype=np.float64)).dtype is G.float64
    assert G.tensor(np.array([1.0], dtype=np.float32)).dtype is G.float32
    assert G.tensor(np.array([1, 2], dtype=np.int32)).dtype is G.int32
    assert G.tensor(np.array([1, 2], dtype=np.int64)).dtype is G.int64
    assert G.tensor(np.array([True])).dtype is G.bool
    assert G.from_numpy(np.zeros(2, dtype=np.float64)).dtype is G.float64


def test_as_tensor_shares_memory_with_numpy():
    a = np.arange(4, dtype=np.float32)
    t = G.as_tensor(a)
    assert t.dtype is G.float32
    a[1] = 42.0
    assert npy(t)[1] == 42.0
    t.mul_(2.0)
    assert a[1] == 84.0
    c = G.as_tensor(a, dtype=G.float64)  # a dtype change must copy
    assert c.dtype is G.float64
    a[0] = -1.0
    assert npy(c)[0] == 0.0
    assert_tensor(G.as_tensor([1, 2]), [1, 2], G.int64)
    src = G.tensor([1.0, 2.0])
    assert G.as_tensor(src) is src


def test_from_numpy_shares_memory():
    a = np.array([[1, 2], [3, 4]], dtype=np.int64)
    t = G.from_numpy(a)
    assert t.dtype is G.int64 and tuple(t.shape) == (2, 2)
    a[0, 0] = 7
    assert t[0, 0].item() == 7
    t[1, 1] = 9
    assert a[1, 1] == 9
    assert np.shares_memory(t.numpy(), a)


def test_zeros_ones_full_empty():
    assert_tensor(G.zeros(2, 3), np.zeros((2, 3)), G.float32)
    assert_tensor(G.zeros((2, 3)), np.zeros((2, 3)), G.float32)
    assert_tensor(G.ones(3, dtype=G.int64), np.ones(3, dtype=np.int64), G.int64)
    assert_tensor(G.ones([2, 2], dtype=G.float64), np.ones((2, 2)), G.float64)
    assert_tensor(G.full((2, 2), 7.5), np.full((2, 2), 7.5), G.float32)
    assert_tensor(G.full((3,), 4), np.full(3, 4), G.int64)
    assert_tensor(G.full((2,), True), np.full(2, True), G.bool)
    assert_tensor(G.full((2,), 4, dtype=G.float64), np.full(2, 4.0), G.float64)
    e = G.empty(4, 5, dtype=G.float64)
    assert tuple(e.shape) == (4, 5) and e.dtype is G.float64
    assert G.zeros(0, 3).numel() == 0
    z = G.zeros(2, requires_grad=True)
    assert z.requires_grad and z.is_leaf
    assert G.zeros(()).ndim == 0 and G.zeros(()).item() == 0.0


def test_arange():
    assert_tensor(G.arange(5), np.arange(5), G.int64)
    assert_tensor(G.arange(2, 9, 3), np.arange(2, 9, 3), G.int64)
    assert_tensor(G.arange(0.0, 1.0, 0.25), np.arange(0.0, 1.0, 0.25), G.float32)
    assert_tensor(G.arange(5, 0, -1), [5, 4, 3, 2, 1], G.int64)
    assert_tensor(G.arange(1.0, -1.0, -0.5), [1.0, 0.5, 0.0, -0.5], G.float32)
    assert_tensor(G.arange(3, dtype=G.float64), [0.0, 1.0, 2.0], G.float64)
    assert G.arange(3, 3).numel() == 0
    assert G.arange(0, 10, 3).tolist() == [0, 3, 6, 9]


def test_linspace_and_eye():
    assert_tensor(G.linspace(0, 1, 5), np.linspace(0, 1, 5), G.float32)
    assert_tensor(G.linspace(-2, 2, 3, dtype=G.float64), [-2.0, 0.0, 2.0], G.float64)
    assert_tensor(G.linspace(3, 3, 1), [3.0])
    assert_tensor(G.eye(3), np.eye(3), G.float32)
    assert_tensor(G.eye(2, 4, dtype=G.float64), np.eye(2, 4), G.float64)


def test_random_creation_and_manual_seed():
    G.manual_seed(123)
    a, b, c = G.rand(3, 4), G.randn(5), G.randint(0, 10, (6,))
    G.manual_seed(123)
    a2, b2, c2 = G.rand(3, 4), G.randn(5), G.randint(0, 10, (6,))
    np.testing.assert_array_equal(npy(a), npy(a2))
    np.testing.assert_array_equal(npy(b), npy(b2))
    np.testing.assert_array_equal(npy(c), npy(c2))
    assert a.dtype is G.float32 and b.dtype is G.float32 and c.dtype is G.int64
    assert ((a >= 0) & (a < 1)).numpy().all()
    assert ((c >= 0) & (c < 10)).numpy().all()
    assert not np.array_equal(npy(G.rand(100)), npy(G.rand(100)))
    assert G.randn(2, 2, dtype=G.float64).dtype is G.float64
    assert G.rand(2, requires_grad=True).requires_grad
    big = npy(G.randn(20000, dtype=G.float64))
    assert abs(big.mean()) < 0.05 and abs(big.std() - 1) < 0.05
    r = npy(G.randint(3, 5, (1000,)))
    assert set(np.unique(r)) == {3, 4}


def test_like_functions():
    x = G.tensor([[1.0, 2.0, 3.0]], dtype=G.float64)
    for fn, val in ((G.zeros_like, 0.0), (G.ones_like, 1.0)):
        y = fn(x)
        assert_tensor(y, np.full((1, 3), val), G.float64)
    assert_tensor(G.full_like(x, 2.5), np.full((1, 3), 2.5), G.float64)
    assert G.empty_like(x).shape == x.shape
    assert G.zeros_like(x, dtype=G.int32).dtype is G.int32
    r = G.rand_like(x)
    assert r.shape == x.shape and r.dtype is G.float64
    assert G.randn_like(x).shape == x.shape
    i = G.randint_like(G.zeros(4, dtype=G.int64), 5)
    assert i.dtype is G.int64 and ((i >= 0) & (i < 5)).numpy().all()
    assert G.ones_like(x, requires_grad=True).requires_grad


# ----------------------------------------------------------------- conversions
def test_to_dtype_and_shortcuts():
    x = G.tensor([1.7, -2.5, 0.0])
    assert_tensor(x.to(G.float64), [1.7, -2.5, 0.0], G.float64)
    assert_tensor(x.long(), [1, -2, 0], G.int64)
    assert_tensor(x.to(G.int32), [1, -2, 0], G.int32)
    assert_tensor(x.bool(), [True, True, False], G.bool)
    assert_tensor(x.double(), np.array([1.7, -2.5, 0.0], dtype=np.float32).astype(np.float64),
                  G.float64)
    assert_tensor(G.tensor([1, 2]).float(), [1.0, 2.0], G.float32)
    assert_tensor(G.tensor([True, False]).long(), [1, 0], G.int64)
    assert x.to(G.float32) is x  # same dtype: no copy
    y = x.to(G.float64)
    y[0] = 100.0
    assert npy(x)[0] == pytest.approx(1.7)


def test_to_dtype_is_differentiable():
    x = G.tensor([1.0, 2.0], requires_grad=True)
    y = x.double() * 3.0
    assert y.dtype is G.float64
    y.sum().backward()
    assert x.grad.dtype is G.float32
    assert_tensor(x.grad, [3.0, 3.0])


def test_device_cpu():
    x = G.tensor([1.0])
    assert x.device == "cpu" and x.device == G.device("cpu")
    assert str(x.device) == "cpu" and x.device.type == "cpu"
    assert G.zeros(2, device="cpu").device == "cpu"
    assert G.tensor([1], device=G.device("cpu")).device.type == "cpu"
    assert x.to("cpu") is x
    assert x.cpu() is x
    y = x.to("cpu", G.float64)
    assert y.device == "cpu" and y.dtype is G.float64


# ----------------------------------------------------------------- attributes
def test_attributes():
    x = G.tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    assert x.shape == (2, 3, 4) and isinstance(x.shape, tuple)
    assert x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4
    assert x.ndim == 3 and x.dim() == 3
    assert x.numel() == 24 and len(x) == 2
    assert x.dtype is G.float32 and x.device == "cpu"
    assert not x.requires_grad and x.grad is None and x.grad_fn is None and x.is_leaf
    assert x.tolist() == np.arange(24).reshape(2, 3, 4).tolist()
    assert isinstance(x.numpy(), np.ndarray) and x.numpy().shape == (2, 3, 4)
    assert G.tensor([[2.5]]).item() == 2.5
    assert isinstance(G.tensor(3).item(), int) and G.tensor(3).item() == 3
    assert G.tensor(True).item() is True
    assert G.tensor(2.0).tolist() == 2.0


def test_autograd_attributes():
    w = G.tensor([1.0, 2.0], requires_grad=True)
    y = w * 2.0
    assert y.requires_grad and not y.is_leaf and y.grad_fn is not None
    assert w.is_leaf and w.grad_fn is None
    y.sum().backward()
    assert_tensor(w.grad, [2.0, 2.0], G.float32)
    with pytest.raises(RuntimeError, match="detach"):
        w.numpy()
    assert_tensor(w.detach(), [1.0, 2.0])


def test_item_requires_one_element():
    with pytest.raises((RuntimeError, ValueError)):
        G.tensor([1.0, 2.0]).item()


def test_repr():
    r = repr(G.tensor([1.5, 2.0]))
    assert "1.5" in r and "2." in r and "float32" in r and "cpu" in r
    r = repr(G.tensor([1, 2], dtype=G.int64))
    assert "int64" in r and "1" in r
    w = G.tensor([1.0, 3.25], requires_grad=True)
    assert "requires_grad=True" in repr(w)
    y = w * 2.0
    r = repr(y)
    assert "6.5" in r and "grad_fn=<" in r and "Mul" in r
    assert "float64" in repr(G.zeros(1, dtype=G.float64))


# ----------------------------------------------------------------- operators
A = np.array([[1.5, -2.0, 3.0], [0.5, 4.0, -1.0]], dtype=np.float32)
B = np.array([[2.0, 0.5, -1.5], [3.0, -2.0, 0.25]], dtype=np.float32)


@pytest.mark.parametrize("op,ref", [
    (lambda a, b: a + b, np.add),
    (lambda a, b: a - b, np.subtract),
    (lambda a, b: a * b, np.multiply),
    (lambda a, b: a / b, np.divide),
    (lambda a, b: a // b, np.floor_divide),
    (lambda a, b: a % b, np.mod),
    (lambda a, b: abs(a) ** b, lambda a, b: np.abs(a) ** b),
], ids=["add", "sub", "mul", "div", "floordiv", "mod", "pow"])
def test_binary_operators_match_numpy(op, ref):
    a, b = G.tensor(A), G.tensor(B)
    out = op(a, b)
    assert out.dtype is G.float32
    np.testing.assert_allclose(npy(out), ref(A, B), rtol=1e-5, atol=1e-6)
    # broadcasting against a row
    out = op(a, G.tensor(B[0]))
    np.testing.assert_allclose(npy(out), ref(A, B[0]), rtol=1e-5, atol=1e-6)


def test_integer_operators():
    a = G.tensor([7, -7, 5, 0])
    b = G.tensor([2, 2, -3, 4])
    assert_tensor(a + b, [9, -5, 2, 4], G.int64)
    assert_tensor(a * b, [14, -14, -15, 0], G.int64)
    assert_tensor(a // b, np.array([7, -7, 5, 0]) // np.array([2, 2, -3, 4]), G.int64)
    assert_tensor(a % b, np.array([7, -7, 5, 0]) % np.array([2, 2, -3, 4]), G.int64)
    assert_tensor(a / b, [3.5, -3.5, 5 / -3, 0.0], G.float32)  # true division -> float
    assert_tensor(a ** 2, [49, 49, 25, 0], G.int64)
    assert_tensor(-a, [-7, 7, -5, 0], G.int64)


def test_matmul_operator_and_unary_neg():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    np.testing.assert_allclose(npy(G.tensor(a) @ G.tensor(b)), a @ b, rtol=1e-12)
    np.testing.assert_allclose(npy(G.tensor(a) @ G.tensor(b[:, 0])), a @ b[:, 0], rtol=1e-12)
    assert_tensor(-G.tensor(A), -A, G.float32)
    assert_tensor(+G.tensor(A), A, G.float32)
    assert_tensor(abs(G.tensor(A)), np.abs(A), G.float32)


def test_reflected_operators_with_python_scalars():
    x = G.tensor([1.0, 2.0, 4.0])
    xs = np.array([1.0, 2.0, 4.0], dtype=np.float32)
    assert_tensor(2 - x, 2 - xs, G.float32)
    assert_tensor(2 / x, 2 / xs, G.float32)
    assert_tensor(2 ** x, 2 ** xs, G.float32)
    assert_tensor(3 + x, 3 + xs, G.float32)
    assert_tensor(3 * x, 3 * xs, G.float32)
    assert_tensor(7 // x, 7 // xs, G.float32)
    assert_tensor(7 % x, 7 % xs, G.float32)
    assert_tensor(x - 2, xs - 2, G.float32)
    assert_tensor(x ** 2, xs ** 2, G.float32)
    assert_tensor(x ** 0.5, xs ** 0.5, G.float32)


def test_comparisons_give_bool_tensors():
    a, b = G.tensor(A), G.tensor(B)
    for op, ref in ((lambda u, v: u < v, np.less), (lambda u, v: u <= v, np.less_equal),
                    (lambda u, v: u > v, np.greater), (lambda u, v: u >= v, np.greater_equal),
                    (lambda u, v: u == v, np.equal), (lambda u, v: u != v, np.not_equal)):
        out = op(a, b)
        assert out.dtype is G.bool and not out.requires_grad
        np.testing.assert_array_equal(out.numpy(), ref(A, B))
        np.testing.assert_array_equal(op(a, 1.5).numpy(), ref(A, np.float32(1.5)))
    assert_tensor(1.5 < a, 1.5 < A, G.bool)
    m = G.tensor([True, False, True])
    n = G.tensor([True, True, False])
    assert_tensor(m & n, [True, False, False], G.bool)
    assert_tensor(m | n, [True, True, True], G.bool)
    assert_tensor(m ^ n, [False, True, True], G.bool)
    assert_tensor(~m, [False, True, False], G.bool)
    x = G.tensor([1.0, 2.0], requires_grad=True)
    assert not (x > 1.0).requires_grad


def test_type_promotion():
    i64 = G.tensor([1, 2])
    i32 = G.tensor([1, 2], dtype=G.int32)
    f32 = G.tensor([1.0, 2.0])
    f64 = G.tensor([1.0, 2.0], dtype=G.float64)
    b = G.tensor([True, False])
    assert (i64 + 1.5).dtype is G.float32
    assert_tensor(i64 + 1.5, [2.5, 3.5], G.float32)
    assert (i64 * 2).dtype is G.int64
    assert (i32 * 2).dtype is G.int32
    assert (i32 + i64).dtype is G.int64
    assert (i64 + i32).dtype is G.int64
    assert (f32 + f64).dtype is G.float64
    assert (f64 + f32).dtype is G.float64
    assert (f32 + 2.5).dtype is G.float32  # a Python float does not widen
    assert (f32 + i64).dtype is G.float32
    assert (i32 + f64).dtype is G.float64
    assert (b + 1).dtype is G.int64
    assert (b + b).dtype is G.bool
    assert (b + 1.0).dtype is G.float32
    assert (f64 * 2).dtype is G.float64
    assert_tensor(i32 + i64, [2, 4], G.int64)
    assert G.promote_types(G.int32, G.float32) is G.float32


def test_type_promotion_with_0d_tensors():
    """A 0-d tensor with a dimensioned one counts only by its category (PyTorch)."""
    f32, i32 = G.ones(3), G.ones(3, dtype=G.int32)
    f64_0d, i64_0d = G.tensor(2.0, dtype=G.float64), G.tensor(2)
    assert_tensor(f32 / f64_0d, [0.5] * 3, G.float32)
    assert_tensor(f64_0d / f32, [2.0] * 3, G.float32)
    assert (f32 + i64_0d).dtype is G.float32
    assert (i32 * i64_0d).dtype is G.int32
    assert (i32 + f64_0d).dtype is G.float64  # a higher category: the 0-d tensor's dtype
    assert (G.tensor([True]) + G.tensor(2, dtype=G.int32)).dtype is G.int32
    assert (f64_0d + G.tensor(1.0)).dtype is G.float64  # two 0-d tensors: the higher
    assert G.where(G.tensor([True, False]), f32[:2], f64_0d).dtype is G.float32
    assert (f32 > G.tensor(0.5, dtype=G.float64)).dtype is G.bool
    previous = G.get_default_dtype()
    G.set_default_dtype(G.float64)
    try:
        assert (i32 + G.tensor(1.5, dtype=G.float32)).dtype is G.float32
        assert (i32 + 1.5).dtype is G.float64  # a Python float: the default dtype
    finally:
        G.set_default_dtype(previous)
    x = G.ones(3)
    x += f64_0d
    assert_tensor(x, [3.0] * 3, G.float32)
    with pytest.raises(RuntimeError, match="can't be cast"):
        G.ones(3, dtype=G.int64).add_(G.tensor(1.5))


_DTYPES = ["bool", "int32", "int64", "float32", "float64"]
_BINARY = {"add": lambda m, a, b: m.add(a, b), "mul": lambda m, a, b: m.mul(a, b),
           "div": lambda m, a, b: m.div(a, b), "maximum": lambda m, a, b: m.maximum(a, b),
           "where": lambda m, a, b: m.where(m.tensor([True, False]), a, b)}


@pytest.mark.parametrize("op", sorted(_BINARY))
@pytest.mark.parametrize("shapes", [((2,), ()), ((), (2,)), ((), ()), ((2,), (2,))])
def test_type_promotion_matches_torch(op, shapes):
    torch = pytest.importorskip("torch")
    fn = _BINARY[op]
    for a_name in _DTYPES:
        for b_name in _DTYPES + [3, 2.5, True]:  # then Python scalars as the other operand
            a_np = np.full(shapes[0], 3).astype(a_name)
            if isinstance(b_name, str):
                b_np = np.full(shapes[1], 2).astype(b_name)
                tb, gb = torch.from_numpy(b_np), G.tensor(b_np)
            else:
                tb = gb = b_name
            try:
                expected = fn(torch, torch.from_numpy(a_np), tb)
            except (RuntimeError, TypeError):  # an op PyTorch refuses for these operands
                continue
            got = fn(G, G.tensor(a_np), gb)
            assert got.dtype.name == str(expected.dtype).split(".")[1], (a_name, b_name)
            np.testing.assert_allclose(npy(got), expected.numpy(), err_msg=f"{a_name} {b_name}")


def test_operators_do_not_modify_operands():
    a, b = G.tensor(A), G.tensor(B)
    for op in (lambda u, v: u + v, lambda u, v: u * v, lambda u, v: u / v, lambda u, v: u @ v.T,
               lambda u, v: -u, lambda u, v: u ** 2, lambda u, v: u > v):
        op(a, b)
        np.testing.assert_array_equal(a.numpy(), A)
        np.testing.assert_array_equal(b.numpy(), B)


# ----------------------------------------------------------------- in place
def test_inplace_arithmetic_and_versions():
    x = G.tensor([1.0, 2.0, 3.0])
    data = x.numpy()
    v0 = x._version.value
    assert x.add_(1.0) is x
    assert_tensor(x, [2.0, 3.0, 4.0])
    assert x._version.value == v0 + 1
    x.sub_(G.tensor([1.0, 1.0, 1.0]))
    assert_tensor(x, [1.0, 2.0, 3.0])
    x.mul_(2.0)
    assert_tensor(x, [2.0, 4.0, 6.0])
    x.div_(4.0)
    assert_tensor(x, [0.5, 1.0, 1.5])
    x.add_(G.tensor([1.0, 1.0, 1.0]), alpha=2)
    assert_tensor(x, [2.5, 3.0, 3.5])
    assert x._version.value == v0 + 5
    assert np.shares_memory(x.numpy(), data)  # really in place
    x += 1.0
    x *= 2.0
    assert_tensor(x, [7.0, 8.0, 9.0])
    assert x._version.value == v0 + 7


def test_inplace_broadcasting():
    x = G.zeros(2, 3)
    x.add_(G.tensor([1.0, 2.0, 3.0]))
    assert_tensor(x, [[1, 2, 3], [1, 2, 3.0]])
    x.mul_(G.tensor([[2.0], [3.0]]))
    assert_tensor(x, [[2, 4, 6], [3, 6, 9.0]])


def test_zero_fill_clamp_copy():
    x = G.tensor([[-2.0, 0.5], [3.0, 1.0]])
    v = x._version.value
    x.clamp_(-1.0, 2.0)
    assert_tensor(x, [[-1.0, 0.5], [2.0, 1.0]])
    x.clamp_(min=0.75)
    assert_tensor(x, [[0.75, 0.75], [2.0, 1.0]])
    x.clamp_(max=0.8)
    assert_tensor(x, [[0.75, 0.75], [0.8, 0.8]])
    x.fill_(3.5)
    assert_tensor(x, np.full((2, 2), 3.5))
    x.zero_()
    assert_tensor(x, np.zeros((2, 2)))
    x.copy_(G.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert_tensor(x, [[1, 2], [3, 4.0]])
    x.copy_(G.tensor([5.0, 6.0]))  # broadcast
    assert_tensor(x, [[5, 6], [5, 6.0]])
    x.copy_(G.tensor([[1, 2], [3, 4]]))  # converted from int64
    assert_tensor(x, [[1, 2], [3, 4.0]], G.float32)
    assert x._version.value == v + 8
    i = G.tensor([1, 2, 3])
    i.fill_(7)
    assert_tensor(i, [7, 7, 7], G.int64)


def test_inplace_on_view_writes_through_and_shares_version():
    x = G.zeros(3, 4)
    row = x[1]
    assert row._version is x._version
    row.add_(5.0)
    assert_tensor(x, [[0] * 4, [5] * 4, [0] * 4])
    col = x[:, 2]
    col.fill_(-1.0)
    assert npy(x)[:, 2].tolist() == [-1.0, -1.0, -1.0]
    assert x._version.value == 2


def test_inplace_int_tensor_refuses_float_result():
    i = G.tensor([1, 2])
    with pytest.raises(RuntimeError):
        i.add_(1.5)
    assert_tensor(i, [1, 2], G.int64)


def test_inplace_under_autograd_builds_graph():
    x = G.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1.0
    y.mul_(3.0)
    y.add_(x)
    assert not y.is_leaf
    y.sum().backward()
    assert_tensor(x.grad, [4.0, 4.0])


# ----------------------------------------------------------------- __setitem__
def test_setitem_int_and_slice():
    x = G.zeros(3, 4)
    ref = np.zeros((3, 4), dtype=np.float32)
    v = x._version.value
    x[0] = 1.0
    ref[0] = 1.0
    x[1, 2] = 5.0
    ref[1, 2] = 5.0
    x[-1, 1:3] = G.tensor([7.0, 8.0])
    ref[-1, 1:3] = [7.0, 8.0]
    x[:, ::3] = 9.0
    ref[:, ::3] = 9.0
    x[..., 1] = G.tensor([1.0, 2.0, 3.0])
    ref[..., 1] = [1.0, 2.0, 3.0]
    assert_tensor(x, ref)
    assert x._version.value == v + 5


def test_setitem_broadcasting_values():
    x = G.zeros(2, 3, 4)
    ref = np.zeros((2, 3, 4), dtype=np.float32)
    x[:, 1] = G.tensor([1.0, 2.0, 3.0, 4.0])
    ref[:, 1] = [1.0, 2.0, 3.0, 4.0]
    x[1] = G.tensor([[5.0], [6.0], [7.0]])
    ref[1] = [[5.0], [6.0], [7.0]]
    x[0, :, 0] = G.tensor(9.0)
    ref[0, :, 0] = 9.0
    assert_tensor(x, ref)


def test_setitem_mask():
    x = G.tensor([[1.0, -2.0], [-3.0, 4.0]])
    x[x < 0] = 0.0
    assert_tensor(x, [[1.0, 0.0], [0.0, 4.0]])
    y = G.tensor([1.0, 2.0, 3.0, 4.0])
    y[G.tensor([True, False, True, False])] = G.tensor([10.0, 30.0])
    assert_tensor(y, [10.0, 2.0, 30.0, 4.0])
    z = G.zeros(3, 2)
    z[G.tensor([False, True, True])] = G.tensor([1.0, 2.0])  # row mask, broadcast value
    assert_tensor(z, [[0, 0], [1, 2], [1, 2.0]])


def test_setitem_int_tensor_index():
    x = G.zeros(5)
    x[G.tensor([0, 3])] = G.tensor([1.0, 2.0])
    assert_tensor(x, [1.0, 0, 0, 2.0, 0])
    x[[1, 4]] = 7.0
    assert_tensor(x, [1.0, 7.0, 0, 2.0, 7.0])
    x[G.tensor([-1])] = 8.0
    assert_tensor(x, [1.0, 7.0, 0, 2.0, 8.0])
    m = G.zeros(3, 3)
    m[G.tensor([0, 2]), G.tensor([1, 0])] = G.tensor([5.0, 6.0])
    ref = np.zeros((3, 3), dtype=np.float32)
    ref[[0, 2], [1, 0]] = [5.0, 6.0]
    assert_tensor(m, ref)
    m[G.tensor([1])] = G.tensor([1.0, 2.0, 3.0])
    ref[[1]] = [1.0, 2.0, 3.0]
    assert_tensor(m, ref)
    m[:, G.tensor([2])] = -1.0
    ref[:, [2]] = -1.0
    assert_tensor(m, ref)


def test_setitem_converts_value_dtype():
    x = G.zeros(3, dtype=G.int64)
    x[1] = 2.9
    assert_tensor(x, [0, 2, 0], G.int64)
    f = G.zeros(2)
    f[0] = G.tensor(3)
    assert_tensor(f, [3.0, 0.0], G.float32)


def test_setitem_differentiable():
    w = G.tensor([1.0, 2.0, 3.0], requires_grad=True)
    v = G.tensor([10.0, 20.0], requires_grad=True)
    y = w * 2.0
    y[G.tensor([0, 2])] = v
    (y * G.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert_tensor(w.grad, [0.0, 4.0, 0.0])
    assert_tensor(v.grad, [1.0, 3.0])


def test_getitem_matches_numpy():
    a = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    x = G.tensor(a)
    for key in [1, -1, (1, 2), (slice(None), 2), (slice(1, None), slice(None, None, 2)),
                (Ellipsis, 3), (None, 0), (slice(None, None, -1),)]:
        np.testing.assert_array_equal(npy(x[key]), a[key])
    np.testing.assert_array_equal(npy(x[G.tensor([2, 0])]), a[[2, 0]])
    np.testing.assert_array_equal(npy(x[:, G.tensor([1, 1, 3])]), a[:, [1, 1, 3]])
    np.testing.assert_array_equal(npy(x[G.tensor([0, 2]), :, G.tensor([4, 1])]),
                                  a[[0, 2], :, [4, 1]])
    np.testing.assert_array_equal(npy(x[G.tensor([-1, 0])]), a[[-1, 0]])  # negative wraps
    np.testing.assert_array_equal(npy(x[1, G.tensor([[0, -1], [2, 2]])]), a[1, [[0, -1], [2, 2]]])


def test_basic_indexing_is_a_view():
    x = G.zeros(3, 3)
    v = x[1:, 1]
    v.fill_(2.0)
    assert npy(x)[1:, 1].tolist() == [2.0, 2.0]
    assert np.shares_memory(v.numpy(), x.numpy())


def test_bool_mask_from_comparison_selects():
    a = np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]], dtype=np.float32)
    x = G.tensor(a)
    m = x > 0
    assert m.dtype is G.bool
    np.testing.assert_array_equal(npy(x[m]), a[a > 0])
    np.testing.assert_array_equal(npy(x[x[:, 0] > 0]), a[a[:, 0] > 0])
    assert_tensor(G.where(m, x, G.zeros_like(x)), np.where(a > 0, a, 0))
    assert_tensor(x.masked_fill(~m, 0.0), np.where(a > 0, a, 0))
    assert (x[m]).numel() == 3
    assert_tensor(m.long().sum(), np.array(3), G.int64)


def test_iteration_and_len():
    x = G.tensor([[1, 2], [3, 4]])
    rows = list(x)
    assert len(rows) == 2 and rows[1].tolist() == [3, 4]
    with pytest.raises(TypeError):
        len(G.tensor(1.0))


def test_scalar_conversions():
    assert float(G.tensor([2.5])) == 2.5
    assert int(G.tensor(7)) == 7
    assert bool(G.tensor([1.0])) is True
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(G.tensor([1.0, 2.0]))
    assert [10, 20, 30][G.tensor(1)] == 20
    assert math.isclose(G.tensor(np.pi, dtype=G.float64).item(), np.pi)


def test_deepcopy_copies_leaves_and_refuses_graph_nodes():
    import copy
    x = G.tensor([1.0, 2.0], requires_grad=True)
    x.grad = G.tensor([0.5, 0.5])
    y = copy.deepcopy(x)
    assert y.requires_grad and y.is_leaf
    assert not np.shares_memory(y.detach().numpy(), x.detach().numpy())
    np.testing.assert_array_equal(y.detach().numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(y.grad.numpy(), [0.5, 0.5])
    with pytest.raises(RuntimeError, match="graph leaves"):
        copy.deepcopy(x * 2)


def test_data_is_a_detached_alias_and_can_be_replaced():
    x = G.tensor([1.0, 2.0], requires_grad=True)
    d = x.data
    assert not d.requires_grad
    d.mul_(3)  # changes x too, without autograd
    np.testing.assert_array_equal(x.detach().numpy(), [3.0, 6.0])
    x.data = G.tensor([7.0, 8.0])
    np.testing.assert_array_equal(x.detach().numpy(), [7.0, 8.0])
    assert x.requires_grad and x.is_floating_point() and not G.tensor([1]).is_floating_point()
    with pytest.raises(TypeError, match="must be a Tensor"):
        x.data = [1.0, 2.0]


def test_is_contiguous_follows_the_memory_layout():
    t = G.arange(12.0).reshape(3, 4)
    assert t.is_contiguous()
    assert not t.t().is_contiguous()
    assert not t[:, ::2].is_contiguous()
    assert t.t().contiguous().is_contiguous()
    assert t[1:].is_contiguous()
