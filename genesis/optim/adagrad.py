"""Adagrad."""
from ..backend import get as _backend_of
from ..ops.creation import full_like
from .optimizer import Optimizer, _bump, _reject

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad, as PyTorch's `Adagrad`.

    Each step t, with g the gradient (negated if `maximize`)::

        g = g + weight_decay * p                 if weight_decay != 0
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g                            (s starts at initial_accumulator_value)
        p = p - clr * g / (sqrt(s) + eps)

    State is created for every parameter when the optimizer is built, as in
    PyTorch; parameters of groups added later get theirs on their first step.

    Args:
        params: tensors or parameter-group dicts to optimize.
        lr (float): learning rate (default: 1e-2).
        lr_decay (float): learning-rate decay (default: 0).
        weight_decay (float): L2 penalty (default: 0).
        initial_accumulator_value (float): starting value of the sum of squares.
        eps (float): added to the denominator for stability (default: 1e-10).
        maximize (bool): maximize the objective instead of minimizing it.
        foreach, fused: accepted for compatibility; every genesis update is one fused
            kernel per parameter.
        differentiable: must be False.
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False, differentiable=False, fused=None):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(f"Invalid initial_accumulator_value value: "
                             f"{initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        _reject("Adagrad", differentiable=differentiable)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _init_state(self, p, group):
        state = self.state[p]
        state["step"] = self._step_counter()
        state["sum"] = full_like(p, group["initial_accumulator_value"])
        return state

    def _update_group(self, group):
        lr, lr_decay, eps = group["lr"], group["lr_decay"], group["eps"]
        weight_decay, maximize = group["weight_decay"], group["maximize"]
        for p, grad in self._params_with_grad(group):
            state = self.state[p] or self._init_state(p, group)
            s, step = state["sum"], state["step"]
            _backend_of(p.device).adagrad_update_(
                p._data, grad, s._data, step._data, lr, lr_decay, weight_decay, eps, maximize)
            _bump(p, s, step)
