"""The fused recurrent cells on device "cuda" (kernels/rnn.cu) match the cpu device.

nn.LSTM / GRU / RNN (tanh, relu) and the Cell modules, forward and backward, float32
and float64, odd and multi-block sizes (B * H above one 256-thread block), several
layers, both directions, batch_first, no biases, initial states, packed sequences and
strided inputs; gradcheck on the device; threads in reverse and random order; bad
input raises the cpu backend's errors.  The kernels run in the CPU emulator
(GENESIS_CUDA_EMULATE=1, set here unless the environment says otherwise)."""
import os

os.environ.setdefault("GENESIS_CUDA_EMULATE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings, strategies as st  # noqa: E402

import genesis as G  # noqa: E402
import genesis.nn.functional as F  # noqa: E402
from genesis import nn  # noqa: E402
from genesis.autograd import gradcheck  # noqa: E402
from genesis.backend import cpu  # noqa: E402
from genesis.backend.cuda import backend as cuda  # noqa: E402
from genesis.backend.cuda import emulator  # noqa: E402
from genesis.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

_DT = {"float32": G.float32, "float64": G.float64}
_LAYERS = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN_TANH": nn.RNN, "RNN_RELU": nn.RNN}


def _close(got, want, dtype):
    assert got.device == G.device("cuda"), got.device
    tol = 2e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got.detach().cpu().numpy(), want.detach().numpy(), rtol=tol,
                               atol=tol)


def _on(device, a, dtype, strided=False, requires_grad=True):
    """a as a tensor on `device`; strided: the same values in a non-contiguous view."""
    if strided:
        t = G.tensor(np.ascontiguousarray(np.swapaxes(a, 0, -1)), dtype=_DT[dtype],
                     device=device).transpose(0, -1)
    else:
        t = G.tensor(a, dtype=_DT[dtype], device=device)
    return t.detach().requires_grad_(requires_grad)


def _twin(make, dtype):
    """A module built once and a copy with the same weights on cuda."""
    cpu_module = make().to(_DT[dtype])
    cuda_module = make().to(_DT[dtype])
    cuda_module.load_state_dict(cpu_module.state_dict())
    return cpu_module, cuda_module.to("cuda")


def _compare(cpu_module, cuda_module, run, inputs, dtype, strided=False):
    """run(module, *inputs) on both devices: outputs, input and parameter gradients."""
    results = {}
    for device, module in (("cpu", cpu_module), ("cuda", cuda_module)):
        ins = [_on(device, a, dtype, strided) for a in inputs]
        outs = run(module, *ins)
        rng = np.random.default_rng(9)  # a random upstream gradient for every output
        loss = sum((o * G.tensor(rng.standard_normal(tuple(o.shape)), dtype=o.dtype,
                                 device=device)).sum() for o in outs)
        loss.backward()
        results[device] = (outs, [t.grad for t in ins], [p.grad for p in module.parameters()])
    (oc, ic, pc), (og, ig, pg) = results["cpu"], results["cuda"]
    for got, want in zip(og + ig + pg, oc + ic + pc):
        _close(got, want, dtype)
    assert len(pg) == len(pc) and all(p.device == G.device("cuda")
                                      for p in cuda_module.parameters())


def _layer(mode, size, hidden, **kw):
    extra = {"nonlinearity": "relu" if mode == "RNN_RELU" else "tanh"} if "RNN" in mode else {}
    return lambda: _LAYERS[mode](size, hidden, **extra, **kw)


def _states(mode, layers, batch, hidden, rng):
    n = 2 if mode == "LSTM" else 1
    return [rng.standard_normal((layers, batch, hidden)) for _ in range(n)]


def _run_layer(mode):
    def run(module, x, *states):
        if not states:
            out, h = module(x)
        elif mode == "LSTM":
            out, h = module(x, tuple(states))
        else:
            out, h = module(x, states[0])
        return [out] + (list(h) if mode == "LSTM" else [h])
    return run


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", list(_LAYERS))
@pytest.mark.parametrize("seq,batch,size,hidden", [(1, 1, 1, 1), (3, 2, 5, 7), (2, 7, 3, 41)],
                         ids=["tiny", "odd", "multi-block"])
def test_layers_match_cpu(mode, dtype, seq, batch, size, hidden):
    rng = np.random.default_rng(0)
    cpu_m, cuda_m = _twin(_layer(mode, size, hidden), dtype)
    x = rng.standard_normal((seq, batch, size))
    _compare(cpu_m, cuda_m, _run_layer(mode), [x], dtype)


