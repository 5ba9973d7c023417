"""The op catalog on device "cuda": forward results and gradients match the cpu device.

The CUDA kernels run in the CPU emulator (GENESIS_CUDA_EMULATE=1, set here unless the
environment says otherwise; GENESIS_CUDA_EMULATE=0 on a GPU machine runs them natively).
Inputs come from the catalog's own strategies; float32 and float64, integer inputs for
the ops that take them, and strided (non-contiguous) device inputs."""
import os

os.environ.setdefault("GENESIS_CUDA_EMULATE", "1")

import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings, strategies as st  # noqa: E402

import genesis as G  # noqa: E402
from op_catalog import BY_NAME, OPS  # noqa: E402

_G = {"float32": G.float32, "float64": G.float64}


def _tensor(a, dtype, device, strided=False, requires_grad=False):
    if a.dtype == np.bool_:
        return G.tensor(a, device=device)
    if a.dtype.kind in "iu":
        return G.tensor(a, dtype=G.int64, device=device)
    dt = _G[dtype] if dtype in _G else G.int64
    if strided:  # the same values in a view with a non-unit stride
        base = G.zeros(*a.shape, 2, dtype=dt, device=device)
        base[..., 1] = G.tensor(a, dtype=dt, device=device)
        t = base[..., 1].detach()
    else:
        t = G.tensor(a, dtype=dt, device=device)
    return t.requires_grad_() if requires_grad else t


def _pair(arrays, dtype, strided=False, requires_grad=False):
    cpu = [_tensor(a, dtype, "cpu", requires_grad=requires_grad) for a in arrays]
    cuda = [_tensor(a, dtype, "cuda", strided, requires_grad) for a in arrays]
    return cpu, cuda


def _same(got, expected, dtype, tol32):
    """A cuda result equals the cpu one: exactly for integers and bools, else closely."""
    assert got.device == G.device("cuda"), got.device
    assert got.dtype == expected.dtype and tuple(got.shape) == tuple(expected.shape)
    a, b = got.detach().cpu().numpy(), expected.detach().numpy()
    if expected.dtype.is_floating_point:
        tol = tol32 if dtype == "float32" else 1e-10
        np.testing.assert_allclose(a, b, rtol=tol, atol=10 * tol)
    else:
        np.testing.assert_array_equal(a, b)


def _cast(arrays, dtype):
    if dtype == "int64":
        return [np.round(a * 3).astype(np.int64) if a.dtype.kind == "f" else a for a in arrays]
    return arrays


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", OPS, ids=lambda o: o.name)
@given(data=st.data())
def test_forward_matches_cpu(op, dtype, data):
    arrays, kw = op.draw(data, False)
    strided = data.draw(st.booleans(), label="strided")
    cpu, cuda = _pair(arrays, dtype, strided)
    _same(op.fn(*cuda, **kw), op.fn(*cpu, **kw), dtype, op.tol32)


@pytest.mark.parametrize("op", [o for o in OPS if o.int_ok], ids=lambda o: o.name)
@given(data=st.data())
def test_integer_forward_matches_cpu(op, data):
    arrays, kw = op.draw(data, False)
    cpu, cuda = _pair(_cast(arrays, "int64"), "int64")
    _same(op.fn(*cuda, **kw), op.fn(*cpu, **kw), "int64", 0)


