"""Elementwise operations: arithmetic, comparisons, math and activations.

Every derivative rule of this module is in `_DERIVATIVES` / the binary
Functions below, written with Tensor operations so it is differentiable again.
"""
import math

from .. import dtypes as _dt
from ..autograd.function import Function
from ..tensor import Tensor
from ._util import as_float, broadcast_shape, coerce_pair, scalar_tensor, sum_to_shape

# ---------------------------------------------------------------- unary
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _gelu_tanh_grad(x, y, g, p0, p1):
    t = tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))
    dt = (1.0 - t * t) * (_SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * x * x))
    return g * (0.5 * (1.0 + t) + 0.5 * x * dt)


def _silu_grad(x, y, g, p0, p1):
    s = sigmoid(x)
    return g * (s * (1.0 + x * (1.0 - s)))


def _zero_grad(x, y, g, p0, p1):
    return g * 0.0


class ReluGrad(Function):
    """g where x > 0, else 0: relu's backward in one kernel (instead of a comparison and a
    select).  Differentiable in g (double backward); its derivative in x is zero."""

    def forward(ctx, g, x):
        ctx.save_for_backward(x)
        return ctx.backend.binary("relu_grad", g, x)

    def backward(ctx, gg):
        (x,) = ctx.saved_tensors
        return ReluGrad.apply(gg, x), None


class GeluGrad(Function):
    """g * gelu'(x) (erf form; gelu' = Phi + x phi) in one kernel.  Differentiable in g
    and in x (double backward), with gelu''(x) = phi(x) (2 - x^2)."""

    def forward(ctx, g, x):
        ctx.save_for_backward(g, x)
        return ctx.backend.binary("gelu_grad", g, x)

    def backward(ctx, gg):
        g, x = ctx.saved_tensors
        gx = None
        if ctx.needs_input_grad[1]:
            gx = gg * g * (exp(-0.5 * x * x) * _INV_SQRT_2PI) * (2.0 - x * x)
        return GeluGrad.apply(gg, x), gx


# d op / dx given input x, output y, upstream gradient g and the op's parameters.
_DERIVATIVES = {
    "neg": lambda x, y, g, p0, p1: -g,
    "exp": lambda x, y, g, p0, p1: g * y,
    "log": lambda x, y, g, p0, p1: g / x,
    "log1p": lambda x, y, g, p0, p1: g / (x + 1.0),
    "expm1": lambda x, y, g, p0, p1: g * (y + 1.0),
    "sqrt": lambda x, y, g, p0, p1: g * 0.5 / y,
    "rsqrt": lambda x, y, g, p0, p1: g * -0.5 * y / x,
    "abs": lambda x, y, g, p0, p1: g * sign(x),
    "sign": _zero_grad,
    "reciprocal": lambda x, y, g, p0, p1: -g * y * y,
    "sin": lambda x, y, g, p0, p1: g * cos(x),
    "cos": lambda x, y, g, p0, p1: -g * sin(x),
    "tanh": lambda x, y, g, p0, p1: g * (1.0 - y * y),
    "sigmoid": lambda x, y, g, p0, p1: g * (y * (1.0 - y)),
    "relu": lambda x, y, g, p0, p1: ReluGrad.apply(g, x),
    "leaky_relu": lambda x, y, g, p0, p1: where(x > 0, g, g * p0),
    "elu": lambda x, y, g, p0, p1: where(x > 0, g, g * (y + p0)),
    "gelu": lambda x, y, g, p0, p1: GeluGrad.apply(g, x),
    "gelu_tanh": _gelu_tanh_grad,
    "silu": _silu_grad,
    "softplus": lambda x, y, g, p0, p1: where(x * p0 > p1, g, g * sigmoid(x * p0)),
    "erf": lambda x, y, g, p0, p1: g * (2.0 / math.sqrt(math.pi)) * exp(-x * x),
    "square": lambda x, y, g, p0, p1: g * 2.0 * x,
    "clamp": lambda x, y, g, p0, p1: where(_clamp_pass(x, p0, p1), g, 0.0),
    "floor": _zero_grad,
    "ceil": _zero_grad,
    "round": _zero_grad,
    "trunc": _zero_grad,
}


