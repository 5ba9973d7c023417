"""Reverse-mode automatic differentiation: `backward`, `grad`, grad modes, and
numerical checks of gradients (`gradcheck`, `gradgradcheck`)."""
from . import engine
from . import function as _function
from .function import Function, _edge, backend_of
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck, gradgradcheck

__all__ = ["backward", "grad", "Function", "no_grad", "enable_grad", "set_grad_enabled",
           "is_grad_enabled", "gradcheck", "gradgradcheck", "GradcheckError"]


def _as_tuple(x):
    if x is None:
        return ()
    return tuple(x) if isinstance(x, (list, tuple)) else (x,)


def _root_grads(outputs, grad_outputs, create_graph):
    Tensor = _function._Tensor
    grads = []
    for i, out in enumerate(outputs):
        if not isinstance(out, Tensor):
            raise TypeError(f"expected Tensor outputs, got {type(out).__name__}")
        if not out._requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not "
                               "have a grad_fn")
        g = grad_outputs[i] if grad_outputs and i < len(grad_outputs) else None
        if g is None:
            data = out._data
            if data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs; "
                                   f"pass a gradient of shape {list(out.shape)} for output {i}")
            # Ones of out's shape and dtype, made directly: a new tensor outside any
            # graph, with nothing to check or detach (the common loss.backward()).
            ones = backend_of(out._device).full(data.shape, 1, data.dtype)
            grads.append(Tensor._make(ones, out._device))
            continue
        if not isinstance(g, Tensor):
            from ..ops.creation import tensor
            g = tensor(g, dtype=out.dtype, device=out.device)
        if tuple(g.shape) != tuple(out.shape):
            raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of "
                               f"{list(g.shape)} and output[{i}] has a shape of {list(out.shape)}")
        grads.append(g if create_graph else g.detach())
    return grads


def _edges(outputs):
    return [_edge(o) for o in outputs]


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate gradients of `tensors` into the `.grad` of the graph's leaves
    (only of `inputs`, when given)."""
    outputs = _as_tuple(tensors)
    grads = _root_grads(outputs, _as_tuple(grad_tensors), create_graph)
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is not None:
        inputs = _as_tuple(inputs)
        got = grad(outputs, inputs, grads, retain_graph=retain_graph,
                   create_graph=create_graph, allow_unused=True)
        for leaf, g in zip(inputs, got):
            if g is not None:
                g = g if create_graph else g.detach()
                leaf.grad = g if leaf.grad is None else leaf.grad + g
        return
    engine.run_backward(_edges(outputs), grads, retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of `outputs` with respect to `inputs`, returned (not accumulated)."""
    outputs = _as_tuple(outputs)
    inputs = _as_tuple(inputs)
    grads = _root_grads(outputs, _as_tuple(grad_outputs), create_graph)
    if retain_graph is None:
        retain_graph = create_graph
    Tensor = _function._Tensor
    capture = {}
    keys = []
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"One of the differentiated Tensors (input {i}) does not "
                               "require grad")
        key = _edge(t)
        keys.append(key)
        capture.setdefault(key, [])
    engine.run_backward(_edges(outputs), grads, retain_graph, create_graph, capture)
    result = []
    for i, key in enumerate(keys):
        got = capture[key]
        if not got:
            if not allow_unused:
                raise RuntimeError(f"One of the differentiated Tensors (input {i}) appears to "
                                   "not have been used in the graph. Set allow_unused=True if "
                                   "this is the desired behavior.")
            result.append(None)
        else:
            result.append(got[0])
    return tuple(result)
