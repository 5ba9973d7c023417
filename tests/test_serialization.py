"""genesis.save / genesis.load: round trips, checkpoints, bad files and atomic saving."""
import collections
import errno
import io
import json
import math
import os
import stat
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import genesis as G
from genesis import serialization as S
from genesis.serialization import CheckpointError


def _roundtrip(obj):
    buf = io.BytesIO()
    G.save(obj, buf)
    buf.seek(0)
    return G.load(buf)


def _same(a, b):
    """Deep equality that also checks types, tensor metadata and array dtypes."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, G.Tensor):
        assert a.dtype is b.dtype and a.shape == b.shape and a.device == b.device
        assert a.requires_grad == b.requires_grad and b.is_leaf
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and np.shape(a) == np.shape(b)
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert type(k) is type(next(x for x in b if x == k))
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b
        if isinstance(a, float):
            assert math.copysign(1, a) == math.copysign(1, b)


# ---------------------------------------------------------------- round trips
@pytest.mark.parametrize("make", [
    lambda: G.randn(3, 4),
    lambda: G.randn(2, 3, dtype=G.float64, requires_grad=True),
    lambda: G.arange(6, dtype=G.int32).reshape(2, 3),
    lambda: G.arange(5),
    lambda: G.tensor([True, False, True]),
    lambda: G.tensor(2.5),
    lambda: G.zeros(0, 3),
    lambda: G.randn(4, 5).t(),  # a non-contiguous view
    lambda: G.randn(6)[::2],
])
def test_tensor_roundtrip(make):
    t = make()
    _same(t, _roundtrip(t))


def test_loaded_tensor_owns_writable_memory():
    t = G.ones(3)
    back = _roundtrip(t)
    back.add_(1)
    assert back.tolist() == [2, 2, 2] and t.tolist() == [1, 1, 1]


def test_requires_grad_tensor_from_a_graph_is_saved_detached():
    x = G.ones(2, requires_grad=True)
    y = x * 3
    back = _roundtrip({"y": y})["y"]
    assert back.requires_grad and back.is_leaf and back.tolist() == [3, 3]


@pytest.mark.parametrize("array", [
    np.arange(12, dtype=np.uint8).reshape(3, 4), np.ones(3, np.float16),
    np.array([1 + 2j], np.complex64), np.zeros((2, 0)), np.array(7, np.int16),
    np.arange(6.0).reshape(2, 3).T, np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
])
def test_numpy_roundtrip(array):
    _same(array, _roundtrip(array))


def test_primitives_and_containers_roundtrip():
    obj = {
        "none": None, "t": True, "f": False, "one": 1, "onef": 1.0, "big": 2 ** 100,
        "neg": -7, "pi": 3.141592653589793, "tiny": 5e-324, "negzero": -0.0,
        "inf": float("inf"), "ninf": float("-inf"), "nan": float("nan"),
        "text": "héllo ✓ \n \"quoted\"", "empty": "", "list": [1, [2, [3, []]]],
        "tuple": (1, ("a", None), ()), "np_scalar": np.float32(1.5), "np_int": np.int64(-3),
        "ordered": collections.OrderedDict([("z", 1), ("a", 2), ("m", 3)]),
        7: "int key", -1: "negative key", 2.5: "float key", None: "none key", True: "bool key",
        "nested": {3: {1: {"deep": [G.ones(2), {"x": np.zeros(1)}]}}},
    }
    _same(obj, _roundtrip(obj))


_leaves = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) |
           st.text(max_size=5))
_keys = st.text(max_size=4) | st.integers(-5, 5)
_trees = st.recursive(_leaves, lambda c: st.lists(c, max_size=3) |
                      st.lists(c, max_size=3).map(tuple) |
                      st.dictionaries(_keys, c, max_size=3), max_leaves=12)


@given(_trees)
def test_nested_structures_roundtrip(obj):
    _same(obj, _roundtrip(obj))


def test_checkpoint_with_model_and_optimizer_state(tmp_path):
    model = collections.OrderedDict([("fc1.weight", G.randn(4, 3)), ("fc1.bias", G.zeros(4)),
                                     ("fc2.weight", G.randn(2, 4)), ("steps", G.tensor(10))])
    optimizer = {"state": {0: {"step": 10, "exp_avg": G.randn(4, 3), "exp_avg_sq": G.rand(4, 3)},
                           2: {"step": 10, "exp_avg": G.randn(2, 4), "exp_avg_sq": G.rand(2, 4)}},
                 "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8,
                                   "weight_decay": 0.0, "amsgrad": False,
                                   "params": [0, 1, 2]}]}
    checkpoint = {"model": model, "optimizer": optimizer, "epoch": 3, "best": 0.917,
                  "rng": np.random.default_rng(0).bit_generator.state["state"]["state"]}
    path = tmp_path / "ckpt.pt"
    G.save(checkpoint, path)
    back = G.load(path)
    _same(checkpoint, back)
    assert list(back["optimizer"]["state"]) == [0, 2]
    G.save(checkpoint, str(tmp_path / "again.pt"))
    assert (tmp_path / "again.pt").read_bytes() == path.read_bytes()  # deterministic files


def test_file_contains_no_pickle(tmp_path):
    path = tmp_path / "c.pt"
    G.save({"w": G.ones(2, 2), "a": np.arange(3), "n": 1}, path)
    with zipfile.ZipFile(path) as z:
        assert z.namelist() == ["genesis.json", "arrays/0.npy", "arrays/1.npy"]
        header = json.loads(z.read("genesis.json"))
        assert header["format"] == "genesis.save" and header["version"] == 1
        for name in z.namelist()[1:]:
            with z.open(name) as f:
                np.lib.format.read_array(f, allow_pickle=False)


# ---------------------------------------------------------------- map_location
def _rewrite_header(path, change):
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    header = json.loads(members["genesis.json"])
    change(header)
    members["genesis.json"] = json.dumps(header).encode()
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)


def _on_cuda(header):
    header["root"]["items"][0][1]["device"] = "cuda:0"


def test_map_location(tmp_path):
    path = tmp_path / "c.pt"
    G.save({"w": G.ones(2, requires_grad=True)}, path)
    for loc in (None, "cpu", G.device("cpu"), {"cuda:0": "cpu"}):
        w = G.load(path, map_location=loc)["w"]
        assert w.device == G.device("cpu") and w.requires_grad
    _rewrite_header(path, _on_cuda)
    for loc in ("cpu", {"cuda:0": "cpu"}):
        assert G.load(path, map_location=loc)["w"].device == G.device("cpu")
    if not G.cuda.is_available():
        with pytest.raises(RuntimeError, match="device 'cuda:0' is not available"):
            G.load(path)
    with pytest.raises(TypeError, match="map_location"):
        G.load(path, map_location=lambda s, loc: s)


# ---------------------------------------------------------------- unsupported objects
class _Thing:
    pass


@pytest.mark.parametrize("obj, where, kind", [
    ({"model": {"w": _Thing()}}, r"obj\['model'\]\['w'\]", "_Thing"),
    ({"opt": [1, 2, {3}]}, r"obj\['opt'\]\[2\]", "builtins.set"),
    ([(0, b"bytes")], r"obj\[0\]\[1\]", "builtins.bytes"),
    ({1: {"f": len}}, r"obj\[1\]\['f'\]", "builtin_function_or_method"),
    (collections.defaultdict(list), "obj", "defaultdict"),
    ({"a": np.array([None])}, r"obj\['a'\]", "dtype object"),
])
def test_unsupported_objects_name_type_and_place(tmp_path, obj, where, kind):
    path = tmp_path / "c.pt"
    with pytest.raises(TypeError, match=f"{kind}.* at {where}"):
        G.save(obj, path)
    assert os.listdir(tmp_path) == []


def test_unsupported_key_and_cycle():
    with pytest.raises(TypeError, match=r"dict key of type tuple \(\(1, 2\)\) in obj\['a'\]"):
        G.save({"a": {(1, 2): 3}}, io.BytesIO())
    loop = []
    loop.append({"me": loop})
    with pytest.raises(ValueError, match=r"obj\[0\]\['me'\] contains itself"):
        G.save(loop, io.BytesIO())
    shared = [1]
    assert _roundtrip([shared, shared]) == [[1], [1]]  # repeated, not cyclic: fine


# ---------------------------------------------------------------- bad files
@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "good.pt"
    G.save({"w": G.arange(100, dtype=G.float32), "n": 3}, path)
    return path


def _load_error(path, match):
    with pytest.raises(CheckpointError, match=match) as e:
        G.load(path)
    assert str(path) in str(e.value)
    assert isinstance(e.value, RuntimeError)


@pytest.mark.parametrize("cut", [lambda n: 0, lambda n: 10, lambda n: n // 2,
                                 lambda n: n - 1])
def test_truncated_files(good_file, cut):
    data = good_file.read_bytes()
    good_file.write_bytes(data[:cut(len(data))])
    _load_error(good_file, "truncated|corrupt")


def test_flipped_byte_in_array_data(good_file):
    data = bytearray(good_file.read_bytes())
    at = data.index(b"arrays/0.npy") + 200  # inside the array's payload
    data[at] ^= 0xFF
    good_file.write_bytes(bytes(data))
    _load_error(good_file, "corrupt.*CRC")


def test_foreign_files(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    _load_error(text, "not a genesis checkpoint")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    _load_error(empty, "not a genesis checkpoint")
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("readme.txt", "x")
    _load_error(other, "zip archive but not a genesis checkpoint")
    torch_like = tmp_path / "model.pth"
    with zipfile.ZipFile(torch_like, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    _load_error(torch_like, "looks like a PyTorch checkpoint")


@pytest.mark.parametrize("change, match", [
    (lambda h: h.update(format="something.else"), "does not describe a genesis checkpoint"),
    (lambda h: h.update(version=99), "format version 99; this genesis reads version 1"),
    (lambda h: h["arrays"][0].update(shape=[7]), "header says"),
    (lambda h: h["arrays"].append({"dtype": "<f4", "shape": [1]}), "arrays/1.npy"),
    (lambda h: h["root"]["items"][0][1].update(type="eval"), "unknown node type 'eval'"),
    (lambda h: h["root"]["items"][0][1].pop("array"), "KeyError"),
])
def test_inconsistent_headers(good_file, change, match):
    _rewrite_header(good_file, change)
    _load_error(good_file, match)


def test_header_that_is_not_json(good_file):
    with zipfile.ZipFile(good_file) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["genesis.json"] = b"{not json"
    with zipfile.ZipFile(good_file, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    _load_error(good_file, "JSONDecodeError")


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        G.load("/nonexistent/dir/model.pt")


# ---------------------------------------------------------------- atomic saving
def _fail_midway(monkeypatch, exc):
    real = S._write_array
    calls = []

    def write(f, a):
        calls.append(a)
        if len(calls) == 2:
            f.write(b"\x93NUMPY partial")
            raise exc
        real(f, a)
    monkeypatch.setattr(S, "_write_array", write)


def test_failed_save_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    old = {"w": G.ones(3), "epoch": 1}
    G.save(old, path)
    before = path.read_bytes()
    _fail_midway(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(OSError, match="No space left"):
        G.save({"w": G.zeros(3), "b": G.zeros(2), "c": G.zeros(1)}, path)
    assert os.listdir(tmp_path) == ["model.pt"]
    assert path.read_bytes() == before
    _same(old, G.load(path))


def test_interrupted_first_save_leaves_nothing(tmp_path, monkeypatch):
    _fail_midway(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        G.save([G.ones(1), G.ones(2)], tmp_path / "new.pt")
    assert os.listdir(tmp_path) == []


def test_save_replaces_and_keeps_file_mode(tmp_path):
    path = tmp_path / "model.pt"
    G.save({"v": 1}, path)
    os.chmod(path, 0o600)
    G.save({"v": 2}, path)
    assert G.load(path) == {"v": 2}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(tmp_path) == ["model.pt"]


def test_save_through_a_symlink_replaces_its_target(tmp_path):
    target = tmp_path / "real.pt"
    link = tmp_path / "latest.pt"
    G.save({"v": 1}, target)
    link.symlink_to(target)
    G.save({"v": 2}, link)
    assert link.is_symlink() and G.load(target) == {"v": 2}
    assert sorted(os.listdir(tmp_path)) == ["latest.pt", "real.pt"]
