"""genesis.nn mechanics: Parameter, Module registration and traversal, state_dict,
train/eval, conversion, hooks, repr, containers, init, Linear and activations."""
import math
from collections import OrderedDict

import numpy as np
import pytest

import genesis as G
import genesis.nn as nn
import genesis.nn.functional as F
from genesis.nn import init


def npy(t):
    return t.detach().numpy()


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.act = nn.ReLU()
        self.register_buffer("steps", G.tensor(0))
        self.register_buffer("scratch", G.zeros(2), persistent=False)

    def forward(self, x):
        return self.act(self.fc(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Linear(4, 2, bias=False)
        self.scale = nn.Parameter(G.ones(1))

    def forward(self, x):
        return self.head(self.block(x)) * self.scale


# ----------------------------------------------------------------- Parameter
def test_parameter_is_a_leaf_tensor_that_requires_grad():
    p = nn.Parameter(G.zeros(2, 3))
    assert isinstance(p, G.Tensor) and isinstance(p, nn.Parameter)
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    assert tuple(p.shape) == (2, 3) and p.dtype is G.float32
    assert not nn.Parameter(G.zeros(2), requires_grad=False).requires_grad
    empty = nn.Parameter()
    assert tuple(empty.shape) == (0,) and empty.requires_grad


def test_parameter_shares_memory_with_its_data():
    data = G.zeros(3)
    p = nn.Parameter(data)
    data.add_(1.0)
    np.testing.assert_array_equal(npy(p), [1.0, 1.0, 1.0])


def test_parameter_rejects_non_tensors_and_integer_grad():
    with pytest.raises(TypeError, match="Parameter: data must be a Tensor"):
        nn.Parameter([1.0, 2.0])
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(G.tensor([1, 2]))
    assert not nn.Parameter(G.tensor([1, 2]), requires_grad=False).requires_grad


def test_parameter_repr():
    r = repr(nn.Parameter(G.tensor([1.0, 2.0])))
    assert r.startswith("Parameter containing:\ntensor([1., 2.]")
    assert "requires_grad=True" in r


def test_ops_on_parameters_return_plain_tensors():
    p = nn.Parameter(G.randn(3, 4))
    results = [p * 2, p + p, -p, p.t(), p[0], p.reshape(12), p.detach(), p.clone(),
               p.exp(), p @ G.randn(4, 2), p.to(G.float64), F.linear(G.randn(2, 4), p)]
    for r in results:
        assert type(r) is G.Tensor, type(r)
    assert (p * 2).grad_fn is not None and p.detach().grad_fn is None


def test_parameter_gradients_accumulate():
    p = nn.Parameter(G.tensor([1.0, 2.0]))
    (p * p).backward(G.ones(2))
    (p * 3.0).backward(G.ones(2))
    np.testing.assert_allclose(npy(p.grad), [5.0, 7.0])
    assert type(p.grad) is G.Tensor


# ----------------------------------------------------------------- registration
def test_attribute_assignment_registers_parameters_buffers_and_modules():
    m = Block()
    assert list(m._parameters) == []
    assert list(m._modules) == ["fc", "act"]
    assert list(m._buffers) == ["steps", "scratch"]
    assert m.fc.weight is m._modules["fc"]._parameters["weight"]
    assert m.steps is m._buffers["steps"]
    m.extra = nn.Parameter(G.zeros(1))
    assert "extra" in m._parameters and "extra" not in m.__dict__
    m.plain = G.zeros(1)  # a plain tensor attribute is not state
    assert "plain" in m.__dict__ and "plain" not in m._buffers
    m.steps = G.tensor(5)  # assigning to a buffer name replaces the buffer
    assert m._buffers["steps"].item() == 5


def test_reassignment_moves_between_registries():
    m = nn.Module()
    m.x = nn.Linear(1, 1)
    assert "x" in m._modules
    m.x = nn.Parameter(G.zeros(1))
    assert "x" in m._parameters and "x" not in m._modules
    m.x = None  # None keeps the slot (as an absent parameter)
    assert "x" in m._parameters and m.x is None
    m.x = nn.Parameter(G.zeros(2))
    del m.x
    assert "x" not in m._parameters
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'x'"):
        m.x


def test_assignment_type_errors():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'weight'"):
        m.weight = G.zeros(2, 2)
    m2 = Block()
    with pytest.raises(TypeError, match="as child module 'fc'"):
        m2.fc = 3
    with pytest.raises(TypeError, match="as buffer 'steps'"):
        m2.steps = 3


def test_assignment_before_init_is_an_error():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(G.zeros(1))

    with pytest.raises(AttributeError, match=r"before Module.__init__\(\) call"):
        Bad()

    class BadModule(nn.Module):
        def __init__(self):
            self.sub = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match=r"before Module.__init__\(\) call"):
        BadModule()


def test_register_buffer_and_parameter_checks():
    m = nn.Linear(2, 2)
    with pytest.raises(KeyError, match="contain"):
        m.register_buffer("a.b", G.zeros(1))
    with pytest.raises(KeyError, match="empty string"):
        m.register_parameter("", None)
    with pytest.raises(TypeError, match="should be a string"):
        m.register_buffer(3, G.zeros(1))
    with pytest.raises(KeyError, match="attribute 'weight' already exists"):
        m.register_buffer("weight", G.zeros(1))
    with pytest.raises(TypeError, match="Tensor or None required"):
        m.register_buffer("b", [1.0])
    with pytest.raises(TypeError, match="Parameter or None required"):
        m.register_parameter("p", G.zeros(1))
    x = G.ones(2, requires_grad=True)
    nonleaf = nn.Parameter(G.ones(2))
    nonleaf.grad_fn = (x * 2).grad_fn
    with pytest.raises(ValueError, match="non-leaf Tensor"):
        m.register_parameter("q", nonleaf)
    m.register_buffer("none_buf", None)
    assert "none_buf" in m._buffers and m.none_buf is None
    assert "none_buf" not in m.state_dict()


def test_add_module_register_module_and_checks():
    m = nn.Module()
    m.add_module("a", nn.ReLU())
    m.register_module("b", nn.Tanh())
    assert list(m._modules) == ["a", "b"]
    with pytest.raises(TypeError, match="is not a Module subclass"):
        m.add_module("c", 3)
    with pytest.raises(KeyError, match="contain"):
        m.add_module("c.d", nn.ReLU())


def test_get_submodule_parameter_buffer():
    net = Net()
    assert net.get_submodule("") is net
    assert net.get_submodule("block.fc") is net.block.fc
    assert net.get_parameter("block.fc.weight") is net.block.fc.weight
    assert net.get_parameter("scale") is net.scale
    assert net.get_buffer("block.steps") is net.block.steps
    with pytest.raises(AttributeError, match="Block has no attribute `nope`"):
        net.get_submodule("block.nope")
    with pytest.raises(AttributeError, match="`scale` is not an nn.Module"):
        net.get_submodule("scale")
    with pytest.raises(AttributeError, match="is not an nn.Parameter"):
        net.get_parameter("block.steps")
    with pytest.raises(AttributeError, match="is not a buffer"):
        net.get_buffer("block.fc.weight")


def test_dir_lists_registered_names():
    d = dir(Net())
    for name in ("block", "head", "scale", "forward", "parameters", "training"):
        assert name in d
    assert "0" not in dir(nn.Sequential(nn.ReLU()))


# ----------------------------------------------------------------- traversal
def test_named_parameters_order_prefix_and_recurse():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "block.fc.weight", "block.fc.bias", "head.weight"]
    assert [n for n, _ in net.named_parameters(prefix="model")] == \
        ["model." + n for n in names]
    assert [n for n, _ in net.named_parameters(recurse=False)] == ["scale"]
    assert [p for p in net.parameters()][1] is net.block.fc.weight


