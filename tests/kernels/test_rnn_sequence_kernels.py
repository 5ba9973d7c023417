"""Whole recurrent layers in one call (csrc/rnn.cpp rnn_sequence_forward / _backward,
through the cpu backend's rnn_sequence) against a plain step loop written with genesis's
general float64 ops (matmul, sigmoid, tanh, cat: none of them the fused recurrence), whose
gradients come from autograd.

Every case runs on each instruction-set copy and on 1 and 2 threads (conftest.py): odd
sizes, packed batches that shrink (and, reversed, grow), with and without initial
states and biases, float32 and float64.  A larger case crosses the sizes above which the
cell kernels and the GEMM split their work between threads.
"""
import numpy as np
import pytest
import genesis as G
from genesis import _C
from genesis.backend import cpu

pytestmark = pytest.mark.usefixtures("isa")
MODES = ["LSTM", "GRU", "RNN_TANH", "RNN_RELU"]
GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def reference(mode, gates, w_hh, b_ih, b_hh, h0, c0, batch_sizes, reverse):
    """(out, h_n, c_n) by a step loop over genesis tensors (c_n None unless LSTM)."""
    batch, hidden = batch_sizes[0], w_hh.shape[1]
    h = G.zeros(batch, hidden, dtype=gates.dtype) if h0 is None else h0
    c = G.zeros(batch, hidden, dtype=gates.dtype) if c0 is None else c0
    b_ih = 0 if b_ih is None else b_ih
    b_hh = 0 if b_hh is None else b_hh
    offsets = np.concatenate([[0], np.cumsum(batch_sizes)])
    outs = [None] * len(batch_sizes)
    for t in (reversed if reverse else iter)(range(len(batch_sizes))):
        n = batch_sizes[t]
        gi = gates[offsets[t]:offsets[t] + n] + b_ih
        gh = h[:n] @ w_hh.T + b_hh
        if mode == "LSTM":
            i, f, g, o = (gi + gh).chunk(4, 1)
            c_new = G.sigmoid(f) * c[:n] + G.sigmoid(i) * G.tanh(g)
            h_new = G.sigmoid(o) * G.tanh(c_new)
            c = G.cat([c_new, c[n:]])
        elif mode == "GRU":
            (ir, iz, in_), (hr, hz, hn) = gi.chunk(3, 1), gh.chunk(3, 1)
            r, z = G.sigmoid(ir + hr), G.sigmoid(iz + hz)
            cand = G.tanh(in_ + r * hn)
            h_new = (1 - z) * cand + z * h[:n]
        else:
            pre = gi + gh
            h_new = G.tanh(pre) if mode == "RNN_TANH" else G.relu(pre)
        h = G.cat([h_new, h[n:]])
        outs[t] = h_new
    return G.cat(outs), h, c if mode == "LSTM" else None


