"""Attention and Transformer layers: F.scaled_dot_product_attention against a numpy
reference, finite-difference gradients (first and second order) of attention,
MultiheadAttention and the encoder/decoder layers, masks, errors, positional
encodings and, when torch is installed, parity with torch given identical
weights (outputs, attention weights, input and parameter gradients)."""
import copy

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import genesis as G
import genesis.nn as nn
import genesis.nn.functional as F
from genesis.autograd import gradcheck, gradgradcheck

RNG = np.random.default_rng


# ------------------------------------------------------------------ reference
def ref_sdpa(q, k, v, keep=None, add=None, scale=None):
    """softmax(q k^T * scale + add, masked where keep is False) v; rows with no key
    to attend give zeros."""
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ np.swapaxes(k, -1, -2) * scale
    if add is not None:
        s = s + add
    if keep is not None:
        s = np.where(keep, s, -np.inf)
    m = s.max(-1, keepdims=True)
    dead = ~np.isfinite(m)
    e = np.exp(s - np.where(dead, 0, m))
    w = np.where(dead, 0, e / np.where(dead, 1, e.sum(-1, keepdims=True)))
    return w @ v


@st.composite
def sdpa_cases(draw):
    batch = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    L, S, E, Ev = (draw(st.integers(1, 5)) for _ in range(4))
    mask = draw(st.sampled_from(["none", "bool", "float", "causal", "bool-broadcast"]))
    scale = draw(st.sampled_from([None, 0.3]))
    return batch, L, S, E, Ev, mask, scale


def _sdpa_inputs(case, seed=0):
    batch, L, S, E, Ev, mask, scale = case
    rng = RNG(seed)
    q, k, v = (rng.standard_normal(batch + s) for s in ((L, E), (S, E), (S, Ev)))
    kw, keep, add = {}, None, None
    if mask in ("bool", "bool-broadcast"):
        keep = rng.random((L, S) if mask == "bool" else (1, S)) < 0.7
        kw["attn_mask"] = keep
    elif mask == "float":
        add = rng.standard_normal(batch[-1:] + (L, S))
        kw["attn_mask"] = add
    elif mask == "causal":
        kw["is_causal"] = True
        keep = np.tril(np.ones((L, S), bool))
    if scale is not None:
        kw["scale"] = scale
    return (q, k, v), kw, keep, add


def _tensors(arrays, requires_grad=True):
    return [G.tensor(a, requires_grad=requires_grad) for a in arrays]


def _gkw(kw):
    return {n: G.tensor(v) if isinstance(v, np.ndarray) else v for n, v in kw.items()}


# ------------------------------------------------------------------ scaled_dot_product_attention
@given(case=sdpa_cases())
def test_sdpa_matches_reference(case):
    arrays, kw, keep, add = _sdpa_inputs(case)
    out = F.scaled_dot_product_attention(*_tensors(arrays, False), **_gkw(kw))
    ref = ref_sdpa(*arrays, keep=keep, add=add, scale=kw.get("scale"))
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mask", ["none", "bool", "float", "causal"])
def test_sdpa_gradcheck(mask):
    arrays, kw, _, _ = _sdpa_inputs(((2,), 3, 4, 2, 3, mask, None), seed=1)
    if mask == "bool":  # one query row may attend to nothing: zero output, zero gradient
        kw["attn_mask"][0] = False
    kw = _gkw(kw)
    inputs = _tensors(arrays)
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kw), inputs)
    assert gradgradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kw), inputs)


@pytest.mark.parametrize("mask", ["bool", "float"])
def test_sdpa_fully_masked_rows_are_zero(mask):
    q, k, v = _tensors([RNG(2).standard_normal(s) for s in ((3, 4), (5, 4), (5, 2))])
    keep = np.ones((3, 5), bool)
    keep[1] = False
    m = G.tensor(keep) if mask == "bool" else G.tensor(np.where(keep, 0.0, -np.inf))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=m)
    out.sum().backward()
    assert np.isfinite(q.grad.numpy()).all() and np.isfinite(k.grad.numpy()).all()
    np.testing.assert_array_equal(out.detach().numpy()[1], 0)
    np.testing.assert_array_equal(q.grad.numpy()[1], 0)