def test_shared_parameters_and_modules_are_listed_once():
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(seq.parameters())) == 2
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]
    assert [n for n, _ in seq.named_parameters(remove_duplicate=False)] == \
        ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [n for n, _ in seq.named_modules()] == ["", "0", "1"]
    assert [n for n, _ in seq.named_modules(remove_duplicate=False)] == ["", "0", "1", "2"]
    assert len(list(seq.children())) == 2
    # the state dict lists every path, as PyTorch's does
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_modules_children_and_buffers():
    net = Net()
    assert [n for n, _ in net.named_children()] == ["block", "head"]
    assert list(net.children()) == [net.block, net.head]
    mods = list(net.modules())
    assert mods[0] is net and len(mods) == 5
    assert [n for n, _ in net.named_modules()] == ["", "block", "block.fc", "block.act", "head"]
    assert [n for n, _ in net.named_buffers()] == ["block.steps", "block.scratch"]
    assert len(list(net.buffers())) == 2
    assert list(net.buffers(recurse=False)) == []


def test_parameter_count_of_an_mlp():
    mlp = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    assert sum(p.numel() for p in mlp.parameters()) == 784 * 256 + 256 + 256 * 10 + 10
    conv_free = nn.Linear(5, 3, bias=False)
    assert sum(p.numel() for p in conv_free.parameters()) == 15


# ----------------------------------------------------------------- modes, grads
def test_train_eval_recurse():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.block.train()
    assert net.block.fc.training and not net.training and not net.head.training
    assert net.train() is net and all(m.training for m in net.modules())
    with pytest.raises(ValueError, match="boolean"):
        net.train("yes")


def test_zero_grad_and_requires_grad_():
    net = Net()
    for p in net.parameters():
        p.grad = G.ones(*p.shape)
    net.zero_grad(set_to_none=False)
    for p in net.parameters():
        np.testing.assert_array_equal(npy(p.grad), np.zeros(tuple(p.shape)))
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    assert net.requires_grad_(False) is net
    assert not any(p.requires_grad for p in net.parameters())
    net.block.requires_grad_()
    assert [n for n, p in net.named_parameters() if p.requires_grad] == \
        ["block.fc.weight", "block.fc.bias"]


