"""Autograd semantics: accumulation, graph freeing, grad modes, hooks, autograd.grad,
higher-order derivatives, version counters, deep graphs, memory, gradcheck."""
import gc
import weakref

import numpy as np
import pytest

import genesis as G
from genesis.autograd import Function, GradcheckError, gradcheck, gradgradcheck
from genesis.autograd.function import Node


def leaf(values, dtype=G.float64):
    return G.tensor(np.asarray(values, dtype=np.float64), dtype=dtype, requires_grad=True)


def npy(t):
    return t.detach().numpy()


# ----------------------------------------------------------------- accumulation
def test_grad_accumulates_over_two_backward_calls():
    x = leaf([1.0, 2.0, 3.0])
    (x * 2.0).sum().backward()
    np.testing.assert_allclose(npy(x.grad), [2.0, 2.0, 2.0])
    (x * x).sum().backward()
    np.testing.assert_allclose(npy(x.grad), [2.0 + 2.0, 2.0 + 4.0, 2.0 + 6.0])


def test_grad_of_leaf_used_twice_in_one_graph_is_summed():
    x = leaf([1.5, -2.0])
    (x * 3.0 + x.exp()).sum().backward()
    np.testing.assert_allclose(npy(x.grad), 3.0 + np.exp([1.5, -2.0]))


def test_backward_with_explicit_gradient():
    x = leaf([1.0, 2.0, 3.0])
    y = x * x
    y.backward(G.tensor([1.0, 0.5, -1.0], dtype=G.float64))
    np.testing.assert_allclose(npy(x.grad), [2.0, 2.0, -6.0])


def test_zeroing_grad_then_backward_again():
    x = leaf([1.0, 2.0])
    (x * 5.0).sum().backward()
    x.grad.zero_()
    (x * 7.0).sum().backward()
    np.testing.assert_allclose(npy(x.grad), [7.0, 7.0])
    x.grad = None
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(npy(x.grad), [3.0, 3.0])