def test_sdpa_dropout():
    """Dropped weights are zero, kept ones scaled by 1 / (1 - p); seeded runs repeat."""
    q, k = _tensors([RNG(3).standard_normal((2, 6, 4)) for _ in range(2)], False)
    eye = G.eye(6, dtype=G.float64)  # value = identity: the output is the weights
    plain = F.scaled_dot_product_attention(q, k, eye).numpy()
    G.manual_seed(0)
    dropped = F.scaled_dot_product_attention(q, k, eye, dropout_p=0.25).numpy()
    G.manual_seed(0)
    again = F.scaled_dot_product_attention(q, k, eye, dropout_p=0.25).numpy()
    np.testing.assert_array_equal(dropped, again)
    kept = dropped != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(dropped[kept], plain[kept] / 0.75, rtol=1e-12)
    assert not F.scaled_dot_product_attention(q, k, eye, dropout_p=1.0).numpy().any()


def test_sdpa_broadcasts_batch_dims_and_grouped_query_heads():
    rng = RNG(4)
    q, k, v = rng.standard_normal((2, 4, 3, 5)), rng.standard_normal((4, 6, 5)), \
        rng.standard_normal((1, 4, 6, 2))
    out = F.scaled_dot_product_attention(*_tensors((q, k, v), False))
    np.testing.assert_allclose(out.numpy(), ref_sdpa(q, k, v), rtol=1e-12)
    kg, vg = rng.standard_normal((2, 2, 6, 5)), rng.standard_normal((2, 2, 6, 2))
    out = F.scaled_dot_product_attention(*_tensors((q, kg, vg), False), enable_gqa=True)
    ref = ref_sdpa(q, np.repeat(kg, 2, axis=1), np.repeat(vg, 2, axis=1))
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12)


@pytest.mark.parametrize("args, kw, exc, needle", [
    (((2, 3, 4), (2, 5, 3), (2, 5, 4)), {}, RuntimeError, "expected query"),
    (((2, 3, 4), (2, 5, 4), (2, 6, 4)), {}, RuntimeError, "expected query"),
    (((2, 3, 4), (3, 5, 4), (3, 5, 4)), {}, RuntimeError, "cannot be broadcast"),
    (((4,), (5, 4), (5, 4)), {}, RuntimeError, "at least 2-D"),
    (((3, 4), (5, 4), (5, 4)), {"attn_mask": np.ones((3, 4), bool)}, RuntimeError,
     r"attn_mask of shape \[3, 4\] does not broadcast to the attention weights of shape "
     r"\[3, 5\]"),
    (((3, 4), (5, 4), (5, 4)), {"attn_mask": np.ones((2, 3, 5), bool)}, RuntimeError,
     "does not broadcast"),
    (((3, 4), (5, 4), (5, 4)), {"attn_mask": np.ones((3, 5), np.float32)}, TypeError,
     "Expected attn_mask dtype to be bool or to match query dtype"),
    (((3, 4), (5, 4), (5, 4)), {"attn_mask": np.ones((3, 5), bool), "is_causal": True},
     RuntimeError, "Explicit attn_mask should not be set when is_causal=True"),
    (((3, 4), (5, 4), (5, 4)), {"dropout_p": 1.5}, ValueError, "dropout_p"),
    (((3, 4), (5, 4), (5, 4)), {"enable_gqa": True}, RuntimeError, "needs a heads dim"),
    (((1, 2, 3, 4), (1, 3, 5, 4), (1, 3, 5, 4)), {"enable_gqa": True}, RuntimeError,
     "multiple"),
])
def test_sdpa_errors(args, kw, exc, needle):
    q, k, v = (G.zeros(*s, dtype=G.float64) for s in args)
    with pytest.raises(exc, match=needle):
        F.scaled_dot_product_attention(q, k, v, **_gkw(kw))


def test_sdpa_dtype_errors():
    q = G.zeros(3, 4)
    with pytest.raises(TypeError, match="same floating point dtype"):
        F.scaled_dot_product_attention(q, G.zeros(5, 4, dtype=G.float64), G.zeros(5, 4))
    with pytest.raises(TypeError, match="Tensor"):
        F.scaled_dot_product_attention(q, np.zeros((5, 4)), G.zeros(5, 4))


