"""`Function`: one differentiable op, and the node it leaves in the graph.

A subclass defines

    forward(ctx, *args)   -> backend array or tuple of arrays.  Tensor arguments
                             arrive as backend arrays; everything else as given.
    backward(ctx, *grads) -> one gradient (Tensor or None) per forward argument,
                             written with Tensor operations so that it is itself
                             differentiable (double backward).

`Op.apply(*args)` runs forward and, when a tensor argument requires grad,
records the node: `ctx.next_functions` point at the nodes that produced the
inputs, and `ctx.save_for_backward` keeps what backward needs, checked against
in-place modification by version counters.
"""
import weakref

from ..backend import get as backend_of
from .grad_mode import STATE

_Tensor = None  # genesis.tensor.Tensor, bound at import time by genesis.tensor

_FREED = ("Trying to backward through the graph a second time (or directly access saved "
          "tensors after they have already been freed). Saved intermediate values of the "
          "graph are freed when you call .backward() or autograd.grad(). Specify "
          "retain_graph=True if you need to backward through the graph a second time or "
          "if you need to access saved tensors after calling backward.")

_INPUT, _OUTPUT, _CONSTANT = 0, 1, 2


class Node:
    """A vertex of the backward graph."""

    __slots__ = ("next_functions", "_hooks", "__weakref__")

    def name(self):
        return type(self).__name__

    def register_hook(self, output_nr, fn):
        if self._hooks is None:
            self._hooks = {}
        hooks = self._hooks.setdefault(output_nr, [])
        hooks.append(fn)
        return _HookHandle(hooks, fn)


class _HookHandle:
    __slots__ = ("_hooks", "_fn")

    def __init__(self, hooks, fn):
        self._hooks, self._fn = hooks, fn

    def remove(self):
        if self._fn in self._hooks:
            self._hooks.remove(self._fn)


