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
    if input.ndim > 2 and weight.ndim == 2:
        # One GEMM over all leading dims (a view of contiguous input): the weight
        # gradient is then one product, not a batch of products summed afterwards.
        out = matmul(input.reshape(-1, input.shape[-1]), weight.t())
        out = out.reshape(*input.shape[:-1], weight.shape[0])
    else:
        out = matmul(input, weight.t())
    return out if bias is None else out + bias
