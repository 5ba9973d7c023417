"""Convolutions over NCHW: conv1d, conv2d and conv_transpose2d (PyTorch's signatures).

Three Functions share one geometry (stride, padding per side, dilation, groups):

    _Conv            y  = conv(x, w) + b
    _ConvInputGrad   gx = conv's input gradient for g (+ b)   -- conv_transpose2d
    _ConvWeightGrad  gw = conv's weight gradient for x and g

All three are bilinear and each one's derivatives are the other two, so every
backward is itself differentiable (double backward, Hessian-vector products).
conv1d runs through the 2-D kernels with a height of 1.
"""
from ...autograd.function import Function
from ...tensor import Tensor


def _out_size(size, before, after, kernel, stride, dilation):
    return (size + before + after - dilation * (kernel - 1) - 1) // stride + 1


def _out_hw(x_hw, k_hw, geo):
    stride, pad, dilation, _ = geo
    return tuple(_out_size(x_hw[i], pad[2 * i], pad[2 * i + 1], k_hw[i], stride[i], dilation[i])
                 for i in range(2))


class _Conv(Function):
    """y = conv2d(x, w) + b; geo = (stride, (top, bottom, left, right), dilation, groups)."""

    def forward(ctx, x, w, b, geo):
        ctx.geo, ctx.x_hw, ctx.w_shape = geo, x.shape[2:], w.shape
        need_x, need_w = ctx.needs_input_grad[:2]
        ctx.save_for_backward(x if need_w else None, w if need_x else None)
        return ctx.backend.conv2d(x, w, b, _out_hw(x.shape[2:], w.shape[2:], geo), *geo)

    def backward(ctx, g):
        x, w = ctx.saved_tensors
        gx = _ConvInputGrad.apply(g, w, None, ctx.geo, ctx.x_hw) if w is not None else None
        gw = _ConvWeightGrad.apply(x, g, ctx.geo, ctx.w_shape) if x is not None else None
        gb = g.sum((0, 2, 3)) if ctx.needs_input_grad[2] else None
        return gx, gw, gb, None


class _ConvInputGrad(Function):
    """gx[N, C, *x_hw] = conv2d's input gradient for g (+ b per channel of gx)."""

    def forward(ctx, g, w, b, geo, x_hw):
        ctx.geo, ctx.w_shape = geo, w.shape
        need_g, need_w = ctx.needs_input_grad[:2]
        ctx.save_for_backward(g if need_w else None, w if need_g else None)
        return ctx.backend.conv2d_input_grad(g, w, b, x_hw, *geo)

    def backward(ctx, v):
        g, w = ctx.saved_tensors
        dg = _Conv.apply(v, w, None, ctx.geo) if w is not None else None
        dw = _ConvWeightGrad.apply(v, g, ctx.geo, ctx.w_shape) if g is not None else None
        db = v.sum((0, 2, 3)) if ctx.needs_input_grad[2] else None
        return dg, dw, db, None, None


class _ConvWeightGrad(Function):
    """gw = conv2d's weight gradient: sum over the batch of g[n] im2col(x[n])^T."""

    def forward(ctx, x, g, geo, w_shape):
        ctx.geo, ctx.x_hw = geo, x.shape[2:]
        need_x, need_g = ctx.needs_input_grad[:2]
        ctx.save_for_backward(x if need_g else None, g if need_x else None)
        return ctx.backend.conv2d_weight_grad(x, g, w_shape, *geo)

    def backward(ctx, v):
        x, g = ctx.saved_tensors
        dx = _ConvInputGrad.apply(g, v, None, ctx.geo, ctx.x_hw) if g is not None else None
        dg = _Conv.apply(x, v, None, ctx.geo) if x is not None else None
        return dx, dg, None, None


# ---------------------------------------------------------------- argument checks
def _tuple(value, n, name, op):
    """An int or a sequence of n ints as a tuple of n ints."""
    if isinstance(value, bool):
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if isinstance(value, int):
        return (value,) * n
    if isinstance(value, (tuple, list)) and all(isinstance(v, int) and not isinstance(v, bool)
                                                for v in value):
        if len(value) == 1:
            return tuple(value) * n
        if len(value) == n:
            return tuple(value)
        raise RuntimeError(f"{op}: expected {name} to be a single integer value or a list of {n} "
                           f"values to match the {n} spatial dimensions, but got "
                           f"{name}={list(value)}")
    raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")


