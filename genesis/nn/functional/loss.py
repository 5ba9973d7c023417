"""Loss functions (PyTorch's `torch.nn.functional` losses).

`cross_entropy` is one fused kernel (log-softmax and negative log-likelihood in
one pass over each row, its backward a second kernel); `_cross_entropy_reference`
is the same loss composed of `log_softmax` and `nll_loss`, which the tests hold
the kernel to.  The other losses are compositions of differentiable genesis ops,
so their gradients are differentiable again (double backward).

Every loss takes `reduction` = 'none' | 'mean' | 'sum' (kl_div also
'batchmean'); the deprecated `size_average` / `reduce` arguments are honoured
as in PyTorch.  Regression losses (mse, l1, smooth_l1, huber) follow PyTorch on
shape mismatches: they warn and broadcast input and target (and raise when the
shapes cannot broadcast); binary cross-entropy requires equal shapes.
"""
import warnings

from ... import dtypes as _dt
from ...autograd.function import Function
from ...autograd.grad_mode import is_grad_enabled
from ...ops import (abs, broadcast_to, gather, log, log1p, log_softmax, one_hot, softmax,
                    softplus, square, sum, where)
from ...ops._util import broadcast_shape
from ...tensor import Tensor

__all__ = ["cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div"]

_REDUCTIONS = ("none", "mean", "sum")


# ---------------------------------------------------------------- argument checks
def _reduction(op, reduction, size_average=None, reduce=None, extra=()):
    """The reduction mode, from the deprecated size_average/reduce pair if given."""
    if size_average is not None or reduce is not None:
        warnings.warn("size_average and reduce args will be deprecated, please use "
                      "reduction='mean' (or 'sum', 'none') instead.", stacklevel=3)
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        return "none" if not reduce else "mean" if size_average else "sum"
    if reduction not in _REDUCTIONS + tuple(extra):
        expected = ", ".join(repr(r) for r in _REDUCTIONS + tuple(extra))
        raise ValueError(f"{op}: {reduction!r} is not a valid value for reduction "
                         f"(expected one of {expected})")
    return reduction


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _float_input(op, x, name="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(x).__name__}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"{op}: {name} must be a floating point tensor, got {x.dtype}")
    return x


def _like(op, x, other, name):
    """`other` (a Tensor or number) as a tensor of x's dtype."""
    if isinstance(other, Tensor):
        if other.device != x.device:
            raise RuntimeError(f"{op}: {name} is on {other.device} but input is on {x.device}")
        return other if other.dtype is x.dtype else other.to(x.dtype)
    if isinstance(other, (int, float)):
        from ...ops import tensor
        return tensor(float(other), dtype=x.dtype, device=x.device)
    raise TypeError(f"{op}: {name} must be a Tensor, got {type(other).__name__}")


def _pointwise_pair(op, input, target):
    """input and target broadcast together (PyTorch warns when their sizes differ)."""
    _float_input(op, input)
    target = _like(op, input, target, "target")
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"{op}: using a target size ({tuple(target.shape)}) that is different to "
                      f"the input size ({tuple(input.shape)}). This will likely lead to "
                      "incorrect results due to broadcasting. Please ensure they have the same "
                      "size.", stacklevel=3)
        shape = broadcast_shape(op, tuple(input.shape), tuple(target.shape))
        input, target = broadcast_to(input, shape), broadcast_to(target, shape)
    return input, target


def _sample_weight(op, weight, input):
    _float_input(op, input)
    if weight is None:
        return None
    weight = _like(op, input, weight, "weight")
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError(f"{op}: weight of shape {tuple(weight.shape)} must have the input's "
                         f"shape {tuple(input.shape)}")
    return weight


def _broadcast_weight(op, weight, input, name):
    """A weight that broadcasts to the input's shape (and not beyond), in its dtype."""
    weight = _like(op, input, weight, name)
    if broadcast_shape(op, tuple(input.shape), tuple(weight.shape)) != tuple(input.shape):
        raise ValueError(f"{op}: {name} of shape {tuple(weight.shape)} does not broadcast to the "
                         f"input shape {tuple(input.shape)}")
    return weight


def _weighted_reduce(loss, weight, reduction):
    """mse/l1 with per-element weights: the weighted mean divides by the weights' sum."""
    if weight is None:
        return _reduce(loss, reduction)
    loss = loss * weight
    return loss.sum() / weight.sum() if reduction == "mean" else _reduce(loss, reduction)