# ----------------------------------------------------------------- retain_graph
def test_second_backward_without_retain_graph_raises():
    x = leaf([0.5, 1.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time") as e:
        y.backward()
    assert "retain_graph" in str(e.value)


def test_second_backward_with_retain_graph_accumulates():
    x = leaf([0.5, 1.0])
    y = (x * x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(npy(x.grad), 2 * 3 * np.array([0.5, 1.0]) ** 2)


def test_autograd_grad_frees_graph_unless_retained():
    x = leaf([2.0])
    y = (x * x).sum()
    (g,) = G.autograd.grad(y, x, retain_graph=True)
    np.testing.assert_allclose(npy(g), [4.0])
    (g,) = G.autograd.grad(y, x)
    np.testing.assert_allclose(npy(g), [4.0])
    with pytest.raises(RuntimeError, match="retain_graph"):
        G.autograd.grad(y, x)


# ----------------------------------------------------------------- grad modes
def test_no_grad_context_manager():
    x = leaf([1.0, 2.0])
    with G.no_grad():
        assert not G.is_grad_enabled()
        y = x * 2.0
    assert G.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    np.testing.assert_allclose(y.numpy(), [2.0, 4.0])
    z = x * 2.0
    assert z.requires_grad and z.grad_fn is not None


def test_no_grad_decorator():
    x = leaf([1.0])

    @G.no_grad()
    def f(t):
        assert not G.is_grad_enabled()
        return t * 3.0

    y = f(x)
    assert not y.requires_grad
    assert G.is_grad_enabled()
    assert f.__name__ == "f"


def test_no_grad_bare_decorator():
    # PyTorch accepts both @no_grad() and @no_grad
    x = leaf([1.0])

    @G.no_grad
    def f(t):
        return t * 3.0

    y = f(x)
    assert not y.requires_grad
    assert G.is_grad_enabled()


def test_grad_mode_restored_after_exception():
    with pytest.raises(ValueError):
        with G.no_grad():
            raise ValueError("boom")
    assert G.is_grad_enabled()


def test_enable_grad_inside_no_grad_context_and_decorator():
    x = leaf([1.0, 2.0])

    @G.enable_grad()
    def g(t):
        return t * 2.0

    with G.no_grad():
        with G.enable_grad():
            assert G.is_grad_enabled()
            y = x * 2.0
        assert not G.is_grad_enabled()
        z = g(x)
        w = x * 2.0
    assert y.requires_grad and z.requires_grad and not w.requires_grad
    z.sum().backward()
    np.testing.assert_allclose(npy(x.grad), [2.0, 2.0])


def test_set_grad_enabled_function_context_and_decorator():
    x = leaf([1.0])
    try:
        G.set_grad_enabled(False)
        assert not G.is_grad_enabled()
        assert not (x * 2.0).requires_grad
    finally:
        G.set_grad_enabled(True)
    assert G.is_grad_enabled()

    with G.set_grad_enabled(False):
        assert not (x * 2.0).requires_grad
    assert G.is_grad_enabled()
    with G.set_grad_enabled(True):
        assert (x * 2.0).requires_grad

    @G.set_grad_enabled(False)
    def f(t):
        return t * 2.0

    assert G.is_grad_enabled()  # decorating does not switch the mode
    assert not f(x).requires_grad
    assert G.is_grad_enabled()

    with G.no_grad():
        with G.set_grad_enabled(True):
            assert (x * 2.0).requires_grad
        assert not G.is_grad_enabled()


# ----------------------------------------------------------------- detach / requires_grad_
def test_detach_shares_memory_and_leaves_graph():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert np.shares_memory(d.numpy(), npy(y))
    with G.no_grad():
        d2 = x.detach()
    d2[0] = 10.0  # writes through to x
    assert npy(x)[0] == 10.0
    assert x._version.value >= 1 and d2._version is x._version


def test_detach_stops_gradient():
    x = leaf([1.0, 2.0])
    y = x * x.detach()  # gradient only through the first factor
    y.sum().backward()
    np.testing.assert_allclose(npy(x.grad), [1.0, 2.0])


def test_detach_in_place():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    assert y.detach_() is y
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    z = y * 3.0
    assert not z.requires_grad


def test_requires_grad_():
    x = G.tensor([1.0, 2.0])
    assert not x.requires_grad
    assert x.requires_grad_() is x
    assert x.requires_grad and x.is_leaf
    x.requires_grad_(False)
    assert not x.requires_grad
    y = leaf([1.0]) * 2.0
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)


# ----------------------------------------------------------------- hooks
def test_hook_on_leaf_modifies_grad_and_can_be_removed():
    x = leaf([1.0, 2.0])
    seen = []

    def hook(g):
        seen.append(npy(g).copy())
        return g * 10.0

    handle = x.register_hook(hook)
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(npy(x.grad), [30.0, 30.0])
    np.testing.assert_allclose(seen[0], [3.0, 3.0])
    handle.remove()
    x.grad = None
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(npy(x.grad), [3.0, 3.0])
    assert len(seen) == 1


def test_hook_on_non_leaf_modifies_upstream_grad():
    x = leaf([1.0, 2.0])
    y = x * 3.0
    seen = []

    def hook(g):
        seen.append(npy(g).copy())
        return g * 2.0

    handle = y.register_hook(hook)
    (y * y).sum().backward(retain_graph=True)
    np.testing.assert_allclose(seen[0], 2 * np.array([3.0, 6.0]))
    np.testing.assert_allclose(npy(x.grad), 2 * 2 * np.array([3.0, 6.0]) * 3.0)
    handle.remove()
    x.grad = None
    (y * y).sum().backward()
    np.testing.assert_allclose(npy(x.grad), 2 * np.array([3.0, 6.0]) * 3.0)
    assert len(seen) == 1


def test_hook_returning_none_keeps_grad():
    x = leaf([1.0, 2.0])
    y = x * 4.0
    seen = []
    y.register_hook(lambda g: seen.append(1))
    y.sum().backward()
    np.testing.assert_allclose(npy(x.grad), [4.0, 4.0])
    assert seen == [1]


def test_register_hook_requires_grad():
    with pytest.raises(RuntimeError):
        G.tensor([1.0]).register_hook(lambda g: g)


# ----------------------------------------------------------------- retain_grad
def test_retain_grad_on_non_leaf():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    w = x * 5.0
    y.retain_grad()
    (y * y + w).sum().backward()
    np.testing.assert_allclose(npy(y.grad), 2 * np.array([2.0, 4.0]))
    assert w.grad is None  # non-leaf grads are not kept by default
    np.testing.assert_allclose(npy(x.grad), 2 * 2 * np.array([2.0, 4.0]) + 5.0)


def test_retained_grad_is_an_ordinary_writable_tensor():
    x = leaf([1.0, 2.0, 3.0])
    y = x * 2.0
    y.retain_grad()
    (y + 1.0).sum().backward()  # the gradient reaching y is a broadcast of a scalar
    np.testing.assert_allclose(npy(y.grad), [1.0, 1.0, 1.0])
    y.grad.add_(G.tensor([1.0, 2.0, 3.0], dtype=G.float64))
    np.testing.assert_allclose(npy(y.grad), [2.0, 3.0, 4.0])
    y.grad.zero_()
    np.testing.assert_allclose(npy(y.grad), [0.0, 0.0, 0.0])
    np.testing.assert_allclose(npy(x.grad), [2.0, 2.0, 2.0])


def test_leaf_grad_from_broadcast_gradient_is_writable():
    x = leaf([1.0, 2.0, 3.0])
    (x + 1.0).sum().backward()
    x.grad.add_(G.tensor([1.0, 2.0, 3.0], dtype=G.float64))
    np.testing.assert_allclose(npy(x.grad), [2.0, 3.0, 4.0])
    (x + 1.0).sum().backward()
    np.testing.assert_allclose(npy(x.grad), [3.0, 4.0, 5.0])


def test_retain_grad_accumulates():
    x = leaf([1.0])
    y = x * 2.0
    y.retain_grad()
    z = (y * 3.0).sum()
    z.backward(retain_graph=True)
    z.backward()
    np.testing.assert_allclose(npy(y.grad), [6.0])


# ----------------------------------------------------------------- autograd.grad
def test_autograd_grad_basic_does_not_touch_dot_grad():
    x = leaf([1.0, 2.0, 3.0])
    w = leaf([0.5, -1.0, 2.0])
    y = (x * x * w).sum()
    gx, gw = G.autograd.grad(y, [x, w])
    np.testing.assert_allclose(npy(gx), 2 * np.array([1.0, 2.0, 3.0]) * [0.5, -1.0, 2.0])
    np.testing.assert_allclose(npy(gw), np.array([1.0, 2.0, 3.0]) ** 2)
    assert x.grad is None and w.grad is None


def test_autograd_grad_with_grad_outputs_and_multiple_outputs():
    x = leaf([1.0, 2.0])
    y1 = x * 3.0
    y2 = x * x
    v1 = G.tensor([1.0, -1.0], dtype=G.float64)
    v2 = G.tensor([2.0, 0.5], dtype=G.float64)
    (g,) = G.autograd.grad([y1, y2], [x], grad_outputs=[v1, v2])
    np.testing.assert_allclose(npy(g), 3.0 * np.array([1.0, -1.0]) + 2 * np.array([1.0, 2.0]) * [2.0, 0.5])


def test_autograd_grad_allow_unused():
    x = leaf([1.0])
    unused = leaf([2.0])
    y = (x * 2.0).sum()
    with pytest.raises(RuntimeError, match="allow_unused"):
        G.autograd.grad(y, [x, unused], retain_graph=True)
    gx, gu = G.autograd.grad(y, [x, unused], allow_unused=True)
    np.testing.assert_allclose(npy(gx), [2.0])
    assert gu is None


def test_autograd_grad_create_graph():
    x = leaf([1.0, 2.0])
    y = (x * x * x).sum()
    (g,) = G.autograd.grad(y, x, create_graph=True)
    assert g.requires_grad and g.grad_fn is not None
    np.testing.assert_allclose(npy(g), 3 * np.array([1.0, 2.0]) ** 2)
    (g2,) = G.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(npy(g2), 6 * np.array([1.0, 2.0]))
    (g_plain,) = G.autograd.grad((x * x).sum(), x)
    assert not g_plain.requires_grad


def test_autograd_grad_of_input_that_does_not_require_grad():
    x = leaf([1.0])
    c = G.tensor([1.0], dtype=G.float64)
    with pytest.raises(RuntimeError, match="does not require grad"):
        G.autograd.grad((x * c).sum(), [c])


# ----------------------------------------------------------------- errors
def test_backward_on_non_scalar_without_gradient():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        (x * 2.0).backward()


def test_backward_on_tensor_without_grad():
    with pytest.raises(RuntimeError):
        G.tensor([1.0]).sum().backward()


def test_requires_grad_on_int_tensor_raises():
    with pytest.raises(RuntimeError, match="floating point"):
        G.tensor([1, 2, 3], requires_grad=True)
    t = G.tensor([1, 2, 3])
    with pytest.raises(RuntimeError):
        t.requires_grad_()
    with pytest.raises(RuntimeError):
        G.zeros(2, dtype=G.bool).requires_grad = True
    assert not t.requires_grad


# ----------------------------------------------------------------- version counter
def test_inplace_on_saved_output_raises():
    x = leaf([0.1, 0.2])
    y = x.exp()  # exp saves its output
    y.add_(1.0)
    assert y._version.value == 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_inplace_on_saved_input_raises():
    x = leaf([1.0, 2.0])
    x2 = x * 1.0
    z = x2 * x2
    x2.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def test_inplace_under_no_grad_on_saved_tensor_also_detected():
    x = leaf([1.0, 2.0])
    x2 = x * 1.0
    z = (x2 * x2).sum()
    with G.no_grad():
        x2.zero_()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.backward()


def test_setitem_on_saved_tensor_raises():
    x = leaf([1.0, 2.0, 3.0])
    x2 = x * 1.0
    z = (x2 * x2).sum()
    x2[0] = 5.0
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.backward()


def test_inplace_on_unsaved_tensor_is_fine_and_differentiable():
    x = leaf([1.0, 2.0])
    y = x * 3.0  # Mul saves only x (the scalar needs no grad)
    y.add_(1.0)
    y.mul_(2.0)
    assert y._version.value == 2
    y.sum().backward()
    np.testing.assert_allclose(npy(x.grad), [6.0, 6.0])
    np.testing.assert_allclose(npy(y), (np.array([1.0, 2.0]) * 3 + 1) * 2)


def test_inplace_on_leaf_requiring_grad_raises():
    x = leaf([1.0, 2.0])
    for op in (lambda t: t.add_(1.0), lambda t: t.mul_(2.0), lambda t: t.zero_(),
               lambda t: t.fill_(3.0)):
        with pytest.raises(RuntimeError, match="leaf"):
            op(x)
    with pytest.raises(RuntimeError, match="leaf"):
        x[0] = 3.0
    np.testing.assert_allclose(npy(x), [1.0, 2.0])


def test_inplace_on_leaf_under_no_grad_is_allowed():
    w = leaf([1.0, 2.0])
    (w * w).sum().backward()
    with G.no_grad():
        w.sub_(w.grad * 0.5)
    assert w.is_leaf and w.requires_grad and w.grad_fn is None
    np.testing.assert_allclose(npy(w), [0.0, 0.0])


# ----------------------------------------------------------------- deep graphs
def test_chain_of_100k_ops_backpropagates_without_recursion_error():
    x = G.tensor([1.0], dtype=G.float64, requires_grad=True)
    c = G.tensor(1.0001, dtype=G.float64)
    y = x
    for _ in range(100_000):
        y = y * c
    y.sum().backward()
    np.testing.assert_allclose(npy(x.grad), [1.0001 ** 100_000], rtol=1e-9)
    np.testing.assert_allclose(npy(y), [1.0001 ** 100_000], rtol=1e-9)
    del y  # freeing a 100k-node graph must not overflow the stack either
    gc.collect()


# ----------------------------------------------------------------- memory
def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _count_live():
    gc.collect()
    tensors = nodes = 0
    for o in gc.get_objects():
        if isinstance(o, G.Tensor):
            tensors += 1
        elif isinstance(o, Node):
            nodes += 1
    return tensors, nodes


def test_training_loop_does_not_leak():
    G.manual_seed(0)
    x = G.randn(16, 8)
    target = G.randn(16, 1)
    w1 = (G.randn(8, 16) * 0.3).requires_grad_()
    w2 = (G.randn(16, 1) * 0.3).requires_grad_()
    params = [w1, w2]

    def step():
        h = (x @ w1).relu()
        err = h @ w2 - target
        loss = (err * err).sum()
        loss.backward()
        with G.no_grad():
            for p in params:
                p.sub_(p.grad * 1e-3)
                p.grad.zero_()
        return loss.item()

    for _ in range(100):  # warm-up
        first = step()
    t0, n0 = _count_live()
    rss0 = _rss_bytes()
    for i in range(900):
        last = step()
    t1, n1 = _count_live()
    rss1 = _rss_bytes()
    assert t1 <= t0 + 2, (t0, t1)
    assert n1 <= n0 + 2, (n0, n1)
    assert rss1 - rss0 < 16 * 2 ** 20, (rss0, rss1)
    assert np.isfinite(last) and last < first  # it did train


def test_graph_is_freed_by_reference_counting():
    # No reference cycles: dropping the output frees every node without the gc.
    x = leaf(np.ones(4))
    y = ((x * 2.0).exp() * x).tanh()
    node = weakref.ref(y.grad_fn)
    inner = weakref.ref(y.grad_fn.next_functions[0][0])
    gc.disable()
    try:
        del y
        assert node() is None and inner() is None
    finally:
        gc.enable()


def test_detached_tensor_does_not_keep_graph_alive():
    x = leaf(np.ones(4))
    y = (x * 2.0).exp()
    node = weakref.ref(y.grad_fn)
    d = y.detach()
    del y
    gc.collect()
    assert node() is None, "the detached tensor keeps the graph (and its saved tensors) alive"
    np.testing.assert_allclose(d.numpy(), np.full(4, np.exp(2.0)))


def test_keeping_detached_losses_does_not_keep_graphs():
    w = leaf(np.ones((3, 2)))
    x = G.tensor(np.ones((4, 3)))
    history = []
    for _ in range(5):
        loss = (x @ w).tanh().sum()
        loss.backward()
        history.append(loss.detach())
    _, n0 = _count_live()
    for _ in range(30):
        loss = (x @ w).tanh().sum()
        loss.backward()
        history.append(loss.detach())
    del loss
    _, n1 = _count_live()
    assert n1 <= n0 + 2, (n0, n1)
    assert len(history) == 35 and history[-1].item() == pytest.approx(4 * 2 * np.tanh(3.0))


def test_backward_releases_saved_tensors():
    x = leaf(np.ones(4))
    big = x * 2.0
    y = (big * big).sum()
    ref = weakref.ref(big)
    y.backward()
    del big
    assert ref() is None  # the node kept the array, not the Tensor


# ----------------------------------------------------------------- higher order
def test_second_derivative_of_cube():
    x = G.tensor(2.0, dtype=G.float64, requires_grad=True)
    for y in (x * x * x, x ** 3):
        (g,) = G.autograd.grad(y, x, create_graph=True)
        assert g.item() == pytest.approx(12.0)
        (g2,) = G.autograd.grad(g, x, create_graph=True)
        assert g2.item() == pytest.approx(12.0)
        (g3,) = G.autograd.grad(g2, x)
        assert g3.item() == pytest.approx(6.0)


def test_backward_create_graph_then_backward_again():
    x = leaf([1.0, 3.0])
    y = (x * x * x).sum()
    y.backward(create_graph=True)
    gx = x.grad
    np.testing.assert_allclose(npy(gx), [3.0, 27.0])
    assert gx.requires_grad
    x.grad = None
    gx.sum().backward()
    np.testing.assert_allclose(npy(x.grad), [6.0, 18.0])


def test_hessian_vector_product_matches_analytical():
    rng = np.random.default_rng(0)
    xv, bv, v = rng.standard_normal(5), rng.standard_normal(5), rng.standard_normal(5)
    x = leaf(xv)
    b = G.tensor(bv)
    f = (x * x * x).sum() + (x * b).sum() * (x * b).sum() + (x.tanh()).sum()
    (g,) = G.autograd.grad(f, x, create_graph=True)
    t = np.tanh(xv)
    np.testing.assert_allclose(npy(g), 3 * xv ** 2 + 2 * (xv @ bv) * bv + (1 - t ** 2), rtol=1e-10)
    (hv,) = G.autograd.grad(g, x, grad_outputs=G.tensor(v))
    H = np.diag(6 * xv) + 2 * np.outer(bv, bv) + np.diag(-2 * t * (1 - t ** 2))
    np.testing.assert_allclose(npy(hv), H @ v, rtol=1e-10, atol=1e-12)


def _grad_at(f, xv):
    x = leaf(xv)
    (g,) = G.autograd.grad(f(x), x)
    return npy(g)


def _check_double_backward(f, xv, seed=0):
    """H v from double backward vs central differences of the autograd gradient."""
    v = np.random.default_rng(seed).standard_normal(xv.shape)
    x = leaf(xv)
    (g,) = G.autograd.grad(f(x), x, create_graph=True)
    (hv,) = G.autograd.grad(g, x, grad_outputs=G.tensor(v))
    eps = 1e-6
    fd = (_grad_at(f, xv + eps * v) - _grad_at(f, xv - eps * v)) / (2 * eps)
    np.testing.assert_allclose(npy(hv), fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["matmul", "tanh", "exp", "sum", "indexing", "mixed"])
def test_double_backward_through_ops(name):
    rng = np.random.default_rng(1)
    a = G.tensor(rng.standard_normal((3, 4)))
    idx = G.tensor([2, 0, 2, 3])
    idx2 = G.tensor([1, 0, 1])
    fns = {
        "matmul": lambda x: ((a @ x) * (a @ x)).sum() + (x.mT @ x).sum(),
        "tanh": lambda x: (x.tanh() * x).sum(),
        "exp": lambda x: (x.exp() * x).sum(),
        "sum": lambda x: x.sum(dim=0).sum() * x.sum() + (x * x).sum(dim=1).sum(),
        "indexing": lambda x: (x[idx] * x[idx] * x[1:3].sum()).sum() + (x[0] ** 3).sum(),
        "mixed": lambda x: ((a @ x).tanh().exp()[1:, idx2] * 2.0).sum(),
    }
    _check_double_backward(fns[name], rng.standard_normal((4, 2)))


# ----------------------------------------------------------------- norms at zero
_P_NORMS = [2, "fro", 1, 3, 1.5, 0.5, float("inf")]


@pytest.mark.parametrize("p", _P_NORMS)
def test_norm_gradient_is_zero_at_a_zero_vector(p):
    """The subgradient PyTorch takes: 0 at the zero vector (the root's chain rule
    gives NaN there), the usual gradient elsewhere."""
    x = leaf([[0.0, 0.0, 0.0], [1.0, -2.0, 0.0]])
    G.norm(x, p, dim=1).sum().backward()
    row = np.array([1.0, -2.0, 0.0])
    q = 2.0 if p == "fro" else p
    if q == float("inf"):
        expected = [0.0, -1.0, 0.0]
    else:
        a = np.abs(row[:2])  # the zero element's gradient is 0 (also for p < 1)
        expected = list(np.sign(row[:2]) * a ** (q - 1) / np.sum(a ** q) ** (1 - 1 / q)) + [0.0]
    np.testing.assert_allclose(npy(x.grad), [[0.0, 0.0, 0.0], expected], rtol=1e-12)
    z = leaf(np.zeros(4))
    (g,) = G.autograd.grad(G.norm(z, p), z)
    np.testing.assert_array_equal(npy(g), np.zeros(4))


@pytest.mark.parametrize("p", [2, 3, 0.5])
def test_norm_gradcheck_away_from_zero(p):
    x = leaf(np.random.default_rng(5).uniform(0.5, 2.0, (3, 4)) * [1, -1, 1, -1])
    assert gradcheck(lambda x: G.norm(x, p, dim=1), (x,))
    assert gradgradcheck(lambda x: G.norm(x, p, dim=1), (x,))


# ----------------------------------------------------------------- aliasing / purity
def test_grads_of_two_leaves_do_not_alias():
    a = leaf([1.0, 2.0])
    b = leaf([3.0, 4.0])
    (a + b).sum().backward()
    np.testing.assert_allclose(npy(a.grad), [1.0, 1.0])
    np.testing.assert_allclose(npy(b.grad), [1.0, 1.0])
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    a.grad.mul_(5.0)
    np.testing.assert_allclose(npy(b.grad), [1.0, 1.0])
    np.testing.assert_allclose(npy(a.grad), [5.0, 5.0])


def test_grads_do_not_alias_user_gradient_or_each_other_with_explicit_gradient():
    a = leaf([1.0, 2.0])
    b = leaf([3.0, 4.0])
    g = G.tensor([1.0, 2.0], dtype=G.float64)
    (a + b).backward(g)
    for t in (a.grad, b.grad):
        assert not np.shares_memory(t.numpy(), g.numpy())
    g.mul_(10.0)
    np.testing.assert_allclose(npy(a.grad), [1.0, 2.0])
    a.grad.add_(1.0)
    np.testing.assert_allclose(npy(b.grad), [1.0, 2.0])


def test_grad_does_not_alias_broadcast_or_view_gradients():
    a = leaf([[1.0, 2.0], [3.0, 4.0]])
    b = leaf([1.0, 1.0])
    (a[0] * 2.0 + b).sum().backward()
    np.testing.assert_allclose(npy(a.grad), [[2.0, 2.0], [0.0, 0.0]])
    a.grad.add_(1.0)
    np.testing.assert_allclose(npy(b.grad), [1.0, 1.0])


def test_ops_and_backward_do_not_mutate_inputs():
    rng = np.random.default_rng(2)
    av, bv = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    a, b = leaf(av), leaf(bv)
    c = G.tensor(rng.standard_normal(4))
    c_before = c.numpy().copy()
    out = ((a @ b).relu().exp() + (a * c).sum(dim=1, keepdim=True) / (c * c + 1.0).sum()
           - a[:, G.tensor([0, 3])].tanh().sum())
    out.sum().backward()
    np.testing.assert_array_equal(npy(a), av)
    np.testing.assert_array_equal(npy(b), bv)
    np.testing.assert_array_equal(c.numpy(), c_before)


# ----------------------------------------------------------------- gradcheck
def test_gradcheck_passes_on_correct_functions():
    rng = np.random.default_rng(3)
    x = leaf(rng.standard_normal((2, 3)))
    w = leaf(rng.standard_normal((3, 2)))
    assert gradcheck(lambda x, w: (x @ w).tanh() * 2.0, (x, w))
    assert gradcheck(lambda x: (x.exp() / (x * x + 1.0)).sum(dim=1), (x,))


class _WrongDouble(Function):
    """y = 2x, backward returns 3g (wrong)."""

    def forward(ctx, x):
        return ctx.backend.binary("mul", x, ctx.backend.full((), 2, x.dtype))

    def backward(ctx, g):
        return g * 3.0


class _Square(Function):
    """y = x * x; backward 2 x g is right to first order, but uses x.detach(), so the
    second derivative (d/dx of 2 x g = 2 g) is lost."""

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.binary("mul", x, x)

    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x.detach() * 2.0)


class _SquareRight(_Square):
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x * 2.0)


