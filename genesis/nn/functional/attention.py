"""Attention: `scaled_dot_product_attention` (PyTorch's `F.scaled_dot_product_attention`).

softmax(q k^T * scale + mask) v, composed of differentiable ops: our GEMM for
both products and the fused softmax kernel in between, so gradients of every
order work.  A bool mask says where attention is allowed (True = attend); a
float mask is added to the scores.  A query row that may attend to no key at
all gets zero weights and a zero output (as PyTorch's CPU kernels give), not
NaN, and no gradient.
"""
import math

from ... import dtypes as _dt
from ...ops._util import broadcast_shape
from ...ops.creation import arange
from ...ops.elementwise import where
from ...ops.linalg import matmul
from ...ops.reduction import softmax
from ...tensor import Tensor
from .dropout import dropout

__all__ = ["scaled_dot_product_attention"]

_NEG_INF = float("-inf")


def causal_mask(L, S, device=None):
    """(L, S) bool mask, True where key j <= query i (PyTorch's top-left aligned
    causal mask, torch.ones(L, S).tril())."""
    rows = arange(L, device=device).unsqueeze(1)
    cols = arange(S, device=device).unsqueeze(0)
    return cols <= rows


def attend(query, key, value, mask, dropout_p, scale, training=True):
    """(softmax(query key^T * scale + mask) value, the attention weights).

    `mask` is None, a bool tensor (True = attend) or a float tensor of the query's
    dtype added to the scores, broadcastable to (..., L, S).  Rows that may attend
    to no key get zero weights.  Dropout (when `training`) is applied to the
    weights, and the returned weights are the dropped-out ones, as PyTorch's
    MultiheadAttention returns them.
    """
    scores = matmul(query * scale, key.mT)
    dead = None
    if mask is not None:
        keep = mask if mask.dtype is _dt.bool else mask != _NEG_INF
        dead = keep.sum(-1, keepdim=True) == 0
        if not dead.sum().item():
            dead = None
        if mask.dtype is _dt.bool:
            scores = where(keep if dead is None else keep | dead, scores, _NEG_INF)
        else:
            # A fully masked row is given finite scores, so its softmax (zeroed
            # below) and the softmax's gradient stay free of NaN.
            scores = scores + (mask if dead is None else where(dead, 0.0, mask))
    weights = softmax(scores, -1)
    if dead is not None:
        weights = where(dead, 0.0, weights)
    if dropout_p > 0.0 and training:
        weights = dropout(weights, dropout_p, training=True)
    return matmul(weights, value), weights


def _check_qkv(query, key, value, enable_gqa):
    op = "scaled_dot_product_attention"
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise RuntimeError(f"{op}: expected {name} to be at least 2-D (..., length, "
                               f"features), got shape {list(t.shape)}")
    if not (query.dtype is key.dtype is value.dtype) or not query.dtype.is_floating_point:
        raise TypeError(f"{op}: expected query, key and value to have the same floating point "
                        f"dtype, but got query.dtype: {query.dtype}, key.dtype: {key.dtype} "
                        f"and value.dtype: {value.dtype}")
    if key.shape[-1] != query.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise RuntimeError(f"{op}: expected query (..., L, E), key (..., S, E) and value "
                           f"(..., S, Ev), but got query {list(query.shape)}, key "
                           f"{list(key.shape)} and value {list(value.shape)}")
    if enable_gqa:
        if min(query.ndim, key.ndim, value.ndim) < 3:
            raise RuntimeError(f"{op}: enable_gqa needs a heads dim (..., H, L, E)")
        hq, hk, hv = query.shape[-3], key.shape[-3], value.shape[-3]
        if hq % hk or hq % hv:
            raise RuntimeError(f"{op}: with enable_gqa, the number of query heads ({hq}) must "
                               f"be a multiple of the key ({hk}) and value ({hv}) heads")
        key, value = _repeat_heads(key, hq // hk), _repeat_heads(value, hq // hv)
    batch = broadcast_shape(op, query.shape[:-2], key.shape[:-2], value.shape[:-2])
    return key, value, batch


def _repeat_heads(t, n):
    """Each head of t (..., H, S, E) repeated n times in place (repeat_interleave on -3)."""
    if n == 1:
        return t
    shape = tuple(t.shape)
    return t.unsqueeze(-3).expand(*shape[:-2], n, *shape[-2:]).reshape(
        *shape[:-3], shape[-3] * n, *shape[-2:])


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False):
    """softmax(query @ key^T * scale + mask) @ value for query (..., L, E), key
    (..., S, E) and value (..., S, Ev); batch dims broadcast.

    attn_mask: None, a bool tensor (True = the query may attend to that key) or a
    float tensor of the query's dtype added to the scores; it broadcasts to
    (..., L, S).  is_causal=True masks key j > query i (and excludes attn_mask).
    scale defaults to 1 / sqrt(E).  dropout_p drops attention weights (always,
    as in PyTorch: pass 0.0 outside training).  enable_gqa lets the H query heads
    (dim -3) share H / Hk key and value heads (grouped-query attention).
    A query row that may attend to no key gives zeros.
    """
    op = "scaled_dot_product_attention"
    key, value, batch = _check_qkv(query, key, value, enable_gqa)
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{op}: dropout_p must be in [0, 1], got {dropout_p}")
    L, S = query.shape[-2], key.shape[-2]
    if is_causal:
        if attn_mask is not None:
            raise RuntimeError(f"{op}: Explicit attn_mask should not be set when "
                               "is_causal=True")
        attn_mask = causal_mask(L, S, query.device)
    elif attn_mask is not None:
        if not isinstance(attn_mask, Tensor):
            raise TypeError(f"{op}: attn_mask must be a Tensor or None, got "
                            f"{type(attn_mask).__name__}")
        if attn_mask.dtype is not _dt.bool and attn_mask.dtype is not query.dtype:
            raise TypeError(f"{op}: Expected attn_mask dtype to be bool or to match query "
                            f"dtype, but got attn_mask.dtype: {attn_mask.dtype} and "
                            f"query.dtype: {query.dtype} instead.")
        target = batch + (L, S)
        try:
            fits = broadcast_shape(op, attn_mask.shape, target) == target
        except RuntimeError:
            fits = False
        if not fits:
            raise RuntimeError(f"{op}: attn_mask of shape {list(attn_mask.shape)} does not "
                               f"broadcast to the attention weights of shape {list(target)} "
                               f"(query {list(query.shape)}, key {list(key.shape)})")
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    return attend(query, key, value, attn_mask, float(dropout_p), float(scale))[0]