# ------------------------------------------------------------------ MultiheadAttention
def test_mha_parameters_and_init():
    G.manual_seed(0)
    m = nn.MultiheadAttention(16, 4)
    assert [(n, tuple(p.shape)) for n, p in m.named_parameters()] == [
        ("in_proj_weight", (48, 16)), ("in_proj_bias", (48,)), ("out_proj.weight", (16, 16)),
        ("out_proj.bias", (16,))]
    assert m.head_dim == 4 and m.q_proj_weight is None and m.bias_k is None
    w = m.in_proj_weight.detach().numpy()
    bound = np.sqrt(6 / (16 + 48))  # Xavier-uniform over (3E, E)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert not m.in_proj_bias.detach().numpy().any() and not m.out_proj.bias.detach().numpy().any()
    sep = nn.MultiheadAttention(8, 2, kdim=3, vdim=5, bias=False, add_bias_kv=True)
    assert [(n, tuple(p.shape)) for n, p in sep.named_parameters()] == [
        ("q_proj_weight", (8, 8)), ("k_proj_weight", (8, 3)), ("v_proj_weight", (8, 5)),
        ("bias_k", (1, 1, 8)), ("bias_v", (1, 1, 8)), ("out_proj.weight", (8, 8))]
    assert sep.in_proj_weight is None and sep.in_proj_bias is None


def _mha_gradcheck_inputs(rng, L, S, N, E):
    q, k, v = (rng.standard_normal(s) for s in ((L, N, E), (S, N, E), (S, N, E)))
    w_in, b_in = rng.standard_normal((3 * E, E)) / 2, rng.standard_normal(3 * E) / 2
    w_out, b_out = rng.standard_normal((E, E)) / 2, rng.standard_normal(E) / 2
    return _tensors((q, k, v, w_in, b_in, w_out, b_out))


def test_mha_gradcheck():
    rng = RNG(5)
    inputs = _mha_gradcheck_inputs(rng, 2, 3, 2, 4)
    kpm = G.tensor(np.array([[False, False, True], [False, True, False]]))
    am = G.tensor(rng.standard_normal((2, 3)))

    def fn(q, k, v, w_in, b_in, w_out, b_out):
        out, weights = F.multi_head_attention_forward(
            q, k, v, 4, 2, w_in, b_in, None, None, False, 0.0, w_out, b_out,
            key_padding_mask=kpm, attn_mask=am, average_attn_weights=False)
        return out, weights
    assert gradcheck(fn, inputs)
    assert gradgradcheck(lambda *a: fn(*a)[0], inputs[:3] + [t.detach() for t in inputs[3:]])


def test_mha_self_attention_gradcheck():
    """query is key is value: one projection for all three."""
    x, _, _, w_in, b_in, w_out, b_out = _mha_gradcheck_inputs(RNG(6), 3, 3, 1, 4)
    assert gradcheck(lambda x, w: F.multi_head_attention_forward(
        x, x, x, 4, 2, w, b_in, None, None, False, 0.0, w_out, b_out, is_causal=True)[0],
        (x, w_in))


def test_mha_fully_padded_sequence_gives_zeros():
    m = nn.MultiheadAttention(4, 2, batch_first=True, dtype=G.float64)
    x = G.tensor(RNG(7).standard_normal((2, 3, 4)), requires_grad=True)
    kpm = G.tensor(np.array([[False, True, True], [True, True, True]]))
    out, weights = m(x, x, x, key_padding_mask=kpm)
    out.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()
    np.testing.assert_array_equal(weights.detach().numpy()[1], 0)
    # no query attends to anything in sequence 1: each output is the output bias
    np.testing.assert_allclose(out.detach().numpy()[1],
                               np.broadcast_to(m.out_proj.bias.detach().numpy(), (3, 4)))
    np.testing.assert_allclose(weights.detach().numpy()[0, :, 0], 1.0)


def test_mha_is_causal_without_mask_applies_the_causal_mask():
    m = nn.MultiheadAttention(4, 2, dtype=G.float64)
    x = G.tensor(RNG(8).standard_normal((5, 2, 4)))
    mask = nn.Transformer.generate_square_subsequent_mask(5, dtype=G.float64)
    with G.no_grad():
        a, wa = m(x, x, x, is_causal=True)
        b, wb = m(x, x, x, attn_mask=mask)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
    np.testing.assert_allclose(wa.numpy(), wb.numpy(), rtol=1e-12)
    assert not np.triu(wa.numpy()[0], 1).any()


