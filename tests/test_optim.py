"""genesis.optim optimizers and genesis.nn.utils gradient clipping.

Each optimizer runs a 20-step trajectory on a quadratic with random gradient
noise (gradient c * x + n_t, computed here from the current parameters) and is
held to a numpy implementation of the published update rule written below, and
to PyTorch's optimizer when torch is installed.  Checkpoints must resume
bit-identically.
"""
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

import genesis
import genesis.optim as optim
from genesis import _C
from genesis.backend import cpu

STEPS = 20
SHAPES = [(3, 4), (5,), ()]


# ----------------------------------------------------------------- numpy references
def ref_sgd(lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False):
    def step(p, g, s):
        g = -g if maximize else g
        if weight_decay:
            g = g + weight_decay * p
        if momentum:
            b = g.copy() if "b" not in s else momentum * s["b"] + (1 - dampening) * g
            s["b"] = b
            g = g + momentum * b if nesterov else b
        return p - lr * g
    return step


def ref_adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
             maximize=False, decoupled_weight_decay=False):
    b1, b2 = betas

    def step(p, g, s):
        t = s["t"] = s.get("t", 0) + 1
        g = -g if maximize else g
        if weight_decay:
            if decoupled_weight_decay:
                p = p * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * p
        m = s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
        v = s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
        if amsgrad:
            v = s["vmax"] = np.maximum(s.get("vmax", 0), v)
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        return p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return step


def ref_adamw(weight_decay=1e-2, **kw):
    return ref_adam(weight_decay=weight_decay, decoupled_weight_decay=True, **kw)


def ref_rmsprop(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                maximize=False):
    def step(p, g, s):
        g = -g if maximize else g
        if weight_decay:
            g = g + weight_decay * p
        v = s["v"] = alpha * s.get("v", 0) + (1 - alpha) * g * g
        if centered:
            ga = s["ga"] = alpha * s.get("ga", 0) + (1 - alpha) * g
            avg = np.sqrt(v - ga * ga) + eps
        else:
            avg = np.sqrt(v) + eps
        if momentum > 0:
            b = s["b"] = momentum * s.get("b", 0) + g / avg
            return p - lr * b
        return p - lr * g / avg
    return step


def ref_adagrad(lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                maximize=False):
    def step(p, g, s):
        t = s["t"] = s.get("t", 0) + 1
        g = -g if maximize else g
        if weight_decay:
            g = g + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        acc = s["sum"] = s.get("sum", initial_accumulator_value) + g * g
        return p - clr * g / (np.sqrt(acc) + eps)
    return step


REFS = {"SGD": ref_sgd, "Adam": ref_adam, "AdamW": ref_adamw, "RMSprop": ref_rmsprop,
        "Adagrad": ref_adagrad}

CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.1, weight_decay=0.05, maximize=True)),
    ("Adam", dict(lr=0.05)),
    ("Adam", dict(lr=0.05, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=0.1, maximize=True)),
    ("Adam", dict(lr=0.05, betas=(0.3, 0.8), eps=1e-3)),  # lerp weight >= 0.5
    ("Adam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=0.05)),
    ("AdamW", dict(lr=0.05, weight_decay=0.5, amsgrad=True)),
    ("AdamW", dict(lr=0.05, weight_decay=0.2, maximize=True)),
    ("AdamW", dict(lr=0.05, weight_decay=0)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, alpha=0.3, maximize=True)),  # lerp weight >= 0.5
    ("RMSprop", dict(lr=0.01, alpha=0.4, centered=True, eps=1e-4)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.1)),
    ("Adagrad", dict(lr=0.1, weight_decay=0.1, initial_accumulator_value=0.5)),
    ("Adagrad", dict(lr=0.1, maximize=True, eps=1e-3)),
]
CASE_IDS = [f"{n}-" + "-".join(f"{k}={v}" for k, v in kw.items()) for n, kw in CASES]


# ----------------------------------------------------------------- problem and runners
def problem(seed=0, shapes=SHAPES, steps=STEPS):
    rng = np.random.default_rng(seed)
    x0 = [np.asarray(rng.standard_normal(s)) for s in shapes]
    curv = [np.asarray(rng.uniform(0.5, 2.0, s)) for s in shapes]
    noise = [[np.asarray(0.3 * rng.standard_normal(s)) for s in shapes] for _ in range(steps)]
    return x0, curv, noise


def run_reference(name, kwargs, x0, curv, noise, steps=STEPS):
    step = REFS[name](**kwargs)
    xs, states = [x.copy() for x in x0], [{} for _ in x0]
    for t in range(steps):
        xs = [step(x, c * x + n, s) for x, c, n, s in zip(xs, curv, noise[t], states)]
    return xs


