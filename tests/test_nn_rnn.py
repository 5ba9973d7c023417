"""Recurrent layers: fused cells, RNN/LSTM/GRU, their cells and packed sequences.

The fused cell kernels against slow references composed of genesis ops (forward and
gradients, hypothesis-drawn sizes), gradcheck of every layer and cell in float64,
parity with torch.nn (outputs and gradients given identical weights: layers, directions,
batch_first, biases, initial states, packed sequences, unbatched inputs, cells), the
packing utilities against torch.nn.utils.rnn, 1 and 2 threads, every instruction-set
copy, and error messages.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import genesis as G
import genesis.nn.functional as F
from genesis import _C, nn
from genesis.autograd import gradcheck
from genesis.backend import cpu
from genesis.nn.functional import rnn as R
from genesis.nn.utils.rnn import (PackedSequence, invert_permutation, pack_padded_sequence,
                                  pack_sequence, pad_packed_sequence, pad_sequence)

FEW = settings(max_examples=max(2, settings().max_examples // 2))
_GATES = {"lstm": 4, "gru": 3, "tanh": 1, "relu": 1}


def _t(a, dtype=G.float64, requires_grad=False):
    return G.tensor(np.asarray(a), dtype=dtype, requires_grad=requires_grad)


def _np(t):
    return t.detach().numpy()


def _close(a, b, tol=1e-10):
    np.testing.assert_allclose(_np(a) if isinstance(a, G.Tensor) else a,
                               _np(b) if isinstance(b, G.Tensor) else b, rtol=tol, atol=tol)


def _torch():
    return pytest.importorskip("torch")


# ---------------------------------------------------------------- composed references
def _pre(gi, gh, bi, bh):
    out = gi + gh
    for b in (bi, bh):
        if b is not None:
            out = out + b
    return out


def ref_lstm_cell(gi, gh, cx, bi, bh):
    i, f, g, o = _pre(gi, gh, bi, bh).chunk(4, 1)
    cy = f.sigmoid() * cx + i.sigmoid() * g.tanh()
    return o.sigmoid() * cy.tanh(), cy


def ref_gru_cell(gi, gh, hx, bi, bh):
    if bi is not None:
        gi = gi + bi
    if bh is not None:
        gh = gh + bh
    ir, iz, in_ = gi.chunk(3, 1)
    hr, hz, hn = gh.chunk(3, 1)
    r, z = (ir + hr).sigmoid(), (iz + hz).sigmoid()
    n = (in_ + r * hn).tanh()
    return (1 - z) * n + z * hx


def ref_rnn_cell(gi, gh, bi, bh, nonlinearity):
    pre = _pre(gi, gh, bi, bh)
    return pre.tanh() if nonlinearity == "tanh" else pre.relu()


def _fused(kind, gi, gh, state, bi, bh):
    if kind == "lstm":
        return R.FusedLSTMCell.apply(gi, gh, state, bi, bh)
    if kind == "gru":
        return R.FusedGRUCell.apply(gi, gh, state, bi, bh)
    return R.FusedRNNCell.apply(gi, gh, bi, bh, kind)


def _reference(kind, gi, gh, state, bi, bh):
    if kind == "lstm":
        return ref_lstm_cell(gi, gh, state, bi, bh)
    if kind == "gru":
        return ref_gru_cell(gi, gh, state, bi, bh)
    return ref_rnn_cell(gi, gh, bi, bh, kind)


def _cell_inputs(rng, kind, batch, hidden, bias, dtype=G.float64):
    width = _GATES[kind] * hidden
    gi = _t(rng.standard_normal((batch, width)) * 2, dtype, True)
    gh = _t(rng.standard_normal((batch, width)) * 2, dtype, True)
    state = _t(rng.standard_normal((batch, hidden)), dtype, True)
    bi = _t(rng.standard_normal(width), dtype, True) if bias else None
    bh = _t(rng.standard_normal(width), dtype, True) if bias else None
    return gi, gh, state, bi, bh


def _outputs(out):
    return list(out) if isinstance(out, tuple) else [out]


@FEW
@given(data=st.data())
@pytest.mark.parametrize("kind", ["lstm", "gru", "tanh", "relu"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fused_cells_match_composed_references(kind, dtype, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    batch, hidden = data.draw(st.integers(1, 5), label="B"), data.draw(st.integers(1, 6), label="H")
    bias = data.draw(st.booleans(), label="bias")
    dt, tol = (G.float64, 1e-10) if dtype == "float64" else (G.float32, 3e-5)
    inputs = _cell_inputs(rng, kind, batch, hidden, bias, dt)
    if kind in ("tanh", "relu"):
        inputs = inputs[:2] + (None,) + inputs[3:]
    fused = _outputs(_fused(kind, *inputs))
    ref = _outputs(_reference(kind, *inputs))
    for a, b in zip(fused, ref):
        _close(a, b, tol)
    wrt = [x for x in inputs if x is not None]
    grads = [_t(rng.standard_normal(tuple(o.shape)), dt) for o in fused]
    if len(fused) == 2 and data.draw(st.booleans(), label="only h used"):
        fused, ref, grads = fused[:1], ref[:1], grads[:1]
    got = G.autograd.grad(fused, wrt, grads)
    want = G.autograd.grad(ref, wrt, grads)
    for a, b in zip(got, want):
        _close(a, b, 10 * tol)


def test_fused_cells_give_separate_bias_gradients():
    rng = np.random.default_rng(0)
    for kind in _GATES:
        gi, gh, state, bi, bh = _cell_inputs(rng, kind, 3, 4, True)
        out = _outputs(_fused(kind, gi, gh, None if kind in ("tanh", "relu") else state, bi, bh))
        sum(o.sum() for o in out).backward()
        assert not np.shares_memory(bi.grad.numpy(), bh.grad.numpy())
        assert not np.shares_memory(gi.grad.numpy(), gh.grad.numpy())


def _ref_layer(kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse):
    """One direction of one layer by looping the composed reference cells."""
    gates = x @ w_ih.t()
    h, c, outs = h0, c0, []
    steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    for t in steps:
        gh = h @ w_hh.t()
        if kind == "lstm":
            h, c = ref_lstm_cell(gates[t], gh, c, b_ih, b_hh)
        elif kind == "gru":
            h = ref_gru_cell(gates[t], gh, h, b_ih, b_hh)
        else:
            h = ref_rnn_cell(gates[t], gh, b_ih, b_hh, kind)
        outs.append(h)
    if reverse:
        outs = outs[::-1]
    return G.stack(outs), h, c


@pytest.mark.parametrize("kind", ["lstm", "gru", "tanh", "relu"])
@pytest.mark.parametrize("reverse", [False, True])
def test_layer_matches_loop_of_reference_cells(kind, reverse):
    rng = np.random.default_rng(1)
    steps, batch, size, hidden = 5, 3, 4, 6
    mode = {"lstm": "LSTM", "gru": "GRU", "tanh": "RNN_TANH", "relu": "RNN_RELU"}[kind]
    width = _GATES[kind] * hidden
    x = _t(rng.standard_normal((steps, batch, size)), requires_grad=True)
    h0 = _t(rng.standard_normal((batch, hidden)), requires_grad=True)
    c0 = _t(rng.standard_normal((batch, hidden)), requires_grad=True) if kind == "lstm" else None
    w = [_t(rng.standard_normal(s) * 0.5, requires_grad=True)
         for s in ((width, size), (width, hidden), (width,), (width,))]
    gates = x.reshape(steps * batch, size) @ w[0].t()
    got = R._Recurrence.apply(gates, w[1], w[2], w[3], h0, c0, mode, [batch] * steps, reverse)
    out, h_n, c_n = _ref_layer(kind, x, h0, c0, *w, reverse)
    want = [out.reshape(steps * batch, hidden), h_n] + ([c_n] if kind == "lstm" else [])
    for a, b in zip(got, want):
        _close(a, b)
    grads = [_t(rng.standard_normal(tuple(o.shape))) for o in got]
    wrt = [x, h0] + w + ([c0] if c0 is not None else [])
    for a, b in zip(G.autograd.grad(list(got), wrt, grads),
                    G.autograd.grad(want, wrt, grads)):
        _close(a, b, 1e-9)


# ---------------------------------------------------------------- gradcheck
def _weights(rng, mode, size, hidden, layers, directions, bias):
    width = {"LSTM": 4, "GRU": 3}.get(mode, 1) * hidden
    out = []
    for layer in range(layers):
        for _ in range(directions):
            inp = size if layer == 0 else hidden * directions
            shapes = [(width, inp), (width, hidden)] + ([(width,), (width,)] if bias else [])
            out += [_t(rng.uniform(-0.6, 0.6, s), requires_grad=True) for s in shapes]
    return out


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH", "RNN_RELU"])
def test_gradcheck_layers(mode):
    """Both directions of a packed batch (sequences of 3, 2 and 2 steps) with initial
    states; stacking layers is composition, covered by the parity tests."""
    rng = np.random.default_rng(2)
    directions, size, hidden = 2, 2, 2
    batch_sizes = [3, 3, 1]
    flat = _weights(rng, mode, size, hidden, 1, directions, bias=True)
    data = _t(rng.standard_normal((sum(batch_sizes), size)), requires_grad=True)
    states = [_t(rng.standard_normal((directions, batch_sizes[0], hidden)), requires_grad=True)
              for _ in range(2 if mode == "LSTM" else 1)]

    def fn(data, *rest):
        ws = rest[:len(flat)]
        groups = [tuple(ws[i:i + 4]) for i in range(0, len(ws), 4)]
        h0 = rest[len(flat)]
        c0 = rest[len(flat) + 1] if mode == "LSTM" else None
        out, h_n, c_n = R.rnn_layers(mode, data, batch_sizes, h0, c0, groups, 1, True, 0.0,
                                     False)
        return (out, h_n) + ((c_n,) if c_n is not None else ())
    assert gradcheck(fn, [data] + flat + states)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
def test_gradcheck_cells(kind):
    rng = np.random.default_rng(3)
    size, hidden, batch = 3, 2, 2
    width = _GATES[kind.replace("rnn_", "")] * hidden
    x = _t(rng.standard_normal((batch, size)), requires_grad=True)
    h = _t(rng.standard_normal((batch, hidden)), requires_grad=True)
    c = _t(rng.standard_normal((batch, hidden)), requires_grad=True)
    w = [_t(rng.uniform(-0.6, 0.6, s), requires_grad=True)
         for s in ((width, size), (width, hidden), (width,), (width,))]
    if kind == "lstm":
        assert gradcheck(lambda x, h, c, *w: F.lstm_cell(x, (h, c), *w), [x, h, c] + w)
    else:
        fn = getattr(F, f"{kind}_cell")
        assert gradcheck(lambda x, h, *w: fn(x, h, *w), [x, h] + w)


def test_gradcheck_modules_through_packing():
    rng = np.random.default_rng(4)
    lstm = nn.LSTM(2, 2, bidirectional=True, dtype=G.float64)
    x = _t(rng.standard_normal((3, 3, 2)), requires_grad=True)

    def fn(x):
        packed = pack_padded_sequence(x, [2, 3, 1], enforce_sorted=False)
        out, (h, c) = lstm(packed)
        return pad_packed_sequence(out, padding_value=0.5)[0], h, c
    assert gradcheck(fn, [x])


def test_double_backward_is_refused():
    rng = np.random.default_rng(5)
    x = _t(rng.standard_normal((3, 2, 4)), requires_grad=True)
    for module, name in ((nn.LSTM(4, 3), "LSTM"), (nn.GRU(4, 3), "GRU"), (nn.RNN(4, 3), "RNN")):
        out = module.double()(x)[0]
        with pytest.raises(RuntimeError, match=f"{name}: double backward is not supported"):
            G.autograd.grad((out * out).sum(), x, create_graph=True)
    cell = nn.LSTMCell(4, 3).double()
    with pytest.raises(RuntimeError, match="lstm_cell: double backward is not supported"):
        G.autograd.grad(cell(x[0])[0].sum(), x, create_graph=True)
    (g,) = G.autograd.grad(nn.GRUCell(4, 3).double()(x[0]).sum(), x)  # first order works
    assert tuple(g.shape) == (3, 2, 4)


# ---------------------------------------------------------------- parity with torch
def _twins(torch, kind, size, hidden, dtype="float64", **kw):
    """A torch module and the genesis module of the same class holding its weights."""
    classes = {"LSTM": (nn.LSTM, torch.nn.LSTM), "GRU": (nn.GRU, torch.nn.GRU),
               "RNN": (nn.RNN, torch.nn.RNN), "LSTMCell": (nn.LSTMCell, torch.nn.LSTMCell),
               "GRUCell": (nn.GRUCell, torch.nn.GRUCell), "RNNCell": (nn.RNNCell, torch.nn.RNNCell)}
    ours, theirs = classes[kind]
    torch.manual_seed(0)
    t = theirs(size, hidden, **kw).to(getattr(torch, dtype))
    g = ours(size, hidden, dtype=getattr(G, dtype), **kw)
    t_state = t.state_dict()
    g_state = g.state_dict()
    assert list(g_state) == list(t_state)
    assert all(tuple(g_state[k].shape) == tuple(v.shape) for k, v in t_state.items())
    g.load_state_dict({k: G.from_numpy(v.detach().numpy().copy()) for k, v in t_state.items()})
    return t, g


def _pair(torch, a, dtype="float64"):
    return (torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=True),
            G.tensor(a, dtype=getattr(G, dtype), requires_grad=True))


def _states(torch, rng, shape, pair):
    """Random initial states for both frameworks: (torch hx, genesis hx, torch leaves,
    genesis leaves), hx a pair (h, c) when `pair` (LSTM) and one tensor otherwise."""
    pairs = [_pair(torch, rng.standard_normal(shape)) for _ in range(2 if pair else 1)]
    t_leaves, g_leaves = [p[0] for p in pairs], [p[1] for p in pairs]
    if pair:
        return tuple(t_leaves), tuple(g_leaves), t_leaves, g_leaves
    return t_leaves[0], g_leaves[0], t_leaves, g_leaves


def _flatten(out):
    if isinstance(out, (tuple, list)):
        return [y for x in out for y in _flatten(x)]
    return [out]


def _compare(torch, t_mod, g_mod, t_out, g_out, t_leaves, g_leaves, tol, seed=0):
    """Outputs agree, and so do the gradients of a random weighting of all of them."""
    t_flat, g_flat = _flatten(t_out), _flatten(g_out)
    assert len(t_flat) == len(g_flat)
    rng = np.random.default_rng(seed)
    t_loss = g_loss = 0
    for a, b in zip(t_flat, g_flat):
        assert tuple(a.shape) == tuple(b.shape)
        _close(a.detach().numpy(), b, tol)
        w = rng.standard_normal(tuple(a.shape))
        t_loss = t_loss + (a * torch.tensor(w, dtype=a.dtype)).sum()
        g_loss = g_loss + (b * G.tensor(w, dtype=b.dtype)).sum()
    t_loss.backward()
    g_loss.backward()
    for a, b in zip(t_leaves, g_leaves):
        _close(a.grad.numpy(), b.grad, tol)
    g_params = dict(g_mod.named_parameters())
    for name, p in t_mod.named_parameters():
        _close(p.grad.numpy(), g_params[name].grad, tol)


_LAYER_OPTIONS = [
    dict(),
    dict(num_layers=2),
    dict(bidirectional=True),
    dict(num_layers=3, bidirectional=True, batch_first=True),
    dict(bias=False, batch_first=True),
    dict(num_layers=2, bias=False, bidirectional=True),
]


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN", "RNN_relu"])
@pytest.mark.parametrize("options", _LAYER_OPTIONS, ids=lambda o: ",".join(o) or "default")
@pytest.mark.parametrize("initial", [False, True], ids=["zero_state", "given_state"])
def test_layers_match_torch(kind, options, initial):
    torch = _torch()
    kw = dict(options)
    if kind == "RNN_relu":
        kind, kw["nonlinearity"] = "RNN", "relu"
    t, g = _twins(torch, kind, 4, 5, **kw)
    rng = np.random.default_rng(6)
    steps, batch = 4, 3
    shape = (batch, steps, 4) if kw.get("batch_first") else (steps, batch, 4)
    tx, gx = _pair(torch, rng.standard_normal(shape))
    states = (kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1), batch, 5)
    t_args, g_args, t_leaves, g_leaves = [tx], [gx], [tx], [gx]
    if initial:
        t_hx, g_hx, t_more, g_more = _states(torch, rng, states, kind == "LSTM")
        t_args.append(t_hx)
        g_args.append(g_hx)
        t_leaves += t_more
        g_leaves += g_more
    _compare(torch, t, g, t(*t_args), g(*g_args), t_leaves, g_leaves, 1e-10)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_float32_layers_match_torch(kind):
    torch = _torch()
    t, g = _twins(torch, kind, 8, 16, dtype="float32", num_layers=2, bidirectional=True)
    tx, gx = _pair(torch, np.random.default_rng(7).standard_normal((6, 4, 8)), "float32")
    _compare(torch, t, g, t(tx), g(gx), [tx], [gx], 2e-5)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("options", [dict(), dict(num_layers=2, bidirectional=True,
                                                  batch_first=True)],
                         ids=["default", "2layers,bidirectional,batch_first"])
def test_packed_sequences_match_torch(kind, enforce_sorted, options):
    torch = _torch()
    t_pack, t_pad = torch.nn.utils.rnn.pack_padded_sequence, torch.nn.utils.rnn.pad_packed_sequence
    t, g = _twins(torch, kind, 3, 4, **options)
    lengths = [5, 4, 4, 2, 1] if enforce_sorted else [2, 5, 1, 4, 4]
    bf = options.get("batch_first", False)
    rng = np.random.default_rng(8)
    tx, gx = _pair(torch, rng.standard_normal((5, 5, 3)))
    states = (options.get("num_layers", 1) * (2 if options.get("bidirectional") else 1), 5, 4)
    t_hx, g_hx, t_leaves, g_leaves = _states(torch, rng, states, kind == "LSTM")
    tp = t_pack(tx, torch.tensor(lengths), batch_first=bf, enforce_sorted=enforce_sorted)
    gp = pack_padded_sequence(gx, lengths, batch_first=bf, enforce_sorted=enforce_sorted)
    assert gp.batch_sizes.tolist() == tp.batch_sizes.tolist()
    t_out, t_h = t(tp, t_hx)
    g_out, g_h = g(gp, g_hx)
    assert isinstance(g_out, PackedSequence) and g_out.batch_sizes is gp.batch_sizes
    (t_pad_out, t_len), (g_pad_out, g_len) = t_pad(t_out, batch_first=bf), \
        pad_packed_sequence(g_out, batch_first=bf)
    assert g_len.tolist() == t_len.tolist() == lengths
    _compare(torch, t, g, (t_pad_out, t_h), (g_pad_out, g_h), [tx] + t_leaves,
             [gx] + g_leaves, 1e-10)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_unbatched_input_matches_torch(kind):
    torch = _torch()
    t, g = _twins(torch, kind, 3, 4, num_layers=2)
    rng = np.random.default_rng(9)
    tx, gx = _pair(torch, rng.standard_normal((5, 3)))
    t_hx, g_hx, t_leaves, g_leaves = _states(torch, rng, (2, 4), kind == "LSTM")
    _compare(torch, t, g, t(tx, t_hx), g(gx, g_hx), [tx] + t_leaves, [gx] + g_leaves, 1e-10)


@pytest.mark.parametrize("kind, kw", [("LSTMCell", {}), ("GRUCell", {}), ("RNNCell", {}),
                                      ("RNNCell", dict(nonlinearity="relu")),
                                      ("LSTMCell", dict(bias=False)),
                                      ("GRUCell", dict(bias=False))],
                         ids=["lstm", "gru", "rnn_tanh", "rnn_relu", "lstm_nobias", "gru_nobias"])
@pytest.mark.parametrize("form", ["batched", "unbatched", "no_state"])
def test_cells_match_torch(kind, kw, form):
    torch = _torch()
    t, g = _twins(torch, kind, 3, 5, **kw)
    rng = np.random.default_rng(10)
    lead = () if form == "unbatched" else (4,)
    tx, gx = _pair(torch, rng.standard_normal(lead + (3,)))
    t_leaves, g_leaves = [tx], [gx]
    if form == "no_state":
        t_out, g_out = t(tx), g(gx)
    else:
        t_hx, g_hx, t_more, g_more = _states(torch, rng, lead + (5,), kind == "LSTMCell")
        t_out, g_out = t(tx, t_hx), g(gx, g_hx)
        t_leaves += t_more
        g_leaves += g_more
    _compare(torch, t, g, t_out, g_out, t_leaves, g_leaves, 1e-10)


def test_parameters_names_shapes_and_init():
    torch = _torch()
    g = nn.LSTM(10, 20, num_layers=2, bidirectional=True)
    t = torch.nn.LSTM(10, 20, num_layers=2, bidirectional=True)
    assert [(n, tuple(p.shape)) for n, p in g.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in t.named_parameters()]
    bound = 1 / np.sqrt(20)
    values = np.concatenate([p.detach().numpy().ravel() for p in g.parameters()])
    assert values.min() >= -bound and values.max() <= bound and values.std() > bound / 2
    assert g.all_weights[3][1] is g.weight_hh_l1_reverse
    assert repr(g) == "LSTM(10, 20, num_layers=2, bidirectional=True)"
    assert repr(nn.RNN(3, 4, nonlinearity="relu", bias=False, batch_first=True)) == \
        "RNN(3, 4, nonlinearity='relu', bias=False, batch_first=True)"
    assert repr(nn.GRUCell(3, 4, bias=False)) == "GRUCell(3, 4, bias=False)"
    cell = nn.GRUCell(3, 4)
    assert [n for n, _ in cell.named_parameters()] == ["weight_ih", "weight_hh", "bias_ih",
                                                       "bias_hh"]
    assert tuple(cell.weight_ih.shape) == (12, 3)
    g.flatten_parameters()  # accepted for PyTorch compatibility


# ---------------------------------------------------------------- dropout between layers
def test_dropout_between_layers():
    rng = np.random.default_rng(11)
    x = _t(rng.standard_normal((5, 3, 4)), G.float32)
    model = nn.GRU(4, 6, num_layers=2, dropout=0.5)
    G.manual_seed(1)
    a = model(x)[0]
    G.manual_seed(1)
    b = model(x)[0]
    _close(a, b, 0)
    c = model(x)[0]
    assert not np.allclose(_np(a), _np(c))
    model.eval()
    plain = nn.GRU(4, 6, num_layers=2)
    plain.load_state_dict(model.state_dict())
    _close(model(x)[0], plain(x)[0], 0)
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        nn.LSTM(4, 6, dropout=0.2)


# ---------------------------------------------------------------- packing utilities
def test_packing_utilities_match_torch():
    torch = _torch()
    tu = torch.nn.utils.rnn
    rng = np.random.default_rng(12)
    seqs = [rng.standard_normal((n, 2)) for n in (3, 5, 1, 5)]
    for bf in (False, True):
        for side in ("right", "left"):
            _close(tu.pad_sequence([torch.tensor(s) for s in seqs], batch_first=bf,
                                   padding_value=-1.0, padding_side=side).numpy(),
                   pad_sequence([_t(s) for s in seqs], batch_first=bf, padding_value=-1.0,
                                padding_side=side), 0)
    tp = tu.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=False)
    gp = pack_sequence([_t(s) for s in seqs], enforce_sorted=False)
    _close(tp.data.numpy(), gp.data, 0)
    assert gp.batch_sizes.tolist() == tp.batch_sizes.tolist() == [4, 3, 3, 2, 2]
    assert gp.sorted_indices.tolist() == tp.sorted_indices.tolist()
    assert gp.unsorted_indices.tolist() == tp.unsorted_indices.tolist()
    for bf in (False, True):
        t_pad, t_len = tu.pad_packed_sequence(tp, batch_first=bf, padding_value=7.0,
                                              total_length=6)
        g_pad, g_len = pad_packed_sequence(gp, batch_first=bf, padding_value=7.0,
                                           total_length=6)
        _close(t_pad.numpy(), g_pad, 0)
        assert g_len.tolist() == t_len.tolist() == [3, 5, 1, 5]
    assert invert_permutation(G.tensor([2, 0, 1])).tolist() == [1, 2, 0]
    assert invert_permutation(None) is None
    assert PackedSequence(gp.data, gp.batch_sizes, gp.sorted_indices).unsorted_indices.tolist() \
        == gp.unsorted_indices.tolist()
    moved = gp.to(G.float32)
    assert moved.data.dtype is G.float32 and moved.batch_sizes is gp.batch_sizes
    assert gp.to(G.float64) is gp and not gp.is_cuda


def test_gradcheck_packing():
    rng = np.random.default_rng(13)
    x = _t(rng.standard_normal((4, 3, 2)), requires_grad=True)
    assert gradcheck(lambda x: pad_packed_sequence(
        pack_padded_sequence(x, [2, 4, 1], batch_first=False, enforce_sorted=False),
        batch_first=True)[0], [x])
    seqs = [_t(rng.standard_normal((n, 2)), requires_grad=True) for n in (2, 3)]
    assert gradcheck(lambda a, b: pack_sequence([a, b], enforce_sorted=False).data, seqs)


# ---------------------------------------------------------------- threads and instruction sets
def _run_kernels(dtype):
    """Every cell kernel, forward and backward, on 64 x 160 rows (several threads)."""
    rng = np.random.default_rng(14)
    b, h = 64, 160
    r = lambda *s: (rng.standard_normal(s) * 2).astype(dtype)  # noqa: E731
    out = []
    hy, cy, ws = cpu.lstm_cell(r(b, 4 * h), r(b, 4 * h), r(b, h), r(4 * h), None)
    out += [hy, cy, ws, *cpu.lstm_cell_backward(r(b, h), r(b, h), r(b, h), cy, ws)]
    hy, ws = cpu.gru_cell(r(b, 3 * h), r(b, 3 * h), r(b, h), r(3 * h), r(3 * h))
    out += [hy, ws, *cpu.gru_cell_backward(r(b, h), r(b, h), ws)]
    for nl in ("tanh", "relu"):
        hy = cpu.rnn_cell(r(b, h), r(b, h), None, r(h), nl)
        out += [hy, cpu.rnn_cell_backward(r(b, h), hy, nl)]
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_do_not_depend_on_thread_count(dtype):
    before = G.get_num_threads()
    try:
        G.set_num_threads(1)
        one = _run_kernels(dtype)
        G.set_num_threads(2)
        two = _run_kernels(dtype)
    finally:
        G.set_num_threads(before)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def _isas():
    names = ("generic", "avx2", "avx512")
    return names[:names.index(_C.best_isa()) + 1]


@pytest.mark.parametrize("isa", _isas())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_instruction_set_copy_agrees(isa, dtype):
    want = _run_kernels(dtype)
    try:
        _C.set_isa(isa)
        got = _run_kernels(dtype)
    finally:
        _C.set_isa("best")
    tol = 1e-6 if dtype == np.float32 else 1e-13
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_strided_rows_are_read_in_place():
    rng = np.random.default_rng(15)
    big = rng.standard_normal((6, 20))
    gates, hidden_gates, cx = big[:, :8], big[:, 8:16], big[:, 16:18]  # row stride 20
    hy, cy, _ = cpu.lstm_cell(gates, hidden_gates, cx, None, None)
    hy2, cy2, _ = cpu.lstm_cell(gates.copy(), hidden_gates.copy(), cx.copy(), None, None)
    np.testing.assert_array_equal(hy, hy2)
    np.testing.assert_array_equal(cy, cy2)


# ---------------------------------------------------------------- errors
def test_layer_errors():
    lstm, gru = nn.LSTM(4, 3, num_layers=2), nn.GRU(4, 3)
    x = G.ones(5, 2, 4)
    with pytest.raises(RuntimeError, match=r"LSTM: input.size\(-1\) must be equal to "
                                           r"input_size. Expected 4, got 6"):
        lstm(G.ones(5, 2, 6))
    with pytest.raises(RuntimeError, match=r"GRU: Expected hidden size \(1, 2, 3\), got "
                                           r"\[2, 2, 3\]"):
        gru(x, G.zeros(2, 2, 3))
    with pytest.raises(RuntimeError, match=r"LSTM: Expected hidden\[1\] size \(2, 2, 3\), "
                                           r"got \[2, 2, 4\]"):
        lstm(x, (G.zeros(2, 2, 3), G.zeros(2, 2, 4)))
    with pytest.raises(TypeError, match=r"LSTM: hx must be a tuple \(h_0, c_0\)"):
        lstm(x, G.zeros(2, 2, 3))
    with pytest.raises(ValueError, match="GRU: Expected input to be 2D or 3D, got 4D"):
        gru(G.ones(1, 5, 2, 4))
    with pytest.raises(RuntimeError, match="GRU: for unbatched 2-D input, hidden should also "
                                           "be 2-D but got 3-D"):
        gru(G.ones(5, 4), G.zeros(1, 1, 3))
    with pytest.raises(RuntimeError, match="LSTM: input has dtype .*float64 but the parameters "
                                           "have dtype .*float32"):
        lstm(G.ones(5, 2, 4, dtype=G.float64))
    with pytest.raises(RuntimeError, match="at least one step"):
        gru(G.ones(0, 2, 4))


def test_constructor_errors():
    with pytest.raises(ValueError, match="dropout should be a number in range"):
        nn.GRU(3, 4, num_layers=2, dropout=1.5)
    with pytest.raises(ValueError, match="hidden_size must be greater than zero"):
        nn.LSTM(3, 0)
    with pytest.raises(TypeError, match="input_size should be of type int"):
        nn.RNN(3.0, 4)
    with pytest.raises(ValueError, match="num_layers must be an int greater than zero"):
        nn.RNN(3, 4, num_layers=0)
    with pytest.raises(ValueError, match="Unknown nonlinearity 'sigmoid'"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="projections .* are not supported by genesis"):
        nn.LSTM(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="Unknown nonlinearity: gelu"):
        nn.RNNCell(3, 4, nonlinearity="gelu")


def test_cell_errors():
    cell = nn.LSTMCell(4, 3)
    with pytest.raises(RuntimeError, match="LSTMCell: input has inconsistent input_size: got 5, "
                                           "expected 4"):
        cell(G.ones(2, 5))
    with pytest.raises(RuntimeError, match="LSTMCell: hidden1 has inconsistent hidden_size: "
                                           "got 4, expected 3"):
        cell(G.ones(2, 4), (G.zeros(2, 3), G.zeros(2, 4)))
    with pytest.raises(RuntimeError, match="GRUCell: Input batch size 2 doesn't match hidden0 "
                                           "batch size 3"):
        nn.GRUCell(4, 3)(G.ones(2, 4), G.zeros(3, 3))
    with pytest.raises(ValueError, match="RNNCell: Expected input to be 1D or 2D, got 3D"):
        nn.RNNCell(4, 3)(G.ones(1, 2, 4))
    with pytest.raises(TypeError, match=r"LSTMCell: hx must be a tuple \(h, c\)"):
        cell(G.ones(2, 4), G.zeros(2, 3))
    with pytest.raises(RuntimeError, match=r"gru_cell: expected w_ih of shape \[9, 4\]"):
        F.gru_cell(G.ones(2, 4), G.zeros(2, 3), G.ones(9, 5), G.ones(9, 3))
    with pytest.raises(TypeError, match="rnn_tanh_cell: all tensors must have the input's dtype"):
        F.rnn_tanh_cell(G.ones(2, 4), G.zeros(2, 3), G.ones(3, 4), G.ones(3, 3),
                        G.ones(3, dtype=G.float64))


def test_kernel_errors_name_the_operand():
    a = np.zeros((2, 8))
    with pytest.raises(ValueError, match=r"lstm_cell: hidden_gates has shape \(2, 4\), expected "
                                         r"\(2, 8\)"):
        cpu.lstm_cell(a, np.zeros((2, 4)), np.zeros((2, 2)), None, None)
    with pytest.raises(TypeError, match="gru_cell: hx has dtype float32, expected float64"):
        cpu.gru_cell(np.zeros((2, 6)), np.zeros((2, 6)), np.zeros((2, 2), np.float32), None,
                     None)
    with pytest.raises(ValueError, match=r"rnn_tanh_cell: input_bias has shape \(3,\), "
                                         r"expected \(2,\)"):
        cpu.rnn_cell(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros(3), None, "tanh")
    with pytest.raises(TypeError, match="expected float32 or float64"):
        cpu.rnn_cell(np.zeros((2, 2), np.int64), np.zeros((2, 2), np.int64), None, None, "relu")


def test_packing_errors():
    x = G.ones(4, 3, 2)
    with pytest.raises(RuntimeError, match="`lengths` array must be sorted in decreasing order"):
        pack_padded_sequence(x, [2, 3, 1])
    with pytest.raises(RuntimeError, match="Length of all samples has to be greater than 0"):
        pack_padded_sequence(x, [3, 0, 1], enforce_sorted=False)
    with pytest.raises(RuntimeError, match=r"Expected `len\(lengths\)` to be equal to "
                                           r"batch_size, but got 2 \(batch_size=3\)"):
        pack_padded_sequence(x, [3, 2])
    with pytest.raises(RuntimeError, match=r"a sequence is longer \(5\) than the padded input "
                                           r"\(4 steps\)"):
        pack_padded_sequence(x, [5, 2, 1])
    with pytest.raises(ValueError, match="Expected total_length to be at least the length of "
                                         "the longest sequence"):
        pad_packed_sequence(pack_padded_sequence(x, [4, 2, 1]), total_length=3)
    with pytest.raises(RuntimeError, match=r"pad_sequence: sequence 1 has shape \[2, 3\]"):
        pad_sequence([G.ones(2, 2), G.ones(2, 3)])
    with pytest.raises(TypeError, match="pad_packed_sequence: expected a PackedSequence"):
        pad_packed_sequence(x)