# ----------------------------------------------------------------- state dict
def test_state_dict_keys_values_and_sharing():
    net = Net()
    sd = net.state_dict()
    assert isinstance(sd, OrderedDict)
    # a module's own entries come before its children's, as in PyTorch
    assert list(sd) == ["scale", "block.steps", "block.fc.weight", "block.fc.bias",
                        "head.weight"]
    for key, value in sd.items():
        assert type(value) is G.Tensor and not value.requires_grad, key
    with G.no_grad():
        net.block.fc.weight.fill_(3.0)
    assert npy(sd["block.fc.weight"]).max() == 3.0  # detached views share memory
    kept = net.state_dict(keep_vars=True)
    assert kept["scale"] is net.scale
    assert list(net.block.state_dict(prefix="b.")) == ["b.steps", "b.fc.weight", "b.fc.bias"]
    dest = OrderedDict()
    assert net.head.state_dict(destination=dest) is dest and list(dest) == ["weight"]


def test_state_dict_key_names_match_pytorch():
    torch = pytest.importorskip("torch")
    tnet = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
                               torch.nn.Sequential(torch.nn.Linear(4, 4)),
                               torch.nn.Linear(4, 2, bias=False))
    gnet = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 4)),
                         nn.Linear(4, 2, bias=False))
    assert list(gnet.state_dict()) == list(tnet.state_dict())
    assert [n for n, _ in gnet.named_modules()] == [n for n, _ in tnet.named_modules()]


def test_load_state_dict_round_trip_copies_in_place():
    G.manual_seed(0)
    a, b = Net(), Net()
    with G.no_grad():
        a.block.steps.fill_(7)
    params_before = list(b.parameters())
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    assert all(p is q for p, q in zip(b.parameters(), params_before))
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(npy(va), npy(vb), err_msg=k)
    assert b.block.steps.item() == 7
    for p in b.parameters():
        assert p.is_leaf and p.requires_grad and p.grad_fn is None
    # the copy is a copy: changing a no longer changes b
    with G.no_grad():
        a.scale.fill_(-1.0)
    assert npy(b.scale)[0] != -1.0


def test_load_state_dict_accepts_numpy_and_converts_dtype():
    m = nn.Linear(2, 3)
    w = np.arange(6, dtype=np.float64).reshape(3, 2)
    m.load_state_dict({"weight": w, "bias": G.tensor([1.0, 2.0, 3.0], dtype=G.float64)})
    assert m.weight.dtype is G.float32
    np.testing.assert_array_equal(npy(m.weight), w.astype(np.float32))
    np.testing.assert_array_equal(npy(m.bias), [1.0, 2.0, 3.0])


def test_load_state_dict_missing_and_unexpected_keys():
    m = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    sd = m.state_dict()
    del sd["2.bias"]
    sd["2.extra"] = G.zeros(1)
    sd["1.weight"] = G.zeros(1)
    sd["0.weight.bogus"] = G.zeros(1)
    with pytest.raises(RuntimeError) as info:
        m.load_state_dict(sd)
    msg = str(info.value)
    assert msg.startswith("Error(s) in loading state_dict for Sequential:")
    assert 'Missing key(s) in state_dict: "2.bias".' in msg
    assert 'Unexpected key(s) in state_dict: "0.weight.bogus", "1.weight", "2.extra".' in msg
    result = m.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["2.bias"]
    assert sorted(result.unexpected_keys) == ["0.weight.bogus", "1.weight", "2.extra"]
    missing, unexpected = result  # a named tuple
    assert missing == ["2.bias"]


def test_load_state_dict_shape_mismatch_is_an_error_even_when_not_strict():
    m = nn.Linear(3, 4)
    before = npy(m.weight).copy()
    bad = {"weight": G.zeros(2, 2), "bias": G.zeros(4)}
    for strict in (True, False):
        with pytest.raises(RuntimeError, match=r"size mismatch for weight: copying a param "
                                               r"with shape genesis.Size\(\[2, 2\]\) from "
                                               r"checkpoint, the shape in current model is "
                                               r"genesis.Size\(\[4, 3\]\)"):
            m.load_state_dict(bad, strict=strict)
    np.testing.assert_array_equal(npy(m.weight), before)
    with pytest.raises(RuntimeError, match='While copying the parameter named "bias"'):
        m.load_state_dict({"weight": G.zeros(4, 3), "bias": [0.0] * 4})
    with pytest.raises(TypeError, match="dict-like"):
        m.load_state_dict([1, 2])


def test_state_dict_survives_genesis_save_and_load(tmp_path):
    a, b = Net(), Net()
    with G.no_grad():
        a.block.steps.fill_(3)
    G.save(a.state_dict(), tmp_path / "net.gen")
    loaded = G.load(tmp_path / "net.gen")
    assert list(loaded) == list(a.state_dict())
    b.load_state_dict(loaded)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        np.testing.assert_array_equal(npy(va), npy(vb), err_msg=k)
        assert va.dtype is vb.dtype


def test_non_persistent_buffers_are_not_saved_or_expected():
    m = Block()
    assert "scratch" not in m.state_dict()
    assert "scratch" in dict(m.named_buffers())
    m.load_state_dict(m.state_dict())  # nothing missing


