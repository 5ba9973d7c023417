"""Gradient clipping: by total norm (`clip_grad_norm_`) or by value (`clip_grad_value_`).

Norms, the clipping coefficient and the scaling are genesis ops, so they run in
the kernels of the gradients' device; nothing is recorded for autograd.
"""
import math

from ...autograd.grad_mode import no_grad
from ...ops.creation import tensor
from ...ops.elementwise import clamp
from ...ops.reduction import norm
from ...ops.shape import stack
from ...tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm"]


def _as_list(tensors):
    return [tensors] if isinstance(tensors, Tensor) else list(tensors)


def _grads(parameters):
    return [p.grad for p in _as_list(parameters) if p.grad is not None]


@no_grad()
def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The `norm_type`-norm of all `tensors` together, as if concatenated into one vector.

    Computed as the norm of the per-tensor norms (PyTorch's method).  Returns a
    0-d tensor (0.0 for no tensors).  With `error_if_nonfinite`, a NaN or infinite
    total raises RuntimeError.  `foreach` is accepted for compatibility.
    """
    tensors = _as_list(tensors)
    norm_type = float(norm_type)
    if not tensors:
        return tensor(0.0)
    device = tensors[0].device
    norms = [norm(t, norm_type).to(device) for t in tensors]
    total = norm(stack(norms), norm_type)
    if error_if_nonfinite and not math.isfinite(total.item()):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                           "`parameters` is non-finite, so it cannot be clipped. To disable "
                           "this error and scale the gradients by the non-finite norm anyway, "
                           "set `error_if_nonfinite=False`")
    return total


@no_grad()
def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """Scale the gradients of `parameters` in place by min(1, max_norm / (total_norm + 1e-6)).

    `total_norm` is a tensor such as `get_total_norm` returns.  `foreach` is
    accepted for compatibility.
    """
    grads = _grads(parameters)
    if not grads:
        return
    coef = clamp(float(max_norm) / (total_norm + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef.to(device=g.device, dtype=g.dtype))


@no_grad()
def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                    foreach=None):
    """Clip the gradients of `parameters` in place so that their total norm is at most
    `max_norm` (PyTorch's `torch.nn.utils.clip_grad_norm_`).

    Args:
        parameters: a tensor or an iterable of tensors whose `.grad` to clip
            (tensors without a gradient are ignored).
        max_norm (float): largest allowed total norm.
        norm_type (float): order of the norm; `float('inf')` for the max-norm.
        error_if_nonfinite (bool): raise if the total norm is NaN or infinite.
        foreach: accepted for compatibility.
    Returns:
        the total norm of the gradients before clipping, a 0-d tensor.
    """
    parameters = _as_list(parameters)
    total = get_total_norm(_grads(parameters), norm_type, error_if_nonfinite)
    clip_grads_with_norm_(parameters, max_norm, total)
    return total


@no_grad()
def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp the gradients of `parameters` in place to [-clip_value, clip_value].

    `parameters` is a tensor or an iterable of tensors (those without a gradient
    are ignored); `foreach` is accepted for compatibility.
    """
    clip_value = float(clip_value)
    for g in _grads(parameters):
        g.clamp_(min=-clip_value, max=clip_value)
