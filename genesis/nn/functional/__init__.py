"""genesis.nn.functional: the neural-network ops (PyTorch's `torch.nn.functional`).

Each family lives in its own module; this package re-exports them.
"""
from ...ops import (elu, gelu, leaky_relu, log_softmax, one_hot, pad, relu, sigmoid, silu,
                    softmax, softplus, tanh)
from .loss import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy,
                   huber_loss, kl_div, l1_loss, mse_loss, nll_loss, smooth_l1_loss)
from .sparse import embedding