@pytest.mark.parametrize("mode", list(_LAYERS))
def test_layer_options_match_cpu(mode):
    """Two layers, bidirectional, batch_first, no biases, initial states, strided input."""
    rng = np.random.default_rng(1)
    cpu_m, cuda_m = _twin(_layer(mode, 3, 5, num_layers=2, bidirectional=True, bias=False,
                                 batch_first=True), "float32")
    x = rng.standard_normal((3, 4, 3))
    states = _states(mode, 4, 3, 5, rng)
    _compare(cpu_m, cuda_m, _run_layer(mode), [x] + states, "float32", strided=True)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH"])
def test_packed_sequences_match_cpu(mode):
    rng = np.random.default_rng(2)
    cpu_m, cuda_m = _twin(_layer(mode, 2, 3, bidirectional=True), "float64")

    def run(module, x):
        packed = pack_padded_sequence(x, [2, 4, 1], enforce_sorted=False)
        out, h = module(packed)
        return [pad_packed_sequence(out)[0]] + (list(h) if mode == "LSTM" else [h])
    _compare(cpu_m, cuda_m, run, [rng.standard_normal((4, 3, 2))], "float64")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["LSTMCell", "GRUCell", "RNNCell-tanh", "RNNCell-relu"])
@settings(max_examples=4, deadline=None)
@given(batch=st.integers(1, 9), size=st.integers(1, 6), hidden=st.integers(1, 37),
       bias=st.booleans(), strided=st.booleans())
def test_cells_match_cpu(kind, dtype, batch, size, hidden, bias, strided):
    name, _, act = kind.partition("-")
    extra = {"nonlinearity": act} if act else {}
    cpu_m, cuda_m = _twin(lambda: getattr(nn, name)(size, hidden, bias=bias, **extra), dtype)
    rng = np.random.default_rng(3)
    lstm = name == "LSTMCell"
    inputs = [rng.standard_normal((batch, n)) for n in (size, hidden) + ((hidden,) if lstm else ())]

    def run(module, x, *state):
        out = module(x, state if lstm else state[0])
        return list(out) if lstm else [out]
    _compare(cpu_m, cuda_m, run, inputs, dtype, strided)


@pytest.mark.parametrize("which", [0, 1])
def test_lstm_cell_with_one_output_unused(which):
    """Only hy or only cy reaches the loss: the other gradient is absent."""
    cpu_m, cuda_m = _twin(lambda: nn.LSTMCell(3, 4), "float64")
    rng = np.random.default_rng(4)
    _compare(cpu_m, cuda_m, lambda m, x: [m(x)[which]], [rng.standard_normal((2, 3))],
             "float64")


@pytest.mark.parametrize("order", [("reverse", 0), ("random", 11)])
def test_thread_order_does_not_matter(order):
    rng = np.random.default_rng(5)
    with emulator.thread_order(*order):
        for mode in ("LSTM", "GRU"):
            cpu_m, cuda_m = _twin(_layer(mode, 3, 37), "float32")
            _compare(cpu_m, cuda_m, _run_layer(mode), [rng.standard_normal((2, 9, 3))],
                     "float32")


def test_backend_cells_on_row_blocks_of_wider_matrices():
    """Operands whose rows are a column block of a wider matrix (row stride > width,
    no copy) and strided biases, through every cell function, against the cpu backend."""
    B, H = 5, 3

    def calls(be):
        rng = np.random.default_rng(8)  # the same operands for both backends

        def block(be, cols):  # (B, cols) as columns 2.. of a (B, cols + 3) matrix
            return be.view_index(be.from_numpy(rng.standard_normal((B, cols + 3))),
                                 (slice(None), slice(2, 2 + cols)))
        bias = be.view_index(be.from_numpy(rng.standard_normal(8 * H)), (slice(None, None, 2),))
        a, h, c = block(be, 4 * H), block(be, 4 * H), block(be, H)
        hy, cy, ws = be.lstm_cell(a, h, c, bias, None)
        out = [hy, cy, ws, *be.lstm_cell_backward(block(be, H), block(be, H), c, cy, ws)]
        g, h3, hx = block(be, 3 * H), block(be, 3 * H), block(be, H)
        hy, ws = be.gru_cell(g, h3, hx, None, be.view_index(bias, (slice(0, 3 * H),)))
        out += [hy, ws, *be.gru_cell_backward(block(be, H), hx, ws)]
        for act in ("tanh", "relu"):
            hy = be.rnn_cell(block(be, H), block(be, H), be.view_index(bias, (slice(0, H),)),
                             None, act)
            out += [hy, be.rnn_cell_backward(block(be, H), hy, act)]
        return [be.to_numpy(o) for o in out]

    want, got = calls(cpu), calls(cuda)
    assert len(got) == len(want) == 14
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- gradcheck on the device
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
def test_gradcheck_cells_on_cuda(kind):
    rng = np.random.default_rng(6)
    width = {"lstm": 4, "gru": 3}.get(kind, 1) * 2
    x, h, c = (G.tensor(rng.standard_normal(s), dtype=G.float64, device="cuda",
                        requires_grad=True) for s in ((2, 3), (2, 2), (2, 2)))
    w = [G.tensor(rng.uniform(-0.6, 0.6, s), dtype=G.float64, device="cuda", requires_grad=True)
         for s in ((width, 3), (width, 2), (width,), (width,))]
    if kind == "lstm":
        assert gradcheck(lambda x, h, c, *w: F.lstm_cell(x, (h, c), *w), [x, h, c] + w)
    else:
        fn = getattr(F, f"{kind}_cell")
        assert gradcheck(lambda x, h, *w: fn(x, h, *w), [x, h] + w)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_gradcheck_layer_on_cuda(mode):
    module = _LAYERS[mode](2, 2, bidirectional=True, dtype=G.float64).to("cuda")
    x = G.tensor(np.random.default_rng(7).standard_normal((3, 2, 2)), dtype=G.float64,
                 device="cuda", requires_grad=True)

    def fn(x):
        out, h = module(x)
        return (out,) + (tuple(h) if mode == "LSTM" else (h,))
    assert gradcheck(fn, [x])