def _clamp_pass(x, lo, hi):
    mask = None
    if not math.isnan(lo):
        mask = x >= lo
    if not math.isnan(hi):
        upper = x <= hi
        mask = upper if mask is None else logical_and(mask, upper)
    return mask if mask is not None else (x == x)


class Unary(Function):
    def forward(ctx, x, op, p0, p1):
        y = ctx.backend.unary(op, x, p0, p1)
        ctx.op, ctx.p0, ctx.p1 = op, p0, p1
        ctx.save_for_backward(x, y)
        return y

    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return _DERIVATIVES[ctx.op](x, y, g, ctx.p0, ctx.p1), None, None, None

    def name(self):
        return f"{self.op.capitalize()}Backward"


def _unary(op, x, p0=0.0, p1=0.0, floats_only=True):
    if floats_only:
        x = as_float(x, op)
    elif not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    return Unary.apply(x, op, p0, p1)


def _make_unary(op, doc):
    def fn(input):
        return _unary(op, input)
    fn.__name__ = op
    fn.__doc__ = doc
    return fn


exp = _make_unary("exp", "e ** input, elementwise.")
log = _make_unary("log", "Natural logarithm, elementwise.")
log1p = _make_unary("log1p", "log(1 + input), accurate near 0.")
expm1 = _make_unary("expm1", "exp(input) - 1, accurate near 0.")
sqrt = _make_unary("sqrt", "Square root, elementwise.")
rsqrt = _make_unary("rsqrt", "1 / sqrt(input), elementwise.")
reciprocal = _make_unary("reciprocal", "1 / input, elementwise.")
sin = _make_unary("sin", "Sine, elementwise.")
cos = _make_unary("cos", "Cosine, elementwise.")
tanh = _make_unary("tanh", "Hyperbolic tangent, elementwise.")
sigmoid = _make_unary("sigmoid", "1 / (1 + exp(-input)), elementwise.")
erf = _make_unary("erf", "The error function, elementwise.")
silu = _make_unary("silu", "input * sigmoid(input) (swish).")
floor = _make_unary("floor", "Round down, elementwise.")
ceil = _make_unary("ceil", "Round up, elementwise.")
trunc = _make_unary("trunc", "Round toward zero, elementwise.")


def round(input):  # noqa: A001 - PyTorch's name
    """Round half to even, elementwise."""
    return _unary("round", input)


def neg(input):
    """-input."""
    return _unary("neg", input, floats_only=False)


def abs(input):  # noqa: A001
    """|input|."""
    return _unary("abs", input, floats_only=False)


def sign(input):
    """-1, 0 or 1 by the sign of each element."""
    return _unary("sign", input, floats_only=False)


def square(input):
    """input * input."""
    return _unary("square", input, floats_only=False)


def relu(input):
    """max(input, 0)."""
    return _unary("relu", input)


def leaky_relu(input, negative_slope=0.01):
    """input if input > 0 else negative_slope * input."""
    return _unary("leaky_relu", input, float(negative_slope))


def elu(input, alpha=1.0):
    """input if input > 0 else alpha * (exp(input) - 1)."""
    return _unary("elu", input, float(alpha))


def gelu(input, approximate="none"):
    """Gaussian error linear unit: exact (erf) or approximate='tanh'."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _unary("gelu" if approximate == "none" else "gelu_tanh", input)


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta * input)) / beta, linear above `threshold`."""
    return _unary("softplus", input, float(beta), float(threshold))


def clamp(input, min=None, max=None):  # noqa: A002
    """Limit each element to [min, max]; either bound may be None (or a Tensor)."""
    if min is None and max is None:
        raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = input
        if min is not None:
            out = maximum(out, min if isinstance(min, Tensor) else scalar_tensor(min, out.dtype, out.device))
        if max is not None:
            out = minimum(out, max if isinstance(max, Tensor) else scalar_tensor(max, out.dtype, out.device))
        return out
    if not input.dtype.is_floating_point and (isinstance(min, float) or isinstance(max, float)):
        input = input.to(_dt.get_default_dtype())
    lo = math.nan if min is None else float(min)
    hi = math.nan if max is None else float(max)
    return _unary("clamp", input, lo, hi, floats_only=False)


clip = clamp


