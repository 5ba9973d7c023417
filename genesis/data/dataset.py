"""Map-style datasets: anything with `__getitem__(index)` and `__len__()`.

Datasets built from whole tensors (TensorDataset, MNIST, and Subsets of them)
also offer `_batch_fetcher()`: a function that returns an already collated batch
for an int64 index tensor with one gather per tensor, which the DataLoader uses
instead of fetching samples one by one and stacking them.
"""
import bisect
import itertools
import math
import numbers
import warnings

import numpy as np

from ..device import device as _device
from ..ops.creation import randperm
from ..ops.indexing import IndexGather
from ..tensor import Tensor

__all__ = ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split"]


class Dataset:
    """Base class of map-style datasets (PyTorch's `torch.utils.data.Dataset`).

    Subclasses define `__getitem__(index)` returning one sample and `__len__()`.
    `a + b` concatenates two datasets.
    """

    def __add__(self, other):
        return ConcatDataset([self, other])


def _gather_rows(t, index):
    """t[index] for a 1-D int64 index tensor: the rows of `t` picked by one gather kernel
    (differentiable, bounds-checked)."""
    if index.device != t.device:
        index = index.to(t.device)
    return IndexGather.apply(t, index)


def _reads_samples_as(obj, cls):
    """Whether `obj` reads samples with `cls.__getitem__`: a subclass that overrides it
    must be fetched sample by sample."""
    return type(obj).__getitem__ is cls.__getitem__


class TensorDataset(Dataset):
    """Samples are the rows of tensors that share their first dimension:
    `dataset[i] == (t0[i], t1[i], ...)`."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor")
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset: argument {i} is a {type(t).__name__}, "
                                "expected a Tensor")
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: tensor {i} is 0-dimensional; every tensor "
                                 "needs a first (sample) dimension")
        n = tensors[0].shape[0]
        sizes = [t.shape[0] for t in tensors]
        if any(s != n for s in sizes):
            raise ValueError(f"Size mismatch between tensors: first dimensions are {sizes}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]

    def _batch_fetcher(self):
        if not _reads_samples_as(self, TensorDataset):
            return None
        tensors = self.tensors
        return lambda index: [_gather_rows(t, index) for t in tensors]


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return [self.dataset[self.indices[i]] for i in idx]
        return self.dataset[self.indices[idx]]

    def __len__(self):
        return len(self.indices)

    def _batch_fetcher(self):
        inner = getattr(self.dataset, "_batch_fetcher", None)
        fetch = inner() if inner is not None and _reads_samples_as(self, Subset) else None
        if fetch is None:
            return None
        if isinstance(self.indices, Tensor):
            mapping = self.indices.to("cpu").long()
        else:
            mapping = Tensor._make(np.asarray(self.indices, dtype=np.int64).reshape(-1),
                                   _device("cpu"))
        return lambda index: fetch(_gather_rows(mapping, index))


class ConcatDataset(Dataset):
    """The samples of several datasets one after the other."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        n = len(self)
        if idx < 0:
            if -idx > n:
                raise IndexError(f"ConcatDataset: index {idx} is out of range for length {n}")
            idx += n
        if idx >= n:
            raise IndexError(f"ConcatDataset: index {idx} is out of range for length {n}")
        d = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[d - 1] if d else 0
        return self.datasets[d][idx - start]


def random_split(dataset, lengths, generator=None):
    """Split `dataset` into non-overlapping random Subsets of the given lengths.

    `lengths` are sample counts summing to len(dataset), or fractions summing to 1:
    each split then gets floor(len * fraction) samples and the remainder is dealt
    out one at a time from the first split on (PyTorch's rule).  The permutation is
    drawn from `generator` (the global generator when None).
    """
    lengths = list(lengths)
    n = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = []
        for i, frac in enumerate(lengths):
            if not 0 <= frac <= 1:
                raise ValueError(f"random_split: fraction at index {i} is not between 0 and 1")
            counts.append(int(math.floor(n * frac)))
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for i, c in enumerate(counts):
            if c == 0:
                warnings.warn(f"random_split: length of split at index {i} is 0; "
                              "this results in an empty dataset.", stacklevel=2)
        lengths = counts
    if any(not isinstance(c, numbers.Integral) or c < 0 for c in lengths):
        raise ValueError(f"random_split: lengths must be non-negative ints or fractions "
                         f"summing to 1, got {lengths}")
    lengths = [int(c) for c in lengths]
    if sum(lengths) != n:
        raise ValueError(f"random_split: sum of input lengths ({sum(lengths)}) does not equal "
                         f"the length of the input dataset ({n})")
    indices = randperm(n, generator=generator).tolist()
    return [Subset(dataset, indices[end - c:end])
            for end, c in zip(itertools.accumulate(lengths), lengths)]

