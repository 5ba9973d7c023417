"""Pooling over NCHW: max_pool1d/2d, avg_pool1d/2d, adaptive_avg_pool2d.

Each pooling is linear in its input once the argmax is fixed, so its backward
is a Function whose own backward is the forward again (average pools) or a
gather at the saved argmax (max pools): gradients of every order are
differentiable.  The 1-D poolings run through the 2-D kernels with a height of 1.
"""
from ...autograd.function import Function
from ...ops.elementwise import where
from ...ops.indexing import gather
from ...tensor import Tensor
from .conv import _tuple


class _MaxPool2d(Function):
    def forward(ctx, x, out_hw, kernel, stride, padding, dilation, empty_windows):
        out, indices = ctx.backend.max_pool2d(x, out_hw, kernel, stride, padding, dilation)
        ctx.mark_non_differentiable(indices)
        ctx.x_shape, ctx.empty_windows = x.shape, empty_windows
        ctx.save_for_backward(indices)
        return out, indices

    def backward(ctx, g, _):
        (indices,) = ctx.saved_tensors
        gx = _MaxPool2dBackward.apply(g, indices, ctx.x_shape, ctx.empty_windows)
        return gx, None, None, None, None, None, None


class _MaxPool2dBackward(Function):
    """gx = zeros(x_shape) with g scattered to the argmax of each window."""

    def forward(ctx, g, indices, x_shape, empty_windows):
        ctx.empty_windows = empty_windows
        ctx.save_for_backward(indices)
        return ctx.backend.max_pool2d_backward(g, indices, x_shape)

    def backward(ctx, v):
        (indices,) = ctx.saved_tensors
        flat = indices.flatten(2)
        if ctx.empty_windows:  # index -1 marks a window without input elements
            flat = flat.clamp(min=0)
        dg = gather(v.flatten(2), 2, flat).reshape(tuple(indices.shape))
        if ctx.empty_windows:
            dg = where(indices < 0, 0.0, dg)
        return dg, None, None, None


class _AvgPool2d(Function):
    """params = (kernel, stride, padding, count_include_pad, divisor_override or 0)."""

    def forward(ctx, x, out_hw, params):
        ctx.x_shape, ctx.params = x.shape, params
        return ctx.backend.avg_pool2d(x, out_hw, *params)

    def backward(ctx, g):
        return _AvgPool2dBackward.apply(g, ctx.x_shape, ctx.params), None, None


class _AvgPool2dBackward(Function):
    def forward(ctx, g, x_shape, params):
        ctx.out_hw, ctx.params = g.shape[2:], params
        return ctx.backend.avg_pool2d_backward(g, x_shape, *params)

    def backward(ctx, v):
        return _AvgPool2d.apply(v, ctx.out_hw, ctx.params), None, None


class _AdaptiveAvgPool2d(Function):
    def forward(ctx, x, out_hw):
        ctx.x_shape = x.shape
        return ctx.backend.adaptive_avg_pool2d(x, out_hw)

    def backward(ctx, g):
        return _AdaptiveAvgPool2dBackward.apply(g, ctx.x_shape), None


class _AdaptiveAvgPool2dBackward(Function):
    def forward(ctx, g, x_shape):
        ctx.out_hw = g.shape[2:]
        return ctx.backend.adaptive_avg_pool2d_backward(g, x_shape)

    def backward(ctx, v):
        return _AdaptiveAvgPool2d.apply(v, ctx.out_hw), None


