"""The ParticleLayer map (`nn.ParticleLayer`'s functional core): a softmax-gated
mixture of K affine maps, all K computed by one GEMM."""
from ...ops.elementwise import relu
from ...ops.linalg import matmul
from ...ops.reduction import softmax
from ...tensor import Tensor
from .linear import linear

__all__ = ["particle_linear"]


def particle_linear(input, weight, bias, gate, activation=relu, return_gates=False):
    """y = sum_k softmax(x @ gate)_k * activation(x @ weight[k].T + bias[k]).

    `input` (*, in_features), `weight` (K, out_features, in_features), `bias`
    (K, out_features) or None, `gate` (in_features, K); `activation` a callable on
    tensors or None for none.  Returns y (*, out_features), and with
    `return_gates=True` also the gates (*, K).
    """
    for name, t in (("input", input), ("weight", weight), ("gate", gate)) + \
            ((("bias", bias),) if bias is not None else ()):
        if not isinstance(t, Tensor):
            raise TypeError(f"particle_linear: {name} must be a Tensor, got {type(t).__name__}")
    if weight.ndim != 3:
        raise RuntimeError(f"particle_linear: weight must be 3-D (K, out_features, "
                           f"in_features), got shape {list(weight.shape)}")
    k, out_features, in_features = weight.shape
    if tuple(gate.shape) != (in_features, k):
        raise RuntimeError(f"particle_linear: gate of shape {list(gate.shape)} does not match "
                           f"weight of shape {list(weight.shape)} (expected [{in_features}, {k}])")
    if bias is not None and tuple(bias.shape) != (k, out_features):
        raise RuntimeError(f"particle_linear: bias of shape {list(bias.shape)} does not match "
                           f"weight of shape {list(weight.shape)} (expected [{k}, "
                           f"{out_features}])")
    if input.ndim == 0 or input.shape[-1] != in_features:
        raise RuntimeError(f"particle_linear: input of shape {list(input.shape)} does not match "
                           f"in_features={in_features} (expected input[..., {in_features}])")
    lead = tuple(input.shape[:-1])
    x = input.reshape(-1, in_features)
    gates = softmax(matmul(x, gate), dim=-1)                                  # (N, K)
    h = linear(x, weight.reshape(k * out_features, in_features),
               None if bias is None else bias.reshape(k * out_features))      # (N, K*out)
    if activation is not None:
        h = activation(h)
    y = (gates.unsqueeze(-1) * h.reshape(-1, k, out_features)).sum(1)        # (N, out)
    y = y.reshape(lead + (out_features,))
    return (y, gates.reshape(lead + (k,))) if return_gates else y