def set_grads(params, curv, noise_t, dtype):
    for p, c, n in zip(params, curv, noise_t):
        x = p.detach().numpy()
        p.grad = genesis.tensor((c * x + n).astype(dtype))


def run_genesis(name, kwargs, x0, curv, noise, dtype=np.float64, steps=STEPS, start=0,
                opt=None, params=None):
    if params is None:
        params = [genesis.tensor(x.astype(dtype), requires_grad=True) for x in x0]
    if opt is None:
        opt = getattr(optim, name)(params, **kwargs)
    for t in range(start, start + steps):
        set_grads(params, curv, noise[t], dtype)
        opt.step()
    return [p.detach().numpy().copy() for p in params], opt, params


def run_torch(name, kwargs, x0, curv, noise, dtype=np.float64, steps=STEPS):
    torch = pytest.importorskip("torch")
    params = [torch.tensor(x.astype(dtype), requires_grad=True) for x in x0]
    opt = getattr(torch.optim, name)(params, **kwargs)
    for t in range(steps):
        for p, c, n in zip(params, curv, noise[t]):
            x = p.detach().numpy()
            p.grad = torch.tensor((c * x + n).astype(dtype))
        opt.step()
    return [p.detach().numpy().copy() for p in params]


def assert_close(got, want, rtol, atol=0.0):
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