# ---------------------------------------------------------------- errors
def _same_error(call, *arrays):
    """call(backend, *arrays) fails the same way with numpy arrays and device arrays."""
    errors = []
    for be in (cpu, cuda):
        with pytest.raises((TypeError, ValueError)) as info:
            call(be, *[None if a is None else be.from_numpy(a) for a in arrays])
        errors.append((info.type is TypeError or issubclass(info.type, TypeError),
                       str(info.value)))
    assert errors[0] == errors[1], errors
    return errors[0][1]


z = np.zeros


@pytest.mark.parametrize("call,arrays,message", [
    (lambda be, a, b, c: be.lstm_cell(a, b, c, None, None),
     (z((2, 8), np.int32), z((2, 8)), z((2, 2))), "operands have dtype int32, expected"),
    (lambda be, a, b, c: be.lstm_cell(a, b, c, None, None),
     (z((2, 8)), z((2, 7)), z((2, 2))), r"hidden_gates has shape \(2, 7\), expected \(2, 8\)"),
    (lambda be, a, b, c, d: be.lstm_cell(a, b, c, d, None),
     (z((2, 8)), z((2, 8)), z((2, 2)), z(3)), r"input_bias has shape \(3,\), expected \(8,\)"),
    (lambda be, a, b, c, d: be.gru_cell(a, b, c, None, d),
     (z((2, 6)), z((2, 6)), z((2, 2)), z(6, np.float32)), "hidden_bias has dtype float32"),
    (lambda be, a, b, c: be.gru_cell(a, b, c, None, None),
     (z((2, 6)), z((2, 6)), z((2, 2, 1))), "expected 2-D .batch, hidden. states"),
    (lambda be, a, b, c: be.gru_cell_backward(a, b, c),
     (z((2, 2)), z((2, 2)), z((2, 6))), r"workspace has shape \(2, 6\), expected \(2, 8\)"),
    (lambda be, a, b, c, d, e: be.lstm_cell_backward(a, b, c, d, e),
     (z((3, 2)), None, z((2, 2)), z((2, 2)), z((2, 8))), r"grad_hy has shape \(3, 2\)"),
    (lambda be, a, b: be.rnn_cell(a, b, None, None, "relu"),
     (z((2, 3)), z((2, 3), np.float32)), "rnn_relu_cell: hidden_gates has dtype float32"),
    (lambda be, a, b: be.rnn_cell_backward(a, b, "tanh"),
     (z((2, 4)), z((2, 3))), r"rnn_tanh_cell_backward: grad_hy has shape \(2, 4\)"),
], ids=range(9))
def test_backend_errors_match_cpu(call, arrays, message):
    assert pytest.importorskip("re").search(message, _same_error(call, *arrays))


def test_public_api_errors_match_cpu():
    for device in ("cpu", "cuda"):
        cell = nn.GRUCell(3, 4).to(device)
        with pytest.raises(RuntimeError) as info:
            cell(G.zeros(2, 3, device=device), G.zeros(2, 5, device=device))
        lstm = nn.LSTM(3, 4).to(device)
        with pytest.raises(RuntimeError) as info2:
            lstm(G.zeros(2, 1, 5, device=device))
        if device == "cpu":
            want = (str(info.value), str(info2.value))
        else:
            assert (str(info.value), str(info2.value)) == want