# ----------------------------------------------------------------- conversion
def test_to_dtype_converts_in_place_and_keeps_parameter_identity():
    net = Net()
    params = list(net.parameters())  # what an optimizer would hold
    net.block.fc.weight.grad = G.ones(4, 3)
    assert net.to(G.float64) is net
    assert all(p is q for p, q in zip(net.parameters(), params))
    for p in params:
        assert isinstance(p, nn.Parameter) and p.dtype is G.float64 and p.requires_grad
    assert net.block.fc.weight.grad.dtype is G.float64
    assert net.block.steps.dtype is G.int64  # integer buffers keep their dtype
    assert net.block.scratch.dtype is G.float64
    out = net(G.randn(5, 3, dtype=G.float64))
    assert out.dtype is G.float64
    net.float()
    assert all(p.dtype is G.float32 for p in params)
    net.double()
    assert all(p.dtype is G.float64 for p in params)


def test_to_argument_forms():
    m = nn.Linear(2, 2)
    w = m.weight
    m.to("cpu")
    m.to(G.device("cpu"), G.float64)
    assert w.dtype is G.float64
    m.to(dtype=G.float32, device="cpu", non_blocking=True)
    assert w.dtype is G.float32
    m.to(G.zeros(1, dtype=G.float64))
    assert w.dtype is G.float64
    m.float()
    assert w.dtype is G.float32 and m.cpu() is m
    with pytest.raises(RuntimeError, match="unknown device 'float32'"):
        m.to("float32")  # strings name devices
    with pytest.raises(TypeError, match="only accepts floating point dtypes"):
        m.to(G.int64)
    with pytest.raises(TypeError, match="unexpected keyword argument 'copy'"):
        m.to(copy=True)
    with pytest.raises(TypeError, match="invalid argument"):
        m.to(3.5)


def test_conversion_invalidates_graphs_that_saved_the_old_data():
    m = nn.Linear(2, 2, bias=False)
    out = m(G.randn(3, 2, requires_grad=True))
    m.double()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward(G.ones(3, 2))


# ----------------------------------------------------------------- calling and hooks
def test_forward_pre_hook_and_forward_hook():
    m = nn.Linear(2, 2)
    calls = []

    def pre(module, args):
        calls.append(("pre", module))
        return args[0] * 0.0

    def post(module, args, output):
        calls.append(("post", len(args)))
        return output + 1.0

    h1 = m.register_forward_pre_hook(pre)
    h2 = m.register_forward_hook(post)
    out = m(G.randn(3, 2))
    expected = npy(m.bias) + 1.0
    np.testing.assert_allclose(npy(out), np.broadcast_to(expected, (3, 2)), rtol=1e-6)
    assert calls == [("pre", m), ("post", 1)]
    h1.remove()
    h2.remove()
    h2.remove()  # removing twice is harmless
    x = G.randn(3, 2)
    np.testing.assert_allclose(npy(m(x)), npy(F.linear(x, m.weight, m.bias)), rtol=1e-6)


def test_hooks_with_kwargs_prepend_and_context_manager():
    class Scale(nn.Module):
        def forward(self, x, factor=1.0):
            return x * factor

    m = Scale()
    order = []
    m.register_forward_hook(lambda mod, a, o: order.append("second"))
    m.register_forward_hook(lambda mod, a, o: order.append("first"), prepend=True)

    def pre(mod, args, kwargs):
        return args, {"factor": kwargs.get("factor", 1.0) * 10}

    def post(mod, args, kwargs, output):
        assert kwargs == {"factor": 20.0}
        return output - 1.0

    with m.register_forward_pre_hook(pre, with_kwargs=True), \
            m.register_forward_hook(post, with_kwargs=True):
        out = m(G.tensor([1.0]), factor=2.0)
    np.testing.assert_allclose(npy(out), [19.0])
    assert order == ["first", "second"]
    np.testing.assert_allclose(npy(m(G.tensor([1.0]), factor=2.0)), [2.0])

    def bad(mod, args, kwargs):
        return 5

    m.register_forward_pre_hook(bad, with_kwargs=True)
    with pytest.raises(RuntimeError, match="forward pre-hook must return None or a tuple"):
        m(G.tensor([1.0]))


def test_module_without_forward():
    with pytest.raises(TypeError, match='missing the required "forward" function'):
        nn.Module()(G.zeros(1))
    with pytest.raises(TypeError, match='missing the required "forward" function'):
        nn.ModuleList([nn.ReLU()])(G.zeros(1))


# ----------------------------------------------------------------- repr and apply
def test_repr_tree():
    net = Net()
    assert repr(net) == (
        "Net(\n"
        "  (block): Block(\n"
        "    (fc): Linear(in_features=3, out_features=4, bias=True)\n"
        "    (act): ReLU()\n"
        "  )\n"
        "  (head): Linear(in_features=4, out_features=2, bias=False)\n"
        ")")
    assert repr(nn.Module()) == "Module()"


