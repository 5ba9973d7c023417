"""`Optimizer`: parameter groups, per-parameter state and checkpoints (PyTorch's API).

An optimizer holds `param_groups`, a list of dicts, each with a `'params'` list
and its own hyperparameters (missing ones are filled from `defaults`), and
`state`, a dict from parameter to that parameter's buffers.  A subclass
defines `_update_group(group)`, which applies one fused backend update to
every parameter of the group that has a gradient; `step` calls it per group.

`state_dict()` has PyTorch's layout: `'state'` maps integer parameter ids
(positions in the order the groups list their parameters) to the per-parameter
state, and `'param_groups'` lists the groups with `'params'` replaced by those
ids.  It holds only tensors, numbers, strings, bools, None and nested
lists/dicts, so checkpoints need no pickle.
"""
import collections
import itertools

from .. import dtypes as _dt
from ..autograd.grad_mode import enable_grad
from ..ops.creation import zeros
from ..tensor import Tensor

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Marks a default that every parameter group must set (e.g. a learning rate)."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


class Optimizer:
    """Base class of optimizers.

    Args:
        params: an iterable of Tensors, of `(name, Tensor)` pairs, or of dicts
            defining parameter groups (each with a `'params'` entry).
        defaults: the hyperparameters a group gets when it does not set them.
    """

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.state = collections.defaultdict(dict)
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got a Tensor")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {group[k]}" for k in sorted(group) if k != "params")
        return "\n".join(lines) + "\n)"

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group):
        """Add a group of parameters, with its own hyperparameters, to `param_groups`."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        else:
            params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        if names:
            if len(names) != len(params):
                raise ValueError("all optimizer params should be with/without names. "
                                 "Some param names are missing")
            param_group["param_names"] = names
        for p in params:
            _check_param(p)
        param_group["params"] = params

        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError("parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            param_group.setdefault(name, default)

        ids = {id(p) for p in params}
        if len(ids) != len(params):
            raise ValueError("optimizer contains a parameter group with duplicate parameters")
        for group in self.param_groups:
            if ("param_names" in param_group) != ("param_names" in group):
                which = "with names" if "param_names" in param_group else "without names"
                raise ValueError("all optimizer param groups should be with/without names. "
                                 f"cannot add param group {which} to the optimizer")
            if any(id(p) in ids for p in group["params"]):
                raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # ------------------------------------------------------------------ stepping
    def zero_grad(self, set_to_none=True):
        """Reset the gradients of all optimized tensors: to None (default) or to zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                p._clear_grad(set_to_none)

    def step(self, closure=None):
        """Perform one optimization step.

        Args:
            closure (callable, optional): re-evaluates the model and returns the
                loss; it runs with gradients enabled, before the update.
        Returns:
            the closure's loss, or None.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._update_group(group)
        return loss

    def _params_with_grad(self, group):
        """(param, its gradient's backend array) for each parameter of `group` with a
        gradient; parameters whose `.grad` is None are skipped."""
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            if g._device is not p._device:  # devices are interned
                raise RuntimeError(f"{type(self).__name__}: gradient is on {g.device} but the "
                                   f"parameter is on {p.device}")
            yield p, g._data

    @staticmethod
    def _step_counter():
        """A new step count: a float32 scalar in host memory, like PyTorch's `step`,
        so reading it never waits for a device."""
        return zeros((), dtype=_dt.float32)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self):
        """The optimizer's state as a dict with `'state'` and `'param_groups'`.

        State tensors are returned by reference (as in PyTorch): save or copy
        them before stepping again if a snapshot is wanted.
        """
        mapping = {}
        groups = []
        for group in self.param_groups:
            packed = {k: _plain(v) for k, v in group.items() if k != "params"}
            for p in group["params"]:
                mapping.setdefault(id(p), len(mapping))
            packed["params"] = [mapping[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {mapping[id(p)]: {k: _plain(v) for k, v in s.items()}
                 for p, s in self.state.items() if id(p) in mapping}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Load a state from `state_dict()` into an optimizer over matching parameters.

        Groups and parameters are matched by position; the number of groups,
        the parameters per group and the shapes of state tensors must agree.
        State tensors are copied onto each parameter's device and dtype (the
        step counter stays a float32 host tensor), so the optimizer continues
        exactly where the saved one stopped.
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= state_dict.keys():
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and "
                             "'param_groups' entries, as returned by state_dict()")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: loaded state dict has "
                             f"{len(saved_groups)} parameter groups, but the optimizer has "
                             f"{len(self.param_groups)}")
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{name}.load_state_dict: loaded parameter group {i} has "
                                 f"{len(saved['params'])} parameters, but the optimizer's group "
                                 f"has {len(group['params'])}")
        id_map = dict(zip(itertools.chain.from_iterable(g["params"] for g in saved_groups),
                          itertools.chain.from_iterable(g["params"] for g in self.param_groups)))

        state = collections.defaultdict(dict)
        for pid, values in state_dict["state"].items():
            if pid not in id_map:
                raise ValueError(f"{name}.load_state_dict: state for parameter id {pid!r}, "
                                 "which no parameter group lists")
            p = id_map[pid]
            state[p] = {k: _load_value(name, pid, p, k, v) for k, v in values.items()}

        groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            new = {k: _restore(v, group.get(k)) for k, v in saved.items() if k != "params"}
            for k, v in group.items():
                new.setdefault(k, v)
            new["params"] = group["params"]
            groups.append(new)
        self.state = state
        self.param_groups = groups


def _check_param(p):
    if not isinstance(p, Tensor):
        raise TypeError(f"optimizer can only optimize Tensors, but one of the params is "
                        f"{type(p).__name__}")
    if p.dtype not in (_dt.float32, _dt.float64):
        raise TypeError(f"optimizer can only optimize floating-point Tensors, but one of the "
                        f"params has dtype {p.dtype}")
    if not (p.is_leaf or p._retains_grad):
        raise ValueError("can't optimize a non-leaf Tensor")


def _plain(value):
    """`value` built from lists and dicts only (tuples become lists), for checkpoints."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _restore(value, like):
    """A copy of a loaded value; lists become tuples where the current value is a tuple."""
    if isinstance(value, (list, tuple)):
        items = [_restore(v, None) for v in value]
        return tuple(items) if isinstance(like, tuple) else items
    if isinstance(value, dict):
        return {k: _restore(v, None) for k, v in value.items()}
    return value


def _load_value(name, pid, p, key, value):
    """A loaded state entry as the optimizer's own copy on the parameter's device."""
    if key == "step":
        if isinstance(value, Tensor) and value.numel() != 1:
            raise ValueError(f"{name}.load_state_dict: 'step' of parameter {pid} has shape "
                             f"{tuple(value.shape)}, expected a single number")
        return zeros((), dtype=_dt.float32).fill_(float(value))
    if isinstance(value, Tensor):
        if tuple(value.shape) != tuple(p.shape):
            raise ValueError(f"{name}.load_state_dict: state '{key}' of parameter {pid} has "
                             f"shape {tuple(value.shape)}, but the parameter has shape "
                             f"{tuple(p.shape)}")
        return value.detach().to(device=p.device, dtype=p.dtype, copy=True)
    return _restore(value, None)


def _reject(optimizer, **flags):
    """PyTorch options genesis does not offer: accepted when off, an error when on."""
    for flag, value in flags.items():
        if value:
            raise ValueError(f"{optimizer}: {flag}=True is not supported; genesis runs each "
                             "update as one fused kernel, outside autograd and graph capture")


def _bump(*tensors):
    """Record an in-place change (autograd's version counters)."""
    for t in tensors:
        if t is not None:
            t._version.value += 1