# ---------------------------------------------------------------- geometry
def _pool_out(size, k, s, p, d, ceil_mode):
    """PyTorch's pooling output size; with ceil_mode the last window must start
    inside the input or its left padding."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _has_empty_window(size, out, k, s, p, d):
    """Whether some window along one dim covers no input element (needs dilation > 1)."""
    if d == 1:
        return False
    for o in range(out):
        start = o * s - p
        first = 0 if start >= 0 else -(start // d)  # first tap at or after 0
        if first >= k or start + first * d >= size:
            return True
    return False


def _check_input(op, input, nd):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if input.ndim not in (nd + 1, nd + 2) or any(s == 0 for s in input.shape[-nd - 1:]):
        raise RuntimeError(f"{op}: expected a {nd + 1}D (unbatched) or {nd + 2}D (batched) input "
                           f"with non-zero channel and spatial sizes, but got input of size: "
                           f"{list(input.shape)}")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"{op}: expected a floating point input, got {input.dtype}")


def _as_4d(input, nd):
    """(N, C, H, W) view of a 1-D/2-D, batched or unbatched input, and how to undo it."""
    x = input.unsqueeze(0) if input.ndim == nd + 1 else input
    if nd == 1:
        x = x.unsqueeze(2)

    def undo(t):
        if nd == 1:
            t = t.squeeze(2)
        return t.squeeze(0) if input.ndim == nd + 1 else t
    return x, undo


def _window(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode):
    """Validated 2-D (kernel, stride, padding, dilation) and the output (OH, OW)."""
    kernel = _tuple(kernel_size, nd, "kernel_size", op)
    stride = kernel if stride is None or stride == [] or stride == () else \
        _tuple(stride, nd, "stride", op)
    padding = _tuple(padding, nd, "padding", op)
    dilation = _tuple(dilation, nd, "dilation", op)
    if any(k <= 0 for k in kernel):
        raise RuntimeError(f"{op}: kernel_size must be greater than zero, but got {list(kernel)}")
    if any(s <= 0 for s in stride):
        raise RuntimeError(f"{op}: stride must be greater than zero, but got {list(stride)}")
    if any(d <= 0 for d in dilation):
        raise RuntimeError(f"{op}: dilation must be greater than zero, but got {list(dilation)}")
    for k, p in zip(kernel, padding):
        if p < 0 or p > k // 2:
            raise RuntimeError(f"{op}: pad should be non-negative and at most half of kernel "
                               f"size, but got pad={p} and kernel_size={k}")
    sizes = input.shape[-nd:]
    out = tuple(_pool_out(sizes[i], kernel[i], stride[i], padding[i], dilation[i], ceil_mode)
                for i in range(nd))
    if any(o < 1 for o in out):
        raise RuntimeError(f"{op}: given input size: ({'x'.join(map(str, input.shape[-nd - 1:]))})"
                           f". Calculated output size: ({input.shape[-nd - 1]}x"
                           f"{'x'.join(map(str, out))}). Output size is too small")
    if nd == 1:
        kernel, stride, padding, dilation, out = ((1,) + kernel, (1,) + stride, (0,) + padding,
                                                  (1,) + dilation, (1,) + out)
    return kernel, stride, padding, dilation, out


def _max_pool(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    _check_input(op, input, nd)
    kernel, stride, padding, dilation, out_hw = _window(op, nd, input, kernel_size, stride,
                                                        padding, dilation, ceil_mode)
    x, undo = _as_4d(input, nd)
    empty = any(_has_empty_window(x.shape[2 + i], out_hw[i], kernel[i], stride[i], padding[i],
                                  dilation[i]) for i in range(2))
    out, indices = _MaxPool2d.apply(x, out_hw, kernel, stride, padding, dilation, empty)
    return (undo(out), undo(indices)) if return_indices else undo(out)


def _avg_pool(op, nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    _check_input(op, input, nd)
    kernel, stride, padding, _, out_hw = _window(op, nd, input, kernel_size, stride, padding, 1,
                                                 ceil_mode)
    if divisor_override is not None and (not isinstance(divisor_override, int)
                                         or divisor_override == 0):
        raise RuntimeError(f"{op}: divisor_override must be a non-zero int, got "
                           f"{divisor_override!r}")
    x, undo = _as_4d(input, nd)
    params = (kernel, stride, padding, bool(count_include_pad), divisor_override or 0)
    return undo(_AvgPool2d.apply(x, out_hw, params))


# ---------------------------------------------------------------- public API
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Maximum over kH x kW windows of input [N, C, H, W] (or unbatched [C, H, W]).
    stride defaults to kernel_size; padding (at most half the kernel size)
    counts as -inf.  With return_indices, also the int64 index h * W + w of each
    maximum within its plane (-1 for a window that covers no input element)."""
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Maximum over windows of length kernel_size of input [N, C, L] (or [C, L]);
    arguments as in max_pool2d, indices count positions along L."""
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Mean over kH x kW windows of input [N, C, H, W] (or unbatched [C, H, W]).
    stride defaults to kernel_size; padded zeros count in the divisor when
    count_include_pad; divisor_override replaces the divisor."""
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """Mean over windows of length kernel_size of input [N, C, L] (or [C, L]);
    arguments as in avg_pool2d."""
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, None)


def adaptive_avg_pool2d(input, output_size):
    """Mean pooling of input [N, C, H, W] (or [C, H, W]) to output_size (an int or
    a pair; None keeps that input size).  Output cell i averages input rows
    floor(i * H / OH) to ceil((i + 1) * H / OH)."""
    op = "adaptive_avg_pool2d"
    _check_input(op, input, 2)
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise RuntimeError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
        sizes = tuple(input.shape[-2 + i] if s is None else s for i, s in enumerate(output_size))
    else:
        sizes = output_size
    out_hw = _tuple(sizes, 2, "output_size", op)
    if any(s < 1 for s in out_hw):
        raise RuntimeError(f"{op}: output_size must be positive, got {list(out_hw)}")
    x, undo = _as_4d(input, 2)
    return undo(_AdaptiveAvgPool2d.apply(x, out_hw))
