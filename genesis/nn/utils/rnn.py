"""Variable-length sequences for recurrent layers (PyTorch's `torch.nn.utils.rnn`).

A `PackedSequence` stores a batch of sequences sorted by decreasing length, step by
step: `data` holds the rows of time step 0 of every sequence, then those of step 1
of the sequences at least 2 long, and so on; `batch_sizes[t]` is the number of rows
of step t.  RNN, LSTM and GRU accept it and run each sequence exactly its length.

Packing and padding are gathers with precomputed row indices (one kernel each,
differentiable: their backward is a scatter-add).
"""
from collections import namedtuple

from ... import dtypes as _dt
from ...ops.creation import full, tensor
from ...ops.indexing import argsort
from ...ops.shape import cat
from ...tensor import Tensor

__all__ = ["PackedSequence", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence",
           "pack_sequence", "invert_permutation"]


class PackedSequence(namedtuple("PackedSequence",
                                ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])):
    """Packed sequences: `data` (sum of lengths, *), `batch_sizes` (an int64 tensor,
    one count per time step), `sorted_indices` (the batch order packing used: packed
    sequence j is input sequence sorted_indices[j]) and its inverse
    `unsorted_indices`; both None when the input was already sorted.

    Build one with `pack_padded_sequence` or `pack_sequence` rather than directly.
    """

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if unsorted_indices is None and sorted_indices is not None:
            unsorted_indices = invert_permutation(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs):
        """The same sequences with `data` moved/converted by `Tensor.to` (indices follow
        to the same device; batch_sizes stay on the CPU)."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        move = (lambda t: None if t is None else t.to(data.device))
        return type(self)(data, self.batch_sizes, move(self.sorted_indices),
                          move(self.unsorted_indices))

    @property
    def is_cuda(self):
        return self.data.device.type == "cuda"


def invert_permutation(permutation):
    """The inverse of a permutation of 0..n-1 (None stays None)."""
    if permutation is None:
        return None
    return argsort(permutation)


def _lengths_list(lengths, op):
    if isinstance(lengths, Tensor):
        if lengths.ndim != 1 or lengths.dtype.is_floating_point:
            raise RuntimeError(f"{op}: lengths must be a 1-D integer tensor or a list of ints, "
                               f"got a {lengths.ndim}-D {lengths.dtype} tensor")
        return [int(v) for v in lengths.tolist()]
    try:
        return [int(v) for v in lengths]
    except TypeError:
        raise TypeError(f"{op}: lengths must be a 1-D integer tensor or a list of ints, got "
                        f"{type(lengths).__name__}") from None


def _batch_sizes(sorted_lengths):
    """Rows per time step of sequences sorted by decreasing length."""
    sizes, n = [], len(sorted_lengths)
    for t in range(sorted_lengths[0]):
        while n and sorted_lengths[n - 1] <= t:
            n -= 1
        sizes.append(n)
    return sizes


def _position(t, b, batch, steps, batch_first):
    """Flat row of (time t, sequence b) in a padded (T, B) or (B, T) layout."""
    return b * steps + t if batch_first else t * batch + b


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Pack a padded batch: `input` is (T, B, *) (or (B, T, *) with batch_first) and
    sequence b is input[:lengths[b], b].  With `enforce_sorted`, lengths must be
    non-increasing; otherwise the batch is sorted and the order is recorded."""
    op = "pack_padded_sequence"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if input.ndim < 2:
        raise RuntimeError(f"{op}: expected an input of at least 2 dims (T, B, *), got shape "
                           f"{list(input.shape)}")
    lengths = _lengths_list(lengths, op)
    steps, batch = (input.shape[1], input.shape[0]) if batch_first else input.shape[:2]
    if len(lengths) != batch:
        raise RuntimeError(f"{op}: Expected `len(lengths)` to be equal to batch_size, but got "
                           f"{len(lengths)} (batch_size={batch})")
    if any(n <= 0 for n in lengths):
        raise RuntimeError(f"{op}: Length of all samples has to be greater than 0, but found "
                           f"an element in 'lengths' that is <= 0: {lengths}")
    if enforce_sorted:
        if any(a < b for a, b in zip(lengths, lengths[1:])):
            raise RuntimeError(f"{op}: `lengths` array must be sorted in decreasing order when "
                               "`enforce_sorted` is True. You can pass `enforce_sorted=False` to "
                               "pack_padded_sequence and/or pack_sequence to sidestep this "
                               "requirement if you do not need ONNX exportability.")
        sorted_indices, order = None, list(range(batch))
    else:
        sorted_indices = argsort(tensor(lengths, dtype=_dt.int64), descending=True)
        order = sorted_indices.tolist()
    sorted_lengths = [lengths[b] for b in order]
    if sorted_lengths[0] > steps:
        raise RuntimeError(f"{op}: a sequence is longer ({sorted_lengths[0]}) than the padded "
                           f"input ({steps} steps)")
    batch_sizes = _batch_sizes(sorted_lengths)
    rows = [_position(t, order[j], batch, steps, batch_first)
            for t, n in enumerate(batch_sizes) for j in range(n)]
    flat = input.reshape((steps * batch,) + tuple(input.shape[2:]))
    data = flat[tensor(rows, dtype=_dt.int64, device=input.device)]
    if sorted_indices is not None:
        sorted_indices = sorted_indices.to(input.device)
    return PackedSequence(data, tensor(batch_sizes, dtype=_dt.int64), sorted_indices, None)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """Undo `pack_padded_sequence`: returns (padded (T, B, *) or (B, T, *), lengths) with
    the batch in its original order; `total_length` pads to that many steps."""
    op = "pad_packed_sequence"
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"{op}: expected a PackedSequence, got {type(sequence).__name__}")
    data = sequence.data
    batch_sizes = [int(n) for n in sequence.batch_sizes.tolist()]
    batch, steps = batch_sizes[0], len(batch_sizes)
    if total_length is not None:
        if total_length < steps:
            raise ValueError(f"{op}: Expected total_length to be at least the length of the "
                             f"longest sequence in the input, but got total_length="
                             f"{total_length} and max sequence length being {steps}")
        steps = total_length
    order = list(range(batch)) if sequence.unsorted_indices is None else \
        sequence.unsorted_indices.tolist()
    # packed row of (t, packed sequence j); the extra last row is the padding
    starts, start = [], 0
    for n in batch_sizes:
        starts.append(start)
        start += n
    pad_row = start
    lengths = [sum(1 for n in batch_sizes if n > j) for j in range(batch)]

    def row(t, b):
        j = order[b]
        return starts[t] + j if t < len(batch_sizes) and j < batch_sizes[t] else pad_row

    index = [row(t, b) for b in range(batch) for t in range(steps)] if batch_first else \
        [row(t, b) for t in range(steps) for b in range(batch)]
    rest = tuple(data.shape[1:])
    source = cat([data, full((1,) + rest, padding_value, dtype=data.dtype, device=data.device)])
    padded = source[tensor(index, dtype=_dt.int64, device=data.device)]
    shape = (batch, steps) if batch_first else (steps, batch)
    return (padded.reshape(shape + rest),
            tensor([lengths[order[b]] for b in range(batch)], dtype=_dt.int64))


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stack tensors of shape (L_i, *) into (T, B, *) (or (B, T, *) with batch_first),
    T the longest L_i, padding with `padding_value` on the right (or the left)."""
    op = "pad_sequence"
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError(f"{op}: received an empty list of sequences")
    if padding_side not in ("right", "left"):
        raise ValueError(f"{op}: Expected padding_side to be one of left or right, but got "
                         f"{padding_side}.")
    rest = tuple(sequences[0].shape[1:])
    for i, s in enumerate(sequences):
        if not isinstance(s, Tensor):
            raise TypeError(f"{op}: sequence {i} is a {type(s).__name__}, expected a Tensor")
        if s.ndim == 0 or tuple(s.shape[1:]) != rest:
            raise RuntimeError(f"{op}: sequence {i} has shape {list(s.shape)}, but sequence 0 "
                               f"has trailing dims {list(rest)}; all sequences must be (L, *) "
                               "with the same *")
    lengths = [s.shape[0] for s in sequences]
    steps, batch = max(lengths), len(sequences)
    starts, start = [], 0
    for n in lengths:
        starts.append(start)
        start += n
    pad_row = start

    def row(t, b):
        offset = t - (steps - lengths[b]) if padding_side == "left" else t
        return starts[b] + offset if 0 <= offset < lengths[b] else pad_row

    index = [row(t, b) for b in range(batch) for t in range(steps)] if batch_first else \
        [row(t, b) for t in range(steps) for b in range(batch)]
    first = sequences[0]
    source = cat(sequences + [full((1,) + rest, padding_value, dtype=first.dtype,
                                   device=first.device)])
    padded = source[tensor(index, dtype=_dt.int64, device=first.device)]
    return padded.reshape(((batch, steps) if batch_first else (steps, batch)) + rest)


def pack_sequence(sequences, enforce_sorted=True):
    """Pack a list of tensors (L_i, *) (sorted by decreasing length with
    `enforce_sorted`)."""
    sequences = list(sequences)
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths,
                                enforce_sorted=enforce_sorted)
