"""nn.ParticleLayer and its functional core particle_linear: forward against a numpy
reference, finite-difference gradients of x, W, b and G, gate statistics, pruning
(shapes, parameter counts, the renormalization identity, outputs when the removed
particles were inactive), state_dict round trips and errors."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import genesis as G
from genesis import nn
from genesis.backend import cpu as _cpu
from genesis.nn.functional.particle import particle_linear

_NP_ACT = {"relu": lambda h: np.maximum(h, 0), "tanh": np.tanh, None: lambda h: h,
           "sigmoid": lambda h: 1 / (1 + np.exp(-h))}


def ref_particle(x, w, b, g, act="relu"):
    """y = sum_k softmax(x @ g)_k * act(x @ w[k].T + b[k]), one particle at a time."""
    x = x.reshape(-1, x.shape[-1]).astype(np.float64)
    logits = x @ g
    gates = np.exp(logits - logits.max(1, keepdims=True))
    gates /= gates.sum(1, keepdims=True)
    y = sum(gates[:, k:k + 1] * _NP_ACT[act](x @ w[k].T + (0 if b is None else b[k]))
            for k in range(w.shape[0]))
    return y, gates


def _layer_arrays(layer):
    return (layer.weight.detach().numpy(), None if layer.bias is None else
            layer.bias.detach().numpy(), layer.gate.detach().numpy())


def _gated_off(layer, off, x_positive):
    """Make the gates of particles `off` vanish for inputs in [0.5, 1)."""
    gate = layer.gate.detach().numpy().copy()
    gate[:, off] = -20.0
    with G.no_grad():
        layer.gate.copy_(G.tensor(gate, dtype=layer.gate.dtype))
    assert x_positive.min() >= 0.5


# ---------------------------------------------------------------- forward
@given(n=st.integers(1, 6), in_f=st.integers(1, 7), out_f=st.integers(1, 5),
       k=st.integers(1, 5), bias=st.booleans(), act=st.sampled_from(["relu", "tanh", None]),
       seed=st.integers(0, 2**16))
def test_forward_matches_reference(n, in_f, out_f, k, bias, act, seed):
    G.manual_seed(seed)
    layer = nn.ParticleLayer(in_f, out_f, k, activation=act, bias=bias, dtype=G.float64)
    x = np.random.default_rng(seed).standard_normal((n, in_f))
    y = layer(G.tensor(x))
    ref, _ = ref_particle(x, *_layer_arrays(layer), act=act)
    assert y.shape == (n, out_f) and y.dtype is G.float64
    np.testing.assert_allclose(y.detach().numpy(), ref, rtol=1e-10, atol=1e-12)


def test_leading_dims_and_gates():
    G.manual_seed(1)
    layer = nn.ParticleLayer(5, 3, 4, dtype=G.float64)
    x = np.random.default_rng(1).standard_normal((2, 3, 5))
    w, b, g = _layer_arrays(layer)
    y, gates = particle_linear(G.tensor(x), layer.weight, layer.bias, layer.gate,
                               return_gates=True)
    ref, ref_gates = ref_particle(x, w, b, g)
    assert y.shape == (2, 3, 3) and gates.shape == (2, 3, 4)
    np.testing.assert_allclose(y.detach().numpy().reshape(6, 3), ref, rtol=1e-12)
    np.testing.assert_allclose(gates.detach().numpy().reshape(6, 4), ref_gates, rtol=1e-12)
    np.testing.assert_allclose(gates.detach().numpy().sum(-1), 1.0, rtol=1e-12)
    one = layer(G.tensor(x[0, 0]))  # a single sample without a batch dim
    assert one.shape == (3,)
    np.testing.assert_allclose(one.detach().numpy(), ref[0], rtol=1e-12)


@pytest.mark.parametrize("act", ["gelu", "silu", "sigmoid", "callable", "module"])
def test_activation_forms(act):
    G.manual_seed(2)
    given_act = {"callable": G.tanh, "module": nn.Tanh()}.get(act, act)
    layer = nn.ParticleLayer(4, 3, 2, activation=given_act, dtype=G.float64)
    x = G.randn(5, 4, dtype=G.float64)
    expected = particle_linear(x, layer.weight, layer.bias, layer.gate,
                               {"callable": G.tanh, "module": G.tanh, "gelu": G.gelu,
                                "silu": G.silu, "sigmoid": G.sigmoid}[act])
    np.testing.assert_allclose(layer(x).detach().numpy(), expected.detach().numpy(), rtol=1e-12)
    if act == "module":
        assert dict(layer.named_children()) == {"activation": given_act}
        assert "(activation): Tanh()" in repr(layer)


def test_all_particles_in_one_stacked_gemm(monkeypatch):
    """The K particles run as one (K*out x in) GEMM: the forward calls the matmul
    kernel twice (gate and particles) whatever K is."""
    calls = []
    real = _cpu.matmul

    def counting(a, b):
        calls.append((a.shape, b.shape))
        return real(a, b)

    monkeypatch.setattr(_cpu, "matmul", counting)
    for k in (1, 3, 8):
        calls.clear()
        layer = nn.ParticleLayer(6, 4, k)
        layer(G.randn(5, 6))
        assert calls == [((5, 6), (6, k)), ((5, 6), (6, 4 * k))]


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("act", ["tanh", "relu"])
@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck(act, bias):
    rng = np.random.default_rng(3)
    k, out_f, in_f = 3, 2, 4
    x = rng.standard_normal((5, in_f))
    w = rng.standard_normal((k, out_f, in_f)) * 0.5
    b = rng.standard_normal((k, out_f)) * 0.5 if bias else None
    g = rng.standard_normal((in_f, k))
    # keep relu's pre-activations off its kink, where differences are not derivatives
    pre = np.einsum("ni,koi->nko", x, w) + (0 if b is None else b[None])
    assert np.abs(pre).min() > 1e-3
    ts = [G.tensor(a, requires_grad=True) for a in (x, w, g)]
    if bias:
        ts.insert(2, G.tensor(b, requires_grad=True))
        fn = lambda x_, w_, b_, g_: particle_linear(x_, w_, b_, g_, getattr(G, act))  # noqa: E731
    else:
        fn = lambda x_, w_, g_: particle_linear(x_, w_, None, g_, getattr(G, act))  # noqa: E731
    assert G.autograd.gradcheck(fn, ts)


def test_gradgradcheck():
    rng = np.random.default_rng(4)
    ts = [G.tensor(rng.standard_normal(s), requires_grad=True)
          for s in ((3, 3), (2, 2, 3), (2, 2), (3, 2))]
    assert G.autograd.gradgradcheck(lambda *a: particle_linear(*a, G.tanh), ts)


def test_module_gradients_reach_every_parameter():
    G.manual_seed(5)
    layer = nn.ParticleLayer(4, 3, 3, activation="tanh", dtype=G.float64)
    x = G.randn(6, 4, dtype=G.float64, requires_grad=True)
    assert G.autograd.gradcheck(lambda x_: layer(x_), [x])
    layer(x).square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
        assert np.abs(p.grad.numpy()).max() > 0, name


def test_parity_with_torch():
    torch = pytest.importorskip("torch")
    G.manual_seed(6)
    layer = nn.ParticleLayer(5, 4, 3, dtype=G.float64)
    x = np.random.default_rng(6).standard_normal((7, 5))
    tw, tb, tg = (torch.tensor(a, requires_grad=True) for a in _layer_arrays(layer))
    tx = torch.tensor(x, requires_grad=True)
    tgates = torch.softmax(tx @ tg, -1)
    th = torch.relu(tx @ tw.reshape(-1, 5).T + tb.reshape(-1)).reshape(7, 3, 4)
    ty = (tgates[:, :, None] * th).sum(1)
    ty.square().sum().backward()
    gx = G.tensor(x, requires_grad=True)
    y = layer(gx)
    y.square().sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
    for mine, theirs in ((gx, tx), (layer.weight, tw), (layer.bias, tb), (layer.gate, tg)):
        np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), rtol=1e-10,
                                   atol=1e-12)


# ---------------------------------------------------------------- statistics
def test_statistics_accumulate_in_training_only():
    G.manual_seed(7)
    layer = nn.ParticleLayer(4, 3, 5, tau=0.2, dtype=G.float64)
    s = layer.statistics()
    assert s["num_samples"] == 0 and s["tau"] == 0.2
    assert s["mean_gate"] == [0.0] * 5 and s["active_fraction"] == [0.0] * 5
    rng = np.random.default_rng(7)
    batches = [rng.standard_normal((6, 4)) * 2, rng.standard_normal((2, 3, 4)) * 2]
    gates = []
    for x in batches:
        layer(G.tensor(x))
        gates.append(ref_particle(x, *_layer_arrays(layer))[1])
    gates = np.concatenate(gates)
    # eval mode and no_grad forwards record nothing
    layer.eval()
    layer(G.tensor(batches[0]))
    layer.train()
    with G.no_grad():
        layer(G.tensor(batches[0]))
    s = layer.statistics()
    assert s["num_samples"] == 12 == int(layer.num_samples_tracked.item())
    np.testing.assert_allclose(s["mean_gate"], gates.mean(0), rtol=1e-12)
    np.testing.assert_array_equal(layer.active_count.numpy(), (gates >= 0.2).sum(0))
    np.testing.assert_allclose(layer.active_fraction.numpy(), (gates >= 0.2).mean(0),
                               rtol=1e-12)
    np.testing.assert_allclose(layer.mean_gate.numpy(), s["mean_gate"], rtol=1e-15)
    np.testing.assert_allclose(sum(s["mean_gate"]), 1.0, rtol=1e-12)
    layer.reset_statistics()
    s = layer.statistics()
    assert s["num_samples"] == 0 and s["active_fraction"] == [0.0] * 5


def test_statistics_buffers_follow_the_parameter_dtype():
    layer = nn.ParticleLayer(3, 2, 2)
    assert layer.gate_sum.dtype is G.float32 and layer.active_count.dtype is G.int64
    layer(G.randn(4, 3))
    assert layer.mean_gate.dtype is G.float32 and layer.active_fraction.dtype is G.float32
    assert {n for n, _ in layer.named_buffers()} == {"gate_sum", "active_count",
                                                      "num_samples_tracked"}


# ---------------------------------------------------------------- pruning
def _trained_layer(k=6, off=(1, 4), bias=True, n=40):
    G.manual_seed(8)
    layer = nn.ParticleLayer(5, 3, k, bias=bias, dtype=G.float64)
    x = np.random.default_rng(8).uniform(0.5, 1.0, (n, 5))
    _gated_off(layer, list(off), x)
    layer(G.tensor(x))  # training-mode forward: records the statistics
    return layer, x


@pytest.mark.parametrize("bias", [True, False])
def test_prune_removes_inactive_particles(bias):
    layer, x = _trained_layer(bias=bias)
    before = layer.num_parameters()
    assert before == sum(p.numel() for p in layer.parameters())
    assert before == 6 * (3 * 5 + 3 * bias) + 5 * 6
    pruned = layer.prune()
    info = pruned.pruning
    assert info.kept == (0, 2, 3, 5) and info.removed == (1, 4)
    assert pruned.num_particles == 4 and pruned is not layer and layer.num_particles == 6
    assert pruned.weight.shape == (4, 3, 5) and pruned.gate.shape == (5, 4)
    assert (pruned.bias is None) == (not bias) and (bias is False or pruned.bias.shape == (4, 3))
    assert info.parameters_before == before
    assert info.parameters_after == pruned.num_parameters() == 4 * (3 * 5 + 3 * bias) + 5 * 4
    assert info.parameters_removed == before - info.parameters_after
    assert str(info) == (f"kept 4 of 6 particles [0, 2, 3, 5]: {before:,} -> "
                         f"{info.parameters_after:,} parameters "
                         f"({info.parameters_removed:,} removed)")
    w, b, g = _layer_arrays(layer)
    np.testing.assert_array_equal(pruned.weight.detach().numpy(), w[[0, 2, 3, 5]])
    np.testing.assert_array_equal(pruned.gate.detach().numpy(), g[:, [0, 2, 3, 5]])
    if bias:
        np.testing.assert_array_equal(pruned.bias.detach().numpy(), b[[0, 2, 3, 5]])
    assert pruned.statistics()["num_samples"] == 0 and pruned.tau == layer.tau
    assert pruned.weight.dtype is G.float64 and pruned.training
    # the removed particles had gates ~ exp(-50): outputs agree closely
    with G.no_grad():
        np.testing.assert_allclose(pruned(G.tensor(x)).numpy(), layer(G.tensor(x)).numpy(),
                                   rtol=1e-9, atol=1e-12)
    assert layer.pruning is None


def test_pruned_output_is_the_renormalized_mixture():
    """With removed mass r and removed contribution c, y_pruned = (y - c) / (1 - r)."""
    G.manual_seed(9)
    layer = nn.ParticleLayer(4, 3, 5, dtype=G.float64)
    x = np.random.default_rng(9).standard_normal((30, 4))
    with G.no_grad():  # statistics that single out particles 1 and 3
        layer.active_count.copy_(G.tensor([9, 1, 7, 2, 5]))
        layer.num_samples_tracked.fill_(10)
    pruned = layer.prune(0.3)
    removed = list(pruned.pruning.removed)
    assert removed == [1, 3] and pruned.pruning.kept == (0, 2, 4)
    # the removed particles carry real weight here: the outputs differ
    assert ref_particle(x, *_layer_arrays(layer))[1][:, removed].sum(1).min() > 0.05
    w, b, g = _layer_arrays(layer)
    y, gates = ref_particle(x, w, b, g)
    c = sum(gates[:, k:k + 1] * np.maximum(x @ w[k].T + b[k], 0) for k in removed)
    r = gates[:, removed].sum(1, keepdims=True)
    with G.no_grad():
        np.testing.assert_allclose(pruned(G.tensor(x)).numpy(), (y - c) / (1 - r), rtol=1e-9,
                                   atol=1e-12)


def test_prune_thresholds_and_keeps_at_least_one():
    layer, _ = _trained_layer()
    fraction = layer.active_fraction.numpy()
    assert fraction[[1, 4]].max() == 0 and fraction[[0, 2, 3, 5]].min() > 0
    assert layer.prune(0.0).pruning.kept == (0, 2, 3, 5)
    # nothing exceeds 1: the most active particle survives
    only = layer.prune(1.0)
    best = int(np.lexsort((layer.mean_gate.numpy(), fraction))[-1])
    assert only.num_particles == 1 and only.pruning.kept == (best,)
    # no statistics at all: still one particle
    fresh = nn.ParticleLayer(3, 2, 4)
    assert fresh.prune().num_particles == 1


def test_prune_carries_activation_and_mode():
    act = nn.LeakyReLU(0.3)
    layer = nn.ParticleLayer(3, 2, 3, activation=act)
    layer(G.randn(8, 3))
    layer.eval()
    pruned = layer.prune(0.0)
    assert not pruned.training
    assert isinstance(pruned.activation, nn.LeakyReLU) and pruned.activation is not act
    assert pruned.activation.negative_slope == 0.3
    assert nn.ParticleLayer(3, 2, 2, activation=G.tanh).prune().activation is G.tanh


# ---------------------------------------------------------------- state_dict
def test_state_dict_round_trip(tmp_path):
    layer, x = _trained_layer()
    path = tmp_path / "particle.ckpt"
    G.save(layer.state_dict(), path)
    other = nn.ParticleLayer(5, 3, 6, dtype=G.float64)
    other.load_state_dict(G.load(path))
    assert other.statistics() == layer.statistics()
    with G.no_grad():
        np.testing.assert_array_equal(other(G.tensor(x)).numpy(), layer(G.tensor(x)).numpy())
    np.testing.assert_array_equal(other.active_count.numpy(), layer.active_count.numpy())
    assert other.prune().pruning == layer.prune().pruning
    with pytest.raises(RuntimeError, match="size mismatch for weight"):
        nn.ParticleLayer(5, 3, 4, dtype=G.float64).load_state_dict(layer.state_dict())


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("k", [0, -2, 2.5, True, "8", None])
def test_bad_num_particles(k):
    with pytest.raises(ValueError, match="ParticleLayer: num_particles must be a positive int"):
        nn.ParticleLayer(4, 3, k)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"in_features": 0}, ValueError, "in_features must be a positive int"),
    ({"out_features": 1.0}, ValueError, "out_features must be a positive int"),
    ({"tau": 1.5}, ValueError, r"tau must be a number in \[0, 1\], got 1.5"),
    ({"tau": "0.1"}, ValueError, "tau must be a number"),
    ({"activation": "swish"}, ValueError, "unknown activation 'swish'"),
    ({"activation": 3}, TypeError, "activation must be a name, a callable or None"),
])
def test_bad_constructor_arguments(kwargs, exc, match):
    args = {"in_features": 4, "out_features": 3, "num_particles": 2, **kwargs}
    with pytest.raises(exc, match=match):
        nn.ParticleLayer(**args)


def test_wrong_input_size():
    layer = nn.ParticleLayer(4, 3, 2)
    with pytest.raises(RuntimeError, match=r"input of shape \[5, 6\] does not match "
                                           r"in_features=4"):
        layer(G.randn(5, 6))
    with pytest.raises(RuntimeError, match="input of shape"):
        layer(G.tensor(1.0))
    with pytest.raises(ValueError, match="ParticleLayer.prune: tau must be a number"):
        layer.prune(-0.1)


def test_functional_shape_errors():
    x, w, b, g = G.randn(2, 4), G.randn(3, 2, 4), G.randn(3, 2), G.randn(4, 3)
    with pytest.raises(RuntimeError, match="weight must be 3-D"):
        particle_linear(x, w[0], b, g)
    with pytest.raises(RuntimeError, match=r"gate of shape \[4, 2\] does not match"):
        particle_linear(x, w, b, g[:, :2])
    with pytest.raises(RuntimeError, match=r"bias of shape \[2\] does not match"):
        particle_linear(x, w, b[0], g)
    with pytest.raises(TypeError, match="particle_linear: input must be a Tensor"):
        particle_linear(np.zeros((2, 4)), w, b, g)
