"""Affine maps."""
from ...autograd.function import Function
from ...autograd.grad_mode import STATE
from ...ops.linalg import matmul
from ...ops.reduction import sum as _sum
from ...tensor import Tensor

__all__ = ["linear"]


class Linear(Function):
    """x @ wᵀ + b for 2-D x in one node: the GEMM reads w transposed through its strides
    and the bias is added in place, so neither a transposed copy nor a broadcast sum is
    recorded; the weight gradient comes out in w's own (out, in) layout."""

    def forward(ctx, x, w, b):
        need_x, need_w, _ = ctx.needs_input_grad
        ctx.save_for_backward(x if need_w else None, w if need_x else None)
        out = ctx.backend.matmul(x, w.T)
        if b is not None:
            ctx.backend.binary_("add", out, b)
        return out

    def backward(ctx, g):
        x, w = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        if not STATE.enabled:
            # No graph is being recorded (a first-order backward): call the kernels
            # directly rather than through differentiable ops.
            be, device, gd = ctx.backend, ctx.device, g._data
            return (Tensor._make(be.matmul(gd, w._data), device) if need_x else None,
                    Tensor._make(be.matmul(be.permute(gd, (1, 0)), x._data), device)
                    if need_w else None,
                    Tensor._make(be.reduce("sum", gd, (0,), False), device) if need_b else None)
        gx = matmul(g, w) if need_x else None
        gw = matmul(g.mT, x) if need_w else None
        gb = _sum(g, 0) if need_b else None
        return gx, gw, gb


def linear(input, weight, bias=None):
    """input @ weight.T + bias: `input` (*, in_features), `weight` (out_features,
    in_features) or (in_features,), `bias` (out_features,) or None."""
    x, w = input._data, weight._data
    if (x.ndim == 2 and w.ndim == 2 and x.shape[1] == w.shape[1] and x.dtype == w.dtype
            and x.dtype.kind == "f" and (bias is None or (bias._data.shape == w.shape[:1]
                                                          and bias._data.dtype == w.dtype))):
        return Linear.apply(input, weight, bias)  # the common case, without the checks below
    if weight.ndim not in (1, 2):
        raise RuntimeError(f"linear: weight must be 1-D or 2-D, got {weight.ndim}-D "
                           f"of shape {list(weight.shape)}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[-1]:
        raise RuntimeError(f"linear: input of shape {list(input.shape)} does not match weight "
                           f"of shape {list(weight.shape)} (expected input[..., "
                           f"{weight.shape[-1]}])")
    if weight.ndim == 1 or input.dtype is not weight.dtype or not input.dtype.is_floating_point \
            or (bias is not None and (bias.ndim != 1 or bias.shape[0] != weight.shape[0]
                                      or bias.dtype is not weight.dtype)):
        out = matmul(input, weight.t())  # the general path: promotion, broadcasting bias
        return out if bias is None else out + bias
    if input.ndim == 2:
        return Linear.apply(input, weight, bias)
    lead = input.shape[:-1]
    out = Linear.apply(input.reshape(-1, input.shape[-1]), weight, bias)
    return out.reshape(*lead, weight.shape[0])