def _shape(t):
    return list(t.shape)


def _check_tensors(op, input, weight, bias, nd):
    for name, t in (("input", input), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    if bias is not None and not isinstance(bias, Tensor):
        raise TypeError(f"{op}: bias must be a Tensor or None, got {type(bias).__name__}")
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"{op}: expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input, "
                           f"but got input of size: {_shape(input)}")
    if weight.ndim != nd + 2:
        raise RuntimeError(f"{op}: expected a {nd + 2}D weight, but got weight of size: "
                           f"{_shape(weight)}")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"{op}: expected a floating point input, got {input.dtype}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype is not input.dtype:
            raise RuntimeError(f"{op}: input ({input.dtype}) and {name} ({t.dtype}) must have "
                               "the same dtype")


def _check_params(op, stride, dilation, groups):
    if any(s <= 0 for s in stride):
        raise RuntimeError(f"{op}: non-positive stride is not supported, got stride={list(stride)}")
    if any(d <= 0 for d in dilation):
        raise RuntimeError(f"{op}: dilation should be greater than zero, but got "
                           f"{list(dilation)}")
    if not isinstance(groups, int) or isinstance(groups, bool) or groups <= 0:
        raise RuntimeError(f"{op}: non-positive groups is not supported, got groups={groups!r}")


def _check_bias(op, bias, weight, channels):
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != channels):
        raise RuntimeError(f"{op}: given weight of size {_shape(weight)}, expected bias to be "
                           f"1-dimensional with {channels} elements, but got bias of size "
                           f"{_shape(bias)} instead")