def test_repr_matches_pytorch():
    torch = pytest.importorskip("torch")
    tn, gn = torch.nn, nn
    pairs = [
        (tn.Sequential(tn.Linear(3, 4), tn.ReLU(inplace=True),
                       tn.Sequential(tn.Tanh(), tn.Flatten()), tn.Linear(4, 2, bias=False)),
         gn.Sequential(gn.Linear(3, 4), gn.ReLU(inplace=True),
                       gn.Sequential(gn.Tanh(), gn.Flatten()), gn.Linear(4, 2, bias=False))),
        (tn.ModuleList([tn.Linear(2, 2) for _ in range(3)] + [tn.GELU("tanh")]),
         gn.ModuleList([gn.Linear(2, 2) for _ in range(3)] + [gn.GELU("tanh")])),
        (tn.ModuleDict({"a": tn.LeakyReLU(0.2), "b": tn.ELU(alpha=0.5)}),
         gn.ModuleDict({"a": gn.LeakyReLU(0.2), "b": gn.ELU(alpha=0.5)})),
        (tn.Sequential(tn.Softplus(beta=2.0), tn.Softmax(dim=1), tn.LogSoftmax(dim=-1),
                       tn.SiLU(), tn.Sigmoid(), tn.Identity(), tn.Unflatten(1, (2, 3))),
         gn.Sequential(gn.Softplus(beta=2.0), gn.Softmax(dim=1), gn.LogSoftmax(dim=-1),
                       gn.SiLU(), gn.Sigmoid(), gn.Identity(), gn.Unflatten(1, (2, 3)))),
    ]
    for t, g in pairs:
        assert repr(g) == repr(t)


def test_apply_visits_children_first():
    net = Net()
    seen = []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Linear", "ReLU", "Block", "Linear", "Net"]

    def init_weights(m):
        if isinstance(m, nn.Linear):
            init.constant_(m.weight, 0.5)

    net.apply(init_weights)
    assert np.all(npy(net.block.fc.weight) == 0.5) and np.all(npy(net.head.weight) == 0.5)


# ----------------------------------------------------------------- containers
def test_sequential_indexing_slicing_and_editing():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and seq[0] is a and seq[-1] is c and list(seq) == [a, b, c]
    sub = seq[1:]
    assert isinstance(sub, nn.Sequential) and list(sub) == [b, c]
    assert list(sub._modules) == ["1", "2"]
    with pytest.raises(IndexError, match="out of range"):
        seq[3]
    d = nn.Tanh()
    seq[1] = d
    assert seq[1] is d
    del seq[0]
    assert list(seq._modules) == ["0", "1"] and seq[0] is d
    assert seq.append(a) is seq and seq[2] is a
    seq.insert(0, b)
    assert list(seq) == [b, d, c, a] and list(seq._modules) == ["0", "1", "2", "3"]
    assert seq.pop(1) is d and len(seq) == 3
    assert list(seq + nn.Sequential(d)) == [b, c, a, d]
    seq.extend([d])
    assert len(seq) == 4


def test_sequential_from_ordered_dict_and_forward():
    seq = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 3)), ("act", nn.ReLU())]))
    assert seq.fc is seq[0] and list(seq._modules) == ["fc", "act"]
    x = G.randn(4, 2)
    expected = np.maximum(npy(x) @ npy(seq.fc.weight).T + npy(seq.fc.bias), 0)
    np.testing.assert_allclose(npy(seq(x)), expected, rtol=1e-5, atol=1e-6)
    assert list(seq.state_dict()) == ["fc.weight", "fc.bias"]


def test_module_list():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and len(list(layers.parameters())) == 6
    assert isinstance(layers[:2], nn.ModuleList) and len(layers[:2]) == 2
    extra = nn.ReLU()
    layers.append(extra)
    assert layers[-1] is extra
    layers.insert(1, nn.Tanh())
    assert isinstance(layers[1], nn.Tanh) and len(layers) == 5
    del layers[1]
    assert list(layers._modules) == ["0", "1", "2", "3"] and layers[3] is extra
    layers += [nn.Sigmoid()]
    assert len(layers) == 5
    assert layers.pop(-1).__class__ is nn.Sigmoid
    layers[0] = nn.Identity()
    assert isinstance(layers[0], nn.Identity)
    assert len(layers + nn.ModuleList([nn.ReLU()])) == 5
    with pytest.raises(TypeError, match="iterable"):
        layers.extend(nn.ReLU())
    assert [n for n, _ in layers.named_parameters()] == \
        ["1.weight", "1.bias", "2.weight", "2.bias"]


def test_module_dict():
    d = nn.ModuleDict({"a": nn.Linear(1, 1)})
    d["b"] = nn.ReLU()
    d.update([("c", nn.Tanh())])
    assert list(d) == ["a", "b", "c"] and "b" in d and len(d) == 3
    assert list(d.keys()) == ["a", "b", "c"] and isinstance(d["a"], nn.Linear)
    assert [k for k, _ in d.items()] == ["a", "b", "c"] and len(list(d.values())) == 3
    assert isinstance(d.pop("b"), nn.ReLU) and "b" not in d
    assert [n for n, _ in d.named_parameters()] == ["a.weight", "a.bias"]
    with pytest.raises(ValueError, match="element #0"):
        d.update([("x",)])
    d.clear()
    assert len(d) == 0


