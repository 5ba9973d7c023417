"""Resizing: `interpolate` (PyTorch's `F.interpolate`) over NCHW and NCL inputs.

Modes nearest, nearest-exact, linear (3-D input) and bilinear (4-D input) run in
the upsampling kernels (csrc/upsample.cpp), which take PyTorch's source
coordinates, align_corners rule and scale-factor rule; area is an adaptive
average pool, as in PyTorch.  Upsampling is linear in its input, so its
backward is a Function whose own backward is the forward again: gradients of
every order are differentiable.  3-D inputs run through the 2-D kernels with a
height of 1.
"""
import math
import numbers

from ...autograd.function import Function
from ...tensor import Tensor
from .pooling import adaptive_avg_pool2d

__all__ = ["interpolate"]

_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "area")
# The number of spatial dims each interpolating mode works on.
_LINEAR_DIMS = {"linear": 1, "bilinear": 2}


class _Upsample2d(Function):
    """params = (kernel mode, align_corners, (scale_h, scale_w) or None per axis)."""

    def forward(ctx, x, out_hw, params):
        ctx.x_shape, ctx.params = x.shape, params
        return ctx.backend.upsample2d(x, out_hw, *params)

    def backward(ctx, g):
        return _Upsample2dBackward.apply(g, ctx.x_shape, ctx.params), None, None


class _Upsample2dBackward(Function):
    def forward(ctx, g, x_shape, params):
        ctx.out_hw, ctx.params = g.shape[2:], params
        return ctx.backend.upsample2d_backward(g, x_shape, *params)

    def backward(ctx, v):
        return _Upsample2d.apply(v, ctx.out_hw, ctx.params), None, None


def _per_dim(value, dim, name, input):
    """`value` (a number or a sequence of `dim` numbers) as a list of `dim` entries."""
    if isinstance(value, (list, tuple)):
        if len(value) != dim:
            raise ValueError(f"interpolate: Input and {name} must have the same number of "
                             f"spatial dimensions, but got input with spatial dimensions of "
                             f"{list(input.shape[2:])} and {name} of {list(value)}. Please "
                             f"provide input tensor in (N, C, d1, d2, ...,dK) format and "
                             f"{name} in (o1, o2, ...,oK) format.")
        return list(value)
    return [value] * dim


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize `input` (N, C, L) or (N, C, H, W) to `size` or by `scale_factor`.

    mode: 'nearest' (PyTorch's legacy rule: source = floor(dst * in / out)),
    'nearest-exact' (source = floor((dst + 0.5) * in / out)), 'linear' (3-D
    input), 'bilinear' (4-D input) or 'area' (adaptive average pooling).
    With align_corners=True the corner pixels of input and output are aligned
    (linear modes only); otherwise pixel centers are, and coordinates outside
    the input are clamped.  When `scale_factor` is given the output size is
    floor(in * scale_factor) and coordinates use 1 / scale_factor, unless
    `recompute_scale_factor=True`, which uses in / out as for an explicit size.
    """
    op = "interpolate"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if mode not in _MODES:
        raise ValueError(f"{op}: mode must be one of {', '.join(_MODES)} (genesis has no "
                         f"bicubic or trilinear kernels), got {mode!r}")
    if mode in ("nearest", "nearest-exact", "area"):
        if align_corners is not None:
            raise ValueError("interpolate: align_corners option can only be set with the "
                             "interpolating modes: linear | bilinear | bicubic | trilinear")
    elif align_corners is None:
        align_corners = False
    if input.ndim not in (3, 4):
        raise ValueError(f"{op}: expected a 3-D (N, C, L) or 4-D (N, C, H, W) input, got "
                         f"input of shape {list(input.shape)}")
    dim = input.ndim - 2
    if mode in _LINEAR_DIMS and _LINEAR_DIMS[mode] != dim:
        raise ValueError(f"{op}: Got {input.ndim}D input, but {mode} mode needs "
                         f"{_LINEAR_DIMS[mode] + 2}D input")
    if antialias:
        raise ValueError(f"{op}: antialias=True is not supported by genesis")
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: expected a floating point input, got {input.dtype}")

    if size is not None and scale_factor is not None:
        raise ValueError(f"{op}: only one of size or scale_factor should be defined")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(f"{op}: recompute_scale_factor is not meaningful with an "
                             "explicit size.")
        out_size = _per_dim(size, dim, "output size", input)
        if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool)
                   for s in out_size):
            raise TypeError(f"{op}: size must be an int or a sequence of ints, got {size!r}")
        out_size = [int(s) for s in out_size]
        scales = [None] * dim
    elif scale_factor is not None:
        scales = _per_dim(scale_factor, dim, "scale_factor", input)
        if not all(isinstance(s, numbers.Real) and not isinstance(s, bool) and s > 0
                   and math.isfinite(s) for s in scales):
            raise ValueError(f"{op}: scale_factor must be a positive number or a sequence of "
                             f"positive numbers, got {scale_factor!r}")
        scales = [float(s) for s in scales]
        out_size = [math.floor(float(n) * s) for n, s in zip(input.shape[2:], scales)]
        if recompute_scale_factor or mode == "area":
            scales = [None] * dim
    else:
        raise ValueError(f"{op}: either size or scale_factor should be defined")
    in_size = list(input.shape[2:])
    if any(s <= 0 for s in in_size) or any(s <= 0 for s in out_size):
        raise ValueError(f"{op}: Input and output sizes should be greater than 0, but got "
                         f"input {in_size} and output {out_size}")

    x = input.unsqueeze(2) if dim == 1 else input
    out_hw = [1] + out_size if dim == 1 else out_size
    if mode == "area":
        out = adaptive_avg_pool2d(x, tuple(out_hw))
    else:
        kernel_mode = "bilinear" if mode in _LINEAR_DIMS else mode
        params = (kernel_mode, bool(align_corners), tuple([None] * (2 - dim) + scales))
        out = _Upsample2d.apply(x, tuple(out_hw), params)
    return out.squeeze(2) if dim == 1 else out