def test_mha_dropout_only_in_training():
    m = nn.MultiheadAttention(8, 2, dropout=0.5)
    x = G.randn(4, 3, 8)
    with G.no_grad():
        m.eval()
        np.testing.assert_array_equal(m(x, x, x)[0].numpy(), m(x, x, x)[0].numpy())
        m.train()
        assert not np.array_equal(m(x, x, x)[0].numpy(), m(x, x, x)[0].numpy())


def test_mha_errors():
    with pytest.raises(ValueError, match="embed_dim must be divisible by num_heads"):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="greater than 0"):
        nn.MultiheadAttention(0, 1)
    m = nn.MultiheadAttention(8, 2)
    x = G.zeros(3, 2, 8)
    cases = [
        (dict(attn_mask=G.zeros(3, 4, dtype=G.bool)),
         r"The shape of the 2D attn_mask is \[3, 4\], but should be \(3, 3\)"),
        (dict(attn_mask=G.zeros(2, 3, 3, dtype=G.bool)),
         r"The shape of the 3D attn_mask is \[2, 3, 3\], but should be \(4, 3, 3\)"),
        (dict(attn_mask=G.zeros(1, 1, 3, 3, dtype=G.bool)), "2-D or 3-D"),
        (dict(key_padding_mask=G.zeros(3, 2, dtype=G.bool)),
         r"expecting key_padding_mask shape of \(2, 3\), but got \(3, 2\)"),
        (dict(key_padding_mask=G.zeros(2, dtype=G.bool)), "key_padding_mask"),
    ]
    for kw, needle in cases:
        with pytest.raises(RuntimeError, match=needle):
            m(x, x, x, **kw)
    with pytest.raises(TypeError, match="only bool and floating types of attn_mask"):
        m(x, x, x, attn_mask=G.zeros(3, 3, dtype=G.int64))
    with pytest.raises(RuntimeError, match="was expecting embedding dimension of 8, but got 6"):
        m(G.zeros(3, 2, 6), x, x)
    with pytest.raises(RuntimeError, match="unbatched 2D or batched 3D"):
        m(G.zeros(1, 3, 2, 8), x, x)
    with pytest.raises(RuntimeError, match="expected `key` and `value` to be 3-D"):
        m(x, G.zeros(3, 8), G.zeros(3, 8))
    with pytest.raises(RuntimeError, match="query's N = 2"):
        m(x, G.zeros(3, 5, 8), G.zeros(3, 5, 8))


# ------------------------------------------------------------------ Transformer layers
def test_encoder_layer_gradcheck():
    G.manual_seed(1)
    layer = nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, dtype=G.float64)
    x = G.tensor(RNG(9).standard_normal((3, 2, 4)), requires_grad=True)
    kpm = G.tensor(np.array([[False, False, True], [False, False, False]]))
    assert gradcheck(lambda t: layer(t, src_key_padding_mask=kpm), (x,))
    pre = nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, activation="gelu", norm_first=True,
                                     batch_first=True, dtype=G.float64)
    assert gradcheck(lambda t: pre(t, is_causal=True), (x,))


def test_decoder_layer_gradcheck():
    G.manual_seed(2)
    layer = nn.TransformerDecoderLayer(4, 2, 6, dropout=0.0, dtype=G.float64)
    tgt = G.tensor(RNG(10).standard_normal((3, 2, 4)), requires_grad=True)
    mem = G.tensor(RNG(11).standard_normal((2, 2, 4)), requires_grad=True)
    mask = nn.Transformer.generate_square_subsequent_mask(3, dtype=G.float64)
    assert gradcheck(lambda t, m: layer(t, m, tgt_mask=mask, tgt_is_causal=True), (tgt, mem))


def test_encoder_deep_copies_its_layer():
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
    enc = nn.TransformerEncoder(layer, 3, norm=nn.LayerNorm(8))
    assert len(enc.layers) == 3 and all(m is not layer for m in enc.layers)
    w = [m.linear1.weight for m in enc.layers]
    assert len({id(p) for p in w} | {id(layer.linear1.weight)}) == 4
    for p in w:
        np.testing.assert_array_equal(p.detach().numpy(), layer.linear1.weight.detach().numpy())
    with G.no_grad():
        enc.layers[0].linear1.weight.fill_(0.0)
    assert enc.layers[1].linear1.weight.detach().numpy().any()
    assert layer.linear1.weight.detach().numpy().any()
    assert len(list(enc.parameters())) == 3 * len(list(layer.parameters())) + 2


