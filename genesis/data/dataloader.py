"""DataLoader: iterate over a dataset in (shuffled) batches, collated into tensors."""
import collections.abc
import copy

import numpy as np

from ..device import device as _device
from ..ops.creation import _infer_dtype, as_tensor, tensor
from ..ops.shape import stack
from ..tensor import Tensor
from .. import dtypes as _dt
from .sampler import BatchSampler, RandomSampler, SequentialSampler

__all__ = ["DataLoader", "default_collate", "default_convert"]

_CPU = _device("cpu")


def _is_text_array(a):
    return a.dtype.kind in "OSUV"


def _array_to_tensor(a):
    """A numpy array as a tensor (shared memory when genesis has its dtype; unsigned and
    small ints become int64, float16 becomes float32)."""
    return as_tensor(a, dtype=_infer_dtype(a))


def default_convert(data):
    """Turn numpy arrays inside `data` into tensors, keeping the structure (used when a
    DataLoader does not batch, `batch_size=None`)."""
    if isinstance(data, Tensor):
        return data
    if isinstance(data, (np.ndarray, np.generic)):
        return data if _is_text_array(data) else _array_to_tensor(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        converted = {k: default_convert(v) for k, v in data.items()}
        return _same_mapping(data, converted)
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return _same_sequence(data, [default_convert(d) for d in data])
    return data


def default_collate(batch):
    """Merge a list of samples into a batch (PyTorch's rules).

    Tensors are stacked along a new first dim; numpy arrays become tensors and are
    stacked; Python floats become a float64 tensor, ints an int64 tensor (bools a
    bool tensor); strings and bytes stay a list; dicts are collated key by key;
    tuples and lists are transposed and collated position by position (a batch of
    tuples gives a list, a batch of namedtuples a namedtuple).
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(batch, 0)
    if isinstance(elem, (np.ndarray, np.generic)):
        if _is_text_array(elem):
            raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, "
                            f"numbers, dicts or lists; found numpy array of dtype {elem.dtype}")
        if isinstance(elem, np.generic):
            return _array_to_tensor(np.array(batch))
        return stack([_array_to_tensor(b) for b in batch], 0)
    if isinstance(elem, float):
        return tensor(batch, dtype=_dt.float64)
    if isinstance(elem, int):
        return tensor(batch)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        collated = {k: default_collate([d[k] for d in batch]) for k in elem}
        return _same_mapping(elem, collated)
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        n = len(elem)
        if any(len(e) != n for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        columns = [default_collate(list(s)) for s in zip(*batch)]
        return columns if isinstance(elem, tuple) else _same_sequence(elem, columns)
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, "
                    f"dicts or lists; found {type(elem).__name__}")


def _same_mapping(like, items):
    """`items` in a mapping of the same type as `like` (a plain dict if that type cannot
    be rebuilt)."""
    if isinstance(like, collections.abc.MutableMapping):
        out = copy.copy(like)
        out.update(items)
        return out
    try:
        return type(like)(items)
    except TypeError:
        return items


def _same_sequence(like, items):
    try:
        return type(like)(items)
    except TypeError:
        return items


class DataLoader:
    """Iterate over `dataset` in batches (PyTorch's `torch.utils.data.DataLoader`).

    Each pass draws samples in the order of `sampler` (sequential, or random when
    `shuffle=True`, reshuffled every epoch from `generator` or the global generator
    seeded by `genesis.manual_seed`), groups `batch_size` of them (the last short batch
    dropped when `drop_last`) and merges them with `collate_fn` (`default_collate`).
    `batch_size=None` disables batching: each sample is only converted to tensors.

    With the default collate function, a TensorDataset, an MNIST dataset without
    transforms, or a Subset of either is fetched a whole batch at a time, one gather
    per tensor, instead of sample by sample.

    Loading runs in the calling process: `num_workers` must be 0.  `pin_memory` is
    accepted for compatibility and has no effect (genesis has no pinned host memory).
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, *,
                 generator=None):
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be a non-negative integer, "
                             f"got {num_workers!r}")
        if num_workers > 0:
            raise ValueError(f"DataLoader: genesis loads data in the main process only; "
                             f"num_workers must be 0, got {num_workers}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler option is mutually exclusive with "
                                 "batch_size, shuffle, sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None option disables auto-batching and "
                             "is mutually exclusive with drop_last")
        if sampler is None:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else \
                SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        if collate_fn is None:
            collate_fn = default_collate if batch_sampler is not None else default_convert
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn
        self.pin_memory = pin_memory
        self.generator = generator

    def __iter__(self):
        dataset, collate = self.dataset, self.collate_fn
        if self.batch_sampler is None:
            for i in self.sampler:
                yield collate(dataset[i])
            return
        fetch = self._batch_fetcher()
        for indices in self.batch_sampler:
            if fetch is not None:
                yield fetch(Tensor._make(np.asarray(indices, dtype=np.int64).reshape(-1), _CPU))
            else:
                yield collate([dataset[i] for i in indices])

    def __len__(self):
        return len(self.batch_sampler if self.batch_sampler is not None else self.sampler)

    def _batch_fetcher(self):
        """The dataset's whole-batch fetch, when it gives what default_collate would."""
        if self.collate_fn is not default_collate:
            return None
        make = getattr(self.dataset, "_batch_fetcher", None)
        return make() if make is not None else None