def _padding(op, padding, nd, kernel, stride, dilation):
    """Per-side padding ((before, after) for each spatial dim) from an int, tuple or string."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding != "same":
            raise ValueError(f"{op}: invalid padding string {padding!r}, should be one of "
                             "'valid' or 'same'")
        if any(s != 1 for s in stride):
            raise RuntimeError(f"{op}: padding='same' is not supported for strided convolutions")
        # Odd totals put the extra element after, as PyTorch does.
        totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
        return tuple((t // 2, t - t // 2) for t in totals)
    pad = _tuple(padding, nd, "padding", op)
    if any(p < 0 for p in pad):
        raise RuntimeError(f"{op}: negative padding is not supported, got padding={list(pad)}")
    return tuple((p, p) for p in pad)


def _to_2d(nd, x, weight, stride, pads, dilation):
    """1-D convolutions as 2-D ones with a height of 1."""
    if nd == 2:
        return x, weight, stride, pads, dilation
    return (x.unsqueeze(2), weight.unsqueeze(2), (1,) + stride, ((0, 0),) + pads,
            (1,) + dilation)


def _convnd(op, nd, input, weight, bias, stride, padding, dilation, groups):
    _check_tensors(op, input, weight, bias, nd)
    stride = _tuple(stride, nd, "stride", op)
    dilation = _tuple(dilation, nd, "dilation", op)
    _check_params(op, stride, dilation, groups)
    unbatched = input.ndim == nd + 1
    x = input.unsqueeze(0) if unbatched else input
    xs, ws = x._data.shape, weight._data.shape
    if ws[0] % groups:
        raise RuntimeError(f"{op}: given groups={groups}, expected weight to be divisible by "
                           f"{groups} at dimension 0, but got weight of size {list(ws)} instead")
    if xs[1] != ws[1] * groups:
        raise RuntimeError(f"{op}: given groups={groups}, weight of size {list(ws)}, expected "
                           f"input{list(xs)} to have {ws[1] * groups} channels, but got "
                           f"{xs[1]} channels instead")
    _check_bias(op, bias, weight, ws[0])
    kernel = ws[2:]
    pads = _padding(op, padding, nd, kernel, stride, dilation)
    padded = [n + p[0] + p[1] for n, p in zip(xs[2:], pads)]
    dilated = [d * (k - 1) + 1 for d, k in zip(dilation, kernel)]
    if any(p < k for p, k in zip(padded, dilated)):
        raise RuntimeError(f"{op}: calculated padded input size per channel: "
                           f"({' x '.join(map(str, padded))}). Kernel size (dilated): "
                           f"({' x '.join(map(str, dilated))}). Kernel size can't be greater "
                           f"than actual input size (input {_shape(input)}, weight {list(ws)})")
    x, w, stride, pads, dilation = _to_2d(nd, x, weight, stride, pads, dilation)
    out = _Conv.apply(x, w, bias, (stride, pads[0] + pads[1], dilation, groups))
    if nd == 1:
        out = out.squeeze(2)
    return out.squeeze(0) if unbatched else out


# ---------------------------------------------------------------- public API
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) of input [N, C_in, H, W] (or unbatched
    [C_in, H, W]) with weight [C_out, C_in / groups, kH, kW], plus bias [C_out].

    padding is an int, a pair, 'valid' (none) or 'same' (output size equals the
    input size; stride 1 only; an odd total puts the extra row/column at the end).
    """
    return _convnd("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution of input [N, C_in, L] (or unbatched [C_in, L]) with weight
    [C_out, C_in / groups, k], plus bias [C_out]; padding as in conv2d."""
    return _convnd("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed 2-D convolution (the gradient of conv2d with respect to its input)
    of input [N, C_in, H, W] (or unbatched) with weight [C_in, C_out / groups, kH, kW],
    plus bias [C_out].  Output size: (H - 1) * stride - 2 * padding
    + dilation * (kH - 1) + output_padding + 1 (same for W)."""
    op = "conv_transpose2d"
    _check_tensors(op, input, weight, bias, 2)
    stride = _tuple(stride, 2, "stride", op)
    dilation = _tuple(dilation, 2, "dilation", op)
    _check_params(op, stride, dilation, groups)
    pad = _tuple(padding, 2, "padding", op)
    out_pad = _tuple(output_padding, 2, "output_padding", op)
    if any(p < 0 for p in pad + out_pad):
        raise RuntimeError(f"{op}: negative padding is not supported, got padding={list(pad)}, "
                           f"output_padding={list(out_pad)}")
    if any(op_ >= s and op_ >= d for op_, s, d in zip(out_pad, stride, dilation)):
        raise RuntimeError(f"{op}: output padding must be smaller than either stride or "
                           f"dilation, but got output_padding={list(out_pad)}, "
                           f"stride={list(stride)}, dilation={list(dilation)}")
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    if weight.shape[0] % groups:
        raise RuntimeError(f"{op}: given groups={groups}, expected weight to be divisible by "
                           f"{groups} at dimension 0, but got weight of size {_shape(weight)} "
                           "instead")
    if x.shape[1] != weight.shape[0]:
        raise RuntimeError(f"{op}: given transposed=1, weight of size {_shape(weight)}, "
                           f"expected input{_shape(x)} to have {weight.shape[0]} channels, but "
                           f"got {x.shape[1]} channels instead")
    out_channels = weight.shape[1] * groups
    _check_bias(op, bias, weight, out_channels)
    out_hw = tuple((x.shape[2 + i] - 1) * stride[i] - 2 * pad[i]
                   + dilation[i] * (weight.shape[2 + i] - 1) + out_pad[i] + 1 for i in range(2))
    if any(s < 1 for s in out_hw) or any(s < 1 for s in x.shape[2:]):
        raise RuntimeError(f"{op}: given input size per channel: "
                           f"({' x '.join(map(str, x.shape[2:]))}). Calculated output size per "
                           f"channel: ({' x '.join(map(str, out_hw))}). Output size is too small")
    # The conv this transposes: its bottom/right padding absorbs output_padding.
    geo = (stride, (pad[0], pad[0] - out_pad[0], pad[1], pad[1] - out_pad[1]), dilation, groups)
    out = _ConvInputGrad.apply(x, weight, bias, geo, out_hw)
    return out.squeeze(0) if unbatched else out