def test_layer_errors():
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")
    with pytest.raises(ValueError, match="embed_dim must be divisible by num_heads"):
        nn.TransformerDecoderLayer(8, 3)
    t = nn.Transformer(8, 2, 1, 1, 16)
    with pytest.raises(RuntimeError, match="the batch number of src and tgt must be equal"):
        t(G.zeros(3, 2, 8), G.zeros(3, 4, 8))
    with pytest.raises(RuntimeError, match="feature number of src and tgt"):
        t(G.zeros(3, 2, 8), G.zeros(3, 2, 6))


def test_callable_activation_and_square_subsequent_mask():
    layer = nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, activation=nn.GELU())
    assert isinstance(dict(layer.named_children())["activation"], nn.GELU)
    assert tuple(layer(G.randn(3, 1, 4)).shape) == (3, 1, 4)
    with pytest.raises(TypeError, match="callable"):
        nn.TransformerEncoderLayer(4, 2, activation=3)
    mask = nn.Transformer.generate_square_subsequent_mask(3).numpy()
    np.testing.assert_array_equal(mask, [[0, -np.inf, -np.inf], [0, 0, -np.inf], [0, 0, 0]])
    assert mask.dtype == np.float32


# ------------------------------------------------------------------ positional encodings
def test_sinusoidal_positional_encoding():
    pe = nn.SinusoidalPositionalEncoding(5, max_len=7, dtype=G.float64)
    pos, i = np.arange(7)[:, None], np.arange(0, 5, 2)
    ref = np.zeros((7, 5))
    ref[:, 0::2] = np.sin(pos / 10000 ** (i / 5))
    ref[:, 1::2] = np.cos(pos / 10000 ** (i[:2] / 5))
    np.testing.assert_allclose(pe.pe.numpy(), ref, rtol=1e-12, atol=1e-15)
    x = RNG(12).standard_normal((4, 2, 5))
    np.testing.assert_allclose(pe(G.tensor(x)).numpy(), x + ref[:4, None], rtol=1e-12)
    bf = nn.SinusoidalPositionalEncoding(5, max_len=7, batch_first=True, dtype=G.float64)
    np.testing.assert_allclose(bf(G.tensor(x.transpose(1, 0, 2))).numpy(),
                               x.transpose(1, 0, 2) + ref[:4], rtol=1e-12)
    assert list(pe.state_dict()) == []
    assert pe.float().pe.dtype is G.float32
    with pytest.raises(ValueError, match="exceeds max_len=7"):
        pe(G.zeros(8, 1, 5, dtype=G.float64))
    with pytest.raises(RuntimeError, match="expected input"):
        pe(G.zeros(3, 1, 4, dtype=G.float64))


def test_learned_positional_embedding():
    pe = nn.LearnedPositionalEmbedding(6, 3, batch_first=True)
    assert list(pe.state_dict()) == ["embedding.weight"]
    x = G.randn(2, 4, 3, requires_grad=True)
    y = pe(x)
    table = pe.embedding.weight.detach().numpy()
    np.testing.assert_allclose(y.detach().numpy(), x.detach().numpy() + table[:4], rtol=1e-6)
    y.sum().backward()
    np.testing.assert_array_equal(pe.embedding.weight.grad.numpy()[:4], 2.0)
    np.testing.assert_array_equal(pe.embedding.weight.grad.numpy()[4:], 0.0)


# ------------------------------------------------------------------ parity with torch
def _load_from_torch(ours, theirs):
    state = {k: G.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()}
    assert list(ours.state_dict()) == list(state)
    ours.load_state_dict(state)


def _close(a, b, tol=1e-10):
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=tol, atol=tol)


def _check_grads(ours, theirs, inputs, tinputs, out, tout, seed=0):
    g = RNG(seed).standard_normal(tuple(out.shape))
    out.backward(G.tensor(g))
    tout.backward(__import__("torch").tensor(g))
    for a, b in zip(inputs, tinputs):
        _close(a.grad, b.grad)
    ours_p = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        _close(ours_p[name].grad, p.grad)


