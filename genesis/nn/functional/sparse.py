"""Embedding lookups (PyTorch's `torch.nn.functional.embedding`).

The forward gathers rows of the table with the advanced-indexing kernel; the
backward adds the output gradient back into the rows with the accumulating
index-put kernel (repeated ids add up), which is itself differentiable.
"""
from ... import dtypes as _dt
from ...autograd.function import Function
from ...autograd.grad_mode import no_grad
from ...ops import norm, ones, where
from ...ops.indexing import IndexGather, IndexScatterAdd
from ...tensor import Tensor

__all__ = ["embedding"]


class Embedding(Function):
    def forward(ctx, weight, ids, padding_idx, scale_grad_by_freq):
        b = ctx.backend
        ctx.shape = weight.shape
        ctx.padding_idx, ctx.scale_grad_by_freq = padding_idx, scale_grad_by_freq
        ctx.save_for_backward(ids)
        rows = b.index_gather(weight, [b.reshape(ids, (-1,))])
        return b.reshape(rows, ids.shape + weight.shape[1:])

    def backward(ctx, g):
        (ids,) = ctx.saved_tensors
        flat = ids.reshape(-1)
        g = g.reshape(flat.shape[0], ctx.shape[1])
        if ctx.padding_idx is not None:  # the padding row never learns
            g = where((flat != ctx.padding_idx).unsqueeze(1), g, 0.0)
        if ctx.scale_grad_by_freq:  # divide by how often each id occurs in this batch
            counts = IndexScatterAdd.apply(ones(flat.shape[0], dtype=g.dtype, device=g.device),
                                           ctx.shape[:1], flat)
            g = g / IndexGather.apply(counts, flat).unsqueeze(1)
        return IndexScatterAdd.apply(g, ctx.shape, flat), None, None, None


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """Rows of the table `weight` (num_embeddings, embedding_dim) at the integer ids
    `input` (any shape): the result has shape input.shape + (embedding_dim,).

    padding_idx: the gradient of that row is always zero (negative values count from
    the end).  max_norm: before the lookup, the referenced rows whose norm_type-norm
    exceeds max_norm are rescaled in place to norm max_norm (as in PyTorch, this
    modifies `weight`).  scale_grad_by_freq: each id's gradient is divided by its
    number of occurrences in `input`.  sparse=True (sparse gradients) is not supported
    by genesis and raises ValueError; the dense gradient of sparse=False is exact.
    Ids outside [0, num_embeddings) raise IndexError.
    """
    op = "embedding"
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(f"{op}: input and weight must be Tensors, got "
                        f"{type(input).__name__} and {type(weight).__name__}")
    if input.dtype not in (_dt.int64, _dt.int32):
        raise TypeError(f"{op}: input must hold integer ids (int64 or int32), got {input.dtype}")
    if weight.ndim != 2 or not weight.dtype.is_floating_point:
        raise ValueError(f"{op}: weight must be a 2-D floating tensor (num_embeddings, "
                         f"embedding_dim), got shape {tuple(weight.shape)} and {weight.dtype}")
    if input.device != weight.device:
        raise RuntimeError(f"{op}: input is on {input.device} but weight is on {weight.device}")
    if sparse:
        raise ValueError(f"{op}: sparse gradients (sparse=True) are not supported by genesis; "
                         "use sparse=False")
    num = weight.shape[0]
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise ValueError(f"{op}: padding_idx {padding_idx} must be within num_embeddings "
                             f"({num})")
        padding_idx %= num
    ids = input if input.dtype is _dt.int64 else input.to(_dt.int64)
    weight._backend().check_labels(ids._data, num, None, f"{op}: index",
                                   f"for num_embeddings {num} (ids must be in [0, {num}))")
    if max_norm is not None:
        _renorm_(weight, ids.reshape(-1), float(max_norm), norm_type)
    return Embedding.apply(weight, ids, padding_idx, bool(scale_grad_by_freq))


def _renorm_(weight, ids, max_norm, norm_type):
    """Rescale (in place, untracked) the rows at `ids` whose norm exceeds max_norm."""
    with no_grad():
        rows = weight[ids]
        norms = norm(rows, p=norm_type, dim=1, keepdim=True)
        scale = where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        weight[ids] = rows * scale