def test_custom_function_forward_values():
    x = leaf([1.0, -2.0])
    np.testing.assert_allclose(npy(_WrongDouble.apply(x)), [2.0, -4.0])
    np.testing.assert_allclose(npy(_Square.apply(x)), [1.0, 4.0])


def test_gradcheck_catches_wrong_backward():
    x = leaf([1.0, -2.0, 0.5])
    with pytest.raises(GradcheckError):
        gradcheck(_WrongDouble.apply, (x,))
    assert gradcheck(_WrongDouble.apply, (x,), raise_exception=False) is False


def test_gradcheck_passes_first_order_of_detached_backward():
    x = leaf([1.0, -2.0, 0.5])
    assert gradcheck(_Square.apply, (x,))
    assert gradcheck(_SquareRight.apply, (x,))


def test_gradgradcheck_passes_on_correct_functions():
    rng = np.random.default_rng(4)
    x = leaf(rng.standard_normal(3))
    w = leaf(rng.standard_normal((3, 2)))
    assert gradgradcheck(_SquareRight.apply, (x,))
    assert gradgradcheck(lambda x, w: (x @ w).tanh(), (x, w))
    assert gradgradcheck(lambda x: (x.exp() * x).sum(), (x,))


def test_gradgradcheck_catches_wrong_double_backward():
    x = leaf([1.0, -2.0, 0.5])
    with pytest.raises(GradcheckError):
        gradgradcheck(_Square.apply, (x,))