@settings(max_examples=max(4, settings().max_examples // 2))
@given(case=sdpa_cases())
def test_sdpa_parity_with_torch(case):
    torch = pytest.importorskip("torch")
    arrays, kw, _, _ = _sdpa_inputs(case, seed=13)
    ours = _tensors(arrays)
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = F.scaled_dot_product_attention(*ours, **_gkw(kw))
    tout = torch.nn.functional.scaled_dot_product_attention(
        *theirs, **{n: torch.tensor(v) if isinstance(v, np.ndarray) else v
                    for n, v in kw.items()})
    _close(out, tout)
    g = RNG(14).standard_normal(tuple(out.shape))
    out.backward(G.tensor(g))
    tout.backward(torch.tensor(g))
    for a, b in zip(ours, theirs):
        _close(a.grad, b.grad)


_MHA_CONFIGS = [dict(), dict(batch_first=True), dict(kdim=5, vdim=3), dict(add_bias_kv=True),
                dict(add_zero_attn=True), dict(bias=False)]


@pytest.mark.filterwarnings("ignore:Support for mismatched:UserWarning")  # torch's
@pytest.mark.parametrize("config", _MHA_CONFIGS)
def test_mha_parity_with_torch(config):
    torch = pytest.importorskip("torch")
    E, H, L, S, N = 8, 2, 4, 5, 3
    t = torch.nn.MultiheadAttention(E, H, dtype=torch.float64, **config)
    m = nn.MultiheadAttention(E, H, dtype=G.float64, **config)
    _load_from_torch(m, t)
    rng = RNG(15)
    bf = config.get("batch_first", False)
    dims = (E, config.get("kdim", E), config.get("vdim", E))
    arrays = [rng.standard_normal((N, n, d) if bf else (n, N, d))
              for n, d in zip((L, S, S), dims)]
    # key 0 is never masked: torch gives NaN for a query that may attend to nothing
    kpm, am = rng.random((N, S)) < 0.3, rng.random((L, S)) < 0.3
    kpm[:, 0] = am[:, 0] = False
    masks = [dict(),
             dict(key_padding_mask=kpm),
             dict(attn_mask=am),
             dict(key_padding_mask=kpm, attn_mask=rng.standard_normal((N * H, L, S))),
             dict(key_padding_mask=rng.standard_normal((N, S)), attn_mask=am)]
    for mask in masks:
        for need_weights, average in ((True, True), (True, False), (False, True)):
            ours, theirs = _tensors(arrays), [torch.tensor(a, requires_grad=True) for a in arrays]
            out, w = m(*ours, need_weights=need_weights, average_attn_weights=average,
                       **_gkw(mask))
            tout, tw = t(*theirs, need_weights=need_weights, average_attn_weights=average,
                         **{n: torch.tensor(v) for n, v in mask.items()})
            _close(out, tout)
            if need_weights:
                _close(w, tw)
            else:
                assert w is None
            _check_grads(m, t, ours, theirs, out, tout)
            m.zero_grad()
            t.zero_grad()


def test_mha_unbatched_and_self_attention_parity_with_torch():
    torch = pytest.importorskip("torch")
    t = torch.nn.MultiheadAttention(6, 3, dtype=torch.float64)
    m = nn.MultiheadAttention(6, 3, dtype=G.float64)
    _load_from_torch(m, t)
    x = RNG(16).standard_normal((4, 6))
    ours, theirs = G.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    am = RNG(17).random((3, 4, 4)) < 0.3
    out, w = m(ours, ours, ours, attn_mask=G.tensor(am), average_attn_weights=False)
    tout, tw = t(theirs, theirs, theirs, attn_mask=torch.tensor(am), average_attn_weights=False)
    assert tuple(out.shape) == (4, 6) and tuple(w.shape) == (3, 4, 4)
    _close(out, tout)
    _close(w, tw)
    _check_grads(m, t, [ours], [theirs], out, tout)


@pytest.mark.filterwarnings("ignore:Support for mismatched:UserWarning")  # torch's
@pytest.mark.parametrize("config", [dict(), dict(norm_first=True, activation="gelu"),
                                    dict(batch_first=True, bias=False, norm_first=True)])
def test_encoder_parity_with_torch(config):
    torch = pytest.importorskip("torch")
    t = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, dtype=torch.float64, **config)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, dtype=G.float64, **config)
    _load_from_torch(layer, t)
    x = RNG(18).standard_normal((3, 4, 8))
    L = 4 if config.get("batch_first") else 3
    mask = nn.Transformer.generate_square_subsequent_mask(L, dtype=G.float64)
    tmask = torch.nn.Transformer.generate_square_subsequent_mask(L, dtype=torch.float64)
    kpm = np.zeros((3, 4) if config.get("batch_first") else (4, 3), bool)
    kpm[1, -1] = True
    ours, theirs = G.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out = layer(ours, src_mask=mask, src_key_padding_mask=G.tensor(kpm), is_causal=True)
    tout = t(theirs, src_mask=tmask, src_key_padding_mask=torch.tensor(kpm), is_causal=True)
    _close(out, tout)
    _check_grads(layer, t, [ours], [theirs], out, tout)

    enc = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(8, dtype=G.float64))
    tenc = torch.nn.TransformerEncoder(t, 2, norm=torch.nn.LayerNorm(8, dtype=torch.float64),
                                       enable_nested_tensor=False)
    _load_from_torch(enc, tenc)
    _close(enc(G.tensor(x), mask=mask), tenc(torch.tensor(x), mask=tmask))