@pytest.mark.parametrize("op", [o for o in OPS if o.grad], ids=lambda o: o.name)
@settings(max_examples=max(2, settings().max_examples // 2))
@given(data=st.data())
def test_gradients_match_cpu(op, data):
    arrays, kw = op.draw(data, True)
    strided = data.draw(st.booleans(), label="strided")
    cpu, cuda = _pair(arrays, "float64", strided, requires_grad=True)
    a, b = op.fn(*cpu, **kw), op.fn(*cuda, **kw)
    _same(b, a, "float64", 0)
    if not a.requires_grad or not a.numel():
        return
    w = np.linspace(-1, 1, a.numel()).reshape(tuple(a.shape))
    (a * G.tensor(w)).sum().backward()
    (b * G.tensor(w, device="cuda")).sum().backward()
    for x, y in zip(cpu, cuda):
        if x.requires_grad and x.grad is not None:
            _same(y.grad, x.grad, "float64", 0)


# Kernels with barriers and warp collectives, run with threads and blocks in other orders.
_SYNCED = ["sum", "amax", "argmax", "cumsum", "softmax", "log_softmax", "matmul", "bmm", "sort",
           "topk", "scatter_add", "getitem_mask"]


@pytest.mark.parametrize("order", ["reverse", "random"])
@pytest.mark.parametrize("name", _SYNCED)
@settings(max_examples=max(2, settings().max_examples // 4))
@given(data=st.data())
def test_results_do_not_depend_on_thread_order(name, order, data):
    from genesis.backend.cuda import emulator
    if not G.cuda.is_emulated():
        pytest.skip("thread orders are an emulator feature")
    op = BY_NAME[name]
    arrays, kw = op.draw(data, False)
    cpu, cuda = _pair(arrays, "float64")
    with emulator.thread_order(order, seed=data.draw(st.integers(0, 100), label="seed")):
        got = op.fn(*cuda, **kw)
    _same(got, op.fn(*cpu, **kw), "float64", 0)


# ------------------------------------------------------------------ larger shapes
# Multi-block grids, multi-chunk scans, several sort stages per thread, both reduce modes.
_rng = np.random.default_rng(7)
_ROWS = _rng.integers(0, 300, 5000)


@pytest.mark.parametrize("case", [
    ("sum_many_small", lambda t: t.sum(1), (3000, 3)),
    ("sum_long", lambda t: t.sum(), (70, 130)),
    ("amin_columns", lambda t: t.amin(0), (600, 9)),
    ("argmax_long", lambda t: t.argmax(1), (3, 1000)),
    ("cumsum_long", lambda t: t.cumsum(0), (1500, 2)),
    ("softmax_wide", lambda t: G.softmax(t, 1), (4, 700)),
    ("sort_long", lambda t: G.sort(t, 0)[0], (700, 2)),
    ("topk_long", lambda t: G.topk(t, 5, 1)[1], (3, 900)),
    ("matmul_tiles", lambda t: t @ t.T, (130, 70)),
    ("matmul_batched", lambda t: G.matmul(t.reshape(5, 20, 14), t.reshape(5, 14, 20)), (70, 20)),
    ("gather_big", lambda t: t[G.tensor(_ROWS)], (300, 3)),
], ids=lambda c: c[0])
def test_large_shapes_match_cpu(case):
    _, fn, shape = case
    a = _rng.standard_normal(shape)
    _same(fn(G.tensor(a, device="cuda")), fn(G.tensor(a)), "float64", 0)


# ------------------------------------------------------------------ devices
def test_device_round_trip_and_creation():
    assert G.cuda.is_available() and G.cuda.device_count() >= 1
    assert G.cuda.is_emulated() == (os.environ["GENESIS_CUDA_EMULATE"] != "0")
    x = G.arange(6, device="cuda").reshape(2, 3)
    assert x.device == G.device("cuda:0") and x.is_cuda
    assert x.cpu().tolist() == [[0, 1, 2], [3, 4, 5]]
    y = G.ones(2, 3).cuda()
    assert y.device.type == "cuda" and (x + y).cpu().tolist() == [[1, 2, 3], [4, 5, 6]]
    assert y.to("cpu").device == G.device("cpu")
    for t in (G.zeros(2, device="cuda"), G.full((2,), 3.0, device="cuda"),
              G.rand(2, device="cuda"), G.randn(2, device="cuda"), G.eye(3, device="cuda"),
              G.randint(0, 5, (3,), device="cuda"), G.linspace(0, 1, 5, device="cuda"),
              G.tensor([1.5], device="cuda"), G.randperm(4, device="cuda")):
        assert t.device.type == "cuda"
    assert G.eye(3, device="cuda").cpu().tolist() == np.eye(3).tolist()


def test_gradient_flows_back_across_devices():
    w = G.tensor([1.0, 2.0], requires_grad=True)
    (w.cuda() * 3).sum().backward()
    assert w.grad.device == G.device("cpu") and w.grad.tolist() == [3.0, 3.0]


def test_mixing_devices_names_both():
    with pytest.raises(RuntimeError, match=r"same device.*cpu and cuda:0"):
        G.ones(2) + G.ones(2, device="cuda")
    with pytest.raises(RuntimeError, match=r"cuda:0 and cpu"):
        G.matmul(G.ones(2, 2, device="cuda"), G.ones(2, 2))


def test_numpy_of_a_cuda_tensor_asks_for_cpu():
    with pytest.raises(TypeError, match=r"Tensor.cpu\(\)"):
        G.ones(2, device="cuda").numpy()


def test_bad_indices_raise_index_error():
    x = G.ones(3, 4, device="cuda")
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 3"):
        x[G.tensor([0, 5])]
    with pytest.raises(IndexError, match=r"gather.*index 4 .*dimension 1 with size 4"):
        G.gather(x, 1, G.tensor([[4]], device="cuda"))
    before = x.cpu().tolist()
    with pytest.raises(IndexError, match="scatter_add"):
        G.scatter_add(x, 0, G.tensor([[0, 9]], device="cuda"), G.ones(1, 2, device="cuda"))
    assert x.cpu().tolist() == before  # validated before anything was written
    with pytest.raises(IndexError, match="out of bounds"):
        x[G.tensor([1]), G.tensor([-5])] = 2.0
    with pytest.raises(IndexError, match=r"one_hot: class index 3 out of range \[0, 3\)"):
        G.one_hot(G.tensor([3], device="cuda"), 3)


def test_integer_division_by_zero():
    with pytest.raises(ValueError, match="integer division by zero"):
        G.tensor([1, 2], device="cuda") // G.tensor([1, 0], device="cuda")
    assert (G.tensor([7], device="cuda") // 2).item() == 3  # the error word was reset


def test_cuda_without_gpu_or_emulation_says_what_to_do():
    code = ("import sys; sys.modules['cupy'] = None\n"
            "import genesis as G\n"
            "assert not G.cuda.is_available()\n"
            "try:\n    G.zeros(2, device='cuda')\n"
            "except RuntimeError as e:\n    print(e)\n")
    env = {k: v for k, v in os.environ.items() if k != "GENESIS_CUDA_EMULATE"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "device 'cuda:0' is not available: CuPy is not installed" in r.stdout
    assert 'pip install "genesis-autograd[cuda]"' in r.stdout and "GENESIS_CUDA_EMULATE=1" in r.stdout


def test_backend_interface_matches_cpu():
    """Every device backend has every function of the cpu backend, with its signature: each
    CPU kernel has its CUDA counterpart."""
    import inspect
    from genesis.backend import cpu
    from genesis.backend.cuda import backend as cuda

    def public(m):
        return {n: inspect.signature(f) for n, f in vars(m).items()
                if inspect.isfunction(f) and not n.startswith("_") and f.__module__ == m.__name__}
    ported, everything = public(cuda), public(cpu)
    assert set(everything) - set(ported) == set()
    assert {n: everything[n] for n in ported} == ported


@pytest.mark.parametrize("dtype", [G.int32, G.bool, G.float32], ids=str)
@pytest.mark.parametrize("case", [
    ("add", lambda t: t + t), ("mul_T", lambda t: t * t.T), ("eq", lambda t: t == t.flip(0)),
    ("max", lambda t: G.maximum(t, t.T)), ("where", lambda t: G.where(t > 0, t, t.T)),
    ("sum", lambda t: t.sum(0)), ("amax", lambda t: t.amax(1)), ("argmin", lambda t: t.argmin(0)),
    ("cumsum", lambda t: t.cumsum(1)), ("sort", lambda t: G.sort(t, 1)[1]),
    ("gather", lambda t: G.gather(t, 0, G.tensor([[2, 0, 1, 1]], device=t.device))),
    ("getitem", lambda t: t[G.tensor([3, 0])]), ("mask", lambda t: t[t > 0]),
    ("setitem", lambda t: _assign(t)), ("nonzero", lambda t: G.nonzero(t)),
    ("cast", lambda t: t.to(G.float64).to(t.dtype).to(G.int64)),
], ids=lambda c: c[0])
def test_other_dtypes_match_cpu(dtype, case):
    """int32, bool and float32 through the kernels the catalog runs in int64/float64."""
    _, fn = case
    a = np.random.default_rng(5).integers(-3, 4, (4, 4))
    try:
        expected = fn(G.tensor(a).to(dtype))
    except (TypeError, RuntimeError, ValueError) as e:  # not defined for this dtype on the cpu
        with pytest.raises(type(e)):
            fn(G.tensor(a, device="cuda").to(dtype))
        return
    _same(fn(G.tensor(a, device="cuda").to(dtype)), expected, "float32", 1e-6)


def _assign(t):
    t = t.clone()
    t[G.tensor([1, 2]), G.tensor([0, 3])] = t[0, 0]
    return t
