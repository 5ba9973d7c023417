"""genesis.nn.functional: the neural-network ops (PyTorch's `torch.nn.functional`).

Each family lives in its own module; this package re-exports them.
"""
from ...ops import (elu, gelu, leaky_relu, log_softmax, one_hot, pad, relu, sigmoid, silu,
                    softmax, softplus, tanh)
from .linear import linear
