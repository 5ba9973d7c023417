"""Dropout: zero random elements (dropout) or whole channels (dropout2d) in training.

Random numbers come from the global generator (`genesis.manual_seed` makes runs
repeatable) or from a `genesis.Generator` passed as `generator=`.  An element (or
channel) is kept when its uniform draw u satisfies u >= p, and kept values are
scaled by 1 / (1 - p) so the expectation is unchanged.  The backward pass
multiplies by the same mask, an ordinary differentiable product (double backward
works).
"""
import warnings

from ...autograd.function import Function
from ...ops._methods import _inplace
from ...ops.creation import _rng
from ...tensor import Tensor

__all__ = ["dropout", "dropout2d"]


class DropoutFn(Function):
    def forward(ctx, x, p, per_channel, rng):
        shape = x.shape[:2] + (1,) * (x.ndim - 2) if per_channel else x.shape
        u = ctx.backend.rand(shape, x.dtype, rng)
        out, mask = ctx.backend.dropout(x, u, p)
        ctx.save_for_backward(mask)
        return out

    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask, None, None, None


def _dropout(input, p, training, inplace, per_channel, generator, op):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor input, got {type(input).__name__}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")
    # As in PyTorch: nothing is drawn and the input itself is returned.
    if not training or p == 0 or input.numel() == 0:
        return input
    if p == 1:
        return input.mul_(0.0) if inplace else input * 0.0
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: expected a floating point input, got {input.dtype}")
    if per_channel and input.ndim < 2:
        raise RuntimeError(f"{op}: Feature dropout requires at least 2 dimensions in the "
                           f"input, got input of shape {list(input.shape)}")
    rng = _rng(generator)

    def run(x):
        return DropoutFn.apply(x, float(p), per_channel, rng)

    if not inplace:
        return run(input)
    if _inplace(input, op + "_", run) is None:  # not recorded: write the result back
        input._backend().copy_into(input._data, run(input.detach())._data)
        input._bump_version()
    return input


def dropout(input, p=0.5, training=True, inplace=False, *, generator=None):
    """During training, zero each element with probability `p` and scale the rest by
    1 / (1 - p); the identity when training=False or p=0 (the input is returned).
    `generator` (a genesis.Generator) replaces the global generator."""
    return _dropout(input, p, training, inplace, False, generator, "dropout")


def dropout2d(input, p=0.5, training=True, inplace=False, *, generator=None):
    """Channel dropout for (N, C, H, W) inputs: during training, zero whole channels
    (one draw per (n, c)) with probability `p` and scale the rest by 1 / (1 - p).
    A 3-D input is taken as (N, C, L), as in PyTorch."""
    if isinstance(input, Tensor) and input.ndim not in (3, 4):
        warnings.warn(f"dropout2d: received a {input.ndim}-D input; dropout2d expects "
                      "(N, C, H, W) or (N, C, L) inputs and drops whole channels (dims 0 and "
                      "1 pick the channel), use dropout for element-wise dropout", stacklevel=2)
    return _dropout(input, p, training, inplace, True, generator, "dropout2d")
