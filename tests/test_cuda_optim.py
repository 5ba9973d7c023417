"""The fused optimizer updates on device "cuda" (kernels/optim.cu) match the cpu device.

Every optimizer runs a few steps on cpu and on cuda from identical parameters and
gradients, over every option the kernels support, float32 and float64, odd and
multi-block sizes and strided parameters; parameters and state must agree and the
state must live on the parameter's device.  Bad input raises the cpu backend's errors.
Also: the GPU benchmark script's emulated smoke run.  The kernels run in the CPU
emulator (GENESIS_CUDA_EMULATE=1, set here unless the environment says otherwise)."""
import os

os.environ.setdefault("GENESIS_CUDA_EMULATE", "1")

import pathlib  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings, strategies as st  # noqa: E402

import genesis as G  # noqa: E402
from genesis.backend import cpu  # noqa: E402
from genesis.backend.cuda import backend as cuda  # noqa: E402
from genesis.backend.cuda import emulator  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
# where the genesis under test lives (installed, or this checkout built in place)
GENESIS_PATH = str(pathlib.Path(G.__file__).resolve().parents[1])
_DT = {"float32": G.float32, "float64": G.float64}

# (optimizer, options): every switch of every kernel at least once.
CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, weight_decay=0.05, maximize=True)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.3, 0.9), weight_decay=0.1, amsgrad=True)),
    ("Adam", dict(lr=0.02, maximize=True, eps=1e-3)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, amsgrad=True, betas=(0.6, 0.95))),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.4, centered=True, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.7, maximize=True)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True, momentum=0.5)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, maximize=True,
                     initial_accumulator_value=0.3)),
]
SHAPES = [(1,), (37,), (5, 7), (3, 353)]  # 1059 elements: five blocks of 256


def _close(got, want, dtype):
    tol = 1e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def _run(name, options, init, grads, device, dtype, strided=False):
    """(parameter, optimizer) after one step per gradient, from `init`."""
    dt = _DT[dtype]
    if strided:  # a transposed view as the leaf: the update writes back through it
        p = G.tensor(np.ascontiguousarray(init.T), dtype=dt, device=device).T
        p = p.detach().requires_grad_()
        assert not p._data.flags.c_contiguous
    else:
        p = G.tensor(init, dtype=dt, device=device, requires_grad=True)
    opt = getattr(G.optim, name)([p], **options)
    for g in grads:
        p.grad = G.tensor(g, dtype=dt, device=device)
        opt.step()
    return p, opt


