"""Finite-difference checks of analytical gradients (public API, PyTorch's names).

`gradcheck` compares the Jacobian autograd computes with central differences,
column by column; `gradgradcheck` does the same for the gradient function
itself (double backward).  Use float64 inputs: float32 differences are too
coarse for the default tolerances.
"""
import numpy as np

from .grad_mode import no_grad


def _is_tensor(x):
    from ..tensor import Tensor
    return isinstance(x, Tensor)


class GradcheckError(RuntimeError):
    """An analytical gradient disagrees with finite differences."""


def _outputs(func, inputs):
    out = func(*inputs)
    out = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in out if _is_tensor(o) and o.dtype.is_floating_point]


def _flat_numpy(t):
    return np.array(t.detach().cpu()._data, dtype=np.float64).reshape(-1)


def _numerical_jacobians(func, inputs, diff_idx, eps):
    """J[o][i] of shape (numel(input i), numel(output o)) by central differences."""
    jac = {}
    for i in diff_idx:
        x = inputs[i]
        # a perturbable copy that still requires grad (func may differentiate inside)
        probe = x.detach().clone().requires_grad_(True)
        args = list(inputs)
        args[i] = probe
        n = probe.numel()
        cols = []
        for k in range(n):
            idx = np.unravel_index(k, tuple(x.shape)) if x.ndim else ()
            with no_grad():
                orig = float(probe[idx].item())
            values = []
            for delta in (eps, -eps):
                with no_grad():
                    probe[idx] = orig + delta
                values.append([_flat_numpy(o) for o in _outputs(func, args)])
            with no_grad():
                probe[idx] = orig
            cols.append([(p - m) / (2 * eps) for p, m in zip(*values)])
        outs = _outputs(func, args)
        for o, out in enumerate(outs):
            jac[(o, i)] = np.stack([c[o] for c in cols]) if cols else np.zeros((0, out.numel()))
    return jac


def _analytical_jacobians(func, inputs, diff_idx):
    from . import grad
    outs = _outputs(func, inputs)
    jac = {}
    for o, out in enumerate(outs):
        m = out.numel()
        rows = {i: np.zeros((inputs[i].numel(), m)) for i in diff_idx}
        for j in range(m):
            seed = np.zeros(m)
            seed[j] = 1.0
            from ..ops.creation import tensor
            g = tensor(seed.reshape(tuple(out.shape)), dtype=out.dtype, device=out.device)
            if not out.requires_grad:
                continue
            got = grad([out], [inputs[i] for i in diff_idx], [g], retain_graph=True,
                       allow_unused=True)
            for i, gi in zip(diff_idx, got):
                if gi is not None:
                    if tuple(gi.shape) != tuple(inputs[i].shape):
                        raise GradcheckError(f"gradient for input {i} has shape {list(gi.shape)}, "
                                             f"expected {list(inputs[i].shape)}")
                    rows[i][:, j] = _flat_numpy(gi)
        for i in diff_idx:
            jac[(o, i)] = rows[i]
    return jac


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Check the gradients of `func(*inputs)` with respect to every input that
    requires grad against central finite differences.  Returns True, or raises
    `GradcheckError` (returns False if raise_exception=False)."""
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    diff_idx = [i for i, x in enumerate(inputs) if _is_tensor(x) and x.requires_grad]
    if not diff_idx:
        raise ValueError("gradcheck expects at least one input tensor to require gradient")
    for i in diff_idx:
        if inputs[i].dtype.name != "float64":
            import warnings
            warnings.warn(f"gradcheck: input {i} is {inputs[i].dtype}, not float64; "
                          "finite differences will be imprecise", stacklevel=2)
    numerical = _numerical_jacobians(func, inputs, diff_idx, eps)
    analytical = _analytical_jacobians(func, inputs, diff_idx)
    for key, num in numerical.items():
        ana = analytical.get(key)
        if ana is None:
            ana = np.zeros_like(num)
        if not np.allclose(ana, num, rtol=rtol, atol=atol, equal_nan=False):
            if not raise_exception:
                return False
            o, i = key
            worst = np.unravel_index(np.argmax(np.abs(ana - num)), num.shape)
            raise GradcheckError(
                f"Jacobian mismatch for output {o} with respect to input {i}:\n"
                f"numerical:\n{num}\nanalytical:\n{ana}\n"
                f"largest difference at (input element {worst[0]}, output element {worst[1]}): "
                f"numerical {num[worst]}, analytical {ana[worst]}")
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3,
                  raise_exception=True, seed=0):
    """Check second derivatives: gradcheck of the function that maps (inputs,
    grad_outputs) to the gradients of func(*inputs) (computed with create_graph)."""
    from . import grad
    from ..ops.creation import tensor
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    diff_idx = [i for i, x in enumerate(inputs) if _is_tensor(x) and x.requires_grad]
    outs = _outputs(func, inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(seed)
        grad_outputs = tuple(tensor(rng.standard_normal(tuple(o.shape)), dtype=o.dtype,
                                    device=o.device, requires_grad=True) for o in outs)
    grad_outputs = tuple(grad_outputs)
    n_in = len(inputs)

    def first_grads(*args):
        xs, gs = args[:n_in], args[n_in:]
        outs = [o for o in _outputs(func, xs) if o.requires_grad]
        return grad(outs, [xs[i] for i in diff_idx], list(gs[:len(outs)]), create_graph=True,
                    allow_unused=True)

    return gradcheck(first_grads, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)