@pytest.mark.filterwarnings("ignore:Support for mismatched:UserWarning")  # torch's
@pytest.mark.parametrize("config", [dict(), dict(norm_first=True, activation="gelu",
                                                 batch_first=True)])
def test_decoder_parity_with_torch(config):
    torch = pytest.importorskip("torch")
    t = torch.nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, dtype=torch.float64, **config)
    layer = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, dtype=G.float64, **config)
    _load_from_torch(layer, t)
    bf = config.get("batch_first", False)
    rng = RNG(19)
    tgt, mem = rng.standard_normal((2, 4, 8) if bf else (4, 2, 8)), \
        rng.standard_normal((2, 5, 8) if bf else (5, 2, 8))
    tkpm, mkpm = np.zeros((2, 4), bool), np.zeros((2, 5), bool)
    tkpm[0, -1], mkpm[1, :2] = True, True
    mmask = rng.standard_normal((4, 5))
    ours = _tensors((tgt, mem))
    theirs = [torch.tensor(a, requires_grad=True) for a in (tgt, mem)]
    kw = dict(tgt_key_padding_mask=tkpm, memory_key_padding_mask=mkpm, memory_mask=mmask)
    out = layer(*ours, tgt_mask=nn.Transformer.generate_square_subsequent_mask(
        4, dtype=G.float64), tgt_is_causal=True, **_gkw(kw))
    tout = t(*theirs, tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(
        4, dtype=torch.float64), tgt_is_causal=True,
        **{n: torch.tensor(v) for n, v in kw.items()})
    _close(out, tout)
    _check_grads(layer, t, ours, theirs, out, tout)


def test_transformer_parity_with_torch():
    torch = pytest.importorskip("torch")
    t = torch.nn.Transformer(8, 2, 2, 1, 16, dropout=0.0, batch_first=True,
                             dtype=torch.float64)
    m = nn.Transformer(8, 2, 2, 1, 16, dropout=0.0, batch_first=True, dtype=G.float64)
    _load_from_torch(m, t)
    src, tgt = RNG(20).standard_normal((2, 5, 8)), RNG(21).standard_normal((2, 3, 8))
    out = m(G.tensor(src), G.tensor(tgt),
            tgt_mask=nn.Transformer.generate_square_subsequent_mask(3, dtype=G.float64))
    tout = t(torch.tensor(src), torch.tensor(tgt),
             tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(
                 3, dtype=torch.float64))
    _close(out, tout)
    np.testing.assert_array_equal(
        nn.Transformer.generate_square_subsequent_mask(4).numpy(),
        torch.nn.Transformer.generate_square_subsequent_mask(4).numpy())


def test_deepcopy_of_a_trained_layer_keeps_values_not_graph():
    layer = nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0)
    layer(G.randn(3, 2, 4)).sum().backward()
    twin = copy.deepcopy(layer)
    for (n, a), (_, b) in zip(layer.named_parameters(), twin.named_parameters()):
        assert a is not b and isinstance(b, nn.Parameter) and b.requires_grad
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
        np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())
