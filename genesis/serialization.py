"""`genesis.save` / `genesis.load`: checkpoints that can never execute code.

A checkpoint is a zip archive (stored, not compressed) holding

    genesis.json     {"format": "genesis.save", "version": 1, "root": <node>,
                      "arrays": [{"dtype": "<f4", "shape": [..]}, ...]}
    arrays/<i>.npy   array i in numpy's .npy format, written and read with
                     allow_pickle=False

A node is JSON null / true / false / a number / a string for None, bool, int, float
and str, or an object tagged with "type": list, tuple, dict and OrderedDict (items
as [key, value] pairs, so int keys and the order survive), tensor (array number,
device, requires_grad), ndarray and numpy scalar (array number).  Nothing in the
file names code to run, so loading a file from anywhere is safe.  Each member
carries the zip CRC-32, so corrupt or truncated files are detected.
"""
import collections
import contextlib
import json
import os
import secrets
import stat
import zipfile
import zlib

import numpy as np

from . import dtypes as _dt
from .device import device as _device
from .tensor import Tensor

__all__ = ["save", "load", "CheckpointError"]

FORMAT = "genesis.save"
VERSION = 1
_HEADER = "genesis.json"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps: equal objects give equal files
_SUPPORTED = ("Tensor, numpy array or scalar, dict, OrderedDict, list, tuple, int, float, "
              "bool, str or None")


class CheckpointError(RuntimeError):
    """A file given to `genesis.load` is not a readable genesis checkpoint."""


# ---------------------------------------------------------------------------- save
def save(obj, f):
    """Write `obj` to `f` (a path or a binary file object) in genesis's checkpoint format.

    `obj` may nest dicts (str, int, float, bool or None keys; order kept), OrderedDicts,
    lists and tuples of tensors (dtype, shape, device and requires_grad are kept),
    numpy arrays and scalars, ints, floats, bools, strings and None.  Anything else
    raises TypeError naming the type and where it sits, e.g. ``obj['model']['w']``,
    before the file is touched.  Tensors are stored by value: two tensors sharing
    memory are saved (and loaded) as two copies.

    Saving to a path is atomic: the archive is written to a temporary file in the same
    directory, flushed to disk and renamed over `f`, so a save that fails part-way
    leaves any previous file intact.
    """
    arrays = []
    header = {"format": FORMAT, "version": VERSION, "root": _encode(obj, "obj", arrays, set()),
              "arrays": [{"dtype": a.dtype.str, "shape": list(a.shape)} for a in arrays]}
    if hasattr(f, "write"):
        _write_archive(f, header, arrays)
    else:
        _atomic_write(f, lambda out: _write_archive(out, header, arrays))


def _encode(obj, path, arrays, active):
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if type(obj) in (int, float):
        return obj
    if isinstance(obj, Tensor):
        return {"type": "tensor", "array": _add_array(arrays, obj.detach().cpu().numpy(), path),
                "device": str(obj.device), "requires_grad": obj.requires_grad}
    if isinstance(obj, np.ndarray):
        return {"type": "ndarray", "array": _add_array(arrays, obj, path)}
    if isinstance(obj, np.generic):
        return {"type": "npscalar", "array": _add_array(arrays, np.asarray(obj), path)}
    kind = {list: "list", tuple: "tuple", dict: "dict",
            collections.OrderedDict: "OrderedDict"}.get(type(obj))
    if kind is None:
        raise TypeError(f"genesis.save: cannot save an object of type "
                        f"{type(obj).__module__}.{type(obj).__qualname__} at {path}; "
                        f"supported: {_SUPPORTED}")
    if id(obj) in active:
        raise ValueError(f"genesis.save: {path} contains itself (a reference cycle)")
    active.add(id(obj))
    if kind in ("list", "tuple"):
        items = [_encode(v, f"{path}[{i}]", arrays, active) for i, v in enumerate(obj)]
    else:
        items = [[_encode_key(k, path), _encode(v, f"{path}[{k!r}]", arrays, active)]
                 for k, v in obj.items()]
    active.discard(id(obj))
    return {"type": kind, "items": items}


def _encode_key(key, path):
    if key is None or type(key) in (str, int, float, bool):
        return key
    raise TypeError(f"genesis.save: cannot save a dict key of type {type(key).__qualname__} "
                    f"({key!r}) in {path}; keys must be str, int, float, bool or None")


def _add_array(arrays, a, path):
    if a.dtype.hasobject:
        raise TypeError(f"genesis.save: cannot save a numpy array of dtype {a.dtype} "
                        f"(Python objects) at {path}")
    arrays.append(a)
    return len(arrays) - 1


def _member(name):
    return zipfile.ZipInfo(name, date_time=_EPOCH)


def _write_archive(f, header, arrays):
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        z.writestr(_member(_HEADER), json.dumps(header))
        for i, a in enumerate(arrays):
            with z.open(_member(f"arrays/{i}.npy"), "w",
                        force_zip64=a.nbytes > (1 << 31) - (1 << 16)) as m:
                _write_array(m, a)