# ---------------------------------------------------------------- binary
class Add(Function):
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return ctx.backend.binary("add", a, b)

    def backward(ctx, g):
        sa, sb = ctx.shapes
        return sum_to_shape(g, sa), sum_to_shape(g, sb)


class Sub(Function):
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return ctx.backend.binary("sub", a, b)

    def backward(ctx, g):
        sa, sb = ctx.shapes
        gb = -sum_to_shape(g, sb) if ctx.needs_input_grad[1] else None
        return sum_to_shape(g, sa), gb


class Mul(Function):
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        need_a, need_b = ctx.needs_input_grad
        ctx.save_for_backward(b if need_a else None, a if need_b else None)
        return ctx.backend.binary("mul", a, b)

    def backward(ctx, g):
        b, a = ctx.saved_tensors
        ga = sum_to_shape(g * b, ctx.shapes[0]) if b is not None else None
        gb = sum_to_shape(g * a, ctx.shapes[1]) if a is not None else None
        return ga, gb


class Div(Function):
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        out = ctx.backend.binary("div", a, b)
        ctx.save_for_backward(b, out)
        return out

    def backward(ctx, g):
        b, out = ctx.saved_tensors
        ga = sum_to_shape(g / b, ctx.shapes[0]) if ctx.needs_input_grad[0] else None
        gb = sum_to_shape(-g * out / b, ctx.shapes[1]) if ctx.needs_input_grad[1] else None
        return ga, gb


class Pow(Function):
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        out = ctx.backend.binary("pow", a, b)
        ctx.save_for_backward(a, b, out)
        return out

    def backward(ctx, g):
        a, b, out = ctx.saved_tensors
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = sum_to_shape(g * b * pow(a, b - 1.0), ctx.shapes[0])
        if ctx.needs_input_grad[1]:
            # d/db a**b = a**b * log(a); PyTorch's convention: 0 where a == 0
            gb = sum_to_shape(where(a == 0, 0.0, g * out * log(a)), ctx.shapes[1])
        return ga, gb


class _Extremum(Function):
    """maximum/minimum: the gradient goes to the chosen operand, split on ties."""

    op = None

    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        ctx.save_for_backward(a, b)
        return ctx.backend.binary(ctx.op, a, b)

    def backward(ctx, g):
        a, b = ctx.saved_tensors
        wins = (a > b) if ctx.op == "maximum" else (a < b)
        share = wins.to(g.dtype) + (a == b).to(g.dtype) * 0.5
        ga = sum_to_shape(g * share, ctx.shapes[0]) if ctx.needs_input_grad[0] else None
        gb = sum_to_shape(g * (1.0 - share), ctx.shapes[1]) if ctx.needs_input_grad[1] else None
        return ga, gb


class Maximum(_Extremum):
    op = "maximum"


class Minimum(_Extremum):
    op = "minimum"


class Remainder(Function):
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        ctx.save_for_backward(a, b)
        return ctx.backend.binary("mod", a, b)

    def backward(ctx, g):
        a, b = ctx.saved_tensors
        gb = None
        if ctx.needs_input_grad[1]:
            gb = sum_to_shape(-g * floor_divide(a, b), ctx.shapes[1])
        return sum_to_shape(g, ctx.shapes[0]), gb


class NoGrad(Function):
    """Binary ops without a gradient (comparisons, logical ops, floor division)."""

    def forward(ctx, a, b, op):
        out = ctx.backend.binary(op, a, b)
        ctx.mark_non_differentiable(out)
        return out


class Where(Function):
    def forward(ctx, cond, a, b):
        ctx.shapes = (cond.shape, a.shape, b.shape)
        ctx.save_for_backward(cond)
        return ctx.backend.where(cond, a, b)

    def backward(ctx, g):
        (cond,) = ctx.saved_tensors
        zero = scalar_tensor(0, g.dtype, g.device)
        ga = sum_to_shape(where(cond, g, zero), ctx.shapes[1]) if ctx.needs_input_grad[1] else None
        gb = sum_to_shape(where(cond, zero, g), ctx.shapes[2]) if ctx.needs_input_grad[2] else None
        return None, ga, gb


