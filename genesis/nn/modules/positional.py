"""Positional encodings for sequence models (genesis additions; PyTorch has no such
modules): `SinusoidalPositionalEncoding`, the fixed encoding of "Attention Is All
You Need", and `LearnedPositionalEmbedding`, an Embedding over positions.  Both add
the encoding of positions 0..L-1 to their input and then apply dropout.
"""
import math

from ... import dtypes as _dt
from ...ops.creation import arange
from ...ops.shape import stack
from .dropout import Dropout
from .module import Module
from .sparse import Embedding

__all__ = ["SinusoidalPositionalEncoding", "LearnedPositionalEmbedding"]


def _add_positions(module, x, table):
    """x + table[:L] with L the sequence dim of x: (L, N, E), (N, L, E) when
    module.batch_first, or unbatched (L, E)."""
    name = type(module).__name__
    if x.ndim not in (2, 3) or x.shape[-1] != module.embedding_dim:
        raise RuntimeError(f"{name}: expected input (L, N, {module.embedding_dim}), (N, L, "
                           f"{module.embedding_dim}) with batch_first or (L, "
                           f"{module.embedding_dim}), got {list(x.shape)}")
    seq_dim = 1 if module.batch_first and x.ndim == 3 else 0
    length = x.shape[seq_dim]
    if length > module.max_len:
        raise ValueError(f"{name}: sequence length {length} exceeds max_len={module.max_len}")
    pos = table[:length]
    if x.ndim == 3 and seq_dim == 0:
        pos = pos.unsqueeze(1)
    return module.dropout(x + pos)


class SinusoidalPositionalEncoding(Module):
    """x + PE[:L], PE[p, 2i] = sin(p / base^(2i / d_model)) and
    PE[p, 2i + 1] = cos(p / base^(2i / d_model)), then dropout.

    Input (L, N, d_model), (N, L, d_model) with batch_first=True, or (L, d_model),
    with L <= max_len.  The table is a non-persistent buffer `pe` (max_len,
    d_model): it follows `.to()` but is not part of `state_dict`.
    """

    def __init__(self, d_model, max_len=5000, dropout=0.0, batch_first=False, base=10000.0,
                 device=None, dtype=None):
        super().__init__()
        if d_model < 1 or max_len < 1:
            raise ValueError(f"SinusoidalPositionalEncoding: d_model and max_len must be "
                             f"positive, got {d_model} and {max_len}")
        self.embedding_dim = d_model
        self.max_len = max_len
        self.batch_first = batch_first
        self.base = base
        position = arange(max_len, dtype=_dt.float64, device=device).unsqueeze(1)
        freq = (arange(0, d_model, 2, dtype=_dt.float64, device=device) *
                (-math.log(base) / d_model)).exp()
        angles = position * freq
        pe = stack([angles.sin(), angles.cos()], -1).reshape(max_len, -1)[:, :d_model]
        self.register_buffer("pe", pe.to(dtype or _dt.get_default_dtype()).contiguous(),
                             persistent=False)
        self.dropout = Dropout(dropout)

    def forward(self, x):
        return _add_positions(self, x, self.pe)

    def extra_repr(self):
        return (f"{self.embedding_dim}, max_len={self.max_len}, batch_first={self.batch_first}"
                + ("" if self.base == 10000.0 else f", base={self.base}"))


class LearnedPositionalEmbedding(Module):
    """x + embedding(arange(L)), with `embedding` an Embedding (max_len, d_model)
    learned with the model, then dropout.

    Input (L, N, d_model), (N, L, d_model) with batch_first=True, or (L, d_model),
    with L <= max_len.
    """

    def __init__(self, max_len, d_model, dropout=0.0, batch_first=False, device=None,
                 dtype=None):
        super().__init__()
        self.embedding_dim = d_model
        self.max_len = max_len
        self.batch_first = batch_first
        self.embedding = Embedding(max_len, d_model, device=device, dtype=dtype)
        self.dropout = Dropout(dropout)

    def forward(self, x):
        # the rows of positions 0..L-1 are a slice of the table (= the lookup of arange(L))
        return _add_positions(self, x, self.embedding.weight)

    def extra_repr(self):
        return f"batch_first={self.batch_first}"