def _class_inputs(op, input, target, weight, allow_prob):
    """Validated (x (N, C, *d), target, weight, was_1d) for nll_loss / cross_entropy.

    A (C,) input with a 0-d class target (or a (C,) probability target) is
    treated as a batch of one.  Class targets become int64.
    """
    if (isinstance(input, Tensor) and isinstance(target, Tensor) and weight is None
            and input._device is target._device):
        x, t = input._data, target._data
        if (x.ndim == 2 and x.dtype.kind == "f" and t.ndim == 1 and t.shape[0] == x.shape[0]
                and t.dtype.kind == "i" and t.dtype.itemsize == 8):
            return input, target, None, False  # the common case, without the checks below
    _float_input(op, input)
    if not isinstance(target, Tensor):
        raise TypeError(f"{op}: target must be a Tensor, got {type(target).__name__}")
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have at least one dimension (classes), got a 0-d "
                         "tensor")
    if input.device != target.device:
        raise RuntimeError(f"{op}: target is on {target.device} but input is on {input.device}")
    C = input.shape[1] if input.ndim > 1 else input.shape[0]
    prob = target.dtype.is_floating_point
    if prob:
        if not allow_prob:
            raise TypeError(f"{op}: target must hold class indices (an integer tensor), got "
                            f"{target.dtype}")
        if tuple(target.shape) != tuple(input.shape):
            raise ValueError(f"{op}: probability targets must have the input's shape "
                             f"{tuple(input.shape)}, got {tuple(target.shape)}")
        target = target if target.dtype is input.dtype else target.to(input.dtype)
    else:
        if target.dtype is _dt.bool:
            raise TypeError(f"{op}: target must be an integer tensor of class indices or a "
                            "floating tensor of probabilities, got bool")
        expected = tuple(input.shape[:1]) + tuple(input.shape[2:]) if input.ndim > 1 else ()
        if tuple(target.shape) != expected:
            raise ValueError(f"{op}: for input of shape {tuple(input.shape)} the class-index "
                             f"target must have shape {expected}, got {tuple(target.shape)}")
        if target.dtype is not _dt.int64:
            target = target.to(_dt.int64)
    if weight is not None:
        weight = _like(op, input, weight, "weight")
        if tuple(weight.shape) != (C,):
            raise ValueError(f"{op}: weight must be a 1-D tensor of {C} class weights, got shape "
                             f"{tuple(weight.shape)}")
    was_1d = input.ndim == 1
    if was_1d:
        input, target = input.unsqueeze(0), target.unsqueeze(0)
    return input, target, weight, was_1d


def _check_labels(op, x, target, ignore_index):
    C = x.shape[1]
    x._backend().check_labels(
        target._data, C, int(ignore_index), f"{op}: target",
        f"for {C} classes (expected a class index in [0, {C}) or ignore_index {ignore_index})")


def _check_smoothing(op, label_smoothing):
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be between 0.0 and 1.0, got "
                         f"{label_smoothing}")


def _class_shape(x):
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


# ---------------------------------------------------------------- cross-entropy
class CrossEntropy(Function):
    """Fused log-softmax + NLL over dim 1; the backward is its own kernel.

    Under create_graph the backward is written with Tensor ops instead (softmax
    minus the target distribution), so double backward works too.
    """

    def forward(ctx, x, target, weight, ignore_index, label_smoothing, reduction):
        loss, lse, total = ctx.backend.cross_entropy(x, target, weight, ignore_index,
                                                     label_smoothing, reduction)
        ctx.options = (ignore_index, label_smoothing, reduction)
        ctx.save_for_backward(x, target, weight, lse, total)
        return loss

    def backward(ctx, g):
        x, target, weight, lse, total = ctx.saved_tensors
        if ctx.needs_input_grad[2]:
            raise RuntimeError("cross_entropy: the derivative for 'weight' is not implemented; "
                               "class weights are constants")
        ignore_index, ls, reduction = ctx.options
        want_target = ctx.needs_input_grad[1]
        if is_grad_enabled():  # a graph of the backward is being recorded
            gx, gt = _cross_entropy_grad(g, x, target, weight, total, ignore_index, ls,
                                         reduction, want_target)
        else:
            gx, gt = ctx.backend.cross_entropy_backward(
                g._data, x._data, target._data, None if weight is None else weight._data,
                lse._data, total._data, ignore_index, ls, reduction, want_target)
            gx = Tensor._make(gx, g.device)
            gt = None if gt is None else Tensor._make(gt, g.device)
        return gx, gt, None, None, None, None