def _binary(cls, a, b, op):
    if not (isinstance(a, Tensor) and isinstance(b, Tensor) and a._data.dtype == b._data.dtype):
        a, b = coerce_pair(a, b, op)
    if a._data.shape != b._data.shape:
        broadcast_shape(op, a._data.shape, b._data.shape)
    return cls.apply(a, b)


def add(input, other, *, alpha=1):
    """input + alpha * other, with broadcasting."""
    if alpha != 1:
        other = mul(other, alpha)
    return _binary(Add, input, other, "add")


def sub(input, other, *, alpha=1):
    """input - alpha * other, with broadcasting."""
    if alpha != 1:
        other = mul(other, alpha)
    return _binary(Sub, input, other, "sub")


def mul(input, other):
    """input * other, with broadcasting."""
    return _binary(Mul, input, other, "mul")


def div(input, other, *, rounding_mode=None):
    """input / other (true division; integers are promoted to float).
    rounding_mode 'floor' or 'trunc' rounds the quotient."""
    if rounding_mode == "floor":
        return floor_divide(input, other)
    a, b = coerce_pair(input, other, "div")
    if not a.dtype.is_floating_point:
        a, b = a.to(_dt.get_default_dtype()), b.to(_dt.get_default_dtype())
    out = _binary(Div, a, b, "div")
    if rounding_mode == "trunc":
        out = trunc(out)
    elif rounding_mode is not None:
        raise ValueError(f"div: rounding_mode must be None, 'floor' or 'trunc', got {rounding_mode!r}")
    return out


true_divide = div


def floor_divide(input, other):
    """floor(input / other) (Python's //); not differentiable."""
    a, b = coerce_pair(input, other, "floor_divide")
    broadcast_shape("floor_divide", a.shape, b.shape)
    return NoGrad.apply(a, b, "floordiv")


def remainder(input, other):
    """input % other with the sign of the divisor (Python's %)."""
    return _binary(Remainder, input, other, "remainder")


def pow(input, exponent):  # noqa: A001
    """input ** exponent; either may be a Python number."""
    if isinstance(input, Tensor) and not isinstance(exponent, Tensor) and \
            input.dtype.is_floating_point is False and isinstance(exponent, float):
        input = input.to(_dt.get_default_dtype())
    return _binary(Pow, input, exponent, "pow")


def maximum(input, other):
    """Elementwise max; NaN propagates; ties split the gradient."""
    return _binary(Maximum, input, other, "maximum")


def minimum(input, other):
    """Elementwise min; NaN propagates; ties split the gradient."""
    return _binary(Minimum, input, other, "minimum")


def _make_no_grad(op, kernel):
    def fn(input, other):
        a, b = coerce_pair(input, other, op)
        if a._data.shape != b._data.shape:
            broadcast_shape(op, a._data.shape, b._data.shape)
        return NoGrad.apply(a, b, kernel)
    fn.__name__ = op
    fn.__doc__ = f"Elementwise {op}; returns a bool tensor."
    return fn


eq = _make_no_grad("eq", "eq")
ne = _make_no_grad("ne", "ne")
lt = _make_no_grad("lt", "lt")
le = _make_no_grad("le", "le")
gt = _make_no_grad("gt", "gt")
ge = _make_no_grad("ge", "ge")
greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne


def _logical(op):
    def fn(input, other):
        a, b = coerce_pair(input, other, op)
        return NoGrad.apply(a.bool(), b.bool(), op)
    fn.__name__ = op
    fn.__doc__ = f"Elementwise {op.replace('_', ' ')} of the truth values; a bool tensor."
    return fn


logical_and = _logical("logical_and")
logical_or = _logical("logical_or")
logical_xor = _logical("logical_xor")


def logical_not(input):
    """Elementwise not of the truth values; a bool tensor."""
    return Unary.apply(input, "logical_not", 0.0, 0.0)


def where(condition, input, other):
    """Elements of `input` where `condition` holds, else of `other` (broadcast)."""
    if not isinstance(condition, Tensor) or condition.dtype is not _dt.bool:
        raise TypeError("where: condition must be a bool Tensor")
    a, b = coerce_pair(input, other, "where")
    broadcast_shape("where", condition.shape, a.shape, b.shape)
    return Where.apply(condition, a, b)
