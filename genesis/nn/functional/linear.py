"""Affine maps."""
from ...ops.linalg import matmul

__all__ = ["linear"]


def linear(input, weight, bias=None):
    """input @ weight.T + bias: `input` (*, in_features), `weight` (out_features,
    in_features) or (in_features,), `bias` (out_features,) or None."""
    if weight.ndim not in (1, 2):
        raise RuntimeError(f"linear: weight must be 1-D or 2-D, got {weight.ndim}-D "
                           f"of shape {list(weight.shape)}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[-1]:
        raise RuntimeError(f"linear: input of shape {list(input.shape)} does not match weight "
                           f"of shape {list(weight.shape)} (expected input[..., "
                           f"{weight.shape[-1]}])")
    out = matmul(input, weight.t())
    return out if bias is None else out + bias