def _cross_entropy_grad(g, x, target, weight, total, ignore_index, ls, reduction, want_target):
    """CrossEntropy's gradients as differentiable Tensor ops (for create_graph)."""
    C = x.shape[1]
    rows = tuple(x.shape[:1]) + tuple(x.shape[2:])
    if reduction != "none":
        g = g.expand(rows)
    if reduction == "mean":
        g = g / total.to(x.dtype)
    g = g.unsqueeze(1)
    w = None if weight is None else weight.reshape(_class_shape(x))
    p = softmax(x, 1)
    if target.dtype.is_floating_point:
        q = target * (1.0 - ls) + ls / C if ls else target
        if w is not None:
            q = q * w
        gx = g * (p * q.sum(1, keepdim=True) - q)
        gt = None
        if want_target:
            gt = g * log_softmax(x, 1) * -(1.0 - ls)
            if w is not None:
                gt = gt * w
        return gx, gt
    valid = target != ignore_index
    safe = where(valid, target, 0)
    keep = valid.to(x.dtype).unsqueeze(1)
    wy = keep if weight is None else where(valid, weight[safe], 0.0).unsqueeze(1)
    onehot = one_hot(safe, C).to(x.dtype).movedim(-1, 1)
    coef = wy * (1.0 - ls)
    gx = p * coef - onehot * coef
    if ls:
        total_w = float(C) if weight is None else weight.sum()
        gx = gx + keep * (ls / C) * (p * total_w - (1.0 if w is None else w))
    return g * gx, None


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """Cross-entropy between logits `input` (N, C, *d) or (C,) and `target`.

    target holds class indices (N, *d) (int64; `ignore_index` entries contribute
    nothing) or class probabilities shaped like input.  `weight` (C,) rescales each
    class; 'mean' divides by the summed weights of the non-ignored targets (class
    indices) or by the number of samples N * prod(d) (probabilities).
    `label_smoothing` in [0, 1] mixes the target with the uniform distribution, the
    class weights applied as in PyTorch.  Computed by one fused kernel, stable for
    logits of any magnitude; out-of-range class labels raise IndexError.  The class
    weights are constants (no gradient).
    """
    op = "cross_entropy"
    reduction = _reduction(op, reduction, size_average, reduce)
    _check_smoothing(op, label_smoothing)
    x, t, w, was_1d = _class_inputs(op, input, target, weight, allow_prob=True)
    loss = CrossEntropy.apply(x, t, w, int(ignore_index), float(label_smoothing), reduction)
    return loss.reshape(()) if was_1d and reduction == "none" else loss


