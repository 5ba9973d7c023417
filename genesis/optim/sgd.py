"""Stochastic gradient descent, with momentum, dampening, Nesterov and weight decay."""
from ..backend import get as _backend_of
from ..ops.creation import empty_like
from .optimizer import Optimizer, _bump, _reject

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent (optionally with momentum), as PyTorch's `SGD`.

    Each step, with g the gradient (negated if `maximize`)::

        g = g + weight_decay * p                    if weight_decay != 0
        b = g  (first step),  b = momentum * b + (1 - dampening) * g  (later)
        g = g + momentum * b  if nesterov  else  b  if momentum != 0
        p = p - lr * g

    Args:
        params: tensors or parameter-group dicts to optimize.
        lr (float): learning rate (default: 1e-3).
        momentum (float): momentum factor (default: 0).
        dampening (float): dampening for momentum (default: 0).
        weight_decay (float): L2 penalty (default: 0).
        nesterov (bool): Nesterov momentum; needs momentum > 0 and zero dampening.
        maximize (bool): maximize the objective instead of minimizing it.
        foreach, fused: accepted for compatibility; every genesis update is one fused
            kernel per parameter.
        differentiable: must be False.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        _reject("SGD", differentiable=differentiable)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                        foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)

    def _update_group(self, group):
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        weight_decay, nesterov, maximize = (group["weight_decay"], group["nesterov"],
                                            group["maximize"])
        for p, grad in self._params_with_grad(group):
            buf, init = None, False
            if momentum != 0:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:  # the first step copies the gradient into it
                    buf = state["momentum_buffer"] = empty_like(p)
                    init = True
            _backend_of(p.device).sgd_update_(
                p._data, grad, None if buf is None else buf._data, lr, momentum, dampening,
                weight_decay, nesterov, maximize, init)
            _bump(p, buf)
