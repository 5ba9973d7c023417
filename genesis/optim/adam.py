"""Adam and AdamW (decoupled weight decay), with AMSGrad."""
from ..backend import get as _backend_of
from ..ops.creation import zeros_like
from .optimizer import Optimizer, _bump, _reject

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam, as PyTorch's `Adam`.

    Each step t, with g the gradient (negated if `maximize`)::

        p = p * (1 - lr * weight_decay)          if decoupled_weight_decay (AdamW)
        g = g + weight_decay * p                 otherwise, if weight_decay != 0
        m = lerp(m, g, 1 - beta1)
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)                    if amsgrad (then used for v below)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    Args:
        params: tensors or parameter-group dicts to optimize.
        lr (float): learning rate (default: 1e-3).
        betas (tuple[float, float]): decay rates of the gradient's running mean and
            running square (default: (0.9, 0.999)).
        eps (float): added to the denominator for stability (default: 1e-8).
        weight_decay (float): weight decay (default: 0).
        amsgrad (bool): use the maximum of past squared-gradient averages (AMSGrad).
        maximize (bool): maximize the objective instead of minimizing it.
        decoupled_weight_decay (bool): decay the weights directly (AdamW).
        foreach, fused: accepted for compatibility; every genesis update is one fused
            kernel per parameter.
        capturable, differentiable: must be False.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        _check_adam_args(lr, betas, eps, weight_decay)
        _reject(type(self).__name__, capturable=capturable, differentiable=differentiable)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _update_group(self, group):
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay, amsgrad, maximize = (group["weight_decay"], group["amsgrad"],
                                           group["maximize"])
        decoupled = group["decoupled_weight_decay"]
        for p, grad in self._params_with_grad(group):
            state = self.state[p]
            if not state:
                state["step"] = self._step_counter()
                state["exp_avg"] = zeros_like(p)
                state["exp_avg_sq"] = zeros_like(p)
            vmax = None
            if amsgrad:
                vmax = state.get("max_exp_avg_sq")
                if vmax is None:
                    vmax = state["max_exp_avg_sq"] = zeros_like(p)
            m, v, step = state["exp_avg"], state["exp_avg_sq"], state["step"]
            _backend_of(p.device).adam_update_(
                p._data, grad, m._data, v._data, None if vmax is None else vmax._data,
                step._data, lr, beta1, beta2, eps, weight_decay, decoupled, maximize)
            _bump(p, m, v, vmax, step)


class AdamW(Adam):
    r"""Adam with decoupled weight decay, as PyTorch's `AdamW`: each step first
    shrinks the parameters, `p = p * (1 - lr * weight_decay)`, then takes an Adam
    step without weight decay in the gradient.

    Arguments are those of `Adam`, with weight_decay defaulting to 1e-2.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)


def _check_adam_args(lr, betas, eps, weight_decay):
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")
