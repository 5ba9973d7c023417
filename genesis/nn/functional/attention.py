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
from ...ops.creation import arange, zeros
from ...ops.elementwise import where
from ...ops.linalg import matmul
from ...ops.reduction import softmax
from ...ops.shape import cat, pad
from ...tensor import Tensor
from .dropout import dropout
from .linear import linear

__all__ = ["scaled_dot_product_attention", "multi_head_attention_forward"]

_NEG_INF = float("-inf")


def causal_mask(L, S, device=None):
    """(L, S) bool mask, True where key j <= query i (PyTorch's top-left aligned
    causal mask, torch.ones(L, S).tril())."""
    rows = arange(L, device=device).unsqueeze(1)
    cols = arange(S, device=device).unsqueeze(0)
    return cols <= rows


def attend(query, key, value, mask, dropout_p, scale):
    """(softmax(query key^T * scale + mask) value, the attention weights).

    `mask` is None, a bool tensor (True = attend) or a float tensor of the query's
    dtype added to the scores, broadcastable to (..., L, S).  Rows that may attend
    to no key get zero weights.  Dropout with probability `dropout_p` is applied to
    the weights, and the returned weights are the dropped-out ones, as PyTorch's
    MultiheadAttention returns them.
    """
    scores = matmul(query * scale, key.mT)
    dead = None
    if mask is not None:
        keep = mask if mask.dtype is _dt.bool else mask != _NEG_INF
        dead = ~keep.any(-1, keepdim=True)
        if not dead.any().item():
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
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p)
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


# ---------------------------------------------------------------- multi-head attention
def _mask_arg(mask, name, op):
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor or None, got {type(mask).__name__}")
    if mask.dtype is not _dt.bool and not mask.dtype.is_floating_point:
        raise TypeError(f"{op}: only bool and floating types of {name} are supported, got "
                        f"{mask.dtype}")
    return mask


def _merge_masks(masks, dtype):
    """One mask from PyTorch-convention masks (bool: True = masked out; float: added),
    in `attend`'s convention: bool True = attend when all are bool, else additive."""
    masks = [m for m in masks if m is not None]
    if not masks:
        return None
    if all(m.dtype is _dt.bool for m in masks):
        blocked = masks[0]
        for m in masks[1:]:
            blocked = blocked | m
        return ~blocked
    total = None
    for m in masks:
        m = zeros(m.shape, dtype=dtype, device=m.device).masked_fill(m, _NEG_INF) \
            if m.dtype is _dt.bool else m.to(dtype)
        total = m if total is None else total + m
    return total