def _write_array(f, a):
    np.lib.format.write_array(f, a, allow_pickle=False)


def _atomic_write(path, write):
    """Create or replace the file `path` with what `write(fileobj)` writes, atomically:
    a temporary file in the same directory is written, flushed, fsynced and renamed
    over `path`; on any failure it is removed and `path` is left as it was."""
    path = os.path.realpath(os.fspath(path))  # through a symlink, replace its target
    directory = os.path.dirname(path)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))  # keep a replaced file's mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if os.name == "posix":  # the rename is durable once the directory is synced
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


# ---------------------------------------------------------------------------- load
def load(f, map_location=None, *, weights_only=True):
    """Read an object written by `genesis.save` from `f` (a path or a binary file object).

    Tensors come back as genesis tensors on the device they were saved from, or on
    `map_location`: a device or device string for all of them, or a dict mapping saved
    device strings to new ones (``{"cuda:0": "cpu"}``).  `weights_only` is accepted for
    PyTorch compatibility: a genesis checkpoint never holds code, so every load is safe.

    Raises `CheckpointError` (a RuntimeError) naming the file when it is not a genesis
    checkpoint, or is corrupt or truncated.
    """
    where = _Mapping(map_location)
    name = os.fspath(f) if not hasattr(f, "read") else getattr(f, "name", repr(f))
    try:
        archive = zipfile.ZipFile(f)
    except zipfile.BadZipFile as e:
        raise CheckpointError(f"genesis.load: {name} is not a genesis checkpoint, or it is "
                              f"truncated: not a complete zip archive ({e})") from None
    with archive:
        names = set(archive.namelist())
        if _HEADER not in names:
            hint = ("; it looks like a PyTorch checkpoint, whose pickles genesis never loads"
                    if any(n.endswith("data.pkl") for n in names) else "")
            raise CheckpointError(f"genesis.load: {name} is a zip archive but not a genesis "
                                  f"checkpoint (it has no {_HEADER}){hint}")
        try:
            header = json.loads(archive.read(_HEADER))
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise CheckpointError(f"genesis.load: {name}: {_HEADER} does not describe a "
                                      f"genesis checkpoint")
            if header.get("version") != VERSION:
                raise CheckpointError(f"genesis.load: {name} has format version "
                                      f"{header.get('version')!r}; this genesis reads "
                                      f"version {VERSION}")
            arrays = [_read_array(archive, i, spec) for i, spec in enumerate(header["arrays"])]
            return _decode(header["root"], arrays, where)
        except CheckpointError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
                IndexError, TypeError, AttributeError) as e:
            raise CheckpointError(f"genesis.load: {name} is corrupt or not a valid genesis "
                                  f"checkpoint: {type(e).__name__}: {e}") from e


def _read_array(archive, i, spec):
    member = f"arrays/{i}.npy"
    with archive.open(member) as m:
        a = np.lib.format.read_array(m, allow_pickle=False)
        if m.read(1):
            raise ValueError(f"{member} has trailing bytes")
    if a.dtype.str != spec["dtype"] or list(a.shape) != list(spec["shape"]):
        raise ValueError(f"{member} holds {a.dtype.str} {list(a.shape)}, but the header "
                         f"says {spec['dtype']} {spec['shape']}")
    return a


class _Mapping:
    """Where a tensor saved on a device is loaded (`map_location`)."""

    def __init__(self, map_location):
        if map_location is not None and not isinstance(map_location, (str, dict, _device)):
            raise TypeError(f"genesis.load: map_location must be None, a device, a device "
                            f"string or a dict, got {type(map_location).__name__}")
        self.map_location = map_location

    def __call__(self, saved):
        m = self.map_location
        if m is None:
            return _device(saved)
        if isinstance(m, dict):
            return _device(m.get(saved, saved))
        return _device(m)


def _decode(node, arrays, where):
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    kind = node["type"]
    if kind == "list":
        return [_decode(v, arrays, where) for v in node["items"]]
    if kind == "tuple":
        return tuple(_decode(v, arrays, where) for v in node["items"])
    if kind in ("dict", "OrderedDict"):
        out = {} if kind == "dict" else collections.OrderedDict()
        for key, value in node["items"]:
            if isinstance(key, (dict, list)):
                raise ValueError(f"dict key {key!r} is not a str, int, float, bool or None")
            out[key] = _decode(value, arrays, where)
        return out
    if kind == "tensor":
        a = arrays[node["array"]]
        _dt.from_numpy_dtype(a.dtype)
        t = Tensor._make(a, _device("cpu"))
        target = where(node["device"])
        if target.type != "cpu":
            t = t.to(target)
        if node["requires_grad"]:
            t.requires_grad_(True)
        return t
    if kind == "ndarray":
        return arrays[node["array"]]
    if kind == "npscalar":
        return arrays[node["array"]][()]
    raise ValueError(f"unknown node type {kind!r}")