# ----------------------------------------------------------------- trajectories
@pytest.mark.parametrize("name,kwargs", CASES, ids=CASE_IDS)
def test_trajectory_matches_numpy_reference_float64(name, kwargs):
    x0, curv, noise = problem()
    got, _, _ = run_genesis(name, kwargs, x0, curv, noise)
    assert_close(got, run_reference(name, kwargs, x0, curv, noise), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("name,kwargs", CASES, ids=CASE_IDS)
def test_trajectory_matches_torch_float64(name, kwargs):
    x0, curv, noise = problem()
    want = run_torch(name, kwargs, x0, curv, noise)
    got, _, _ = run_genesis(name, kwargs, x0, curv, noise)
    assert_close(got, want, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("name,kwargs", CASES[::3], ids=CASE_IDS[::3])
def test_trajectory_float32(name, kwargs):
    x0, curv, noise = problem(seed=1)
    got, opt, params = run_genesis(name, kwargs, x0, curv, noise, dtype=np.float32)
    assert all(g.dtype == np.float32 for g in got)
    assert all(v.dtype == genesis.float32 for s in opt.state.values() for v in s.values())
    assert_close(got, run_reference(name, kwargs, x0, curv, noise), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,kwargs", CASES[::3], ids=CASE_IDS[::3])
def test_trajectory_float32_matches_torch(name, kwargs):
    x0, curv, noise = problem(seed=1)
    want = run_torch(name, kwargs, x0, curv, noise, dtype=np.float32)
    got, _, _ = run_genesis(name, kwargs, x0, curv, noise, dtype=np.float32)
    assert_close(got, want, rtol=2e-5, atol=1e-6)


_HYPER = {
    "SGD": dict(lr=st.floats(1e-3, 0.2), momentum=st.sampled_from([0.0, 0.5, 0.95]),
                dampening=st.floats(0, 0.5), weight_decay=st.floats(0, 0.3),
                maximize=st.booleans()),
    "Adam": dict(lr=st.floats(1e-3, 0.2), betas=st.tuples(st.floats(0, 0.99), st.floats(0, 0.999)),
                 eps=st.floats(1e-8, 1e-2), weight_decay=st.floats(0, 0.3), amsgrad=st.booleans(),
                 maximize=st.booleans(), decoupled_weight_decay=st.booleans()),
    "RMSprop": dict(lr=st.floats(1e-3, 0.05), alpha=st.floats(0.1, 0.99),
                    eps=st.floats(1e-8, 1e-2), weight_decay=st.floats(0, 0.3),
                    momentum=st.sampled_from([0.0, 0.5]), centered=st.booleans(),
                    maximize=st.booleans()),
    "Adagrad": dict(lr=st.floats(1e-3, 0.5), lr_decay=st.floats(0, 0.5),
                    weight_decay=st.floats(0, 0.3),
                    initial_accumulator_value=st.floats(0, 1), eps=st.floats(1e-10, 1e-2),
                    maximize=st.booleans()),
}


@pytest.mark.parametrize("name", sorted(_HYPER))
def test_hyperparameters_property(name):
    """Any valid hyperparameters, any small shape: genesis follows the numpy rule."""
    shapes = st.lists(st.integers(1, 5), min_size=0, max_size=3).map(tuple)

    @given(st.fixed_dictionaries(_HYPER[name]), shapes, st.integers(0, 2 ** 16))
    def check(kwargs, shape, seed):
        x0, curv, noise = problem(seed, [shape], steps=8)
        got, _, _ = run_genesis(name, kwargs, x0, curv, noise, steps=8)
        want = run_reference(name, kwargs, x0, curv, noise, steps=8)
        assert_close(got, want, rtol=1e-6, atol=1e-10)
    check()


# ----------------------------------------------------------------- kernels: ISAs, threads, layout
def _isas():
    order = ["generic", "avx2", "avx512"]
    return order[:order.index(_C.best_isa()) + 1]


@pytest.fixture
def restore_isa_and_threads():
    threads = genesis.get_num_threads()
    yield
    _C.set_isa("best")
    genesis.set_num_threads(threads)


@pytest.mark.parametrize("name,kwargs", CASES[1::2], ids=CASE_IDS[1::2])
def test_every_instruction_set_gives_identical_bits(name, kwargs, restore_isa_and_threads):
    # 37 and 1000 elements: vector body plus a remainder on every ISA.
    x0, curv, noise = problem(seed=2, shapes=[(37,), (10, 100)], steps=5)
    results = []
    for isa in _isas():
        _C.set_isa(isa)
        for dtype in (np.float32, np.float64):
            got, _, _ = run_genesis(name, kwargs, x0, curv, noise, dtype=dtype, steps=5)
            results.append((isa, dtype, got))
    for isa, dtype, got in results:
        ref = next(r for i, d, r in results if d == dtype)
        for g, r in zip(got, ref):
            assert np.array_equal(g, r), (isa, dtype)


@pytest.mark.parametrize("name,kwargs", [CASES[5], CASES[10], CASES[20], CASES[25]],
                         ids=[CASE_IDS[5], CASE_IDS[10], CASE_IDS[20], CASE_IDS[25]])
def test_large_parameter_uses_threads_and_matches(name, kwargs, restore_isa_and_threads):
    x0, curv, noise = problem(seed=3, shapes=[(70001,)], steps=3)
    genesis.set_num_threads(2)
    two, _, _ = run_genesis(name, kwargs, x0, curv, noise, steps=3)
    genesis.set_num_threads(1)
    one, _, _ = run_genesis(name, kwargs, x0, curv, noise, steps=3)
    assert np.array_equal(one[0], two[0])
    assert_close(two, run_reference(name, kwargs, x0, curv, noise, steps=3), rtol=1e-6,
                 atol=1e-12)


def test_strided_parameter_and_gradient():
    rng = np.random.default_rng(4)
    base = rng.standard_normal((4, 3))
    p = genesis.tensor(base).t().requires_grad_()  # a leaf that is a transposed view
    assert not p._data.flags.c_contiguous
    opt = optim.Adam([p], lr=0.1, amsgrad=True)
    step = ref_adam(lr=0.1, amsgrad=True)
    x, s = base.T.copy(), {}
    for _ in range(5):
        g = rng.standard_normal((4, 3))
        p.grad = genesis.tensor(g).t()  # a strided gradient too
        opt.step()
        x = step(x, g.T, s)
    np.testing.assert_allclose(p.detach().numpy(), x, rtol=1e-12)


# ----------------------------------------------------------------- groups, skipping, zero_grad
def test_per_group_hyperparameters_numpy_and_torch():
    x0, curv, noise = problem(seed=5)
    groups = [dict(lr=0.02, momentum=0.9), dict(lr=0.1, weight_decay=0.2, nesterov=True,
                                                  momentum=0.5)]
    defaults = dict(lr=0.05, momentum=0.1)
    params = [genesis.tensor(x, requires_grad=True) for x in x0]
    opt = optim.SGD([dict(params=params[:2], **groups[0]), dict(params=params[2:], **groups[1])],
                    **defaults)
    assert [g["lr"] for g in opt.param_groups] == [0.02, 0.1]
    assert opt.param_groups[0]["weight_decay"] == 0 and opt.param_groups[1]["dampening"] == 0
    got, _, _ = run_genesis("SGD", None, x0, curv, noise, opt=opt, params=params)

    # each group follows its own hyperparameters
    want_a = run_reference("SGD", groups[0], x0[:2], curv[:2], [n[:2] for n in noise])
    want_b = run_reference("SGD", groups[1], x0[2:], curv[2:], [n[2:] for n in noise])
    assert_close(got, want_a + want_b, rtol=1e-6, atol=1e-12)

    torch = pytest.importorskip("torch")
    tparams = [torch.tensor(x, requires_grad=True) for x in x0]
    topt = torch.optim.SGD([dict(params=tparams[:2], **groups[0]),
                            dict(params=tparams[2:], **groups[1])], **defaults)
    for t in range(STEPS):
        for p, c, n in zip(tparams, curv, noise[t]):
            p.grad = torch.tensor(c * p.detach().numpy() + n)
        topt.step()
    assert_close(got, [p.detach().numpy() for p in tparams], rtol=1e-6, atol=1e-12)


def test_add_param_group_later_and_changing_lr():
    a = genesis.tensor([1.0, 2.0], requires_grad=True)
    b = genesis.tensor([3.0], requires_grad=True)
    opt = optim.Adagrad([a], lr=0.1)
    opt.add_param_group({"params": b, "lr": 0.5})
    assert opt.param_groups[1]["params"] == [b] and opt.param_groups[1]["lr_decay"] == 0
    a.grad, b.grad = genesis.tensor([1.0, 1.0]), genesis.tensor([2.0])
    opt.step()
    np.testing.assert_allclose(b.detach().numpy(), [3.0 - 0.5 * 2 / (2 + 1e-10)])
    opt.param_groups[0]["lr"] = 0.0
    opt.step()
    step = 0.1 / (1 + 1e-10)  # the first step's; the second has lr 0
    np.testing.assert_allclose(a.detach().numpy(), [1.0 - step, 2.0 - step])


def test_parameters_without_gradient_are_skipped():
    a = genesis.tensor([1.0, 2.0], requires_grad=True)
    b = genesis.tensor([3.0, 4.0], requires_grad=True)
    frozen = genesis.tensor([5.0])  # requires_grad=False is allowed, as in PyTorch
    for cls in (optim.SGD, optim.Adam, optim.RMSprop):
        opt = cls([a, b, frozen], lr=0.1)
        a.grad, b.grad = genesis.tensor([1.0, 1.0]), None
        opt.step()
        assert b.tolist() == [3.0, 4.0] and frozen.tolist() == [5.0]
        assert b not in opt.state and frozen not in opt.state
    assert a.tolist() != [1.0, 2.0]


def test_sgd_without_momentum_keeps_no_state():
    p = genesis.tensor([1.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.5)
    p.grad = genesis.tensor([2.0])
    opt.step()
    assert p.tolist() == [0.0] and opt.state_dict()["state"] == {}


def test_zero_grad():
    a = genesis.tensor([1.0, 2.0], requires_grad=True)
    b = genesis.tensor([3.0], requires_grad=True)
    opt = optim.SGD([a, b], lr=0.1)
    (a * a).sum().backward()
    grad = a.grad
    opt.zero_grad(set_to_none=False)
    assert a.grad is grad and a.grad.tolist() == [0.0, 0.0] and b.grad is None
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_step_closure_runs_with_grad_enabled():
    x = genesis.tensor([3.0, -1.0], requires_grad=True)
    opt = optim.SGD([x], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (x * x).sum()
        loss.backward()
        return loss

    with genesis.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 10.0
    assert x.tolist() == [1.5, -0.5]  # x - 0.25 * 2x


def test_end_to_end_least_squares_with_autograd():
    rng = np.random.default_rng(6)
    A, b = rng.standard_normal((8, 3)), rng.standard_normal(8)
    x = genesis.zeros(3, dtype=genesis.float64, requires_grad=True)
    opt = optim.Adam([x], lr=0.1)
    ref, state, xr = ref_adam(lr=0.1), {}, np.zeros(3)
    At, bt = genesis.tensor(A), genesis.tensor(b)
    for _ in range(STEPS):
        opt.zero_grad()
        loss = ((At @ x - bt) ** 2).sum()
        loss.backward()
        opt.step()
        xr = ref(xr, 2 * A.T @ (A @ xr - b), state)
    np.testing.assert_allclose(x.detach().numpy(), xr, rtol=1e-9)


def test_step_bumps_version_so_stale_graphs_refuse_backward():
    x = genesis.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([x], lr=0.1)
    y = (x * x).sum()
    x.grad = genesis.tensor([1.0, 1.0])
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def test_repr_lists_groups():
    opt = optim.SGD([genesis.tensor([1.0], requires_grad=True)], lr=0.5, momentum=0.9)
    text = repr(opt)
    assert text.startswith("SGD (") and "Parameter Group 0" in text and "lr: 0.5" in text


def test_named_parameters():
    a = genesis.tensor([1.0], requires_grad=True)
    opt = optim.SGD([("weight", a)], lr=0.1)
    assert opt.param_groups[0]["params"] == [a]
    assert opt.param_groups[0]["param_names"] == ["weight"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["weight"]


def test_required_hyperparameter_of_a_custom_optimizer():
    from genesis.optim.optimizer import required

    class Custom(optim.Optimizer):
        def __init__(self, params, lr=required):
            super().__init__(params, dict(lr=lr))

    a = genesis.tensor([1.0], requires_grad=True)
    assert Custom([{"params": [a], "lr": 0.3}]).param_groups[0]["lr"] == 0.3
    with pytest.raises(ValueError, match="didn't specify a value of required optimization "
                                         "parameter lr"):
        Custom([a])


# ----------------------------------------------------------------- checkpoints
def _is_plain(value):
    if isinstance(value, dict):
        return all(isinstance(k, (int, str)) and _is_plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str, genesis.Tensor))


def _through_storage(value):
    """What a non-pickle serializer gives back: tensors rebuilt from their bytes."""
    if isinstance(value, dict):
        return {k: _through_storage(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_through_storage(v) for v in value]
    if isinstance(value, genesis.Tensor):
        return genesis.tensor(value.detach().numpy().copy())
    return value


@pytest.mark.parametrize("name,kwargs", CASES, ids=CASE_IDS)
def test_state_dict_resume_is_bit_identical(name, kwargs):
    x0, curv, noise = problem(seed=7)
    full, _, _ = run_genesis(name, kwargs, x0, curv, noise)

    half, opt, params = run_genesis(name, kwargs, x0, curv, noise, steps=10)
    saved = opt.state_dict()
    assert _is_plain(saved)
    assert all(isinstance(k, int) for k in saved["state"])
    assert saved["param_groups"][0]["params"] == [0, 1, 2]
    stored = _through_storage(saved)

    resumed_params = [genesis.tensor(h, requires_grad=True) for h in half]
    opt2 = getattr(optim, name)(resumed_params, **kwargs)
    opt2.load_state_dict(stored)
    got, _, _ = run_genesis(name, kwargs, x0, curv, noise, steps=10, start=10, opt=opt2,
                            params=resumed_params)
    for g, f in zip(got, full):
        assert np.array_equal(g, f)
    # the loaded state is the optimizer's own copy, not the state dict's tensors
    for pid, s in stored["state"].items():
        for k, v in s.items():
            if isinstance(v, genesis.Tensor):
                assert not np.shares_memory(v.numpy(), opt2.state[resumed_params[pid]][k].numpy())


@pytest.mark.parametrize("name,kwargs", [CASES[5], CASES[11], CASES[20], CASES[25]],
                         ids=[CASE_IDS[5], CASE_IDS[11], CASE_IDS[20], CASE_IDS[25]])
def test_checkpoint_through_genesis_save_resumes_bit_identically(name, kwargs, tmp_path):
    x0, curv, noise = problem(seed=10)
    full, _, _ = run_genesis(name, kwargs, x0, curv, noise)
    half, opt, params = run_genesis(name, kwargs, x0, curv, noise, steps=10)
    path = tmp_path / "optimizer.ckpt"
    genesis.save({"params": params, "optimizer": opt.state_dict()}, path)
    ckpt = genesis.load(path)
    resumed = [genesis.tensor(p.detach(), requires_grad=True) for p in ckpt["params"]]
    opt2 = getattr(optim, name)(resumed, **kwargs)
    opt2.load_state_dict(ckpt["optimizer"])
    got, _, _ = run_genesis(name, kwargs, x0, curv, noise, steps=10, start=10, opt=opt2,
                            params=resumed)
    for g, f in zip(got, full):
        assert np.array_equal(g, f)


def test_state_dict_layout_matches_torch():
    torch = pytest.importorskip("torch")
    x0, curv, noise = problem(seed=8)
    for name, kwargs in [("Adam", dict(lr=0.01, amsgrad=True)),
                         ("RMSprop", dict(momentum=0.5, centered=True)),
                         ("SGD", dict(momentum=0.9)), ("Adagrad", {})]:
        _, opt, _ = run_genesis(name, kwargs, x0, curv, noise, steps=2)
        params = [torch.tensor(x, requires_grad=True) for x in x0]
        topt = getattr(torch.optim, name)(params, **kwargs)
        for p in params:
            p.grad = torch.ones_like(p)
        topt.step()
        ours, theirs = opt.state_dict(), topt.state_dict()
        assert ours["state"].keys() == theirs["state"].keys()
        for pid in ours["state"]:
            assert ours["state"][pid].keys() == theirs["state"][pid].keys()
            for k, v in ours["state"][pid].items():
                assert tuple(v.shape) == tuple(theirs["state"][pid][k].shape)
        assert ours["param_groups"][0].keys() == theirs["param_groups"][0].keys()
        assert ours["param_groups"][0]["params"] == theirs["param_groups"][0]["params"]


def test_load_state_dict_restores_group_hyperparameters_and_tuples():
    a = genesis.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.Adam([a], lr=0.1, betas=(0.8, 0.9))
    a.grad = genesis.tensor([1.0, 1.0])
    opt.step()
    saved = opt.state_dict()
    assert saved["param_groups"][0]["betas"] == [0.8, 0.9]
    b = genesis.tensor([1.0, 2.0], requires_grad=True)
    opt2 = optim.Adam([b], lr=0.5)
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == 0.1 and opt2.param_groups[0]["betas"] == (0.8, 0.9)
    assert opt2.param_groups[0]["params"] == [b]
    assert opt2.state[b]["step"].item() == 1.0


def test_load_state_dict_casts_state_to_parameter_dtype():
    a = genesis.tensor([1.0, 2.0], dtype=genesis.float64, requires_grad=True)
    opt = optim.RMSprop([a], momentum=0.5)
    a.grad = genesis.tensor([1.0, 1.0], dtype=genesis.float64)
    opt.step()
    b = genesis.tensor([1.0, 2.0], dtype=genesis.float32, requires_grad=True)
    opt2 = optim.RMSprop([b], momentum=0.5)
    opt2.load_state_dict(opt.state_dict())
    assert opt2.state[b]["square_avg"].dtype == genesis.float32
    assert opt2.state[b]["step"].dtype == genesis.float32
    b.grad = genesis.tensor([1.0, 1.0], dtype=genesis.float32)
    opt2.step()
    assert opt2.state[b]["step"].item() == 2.0


def _adam_with_state(*shapes, groups=1):
    params = [genesis.zeros(*s, requires_grad=True) for s in shapes]
    opt = optim.Adam(params if groups == 1 else [{"params": [p]} for p in params])
    for p in params:
        p.grad = genesis.ones(*p.shape)
    opt.step()
    return opt


def test_load_state_dict_errors():
    saved = _adam_with_state((2, 3), (4,)).state_dict()
    two_groups = _adam_with_state((2, 3), (4,), groups=2)
    with pytest.raises(ValueError, match="has 1 parameter groups, but the optimizer has 2"):
        two_groups.load_state_dict(saved)
    fewer = _adam_with_state((2, 3))
    with pytest.raises(ValueError, match="group 0 has 2 parameters, but the optimizer's group "
                                         "has 1"):
        fewer.load_state_dict(saved)
    other_shape = _adam_with_state((3, 2), (4,))
    with pytest.raises(ValueError, match=r"state 'exp_avg' of parameter 0 has shape \(2, 3\), "
                                         r"but the parameter has shape \(3, 2\)"):
        other_shape.load_state_dict(saved)
    same = _adam_with_state((2, 3), (4,))
    with pytest.raises(ValueError, match="expected a dict with 'state' and 'param_groups'"):
        same.load_state_dict({"state": {}})
    bad_id = {"state": {7: saved["state"][0]}, "param_groups": saved["param_groups"]}
    with pytest.raises(ValueError, match="parameter id 7, which no parameter group lists"):
        same.load_state_dict(bad_id)
    bad_step = {"state": {0: dict(saved["state"][0], step=genesis.ones(2))},
                "param_groups": saved["param_groups"]}
    with pytest.raises(ValueError, match="'step' of parameter 0 has shape"):
        same.load_state_dict(bad_step)


# ----------------------------------------------------------------- argument errors
@pytest.mark.parametrize("make,match", [
    (lambda p: optim.SGD(p, lr=-0.1), "Invalid learning rate: -0.1"),
    (lambda p: optim.SGD(p, momentum=-0.5), "Invalid momentum value: -0.5"),
    (lambda p: optim.SGD(p, weight_decay=-1), "Invalid weight_decay value: -1"),
    (lambda p: optim.SGD(p, nesterov=True), "Nesterov momentum requires a momentum and zero "
                                            "dampening"),
    (lambda p: optim.SGD(p, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (lambda p: optim.Adam(p, lr=-1e-3), "Invalid learning rate"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (lambda p: optim.Adam(p, betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (lambda p: optim.AdamW(p, eps=-1e-8), "Invalid epsilon value"),
    (lambda p: optim.AdamW(p, weight_decay=-0.1), "Invalid weight_decay value"),
    (lambda p: optim.RMSprop(p, alpha=-0.1), "Invalid alpha value"),
    (lambda p: optim.RMSprop(p, momentum=-0.1), "Invalid momentum value"),
    (lambda p: optim.Adagrad(p, lr_decay=-0.1), "Invalid lr_decay value"),
    (lambda p: optim.Adagrad(p, initial_accumulator_value=-1),
     "Invalid initial_accumulator_value value"),
    (lambda p: optim.Adam(p, differentiable=True), "differentiable=True is not supported"),
    (lambda p: optim.RMSprop(p, capturable=True), "capturable=True is not supported"),
])
def test_invalid_hyperparameters_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make([genesis.tensor([1.0], requires_grad=True)])


def test_invalid_params():
    a = genesis.tensor([1.0], requires_grad=True)
    with pytest.raises(TypeError, match="iterable of Tensors or dicts"):
        optim.SGD(a)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        optim.SGD([a * 2])
    with pytest.raises(TypeError, match="floating-point Tensors.*int64"):
        optim.SGD([genesis.tensor([1, 2])])
    with pytest.raises(TypeError, match="can only optimize Tensors, but one of the params is "
                                        "ndarray"):
        optim.SGD([np.ones(2)])
    with pytest.raises(ValueError, match="duplicate parameters"):
        optim.SGD([a, a])
    b = genesis.tensor([2.0], requires_grad=True)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [a]}, {"params": [b, a]}])
    with pytest.raises(TypeError, match="ordered collections"):
        optim.SGD([{"params": {a}}])
    with pytest.raises(TypeError, match="param_group must be a dict"):
        optim.SGD([a]).add_param_group([b])


def test_gradient_mismatch_errors_name_the_buffers():
    a = genesis.tensor([[1.0, 2.0]], dtype=genesis.float64, requires_grad=True)
    opt = optim.Adam([a])
    a.grad = genesis.ones(1, 2, dtype=genesis.float32)
    with pytest.raises(TypeError, match="adam_update: grad has dtype float32 but param has "
                                        "dtype float64"):
        opt.step()
    a.grad = genesis.ones(2, 1, dtype=genesis.float64)
    with pytest.raises(ValueError, match=r"adam_update: grad has shape \(2, 1\) but param has "
                                         r"shape \(1, 2\)"):
        opt.step()
    assert a.tolist() == [[1.0, 2.0]]


def test_backend_kernels_validate_state_buffers():
    p, g = np.ones(4), np.ones(4)
    step = np.zeros((), np.float32)
    with pytest.raises(ValueError, match=r"exp_avg_sq has shape \(3,\) but param has shape \(4,\)"):
        cpu.adam_update_(p, g, np.zeros(4), np.zeros(3), None, step, 0.1, 0.9, 0.99, 1e-8, 0,
                         False, False)
    with pytest.raises(TypeError, match="step must be a float32 tensor with one element"):
        cpu.adagrad_update_(p, g, np.zeros(4), np.zeros((), np.float64), 0.1, 0, 0, 1e-10,
                            False)
    with pytest.raises(TypeError, match="param has dtype int64, expected float32 or float64"):
        cpu.sgd_update_(np.ones(4, np.int64), np.ones(4, np.int64), None, 0.1, 0, 0, 0, False,
                        False, False)
    with pytest.raises(ValueError, match="momentum_buffer is required exactly when momentum"):
        cpu.sgd_update_(p, g, None, 0.1, 0.9, 0, 0, False, False, False)
    with pytest.raises(ValueError, match="momentum_buffer must be omitted exactly when "
                                         "momentum > 0"):
        cpu.rmsprop_update_(p, g, np.zeros(4), None, np.zeros(4), step, 0.1, 0.99, 1e-8, 0, 0,
                            False)
    with pytest.raises(TypeError, match="square_avg has dtype float32"):
        cpu.rmsprop_update_(p, g, np.zeros(4, np.float32), None, None, step, 0.1, 0.99, 1e-8, 0,
                            0, False)
    assert step == 0 and np.all(p == 1)


# ----------------------------------------------------------------- gradient clipping
def _grads_for(shapes, dtype=np.float64, seed=9, scale=1.0):
    rng = np.random.default_rng(seed)
    params = [genesis.zeros(*s, dtype=genesis.float64 if dtype == np.float64 else genesis.float32,
                            requires_grad=True) for s in shapes]
    grads = [(scale * rng.standard_normal(s)).astype(dtype) for s in shapes]
    for p, g in zip(params, grads):
        p.grad = genesis.tensor(g)
    return params, grads


def _np_norm(arrays, p):
    flat = np.concatenate([a.ravel() for a in arrays])
    if p == math.inf:
        return np.abs(flat).max()
    return (np.abs(flat) ** p).sum() ** (1 / p)


@pytest.mark.parametrize("norm_type", [2.0, 1, math.inf, 3.0])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_numpy(norm_type, max_norm):
    params, grads = _grads_for([(3, 4), (5,), ()])
    untouched = genesis.zeros(2, requires_grad=True)  # no gradient: ignored
    total = genesis.nn.utils.clip_grad_norm_(params + [untouched], max_norm, norm_type)
    want = _np_norm(grads, norm_type)
    assert isinstance(total, genesis.Tensor) and total.ndim == 0
    np.testing.assert_allclose(total.item(), want, rtol=1e-12)
    coef = min(1.0, max_norm / (want + 1e-6))
    for p, g in zip(params, grads):
        np.testing.assert_allclose(p.grad.numpy(), g * coef, rtol=1e-12)
    assert untouched.grad is None


def test_clip_grad_norm_float32_single_tensor_and_torch():
    params, grads = _grads_for([(4, 4)], dtype=np.float32, scale=3.0)
    total = genesis.nn.utils.clip_grad_norm_(params[0], 1.0)
    assert total.dtype == genesis.float32
    want = _np_norm([g.astype(np.float64) for g in grads], 2)
    np.testing.assert_allclose(total.item(), want, rtol=1e-6)
    np.testing.assert_allclose(params[0].grad.numpy(), grads[0] / (want + 1e-6), rtol=1e-5)

    torch = pytest.importorskip("torch")
    tp = torch.zeros(4, 4, requires_grad=True)
    tp.grad = torch.tensor(grads[0])
    ttotal = torch.nn.utils.clip_grad_norm_(tp, 1.0)
    np.testing.assert_allclose(total.item(), ttotal.item(), rtol=1e-6)
    np.testing.assert_allclose(params[0].grad.numpy(), tp.grad.numpy(), rtol=1e-6)


def test_clip_grad_norm_without_gradients_and_nonfinite():
    total = genesis.nn.utils.clip_grad_norm_([genesis.zeros(2, requires_grad=True)], 1.0)
    assert total.item() == 0.0
    params, _ = _grads_for([(3,)])
    params[0].grad = genesis.tensor([1.0, float("inf"), 2.0])
    with pytest.raises(RuntimeError, match="total norm of order 2.0 for gradients from "
                                           "`parameters` is non-finite"):
        genesis.nn.utils.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    assert params[0].grad.tolist() == [1.0, float("inf"), 2.0]
    total = genesis.nn.utils.clip_grad_norm_(params, 1.0, norm_type="inf", foreach=True)
    assert total.item() == math.inf


def test_clip_grad_value_matches_numpy():
    params, grads = _grads_for([(3, 4), (6,)], scale=2.0)
    genesis.nn.utils.clip_grad_value_(params, 1.5)
    for p, g in zip(params, grads):
        np.testing.assert_array_equal(p.grad.numpy(), np.clip(g, -1.5, 1.5))
    single, grads = _grads_for([(5,)], dtype=np.float32, scale=2.0)
    genesis.nn.utils.clip_grad_value_(single[0], 0.25)
    np.testing.assert_array_equal(single[0].grad.numpy(), np.clip(grads[0], -0.25, 0.25))


def test_nn_utils_is_an_attribute_after_import_genesis():
    """In a fresh interpreter (no test module imported genesis.nn.utils first):
    `import genesis` alone gives genesis.nn.utils, also by `from genesis.nn import *`."""
    code = ("import genesis\n"
            "assert genesis.nn.utils.clip_grad_norm_ and genesis.nn.utils.rnn.pack_sequence\n"
            "from genesis.nn import *\n"
            "assert utils is genesis.nn.utils\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_get_total_norm_and_clip_grads_with_norm():
    params, grads = _grads_for([(2, 2), (3,)])
    total = genesis.nn.utils.get_total_norm([p.grad for p in params], 2.0)
    np.testing.assert_allclose(total.item(), _np_norm(grads, 2), rtol=1e-12)
    genesis.nn.utils.clip_grads_with_norm_(params, 0.1, total)
    np.testing.assert_allclose(params[0].grad.numpy(),
                               grads[0] * 0.1 / (_np_norm(grads, 2) + 1e-6), rtol=1e-12)