def _heads(x, n, length, h, d):
    """(length * n, h * d) rows in (n, length) order -> (n, h, length, d) view."""
    return x.reshape(n, length, h, d).permute(0, 2, 1, 3)


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads,
                                 in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn,
                                 dropout_p, out_proj_weight, out_proj_bias, training=True,
                                 key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights=True, is_causal=False):
    """PyTorch's `F.multi_head_attention_forward`: query (L, N, E), key (S, N, kdim)
    and value (S, N, vdim), or unbatched (L, E), (S, kdim), (S, vdim).

    Projects query, key and value (with `in_proj_weight` (3E, E) split in three, or
    the separate q/k/v_proj_weight), splits E into `num_heads` heads, attends each
    (softmax(q k^T / sqrt(E / num_heads) + mask) v), joins the heads and applies the
    output projection.  Returns (output (L, N, E), weights or None); the weights are
    (N, L, S), averaged over heads, or (N, num_heads, L, S).

    key_padding_mask (N, S) and attn_mask (L, S) or (N * num_heads, L, S) follow
    PyTorch: a bool True marks a key the query must NOT attend to; float masks are
    added to the scores.  is_causal=True without attn_mask applies the causal mask
    (PyTorch requires the mask as well; genesis builds it); with attn_mask it is a
    hint and the mask is used.  A query that may attend to no key gets zero weights
    and output (PyTorch gives NaN on some of its paths).
    """
    op = "multi_head_attention_forward"
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    key_padding_mask = _mask_arg(key_padding_mask, "key_padding_mask", op)
    attn_mask = _mask_arg(attn_mask, "attn_mask", op)
    if query.ndim not in (2, 3):
        raise RuntimeError(f"{op}: query should be unbatched 2D or batched 3D tensor but "
                           f"received {query.ndim}-D query tensor")
    batched = query.ndim == 3
    if key.ndim != query.ndim or value.ndim != query.ndim:
        raise RuntimeError(f"{op}: For {'batched (3-D)' if batched else 'unbatched (2-D)'} "
                           f"`query`, expected `key` and `value` to be {query.ndim}-D but found "
                           f"{key.ndim}-D and {value.ndim}-D tensors respectively")
    if key_padding_mask is not None and key_padding_mask.ndim != query.ndim - 1:
        raise RuntimeError(f"{op}: expected `key_padding_mask` to be `None` or "
                           f"{query.ndim - 1}-D but found {key_padding_mask.ndim}-D tensor")
    if attn_mask is not None and attn_mask.ndim not in (2, 3):
        raise RuntimeError(f"{op}: expected `attn_mask` to be `None`, 2-D or 3-D but found "
                           f"{attn_mask.ndim}-D tensor")
    if not batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)

    tgt_len, bsz, embed_dim = query.shape
    src_len = key.shape[0]
    if embed_dim != embed_dim_to_check:
        raise RuntimeError(f"{op}: was expecting embedding dimension of {embed_dim_to_check}, "
                           f"but got {embed_dim}")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise ValueError(f"{op}: embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    if key.shape[:2] != value.shape[:2] or key.shape[1] != bsz:
        raise RuntimeError(f"{op}: expected key (S, N, kdim) and value (S, N, vdim) with the "
                           f"query's N = {bsz}, got query {list(query.shape)}, key "
                           f"{list(key.shape)} and value {list(value.shape)}")

    # Projections, on (N * length, features) rows in batch-major order.
    q_rows, k_rows, v_rows = (t.transpose(0, 1).reshape(-1, t.shape[-1])
                              for t in (query, key, value))
    bq = bk = bv = None
    if in_proj_bias is not None:
        bq, bk, bv = in_proj_bias.chunk(3)
    if use_separate_proj_weight:
        for name, w, t in (("q_proj_weight", q_proj_weight, query),
                           ("k_proj_weight", k_proj_weight, key),
                           ("v_proj_weight", v_proj_weight, value)):
            if w is None or tuple(w.shape) != (embed_dim, t.shape[-1]):
                raise RuntimeError(f"{op}: expected {name} of shape "
                                   f"{[embed_dim, t.shape[-1]]}, got "
                                   f"{None if w is None else list(w.shape)}")
        q = linear(q_rows, q_proj_weight, bq)
        k = linear(k_rows, k_proj_weight, bk)
        v = linear(v_rows, v_proj_weight, bv)
    else:
        if in_proj_weight is None or tuple(in_proj_weight.shape) != (3 * embed_dim, embed_dim):
            raise RuntimeError(f"{op}: expected in_proj_weight of shape "
                               f"{[3 * embed_dim, embed_dim]}")
        if key.shape[-1] != embed_dim or value.shape[-1] != embed_dim:
            raise RuntimeError(f"{op}: key and value must have {embed_dim} features with a "
                               f"shared in_proj_weight, got key {list(key.shape)} and value "
                               f"{list(value.shape)}")
        if query is key and key is value:  # self-attention: one product for q, k and v
            q, k, v = linear(q_rows, in_proj_weight, in_proj_bias).chunk(3, -1)
        elif key is value:  # one product for k and v
            q = linear(q_rows, in_proj_weight[:embed_dim], bq)
            k, v = linear(k_rows, in_proj_weight[embed_dim:],
                          None if in_proj_bias is None else in_proj_bias[embed_dim:]
                          ).chunk(2, -1)
        else:
            wq, wk, wv = in_proj_weight.chunk(3)
            q, k, v = linear(q_rows, wq, bq), linear(k_rows, wk, bk), linear(v_rows, wv, bv)

    if attn_mask is not None:
        want = (tgt_len, src_len) if attn_mask.ndim == 2 else \
            (bsz * num_heads, tgt_len, src_len)
        if tuple(attn_mask.shape) != want:
            raise RuntimeError(f"{op}: The shape of the {attn_mask.ndim}D attn_mask is "
                               f"{list(attn_mask.shape)}, but should be {want}.")
    elif is_causal:
        attn_mask = ~causal_mask(tgt_len, src_len, query.device)
    if key_padding_mask is not None and tuple(key_padding_mask.shape) != (bsz, src_len):
        raise RuntimeError(f"{op}: expecting key_padding_mask shape of {(bsz, src_len)}, but "
                           f"got {tuple(key_padding_mask.shape)}")

    q = _heads(q, bsz, tgt_len, num_heads, head_dim)
    k = _heads(k, bsz, src_len, num_heads, head_dim)
    v = _heads(v, bsz, src_len, num_heads, head_dim)
    if bias_k is not None or bias_v is not None:
        if bias_k is None or bias_v is None or static_k is not None or static_v is not None:
            raise RuntimeError(f"{op}: bias_k and bias_v go together, without static_k and "
                               "static_v")
        k = cat([k, bias_k.reshape(1, num_heads, 1, head_dim).expand(bsz, -1, -1, -1)], 2)
        v = cat([v, bias_v.reshape(1, num_heads, 1, head_dim).expand(bsz, -1, -1, -1)], 2)
        attn_mask = None if attn_mask is None else pad(attn_mask, (0, 1))
        key_padding_mask = None if key_padding_mask is None else pad(key_padding_mask, (0, 1))
    for name, static in (("static_k", static_k), ("static_v", static_v)):
        if static is not None:
            if static.ndim != 3 or static.shape[0] != bsz * num_heads or \
                    static.shape[2] != head_dim:
                raise RuntimeError(f"{op}: expecting {name} of shape ({bsz * num_heads}, S, "
                                   f"{head_dim}), but got {list(static.shape)}")
            t = static.reshape(bsz, num_heads, static.shape[1], head_dim)
            k, v = (t, v) if name == "static_k" else (k, t)
    if add_zero_attn:
        k = cat([k, zeros(bsz, num_heads, 1, head_dim, dtype=k.dtype, device=k.device)], 2)
        v = cat([v, zeros(bsz, num_heads, 1, head_dim, dtype=v.dtype, device=v.device)], 2)
        attn_mask = None if attn_mask is None else pad(attn_mask, (0, 1))
        key_padding_mask = None if key_padding_mask is None else pad(key_padding_mask, (0, 1))
    if k.shape[2] != v.shape[2]:
        raise RuntimeError(f"{op}: keys ({k.shape[2]}) and values ({v.shape[2]}) differ in "
                           "length")
    src_len = k.shape[2]
    if attn_mask is not None and attn_mask.shape[-1] != src_len:
        raise RuntimeError(f"{op}: attn_mask of shape {list(attn_mask.shape)} does not cover "
                           f"the {src_len} keys")
    if key_padding_mask is not None and key_padding_mask.shape[-1] != src_len:
        raise RuntimeError(f"{op}: key_padding_mask of shape {list(key_padding_mask.shape)} "
                           f"does not cover the {src_len} keys")

    mask = _merge_masks((
        None if attn_mask is None else
        attn_mask.reshape(1 if attn_mask.ndim == 2 else bsz,
                          1 if attn_mask.ndim == 2 else num_heads, tgt_len, src_len),
        None if key_padding_mask is None else key_padding_mask.reshape(bsz, 1, 1, src_len),
    ), q.dtype)
    out, weights = attend(q, k, v, mask, float(dropout_p) if training else 0.0,
                          1.0 / math.sqrt(head_dim))
    # (N, H, L, D) -> (N * L, E) rows -> output projection -> (L, N, E), a view of
    # batch-major memory (so batch-first callers get a contiguous result back).
    out = out.permute(0, 2, 1, 3).reshape(bsz * tgt_len, embed_dim)
    out = linear(out, out_proj_weight, out_proj_bias).reshape(bsz, tgt_len, embed_dim)
    out = out.transpose(0, 1)
    if not batched:
        out = out.squeeze(1)
    if not need_weights:
        return out, None
    if average_attn_weights:
        weights = weights.mean(1)
    return out, (weights if batched else weights.squeeze(0))
