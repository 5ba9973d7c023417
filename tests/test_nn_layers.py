"""genesis.nn layers over the functional ops: convolution, pooling, normalization,
dropout, embedding and losses.  Shapes, defaults, eval-mode behaviour, state_dict key
names, and parity with torch.nn given the same weights (when torch is importable)."""
import math

import numpy as np
import pytest

import genesis as G
import genesis.nn as nn


def npy(t):
    return t.detach().numpy()


def rand(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def to_torch(gmodule, tmodule):
    """Copy a genesis module's state into the torch module of the same structure."""
    import torch
    state = {k: torch.from_numpy(np.array(npy(v))) for k, v in gmodule.state_dict().items()}
    tmodule.load_state_dict(state)
    return tmodule


def assert_parity(gmodule, tmodule, *inputs, rtol=1e-5, atol=1e-5):
    """Same outputs, and the same gradients for the first input and the parameters,
    from the genesis and torch modules."""
    import torch
    first_grad = inputs[0].dtype.kind == "f"
    g_in = [G.tensor(x, requires_grad=first_grad and i == 0) for i, x in enumerate(inputs)]
    t_in = [torch.tensor(x, requires_grad=first_grad and i == 0) for i, x in enumerate(inputs)]
    g_out, t_out = gmodule(*g_in), tmodule(*t_in)
    np.testing.assert_allclose(npy(g_out), t_out.detach().numpy(), rtol=rtol, atol=atol)
    seed = rand(*t_out.shape, seed=99) if t_out.ndim else np.array(1.0, dtype=np.float32)
    gmodule.zero_grad()
    tmodule.zero_grad()
    g_out.backward(G.tensor(seed))
    t_out.backward(torch.from_numpy(seed))
    if first_grad:
        np.testing.assert_allclose(npy(g_in[0].grad), t_in[0].grad.numpy(), rtol=rtol,
                                   atol=atol)
    t_params = dict(tmodule.named_parameters())
    for name, p in gmodule.named_parameters():
        if p.requires_grad:
            np.testing.assert_allclose(npy(p.grad), t_params[name].grad.numpy(), rtol=rtol,
                                       atol=atol, err_msg=name)
    return g_out


# ----------------------------------------------------------------- convolution
@pytest.mark.parametrize("kwargs,in_shape,out_shape", [
    (dict(), (2, 3, 8, 8), (2, 4, 6, 6)),
    (dict(stride=2, padding=1), (2, 3, 8, 8), (2, 4, 4, 4)),
    (dict(padding=(1, 0), dilation=2), (1, 3, 9, 7), (1, 4, 7, 3)),
    (dict(padding="same"), (2, 3, 5, 6), (2, 4, 5, 6)),
    (dict(padding="valid", bias=False), (2, 3, 5, 6), (2, 4, 3, 4)),
    (dict(in_channels=4, out_channels=6, groups=2), (1, 4, 5, 5), (1, 6, 3, 3)),
    (dict(), (3, 8, 8), (4, 6, 6)),  # unbatched
])
def test_conv2d_shapes(kwargs, in_shape, out_shape):
    args = dict(in_channels=3, out_channels=4, kernel_size=3)
    args.update(kwargs)
    m = nn.Conv2d(**args)
    assert tuple(m(G.randn(*in_shape)).shape) == out_shape


def test_conv2d_attributes_and_default_init():
    G.manual_seed(0)
    m = nn.Conv2d(8, 16, (3, 5), stride=2, groups=2)
    assert tuple(m.weight.shape) == (16, 4, 3, 5) and tuple(m.bias.shape) == (16,)
    assert m.kernel_size == (3, 5) and m.stride == (2, 2) and m.padding == (0, 0)
    assert m.dilation == (1, 1) and m.groups == 2 and m.padding_mode == "zeros"
    bound = 1 / math.sqrt(4 * 3 * 5)
    assert np.abs(npy(m.weight)).max() <= bound and np.abs(npy(m.weight)).max() > 0.95 * bound
    assert np.abs(npy(m.bias)).max() <= bound
    assert list(m.state_dict()) == ["weight", "bias"]
    assert nn.Conv2d(3, 4, 3, bias=False).bias is None
    assert nn.Conv2d(3, 4, 3, padding="same").padding == "same"


def test_conv_constructor_errors():
    with pytest.raises(ValueError, match="padding_mode='reflect' is not supported"):
        nn.Conv2d(3, 4, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="out_channels must be divisible by groups"):
        nn.Conv2d(4, 3, 3, groups=2)
    with pytest.raises(ValueError, match="groups must be a positive integer"):
        nn.Conv1d(4, 4, 3, groups=0)
    with pytest.raises(ValueError, match="not supported for strided convolutions"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="Invalid padding string 'full'"):
        nn.Conv2d(3, 4, 3, padding="full")
    with pytest.raises(ValueError, match="kernel_size must be an int or a tuple of 2"):
        nn.Conv2d(3, 4, (3, 3, 3))
    with pytest.raises(ValueError, match="padding must be an int or a tuple"):
        nn.ConvTranspose2d(3, 4, 3, padding="same")


@pytest.mark.parametrize("kwargs", [
    dict(), dict(stride=2, padding=1), dict(dilation=2, padding=2, bias=False),
    dict(padding="same"), dict(kernel_size=4, padding="same"),
    dict(kernel_size=(2, 3), padding="same", dilation=(1, 2)),
    dict(in_channels=4, out_channels=6, groups=2, padding="valid"),
])
def test_conv2d_parity_with_pytorch(kwargs):
    torch = pytest.importorskip("torch")
    args = dict(in_channels=4, out_channels=3, kernel_size=3)
    args.update(kwargs)
    g = nn.Conv2d(**args)
    t = to_torch(g, torch.nn.Conv2d(**args))
    assert repr(g) == repr(t)
    assert_parity(g, t, rand(2, 4, 7, 8))


@pytest.mark.parametrize("kwargs", [
    dict(), dict(stride=2, padding=1, dilation=2), dict(padding="same", kernel_size=4),
    dict(groups=2, bias=False),
])
def test_conv1d_parity_with_pytorch(kwargs):
    torch = pytest.importorskip("torch")
    args = dict(in_channels=4, out_channels=6, kernel_size=3)
    args.update(kwargs)
    g = nn.Conv1d(**args)
    assert tuple(g.weight.shape) == (6, 4 // args.get("groups", 1), args["kernel_size"])
    t = to_torch(g, torch.nn.Conv1d(**args))
    assert repr(g) == repr(t)
    assert_parity(g, t, rand(2, 4, 11))


@pytest.mark.parametrize("kwargs", [
    dict(), dict(stride=2, padding=1, output_padding=1), dict(dilation=2, bias=False),
    dict(in_channels=4, out_channels=6, groups=2, stride=2),
])
def test_conv_transpose2d_parity_with_pytorch(kwargs):
    torch = pytest.importorskip("torch")
    args = dict(in_channels=4, out_channels=3, kernel_size=3)
    args.update(kwargs)
    g = nn.ConvTranspose2d(**args)
    groups = args.get("groups", 1)
    assert tuple(g.weight.shape) == (args["in_channels"], args["out_channels"] // groups, 3, 3)
    t = to_torch(g, torch.nn.ConvTranspose2d(**args))
    assert repr(g) == repr(t)
    assert_parity(g, t, rand(2, 4, 5, 6))


def test_conv_transpose2d_output_size():
    m = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    x = G.randn(1, 2, 4, 4)
    assert tuple(m(x).shape) == (1, 3, 7, 7)
    assert tuple(m(x, output_size=(8, 8)).shape) == (1, 3, 8, 8)
    assert tuple(m(x, output_size=[1, 3, 8, 7]).shape) == (1, 3, 8, 7)
    with pytest.raises(ValueError, match="valid sizes range from"):
        m(x, output_size=(10, 10))
    torch = pytest.importorskip("torch")
    t = to_torch(m, torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1))
    np.testing.assert_allclose(npy(m(x, output_size=(8, 7))),
                               t(torch.from_numpy(npy(x)), output_size=(8, 7)).detach().numpy(),
                               rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------- pooling
def test_pooling_shapes_and_defaults():
    x = G.randn(2, 3, 8, 9)
    m = nn.MaxPool2d(2)
    assert m.stride == 2 and tuple(m(x).shape) == (2, 3, 4, 4)
    assert tuple(nn.MaxPool2d(3, stride=2, padding=1)(x).shape) == (2, 3, 4, 5)
    assert tuple(nn.AvgPool2d(2, ceil_mode=True)(x).shape) == (2, 3, 4, 5)
    assert tuple(nn.AdaptiveAvgPool2d((1, 1))(x).shape) == (2, 3, 1, 1)
    assert tuple(nn.AdaptiveAvgPool2d(3)(x).shape) == (2, 3, 3, 3)
    out, idx = nn.MaxPool2d(2, return_indices=True)(x)
    assert tuple(out.shape) == tuple(idx.shape) == (2, 3, 4, 4) and idx.dtype is G.int64
    x1 = G.randn(2, 3, 10)
    assert tuple(nn.MaxPool1d(3)(x1).shape) == (2, 3, 3)
    p = nn.AvgPool1d(4, stride=2)
    assert p.kernel_size == (4,) and p.stride == (2,) and p.padding == (0,)
    assert tuple(p(x1).shape) == (2, 3, 4)
    assert list(nn.MaxPool2d(2).state_dict()) == []


@pytest.mark.parametrize("make", [
    lambda nn_: nn_.MaxPool2d(2),
    lambda nn_: nn_.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
    lambda nn_: nn_.MaxPool2d((2, 3), stride=(1, 2), dilation=2),
    lambda nn_: nn_.AvgPool2d(2),
    lambda nn_: nn_.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
    lambda nn_: nn_.AvgPool2d(2, ceil_mode=True),
    lambda nn_: nn_.AvgPool2d(2, divisor_override=3),
    lambda nn_: nn_.AdaptiveAvgPool2d((1, 1)),
    lambda nn_: nn_.AdaptiveAvgPool2d((3, 4)),
])
def test_pool2d_parity_with_pytorch(make):
    torch = pytest.importorskip("torch")
    g, t = make(nn), make(torch.nn)
    assert repr(g) == repr(t)
    assert_parity(g, t, rand(2, 3, 7, 9))


@pytest.mark.parametrize("make", [
    lambda nn_: nn_.MaxPool1d(2),
    lambda nn_: nn_.MaxPool1d(3, stride=2, padding=1, dilation=2),
    lambda nn_: nn_.AvgPool1d(3),
    lambda nn_: nn_.AvgPool1d(3, stride=2, padding=1, count_include_pad=False),
])
def test_pool1d_parity_with_pytorch(make):
    torch = pytest.importorskip("torch")
    g, t = make(nn), make(torch.nn)
    assert repr(g) == repr(t)
    assert_parity(g, t, rand(2, 3, 11))


# ----------------------------------------------------------------- batch norm
def test_batchnorm_attributes_and_buffers():
    bn = nn.BatchNorm2d(5)
    assert bn.eps == 1e-5 and bn.momentum == 0.1 and bn.affine and bn.track_running_stats
    np.testing.assert_array_equal(npy(bn.weight), np.ones(5))
    np.testing.assert_array_equal(npy(bn.bias), np.zeros(5))
    np.testing.assert_array_equal(npy(bn.running_mean), np.zeros(5))
    np.testing.assert_array_equal(npy(bn.running_var), np.ones(5))
    assert bn.num_batches_tracked.dtype is G.int64 and bn.num_batches_tracked.item() == 0
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var",
                                                  "num_batches_tracked"]
    plain = nn.BatchNorm1d(3, affine=False, track_running_stats=False)
    assert plain.weight is None and plain.running_mean is None
    assert list(plain.state_dict()) == []


def test_batchnorm_state_dict_keys_match_pytorch():
    torch = pytest.importorskip("torch")

    def model(nn_):
        return nn_.Sequential(nn_.Conv2d(3, 4, 3), nn_.BatchNorm2d(4), nn_.ReLU(),
                              nn_.Flatten(), nn_.Linear(4 * 4 * 4, 5), nn_.BatchNorm1d(5))

    g, t = model(nn), model(torch.nn)
    assert list(g.state_dict()) == list(t.state_dict())
    assert "1.num_batches_tracked" in g.state_dict() and "5.running_var" in g.state_dict()

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm2d(2)

    assert list(Holder().state_dict()) == ["bn.weight", "bn.bias", "bn.running_mean",
                                           "bn.running_var", "bn.num_batches_tracked"]


def test_batchnorm_training_normalizes_and_tracks_statistics():
    bn = nn.BatchNorm1d(3)
    x = rand(16, 3) * 2 + 5
    out = npy(bn(G.tensor(x)))
    np.testing.assert_allclose(out.mean(axis=0), np.zeros(3), atol=1e-5)
    np.testing.assert_allclose(out.std(axis=0), np.ones(3), atol=1e-3)
    np.testing.assert_allclose(npy(bn.running_mean), 0.1 * x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(npy(bn.running_var), 0.9 + 0.1 * x.var(axis=0, ddof=1),
                               rtol=1e-5)
    assert bn.num_batches_tracked.item() == 1
    bn(G.tensor(x))
    assert bn.num_batches_tracked.item() == 2


def test_batchnorm_eval_uses_running_statistics():
    bn = nn.BatchNorm2d(2)
    with G.no_grad():
        bn.running_mean.copy_(G.tensor([1.0, -1.0]))
        bn.running_var.copy_(G.tensor([4.0, 0.25]))
    bn.eval()
    x = rand(3, 2, 4, 4)
    expected = (x - np.array([1.0, -1.0]).reshape(1, 2, 1, 1)) / \
        np.sqrt(np.array([4.0, 0.25]).reshape(1, 2, 1, 1) + 1e-5)
    np.testing.assert_allclose(npy(bn(G.tensor(x))), expected, rtol=1e-5, atol=1e-5)
    assert bn.num_batches_tracked.item() == 0  # eval does not count batches
    np.testing.assert_array_equal(npy(bn.running_mean), [1.0, -1.0])


def test_batchnorm_without_running_stats_uses_batch_statistics_in_eval():
    bn = nn.BatchNorm1d(3, track_running_stats=False).eval()
    out = npy(bn(G.tensor(rand(8, 3) + 3)))
    np.testing.assert_allclose(out.mean(axis=0), np.zeros(3), atol=1e-5)


def test_batchnorm_input_checks_and_reset():
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input\)"):
        nn.BatchNorm2d(3)(G.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        nn.BatchNorm1d(3)(G.randn(2, 3, 4, 4))
    bn = nn.BatchNorm1d(3)
    bn(G.randn(4, 3, 5))
    bn.reset_running_stats()
    np.testing.assert_array_equal(npy(bn.running_mean), np.zeros(3))
    assert bn.num_batches_tracked.item() == 0


@pytest.mark.parametrize("kwargs", [dict(), dict(momentum=None), dict(momentum=0.3),
                                    dict(affine=False), dict(track_running_stats=False),
                                    dict(eps=1e-3, bias=False)])
def test_batchnorm_parity_with_pytorch(kwargs):
    torch = pytest.importorskip("torch")
    g, t = nn.BatchNorm2d(3, **kwargs), torch.nn.BatchNorm2d(3, **kwargs)
    if g.weight is not None:
        with G.no_grad():
            g.weight.copy_(G.tensor([0.5, 1.5, -1.0]))
    to_torch(g, t)
    assert repr(g) == repr(t)
    for step in range(3):
        assert_parity(g, t, rand(4, 3, 5, 5, seed=step) * (step + 1) + step)
    for name, buf in t.named_buffers():
        np.testing.assert_allclose(npy(g.get_buffer(name)), buf.numpy(), rtol=1e-5, atol=1e-6)
    g.eval(), t.eval()
    assert_parity(g, t, rand(2, 3, 5, 5, seed=7))


def test_batchnorm1d_parity_with_pytorch_on_3d_input():
    torch = pytest.importorskip("torch")
    g, t = nn.BatchNorm1d(4), torch.nn.BatchNorm1d(4)
    to_torch(g, t)
    assert_parity(g, t, rand(3, 4, 6))
    np.testing.assert_allclose(npy(g.running_var), t.running_var.numpy(), rtol=1e-5)
    g.eval(), t.eval()
    assert_parity(g, t, rand(5, 4))


# ----------------------------------------------------------------- layer and group norm
def test_layer_norm_defaults_and_errors():
    ln = nn.LayerNorm(6)
    assert ln.normalized_shape == (6,) and ln.eps == 1e-5 and ln.elementwise_affine
    np.testing.assert_array_equal(npy(ln.weight), np.ones(6))
    out = npy(ln(G.tensor(rand(4, 6) * 3 + 2)))
    np.testing.assert_allclose(out.mean(axis=-1), np.zeros(4), atol=1e-5)
    assert nn.LayerNorm((2, 3), bias=False).bias is None
    assert nn.LayerNorm(3, elementwise_affine=False).weight is None
    gn = nn.GroupNorm(2, 6)
    assert tuple(gn.weight.shape) == (6,) and gn.num_groups == 2
    with pytest.raises(ValueError, match="must be divisible by num_groups"):
        nn.GroupNorm(4, 6)


@pytest.mark.parametrize("make,shape", [
    (lambda nn_: nn_.LayerNorm(5), (3, 5)),
    (lambda nn_: nn_.LayerNorm((4, 5), eps=1e-3), (2, 3, 4, 5)),
    (lambda nn_: nn_.LayerNorm(5, elementwise_affine=False), (2, 5)),
    (lambda nn_: nn_.LayerNorm(5, bias=False), (2, 5)),
    (lambda nn_: nn_.GroupNorm(2, 4), (3, 4, 5, 5)),
    (lambda nn_: nn_.GroupNorm(4, 4, affine=False), (2, 4, 6)),
    (lambda nn_: nn_.GroupNorm(1, 4, eps=1e-3), (2, 4, 3, 3)),
])
def test_layer_and_group_norm_parity_with_pytorch(make, shape):
    torch = pytest.importorskip("torch")
    g, t = make(nn), make(torch.nn)
    if g.weight is not None:
        with G.no_grad():
            g.weight.copy_(G.tensor(rand(*g.weight.shape, seed=3)))
            if g.bias is not None:
                g.bias.copy_(G.tensor(rand(*g.bias.shape, seed=4)))
    to_torch(g, t)
    assert repr(g) == repr(t)
    assert_parity(g, t, rand(*shape))


# ----------------------------------------------------------------- dropout
def test_dropout_training_and_eval():
    G.manual_seed(0)
    d = nn.Dropout(0.25)
    x = G.ones(200, 100)
    out = npy(d(x))
    zeros = (out == 0).mean()
    assert abs(zeros - 0.25) < 0.02
    np.testing.assert_allclose(out[out != 0], 1 / 0.75, rtol=1e-6)
    d.eval()
    np.testing.assert_array_equal(npy(d(x)), npy(x))
    assert repr(d) == "Dropout(p=0.25, inplace=False)"
    with pytest.raises(ValueError, match="between 0 and 1, but got 1.5"):
        nn.Dropout(1.5)
    np.testing.assert_array_equal(npy(nn.Dropout(0.0)(x)), npy(x))


def test_dropout2d_zeros_whole_channels():
    G.manual_seed(1)
    d = nn.Dropout2d(0.5)
    out = npy(d(G.ones(8, 16, 3, 3)))
    per_channel = out.reshape(8, 16, 9)
    assert np.all((per_channel == 0).all(axis=2) | (per_channel == 2.0).all(axis=2))
    assert 0.2 < (per_channel[:, :, 0] == 0).mean() < 0.8
    np.testing.assert_array_equal(npy(d.eval()(G.ones(2, 3, 2, 2))), np.ones((2, 3, 2, 2)))


# ----------------------------------------------------------------- embedding
def test_embedding_init_lookup_and_padding():
    G.manual_seed(2)
    emb = nn.Embedding(1000, 16, padding_idx=3)
    w = npy(emb.weight)
    assert tuple(w.shape) == (1000, 16)
    np.testing.assert_array_equal(w[3], np.zeros(16))
    rows = np.delete(w, 3, axis=0)
    assert abs(rows.mean()) < 0.02 and abs(rows.std() - 1.0) < 0.02
    ids = G.tensor([[1, 3], [999, 0]])
    out = emb(ids)
    assert tuple(out.shape) == (2, 2, 16)
    np.testing.assert_array_equal(npy(out), w[np.array([[1, 3], [999, 0]])])
    out.backward(G.ones(2, 2, 16))
    g = npy(emb.weight.grad)
    np.testing.assert_array_equal(g[3], np.zeros(16))  # the padding row learns nothing
    np.testing.assert_array_equal(g[1], np.ones(16))
    assert nn.Embedding(10, 2, padding_idx=-1).padding_idx == 9
    assert list(emb.state_dict()) == ["weight"]
    assert repr(emb) == "Embedding(1000, 16, padding_idx=3)"


def test_embedding_errors_and_from_pretrained():
    with pytest.raises(ValueError, match="padding_idx must be within num_embeddings"):
        nn.Embedding(5, 2, padding_idx=5)
    with pytest.raises(ValueError, match="sparse=True is not supported"):
        nn.Embedding(5, 2, sparse=True)
    table = G.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    emb = nn.Embedding.from_pretrained(table)
    assert not emb.weight.requires_grad and emb.num_embeddings == 3
    np.testing.assert_array_equal(npy(emb(G.tensor([2, 0]))), [[5.0, 6.0], [1.0, 2.0]])
    with G.no_grad():
        table[0, 0] = 10.0  # the weight shares memory with the given table
    assert npy(emb.weight)[0, 0] == 10.0
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad
    with pytest.raises(ValueError, match="2-dimensional"):
        nn.Embedding.from_pretrained(G.zeros(3))
    with pytest.raises(ValueError, match="Shape of weight does not match"):
        nn.Embedding(4, 2, _weight=table)


def test_embedding_parity_with_pytorch():
    torch = pytest.importorskip("torch")
    g = nn.Embedding(7, 3, padding_idx=0)
    t = to_torch(g, torch.nn.Embedding(7, 3, padding_idx=0))
    assert repr(g) == repr(t)
    ids = np.array([[0, 2, 6], [5, 5, 1]], dtype=np.int64)
    assert_parity(g, t, ids)
    np.testing.assert_allclose(npy(g(G.tensor(ids))), t(torch.from_numpy(ids)).detach().numpy())


# ----------------------------------------------------------------- losses
def test_loss_defaults_buffers_and_legacy_arguments():
    ce = nn.CrossEntropyLoss()
    assert ce.reduction == "mean" and ce.ignore_index == -100 and ce.label_smoothing == 0.0
    assert ce.weight is None and repr(ce) == "CrossEntropyLoss()"
    w = G.tensor([1.0, 2.0, 0.5])
    weighted = nn.CrossEntropyLoss(weight=w)
    assert weighted.weight is w and list(weighted.state_dict()) == ["weight"]
    bce = nn.BCEWithLogitsLoss(pos_weight=G.tensor([2.0]))
    assert list(bce.state_dict()) == ["pos_weight"]
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        assert nn.MSELoss(size_average=False).reduction == "sum"
    with pytest.warns(UserWarning):
        assert nn.L1Loss(reduce=False).reduction == "none"
    with pytest.raises(ValueError, match="'avg' is not a valid value for reduction"):
        nn.MSELoss(reduction="avg")
    assert nn.KLDivLoss(reduction="batchmean").reduction == "batchmean"
    assert nn.HuberLoss(delta=0.5).delta == 0.5 and nn.SmoothL1Loss(beta=0.3).beta == 0.3


def _classification_inputs():
    logits = rand(6, 4)
    target = np.array([0, 3, 1, 1, 2, 0], dtype=np.int64)
    return logits, target


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("make", [
    lambda nn_, r: nn_.CrossEntropyLoss(reduction=r),
    lambda nn_, r: nn_.CrossEntropyLoss(reduction=r, label_smoothing=0.1),
    lambda nn_, r: nn_.CrossEntropyLoss(reduction=r, ignore_index=1),
    lambda nn_, r: nn_.NLLLoss(reduction=r),
])
def test_classification_losses_parity_with_pytorch(make, reduction):
    torch = pytest.importorskip("torch")
    g, t = make(nn, reduction), make(torch.nn, reduction)
    logits, target = _classification_inputs()
    if isinstance(g, nn.NLLLoss):
        logits = torch.log_softmax(torch.from_numpy(logits), 1).numpy()
    assert_parity(g, t, logits, target)


def test_weighted_cross_entropy_parity_with_pytorch():
    torch = pytest.importorskip("torch")
    w = np.array([1.0, 2.0, 0.5, 3.0], dtype=np.float32)
    g = nn.CrossEntropyLoss(weight=G.tensor(w))
    t = torch.nn.CrossEntropyLoss(weight=torch.from_numpy(w))
    assert_parity(g, t, *_classification_inputs())
    # class probabilities as targets
    probs = torch.softmax(torch.from_numpy(rand(6, 4, seed=5)), 1).numpy()
    assert_parity(nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), rand(6, 4), probs)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("make", [
    lambda nn_, r: nn_.MSELoss(reduction=r),
    lambda nn_, r: nn_.L1Loss(reduction=r),
    lambda nn_, r: nn_.SmoothL1Loss(reduction=r),
    lambda nn_, r: nn_.SmoothL1Loss(reduction=r, beta=0.5),
    lambda nn_, r: nn_.HuberLoss(reduction=r, delta=0.7),
])
def test_regression_losses_parity_with_pytorch(make, reduction):
    torch = pytest.importorskip("torch")
    assert_parity(make(nn, reduction), make(torch.nn, reduction), rand(5, 3), rand(5, 3, seed=1))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_losses_parity_with_pytorch(reduction):
    torch = pytest.importorskip("torch")
    probs = 1 / (1 + np.exp(-rand(4, 3)))
    target = (rand(4, 3, seed=2) > 0).astype(np.float32)
    assert_parity(nn.BCELoss(reduction=reduction), torch.nn.BCELoss(reduction=reduction),
                  probs.astype(np.float32), target)
    w = np.array([1.0, 0.5, 2.0], dtype=np.float32)
    pos = np.array([3.0, 1.0, 0.5], dtype=np.float32)
    g = nn.BCEWithLogitsLoss(weight=G.tensor(w), pos_weight=G.tensor(pos), reduction=reduction)
    t = torch.nn.BCEWithLogitsLoss(weight=torch.from_numpy(w), pos_weight=torch.from_numpy(pos),
                                   reduction=reduction)
    assert_parity(g, t, rand(4, 3) * 3, target)


@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_loss_parity_with_pytorch(reduction, log_target):
    torch = pytest.importorskip("torch")
    inp = torch.log_softmax(torch.from_numpy(rand(4, 5)), 1).numpy()
    target = torch.softmax(torch.from_numpy(rand(4, 5, seed=3)), 1)
    target = (target.log() if log_target else target).numpy()
    assert_parity(nn.KLDivLoss(reduction=reduction, log_target=log_target),
                  torch.nn.KLDivLoss(reduction=reduction, log_target=log_target), inp, target)


# ----------------------------------------------------------------- a whole model
def _cnn(nn_):
    return nn_.Sequential(
        nn_.Conv2d(1, 4, 3, padding=1), nn_.BatchNorm2d(4), nn_.ReLU(), nn_.MaxPool2d(2),
        nn_.Conv2d(4, 8, 3, padding="same"), nn_.GroupNorm(2, 8), nn_.GELU(),
        nn_.AdaptiveAvgPool2d((2, 2)), nn_.Flatten(), nn_.Dropout(0.3),
        nn_.Linear(32, 10), nn_.LayerNorm(10), nn_.LogSoftmax(dim=1))


def test_cnn_forward_backward_and_train_step():
    G.manual_seed(0)
    model = _cnn(nn)
    x = G.randn(4, 1, 8, 8)
    target = G.tensor([1, 0, 3, 9])
    loss_fn = nn.NLLLoss()
    losses = []
    for _ in range(5):
        loss = loss_fn(model(x), target)
        model.zero_grad()
        loss.backward()
        for name, p in model.named_parameters():
            assert p.grad is not None and tuple(p.grad.shape) == tuple(p.shape), name
        with G.no_grad():
            for p in model.parameters():
                p -= 0.05 * p.grad
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert model[1].num_batches_tracked.item() == 5
    model.eval()
    a, b = npy(model(x)), npy(model(x))
    np.testing.assert_array_equal(a, b)  # eval: deterministic (no dropout, running stats)


def test_cnn_eval_parity_with_pytorch():
    torch = pytest.importorskip("torch")
    g, t = _cnn(nn), _cnn(torch.nn)
    assert list(g.state_dict()) == list(t.state_dict())
    assert repr(g) == repr(t)
    g(G.randn(4, 1, 8, 8))  # one training batch moves the running statistics
    to_torch(g, t)
    g.eval(), t.eval()
    assert_parity(g, t, rand(3, 1, 8, 8), rtol=1e-4, atol=1e-5)