def test_parameter_list():
    pl = nn.ParameterList([nn.Parameter(G.zeros(2)), G.ones(3)])
    assert len(pl) == 2 and all(isinstance(p, nn.Parameter) for p in pl)
    pl.append(G.zeros(1, 4))
    assert [n for n, _ in pl.named_parameters()] == ["0", "1", "2"]
    assert isinstance(pl[-1], nn.Parameter) and tuple(pl[-1].shape) == (1, 4)
    assert len(pl[1:]) == 2
    holder = nn.Module()
    holder.params = pl
    assert [n for n, _ in holder.named_parameters()] == ["params.0", "params.1", "params.2"]
    assert "(1): Parameter containing: [genesis.float32 of size 3]" in repr(pl)


# ----------------------------------------------------------------- init
@pytest.mark.parametrize("name,param,expected", [
    ("linear", None, 1.0), ("conv2d", None, 1.0), ("sigmoid", None, 1.0),
    ("tanh", None, 5.0 / 3), ("relu", None, math.sqrt(2.0)),
    ("leaky_relu", None, math.sqrt(2.0 / (1 + 0.01 ** 2))),
    ("leaky_relu", math.sqrt(5), math.sqrt(2.0 / 6)), ("selu", None, 0.75),
])
def test_calculate_gain(name, param, expected):
    assert init.calculate_gain(name, param) == pytest.approx(expected)


def test_calculate_gain_errors_and_parity():
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="not a valid number"):
        init.calculate_gain("leaky_relu", True)
    torch = pytest.importorskip("torch")
    for name in ("linear", "conv1d", "conv_transpose2d", "sigmoid", "tanh", "relu", "selu"):
        assert init.calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name))
    for slope in (None, 0.2, 1, math.sqrt(5)):
        assert init.calculate_gain("leaky_relu", slope) == \
            pytest.approx(torch.nn.init.calculate_gain("leaky_relu", slope))


@pytest.mark.parametrize("shape,fans", [
    ((4, 3), (3, 4)), ((8, 4, 3, 3), (36, 72)), ((6, 2, 5), (10, 30)), ((1, 1), (1, 1)),
    ((3, 2, 2, 2, 2), (16, 24)),
])
def test_fan_in_and_fan_out(shape, fans):
    assert init._calculate_fan_in_and_fan_out(G.empty(*shape)) == fans


def test_fan_computation_matches_pytorch_and_rejects_1d():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(G.empty(5))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(G.empty(3, 3), mode="fan_avg")
    torch = pytest.importorskip("torch")
    for shape in ((4, 3), (8, 4, 3, 3), (6, 2, 5), (2, 16, 1, 7)):
        assert init._calculate_fan_in_and_fan_out(G.empty(*shape)) == \
            torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))


def test_uniform_and_normal_statistics():
    G.manual_seed(1)
    t = G.empty(200, 500)
    assert init.uniform_(t, -2.0, 3.0) is t
    a = npy(t)
    assert a.min() >= -2.0 and a.max() < 3.0
    assert abs(a.mean() - 0.5) < 0.02 and abs(a.std() - 5 / math.sqrt(12)) < 0.02
    init.normal_(t, mean=1.5, std=0.5)
    a = npy(t)
    assert abs(a.mean() - 1.5) < 0.01 and abs(a.std() - 0.5) < 0.01


def test_constant_zeros_ones_eye():
    t = G.empty(3, 4)
    np.testing.assert_array_equal(npy(init.constant_(t, 2.5)), np.full((3, 4), 2.5))
    np.testing.assert_array_equal(npy(init.zeros_(t)), np.zeros((3, 4)))
    np.testing.assert_array_equal(npy(init.ones_(t)), np.ones((3, 4)))
    np.testing.assert_array_equal(npy(init.eye_(t)), np.eye(3, 4))
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions"):
        init.eye_(G.empty(2, 2, 2))


def test_init_on_parameters_records_no_graph():
    p = nn.Parameter(G.empty(30, 20))
    for fn in (init.uniform_, init.normal_, init.xavier_uniform_, init.xavier_normal_,
               init.kaiming_uniform_, init.kaiming_normal_, init.trunc_normal_,
               init.zeros_, init.ones_, init.eye_):
        assert fn(p) is p
        assert p.is_leaf and p.grad_fn is None and p.requires_grad and p.dtype is G.float32


def test_xavier_bounds_and_std():
    G.manual_seed(2)
    t = G.empty(300, 200)
    init.xavier_uniform_(t, gain=2.0)
    bound = 2.0 * math.sqrt(6.0 / 500)
    a = npy(t)
    assert np.abs(a).max() <= bound and np.abs(a).max() > 0.99 * bound
    init.xavier_normal_(t)
    assert abs(npy(t).std() - math.sqrt(2.0 / 500)) < 0.002


def test_kaiming_bounds_and_std():
    G.manual_seed(3)
    t = G.empty(64, 32, 3, 3)  # fan_in 288, fan_out 576
    init.kaiming_uniform_(t, a=0, mode="fan_in", nonlinearity="relu")
    bound = math.sqrt(2.0) * math.sqrt(3.0 / 288)
    a = npy(t)
    assert np.abs(a).max() <= bound and np.abs(a).max() > 0.99 * bound
    init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")
    assert abs(npy(t).std() - math.sqrt(2.0 / 576)) < 0.002
    init.kaiming_uniform_(t, a=math.sqrt(5))  # Linear/Conv default: bound 1/sqrt(fan_in)
    assert np.abs(npy(t)).max() <= 1 / math.sqrt(288)
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_uniform_(G.empty(0, 3))


