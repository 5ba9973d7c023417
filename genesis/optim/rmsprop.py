"""RMSprop, with momentum and the centered variant."""
from ..backend import get as _backend_of
from ..ops.creation import zeros_like
from .optimizer import Optimizer, _bump, _reject

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop, as PyTorch's `RMSprop`.

    Each step, with g the gradient (negated if `maximize`)::

        g = g + weight_decay * p                 if weight_decay != 0
        v = alpha * v + (1 - alpha) * g * g
        avg = sqrt(v - ga * ga) + eps  with  ga = lerp(ga, g, 1 - alpha)   if centered
        avg = sqrt(v) + eps                                                 otherwise
        b = momentum * b + g / avg;  p = p - lr * b     if momentum > 0
        p = p - lr * g / avg                            otherwise

    Args:
        params: tensors or parameter-group dicts to optimize.
        lr (float): learning rate (default: 1e-2).
        alpha (float): smoothing constant of the squared-gradient average (default: 0.99).
        eps (float): added to the denominator for stability (default: 1e-8).
        weight_decay (float): L2 penalty (default: 0).
        momentum (float): momentum factor (default: 0).
        centered (bool): normalize by an estimate of the gradient's variance.
        maximize (bool): maximize the objective instead of minimizing it.
        foreach: accepted for compatibility; every genesis update is one fused kernel
            per parameter.
        capturable, differentiable: must be False.
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        _reject("RMSprop", capturable=capturable, differentiable=differentiable)
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def _update_group(self, group):
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        weight_decay, momentum = group["weight_decay"], group["momentum"]
        centered, maximize = group["centered"], group["maximize"]
        for p, grad in self._params_with_grad(group):
            state = self.state[p]
            if not state:
                state["step"] = self._step_counter()
                state["square_avg"] = zeros_like(p)
            buf = ga = None
            if momentum > 0:
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = zeros_like(p)
            if centered:
                ga = state.get("grad_avg")
                if ga is None:
                    ga = state["grad_avg"] = zeros_like(p)
            sq, step = state["square_avg"], state["step"]
            _backend_of(p.device).rmsprop_update_(
                p._data, grad, sq._data, None if ga is None else ga._data,
                None if buf is None else buf._data, step._data, lr, alpha, eps, weight_decay,
                momentum, maximize)
            _bump(p, sq, ga, buf, step)