def _compare(name, options, shape, dtype, strided=False, steps=3, seed=0):
    rng = np.random.default_rng(seed)
    init = rng.standard_normal(shape)
    grads = [rng.standard_normal(shape) for _ in range(steps)]
    pc, oc = _run(name, options, init, grads, "cpu", dtype, strided)
    pg, og = _run(name, options, init, grads, "cuda", dtype, strided)
    assert pg.device == G.device("cuda") and pg.dtype == _DT[dtype]
    _close(pg.detach().cpu().numpy(), pc.detach().numpy(), dtype)
    assert not np.allclose(pc.detach().numpy(), init)  # the steps did move it
    sc, sg = oc.state[pc], og.state[pg]
    assert sc.keys() == sg.keys()
    for key, want in sc.items():
        got = sg[key]
        if key == "step":  # PyTorch's host-side counter, on either device
            assert got.device == G.device("cpu") and got.item() == want.item() == steps
        else:
            assert got.device == G.device("cuda"), key
            _close(got.cpu().numpy(), want.numpy(), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,options", CONFIGS, ids=lambda c: str(c))
def test_optimizer_matches_cpu(name, options, dtype):
    for i, shape in enumerate(SHAPES):
        _compare(name, options, shape, dtype, seed=i)


@pytest.mark.parametrize("name,options", CONFIGS[3::3], ids=lambda c: str(c))
def test_strided_parameter(name, options):
    _compare(name, options, (6, 11), "float64", strided=True)


@pytest.mark.parametrize("order", [("reverse", 0), ("random", 7)])
def test_thread_order_does_not_matter(order):
    with emulator.thread_order(*order):
        _compare("Adam", dict(lr=0.01, amsgrad=True), (3, 353), "float32")


@settings(max_examples=10, deadline=None)
@given(name=st.sampled_from(["SGD", "Adam", "RMSprop", "Adagrad"]),
       size=st.integers(1, 700), lr=st.floats(1e-3, 0.5), decay=st.floats(0, 0.2),
       maximize=st.booleans(), dtype=st.sampled_from(["float32", "float64"]))
def test_drawn_hyperparameters(name, size, lr, decay, maximize, dtype):
    options = dict(lr=lr, weight_decay=decay, maximize=maximize)
    if name == "SGD":
        options["momentum"] = 0.5
    _compare(name, options, (size,), dtype, steps=2)


def test_resumed_run_continues_on_cuda():
    """A state_dict saved on cpu and loaded for a cuda parameter continues the same way."""
    rng = np.random.default_rng(3)
    init, grads = rng.standard_normal(40), [rng.standard_normal(40) for _ in range(4)]
    pc, oc = _run("Adam", dict(lr=0.05, amsgrad=True), init, grads, "cpu", "float64")
    p0, o0 = _run("Adam", dict(lr=0.05, amsgrad=True), init, grads[:2], "cpu", "float64")
    pg = p0.detach().to("cuda").requires_grad_()
    og = G.optim.Adam([pg], lr=0.05, amsgrad=True)
    og.load_state_dict(o0.state_dict())
    assert og.state[pg]["exp_avg"].device == G.device("cuda")
    for g in grads[2:]:
        pg.grad = G.tensor(g, dtype=G.float64, device="cuda")
        og.step()
    _close(pg.detach().cpu().numpy(), pc.detach().numpy(), "float64")
    assert og.state[pg]["step"].item() == 4


def test_training_a_model_matches_cpu():
    """A small MLP trained a few SGD-with-momentum steps through the public API."""
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((9, 5)), rng.integers(0, 3, 9)
    results = []
    for device in ("cpu", "cuda"):
        G.manual_seed(0)
        model = G.nn.Sequential(G.nn.Linear(5, 7), G.nn.Tanh(), G.nn.Linear(7, 3)).to(device)
        opt = G.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        xt, yt = G.tensor(x, dtype=G.float32, device=device), G.tensor(y, device=device)
        for _ in range(3):
            opt.zero_grad()
            loss = ((model(xt) - G.nn.functional.one_hot(yt, 3).float()) ** 2).mean()
            loss.backward()
            opt.step()
        results.append([p.detach().cpu().numpy() for p in model.parameters()])
    for got, want in zip(results[1], results[0]):
        _close(got, want, "float32")


# ---------------------------------------------------------------- errors
def _both(fn, *arrays):
    """fn(backend, *arrays) with the arrays on the cpu and on the cuda backend: the
    error (its type and message) each raised, which must be the same."""
    errors = []
    for be in (cpu, cuda):
        try:
            fn(be, *[None if a is None else be.from_numpy(a) for a in arrays])
        except (TypeError, ValueError) as e:
            errors.append((isinstance(e, TypeError), str(e)))
        else:
            errors.append(None)
    assert errors[0] == errors[1], errors
    return errors[0]


f32 = np.zeros((2, 3), np.float32)


@pytest.mark.parametrize("param,grad,buf,momentum,message", [
    (f32.astype(np.int64), f32, None, 0.0, "param has dtype int64, expected float32 or float64"),
    (f32, np.zeros((3, 2), np.float32), None, 0.0,
     r"grad has shape \(3, 2\) but param has shape \(2, 3\)"),
    (f32, f32.astype(np.float64), None, 0.0, "grad has dtype float64 but param has dtype float32"),
    (f32, f32, f32, 0.0, "momentum_buffer must be omitted exactly when momentum != 0"),
    (f32, f32, None, 0.9, "momentum_buffer is required exactly when momentum != 0"),
], ids=range(5))
def test_sgd_errors_match_cpu(param, grad, buf, momentum, message):
    err = _both(lambda be, p, g, b: be.sgd_update_(p, g, b, 0.1, momentum, 0, 0, False, False,
                                                   True), param, grad, buf)
    assert err is not None and re.search(f"^sgd_update: {message}$", err[1]), err


def test_strided_state_buffer_is_refused():
    for be in (cpu, cuda):
        p = be.from_numpy(f32.copy())
        buf = be.permute(be.from_numpy(np.zeros((3, 2), np.float32)), (1, 0))
        with pytest.raises(ValueError, match="sgd_update: momentum_buffer must be contiguous"):
            be.sgd_update_(p, p, buf, 0.1, 0.9, 0, 0, False, False, True)


@pytest.mark.parametrize("step,message", [
    (np.zeros((), np.float64), r"step must be a float32 tensor with one element, got float64 "
                               r"of shape \(\)"),
    (np.zeros(2, np.float32), r"got float32 of shape \(2,\)"),
])
def test_step_counter_errors_match_cpu(step, message):
    for be in (cpu, cuda):
        for call in (
                lambda s: be.adam_update_(*[be.from_numpy(f32.copy()) for _ in range(4)], None, s,
                                          0.1, 0.9, 0.99, 1e-8, 0, False, False),
                lambda s: be.adagrad_update_(*[be.from_numpy(f32.copy()) for _ in range(3)], s,
                                             0.1, 0, 0, 1e-10, False),
                lambda s: be.rmsprop_update_(*[be.from_numpy(f32.copy()) for _ in range(3)], None,
                                             None, s, 0.1, 0.9, 1e-8, 0, 0, False)):
            with pytest.raises(TypeError, match=message):
                call(step.copy())


def test_state_buffer_errors_match_cpu():
    for be in (cpu, cuda):
        p, g = be.from_numpy(f32.copy()), be.from_numpy(f32.copy())
        step = np.zeros((), np.float32)
        with pytest.raises(ValueError, match=r"adam_update: exp_avg_sq has shape \(3,\) but "):
            be.adam_update_(p, g, be.from_numpy(f32.copy()), be.from_numpy(np.zeros(3, np.float32)),
                            None, step, 0.1, 0.9, 0.99, 1e-8, 0, False, False)
        with pytest.raises(TypeError, match="rmsprop_update: grad_avg has dtype float64 but"):
            be.rmsprop_update_(p, g, be.from_numpy(f32.copy()), be.from_numpy(f32.astype(float)),
                               None, step, 0.1, 0.9, 1e-8, 0, 0, False)
        with pytest.raises(ValueError, match="momentum_buffer is required exactly when momentum"):
            be.rmsprop_update_(p, g, be.from_numpy(f32.copy()), None, None, step, 0.1, 0.9, 1e-8,
                               0, 0.5, False)
        assert step.item() == 0  # a rejected update does not count a step


def test_gradient_on_another_device_is_refused():
    p = G.zeros(3, device="cuda", requires_grad=True)
    p.grad = G.zeros(3)
    with pytest.raises(RuntimeError, match="Adam: gradient is on cpu but the parameter is on"):
        G.optim.Adam([p]).step()


# ---------------------------------------------------------------- benchmarks/gpu.py
def test_gpu_benchmark_emulated_smoke():
    """The GPU benchmark's genesis side runs (one tiny round) on the emulated device."""
    env = dict(os.environ, GENESIS_CUDA_EMULATE="1", PYTHONPATH=GENESIS_PATH)
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--emulated-smoke"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    for case in ("gemm", "add", "exp", "mlp_sgd_step", "cnn_adam_step"):
        assert case in run.stdout, run.stdout


def test_gpu_benchmark_refuses_to_run_without_a_gpu():
    env = dict(os.environ, GENESIS_CUDA_EMULATE="1", PYTHONPATH=GENESIS_PATH)
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode != 0
    assert "needs a real GPU" in run.stderr, run.stderr