class Function(Node):
    """Base class of differentiable operations (see the module docstring)."""

    __slots__ = ("needs_input_grad", "backend", "device", "_saved", "_non_diff", "_n_outputs",
                 "_output_meta", "__dict__")

    #: True when output 0 is a view of argument 0 (shares memory and version).
    is_view = False

    @classmethod
    def apply(cls, *args, **kwargs):
        # The hot path of every op: plain loops, no comprehensions (each is a function
        # call of its own in Python 3.11), one pass over the arguments per purpose.
        Tensor = _Tensor
        ctx = cls.__new__(cls)
        ctx._hooks = None
        ctx._saved = ()
        ctx._non_diff = None
        arrays = []
        device = None
        requires_grad = False
        for a in args:
            if isinstance(a, Tensor):
                arrays.append(a._data)
                if device is None:
                    device = a._device
                elif a._device is not device:
                    raise RuntimeError(
                        f"{cls.__name__}: expected all tensors to be on the same device, "
                        f"but found at least two devices, {device} and {a._device}")
                if a._requires_grad:
                    requires_grad = True
            else:
                arrays.append(a)
        if device is None:
            raise TypeError(f"{cls.__name__}: expected at least one Tensor argument")
        ctx.backend = backend_of(device)
        ctx.device = device
        if requires_grad and STATE.enabled:
            needs = []
            edges = []
            for a in args:
                if isinstance(a, Tensor) and a._requires_grad:
                    needs.append(True)
                    edges.append(_edge(a))
                else:
                    needs.append(False)
                    edges.append(None)
            ctx.needs_input_grad = tuple(needs)
            ctx.next_functions = tuple(edges)
        else:
            requires_grad = False
            ctx.needs_input_grad = (False,) * len(args)

        raw = cls.forward(ctx, *arrays, **kwargs)
        single = not isinstance(raw, tuple)
        outs = (raw,) if single else raw

        device = ctx.device  # forward may move the result (ToDevice)
        make = Tensor._make
        if not requires_grad:
            ctx._saved = ()
            if single:
                results = (make(raw, device),)
            else:
                results = []
                for o in outs:
                    results.append(make(o, device))
        else:
            ctx._n_outputs = len(outs)
            non_diff = ctx._non_diff
            results = []
            i = 0
            for o in outs:
                differentiable = o.dtype.kind == "f"
                if non_diff:
                    for n in non_diff:
                        if o is n:
                            differentiable = False
                results.append(make(o, device, ctx, i) if differentiable else make(o, device))
                i += 1
            if i > 1:  # so the engine can give unused outputs zero gradients
                meta = []
                for r in results:
                    meta.append((tuple(r.shape), r.dtype, device) if r._requires_grad else None)
                ctx._output_meta = tuple(meta)
            if ctx._saved:
                ctx._resolve_saved(args, results)
        if ctx.is_view:  # forward may decide (reshape copies when strides forbid a view)
            base = args[0]
            view = results[0]
            view._version = base._version
            view._base = base if base._base is None else base._base
        return results[0] if single else tuple(results)

    # ------------------------------------------------------------- forward helpers
    def save_for_backward(self, *items):
        """Keep arrays (inputs, outputs or intermediates) or None for backward."""
        self._saved = items

    def mark_non_differentiable(self, *arrays):
        """Outputs that carry no gradient (indices, masks)."""
        self._non_diff = arrays

    def _resolve_saved(self, args, results):
        Tensor = _Tensor
        resolved = []
        for item in self._saved:
            if item is None:
                resolved.append(None)
                continue
            entry = None
            for a in args:
                if isinstance(a, Tensor) and a._data is item:
                    entry = (_INPUT, a, a._version.value)
                    break
            if entry is None:
                for i, r in enumerate(results):
                    if r._data is item:
                        # Keep the array, not the output Tensor: the output refers to
                        # this node, and a reference back would form a cycle.
                        entry = (_OUTPUT, item, (r._version, r._version.value, i,
                                                 r.requires_grad))
                        break
            resolved.append(entry if entry is not None else (_CONSTANT, item, None))
        self._saved = resolved

    # ------------------------------------------------------------- backward helpers
    @property
    def saved_tensors(self):
        """The saved values as Tensors; raises if they were freed or modified in place."""
        if self._saved is None:
            raise RuntimeError(_FREED)
        Tensor = _Tensor
        device = self.device
        out = []
        for entry in self._saved:
            if entry is None:
                out.append(None)
                continue
            kind, obj, meta = entry
            if kind == _INPUT:
                if obj._version.value != meta:
                    _raise_modified(obj.shape, obj._version.value, meta, self)
                out.append(obj)
                continue
            if kind == _OUTPUT:
                counter, version, nr, requires = meta
                if counter.value != version:
                    _raise_modified(obj.shape, counter.value, version, self)
                t = Tensor._make(obj, device, grad_fn=self if requires else None, output_nr=nr)
                t._version = counter
                out.append(t)
            else:
                out.append(Tensor._make(obj, device))
        return tuple(out)

    def _release(self):
        self._saved = None


class AccumulateGrad(Node):
    """The node of a leaf tensor: sums incoming gradients into `leaf.grad`."""

    __slots__ = ("leaf",)

    def __init__(self, leaf):
        self.leaf = weakref.ref(leaf)  # the leaf owns this node, not the reverse
        self.next_functions = ()
        self._hooks = None

    def name(self):
        return "AccumulateGrad"


def _edge(t):
    """The (node, output_nr) a gradient for tensor `t` must flow to, or None."""
    if not t._requires_grad:
        return None
    if t.grad_fn is not None:
        return (t.grad_fn, t._output_nr)
    acc = t._accumulator
    if acc is None:
        acc = t._accumulator = AccumulateGrad(t)
    return (acc, 0)


def _raise_modified(shape, now, expected, node):
    raise RuntimeError(
        "one of the variables needed for gradient computation has been modified by an "
        f"inplace operation: [Tensor of shape {tuple(shape)}], which is saved by "
        f"{node.name()}, is at version {now}; expected version {expected} instead.")
