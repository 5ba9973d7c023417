"""Normalization: batch_norm, layer_norm, group_norm (fused kernels) and normalize.

The three norms run forward and backward in one kernel each.  Their backward is
not itself recorded, so differentiating through it twice (create_graph=True)
raises; `normalize` is a composition of differentiable ops and has no such limit.
"""
import math

from ...autograd.function import Function
from ...autograd.grad_mode import is_grad_enabled
from ...ops._util import as_float
from ...ops.elementwise import clamp, sqrt
from ...ops.reduction import norm, sum
from ...tensor import Tensor

__all__ = ["batch_norm", "layer_norm", "group_norm", "normalize"]


def _no_double_backward(op):
    if is_grad_enabled():
        raise RuntimeError(f"{op}: double backward is not supported: its gradient is computed "
                           "by a fused kernel that is not differentiable (create_graph=True "
                           "through this op)")


def _wrap(array, device):
    return None if array is None else Tensor._make(array, device)


def _data(t):
    return None if t is None else t._data


class BatchNormFn(Function):
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
        x = ctx.backend.contiguous(x)
        out, mean, invstd = ctx.backend.batch_norm(x, weight, bias, running_mean, running_var,
                                                   training, momentum, eps)
        ctx.training = training
        ctx.save_for_backward(x, weight, mean, invstd)
        return out

    def backward(ctx, grad):
        _no_double_backward("batch_norm")
        x, weight, mean, invstd = ctx.saved_tensors
        grads = ctx.backend.batch_norm_backward(grad._data, x._data, _data(weight), mean._data,
                                                invstd._data, ctx.training,
                                                ctx.needs_input_grad[:3])
        return tuple(_wrap(g, grad.device) for g in grads) + (None,) * 5


class LayerNormFn(Function):
    def forward(ctx, x, weight, bias, normalized_shape, eps):
        x = ctx.backend.contiguous(x)
        out, mean, rstd = ctx.backend.layer_norm(x, normalized_shape, weight, bias, eps)
        ctx.normalized_shape = normalized_shape
        ctx.save_for_backward(x, weight, mean, rstd)
        return out

    def backward(ctx, grad):
        _no_double_backward("layer_norm")
        x, weight, mean, rstd = ctx.saved_tensors
        grads = ctx.backend.layer_norm_backward(grad._data, x._data, ctx.normalized_shape,
                                                mean._data, rstd._data, _data(weight),
                                                ctx.needs_input_grad[:3])
        return tuple(_wrap(g, grad.device) for g in grads) + (None, None)


class GroupNormFn(Function):
    def forward(ctx, x, weight, bias, num_groups, eps):
        x = ctx.backend.contiguous(x)
        out, mean, rstd = ctx.backend.group_norm(x, num_groups, weight, bias, eps)
        ctx.num_groups = num_groups
        ctx.save_for_backward(x, weight, mean, rstd)
        return out

    def backward(ctx, grad):
        _no_double_backward("group_norm")
        x, weight, mean, rstd = ctx.saved_tensors
        grads = ctx.backend.group_norm_backward(grad._data, x._data, ctx.num_groups, mean._data,
                                                rstd._data, _data(weight),
                                                ctx.needs_input_grad[:3])
        return tuple(_wrap(g, grad.device) for g in grads) + (None, None)


# ---------------------------------------------------------------- argument checks
def _check_input(input, op, min_dims=0):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor input, got {type(input).__name__}")
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: expected a floating point input, got {input.dtype}")
    if input.ndim < min_dims:
        raise RuntimeError(f"{op}: expected an input with at least {min_dims} dimensions "
                           f"(N, C, *), got input of shape {list(input.shape)}")


def _check_param(op, name, t, input, shape, expected):
    """`t` (or None) must be a tensor of `shape` with the input's dtype."""
    if t is None:
        return
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor or None, got {type(t).__name__}")
    if tuple(t.shape) != tuple(shape):
        raise RuntimeError(f"{op}: expected {name} to be {expected}, but got {name} of shape "
                           f"{list(t.shape)} and input of shape {list(input.shape)}")
    if t.dtype is not input.dtype:
        raise TypeError(f"{op}: {name} has dtype {t.dtype} but the input has dtype "
                        f"{input.dtype}; expected the same dtype")


