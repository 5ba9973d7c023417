"""`Parameter`: a tensor that a `Module` registers as one of its learnable weights."""
from ..ops.creation import empty
from ..tensor import Tensor, _init_from

__all__ = ["Parameter"]


class Parameter(Tensor):
    """A leaf tensor that requires grad by default and is registered by `Module`
    when assigned as an attribute (PyTorch's `torch.nn.Parameter`).

    `Parameter(data)` shares `data`'s memory and version counter, as `data.detach()`
    would.  Operations on a Parameter return plain Tensors: only the Parameter object
    itself is a module's weight.
    """

    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = empty(0)
        elif not isinstance(data, Tensor):
            raise TypeError(f"Parameter: data must be a Tensor, got {type(data).__name__}")
        _init_from(self, data._data, data._device)
        self._version = data._version
        self.requires_grad = requires_grad

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()