def run_case(mode, dtype, batch_sizes, hidden, reverse, initial, bias, seed=0):
    rng = np.random.default_rng(seed)
    n, batch, width = sum(batch_sizes), batch_sizes[0], GATES[mode] * hidden
    r = lambda *s: rng.standard_normal(s)  # noqa: E731
    arrays = {"gates": r(n, width), "w_hh": r(width, hidden) / np.sqrt(hidden),
              "b_ih": r(width) if bias else None, "b_hh": r(width) if bias else None,
              "h0": r(batch, hidden) if initial else None,
              "c0": r(batch, hidden) if initial and mode == "LSTM" else None}
    grads = {"out": r(n, hidden), "h_n": r(batch, hidden),
             "c_n": r(batch, hidden) if mode == "LSTM" else None}

    def cast(a):
        return None if a is None else a.astype(dtype)
    got = cpu.rnn_sequence(mode, *(cast(arrays[k]) for k in arrays), batch_sizes, reverse)
    out, h_n, c_n, saved = got
    back = cpu.rnn_sequence_backward(mode, cast(grads["out"]), cast(grads["h_n"]),
                                     cast(grads["c_n"]), cast(arrays["w_hh"]), out, saved,
                                     batch_sizes, reverse, True, bias, bias)

    leaves = {k: None if a is None else G.tensor(a, requires_grad=True)
              for k, a in arrays.items()}
    want = reference(mode, *leaves.values(), batch_sizes, reverse)
    loss = sum((w * G.tensor(grads[k])).sum()
               for k, w in zip(("out", "h_n", "c_n"), want) if w is not None)
    loss.backward()

    tol = dict(rtol=2e-4, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    for g, w in zip((out, h_n, c_n), want):
        if w is None:
            assert g is None
        else:
            assert g.dtype == dtype
            np.testing.assert_allclose(g, w.detach().numpy(), **tol)
    for g, leaf in zip(back, leaves.values()):
        if leaf is not None:
            assert g.dtype == dtype
            np.testing.assert_allclose(g, leaf.grad.numpy(), **tol)
    assert (back[2] is None, back[3] is None, back[5] is None) == \
        (not bias, not bias, mode != "LSTM")
    if bias:
        assert not np.shares_memory(back[2], back[3])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("batch_sizes", [[3, 3, 3, 3], [7, 7, 5, 2, 2, 1], [1]],
                         ids=["padded", "packed", "one"])
def test_sequence_matches_step_loop(mode, dtype, reverse, batch_sizes):
    run_case(mode, dtype, batch_sizes, 5, reverse, initial=True, bias=True)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("initial,bias", [(False, False), (True, False), (False, True)])
def test_absent_initial_states_and_biases(mode, initial, bias):
    run_case(mode, np.float64, [6, 4, 4, 1], 3, True, initial, bias, seed=1)
    run_case(mode, np.float64, [6, 4, 4, 1], 3, False, initial, bias, seed=2)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_large_rows_split_between_threads(mode):
    """B * H above the cell kernels' threshold, GEMMs above the GEMM's."""
    run_case(mode, np.float32, [67, 67, 40, 3], 131, False, True, True, seed=3)
    run_case(mode, np.float64, [67, 67, 40, 3], 131, True, True, True, seed=4)


@pytest.mark.parametrize("dtype,hidden", [(np.float32, 128), (np.float64, 64)], ids=["f32", "f64"])
def test_weight_rows_of_2_kib(dtype, hidden):
    """4H values of 2 KiB: the copy of W_hh^T gets padded rows (read in place by the GEMM)."""
    run_case("LSTM", dtype, [20, 20, 11], hidden, False, True, True, seed=6)


def test_thread_count_gives_the_same_bits():
    rng = np.random.default_rng(5)
    sizes, hidden = [40, 33, 33, 9], 130
    n = sum(sizes)
    args = (rng.standard_normal((n, 4 * hidden)).astype(np.float32),
            (rng.standard_normal((4 * hidden, hidden)) / 12).astype(np.float32))
    before = _C.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            _C.set_num_threads(threads)
            out, h_n, c_n, saved = cpu.rnn_sequence("LSTM", *args, None, None, None, None,
                                                    sizes, False)
            back = cpu.rnn_sequence_backward("LSTM", out, h_n, c_n, args[1], out, saved, sizes,
                                             False, True, True, True)
            results.append([out, h_n, c_n, *saved, *back])
    finally:
        _C.set_num_threads(before)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- errors
def _lstm_args(n=6, batch=3, hidden=2, dtype=np.float64):
    z = lambda *s: np.zeros(s, dtype)  # noqa: E731
    return z(n, 4 * hidden), z(4 * hidden, hidden)


@pytest.mark.parametrize("sizes,message", [
    ([], "expected at least one step"),
    ([2, 3, 1], "batch_sizes must be positive and non-increasing, got 3 at step 1"),
    ([3, 0, 3], "batch_sizes must be positive and non-increasing, got 0 at step 1"),
    ([3, 2], r"batch_sizes sum to 5 rows, the sequence has 6"),
])
def test_bad_batch_sizes(sizes, message):
    gates, w_hh = _lstm_args()
    with pytest.raises(ValueError, match=message):
        cpu.rnn_sequence("LSTM", gates, w_hh, None, None, None, None, sizes, False)


def test_bad_operands_raise_clear_errors():
    gates, w_hh = _lstm_args()
    sizes = [3, 2, 1]
    with pytest.raises(ValueError, match=r"w_hh has shape \(9, 2\), expected \(8, 2\)"):
        cpu.rnn_sequence("LSTM", gates, np.zeros((9, 2)), None, None, None, None, sizes, False)
    with pytest.raises(TypeError, match="w_hh has dtype float32, expected float64"):
        cpu.rnn_sequence("LSTM", gates, w_hh.astype(np.float32), None, None, None, None, sizes,
                         False)
    with pytest.raises(ValueError, match=r"input_gates has shape \(6, 8\), expected \(6, 6\)"):
        cpu.rnn_sequence("GRU", gates, np.zeros((6, 2)), None, None, None, None, sizes, False)
    with pytest.raises(ValueError, match=r"input_bias has shape \(7,\), expected \(8,\)"):
        cpu.rnn_sequence("LSTM", gates, w_hh, np.zeros(7), None, None, None, sizes, False)
    with pytest.raises(ValueError, match=r"h0 has shape \(2, 2\), expected \(3, 2\)"):
        cpu.rnn_sequence("LSTM", gates, w_hh, None, None, np.zeros((2, 2)), None, sizes, False)
    with pytest.raises(ValueError, match="c0 is for LSTM only"):
        cpu.rnn_sequence("RNN_TANH", np.zeros((6, 2)), np.zeros((2, 2)), None, None, None,
                         np.zeros((3, 2)), sizes, False)
    with pytest.raises(TypeError, match="expected float32 or float64"):
        cpu.rnn_sequence("LSTM", gates.astype(np.int64), w_hh.astype(np.int64), None, None,
                         None, None, sizes, False)
    with pytest.raises(ValueError, match="unknown mode 'lstm'"):
        cpu.rnn_sequence("lstm", gates, w_hh, None, None, None, None, sizes, False)


def test_bad_backward_operands_raise_clear_errors():
    gates, w_hh = _lstm_args()
    sizes = [3, 2, 1]
    out, h_n, c_n, saved = cpu.rnn_sequence("LSTM", gates, w_hh, None, None, None, None, sizes,
                                            False)
    with pytest.raises(ValueError, match=r"grad_h_n has shape \(2, 2\), expected \(3, 2\)"):
        cpu.rnn_sequence_backward("LSTM", out, h_n[:2], c_n, w_hh, out, saved, sizes, False,
                                  True, False, False)
    with pytest.raises(ValueError, match="grad_c_n is required"):
        cpu.rnn_sequence_backward("LSTM", out, h_n, None, w_hh, out, saved, sizes, False, True,
                                  False, False)
    with pytest.raises(ValueError, match="workspace is required"):
        cpu.rnn_sequence_backward("LSTM", out, h_n, c_n, w_hh, out, saved[:3] + (None,), sizes,
                                  False, True, False, False)
    with pytest.raises(ValueError, match=r"grad_h_n has shape \(3, 2\), expected \(4, 2\)"):
        cpu.rnn_sequence_backward("LSTM", out, h_n, c_n, w_hh, out, saved, [4, 1, 1], False,
                                  True, False, False)
    grad_w = np.zeros((2, 8)).T  # w_hh's shape, not contiguous
    with pytest.raises(ValueError, match="grad_w_hh must be a contiguous array"):
        _C.rnn_sequence_backward(_C.RNN_MODES["LSTM"], w_hh, sizes, False, out, h_n, c_n, None,
                                 *saved, np.empty((6, 8)), None, np.empty((3, 2)),
                                 np.empty((3, 2)), grad_w, None, None)
    with pytest.raises(ValueError, match=r"grad_input_bias has shape \(7,\), expected \(8,\)"):
        _C.rnn_sequence_backward(_C.RNN_MODES["LSTM"], w_hh, sizes, False, out, h_n, c_n, None,
                                 *saved, np.empty((6, 8)), None, np.empty((3, 2)),
                                 np.empty((3, 2)), None, np.empty(7), None)
    with pytest.raises(ValueError, match="output array is read-only"):
        frozen = np.empty((3, 2))
        frozen.flags.writeable = False
        _C.rnn_sequence_backward(_C.RNN_MODES["GRU"], np.zeros((6, 2)), sizes, False, out, h_n,
                                 None, None, saved[0], None, None, saved[3], np.empty((6, 6)),
                                 np.empty((6, 6)), frozen, None, None, None, None)
    with pytest.raises(ValueError, match=r"states have 2 rows, expected batch_sizes\[0\] = 3"):
        _C.rnn_sequence_forward(0, gates, w_hh, None, None, None, None, sizes, False, out,
                                h_n[:2], c_n, *saved)
    with pytest.raises(ValueError, match="unknown rnn_sequence op 7"):
        _C.rnn_sequence_forward(7, gates, w_hh, None, None, None, None, sizes, False, out, h_n,
                                c_n, *saved)