def test_trunc_normal_stays_in_bounds():
    G.manual_seed(4)
    t = G.empty(400, 250)
    init.trunc_normal_(t, mean=0.5, std=1.0, a=-1.0, b=1.5)
    a = npy(t)
    assert a.min() >= -1.0 and a.max() <= 1.5
    # moments of N(0.5, 1) truncated to [-1.5, 1.0] standard units
    alpha, beta = -1.5, 1.0
    phi = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    z = cdf(beta) - cdf(alpha)
    mean = 0.5 + (phi(alpha) - phi(beta)) / z
    var = 1 + (alpha * phi(alpha) - beta * phi(beta)) / z - ((phi(alpha) - phi(beta)) / z) ** 2
    assert abs(a.mean() - mean) < 0.01 and abs(a.std() - math.sqrt(var)) < 0.01
    with pytest.warns(UserWarning, match="more than 2 std"):
        far = init.trunc_normal_(G.empty(1000), mean=10.0, std=1.0, a=-1.0, b=1.0)
    assert npy(far).min() >= -1.0 and npy(far).max() <= 1.0
    with pytest.raises(ValueError, match="expected a < b"):
        init.trunc_normal_(G.empty(3), a=1.0, b=0.0)


def test_erfinv_helper_accuracy():
    y = np.concatenate([np.linspace(-0.999, 0.999, 2001), 1 - np.logspace(-7.2, -1, 50)])
    x = npy(init._erfinv(G.tensor(y)))
    # erfinv is exact where erf(x) == y: check through math.erf
    back = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(back, y, rtol=0, atol=2e-7)


def test_init_is_reproducible_with_manual_seed_and_generator():
    G.manual_seed(123)
    a = nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 2))
    G.manual_seed(123)
    b = nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 2))
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        np.testing.assert_array_equal(npy(va), npy(vb), err_msg=k)
    c = nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 2))
    assert not np.array_equal(npy(c[0].weight), npy(a[0].weight))
    t1, t2 = G.empty(3, 3), G.empty(3, 3)
    init.normal_(t1, generator=G.Generator().manual_seed(5))
    init.normal_(t2, generator=G.Generator().manual_seed(5))
    np.testing.assert_array_equal(npy(t1), npy(t2))


def test_init_keeps_dtype():
    t = G.empty(20, 10, dtype=G.float64)
    init.kaiming_normal_(t)
    assert t.dtype is G.float64


# ----------------------------------------------------------------- Linear and F.linear
def test_linear_default_init_bounds():
    G.manual_seed(5)
    m = nn.Linear(50, 400)
    bound = 1 / math.sqrt(50)
    w, b = npy(m.weight), npy(m.bias)
    assert tuple(m.weight.shape) == (400, 50) and tuple(m.bias.shape) == (400,)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.95 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.003  # uniform on [-bound, bound]
    assert m.in_features == 50 and m.out_features == 400
    assert m.weight.requires_grad and m.bias.requires_grad


def test_linear_forward_matches_numpy():
    m = nn.Linear(3, 2)
    for shape in ((5, 3), (3,), (2, 4, 3)):
        x = G.randn(*shape)
        expected = npy(x) @ npy(m.weight).T + npy(m.bias)
        np.testing.assert_allclose(npy(m(x)), expected, rtol=1e-5, atol=1e-6)
    nb = nn.Linear(3, 2, bias=False)
    assert nb.bias is None and "bias" in nb._parameters
    x = G.randn(4, 3)
    np.testing.assert_allclose(npy(nb(x)), npy(x) @ npy(nb.weight).T, rtol=1e-5, atol=1e-6)
    assert [n for n, _ in nb.named_parameters()] == ["weight"]


def test_linear_dtype_and_gradients():
    m = nn.Linear(3, 2, dtype=G.float64)
    assert m.weight.dtype is G.float64 and m.bias.dtype is G.float64
    x = G.randn(3, dtype=G.float64)  # unbatched: gradients need no reduction
    m(x).backward(G.ones(2, dtype=G.float64))
    np.testing.assert_allclose(npy(m.weight.grad), np.tile(npy(x), (2, 1)))
    np.testing.assert_allclose(npy(m.bias.grad), [1.0, 1.0])