def _verify_batch_size(op, size):
    """PyTorch's rule: statistics over a single value per channel are meaningless."""
    n = size[0] * math.prod(size[2:])
    if n == 1:
        raise ValueError(f"{op}: Expected more than 1 value per channel when training, "
                         f"got input size {list(size)}")


# ---------------------------------------------------------------- public API
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-05):
    """Batch normalization over the channel dim of `input` (N, C, *).

    In training, each channel is normalized with the mean and biased variance of
    its N * prod(*) values, and `running_mean`/`running_var` (when given) are
    updated in place: running = (1 - momentum) * running + momentum * stat, the
    variance unbiased.  Otherwise the running statistics are used.  Then
    out = normalized * weight + bias (weight, bias of shape (C,), optional).
    """
    op = "batch_norm"
    _check_input(input, op, 2)
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_param(op, name, t, input, (c,), f"a vector of {c} elements (one per channel)")
    if not training and (running_mean is None or running_var is None):
        raise RuntimeError(f"{op}: running_mean and running_var must be given in evaluation "
                           "mode (training=False)")
    if training:
        _verify_batch_size(op, tuple(input.shape))
    out = BatchNormFn.apply(input, weight, bias, running_mean, running_var, bool(training),
                            float(momentum), float(eps))
    if training:
        for t in (running_mean, running_var):
            if t is not None:
                t._bump_version()
    return out


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05):
    """Layer normalization over the trailing dims `normalized_shape` (int or sequence):
    each slice is normalized by its own mean and biased variance, then multiplied by
    `weight` and shifted by `bias` (both of shape normalized_shape, optional)."""
    op = "layer_norm"
    _check_input(input, op)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else \
        tuple(int(s) for s in normalized_shape)
    if not shape:
        raise RuntimeError(f"{op}: Expected normalized_shape to be at least 1-dimensional, "
                           "i.e., containing at least one element, but got normalized_shape = []")
    k = len(shape)
    if input.ndim < k or tuple(input.shape[input.ndim - k:]) != shape:
        raise RuntimeError(f"{op}: Given normalized_shape={list(shape)}, expected input with "
                           f"shape [*, {', '.join(map(str, shape))}], but got input of size "
                           f"{list(input.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        _check_param(op, name, t, input, shape,
                     f"of same shape as normalized_shape = {list(shape)}")
    return LayerNormFn.apply(input, weight, bias, shape, float(eps))


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-05):
    """Group normalization of `input` (N, C, *): the C channels are split into
    `num_groups` groups, each (sample, group) is normalized by its own mean and
    biased variance, then scaled by `weight` and shifted by `bias` (per channel)."""
    op = "group_norm"
    _check_input(input, op, 2)
    if not isinstance(num_groups, int) or isinstance(num_groups, bool):
        raise TypeError(f"{op}: num_groups must be an int, got {type(num_groups).__name__}")
    n, c = input.shape[0], input.shape[1]
    if num_groups < 1 or c % num_groups:
        raise RuntimeError(f"{op}: Expected number of channels in input to be divisible by "
                           f"num_groups, but got input of shape {list(input.shape)} and "
                           f"num_groups={num_groups}")
    _verify_batch_size(op, (n * c // num_groups, num_groups) + tuple(input.shape[2:]))
    for name, t in (("weight", weight), ("bias", bias)):
        _check_param(op, name, t, input, (c,),
                     f"a vector of size equal to the number of channels in input ({c})")
    return GroupNormFn.apply(input, weight, bias, num_groups, float(eps))


def normalize(input, p=2.0, dim=1, eps=1e-12):
    """input / max(||input||_p, eps) along `dim` (unit vectors; zero vectors stay zero)."""
    input = as_float(input, "normalize")
    if p == 2:
        # sqrt(max(sum(x^2), eps^2)) = max(||x||, eps), and its gradient is 0 (not NaN)
        # for an all-zero vector, as in PyTorch.
        denom = sqrt(clamp(sum(input * input, dim, keepdim=True), min=eps * eps))
    else:
        denom = clamp(norm(input, p, dim, keepdim=True), min=eps)
    return input / denom