def _cross_entropy_reference(input, target, weight=None, ignore_index=-100, reduction="mean",
                             label_smoothing=0.0):
    """cross_entropy composed of log_softmax, nll_loss and sums (PyTorch's own
    decomposition): the slow reference the fused kernel is tested against."""
    op = "cross_entropy"
    reduction = _reduction(op, reduction)
    _check_smoothing(op, label_smoothing)
    x, t, w, was_1d = _class_inputs(op, input, target, weight, allow_prob=True)
    C = x.shape[1]
    logp = log_softmax(x, 1)
    wc = None if w is None else w.reshape(_class_shape(x))
    if t.dtype.is_floating_point:
        q = t * (1.0 - label_smoothing) + label_smoothing / C if label_smoothing else t
        if wc is not None:
            q = q * wc
        per_row = -(logp * q).sum(1)
        out = per_row.sum() / float(per_row.numel()) if reduction == "mean" else \
            _reduce(per_row, reduction)
    else:
        out = nll_loss(logp, t, w, ignore_index=ignore_index, reduction=reduction)
        if label_smoothing:
            valid = t != ignore_index
            smooth = -(logp if wc is None else logp * wc).sum(1)
            smooth = where(valid, smooth, 0.0)
            if reduction == "mean":
                safe = where(valid, t, 0)
                denom = valid.to(x.dtype) if w is None else where(valid, w[safe], 0.0)
                smooth = smooth.sum() / denom.sum()
            else:
                smooth = _reduce(smooth, reduction)
            out = out * (1.0 - label_smoothing) + smooth * (label_smoothing / C)
    return out.reshape(()) if was_1d and reduction == "none" else out


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log-likelihood of log-probabilities `input` (N, C, *d) or (C,) at the
    class indices `target` (N, *d): -weight[t] * input[n, t, ...].

    Entries equal to `ignore_index` contribute nothing; 'mean' divides by the summed
    weights of the non-ignored targets.  Out-of-range labels raise IndexError.
    """
    op = "nll_loss"
    reduction = _reduction(op, reduction, size_average, reduce)
    x, t, w, was_1d = _class_inputs(op, input, target, weight, allow_prob=False)
    _check_labels(op, x, t, ignore_index)
    valid = t != ignore_index
    safe = where(valid, t, 0)
    picked = gather(x, 1, safe.unsqueeze(1)).squeeze(1)
    wy = valid.to(x.dtype) if w is None else where(valid, w[safe], 0.0)
    loss = where(valid, -picked * wy, 0.0)
    if reduction == "mean":
        return loss.sum() / wy.sum()
    loss = _reduce(loss, reduction)
    return loss.reshape(()) if was_1d and reduction == "none" else loss


# ---------------------------------------------------------------- regression
class SquaredErrorSum(Function):
    """scale * sum((x - t)^2): the mean or sum of mse_loss in one pass over x and t,
    where the composition writes and rereads x - t and its square."""

    def forward(ctx, x, t, scale):
        ctx.save_for_backward(x, t)
        ctx.scale = scale
        return ctx.backend.squared_error_sum(x, t, scale)

    def backward(ctx, g):
        x, t = ctx.saved_tensors
        d = (x - t) * (g * (2.0 * ctx.scale))
        return (d if ctx.needs_input_grad[0] else None,
                -d if ctx.needs_input_grad[1] else None, None)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Squared error (input - target)^2; with `weight` (input's shape) the weighted
    'mean' divides by the sum of the weights, as in PyTorch."""
    op = "mse_loss"
    reduction = _reduction(op, reduction, size_average, reduce)
    weight = _sample_weight(op, weight, input)
    input, target = _pointwise_pair(op, input, target)
    if weight is None and reduction != "none" and input.numel():
        scale = 1.0 / input.numel() if reduction == "mean" else 1.0
        return SquaredErrorSum.apply(input, target, scale)
    return _weighted_reduce(square(input - target), weight, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Absolute error |input - target|; with `weight` the weighted 'mean' divides by the
    sum of the weights, as in PyTorch."""
    op = "l1_loss"
    reduction = _reduction(op, reduction, size_average, reduce)
    weight = _sample_weight(op, weight, input)
    input, target = _pointwise_pair(op, input, target)
    return _weighted_reduce(abs(input - target), weight, reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = input - target);
    beta = 0 is the L1 loss."""
    op = "smooth_l1_loss"
    reduction = _reduction(op, reduction, size_average, reduce)
    if beta < 0:
        raise ValueError(f"{op}: beta must be non-negative, got {beta}")
    input, target = _pointwise_pair(op, input, target)
    d = input - target
    if beta == 0:
        return _reduce(abs(d), reduction)
    ad = abs(d)
    return _reduce(where(ad < beta, d * d * (0.5 / beta), ad - 0.5 * beta), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta) (d = input - target); with
    `weight` the loss is multiplied elementwise and 'mean' averages over elements, as
    in PyTorch."""
    op = "huber_loss"
    reduction = _reduction(op, reduction)
    if not delta > 0:
        raise ValueError(f"{op}: delta must be positive, got {delta}")
    weight = _sample_weight(op, weight, input)
    input, target = _pointwise_pair(op, input, target)
    d = input - target
    ad = abs(d)
    loss = where(ad < delta, d * d * 0.5, (ad - 0.5 * delta) * delta)
    return _reduce(loss if weight is None else loss * weight, reduction)


# ---------------------------------------------------------------- binary
class BinaryCrossEntropy(Function):
    """Elementwise -(t log x + (1 - t) log(1 - x)), logs clamped at -100 as in PyTorch.

    The gradient w (x - t) / max(x (1 - x), 1e-12) stays finite at x = 0 and x = 1,
    where a composition of log and clamp would give 0/0.
    """

    def forward(ctx, x, t):
        b = ctx.backend
        log_x = b.unary("clamp", b.unary("log", x), -100.0, float("nan"))
        log_1mx = b.unary("clamp", b.unary("log1p", b.unary("neg", x)), -100.0, float("nan"))
        # (t - 1) log(1 - x) - t log(x) = t (log(1 - x) - log(x)) - log(1 - x)
        ctx.save_for_backward(x, t)
        return b.binary("sub", b.binary("mul", t, b.binary("sub", log_1mx, log_x)), log_1mx)

    def backward(ctx, g):
        x, t = ctx.saved_tensors
        gx = gt = None
        if ctx.needs_input_grad[0]:
            gx = g * (x - t) / (x * (1.0 - x)).clamp(min=1e-12)
        if ctx.needs_input_grad[1]:
            gt = g * (log1p(-x).clamp(min=-100.0) - log(x).clamp(min=-100.0))
        return gx, gt


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """Binary cross-entropy of probabilities `input` in [0, 1] against `target` (same
    shape); `weight` broadcasts to the input.  log(x) and log(1 - x) are clamped at
    -100, so x = 0 or 1 gives a finite loss and gradient."""
    op = "binary_cross_entropy"
    reduction = _reduction(op, reduction, size_average, reduce)
    _float_input(op, input)
    target = _like(op, input, target, "target")
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{op}: target size {tuple(target.shape)} must be the same as the "
                         f"input size {tuple(input.shape)}")
    inside = (input >= 0).logical_and(input <= 1)
    if input.numel() and int(sum(inside.logical_not()).item()):
        raise RuntimeError(f"{op}: all elements of input should be between 0 and 1")
    loss = BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        loss = loss * _broadcast_weight(op, weight, input, "weight")
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    """Binary cross-entropy of sigmoid(input) against `target`, computed stably from the
    logits: (1 - t) x + (1 + (pos_weight - 1) t) softplus(-x).  `weight` broadcasts to
    the input; `pos_weight` weighs the positive term (broadcast along the last dim)."""
    op = "binary_cross_entropy_with_logits"
    reduction = _reduction(op, reduction, size_average, reduce)
    _float_input(op, input)
    target = _like(op, input, target, "target")
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{op}: target size {tuple(target.shape)} must be the same as the "
                         f"input size {tuple(input.shape)}")
    # softplus is exact (to rounding) below the threshold and returns z above it;
    # at 40, exp(-40) is below float64's resolution of 40.
    sp = softplus(-input, threshold=40.0)
    if pos_weight is not None:
        pw = _broadcast_weight(op, pos_weight, input, "pos_weight")
        sp = sp * ((pw - 1.0) * target + 1.0)
    loss = (1.0 - target) * input + sp
    if weight is not None:
        loss = loss * _broadcast_weight(op, weight, input, "weight")
    return _reduce(loss, reduction)


# ---------------------------------------------------------------- divergence
def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Kullback-Leibler divergence with `input` holding log-probabilities:
    target (log target - input) elementwise, 0 where target = 0 (or
    exp(target) (target - input) with log_target).  'batchmean' divides the sum by
    the batch size (the mathematical KL divergence); 'mean' divides by the number of
    elements and warns, as in PyTorch."""
    op = "kl_div"
    if size_average is None and reduce is None and reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the "
                      "support size. 'batchmean' divides only by the batch size, and aligns "
                      "with the KL div math definition.", stacklevel=2)
    reduction = _reduction(op, reduction, size_average, reduce, extra=("batchmean",))
    _float_input(op, input)
    target = _like(op, input, target, "target")
    shape = broadcast_shape(op, tuple(input.shape), tuple(target.shape))
    if log_target:
        loss = target.exp() * (target - input)
    else:
        zero = target == 0
        # xlogy(t, t): 0 at t = 0 (and its gradient finite there), NaN for t < 0
        loss = where(zero, 0.0, target * log(where(zero, 1.0, target))) - target * input
    if tuple(loss.shape) != shape:
        loss = broadcast_to(loss, shape)
    if reduction == "batchmean":
        return loss.sum() / float(shape[0]) if len(shape) else loss.sum()
    return _reduce(loss, reduction)