def test_linear_parity_with_pytorch():
    torch = pytest.importorskip("torch")
    g = nn.Linear(4, 3)
    t = torch.nn.Linear(4, 3)
    with torch.no_grad():
        t.weight.copy_(torch.from_numpy(npy(g.weight)))
        t.bias.copy_(torch.from_numpy(npy(g.bias)))
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    np.testing.assert_allclose(npy(g(G.tensor(x))), t(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    # state dicts are interchangeable
    t2 = torch.nn.Linear(4, 3)
    t2.load_state_dict({k: torch.from_numpy(npy(v).copy()) for k, v in g.state_dict().items()})
    g2 = nn.Linear(4, 3)
    g2.load_state_dict({k: v.numpy() for k, v in t2.state_dict().items()})
    np.testing.assert_array_equal(npy(g2.weight), npy(g.weight))


def test_functional_linear():
    x, w, b = G.randn(4, 3), G.randn(2, 3), G.randn(2)
    np.testing.assert_allclose(npy(F.linear(x, w, b)), npy(x) @ npy(w).T + npy(b),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(npy(F.linear(x, w)), npy(x) @ npy(w).T, rtol=1e-5, atol=1e-6)
    v = G.randn(3)
    np.testing.assert_allclose(npy(F.linear(x, v)), npy(x) @ npy(v), rtol=1e-5, atol=1e-6)
    with pytest.raises(RuntimeError, match=r"linear: input of shape \[4, 3\] does not match "
                                           r"weight of shape \[2, 5\]"):
        F.linear(x, G.randn(2, 5))
    with pytest.raises(RuntimeError, match="weight must be 1-D or 2-D"):
        F.linear(x, G.randn(2, 3, 1))


def test_functional_linear_gradcheck():
    x = G.randn(3, 4, dtype=G.float64, requires_grad=True)
    w = G.randn(2, 4, dtype=G.float64, requires_grad=True)
    b = G.randn(2, dtype=G.float64, requires_grad=True)
    assert G.autograd.gradcheck(F.linear, (x, w, b))


def test_identity_flatten_unflatten():
    x = G.randn(2, 3, 4)
    assert nn.Identity(54, unused="yes")(x) is x
    assert tuple(nn.Flatten()(x).shape) == (2, 12)
    assert tuple(nn.Flatten(0, 1)(x).shape) == (6, 4)
    assert tuple(nn.Unflatten(2, (2, 2))(x).shape) == (2, 3, 2, 2)
    with pytest.raises(TypeError, match="unflattened_size"):
        nn.Unflatten(1, 3)


# ----------------------------------------------------------------- activations
def test_activation_modules_match_functional():
    x = G.randn(3, 5)
    cases = [
        (nn.ReLU(), F.relu(x)), (nn.ReLU(inplace=True), F.relu(x)),
        (nn.LeakyReLU(0.2), F.leaky_relu(x, 0.2)), (nn.ELU(0.5), F.elu(x, 0.5)),
        (nn.GELU(), F.gelu(x)), (nn.GELU("tanh"), F.gelu(x, approximate="tanh")),
        (nn.SiLU(), F.silu(x)), (nn.Tanh(), F.tanh(x)), (nn.Sigmoid(), F.sigmoid(x)),
        (nn.Softplus(2.0, 10.0), F.softplus(x, 2.0, 10.0)),
    ]
    for module, expected in cases:
        np.testing.assert_array_equal(npy(module(x)), npy(expected), err_msg=repr(module))
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("fast")


def test_softmax_modules():
    x = G.randn(3, 5)
    np.testing.assert_allclose(npy(nn.Softmax(dim=1)(x)).sum(axis=1), np.ones(3), rtol=1e-6)
    np.testing.assert_array_equal(npy(nn.LogSoftmax(dim=0)(x)), npy(F.log_softmax(x, 0)))
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        out = nn.Softmax()(x)  # 2-D: PyTorch's legacy choice is dim 1
    np.testing.assert_array_equal(npy(out), npy(F.softmax(x, 1)))


def test_activations_match_pytorch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)
    pairs = [(nn.ReLU(), torch.nn.ReLU()), (nn.LeakyReLU(0.1), torch.nn.LeakyReLU(0.1)),
             (nn.ELU(), torch.nn.ELU()), (nn.GELU(), torch.nn.GELU()),
             (nn.GELU("tanh"), torch.nn.GELU("tanh")), (nn.SiLU(), torch.nn.SiLU()),
             (nn.Tanh(), torch.nn.Tanh()), (nn.Sigmoid(), torch.nn.Sigmoid()),
             (nn.Softplus(beta=2.0), torch.nn.Softplus(beta=2.0)),
             (nn.Softmax(dim=-1), torch.nn.Softmax(dim=-1)),
             (nn.LogSoftmax(dim=0), torch.nn.LogSoftmax(dim=0))]
    for g, t in pairs:
        np.testing.assert_allclose(npy(g(G.tensor(x))), t(torch.from_numpy(x)).numpy(),
                                   rtol=1e-5, atol=1e-6, err_msg=repr(g))


# ----------------------------------------------------------------- training
def test_tiny_mlp_trains_with_hand_written_sgd():
    G.manual_seed(0)
    rng = np.random.default_rng(0)
    x = G.tensor(rng.standard_normal((64, 3)).astype(np.float32))
    y = G.tensor(np.sin(npy(x) @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)))
    model = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1))
    params = list(model.parameters())
    losses = []
    for _ in range(40):
        loss = ((model(x) - y) ** 2).mean()
        model.zero_grad()
        loss.backward()
        with G.no_grad():
            for p in params:
                p -= 0.3 * p.grad
        losses.append(loss.item())
    assert all(p.is_leaf and isinstance(p, nn.Parameter) for p in model.parameters())
    assert losses[-1] < 0.5 * losses[0]
    assert all(b < a for a, b in zip(losses, losses[1:]))
